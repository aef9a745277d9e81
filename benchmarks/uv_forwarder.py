"""The ceiling for a Python RTP relay (benchmarks/bench_relay.py): a raw uvloop datagram
forwarder with nothing but latching.

For each of N calls it binds two UDP ports on 127.0.0.1 (side A: ``base + 4 i``, side B:
``base + 4 i + 2``); the first datagram on a side latches that side to its source, and
every datagram is sent out of the other side's socket to the other side's latched
address (dropped until that side has latched). No parsing, no counters, no RTCP: what
is left is the event loop's per-datagram cost, which the switch's relay pays too.

Run: ``python benchmarks/uv_forwarder.py --calls N --base-port P --ready-file F``; it
writes ``{"pid": ..., "pairs": [[port_a, port_b], ...]}`` to F once bound, then relays
until SIGTERM or SIGINT (or ``--max-seconds``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import signal
from pathlib import Path
from typing import cast

import uvloop


class _Side(asyncio.DatagramProtocol):
    __slots__ = ("other", "peer", "transport")

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.peer: tuple[str, int] | None = None
        self.other: _Side | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio's: no isinstance check.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.peer is None:
            self.peer = addr
        other = self.other
        if other is not None and other.peer is not None and other.transport is not None:
            other.transport.sendto(data, other.peer)

    def error_received(self, exc: Exception) -> None:  # ICMP errors: keep relaying
        pass


async def serve(calls: int, base_port: int, ready_file: Path, max_seconds: float) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    transports: list[asyncio.BaseTransport] = []
    pairs: list[list[int]] = []
    for index in range(calls):
        port_a = base_port + 4 * index
        sides: list[_Side] = []
        for port in (port_a, port_a + 2):
            transport, protocol = await loop.create_datagram_endpoint(
                _Side, local_addr=("127.0.0.1", port)
            )
            transports.append(transport)
            sides.append(protocol)
        sides[0].other, sides[1].other = sides[1], sides[0]
        pairs.append([port_a, port_a + 2])
    partial = ready_file.with_suffix(".tmp")
    partial.write_text(json.dumps({"pid": os.getpid(), "pairs": pairs}))
    partial.rename(ready_file)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), max_seconds)
    for endpoint in transports:
        endpoint.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--base-port", type=int, default=10000)
    parser.add_argument("--ready-file", type=Path, required=True)
    parser.add_argument("--max-seconds", type=float, default=600.0, help="stop by itself")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(args.calls, args.base_port, args.ready_file, args.max_seconds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
