"""PortPool: even RTP ports from the configured range, RTCP on port + 1.

RFC 3550 §11: an RTP session uses an even port for RTP and the next odd port for RTCP.
The pool hands out the even port of each pair; the holder binds both. Every pair lies
wholly inside the configured range (``port + 1 <= last``), so a firewall opened for that
range also passes RTCP.

Order: ports are handed out least recently released first (a FIFO of free ports that
starts in range order, so a fresh pool goes round-robin through the range). A port
released by an ended call goes to the back of the queue, so late packets of that call
do not land in the next call while other ports are free.

Busy ports: when the host cannot bind a pair (another process holds it), it calls
:meth:`PortPool.reserve` (or :meth:`PortPool.quarantine` with an explicit time) and
allocates again; the port stays out of the pool until the cool-down has passed, measured
on the ``now`` that callers pass in (the pool reads no clock).

Inputs: :meth:`allocate`, :meth:`release`, :meth:`quarantine`, :meth:`reserve`.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Final

LOWEST_PORT: Final = 1024  # below are the well-known ports (RFC 6335 §6): never ours to hand out
HIGHEST_PORT: Final = 65535
DEFAULT_BUSY_COOLDOWN: Final = 60.0  # seconds a port found busy by the OS stays out of the pool


class PortsExhausted(Exception):  # noqa: N818 (named for what happened, as the issue asks)
    """Every pair of the range is in use or quarantined.

    The call cannot get media: answer it 503 (RFC 3261 §21.5.4), hence ``status_hint``.
    ``next_free_at`` is when the earliest quarantined port comes back (``None`` when
    none is quarantined: only a release frees one).
    """

    status_hint: Final = 503

    def __init__(self, message: str, *, next_free_at: float | None) -> None:
        super().__init__(message)
        self.next_free_at = next_free_at


class PortPool:
    """Even RTP ports of ``first..last`` (inclusive), each with its RTCP port + 1.

    A port is always in exactly one of three places: free (queued for allocation),
    in use (allocated, not yet released) or quarantined (until a given time).
    """

    __slots__ = ("_free", "_heap", "_in_use", "_quarantined", "busy_cooldown", "first", "last")

    def __init__(
        self, first: int, last: int, *, busy_cooldown: float = DEFAULT_BUSY_COOLDOWN
    ) -> None:
        if not LOWEST_PORT <= first <= last <= HIGHEST_PORT:
            raise ValueError(
                f"RTP port range {first}-{last} must satisfy"
                f" {LOWEST_PORT} <= first <= last <= {HIGHEST_PORT}"
            )
        lowest_even = first + (first & 1)
        if lowest_even + 1 > last:
            raise ValueError(
                f"RTP port range {first}-{last} holds no even RTP port whose RTCP port"
                " (port + 1, RFC 3550 §11) is also in the range"
            )
        if busy_cooldown < 0:
            raise ValueError(f"busy_cooldown must not be negative, got {busy_cooldown}")
        self.first = first
        self.last = last
        self.busy_cooldown = busy_cooldown
        # range(lowest_even, last, 2) stops at the last even p with p + 1 <= last.
        self._free: deque[int] = deque(range(lowest_even, last, 2))
        self._in_use: set[int] = set()
        self._quarantined: dict[int, float] = {}
        self._heap: list[tuple[float, int]] = []  # (until, port); stale when extended

    @property
    def capacity(self) -> int:
        """How many RTP/RTCP pairs the range holds."""
        return len(self._free) + len(self._in_use) + len(self._quarantined)

    @property
    def in_use(self) -> int:
        return len(self._in_use)

    @property
    def quarantined(self) -> int:
        """Ports held back, including any whose time has passed but that no
        :meth:`allocate` has taken back yet."""
        return len(self._quarantined)

    def is_allocated(self, port: int) -> bool:
        return port in self._in_use

    def allocate(self, now: float) -> int:
        """Take the least recently released free RTP port (bind it and port + 1).

        Raises :class:`PortsExhausted` when every pair is in use or quarantined.
        """
        self._thaw(now)
        if not self._free:
            raise PortsExhausted(
                f"no free RTP port in {self.first}-{self.last}:"
                f" {len(self._in_use)} in use, {len(self._quarantined)} quarantined",
                next_free_at=self._heap[0][0] if self._heap else None,
            )
        port = self._free.popleft()
        self._in_use.add(port)
        return port

    def release(self, port: int) -> None:
        """Give back an allocated port; it goes to the back of the queue.

        Releasing a port that is not allocated (twice, or never handed out) is a bug in
        the caller and raises ``ValueError``: two calls could otherwise share a port.
        """
        try:
            self._in_use.remove(port)
        except KeyError:
            raise ValueError(
                f"RTP port {port} released but not allocated from {self.first}-{self.last}"
                + (" (it is quarantined)" if port in self._quarantined else "")
            ) from None
        self._free.append(port)

    def quarantine(self, port: int, until: float) -> None:
        """Keep ``port`` out of the pool until ``until``; an allocated port stops being
        in use (its holder gave up on it). Quarantining a quarantined port keeps the later
        of the two times."""
        self._check_member(port)
        if port in self._in_use:
            self._in_use.remove(port)
        elif port in self._quarantined:
            if until <= self._quarantined[port]:
                return
        else:
            self._free.remove(port)  # O(n), but a port found busy is a rare event
        self._quarantined[port] = until
        heapq.heappush(self._heap, (until, port))

    def reserve(self, port: int, now: float) -> None:
        """The OS refused to bind ``port`` or ``port + 1``: quarantine it for
        ``busy_cooldown`` seconds from ``now``, then allocate again."""
        self.quarantine(port, now + self.busy_cooldown)

    def _thaw(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            until, port = heapq.heappop(heap)
            if self._quarantined.get(port) == until:
                del self._quarantined[port]
                self._free.append(port)

    def _check_member(self, port: int) -> None:
        if port & 1 or not self.first <= port < self.last:
            raise ValueError(
                f"{port} is not an RTP port of {self.first}-{self.last}"
                " (an even port with port + 1 in the range)"
            )
