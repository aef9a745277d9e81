"""Call detail records in the SQLite store: one row per call, written by the binding
writer in its batches, read back newest first, with the hunt trace of the call; the
schema migrations 1 -> 2 (the table) and 2 -> 3 (its hunts column); and the records as the
status API answers them."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import cast

import pytest
from aiohttp import ClientSession
from structlog.testing import capture_logs

from b2bua.call.records import CallRecord, Disposition
from b2bua.config import Config, ListenAddress
from b2bua.registrar.binding import Binding
from b2bua.runtime.server import Server
from b2bua.runtime.store import (
    FILE_NAME,
    MAX_BATCH,
    MIGRATIONS,
    SCHEMA_VERSION,
    BindingStore,
    SchemaTooNewError,
    StoreError,
)
from b2bua.sip.address import Transport

T0 = 1_700_000_000.0

# Schema version 1 exactly as the store wrote it before call records: never change these.
V1_STATEMENTS = (
    """CREATE TABLE bindings (
            aor TEXT NOT NULL, contact TEXT NOT NULL,
            expires_at REAL NOT NULL, registered_at REAL NOT NULL,
            call_id TEXT NOT NULL, cseq INTEGER NOT NULL, source TEXT NOT NULL,
            q REAL, user_agent TEXT, instance TEXT,
            PRIMARY KEY (aor, contact)
        ) WITHOUT ROWID""",
    "CREATE INDEX bindings_by_expiry ON bindings (expires_at)",
)
V1_SAVE = (
    "INSERT OR REPLACE INTO bindings (aor, contact, expires_at, registered_at, call_id, cseq, "
    "source, q, user_agent, instance) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# Schema version 2, the call records before their hunts column: never change these either.
V2_STATEMENTS = (
    """CREATE TABLE call_records (
            id INTEGER PRIMARY KEY,
            call_id TEXT NOT NULL, caller TEXT, caller_name TEXT, callee TEXT,
            answered_by TEXT, started_at REAL, answered_at REAL, ended_at REAL,
            duration REAL, disposition TEXT, caller_status INTEGER,
            callee_status INTEGER, end_reason TEXT
        )""",
    "CREATE INDEX call_records_by_start ON call_records (started_at)",
)
V2_SAVE_RECORD = (
    "INSERT INTO call_records (call_id, caller, caller_name, callee, answered_by, started_at, "
    "answered_at, ended_at, duration, disposition, caller_status, callee_status, end_reason) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

# Two hunts of one call, as Hunt.record() gives them: the day group overflowed to the
# night group, whose second member answered.
HUNTS: tuple[dict[str, object], ...] = (
    {
        "group": "600",
        "strategy": "linear",
        "seed": 1234567,
        "result": "overflowed",
        "connected": None,
        "overflow": "group timeout",
        "members": [
            {"t": 0.0, "member": "0101", "outcome": "ringing", "round": 1},
            {"t": 0.25, "member": "0102", "outcome": "skipped", "round": 1, "reason": "busy"},
            {"t": 15.0, "member": "0101", "outcome": "cancelled", "round": 1,
             "reason": "ring time"},
            {"t": 15.001, "member": "0103", "outcome": "failed", "round": 1, "status": 486},
        ],
    },
    {
        "group": "601",
        "strategy": "ring all",
        "seed": 0,
        "result": "connected",
        "connected": "0104",
        "overflow": None,
        "members": [
            {"t": 30.125, "member": "0104", "outcome": "ringing", "round": 1},
            {"t": 30.125, "member": "0105", "outcome": "ringing", "round": 1},
            {"t": 34.5, "member": "0104", "outcome": "answered", "round": 1, "status": 200},
            {"t": 34.5, "member": "0105", "outcome": "cancelled", "round": 1,
             "reason": "answered elsewhere"},
        ],
    },
)  # fmt: skip


def record(**kw: object) -> CallRecord:
    fields: dict[str, object] = {
        "call_id": "a84b4c76e66710@pc33.example.com",
        "caller": "0101",
        "caller_name": "Flower Shop Front Desk",
        "callee": "600",
        "answered_by": "0102",
        "started_at": T0 + 0.125,
        "answered_at": T0 + 4.5,
        "ended_at": T0 + 64.75,
        "duration": 60.25,
        "disposition": Disposition.ANSWERED,
        "caller_status": 200,
        "callee_status": 200,
        "end_reason": "callee BYE",
    }
    fields.update(kw)
    return CallRecord(**fields)  # type: ignore[arg-type]


def unanswered(**kw: object) -> CallRecord:
    """Every field that may be None is None."""
    return record(
        **{
            "caller_name": None,
            "answered_by": None,
            "answered_at": None,
            "duration": 0.0,
            "disposition": Disposition.FAILED,
            "caller_status": None,
            "callee_status": None,
            "end_reason": "no route",
            **kw,
        }
    )


def binding(contact: str = "sip:0101@192.0.2.10:5060", **kw: object) -> Binding:
    fields: dict[str, object] = {
        "aor": "0101",
        "contact": contact,
        "expires_at": T0 + 3600.5,
        "registered_at": T0,
        "call_id": "reg-1@192.0.2.10",
        "cseq": 7,
        "source": "udp:198.51.100.7:41234",
        "q": 0.5,
        "user_agent": "Yealink SIP-T46U 108.86.0.45",
        "instance": '"<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>"',
    }
    fields.update(kw)
    return Binding(**fields)  # type: ignore[arg-type]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / FILE_NAME


@pytest.fixture
def store(path: Path) -> Iterator[BindingStore]:
    store = BindingStore.open(path)
    yield store
    store.close()


def reopened(path: Path, limit: int = 1000) -> list[CallRecord]:
    store = BindingStore.open(path)
    try:
        return store.load_call_records(limit)
    finally:
        store.close()


def count_records(path: Path) -> int:
    with closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("SELECT count(*) FROM call_records").fetchone()[0])


def versions(path: Path) -> list[int]:
    with closing(sqlite3.connect(path)) as conn:
        return [row[0] for row in conn.execute("SELECT version FROM schema_version ORDER BY 1")]


def write_version_1_file(path: Path, bindings: list[Binding]) -> None:
    """What the store wrote before schema version 2: WAL, the version table, then v1."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY)")
        for statement in V1_STATEMENTS:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (1,))
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        for b in bindings:
            conn.execute(V1_SAVE, tuple(getattr(b, f.name) for f in dataclasses.fields(b)))
        conn.execute("COMMIT")


