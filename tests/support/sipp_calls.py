"""SIPp callers and callees for calls through the switch (sipp-scenarios/call_*.xml).

A callee is one SIPp process (:class:`Callee`): call_uas_register.xml (or
call_uas_register_stay.xml for many calls) registers the extension with digest, and the
callee behaviour runs as its out-of-call scenario (-oocsf) for every INVITE the switch
sends. A caller either runs to its end (:func:`call`, bounded by ``run_sipp``) or in the
background (:class:`BackgroundCall`), for a call that must be up while the test does
something else. Every process is stopped by PID.

Each SIPp writes its messages (``-trace_msg``) and errors (``-trace_err``) to
``DIRECTORY/NAME-messages.log`` and ``NAME-errors.log``: :func:`report` puts them in a
failure message, :func:`sipp_messages` reads the messages back with SIPp's timestamps.

Passwords: the test configs give extension N the password ``secret-N`` (:func:`password`);
pass ``secret`` for a config with other passwords (configs/flower-shop.toml).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, NamedTuple

from tests.support.processes import (
    OUTER_GRACE,
    SIPP,
    RunningSwitch,
    free_port,
    free_udp_pair,
    run_sipp,
    wait_until,
)

SCENARIOS: Final = Path(__file__).resolve().parents[2] / "sipp-scenarios"
HOST: Final = "127.0.0.1"
CALL_TIMEOUT: Final = 30.0


def password(number: str) -> str:
    """The password the test configs give extension ``number``."""
    return f"secret-{number}"


def users(directory: Path, number: str, secret: str | None = None) -> Path:
    """A SIPp injection file for extension ``number`` (field0: the number, field1: its
    ``[authentication ...]`` keyword); ``secret`` defaults to :func:`password`."""
    path = directory / f"user-{number}.csv"
    path.write_text(
        f"SEQUENTIAL\n{number};[authentication username={number} "
        f"password={password(number) if secret is None else secret}]\n"
    )
    return path


def traces(directory: Path, name: str) -> list[str]:
    return [
        "-trace_err", "-error_file", str(directory / f"{name}-errors.log"),
        "-trace_msg", "-message_file", str(directory / f"{name}-messages.log"),
    ]  # fmt: skip


def report(directory: Path, *results: subprocess.CompletedProcess[str] | None) -> str:
    parts = [f"exit {r.returncode}\n{r.stderr[-2000:]}" for r in results if r is not None]
    parts += [
        f"--- {log.name}:\n{log.read_text(errors='replace')[-3000:]}"
        for log in sorted(directory.glob("*.log"))
    ]
    return "\n".join(parts)


def target(switch: RunningSwitch, transport: str) -> list[str]:
    """SIPp's remote address and transport option for the switch's ``transport``."""
    if transport == "tcp":
        return [str(switch.tcp), "-t", "t1"]
    return [str(switch.udp)]


def caller_args(
    switch: RunningSwitch,
    scenario: str,
    directory: Path,
    *extra: str,
    called: str,
    caller: str | None,
    secret: str | None,
    name: str,
    transport: str = "udp",
) -> list[str]:
    """SIPp's arguments for a caller scenario; ``caller`` None: no injection file (a
    public call, call_uac_public_*.xml)."""
    args = [*target(switch, transport), "-sf", str(SCENARIOS / scenario)]
    if caller is not None:
        args += ["-inf", str(users(directory, caller, secret))]
    return [*args, "-s", called, "-i", HOST, *traces(directory, name), *extra]


def call(
    switch: RunningSwitch,
    scenario: str,
    directory: Path,
    *extra: str,
    called: str = "0102",
    calls: int = 1,
    transport: str = "udp",
    caller: str | None = "0101",
    secret: str | None = None,
    name: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a caller scenario as extension ``caller`` (None: a public call without
    credentials) to ``called``; its result. ``name`` names its trace files (default
    ``caller-SCENARIO``)."""
    args = caller_args(
        switch, scenario, directory, *extra, called=called, caller=caller, secret=secret,
        name=name or f"caller-{scenario}", transport=transport,
    )  # fmt: skip
    if calls > 1:
        args += ["-m", str(calls), "-r", "20", "-l", str(calls)]
    return run_sipp(args, CALL_TIMEOUT, cwd=directory)


def _kill(process: subprocess.Popen[str]) -> None:
    # Only a child not yet reaped: its PID cannot have been recycled.
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    if process.stderr is not None:
        process.stderr.close()


