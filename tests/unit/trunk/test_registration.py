"""The trunk's REGISTER client on a virtual clock: requests, digest, 423, grants, refresh,
keep-alives, back-off, stop, and stray input."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from b2bua.ids import BRANCH_PREFIX, SeededIds
from b2bua.registrar.qualify import LocalIdentity
from b2bua.sip.address import Transport
from b2bua.sip.digest import (
    Algorithm,
    Challenge,
    Credentials,
    Qop,
    compute_ha1,
    parse_credentials,
    verify,
)
from b2bua.sip.message import Headers, Request, Response, make_response
from b2bua.sip.parser import parse_message
from b2bua.sip.uri import SipUri
from b2bua.trunk.registration import (
    ALLOW,
    KEEPALIVE,
    MAX_FOLLOW_UPS,
    ArmTimer,
    DisarmTimer,
    RegistrationAction,
    RegistrationClient,
    RegistrationSettings,
    RegistrationState,
    SendKeepAlive,
    SendRegister,
    StateChanged,
    Stopped,
)

REALM = "provider.example.com"
USER = "5550200"
PASSWORD = "s3cret-0200"
WALL = 1_800_000_000.0  # wall clock = now + WALL
LOCAL = LocalIdentity(
    host="203.0.113.5", ports={"UDP": 5060, "TCP": 5070}, user_agent="b2bua-test/1.0"
)
CONTACT = f"sip:{USER}@203.0.113.5:5060"
NOT_OURS = "our contact is not in the 200"
BASE = RegistrationSettings(
    trunk="acme",
    registrar=f"sip:{REALM}",
    aor=f"sip:{USER}@{REALM}",
    contact_user=USER,
    username=USER,
    password=PASSWORD,
    keepalive=0.0,
)

State = RegistrationState


class Jitter(random.Random):
    """``uniform(a, b)`` gives ``a + (b - a) * f`` for the next of ``fractions`` (then 1.0),
    and records the bounds it was asked for, so back-off instants can be asserted exactly."""

    def __init__(self, *fractions: float) -> None:
        super().__init__(0)
        self.fractions = list(fractions)
        self.bounds: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.bounds.append((a, b))
        fraction = self.fractions.pop(0) if self.fractions else 1.0
        return a + (b - a) * fraction


def make_client(
    *, rng: random.Random | None = None, local: LocalIdentity = LOCAL, **changes: Any
) -> RegistrationClient:
    return RegistrationClient(
        dataclasses.replace(BASE, **changes), local, SeededIds(7), rng or Jitter()
    )


def register_of(actions: list[RegistrationAction]) -> Request:
    [request] = [a.request for a in actions if isinstance(a, SendRegister)]
    # What the switch puts on the wire must parse back as the same request.
    parsed = parse_message(request.to_bytes())
    assert isinstance(parsed, Request)
    return parsed


def timer_of(actions: list[RegistrationAction]) -> ArmTimer | DisarmTimer | None:
    timers = [a for a in actions if isinstance(a, ArmTimer | DisarmTimer)]
    assert len(timers) <= 1
    return timers[0] if timers else None


def states_of(actions: list[RegistrationAction]) -> list[StateChanged]:
    return [a for a in actions if isinstance(a, StateChanged)]


def respond(
    request: Request, status: int, *headers: tuple[str, str], reason: str | None = None
) -> Response:
    """The provider's response, through our own serialiser and parser."""
    response = make_response(request, status, reason, to_tag="prov-1")
    for name, value in headers:
        response.headers.add(name, value)
    parsed = parse_message(response.to_bytes())
    assert isinstance(parsed, Response)
    return parsed


def ok(
    request: Request,
    expires: int | None = 3600,
    *extra: tuple[str, str],
    contact: str = CONTACT,
) -> Response:
    """A 200 listing our contact (with ``expires`` unless None) and an older binding."""
    ours = f"<{contact}>" + ("" if expires is None else f";expires={expires}")
    others = ("Contact", f"<sip:{USER}@198.51.100.9:5060>;expires=17")
    return respond(request, 200, others, ("Contact", ours), *extra)


def www(
    *,
    nonce: str = "n1",
    algorithm: Algorithm = Algorithm.MD5,
    stale: bool = False,
    realm: str = REALM,
    qop: tuple[Qop, ...] = (Qop.AUTH,),
    header: str = "WWW-Authenticate",
) -> tuple[str, str]:
    challenge = Challenge(
        realm=realm, nonce=nonce, algorithm=algorithm, opaque="op-1", qop=qop, stale=stale
    )
    return header, challenge.to_header_value()


def credentials(request: Request, header: str = "Authorization") -> Credentials:
    value = request.headers.get(header)
    assert value is not None, f"no {header}"
    return parse_credentials(value)


def assert_answers(
    request: Request,
    *,
    nonce: str,
    nc: int | None,
    algorithm: Algorithm = Algorithm.MD5,
    header: str = "Authorization",
) -> None:
    c = credentials(request, header)
    assert (c.username, c.realm, c.nonce, c.uri, c.algorithm, c.opaque) == (
        USER,
        REALM,
        nonce,
        f"sip:{REALM}",
        algorithm,
        "op-1",
    )
    assert c.nc == nc
    ha1 = compute_ha1(USER, REALM, PASSWORD, algorithm)
    assert verify(c, method="REGISTER", ha1=ha1)


def registered(client: RegistrationClient, now: float = 0.0, granted: int = 3600) -> Request:
    """start(), the 401 answered, the 200: returns the answering REGISTER."""
    first = register_of(client.start(now))
    second = register_of(client.on_response(respond(first, 401, www()), now))
    actions = client.on_response(ok(second, granted), now)
    assert client.state is State.REGISTERED, actions
    return second


