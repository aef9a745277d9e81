"""The HTTP status server (aiohttp, 127.0.0.1 by default): ``GET /status`` answers the
switch's snapshot as JSON; ``GET /calls`` the latest call detail records, newest first,
as JSON or CSV, filtered by time, number or member (:mod:`b2bua.runtime.records_api`);
``GET /metrics`` the Prometheus metrics (:mod:`b2bua.runtime.metrics`); ``GET /panel``
the live hunt panel and ``GET /panel/events`` its event stream
(:mod:`b2bua.runtime.panel`); ``GET /healthz`` answers ``ok``, or 503 ``draining`` once
SIGTERM asked the switch to drain (a load balancer stops sending it calls).

With a ``token`` (``[status] token``) every path but ``/healthz`` wants
``Authorization: Bearer <token>`` (RFC 6750 section 2.1), or ``?access_token=<token>``
(section 2.3: a browser's EventSource cannot set headers), else 401.

Voicemail, when a message store is given: ``GET /voicemail/{mailbox}`` lists the messages
(JSON, oldest first, each with its ``url``), ``GET /voicemail/{mailbox}/{id}.wav`` gives
the file (``audio/wav``), ``DELETE /voicemail/{mailbox}/{id}`` deletes it (204, 404 when
unknown), ``POST /voicemail/{mailbox}/{id}/read`` marks it read (the message as JSON). A
mailbox is 1 to 15 digits and an id has the store's form, or the answer is 404: no path
leaves the mailbox's directory. After a delete or a read change, ``on_voicemail_change``
gets the mailbox (the switch updates the message-waiting lamp)."""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import hmac
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Protocol

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from b2bua.runtime.mailstore import MAILBOX_RE, MESSAGE_ID_RE, Message
from b2bua.runtime.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from b2bua.runtime.metrics import Metrics
from b2bua.runtime.panel import PanelFeed, panel_html
from b2bua.runtime.records_api import CallQuery, QueryError, parse_query, to_csv

log = structlog.get_logger(__name__)

Snapshot = Callable[[], dict[str, Any]]
#: Reads the latest call records (a blocking SQLite read: run in a thread).
CallRecords = Callable[[CallQuery], list[dict[str, Any]]]
#: Paths open without the token (a load balancer's health check has none).
OPEN_PATHS: Final = frozenset({"/healthz"})
#: How long a stop waits for requests in progress (event streams are ended first).
SHUTDOWN_TIMEOUT: Final = 2.0
#: Called on the event loop with the mailbox whose messages changed.
VoicemailChanged = Callable[[str], None]


class Voicemail(Protocol):
    """What the status server needs of the message store
    (:class:`b2bua.runtime.mailstore.MessageStore`). ``list``, ``get``, ``wav_path`` and
    ``mark_read`` answer from memory, on the event loop; ``delete`` blocks on the disk and
    runs in an executor."""

    def list(self, mailbox: str) -> builtins.list[Message]: ...

    def get(self, mailbox: str, message_id: str) -> Message | None: ...

    def wav_path(self, mailbox: str, message_id: str) -> Path: ...

    def mark_read(self, mailbox: str, message_id: str, is_read: bool = True) -> Message | None: ...

    def delete(self, mailbox: str, message_id: str) -> bool: ...


