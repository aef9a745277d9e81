"""Start the softswitch and SIP test peers as real processes, always bounded.

The harness for ``tests/e2e``: ``start_switch`` runs ``python -m b2bua run`` on ephemeral
ports and waits for its ready file (a bounded poll, never a fixed sleep); ``run_sipp`` and
``run_bounded`` run a peer with an outer deadline and kill it by PID when it passes.
Every process started here is stopped by PID: the ``switch_factory`` fixture stops the
switches a test started even when the test fails.

This module never imports the product: a switch that cannot even import must show up as
a start failure carrying its stderr, not as a collection error.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NamedTuple, Protocol

import pytest

READY_TIMEOUT: Final = 15.0
"""Seconds the switch gets to write its ready file."""
STOP_TIMEOUT: Final = 10.0
"""Seconds between SIGTERM and SIGKILL."""
POLL_INTERVAL: Final = 0.02
SIPP: Final = "sipp"
OUTER_GRACE: Final = 10.0
"""Seconds a peer may run past its own ``-timeout`` before it is killed."""

DEFAULT_CONFIG: Final = '[server]\nlisten = ["udp:127.0.0.1:0"]\n[sip]\nt1 = 0.5\n'


class SwitchStartError(RuntimeError):
    """The switch died, or did not write its ready file in time; carries its stderr."""


class Address(NamedTuple):
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


class ListenEntry(NamedTuple):
    transport: str
    address: Address


def parse_listen(text: str) -> ListenEntry:
    """``udp:127.0.0.1:40001`` (or ``tcp:[::1]:5060``) from the ready file."""
    transport, sep, rest = text.partition(":")
    host, colon, port_text = rest.rpartition(":")
    if not sep or not colon or not port_text.isdigit():
        raise ValueError(f"unexpected listen address in the ready file: {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return ListenEntry(transport.lower(), Address(host, int(port_text)))


@dataclass
class RunningSwitch:
    """A ``python -m b2bua run`` process that has written its ready file."""

    process: subprocess.Popen[bytes]
    workdir: Path
    stderr_path: Path
    listen: tuple[ListenEntry, ...]
    ready_pid: int
    status_address: Address | None = None
    exit_code: int | None = field(default=None, init=False)
    token: str | None = field(default=None, init=False)
    """The ``[status] token`` the status server wants, sent as a bearer token."""

    @property
    def pid(self) -> int:
        return self.process.pid

    def address(self, transport: str) -> Address:
        for entry in self.listen:
            if entry.transport == transport:
                return entry.address
        raise LookupError(f"the switch does not listen on {transport}: {self.listen}")

    @property
    def udp(self) -> Address:
        return self.address("udp")

    @property
    def tcp(self) -> Address:
        return self.address("tcp")

    def status(self) -> dict[str, Any]:
        """GET /status from the switch's status server, as JSON."""
        document: dict[str, Any] = self._get("/status")
        return document

    def calls(self, limit: int = 100) -> list[dict[str, Any]]:
        """GET /calls: the call detail records, oldest first."""
        records: list[dict[str, Any]] = self._get(f"/calls?limit={limit}")
        return records[::-1]

    def _get(self, path: str) -> Any:
        if self.status_address is None:
            raise LookupError("the switch runs no status server")
        url = f"http://{self.status_address.host}:{self.status_address.port}{path}"
        headers = {} if self.token is None else {"Authorization": f"Bearer {self.token}"}
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=5
        ) as reply:
            return json.load(reply)

    def is_alive(self) -> bool:
        return self.process.poll() is None

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self, timeout: float = STOP_TIMEOUT, signum: int = signal.SIGTERM) -> int:
        """``signum`` (SIGTERM) by PID, wait up to ``timeout`` s, then SIGKILL; the exit code.

        A process killed by a signal gives ``-signum`` (``subprocess`` convention), so a
        switch that needed SIGKILL shows as -9. Idempotent: a second call returns the
        first exit code.
        """
        if self.exit_code is not None:
            return self.exit_code
        self.exit_code = _terminate(self.process, timeout, signum)
        return self.exit_code


def _terminate(
    process: subprocess.Popen[bytes], timeout: float, signum: int = signal.SIGTERM
) -> int:
    # Signal only a child not yet reaped: its PID cannot have been recycled.
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signum)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
    return process.wait(timeout=timeout)


