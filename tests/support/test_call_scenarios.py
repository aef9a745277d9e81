"""Self-test of the call scenarios (``sipp-scenarios/call_*.xml``) without the switch.

Every ``call_*.xml`` must parse as XML, start with a comment saying what it proves, and
load in SIPp. Then each caller scenario talks to its callee scenario through
``StandIn``: a few dozen lines playing the switch's part that SIPp cannot do itself.
It is a registrar (401 with an MD5 challenge, 200 once the digest checks), challenges
every new INVITE with 407 (and checks the Proxy-Authorization of the next one), answers
404 for an unknown number and 480 for one not registered, and otherwise relays by
Call-ID, statelessly, between the caller and the registered callee: its own Via on top
of each request, popped off each response, the Request-URI of the first INVITE set to
the callee's Contact. The SDP passes untouched, so RTP flows straight between the ends.

Last, the audio path: a SIPp caller (call_uac_basic.xml, 1000 Hz) calls a baresip
callee (600 Hz) through the stand-in; each tone is found, by frequency, in what the
other side received (baresip's decoded dump; the RTP captured on ``lo`` for SIPp).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
import socket
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, NamedTuple

import pytest

from tests.support.audio import (
    RATE,
    RtpCapture,
    dominant_frequency,
    read_wav_samples,
    tone_power,
    write_tone_wav_ulaw,
)
from tests.support.phones import BaresipAccount, BaresipPhone, write_tone_wav
from tests.support.processes import Address, free_udp_pair, require_tools, run_sipp

pytestmark = pytest.mark.e2e

SCENARIOS: Final = Path(__file__).resolve().parents[2] / "sipp-scenarios"
HOST: Final = "127.0.0.1"
REALM: Final = "standin"
USERS: Final = {"0101": "pw-0101", "0102": "pw-0102", "0103": "pw-0103"}
"""The stand-in's extensions: 0101 calls, 0102 answers, 0103 never registers."""
UNKNOWN: Final = "0199"


# --- the stand-in switch -------------------------------------------------------------------


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _digest_params(value: str) -> dict[str, str]:
    return {
        key.lower(): quoted if quoted else bare
        for key, quoted, bare in re.findall(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))', value)
    }


