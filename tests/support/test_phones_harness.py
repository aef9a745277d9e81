"""Self-test of ``tests.support.phones`` against a throwaway UDP registrar of our own.

The switch's registrar is not needed: ``FakeRegistrar`` binds 127.0.0.1:<free port>,
records every datagram, and either stays silent or challenges REGISTERs with hand-built
401s (one ``WWW-Authenticate`` per algorithm, in the given order) and accepts a correct
digest answer with 200. These tests also pin down what the phones do with digest
algorithms (see the ``phones`` module docstring).
"""

from __future__ import annotations

import hashlib
import re
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pytest

from tests.support import phones
from tests.support.phones import (
    BaresipAccount,
    BaresipFactory,
    BaresipPhone,
    LinphoneAccount,
    LinphoneFactory,
    LinphonePhone,
    baresip_factory,
    linphone_factory,
    owns_udp_port,
    pid_exists,
)
from tests.support.processes import Address, free_port, require_tools

__all__ = ["baresip_factory", "linphone_factory"]

pytestmark = pytest.mark.e2e

REALM: Final = "test"
NONCE: Final = "abc"
PASSWORD: Final = "secret"
WAIT: Final = 10.0


def header(message: str, *names: str) -> str | None:
    """The first value of a header (long or compact name), or ``None``."""
    wanted = {name.lower() for name in names}
    for line in message.split("\r\n")[1:]:
        if not line:
            break
        name, colon, value = line.partition(":")
        if colon and name.strip().lower() in wanted:
            return value.strip()
    return None


def digest_params(value: str) -> dict[str, str]:
    return {
        key.lower(): quoted if quoted else bare
        for key, quoted, bare in re.findall(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))', value)
    }


def expected_response(params: dict[str, str], method: str, password: str) -> str:
    """RFC 7616 ``response`` for ``qop=auth`` (MD5 when no algorithm is named)."""
    algorithm = params.get("algorithm", "MD5").upper()
    name = {"MD5": "md5", "SHA-256": "sha256"}[algorithm]

    def digest(text: str) -> str:
        return hashlib.new(name, text.encode()).hexdigest()

    ha1 = digest(f"{params['username']}:{params['realm']}:{password}")
    ha2 = digest(f"{method}:{params['uri']}")
    return digest(f"{ha1}:{params['nonce']}:{params['nc']}:{params['cnonce']}:auth:{ha2}")


@dataclass
class FakeRegistrar:
    """A UDP socket on 127.0.0.1 that records datagrams and optionally plays registrar.

    ``algorithms=None``: never answers. Otherwise a REGISTER without a valid
    ``Authorization`` gets a 401 with one challenge per algorithm (in order), one with a
    correct digest answer gets 200 OK.
    """

    algorithms: Sequence[str] | None = None
    password: str = PASSWORD
    sock: socket.socket = field(init=False)
    received: list[str] = field(default_factory=list, init=False)
    _cond: threading.Condition = field(default_factory=threading.Condition, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self._thread = threading.Thread(target=self._serve, name="fake-registrar", daemon=True)
        self._thread.start()

    @property
    def address(self) -> Address:
        host, port = self.sock.getsockname()
        return Address(host, port)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            text = data.decode(errors="replace")
            with self._cond:
                self.received.append(text)
                self._cond.notify_all()
            if self.algorithms is not None and text.startswith("REGISTER "):
                self.sock.sendto(self._answer(text).encode(), peer)

    def _answer(self, request: str) -> str:
        copied = [
            line
            for line in request.split("\r\n\r\n", 1)[0].split("\r\n")[1:]
            if re.match(r"(?i)(via|from|to|call-id|cseq|[vfti])\s*:", line)
        ]
        authorization = header(request, "authorization")
        if authorization is not None and self.accepts(authorization):
            contact = header(request, "contact", "m")
            found = re.search(r";expires=(\d+)", contact or "")
            expires = header(request, "expires") or (found.group(1) if found else "60")
            contacts = [f"Contact: {contact}"] if contact else []
            return "\r\n".join(
                [
                    "SIP/2.0 200 OK",
                    *copied,
                    *contacts,
                    f"Expires: {expires}",
                    "Content-Length: 0",
                    "",
                    "",
                ]
            )
        challenges = [
            f'WWW-Authenticate: Digest realm="{REALM}", nonce="{NONCE}", '
            f'algorithm={algorithm}, qop="auth"'
            for algorithm in self.algorithms or ()
        ]
        return "\r\n".join(
            ["SIP/2.0 401 Unauthorized", *copied, *challenges, "Content-Length: 0", "", ""]
        )

    def accepts(self, authorization: str) -> bool:
        params = digest_params(authorization)
        try:
            return params["response"] == expected_response(params, "REGISTER", self.password)
        except KeyError:
            return False

    def wait_for(self, predicate_text: str, timeout: float = WAIT, *, since: int = 0) -> str:
        """The first datagram from index ``since`` that ``predicate_text`` (regex) searches."""
        regex = re.compile(predicate_text, re.M)
        deadline = time.monotonic() + timeout
        index = since
        with self._cond:
            while True:
                while index < len(self.received):
                    message = self.received[index]
                    index += 1
                    if regex.search(message):
                        return message
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"no datagram matching {predicate_text!r} within {timeout} s; "
                        f"got {[m.split(chr(13))[0] for m in self.received[since:]]}"
                    )
                self._cond.wait(remaining)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def registrar_factory() -> Iterator[type[FakeRegistrar]]:
    made: list[FakeRegistrar] = []

    class Tracked(FakeRegistrar):
        def __post_init__(self) -> None:
            super().__post_init__()
            made.append(self)

    try:
        yield Tracked
    finally:
        for registrar in made:
            registrar.close()


