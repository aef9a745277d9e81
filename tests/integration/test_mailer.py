"""Voicemail e-mail against a real SMTP server (aiosmtpd on 127.0.0.1): the mail arrives
with the stored WAV attached byte for byte; a server that refuses, is down, stalls or wants a
login is retried, logged and never raised; STARTTLS with a certificate of the test's own."""

from __future__ import annotations

import asyncio
import email
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, timedelta, timezone
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from structlog.testing import capture_logs

from b2bua.runtime.mailer import Mailer, MessageMail, compose
from b2bua.runtime.mailstore import Message, MessageInfo, MessageStore, new_message_id
from b2bua.voicemail.settings import SmtpSettings
from media.wav import WavWriter

T0 = 1_795_421_803.0  # 2026-11-23T08:16:43Z


@dataclass
class Inbox:
    """An aiosmtpd handler: keeps what arrives, or answers ``reply`` to DATA."""

    reply: str | None = None
    stall: asyncio.Event | None = None
    mails: list[Envelope] = field(default_factory=list)
    attempts: int = 0
    logins: list[bool] = field(default_factory=list)
    data_seen: asyncio.Event = field(default_factory=asyncio.Event)

    # aiosmtpd calls its hooks by these names
    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        self.attempts += 1
        self.data_seen.set()
        self.logins.append(bool(session.authenticated))
        if self.stall is not None:
            await self.stall.wait()
        if self.reply is not None:
            return self.reply
        self.mails.append(envelope)
        return "250 OK"

    def parsed(self) -> list[EmailMessage]:
        out = []
        for envelope in self.mails:
            assert isinstance(envelope.original_content, bytes)
            mail = email.message_from_bytes(envelope.original_content, policy=policy.default)
            assert isinstance(mail, EmailMessage)
            out.append(mail)
        return out


async def serve(inbox: Inbox, **kw: Any) -> tuple[asyncio.Server, int]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(inbox, hostname="mx.test", loop=loop, **kw), "127.0.0.1", 0
    )
    return server, server.sockets[0].getsockname()[1]


@pytest.fixture
async def inbox() -> AsyncIterator[tuple[Inbox, int]]:
    box = Inbox()
    server, port = await serve(box)
    yield box, port
    server.close()
    await server.wait_closed()


def settings(port: int, **kw: Any) -> SmtpSettings:
    fields: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "from": "voicemail@shop.example",
        "timeout": 5.0,
        "attempts": 3,
        "retry_interval": 0.02,
    }
    fields.update(kw)
    return SmtpSettings.model_validate(fields)


@pytest.fixture
def stored(tmp_path: Path) -> Iterator[tuple[MessageStore, Message]]:
    """One message in a real store, written as the media host writes it."""
    store = MessageStore.open(tmp_path)
    store.recover(1.0)
    meta = MessageInfo(
        mailbox="0102",
        message_id=new_message_id(T0, "3fa9c1"),
        received_at=T0,
        caller_number="0101",
        caller_name="Jürgen Blumen",
        called_number="600",
        hunt_group="600",
    )
    part = store.begin(meta)
    with part.open("xb") as stream:
        writer = WavWriter(stream)
        writer.append(bytes(range(256)) * 125)  # 2 s
        writer.close()
    yield store, store.commit(meta, part)
    store.close()


def mail_of(store: MessageStore, message: Message) -> MessageMail:
    return MessageMail(
        to="mary@shop.example",
        message=message,
        wav_path=store.wav_path(message.mailbox, message.message_id),
    )


