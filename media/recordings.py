"""Where voicemail recordings go: the :class:`RecordingSink` the media host writes through,
and the blocking file work the host runs in its loop's default executor.

A :class:`~media.commands.TakeMessage` that records goes through the sink twice:

1. :meth:`RecordingSink.begin` (executor), as the greeting starts: the sink prepares the
   message (the runtime's MessageStore writes its sidecar) and answers the path of the
   WAV file to write. :func:`open_recording` then creates that file with its header.
2. While the caller speaks, the host appends PCM about once a second
   (:meth:`RecordingFile.append`, on the loop: a ``write`` to the page cache, never an
   ``fsync``).
3. :meth:`RecordingSink.finish` (executor, through :func:`finish_recording`), once the
   recording stopped and the file is complete and closed: the sink keeps the message and
   answers its id, or discards the file and answers ``None``.

A sink that raises in :meth:`~RecordingSink.begin` does not stop the voicemail: the caller
is recorded to nowhere and :class:`~media.commands.MessageRecorded` says ``message_id``
``None``, as it does when the host has no sink at all.

Nothing here touches the event loop; every function but :func:`is_worth_keeping` blocks.
"""

from __future__ import annotations

from typing import BinaryIO, Final, Protocol

import structlog

from media.commands import MessageStop, TakeMessage
from media.wav import RATE, SAMPLE_WIDTH, WavWriter

__all__ = [
    "RecordingFile",
    "RecordingSink",
    "finish_recording",
    "is_worth_keeping",
    "open_recording",
]

log: Final = structlog.get_logger(__name__)

_BYTES_PER_SECOND: Final = RATE * SAMPLE_WIDTH


class RecordingSink(Protocol):
    """Keeps voicemail messages (the runtime implements it over its MessageStore).

    Both methods block (disk, fsync, the metadata database): the host runs them in its
    loop's default executor, never on the loop, one call at a time per message.
    """

    def begin(self, command: TakeMessage) -> str:
        """Prepare the message of ``command`` and return the path of the WAV file to
        record into; the host creates (or truncates) it. Raise to refuse the message."""
        ...

    def finish(
        self, command: TakeMessage, path: str, duration: float, reason: MessageStop
    ) -> str | None:
        """The recording at ``path`` is complete (header sizes set, file closed):
        ``duration`` seconds of audio, ended for ``reason``. Keep it and return the
        message's id, or delete it and return ``None`` when it is not worth keeping
        (:func:`is_worth_keeping`: ``NOT_RECORDED``, or shorter than ``command.min_length``).
        """
        ...


def is_worth_keeping(command: TakeMessage, duration: float, reason: MessageStop) -> bool:
    """Whether a finished recording becomes a message: some audio, at least the mailbox's
    minimum length, and not ``NOT_RECORDED`` (the caller left during the greeting)."""
    return (
        reason is not MessageStop.NOT_RECORDED and duration > 0 and duration >= command.min_length
    )


class RecordingFile:
    """A WAV file being recorded: the open stream, its :class:`~media.wav.WavWriter` and
    the path. The first failed write is logged and ends the writing: the file keeps what
    was written before it."""

    __slots__ = ("_stream", "_writer", "has_failed", "path")

    def __init__(self, path: str, stream: BinaryIO) -> None:
        self.path = path
        self._stream = stream
        self._writer = WavWriter(stream)
        self.has_failed = False

    @property
    def duration(self) -> float:
        """Seconds of audio written so far."""
        return self._writer.data_bytes / _BYTES_PER_SECOND

    def append(self, pcm: bytes) -> None:
        """Append 16-bit PCM and hand it to the kernel (no fsync): about once a second."""
        if not pcm or self.has_failed:
            return
        try:
            self._writer.append(pcm)
            self._stream.flush()
        except (OSError, ValueError) as error:
            self.has_failed = True
            log.error("voicemail_write_failed", path=self.path, error=str(error))

    def close(self) -> None:
        """Set the header's sizes and close the file."""
        try:
            if not self.has_failed:
                self._writer.close()
        except OSError as error:
            log.error("voicemail_write_failed", path=self.path, error=str(error))
        finally:
            try:
                self._stream.close()
            except OSError as error:
                log.error("voicemail_write_failed", path=self.path, error=str(error))


def open_recording(sink: RecordingSink, command: TakeMessage) -> RecordingFile:
    """:meth:`RecordingSink.begin`, then create the file with an empty WAV header. If the
    file cannot be created, the sink is told to discard it (``NOT_RECORDED``) and the
    error is raised."""
    path = sink.begin(command)
    try:
        stream = open(path, "wb")  # noqa: SIM115 - closed by RecordingFile.close
    except OSError:
        sink.finish(command, path, 0.0, MessageStop.NOT_RECORDED)
        raise
    try:
        return RecordingFile(path, stream)
    except BaseException:
        stream.close()
        sink.finish(command, path, 0.0, MessageStop.NOT_RECORDED)
        raise


def finish_recording(
    sink: RecordingSink,
    command: TakeMessage,
    recording: RecordingFile,
    rest: bytes,
    reason: MessageStop,
) -> tuple[str | None, float]:
    """Append the last PCM, close the file and let the sink keep or discard it: the
    message id (``None``: not kept) and the seconds of audio in the file."""
    if reason is not MessageStop.NOT_RECORDED:
        recording.append(rest)
    recording.close()
    duration = 0.0 if reason is MessageStop.NOT_RECORDED else recording.duration
    try:
        return sink.finish(command, recording.path, duration, reason), duration
    except Exception:  # the sink's own failure: the message is lost, the host goes on
        log.exception(
            "voicemail_finish_failed",
            session_id=command.session_id,
            mailbox=command.mailbox,
            path=recording.path,
        )
        return None, duration
