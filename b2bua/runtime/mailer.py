"""E-mail of voicemail messages: :meth:`Mailer.submit` returns at once, a task per mail sends
it over SMTP with the WAV attached, trying ``attempts`` times ``retry_interval`` apart
(doubling); a failure is logged with the mailbox and message id, never raised.

The SMTP client is the stdlib's :mod:`smtplib`, run on one thread of the mailer's own
(one session at a time). aiosmtplib (PyPI, maintained, 5.1.3 of September 2026) would
save that thread, but a mail is sent once per voicemail message, not per packet: a thread
costs nothing here, while a fourth runtime dependency costs every install and upgrade.
smtplib does STARTTLS (verified with the system's CA store unless a context is given),
AUTH PLAIN/LOGIN/CRAM-MD5, and times out every blocking call after ``timeout`` seconds,
which bounds what :meth:`Mailer.close` can leave behind in its thread.

The mail itself is built by :func:`compose` with :class:`email.message.EmailMessage`:
From the configured sender, To the mailbox's address, a Subject naming the caller and the
mailbox, a plain-text body (caller, called number, group, time in ISO 8601 with its offset,
duration) and the message as ``audio/wav``, named ``<id>.wav``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import smtplib
import ssl
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Final

import structlog
from structlog.typing import FilteringBoundLogger

from b2bua.runtime.mailstore import Message
from b2bua.voicemail.settings import SmtpSettings

log = structlog.get_logger(__name__)

CLOSE_GRACE: Final = 10.0  # seconds close() waits for mails still queued
#: Characters that must not reach a header (a display name is the caller's to choose).
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageMail:
    """One message to mail: the mailbox's address, its metadata and its file."""

    to: str
    message: Message
    wav_path: Path


def compose(sender: str, mail: MessageMail, wav: bytes, tz: tzinfo | None = None) -> EmailMessage:
    """The e-mail for ``mail`` with ``wav`` attached; times in ``tz`` (None: the host's)."""
    message = mail.message
    received = datetime.fromtimestamp(message.received_at, tz=UTC).astimezone(tz)
    caller = _caller(message)
    email = EmailMessage(policy=policy.SMTP)
    email["From"] = sender
    email["To"] = mail.to
    email["Subject"] = f"Voicemail from {caller} for mailbox {message.mailbox}"
    email["Date"] = format_datetime(received)
    email["Message-ID"] = make_msgid("voicemail", domain=sender.rpartition("@")[2] or None)
    minutes, seconds = divmod(round(message.duration), 60)
    email.set_content(
        "\n".join(
            [
                f"A new message in mailbox {message.mailbox}.",
                "",
                f"Caller:        {caller}",
                f"Called number: {_clean(message.called_number) or 'unknown'}",
                f"Group:         {_clean(message.hunt_group) or '-'}",
                f"Received:      {received.isoformat(timespec='seconds')}",
                f"Duration:      {minutes}:{seconds:02d} ({message.duration:.1f} s)",
                f"Message id:    {message.message_id}",
                "",
                "The recording is attached.",
            ]
        )
        + "\n"
    )
    email.add_attachment(wav, maintype="audio", subtype="wav", filename=f"{message.message_id}.wav")
    return email


def _clean(text: str | None) -> str:
    return "" if text is None else _CONTROL.sub(" ", text).strip()


def _caller(message: Message) -> str:
    number, name = _clean(message.caller_number), _clean(message.caller_name)
    if number and name:
        return f"{number} ({name})"
    return number or name or "an unknown caller"


