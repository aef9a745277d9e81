"""The SQLite binding store: persistence across reopen, a writer that never blocks the
caller, refusal of files it must not touch, and a clean stop."""

from __future__ import annotations

import random
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from b2bua.call.records import CallRecord, Disposition
from b2bua.registrar.binding import Binding
from b2bua.runtime.store import (
    FILE_NAME,
    SCHEMA_VERSION,
    BindingStore,
    SchemaTooNewError,
    StoreError,
)

WRITER = "b2bua-store-writer"


def binding(aor: str = "0101", contact: str = "sip:0101@192.0.2.10:5060", **kw: object) -> Binding:
    fields: dict[str, object] = {
        "aor": aor,
        "contact": contact,
        "expires_at": 1_700_003_600.25,
        "registered_at": 1_700_000_000.125,
        "call_id": "a84b4c76e66710@pc33.example.com",
        "cseq": 314159,
        "source": "udp:198.51.100.7:41234",
        "q": 0.7,
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


def reopened(path: Path, wall_now: float = 0.0) -> list[Binding]:
    store = BindingStore.open(path)
    try:
        return store.load_bindings(wall_now)
    finally:
        store.close()


def count_rows(path: Path) -> int:
    with closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("SELECT count(*) FROM bindings").fetchone()[0])


def test_saved_binding_comes_back_after_reopen_with_every_field(
    store: BindingStore, path: Path
) -> None:
    full = binding()
    bare = binding(contact="sip:0101@10.0.0.2", q=None, user_agent=None, instance=None)
    store.save(full)
    store.save(bare)
    store.close()
    assert sorted(reopened(path), key=lambda b: b.contact) == sorted(
        [full, bare], key=lambda b: b.contact
    )


def test_open_accepts_the_data_directory(tmp_path: Path) -> None:
    store = BindingStore.open(tmp_path)
    store.save(binding())
    store.close()
    assert store.path == tmp_path / FILE_NAME
    assert reopened(tmp_path / FILE_NAME) == [binding()]


def test_save_replaces_by_aor_and_contact(store: BindingStore, path: Path) -> None:
    store.save(binding(cseq=1))
    store.save(binding(cseq=2, expires_at=1_700_007_200.0))
    store.save(binding(aor="0102", cseq=3))  # same contact, other AOR: a second row
    store.close()
    assert reopened(path) == [binding(cseq=2, expires_at=1_700_007_200.0), binding("0102", cseq=3)]


def test_expired_bindings_are_dropped_and_deleted_from_the_file(
    store: BindingStore, path: Path
) -> None:
    store.save(binding(contact="sip:old@192.0.2.1", expires_at=100.0))
    store.save(binding(contact="sip:edge@192.0.2.2", expires_at=150.0))
    store.save(binding(contact="sip:new@192.0.2.3", expires_at=200.0))
    store.close()
    assert [b.contact for b in reopened(path, wall_now=150.0)] == ["sip:new@192.0.2.3"]
    assert count_rows(path) == 1
    assert [b.contact for b in reopened(path, wall_now=0.0)] == ["sip:new@192.0.2.3"]


def test_delete_and_delete_aor_last_across_reopen(store: BindingStore, path: Path) -> None:
    store.save(binding("0101", "sip:a@192.0.2.1"))
    store.save(binding("0101", "sip:b@192.0.2.2"))
    store.save(binding("0102", "sip:c@192.0.2.3"))
    store.save(binding("0102", "sip:d@192.0.2.4"))
    store.save(binding("0103", "sip:e@192.0.2.5"))
    store.delete("0101", "sip:a@192.0.2.1")
    store.delete_aor("0102")
    store.delete("0103", "sip:not-there@192.0.2.9")  # deleting nothing is fine
    store.close()
    assert [b.key for b in reopened(path)] == [
        ("0101", "sip:b@192.0.2.2"),
        ("0103", "sip:e@192.0.2.5"),
    ]


def test_save_returns_while_the_writer_cannot_commit(store: BindingStore, path: Path) -> None:
    with closing(sqlite3.connect(path, isolation_level=None)) as blocker:
        blocker.execute("BEGIN IMMEDIATE")  # holds the write lock: the writer cannot commit
        for n in range(1000):
            store.save(binding(contact=f"sip:{n}@192.0.2.1"))
        # Every call returned, yet nothing is committed: the queue holds them.
        assert blocker.execute("SELECT count(*) FROM bindings").fetchone()[0] == 0
        blocker.execute("COMMIT")
    assert store.flush() is True
    assert count_rows(path) == 1000


def test_a_batch_failing_every_attempt_is_reported_and_the_writer_goes_on(path: Path) -> None:
    store = BindingStore.open(path, busy_timeout=0.01, write_attempts=2)
    try:
        with (
            closing(sqlite3.connect(path, isolation_level=None)) as blocker,
            capture_logs() as logs,
        ):
            blocker.execute("BEGIN IMMEDIATE")
            store.save(binding(contact="sip:lost@192.0.2.1"))
            assert store.flush() is False
            blocker.execute("COMMIT")
        events = [entry["event"] for entry in logs]
        assert events == ["store_write_failed", "store_write_failed", "store_batch_dropped"]
        store.save(binding(contact="sip:kept@192.0.2.2"))
        assert store.flush() is True
        assert [b.contact for b in store.load_bindings(0.0)] == ["sip:kept@192.0.2.2"]
    finally:
        store.close()