def write_version_2_file(path: Path, bindings: list[Binding], records: list[CallRecord]) -> None:
    """What the previous release wrote: version 1, then version 2, each with its rows."""
    write_version_1_file(path, bindings)
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        for statement in V2_STATEMENTS:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (2,))
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        for r in records:
            row = {f.name: getattr(r, f.name) for f in dataclasses.fields(r) if f.name != "hunts"}
            conn.execute(V2_SAVE_RECORD, (*row.values(),))
        conn.execute("COMMIT")


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


# Schema


def test_schema_version_3_adds_the_hunts_column() -> None:
    assert SCHEMA_VERSION == 3
    # A released version is never edited.
    assert MIGRATIONS[1] == V1_STATEMENTS
    assert MIGRATIONS[2] == V2_STATEMENTS
    assert MIGRATIONS[3] == ("ALTER TABLE call_records ADD COLUMN hunts TEXT",)


def test_the_table_has_one_column_per_call_record_field(store: BindingStore, path: Path) -> None:
    with closing(sqlite3.connect(path)) as conn:
        columns = conn.execute("PRAGMA table_info(call_records)").fetchall()
        indexes = conn.execute("PRAGMA index_list(call_records)").fetchall()
        by_start = conn.execute("PRAGMA index_info(call_records_by_start)").fetchall()
    # (cid, name, type, notnull, default, pk)
    assert [c[1] for c in columns] == ["id"] + [f.name for f in dataclasses.fields(CallRecord)]
    assert [(c[1], c[2], c[5]) for c in columns if c[5]] == [("id", "INTEGER", 1)]
    assert {c[1]: c[2] for c in columns} | {"id": "INTEGER"} == {
        "id": "INTEGER",
        "call_id": "TEXT",
        "caller": "TEXT",
        "caller_name": "TEXT",
        "callee": "TEXT",
        "answered_by": "TEXT",
        "started_at": "REAL",
        "answered_at": "REAL",
        "ended_at": "REAL",
        "duration": "REAL",
        "disposition": "TEXT",
        "caller_status": "INTEGER",
        "callee_status": "INTEGER",
        "end_reason": "TEXT",
        "hunts": "TEXT",
    }
    assert [c[1] for c in columns if c[3]] == ["call_id"]
    # (seq, name, unique, origin, partial): the started_at index, and nothing unique.
    assert [(i[1], i[2]) for i in indexes] == [("call_records_by_start", 0)]
    assert [i[2] for i in by_start] == ["started_at"]


