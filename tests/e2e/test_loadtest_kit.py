"""The load-test kit: every recipe of sipp-scenarios/README.md ("Load-testing a switch"),
run as the README writes it, at small scale, against a real switch on configs/loadtest.toml.

The commands are read out of the README itself (each ``### Recipe N`` subsection's
``sipp`` lines; ``-bg`` marks a member phone), so a recipe that stops working, or a README
command that drifts from the scenarios, fails here. Only what a test must change is
changed: the switch's address, free ports for ``-p``/``-mp``/``-cp``, the scale (``-m``,
``-r``, ``-l``, ``-d``, ``-timeout``) and where the trace files go; ``-bg`` is dropped so
that every SIPp is a child stopped by PID. SIPp runs from a folder of links to
``sipp-scenarios/``, as a user runs it from that folder (relative users files and
``caller_tone.wav``).

Each recipe must show: the caller's exit code 0 and its ``-trace_stat`` totals (every
call successful, none failed); each member phone registered, ended on its own after
``-d`` (exit 0, un-registered) with no failed behaviour in its ``-trace_err`` file; the
call records (``GET /calls``) saying what the recipe proves; and afterwards
``GET /status`` with no call, media port or media session left. One switch serves the
module, as one switch serves a user's whole load test; its RTP range is moved to free
ports, and the voicemail greeting is a short silence so that a message call lasts 2 s.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shlex
import signal
import subprocess
import tempfile
import urllib.request
import wave
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest

from tests.support.audio import RtpCapture, read_wav_samples, tone_power
from tests.support.phones import free_rtp_range
from tests.support.processes import (
    OUTER_GRACE,
    SIPP_BIND_FAILED,
    RunningSwitch,
    assert_nothing_left,
    free_port,
    free_udp_pair,
    run_bounded,
    start_switch,
    wait_until,
)
from tests.support.sipp_calls import received

pytestmark = [pytest.mark.e2e, pytest.mark.requires_tool("sipp", "tcpdump")]

ROOT: Final = Path(__file__).resolve().parents[2]
SCENARIOS: Final = ROOT / "sipp-scenarios"
README: Final = SCENARIOS / "README.md"
CONFIG: Final = ROOT / "configs" / "loadtest.toml"
SECTION: Final = "## Load-testing a switch"
README_TARGET: Final = "127.0.0.1:5066"
TONE_HZ: Final = 1000  # sipp-scenarios/caller_tone.wav
RATE: Final = 8000
#: A tone is "there" when this share of the audio's power lies at its frequency.
TONE_SHARE: Final = 0.3
GREETING_LINE: Final = (
    '# greeting = "/path/to/short-greeting.wav"   # unset: the spoken prompt (about 7 s)\n'
)
GREETING_SECONDS: Final = 0.3
BEEP_SECONDS: Final = 0.5

#: SIPp options that take no value (every other option takes one; -key takes two).
FLAGS: Final = frozenset(
    {
        "-bg", "-nd", "-nostdin", "-timeout_error", "-trace_err", "-trace_msg",
        "-trace_stat", "-trace_rtt", "-trace_screen", "-trace_logs", "-rtp_echo",
    }
)  # fmt: skip
#: Failure lines SIPp writes to a -trace_err file; a member's file holds only the
#: "Received out-of-call INVITE message" notes when every call it served passed.
MEMBER_FAILURE: Final = re.compile(
    r"Aborting call|Aborted call|Failed |Unexpected|unexpected|Discarding|timeout|Timeout"
)


# -- the README's recipes


@dataclass(frozen=True)
class Command:
    """One ``sipp`` command of a recipe, split as the shell splits it."""

    argv: tuple[str, ...]

    @property
    def member(self) -> bool:
        """``-bg``: a member phone that stays while the caller runs."""
        return "-bg" in self.argv

    def option(self, name: str) -> str:
        assert name in self.argv, f"{name} missing from the README command {self}"
        return self.argv[self.argv.index(name) + 1]

    def __str__(self) -> str:
        return shlex.join(self.argv)


@dataclass(frozen=True)
class Recipe:
    title: str
    commands: tuple[Command, ...]

    @property
    def members(self) -> list[Command]:
        return [command for command in self.commands if command.member]

    @property
    def caller(self) -> Command:
        [caller] = [command for command in self.commands if not command.member]
        return caller


def readme_recipes() -> dict[int, Recipe]:
    """The ``### Recipe N: ...`` subsections of the README's load-test section, by N."""
    text = README.read_text()
    assert text.count(f"\n{SECTION}\n") == 1, f"no {SECTION!r} section in {README}"
    section = text.split(f"\n{SECTION}\n", 1)[1].split("\n## ", 1)[0]
    recipes: dict[int, Recipe] = {}
    for chunk in re.split(r"^### ", section, flags=re.MULTILINE)[1:]:
        title, _, body = chunk.partition("\n")
        found = re.match(r"Recipe (\d+): ", title)
        if found is None:
            continue
        commands = []
        for block in re.findall(r"^```sh\n(.*?)^```", body, flags=re.MULTILINE | re.DOTALL):
            for line in block.replace("\\\n", " ").splitlines():
                words = shlex.split(line, comments=True)
                if words and words[0] == "sipp":
                    commands.append(Command(tuple(words)))
        recipes[int(found.group(1))] = Recipe(title, tuple(commands))
    return recipes


