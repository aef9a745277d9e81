"""Kamailio as a stand-in SIP provider (a carrier) on 127.0.0.1, for trunk e2e tests.

``KamailioProvider`` writes a ``kamailio.cfg`` into its own directory and runs
``kamailio -DD -E`` (in the foreground, in a new session, logging to a file) on
``udp:127.0.0.1:<port>``. The generated config is a small carrier:

- **Registrar** with digest and no database: REGISTER is challenged (401,
  ``qop="auth"``, MD5 or, with ``algorithm="SHA-256"``, SHA-256) against the ``users``
  table (username -> password, held in an htable); the auth username must be the To
  user. A wrong password or an unknown user gets 403. ``save("location")`` keeps the
  binding in memory only (usrloc ``db_mode`` 0): a restart forgets every registration;
  an expired binding leaves the table within about a second (``timer_interval`` 1).
  An Expires below ``min_expires`` (and not 0) gets ``423 Interval Too Brief`` with
  ``Min-Expires``; above ``max_expires`` it is lowered to it; none gives
  ``default_expires``.
- **DID calls in**: an initial request whose Request-URI user is a DID of ``dids``
  (DID -> registered username) or a username of ``users`` needs no credentials (the
  outside world calls): ``lookup("location")`` sends it statefully, with
  Record-Route, to the Contact that user registered. The Request-URI becomes that
  Contact URI (its user is the contact's user, as real providers do), or, with
  ``did_in_request_uri=True``, the Contact URI with the DID as its user. The To header
  is the caller's, untouched: callers address the DID, so To carries it. Nobody
  registered: 480.
- **Outbound (PSTN) calls**: an initial INVITE to any other user must carry
  Proxy-Authorization for a user of ``users`` (407 with ``qop="auth"``; a wrong
  password or an unknown user: 403), then goes statefully, with Record-Route, to
  ``gateway`` (a SIPp UAS standing for the called number), Request-URI unchanged, the
  credentials removed, every other header (From, P-Asserted-Identity, Diversion, ...)
  as sent. No gateway configured: 503. Other initial requests to other users: 404.
  Each challenge is logged (``INVITE <uri> from <ip>:<port> challenged: 407``), each
  relay to the gateway too (``outbound <number> from <user> to <gateway>``).
- In-dialog requests follow ``loose_route``; CANCEL and ACK as in Kamailio's default
  config (``t_check_trans``); OPTIONS without a user gets 200 (keep-alives, and the
  harness's own readiness probe).

Every request and reply is logged one line each (``provider: ...``) to
``kamailio.log`` in the provider's directory; ``diagnostics()`` gives its tail for an
assertion message.

The location table is read over JSON-RPC (module ``jsonrpcs``) on a Unix datagram
socket in a short runtime directory under /tmp (``-Y``; a Unix socket path must stay
under 108 bytes, and pytest's tmp_path can be long): ``locations()``,
``registrations(user)``, ``wait_registered(...)``, or any RPC with ``rpc(...)``.

Processes: ``start()`` returns once Kamailio answers an OPTIONS and its RPC socket
answers (bounded by ``start_timeout``). ``stop()`` sends SIGTERM to the main process
by PID, SIGKILL after ``stop_timeout``, then waits (bounded) until every process of
its process group (Kamailio's children: it runs as a session leader) is gone,
SIGKILLing each survivor by PID, and until the UDP port can be bound again (if it
served); ``start()``
after ``stop()`` reuses the same port with empty memory, like a provider restart. The
main process gets SIGTERM if the test process dies (``PR_SET_PDEATHSIG``). Use it as a
context manager, or through the ``provider_factory`` fixture, which stops every
provider a test started.

Importing this module appends /usr/local/sbin, /usr/sbin and /sbin to PATH when they
are missing from it: Debian installs ``kamailio`` in /usr/sbin, which a non-root PATH
lacks, and ``require_tools`` (the ``requires_tool`` marker) looks programs up on PATH.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, Protocol

import pytest

from tests.support.processes import Address, free_port

SBIN_DIRS: Final = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def add_sbin_to_path() -> None:
    """Append the sbin directories missing from PATH (at the end: nothing is shadowed)."""
    parts = os.environ.get("PATH", os.defpath).split(os.pathsep)
    missing = [d for d in SBIN_DIRS if d not in parts and Path(d).is_dir()]
    if missing:
        os.environ["PATH"] = os.pathsep.join([*parts, *missing])


add_sbin_to_path()

KAMAILIO: Final = "kamailio"
HOST: Final = "127.0.0.1"
START_TIMEOUT: Final = 10.0
STOP_TIMEOUT: Final = 10.0
RPC_TIMEOUT: Final = 5.0
PROBE_INTERVAL: Final = 0.1
POLL_INTERVAL: Final = 0.05
TAIL_CHARS: Final = 6000
BIND_ATTEMPTS: Final = 3
DEFAULT_REALM: Final = "provider.test"

Algorithm = Literal["MD5", "SHA-256"]

_USER: Final = re.compile(r"[A-Za-z0-9._+-]+")
_DID: Final = re.compile(r"[A-Za-z0-9._+*#-]+")
# Kamailio's double-quoted strings: keep out the quote, the backslash and controls.
_SECRET: Final = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
_REALM: Final = re.compile(r"[A-Za-z0-9._-]+")

_PR_SET_PDEATHSIG: Final = 1
_libc: ctypes.CDLL | None = None
with contextlib.suppress(OSError):
    _libc = ctypes.CDLL(None, use_errno=True)


def _term_with_parent() -> None:
    """In the child: get SIGTERM (a clean Kamailio shutdown, children included) when the
    thread that started it ends."""
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class ProviderError(RuntimeError):
    """Kamailio did not start, did not stop, or an RPC failed; carries its log tail."""


@dataclass(frozen=True)
class Registration:
    """One Contact of the location table (``ul.dump``)."""

    aor: str
    """The registered user (usrloc runs without domains: the To user)."""
    contact: str
    """The Contact URI as registered, e.g. ``sip:shop@127.0.0.1:40123``."""
    expires: int
    """Seconds left when asked (0: expired, about to be dropped; -1: permanent)."""
    call_id: str
    cseq: int
    user_agent: str | None
    received: str | None
    socket: str
    raw: dict[str, Any] = field(repr=False, compare=False)


# --- the config -------------------------------------------------------------------------

CONFIG_TEMPLATE: Final = r"""#!KAMAILIO
# Generated by tests/support/kamailio.py: a stand-in SIP provider (carrier) for tests.
@DEFINES@
debug=2
log_stderror=yes
children=1
disable_tcp=yes
disable_sctp=yes
auto_aliases=no
listen=udp:@HOST@:@PORT@
alias="@HOST@:@PORT@"
server_header="Server: kamailio-provider"
user_agent_header="User-Agent: kamailio-provider"