# Round trip


def test_a_record_comes_back_after_reopen_with_every_field(store: BindingStore, path: Path) -> None:
    full = record()
    bare = unanswered(call_id="b@x", started_at=T0 + 1.0)
    store.save_call_record(full)
    store.save_call_record(bare)
    store.close()
    loaded = reopened(path)
    assert loaded == [bare, full]
    assert all(type(r.disposition) is Disposition for r in loaded)
    assert type(loaded[1].callee_status) is int
    assert type(loaded[1].started_at) is float


def test_every_disposition_round_trips(store: BindingStore) -> None:
    saved = [
        record(call_id=str(d), disposition=d, started_at=T0 + n) for n, d in enumerate(Disposition)
    ]
    for r in saved:
        store.save_call_record(r)
    assert store.flush() is True
    assert store.load_call_records() == saved[::-1]


def test_a_plain_string_disposition_is_stored_as_the_enum(store: BindingStore) -> None:
    store.save_call_record(record(disposition="busy"))
    assert store.flush() is True
    assert [r.disposition for r in store.load_call_records()] == [Disposition.BUSY]


def test_an_unknown_disposition_is_refused_at_the_caller(store: BindingStore) -> None:
    with pytest.raises(ValueError, match="not a valid Disposition"):
        store.save_call_record(record(disposition=cast(Disposition, "lost")))
    assert store.flush() is True
    assert store.load_call_records() == []


def test_an_unknown_disposition_in_the_file_is_a_store_error(
    store: BindingStore, path: Path
) -> None:
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(
            "INSERT INTO call_records (call_id, started_at, disposition) VALUES ('x', 1, 'lost')"
        )
    with pytest.raises(StoreError, match="unknown call record disposition") as caught:
        store.load_call_records()
    assert str(path) in str(caught.value)


# Hunts


def test_a_record_with_two_hunts_round_trips_exactly(store: BindingStore, path: Path) -> None:
    hunted = record(hunts=HUNTS)
    store.save_call_record(hunted)
    store.close()
    [loaded] = reopened(path)
    assert loaded == hunted
    assert loaded.hunts == HUNTS
    assert type(loaded.hunts) is tuple
    assert all(type(hunt) is dict for hunt in loaded.hunts)
    assert [list(hunt) for hunt in loaded.hunts] == [list(hunt) for hunt in HUNTS]  # key order
    members = cast(list[dict[str, object]], loaded.hunts[0]["members"])
    assert type(members[0]["t"]) is float
    assert type(members[3]["status"]) is int
    with closing(sqlite3.connect(path)) as conn:
        [(text,)] = conn.execute("SELECT hunts FROM call_records").fetchall()
    assert text == json.dumps(list(HUNTS), separators=(",", ":"))  # compact JSON text


def test_a_record_without_hunts_round_trips_as_empty_and_null(
    store: BindingStore, path: Path
) -> None:
    store.save_call_record(record())
    store.save_call_record(unanswered(started_at=T0 + 1.0, hunts=[]))  # any empty sequence
    store.close()
    assert [r.hunts for r in reopened(path)] == [(), ()]
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT count(*) FROM call_records WHERE hunts IS NULL").fetchone() == (
            2,
        )


def test_hunts_that_are_not_json_data_are_refused_at_the_caller(store: BindingStore) -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        store.save_call_record(record(hunts=({"group": "600", "seed": object()},)))
    assert store.flush() is True
    assert store.load_call_records() == []


