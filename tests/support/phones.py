"""Real SIP phones (baresip 1.0.0, linphonec 5.1) as bounded subprocesses for e2e tests.

``BaresipPhone`` runs one ``baresip`` process (one or more accounts) in a fresh config
directory and drives it over ``ctrl_tcp`` (netstrings ``LEN:JSON,``); ``LinphonePhone``
runs ``linphonec`` with a per-run ``HOME`` and ``linphonerc`` and drives it over
stdin/stdout. Both are context managers; the ``baresip_factory`` and
``linphone_factory`` fixtures stop every phone a test started, even when it fails.
Every wait is bounded; phones listen on 127.0.0.1 only; every process is stopped by
PID (and dies with the test process: ``PR_SET_PDEATHSIG``, plus ``-t`` for baresip).

What the phones do (measured here against a hand-built UDP registrar, Debian 12):

Digest algorithms. A 401 carrying ``WWW-Authenticate: Digest ... algorithm=SHA-256``
and another with ``algorithm=MD5`` (both ``qop="auth"``):

- baresip 1.0.0 (libre 1.1.0) fails the registration ("Register: Function not
  implemented", ENOSYS) whenever ANY challenge names an algorithm other than MD5,
  in either order: it never falls back to the MD5 one. It answers MD5-only
  challenges (its ``Authorization`` carries no ``algorithm=`` parameter). So it
  registers only where the registrar offers MD5 alone.
- linphonec 5.1 answers the FIRST challenge it supports, in header order:
  SHA-256 first gives ``algorithm=SHA-256`` (64-hex response), MD5 first gives
  MD5. Both hashes were verified against RFC 7616. It reuses the nonce for
  refreshes and the un-REGISTER (``nc=00000002``, ...).
- When a digest answer is rejected (401 again), linphonec prints
  ``Password for USER on REALM:`` and reads the next stdin line as the password;
  this harness answers that prompt with the configured password and counts it
  in ``LinphonePhone.password_prompts``.

Timing (a fresh process, registrar on 127.0.0.1):

- First REGISTER about 0.2 s after start (baresip) and 0.3-0.45 s (linphonec); the
  digest retry follows the 401 within milliseconds; registered well under 0.5 s.
- No answer: both retransmit per RFC 3261 (T1 = 0.5 s doubling to T2 = 4 s) and
  give up after 32 s. baresip then waits 30-60 s (random; 59 s measured) before a
  new REGISTER, as long after an auth failure (48 s measured); linphonec tries again
  2 s after a timeout and about 60 s after a rejected password.
- On exit both un-REGISTER (baresip: ``expires=0`` Contact parameter, after a new
  401 round; linphonec: ``Expires: 0`` reusing its nonce). linphonec exits within
  about 2 s of ``quit`` even when nobody answers. baresip's ``quit`` waits for every
  pending client transaction (an unanswered REGISTER or un-REGISTER, an INVITE still
  retransmitting): ``stop`` then escalates to SIGTERM (``stop all`` again) and a
  second SIGTERM, which exits at once (about 7 s with the default timeouts).

Quirks:

- baresip binds UDP and TCP on the SIP port and TLS on port + 1 (a ctrl_tcp port
  drawn as P + 1 once connected the harness to that TLS listener: ports are drawn
  disjoint and ``start`` checks ctrl_tcp answers). Its Contact user is ``USER-0x...``
  (per UA), expiry as a Contact parameter (no ``Expires`` header). ``REGISTER_OK``
  often fires before the control client connects: ``wait_registered`` polls
  ``reginfo``. ``accept`` with no call still answers ``ok: true``. ``reginfo`` text
  carries ANSI colours (``reginfo()`` strips them); an account with ``regint=0``
  shows no status. ``hangup`` before any provisional response sends no CANCEL: the
  INVITE goes on retransmitting until Timer B, though ``CALL_CLOSED`` comes at once.
- linphonec offers the eth0 address (``c=IN IP6 fd00::2`` here, despite
  ``ipv6_enabled=0``) unless ``[rtp] bind_address=127.0.0.1`` is set (it is here),
  and offers opus, speex, ... before PCMU unless every other codec is disabled in
  the config (``codecs`` does that). It drops the port from the AoR in From/To
  (``sip:103@127.0.0.1`` although the identity is ``sip:103@127.0.0.1:PORT``),
  sends a Contact without user part when not registered, sends CRLFCRLF keep-alives
  to the registrar every 30 s, does not exit on stdin EOF, keeps running with no SIP
  socket when its port is taken (``start`` checks it owns the port), and echoes each
  command (and the answered password) after its ``linphonec>`` prompt.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import random
import re
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import wave
from codecs import getincrementaldecoder
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Final, Literal, Protocol, Self, TypeAlias

import pytest

from tests.support.processes import Address, free_port

BARESIP: Final = "baresip"
LINPHONEC: Final = "linphonec"
HOST: Final = "127.0.0.1"

START_TIMEOUT: Final = 10.0
"""Seconds a phone gets to come up (control port open, or SIP socket bound)."""
COMMAND_TIMEOUT: Final = 5.0
"""Seconds one control command may take to answer."""
QUIT_TIMEOUT: Final = 5.0
"""Seconds a phone gets to un-REGISTER and exit after ``quit``."""
TERM_TIMEOUT: Final = 2.0
"""Seconds after each SIGTERM before escalating."""
KILL_TIMEOUT: Final = 5.0
"""Seconds to reap a phone after SIGKILL."""
REGISTER_TIMEOUT: Final = 10.0
POLL_INTERVAL: Final = 0.05
LIFETIME: Final = 900
"""baresip's own ``-t`` limit (s): a safety net should the test process vanish."""
START_ATTEMPTS: Final = 3
BIND_GRACE: Final = 2.0
"""Seconds linphonec may take, after its first prompt, to show it holds its SIP port."""
RTP_RANGE_SIZE: Final = 40
TAIL_CHARS: Final = 4000

