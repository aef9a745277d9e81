"""A pyVoIP phone for e2e tests, run as its own process (pyVoIP is GPLv3: an interop peer
in tests, never imported by the product or by the test process itself).

pyVoIP 1.6.8 misbehaves in ways real phones do (PEERS.md): on CANCEL it answers 200 but
never 487, and may still answer the cancelled INVITE with 200 later. This script makes
that reproducible: it registers, then answers every incoming call ``--answer-after``
seconds after it arrived, whatever happened in between, holds it ``--hold`` seconds and
hangs up (unless the other side did). Events go to stdout as JSON lines:
``{"event": "registered"}``, ``{"event": "ringing"}``, ``{"event": "answered"}``,
``{"event": "answer_failed", "error": ...}``, ``{"event": "ended"}``.

    python -m tests.support.pyvoip_phone --server 127.0.0.1:5060 --user 0103 \\
        --password secret --sip-port 5301 --rtp 31000-31099 --answer-after 2 --hold 2
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import Any


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, "time": time.time(), **fields}) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True, help="HOST:PORT of the switch")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--sip-port", type=int, required=True)
    parser.add_argument("--rtp", required=True, help="LOW-HIGH")
    parser.add_argument("--answer-after", type=float, default=0.0)
    parser.add_argument("--hold", type=float, default=2.0)
    parser.add_argument("--lifetime", type=float, default=60.0)
    args = parser.parse_args(argv)

    from pyVoIP.VoIP import VoIPPhone  # noqa: PLC0415 - only in the child process

    host, _, port = args.server.rpartition(":")
    low, _, high = args.rtp.partition("-")

    def on_call(call: Any) -> None:
        emit("ringing")
        time.sleep(args.answer_after)
        try:
            call.answer()
        except Exception as error:
            emit("answer_failed", error=repr(error))
            return
        emit("answered")
        deadline = time.monotonic() + args.hold
        while time.monotonic() < deadline and str(call.state) == "CallState.ANSWERED":
            time.sleep(0.05)
        if str(call.state) == "CallState.ANSWERED":
            try:
                call.hangup()
            except Exception as error:
                emit("hangup_failed", error=repr(error))
        emit("ended", state=str(call.state))

    phone = VoIPPhone(
        host,
        int(port),
        args.user,
        args.password,
        myIP="127.0.0.1",
        callCallback=on_call,
        sipPort=args.sip_port,
        rtpPortLow=int(low),
        rtpPortHigh=int(high),
    )
    phone.start()
    emit("registered")
    stop = threading.Event()
    stop.wait(args.lifetime)
    phone.stop()
    emit("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