@pytest.mark.parametrize(
    "text",
    ['[{"group":"600"', "", "not json", '{"group":"600"}', '["600"]', "[[]]", "42"],
)
def test_corrupt_hunts_in_the_file_are_a_store_error(
    store: BindingStore, path: Path, text: str
) -> None:
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(
            "INSERT INTO call_records (call_id, started_at, disposition, hunts) "
            "VALUES ('x', 1, 'answered', ?)",
            (text,),
        )
    with pytest.raises(StoreError, match="call record hunts") as caught:
        store.load_call_records()
    assert str(path) in str(caught.value)


# Never coalesced


def test_a_repeated_call_id_and_an_identical_record_are_separate_rows(
    store: BindingStore, path: Path
) -> None:
    first = record(started_at=T0 + 1)
    again = record(started_at=T0 + 2, caller="0103")  # a buggy peer reuses its Call-ID
    for r in (first, again, again):
        store.save_call_record(r)
    store.close()
    assert reopened(path) == [again, again, first]
    assert count_records(path) == 3


def test_many_records_in_one_batch_all_land(store: BindingStore, path: Path) -> None:
    from b2bua.runtime.store import (  # noqa: PLC0415
        _commit,
        _record_row,
        _Save,
        _SaveCallRecord,
        _Write,
    )

    same = record()
    writes: list[_Write] = []
    for n in range(MAX_BATCH):
        writes.append(_SaveCallRecord(_record_row(same)))
        writes.append(_Save(binding(cseq=n)))  # the binding saves, in contrast, coalesce
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        assert _commit(conn, writes, attempts=1) is True
    assert store.load_call_records(limit=10 * MAX_BATCH) == [same] * MAX_BATCH
    assert store.load_bindings(0.0) == [binding(cseq=MAX_BATCH - 1)]


def test_a_burst_of_records_between_binding_refreshes_all_land(
    store: BindingStore, path: Path
) -> None:
    total = 2 * MAX_BATCH + 1
    for n in range(total):
        store.save(binding(cseq=n))
        store.save_call_record(record(call_id=f"call-{n}", started_at=T0 + n))
    assert store.flush() is True
    loaded = store.load_call_records(limit=total + 10)
    assert [r.call_id for r in loaded] == [f"call-{n}" for n in reversed(range(total))]
    assert store.load_bindings(0.0) == [binding(cseq=total - 1)]


# Reading


@pytest.fixture
def history(store: BindingStore) -> list[CallRecord]:
    """Saved out of order; two start at the same instant (the later save is newer)."""
    saved = [
        record(call_id="two", started_at=T0 + 2),
        record(call_id="one-first", started_at=T0 + 1),
        record(call_id="three", started_at=T0 + 3),
        record(call_id="one-second", started_at=T0 + 1),
    ]
    for r in saved:
        store.save_call_record(r)
    assert store.flush() is True
    return saved


def ids(records: list[CallRecord]) -> list[str]:
    return [r.call_id for r in records]


@pytest.mark.usefixtures("history")
def test_records_load_newest_first_with_ties_by_save_order(store: BindingStore) -> None:
    assert ids(store.load_call_records()) == ["three", "two", "one-second", "one-first"]


@pytest.mark.usefixtures("history")
def test_limit_keeps_the_newest(store: BindingStore) -> None:
    assert ids(store.load_call_records(2)) == ["three", "two"]
    assert ids(store.load_call_records(limit=3)) == ["three", "two", "one-second"]
    assert store.load_call_records(0) == []
    with pytest.raises(ValueError, match="limit"):
        store.load_call_records(-1)


@pytest.mark.usefixtures("history")
def test_since_is_inclusive_and_combines_with_limit(store: BindingStore) -> None:
    assert ids(store.load_call_records(since=T0 + 2)) == ["three", "two"]
    assert ids(store.load_call_records(since=T0 + 2.5)) == ["three"]
    assert ids(store.load_call_records(3, since=T0)) == ["three", "two", "one-second"]
    assert store.load_call_records(since=T0 + 10) == []


