"""Suite-wide settings."""

from hypothesis import settings

# No per-example deadline: timings belong in benchmarks/, not in tests, and a busy CI
# machine must not turn a slow example into a failure.
settings.register_profile("b2bua", deadline=None)
settings.load_profile("b2bua")
