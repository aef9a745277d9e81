"""The transaction timers of RFC 3261 section 17 (table 4) and RFC 6026, and their durations.

Durations come from T1, T2 and T4; nothing here reads a clock. A machine turns a duration
into a deadline (``now + duration``) and asks its owner to call it back through a
:class:`~b2bua.transaction.actions.StartTimer` action.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class TimerName(Enum):
    """RFC 3261 table 4, RFC 6026 section 8.11, plus the 100 Trying delay of section 17.2.1.

    Timer C (the proxy's INVITE timer) is not here: it belongs to proxies, not to a B2BUA.
    """

    A = "A"  # ICT: INVITE retransmission, unreliable transports only
    B = "B"  # ICT: INVITE transaction timeout
    D = "D"  # ICT: wait time for response retransmissions in Completed
    E = "E"  # NICT: request retransmission, unreliable transports only
    F = "F"  # NICT: non-INVITE transaction timeout
    G = "G"  # IST: non-2xx final response retransmission, unreliable transports only
    H = "H"  # IST: wait time for ACK receipt
    I = "I"  # noqa: E741 - the RFC name. IST: wait for ACK retransmissions in Confirmed
    J = "J"  # NIST: wait time for request retransmissions in Completed
    K = "K"  # NICT: wait time for response retransmissions in Completed
    L = "L"  # IST (RFC 6026): wait time for 2xx retransmissions from the TU in Accepted
    M = "M"  # ICT (RFC 6026): wait time for 2xx retransmissions and forks in Accepted
    TRYING = "TRYING"  # IST: send 100 Trying when the TU has said nothing within 200 ms


@dataclass(frozen=True, slots=True)
class TimerSettings:
    """T1 (RTT estimate), T2 (maximum retransmit interval for non-INVITE requests and
    INVITE responses), T4 (maximum time a message stays in the network), in seconds.

    ``timer_d`` is the lower bound of Timer D on unreliable transports (RFC 3261 section
    17.1.1.2: "at least 32 seconds"); Timer D is never shorter than 64*T1 either, so that
    it outlasts the server's Timer H when T1 is raised. ``trying`` is the 100 Trying delay
    of section 17.2.1.
    """

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    timer_d: float = 32.0
    trying: float = 0.2

    def __post_init__(self) -> None:
        if not self.t1 > 0:
            raise ValueError("T1 must be positive")
        if self.t2 < self.t1:
            raise ValueError("T2 must not be below T1")
        if self.t4 < 0 or self.timer_d < 0 or self.trying < 0:
            raise ValueError("T4, timer_d and trying must not be negative")

    @property
    def transaction_timeout(self) -> float:
        """64*T1: Timers B, F, H, J (unreliable), L and M."""
        return 64 * self.t1

    def duration(self, name: TimerName, *, reliable: bool) -> float:
        """How long ``name`` runs when it is first started on a reliable or unreliable
        transport. A zero duration means the timer fires at once (RFC 3261 section 17:
        D, I, J and K are zero on reliable transports).

        A, E and G give their first interval (T1); the machines double it themselves and
        never start them on reliable transports.
        """
        match name:
            case TimerName.A | TimerName.E | TimerName.G:
                return self.t1
            case TimerName.B | TimerName.F | TimerName.H | TimerName.L | TimerName.M:
                return self.transaction_timeout
            case TimerName.J:
                # RFC 3261 section 17.2.2: 64*T1 for unreliable transports, zero for reliable.
                return 0.0 if reliable else self.transaction_timeout
            case TimerName.D:
                return 0.0 if reliable else max(self.timer_d, self.transaction_timeout)
            case TimerName.I | TimerName.K:
                return 0.0 if reliable else self.t4
            case TimerName.TRYING:
                return self.trying