def test_the_default_limit_is_100(store: BindingStore) -> None:
    for n in range(150):
        store.save_call_record(record(call_id=f"call-{n}", started_at=T0 + n))
    assert store.flush() is True
    assert ids(store.load_call_records()) == [f"call-{n}" for n in range(149, 49, -1)]


def test_reading_a_closed_store_is_a_store_error(path: Path) -> None:
    store = BindingStore.open(path)
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.load_call_records()
    with pytest.raises(StoreError, match="closed"):
        store.save_call_record(record())


# The writer: never blocks the caller, retries, flushes at close


def test_save_call_record_returns_while_the_writer_cannot_commit(
    store: BindingStore, path: Path
) -> None:
    with closing(sqlite3.connect(path, isolation_level=None)) as blocker:
        blocker.execute("BEGIN IMMEDIATE")  # holds the write lock: the writer cannot commit
        for n in range(500):
            store.save_call_record(record(call_id=f"call-{n}"))
        assert blocker.execute("SELECT count(*) FROM call_records").fetchone()[0] == 0
        assert store.load_call_records() == []  # queued is not committed
        blocker.execute("COMMIT")
    assert store.flush() is True
    assert count_records(path) == 500


def test_a_failed_batch_is_retried_and_its_records_land_once(path: Path) -> None:
    store = BindingStore.open(path, busy_timeout=0.01, write_attempts=50)
    try:
        with (
            closing(sqlite3.connect(path, isolation_level=None)) as blocker,
            capture_logs() as logs,
        ):
            blocker.execute("BEGIN IMMEDIATE")
            store.save(binding())
            for n in range(3):
                store.save_call_record(record(call_id=f"call-{n}", started_at=T0 + n))
            wait_until(lambda: any(e["event"] == "store_write_failed" for e in logs))
            blocker.execute("COMMIT")
            assert store.flush() is True
        failed = [e for e in logs if e["event"] == "store_write_failed"]
        assert failed[0]["operations"] == 4
        assert not any(e["event"] == "store_batch_dropped" for e in logs)
        assert ids(store.load_call_records()) == ["call-2", "call-1", "call-0"]
        assert count_records(path) == 3
        assert store.load_bindings(0.0) == [binding()]
    finally:
        store.close()


def test_a_dropped_batch_is_reported_and_later_records_land(path: Path) -> None:
    store = BindingStore.open(path, busy_timeout=0.01, write_attempts=2)
    try:
        with closing(sqlite3.connect(path, isolation_level=None)) as blocker:
            blocker.execute("BEGIN IMMEDIATE")
            store.save_call_record(record(call_id="lost"))
            assert store.flush() is False
            blocker.execute("COMMIT")
        store.save_call_record(record(call_id="kept"))
        assert store.flush() is True
        assert ids(store.load_call_records()) == ["kept"]
    finally:
        store.close()


def test_close_commits_the_records_still_queued(path: Path) -> None:
    store = BindingStore.open(path)
    saved = [record(call_id=f"call-{n}", started_at=T0 + n) for n in range(300)]
    with closing(sqlite3.connect(path, isolation_level=None)) as blocker:
        blocker.execute("BEGIN IMMEDIATE")
        for r in saved:
            store.save_call_record(r)
        closer = threading.Thread(target=store.close)
        closer.start()
        closer.join(0.2)
        assert closer.is_alive()  # close waits for the writer; it does not drop the queue
        blocker.execute("COMMIT")
    closer.join()
    assert reopened(path) == saved[::-1]


# Migration


def test_a_version_1_file_migrates_to_the_current_schema_keeping_every_binding(
    path: Path,
) -> None:
    full = binding()
    bare = binding("sip:0101@10.0.0.2", q=None, user_agent=None, instance=None)
    other = binding("sip:0102@192.0.2.11", aor="0102", cseq=99)
    write_version_1_file(path, [full, bare, other])
    assert versions(path) == [1]

    with capture_logs() as logs:
        store = BindingStore.open(path)
    try:
        assert [e["migrated_from"] for e in logs if e["event"] == "store_opened"] == [1]
        assert versions(path) == [1, 2, 3]
        assert store.load_bindings(0.0) == sorted([full, bare, other], key=lambda b: b.key)
        assert store.load_call_records() == []
        store.save_call_record(record())
        store.save(binding("sip:0103@192.0.2.12", aor="0103"))
    finally:
        store.close()

    with capture_logs() as logs:
        store = BindingStore.open(path)
    try:
        assert [e["migrated_from"] for e in logs if e["event"] == "store_opened"] == [3]
        assert len(store.load_bindings(0.0)) == 4
        assert store.load_call_records() == [record()]
    finally:
        store.close()