class Mailer:
    """Sends message e-mails in the background. Create and call from the event loop.

    ``tls_context`` verifies the server on STARTTLS (default: the system's CA store);
    ``tz`` is the time zone of the times in the mail (default: the host's)."""

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        tls_context: ssl.SSLContext | None = None,
        tz: tzinfo | None = None,
    ) -> None:
        self.settings = settings
        self._tls_context = tls_context
        self._tz = tz
        self._tasks: dict[asyncio.Task[None], MessageMail] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._closing: asyncio.Event | None = None
        self._closed = False

    @property
    def pending(self) -> int:
        """Mails not yet sent nor given up."""
        return len(self._tasks)

    def submit(self, mail: MessageMail) -> None:
        """Queue ``mail``; returns at once and never raises (a closed mailer logs it)."""
        bound = log.bind(mailbox=mail.message.mailbox, message_id=mail.message.message_id)
        if self._closed:
            bound.error("voicemail_mail_not_sent", reason="the mailer is closed")
            return
        if self._closing is None:
            self._closing = asyncio.Event()
        task = asyncio.get_running_loop().create_task(self._deliver(mail, bound))
        self._tasks[task] = mail
        task.add_done_callback(self._tasks.pop)
        bound.info("voicemail_mail_queued", to=mail.to)

    async def join(self) -> None:
        """Wait until every mail submitted so far is sent or given up (no time limit)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def close(self, grace: float = CLOSE_GRACE) -> None:
        """Stop taking mails; each mail still pending gets one more attempt, at once
        (none waits for its retry interval); wait up to ``grace`` seconds for them, then
        give the rest up (logged). Idempotent."""
        self._closed = True
        if self._closing is not None:
            self._closing.set()
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in late:
                mail = self._tasks.get(task)
                task.cancel()
                if mail is not None:
                    log.error(
                        "voicemail_mail_abandoned",
                        mailbox=mail.message.mailbox,
                        message_id=mail.message.message_id,
                        grace=grace,
                    )
            if late:
                await asyncio.wait(late)
        if self._executor is not None:
            # A send still running stops at its own socket timeout; nothing waits for it.
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def _deliver(self, mail: MessageMail, bound: FilteringBoundLogger) -> None:
        loop = asyncio.get_running_loop()
        settings = self.settings
        try:
            data = await loop.run_in_executor(self._pool(), self._render, mail)
        except Exception as exc:  # the file went (deleted meanwhile) or cannot be read
            bound.error("voicemail_mail_failed", reason="recording unreadable", error=repr(exc))
            return
        interval = settings.retry_interval
        for attempt in range(1, settings.attempts + 1):
            # Once close() is called, each mail has one more attempt, made at once.
            last_chance = self._closed
            try:
                await loop.run_in_executor(self._pool(), self._send, mail.to, data)
            except Exception as exc:  # every SMTP or network error: tried again
                last = exc
            else:
                bound.info("voicemail_mail_sent", to=mail.to, attempt=attempt)
                return
            if attempt == settings.attempts or last_chance:
                break
            bound.warning(
                "voicemail_mail_attempt_failed",
                attempt=attempt,
                attempts=settings.attempts,
                error=repr(last),
                retry_in=interval,
            )
            await self._pause(interval)
            interval *= 2
        bound.error(
            "voicemail_mail_failed",
            to=mail.to,
            attempts=attempt,
            error=repr(last),
        )

    async def _pause(self, seconds: float) -> None:
        """Sleep, cut short by close()."""
        assert self._closing is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="b2bua-mailer")
        return self._executor

    def _render(self, mail: MessageMail) -> bytes:
        """In the mailer's thread: read the WAV, build the mail, serialise it once."""
        email = compose(self.settings.sender, mail, mail.wav_path.read_bytes(), self._tz)
        return email.as_bytes()

    def _send(self, to: str, data: bytes) -> None:
        """In the mailer's thread: one SMTP session for one mail."""
        settings = self.settings
        with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout) as smtp:
            smtp.ehlo()
            if settings.starttls:
                context = self._tls_context or ssl.create_default_context()
                smtp.starttls(context=context)
                smtp.ehlo()
            if settings.username is not None and settings.password is not None:
                smtp.login(settings.username, settings.password)
            smtp.sendmail(settings.sender, [to], data)
