"""Voicemail messages on disk: one directory per mailbox, one WAV file per message, and
their metadata in an SQLite file beside them, written by one thread.

Layout, under ``<data_dir>/voicemail/``::

    messages.sqlite3          the metadata (table voicemail_messages), WAL mode
    <mailbox>/<id>.wav        a message: 8 kHz mono 16-bit PCM, header sizes final
    <mailbox>/.<id>.wav.part  a recording in progress (media.wav.WavWriter appends to it)
    <mailbox>/.<id>.json      its sidecar: who called, written and fsynced when it starts

A message id is the wall-clock time it was received, in milliseconds (13 digits), a dash
and 6 random hex digits: ``1795421803123-3fa9c1``. Ids sort as the messages came, name
their file, and need no counter kept anywhere.

Life of a message: :meth:`MessageStore.begin` writes the sidecar and names the ``.part``
file; the media host appends audio to it; :meth:`MessageStore.commit` fixes the header,
fsyncs, renames it to ``<id>.wav``, fsyncs the directory and records the metadata (the
sidecar goes once the row is committed); :meth:`MessageStore.discard` drops a recording
too short to keep. After a crash, :meth:`MessageStore.recover` makes every ``.part`` long
enough into a message (its sidecar says who called), deletes the shorter ones, indexes a
``.wav`` that has no row and forgets a row that has no file. It never deletes a message.

Threads (ARCHITECTURE.md, "Side effects are outputs"): the metadata is kept in memory, so
:meth:`~MessageStore.list`, :meth:`~MessageStore.get`, :meth:`~MessageStore.counts` and
:meth:`~MessageStore.mark_read` answer at once on the event loop, and their SQLite writes
go on a queue that one writer thread commits in batches (the pattern of
:class:`b2bua.runtime.store.BindingStore`). The methods that touch files (``begin``,
``commit``, ``discard``, ``delete``, ``recover``, ``close``) block on disk: run them in an
executor. Every method may be called from any thread.

Why a file of its own rather than migration 4 of the binding store: the mailbox folder is
then the whole of voicemail (copy ``voicemail/`` and the messages move with their
metadata), and the binding store's schema stays as its tests pin it. Still one writer
thread per database file.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import json
import os
import queue
import re
import secrets
import sqlite3
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Final, TypeAlias

import structlog

from b2bua.registrar.settings import EXTENSION_NUMBER_RE
from media.wav import (
    CHANNELS,
    HEADER_SIZE,
    RATE,
    SAMPLE_WIDTH,
    WavError,
    data_bytes_of,
    header_for,
    repair_wav,
)

log = structlog.get_logger(__name__)

DIRECTORY: Final = "voicemail"
FILE_NAME: Final = "messages.sqlite3"
#: A mailbox is an extension number: 1 to 15 digits, so it never names another path.
MAILBOX_RE: Final = EXTENSION_NUMBER_RE
#: Wall-clock milliseconds (13 digits: until the year 2286) and 24 random bits.
MESSAGE_ID_RE: Final = re.compile(r"^[0-9]{13}-[0-9a-f]{6}$")
PART_SUFFIX: Final = ".wav.part"
SIDECAR_SUFFIX: Final = ".json"

#: Statements of each schema version of messages.sqlite3, applied in order in one
#: transaction. Never edit a released version: add the next one.
MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {
    1: (
        """CREATE TABLE voicemail_messages (
            mailbox TEXT NOT NULL, message_id TEXT NOT NULL,
            caller_number TEXT, caller_name TEXT, called_number TEXT, hunt_group TEXT,
            received_at REAL NOT NULL, duration REAL NOT NULL, size INTEGER NOT NULL,
            is_read INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (mailbox, message_id)
        ) WITHOUT ROWID""",
    ),
}
SCHEMA_VERSION: Final = max(MIGRATIONS)
MAX_BATCH: Final = 200
GATHER_TIME: Final = 0.02
WRITE_ATTEMPTS: Final = 5
BUSY_TIMEOUT: Final = 1.0

_RATE_FIELD: Final = struct.Struct("<I")  # nSamplesPerSec, at offset 24 of the header
_RATE_OFFSET: Final = 24
BYTES_PER_SECOND: Final = RATE * CHANNELS * SAMPLE_WIDTH  # of what the media host records


class MessageStoreError(Exception):
    """The message store cannot be opened or used; the message names the file."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageInfo:
    """What is known when a recording starts; kept in the sidecar until the message's row
    is committed. ``received_at`` is wall-clock seconds; ``hunt_group`` is the group whose
    overflow reached the mailbox, ``None`` for a call to the extension."""

    mailbox: str
    message_id: str
    received_at: float
    caller_number: str | None = None
    caller_name: str | None = None
    called_number: str | None = None
    hunt_group: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """A stored message: its :class:`MessageInfo` plus the audio's ``duration`` (seconds),
    the file's ``size`` (bytes) and whether it was listened to."""

    mailbox: str
    message_id: str
    received_at: float
    caller_number: str | None
    caller_name: str | None
    called_number: str | None
    hunt_group: str | None
    duration: float
    size: int
    is_read: bool = False