def test_a_file_of_a_newer_schema_is_refused_and_left_alone(path: Path) -> None:
    BindingStore.open(path).close()
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION + 1,))
    before = path.read_bytes()
    with pytest.raises(SchemaTooNewError, match=rf"schema version {SCHEMA_VERSION + 1}, newer"):
        BindingStore.open(path)
    assert path.read_bytes() == before


def test_a_garbage_file_is_refused_naming_the_path(path: Path) -> None:
    path.write_bytes(random.Random(0).randbytes(8192))
    with pytest.raises(StoreError, match="file is not a database") as caught:
        BindingStore.open(path)
    assert str(path) in str(caught.value)


def test_a_foreign_sqlite_database_is_refused(path: Path) -> None:
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE accounts (id INTEGER)")
    with pytest.raises(StoreError, match="not a b2bua store"):
        BindingStore.open(path)


def test_a_missing_directory_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "absent" / FILE_NAME
    with pytest.raises(StoreError, match="cannot open the store") as caught:
        BindingStore.open(path)
    assert str(path) in str(caught.value)


def test_a_fresh_file_gets_the_current_schema_version(store: BindingStore, path: Path) -> None:
    with closing(sqlite3.connect(path)) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_version")]
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    store.close()
    BindingStore.open(path).close()  # reopening migrates nothing
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT count(*) FROM schema_version").fetchone()[0] == SCHEMA_VERSION


def test_wal_mode_is_on(store: BindingStore, path: Path) -> None:
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_close_twice_is_fine_and_stops_the_writer(path: Path) -> None:
    store = BindingStore.open(path)
    assert any(t.name == WRITER for t in threading.enumerate())
    store.save(binding())
    store.close()
    store.close()
    assert not any(t.name == WRITER for t in threading.enumerate())
    with pytest.raises(StoreError, match="closed"):
        store.save(binding())
    assert reopened(path) == [binding()]


def test_flush_with_nothing_queued_is_true(store: BindingStore) -> None:
    assert store.flush() is True
    assert store.load_bindings(0.0) == []


def test_a_batch_keeps_only_the_saves_that_matter(tmp_path: Path) -> None:
    from b2bua.runtime.store import _coalesced, _Delete, _Save  # noqa: PLC0415

    def save(contact: str, expires_at: float, aor: str = "0101") -> _Save:
        return _Save(
            Binding(
                aor=aor,
                contact=contact,
                expires_at=expires_at,
                registered_at=1.0,
                call_id="c",
                cseq=1,
                source="udp:h:1",
            )
        )

    a1, a2, b1 = save("sip:a", 10), save("sip:a", 20), save("sip:b", 10)
    gone = _Delete("0101", "sip:b")
    everything = _Delete("0101", None)
    other = save("sip:c", 30, aor="0102")
    assert _coalesced([a1, b1, a2, gone]) == [a2, gone]
    assert _coalesced([a1, b1, everything, other]) == [everything, other]
    assert _coalesced([everything, a1]) == [everything, a1]


def test_a_batch_keeps_every_call_record_and_still_coalesces_bindings() -> None:
    from b2bua.runtime.store import _coalesced, _record_row, _Save, _SaveCallRecord  # noqa: PLC0415

    row = _record_row(
        CallRecord(
            call_id="c",
            caller="0101",
            caller_name=None,
            callee="0102",
            answered_by=None,
            started_at=1.0,
            answered_at=None,
            ended_at=2.0,
            duration=0.0,
            disposition=Disposition.NO_ANSWER,
            caller_status=480,
            callee_status=None,
            end_reason="ring timeout",
        )
    )
    r1, r2, r3 = _SaveCallRecord(row), _SaveCallRecord(row), _SaveCallRecord(row)
    a1, a2 = _Save(binding(cseq=1)), _Save(binding(cseq=2))
    assert r1 != r2  # the same record twice is two calls
    assert _coalesced([r1, a1, r2, a2, r3]) == [r1, r2, a2, r3]
    assert [id(op) for op in _coalesced([r1, r2, r3])] == [id(r1), id(r2), id(r3)]


def test_bindings_and_call_records_share_the_file_and_the_writer(
    store: BindingStore, path: Path
) -> None:

    cdr = CallRecord(
        call_id="c",
        caller="0101",
        caller_name="Desk",
        callee="0102",
        answered_by="0102",
        started_at=10.0,
        answered_at=12.0,
        ended_at=20.0,
        duration=8.0,
        disposition=Disposition.ANSWERED,
        caller_status=200,
        callee_status=200,
        end_reason="caller BYE",
    )
    store.save(binding())
    store.save_call_record(cdr)
    store.delete_aor("0101")
    store.close()
    reader = BindingStore.open(path)
    try:
        assert reader.load_bindings(0.0) == []
        assert reader.load_call_records() == [cdr]
    finally:
        reader.close()
    assert not any(t.name == WRITER for t in threading.enumerate())