loadmodule "jsonrpcs.so"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "htable.so"
loadmodule "auth.so"

modparam("jsonrpcs", "transport", 4)
modparam("jsonrpcs", "dgram_socket", "rpc.sock")
modparam("jsonrpcs", "pretty_format", 0)
modparam("usrloc", "db_mode", 0)
modparam("usrloc", "timer_interval", 1)
modparam("registrar", "min_expires", @MIN_EXPIRES@)
modparam("registrar", "min_expires_mode", 1)
modparam("registrar", "default_expires", @DEFAULT_EXPIRES@)
modparam("registrar", "max_expires", @MAX_EXPIRES@)
modparam("auth", "algorithm", "@ALGORITHM@")
modparam("htable", "htable", "users=>size=4;")
modparam("htable", "htable", "dids=>size=4;")

event_route[htable:mod-init] {
@TABLES@
}

request_route {
	xlog("L_INFO", "provider: $rm $ru from $si:$sp (From $fu, To $tu, Call-ID $ci)\n");
	if (!mf_process_maxfwd_header("10")) {
		sl_send_reply("483", "Too Many Hops");
		exit;
	}
	if (is_method("CANCEL")) {
		if (t_check_trans()) {
			route(RELAY);
		}
		exit;
	}
	if (!is_method("ACK")) {
		if (t_precheck_trans()) {
			t_check_trans();
			exit;
		}
		t_check_trans();
	}
	route(WITHINDLG);

	remove_hf("Route");
	if (is_method("INVITE|SUBSCRIBE")) {
		record_route();
	}
	if (is_method("REGISTER")) {
		route(REGISTRAR);
	}
	if ($rU == $null) {
		if (is_method("OPTIONS")) {
			sl_send_reply("200", "OK");
			exit;
		}
		sl_send_reply("484", "Address Incomplete");
		exit;
	}
	route(INBOUND);
	route(OUTBOUND);
}

