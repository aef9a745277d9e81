"""Helpers of benchmarks/bench_register.py: the switch's config and SIPp's injection file
for N generated extensions (:mod:`register.generate`), SIPp's statistics file
(:mod:`register.sipp_stats`) and CPU readings from /proc (:mod:`register.procfs`)."""
