"""Helpers of benchmarks/bench_register.py: the switch's config and SIPp's injection file
for N generated extensions (:mod:`register.generate`) and SIPp's statistics file
(:mod:`register.sipp_stats`). CPU readings from /proc are in :mod:`common`."""