RECIPES: Final = readme_recipes()


def recipe(number: int, caller_scenario: str, members: Sequence[str] = ()) -> Recipe:
    """Recipe ``number``, checked to be what this test expects of it: its caller
    scenario, and its members' behaviours (-oocsf) in order."""
    found = RECIPES[number]
    assert found.caller.option("-sf") == caller_scenario, found.title
    assert [m.option("-oocsf") for m in found.members] == list(members), found.title
    for command in found.commands:
        assert command.argv[1] == README_TARGET, command
        assert command.option("-sf") == "load_uas_member.xml" or not command.member, command
    return found


# -- running them


def with_option(args: list[str], name: str, value: str) -> None:
    if name in args:
        args[args.index(name) + 1] = value
    else:
        args += [name, value]


def with_flag(args: list[str], name: str) -> None:
    if name not in args:
        args.append(name)


def without(args: list[str], name: str) -> None:
    while name in args:
        index = args.index(name)
        del args[index : index + (1 if name in FLAGS else 2)]


@dataclass
class Kit:
    """Runs the README's commands against the module's switch from ``workdir``, a
    folder of links to sipp-scenarios/ that also collects the trace files."""

    switch: RunningSwitch
    workdir: Path
    idle_tasks: int

    def args(self, command: Command, name: str, scale: dict[str, str]) -> list[str]:
        args = [str(self.switch.udp), *command.argv[2:]]
        without(args, "-bg")
        for option, value in scale.items():
            with_option(args, option, value)
        for flag in ("-trace_err", "-trace_stat", "-trace_msg", "-trace_screen"):
            with_flag(args, flag)
        with_option(args, "-error_file", str(self.workdir / f"{name}-errors.log"))
        with_option(args, "-stf", str(self.workdir / f"{name}-stats.csv"))
        with_option(args, "-message_file", str(self.workdir / f"{name}-messages.log"))
        with_option(args, "-screen_file", str(self.workdir / f"{name}-screen.log"))
        return args

    def ports(self, args: list[str], media_port: int | None = None) -> list[str]:
        args = list(args)
        with_option(args, "-p", str(free_port()))
        with_option(args, "-cp", str(free_port()))
        with_option(args, "-mp", str(media_port or free_udp_pair()))
        return args

    def call(
        self, command: Command, scale: dict[str, str], *, media_port: int | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the caller to its end (bounded; a port taken meanwhile: new ports)."""
        args = self.args(command, "caller", scale)
        timeout = float(scale["-timeout"].rstrip("s"))
        result: subprocess.CompletedProcess[str] | None = None
        for _ in range(3):
            full = ["sipp", *self.ports(args, media_port)]
            result = run_bounded(full, timeout + OUTER_GRACE, cwd=self.workdir)
            if result.returncode != SIPP_BIND_FAILED:
                break
        assert result is not None
        return result

    @contextlib.contextmanager
    def members(
        self, commands: Sequence[Command], scales: Sequence[dict[str, str]]
    ) -> Iterator[list[Member]]:
        """Start the member phones and wait until the switch lists every extension they
        register; each is stopped by PID at the end, whatever happens."""
        started: list[Member] = []
        try:
            for index, (command, scale) in enumerate(zip(commands, scales, strict=True)):
                name = f"member{index}-{Path(command.option('-oocsf')).stem}"
                args = self.ports(self.args(command, name, scale))
                with (self.workdir / f"{name}-stderr.log").open("wb") as stderr:
                    process = subprocess.Popen(
                        ["sipp", *args],
                        cwd=self.workdir,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=stderr,
                    )
                numbers = users(self.workdir / command.option("-inf"))[: int(scale["-m"])]
                stay = float(scale["-d"]) / 1000
                started.append(Member(process, name, args, numbers, stay))
            wanted = {number for member in started for number in member.numbers}

            def registered() -> bool:
                for member in started:
                    assert member.process.poll() is None, self.report(member.name)
                return wanted <= set(self.switch.status()["registrations"])

            wait_until(registered, 10, f"members {sorted(wanted)} registering")
            yield started
        finally:
            for member in started:
                member.kill()

    def report(self, *names: str) -> str:
        parts = []
        for path in sorted(self.workdir.glob("*.log")):
            if not names or path.name.startswith(names):
                text = path.read_text(errors="replace")
                parts.append(f"--- {path.name}:\n{text[-3000:]}")
        parts.append("--- switch stderr:\n" + self.switch.stderr_text()[-3000:])
        return "\n".join(parts)

    def stats(self, name: str) -> dict[str, str]:
        """The last line of a -trace_stat file: the run's totals."""
        with (self.workdir / f"{name}-stats.csv").open(newline="") as file:
            rows = list(csv.DictReader(file, delimiter=";"))
        assert rows, f"no statistics in {name}-stats.csv"
        return rows[-1]

    def assert_calls_passed(self, result: subprocess.CompletedProcess[str], calls: int) -> None:
        """Exit code 0, and the totals say every call passed."""
        assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-3000:]}\n" + (
            self.report("caller")
        )
        totals = self.stats("caller")
        assert totals["OutgoingCall(C)"] == str(calls), totals
        assert totals["SuccessfulCall(C)"] == str(calls), totals
        assert totals["FailedCall(C)"] == "0", totals
        assert totals["Retransmissions(C)"] == "0", totals

    def assert_members_passed(self, members: Sequence[Member]) -> None:
        """Each member ends by itself after -d (un-registered), every call it served
        passed, and the switch lists none of its extensions any more."""
        for member in members:
            code = member.finish()
            assert code == 0, f"{member.name}: exit {code}\n" + self.report(member.name)
            totals = self.stats(member.name)
            assert totals["SuccessfulCall(C)"] == str(len(member.numbers)), totals
            assert totals["FailedCall(C)"] == "0", totals
            errors = self.workdir / f"{member.name}-errors.log"
            text = errors.read_text(errors="replace") if errors.exists() else ""
            assert not MEMBER_FAILURE.search(text), text[-3000:]
        gone = {number for member in members for number in member.numbers}
        wait_until(
            lambda: not gone & set(self.switch.status()["registrations"]),
            5,
            f"{sorted(gone)} un-registering",
        )

    def assert_switch_clean(self) -> None:
        """GET /status: no call, media port, media session or extra task left."""
        assert self.switch.is_alive(), self.switch.stderr_text()[-3000:]
        assert_nothing_left(self.switch, self.idle_tasks)

    def records(self, number: str, calls: int) -> list[dict[str, Any]]:
        """The call records of the calls to ``number`` (only one recipe calls it)."""
        found: list[dict[str, Any]] = []

        def complete() -> bool:
            found[:] = [r for r in self.switch.calls(limit=500) if r["callee"] == number]
            return len(found) >= calls

        wait_until(complete, 10, f"{calls} call records for {number}")
        assert len(found) == calls, found
        return found


