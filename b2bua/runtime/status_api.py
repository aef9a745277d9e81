"""The HTTP status server (aiohttp, 127.0.0.1 by default): ``GET /status`` answers the
switch's snapshot as JSON; ``GET /healthz`` answers ``ok``. Read-only; the operations
issue grows it (metrics, call records, the live panel)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from aiohttp import web

log = structlog.get_logger(__name__)

Snapshot = Callable[[], dict[str, Any]]


class StatusServer:
    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self._runner: web.AppRunner | None = None
        self.address: tuple[str, int] | None = None

    async def start(self, host: str, port: int) -> None:
        app = web.Application()
        app.router.add_get("/status", self._status)
        app.router.add_get("/healthz", self._healthz)
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

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")