# --- the request ------------------------------------------------------------------------


def test_first_register_follows_rfc3261_section_10_2() -> None:
    client = make_client()
    actions = client.start(0.0)
    assert actions[0] == StateChanged(state=State.REGISTERING, status=None, reason="")
    assert len(actions) == 2  # no timer while a REGISTER is in flight: its transaction ends it
    assert client.deadline is None
    assert client.is_in_flight
    request = register_of(actions)
    assert request.start_line() == f"REGISTER sip:{REALM} SIP/2.0"
    via = request.top_via
    assert (via.transport, via.host, via.port) == ("UDP", "203.0.113.5", 5060)
    assert via.branch is not None
    assert via.branch.startswith(BRANCH_PREFIX)
    assert via.has_rport
    assert request.from_.uri_text == f"sip:{USER}@{REALM}"
    assert request.from_.tag
    assert request.to.uri_text == f"sip:{USER}@{REALM}"
    assert request.to.tag is None
    assert request.call_id.endswith("@203.0.113.5")
    assert (request.cseq.number, request.cseq.method) == (1, "REGISTER")
    assert request.headers.get_all("contact") == [f"<{CONTACT}>;expires=3600"]
    assert request.headers.get("expires") == "3600"
    assert request.max_forwards == 70
    assert request.headers.get("user-agent") == "b2bua-test/1.0"
    assert request.headers.get("allow") == ALLOW
    assert request.headers.get("content-length") == "0"
    assert request.body == b""
    assert "authorization" not in request.headers


def test_tcp_uses_the_tcp_port_and_says_so_in_the_contact() -> None:
    client = make_client(transport=Transport.TCP, registrar=SipUri(REALM, port=5080))
    request = register_of(client.start(0.0))
    assert request.uri == f"sip:{REALM}:5080"
    assert (request.top_via.transport, request.top_via.port) == ("TCP", 5070)
    contact = f"sip:{USER}@203.0.113.5:5070;transport=tcp"
    assert request.headers.get_all("contact") == [f"<{contact}>;expires=3600"]
    assert client.contact == contact


def test_a_lost_connection_registers_again_at_once_and_only_when_registered() -> None:
    client = make_client(transport=Transport.TCP)
    assert client.connection_lost(0.0) == []  # idle: nothing registered to repair
    first = register_of(client.start(10.0))
    before = register_of(client.on_response(respond(first, 401, www()), 10.0))
    client.on_response(ok(before, 3600, contact=client.contact), 10.0)
    assert client.state is State.REGISTERED
    actions = client.connection_lost(20.0)
    again = register_of(actions)
    assert again.call_id == before.call_id
    assert again.cseq.number == before.cseq.number + 1
    assert again.headers.get("expires") == "3600"
    assert client.is_in_flight
    assert client.connection_lost(21.0) == []  # one REGISTER at a time
    client.on_response(ok(again, 3600, contact=client.contact), 21.0)
    assert client.state is State.REGISTERED


def test_an_ipv6_host_is_bracketed() -> None:
    client = make_client(
        local=LocalIdentity(host="2001:db8::5", ports={"UDP": 5060}, user_agent="x")
    )
    request = register_of(client.start(0.0))
    assert request.top_via.host == "[2001:db8::5]"
    assert client.contact == f"sip:{USER}@[2001:db8::5]:5060"
    # The 200 names our contact with the bracketed host: found, registered.
    client.on_response(respond(request, 200, ("Contact", f"<{client.contact}>;expires=60")), 0.0)
    assert client.state is State.REGISTERED


def test_one_call_id_and_from_tag_new_branch_and_next_cseq_for_every_request() -> None:
    client = make_client()
    first = register_of(client.start(0.0))
    second = register_of(client.on_response(respond(first, 401, www()), 0.1))
    client.on_response(ok(second, 60), 0.2)
    third = register_of(client.on_timer(30.1))  # refresh at 0.1 + 60 - 30
    requests = [first, second, third]
    assert [r.cseq.number for r in requests] == [1, 2, 3]
    assert len({r.call_id for r in requests}) == 1
    assert len({r.from_.tag for r in requests}) == 1
    assert len({r.top_via.branch for r in requests}) == 3


def test_no_port_for_the_transport_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="does not listen on TCP"):
        make_client(transport=Transport.TCP, local=LocalIdentity("h", {"UDP": 5060}, "x"))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"password": None}, "password or stored HA1s"),
        ({"ha1_md5": "ab"}, "password or stored HA1s"),
        ({"registrar": "tel:+15550100"}, "not a SIP URI"),
        ({"aor": "nonsense"}, "acme"),
        ({"contact_user": "a b"}, "contact_user"),
        ({"expires": 0}, "expires"),
        ({"retry_min": 0.0}, "retry_min"),
        ({"retry_min": 10.0, "retry_max": 5.0}, "retry_min"),
        ({"keepalive": -1.0}, "keepalive"),
    ],
)
def test_settings_are_checked(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(BASE, **changes)


# --- 200 and the refresh ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("granted", "refresh_after"),
    [(3600, 3540.0), (600, 540.0), (120, 60.0), (100, 50.0), (60, 30.0), (1, 0.5)],
)
def test_refresh_comes_half_way_for_short_grants_a_minute_early_for_long_ones(
    granted: int, refresh_after: float
) -> None:
    client = make_client()
    request = register_of(client.start(10.0))
    # Counted from when the REGISTER was sent (10.0), not from the 200 (10.25).
    actions = client.on_response(ok(request, granted), 10.25)
    assert actions == [
        StateChanged(state=State.REGISTERED, status=200, reason="OK"),
        ArmTimer(at=10.0 + refresh_after),
    ]
    assert client.on_timer(10.0 + refresh_after - 0.001)[:1] == [ArmTimer(at=10.0 + refresh_after)]
    refresh = register_of(client.on_timer(10.0 + refresh_after))
    assert refresh.headers.get("expires") == "3600"  # we ask for what we want each time
    assert client.deadline is None
    # The refreshed grant counts from the refresh's send time; no StateChanged: still registered.
    later = client.on_response(ok(refresh, granted), 10.0 + refresh_after + 0.125)
    assert later == [ArmTimer(at=10.0 + 2 * refresh_after)]


