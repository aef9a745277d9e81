"""Driver: feeds inputs to the pure switch at the loop's time, executes its outputs, and
keeps exactly one ``loop.call_at`` armed for the switch's next deadline (as aioquic does)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final, Protocol

import structlog

from b2bua.call.records import CallRecord
from b2bua.events import (
    CloseConnection,
    DatagramReceived,
    DeleteBinding,
    Input,
    Output,
    SaveBinding,
    SaveCallRecord,
    SendDatagram,
    SendStream,
    StreamReceived,
)
from b2bua.registrar.binding import Binding
from b2bua.sip.address import ConnectionId, Peer
from media.commands import MediaCommand

log = structlog.get_logger(__name__)

#: How late the shell may ask the core to fire a due timer, to fire several at once.
TIMER_SLACK: Final = 0.005


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

    def save_call_record(self, record: CallRecord) -> None: ...

    def execute_media(self, command: MediaCommand) -> None: ...


class Observer(Protocol):
    """Watches the traffic for the metrics and the live panel: every SIP message in
    and out (as bytes), and a nudge after each input or timer (the state may have
    changed). Must be quick: it runs on the event loop, per message."""

    def received(self, data: bytes) -> None: ...

    def sent(self, data: bytes) -> None: ...

    def changed(self) -> None: ...


class Driver:
    """Owns the clock for the core: every input is handled at ``loop.time()``."""

    def __init__(
        self,
        core: Core,
        transports: Transports,
        loop: asyncio.AbstractEventLoop,
        observer: Observer | None = None,
    ) -> None:
        self._core = core
        self._transports = transports
        self._loop = loop
        self._observer = observer
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for: float | None = None

    def carry_out(self, outputs: list[Output]) -> None:
        """Execute what the core returned outside :meth:`feed` (a reload), and re-arm for
        its next deadline."""
        self._execute(outputs)
        self._rearm()

    def feed(self, event: Input) -> None:
        observer = self._observer
        if observer is not None and isinstance(event, DatagramReceived | StreamReceived):
            observer.received(event.data)
        try:
            outputs = self._core.handle(event, self._loop.time())
        except Exception:
            # A bug in the core must not take the server down: log it, keep serving.
            log.exception("core_failed", event=type(event).__name__)
            outputs = []
        self._execute(outputs)
        self._rearm()

    def run(self, step: Callable[[float], list[Output]]) -> None:
        """Run one operation of the core that is not an input (``Switch.end_calls``)
        at the loop's time, and execute what it returns."""
        try:
            outputs = step(self._loop.time())
        except Exception:
            log.exception("core_failed", event=getattr(step, "__name__", "step"))
            outputs = []
        self._execute(outputs)
        self._rearm()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._armed_for = None

    def _execute(self, outputs: list[Output]) -> None:
        observer = self._observer
        for output in outputs:
            match output:
                case SendDatagram(data=data, peer=peer):
                    self._transports.send_datagram(data, peer)
                    if observer is not None:
                        observer.sent(data)
                case SendStream(data=data, peer=peer):
                    self._transports.send_stream(data, peer)
                    if observer is not None:
                        observer.sent(data)
                case CloseConnection(connection=connection):
                    self._transports.close_connection(connection)
                case SaveBinding(binding=binding):
                    self._transports.save_binding(binding)
                case DeleteBinding(aor=aor, contact=contact):
                    self._transports.delete_binding(aor, contact)
                case SaveCallRecord(record=record):
                    self._transports.save_call_record(record)
                case _:  # every media command (mypy checks nothing else is left)
                    self._transports.execute_media(output)
        if observer is not None:
            observer.changed()

    def _rearm(self) -> None:
        """Keep one ``call_at`` armed for the core's next deadline, a little late on
        purpose (``TIMER_SLACK``) so that timers due close together fire in one wake-up:
        under load thousands of transaction timers expire each second. The pure core
        keeps exact deadlines; the slack only decides when the shell asks."""
        deadline = self._core.next_deadline()
        if deadline is None:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._armed_for = None
            return
        armed = self._armed_for
        if armed is not None and deadline <= armed <= deadline + TIMER_SLACK:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._armed_for = deadline + TIMER_SLACK
        self._timer = self._loop.call_at(self._armed_for, self._on_deadline)

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