@dataclass(frozen=True, slots=True)
class Recovery:
    """What :meth:`MessageStore.recover` did."""

    recovered: tuple[Message, ...]  # recordings (.part) made into messages
    discarded: tuple[Path, ...]  # recordings shorter than the minimum, deleted
    indexed: tuple[Message, ...]  # .wav files that had no row
    forgotten: tuple[tuple[str, str], ...]  # (mailbox, id) rows whose file was gone
    messages: int  # messages in the store afterwards


def new_message_id(wall_now: float, token: str | None = None) -> str:
    """A message id for a message received at ``wall_now`` (wall-clock seconds); ``token``
    (6 hex digits) replaces the random part, for tests."""
    message_id = f"{int(wall_now * 1000):013d}-{secrets.token_hex(3) if token is None else token}"
    if MESSAGE_ID_RE.fullmatch(message_id) is None:
        raise ValueError(f"not a message id: {message_id!r}")
    return message_id


def received_at_of(message_id: str) -> float:
    """The wall-clock second an id was made for (ms precision)."""
    return int(message_id.split("-", 1)[0]) / 1000


def check_mailbox(mailbox: str) -> str:
    if MAILBOX_RE.fullmatch(mailbox) is None:
        raise ValueError(f"not a mailbox number (1 to 15 digits): {mailbox!r:.40}")
    return mailbox


def check_message_id(message_id: str) -> str:
    if MESSAGE_ID_RE.fullmatch(message_id) is None:
        raise ValueError(f"not a message id: {message_id!r:.40}")
    return message_id