def test_a_200_later_than_the_refresh_instant_refreshes_at_once() -> None:
    client = make_client()
    request = register_of(client.start(0.0))
    assert timer_of(client.on_response(ok(request, 60), 31.0)) == ArmTimer(at=31.0)
    assert register_of(client.on_timer(31.0)).cseq.number == 2


def test_grant_comes_from_our_contact_not_the_others_nor_the_expires_header() -> None:
    client = make_client()
    request = register_of(client.start(0.0))
    client.on_response(ok(request, 1800, ("Expires", "900")), 0.0)
    assert client.deadline == 1740.0
    assert client.snapshot(0.0, WALL)["expires"] == 1800


def test_grant_falls_back_to_the_expires_header_then_to_what_we_asked() -> None:
    client = make_client(expires=600)
    request = register_of(client.start(0.0))
    client.on_response(ok(request, None, ("Expires", "300")), 0.0)
    assert client.deadline == 240.0
    refresh = register_of(client.on_timer(240.0))
    client.on_response(ok(refresh, None), 240.0)
    assert client.deadline == 240.0 + 540.0


def test_our_contact_is_found_with_its_default_port_and_escaped_user() -> None:
    client = make_client(contact_user="trunk%2Dacme")
    request = register_of(client.start(0.0))
    contacts = [
        ("Contact", "<tel:+15550100>;expires=1"),  # not a SIP URI
        ("Contact", "<sip:203.0.113.5>;expires=2"),  # no user part
        ("Contact", "<sip:trunk-acme@203.0.113.5:5061>;expires=3"),  # another port
        ("Contact", "<sip:trunk-acme@203.0.113.6>;expires=3"),  # another host
        ("Contact", "<sip:trunk-acme@203.0.113.5>;expires=4"),  # ours: 5060 by default
    ]
    client.on_response(respond(request, 200, *contacts), 0.0)
    assert client.snapshot(0.0, WALL)["expires"] == 4


@pytest.mark.parametrize(
    ("contacts", "detail"),
    [
        ([("Contact", f"<{CONTACT}>;expires=0")], "binding granted for 0 seconds"),
        ([("Contact", f"<sip:{USER}@198.51.100.9:5060>;expires=60")], NOT_OURS),
        ([], NOT_OURS),
        ([("Contact", "<sip:bad uri>"), ("Contact", "<sip::>"), ("Contact", "<<")], NOT_OURS),
    ],
)
def test_an_unusable_200_is_a_failure(contacts: list[tuple[str, str]], detail: str) -> None:
    client = make_client()
    request = register_of(client.start(0.0))
    response = Response(200, headers=request.headers.copy())
    response.headers.remove("contact")
    for name, value in contacts:
        response.headers.add(name, value)
    actions = client.on_response(response, 0.5)
    assert client.state is State.FAILING
    assert actions == [
        StateChanged(state=State.FAILING, status=200, reason="OK", detail=detail),
        ArmTimer(at=5.5),
    ]


# --- digest -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "challenge_header", "answer_header"),
    [
        (401, "WWW-Authenticate", "Authorization"),
        (407, "Proxy-Authenticate", "Proxy-Authorization"),
    ],
)
def test_a_challenge_is_answered_at_once(
    status: int, challenge_header: str, answer_header: str
) -> None:
    client = make_client()
    first = register_of(client.start(0.0))
    actions = client.on_response(respond(first, status, www(header=challenge_header)), 0.2)
    assert len(actions) == 1  # no state change, no timer: the answer is in flight
    second = register_of(actions)
    assert_answers(second, nonce="n1", nc=1, header=answer_header)
    assert credentials(second, answer_header).cnonce  # from the IdSource
    assert credentials(second, answer_header).qop is Qop.AUTH
    client.on_response(ok(second), 0.4)
    assert client.state is State.REGISTERED
    assert client.deadline == 0.2 + 3540  # from the answer's send time


def test_a_407_then_a_401_are_both_answered_and_both_kept() -> None:
    client = make_client()
    first = register_of(client.start(0.0))
    second = register_of(
        client.on_response(respond(first, 407, www(header="Proxy-Authenticate")), 0)
    )
    third = register_of(client.on_response(respond(second, 401, www(nonce="n2")), 0))
    assert_answers(third, nonce="n1", nc=2, header="Proxy-Authorization")
    assert_answers(third, nonce="n2", nc=1)
    client.on_response(ok(third), 0)
    assert client.state is State.REGISTERED


