"""The live hunt panel: ``GET /panel`` (one static HTML page, no build step) and
``GET /panel/events``, a server-sent event stream (text/event-stream) of the panel's
state as JSON.

The stream sends the state at once, then again each time it changed: the driver calls
:meth:`PanelFeed.changed` after every input and timer it runs, the stream wakes, builds
the state from the switch's snapshot and sends it when it differs from the last one sent
(at most every ``MIN_INTERVAL`` seconds, so a busy switch costs one snapshot per tick,
not per message). A comment line every ``KEEPALIVE`` seconds keeps proxies from closing
an idle stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from typing import Any, Final

from aiohttp import web

from b2bua.runtime.records_api import hunt_trace

MIN_INTERVAL: Final = 0.1
KEEPALIVE: Final = 15.0
#: How /status names a member's state, as the panel shows it (the operations issue's words).
MEMBER_STATES: Final = {
    "idle": "idle",
    "ringing": "ringing",
    "talking": "busy",
    "dnd": "DND",
    "unregistered": "unregistered",
    "unreachable": "unreachable",
}

State = Callable[[], dict[str, Any]]


def panel_state(snapshot: Mapping[str, Any], recent: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """What the panel draws, from a /status snapshot and the latest call records (newest
    first): the groups with their members' states, the calls in progress (with the group
    they hunt in and the members ringing for them), the last calls with their outcome."""
    groups = [
        {
            "name": name,
            "strategy": group["strategy"],
            "numbers": group["numbers"] + group["public_numbers"],
            "hunting": group["hunting"],
            "members": [
                {"extension": m["extension"], "state": MEMBER_STATES.get(m["state"], m["state"])}
                for m in group["members"]
            ],
        }
        for name, group in sorted(snapshot.get("groups", {}).items())
    ]
    calls = []
    for call in snapshot.get("calls", {}).get("list", []):
        hunt = call.get("hunt") or {}
        calls.append(
            {
                "call_id": call["call_id"],
                "caller": call["caller"],
                "callee": call["callee"],
                "state": call["state"],
                "answered_by": call["answered_by"],
                "started_at": call["started_at"],
                "group": hunt.get("group"),
                "hunt_state": hunt.get("state"),
                "ringing": hunt.get("ringing", []),
            }
        )
    last = [
        {
            "call_id": record["call_id"],
            "caller": record["caller"],
            "callee": record["callee"],
            "disposition": record["disposition"],
            "answered_by": record["answered_by"],
            "started_at": record["started_at"],
            "duration": record["duration"],
            "end_reason": record["end_reason"],
            "trace": hunt_trace(record.get("hunts") or ()),
        }
        for record in recent
    ]
    return {
        "groups": groups,
        "calls": calls,
        "recent": last,
        "draining": bool(snapshot.get("draining")),
    }


def panel_html() -> str:
    return resources.files("b2bua.runtime").joinpath("panel.html").read_text(encoding="utf-8")


class PanelFeed:
    """Wakes the event streams when the switch's state may have changed."""

    def __init__(self, state: State) -> None:
        self._state = state
        self._waiters: set[asyncio.Future[None]] = set()
        self._streams: set[asyncio.Task[Any]] = set()

    @property
    def streams(self) -> int:
        return len(self._streams)

    async def close(self) -> None:
        """End every open stream (a browser left open must not hold the stop)."""
        for task in self._streams:
            task.cancel()
        await asyncio.gather(*self._streams, return_exceptions=True)

    def changed(self) -> None:
        if not self._waiters:
            return
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def _wait(self, seconds: float) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            await asyncio.wait_for(waiter, seconds)
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(waiter)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        task = asyncio.current_task()
        assert task is not None
        self._streams.add(task)
        last = ""
        try:
            while True:
                text = json.dumps(self._state(), separators=(",", ":"))
                if text != last:
                    await response.write(f"event: state\ndata: {text}\n\n".encode())
                    last = text
                    await asyncio.sleep(MIN_INTERVAL)
                    continue
                loop = asyncio.get_running_loop()
                started = loop.time()
                await self._wait(KEEPALIVE)
                if loop.time() - started >= KEEPALIVE:
                    await response.write(b": keep-alive\n\n")
        except ConnectionResetError:  # the browser went away
            pass
        finally:
            self._streams.discard(task)
        return response
