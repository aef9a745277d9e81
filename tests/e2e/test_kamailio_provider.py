"""The Kamailio stand-in provider (tests/support/kamailio.py), proved with SIPp alone.

The switch's carrier trunks will REGISTER to a provider and place and take calls
through it; these tests show that the harness's provider behaves as a carrier does,
without the switch: SIPp stands for the trunk (registering, answering DID calls,
placing outbound calls with proxy digest), for the outside world calling a DID, and
for the PSTN gateway behind the provider. The scenarios are sipp-scenarios/provider_*.xml.

What each test checks comes from SIPp's exit code and its message trace (-trace_msg:
what each SIPp sent and received, byte for byte), and from the provider's location
table (JSON-RPC ``ul.dump``).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import pytest

from tests.support.kamailio import (
    KamailioProvider,
    ProviderFactory,
    Registration,
    provider_factory,
)
from tests.support.processes import (
    OUTER_GRACE,
    SIPP,
    Address,
    free_port,
    free_udp_pair,
    run_sipp,
    wait_until,
)
from tests.support.sipp_calls import (
    SCENARIOS,
    BackgroundCall,
    SippMessage,
    received,
    report,
    sipp_messages,
    traces,
    users,
)

__all__ = ["provider_factory"]

pytestmark = [pytest.mark.e2e, pytest.mark.requires_tool("kamailio", "sipp")]

HOST: Final = "127.0.0.1"
SIPP_TIMEOUT: Final = 10.0
SHOP: Final = "shop"
SHOP_SECRET: Final = "shop-secret"
OTHER: Final = "acme"
OTHER_SECRET: Final = "acme-secret"
USERS: Final = {SHOP: SHOP_SECRET, OTHER: OTHER_SECRET}
SHOP_DID: Final = "5550200"
DIDS: Final = {SHOP_DID: SHOP}
PSTN_NUMBER: Final = "0700123456"
# Sent by provider_uac_outbound*.xml; the gateway must see them unchanged.
PAI: Final = 'P-Asserted-Identity: "Flower Shop" <sip:+15550200@trunk.example>'
DIVERSION: Final = "Diversion: <sip:5550200@trunk.example>;reason=unconditional;counter=1"


# -- helpers


def sipp(
    provider: KamailioProvider | Address | None,
    scenario: str,
    directory: Path,
    name: str,
    *extra: str,
) -> subprocess.CompletedProcess[str]:
    """Run a provider scenario to its end (bounded), against ``provider`` (None: a UAS)."""
    args = [] if provider is None else [str(_address(provider))]
    args += ["-sf", str(SCENARIOS / scenario), "-i", HOST, *traces(directory, name), *extra]
    return run_sipp(args, SIPP_TIMEOUT, cwd=directory)


def _address(target: KamailioProvider | Address) -> Address:
    return target.address if isinstance(target, KamailioProvider) else target


def background_sipp(
    provider: KamailioProvider | None,
    scenario: str,
    directory: Path,
    name: str,
    *extra: str,
    port: int | None = None,
) -> BackgroundCall:
    """Start a SIPp that runs while the test goes on; stop it by PID (BackgroundCall)."""
    command = [SIPP] + ([] if provider is None else [str(provider.address)])
    command += [
        "-sf", str(SCENARIOS / scenario), "-i", HOST, *traces(directory, name), *extra,
        "-p", str(port or free_port()), "-cp", str(free_port()), "-mp", str(free_udp_pair()),
        "-m", "1", "-timeout", f"{2 * SIPP_TIMEOUT:g}s", "-timeout_error", "-nd", "-nostdin",
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        cwd=directory,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    return BackgroundCall(process, name, directory)


def register(
    provider: KamailioProvider,
    directory: Path,
    *extra: str,
    user: str = SHOP,
    secret: str = SHOP_SECRET,
    expires: int = 300,
    scenario: str = "provider_uac_register.xml",
    name: str = "register",
) -> subprocess.CompletedProcess[str]:
    return sipp(
        provider, scenario, directory, name,
        "-s", user, "-au", user, "-ap", secret, "-key", "expires", str(expires), *extra,
    )  # fmt: skip


def failure(provider: KamailioProvider, directory: Path, *results: object) -> str:
    completed = [r for r in results if isinstance(r, subprocess.CompletedProcess)]
    return report(directory, *completed) + "\n" + provider.diagnostics()


def assert_clean_log(provider: KamailioProvider) -> None:
    """Kamailio logged no error (a malformed message from a peer shows up here)."""
    errors = [line for line in provider.log_text().splitlines() if " ERROR: " in line]
    assert not errors, "\n".join(errors) + "\n" + provider.diagnostics()


def messages(directory: Path, name: str) -> list[SippMessage]:
    return sipp_messages(directory / f"{name}-messages.log")


def statuses(directory: Path, name: str) -> list[int]:
    """The final answers a SIPp received, in order."""
    return [
        m.status
        for m in messages(directory, name)
        if not m.sent and m.status is not None and m.status >= 200
    ]


def header(message: SippMessage, name: str) -> list[str]:
    """Every ``name:`` line of a traced message, as written."""
    return [
        line.strip()
        for line in message.text.splitlines()
        if line.lower().startswith(name.lower() + ":")
    ]


def sent_contact(directory: Path, name: str) -> str:
    """The Contact URI of the first request a SIPp sent."""
    first = next(m for m in messages(directory, name) if m.sent)
    (contact,) = header(first, "Contact")
    found = re.search(r"<([^>]+)>", contact)
    assert found, contact
    return found.group(1)


def binding_of(provider: KamailioProvider, user: str, contact: str) -> Registration:
    """``user``'s binding for ``contact`` in the provider's location table."""
    bindings = [b for b in provider.registrations(user) if b.contact == contact]
    assert len(bindings) == 1, (contact, provider.locations())
    return bindings[0]


def user_of(uri_or_header: str) -> str:
    found = re.search(r"sips?:([^@;>]+)@", uri_or_header)
    assert found, uri_or_header
    return found.group(1)


def wait_bound(uas: BackgroundCall, port: int, timeout: float = 5.0) -> None:
    """Until the SIPp UAS started in the background has bound UDP ``port``."""

    def bound() -> bool:
        if uas.process.poll() is not None:
            stderr = uas.process.stderr.read() if uas.process.stderr else ""
            pytest.fail(f"SIPp {uas.name} exited with {uas.process.returncode}: {stderr}")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                return True
        return False

    wait_until(bound, timeout, f"SIPp {uas.name} binding UDP port {port}")


# -- 1. registration with digest


def test_register_with_digest_shows_in_the_location_table(
    provider_factory: ProviderFactory, tmp_path: Path
) -> None:
    provider = provider_factory(USERS, dids=DIDS)

    result = register(provider, tmp_path, expires=300)
    assert result.returncode == 0, failure(provider, tmp_path, result)
    assert statuses(tmp_path, "register") == [401, 200]
    challenge = next(m for m in messages(tmp_path, "register") if m.status == 401)
    (www,) = header(challenge, "WWW-Authenticate")
    assert 'realm="provider.test"' in www
    assert 'qop="auth"' in www

    (binding,) = provider.registrations(SHOP)
    assert binding.contact == sent_contact(tmp_path, "register")
    assert binding.contact.startswith(f"sip:{SHOP}@{HOST}:")
    assert 290 <= binding.expires <= 300
    assert binding.user_agent == "sipp-trunk"
    assert binding.socket == f"udp:{HOST}:{provider.port}"
    assert set(provider.locations()) == {SHOP}


@pytest.mark.parametrize(("user", "secret"), [(SHOP, "not-the-password"), ("stranger", "whatever")])
def test_register_with_a_wrong_password_or_unknown_user_is_refused(
    provider_factory: ProviderFactory, tmp_path: Path, user: str, secret: str
) -> None:
    provider = provider_factory(USERS)

    result = register(
        provider, tmp_path, user=user, secret=secret, scenario="provider_uac_register_refused.xml"
    )
    assert result.returncode == 0, failure(provider, tmp_path, result)
    assert statuses(tmp_path, "register") == [401, 403]
    assert provider.locations() == {}


def test_register_as_another_user_than_the_credentials_is_refused(
    provider_factory: ProviderFactory, tmp_path: Path
) -> None:
    provider = provider_factory(USERS)

    # To user "shop", digest username "acme" with acme's right password.
    result = sipp(
        provider, "provider_uac_register_refused.xml", tmp_path, "register",
        "-s", SHOP, "-au", OTHER, "-ap", OTHER_SECRET, "-key", "expires", "300",
    )  # fmt: skip
    assert result.returncode == 0, failure(provider, tmp_path, result)
    assert statuses(tmp_path, "register") == [401, 403]
    assert provider.locations() == {}


# -- 2. Expires bounds


def test_too_short_an_expires_gets_423_with_min_expires(
    provider_factory: ProviderFactory, tmp_path: Path
) -> None:
    provider = provider_factory(USERS, min_expires=30, default_expires=60, max_expires=120)

    result = register(
        provider, tmp_path, expires=10, scenario="provider_uac_register_too_brief.xml"
    )
    assert result.returncode == 0, failure(provider, tmp_path, result)
    assert statuses(tmp_path, "register") == [401, 423]
    too_brief = next(m for m in messages(tmp_path, "register") if m.status == 423)
    assert header(too_brief, "Min-Expires") == ["Min-Expires: 30"]
    assert provider.locations() == {}

    # At the minimum it is taken; above the maximum it is lowered to it.
    result = register(provider, tmp_path, expires=30, name="at-minimum")
    assert result.returncode == 0, failure(provider, tmp_path, result)
    assert 25 <= binding_of(provider, SHOP, sent_contact(tmp_path, "at-minimum")).expires <= 30
    result = register(provider, tmp_path, expires=7200, name="above-maximum")
    assert result.returncode == 0, failure(provider, tmp_path, result)
    binding = binding_of(provider, SHOP, sent_contact(tmp_path, "above-maximum"))
    assert 115 <= binding.expires <= 120, binding


def test_a_binding_leaves_the_table_when_it_expires_or_is_removed(
    provider_factory: ProviderFactory, tmp_path: Path
) -> None:
    provider = provider_factory(USERS, min_expires=1, default_expires=60, max_expires=120)

    result = register(provider, tmp_path, expires=2, name="short")
    assert result.returncode == 0, failure(provider, tmp_path, result)
    assert provider.registrations(SHOP)
    provider.wait_unregistered(SHOP, timeout=6)

    # Expires: 0 for the same Contact removes it at once (and is never "too brief").
    port = str(free_port())
    result = register(provider, tmp_path, "-p", port, expires=60, name="long")
    assert result.returncode == 0, failure(provider, tmp_path, result)
    assert provider.registrations(SHOP)
    result = register(provider, tmp_path, "-p", port, expires=0, name="remove")
    assert result.returncode == 0, failure(provider, tmp_path, result)
    assert provider.registrations(SHOP) == []


# -- 3. DID calls in


@pytest.mark.parametrize("did_in_request_uri", [False, True])
def test_a_did_call_reaches_the_trunk_registered_for_it(
    provider_factory: ProviderFactory, tmp_path: Path, did_in_request_uri: bool
) -> None:
    provider = provider_factory(USERS, dids=DIDS, did_in_request_uri=did_in_request_uri)

    with background_sipp(
        provider, "provider_uas_register.xml", tmp_path, "trunk",
        "-oocsf", str(SCENARIOS / "provider_uas_answer.xml"),
        "-s", SHOP, "-au", SHOP, "-ap", SHOP_SECRET, "-key", "expires", "300",
    ) as trunk:  # fmt: skip
        binding = provider.wait_registered(SHOP)
        caller = sipp(provider, "provider_uac_call.xml", tmp_path, "caller", "-s", SHOP_DID)
        trunk_code = trunk.finish(timeout=SIPP_TIMEOUT + OUTER_GRACE)
    assert caller.returncode == 0, failure(provider, tmp_path, caller)
    assert trunk_code == 0, failure(provider, tmp_path, caller)

    (invite,) = received(tmp_path / "trunk-messages.log", "INVITE")
    request_uri = invite.first_line.split()[1]
    if did_in_request_uri:
        assert request_uri == binding.contact.replace(f"sip:{SHOP}@", f"sip:{SHOP_DID}@")
    else:
        assert request_uri == binding.contact
    (to,) = header(invite, "To")
    assert user_of(to) == SHOP_DID
    (record_route,) = header(invite, "Record-Route")
    assert f"{HOST}:{provider.port};lr" in record_route
    (from_,) = header(invite, "From")
    assert "+15550199" in from_
    assert header(invite, "Authorization") == header(invite, "Proxy-Authorization") == []
    # The caller's ACK and BYE came through the provider to the trunk.
    assert len(received(tmp_path / "trunk-messages.log", "ACK")) >= 1
    assert len(received(tmp_path / "trunk-messages.log", "BYE")) >= 1
    assert any(f"DID {SHOP_DID} to {SHOP}" in line for line in provider.provider_lines())
    assert_clean_log(provider)


def test_a_did_call_while_nobody_is_registered_gets_480(
    provider_factory: ProviderFactory, tmp_path: Path
) -> None:
    provider = provider_factory(USERS, dids=DIDS)

    caller = sipp(provider, "provider_uac_call.xml", tmp_path, "caller", "-s", SHOP_DID)
    assert caller.returncode == 1, failure(provider, tmp_path, caller)
    assert statuses(tmp_path, "caller") == [480]


# -- 4. outbound calls


def test_an_authenticated_outbound_call_reaches_the_gateway_untouched(
    provider_factory: ProviderFactory, tmp_path: Path
) -> None:
    gateway_port = free_port()
    provider = provider_factory(USERS, dids=DIDS, gateway=Address(HOST, gateway_port))

    with background_sipp(
        None, "provider_uas_answer.xml", tmp_path, "gateway", port=gateway_port
    ) as gateway:
        wait_bound(gateway, gateway_port)
        caller = sipp(
            provider, "provider_uac_outbound.xml", tmp_path, "trunk",
            "-s", PSTN_NUMBER, "-au", SHOP, "-ap", SHOP_SECRET, "-key", "trunk", SHOP,
        )  # fmt: skip
        gateway_code = gateway.finish(timeout=SIPP_TIMEOUT + OUTER_GRACE)
    assert caller.returncode == 0, failure(provider, tmp_path, caller)
    assert gateway_code == 0, failure(provider, tmp_path, caller)

    assert statuses(tmp_path, "trunk")[0] == 407
    challenge = next(m for m in messages(tmp_path, "trunk") if m.status == 407)
    (proxy_authenticate,) = header(challenge, "Proxy-Authenticate")
    assert 'qop="auth"' in proxy_authenticate

    sent_invites = [m for m in messages(tmp_path, "trunk") if m.sent and m.method == "INVITE"]
    (invite,) = received(tmp_path / "gateway-messages.log", "INVITE")
    assert invite.first_line == f"INVITE sip:{PSTN_NUMBER}@{HOST}:{provider.port} SIP/2.0"
    assert header(invite, "P-Asserted-Identity") == [PAI]
    assert header(invite, "Diversion") == [DIVERSION]
    assert header(invite, "From") == header(sent_invites[-1], "From")
    assert header(invite, "To") == header(sent_invites[-1], "To")
    assert header(invite, "Proxy-Authorization") == []
    assert header(invite, "CSeq") == ["CSeq: 2 INVITE"]
    (record_route,) = header(invite, "Record-Route")
    assert f"{HOST}:{provider.port};lr" in record_route
    assert len(received(tmp_path / "gateway-messages.log", "BYE")) >= 1
    assert_clean_log(provider)


def test_an_outbound_call_cancelled_while_ringing(
    provider_factory: ProviderFactory, tmp_path: Path
) -> None:
    """call_uac_cancel.xml (407, authenticated INVITE, 180, CANCEL, 200 and 487, ACK)
    through the provider to provider_uas_ring.xml at the gateway (180, CANCEL, 200, 487
    carrying both of the INVITE's Vias, ACK)."""
    gateway_port = free_port()
    provider = provider_factory(USERS, gateway=Address(HOST, gateway_port))

    with background_sipp(
        None, "provider_uas_ring.xml", tmp_path, "gateway", port=gateway_port
    ) as gateway:
        wait_bound(gateway, gateway_port)
        caller = sipp(
            provider, "call_uac_cancel.xml", tmp_path, "trunk",
            "-s", PSTN_NUMBER, "-inf", str(users(tmp_path, SHOP, SHOP_SECRET)),
        )  # fmt: skip
        gateway_code = gateway.finish(timeout=SIPP_TIMEOUT + OUTER_GRACE)
    assert caller.returncode == 0, failure(provider, tmp_path, caller)
    assert gateway_code == 0, failure(provider, tmp_path, caller)
    assert len(received(tmp_path / "gateway-messages.log", "CANCEL")) >= 1
    (terminated,) = [m for m in messages(tmp_path, "trunk") if m.status == 487][:1]
    assert len(header(terminated, "Via")) == 1
    assert_clean_log(provider)


@pytest.mark.parametrize(("user", "secret"), [(SHOP, "not-the-password"), ("stranger", "whatever")])
def test_an_outbound_call_without_good_credentials_never_reaches_the_gateway(
    provider_factory: ProviderFactory, tmp_path: Path, user: str, secret: str
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gateway:
        gateway.bind((HOST, 0))
        provider = provider_factory(USERS, gateway=Address(HOST, gateway.getsockname()[1]))

        caller = sipp(
            provider, "provider_uac_outbound_refused.xml", tmp_path, "trunk",
            "-s", PSTN_NUMBER, "-au", user, "-ap", secret, "-key", "trunk", user,
        )  # fmt: skip
        assert caller.returncode == 0, failure(provider, tmp_path, caller)
        assert statuses(tmp_path, "trunk") == [407, 403]
        # The provider relays at once: by the scenario's end (300 ms after the 403) a
        # relayed INVITE would be waiting here.
        assert not [line for line in provider.provider_lines() if line.startswith("outbound")]
        assert_clean_log(provider)
        gateway.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            data = gateway.recv(65535)
            pytest.fail(f"the gateway got a datagram: {data[:200]!r}")


# -- 5. restart


def test_a_restart_on_the_same_port_forgets_every_registration(
    provider_factory: ProviderFactory, tmp_path: Path
) -> None:
    provider = provider_factory(USERS)
    port = provider.port
    result = register(provider, tmp_path, name="before")
    assert result.returncode == 0, failure(provider, tmp_path, result)
    assert set(provider.locations()) == {SHOP}
    first_pid = provider.pid
    assert first_pid is not None

    provider.stop()
    assert not provider.is_running()
    assert not Path(f"/proc/{first_pid}").exists()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, port))  # free again

    provider.start()
    assert provider.port == port
    assert provider.pid not in (None, first_pid)
    assert provider.locations() == {}
    result = register(provider, tmp_path, name="after")
    assert result.returncode == 0, failure(provider, tmp_path, result)
    assert set(provider.locations()) == {SHOP}
    assert "=== start 2: " in provider.log_text()