def test_sha256_is_preferred_when_offered_after_md5() -> None:
    client = make_client()
    first = register_of(client.start(0.0))
    offer = (www(nonce="n1"), www(nonce="n1", algorithm=Algorithm.SHA256))
    second = register_of(client.on_response(respond(first, 401, *offer), 0))
    assert_answers(second, nonce="n1", nc=1, algorithm=Algorithm.SHA256)


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_a_stored_ha1_answers_its_own_algorithm(algorithm: Algorithm) -> None:
    ha1 = compute_ha1(USER, REALM, PASSWORD, algorithm)
    field = "ha1_md5" if algorithm is Algorithm.MD5 else "ha1_sha256"
    secret: dict[str, Any] = {field: ha1}
    client = make_client(password=None, realm=REALM, **secret)
    first = register_of(client.start(0.0))
    offer = (www(algorithm=Algorithm.SHA256), www(algorithm=Algorithm.MD5))
    second = register_of(client.on_response(respond(first, 401, *offer), 0))
    assert_answers(second, nonce="n1", nc=1, algorithm=algorithm)


def test_no_qop_is_answered_in_rfc2069_form_and_not_reused() -> None:
    client = make_client()
    first = register_of(client.start(0.0))
    second = register_of(client.on_response(respond(first, 401, www(qop=())), 0))
    assert_answers(second, nonce="n1", nc=None)
    client.on_response(ok(second, 60), 0)
    refresh = register_of(client.on_timer(30.0))
    assert "authorization" not in refresh.headers  # a reused nonce without nc is a replay


def test_a_second_challenge_after_our_answer_means_a_wrong_password() -> None:
    client = make_client()
    first = register_of(client.start(0.0))
    second = register_of(client.on_response(respond(first, 401, www()), 0.0))
    actions = client.on_response(respond(second, 401, www(nonce="n2")), 0.3)
    assert actions == [
        StateChanged(
            state=State.FAILING, status=401, reason="Unauthorized", detail="credentials refused"
        ),
        ArmTimer(at=5.3),
    ]


def test_a_stale_challenge_after_our_answer_is_answered_with_the_new_nonce() -> None:
    client = make_client()
    first = register_of(client.start(0.0))
    second = register_of(client.on_response(respond(first, 401, www()), 0.0))
    third = register_of(client.on_response(respond(second, 401, www(nonce="n2", stale=True)), 0))
    assert_answers(third, nonce="n2", nc=1)
    client.on_response(ok(third), 0)
    assert client.state is State.REGISTERED


def test_a_registrar_that_says_stale_forever_is_a_failure() -> None:
    client = make_client()
    request = register_of(client.start(0.0))
    for n in range(MAX_FOLLOW_UPS):
        request = register_of(
            client.on_response(respond(request, 401, www(nonce=f"s{n}", stale=True)), 0)
        )
    actions = client.on_response(respond(request, 401, www(nonce="last", stale=True)), 0)
    assert states_of(actions)[0].detail == "too many challenges"
    assert client.state is State.FAILING


@pytest.mark.parametrize(
    ("offer", "detail"),
    [
        ((), "no digest challenge"),
        ((("WWW-Authenticate", 'Basic realm="x"'),), "unusable challenge"),
        ((("WWW-Authenticate", "Digest ,,,"),), "unusable challenge"),
        ((www(algorithm=Algorithm.MD5, realm="elsewhere.example"),), "challenge for realm"),
        (
            (("WWW-Authenticate", f'Digest realm="{REALM}", nonce="n", algorithm=MD5-sess'),),
            "unusable challenge: unsupported digest algorithm",
        ),
        (
            (("WWW-Authenticate", f'Digest realm="{REALM}", nonce="n", algorithm=SHA-512-256'),),
            "unusable challenge: unsupported digest algorithm",
        ),
    ],
)
def test_a_challenge_we_cannot_answer_is_a_failure(
    offer: tuple[tuple[str, str], ...], detail: str
) -> None:
    client = make_client(realm=REALM)
    request = register_of(client.start(0.0))
    actions = client.on_response(respond(request, 401, *offer), 1.0)
    [changed] = states_of(actions)
    assert (changed.state, changed.status) == (State.FAILING, 401)
    assert changed.detail.startswith(detail)
    assert timer_of(actions) == ArmTimer(at=6.0)
    assert not any(isinstance(a, SendRegister) for a in actions)


def test_an_ha1_for_the_other_algorithm_cannot_answer() -> None:
    ha1 = compute_ha1(USER, REALM, PASSWORD, Algorithm.SHA256)
    client = make_client(password=None, ha1_sha256=ha1)
    request = register_of(client.start(0.0))
    actions = client.on_response(respond(request, 401, www(algorithm=Algorithm.MD5)), 0)
    assert states_of(actions)[0].detail == "no secret for MD5"


def test_a_challenge_with_control_characters_is_not_echoed() -> None:
    client = make_client()
    request = register_of(client.start(0.0))
    response = Response(401, headers=request.headers.copy())
    response.headers.add("WWW-Authenticate", f'Digest realm="{REALM}", nonce="a\x01b"')
    actions = client.on_response(response, 0)
    assert states_of(actions)[0].detail == "challenge with characters we cannot echo"


def test_the_first_usable_challenge_wins_over_a_refused_realm() -> None:
    client = make_client(realm=REALM)
    request = register_of(client.start(0.0))
    offer = (www(realm="evil.example", algorithm=Algorithm.SHA256), www())
    answer = register_of(client.on_response(respond(request, 401, *offer), 0))
    assert_answers(answer, nonce="n1", nc=1)


def test_refresh_sends_the_last_credentials_with_the_next_nc() -> None:
    client = make_client()
    registered(client, 0.0, granted=120)
    refresh = register_of(client.on_timer(60.0))
    assert_answers(refresh, nonce="n1", nc=2)
    client.on_response(ok(refresh, 120), 60.1)
    again = register_of(client.on_timer(120.0))
    assert_answers(again, nonce="n1", nc=3)
    cnonces = {credentials(refresh).cnonce, credentials(again).cnonce}
    assert len(cnonces) == 2