class StatusServer:
    def __init__(
        self,
        snapshot: Snapshot,
        call_records: CallRecords | None = None,
        *,
        voicemail: Voicemail | None = None,
        on_voicemail_change: VoicemailChanged | None = None,
        metrics: Metrics | None = None,
        panel: PanelFeed | None = None,
        token: str | None = None,
        is_draining: Callable[[], bool] | None = None,
    ) -> None:
        self._snapshot = snapshot
        self._call_records = call_records
        self._metrics = metrics
        self._panel = panel
        self._token = token
        self._is_draining = is_draining
        self._voicemail = voicemail
        self._on_voicemail_change = on_voicemail_change
        self._runner: web.AppRunner | None = None
        self.address: tuple[str, int] | None = None

    async def start(self, host: str, port: int) -> None:
        app = web.Application(middlewares=[self._authorize])
        app.router.add_get("/status", self._status)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/calls", self._calls)
        app.router.add_get("/metrics", self._metrics_text)
        app.router.add_get("/panel", self._panel_page)
        app.router.add_get("/panel/events", self._panel_events)
        app.router.add_get("/voicemail/{mailbox}", self._voicemail_list)
        app.router.add_get("/voicemail/{mailbox}/{message_id}.wav", self._voicemail_wav)
        app.router.add_delete("/voicemail/{mailbox}/{message_id}", self._voicemail_delete)
        app.router.add_post("/voicemail/{mailbox}/{message_id}/read", self._voicemail_read)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        bound = sockets[0].getsockname() if sockets else (host, port)
        self.address = (str(bound[0]), int(bound[1]))
        log.info("status_server_started", address=f"http://{self.address[0]}:{self.address[1]}")

    async def stop(self) -> None:
        if self._panel is not None:
            await self._panel.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response(self._snapshot())

    @web.middleware
    async def _authorize(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        token = self._token
        if token is not None and request.path not in OPEN_PATHS:
            header = request.headers.get("Authorization", "")
            scheme, _, credentials = header.partition(" ")
            supplied = (
                credentials.strip()
                if scheme.lower() == "bearer"
                else request.query.get("access_token", "")
            )
            if not hmac.compare_digest(supplied.encode(), token.encode()):
                raise web.HTTPUnauthorized(
                    text="a bearer token is required\n",
                    headers={"WWW-Authenticate": 'Bearer realm="b2bua"'},
                )
        return await handler(request)

    async def _calls(self, request: web.Request) -> web.Response:
        if self._call_records is None:
            raise web.HTTPNotFound(text="call records are not kept\n")
        try:
            query = parse_query(request.query, request.headers.get("Accept", ""))
        except QueryError as error:
            raise web.HTTPBadRequest(text=f"{error}\n") from None
        loop = asyncio.get_running_loop()
        records = await loop.run_in_executor(None, self._call_records, query)
        if query.csv:
            return web.Response(
                text=to_csv(records),
                content_type="text/csv",
                headers={"Content-Disposition": 'inline; filename="calls.csv"'},
            )
        return web.json_response(records)

    async def _metrics_text(self, request: web.Request) -> web.Response:
        if self._metrics is None:
            raise web.HTTPNotFound(text="no metrics\n")
        return web.Response(
            body=self._metrics.exposition(), headers={"Content-Type": METRICS_CONTENT_TYPE}
        )

    async def _panel_page(self, request: web.Request) -> web.Response:
        if self._panel is None:
            raise web.HTTPNotFound(text="no panel\n")
        return web.Response(text=panel_html(), content_type="text/html")

    async def _panel_events(self, request: web.Request) -> web.StreamResponse:
        if self._panel is None:
            raise web.HTTPNotFound(text="no panel\n")
        return await self._panel.stream(request)

    async def _healthz(self, request: web.Request) -> web.Response:
        if self._is_draining is not None and self._is_draining():
            return web.Response(status=503, text="draining\n", headers={"Retry-After": "30"})
        return web.Response(text="ok\n")

    # -- Voicemail

    def _voicemail_store(self) -> Voicemail:
        if self._voicemail is None:
            raise web.HTTPNotFound(text="voicemail is not kept\n")
        return self._voicemail

    def _message_of(self, request: web.Request) -> tuple[Voicemail, Message]:
        store = self._voicemail_store()
        mailbox, message_id = _mailbox_of(request), request.match_info["message_id"]
        message = store.get(mailbox, message_id) if MESSAGE_ID_RE.fullmatch(message_id) else None
        if message is None:
            raise web.HTTPNotFound(text="no such message\n")
        return store, message

    async def _voicemail_list(self, request: web.Request) -> web.Response:
        store = self._voicemail_store()
        return web.json_response([_message_json(m) for m in store.list(_mailbox_of(request))])

    async def _voicemail_wav(self, request: web.Request) -> web.StreamResponse:
        store, message = self._message_of(request)
        # FileResponse opens and sends the file off the event loop, and answers 404 itself
        # when a delete wins the race.
        return web.FileResponse(
            store.wav_path(message.mailbox, message.message_id),
            headers={
                "Content-Type": "audio/wav",
                "Content-Disposition": f'attachment; filename="{message.message_id}.wav"',
            },
        )

    async def _voicemail_delete(self, request: web.Request) -> web.Response:
        store, message = self._message_of(request)
        loop = asyncio.get_running_loop()
        deleted = await loop.run_in_executor(
            None, store.delete, message.mailbox, message.message_id
        )
        if not deleted:  # another request deleted it meanwhile
            raise web.HTTPNotFound(text="no such message\n")
        self._changed(message.mailbox)
        return web.Response(status=204)

    async def _voicemail_read(self, request: web.Request) -> web.Response:
        store, message = self._message_of(request)
        marked = store.mark_read(message.mailbox, message.message_id)
        if marked is None:
            raise web.HTTPNotFound(text="no such message\n")
        if not message.is_read:
            self._changed(message.mailbox)
        return web.json_response(_message_json(marked))

    def _changed(self, mailbox: str) -> None:
        if self._on_voicemail_change is None:
            return
        try:
            self._on_voicemail_change(mailbox)
        except Exception:  # the change is made; a failing listener must not undo the answer
            log.exception("voicemail_change_callback_failed", mailbox=mailbox)


def _mailbox_of(request: web.Request) -> str:
    mailbox = request.match_info["mailbox"]
    if MAILBOX_RE.fullmatch(mailbox) is None:
        raise web.HTTPNotFound(text="no such mailbox\n")
    return mailbox


def _message_json(message: Message) -> dict[str, object]:
    item: dict[str, object] = dataclasses.asdict(message)
    item["received"] = datetime.fromtimestamp(message.received_at, tz=UTC).isoformat()
    item["url"] = f"/voicemail/{message.mailbox}/{message.message_id}.wav"
    return item
