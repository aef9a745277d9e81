"""Helpers of the call benchmarks (benchmarks/bench_cps.py, bench_relay.py,
bench_memory.py, bench_hunt.py, bench_voicemail.py): the switch's generated config and
SIPp's injection files (:mod:`calls.setup`), the processes under test and the SIPp peers,
each started pinned and stopped by PID (:mod:`calls.procs`); the event-loop lag probe that
bench_voicemail.py puts on the switch's path (``calls/lag_probe/sitecustomize.py``). What
every benchmark shares is in :mod:`common`."""
