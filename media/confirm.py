"""Asking an answered callee to confirm before the caller is bridged (confirm-call).

A hunt member reached on a mobile may be answered by the mobile's own voicemail. With
confirmation, the switch does not bridge on the 200: the callee hears a prompt ("press 1
to take this call") and a beep, over and over, from side B's RTP port, and every key it
presses (RFC 4733) is reported to the switch as :class:`~media.commands.DigitPressed`.
The switch decides what a key means, and how long to wait; this class only plays and
listens, on the event loop, until :meth:`Confirmation.stop`.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Callable, Sequence
from typing import Final

import structlog

from media.commands import Address, ConfirmAnswer, DigitPressed, MediaReport
from media.dtmf import DigitDetector, DtmfError, parse_event
from media.player import Clip, PromptPlayer, silence
from media.rtp import RtpError, parse_header

log: Final = structlog.get_logger(__name__)

#: Silence between two plays of the prompt, in seconds.
REPEAT_PAUSE: Final = 1.5
#: Plays of the prompt in one stream: more than any confirm_timeout lets through.
REPEATS: Final = 60
#: The pause, as a clip shared by every confirmation (encoded once per payload type).
_PAUSE: Final = Clip(silence(REPEAT_PAUSE))
_MAX_DATAGRAM: Final = 2048


class Confirmation:
    """The prompt and the key listener on one session's side B.

    ``sock`` is side B's RTP socket (the caller keeps it and re-watches it for the relay
    after :meth:`stop`); ``clips`` the prompt and beep already encoded, or ``None`` until
    :meth:`play` gets them; ``report`` takes :class:`DigitPressed`."""

    __slots__ = (
        "_clips",
        "_detector",
        "_is_v6",
        "_loop",
        "_player",
        "_report",
        "_rng",
        "_sock",
        "_timer",
        "command",
        "is_stopped",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        command: ConfirmAnswer,
        sock: socket.socket,
        *,
        report: Callable[[MediaReport], None],
        rng: random.Random,
        is_v6: bool,
    ) -> None:
        self._loop = loop
        self.command = command
        self._sock = sock
        self._report = report
        self._rng = rng
        self._is_v6 = is_v6
        self._detector = DigitDetector()
        self._clips: Sequence[Clip] = ()
        self._player: PromptPlayer | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.is_stopped = False
        loop.add_reader(sock.fileno(), self._on_readable)

    @property
    def remote(self) -> Address:
        return self.command.remote

    def play(self, clips: Sequence[Clip]) -> None:
        """Start the prompt (``clips`` in order), repeated until :meth:`stop`. The plays
        are one RTP stream (one SSRC, sequence numbers and timestamps running on across
        the pauses), as a jitter buffer expects of one source."""
        if self.is_stopped:
            return
        self._clips = (*clips, _PAUSE) * REPEATS
        at = self._loop.time()
        self._player = PromptPlayer(
            self._clips, payload_type=self.command.payload_type, rng=self._rng, now=at
        )
        self._timer = self._loop.call_at(at, self._on_play)

    def stop(self) -> None:
        """Stop playing and listening (idempotent); side B's socket stays open."""
        if self.is_stopped:
            return
        self.is_stopped = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._player = None
        self._loop.remove_reader(self._sock.fileno())

    def _on_play(self) -> None:
        self._timer = None
        player = self._player
        if player is None or self.is_stopped:
            return
        now = self._loop.time()
        sendto = self._sock.sendto
        for packet in player.frames(now):
            try:  # noqa: SIM105
                sendto(packet, self.command.remote)
            except OSError:
                pass
        due = player.next_due()
        if due is not None:
            self._timer = self._loop.call_at(due, self._on_play)

    def _on_readable(self) -> None:
        try:
            data, _ = self._sock.recvfrom(_MAX_DATAGRAM)
        except OSError:
            return
        event_type = self.command.event_payload_type
        if event_type is None or self.is_stopped:
            return
        try:
            header = parse_header(data)
            if header.payload_type != event_type:
                return
            event = parse_event(header.payload(data))
        except (RtpError, DtmfError):
            return
        digit = self._detector.feed(header.timestamp, event)
        if digit is not None:
            log.info("confirm_digit", session_id=self.command.session_id, digit=digit)
            self._report(DigitPressed(session_id=self.command.session_id, digit=digit))