def start_switch(
    tmp_path: Path,
    config_text: str | None = None,
    transports: Sequence[str] = ("udp", "tcp"),
    *,
    extra_args: Sequence[str] = (),
    ready_timeout: float = READY_TIMEOUT,
    data_dir: Path | None = None,
    ports: dict[str, int] | None = None,
) -> RunningSwitch:
    """Start the switch on ephemeral 127.0.0.1 ports, return once it serves.

    ``data_dir`` keeps state across a restart; ``ports`` (by transport) binds fixed ports
    instead of ephemeral ones, so peers can find a restarted switch again.

    Raises ``SwitchStartError`` (with the server's stderr) when the process exits or
    ``ready_timeout`` seconds pass before the ready file appears; the process is then
    already stopped.
    """
    workdir = Path(tempfile.mkdtemp(prefix="switch-", dir=tmp_path))
    config = workdir / "switch.toml"
    config.write_text(DEFAULT_CONFIG if config_text is None else config_text)
    ready = workdir / "ready.json"
    stderr_path = workdir / "stderr.log"
    command = [sys.executable, "-m", "b2bua", "run", "--config", str(config)]
    for transport in transports:
        command += ["--listen", f"{transport}:127.0.0.1:{(ports or {}).get(transport, 0)}"]
    command += ["--data-dir", str(data_dir or workdir / "data"), "--ready-file", str(ready)]
    command += ["--status-listen", "127.0.0.1:0"]
    command += ["--log-format", "json", *extra_args]
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            command, cwd=workdir, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr
        )
    try:
        pid, listen, status = _wait_ready(process, ready, stderr_path, ready_timeout)
    except BaseException:
        _terminate(process, STOP_TIMEOUT)
        raise
    running = RunningSwitch(process, workdir, stderr_path, listen, pid, status)
    if pid != process.pid:
        running.stop()
        raise SwitchStartError(f"ready file names pid {pid}, the process is {process.pid}")
    return running


def _wait_ready(
    process: subprocess.Popen[bytes], ready: Path, stderr_path: Path, timeout: float
) -> tuple[int, tuple[ListenEntry, ...], Address | None]:
    deadline = time.monotonic() + timeout
    while True:
        # The switch writes the file atomically (write + rename): present means complete.
        if ready.exists():
            document = json.loads(ready.read_text())
            listen = tuple(parse_listen(text) for text in document["listen"])
            status = document.get("status")
            status_address = None
            if status:
                host, _, port = str(status).rpartition(":")
                status_address = Address(host, int(port))
            return int(document["pid"]), listen, status_address
        code = process.poll()
        if code is not None:
            raise SwitchStartError(
                f"the switch exited with {code} before it was ready; stderr:\n"
                + stderr_path.read_text(errors="replace")
            )
        if time.monotonic() > deadline:
            raise SwitchStartError(
                f"no ready file after {timeout} s; stderr:\n"
                + stderr_path.read_text(errors="replace")
            )
        time.sleep(POLL_INTERVAL)


class SwitchFactory(Protocol):
    def __call__(
        self, config_text: str | None = None, transports: Sequence[str] = ("udp", "tcp")
    ) -> RunningSwitch: ...


@pytest.fixture
def switch_factory(tmp_path: Path) -> Iterator[SwitchFactory]:
    """Start switches for a test; every one is stopped by PID at teardown."""
    started: list[RunningSwitch] = []

    def factory(
        config_text: str | None = None, transports: Sequence[str] = ("udp", "tcp")
    ) -> RunningSwitch:
        running = start_switch(tmp_path, config_text, transports)
        started.append(running)
        return running

    try:
        yield factory
    finally:
        for running in started:
            running.stop()


