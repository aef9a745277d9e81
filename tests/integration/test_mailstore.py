"""Voicemail messages on disk: a recording committed as a message (WAV fixed, renamed,
metadata in SQLite), read flags and deletes that last across a restart, and recovery after a
crash (a half-written recording becomes a valid message with its caller, a short one goes,
files and rows are brought together, nothing valid is lost)."""

from __future__ import annotations

import os
import random
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from b2bua.runtime.mailstore import (
    DIRECTORY,
    FILE_NAME,
    MESSAGE_ID_RE,
    SCHEMA_VERSION,
    Message,
    MessageInfo,
    MessageStore,
    MessageStoreError,
    new_message_id,
    received_at_of,
)
from media.wav import HEADER_SIZE, WavWriter, header_for, read_wav, write_wav

T0 = 1_795_421_803.125
WRITER = "b2bua-voicemail-writer"
SECOND = 16_000  # bytes of 8 kHz 16-bit PCM


def pcm(seconds: float, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(int(seconds * SECOND) // 2 * 2)


def info(
    mailbox: str = "0102", at: float = T0, token: str = "3fa9c1", **kw: str | None
) -> MessageInfo:
    fields: dict[str, str | None] = {
        "caller_number": "0101",
        "caller_name": "Flower Shop Front Desk",
        "called_number": "600",
        "hunt_group": "600",
    }
    fields.update(kw)
    return MessageInfo(
        mailbox=mailbox, message_id=new_message_id(at, token), received_at=at, **fields
    )


def record(store: MessageStore, meta: MessageInfo, audio: bytes, *, finish: bool = True) -> Path:
    """What the media host does: WavWriter on the recording path, PCM appended as it comes,
    the header fixed at the end unless ``finish`` is False (the host died)."""
    part = store.begin(meta)
    with part.open("xb") as stream:
        writer = WavWriter(stream)
        for start in range(0, len(audio), 320):
            writer.append(audio[start : start + 320])
        if finish:
            writer.close()
    return part


def store_message(store: MessageStore, meta: MessageInfo, audio: bytes) -> Message:
    return store.commit(meta, record(store, meta, audio))


def reopen(data_dir: Path, min_length: float = 1.0) -> MessageStore:
    store = MessageStore.open(data_dir)
    store.recover(min_length)
    return store


def files(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def store(data_dir: Path) -> Iterator[MessageStore]:
    store = reopen(data_dir)
    yield store
    store.close()


# Ids and paths


def test_ids_sort_by_time_and_give_it_back() -> None:
    early, late = new_message_id(T0), new_message_id(T0 + 0.001)
    assert MESSAGE_ID_RE.fullmatch(early)
    assert early.startswith("1795421803125-")
    assert sorted([late, early]) == [early, late]
    assert received_at_of(early) == 1_795_421_803.125
    assert len({new_message_id(T0) for _ in range(100)}) == 100


def test_new_id_avoids_the_ids_of_stored_messages(store: MessageStore) -> None:
    message_id = store.new_id(T0)
    assert MESSAGE_ID_RE.fullmatch(message_id)
    assert received_at_of(message_id) == pytest.approx(T0, abs=0.001)


@pytest.mark.parametrize(
    ("mailbox", "message_id"),
    [
        ("..", "1795421803125-3fa9c1"),
        ("0102/../..", "1795421803125-3fa9c1"),
        ("", "1795421803125-3fa9c1"),
        ("0102", "../../messages"),
        ("0102", "1795421803125-3FA9C1"),
        ("0102", "1795421803125-3fa9c1/x"),
        ("1234567890123456", "1795421803125-3fa9c1"),
    ],
)
def test_paths_are_refused_for_anything_but_a_mailbox_number_and_an_id(
    store: MessageStore, mailbox: str, message_id: str
) -> None:
    for method in (store.wav_path, store.recording_path, store.get, store.mark_read, store.delete):
        with pytest.raises(ValueError, match="not a"):
            method(mailbox, message_id)


def test_the_layout_is_one_directory_per_mailbox(store: MessageStore, data_dir: Path) -> None:
    meta = info()
    assert store.recording_path("0102", meta.message_id) == (
        data_dir / DIRECTORY / "0102" / f".{meta.message_id}.wav.part"
    )
    assert store.wav_path("0102", meta.message_id) == (
        data_dir / DIRECTORY / "0102" / f"{meta.message_id}.wav"
    )
    assert (data_dir / DIRECTORY / FILE_NAME).is_file()


# Commit


def test_a_committed_recording_is_a_valid_wav_with_its_metadata(
    store: MessageStore, data_dir: Path
) -> None:
    meta, audio = info(), pcm(2.5)
    part = record(store, meta, audio)
    assert part.name == f".{meta.message_id}.wav.part"
    assert (part.parent / f".{meta.message_id}.json").is_file()  # the sidecar, at begin
    message = store.commit(meta, part)
    assert message == Message(
        mailbox="0102",
        message_id=meta.message_id,
        received_at=T0,
        caller_number="0101",
        caller_name="Flower Shop Front Desk",
        called_number="600",
        hunt_group="600",
        duration=2.5,
        size=HEADER_SIZE + len(audio),
        is_read=False,
    )
    wav = store.wav_path("0102", meta.message_id)
    assert wav.read_bytes() == write_wav(audio)
    assert store.flush() is True
    assert files(wav.parent) == [wav.name]  # no .part, and the sidecar went with the commit
    assert store.list("0102") == [message]
    assert store.get("0102", meta.message_id) == message


def test_commit_fixes_the_header_of_a_recording_whose_writer_never_closed(
    store: MessageStore,
) -> None:
    meta, audio = info(), pcm(1.5, seed=3)
    part = record(store, meta, audio, finish=False)
    assert part.read_bytes()[:HEADER_SIZE] == header_for(0)
    message = store.commit(meta, part)
    assert read_wav(store.wav_path("0102", meta.message_id).read_bytes()).frames == audio
    assert message.duration == 1.5


def test_commit_refuses_a_path_that_is_not_the_recording(
    store: MessageStore, tmp_path: Path
) -> None:
    meta = info()
    record(store, meta, pcm(1.0))
    with pytest.raises(ValueError, match="is not the recording"):
        store.commit(meta, tmp_path / "elsewhere.wav.part")


def test_messages_and_their_metadata_last_across_a_restart(
    store: MessageStore, data_dir: Path
) -> None:
    first = store_message(store, info(token="000001", caller_name="Ann"), pcm(1.0))
    second = store_message(store, info(at=T0 + 60, token="000002"), pcm(1.0, 1))
    other = store_message(store, info("0103", token="000003", hunt_group=None), pcm(3.0, 2))
    store.close()
    again = reopen(data_dir)
    try:
        assert again.list("0102") == [first, second]
        assert again.list("0103") == [other]
        assert other.hunt_group is None
        assert again.list("0104") == []
    finally:
        again.close()


def test_discard_removes_the_recording_and_its_sidecar(store: MessageStore) -> None:
    meta = info()
    part = record(store, meta, pcm(0.2))
    store.discard(part)
    assert files(part.parent) == []
    assert store.list("0102") == []


def test_an_id_is_used_once(store: MessageStore) -> None:
    meta = info()
    store.begin(meta)
    with pytest.raises(FileExistsError):
        store.begin(meta)


# Read flags, counts, deletes


def test_counts_follow_read_flags_and_last_across_a_restart(
    store: MessageStore, data_dir: Path
) -> None:
    ids = [store_message(store, info(token=f"00000{n}"), pcm(1.0)).message_id for n in range(3)]
    store_message(store, info("0103", token="000009"), pcm(1.0))
    assert store.counts("0102") == (3, 0)
    marked = store.mark_read("0102", ids[1])
    assert marked is not None
    assert marked.is_read
    assert store.counts("0102") == (2, 1)
    assert store.mark_read("0102", ids[1]) == marked  # already read: nothing changes
    assert store.mark_read("0102", "1795421803125-ffffff") is None
    assert store.counts_all() == {"0102": (2, 1), "0103": (1, 0)}
    assert store.counts("0199") == (0, 0)
    store.close()
    again = reopen(data_dir)
    try:
        assert again.counts_all() == {"0102": (2, 1), "0103": (1, 0)}
        unread = again.mark_read("0102", ids[1], is_read=False)
        assert unread is not None
        assert not unread.is_read
        assert again.counts("0102") == (3, 0)
    finally:
        again.close()


def test_delete_removes_file_and_row(store: MessageStore, data_dir: Path) -> None:
    kept = store_message(store, info(token="000001"), pcm(1.0))
    gone = store_message(store, info(token="000002"), pcm(1.0, 1))
    assert store.delete("0102", gone.message_id) is True
    assert store.delete("0102", gone.message_id) is False
    assert store.get("0102", gone.message_id) is None
    assert not store.wav_path("0102", gone.message_id).exists()
    assert store.counts_all() == {"0102": (1, 0)}
    store.close()
    with closing(sqlite3.connect(data_dir / DIRECTORY / FILE_NAME)) as conn:
        rows = conn.execute("SELECT message_id FROM voicemail_messages").fetchall()
    assert rows == [(kept.message_id,)]


def test_mark_read_returns_while_the_writer_cannot_commit(
    store: MessageStore, data_dir: Path
) -> None:
    message = store_message(store, info(), pcm(1.0))
    assert store.flush() is True
    path = data_dir / DIRECTORY / FILE_NAME
    with closing(sqlite3.connect(path, isolation_level=None)) as blocker:
        blocker.execute("BEGIN IMMEDIATE")  # the writer cannot commit
        for _ in range(50):
            store.mark_read("0102", message.message_id, is_read=True)
            store.mark_read("0102", message.message_id, is_read=False)
        assert store.counts("0102") == (1, 0)  # answered from memory at once
        blocker.execute("COMMIT")
    assert store.flush() is True


def test_the_store_must_be_recovered_before_use(data_dir: Path) -> None:
    store = MessageStore.open(data_dir)
    try:
        with pytest.raises(MessageStoreError, match="recover"):
            store.list("0102")
    finally:
        store.close()


def test_close_stops_the_writer_and_is_idempotent(data_dir: Path) -> None:
    store = reopen(data_dir)
    assert any(t.name == WRITER for t in threading.enumerate())
    store.close()
    store.close()
    assert not any(t.name == WRITER for t in threading.enumerate())


def test_the_file_gets_its_own_schema_version(store: MessageStore, data_dir: Path) -> None:
    with closing(sqlite3.connect(data_dir / DIRECTORY / FILE_NAME)) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_version")]
        columns = [c[1] for c in conn.execute("PRAGMA table_info(voicemail_messages)")]
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    assert columns == [
        "mailbox",
        "message_id",
        "caller_number",
        "caller_name",
        "called_number",
        "hunt_group",
        "received_at",
        "duration",
        "size",
        "is_read",
    ]
    assert mode == "wal"


def test_a_foreign_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / DIRECTORY).mkdir()
    with closing(sqlite3.connect(tmp_path / DIRECTORY / FILE_NAME)) as conn, conn:
        conn.execute("CREATE TABLE accounts (id INTEGER)")
    with pytest.raises(MessageStoreError, match="not a message store"):
        MessageStore.open(tmp_path)


# Crash safety


def test_a_recording_cut_by_a_crash_becomes_a_valid_message_and_nothing_else_changes(
    data_dir: Path,
) -> None:
    store = reopen(data_dir)
    earlier = store_message(store, info(token="000001"), pcm(2.0, seed=1))
    other_box = store_message(store, info("0103", token="000002"), pcm(1.0, seed=2))
    earlier_bytes = store.wav_path("0102", earlier.message_id).read_bytes()
    meta, audio = info(at=T0 + 30, token="00000a", caller_name="Müller & Söhne"), pcm(3.0, 7)
    part = record(store, meta, audio, finish=False)
    with part.open("ab") as stream:
        stream.write(b"\x01")  # the last sample torn in half by the crash
    store.close()  # the process dies: nothing commits the recording

    again = MessageStore.open(data_dir)
    try:
        with capture_logs() as logs:
            report = again.recover(1.0)
        wav = again.wav_path("0102", meta.message_id)
        assert read_wav(wav.read_bytes()).frames == audio
        assert wav.read_bytes() == write_wav(audio)
        recovered = Message(
            mailbox="0102",
            message_id=meta.message_id,
            received_at=T0 + 30,
            caller_number="0101",
            caller_name="Müller & Söhne",
            called_number="600",
            hunt_group="600",
            duration=3.0,
            size=HEADER_SIZE + len(audio),
        )
        assert report.recovered == (recovered,)
        assert report.discarded == ()
        assert report.indexed == ()
        assert report.forgotten == ()
        assert report.messages == 3
        assert again.list("0102") == [earlier, recovered]
        assert again.list("0103") == [other_box]
        assert again.wav_path("0102", earlier.message_id).read_bytes() == earlier_bytes
        assert files(wav.parent) == sorted([f"{earlier.message_id}.wav", wav.name])
        assert "voicemail_recording_recovered" in [entry["event"] for entry in logs]
    finally:
        again.close()
    last = reopen(data_dir)  # the recovered row was committed
    try:
        assert last.list("0102") == [earlier, recovered]
    finally:
        last.close()


def test_recovery_deletes_recordings_shorter_than_the_minimum(data_dir: Path) -> None:
    store = reopen(data_dir)
    short, long_enough = info(token="00000b"), info(token="00000c")
    record(store, short, pcm(0.98), finish=False)
    record(store, long_enough, pcm(1.0), finish=False)
    tiny = store.begin(info(token="00000d"))
    tiny.write_bytes(b"RIFF")  # died inside the header
    store.close()
    again = MessageStore.open(data_dir)
    try:
        report = again.recover(1.0)
        assert sorted(p.name for p in report.discarded) == [
            f".{short.message_id}.wav.part",
            f".{info(token='00000d').message_id}.wav.part",
        ]
        assert [m.message_id for m in report.recovered] == [long_enough.message_id]
        assert files(data_dir / DIRECTORY / "0102") == [f"{long_enough.message_id}.wav"]
    finally:
        again.close()


def test_the_minimum_length_may_depend_on_the_mailbox(data_dir: Path) -> None:
    store = reopen(data_dir)
    record(store, info("0102", token="000001"), pcm(2.0), finish=False)
    record(store, info("0103", token="000002"), pcm(2.0), finish=False)
    store.close()
    again = MessageStore.open(data_dir)
    try:
        report = again.recover(lambda mailbox: 5.0 if mailbox == "0103" else 1.0)
        assert [m.mailbox for m in report.recovered] == ["0102"]
        assert [p.parent.name for p in report.discarded] == ["0103"]
    finally:
        again.close()


def test_a_recording_without_sidecar_is_recovered_with_an_unknown_caller(
    data_dir: Path,
) -> None:
    store = reopen(data_dir)
    meta, audio = info(token="0000aa"), pcm(1.25)
    part = record(store, meta, audio, finish=False)
    store.sidecar_path("0102", meta.message_id).unlink()
    store.close()
    again = MessageStore.open(data_dir)
    try:
        (message,) = again.recover(1.0).recovered
        assert message.caller_number is message.caller_name is message.called_number is None
        assert message.received_at == T0  # from the id
        assert message.duration == 1.25
        assert not part.exists()
    finally:
        again.close()


def test_an_unreadable_sidecar_is_logged_and_the_audio_kept(data_dir: Path) -> None:
    store = reopen(data_dir)
    meta = info(token="0000ab")
    record(store, meta, pcm(1.0), finish=False)
    store.sidecar_path("0102", meta.message_id).write_bytes(b'{"mailbox": "01')  # torn
    store.close()
    again = MessageStore.open(data_dir)
    try:
        with capture_logs() as logs:
            (message,) = again.recover(1.0).recovered
        assert message.caller_number is None
        assert "voicemail_sidecar_unreadable" in [entry["event"] for entry in logs]
    finally:
        again.close()


def test_a_header_zeroed_by_a_power_cut_is_rebuilt(data_dir: Path) -> None:
    store = reopen(data_dir)
    meta, audio = info(token="0000ac"), pcm(1.0, 4)
    part = store.begin(meta)
    part.write_bytes(bytes(HEADER_SIZE) + audio)
    store.close()
    again = MessageStore.open(data_dir)
    try:
        with capture_logs() as logs:
            (message,) = again.recover(1.0).recovered
        assert read_wav(again.wav_path("0102", meta.message_id).read_bytes()).frames == audio
        assert message.caller_number == "0101"
        assert "voicemail_header_rebuilt" in [entry["event"] for entry in logs]
    finally:
        again.close()


def test_a_wav_without_a_row_is_indexed_with_its_sidecar(data_dir: Path) -> None:
    # As if the process died between the rename and the commit of the row.
    store = reopen(data_dir)
    meta, audio = info(token="0000ad"), pcm(1.5)
    store.begin(meta)
    wav = store.wav_path("0102", meta.message_id)
    wav.write_bytes(write_wav(audio))
    bare = info(token="0000ae")
    store.wav_path("0102", bare.message_id).write_bytes(write_wav(pcm(0.5)))  # no sidecar
    store.close()
    again = MessageStore.open(data_dir)
    try:
        report = again.recover(1.0)  # the minimum is for recordings: a .wav is a message
        assert [(m.message_id, m.caller_number) for m in report.indexed] == [
            (meta.message_id, "0101"),
            (bare.message_id, None),
        ]
        assert report.indexed[0].duration == 1.5
        assert report.indexed[1].duration == 0.5
        assert files(wav.parent) == sorted([wav.name, f"{bare.message_id}.wav"])
    finally:
        again.close()
    last = reopen(data_dir)
    try:
        assert [m.message_id for m in last.list("0102")] == [meta.message_id, bare.message_id]
    finally:
        last.close()


def test_a_row_without_its_file_is_forgotten(data_dir: Path) -> None:
    store = reopen(data_dir)
    gone = store_message(store, info(token="0000af"), pcm(1.0))
    kept = store_message(store, info(token="0000b0"), pcm(1.0))
    store.close()
    store.wav_path("0102", gone.message_id).unlink()
    again = MessageStore.open(data_dir)
    try:
        report = again.recover(1.0)
        assert report.forgotten == (("0102", gone.message_id),)
        assert again.list("0102") == [kept]
    finally:
        again.close()
    with closing(sqlite3.connect(data_dir / DIRECTORY / FILE_NAME)) as conn:
        assert conn.execute("SELECT count(*) FROM voicemail_messages").fetchone()[0] == 1


def test_other_files_are_left_alone(data_dir: Path) -> None:
    store = reopen(data_dir)
    box = data_dir / DIRECTORY / "0102"
    box.mkdir()
    (box / "greeting.wav").write_bytes(write_wav(pcm(1.0)))
    (box / "notes.txt").write_text("mine")
    (data_dir / DIRECTORY / "archive").mkdir()
    (data_dir / DIRECTORY / "archive" / ".1795421803125-3fa9c1.wav.part").write_bytes(b"x")
    store.close()
    again = reopen(data_dir)
    try:
        assert again.counts_all() == {}
        assert files(box) == ["greeting.wav", "notes.txt"]
        assert files(data_dir / DIRECTORY / "archive") == [".1795421803125-3fa9c1.wav.part"]
    finally:
        again.close()


def test_a_sidecar_without_recording_is_deleted(data_dir: Path) -> None:
    store = reopen(data_dir)
    store.begin(info(token="0000b1"))  # the media host never started
    store.close()
    again = reopen(data_dir)
    try:
        assert files(data_dir / DIRECTORY / "0102") == []
    finally:
        again.close()
