"""The call detail record: what one call was, written once when it ends (pure data).

Times are wall-clock seconds (the switch's ``now + wall_offset``, ARCHITECTURE.md "Two
clocks"); ``duration`` is the talk time, from the answer to the end (0 when unanswered).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Disposition(StrEnum):
    """How a call ended, as the operator reads it."""

    ANSWERED = "answered"
    NO_ANSWER = "no answer"  # rang, nobody picked up (timeout or 480/408)
    BUSY = "busy"  # 486 or 600 from every callee
    CANCELLED = "cancelled"  # the caller hung up before the answer
    FAILED = "failed"  # unknown number, nobody registered, refused, an error
    VOICEMAIL = "voicemail"  # nobody answered: the switch took a message (or tried to)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRecord:
    """One call. ``call_id`` is the caller's Call-ID; ``caller`` the caller's number (From
    user, or the authenticated extension) and ``caller_name`` its display name; ``callee``
    the number dialled (Request-URI user); ``answered_by`` the extension that answered.
    ``caller_status`` is the final response the caller got to its INVITE (200 when
    answered); ``callee_status`` the best final response of the callee legs (None when no
    leg was tried). ``end_reason`` says who or what ended it (``caller BYE``, ``callee
    BYE``, ``RTP timeout``, ``cancelled``, ``ring timeout``, ...).

    ``hunts``: each entry is one hunt the call went through (a chain of groups gives
    several), in order, as :meth:`b2bua.hunt.engine.Hunt.record` returns it: keys
    ``group``, ``strategy``, ``seed``, ``result``, ``connected``, ``overflow`` and
    ``members`` (a list of dicts with ``t``, ``member``, ``outcome``, ``round``, and
    ``reason``/``status`` when known); empty when the call hunted no group. Plain
    JSON-serialisable data (str, int, float, bool, None, lists, dicts): the store keeps it
    as JSON text and the status API answers it as is."""

    call_id: str
    caller: str
    caller_name: str | None
    callee: str
    answered_by: str | None
    started_at: float
    answered_at: float | None
    ended_at: float
    duration: float
    disposition: Disposition
    caller_status: int | None
    callee_status: int | None
    end_reason: str
    hunts: tuple[Mapping[str, object], ...] = ()