def assert_register_from(message: str, user: str) -> None:
    assert message.startswith("REGISTER sip:"), message
    for name in (("from", "f"), ("to", "t")):
        value = header(message, *name)
        assert value is not None, message
        assert f"sip:{user}@127.0.0.1" in value, message


def assert_gone(pid: int) -> None:
    assert not pid_exists(pid), f"process {pid} still exists"


# --- against a silent listener -------------------------------------------------------


def test_baresip_sends_register_then_stops(
    baresip_factory: BaresipFactory, registrar_factory: type[FakeRegistrar]
) -> None:
    require_tools("baresip")
    listener = registrar_factory()
    alice = BaresipAccount("alice", listener.address, regint=60)
    phone = baresip_factory([alice])

    assert_register_from(listener.wait_for(r"^REGISTER sip:"), "alice")
    info = phone.reginfo()
    assert alice.aor in info, info
    assert phone.registration_status()[alice.aor] != "OK"
    with pytest.raises(TimeoutError):
        phone.wait_registered(timeout=0.5)

    pid = phone.pid
    started = time.monotonic()
    # Nobody answers its un-REGISTER: quit does not end it, so this escalates.
    code = phone.stop(quit_timeout=1.0, term_timeout=1.0)
    assert time.monotonic() - started < 10
    assert code is not None
    assert_gone(pid)
    assert phone.stop() == code  # idempotent


def test_linphone_sends_register_then_stops(
    tmp_path: Path, registrar_factory: type[FakeRegistrar]
) -> None:
    require_tools("linphonec")
    listener = registrar_factory()
    account = LinphoneAccount("carol", listener.address, realm=REALM)
    with LinphonePhone.start(tmp_path, account) as phone:
        assert_register_from(listener.wait_for(r"^REGISTER sip:"), "carol")
        assert phone.status_register() == "registered=-1"
        with pytest.raises(TimeoutError):
            phone.wait_registered(timeout=0.5)
        pid = phone.pid
    assert phone.exit_code is not None
    assert_gone(pid)


def test_context_manager_stops_on_error(
    tmp_path: Path, registrar_factory: type[FakeRegistrar]
) -> None:
    require_tools("baresip")
    listener = registrar_factory()
    account = BaresipAccount("dave", listener.address, regint=0)  # never registers
    pids: list[int] = []
    with (  # noqa: PT012
        pytest.raises(RuntimeError, match="boom"),
        BaresipPhone.start(tmp_path, [account]) as phone,
    ):
        pids.append(phone.pid)
        assert phone.registration_status() == {account.aor: ""}
        raise RuntimeError("boom")
    assert_gone(pids[0])
    assert phone.exit_code == 0  # nothing to un-REGISTER: quit ends it


