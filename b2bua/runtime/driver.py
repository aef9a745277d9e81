"""Driver: feeds inputs to the pure switch at the loop's time, executes its outputs, and
keeps exactly one ``loop.call_at`` armed for the switch's next deadline (as aioquic does)."""

from __future__ import annotations

import asyncio
from typing import Protocol

import structlog

from b2bua.events import (
    CloseConnection,
    DeleteBinding,
    Input,
    Output,
    SaveBinding,
    SendDatagram,
    SendStream,
)
from b2bua.registrar.binding import Binding
from b2bua.sip.address import ConnectionId, Peer

log = structlog.get_logger(__name__)


class Core(Protocol):
    def handle(self, event: Input, now: float) -> list[Output]: ...

    def fire_timers(self, now: float) -> list[Output]: ...

    def next_deadline(self) -> float | None: ...


class Transports(Protocol):
    """What the driver executes: the network, and the store (which never blocks)."""

    def send_datagram(self, data: bytes, peer: Peer) -> None: ...

    def send_stream(self, data: bytes, peer: Peer) -> None: ...

    def close_connection(self, connection: ConnectionId) -> None: ...

    def save_binding(self, binding: Binding) -> None: ...

    def delete_binding(self, aor: str, contact: str) -> None: ...


class Driver:
    """Owns the clock for the core: every input is handled at ``loop.time()``."""

    def __init__(self, core: Core, transports: Transports, loop: asyncio.AbstractEventLoop) -> None:
        self._core = core
        self._transports = transports
        self._loop = loop
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for: float | None = None

    def feed(self, event: Input) -> None:
        try:
            outputs = self._core.handle(event, self._loop.time())
        except Exception:
            # A bug in the core must not take the server down: log it, keep serving.
            log.exception("core_failed", event=type(event).__name__)
            outputs = []
        self._execute(outputs)
        self._rearm()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._armed_for = None

    def _execute(self, outputs: list[Output]) -> None:
        for output in outputs:
            match output:
                case SendDatagram(data=data, peer=peer):
                    self._transports.send_datagram(data, peer)
                case SendStream(data=data, peer=peer):
                    self._transports.send_stream(data, peer)
                case CloseConnection(connection=connection):
                    self._transports.close_connection(connection)
                case SaveBinding(binding=binding):
                    self._transports.save_binding(binding)
                case DeleteBinding(aor=aor, contact=contact):
                    self._transports.delete_binding(aor, contact)

    def _rearm(self) -> None:
        deadline = self._core.next_deadline()
        if deadline == self._armed_for:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None if deadline is None else self._loop.call_at(deadline, self._on_deadline)
        self._armed_for = deadline

    def _on_deadline(self) -> None:
        self._timer = None
        self._armed_for = None
        try:
            outputs = self._core.fire_timers(self._loop.time())
        except Exception:
            log.exception("core_timer_failed")
            outputs = []
        self._execute(outputs)
        self._rearm()