@dataclass
class BackgroundCall:
    """A caller scenario running while the test goes on (one call); stop it by PID."""

    process: subprocess.Popen[str]
    name: str
    directory: Path

    @classmethod
    def start(
        cls,
        switch: RunningSwitch,
        scenario: str,
        directory: Path,
        *extra: str,
        called: str,
        caller: str | None,
        secret: str | None = None,
        name: str,
        timeout: float = CALL_TIMEOUT,
    ) -> BackgroundCall:
        args = caller_args(
            switch, scenario, directory, *extra, called=called, caller=caller, secret=secret,
            name=name,
        )  # fmt: skip
        command = [
            SIPP, *args, "-p", str(free_port()), "-cp", str(free_port()),
            "-mp", str(free_udp_pair()), "-m", "1",
            "-timeout", f"{timeout:g}s", "-timeout_error", "-nd", "-nostdin",
        ]  # fmt: skip
        process = subprocess.Popen(
            command,
            cwd=directory,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        return cls(process, name, directory)

    def finish(self, timeout: float = CALL_TIMEOUT + OUTER_GRACE) -> int:
        """Wait for the call to end by itself; SIPp's exit code (0: the scenario passed)."""
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self.stop()

    def stop(self) -> None:
        _kill(self.process)

    def __enter__(self) -> BackgroundCall:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@dataclass
class Callee:
    """A SIPp callee: registers ``number``, then serves INVITEs with ``behaviour``."""

    process: subprocess.Popen[str]
    number: str
    directory: Path

    @classmethod
    def start(
        cls,
        switch: RunningSwitch,
        number: str,
        behaviour: str,
        directory: Path,
        *,
        stay: bool = False,
        media_port: int | None = None,
        transport: str = "udp",
        secret: str | None = None,
    ) -> Callee:
        register = "call_uas_register_stay.xml" if stay else "call_uas_register.xml"
        command = [
            SIPP, *target(switch, transport), "-sf", str(SCENARIOS / register),
            "-oocsf", str(SCENARIOS / behaviour), "-inf", str(users(directory, number, secret)),
            "-i", HOST, "-p", str(free_port()), "-cp", str(free_port()),
            "-mp", str(media_port or free_udp_pair()), "-m", "1",
            "-timeout", f"{2 * CALL_TIMEOUT:g}s", "-timeout_error", "-nd", "-nostdin",
            *traces(directory, f"callee-{number}"),
        ]  # fmt: skip
        process = subprocess.Popen(
            command,
            cwd=directory,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        callee = cls(process, number, directory)
        try:
            wait_until(
                lambda: number in switch.status()["registrations"] or process.poll() is not None,
                10,
                f"SIPp callee {number} registering",
            )
            assert process.poll() is None, report(directory)
        except BaseException:
            callee.stop()
            raise
        return callee

    @property
    def messages_log(self) -> Path:
        return self.directory / f"callee-{self.number}-messages.log"

    def finish(self, timeout: float = CALL_TIMEOUT) -> int:
        """Wait for a one-call callee to end by itself; its exit code."""
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self.stop()

    def stop(self) -> None:
        _kill(self.process)


@contextlib.contextmanager
def callees(
    switch: RunningSwitch,
    directory: Path,
    behaviours: Sequence[tuple[str, str]],
    *,
    stay: bool = True,
    secret: dict[str, str] | None = None,
) -> Iterator[list[Callee]]:
    """Callees, one per (number, behaviour), stopped by PID at the end; ``stay`` (the
    default) serves any number of calls, else each ends after its first call."""
    started: list[Callee] = []
    try:
        for number, behaviour in behaviours:
            key = (secret or {}).get(number)
            started.append(
                Callee.start(switch, number, behaviour, directory, stay=stay, secret=key)
            )
        yield started
    finally:
        for callee in started:
            callee.stop()


# -- reading SIPp's message traces back

#: A -trace_msg entry's header: dashes, then SIPp's clock as local date and time (SIPp 3.6).
_ENTRY: Final = re.compile(
    r"^-{10,} (?P<stamp>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\s*$", re.MULTILINE
)
#: "UDP message sent (325 bytes):" or "UDP message received [377] bytes :".
_DIRECTION: Final = re.compile(r"^\S+ message (?P<direction>sent|received)[^\n]*\n", re.MULTILINE)


class SippMessage(NamedTuple):
    """One message of a SIPp -trace_msg file: when (Unix time, SIPp's clock), whether
    SIPp sent or received it, and its first line (``INVITE sip:...`` or ``SIP/2.0 200 OK``)."""

    at: float
    sent: bool
    first_line: str
    text: str

    @property
    def method(self) -> str | None:
        """The request's method; None for a response."""
        word = self.first_line.split(" ", 1)[0]
        return None if word.startswith("SIP/") else word

    @property
    def status(self) -> int | None:
        """The response's status code; None for a request."""
        parts = self.first_line.split(" ", 2)
        return int(parts[1]) if parts[0].startswith("SIP/") and len(parts) > 1 else None

    @property
    def cseq_method(self) -> str:
        found = re.search(r"^CSeq:\s*\d+\s+(\S+)", self.text, re.MULTILINE | re.IGNORECASE)
        return found.group(1) if found else ""


def sipp_messages(path: Path) -> list[SippMessage]:
    """Every message of a -trace_msg file, in order (an absent file: none). ``at`` is
    SIPp's local time as a Unix time: comparable between the SIPp processes of a test."""
    if not path.exists():
        return []
    text = path.read_text(errors="replace")
    headers = list(_ENTRY.finditer(text))
    out: list[SippMessage] = []
    for index, header in enumerate(headers):
        end = headers[index + 1].start() if index + 1 < len(headers) else len(text)
        chunk = text[header.end() : end]
        direction = _DIRECTION.search(chunk)
        if direction is None:
            continue
        body = chunk[direction.end() :].strip("\r\n")
        first = body.splitlines()[0].strip() if body else ""
        # SIPp writes its local time: read it as local time.
        stamp = datetime.strptime(header["stamp"], "%Y-%m-%d %H:%M:%S.%f").astimezone()
        at = stamp.timestamp()
        out.append(SippMessage(at, direction["direction"] == "sent", first, body))
    return out


def received(path: Path, method: str) -> list[SippMessage]:
    """The requests of ``method`` a SIPp received (retransmissions included)."""
    return [m for m in sipp_messages(path) if not m.sent and m.method == method]


def sent(path: Path, method: str) -> list[SippMessage]:
    """The requests of ``method`` a SIPp sent (retransmissions included)."""
    return [m for m in sipp_messages(path) if m.sent and m.method == method]