def test_a_version_2_file_migrates_to_3_and_its_records_read_without_hunts(path: Path) -> None:
    old = [record(), unanswered(call_id="b@x", started_at=T0 + 1.0)]
    write_version_2_file(path, [binding()], old)
    assert versions(path) == [1, 2]

    with capture_logs() as logs:
        store = BindingStore.open(path)
    try:
        assert [e["migrated_from"] for e in logs if e["event"] == "store_opened"] == [2]
        assert versions(path) == [1, 2, 3]
        assert store.load_bindings(0.0) == [binding()]
        loaded = store.load_call_records()
        assert loaded == old[::-1]
        assert [r.hunts for r in loaded] == [(), ()]
        store.save_call_record(record(call_id="new", started_at=T0 + 2.0, hunts=HUNTS))
    finally:
        store.close()

    with capture_logs() as logs:
        store = BindingStore.open(path)
    try:
        assert [e["migrated_from"] for e in logs if e["event"] == "store_opened"] == [3]
        assert [(r.call_id, r.hunts) for r in store.load_call_records()] == [
            ("new", HUNTS),
            ("b@x", ()),
            (record().call_id, ()),
        ]
    finally:
        store.close()


def test_a_failed_migration_leaves_the_version_2_file_as_it_was(path: Path) -> None:
    write_version_2_file(path, [binding()], [record()])
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("ALTER TABLE call_records ADD COLUMN hunts BLOB")  # in the way of 3
    with pytest.raises(StoreError, match=r"cannot migrate.*duplicate column"):
        BindingStore.open(path)
    assert versions(path) == [1, 2]
    assert count_records(path) == 1


def test_a_failed_migration_leaves_the_version_1_file_as_it_was(path: Path) -> None:
    write_version_1_file(path, [binding()])
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE call_records (note TEXT)")  # in the way of version 2
    with pytest.raises(StoreError, match="cannot migrate"):
        BindingStore.open(path)
    assert versions(path) == [1]
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT count(*) FROM bindings").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM call_records").fetchone()[0] == 0


def test_a_file_of_a_newer_schema_with_records_is_refused_and_left_alone(path: Path) -> None:
    store = BindingStore.open(path)
    store.save_call_record(record())
    store.close()
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (4)")
    before = path.read_bytes()
    with pytest.raises(SchemaTooNewError, match=r"schema version 4, newer than .* \(3\)"):
        BindingStore.open(path)
    assert path.read_bytes() == before
    assert count_records(path) == 1


# The status API


async def test_the_status_api_answers_hunts_as_a_json_list(tmp_path: Path) -> None:
    server = Server(
        Config.model_validate({}),
        [ListenAddress(Transport.UDP, "127.0.0.1", 0)],
        tmp_path / "data",
        status_listen="127.0.0.1:0",
    )
    await server.start()
    try:
        assert server.store is not None
        assert server.status is not None
        assert server.status.address is not None
        server.store.save_call_record(record(call_id="hunted", started_at=T0 + 1.0, hunts=HUNTS))
        server.store.save_call_record(record(call_id="direct"))
        assert server.store.flush() is True
        host, port = server.status.address
        async with (
            ClientSession() as session,
            session.get(f"http://{host}:{port}/calls?limit=10") as reply,
        ):
            assert reply.status == 200
            body = await reply.text()
    finally:
        await server.stop()
    answered = json.loads(body)
    assert [(r["call_id"], r["hunts"]) for r in answered] == [
        ("hunted", list(HUNTS)),
        ("direct", []),
    ]
    assert answered[0]["hunts"][1]["members"][2] == {
        "t": 34.5,
        "member": "0104",
        "outcome": "answered",
        "round": 1,
        "status": 200,
    }