class MessageStore:
    """Voicemail messages of every mailbox under ``<data_dir>/voicemail``. Open with
    :meth:`open`, then call :meth:`recover` once before anything else."""

    def __init__(self, root: Path, db: _Database) -> None:
        self.root = root
        self._db = db
        self._lock = threading.Lock()
        self._boxes: dict[str, dict[str, Message]] | None = None

    @classmethod
    def open(
        cls,
        data_dir: Path,
        *,
        busy_timeout: float = BUSY_TIMEOUT,
        write_attempts: int = WRITE_ATTEMPTS,
    ) -> MessageStore:
        """Create ``<data_dir>/voicemail`` if needed and open (creating or migrating) its
        metadata file. Blocking. MessageStoreError when SQLite cannot use the file."""
        root = data_dir / DIRECTORY
        root.mkdir(parents=True, exist_ok=True)
        return cls(root, _Database.open(root / FILE_NAME, busy_timeout, write_attempts))

    # -- Paths

    def mailbox_dir(self, mailbox: str) -> Path:
        return self.root / check_mailbox(mailbox)

    def recording_path(self, mailbox: str, message_id: str) -> Path:
        """Where the media host writes the recording in progress (WavWriter, appending)."""
        return self.mailbox_dir(mailbox) / f".{check_message_id(message_id)}{PART_SUFFIX}"

    def sidecar_path(self, mailbox: str, message_id: str) -> Path:
        return self.mailbox_dir(mailbox) / f".{check_message_id(message_id)}{SIDECAR_SUFFIX}"

    def wav_path(self, mailbox: str, message_id: str) -> Path:
        """The file of a committed message (whether or not it exists)."""
        return self.mailbox_dir(mailbox) / f"{check_message_id(message_id)}.wav"

    def new_id(self, wall_now: float) -> str:
        """A message id for ``wall_now`` (wall-clock seconds) that no stored message has.
        Memory only: fine on the event loop."""
        with self._lock:
            taken = {mid for box in (self._boxes or {}).values() for mid in box}
        while True:
            message_id = new_message_id(wall_now)
            if message_id not in taken:
                return message_id

    # -- Recording (blocking: run in an executor)

    def begin(self, info: MessageInfo) -> Path:
        """Write the sidecar of a recording about to start (fsynced, with its directory) and
        return :meth:`recording_path`, where the media host writes the audio. Blocking."""
        directory = self.mailbox_dir(info.mailbox)
        if not directory.is_dir():
            directory.mkdir(parents=True, exist_ok=True)
            _fsync_dir(self.root)
        sidecar = self.sidecar_path(info.mailbox, info.message_id)
        with sidecar.open("xb") as stream:  # "x": an id is used once
            stream.write(json.dumps(dataclasses.asdict(info), sort_keys=True).encode())
            _sync(stream)
        _fsync_dir(directory)
        return self.recording_path(info.mailbox, info.message_id)

    def commit(self, info: MessageInfo, part_path: Path) -> Message:
        """Make the finished recording at ``part_path`` (:meth:`recording_path` of ``info``)
        a message: header sizes fixed, fsync, rename to ``<id>.wav``, fsync the directory,
        then the metadata queued for the writer thread (the sidecar is deleted once it is
        committed). Blocking. FileExistsError if the id already has a message."""
        self._check_loaded()
        expected = self.recording_path(info.mailbox, info.message_id)
        if Path(part_path) != expected:
            raise ValueError(f"{part_path} is not the recording of {info.message_id}: {expected}")
        final = self.wav_path(info.mailbox, info.message_id)
        if final.exists():
            raise FileExistsError(f"{final} exists: message ids are used once")
        message = self._finish(info, expected, final, is_read=False)
        self._remember(message, sidecar=self.sidecar_path(info.mailbox, info.message_id))
        log.info(
            "voicemail_message_stored",
            mailbox=info.mailbox,
            message_id=info.message_id,
            duration=round(message.duration, 3),
        )
        return message

    def discard(self, part_path: Path) -> None:
        """Delete a recording that will not be a message (too short), and its sidecar."""
        part = Path(part_path)
        mailbox, message_id = self._parse_part(part)
        for path in (part, self.sidecar_path(mailbox, message_id)):
            path.unlink(missing_ok=True)
        log.info("voicemail_recording_discarded", mailbox=mailbox, message_id=message_id)

    # -- Messages

    def list(self, mailbox: str) -> builtins.list[Message]:
        """The mailbox's messages, oldest first. Memory only."""
        check_mailbox(mailbox)
        with self._lock:
            box = self._loaded().get(mailbox, {})
            return [box[mid] for mid in sorted(box)]

    def get(self, mailbox: str, message_id: str) -> Message | None:
        check_mailbox(mailbox)
        check_message_id(message_id)
        with self._lock:
            return self._loaded().get(mailbox, {}).get(message_id)

    def counts(self, mailbox: str) -> tuple[int, int]:
        """(new, old): unread and read messages. Memory only."""
        check_mailbox(mailbox)
        with self._lock:
            return _count(self._loaded().get(mailbox, {}).values())

    def counts_all(self) -> dict[str, tuple[int, int]]:
        """(new, old) of every mailbox that has messages."""
        with self._lock:
            return {box: _count(msgs.values()) for box, msgs in self._loaded().items() if msgs}

    def mark_read(self, mailbox: str, message_id: str, is_read: bool = True) -> Message | None:
        """Set the read flag; the message as it now is, ``None`` if unknown. Memory, plus a
        queued write: fine on the event loop."""
        check_mailbox(mailbox)
        check_message_id(message_id)
        with self._lock:
            box = self._loaded().get(mailbox, {})
            message = box.get(message_id)
            if message is None or message.is_read == is_read:
                return message
            message = box[message_id] = dataclasses.replace(message, is_read=is_read)
            self._db.put(_SetRead(mailbox, message_id, is_read))
        return message

    def delete(self, mailbox: str, message_id: str) -> bool:
        """Delete a message (file and row); False if unknown. Blocking (unlink, fsync)."""
        check_mailbox(mailbox)
        check_message_id(message_id)
        with self._lock:
            message = self._loaded().get(mailbox, {}).pop(message_id, None)
        if message is None:
            return False
        try:
            self.wav_path(mailbox, message_id).unlink(missing_ok=True)
        except OSError:
            with self._lock:
                self._loaded().setdefault(mailbox, {})[message_id] = message
            raise
        self.sidecar_path(mailbox, message_id).unlink(missing_ok=True)
        _fsync_dir(self.mailbox_dir(mailbox))
        self._db.put(_Remove(mailbox, message_id))
        log.info("voicemail_message_deleted", mailbox=mailbox, message_id=message_id)
        return True

    # -- Start and stop

    def recover(self, min_length: float | Callable[[str], float]) -> Recovery:
        """Bring files and metadata together after a stop or a crash, then load the
        metadata; call once at start, before anything else. Blocking.

        A ``.part`` recording holding at least ``min_length`` seconds of audio (a number,
        or a function of the mailbox) becomes a message, with the caller its sidecar names
        (unknown without one; the time from its id); a shorter one is deleted. A ``.wav``
        without a row gets one; a row without its file is removed; a sidecar left alone is
        deleted. Files that are not ours (other names) are left as they are."""

        def minimum(mailbox: str) -> float:
            return min_length(mailbox) if callable(min_length) else min_length

        rows = {(m.mailbox, m.message_id): m for m in self._db.load()}
        scan = _Scan()
        for directory in sorted(self.root.iterdir()):
            if directory.is_dir() and MAILBOX_RE.fullmatch(directory.name) is not None:
                self._scan_mailbox(directory, minimum(directory.name), rows, scan)
        kept, recovered, indexed, discarded = (
            scan.kept,
            scan.recovered,
            scan.indexed,
            scan.discarded,
        )
        forgotten = sorted(key for key in rows if key not in kept)
        for mailbox, message_id in forgotten:
            self._db.put(_Remove(mailbox, message_id))
            log.warning("voicemail_message_forgotten", mailbox=mailbox, message_id=message_id)
        for message in (*recovered, *indexed):
            self._db.put(_Put(message))
        if self._db.flush():  # the rows are committed: the sidecars have done their job
            for sidecar in scan.sidecars:
                sidecar.unlink(missing_ok=True)
        boxes: dict[str, dict[str, Message]] = {}
        for (mailbox, message_id), message in kept.items():
            boxes.setdefault(mailbox, {})[message_id] = message
        with self._lock:
            self._boxes = boxes
        report = Recovery(
            recovered=tuple(recovered),
            discarded=tuple(discarded),
            indexed=tuple(indexed),
            forgotten=tuple(forgotten),
            messages=len(kept),
        )
        log.info(
            "voicemail_store_recovered",
            messages=report.messages,
            recovered=len(recovered),
            discarded=len(discarded),
            indexed=len(indexed),
            forgotten=len(forgotten),
        )
        return report

    def flush(self, timeout: float = 5.0) -> bool:
        """Block until every metadata write queued so far is committed; False on timeout
        or when a batch was dropped since the previous flush."""
        return self._db.flush(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Commit what is queued, stop the writer thread; idempotent. Blocking."""
        self._db.close(timeout)

    # -- Internals

    def _loaded(self) -> dict[str, dict[str, Message]]:
        if self._boxes is None:
            raise MessageStoreError("MessageStore.recover() must run before use")
        return self._boxes

    def _check_loaded(self) -> None:
        with self._lock:
            self._loaded()

    def _remember(self, message: Message, *, sidecar: Path | None) -> None:
        with self._lock:
            self._loaded().setdefault(message.mailbox, {})[message.message_id] = message
            try:
                self._db.put(_Put(message, unlink_after=sidecar))
            except MessageStoreError as exc:  # closed: the file and sidecar wait for recover()
                log.warning(
                    "voicemail_metadata_deferred",
                    mailbox=message.mailbox,
                    message_id=message.message_id,
                    error=str(exc),
                )

    def _parse_part(self, part: Path) -> tuple[str, str]:
        mailbox = part.parent.name
        message_id = _id_in(part.name, ".", PART_SUFFIX)
        if message_id is None or part != self.recording_path(mailbox, message_id):
            raise ValueError(f"not a recording of this store: {part}")
        return mailbox, message_id

    def _finish(self, info: MessageInfo, part: Path, final: Path, *, is_read: bool) -> Message:
        """Header, fsync, rename, fsync of the directory: the file is then durable."""
        with part.open("r+b") as stream:
            _fix_header(stream, part)
        os.rename(part, final)
        _fsync_dir(final.parent)
        return self._message_of(info, final, is_read=is_read)

    def _scan_mailbox(
        self, directory: Path, minimum: float, rows: dict[tuple[str, str], Message], scan: _Scan
    ) -> None:
        """recover() for one mailbox: recordings first, then messages, then sidecars."""
        mailbox = directory.name
        names = set(os.listdir(directory))
        for name in sorted(names):
            message_id = _id_in(name, ".", PART_SUFFIX)
            if message_id is None:
                continue
            part = directory / name
            if data_bytes_of(part.stat().st_size) / BYTES_PER_SECOND < minimum:
                self.discard(part)
                scan.discarded.append(part)
            elif f"{message_id}.wav" in names:  # never overwrite; fresh ids cannot clash
                log.error("voicemail_recording_shadowed", path=str(part))
            else:
                message = self._recover_part(mailbox, message_id)
                scan.recovered.append(message)
                scan.kept[(mailbox, message_id)] = message
        names = set(os.listdir(directory))
        for name in sorted(names):
            message_id = _id_in(name, "", ".wav")
            if message_id is None or (mailbox, message_id) in scan.kept:
                continue
            row = rows.get((mailbox, message_id))
            if row is None:
                info = self._info_for(mailbox, message_id)
                row = self._message_of(info, directory / name, is_read=False)
                scan.indexed.append(row)
                log.warning("voicemail_message_indexed", mailbox=mailbox, message_id=message_id)
            scan.kept[(mailbox, message_id)] = row
        for name in sorted(names):
            message_id = _id_in(name, ".", SIDECAR_SUFFIX)
            if message_id is not None and f".{message_id}{PART_SUFFIX}" not in names:
                scan.sidecars.append(directory / name)  # its message is kept, or never was

    def _recover_part(self, mailbox: str, message_id: str) -> Message:
        info = self._info_for(mailbox, message_id)
        part = self.recording_path(mailbox, message_id)
        message = self._finish(info, part, self.wav_path(mailbox, message_id), is_read=False)
        log.warning(
            "voicemail_recording_recovered",
            mailbox=mailbox,
            message_id=message_id,
            duration=round(message.duration, 3),
            caller_known=info.caller_number is not None,
        )
        return message

    def _info_for(self, mailbox: str, message_id: str) -> MessageInfo:
        """The sidecar's metadata, or what the id alone tells."""
        sidecar = self.sidecar_path(mailbox, message_id)
        try:
            info = _parse_sidecar(sidecar.read_bytes())
        except FileNotFoundError:
            info = None
        except (OSError, ValueError) as exc:
            log.warning("voicemail_sidecar_unreadable", path=str(sidecar), error=repr(exc))
            info = None
        if info is None or (info.mailbox, info.message_id) != (mailbox, message_id):
            return MessageInfo(
                mailbox=mailbox, message_id=message_id, received_at=received_at_of(message_id)
            )
        return info

    @staticmethod
    def _message_of(info: MessageInfo, path: Path, *, is_read: bool) -> Message:
        size = path.stat().st_size
        with path.open("rb") as stream:
            rate = _rate_of(stream.read(HEADER_SIZE))
        return Message(
            **dataclasses.asdict(info),
            duration=data_bytes_of(size) / (rate * CHANNELS * SAMPLE_WIDTH),
            size=size,
            is_read=is_read,
        )


@dataclass(slots=True)
class _Scan:
    """What recover() finds, mailbox by mailbox."""

    kept: dict[tuple[str, str], Message] = field(default_factory=dict)
    recovered: builtins.list[Message] = field(default_factory=builtins.list)
    indexed: builtins.list[Message] = field(default_factory=builtins.list)
    discarded: builtins.list[Path] = field(default_factory=builtins.list)
    sidecars: builtins.list[Path] = field(default_factory=builtins.list)


def _count(messages: Iterable[Message]) -> tuple[int, int]:
    unread = read = 0
    for message in messages:
        if message.is_read:
            read += 1
        else:
            unread += 1
    return unread, read


def _id_in(name: str, prefix: str, suffix: str) -> str | None:
    if not (name.startswith(prefix) and name.endswith(suffix)):
        return None
    message_id = name[len(prefix) : len(name) - len(suffix)]
    return message_id if MESSAGE_ID_RE.fullmatch(message_id) else None


def _parse_sidecar(data: bytes) -> MessageInfo | None:
    fields = json.loads(data)
    if not isinstance(fields, dict):
        return None
    names = {f.name for f in dataclasses.fields(MessageInfo)}
    fields = {k: v for k, v in fields.items() if k in names}
    text = ("mailbox", "message_id", "caller_number", "caller_name", "called_number", "hunt_group")
    if not all(fields.get(k) is None or isinstance(fields[k], str) for k in text):
        return None
    if not isinstance(fields.get("received_at"), int | float):
        return None
    try:
        return MessageInfo(**fields)
    except TypeError:  # a required field missing
        return None


def _rate_of(header: bytes) -> int:
    """The sample rate a header names when it is ours, else the rate the media host uses."""
    try:
        repair_wav(header)
    except WavError:
        return RATE
    rate: int = _RATE_FIELD.unpack_from(header, _RATE_OFFSET)[0]
    return rate or RATE


def _fix_header(stream: BinaryIO, path: Path) -> None:
    """Sizes from the length of the file (a torn last sample dropped), then fsync. A header
    that is not ours (zeros after a power cut) is rewritten as the media host writes it."""
    header = stream.read(HEADER_SIZE)
    size = os.fstat(stream.fileno()).st_size
    try:
        repair_wav(header)
    except WavError as exc:
        log.warning("voicemail_header_rebuilt", path=str(path), error=str(exc))
    data_bytes = data_bytes_of(size)
    stream.seek(0)
    stream.write(header_for(data_bytes, _rate_of(header)))
    stream.truncate(HEADER_SIZE + data_bytes)
    _sync(stream)


def _sync(stream: BinaryIO) -> None:
    stream.flush()
    os.fsync(stream.fileno())


def _fsync_dir(directory: Path) -> None:
    """Make renames and unlinks in ``directory`` durable (POSIX; a no-op elsewhere)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):  # some file systems refuse fsync on directories
            os.fsync(fd)
    finally:
        os.close(fd)


# -- The metadata file and its writer thread


_COLUMNS: Final = tuple(f.name for f in dataclasses.fields(Message))
_PUT: Final = (
    f"INSERT OR REPLACE INTO voicemail_messages ({', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _COLUMNS)})"
)


@dataclass(frozen=True, slots=True)
class _Put:
    message: Message
    unlink_after: Path | None = None  # the sidecar, once the row is committed


@dataclass(frozen=True, slots=True)
class _Remove:
    mailbox: str
    message_id: str


@dataclass(frozen=True, slots=True)
class _SetRead:
    mailbox: str
    message_id: str
    is_read: bool


@dataclass(slots=True, eq=False)
class _Flush:
    stop: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    dropped: int = 0


_Write: TypeAlias = _Put | _Remove | _SetRead
_Op: TypeAlias = _Write | _Flush


class _Database:
    """``voicemail_messages`` in its own SQLite file: reads on one connection, writes
    queued to one writer thread that commits them in batches (as BindingStore does)."""

    def __init__(self, path: Path, reader: sqlite3.Connection, writer: sqlite3.Connection,
                 attempts: int) -> None:  # fmt: skip
        self.path = path
        self._reader = reader
        self._queue: queue.SimpleQueue[_Op] = queue.SimpleQueue()
        self._closed = False
        self._dropped_seen = 0
        self._seen_lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._run, args=(writer, attempts), name="b2bua-voicemail-writer", daemon=True
        )
        self._thread.start()

    @classmethod
    def open(cls, path: Path, busy_timeout: float, attempts: int) -> _Database:
        reader = _connect(path, busy_timeout)
        try:
            migrated_from = _migrate(reader, path)
            writer = _connect(path, busy_timeout)
        except BaseException:
            reader.close()
            raise
        log.info("voicemail_store_opened", path=str(path), migrated_from=migrated_from)
        return cls(path, reader, writer, attempts)

    def load(self) -> builtins.list[Message]:
        self._check_open()
        query = f"SELECT {', '.join(_COLUMNS)} FROM voicemail_messages ORDER BY mailbox, message_id"
        try:
            rows = self._reader.execute(query).fetchall()
        except sqlite3.Error as exc:
            raise MessageStoreError(f"cannot load messages from {self.path}: {exc}") from exc
        messages = []
        for row in rows:
            fields = dict(zip(_COLUMNS, row, strict=True))
            fields["is_read"] = bool(fields["is_read"])
            messages.append(Message(**fields))
        return messages

    def put(self, op: _Write) -> None:
        self._check_open()
        self._queue.put(op)

    def flush(self, timeout: float = 5.0) -> bool:
        self._check_open()
        return self._await(_Flush(), timeout)

    def close(self, timeout: float = 10.0) -> None:
        if self._closed:
            return
        self._closed = True
        marker = _Flush(stop=True)
        if not self._await(marker, timeout):
            log.error("voicemail_store_close_incomplete", path=str(self.path))
        if marker.done.is_set():
            self._thread.join()
        self._reader.close()

    def _check_open(self) -> None:
        if self._closed:
            raise MessageStoreError(f"the message store {self.path} is closed")

    def _await(self, marker: _Flush, timeout: float) -> bool:
        self._queue.put(marker)
        if not marker.done.wait(timeout):
            return False
        with self._seen_lock:
            clean = marker.dropped == self._dropped_seen
            self._dropped_seen = max(self._dropped_seen, marker.dropped)
        return clean

    def _run(self, conn: sqlite3.Connection, attempts: int) -> None:
        dropped = 0
        try:
            while True:
                batch = [self._queue.get()]
                deadline = time.monotonic() + GATHER_TIME
                with contextlib.suppress(queue.Empty):
                    while len(batch) < MAX_BATCH and not isinstance(batch[-1], _Flush):
                        batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
                writes = [op for op in batch if not isinstance(op, _Flush)]
                if writes:
                    if _commit(conn, writes, attempts):
                        _unlink_sidecars(writes)
                    else:
                        dropped += 1
                markers = [op for op in batch if isinstance(op, _Flush)]
                for marker in markers:
                    marker.dropped = dropped
                    marker.done.set()
                if any(marker.stop for marker in markers):
                    return
        finally:
            conn.close()


def _commit(conn: sqlite3.Connection, writes: builtins.list[_Write], attempts: int) -> bool:
    for attempt in range(1, attempts + 1):
        try:
            conn.execute("BEGIN IMMEDIATE")
            for op in writes:
                match op:
                    case _Put(message=message):
                        conn.execute(_PUT, tuple(getattr(message, name) for name in _COLUMNS))
                    case _Remove(mailbox=mailbox, message_id=message_id):
                        conn.execute(
                            "DELETE FROM voicemail_messages WHERE mailbox = ? AND message_id = ?",
                            (mailbox, message_id),
                        )
                    case _SetRead(mailbox=mailbox, message_id=message_id, is_read=is_read):
                        conn.execute(
                            "UPDATE voicemail_messages SET is_read = ? "
                            "WHERE mailbox = ? AND message_id = ?",
                            (int(is_read), mailbox, message_id),
                        )
            conn.execute("COMMIT")
            return True
        except Exception as exc:  # locked, disk full, I/O error; even a bug must not kill us
            with contextlib.suppress(sqlite3.Error):
                conn.rollback()
            log.warning(
                "voicemail_store_write_failed",
                attempt=attempt,
                attempts=attempts,
                operations=len(writes),
                error=repr(exc),
            )
            if attempt < attempts:
                time.sleep(min(0.05 * 2**attempt, 1.0))
    log.error("voicemail_store_batch_dropped", operations=len(writes), attempts=attempts)
    return False


def _unlink_sidecars(writes: builtins.list[_Write]) -> None:
    """Sidecars whose row is now committed: recover() no longer needs them."""
    for op in writes:
        if isinstance(op, _Put) and op.unlink_after is not None:
            try:
                op.unlink_after.unlink(missing_ok=True)
            except OSError as exc:  # recover() deletes it at the next start
                log.warning("voicemail_sidecar_left", path=str(op.unlink_after), error=repr(exc))


def _connect(path: Path, busy_timeout: float) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise MessageStoreError(f"cannot open the message store {path}: {exc}") from exc
    try:
        _read_version(conn, path)
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        conn.execute("PRAGMA synchronous=NORMAL")
        if mode != "wal":
            raise MessageStoreError(f"{path}: SQLite refused WAL mode (journal_mode={mode})")
    except BaseException as exc:
        conn.close()
        if isinstance(exc, sqlite3.Error):
            raise MessageStoreError(f"cannot use {path} as the message store: {exc}") from exc
        raise
    return conn


def _read_version(conn: sqlite3.Connection, path: Path) -> int:
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "schema_version" not in tables:
        if tables:
            raise MessageStoreError(f"{path} is an SQLite database but not a message store")
        return 0
    version = int(conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0)
    if version > SCHEMA_VERSION:
        raise MessageStoreError(
            f"{path} has schema version {version}, newer than this b2bua knows "
            f"({SCHEMA_VERSION}); refusing to open it"
        )
    return version


def _migrate(conn: sqlite3.Connection, path: Path) -> int:
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY)")
        current = _read_version(conn, path)
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        conn.execute("COMMIT")
    except BaseException as exc:
        with contextlib.suppress(sqlite3.Error):
            conn.rollback()
        if isinstance(exc, sqlite3.Error):
            raise MessageStoreError(f"cannot migrate the message store {path}: {exc}") from exc
        raise
    return current