ANSI_ESCAPE: Final = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

Event: TypeAlias = Mapping[str, object]
"""One baresip ``ctrl_tcp`` event, e.g. ``{"type": "CALL_ESTABLISHED", "accountaor": ...}``."""


class PhoneError(RuntimeError):
    """A phone failed; the message carries the end of its output."""


class PhoneStartError(PhoneError):
    """A phone died or did not come up in time."""


class _PortTakenError(PhoneStartError):
    """The SIP port went to someone else between ``free_port`` and the phone's bind."""


def strip_ansi(text: str) -> str:
    return ANSI_ESCAPE.sub("", text)


def _tail(path: Path, chars: int = TAIL_CHARS) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "<missing>"
    return text if len(text) <= chars else "..." + text[-chars:]


# --- processes ------------------------------------------------------------------------

_PR_SET_PDEATHSIG: Final = 1
_libc: ctypes.CDLL | None = None
with contextlib.suppress(OSError):
    _libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    """In the child: get SIGKILL when the (main) thread that started it ends."""
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _spawn(
    command: Sequence[str],
    *,
    stdin: int | IO[bytes],
    stdout: int | IO[bytes],
    stderr: int | IO[bytes],
    cwd: Path,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    # PDEATHSIG fires when the *thread* that forked exits: only ask for it from the
    # main thread, so a phone started from a worker thread outlives that thread.
    in_main = threading.current_thread() is threading.main_thread()
    return subprocess.Popen(
        list(command),
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        cwd=cwd,
        env=None if env is None else dict(env),
        preexec_fn=_die_with_parent if in_main else None,  # noqa: PLW1509
    )


def _wait(process: subprocess.Popen[bytes], timeout: float) -> int | None:
    try:
        return process.wait(timeout=max(timeout, 0.0))
    except subprocess.TimeoutExpired:
        return None


def _signal(process: subprocess.Popen[bytes], signum: int) -> None:
    # Only a child not yet reaped: its PID cannot have been recycled.
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signum)


def _escalate(process: subprocess.Popen[bytes], terms: int, term_timeout: float) -> int:
    """SIGTERM ``terms`` times (``term_timeout`` s each), then SIGKILL; the exit code."""
    for _ in range(terms):
        _signal(process, signal.SIGTERM)
        code = _wait(process, term_timeout)
        if code is not None:
            return code
    _signal(process, signal.SIGKILL)
    return process.wait(timeout=KILL_TIMEOUT)