# -- SHA-256 digest (SIPp speaks only MD5: a few raw datagrams instead)


def _register_request(
    provider: KamailioProvider, local_port: int, cseq: int, authorization: str | None
) -> bytes:
    lines = [
        f"REGISTER {provider.uri} SIP/2.0",
        f"Via: SIP/2.0/UDP {HOST}:{local_port};branch=z9hG4bK-{uuid.uuid4().hex}",
        "Max-Forwards: 70",
        f"From: <sip:{SHOP}@{HOST}>;tag=sha",
        f"To: <sip:{SHOP}@{HOST}>",
        "Call-ID: sha-256-register",
        f"CSeq: {cseq} REGISTER",
        f"Contact: <sip:{SHOP}@{HOST}:{local_port}>",
        "Expires: 120",
    ]
    if authorization is not None:
        lines.append(authorization)
    return ("\r\n".join([*lines, "Content-Length: 0", "", ""])).encode()


def _digest(algorithm: str, challenge: str, secret: str, uri: str) -> str:
    def digest(text: str) -> str:
        hashed = hashlib.sha256 if algorithm == "SHA-256" else hashlib.md5
        return hashed(text.encode()).hexdigest()

    realm = re.search(r'realm="([^"]+)"', challenge)
    nonce = re.search(r'nonce="([^"]+)"', challenge)
    assert realm, challenge
    assert nonce, challenge
    ha1 = digest(f"{SHOP}:{realm[1]}:{secret}")
    ha2 = digest(f"REGISTER:{uri}")
    response = digest(f"{ha1}:{nonce[1]}:00000001:c0ffee:auth:{ha2}")
    return (
        f'Authorization: Digest username="{SHOP}", realm="{realm[1]}", nonce="{nonce[1]}", '
        f'uri="{uri}", response="{response}", algorithm={algorithm}, qop=auth, '
        'nc=00000001, cnonce="c0ffee"'
    )


