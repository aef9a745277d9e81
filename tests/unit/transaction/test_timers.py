"""Timer durations from T1, T2, T4 (RFC 3261 table 4, RFC 6026 section 8.11)."""

from __future__ import annotations

import pytest

from b2bua.transaction.timers import TimerName, TimerSettings

T = TimerName

DEFAULTS_UNRELIABLE = {
    T.A: 0.5, T.B: 32.0, T.D: 32.0, T.E: 0.5, T.F: 32.0, T.G: 0.5, T.H: 32.0,
    T.I: 5.0, T.J: 32.0, T.K: 5.0, T.L: 32.0, T.M: 32.0, T.TRYING: 0.2,
}  # fmt: skip
DEFAULTS_RELIABLE = {
    **DEFAULTS_UNRELIABLE,
    T.D: 0.0, T.I: 0.0, T.J: 0.0, T.K: 0.0,
}  # fmt: skip


def test_defaults() -> None:
    settings = TimerSettings()
    assert (settings.t1, settings.t2, settings.t4) == (0.5, 4.0, 5.0)
    assert settings.transaction_timeout == 32.0


@pytest.mark.parametrize("name", list(TimerName))
def test_default_durations(name: TimerName) -> None:
    settings = TimerSettings()
    assert settings.duration(name, reliable=False) == DEFAULTS_UNRELIABLE[name]
    assert settings.duration(name, reliable=True) == DEFAULTS_RELIABLE[name]


def test_custom_durations_follow_t1_and_t4() -> None:
    settings = TimerSettings(t1=0.05, t2=0.4, t4=0.5, trying=0.1)
    for name in (T.B, T.F, T.H, T.J, T.L, T.M):
        assert settings.duration(name, reliable=False) == pytest.approx(3.2)
    assert settings.duration(T.A, reliable=False) == 0.05
    assert settings.duration(T.I, reliable=False) == 0.5
    assert settings.duration(T.K, reliable=False) == 0.5
    assert settings.duration(T.TRYING, reliable=False) == 0.1
    # Timer D is "at least 32 seconds" (RFC 3261 §17.1.1.2), however small T1 is ...
    assert settings.duration(T.D, reliable=False) == 32.0
    # ... and never shorter than the server's Timer H when T1 is large.
    assert TimerSettings(t1=1.0).duration(T.D, reliable=False) == 64.0
    assert TimerSettings(timer_d=40.0).duration(T.D, reliable=False) == 40.0


def test_no_timer_c() -> None:
    assert "C" not in TimerName.__members__


@pytest.mark.parametrize(
    "kwargs",
    [{"t1": 0.0}, {"t1": -1.0}, {"t1": 1.0, "t2": 0.5}, {"t4": -1.0}, {"trying": -0.1}],
)
def test_invalid_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"T1|T2|T4"):
        TimerSettings(**kwargs)