@dataclass
class Member:
    """A member phone's SIPp process, registering ``numbers`` and staying ``stay`` s."""

    process: subprocess.Popen[bytes]
    name: str
    args: list[str]
    numbers: list[str]
    stay: float

    @property
    def media_port(self) -> int:
        return int(self.args[self.args.index("-mp") + 1])

    def invites(self) -> set[str]:
        """The Call-IDs of the INVITEs it got (from its -trace_msg file)."""
        path = Path(self.args[self.args.index("-message_file") + 1])
        return {call_id(message.text) for message in received(path, "INVITE")}

    def finish(self) -> int:
        """Wait for it to end by itself (its -d, then the un-REGISTER); its exit code."""
        try:
            return self.process.wait(timeout=self.stay + OUTER_GRACE)
        finally:
            self.kill()

    def kill(self) -> None:
        # Only a child not yet reaped: its PID cannot have been recycled.
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def call_id(message: str) -> str:
    found = re.search(r"^(?:Call-ID|i):\s*(\S+)", message, re.MULTILINE | re.IGNORECASE)
    assert found is not None, message
    return found.group(1)


def users(path: Path) -> list[str]:
    """The extension numbers (field 0) of a SIPp users file, in order."""
    lines = path.read_text().splitlines()
    assert lines[0] == "SEQUENTIAL", path
    return [line.split(";", 1)[0] for line in lines[1:] if line.strip()]


