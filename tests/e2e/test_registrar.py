"""The registrar over real SIP: SIPp registers with digest, wrong credentials are
refused alike, a replayed nonce-count gets nowhere, brute force is blocked and the block
lifts, and a binding survives a restart and still routes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import pytest

from tests.e2e.scenarios import SCENARIOS, run_scenario
from tests.support.processes import (
    Address,
    RunningSwitch,
    SwitchFactory,
    free_port,
    free_udp_pair,
    start_switch,
)

pytestmark = pytest.mark.e2e

CONFIG: Final = """
[server]
listen = ["udp:127.0.0.1:0"]
[sip]
t1 = 0.5
[security]
max_failures = 3
failure_window = 60
block_time = 3
[extensions."0101"]
name = "Mary"
password = "change-me-0101"
qualify = {qualify}
[extensions."0102"]
name = "Iris"
password = "change-me-0102"
"""


def config(qualify: float = 0) -> str:
    return CONFIG.format(qualify=qualify)


def users(tmp_path: Path, *lines: tuple[str, str]) -> Path:
    """A SIPp injection file: user; the authentication keyword with that password."""
    path = tmp_path / f"users-{len(list(tmp_path.glob('users-*')))}.csv"
    rows = [
        f"{user};[authentication username={user} password={password}]" for user, password in lines
    ]
    path.write_text("SEQUENTIAL\n" + "\n".join(rows) + "\n")
    return path


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"{what} did not happen within {timeout} s")


def registrations(switch: RunningSwitch) -> dict[str, Any]:
    result: dict[str, Any] = switch.status()["registrations"]
    return result


def test_sipp_registers_with_digest_and_status_shows_the_binding(
    switch_factory: SwitchFactory, tmp_path: Path
) -> None:
    switch = switch_factory(config(), ("udp",))
    csv = users(tmp_path, ("0101", "change-me-0101"))
    run = run_scenario(
        "uac_register_digest.xml", switch.udp, "udp", tmp_path, extra_args=["-inf", str(csv)]
    )
    assert run.passed, run.report()
    [binding] = registrations(switch)["0101"]
    assert binding["source"].startswith("udp:127.0.0.1:")
    assert binding["contact"].startswith("sip:0101@127.0.0.1:")
    assert 0 < binding["expires_in"] <= 3600
    assert switch.status()["extensions"]["0101"]["registered"] is True


def test_wrong_password_and_unknown_user_are_refused_alike(
    switch_factory: SwitchFactory, tmp_path: Path
) -> None:
    switch = switch_factory(config(), ("udp",))
    wrong = users(tmp_path, ("0101", "not-the-password"))
    unknown = users(tmp_path, ("0999", "change-me-0101"))
    answers = []
    for csv in (wrong, unknown):
        run = run_scenario(
            "uac_register_refused.xml", switch.udp, "udp", tmp_path, extra_args=["-inf", str(csv)]
        )
        assert run.passed, run.report()
        messages = (run.workdir / "messages.log").read_text()
        refusal = messages[messages.rindex("SIP/2.0 403") :]
        # Everything but what echoes the request (Via, From, To, Call-ID, CSeq).
        answers.append(
            [
                line
                for line in refusal.splitlines()[:12]
                if line.split(":")[0] in ("SIP/2.0 403 Forbidden", "Server", "Content-Length")
            ]
        )
    assert answers[0] == answers[1]
    assert registrations(switch) == {}


def test_brute_force_is_blocked_then_the_block_lifts(
    switch_factory: SwitchFactory, tmp_path: Path
) -> None:
    switch = switch_factory(config(), ("udp",))
    wrong = users(tmp_path, ("0101", "guess-guess-1"))
    for _ in range(3):
        run = run_scenario(
            "uac_register_refused.xml", switch.udp, "udp", tmp_path, extra_args=["-inf", str(wrong)]
        )
        assert run.passed, run.report()
    [block] = switch.status()["blocked_sources"]
    assert block["source"] == "127.0.0.1"
    assert block["username"] is None
    # Blocked: even the right password gets no answer at all.
    right = users(tmp_path, ("0101", "change-me-0101"))
    blocked = run_scenario(
        "uac_register_digest.xml",
        switch.udp,
        "udp",
        tmp_path,
        timeout=1.5,
        extra_args=["-inf", str(right)],
    )
    assert not blocked.passed
    assert "message received" not in (blocked.workdir / "messages.log").read_text()
    assert "source_blocked" in switch.stderr_text()
    # block_time is 3 s: afterwards the same source registers again.
    wait_for(lambda: not switch.status()["blocked_sources"], 5, "the block to lift")
    run = run_scenario(
        "uac_register_digest.xml", switch.udp, "udp", tmp_path, extra_args=["-inf", str(right)]
    )
    assert run.passed, run.report()


class Relay:
    """A UDP relay between one client and the switch that records what the client sent,
    so a test can replay it like an eavesdropper would."""

    def __init__(self, switch: Address) -> None:
        self.switch = switch
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.address = Address("127.0.0.1", self.sock.getsockname()[1])
        self.client: tuple[str, int] | None = None
        self.sent: list[bytes] = []

    def pump(self, until: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not until():
            try:
                data, source = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            if source == tuple(self.switch):
                if self.client is not None:
                    self.sock.sendto(data, self.client)
            else:
                self.client = source
                self.sent.append(data)
                self.sock.sendto(data, tuple(self.switch))


def test_a_replayed_nonce_count_is_refused(
    switch_factory: SwitchFactory, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    switch = switch_factory(config(), ("udp",))
    relay = Relay(switch.udp)
    request.addfinalizer(relay.sock.close)
    csv = users(tmp_path, ("0101", "change-me-0101"))
    sipp_port = free_port()
    command = [
        "sipp",
        f"{relay.address.host}:{relay.address.port}",
        "-sf",
        str(SCENARIOS / "uac_register_digest.xml"),
        "-inf",
        str(csv),
        "-i",
        "127.0.0.1",
        "-p",
        str(sipp_port),
        "-mp",
        str(free_udp_pair()),
        "-cp",
        str(free_port()),
        "-m",
        "1",
        "-timeout",
        "10s",
        "-timeout_error",
        "-nd",
        "-nostdin",
    ]
    with _process(command) as sipp:
        relay.pump(lambda: sipp.poll() is not None, 15)
        assert sipp.wait(5) == 0
    authenticated = next(m for m in relay.sent if b"Authorization:" in m)
    # The eavesdropper sends the captured REGISTER again as a new transaction.
    # Via, CSeq and tags are not covered by the digest, so the attacker makes it a new
    # transaction that is not a merged request either; nonce, nc and response stay.
    replay = authenticated.replace(b";branch=", b";branch=z9hG4bKreplay", 1)
    replay = replay.replace(b"CSeq: 2 REGISTER", b"CSeq: 3 REGISTER")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
        attacker.bind(("127.0.0.1", 0))
        attacker.settimeout(5)
        replay = replay.replace(
            f"127.0.0.1:{sipp_port}".encode(), f"127.0.0.1:{attacker.getsockname()[1]}".encode()
        )
        attacker.sendto(replay, tuple(switch.udp))
        answer, _ = attacker.recvfrom(65535)
    assert answer.startswith(b"SIP/2.0 401 "), answer[:200]
    assert b"stale=true" in answer


@contextlib.contextmanager
def _process(command: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait(5)


def test_a_binding_survives_a_restart_and_still_routes(tmp_path: Path) -> None:
    data_dir = tmp_path / "state"
    port = free_port()
    first = start_switch(
        tmp_path, config(qualify=4), ("udp",), data_dir=data_dir, ports={"udp": port}
    )
    csv = users(tmp_path, ("0101", "change-me-0101"))
    command = [
        "sipp",
        f"127.0.0.1:{port}",
        "-sf",
        str(SCENARIOS / "uac_register_and_stay.xml"),
        "-oocsf",
        str(SCENARIOS / "ooc_answer_options.xml"),
        "-inf",
        str(csv),
        "-i",
        "127.0.0.1",
        "-p",
        str(free_port()),
        "-mp",
        str(free_udp_pair()),
        "-cp",
        str(free_port()),
        "-m",
        "1",
        "-timeout",
        "40s",
        "-nd",
        "-nostdin",
    ]
    second: RunningSwitch | None = None
    try:
        with _process(command):
            wait_for(lambda: bool(registrations(first).get("0101")), 10, "the registration")
            [before] = registrations(first)["0101"]
            assert first.stop() == 0  # before its first qualify ping (4 s)
            assert before["qualified_seconds_ago"] is None
            second = start_switch(
                tmp_path, config(qualify=4), ("udp",), data_dir=data_dir, ports={"udp": port}
            )
            [restored] = registrations(second)["0101"]
            assert restored["contact"] == before["contact"]
            assert restored["source"] == before["source"]
            # It still routes: the new process's OPTIONS reach the phone where it
            # registered from, and the phone's answers come back.
            running = second
            wait_for(
                lambda: registrations(running)["0101"][0]["qualified_seconds_ago"] is not None,
                15,
                "an answer to the restarted switch's qualify OPTIONS",
            )
        assert "registrations_restored" in second.stderr_text()
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_an_invite_from_an_extension_must_authenticate_first(
    switch_factory: SwitchFactory, tmp_path: Path
) -> None:
    switch = switch_factory(config(), ("udp",))
    csv = users(tmp_path, ("0101", "change-me-0101"))
    run = run_scenario(
        "uac_invite_challenged.xml",
        switch.udp,
        "udp",
        tmp_path,
        extra_args=["-inf", str(csv), "-s", "0102"],
    )
    assert run.passed, run.report()
    messages = (run.workdir / "messages.log").read_text()
    assert "Proxy-Authenticate: Digest" in messages
    assert "Proxy-Authorization: Digest" in messages
