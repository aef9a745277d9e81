"""The shell's voicemail glue (b2bua/runtime/voicemail.py) over a real message store and a
real SMTP server: the media host's sink starts and keeps (or discards) a message, the
report mails it and tells the switch the mailbox's counts, and a start recovers what a
crash left and announces every mailbox."""

from __future__ import annotations

import asyncio
import contextlib
import email
from collections.abc import Iterator
from email.message import Message as EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from b2bua.events import Input, MailboxCounts
from b2bua.runtime.voicemail import VoicemailService
from b2bua.voicemail.settings import Mailbox, SmtpSettings, VoicemailSettings
from media.commands import MediaSessionId, MessageRecorded, MessageStop, TakeMessage
from media.wav import WavWriter, read_wav
from tests.support.processes import free_port

WALL = 1_795_421_803.125


def mailbox(number: str, email_address: str | None = None) -> Mailbox:
    return Mailbox(
        number=number,
        greeting=None,
        email=email_address,
        pin=None,
        max_message_length=60.0,
        min_message_length=1.0,
        max_messages=10,
        silence_timeout=None,
    )


def take(box: str = "101") -> TakeMessage:
    return TakeMessage(
        session_id=MediaSessionId("call-1"),
        remote=("127.0.0.1", 4000),
        payload_type=0,
        event_payload_type=101,
        greeting=None,
        mailbox=box,
        caller="5551234",
        caller_name="Customer",
        called="5550200",
        group="shop",
        received_at=WALL,
        max_length=60.0,
        min_length=1.0,
        silence_timeout=None,
    )


def write(path: str, seconds: float) -> None:
    """What the media host does with the path begin() gave: a WAV, appended, closed."""
    with open(path, "wb") as stream:
        writer = WavWriter(stream)
        writer.append(b"\x10\x00" * int(8000 * seconds))
        writer.close()


def crash_during(path: str) -> None:
    """The host died while recording: 3 s appended, the header sizes never fixed."""
    with open(path, "wb") as stream:
        WavWriter(stream).append(b"\x10\x00" * 8000 * 3)


class Inbox:
    def __init__(self) -> None:
        self.mails: list[EmailMessage] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802
        self.mails.append(email.message_from_bytes(envelope.content))  # type: ignore[attr-defined]
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


async def test_a_kept_message_is_mailed_and_lights_the_lamp(
    tmp_path: Path, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    fed: list[Input] = []
    settings = VoicemailSettings(
        smtp=SmtpSettings.model_validate(
            {"host": "127.0.0.1", "port": port, "from": "vm@shop.example"}
        )
    )
    boxes = {"101": mailbox("101", "mary@shop.example"), "102": mailbox("102")}
    service = await VoicemailService.start(tmp_path, settings, boxes, fed.append)
    try:
        service.announce()
        assert fed == [
            MailboxCounts(mailbox="101", new=0, old=0),
            MailboxCounts(mailbox="102", new=0, old=0),
        ]
        fed.clear()
        loop = asyncio.get_running_loop()
        path = await loop.run_in_executor(None, service.begin, take())
        write(path, 2.0)
        kept = await loop.run_in_executor(
            None, service.finish, take(), path, 2.0, MessageStop.HANGUP
        )
        assert kept is not None
        service.recorded(
            MessageRecorded(
                session_id=MediaSessionId("call-1"),
                mailbox="101",
                reason=MessageStop.HANGUP,
                duration=2.0,
                message_id=kept,
            )
        )
        assert fed == [MailboxCounts(mailbox="101", new=1, old=0)]
        assert service.mailer is not None
        await asyncio.wait_for(service.mailer.join(), 10)
        [mail] = inbox.mails
        assert mail["To"] == "mary@shop.example"
        [attachment] = [part for part in mail.walk() if part.get_filename()]
        stored = service.store.wav_path("101", kept).read_bytes()
        assert attachment.get_payload(decode=True) == stored
        assert read_wav(stored).duration == 2.0
    finally:
        await service.close()


async def test_too_short_or_unrecorded_is_discarded_and_nothing_is_announced(
    tmp_path: Path,
) -> None:
    fed: list[Input] = []
    service = await VoicemailService.start(
        tmp_path, VoicemailSettings(), {"101": mailbox("101")}, fed.append
    )
    try:
        loop = asyncio.get_running_loop()
        for seconds, reason in ((0.4, MessageStop.HANGUP), (0.0, MessageStop.NOT_RECORDED)):
            path = await loop.run_in_executor(None, service.begin, take())
            write(path, seconds)
            assert (
                await loop.run_in_executor(None, service.finish, take(), path, seconds, reason)
                is None
            )
            assert not await loop.run_in_executor(None, Path(path).exists)
        service.recorded(
            MessageRecorded(
                session_id=MediaSessionId("call-1"),
                mailbox="101",
                reason=MessageStop.NOT_RECORDED,
                duration=0.0,
                message_id=None,
            )
        )
        assert fed == []
        assert service.store.counts("101") == (0, 0)
        assert sorted(p.name for p in (tmp_path / "voicemail" / "101").iterdir()) == []
    finally:
        await service.close()


async def test_a_start_recovers_a_recording_cut_by_a_crash(tmp_path: Path) -> None:
    boxes = {"101": mailbox("101")}
    first = await VoicemailService.start(tmp_path, VoicemailSettings(), boxes, lambda _: None)
    loop = asyncio.get_running_loop()
    path = await loop.run_in_executor(None, first.begin, take())
    await loop.run_in_executor(None, crash_during, path)
    with contextlib.suppress(Exception):
        await first.close()
    fed: list[Input] = []
    again = await VoicemailService.start(tmp_path, VoicemailSettings(), boxes, fed.append)
    try:
        again.announce()
        assert fed == [MailboxCounts(mailbox="101", new=1, old=0)]
        [message] = again.store.list("101")
        assert (message.caller_number, message.hunt_group) == ("5551234", "shop")
        assert (
            read_wav(again.store.wav_path("101", message.message_id).read_bytes()).duration == 3.0
        )
        assert (tmp_path / "prompts").is_dir()
    finally:
        await again.close()