@pytest.mark.parametrize("stale", [True, False])
def test_a_challenge_to_pre_emptive_credentials_is_answered_at_once(stale: bool) -> None:
    client = make_client()
    registered(client, 0.0, granted=120)
    refresh = register_of(client.on_timer(60.0))
    answer = register_of(
        client.on_response(respond(refresh, 401, www(nonce="n2", stale=stale)), 60)
    )
    assert_answers(answer, nonce="n2", nc=1)
    client.on_response(ok(answer, 120), 60.2)
    assert client.state is State.REGISTERED
    assert client.deadline == 120.0


def test_the_same_nonce_challenged_again_continues_its_nc() -> None:
    client = make_client()
    registered(client, 0.0, granted=120)
    refresh = register_of(client.on_timer(60.0))  # nc=2, pre-emptive
    answer = register_of(client.on_response(respond(refresh, 401, www(nonce="n1")), 60))
    assert_answers(answer, nonce="n1", nc=3)


def test_a_failure_forgets_the_credentials() -> None:
    client = make_client()
    registered(client, 0.0, granted=120)
    refresh = register_of(client.on_timer(60.0))
    client.on_response(respond(refresh, 500), 60.0)
    retry = register_of(client.on_timer(client.deadline or 0.0))
    assert "authorization" not in retry.headers


# --- 423 ----------------------------------------------------------------------------------


def test_423_asks_again_with_min_expires_and_keeps_it_for_refreshes() -> None:
    client = make_client(expires=60)
    first = register_of(client.start(0.0))
    second = register_of(client.on_response(respond(first, 423, ("Min-Expires", "300")), 0.25))
    assert second.headers.get("expires") == "300"
    assert second.headers.get_all("contact") == [f"<{CONTACT}>;expires=300"]
    client.on_response(ok(second, None), 0.5)  # no expires anywhere: what we asked
    assert client.deadline == 240.25
    refresh = register_of(client.on_timer(240.25))
    assert refresh.headers.get("expires") == "300"


def test_423_after_an_answered_challenge_resends_the_credentials_pre_emptively() -> None:
    client = make_client(expires=60)
    first = register_of(client.start(0.0))
    second = register_of(client.on_response(respond(first, 401, www()), 0))
    third = register_of(client.on_response(respond(second, 423, ("Min-Expires", "120")), 0))
    assert_answers(third, nonce="n1", nc=2)


@pytest.mark.parametrize("min_expires", [None, "3600", "60", "soon"])
def test_423_without_a_larger_min_expires_is_a_failure(min_expires: str | None) -> None:
    client = make_client()
    request = register_of(client.start(0.0))
    headers = () if min_expires is None else (("Min-Expires", min_expires),)
    actions = client.on_response(respond(request, 423, *headers), 0.0)
    assert states_of(actions) == [
        StateChanged(
            state=State.FAILING,
            status=423,
            reason="Interval Too Brief",
            detail="423 without a larger Min-Expires",
        )
    ]


def test_a_registrar_that_raises_min_expires_forever_is_a_failure() -> None:
    client = make_client(expires=60)
    request = register_of(client.start(0.0))
    for n in range(MAX_FOLLOW_UPS):
        response = respond(request, 423, ("Min-Expires", str(61 + n)))
        request = register_of(client.on_response(response, 0))
    actions = client.on_response(respond(request, 423, ("Min-Expires", "999")), 0)
    assert states_of(actions)[0].detail == "too many re-sends"


# --- failures and back-off ----------------------------------------------------------------


def test_backoff_doubles_from_retry_min_to_retry_max_with_jitter() -> None:
    rng = Jitter(1.0, 0.5, 1.0, 0.0, 1.0, 1.0, 1.0, 0.5)
    client = make_client(rng=rng, retry_min=5.0, retry_max=60.0)
    request = register_of(client.start(0.0))
    now = 0.0
    waits = []
    for _ in range(8):
        actions = client.on_response(respond(request, 503), now)
        timer = timer_of(actions)
        assert isinstance(timer, ArmTimer)
        waits.append(timer.at - now)
        assert client.on_timer(timer.at - 0.5) == [ArmTimer(at=timer.at)]  # early: nothing due
        now = timer.at
        request = register_of(client.on_timer(now))
        assert client.deadline is None
    # min(60, 5 * 2**(k-1)) = 5, 10, 20, 40, 60, 60, ..., times 0.5 + 0.5 * fraction.
    assert waits == [5.0, 7.5, 20.0, 20.0, 60.0, 60.0, 60.0, 45.0]
    assert rng.bounds == [(0.5, 1.0)] * 8
    assert client.snapshot(now, WALL)["consecutive_failures"] == 8


@pytest.mark.parametrize("status", [302, 403, 404, 408, 480, 486, 500, 503, 504, 600, 603])
def test_every_other_final_response_is_a_failure(status: int) -> None:
    client = make_client()
    request = register_of(client.start(0.0))
    actions = client.on_response(respond(request, status), 1.0)
    assert [(s.state, s.status) for s in states_of(actions)] == [(State.FAILING, status)]
    assert timer_of(actions) == ArmTimer(at=6.0)
    assert client.state is State.FAILING


def test_failing_keeps_the_state_and_logs_every_failure() -> None:
    client = make_client()
    request = register_of(client.start(0.0))
    first = client.on_response(respond(request, 403), 0.0)
    retry = register_of(client.on_timer(5.0))
    second = client.on_response(respond(retry, 404), 5.0)
    assert [(s.state, s.status, s.reason) for s in states_of(first + second)] == [
        (State.FAILING, 403, "Forbidden"),
        (State.FAILING, 404, "Not Found"),
    ]
    assert timer_of(second) == ArmTimer(at=15.0)


