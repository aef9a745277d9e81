"""Session timers (RFC 4028) on the caller's leg: a call whose caller vanished without a
BYE ends when the session is no longer refreshed.

The switch honours a timer the caller asks for (``Supported: timer`` and a
``Session-Expires``) and never asks one of the callees (they may still run their own:
their refreshes are re-INVITEs or UPDATEs, relayed like any other). Pure functions of the
request; the :class:`~b2bua.call.call.Call` keeps the timer.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from b2bua.sip.message import Request

#: Our Min-SE (RFC 4028 section 5: at least 90 s); a shorter Session-Expires gets 422.
MIN_SE: Final = 90
#: Option tag of session timers (RFC 4028 section 3).
TIMER: Final = "timer"


class Refresher(StrEnum):
    UAC = "uac"  # the caller refreshes; we end the session if it stops
    UAS = "uas"  # we refresh (UPDATE without a body)


@dataclass(frozen=True, slots=True)
class NegotiatedTimer:
    """A negotiated session timer: ``interval`` seconds, refreshed by ``refresher``."""

    interval: int
    refresher: Refresher

    def headers(self) -> tuple[tuple[str, str], ...]:
        """What our 2xx responses carry (RFC 4028 section 9): the interval and who
        refreshes; ``Require: timer`` when it is the caller."""
        fields = [("Session-Expires", f"{self.interval};refresher={self.refresher.value}")]
        if self.refresher is Refresher.UAC:
            fields.append(("Require", TIMER))
        return tuple(fields)

    def next_deadline(self, now: float) -> float:
        """When we act next, counted from the last refresh at ``now``: as refresher, half
        the interval (section 10); otherwise the expiry minus min(32, interval / 3), when
        we give up on the session (section 10)."""
        if self.refresher is Refresher.UAS:
            return now + self.interval / 2
        return now + self.interval - min(32.0, self.interval / 3)


class TooSmall(Exception):  # noqa: N818 - named after the 422 it answers
    """The caller asked for a Session-Expires below our Min-SE: answer 422 with Min-SE."""


def _option_tags(request: Request, name: str) -> set[str]:
    return {
        tag.strip().lower()
        for value in request.headers.get_all(name)
        for tag in value.split(",")
        if tag.strip()
    }


def negotiate(request: Request) -> NegotiatedTimer | None:
    """The session timer an INVITE asks for, or None (no timer: the caller does not
    support it, or gave no Session-Expires). Raises :class:`TooSmall` for an interval
    below :data:`MIN_SE`. A malformed Session-Expires means no timer."""
    if TIMER not in _option_tags(request, "supported") | _option_tags(request, "require"):
        return None
    value = request.headers.get("session-expires")
    if value is None:
        return None
    delta, *params = (part.strip() for part in value.split(";"))
    if not delta.isdigit():
        return None
    interval = int(delta)
    if interval < MIN_SE:
        raise TooSmall(str(interval))
    refresher = Refresher.UAC
    for param in params:
        name, _, param_value = param.partition("=")
        if name.strip().lower() == "refresher" and param_value.strip().lower() == "uas":
            refresher = Refresher.UAS
    return NegotiatedTimer(interval, refresher)