def events(logs: Sequence[Mapping[str, Any]]) -> list[str]:
    return [entry["event"] for entry in logs if entry["event"].startswith("voicemail_mail")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# The mail


async def test_the_mail_arrives_with_the_wav_attached_byte_for_byte(
    inbox: tuple[Inbox, int], stored: tuple[MessageStore, Message]
) -> None:
    box, port = inbox
    store, message = stored
    mailer = Mailer(settings(port), tz=UTC)
    with capture_logs() as logs:
        mailer.submit(mail_of(store, message))
        assert mailer.pending == 1  # submit returned before anything was sent
        await mailer.close()
    assert events(logs) == ["voicemail_mail_queued", "voicemail_mail_sent"]
    assert logs[-1]["mailbox"] == "0102"
    assert logs[-1]["message_id"] == message.message_id
    (envelope,) = box.mails
    assert envelope.mail_from == "voicemail@shop.example"
    assert envelope.rcpt_tos == ["mary@shop.example"]
    (mail,) = box.parsed()
    assert mail["From"] == "voicemail@shop.example"
    assert mail["To"] == "mary@shop.example"
    assert mail["Subject"] == "Voicemail from 0101 (Jürgen Blumen) for mailbox 0102"
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert "Caller:        0101 (Jürgen Blumen)" in text
    assert "Called number: 600" in text
    assert "Group:         600" in text
    assert "Received:      2026-11-23T08:16:43+00:00" in text
    assert "Duration:      0:02 (2.0 s)" in text
    (attachment,) = mail.iter_attachments()
    assert isinstance(attachment, EmailMessage)
    assert attachment.get_content_type() == "audio/wav"
    assert attachment.get_filename() == f"{message.message_id}.wav"
    assert attachment.get_content() == store.wav_path("0102", message.message_id).read_bytes()


def test_the_time_carries_its_offset_and_headers_take_no_control_characters(
    stored: tuple[MessageStore, Message],
) -> None:
    _, message = stored
    odd = Message(
        mailbox="0102",
        message_id=message.message_id,
        received_at=T0,
        caller_number=None,
        caller_name="Evil\r\nBcc: victim@example.com",
        called_number=None,
        hunt_group=None,
        duration=75.4,
        size=44,
    )
    mail = compose(
        "voicemail@shop.example",
        MessageMail(to="mary@shop.example", message=odd, wav_path=Path("unused")),
        b"RIFF",
        tz=timezone(timedelta(hours=1)),
    )
    assert mail["Subject"] == "Voicemail from Evil Bcc: victim@example.com for mailbox 0102"
    assert mail["Bcc"] is None
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert "Received:      2026-11-23T09:16:43+01:00" in text
    assert "Called number: unknown" in text
    assert "Group:         -" in text
    assert "Duration:      1:15 (75.4 s)" in text
    plain = compose(
        "voicemail@shop.example",
        MessageMail(
            to="m@x.example",
            message=Message(**{**vars_of(odd), "caller_name": None}),
            wav_path=Path("x"),
        ),
        b"",
    )
    assert plain["Subject"] == "Voicemail from an unknown caller for mailbox 0102"


def vars_of(message: Message) -> dict[str, Any]:
    return {name: getattr(message, name) for name in message.__dataclass_fields__}


# Failures: retried, logged, never raised


async def test_a_refusing_server_is_retried_then_the_failure_logged(
    stored: tuple[MessageStore, Message],
) -> None:
    store, message = stored
    box = Inbox(reply="550 5.7.1 relaying denied")
    server, port = await serve(box)
    try:
        mailer = Mailer(settings(port))
        with capture_logs() as logs:
            mailer.submit(mail_of(store, message))
            await mailer.join()
        await mailer.close()
    finally:
        server.close()
        await server.wait_closed()
    assert box.attempts == 3
    assert events(logs) == [
        "voicemail_mail_queued",
        "voicemail_mail_attempt_failed",
        "voicemail_mail_attempt_failed",
        "voicemail_mail_failed",
    ]
    failed = [entry for entry in logs if entry["event"] == "voicemail_mail_attempt_failed"]
    assert [entry["retry_in"] for entry in failed] == [0.02, 0.04]  # doubling
    final = logs[-1]
    assert final["log_level"] == "error"
    assert (final["mailbox"], final["message_id"]) == ("0102", message.message_id)
    assert "550" in final["error"]


async def test_a_server_that_is_down_is_retried_then_the_failure_logged(
    stored: tuple[MessageStore, Message],
) -> None:
    store, message = stored
    mailer = Mailer(settings(free_port(), attempts=2))
    with capture_logs() as logs:
        mailer.submit(mail_of(store, message))
        await mailer.join()
    await mailer.close()
    assert events(logs) == [
        "voicemail_mail_queued",
        "voicemail_mail_attempt_failed",
        "voicemail_mail_failed",
    ]
    assert "ConnectionRefusedError" in logs[-1]["error"]


async def test_a_deleted_recording_is_logged_and_not_retried(
    inbox: tuple[Inbox, int], stored: tuple[MessageStore, Message]
) -> None:
    box, port = inbox
    store, message = stored
    mail = mail_of(store, message)
    store.delete("0102", message.message_id)
    mailer = Mailer(settings(port))
    with capture_logs() as logs:
        mailer.submit(mail)
        await mailer.close()
    assert events(logs) == ["voicemail_mail_queued", "voicemail_mail_failed"]
    assert logs[-1]["reason"] == "recording unreadable"
    assert box.attempts == 0


async def test_close_gives_up_after_its_grace_and_says_so(
    stored: tuple[MessageStore, Message],
) -> None:
    store, message = stored
    box = Inbox(stall=asyncio.Event())
    server, port = await serve(box)
    try:
        mailer = Mailer(settings(port))
        with capture_logs() as logs:
            mailer.submit(mail_of(store, message))
            await box.data_seen.wait()
            await asyncio.wait_for(mailer.close(grace=0.1), 2.0)
            mailer.submit(mail_of(store, message))  # closed: logged, not raised
        assert mailer.pending == 0
        assert events(logs) == [
            "voicemail_mail_queued",
            "voicemail_mail_abandoned",
            "voicemail_mail_not_sent",
        ]
    finally:
        assert box.stall is not None
        box.stall.set()  # let the mailer's thread finish its session
        server.close()
        await server.wait_closed()


async def test_close_tries_a_mail_waiting_for_its_retry_at_once(
    stored: tuple[MessageStore, Message],
) -> None:
    store, message = stored
    box = Inbox(reply="451 4.3.0 try again later")
    server, port = await serve(box)
    try:
        mailer = Mailer(settings(port, attempts=5, retry_interval=3600))
        with capture_logs() as logs:
            mailer.submit(mail_of(store, message))
            await box.data_seen.wait()
            box.reply = None  # the server is back
            await asyncio.wait_for(mailer.close(grace=5.0), 5.0)
    finally:
        server.close()
        await server.wait_closed()
    assert box.attempts == 2
    assert len(box.mails) == 1
    assert events(logs)[-1] == "voicemail_mail_sent"


# Login and STARTTLS


def authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    good = isinstance(auth_data, LoginPassword) and auth_data == (b"mary", b"s3cret")
    return AuthResult(success=good, handled=False)  # not handled: aiosmtpd answers 535


@pytest.mark.parametrize(("password", "logged_in"), [("s3cret", True), ("wrong", False)])
async def test_login_without_tls(
    stored: tuple[MessageStore, Message], password: str, logged_in: bool
) -> None:
    store, message = stored
    box = Inbox()
    server, port = await serve(box, authenticator=authenticator, auth_require_tls=False)
    try:
        mailer = Mailer(settings(port, username="mary", password=password, attempts=2))
        with capture_logs() as logs:
            mailer.submit(mail_of(store, message))
            await mailer.close()
    finally:
        server.close()
        await server.wait_closed()
    if logged_in:
        assert box.logins == [True]
        assert events(logs)[-1] == "voicemail_mail_sent"
    else:
        assert box.attempts == 0
        assert events(logs)[-1] == "voicemail_mail_failed"
        assert "SMTPAuthenticationError" in logs[-1]["error"]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make the test server's certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_starttls_then_login(
    stored: tuple[MessageStore, Message], certificate: tuple[Path, Path]
) -> None:
    store, message = stored
    cert, key = certificate
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    box = Inbox()
    server, port = await serve(
        box, tls_context=server_context, require_starttls=True, authenticator=authenticator
    )
    try:
        client_context = ssl.create_default_context(cafile=str(cert))
        mailer = Mailer(
            settings(port, starttls=True, username="mary", password="s3cret"),
            tls_context=client_context,
        )
        with capture_logs() as logs:
            mailer.submit(mail_of(store, message))
            await mailer.close()
        assert events(logs)[-1] == "voicemail_mail_sent"
        assert box.logins == [True]
        # The system's CA store does not know the test's certificate: refused, logged.
        strict = Mailer(settings(port, starttls=True, attempts=1))
        with capture_logs() as logs:
            strict.submit(mail_of(store, message))
            await strict.close()
        assert events(logs)[-1] == "voicemail_mail_failed"
        assert "CERTIFICATE_VERIFY_FAILED" in logs[-1]["error"]
    finally:
        server.close()
        await server.wait_closed()