def pid_exists(pid: int) -> bool:
    """Whether a process (not a zombie) has this PID."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def owns_udp_port(pid: int, port: int, host: str = HOST) -> bool:
    """Whether process ``pid`` holds a UDP socket bound on ``host:port`` (Linux /proc)."""
    packed = socket.inet_aton(host)
    wanted = f"{struct.unpack('<I', packed)[0]:08X}:{port:04X}"
    inodes: set[str] = set()
    with contextlib.suppress(FileNotFoundError):
        for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
            fields = line.split()
            if len(fields) > 9 and fields[1] == wanted:
                inodes.add(fields[9])
    if not inodes:
        return False
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except (FileNotFoundError, PermissionError):
        return False
    for name in names:
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/{pid}/fd/{name}")
            if link.startswith("socket:[") and link[8:-1] in inodes:
                return True
    return False


# --- ports and files -----------------------------------------------------------------


def free_sip_port(host: str = HOST) -> int:
    """A port P with UDP P, TCP P and TCP P+1 free (baresip binds TLS on P+1)."""
    for _ in range(50):
        port = free_port(host)
        if port >= 65535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tls:
            try:
                tls.bind((host, port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free SIP port (UDP+TCP P, TCP P+1) after 50 tries")


def free_rtp_range(size: int = RTP_RANGE_SIZE, host: str = HOST) -> tuple[int, int]:
    """An even-based ``(first, last)`` UDP port range, every port of it free now.

    The range lies outside the kernel's ephemeral range (``ip_local_port_range``), as a
    deployment's should: there, any socket bound to port 0 (a SIPp's, a phone's, the
    switch's own) may land on a port the switch is about to give a call, and that call
    fails with 503. Below it, only a test that asks for a port by number can collide, and
    the ranges of one test are checked disjoint.
    """
    low, high = _ephemeral_ports()
    spans = [(1024, low - 1), (high + 1, 65535)]
    starts = [
        first for first_port, last_port in spans
        for first in range(first_port + (first_port & 1), last_port - size + 2, 2)
    ]  # fmt: skip
    chooser = random.SystemRandom()
    for _ in range(50):
        first = chooser.choice(starts)
        if _all_free(host, range(first, first + size)):
            return first, first + size - 1
    raise RuntimeError("no free RTP port range after 50 tries")


def _ephemeral_ports() -> tuple[int, int]:
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        low, high = (int(part) for part in text.split())
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default
    return low, high


def _all_free(host: str, ports: range) -> bool:
    sockets: list[socket.socket] = []
    try:
        for port in ports:
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sockets.append(udp)
            udp.bind((host, port))
    except OSError:
        return False
    finally:
        for udp in sockets:
            udp.close()
    return True


def _disjoint(ports: Sequence[int], rtp: tuple[int, int]) -> bool:
    return len(set(ports)) == len(ports) and not any(rtp[0] <= p <= rtp[1] for p in ports)


def _baresip_ports() -> tuple[int, int, tuple[int, int]]:
    """SIP port P (P+1 is its TLS port), ctrl_tcp port and RTP range, all distinct.

    ``free_port`` releases what it found, so consecutive draws can overlap: a ctrl
    port equal to P+1 once connected the harness to baresip's own TLS listener.
    """
    for _ in range(50):
        sip, ctrl, rtp = free_sip_port(), free_port(), free_rtp_range()
        if _disjoint([sip, sip + 1, ctrl], rtp):
            return sip, ctrl, rtp
    raise RuntimeError("no disjoint baresip ports after 50 tries")


def _linphone_ports() -> tuple[int, tuple[int, int]]:
    for _ in range(50):
        sip, rtp = free_port(), free_rtp_range()
        if _disjoint([sip], rtp):
            return sip, rtp
    raise RuntimeError("no disjoint linphonec ports after 50 tries")


def write_tone_wav(
    path: Path, *, frequency: float = 440.0, seconds: float = 5.0, rate: int = 8000
) -> Path:
    """An 8 kHz mono S16LE sine WAV (what baresip's ``aufile`` and linphonec play)."""
    frames = int(seconds * rate)
    samples = (
        int(16000 * math.sin(2 * math.pi * frequency * index / rate)) for index in range(frames)
    )
    data = struct.pack(f"<{frames}h", *samples)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(data)
    return path


# --- baresip -------------------------------------------------------------------------


@dataclass(frozen=True)
class BaresipAccount:
    """One line of baresip's ``accounts`` file: ``<sip:USER@REGISTRAR>;...``.

    ``regint=0`` makes an account that never registers (it can still dial).
    """

    user: str
    registrar: Address
    password: str = "secret"
    answermode: Literal["auto", "manual"] = "auto"
    regint: int = 300
    audio_codecs: str = "PCMU"
    extra_params: str = ""
    """Appended verbatim, e.g. ``";auth_user=alice;outbound=\\"sip:...\\""``."""

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{self.registrar}"

    def line(self) -> str:
        return (
            f"<{self.aor}>;auth_pass={self.password};answermode={self.answermode}"
            f";regint={self.regint};audio_codecs={self.audio_codecs}{self.extra_params}"
        )


@dataclass(frozen=True)
class CtrlResponse:
    ok: bool
    data: str
    message: Event


class CtrlClient:
    """A ``ctrl_tcp`` connection: netstring ``LEN:JSON,`` framing, token-matched replies.

    A reader thread files responses by token and appends unsolicited events (those
    with ``"event": true``) to ``events``, in arrival order.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._cond = threading.Condition()
        self._responses: dict[str, Event] = {}
        self._next_token = 0
        self._send_lock = threading.Lock()
        self.events: list[Event] = []
        self.closed = False
        self.error: str | None = None
        self._thread = threading.Thread(target=self._read, name="baresip-ctrl", daemon=True)
        self._thread.start()

    @classmethod
    def connect(cls, port: int, timeout: float, process: subprocess.Popen[bytes]) -> CtrlClient:
        """Connect to ``HOST:port``, retrying until ``timeout`` or ``process`` exits."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                sock = socket.create_connection((HOST, port), timeout=1.0)
            except OSError as error:
                if process.poll() is not None:
                    raise PhoneStartError("baresip exited before its ctrl_tcp opened") from None
                if time.monotonic() > deadline:
                    raise PhoneStartError(
                        f"ctrl_tcp on {HOST}:{port} not open after {timeout} s: {error}"
                    ) from None
                time.sleep(POLL_INTERVAL)
            else:
                sock.settimeout(None)
                return cls(sock)

    def _read(self) -> None:
        buffer = b""
        try:
            while True:
                chunk = self._sock.recv(65536)
                if not chunk:
                    break
                buffer += chunk
                while True:
                    length_text, colon, rest = buffer.partition(b":")
                    if not colon:
                        break
                    if not length_text.isdigit():
                        raise ValueError(f"bad netstring length {length_text[:20]!r}")
                    length = int(length_text)
                    if len(rest) < length + 1:
                        break
                    if rest[length : length + 1] != b",":
                        raise ValueError("netstring without its trailing comma")
                    self._dispatch(json.loads(rest[:length]))
                    buffer = rest[length + 1 :]
        except (OSError, ValueError) as error:
            with self._cond:
                self.error = repr(error)
        finally:
            with self._cond:
                self.closed = True
                self._cond.notify_all()

    def _dispatch(self, message: object) -> None:
        if not isinstance(message, dict):
            return
        with self._cond:
            if message.get("event") is True:
                self.events.append(message)
            elif message.get("response") is True and isinstance(message.get("token"), str):
                self._responses[message["token"]] = message
            self._cond.notify_all()

    def request(self, command: str, params: str | None, timeout: float) -> CtrlResponse:
        with self._cond:
            self._next_token += 1
            token = f"t{self._next_token}"
        payload: dict[str, str] = {"command": command, "token": token}
        if params is not None:
            payload["params"] = params
        body = json.dumps(payload).encode()
        try:
            with self._send_lock:
                self._sock.sendall(str(len(body)).encode() + b":" + body + b",")
        except OSError as error:
            raise PhoneError(f"ctrl_tcp send of {command!r} failed: {error}") from None
        deadline = time.monotonic() + timeout
        with self._cond:
            while token not in self._responses:
                remaining = deadline - time.monotonic()
                if self.closed:
                    raise PhoneError(f"ctrl_tcp closed before answering {command!r}")
                if remaining <= 0:
                    raise TimeoutError(f"no answer to {command!r} within {timeout} s")
                self._cond.wait(remaining)
            message = self._responses.pop(token)
        data = message.get("data")
        return CtrlResponse(
            message.get("ok") is True, data if isinstance(data, str) else "", message
        )

    def wait_event(self, predicate: Callable[[Event], bool], timeout: float, since: int) -> Event:
        deadline = time.monotonic() + timeout
        index = since
        with self._cond:
            while True:
                while index < len(self.events):
                    event = self.events[index]
                    index += 1
                    if predicate(event):
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.closed:
                    raise TimeoutError(
                        f"no matching event within {timeout} s"
                        + (" (ctrl_tcp closed)" if self.closed else "")
                        + f"; events since #{since}: {self.events[since:]}"
                    )
                self._cond.wait(remaining)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(timeout=KILL_TIMEOUT)


def _baresip_config(
    sip_port: int, ctrl_port: int, rtp: tuple[int, int], audio: Path, snd: Path
) -> str:
    return "\n".join(
        [
            "poll_method epoll",
            f"sip_listen {HOST}:{sip_port}",
            "call_max_calls 4",
            "audio_player aubridge,nil",
            f"audio_source aufile,{audio}",
            "audio_alert aubridge,nil",
            "ausrc_srate 8000",
            "auplay_srate 8000",
            "ausrc_channels 1",
            "auplay_channels 1",
            f"rtp_ports {rtp[0]}-{rtp[1]}",
            "jitter_buffer_delay 1-10",
            f"snd_path {snd}",
            "module_path /usr/lib/baresip/modules",
            "module g711.so",
            "module aufile.so",
            "module aubridge.so",
            "module sndfile.so",
            "module_tmp uuid.so",
            "module_tmp account.so",
            "module_app menu.so",
            "module_app ctrl_tcp.so",
            f"ctrl_tcp_listen {HOST}:{ctrl_port}",
            "",
        ]
    )


@dataclass
class BaresipPhone:
    """A running baresip process with a connected ``ctrl_tcp`` client.

    Start it with ``BaresipPhone.start``; use it as a context manager or call ``stop``.
    """

    process: subprocess.Popen[bytes]
    ctrl: CtrlClient
    workdir: Path
    accounts: tuple[BaresipAccount, ...]
    sip_port: int
    ctrl_port: int
    rtp_ports: tuple[int, int]
    snd_dir: Path
    exit_code: int | None = field(default=None, init=False)

    @classmethod
    def start(
        cls,
        parent: Path,
        accounts: Sequence[BaresipAccount],
        *,
        audio_source: Path | None = None,
        sip_trace: bool = True,
        lifetime: int = LIFETIME,
        start_timeout: float = START_TIMEOUT,
        attempts: int = START_ATTEMPTS,
    ) -> BaresipPhone:
        """Start baresip in a new directory under ``parent``; return once ctrl_tcp answers.

        ``audio_source`` is an 8 kHz mono WAV (default: a 440 Hz tone); decoded incoming
        audio lands in ``snd_dir`` as ``dump-*-dec.wav``. ``sip_trace`` adds ``-s`` (SIP
        messages in ``stdout.log``). A port taken between choice and bind is retried
        with new ports up to ``attempts`` times.
        """
        if not accounts:
            raise ValueError("baresip needs at least one account")
        failure: PhoneStartError | None = None
        for _ in range(attempts):
            workdir = Path(tempfile.mkdtemp(prefix="baresip-", dir=parent))
            snd = workdir / "snd"
            snd.mkdir()
            audio = audio_source or write_tone_wav(workdir / "tone.wav")
            sip_port, ctrl_port, rtp = _baresip_ports()
            (workdir / "config").write_text(_baresip_config(sip_port, ctrl_port, rtp, audio, snd))
            (workdir / "accounts").write_text("".join(a.line() + "\n" for a in accounts))
            (workdir / "contacts").write_text("")
            command = [BARESIP, "-f", str(workdir), "-n", HOST, "-t", str(lifetime)]
            if sip_trace:
                command.append("-s")
            with (
                (workdir / "stdout.log").open("wb") as stdout,
                (workdir / "stderr.log").open("wb") as stderr,
            ):
                process = _spawn(
                    command, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, cwd=workdir
                )
            ctrl: CtrlClient | None = None
            try:
                ctrl = CtrlClient.connect(ctrl_port, start_timeout, process)
                # Proves the listener is this baresip's ctrl_tcp, not a port someone took.
                ctrl.request("reginfo", None, COMMAND_TIMEOUT)
            except (PhoneError, TimeoutError) as error:
                if ctrl is not None:
                    ctrl.close()
                _escalate(process, 2, TERM_TIMEOUT)
                output = _tail(workdir / "stdout.log") + _tail(workdir / "stderr.log")
                failure = PhoneStartError(f"{error}; exit {process.returncode}; output:\n{output}")
                if "Address already in use" in output or ctrl is not None:
                    continue  # a port went to someone else after free_port: new ports
                raise failure from None
            except BaseException:
                if ctrl is not None:
                    ctrl.close()
                _escalate(process, 2, TERM_TIMEOUT)
                raise
            return cls(process, ctrl, workdir, tuple(accounts), sip_port, ctrl_port, rtp, snd)
        assert failure is not None
        raise failure

    # -- state --

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def address(self) -> Address:
        """Where the phone receives SIP (UDP and TCP)."""
        return Address(HOST, self.sip_port)

    @property
    def events(self) -> list[Event]:
        """Every ctrl_tcp event so far, oldest first (a live list: index it, copy it)."""
        return self.ctrl.events

    def mark(self) -> int:
        """The current event count: pass it as ``since`` to wait for later events only."""
        return len(self.ctrl.events)

    def is_alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        """The end of stdout (SIP trace, log) and stderr, for failure messages."""
        return (
            f"--- baresip stdout ({self.workdir / 'stdout.log'}):\n"
            f"{_tail(self.workdir / 'stdout.log')}\n--- stderr:\n"
            f"{_tail(self.workdir / 'stderr.log')}"
        )

    # -- control --

    def command(
        self, name: str, params: str | None = None, timeout: float = COMMAND_TIMEOUT
    ) -> CtrlResponse:
        """Send one ctrl_tcp command (``reginfo``, ``dial``, ``sndcode``...); its response."""
        return self.ctrl.request(name, params, timeout)

    def _checked(self, name: str, params: str | None = None) -> CtrlResponse:
        response = self.command(name, params)
        if not response.ok:
            raise PhoneError(f"baresip refused {name} {params or ''}: {response.data!r}")
        return response

    def reginfo(self) -> str:
        """The ``reginfo`` text, ANSI colours stripped."""
        return strip_ansi(self._checked("reginfo").data)

    def registration_status(self) -> dict[str, str]:
        """AoR -> status word from ``reginfo``: ``OK``, ``ERR``, ``zzz`` (no answer yet)
        or ``""`` (an account that does not register, ``regint=0``)."""
        status: dict[str, str] = {}
        for line in self.reginfo().splitlines():
            fields = line.lstrip("> ").split()
            if fields and fields[0].startswith("sip"):
                status[fields[0]] = fields[1] if len(fields) > 1 else ""
        return status

    def wait_registered(
        self, timeout: float = REGISTER_TIMEOUT, aors: Sequence[str] | None = None
    ) -> None:
        """Poll ``reginfo`` until every registering account (or each of ``aors``) shows OK."""
        wanted = (
            list(aors)
            if aors is not None
            else [account.aor for account in self.accounts if account.regint > 0]
        )
        deadline = time.monotonic() + timeout
        while True:
            status = self.registration_status()
            if all(status.get(aor) == "OK" for aor in wanted):
                return
            if not self.is_alive() or time.monotonic() > deadline:
                raise TimeoutError(
                    f"baresip not registered within {timeout} s: {status}; "
                    f"events: {self.events}\n{self.output()}"
                )
            time.sleep(POLL_INTERVAL * 2)

    def wait_event(
        self,
        predicate: Callable[[Event], bool] | str,
        timeout: float = COMMAND_TIMEOUT,
        *,
        since: int = 0,
    ) -> Event:
        """The first event from index ``since`` on that matches; ``TimeoutError`` after
        ``timeout`` s. A string matches the event ``type`` (``"CALL_ESTABLISHED"``)."""
        if isinstance(predicate, str):
            wanted = predicate

            def match(event: Event) -> bool:
                return event.get("type") == wanted

            return self.ctrl.wait_event(match, timeout, since)
        return self.ctrl.wait_event(predicate, timeout, since)

    def dial(self, uri: str, *, from_aor: str | None = None) -> CtrlResponse:
        """Call ``uri`` from the current account, or from ``from_aor`` (``uafind`` first)."""
        if from_aor is not None:
            self._checked("uafind", from_aor)
        return self._checked("dial", uri)

    def accept(self) -> CtrlResponse:
        """Answer the ringing call (manual answer mode). Says ok even with no call."""
        return self._checked("accept")

    def hangup(self) -> CtrlResponse:
        """End the current call; on a ringing incoming call it answers 486."""
        return self._checked("hangup")

    # -- lifetime --

    def stop(self, quit_timeout: float = QUIT_TIMEOUT, term_timeout: float = TERM_TIMEOUT) -> int:
        """``quit`` (it un-REGISTERs), then SIGTERM twice, then SIGKILL, all by PID.

        Bounded by about ``quit_timeout + 2 * term_timeout + 5`` s. Idempotent; returns
        the exit code (``-9`` when SIGKILL was needed).
        """
        if self.exit_code is not None:
            return self.exit_code
        try:
            if self.process.poll() is None and not self.ctrl.closed:
                with contextlib.suppress(PhoneError, TimeoutError, OSError):
                    self.ctrl.request("quit", None, min(quit_timeout, 1.0))
            code = _wait(self.process, quit_timeout)
            if code is None:
                # First SIGTERM: "stop all" (un-REGISTER); the second exits at once.
                code = _escalate(self.process, 2, term_timeout)
            self.exit_code = code
        finally:
            if self.exit_code is None:
                self.exit_code = _escalate(self.process, 0, 0)
            self.ctrl.close()
        return self.exit_code

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


# --- linphonec -----------------------------------------------------------------------

PROMPT: Final = "linphonec> "
PASSWORD_PROMPT: Final = re.compile(r"Password for \S+ on .*: ?$")
STATUS_REGISTER: Final = re.compile(r"^registered(?:=-?\d+|, identity=.*)$")


@dataclass(frozen=True)
class LinphoneAccount:
    """The ``[proxy_0]`` and ``[auth_info_0]`` sections of a linphonerc.

    ``realm=None`` leaves the realm out: linphonec then answers any realm.
    """

    user: str
    registrar: Address
    password: str = "secret"
    realm: str | None = None
    expires: int = 300
    register: bool = True

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{self.registrar}"


LINPHONE_AUDIO_CODECS: Final = (
    ("opus", 48000, 2),
    ("speex", 16000, 1),
    ("speex", 8000, 1),
    ("PCMU", 8000, 1),
    ("PCMA", 8000, 1),
    ("GSM", 8000, 1),
    ("G722", 8000, 1),
    ("G729", 8000, 1),
    ("speex", 32000, 1),
    ("G726-16", 8000, 1),
    ("G726-24", 8000, 1),
    ("G726-32", 8000, 1),
    ("G726-40", 8000, 1),
    ("AAL2-G726-16", 8000, 1),
    ("AAL2-G726-24", 8000, 1),
    ("AAL2-G726-32", 8000, 1),
    ("AAL2-G726-40", 8000, 1),
    ("L16", 44100, 2),
    ("L16", 44100, 1),
)
"""Every audio codec linphonec 5.1 knows here; one left out of the config comes back enabled."""


def _codec_sections(codecs: Sequence[str]) -> list[str]:
    wanted = [name.lower() for name in codecs]
    unknown = set(wanted) - {mime.lower() for mime, _, _ in LINPHONE_AUDIO_CODECS}
    if unknown:
        raise ValueError(f"linphonec has no audio codec {sorted(unknown)}")
    ordered = sorted(
        LINPHONE_AUDIO_CODECS,
        key=lambda codec: (
            wanted.index(codec[0].lower()) if codec[0].lower() in wanted else len(wanted)
        ),
    )
    lines: list[str] = []
    for index, (mime, rate, channels) in enumerate(ordered):
        enabled = int(mime.lower() in wanted)
        lines += [f"[audio_codec_{index}]", f"mime={mime}", f"rate={rate}"]
        lines += [f"channels={channels}", f"enabled={enabled}", ""]
    return lines


def _linphonerc(
    account: LinphoneAccount, sip_port: int, rtp: tuple[int, int], codecs: Sequence[str]
) -> str:
    auth = [
        "[auth_info_0]",
        f"username={account.user}",
        f"passwd={account.password}",
        f"domain={account.registrar}",
    ]
    if account.realm is not None:
        auth.append(f"realm={account.realm}")
    sections = [
        "[sip]",
        f"sip_port={sip_port}",
        "sip_tcp_port=0",
        "sip_tls_port=0",
        f"bind_address={HOST}",
        "default_proxy=0",
        "register_only_when_network_is_up=0",
        "",
        "[net]",
        "ipv6_enabled=0",
        "",
        "[rtp]",
        f"bind_address={HOST}",  # without it the SDP offers eth0's (IPv6) address
        f"audio_rtp_port={rtp[0]}-{rtp[1]}",
        "",
        "[sound]",
        "echocancellation=0",
        "",
        "[video]",
        "enabled=0",
        "capture=0",
        "display=0",
        "",
        "[proxy_0]",
        f"reg_proxy=<sip:{account.registrar};transport=udp>",
        f"reg_identity=<{account.aor}>",
        f"reg_sendregister={int(account.register)}",
        f"reg_expires={account.expires}",
        "publish=0",
        "",
        *auth,
        "",
        *_codec_sections(codecs),
    ]
    return "\n".join(sections)


@dataclass
class LinphonePhone:
    """A running linphonec driven over stdin, its stdout collected line by line.

    Lines are kept without the ``linphonec> `` prompt (so a command's echo shows as
    the command itself). Start it with ``LinphonePhone.start``.
    """

    process: subprocess.Popen[bytes]
    workdir: Path
    account: LinphoneAccount
    sip_port: int
    rtp_ports: tuple[int, int]
    lines: list[str] = field(default_factory=list, init=False)
    password_prompts: int = field(default=0, init=False)
    exit_code: int | None = field(default=None, init=False)
    _cond: threading.Condition = field(default_factory=threading.Condition, init=False)
    _stdin_lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _prompts: int = field(default=0, init=False)
    _eof: bool = field(default=False, init=False)
    _reader: threading.Thread | None = field(default=None, init=False)

    @classmethod
    def start(
        cls,
        parent: Path,
        account: LinphoneAccount,
        *,
        auto_answer: bool = False,
        use_files: bool = True,
        codecs: Sequence[str] = ("PCMU",),
        debug_level: int = 0,
        start_timeout: float = START_TIMEOUT,
        attempts: int = START_ATTEMPTS,
    ) -> LinphonePhone:
        """Start linphonec in a new ``HOME`` under ``parent``; return once it owns its port.

        ``auto_answer`` adds ``-a``; ``use_files`` sends ``soundcard use files`` (no
        sound card here; then ``play``/``record`` WAV files). ``codecs`` are the audio
        codecs enabled, in preference order (mime names; ``telephone-event`` is always
        offered). ``debug_level`` > 0 logs to ``linphonec.log`` in the work directory.
        """
        failure: PhoneStartError | None = None
        for _ in range(attempts):
            workdir = Path(tempfile.mkdtemp(prefix="linphone-", dir=parent))
            (workdir / ".local" / "share" / "linphone").mkdir(parents=True)
            sip_port, rtp = _linphone_ports()
            rc = workdir / "linphonerc"
            rc.write_text(_linphonerc(account, sip_port, rtp, codecs))
            command = [LINPHONEC, "-c", str(rc), "-d", str(debug_level)]
            if debug_level > 0:
                command += ["-l", str(workdir / "linphonec.log")]
            if auto_answer:
                command.append("-a")
            env = {**os.environ, "HOME": str(workdir)}
            with (workdir / "stderr.log").open("wb") as stderr:
                process = _spawn(
                    command,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    cwd=workdir,
                    env=env,
                )
            phone = cls(process, workdir, account, sip_port, rtp)
            phone._start_reader()
            try:
                phone._wait_up(start_timeout)
            except PhoneStartError as error:
                phone.stop(quit_timeout=0.5)
                failure = PhoneStartError(f"{error}\n{phone.output()}")
                if isinstance(error, _PortTakenError):
                    continue  # try new ports
                raise failure from None
            except BaseException:
                phone.stop(quit_timeout=0.5)
                raise
            if use_files:
                try:
                    phone.ask("soundcard use files", r"^Using wav files", COMMAND_TIMEOUT)
                except BaseException:
                    phone.stop(quit_timeout=0.5)
                    raise
            return phone
        assert failure is not None
        raise failure

    def _wait_up(self, timeout: float) -> None:
        """Until the first prompt, and linphonec holds its SIP port.

        With the port taken it keeps running without a SIP socket (and logs "No
        listening point" once it tries to send): that raises ``_PortTakenError``.
        """
        deadline = time.monotonic() + timeout
        prompted_at: float | None = None
        while True:
            with self._cond:
                prompted = self._prompts > 0
            if prompted and owns_udp_port(self.pid, self.sip_port):
                return
            now = time.monotonic()
            if prompted and prompted_at is None:
                prompted_at = now
            if "No listening point" in _tail(self.workdir / "stderr.log") or (
                prompted_at is not None and now - prompted_at > BIND_GRACE
            ):
                raise _PortTakenError(f"linphonec could not bind {HOST}:{self.sip_port}")
            if not self.is_alive():
                raise PhoneStartError(f"linphonec exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                raise PhoneStartError(
                    f"linphonec not up within {timeout} s (prompt seen: {prompted}, "
                    f"owns {HOST}:{self.sip_port}: {owns_udp_port(self.pid, self.sip_port)})"
                )
            time.sleep(POLL_INTERVAL)

    # -- output --

    def _start_reader(self) -> None:
        self._reader = threading.Thread(target=self._read, name="linphonec-out", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        pending = ""
        decoder = getincrementaldecoder("utf-8")(errors="replace")
        with (self.workdir / "stdout.log").open("w") as log:
            while True:
                try:
                    chunk = os.read(stdout.fileno(), 65536)
                except (OSError, ValueError):
                    break
                if not chunk:
                    break
                text = decoder.decode(chunk)
                log.write(text)
                log.flush()
                pending += text
                *complete, pending = pending.split("\n")
                while pending.startswith(PROMPT):
                    pending = pending[len(PROMPT) :]
                    with self._cond:
                        self._prompts += 1
                        self._cond.notify_all()
                answer_password = bool(PASSWORD_PROMPT.search(pending))
                if answer_password:
                    complete.append(pending)
                    pending = ""
                self._add_lines(complete)
                if answer_password:
                    with self._cond:
                        self.password_prompts += 1
                    with contextlib.suppress(OSError, ValueError):
                        self._write(self.account.password)
        self._add_lines([pending] if pending else [])
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _add_lines(self, raw: Sequence[str]) -> None:
        cleaned = []
        for raw_line in raw:
            line = raw_line.rstrip("\r")
            while line.startswith(PROMPT):
                line = line[len(PROMPT) :]
            if line.strip():
                cleaned.append(line)
        if cleaned:
            with self._cond:
                self.lines.extend(cleaned)
                self._cond.notify_all()

    def mark(self) -> int:
        """The current line count: pass it as ``since`` to match later lines only."""
        with self._cond:
            return len(self.lines)

    def wait_line(
        self, pattern: str | re.Pattern[str], timeout: float, *, since: int = 0
    ) -> re.Match[str]:
        """The first stdout line from index ``since`` on that ``pattern`` searches;
        ``TimeoutError`` after ``timeout`` s or once linphonec's stdout closes."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        index = since
        with self._cond:
            while True:
                while index < len(self.lines):
                    found = regex.search(self.lines[index])
                    index += 1
                    if found:
                        return found
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._eof:
                    raise TimeoutError(
                        f"no line matching {regex.pattern!r} within {timeout} s"
                        + (" (linphonec exited)" if self._eof else "")
                        + f"; lines since #{since}: {self.lines[since:][-40:]}"
                    )
                self._cond.wait(remaining)

    def output(self) -> str:
        return (
            f"--- linphonec stdout ({self.workdir / 'stdout.log'}):\n"
            f"{_tail(self.workdir / 'stdout.log')}\n--- stderr:\n"
            f"{_tail(self.workdir / 'stderr.log')}"
        )

    # -- commands --

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def address(self) -> Address:
        return Address(HOST, self.sip_port)

    def is_alive(self) -> bool:
        return self.process.poll() is None

    def _write(self, line: str) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        with self._stdin_lock:
            stdin.write(line.encode() + b"\n")
            stdin.flush()

    def send(self, line: str) -> int:
        """Write one command line; the line index from which its output will appear."""
        if "\n" in line:
            raise ValueError("one command per line")
        mark = self.mark()
        try:
            self._write(line)
        except (OSError, ValueError) as error:
            raise PhoneError(f"linphonec stdin closed: {error}\n{self.output()}") from None
        return mark

    def ask(
        self,
        line: str,
        answer: str | re.Pattern[str],
        timeout: float = COMMAND_TIMEOUT,
        attempts: int = 3,
    ) -> re.Match[str]:
        """Send ``line`` and wait for a line matching ``answer``; resend when none comes.

        linphonec reads the line after a ``Password for`` prompt as the password, so a
        command written while a rejection comes in can be swallowed (or half eaten:
        ``'oundcard': Cannot understand this.``). ``timeout`` covers all attempts.
        """
        deadline = time.monotonic() + timeout
        for attempt in range(attempts, 0, -1):
            mark = self.send(line)
            remaining = deadline - time.monotonic()
            try:
                return self.wait_line(answer, max(remaining / attempt, 0.0), since=mark)
            except TimeoutError:
                if attempt == 1 or not self.is_alive():
                    raise
        raise AssertionError("unreachable")

    def status_register(self, timeout: float = COMMAND_TIMEOUT) -> str:
        """``registered, identity=... duration=N``, ``registered=-1`` (pending or
        failed) or ``registered=0`` (registration disabled)."""
        return self.ask("status register", STATUS_REGISTER, timeout).group(0)

    def wait_registered(self, timeout: float = REGISTER_TIMEOUT) -> str:
        """Poll ``status register`` until ``registered, identity=...``; that line."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status_register(
                max(min(COMMAND_TIMEOUT, deadline - time.monotonic()), 0.5)
            )
            if status.startswith("registered,"):
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"linphonec not registered within {timeout} s: {status}\n{self.output()}"
                )
            time.sleep(POLL_INTERVAL * 4)

    def call(self, uri: str) -> int:
        """``call URI``; the line mark. Then e.g. ``wait_line(r"Call \\d+ .* connected")``."""
        return self.send(f"call {uri}")

    def answer(self) -> int:
        return self.send("answer")

    def terminate(self) -> int:
        """End the current call."""
        return self.send("terminate")

    # -- lifetime --

    def stop(self, quit_timeout: float = QUIT_TIMEOUT) -> int:
        """``quit`` (it un-REGISTERs), then SIGKILL by PID after ``quit_timeout`` s.

        Idempotent; returns the exit code.
        """
        if self.exit_code is not None:
            return self.exit_code
        try:
            if self.process.poll() is None:
                with contextlib.suppress(OSError, ValueError):
                    self._write("quit")
            code = _wait(self.process, quit_timeout)
            self.exit_code = code if code is not None else _escalate(self.process, 0, 0)
        finally:
            if self.exit_code is None:
                self.exit_code = _escalate(self.process, 0, 0)
            # The process is reaped, so stdout reaches EOF: join the reader before
            # closing the pipe under it.
            if self._reader is not None:
                self._reader.join(timeout=KILL_TIMEOUT)
            for stream in (self.process.stdin, self.process.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        return self.exit_code

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


# --- fixtures ------------------------------------------------------------------------


class BaresipFactory(Protocol):
    def __call__(
        self,
        accounts: Sequence[BaresipAccount],
        *,
        audio_source: Path | None = None,
        sip_trace: bool = True,
    ) -> BaresipPhone: ...


class LinphoneFactory(Protocol):
    def __call__(
        self,
        account: LinphoneAccount,
        *,
        auto_answer: bool = False,
        use_files: bool = True,
        codecs: Sequence[str] = ("PCMU",),
    ) -> LinphonePhone: ...


@pytest.fixture
def baresip_factory(tmp_path: Path) -> Iterator[BaresipFactory]:
    """Start baresip phones for a test; every one is stopped by PID at teardown."""
    started: list[BaresipPhone] = []

    def factory(
        accounts: Sequence[BaresipAccount],
        *,
        audio_source: Path | None = None,
        sip_trace: bool = True,
    ) -> BaresipPhone:
        phone = BaresipPhone.start(
            tmp_path, accounts, audio_source=audio_source, sip_trace=sip_trace
        )
        started.append(phone)
        return phone

    try:
        yield factory
    finally:
        _stop_all(started)


@pytest.fixture
def linphone_factory(tmp_path: Path) -> Iterator[LinphoneFactory]:
    """Start linphonec phones for a test; every one is stopped by PID at teardown."""
    started: list[LinphonePhone] = []

    def factory(
        account: LinphoneAccount,
        *,
        auto_answer: bool = False,
        use_files: bool = True,
        codecs: Sequence[str] = ("PCMU",),
    ) -> LinphonePhone:
        phone = LinphonePhone.start(
            tmp_path, account, auto_answer=auto_answer, use_files=use_files, codecs=codecs
        )
        started.append(phone)
        return phone

    try:
        yield factory
    finally:
        _stop_all(started)


def _stop_all(phones: Sequence[BaresipPhone | LinphonePhone]) -> None:
    """Stop every phone (newest first), even when one stop raises; re-raise the first."""
    first: BaseException | None = None
    for phone in reversed(phones):
        try:
            phone.stop()
        except BaseException as error:  # keep stopping the others
            first = first or error
    if first is not None:
        raise first