def test_success_resets_the_failure_count() -> None:
    client = make_client()
    request = register_of(client.start(0.0))
    client.on_response(respond(request, 500), 0.0)
    request = register_of(client.on_timer(5.0))
    client.on_response(respond(request, 500), 5.0)
    request = register_of(client.on_timer(15.0))
    actions = client.on_response(ok(request, 120), 15.0)
    assert actions[0] == StateChanged(state=State.REGISTERED, status=200, reason="OK")
    assert client.snapshot(15.0, WALL)["consecutive_failures"] == 0
    refresh = register_of(client.on_timer(75.0))
    assert timer_of(client.on_response(respond(refresh, 500), 75.0)) == ArmTimer(at=80.0)


@pytest.mark.parametrize(
    ("status", "retry_after", "wait"),
    [
        (503, "120", 120.0),
        (500, "30 (maintenance);duration=60", 30.0),
        (480, "7", 7.0),
        (503, "86400", 300.0),  # capped at retry_max
        (503, "0", 5.0),  # zero: the back-off, not a busy loop
        (503, "later", 5.0),
    ],
)
def test_retry_after_replaces_the_backoff(status: int, retry_after: str, wait: float) -> None:
    client = make_client()
    request = register_of(client.start(0.0))
    actions = client.on_response(respond(request, status, ("Retry-After", retry_after)), 2.0)
    assert timer_of(actions) == ArmTimer(at=2.0 + wait)


@pytest.mark.parametrize(
    ("status", "reason", "detail"),
    [(408, "Request Timeout", "no response"), (503, "Service Unavailable", "transport error")],
)
def test_transaction_failures_back_off(status: int, reason: str, detail: str) -> None:
    client = make_client()
    register_of(client.start(0.0))
    actions = client.on_failure(status, 32.0, cseq=1)
    assert actions == [
        StateChanged(state=State.FAILING, status=status, reason=reason, detail=detail),
        ArmTimer(at=37.0),
    ]
    assert client.on_failure(status, 33.0) == []  # nothing in flight


def test_a_failed_refresh_leaves_the_grant_visible_until_it_runs_out() -> None:
    client = make_client()
    request = register_of(client.start(0.0))
    client.on_response(ok(request, 120), 0.0)
    register_of(client.on_timer(60.0))
    client.on_failure(408, 92.0)
    snapshot = client.snapshot(100.0, WALL)
    assert snapshot["state"] == "failing"
    assert snapshot["registered_until"] == WALL + 120.0
    assert snapshot["next_attempt"] == WALL + 97.0
    assert client.snapshot(120.0, WALL)["registered_until"] is None


# --- keep-alives --------------------------------------------------------------------------


@pytest.mark.parametrize("transport", list(Transport))
def test_keepalives_share_the_one_timer_with_the_refresh(transport: Transport) -> None:
    client = make_client(keepalive=25.0, transport=transport)
    request = register_of(client.start(0.0))
    registering = client.on_response(ok(request, 120, contact=client.contact), 0.0)
    assert timer_of(registering) == ArmTimer(at=25.0)
    assert client.on_timer(25.0) == [SendKeepAlive(data=b"\r\n\r\n"), ArmTimer(at=50.0)]
    assert client.on_timer(50.0) == [SendKeepAlive(data=KEEPALIVE), ArmTimer(at=60.0)]
    # The refresh at 60 comes first; the REGISTER stands in for a keep-alive.
    actions = client.on_timer(60.0)
    refresh = register_of(actions)
    assert timer_of(actions) == ArmTimer(at=85.0)  # keep-alives go on while it is in flight
    assert client.on_timer(85.0) == [SendKeepAlive(data=KEEPALIVE), ArmTimer(at=110.0)]
    # The 200 restarts the keep-alive interval and sets the next refresh (60 + 60 = 120).
    refreshed = client.on_response(ok(refresh, 120, contact=client.contact), 86.0)
    assert timer_of(refreshed) == ArmTimer(at=111.0)
    assert client.on_timer(111.0) == [SendKeepAlive(data=KEEPALIVE), ArmTimer(at=120.0)]


def test_a_keepalive_due_with_the_refresh_gives_way_to_it() -> None:
    client = make_client(keepalive=30.0)
    request = register_of(client.start(0.0))
    client.on_response(ok(request, 120), 0.0)
    client.on_timer(30.0)
    actions = client.on_timer(60.0)  # both due at 60
    assert [type(a) for a in actions] == [SendRegister, ArmTimer]
    assert timer_of(actions) == ArmTimer(at=90.0)


def test_no_keepalives_while_failing() -> None:
    client = make_client(keepalive=10.0)
    request = register_of(client.start(0.0))
    client.on_response(ok(request, 120), 0.0)
    refresh = register_of(client.on_timer(60.0))
    actions = client.on_response(respond(refresh, 503), 61.0)
    assert timer_of(actions) == ArmTimer(at=66.0)  # the retry, not the keep-alive at 70


# --- stop ---------------------------------------------------------------------------------


def test_stop_unregisters_and_then_says_stopped() -> None:
    client = make_client(keepalive=30.0)
    registered(client, 0.0)
    actions = client.stop(100.0)
    assert actions[0] == StateChanged(state=State.UNREGISTERING, status=None, reason="")
    assert timer_of(actions) == DisarmTimer()
    request = register_of(actions)
    assert request.headers.get("expires") == "0"
    assert request.headers.get_all("contact") == [f"<{CONTACT}>;expires=0"]
    assert_answers(request, nonce="n1", nc=2)  # pre-emptive: one round trip
    assert client.stop(100.1) == []
    assert client.on_timer(120.0) == []
    done = client.on_response(respond(request, 200), 100.2)
    assert done == [StateChanged(state=State.STOPPED, status=200, reason="OK"), Stopped()]
    assert client.state is State.STOPPED
    assert client.deadline is None
    assert client.start(200.0) == []