onreply_route {
	xlog("L_INFO", "provider: reply $rs $rr to $rm from $si:$sp (Call-ID $ci)\n");
}

route[RELAY] {
	if (!t_relay()) {
		sl_reply_error();
	}
	exit;
}

route[WITHINDLG] {
	if (!has_totag()) {
		return;
	}
	if (loose_route()) {
		route(RELAY);
	}
	if (is_method("ACK")) {
		if (t_check_trans()) {
			route(RELAY);
		}
		exit;
	}
	sl_send_reply("404", "Not here");
	exit;
}

# The password of the credentials' user; credentials of an unknown user get 403.
route[PASSWORD] {
	$var(password) = "";
	if ($au == $null) {
		return;
	}
	if ($sht(users=>$au) == $null) {
		xlog("L_NOTICE", "provider: $rm $ru refused: unknown user $au\n");
		sl_send_reply("403", "Forbidden");
		exit;
	}
	$var(password) = $sht(users=>$au);
}

route[REGISTRAR] {
	route(PASSWORD);
	if ($au == $null) {
		www_challenge("@REALM@", "1");
		exit;
	}
	if (!pv_www_authenticate("@REALM@", "$var(password)", "0")) {
		$var(code) = $rc;
		if ($var(code) == -2) {
			xlog("L_NOTICE", "provider: REGISTER $tu refused: wrong password for $au\n");
			sl_send_reply("403", "Forbidden");
			exit;
		}
		www_challenge("@REALM@", "1");
		exit;
	}
	if ($au != $tU) {
		xlog("L_NOTICE", "provider: REGISTER $tu refused: auth user $au\n");
		sl_send_reply("403", "Auth User Differs From To User");
		exit;
	}
	consume_credentials();
	# save() sends the reply itself (200, 423, ...).
	if (save("location")) {
		xlog("L_INFO", "provider: REGISTER $tu saved, Contact $ct, Expires $hdr(Expires)\n");
	} else {
		xlog("L_NOTICE", "provider: REGISTER $tu not saved (Expires $hdr(Expires))\n");
	}
	exit;
}

route[INBOUND] {
	$var(user) = $rU;
	$var(did) = $rU;
	if ($sht(dids=>$rU) != $null) {
		$var(user) = $sht(dids=>$rU);
	} else if ($sht(users=>$rU) == $null) {
		return;
	}
	lookup("location", "sip:$var(user)@@HOST@");
	switch ($rc) {
		case 1:
			break;
		case -2:
			sl_send_reply("405", "Method Not Allowed");
			exit;
		default:
			xlog("L_NOTICE", "provider: $var(did): $var(user) is not registered\n");
			sl_send_reply("480", "Temporarily Unavailable");
			exit;
	}
#!ifdef DID_IN_REQUEST_URI
	$rU = $var(did);
#!endif
	xlog("L_INFO", "provider: DID $var(did) to $var(user) at $ru\n");
	route(RELAY);
}

