"""The shell's side of voicemail: the message store, the mailer and the default greeting,
and the :class:`~media.recordings.RecordingSink` the media host records through.

The pure switch decides (which mailbox, record or not, when to hang up); this module
does the disk and network work around it:

* at start, the store is opened and recovered (a recording cut by a crash becomes a
  message or is removed), the default greeting is made, and the switch is told every
  mailbox's counts (:class:`~b2bua.events.MailboxCounts`), which light the lamps;
* :meth:`VoicemailService.begin` / :meth:`VoicemailService.finish` (the sink, called by
  the media host in its executor) start and keep or discard a message;
* :meth:`VoicemailService.recorded` (on the loop, for each
  :class:`~media.commands.MessageRecorded`) mails a kept message and tells the switch
  the mailbox's new counts; :meth:`VoicemailService.changed` does the same after the
  HTTP API read or deleted one.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

import structlog

from b2bua.events import Input, MailboxCounts
from b2bua.runtime.mailer import Mailer, MessageMail
from b2bua.runtime.mailstore import MessageInfo, MessageStore
from b2bua.voicemail.settings import Mailbox, VoicemailSettings
from media.commands import MessageRecorded, MessageStop, TakeMessage
from media.prompts import PromptLibrary, default_greeting
from media.recordings import is_worth_keeping

log = structlog.get_logger(__name__)

PROMPTS_DIRECTORY = "prompts"


class VoicemailService:
    """Voicemail's disk and mail work for one running switch (see the module docstring)."""

    def __init__(
        self,
        store: MessageStore,
        mailboxes: Mapping[str, Mailbox],
        feed: Callable[[Input], None],
        *,
        mailer: Mailer | None,
        prompts: PromptLibrary,
    ) -> None:
        self.store = store
        self.mailboxes = mailboxes
        self.mailer = mailer
        self.prompts = prompts
        self._feed = feed
        self._lock = threading.Lock()
        self._recording: dict[str, MessageInfo] = {}  # file path -> its message

    @classmethod
    async def start(
        cls,
        data_dir: Path,
        settings: VoicemailSettings,
        mailboxes: Mapping[str, Mailbox],
        feed: Callable[[Input], None],
    ) -> VoicemailService:
        """Open and recover the store and make the default greeting (in the executor)."""
        loop = asyncio.get_running_loop()

        def prepare() -> tuple[MessageStore, Path]:
            store = MessageStore.open(data_dir)
            store.recover(  # logs what it did
                lambda box: (
                    mailboxes[box].min_message_length
                    if box in mailboxes
                    else settings.min_message_length
                )
            )
            return store, default_greeting(data_dir / PROMPTS_DIRECTORY)

        store, greeting = await loop.run_in_executor(None, prepare)
        mailer = None if settings.smtp is None else Mailer(settings.smtp)
        service = cls(store, mailboxes, feed, mailer=mailer, prompts=PromptLibrary(str(greeting)))
        return service

    def announce(self) -> None:
        """Tell the switch every mailbox's counts (at start, once it is running)."""
        for mailbox in self.mailboxes:
            self.changed(mailbox)

    # -- the media host's sink (executor threads)

    def begin(self, command: TakeMessage) -> str:
        info = MessageInfo(
            mailbox=command.mailbox,
            message_id=self.store.new_id(command.received_at),
            received_at=command.received_at,
            caller_number=command.caller,
            caller_name=command.caller_name,
            called_number=command.called,
            hunt_group=command.group,
        )
        path = str(self.store.begin(info))
        with self._lock:
            self._recording[path] = info
        return path

    def finish(
        self, command: TakeMessage, path: str, duration: float, reason: MessageStop
    ) -> str | None:
        with self._lock:
            info = self._recording.pop(path, None)
        if info is None or not is_worth_keeping(command, duration, reason):
            self.store.discard(Path(path))
            return None
        return self.store.commit(info, Path(path)).message_id

    # -- on the loop

    def recorded(self, report: MessageRecorded) -> None:
        """A recording ended: mail it when it was kept and the mailbox has an address, and
        tell the switch the mailbox's counts."""
        log.info(
            "voicemail_recorded",
            mailbox=report.mailbox,
            reason=report.reason.value,
            duration=round(report.duration, 2),
            message_id=report.message_id,
        )
        if report.message_id is None:
            return
        mailbox = self.mailboxes.get(report.mailbox)
        message = self.store.get(report.mailbox, report.message_id)
        if self.mailer is not None and mailbox is not None and mailbox.email and message:
            wav = self.store.wav_path(report.mailbox, report.message_id)
            self.mailer.submit(MessageMail(to=mailbox.email, message=message, wav_path=wav))
        self.changed(report.mailbox)

    def changed(self, mailbox: str) -> None:
        """``mailbox``'s messages changed (kept, read, deleted): the lamp follows."""
        new, old = self.store.counts(mailbox)
        self._feed(MailboxCounts(mailbox=mailbox, new=new, old=old))

    async def close(self) -> None:
        """After the media host closed (its last recordings are finished): send what can
        be sent, then close the store."""
        if self.mailer is not None:
            await self.mailer.close()
        await asyncio.get_running_loop().run_in_executor(None, self.store.close)