def write_greeting(path: Path) -> Path:
    """A short mailbox greeting: silence, 8 kHz mono 16-bit."""
    with wave.open(str(path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(RATE)
        file.writeframes(b"\0\0" * round(GREETING_SECONDS * RATE))
    return path


def loadtest_config(directory: Path) -> str:
    """configs/loadtest.toml as it is, but for its RTP range (free ports now) and a
    short greeting; listen, status and data_dir come from the harness's command line."""
    text = CONFIG.read_text()
    low, high = free_rtp_range(size=200)
    text, count = re.subn(
        r"^rtp_port_min = \d+\nrtp_port_max = \d+$",
        f"rtp_port_min = {low}\nrtp_port_max = {high}",
        text,
        flags=re.MULTILINE,
    )
    assert count == 1, f"no RTP range in {CONFIG}"
    assert text.count(GREETING_LINE) == 1, f"no greeting line in {CONFIG}"
    greeting = write_greeting(directory / "greeting.wav")
    return text.replace(GREETING_LINE, f'greeting = "{greeting}"\n')


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSwitch]:
    directory = tmp_path_factory.mktemp("loadtest-switch")
    running = start_switch(directory, loadtest_config(directory), ("udp",))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def idle_tasks(switch: RunningSwitch) -> int:
    """The switch's asyncio tasks before the first recipe: none may be left after one."""
    count: int = switch.status()["tasks"]
    return count


@pytest.fixture
def kit(switch: RunningSwitch, idle_tasks: int, tmp_path: Path) -> Iterator[Kit]:
    workdir = Path(tempfile.mkdtemp(prefix="kit-", dir=tmp_path))
    for entry in SCENARIOS.iterdir():
        (workdir / entry.name).symlink_to(entry)
    yield Kit(switch, workdir, idle_tasks)
    assert switch.is_alive(), switch.stderr_text()[-3000:]


def scale(
    *, calls: int, rate: int, hold_ms: int | None = None, timeout: int = 20
) -> dict[str, str]:
    """Small-scale options for a caller."""
    options = {"-m": str(calls), "-r": str(rate), "-l": str(calls), "-timeout": f"{timeout}s"}
    if hold_ms is not None:
        options["-d"] = str(hold_ms)
    return options


def stay(ms: int, registrations: int = 1) -> dict[str, str]:
    """A member registering ``registrations`` extensions for ``ms`` milliseconds."""
    return {
        "-m": str(registrations),
        "-l": str(registrations),
        "-r": "50",
        "-d": str(ms),
        "-timeout": f"{ms // 1000 + 15}s",
    }


# -- the recipes


def test_the_readme_has_the_six_recipes_this_test_runs() -> None:
    assert sorted(RECIPES) == [1, 2, 3, 4, 5, 6], [r.title for r in RECIPES.values()]
    for found in RECIPES.values():
        for command in found.commands:
            # Each SIPp of a recipe gets its own ports, as the README says.
            assert "-p" in command.argv, command
            assert "-cp" in command.argv or not command.member, command
            assert {"-timeout", "-timeout_error", "-nd", "-nostdin"} <= set(command.argv)
    members = [m for r in RECIPES.values() for m in r.members]
    ports = [(m.option("-p"), m.option("-mp"), m.option("-cp")) for m in members]
    assert len({p for triple in ports for p in triple}) == 3 * len(ports), ports


def test_recipe_1_registration_storm(kit: Kit) -> None:
    """20 extensions of loadtest/users.csv register with digest at 50/s: 20 successful
    "calls", none failed, and the switch lists all 20; the response times are traced."""
    storm = recipe(1, "register_storm.xml")
    count = 20
    result = kit.call(storm.caller, scale(calls=count, rate=50))
    kit.assert_calls_passed(result, count)
    expected = users(kit.workdir / storm.caller.option("-inf"))[:count]
    assert set(expected) <= set(kit.switch.status()["registrations"])
    [rtt] = kit.workdir.glob("register_storm_*_rtt.csv")
    rows = rtt.read_text().splitlines()[1:]
    assert sorted(row.rsplit(";", 1)[1] for row in rows) == ["1"] * count + ["2"] * count
    kit.assert_switch_clean()


def test_recipe_2_basic_call_with_rtp(kit: Kit) -> None:
    """5 authenticated calls of 1 s to extension 2000, which answers and echoes: every
    call set up and ended, and the caller's tone went through the switch to the callee
    and came back."""
    basic = recipe(2, "load_call_uac.xml", ["call_uas_answer.xml"])
    calls = 5
    caller_port = free_udp_pair()
    with kit.members(basic.members, [stay(5000)]) as members:
        assert "-rtp_echo" in members[0].args
        member_port = members[0].media_port
        with RtpCapture(kit.workdir, [caller_port, member_port]) as capture:
            result = kit.call(
                basic.caller, scale(calls=calls, rate=5, hold_ms=1000), media_port=caller_port
            )
        kit.assert_calls_passed(result, calls)
        kit.assert_members_passed(members)
    assert len(members[0].invites()) == calls
    for record in kit.records("2000", calls):
        assert (record["answered_by"], record["disposition"]) == ("2000", "answered"), record
        assert record["end_reason"] == "caller BYE", record
    for port, what in ((member_port, "to the callee"), (caller_port, "back to the caller")):
        samples = capture.pcmu_samples(port)
        # 5 calls of 1 s: 40,000 samples each way; allow for set-up and the last packets.
        assert len(samples) > 0.6 * calls * RATE, f"{len(samples)} samples {what}"
        assert tone_power(samples, RATE, TONE_HZ) > TONE_SHARE, f"no tone {what}"
    [rtt] = kit.workdir.glob("load_call_uac_*_rtt.csv")
    timers = sorted(row.rsplit(";", 1)[1] for row in rtt.read_text().splitlines()[1:])
    assert timers == ["1"] * calls + ["2"] * calls + ["3"] * calls
    kit.assert_switch_clean()


def test_recipe_3_hunt_group_busy_ringing_answered(kit: Kit) -> None:
    """5 calls to the linear group: each passes over 2101 (486), rings 2102 for its 2 s
    ring time and CANCELs it, and is answered by 2103."""
    hunt = recipe(
        3,
        "call_uac_public_basic.xml",
        ["call_uas_busy.xml", "call_uas_ring_forever.xml", "call_uas_answer.xml"],
    )
    calls = 5
    number = hunt.caller.option("-s")
    with kit.members(hunt.members, [stay(7000)] * 3) as members:
        result = kit.call(hunt.caller, scale(calls=calls, rate=5, hold_ms=500))
        kit.assert_calls_passed(result, calls)
        kit.assert_members_passed(members)
    assert [len(member.invites()) for member in members] == [calls, calls, calls]
    for record in kit.records(number, calls):
        assert (record["answered_by"], record["disposition"]) == ("2103", "answered"), record
        [trace] = record["hunts"]
        outcomes = [
            (m["member"], m["outcome"], m.get("status") or m.get("reason"))
            for m in trace["members"]
        ]
        assert ("2101", "failed", 486) in outcomes, outcomes
        assert ("2102", "cancelled", "ring time over") in outcomes, outcomes
        assert ("2103", "answered", None) in outcomes, outcomes
    kit.assert_switch_clean()


def test_recipe_4_ring_all_with_concurrent_answers(kit: Kit) -> None:
    """5 calls to the ring-all group, whose five members (one SIPp) all answer at once:
    each caller gets exactly one 200 (a second fails its call), one member is bridged,
    and the other four answers are ended by the switch."""
    ringall = recipe(4, "call_uac_public_basic.xml", ["hunt_uas_answer_at_once.xml"])
    calls = 5
    number = ringall.caller.option("-s")
    with kit.members(ringall.members, [stay(5000, registrations=5)]) as members:
        assert len(members[0].numbers) == 5
        result = kit.call(ringall.caller, scale(calls=calls, rate=5, hold_ms=500))
        kit.assert_calls_passed(result, calls)
        kit.assert_members_passed(members)
    assert len(members[0].invites()) == 5 * calls
    for record in kit.records(number, calls):
        assert record["disposition"] == "answered", record
        [trace] = record["hunts"]
        rung = {m["member"] for m in trace["members"] if m["outcome"] == "rung"}
        answered = [m["member"] for m in trace["members"] if m["outcome"] == "answered"]
        late = sorted(m["member"] for m in trace["members"] if m["outcome"] == "answered late")
        assert rung == set(members[0].numbers), trace
        assert answered == [record["answered_by"]], trace
        # All five answered: the four that lost were answered late (ACKed and BYEd).
        assert late == sorted(rung - set(answered)), trace
    kit.assert_switch_clean()


def test_recipe_5_voicemail_with_audio(kit: Kit) -> None:
    """3 callers reach the mailbox of 2301 (never registered), send the tone for 2.5 s,
    then # as RFC 4733: the switch hangs up, and each message holds the tone."""
    voicemail = recipe(5, "vm_uac_public_pcap_pound.xml")
    calls, hold_ms = 3, 2500
    number = voicemail.caller.option("-s")
    result = kit.call(voicemail.caller, scale(calls=calls, rate=5, hold_ms=hold_ms))
    kit.assert_calls_passed(result, calls)
    for record in kit.records(number, calls):
        assert (record["answered_by"], record["disposition"]) == ("voicemail:2301", "voicemail")
        assert record["end_reason"] == "voicemail: digit", record
    listing = get_json(kit.switch, "/voicemail/2301")
    messages = [m for m in listing if m["called_number"] == number]
    assert len(messages) == calls, listing
    recorded = hold_ms / 1000 - GREETING_SECONDS - BEEP_SECONDS
    for message in messages:
        assert recorded - 0.6 < message["duration"] < recorded + 0.6, message
        path = kit.workdir / f"{message['message_id']}.wav"
        path.write_bytes(get_bytes(kit.switch, message["url"]))
        rate, samples = read_wav_samples(path)
        assert tone_power(samples, rate, TONE_HZ) > TONE_SHARE, message
    kit.assert_switch_clean()


def test_recipe_6_caller_hangs_up_while_ringing(kit: Kit) -> None:
    """5 authenticated callers CANCEL while 2400 rings: 200 and 487 to each, and the
    ringing phone takes each CANCEL (200, 487, ACK)."""
    cancel = recipe(6, "call_uac_cancel.xml", ["call_uas_ring_forever.xml"])
    calls = 5
    number = cancel.caller.option("-s")
    with kit.members(cancel.members, [stay(4000)]) as members:
        result = kit.call(cancel.caller, scale(calls=calls, rate=10))
        kit.assert_calls_passed(result, calls)
        kit.assert_members_passed(members)
    assert len(members[0].invites()) == calls
    for record in kit.records(number, calls):
        assert (record["disposition"], record["caller_status"]) == ("cancelled", 487), record
        assert record["end_reason"] == "caller cancelled", record
    kit.assert_switch_clean()


# -- HTTP


def get_bytes(switch: RunningSwitch, path: str) -> bytes:
    assert switch.status_address is not None
    url = f"http://{switch.status_address.host}:{switch.status_address.port}{path}"
    with urllib.request.urlopen(url, timeout=5) as reply:
        body: bytes = reply.read()
    return body


def get_json(switch: RunningSwitch, path: str) -> list[dict[str, Any]]:
    document: list[dict[str, Any]] = json.loads(get_bytes(switch, path))
    return document
