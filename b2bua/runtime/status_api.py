"""The HTTP status server (aiohttp, 127.0.0.1 by default): ``GET /status`` answers the
switch's snapshot as JSON; ``GET /calls?limit=N`` the latest call detail records, newest
first; ``GET /healthz`` answers ``ok``. Read-only; the operations issue grows it (metrics,
the live panel)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final

import structlog
from aiohttp import web

log = structlog.get_logger(__name__)

Snapshot = Callable[[], dict[str, Any]]
#: Reads the latest call records (a blocking SQLite read: run in a thread).
CallRecords = Callable[[int], list[dict[str, Any]]]
MAX_RECORDS: Final = 1000


class StatusServer:
    def __init__(self, snapshot: Snapshot, call_records: CallRecords | None = None) -> None:
        self._snapshot = snapshot
        self._call_records = call_records
        self._runner: web.AppRunner | None = None
        self.address: tuple[str, int] | None = None

    async def start(self, host: str, port: int) -> None:
        app = web.Application()
        app.router.add_get("/status", self._status)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/calls", self._calls)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        bound = sockets[0].getsockname() if sockets else (host, port)
        self.address = (str(bound[0]), int(bound[1]))
        log.info("status_server_started", address=f"http://{self.address[0]}:{self.address[1]}")

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response(self._snapshot())

    async def _calls(self, request: web.Request) -> web.Response:
        if self._call_records is None:
            raise web.HTTPNotFound(text="call records are not kept\n")
        text = request.query.get("limit", "100")
        if not text.isdigit() or not 1 <= int(text) <= MAX_RECORDS:
            raise web.HTTPBadRequest(text=f"limit must be 1 to {MAX_RECORDS}\n")
        loop = asyncio.get_running_loop()
        records = await loop.run_in_executor(None, self._call_records, int(text))
        return web.json_response(records)

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")