@pytest.fixture
def switch(switch_factory: SwitchFactory) -> RunningSwitch:
    """One switch on UDP and TCP with the minimal config."""
    return switch_factory()


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP right now (bound to 0, then released).

    Another process may take it before the caller binds it; callers that start a peer
    retry on a bind failure (``run_sipp`` does).
    """
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port: int = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no port free for both UDP and TCP after 50 tries")


def free_udp_pair(host: str = "127.0.0.1") -> int:
    """An even-spaced pair P, P+2 of free UDP ports (SIPp's ``-mp`` binds both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as first:
            first.bind((host, 0))
            port: int = first.getsockname()[1]
            if port + 2 > 65535:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as second:
                try:
                    second.bind((host, port + 2))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free UDP port pair after 50 tries")


def run_bounded(
    command: Sequence[str], timeout: float, *, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``command``; past ``timeout`` s kill it by PID and raise ``TimeoutExpired``."""
    process = subprocess.Popen(
        list(command),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate(timeout=STOP_TIMEOUT)
        raise subprocess.TimeoutExpired(list(command), timeout, stdout, stderr) from None
    except BaseException:
        # KeyboardInterrupt, pytest-timeout: never leave the peer running.
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)
        raise
    return subprocess.CompletedProcess(list(command), process.returncode, stdout, stderr)


SIPP_BIND_FAILED: Final = 254
"""SIPp's exit code (-2) for "fatal error binding a socket"."""


def run_sipp(
    args: Sequence[str], timeout: float, *, cwd: Path | None = None, attempts: int = 3
) -> subprocess.CompletedProcess[str]:
    """Run SIPp with ``args``, always bounded.

    Adds ``-timeout <timeout>s -timeout_error -nd -nostdin``, ``-m 1`` unless ``args``
    has ``-m``, and a free SIP port (``-p``), control port (``-cp``) and media ports
    (``-mp``) unless given: SIPp binds 5060, 8888 and 6000/6002 by default, which
    parallel runs would fight over. The
    process gets ``timeout`` + 10 s before it is killed by PID. A bind failure (exit
    254, a port taken between ``free_port`` and SIPp's bind) is retried with new ports.
    """
    owned = sorted({"-timeout", "-timeout_error", "-nd", "-nostdin"} & set(args))
    if owned:
        raise ValueError(f"run_sipp sets {', '.join(owned)} itself; leave them out of args")
    base = [SIPP, *args, "-timeout", f"{timeout:g}s", "-timeout_error", "-nd", "-nostdin"]
    if "-m" not in args:
        base += ["-m", "1"]
    result: subprocess.CompletedProcess[str] | None = None
    for _ in range(attempts):
        command = list(base)
        if "-p" not in args:
            command += ["-p", str(free_port())]
        if "-cp" not in args:
            command += ["-cp", str(free_port())]
        if "-mp" not in args:
            command += ["-mp", str(free_udp_pair())]
        result = run_bounded(command, timeout + OUTER_GRACE, cwd=cwd)
        if result.returncode != SIPP_BIND_FAILED:
            return result
    assert result is not None
    return result


def log_events(switch: RunningSwitch, event: str) -> list[dict[str, Any]]:
    """The switch's JSON log lines (``--log-format json``) for ``event``, in order."""
    found = []
    for line in switch.stderr_text().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == event:
                found.append(record)
    return found


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``predicate`` until it is true; fail the test naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"{what} did not happen within {timeout} s")


REQUIRE_ENV: Final = "B2BUA_REQUIRE_E2E"
"""Set to 1 (CI does) and a missing peer program fails its test instead of skipping it."""


def require_tools(*tools: str) -> None:
    """Skip the running test when one of ``tools`` is not on PATH (a developer machine
    without the SIP peers), or fail it when ``B2BUA_REQUIRE_E2E=1``: CI must never pass
    by skipping."""
    missing = sorted(tool for tool in tools if shutil.which(tool) is None)
    if not missing:
        return
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(
            f"{REQUIRE_ENV}=1 but {', '.join(missing)} not found on PATH "
            "(install packaging/apt-packages.txt: `make apt` as root)",
            pytrace=False,
        )
    pytest.skip(f"{', '.join(missing)} not installed (set {REQUIRE_ENV}=1 to fail instead)")


def assert_nothing_left(switch: RunningSwitch, idle_tasks: int | None = None) -> None:
    """Once every call has finished: no call, no allocated media port, no media session
    or socket, and (given the idle count) no more asyncio tasks than when idle."""
    wait_until(lambda: switch.status()["calls"]["finishing"] == 0, 40, "every call to finish")
    status = switch.status()
    assert status["calls"]["active"] == 0
    assert status["calls"]["list"] == []
    assert status["media_ports"]["allocated"] == 0
    assert status["media"] == {"sessions": 0, "sockets": 0}
    if idle_tasks is not None:
        assert status["tasks"] <= idle_tasks