route[OUTBOUND] {
	if (!is_method("INVITE")) {
		sl_send_reply("404", "Not Found");
		exit;
	}
	route(PASSWORD);
	if ($au == $null) {
		xlog("L_INFO", "provider: INVITE $ru from $si:$sp challenged: 407\n");
		proxy_challenge("@REALM@", "1");
		exit;
	}
	if (!pv_proxy_authenticate("@REALM@", "$var(password)", "0")) {
		$var(code) = $rc;
		if ($var(code) == -2) {
			xlog("L_NOTICE", "provider: INVITE $ru refused: wrong password for $au\n");
			sl_send_reply("403", "Forbidden");
			exit;
		}
		xlog("L_INFO", "provider: INVITE $ru from $si:$sp challenged: 407\n");
		proxy_challenge("@REALM@", "1");
		exit;
	}
	consume_credentials();
#!ifdef GATEWAY
	$du = "@GATEWAY_URI@";
	xlog("L_INFO", "provider: outbound $rU from $au to $du\n");
	route(RELAY);
#!else
	sl_send_reply("503", "No PSTN Gateway");
	exit;
#!endif
}
"""


def _checked(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not pattern.fullmatch(value):
        raise ValueError(f"{what} {value!r} has characters the harness does not quote")
    return value


def render_config(
    *,
    port: int,
    users: Mapping[str, str],
    dids: Mapping[str, str],
    gateway: Address | None,
    realm: str,
    algorithm: Algorithm,
    min_expires: int,
    default_expires: int,
    max_expires: int,
    did_in_request_uri: bool,
    host: str = HOST,
) -> str:
    """The kamailio.cfg text for these settings (see the module docstring)."""
    if algorithm not in ("MD5", "SHA-256"):
        raise ValueError(f"algorithm must be MD5 or SHA-256, not {algorithm!r}")
    if not 0 <= min_expires <= default_expires <= max_expires:
        raise ValueError("want 0 <= min_expires <= default_expires <= max_expires")
    _checked(_REALM, realm, "realm")
    lines = [
        f"\t$sht(users=>{_checked(_USER, user, 'username')}) = "
        f'"{_checked(_SECRET, secret, "password")}";'
        for user, secret in users.items()
    ]
    for did, user in dids.items():
        if user not in users:
            raise ValueError(f"DID {did} maps to {user!r}, who is not in users")
        lines.append(f'\t$sht(dids=>{_checked(_DID, did, "DID")}) = "{user}";')
    defines = []
    if gateway is not None:
        defines.append("#!define GATEWAY")
    if did_in_request_uri:
        defines.append("#!define DID_IN_REQUEST_URI")
    replacements = {
        "@DEFINES@": "\n".join(defines),
        "@TABLES@": "\n".join(lines),
        "@HOST@": host,
        "@PORT@": str(port),
        "@REALM@": realm,
        "@ALGORITHM@": algorithm,
        "@MIN_EXPIRES@": str(min_expires),
        "@DEFAULT_EXPIRES@": str(default_expires),
        "@MAX_EXPIRES@": str(max_expires),
        "@GATEWAY_URI@": "" if gateway is None else f"sip:{gateway.host}:{gateway.port}",
    }
    text = CONFIG_TEMPLATE
    for marker, value in replacements.items():
        text = text.replace(marker, value)
    return text


# --- processes --------------------------------------------------------------------------


def _process_group(pgid: int) -> list[int]:
    """PIDs of the live (non-zombie) processes in process group ``pgid`` (Linux /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        # After the command: state, ppid, pgrp.
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def _udp_port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _options(host: str, port: int, call_id: str, local_port: int) -> bytes:
    return (
        f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {HOST}:{local_port};branch=z9hG4bK-{uuid.uuid4().hex}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@{HOST}>;tag={uuid.uuid4().hex[:8]}\r\n"
        f"To: <sip:{host}:{port}>\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


class KamailioProvider:
    """A Kamailio carrier on ``udp:127.0.0.1:port`` (see the module docstring).

    ``directory``: a new ``kamailio-*`` directory is made in it for the config and the
    log. ``port``: None picks a free one (kept across restarts). ``gateway``: where
    authenticated outbound INVITEs go (None: they get 503). ``dids``: DID -> username
    of ``users``.
    """

    def __init__(
        self,
        directory: Path,
        users: Mapping[str, str],
        *,
        dids: Mapping[str, str] | None = None,
        gateway: Address | None = None,
        port: int | None = None,
        realm: str = DEFAULT_REALM,
        algorithm: Algorithm = "MD5",
        min_expires: int = 60,
        default_expires: int = 3600,
        max_expires: int = 3600,
        did_in_request_uri: bool = False,
        start_timeout: float = START_TIMEOUT,
        stop_timeout: float = STOP_TIMEOUT,
        shm_mb: int = 64,
        pkg_mb: int = 8,
    ) -> None:
        self.users: dict[str, str] = dict(users)
        self.dids: dict[str, str] = dict(dids or {})
        self.gateway = gateway
        self.realm = realm
        self.algorithm: Algorithm = algorithm
        self.min_expires = min_expires
        self.default_expires = default_expires
        self.max_expires = max_expires
        self.did_in_request_uri = did_in_request_uri
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.shm_mb = shm_mb
        self.pkg_mb = pkg_mb
        self._port_given = port is not None
        self.port: int = port if port is not None else free_port(HOST)
        self._render_config()  # ValueError for a bad setting, before any directory is made
        self.workdir = Path(tempfile.mkdtemp(prefix="kamailio-", dir=directory))
        self.config_path = self.workdir / "kamailio.cfg"
        self.log_path = self.workdir / "kamailio.log"
        # Short: the RPC socket's path must fit a sockaddr_un (108 bytes).
        self.runtime_dir = Path(
            tempfile.mkdtemp(prefix="kam-", dir="/tmp" if Path("/tmp").is_dir() else None)
        )
        self._process: subprocess.Popen[bytes] | None = None
        self._starts = 0
        self._log_offset = 0
        self._serving = False
        self._rpc_ids = 0
        self._write_config()

    # -- addresses

    @property
    def address(self) -> Address:
        return Address(HOST, self.port)

    @property
    def uri(self) -> str:
        """``sip:127.0.0.1:PORT``: the provider's registrar and proxy."""
        return f"sip:{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The main Kamailio process, while running."""
        return self._process.pid if self.is_running() and self._process else None

    @property
    def rpc_socket(self) -> Path:
        return self.runtime_dir / "rpc.sock"

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- lifecycle

    def _render_config(self) -> str:
        return render_config(
            port=self.port,
            users=self.users,
            dids=self.dids,
            gateway=self.gateway,
            realm=self.realm,
            algorithm=self.algorithm,
            min_expires=self.min_expires,
            default_expires=self.default_expires,
            max_expires=self.max_expires,
            did_in_request_uri=self.did_in_request_uri,
        )

    def _write_config(self) -> None:
        self.config_path.write_text(self._render_config())

    def start(self) -> KamailioProvider:
        """Start Kamailio; return once it answers an OPTIONS and an RPC. Raises
        ``ProviderError`` (with the log tail) when it exits or ``start_timeout`` passes."""
        if self.is_running():
            raise ProviderError(f"Kamailio already runs (pid {self.pid})")
        binary = shutil.which(KAMAILIO)
        if binary is None:
            raise ProviderError(f"{KAMAILIO} not found on PATH (install it: make apt)")
        for attempt in range(BIND_ATTEMPTS):
            try:
                self._start_once(binary)
            except ProviderError:
                # Another process took the port we picked: pick again (first start only).
                if (
                    self._port_given
                    or self._starts > 1
                    or attempt + 1 == BIND_ATTEMPTS
                    or "Address already in use" not in self._log_since_start()
                ):
                    raise
                self.port = free_port(HOST)
                self._starts -= 1
                self._write_config()
            else:
                return self
        raise AssertionError("unreachable")

    def _start_once(self, binary: str) -> None:
        self._starts += 1
        self.rpc_socket.unlink(missing_ok=True)
        command = [
            binary, "-DD", "-E", "-f", str(self.config_path),
            "-m", str(self.shm_mb), "-M", str(self.pkg_mb),
            "-Y", str(self.runtime_dir), "-P", str(self.runtime_dir / "kamailio.pid"),
            "-w", str(self.workdir),
        ]  # fmt: skip
        in_main = threading.current_thread() is threading.main_thread()
        with self.log_path.open("ab") as log:
            log.write(f"=== start {self._starts}: {' '.join(command)}\n".encode())
            log.flush()
            self._log_offset = log.tell()
            self._process = subprocess.Popen(
                command,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                # PDEATHSIG fires when the thread that forked exits: main thread only.
                preexec_fn=_term_with_parent if in_main else None,  # noqa: PLW1509
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self._serving = True

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        call_id = f"probe-{uuid.uuid4().hex}"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((HOST, 0))
            probe.settimeout(PROBE_INTERVAL)
            request = _options(HOST, self.port, call_id, probe.getsockname()[1])
            while True:
                self._check_alive("before it was ready")
                if time.monotonic() > deadline:
                    raise ProviderError(
                        f"Kamailio answered no OPTIONS within {self.start_timeout} s\n"
                        + self.diagnostics()
                    )
                with contextlib.suppress(ConnectionRefusedError):
                    probe.sendto(request, (HOST, self.port))
                try:
                    reply = probe.recv(65535)
                except (TimeoutError, ConnectionRefusedError):
                    continue
                if call_id.encode() in reply:
                    break
        while True:
            self._check_alive("before its RPC socket answered")
            try:
                self.rpc("core.version", timeout=PROBE_INTERVAL)
            except ProviderError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(POLL_INTERVAL)
            else:
                return

    def _check_alive(self, when: str) -> None:
        if self._process is not None and self._process.poll() is not None:
            raise ProviderError(
                f"Kamailio exited with {self._process.returncode} {when}\n" + self.diagnostics()
            )

    def stop(self) -> int | None:
        """Stop Kamailio by PID (SIGTERM, SIGKILL after ``stop_timeout``) and wait until
        its children are gone and the port is free. Its exit code; None if not started.
        Idempotent. Raises ``ProviderError`` if a process or the port outlives the wait."""
        process = self._process
        if process is None:
            return None
        pgid = process.pid  # a session leader: its children share its process group
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
        try:
            code = process.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            code = process.wait(timeout=self.stop_timeout)
        deadline = time.monotonic() + self.stop_timeout
        killed = False
        while members := _process_group(pgid):
            if time.monotonic() > deadline:
                if killed:
                    raise ProviderError(f"Kamailio children {members} survived SIGKILL")
                killed = True
                deadline = time.monotonic() + self.stop_timeout
                for pid in members:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            time.sleep(POLL_INTERVAL)
        was_serving, self._serving = self._serving, False
        deadline = time.monotonic() + self.stop_timeout
        # Only a Kamailio that bound the port (a failed start may have found it taken).
        while was_serving and not _udp_port_free(HOST, self.port):
            if time.monotonic() > deadline:
                raise ProviderError(f"UDP port {self.port} still bound after Kamailio stopped")
            time.sleep(POLL_INTERVAL)
        return code

    def restart(self) -> KamailioProvider:
        """Stop, then start on the same port: every registration is forgotten."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop, and remove the runtime directory (the config and the log stay)."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.runtime_dir, ignore_errors=True)

    def __enter__(self) -> KamailioProvider:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- the log

    def log_text(self) -> str:
        """The whole log (every start, each after a ``=== start N`` line)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _log_since_start(self) -> str:
        with contextlib.suppress(FileNotFoundError), self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode(errors="replace")
        return ""

    def provider_lines(self) -> list[str]:
        """The config's own log lines (``provider: ...``), without the prefix."""
        return [
            line.split("provider: ", 1)[1]
            for line in self.log_text().splitlines()
            if "provider: " in line
        ]

    def diagnostics(self, chars: int = TAIL_CHARS) -> str:
        """The log's tail, for an assertion message."""
        text = self.log_text()
        tail = text if len(text) <= chars else "...\n" + text[-chars:]
        return f"--- Kamailio log {self.log_path}:\n{tail}"

    # -- RPC and the location table

    def rpc(self, method: str, *params: str | int, timeout: float = RPC_TIMEOUT) -> Any:
        """One JSON-RPC call over the Unix datagram socket; its ``result``."""
        self._rpc_ids += 1
        request = {"jsonrpc": "2.0", "method": method, "params": list(params), "id": self._rpc_ids}
        client = self.runtime_dir / f"client-{os.getpid()}-{self._rpc_ids}.sock"
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.bind(str(client))
                sock.settimeout(timeout)
                sock.sendto(json.dumps(request).encode(), str(self.rpc_socket))
                data = sock.recv(1 << 20)
        except OSError as error:
            raise ProviderError(f"RPC {method}: {error!r}") from error
        finally:
            client.unlink(missing_ok=True)
        reply = json.loads(data)
        if "error" in reply:
            raise ProviderError(f"RPC {method}: {reply['error']}")
        return reply.get("result")

    def locations(self) -> dict[str, list[Registration]]:
        """The location table: registered user -> its Contacts (``ul.dump``)."""
        result = self.rpc("ul.dump")
        table: dict[str, list[Registration]] = {}
        for domain in result.get("Domains", []):
            for aor in domain["Domain"].get("AoRs", []):
                info = aor["Info"]
                table[info["AoR"]] = [
                    _registration(info["AoR"], contact["Contact"])
                    for contact in info.get("Contacts", [])
                ]
        return table

    def registrations(self, user: str) -> list[Registration]:
        """``user``'s Contacts (none: not registered)."""
        return self.locations().get(user, [])

    def wait_registered(
        self, user: str, timeout: float = 10.0, *, contact: str | None = None
    ) -> Registration:
        """Poll until ``user`` has a Contact (containing ``contact``, if given); it.
        Fails the test, with the log tail, after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            for registration in self.registrations(user):
                if contact is None or contact in registration.contact:
                    return registration
            self._check_alive("while waiting for a registration")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{user} not registered at the provider within {timeout} s "
                    f"(table: {self.locations()})\n{self.diagnostics()}"
                )
            time.sleep(POLL_INTERVAL)

    def wait_unregistered(self, user: str, timeout: float = 10.0) -> None:
        """Poll until ``user`` has no Contact; fails the test after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while self.registrations(user):
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{user} still registered at the provider after {timeout} s "
                    f"(table: {self.locations()})\n{self.diagnostics()}"
                )
            time.sleep(POLL_INTERVAL)


def _not_set(value: Any) -> str | None:
    return None if value in (None, "[not set]", "n/a") else str(value)


def _seconds(value: Any) -> int:
    # An int, or a word: "expired" or "deleted" (0 left), "permanent" (never via REGISTER).
    if isinstance(value, int):
        return value
    return -1 if value == "permanent" else 0


def _registration(aor: str, contact: dict[str, Any]) -> Registration:
    return Registration(
        aor=aor,
        contact=str(contact["Address"]),
        expires=_seconds(contact["Expires"]),
        call_id=str(contact["Call-ID"]),
        cseq=int(contact["CSeq"]),
        user_agent=_not_set(contact.get("User-Agent")),
        received=_not_set(contact.get("Received")),
        socket=str(contact.get("Socket", "")),
        raw=contact,
    )


# --- fixture ----------------------------------------------------------------------------


class ProviderFactory(Protocol):
    def __call__(
        self,
        users: Mapping[str, str],
        *,
        dids: Mapping[str, str] | None = None,
        gateway: Address | None = None,
        port: int | None = None,
        realm: str = DEFAULT_REALM,
        algorithm: Algorithm = "MD5",
        min_expires: int = 60,
        default_expires: int = 3600,
        max_expires: int = 3600,
        did_in_request_uri: bool = False,
    ) -> KamailioProvider: ...


@pytest.fixture
def provider_factory(tmp_path: Path) -> Iterator[ProviderFactory]:
    """Start Kamailio providers for a test (in ``tmp_path``); each is stopped by PID at
    teardown, even when the test fails."""
    started: list[KamailioProvider] = []

    def factory(
        users: Mapping[str, str],
        *,
        dids: Mapping[str, str] | None = None,
        gateway: Address | None = None,
        port: int | None = None,
        realm: str = DEFAULT_REALM,
        algorithm: Algorithm = "MD5",
        min_expires: int = 60,
        default_expires: int = 3600,
        max_expires: int = 3600,
        did_in_request_uri: bool = False,
    ) -> KamailioProvider:
        provider = KamailioProvider(
            tmp_path, users, dids=dids, gateway=gateway, port=port, realm=realm,
            algorithm=algorithm, min_expires=min_expires, default_expires=default_expires,
            max_expires=max_expires, did_in_request_uri=did_in_request_uri,
        )  # fmt: skip
        started.append(provider)
        provider.start()
        return provider

    try:
        yield factory
    finally:
        errors = []
        for provider in started:
            try:
                provider.close()
            except ProviderError as error:
                errors.append(str(error))
        if errors:
            pytest.fail("\n".join(errors))
