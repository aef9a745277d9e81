"""Binding: one registered contact of an address of record (an extension).

Times here are WALL-clock seconds (epoch), because bindings must survive a restart; the
core converts with the ``wall_offset`` the shell measured (see ARCHITECTURE.md, "Two
clocks"). The source address is where the REGISTER really came from, so a phone behind
NAT is reached at its public address (RFC 3261 section 10.3 item 7, RFC 3581).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Binding:
    """``aor`` is the extension number ("0101"); ``contact`` the Contact URI as the phone
    wrote it; ``source`` where its REGISTER came from, as ``udp:HOST:PORT`` or
    ``tcp:HOST:PORT``; ``q`` the Contact's q-value when it gave one."""

    aor: str
    contact: str
    expires_at: float
    registered_at: float
    call_id: str
    cseq: int
    source: str
    q: float | None = None
    user_agent: str | None = None
    instance: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.aor, self.contact

    def remaining(self, wall_now: float) -> float:
        return self.expires_at - wall_now