# --- against a registrar that challenges ----------------------------------------------


def test_baresip_registers_two_accounts_with_md5(
    baresip_factory: BaresipFactory, registrar_factory: type[FakeRegistrar]
) -> None:
    require_tools("baresip")
    registrar = registrar_factory(algorithms=["MD5"])
    alice = BaresipAccount("alice", registrar.address, regint=60)
    bob = BaresipAccount("bob", registrar.address, answermode="manual", regint=60)
    phone = baresip_factory([alice, bob])

    phone.wait_registered(WAIT)
    assert phone.registration_status() == {alice.aor: "OK", bob.aor: "OK"}
    for user in ("alice", "bob"):
        answered = registrar.wait_for(rf'^Authorization: Digest username="{user}"')
        assert_register_from(answered, user)
        assert registrar.accepts(header(answered, "authorization") or "")

    mark = len(registrar.received)
    pid = phone.pid
    assert phone.stop() == 0  # un-REGISTERs, answered, then exits on quit
    assert_gone(pid)
    assert registrar.wait_for(r"expires=0", 1, since=mark)
    # quit's answer follows these events, so they are in before stop returns.
    unregistering = phone.wait_event("UNREGISTERING", timeout=0)
    assert unregistering.get("accountaor") in {alice.aor, bob.aor}
    assert phone.wait_event(
        lambda e: e.get("type") == "SHUTDOWN" and e.get("accountaor") == bob.aor, timeout=0
    )


def test_baresip_fails_when_sha256_is_offered(
    baresip_factory: BaresipFactory, registrar_factory: type[FakeRegistrar]
) -> None:
    """baresip 1.0.0 gives up (ENOSYS) on any non-MD5 challenge, in either order."""
    require_tools("baresip")
    for algorithms in (["SHA-256", "MD5"], ["MD5", "SHA-256"]):
        registrar = registrar_factory(algorithms=algorithms)
        account = BaresipAccount("erin", registrar.address, regint=60)
        phone = baresip_factory([account])
        registrar.wait_for(r"^REGISTER sip:")
        deadline = time.monotonic() + WAIT
        while phone.registration_status()[account.aor] != "ERR":
            assert time.monotonic() < deadline, phone.reginfo()
            time.sleep(0.1)
        assert not any("Authorization:" in m for m in registrar.received)
        phone.stop()


@pytest.mark.parametrize(
    ("algorithms", "used"),
    [(["SHA-256", "MD5"], "SHA-256"), (["MD5", "SHA-256"], "MD5"), (["MD5"], "MD5")],
)
def test_linphone_answers_the_first_supported_challenge(
    linphone_factory: LinphoneFactory,
    registrar_factory: type[FakeRegistrar],
    algorithms: list[str],
    used: str,
) -> None:
    require_tools("linphonec")
    registrar = registrar_factory(algorithms=algorithms)
    phone = linphone_factory(LinphoneAccount("frank", registrar.address, realm=REALM))

    status = phone.wait_registered(WAIT)
    assert status.startswith("registered, identity=sip:frank@127.0.0.1"), status
    answered = registrar.wait_for(r'^Authorization: +Digest .*username="frank"')
    assert_register_from(answered, "frank")
    params = digest_params(header(answered, "authorization") or "")
    assert params["algorithm"] == used
    assert registrar.accepts(header(answered, "authorization") or "")
    assert phone.password_prompts == 0

    mark = len(registrar.received)
    pid = phone.pid
    assert phone.stop() == 0
    assert_gone(pid)
    assert registrar.wait_for(r"(?i)^expires: *0\r?$", 1, since=mark)


def test_linphone_answers_its_password_prompt(
    linphone_factory: LinphoneFactory, registrar_factory: type[FakeRegistrar]
) -> None:
    """A rejected digest makes linphonec ask for a password on stdin; the harness
    answers it with the configured one, so later commands still reach linphonec."""
    require_tools("linphonec")
    registrar = registrar_factory(algorithms=["MD5"], password="not-the-phone's")
    phone = linphone_factory(LinphoneAccount("gina", registrar.address, realm=REALM))
    phone.wait_line(r"^Password for gina on test:", WAIT)
    deadline = time.monotonic() + WAIT
    while phone.password_prompts < 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert phone.status_register() == "registered=-1"


