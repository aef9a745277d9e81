"""The boundary between the pure switch and the asyncio shell: what the shell feeds in
(inputs, past-tense facts) and what the switch asks it to do (outputs, imperatives).

All are plain frozen dataclasses with no sockets or callbacks inside.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from b2bua.call.records import CallRecord
from b2bua.registrar.binding import Binding
from b2bua.sip.address import ConnectionId, Peer
from media.commands import MediaCommand, MediaReport


@dataclass(frozen=True, slots=True, kw_only=True)
class DatagramReceived:
    """A UDP datagram arrived from ``peer``."""

    data: bytes
    peer: Peer


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamReceived:
    """One complete message, framed by Content-Length, arrived on a TCP connection."""

    data: bytes
    peer: Peer


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionClosed:
    """A TCP connection went away (closed by the peer, or by us after a framing error)."""

    connection: ConnectionId


@dataclass(frozen=True, slots=True, kw_only=True)
class StateLoaded:
    """What the store held at start (bindings not yet expired), fed in once before
    serving."""

    bindings: tuple[Binding, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class MailboxCounts:
    """How many messages ``mailbox`` holds now (``new``: unread), after the store changed
    (a message kept, read or deleted) and for every mailbox at start."""

    mailbox: str
    new: int
    old: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Stopping:
    """A clean stop was asked for (SIGTERM, SIGINT): say goodbye where it is owed, e.g.
    un-REGISTER from the carrier trunks; the shell waits a bounded time for it."""


#: Media reports (RTP timeouts, latching, ports the host could not bind) come in as they are.
Input: TypeAlias = (
    DatagramReceived
    | StreamReceived
    | ConnectionClosed
    | StateLoaded
    | MailboxCounts
    | Stopping
    | MediaReport
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SendDatagram:
    data: bytes
    peer: Peer


@dataclass(frozen=True, slots=True, kw_only=True)
class SendStream:
    """Write ``data`` on the connection of ``peer`` (``peer.connection`` must be set)."""

    data: bytes
    peer: Peer


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseConnection:
    connection: ConnectionId


@dataclass(frozen=True, slots=True, kw_only=True)
class SaveBinding:
    """Persist (insert or replace) a binding."""

    binding: Binding


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteBinding:
    aor: str
    contact: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SaveCallRecord:
    """Persist the record of a call that ended."""

    record: CallRecord


#: Media commands go to the media host as they are.
Output: TypeAlias = (
    SendDatagram
    | SendStream
    | CloseConnection
    | SaveBinding
    | DeleteBinding
    | SaveCallRecord
    | MediaCommand
)
