"""Durable store of registrations and call detail records: one SQLite file in WAL mode,
written by one thread.

ARCHITECTURE.md, "Side effects are outputs": the event loop never waits on a disk write.
:meth:`BindingStore.save`, the deletes and :meth:`BindingStore.save_call_record` only put an
operation on a queue; one writer thread, which owns the write connection, commits whatever
is queued as one transaction. Reads (bindings at start, recent call records for tests and
the status API) are synchronous, on their own connection; WAL lets them run beside the
writer. Times are wall-clock seconds (see :mod:`b2bua.registrar.binding` and
:mod:`b2bua.call.records`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypeAlias

import structlog

from b2bua.call.records import CallRecord, Disposition
from b2bua.registrar.binding import Binding

log = structlog.get_logger(__name__)

FILE_NAME: Final = "b2bua.sqlite3"
#: Statements of each schema version, applied in order in one transaction. Never edit a
#: released version: add the next one (voicemail metadata, ...) instead.
MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {
    1: (
        """CREATE TABLE bindings (
            aor TEXT NOT NULL, contact TEXT NOT NULL,
            expires_at REAL NOT NULL, registered_at REAL NOT NULL,
            call_id TEXT NOT NULL, cseq INTEGER NOT NULL, source TEXT NOT NULL,
            q REAL, user_agent TEXT, instance TEXT,
            PRIMARY KEY (aor, contact)
        ) WITHOUT ROWID""",
        "CREATE INDEX bindings_by_expiry ON bindings (expires_at)",
    ),
    # Call detail records. A rowid of our own, never a unique Call-ID: a buggy peer may
    # reuse one across calls, and each call is still its own record.
    2: (
        """CREATE TABLE call_records (
            id INTEGER PRIMARY KEY,
            call_id TEXT NOT NULL, caller TEXT, caller_name TEXT, callee TEXT,
            answered_by TEXT, started_at REAL, answered_at REAL, ended_at REAL,
            duration REAL, disposition TEXT, caller_status INTEGER,
            callee_status INTEGER, end_reason TEXT
        )""",
        "CREATE INDEX call_records_by_start ON call_records (started_at)",
    ),
    # The hunt trace of each call (CallRecord.hunts) as JSON text; NULL when it hunted no
    # group, as every row written before this version reads.
    3: ("ALTER TABLE call_records ADD COLUMN hunts TEXT",),
}
SCHEMA_VERSION: Final = max(MIGRATIONS)
MAX_BATCH: Final = 200  # operations per transaction
GATHER_TIME: Final = 0.02  # seconds a batch may wait for more operations
WRITE_ATTEMPTS: Final = 5  # per batch, then the batch is dropped (and flush reports it)
BUSY_TIMEOUT: Final = 1.0  # seconds SQLite waits for another connection's lock

_COLUMNS: Final = tuple(f.name for f in dataclasses.fields(Binding))
_SAVE: Final = (
    f"INSERT OR REPLACE INTO bindings ({', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _COLUMNS)})"
)
#: The columns of ``call_records`` besides ``id``, in CallRecord's field order. Spelled out
#: rather than read from the dataclass: a field added to CallRecord without a migration must
#: fail the tests, not every writer batch that holds a record (and the bindings with it).
_RECORD_COLUMNS: Final = (
    "call_id", "caller", "caller_name", "callee", "answered_by", "started_at", "answered_at",
    "ended_at", "duration", "disposition", "caller_status", "callee_status", "end_reason",
    "hunts",
)  # fmt: skip
_SAVE_RECORD: Final = (
    f"INSERT INTO call_records ({', '.join(_RECORD_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _RECORD_COLUMNS)})"
)
_SqlValue: TypeAlias = str | int | float | None


class StoreError(Exception):
    """The store cannot be opened or used; the message names the file."""


class SchemaTooNewError(StoreError):
    """The file was written by a newer b2bua; it is left untouched."""


@dataclass(frozen=True, slots=True)
class _Save:
    binding: Binding


@dataclass(frozen=True, slots=True)
class _Delete:
    aor: str
    contact: str | None  # None: every contact of the AOR


@dataclass(frozen=True, slots=True, eq=False)
class _SaveCallRecord:
    """One row, built by the caller (so a malformed record fails there, not in a batch).
    ``eq=False``: two equal records are still two calls."""

    row: tuple[_SqlValue, ...]


@dataclass(slots=True, eq=False)
class _Flush:
    """Answered by the writer once every operation queued before it is committed."""

    stop: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    dropped: int = 0  # batches dropped since the writer started, set before `done`


_Write: TypeAlias = _Save | _Delete | _SaveCallRecord
_Op: TypeAlias = _Write | _Flush


class BindingStore:
    """Bindings by (aor, contact), and call detail records, one row per call.
    ``save``/``delete``/``delete_aor``/``save_call_record`` never block: a writer thread
    commits them in batches. ``load_bindings`` and ``close`` are for start and stop;
    ``load_call_records`` is a quick indexed read. Call the methods from one thread at a
    time (the event loop, or an executor at close)."""

    def __init__(self, path: Path, reader: sqlite3.Connection, writer: sqlite3.Connection,
                 write_attempts: int) -> None:  # fmt: skip
        self.path = path
        self._reader = reader
        self._queue: queue.SimpleQueue[_Op] = queue.SimpleQueue()
        self._closed = False
        self._dropped_seen = 0
        self._thread = threading.Thread(
            target=self._run, args=(writer, write_attempts), name="b2bua-store-writer", daemon=True
        )
        self._thread.start()

    @classmethod
    def open(
        cls, path: Path, *, busy_timeout: float = BUSY_TIMEOUT, write_attempts: int = WRITE_ATTEMPTS
    ) -> BindingStore:
        """Open (creating or migrating) the store at ``path``, or at ``path / FILE_NAME`` when
        ``path`` is a directory. Raises :class:`SchemaTooNewError` for a file of a newer
        schema, :class:`StoreError` for anything SQLite cannot use (the message names it)."""
        if path.is_dir():
            path = path / FILE_NAME
        reader = _connect(path, busy_timeout)
        try:
            migrated_from = _migrate(reader, path)
            writer = _connect(path, busy_timeout)
        except BaseException:
            reader.close()
            raise
        log.info("store_opened", path=str(path), migrated_from=migrated_from)
        return cls(path, reader, writer, write_attempts)

    def load_bindings(self, wall_now: float) -> list[Binding]:
        """Every binding with ``expires_at > wall_now``; the expired ones are deleted."""
        self._check_open()
        conn = self._reader
        try:
            conn.execute("BEGIN IMMEDIATE")
            expired = conn.execute("DELETE FROM bindings WHERE expires_at <= ?", (wall_now,))
            rows = conn.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM bindings ORDER BY aor, contact"
            ).fetchall()
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.rollback()
            raise StoreError(f"cannot load bindings from {self.path}: {exc}") from exc
        log.info("store_bindings_loaded", loaded=len(rows), expired=expired.rowcount)
        return [Binding(**dict(zip(_COLUMNS, row, strict=True))) for row in rows]

    def save(self, binding: Binding) -> None:
        """Queue an insert-or-replace by (aor, contact); returns at once."""
        self._put(_Save(binding))

    def delete(self, aor: str, contact: str) -> None:
        self._put(_Delete(aor, contact))

    def delete_aor(self, aor: str) -> None:
        self._put(_Delete(aor, None))

    def save_call_record(self, record: CallRecord) -> None:
        """Queue an insert of ``record`` as a new row; returns at once. Records are never
        merged: the same record saved twice is two rows. ValueError for a disposition that
        is not a :class:`Disposition`, TypeError for hunts that are not JSON data."""
        self._put(_SaveCallRecord(_record_row(record)))

    def load_call_records(
        self,
        limit: int = 100,
        *,
        since: float | None = None,
        until: float | None = None,
        number: str | None = None,
        member: str | None = None,
    ) -> list[CallRecord]:
        """Up to ``limit`` committed records, newest first (by ``started_at``, then by the
        order they were saved). Filters, all optional and combined: ``started_at >= since``
        and ``< until``; ``number`` is the caller or the callee; ``member`` answered the
        call or appears in its hunt trace. Records still queued are not seen:
        :meth:`flush` first to read your own writes."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0, not {limit}")
        self._check_open()
        clauses: list[str] = []
        params: list[_SqlValue] = []
        if since is not None:
            clauses.append("started_at >= ?")
            params.append(since)
        if until is not None:
            clauses.append("started_at < ?")
            params.append(until)
        if number is not None:
            clauses.append("(caller = ? OR callee = ?)")
            params += [number, number]
        if member is not None:
            # The hunts column is compact JSON (_record_row): a member's entry reads
            # exactly "member":"<number>".
            pattern = json.dumps({"member": member}, separators=(",", ":"))[1:-1]
            escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clauses.append("(answered_by = ? OR hunts LIKE ? ESCAPE '\\')")
            params += [member, f"%{escaped}%"]
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        query = (
            f"SELECT {', '.join(_RECORD_COLUMNS)} FROM call_records {where} "
            "ORDER BY started_at DESC, id DESC LIMIT ?"
        )
        try:
            rows = self._reader.execute(query, (*params, limit)).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot load call records from {self.path}: {exc}") from exc
        records: list[CallRecord] = []
        for row in rows:
            fields = dict(zip(_RECORD_COLUMNS, row, strict=True))
            try:
                fields["disposition"] = Disposition(fields["disposition"])
            except ValueError as exc:
                raise StoreError(f"{self.path}: unknown call record disposition: {exc}") from exc
            fields["hunts"] = _parse_hunts(fields["hunts"], self.path)
            records.append(CallRecord(**fields))
        return records

    def flush(self, timeout: float = 5.0) -> bool:
        """Block until everything queued so far is committed. False on timeout, or when a
        batch was dropped (after ``write_attempts`` failures, logged as
        ``store_batch_dropped``) since the previous flush returned. StoreError if closed."""
        self._check_open()
        return self._await(_Flush(), timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Commit what is queued, stop the writer, close the connections; idempotent."""
        if self._closed:
            return
        self._closed = True
        marker = _Flush(stop=True)
        if not self._await(marker, timeout):
            log.error("store_close_incomplete", path=str(self.path))
        if marker.done.is_set():
            self._thread.join()
        self._reader.close()

    def _put(self, op: _Op) -> None:
        self._check_open()
        self._queue.put(op)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the store {self.path} is closed")

    def _await(self, marker: _Flush, timeout: float) -> bool:
        self._queue.put(marker)
        if not marker.done.wait(timeout):
            return False
        clean = marker.dropped == self._dropped_seen
        self._dropped_seen = max(self._dropped_seen, marker.dropped)
        return clean

    def _run(self, conn: sqlite3.Connection, attempts: int) -> None:
        """The writer thread: whatever is queued (up to MAX_BATCH) becomes one transaction,
        so a burst of registrations costs a few commits, not one each."""
        dropped = 0
        try:
            while True:
                batch = [self._queue.get()]
                # Let a burst gather for a moment: one commit for many registrations
                # costs the event loop's thread far less of the GIL than many commits.
                deadline = time.monotonic() + GATHER_TIME
                with contextlib.suppress(queue.Empty):
                    while len(batch) < MAX_BATCH and not isinstance(batch[-1], _Flush):
                        batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
                writes = [op for op in batch if not isinstance(op, _Flush)]
                if writes and not _commit(conn, writes, attempts):
                    dropped += 1
                markers = [op for op in batch if isinstance(op, _Flush)]
                for marker in markers:
                    marker.dropped = dropped
                    marker.done.set()
                if any(marker.stop for marker in markers):
                    return
        finally:
            conn.close()


def _record_row(record: CallRecord) -> tuple[_SqlValue, ...]:
    row = [getattr(record, name) for name in _RECORD_COLUMNS]
    row[_RECORD_COLUMNS.index("disposition")] = Disposition(record.disposition).value
    row[_RECORD_COLUMNS.index("hunts")] = (
        json.dumps(list(record.hunts), separators=(",", ":")) if record.hunts else None
    )
    return tuple(row)


def _parse_hunts(text: _SqlValue, path: Path) -> tuple[dict[str, object], ...]:
    """The ``hunts`` column back as CallRecord.hunts: NULL is no hunt."""
    if text is None:
        return ()
    try:
        hunts = json.loads(text) if isinstance(text, str) else None
    except ValueError as exc:
        raise StoreError(f"{path}: unreadable call record hunts: {exc}") from exc
    if not isinstance(hunts, list) or not all(isinstance(hunt, dict) for hunt in hunts):
        raise StoreError(f"{path}: call record hunts are not a JSON list of objects: {text!r:.80}")
    return tuple(hunts)


def _coalesced(writes: list[_Write]) -> list[_Write]:
    """The same changes with the binding saves that a later operation overrides left out (a
    phone refreshing twice within one batch is written once). Call records are all kept,
    each a row of its own. Order is kept."""
    decided: set[tuple[str, str]] = set()
    decided_aors: set[str] = set()
    kept: list[_Write] = []
    for op in reversed(writes):
        match op:
            case _Save(binding=binding):
                if binding.key in decided or binding.aor in decided_aors:
                    continue
                decided.add(binding.key)
            case _Delete(aor=aor, contact=contact):
                if contact is None:
                    decided_aors.add(aor)
                else:
                    decided.add((aor, contact))
            case _SaveCallRecord():
                pass
        kept.append(op)
    kept.reverse()
    return kept


def _commit(conn: sqlite3.Connection, writes: list[_Write], attempts: int) -> bool:
    writes = _coalesced(writes)
    for attempt in range(1, attempts + 1):
        try:
            conn.execute("BEGIN IMMEDIATE")
            for op in writes:
                match op:
                    case _Save(binding=b):
                        conn.execute(_SAVE, tuple(getattr(b, name) for name in _COLUMNS))
                    case _Delete(aor=aor, contact=None):
                        conn.execute("DELETE FROM bindings WHERE aor = ?", (aor,))
                    case _Delete(aor=aor, contact=contact):
                        conn.execute(
                            "DELETE FROM bindings WHERE aor = ? AND contact = ?", (aor, contact)
                        )
                    case _SaveCallRecord(row=row):
                        conn.execute(_SAVE_RECORD, row)
            conn.execute("COMMIT")
            return True
        except Exception as exc:  # locked, disk full, I/O error; even a bug must not kill us
            with contextlib.suppress(sqlite3.Error):
                conn.rollback()
            log.warning(
                "store_write_failed",
                attempt=attempt,
                attempts=attempts,
                operations=len(writes),
                error=repr(exc),
            )
            if attempt < attempts:
                time.sleep(min(0.05 * 2**attempt, 1.0))
    log.error("store_batch_dropped", operations=len(writes), attempts=attempts)
    return False


def _connect(path: Path, busy_timeout: float) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the store {path}: {exc}") from exc
    try:
        # Read before anything is changed, so a file of a newer schema stays as it is.
        _read_version(conn, path)
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL: durable up to the last checkpoint
        if mode != "wal":
            raise StoreError(f"{path}: SQLite refused WAL mode (journal_mode={mode})")
    except BaseException as exc:
        conn.close()
        if isinstance(exc, sqlite3.Error):  # "file is not a database", "disk image is malformed"
            raise StoreError(f"cannot use {path} as the store: {exc}") from exc
        raise
    return conn


def _read_version(conn: sqlite3.Connection, path: Path) -> int:
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "schema_version" not in tables:
        if tables:
            raise StoreError(f"{path} is an SQLite database but not a b2bua store: {tables}")
        return 0
    version = int(conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0)
    if version > SCHEMA_VERSION:
        raise SchemaTooNewError(
            f"{path} has schema version {version}, newer than this b2bua knows "
            f"({SCHEMA_VERSION}); refusing to open it (upgrade b2bua or use another data dir)"
        )
    return version


def _migrate(conn: sqlite3.Connection, path: Path) -> int:
    """Bring the file to SCHEMA_VERSION in one transaction; returns the version it had."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY)")
        current = _read_version(conn, path)  # again, under the lock: another opener may have run
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        conn.execute("COMMIT")
    except BaseException as exc:
        with contextlib.suppress(sqlite3.Error):
            conn.rollback()
        if isinstance(exc, sqlite3.Error):
            raise StoreError(f"cannot migrate the store {path}: {exc}") from exc
        raise
    return current