# --- calls leave on loopback -----------------------------------------------------------


def sdp_media(invite: str) -> tuple[str, int, list[str]]:
    """``(c= address, audio port, payload types)`` of an INVITE's SDP offer."""
    body = invite.split("\r\n\r\n", 1)[1]
    connection = re.search(r"^c=IN IP4 (\S+)", body, re.M)
    media = re.search(r"^m=audio (\d+) RTP/AVP ([\d ]+)", body, re.M)
    assert connection, invite
    assert media, invite
    return connection.group(1), int(media.group(1)), media.group(2).split()


def test_baresip_dial_offers_loopback_pcmu(
    baresip_factory: BaresipFactory, registrar_factory: type[FakeRegistrar]
) -> None:
    require_tools("baresip")
    peer = registrar_factory()  # silent: the INVITE is only looked at
    hal = BaresipAccount("hal", peer.address, regint=0)
    ike = BaresipAccount("ike", peer.address, regint=0)
    phone = baresip_factory([hal, ike])
    mark = phone.mark()
    phone.dial(f"sip:ivy@{peer.address}", from_aor=ike.aor)
    invite = peer.wait_for(r"^INVITE sip:ivy@")
    assert ike.aor in (header(invite, "from", "f") or ""), invite
    address, port, payloads = sdp_media(invite)
    assert address == "127.0.0.1"
    assert phone.rtp_ports[0] <= port <= phone.rtp_ports[1]
    assert payloads[0] == "0"  # PCMU (then 101, telephone-event)
    phone.hangup()
    closed = phone.wait_event("CALL_CLOSED", since=mark)
    assert closed.get("peeruri") == f"sip:ivy@{peer.address}"
    # The INVITE transaction lives on (no CANCEL without a 1xx), so quit cannot end it.
    phone.stop(quit_timeout=0.5, term_timeout=0.5)


def test_linphone_call_offers_loopback(
    linphone_factory: LinphoneFactory, registrar_factory: type[FakeRegistrar]
) -> None:
    require_tools("linphonec")
    peer = registrar_factory()
    phone = linphone_factory(LinphoneAccount("jay", peer.address, register=False))
    assert phone.status_register() == "registered=0"
    mark = phone.call(f"sip:kim@{peer.address}")
    invite = peer.wait_for(r"^INVITE sip:kim@")
    assert "sip:jay@127.0.0.1" in (header(invite, "from", "f") or "")
    address, port, _ = sdp_media(invite)
    assert address == "127.0.0.1"
    assert phone.rtp_ports[0] <= port <= phone.rtp_ports[1]
    phone.wait_line(r"^Call 1 to .* in progress", WAIT, since=mark)
    phone.terminate()
    phone.wait_line(r"^Call 1 with .* ended", WAIT, since=mark)


@pytest.mark.parametrize("tool", ["baresip", "linphonec"])
def test_start_retries_when_its_sip_port_is_taken(
    tool: str,
    tmp_path: Path,
    registrar_factory: type[FakeRegistrar],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another process binds the chosen SIP port first: start tries new ports."""
    require_tools(tool)
    listener = registrar_factory()
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    squatter.bind(("127.0.0.1", 0))
    taken = squatter.getsockname()[1]
    handed: list[int] = []

    def first_taken(host: str = "127.0.0.1") -> int:
        port = taken if not handed else free_port(host)
        handed.append(port)
        return port

    monkeypatch.setattr(phones, "free_port", first_taken)
    try:
        if tool == "baresip":
            with BaresipPhone.start(tmp_path, [BaresipAccount("lee", listener.address)]) as b:
                assert b.sip_port != taken
                assert_register_from(listener.wait_for(r"^REGISTER sip:"), "lee")
        else:
            account = LinphoneAccount("lee", listener.address)
            with LinphonePhone.start(tmp_path, account) as phone:
                assert phone.sip_port != taken
                assert owns_udp_port(phone.pid, phone.sip_port)
                assert_register_from(listener.wait_for(r"^REGISTER sip:"), "lee")
    finally:
        squatter.close()
    assert handed[0] == taken
    assert len(list(tmp_path.iterdir())) == 2  # one work directory per attempt