@dataclass
class SipMessage:
    """A SIP message split into its start line, header lines and body (bytes untouched)."""

    start: str
    headers: list[str]
    body: bytes

    @classmethod
    def parse(cls, data: bytes) -> SipMessage:
        head, _, body = data.partition(b"\r\n\r\n")
        start, *headers = head.decode("utf-8", "replace").split("\r\n")
        return cls(start, headers, body)

    def encode(self) -> bytes:
        return "\r\n".join([self.start, *self.headers]).encode() + b"\r\n\r\n" + self.body

    @property
    def is_request(self) -> bool:
        return not self.start.startswith("SIP/2.0")

    @property
    def method(self) -> str:
        return self.start.split(" ", 1)[0]

    def header(self, *names: str) -> str | None:
        """The first value of a header (long or compact name), or ``None``."""
        wanted = {name.lower() for name in names}
        for line in self.headers:
            name, colon, value = line.partition(":")
            if colon and name.strip().lower() in wanted:
                return value.strip()
        return None

    def _via_index(self) -> int | None:
        for index, line in enumerate(self.headers):
            if line.partition(":")[0].strip().lower() in ("via", "v"):
                return index
        return None

    def push_via(self, via: str) -> None:
        index = self._via_index()
        self.headers.insert(0 if index is None else index, f"Via: {via}")

    def pop_via(self) -> str | None:
        """Remove the top Via value (SIPp's ``[last_Via:]`` joins all in one line)."""
        index = self._via_index()
        if index is None:
            return None
        first, *rest = self.headers[index].partition(":")[2].split(",")
        if rest:
            self.headers[index] = "Via:" + ",".join(rest)
        else:
            del self.headers[index]
        return first.strip()

    def reply(self, status: str, *extra: str, to_tag: str | None = None) -> bytes:
        """A response built from this request (Via, From, To, Call-ID, CSeq copied)."""
        copied = [
            line
            for line in self.headers
            if line.partition(":")[0].strip().lower()
            in ("via", "v", "from", "f", "call-id", "i", "cseq")
        ]
        to = self.header("to", "t") or ""
        if to_tag is not None and ";tag=" not in to:
            to += f";tag={to_tag}"
        lines = [f"SIP/2.0 {status}", *copied, f"To: {to}", *extra, "Content-Length: 0"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass(frozen=True)
class Relayed:
    """A call the stand-in relays: where each end is, and the callee's Request-URI."""

    caller: tuple[str, int]
    callee: tuple[str, int]
    dialled_uri: str
    contact: str

    def other(self, source: tuple[str, int]) -> tuple[str, int]:
        return self.caller if source == self.callee else self.callee


@dataclass
class StandIn:
    """The switch's part for two SIPp (or baresip) ends on 127.0.0.1: see the module doc."""

    users: dict[str, str] = field(default_factory=lambda: dict(USERS))
    sock: socket.socket = field(init=False)
    bindings: dict[str, tuple[str, tuple[str, int]]] = field(default_factory=dict)
    """number -> (Contact URI, source address of its REGISTER)."""
    calls: dict[str, Relayed] = field(default_factory=dict)
    challenged: set[str] = field(default_factory=set)
    trace: list[str] = field(default_factory=list)
    """``"<- 0102 REGISTER ..."``: every start line, with where it came from or went."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(0.1)
        self.nonce = secrets.token_hex(8)

    @property
    def address(self) -> Address:
        host, port = self.sock.getsockname()
        return Address(host, port)

    def __enter__(self) -> StandIn:
        self._thread = threading.Thread(target=self._serve, name="standin", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, source = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data.strip():
                continue  # keep-alive
            message = SipMessage.parse(data)
            self._note("<-", source, message.start)
            with self._lock:
                if message.is_request:
                    self._request(message, source)
                else:
                    self._response(message, source)

    def _note(self, arrow: str, address: tuple[str, int], start: str) -> None:
        self.trace.append(f"{arrow} {address[1]} {start}")

    def _send(self, data: bytes, address: tuple[str, int]) -> None:
        self._note("->", address, data.split(b"\r\n", 1)[0].decode(errors="replace"))
        self.sock.sendto(data, address)

    def _digest_ok(self, message: SipMessage, header: str) -> bool | None:
        """``None`` without credentials, else whether the MD5 digest is right."""
        value = message.header(header)
        if value is None:
            return None
        params = _digest_params(value)
        password = self.users.get(params.get("username", ""))
        if password is None or params.get("nonce") != self.nonce:
            return False
        ha1 = _md5(f"{params['username']}:{REALM}:{password}")
        ha2 = _md5(f"{message.method}:{params.get('uri', '')}")
        if "qop" in params:
            expected = _md5(
                f"{ha1}:{self.nonce}:{params.get('nc')}:{params.get('cnonce')}:"
                f"{params['qop']}:{ha2}"
            )
        else:
            expected = _md5(f"{ha1}:{self.nonce}:{ha2}")
        return params.get("response") == expected

    def _challenge(self, name: str) -> str:
        return f'{name}: Digest realm="{REALM}", nonce="{self.nonce}", algorithm=MD5, qop="auth"'

    def _request(self, message: SipMessage, source: tuple[str, int]) -> None:
        call_id = message.header("call-id", "i") or ""
        if message.method == "REGISTER":
            self._register(message, source)
        elif call_id in self.calls:
            call = self.calls[call_id]
            method, uri, version = message.start.split(" ", 2)
            if uri == call.dialled_uri:  # CANCEL, ACK of a failure: as the INVITE went
                message.start = f"{method} {call.contact} {version}"
            self._forward(message, call.other(source))
        elif message.method == "INVITE":
            self._invite(message, source, call_id)
        elif message.method != "ACK":  # the ACK of a 407 or of our 404/480 ends here
            self._send(message.reply("481 Call/Transaction Does Not Exist"), source)

    def _register(self, message: SipMessage, source: tuple[str, int]) -> None:
        verdict = self._digest_ok(message, "authorization")
        if verdict is None:
            self._send(
                message.reply(
                    "401 Unauthorized", self._challenge("WWW-Authenticate"), to_tag="reg"
                ),
                source,
            )
            return
        if not verdict:
            self._send(message.reply("403 Forbidden", to_tag="reg"), source)
            return
        to = message.header("to", "t") or ""
        number = re.search(r"sip:([^@;>]+)@", to)
        contact = message.header("contact", "m") or ""
        uri = re.search(r"<([^>]+)>", contact)
        if number and uri:
            self.bindings[number.group(1)] = (uri.group(1), source)
        self._send(
            message.reply("200 OK", f"Contact: {contact}", "Expires: 300", to_tag="reg"), source
        )

    def _invite(self, message: SipMessage, source: tuple[str, int], call_id: str) -> None:
        verdict = self._digest_ok(message, "proxy-authorization")
        if verdict is None:
            self.challenged.add(call_id)
            self._send(
                message.reply(
                    "407 Proxy Authentication Required",
                    self._challenge("Proxy-Authenticate"),
                    to_tag="auth",
                ),
                source,
            )
            return
        if not verdict:
            self._send(message.reply("403 Forbidden", to_tag="auth"), source)
            return
        number = message.start.split(" ")[1].removeprefix("sip:").split("@")[0]
        if number not in self.users:
            self._send(message.reply("404 Not Found", to_tag="standin"), source)
        elif number not in self.bindings:
            self._send(message.reply("480 Temporarily Unavailable", to_tag="standin"), source)
        else:
            contact, callee = self.bindings[number]
            dialled = message.start.split(" ")[1]
            self.calls[call_id] = Relayed(source, callee, dialled, contact)
            message.start = f"INVITE {contact} SIP/2.0"
            self._forward(message, callee)

    def _forward(self, message: SipMessage, target: tuple[str, int]) -> None:
        if message.is_request:
            top = message.header("via", "v") or ""
            branch = _md5(top.split(",")[0].partition("branch=")[2].split(";")[0])[:16]
            host, port = self.address
            message.push_via(f"SIP/2.0/UDP {host}:{port};branch=z9hG4bK-standin-{branch}")
        self._send(message.encode(), target)

    def _response(self, message: SipMessage, source: tuple[str, int]) -> None:
        call = self.calls.get(message.header("call-id", "i") or "")
        if call is not None:
            message.pop_via()
            self._forward(message, call.other(source))


# --- running the scenarios -----------------------------------------------------------------

CALL_TIMEOUT: Final = 15.0
"""SIPp's -timeout for one call (the longest scenario takes about 4 s)."""
REGISTER_WAIT: Final = 10.0
TONE_WAV: Final = "caller_tone.wav"
"""The relative path call_uac_basic.xml plays: it must be in SIPp's working directory."""
CALLER_HZ: Final = 1000
CALLEE_HZ: Final = 600

ALL_SCENARIOS: Final = sorted(path.name for path in SCENARIOS.glob("call_*.xml"))
CALLEE_BEHAVIOURS: Final = [
    name
    for name in ALL_SCENARIOS
    if name.startswith("call_uas_")
    and name not in ("call_uas_register.xml", "call_uas_register_stay.xml")
]


def users_file(directory: Path, number: str, password: str | None = None) -> Path:
    """An injection file of one extension, as the call scenarios read it (-inf)."""
    path = directory / f"user-{number}.csv"
    secret = USERS.get(number, "nobody") if password is None else password
    path.write_text(f"SEQUENTIAL\n{number};[authentication username={number} password={secret}]\n")
    return path


def traces(directory: Path, name: str) -> list[str]:
    """SIPp's -trace_err and -trace_logs options, writing into ``directory``."""
    return [
        "-trace_err", "-error_file", str(directory / f"{name}-errors.log"),
        "-trace_logs", "-log_file", str(directory / f"{name}-logs.log"),
    ]  # fmt: skip


def caller_args(
    remote: Address, scenario: str, directory: Path, *extra: str, called: str = "0102"
) -> list[str]:
    users = users_file(directory, "0101")
    return [
        str(remote), "-sf", str(SCENARIOS / scenario), "-inf", str(users), "-s", called,
        "-i", HOST, *traces(directory, "caller"), *extra,
    ]  # fmt: skip


def callee_args(
    remote: Address, behaviour: str, directory: Path, *extra: str, password: str | None = None
) -> list[str]:
    users = users_file(directory, "0102", password)
    return [
        str(remote), "-sf", str(SCENARIOS / "call_uas_register.xml"),
        "-oocsf", str(SCENARIOS / behaviour), "-inf", str(users),
        "-i", HOST, *traces(directory, "callee"), *extra,
    ]  # fmt: skip


def report(directory: Path, **results: subprocess.CompletedProcess[str] | None) -> str:
    """Exit codes, SIPp's output and its error and log files, for an assertion message."""
    parts = []
    for name, result in results.items():
        if result is not None:
            parts.append(f"--- {name}: exit {result.returncode}\n{result.stderr[-3000:]}")
    parts.extend(
        f"--- {log.name}:\n{log.read_text(errors='replace')[-3000:]}"
        for log in sorted(directory.glob("*.log"))
    )
    return "\n".join(parts)


def in_order(lines: Sequence[str], wanted: Sequence[str]) -> bool:
    """Whether each of ``wanted`` is found in some line, in that order."""
    remaining = iter(lines)
    return all(any(fragment in line for line in remaining) for fragment in wanted)


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@contextlib.contextmanager
def callee_running(
    standin: StandIn, args: Sequence[str], directory: Path
) -> Iterator[Future[subprocess.CompletedProcess[str]]]:
    """A callee SIPp (bounded by ``run_sipp``) in a thread; yields once it has registered.

    Leaving waits for it to end: it ends by itself within CALL_TIMEOUT + 10 s.
    """
    with ThreadPoolExecutor(max_workers=1) as executor:
        future = executor.submit(run_sipp, args, CALL_TIMEOUT, cwd=directory)
        wait_until(lambda: "0102" in standin.bindings or future.done(), REGISTER_WAIT)
        yield future


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with StandIn() as running:
        yield running


# --- every scenario: well formed, and loaded by SIPp ---------------------------------------


@pytest.mark.parametrize("name", ALL_SCENARIOS)
def test_scenario_says_what_it_proves_and_keeps_to_the_conventions(name: str) -> None:
    text = (SCENARIOS / name).read_text(encoding="iso-8859-1")
    root = ET.fromstring(text.encode("iso-8859-1"))
    assert root.tag == "scenario"
    head = text[: text.index("<scenario")]
    assert "<!--" in head, "the file starts with a comment"
    assert "Proves:" in head, "the opening comment says what the scenario proves"
    # Contact transport in lower case, or none (a switch may compare it case-sensitively).
    assert not re.search(r"^\s*Contact:.*transport=(\[transport\]|UDP|TCP)", text, re.M)
    for body in re.findall(r"(?ms)^\s*v=0\s*$.*?(?=\]\]>)", text):
        assert "c=IN IP4 [media_ip]" in body
        assert "m=audio [media_port] RTP/AVP 0 101" in body
        assert "a=rtpmap:0 PCMU/8000" in body
        assert "a=rtpmap:101 telephone-event/8000" in body


def sipp_load_args(name: str, remote: Address, directory: Path) -> list[str]:
    if name == "call_uas_register.xml":
        return callee_args(remote, "call_uas_answer.xml", directory)
    if name.startswith("call_uas_"):
        return callee_args(remote, name, directory)
    extra = ("-key", "expected_status", "486") if name == "call_uac_expect_status.xml" else ()
    return caller_args(remote, name, directory, *extra)


@pytest.mark.parametrize("name", ALL_SCENARIOS)
def test_sipp_loads_scenario(name: str, tmp_path: Path) -> None:
    """Against a socket that never answers: SIPp must get as far as its -timeout.

    A scenario SIPp refuses (unknown action or keyword, unused variable, missing
    rtp_stream file) exits 1 at once, naming the fault on stderr.
    """
    require_tools("sipp")
    write_tone_wav_ulaw(tmp_path / TONE_WAV, CALLER_HZ, 1.0)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((HOST, 0))
        remote = Address(HOST, silent.getsockname()[1])
        result = run_sipp(sipp_load_args(name, remote, tmp_path), 1.0, cwd=tmp_path)
    assert result.returncode == 255, report(tmp_path, sipp=result)
    assert "timed out" in result.stderr, report(tmp_path, sipp=result)


def test_sipp_refuses_basic_caller_without_its_tone(tmp_path: Path) -> None:
    """call_uac_basic.xml reads caller_tone.wav from the working directory at load time."""
    require_tools("sipp")
    result = run_sipp(
        caller_args(Address(HOST, 9), "call_uac_basic.xml", tmp_path), 1.0, cwd=tmp_path
    )
    assert result.returncode == 1
    assert f"Cannot read/cache rtpstream file {TONE_WAV}" in result.stderr


def test_expect_status_needs_its_key(tmp_path: Path) -> None:
    require_tools("sipp")
    args = caller_args(Address(HOST, 9), "call_uac_expect_status.xml", tmp_path)
    result = run_sipp(args, 1.0, cwd=tmp_path)
    assert result.returncode == 1
    assert "expected_status" in result.stderr


# --- callers and callees, through the stand-in ---------------------------------------------


class Pair(NamedTuple):
    """A caller scenario, the callee behaviour it pairs with, and what the stand-in relays."""

    caller: str
    callee: str
    extra: tuple[str, ...]
    relayed: tuple[str, ...]
    """Start-line fragments of the messages the stand-in forwards, in this order."""


PAIRS: Final = {
    "basic-answer": Pair(
        "call_uac_basic.xml", "call_uas_answer.xml", (),
        ("INVITE", "180 Ringing", "200 OK", "ACK", "BYE", "200 OK"),
    ),
    "basic-ring_then_answer": Pair(
        "call_uac_basic.xml", "call_uas_ring_then_answer.xml", (),
        ("INVITE", "180 Ringing", "200 OK", "ACK", "BYE", "200 OK"),
    ),
    "wait_bye-answer_hangup": Pair(
        "call_uac_wait_bye.xml", "call_uas_answer_hangup.xml", (),
        ("INVITE", "200 OK", "ACK", "BYE sip:0101@", "200 OK"),
    ),
    "cancel-ring_forever": Pair(
        "call_uac_cancel.xml", "call_uas_ring_forever.xml", (),
        ("INVITE", "180 Ringing", "CANCEL", "200 OK", "487 Request Terminated", "ACK"),
    ),
    "hold-answer_hold": Pair(
        "call_uac_hold.xml", "call_uas_answer_hold.xml", (),
        ("INVITE", "200 OK", "ACK", "INVITE", "200 OK", "ACK", "INVITE", "200 OK", "ACK",
         "BYE", "200 OK"),
    ),
    "expect_486-busy": Pair(
        "call_uac_expect_status.xml", "call_uas_busy.xml", ("-key", "expected_status", "486"),
        ("INVITE", "486 Busy Here", "ACK"),
    ),
}  # fmt: skip


def test_every_callee_behaviour_has_a_caller() -> None:
    assert sorted(pair.callee for pair in PAIRS.values()) == CALLEE_BEHAVIOURS


@pytest.mark.parametrize("pair", PAIRS.values(), ids=PAIRS.keys())
def test_caller_and_callee_complete_a_call(standin: StandIn, tmp_path: Path, pair: Pair) -> None:
    require_tools("sipp")
    write_tone_wav_ulaw(tmp_path / TONE_WAV, CALLER_HZ, 1.0)
    args = callee_args(standin.address, pair.callee, tmp_path)
    with callee_running(standin, args, tmp_path) as end:
        assert "0102" in standin.bindings, report(tmp_path) + "\n".join(standin.trace)
        calling = run_sipp(
            caller_args(standin.address, pair.caller, tmp_path, *pair.extra),
            CALL_TIMEOUT,
            cwd=tmp_path,
        )
        answering = end.result()
    details = report(tmp_path, caller=calling, callee=answering) + "\n" + "\n".join(standin.trace)
    assert (calling.returncode, answering.returncode) == (0, 0), details
    forwarded = [line for line in standin.trace if line.startswith("->")]
    assert in_order(forwarded, pair.relayed), details


@pytest.mark.parametrize(("called", "status"), [(UNKNOWN, "404"), ("0103", "480")])
def test_expect_status_accepts_the_switch_refusal(
    standin: StandIn, tmp_path: Path, called: str, status: str
) -> None:
    """The stand-in answers 404 for an unknown number and 480 for one not registered."""
    require_tools("sipp")
    args = caller_args(
        standin.address, "call_uac_expect_status.xml", tmp_path,
        "-key", "expected_status", status, called=called,
    )  # fmt: skip
    result = run_sipp(args, CALL_TIMEOUT, cwd=tmp_path)
    assert result.returncode == 0, report(tmp_path, caller=result)
    assert f"final answer {status}, expected {status}" in (tmp_path / "caller-logs.log").read_text()


def test_expect_status_fails_on_another_status(standin: StandIn, tmp_path: Path) -> None:
    require_tools("sipp")
    with callee_running(
        standin, callee_args(standin.address, "call_uas_busy.xml", tmp_path), tmp_path
    ) as end:
        args = caller_args(
            standin.address, "call_uac_expect_status.xml", tmp_path,
            "-key", "expected_status", "480",
        )  # fmt: skip
        calling = run_sipp(args, CALL_TIMEOUT, cwd=tmp_path)
        answering = end.result()
    assert calling.returncode == 1, report(tmp_path, caller=calling)
    assert answering.returncode == 0, report(tmp_path, callee=answering)
    assert "final answer 486, expected 480" in (tmp_path / "caller-logs.log").read_text()


def test_basic_caller_fails_fast_on_a_busy_callee(standin: StandIn, tmp_path: Path) -> None:
    require_tools("sipp")
    write_tone_wav_ulaw(tmp_path / TONE_WAV, CALLER_HZ, 1.0)
    with callee_running(
        standin, callee_args(standin.address, "call_uas_busy.xml", tmp_path), tmp_path
    ) as end:
        started = time.monotonic()
        calling = run_sipp(
            caller_args(standin.address, "call_uac_basic.xml", tmp_path), CALL_TIMEOUT, cwd=tmp_path
        )
        elapsed = time.monotonic() - started
        end.result()
    assert calling.returncode == 1, report(tmp_path, caller=calling)
    assert elapsed < CALL_TIMEOUT / 2, "the 486 ends the call at once, not on -timeout"


def test_callee_fails_when_its_registration_is_refused(standin: StandIn, tmp_path: Path) -> None:
    require_tools("sipp")
    args = callee_args(standin.address, "call_uas_answer.xml", tmp_path, password="wrong")
    result = run_sipp(args, CALL_TIMEOUT, cwd=tmp_path)
    assert result.returncode == 1, report(tmp_path, callee=result)
    assert "0102" not in standin.bindings


def test_callee_that_gets_no_call_ends_on_its_timeout(standin: StandIn, tmp_path: Path) -> None:
    """call_uas_register.xml ends only once the callee scenario ran to its end."""
    require_tools("sipp")
    result = run_sipp(
        callee_args(standin.address, "call_uas_answer.xml", tmp_path), 2.0, cwd=tmp_path
    )
    assert result.returncode == 255, report(tmp_path, callee=result)
    assert "0102" in standin.bindings


# --- audio ---------------------------------------------------------------------------------


def test_sipp_caller_tone_reaches_the_sipp_callee(standin: StandIn, tmp_path: Path) -> None:
    """rtp_stream plays the WAV from write_tone_wav_ulaw: 1000 Hz arrives at the callee."""
    require_tools("sipp", "tcpdump")
    write_tone_wav_ulaw(tmp_path / TONE_WAV, CALLER_HZ, 1.0)
    callee_media = free_udp_pair()
    args = callee_args(standin.address, "call_uas_answer.xml", tmp_path, "-mp", str(callee_media))
    with (
        RtpCapture(tmp_path, [callee_media]) as capture,
        callee_running(standin, args, tmp_path) as end,
    ):
        calling = run_sipp(
            caller_args(standin.address, "call_uac_basic.xml", tmp_path), CALL_TIMEOUT, cwd=tmp_path
        )
        answering = end.result()
    assert (calling.returncode, answering.returncode) == (0, 0), report(
        tmp_path, caller=calling, callee=answering
    )
    samples = capture.pcmu_samples(callee_media)
    assert len(samples) >= 2 * RATE, f"{len(samples)} samples: under 2 s of the 3 s call"
    assert tone_power(samples, RATE, CALLER_HZ) > 0.5
    assert tone_power(samples, RATE, CALLEE_HZ) < 0.05
    assert dominant_frequency(samples, RATE) == CALLER_HZ


def test_tones_cross_between_sipp_caller_and_baresip_callee(
    standin: StandIn, tmp_path: Path
) -> None:
    """SIPp sends 1000 Hz, baresip 600 Hz: each finds the other's tone, by frequency.

    baresip's decoded audio is its sndfile dump; SIPp's is the PCMU captured on its -mp.
    """
    require_tools("sipp", "tcpdump", "baresip")
    write_tone_wav_ulaw(tmp_path / TONE_WAV, CALLER_HZ, 1.0)
    callee_tone = write_tone_wav(tmp_path / "callee_tone.wav", frequency=CALLEE_HZ, seconds=20)
    account = BaresipAccount("0102", standin.address, password=USERS["0102"])
    caller_media = free_udp_pair()
    with BaresipPhone.start(tmp_path, [account], audio_source=callee_tone) as phone:
        phone.wait_registered()
        args = caller_args(
            standin.address, "call_uac_basic.xml", tmp_path, "-mp", str(caller_media)
        )
        with RtpCapture(tmp_path, [caller_media]) as capture:
            calling = run_sipp(args, CALL_TIMEOUT, cwd=tmp_path)
        details = report(tmp_path, caller=calling) + "\n" + "\n".join(standin.trace)
        assert calling.returncode == 0, details + phone.output()
        closed = wait_until(lambda: any(e.get("type") == "CALL_CLOSED" for e in phone.events), 5)
        assert closed, phone.events
    heard_by_sipp = capture.pcmu_samples(caller_media)
    dumps = sorted(phone.snd_dir.glob("dump-*-dec.wav"))
    assert dumps, f"no decoded dump in {phone.snd_dir}: {list(phone.snd_dir.iterdir())}"
    rate, heard_by_baresip = read_wav_samples(dumps[-1])
    assert rate == RATE
    assert len(heard_by_sipp) >= 2 * RATE, f"{len(heard_by_sipp)} samples captured"
    assert tone_power(heard_by_sipp, RATE, CALLEE_HZ) > 0.5
    assert tone_power(heard_by_sipp, RATE, CALLER_HZ) < 0.05
    assert tone_power(heard_by_baresip, RATE, CALLER_HZ) > 0.5
    assert tone_power(heard_by_baresip, RATE, CALLEE_HZ) < 0.05