def _exchange(sock: socket.socket, provider: KamailioProvider, request: bytes) -> str:
    sock.sendto(request, (HOST, provider.port))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        reply = sock.recv(65535).decode(errors="replace")
        if reply.startswith("SIP/2.0 1"):
            continue
        return reply
    raise AssertionError("no final answer within 5 s")


@pytest.mark.parametrize(("answer", "expected"), [("SHA-256", 200), ("MD5", 401)])
def test_sha256_digest_registration(
    provider_factory: ProviderFactory, answer: str, expected: int
) -> None:
    provider = provider_factory(USERS, algorithm="SHA-256")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(5)
        local_port = sock.getsockname()[1]
        reply = _exchange(sock, provider, _register_request(provider, local_port, 1, None))
        assert reply.startswith("SIP/2.0 401 "), reply
        (challenge,) = re.findall(r"^WWW-Authenticate: (.*)$", reply, re.MULTILINE)
        assert "algorithm=SHA-256" in challenge
        authorization = _digest(answer, challenge, SHOP_SECRET, provider.uri)
        reply = _exchange(sock, provider, _register_request(provider, local_port, 2, authorization))
    assert reply.startswith(f"SIP/2.0 {expected} "), reply + provider.diagnostics()
    assert (SHOP in provider.locations()) == (expected == 200)


