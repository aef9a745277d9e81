"""Where a message came from or goes to: a transport and an address, plus, for
connection-oriented transports, which connection (RFC 3261 section 18)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NewType

ConnectionId = NewType("ConnectionId", int)


class Transport(StrEnum):
    UDP = "UDP"
    TCP = "TCP"

    @property
    def is_reliable(self) -> bool:
        """RFC 3261 section 17: retransmission timers run only on unreliable transports."""
        return self is not Transport.UDP


@dataclass(frozen=True, slots=True)
class Peer:
    """A remote address. ``connection`` names the TCP connection a message arrived on,
    so that the response goes back on it (RFC 3261 section 18.2.2)."""

    transport: Transport
    host: str
    port: int
    connection: ConnectionId | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def __str__(self) -> str:
        return f"{self.transport.lower()}:{self.host}:{self.port}"