def test_stop_answers_a_challenge_and_stops_on_the_second() -> None:
    client = make_client()
    request = register_of(client.start(0.0))
    client.on_response(ok(request, 3600), 0.0)
    unregister = register_of(client.stop(10.0))
    answer = register_of(client.on_response(respond(unregister, 401, www()), 10.0))
    assert answer.headers.get("expires") == "0"
    assert_answers(answer, nonce="n1", nc=1)
    actions = client.on_response(respond(answer, 401, www(nonce="n2")), 10.1)
    assert actions == [
        StateChanged(
            state=State.STOPPED, status=401, reason="Unauthorized", detail="credentials refused"
        ),
        Stopped(),
    ]


@pytest.mark.parametrize("status", [423, 500, 503, 404])
def test_stop_gives_up_on_any_other_response_without_retrying(status: int) -> None:
    client = make_client()
    registered(client)
    unregister = register_of(client.stop(10.0))
    actions = client.on_response(respond(unregister, status, ("Retry-After", "5")), 10.0)
    assert [type(a) for a in actions] == [StateChanged, Stopped]
    assert client.deadline is None


def test_stop_ends_on_a_timeout_too() -> None:
    client = make_client()
    registered(client)
    unregister = register_of(client.stop(10.0))
    actions = client.on_failure(408, 42.0, cseq=unregister.cseq.number)
    assert actions == [
        StateChanged(
            state=State.STOPPED, status=408, reason="Request Timeout", detail="no response"
        ),
        Stopped(),
    ]


def test_stop_while_registering_unregisters_and_ignores_the_old_transaction() -> None:
    client = make_client()
    first = register_of(client.start(0.0))
    unregister = register_of(client.stop(1.0))
    assert unregister.cseq.number == 2
    assert client.on_response(ok(first), 1.1) == []
    assert client.on_failure(408, 32.0, cseq=1) == []
    assert client.state is State.UNREGISTERING
    assert [type(a) for a in client.on_response(respond(unregister, 200), 2.0)] == [
        StateChanged,
        Stopped,
    ]


def test_stop_when_never_registered_stops_at_once() -> None:
    client = make_client()
    assert client.stop(0.0) == [
        StateChanged(state=State.STOPPED, status=None, reason=""),
        Stopped(),
    ]
    assert client.start(1.0) == []


def test_stop_while_failing_unregisters_only_a_grant_that_may_still_hold() -> None:
    client = make_client()
    request = register_of(client.start(0.0))
    client.on_response(respond(request, 403), 0.0)
    actions = client.stop(1.0)  # never registered: nothing to remove
    assert actions == [
        StateChanged(state=State.STOPPED, status=403, reason="Forbidden", detail=""),
        DisarmTimer(),
        Stopped(),
    ]
    client = make_client()
    request = register_of(client.start(0.0))
    client.on_response(ok(request, 120), 0.0)
    client.on_failure(408, 60.0 + 32.0, cseq=register_of(client.on_timer(60.0)).cseq.number)
    assert register_of(client.stop(100.0)).headers.get("expires") == "0"  # grant until 120


# --- stray input --------------------------------------------------------------------------


def test_responses_to_other_requests_are_ignored() -> None:
    client = make_client()
    first = register_of(client.start(0.0))
    second = register_of(client.on_response(respond(first, 401, www()), 0.0))
    assert client.on_response(ok(first), 0.1) == []  # an old CSeq
    other_call = respond(second, 200)
    other_call.headers.set("Call-ID", "someone-else@example.com")
    assert client.on_response(other_call, 0.1) == []
    options = respond(second, 200)
    options.headers.set("CSeq", "2 OPTIONS")
    assert client.on_response(options, 0.1) == []
    assert client.on_response(respond(second, 180), 0.1) == []  # provisional
    broken = Response(200, headers=Headers([("CSeq", "what")]))
    assert client.on_response(broken, 0.1) == []
    assert client.on_failure(408, 32.0, cseq=1) == []
    assert client.snapshot(0.1, WALL)["state"] == "registering"
    client.on_response(ok(second), 0.2)
    assert client.state is State.REGISTERED
    assert client.on_response(ok(second), 0.3) == []  # nothing in flight any more


def test_an_early_or_stray_timer_rearms_what_is_due() -> None:
    client = make_client()
    assert client.on_timer(5.0) == []  # idle
    request = register_of(client.start(0.0))
    assert client.on_timer(1.0) == []  # in flight: nothing to do, nothing to arm
    client.on_response(ok(request, 120), 0.0)
    assert client.on_timer(59.0) == [ArmTimer(at=60.0)]


# --- snapshot -----------------------------------------------------------------------------