# -- the harness itself


@pytest.mark.parametrize(
    ("table", "dids", "error"),
    [
        ({SHOP: 'with "quote'}, {}, "password"),
        ({"sh op": "x"}, {}, "username"),
        (USERS, {"5550999": "nobody"}, "not in users"),
    ],
)
def test_the_config_refuses_what_it_cannot_quote(
    tmp_path: Path, table: dict[str, str], dids: dict[str, str], error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        KamailioProvider(tmp_path, table, dids=dids)
    assert list(tmp_path.iterdir()) == []


def _no_kamailio_left(pids: Sequence[int]) -> bool:
    return not any(Path(f"/proc/{pid}").exists() for pid in pids)


def test_stop_leaves_no_process_and_a_free_port(tmp_path: Path) -> None:
    with KamailioProvider(tmp_path, USERS) as provider:
        pid = provider.pid
        assert pid is not None
        children = [
            int(path.parent.name)
            for path in Path("/proc").glob("[0-9]*/stat")
            if _ppid(path) == pid
        ]
        assert children, "Kamailio runs its workers as child processes"
        port = provider.port
    wait_until(lambda: _no_kamailio_left([pid, *children]), 5, "every Kamailio process ending")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, port))
    assert not provider.runtime_dir.exists()
    assert provider.config_path.exists()
    assert provider.log_path.exists()


def _ppid(stat: Path) -> int | None:
    try:
        return int(stat.read_text().rpartition(")")[2].split()[1])
    except (OSError, ValueError, IndexError):
        return None
