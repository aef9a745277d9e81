"""Voicemail over the status API, against a real MessageStore: the list with download
links, the file byte for byte, delete and read with the change callback, and paths that
try to leave the mailbox refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import ClientSession
from structlog.testing import capture_logs

from b2bua.runtime.mailstore import Message, MessageInfo, MessageStore, new_message_id
from b2bua.runtime.status_api import StatusServer
from media.wav import WavWriter

T0 = 1_795_421_803.0


@dataclass
class Api:
    base: str
    address: tuple[str, int]
    http: ClientSession
    store: MessageStore
    changes: list[str]
    messages: list[Message]


def add(store: MessageStore, mailbox: str, token: str, at: float, seed: int) -> Message:
    meta = MessageInfo(
        mailbox=mailbox,
        message_id=new_message_id(at, token),
        received_at=at,
        caller_number="0101",
        caller_name="Front Desk",
        called_number=mailbox,
    )
    part = store.begin(meta)
    with part.open("xb") as stream:
        writer = WavWriter(stream)
        writer.append(bytes((seed + n) % 256 for n in range(16_000)))
        writer.close()
    return store.commit(meta, part)


async def open_api(tmp_path: Path, changes: list[str], **kw: object) -> AsyncIterator[Api]:
    store = MessageStore.open(tmp_path)
    store.recover(1.0)
    messages = [
        add(store, "0102", "000001", T0, 1),
        add(store, "0102", "000002", T0 + 60, 2),
        add(store, "0103", "000003", T0 + 5, 3),
    ]
    (tmp_path / "secret.txt").write_text("not for the web")
    server = StatusServer(lambda: {}, voicemail=store, on_voicemail_change=changes.append, **kw)  # type: ignore[arg-type]
    await server.start("127.0.0.1", 0)
    assert server.address is not None
    host, port = server.address
    try:
        async with ClientSession() as http:
            yield Api(f"http://{host}:{port}", server.address, http, store, changes, messages)
    finally:
        await server.stop()
        store.close()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async for value in open_api(tmp_path, []):
        yield value


async def raw_get(address: tuple[str, int], target: str, method: str = "GET") -> tuple[int, bytes]:
    """A request with ``target`` sent exactly as written (no client normalises it)."""
    reader, writer = await asyncio.open_connection(*address)
    writer.write(f"{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    status = int(response.split(b" ", 2)[1])
    return status, response


# Listing and download


async def test_the_list_has_every_message_with_its_metadata_and_link(api: Api) -> None:
    first, second, _ = api.messages
    async with api.http.get(f"{api.base}/voicemail/0102") as response:
        assert response.status == 200
        body = await response.json()
    assert [item["message_id"] for item in body] == [first.message_id, second.message_id]
    assert body[0] == {
        "mailbox": "0102",
        "message_id": first.message_id,
        "received_at": T0,
        "received": "2026-11-23T08:16:43+00:00",
        "caller_number": "0101",
        "caller_name": "Front Desk",
        "called_number": "0102",
        "hunt_group": None,
        "duration": 1.0,
        "size": 16_044,
        "is_read": False,
        "url": f"/voicemail/0102/{first.message_id}.wav",
    }
    async with api.http.get(f"{api.base}/voicemail/0199") as response:
        assert response.status == 200
        assert await response.json() == []


async def test_the_download_is_the_stored_file_byte_for_byte(api: Api) -> None:
    message = api.messages[1]
    async with api.http.get(f"{api.base}/voicemail/0102") as response:
        url = (await response.json())[1]["url"]
    async with api.http.get(api.base + url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "audio/wav"
        assert f'filename="{message.message_id}.wav"' in response.headers["Content-Disposition"]
        data = await response.read()
    assert data == api.store.wav_path("0102", message.message_id).read_bytes()


async def test_a_message_of_another_mailbox_is_not_found(api: Api) -> None:
    other = api.messages[2]
    async with api.http.get(f"{api.base}/voicemail/0102/{other.message_id}.wav") as response:
        assert response.status == 404


# Delete and read


async def test_delete_answers_204_then_the_message_is_gone(api: Api) -> None:
    first, second, _ = api.messages
    async with api.http.delete(f"{api.base}/voicemail/0102/{first.message_id}") as response:
        assert response.status == 204
    assert api.changes == ["0102"]
    assert not api.store.wav_path("0102", first.message_id).exists()
    async with api.http.get(f"{api.base}/voicemail/0102/{first.message_id}.wav") as response:
        assert response.status == 404
    async with api.http.delete(f"{api.base}/voicemail/0102/{first.message_id}") as response:
        assert response.status == 404
    async with api.http.get(f"{api.base}/voicemail/0102") as response:
        assert [item["message_id"] for item in await response.json()] == [second.message_id]
    assert api.changes == ["0102"]  # a failed delete changes nothing


async def test_read_marks_the_message_and_reports_a_change_once(api: Api) -> None:
    first = api.messages[0]
    url = f"{api.base}/voicemail/0102/{first.message_id}/read"
    async with api.http.post(url) as response:
        assert response.status == 200
        body = await response.json()
    assert body["is_read"] is True
    assert api.store.counts("0102") == (1, 1)
    async with api.http.post(url) as response:
        assert response.status == 200
    assert api.changes == ["0102"]  # already read: no second change
    async with api.http.post(f"{api.base}/voicemail/0102/1795421803000-ffffff/read") as response:
        assert response.status == 404


async def test_a_failing_change_callback_is_logged_and_the_delete_stands(
    tmp_path: Path,
) -> None:
    def broken(mailbox: str) -> None:
        raise RuntimeError("lamp on fire")

    async for api in open_api(tmp_path, []):
        server = StatusServer(lambda: {}, voicemail=api.store, on_voicemail_change=broken)
        await server.start("127.0.0.1", 0)
        assert server.address is not None
        try:
            first = api.messages[0]
            url = (
                f"http://{server.address[0]}:{server.address[1]}/voicemail/0102/{first.message_id}"
            )
            with capture_logs() as logs:
                async with api.http.delete(url) as response:
                    assert response.status == 204
            assert "voicemail_change_callback_failed" in [entry["event"] for entry in logs]
            assert api.store.get("0102", first.message_id) is None
        finally:
            await server.stop()


# Refusals


@pytest.mark.parametrize(
    "target",
    [
        "/voicemail/0102/..%2F..%2Fsecret.txt",
        "/voicemail/0102/..%2F..%2Fvoicemail%2Fmessages.sqlite3.wav",
        "/voicemail/..%2F..%2Fsecret.txt",
        "/voicemail/0102/../../secret.txt",
        "/voicemail/0102/%2e%2e/%2e%2e/secret.txt",
        "/voicemail/0102%2F..%2F..%2Fsecret/x.wav",
        "/voicemail/..%2F/1795421803000-000001.wav",
        "/voicemail/0102/1795421803000-000001%2F..%2F..%2F..%2Fsecret.txt.wav",
        "/voicemail/0102/%2Fetc%2Fpasswd.wav",
        "/voicemail/abc/1795421803000-000001.wav",
        "/voicemail/0102/1795421803000-00000G.wav",
        "/voicemail/0102/.1795421803000-000001.wav.part",
    ],
)
async def test_paths_that_leave_the_mailbox_are_refused(api: Api, target: str) -> None:
    for method in ("GET", "DELETE", "POST"):
        status, response = await raw_get(api.address, target, method)
        assert status in (400, 404, 405), (method, target, status)
        assert b"not for the web" not in response
        assert b"SQLite format 3" not in response
        assert b"root:" not in response
    assert api.store.counts("0102") == (2, 0)
    assert api.changes == []


async def test_a_server_without_a_message_store_has_no_voicemail(tmp_path: Path) -> None:
    server = StatusServer(lambda: {})
    await server.start("127.0.0.1", 0)
    assert server.address is not None
    try:
        status, response = await raw_get(server.address, "/voicemail/0102")
        assert status == 404
        assert b"voicemail is not kept" in response
        status, _ = await raw_get(server.address, "/healthz")
        assert status == 200
    finally:
        await server.stop()