def test_snapshot_reports_state_codes_and_wall_clock_instants() -> None:
    client = make_client()
    idle = client.snapshot(0.0, WALL)
    assert idle == {
        "trunk": "acme",
        "state": "idle",
        "registrar": f"sip:{REALM}",
        "aor": f"sip:{USER}@{REALM}",
        "contact": CONTACT,
        "transport": "UDP",
        "last_status": None,
        "last_reason": None,
        "detail": "",
        "expires": None,
        "registered_until": None,
        "next_attempt": None,
        "request_in_flight": False,
        "consecutive_failures": 0,
    }
    request = register_of(client.start(10.0))
    assert client.snapshot(10.0, WALL)["request_in_flight"] is True
    client.on_response(respond(request, 503, reason="Out To Lunch"), 10.5)
    failing = client.snapshot(11.0, WALL)
    assert (failing["state"], failing["last_status"], failing["last_reason"]) == (
        "failing",
        503,
        "Out To Lunch",
    )
    assert failing["next_attempt"] == WALL + 15.5
    assert failing["consecutive_failures"] == 1
    retry = register_of(client.on_timer(15.5))
    assert client.snapshot(15.5, WALL)["next_attempt"] is None
    client.on_response(ok(retry, 600), 16.0)
    registered_ = client.snapshot(20.0, WALL)
    assert registered_["state"] == "registered"
    assert registered_["registered_until"] == WALL + 615.5
    assert registered_["next_attempt"] == WALL + 555.5
    assert registered_["expires"] == 600
    assert registered_["last_reason"] == "OK"


# --- properties ---------------------------------------------------------------------------

_OURS_60 = ("Contact", f"<{CONTACT}>;expires=60")
# What providers say, one typical response per entry, to drive the machine deep.
_TYPICAL: list[tuple[int, list[tuple[str, str]]]] = [
    (200, [_OURS_60]),
    (200, [("Contact", f"<{CONTACT}>"), ("Expires", "120")]),
    (200, [("Contact", f"<{CONTACT}>;expires=0")]),
    (200, []),
    (401, [www()]),
    (401, [www(nonce="n2")]),
    (401, [www(nonce="n3", stale=True)]),
    (401, [www(algorithm=Algorithm.MD5), www(algorithm=Algorithm.SHA256)]),
    (401, [www(qop=())]),
    (401, [www(realm="elsewhere.example")]),
    (401, [("WWW-Authenticate", "Digest nonsense")]),
    (401, []),
    (407, [www(header="Proxy-Authenticate")]),
    (407, [www(header="Proxy-Authenticate", nonce="p2", stale=True)]),
    (423, [("Min-Expires", "7200")]),
    (423, [("Min-Expires", "x")]),
    (403, []),
    (404, []),
    (408, []),
    (480, [("Retry-After", "30")]),
    (503, [("Retry-After", "0")]),
    (500, []),
    (600, []),
    (302, []),
    (180, []),
]
# And any status with any mix of headers, for what no provider should say.
_ODD = st.tuples(
    st.sampled_from([200, 202, 401, 407, 423, 486, 503]),
    st.lists(
        st.sampled_from(
            [
                www(),
                www(header="Proxy-Authenticate"),
                ("Min-Expires", "99999999999"),
                ("Retry-After", "4294967296"),
                ("Expires", "0"),
                ("Expires", "-1"),
                _OURS_60,
                ("Contact", "garbage <<"),
                ("Contact", "*"),
            ]
        ),
        max_size=4,
    ),
)
_RESPONSES = st.one_of(st.sampled_from(_TYPICAL), _ODD)
_EVENTS = st.lists(
    st.one_of(
        st.tuples(st.just("response"), _RESPONSES),
        st.tuples(st.just("response"), _RESPONSES),
        st.tuples(st.just("response"), _RESPONSES),
        st.tuples(st.just("old_response"), _RESPONSES),
        st.tuples(st.just("failure"), st.tuples(st.sampled_from([408, 503]), st.just([]))),
        st.tuples(st.just("timer"), st.just((0, []))),
        st.tuples(st.just("timer"), st.just((0, []))),
        st.tuples(st.just("wait"), st.tuples(st.integers(0, 4000), st.just([]))),
        st.tuples(st.just("stop"), st.just((0, []))),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(events=_EVENTS, keepalive=st.sampled_from([0.0, 20.0]), seed=st.integers(0, 99))
def test_any_input_sequence_keeps_one_timer_or_one_request(
    events: list[tuple[str, tuple[int, list[tuple[str, str]]]]], keepalive: float, seed: int
) -> None:
    """Whatever the provider says and whenever timers fire: no exception; the shell's one
    timer is the client's deadline; a live client always has a timer armed or a request in
    flight (so it never stalls); a stopped one has neither; instants never lie in the past."""
    client = make_client(rng=random.Random(seed), keepalive=keepalive)
    now = 0.0
    armed: float | None = None
    requests: list[Request] = []
    stopped = 0

    def run(actions: list[RegistrationAction]) -> None:
        nonlocal armed, stopped
        for action in actions:
            match action:
                case SendRegister(request=request):
                    requests.append(request)
                case ArmTimer(at=at):
                    assert at >= now
                    armed = at
                case DisarmTimer():
                    armed = None
                case Stopped():
                    stopped += 1
                case SendKeepAlive() | StateChanged():
                    pass

    run(client.start(now))
    for kind, (value, headers) in events:
        if kind == "response" and requests:
            run(client.on_response(respond(requests[-1], value, *headers), now))
        elif kind == "old_response" and len(requests) > 1:
            run(client.on_response(respond(requests[-2], value, *headers), now))
        elif kind == "failure":
            run(client.on_failure(value, now))
        elif kind == "timer" and armed is not None:
            now, armed = max(now, armed), None
            run(client.on_timer(now))
        elif kind == "stop":
            run(client.stop(now))
        elif kind == "wait":
            now += value / 10
        assert armed == client.deadline
        if client.state is State.STOPPED:
            assert armed is None
            assert not client.is_in_flight
            assert stopped == 1
        else:
            assert stopped == 0
            assert armed is not None or client.is_in_flight
        assert client.snapshot(now, WALL)["state"] == client.state.value
