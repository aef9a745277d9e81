"""Registration through the switch on a virtual clock: digest, bindings, expiry,
no user enumeration, brute-force blocking, restart."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest
import structlog

from b2bua.config import ListenAddress
from b2bua.events import (
    DatagramReceived,
    DeleteBinding,
    Output,
    SaveBinding,
    SendDatagram,
    StateLoaded,
)
from b2bua.ids import SeededIds
from b2bua.registrar.binding import Binding
from b2bua.registrar.settings import Extension, RegistrarSettings, SecuritySettings
from b2bua.sip.address import Peer, Transport
from b2bua.sip.digest import Algorithm, answer_challenge, parse_challenge
from b2bua.sip.message import Response
from b2bua.sip.parser import parse_message
from b2bua.switch import Switch, SwitchSettings

WALL = 1_800_000_000.0  # wall clock = now + WALL
REALM = "pbx.test"
PHONE = Peer(Transport.UDP, "192.0.2.7", 5062)


def make_switch(
    *,
    algorithms: list[str] | None = None,
    security: SecuritySettings | None = None,
    nonce_lifetime: float = 300.0,
) -> Switch:
    registrar = RegistrarSettings(
        algorithms=algorithms or ["MD5", "SHA-256"],  # type: ignore[arg-type]
        nonce_lifetime=nonce_lifetime,
        min_expires=60,
        max_expires=3600,
        default_expires=600,
    )
    settings = SwitchSettings(
        listen=(ListenAddress(Transport.UDP, "127.0.0.1", 5060),),
        realm=REALM,
        extensions={
            "0101": Extension(name="Mary", password="flowers-0101"),
            "0102": Extension(name="Iris", password="flowers-0102"),
        },
        registrar=registrar,
        security=security or SecuritySettings(max_failures=3, failure_window=60, block_time=300),
    )
    return Switch(
        settings, SeededIds(2), structlog.get_logger(), secret=b"s" * 64, wall_offset=WALL
    )


@dataclass
class Phone:
    """A scripted phone: builds REGISTERs and answers challenges."""

    switch: Switch
    user: str
    password: str
    peer: Peer = PHONE
    call_id: str = "reg-1@192.0.2.7"
    cseq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    branches: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    prefer: Algorithm | None = None

    def register(
        self,
        now: float,
        *,
        contacts: list[str] | None = None,
        expires: int | None = 300,
        authorization: str | None = None,
        to_user: str | None = None,
    ) -> tuple[Response | None, list[Output]]:
        branch = f"z9hG4bK{next(self.branches)}x{self.user}"
        lines = [
            f"REGISTER sip:{REALM} SIP/2.0",
            f"Via: SIP/2.0/UDP {self.peer.host}:{self.peer.port};branch={branch}",
            "Max-Forwards: 70",
            f"From: <sip:{self.user}@{REALM}>;tag=t{self.user}",
            f"To: <sip:{to_user or self.user}@{REALM}>",
            f"Call-ID: {self.call_id}",
            f"CSeq: {next(self.cseq)} REGISTER",
        ]
        default_contact = f"<sip:{self.user}@{self.peer.host}:{self.peer.port}>"
        lines += [
            f"Contact: {c}" for c in (contacts if contacts is not None else [default_contact])
        ]
        if expires is not None:
            lines.append(f"Expires: {expires}")
        if authorization:
            lines.append(f"Authorization: {authorization}")
        data = ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()
        self.switch.fire_timers(now)  # as the driver does: every timer due by now first
        outputs = self.switch.handle(DatagramReceived(data=data, peer=self.peer), now)
        sent = [o for o in outputs if isinstance(o, SendDatagram)]
        if not sent:
            return None, outputs
        response = parse_message(sent[0].data)
        assert isinstance(response, Response)
        return response, outputs

    def answer(
        self, challenge_response: Response, *, password: str | None = None, nc: int = 1
    ) -> str:
        challenges = [
            parse_challenge(v) for v in challenge_response.headers.get_all("www-authenticate")
        ]
        chosen = next(c for c in challenges if self.prefer in (None, c.algorithm))
        return answer_challenge(
            chosen,
            username=self.user,
            password=password or self.password,
            method="REGISTER",
            uri=f"sip:{REALM}",
            cnonce="c0ffee",
            nc=nc,
        )

    def full_register(self, now: float, **kwargs: object) -> tuple[Response, list[Output]]:
        challenge, _ = self.register(now, **kwargs)  # type: ignore[arg-type]
        assert challenge is not None
        assert challenge.status == 401
        response, outputs = self.register(now, authorization=self.answer(challenge), **kwargs)  # type: ignore[arg-type]
        assert response is not None
        return response, outputs


def test_first_register_is_challenged_once_per_algorithm_md5_first() -> None:
    response, _ = Phone(make_switch(), "0101", "flowers-0101").register(0.0)
    assert response is not None
    assert response.status == 401
    challenges = [parse_challenge(v) for v in response.headers.get_all("www-authenticate")]
    assert [c.algorithm for c in challenges] == [Algorithm.MD5, Algorithm.SHA256]
    assert {c.realm for c in challenges} == {REALM}
    assert all(c.qop for c in challenges)


@pytest.mark.parametrize("algorithm", [Algorithm.MD5, Algorithm.SHA256])
def test_register_with_digest_creates_a_binding(algorithm: Algorithm) -> None:
    switch = make_switch()
    phone = Phone(switch, "0101", "flowers-0101", prefer=algorithm)
    response, outputs = phone.full_register(10.0)
    assert response.status == 200
    assert response.headers.get_all("contact") == ["<sip:0101@192.0.2.7:5062>;expires=300"]
    assert "date" in response.headers
    saved = [o.binding for o in outputs if isinstance(o, SaveBinding)]
    assert len(saved) == 1
    assert saved[0].expires_at == WALL + 10.0 + 300
    assert saved[0].source == "udp:192.0.2.7:5062"
    assert switch.snapshot(10.0)["extensions"]["0101"]["registered"] is True


def test_binding_expires_on_the_switch_clock() -> None:
    switch = make_switch()
    Phone(switch, "0101", "flowers-0101").full_register(10.0)
    assert switch.fire_timers(309.9) == []
    outputs = switch.fire_timers(310.0)
    assert DeleteBinding(aor="0101", contact="sip:0101@192.0.2.7:5062") in outputs
    assert switch.snapshot(310.0)["registrations"] == {}


def test_refresh_moves_the_expiry() -> None:
    switch = make_switch()
    phone = Phone(switch, "0101", "flowers-0101")
    phone.full_register(10.0)
    phone.full_register(200.0)
    assert not [o for o in switch.fire_timers(310.0) if isinstance(o, DeleteBinding)]
    assert [o for o in switch.fire_timers(500.0) if isinstance(o, DeleteBinding)]


def _comparable(response: Response) -> list[tuple[str, str]]:
    """Headers that would differ only by the request (tags, Via, Call-ID, CSeq) removed."""
    skip = {"via", "from", "to", "call-id", "cseq"}
    return [(f.key, f.value) for f in response.headers if f.key not in skip]


def test_unknown_user_is_answered_exactly_like_a_wrong_password() -> None:
    switch = make_switch(security=SecuritySettings(max_failures=100))
    real = Phone(switch, "0101", "flowers-0101")
    challenge, _ = real.register(0.0)
    assert challenge is not None
    wrong, _ = real.register(0.0, authorization=real.answer(challenge, password="wrong-pass"))
    ghost = Phone(switch, "0999", "whatever-0999", peer=Peer(Transport.UDP, "192.0.2.8", 5062))
    challenge2, _ = ghost.register(0.0)
    assert challenge2 is not None
    unknown, _ = ghost.register(0.0, authorization=ghost.answer(challenge2))
    assert wrong is not None
    assert unknown is not None
    assert (wrong.status, wrong.reason) == (unknown.status, unknown.reason) == (403, "Forbidden")
    assert _comparable(wrong) == _comparable(unknown)
    # And the challenges themselves look alike for both.
    assert [k for k, _ in _comparable(challenge)] == [k for k, _ in _comparable(challenge2)]


def test_stale_nonce_with_the_right_password_gets_stale_true() -> None:
    switch = make_switch(nonce_lifetime=30)
    phone = Phone(switch, "0101", "flowers-0101")
    challenge, _ = phone.register(0.0)
    assert challenge is not None
    late, _ = phone.register(31.0, authorization=phone.answer(challenge))
    assert late is not None
    assert late.status == 401
    assert all(parse_challenge(v).stale for v in late.headers.get_all("www-authenticate"))
    # The phone retries silently with the new nonce and succeeds.
    ok, _ = phone.register(31.0, authorization=phone.answer(late))
    assert ok is not None
    assert ok.status == 200
    # A wrong password with a stale nonce is not told "stale": it is a failure.
    bad, _ = phone.register(80.0, authorization=phone.answer(late, password="wrong-pass"))
    assert bad is not None
    assert bad.status == 403


def test_replayed_nonce_count_is_refused() -> None:
    switch = make_switch()
    phone = Phone(switch, "0101", "flowers-0101")
    challenge, _ = phone.register(0.0)
    assert challenge is not None
    authorization = phone.answer(challenge, nc=1)
    first, _ = phone.register(1.0, authorization=authorization)
    assert first is not None
    assert first.status == 200
    replay, outputs = phone.register(2.0, authorization=authorization)
    assert replay is not None
    assert replay.status == 401
    assert not [o for o in outputs if isinstance(o, SaveBinding)]
    again, _ = phone.register(3.0, authorization=phone.answer(challenge, nc=2))
    assert again is not None
    assert again.status == 200


def test_interval_too_brief_gets_423_with_min_expires() -> None:
    response, _ = Phone(make_switch(), "0101", "flowers-0101").full_register(0.0, expires=30)
    assert response.status == 423
    assert response.headers.get("min-expires") == "60"


def test_too_long_expires_is_cut_to_the_maximum_and_missing_gets_the_default() -> None:
    switch = make_switch()
    long, _ = Phone(switch, "0101", "flowers-0101").full_register(0.0, expires=86400)
    assert long.headers.get_all("contact") == ["<sip:0101@192.0.2.7:5062>;expires=3600"]
    other = Phone(switch, "0102", "flowers-0102", call_id="reg-2")
    default, _ = other.full_register(0.0, expires=None)
    assert default.headers.get_all("contact") == ["<sip:0102@192.0.2.7:5062>;expires=600"]


def test_several_contacts_with_q_values_and_expires_params() -> None:
    switch = make_switch()
    phone = Phone(switch, "0101", "flowers-0101")
    contacts = ["<sip:0101@192.0.2.7:5062>;q=0.9", "<sip:0101@192.0.2.7:5064>;expires=120;q=0.5"]
    response, _ = phone.full_register(0.0, contacts=contacts)
    assert response.status == 200
    assert response.headers.get_all("contact") == [
        "<sip:0101@192.0.2.7:5062>;expires=300;q=0.9",
        "<sip:0101@192.0.2.7:5064>;expires=120;q=0.5",
    ]
    assert len(switch.snapshot(0.0)["registrations"]["0101"]) == 2
    # A query (no Contact) lists them, with the time left.
    query, _ = phone.full_register(100.0, contacts=[])
    assert query.headers.get_all("contact") == [
        "<sip:0101@192.0.2.7:5062>;expires=200;q=0.9",
        "<sip:0101@192.0.2.7:5064>;expires=20;q=0.5",
    ]


def test_wildcard_removes_every_binding() -> None:
    switch = make_switch()
    phone = Phone(switch, "0101", "flowers-0101")
    phone.full_register(0.0, contacts=["<sip:0101@192.0.2.7:5062>", "<sip:0101@192.0.2.7:5064>"])
    response, outputs = phone.full_register(5.0, contacts=["*"], expires=0)
    assert response.status == 200
    assert response.headers.get_all("contact") == []
    assert len([o for o in outputs if isinstance(o, DeleteBinding)]) == 2
    bad, _ = phone.full_register(6.0, contacts=["*"], expires=300)
    assert bad.status == 400


def test_expires_zero_removes_one_contact() -> None:
    switch = make_switch()
    phone = Phone(switch, "0101", "flowers-0101")
    phone.full_register(0.0)
    response, outputs = phone.full_register(5.0, expires=0)
    assert response.status == 200
    assert DeleteBinding(aor="0101", contact="sip:0101@192.0.2.7:5062") in outputs


def test_an_extension_may_not_register_another_ones_address() -> None:
    response, _ = Phone(make_switch(), "0101", "flowers-0101").full_register(0.0, to_user="0102")
    assert response.status == 403


def test_out_of_order_cseq_is_refused() -> None:
    switch = make_switch()
    phone = Phone(switch, "0101", "flowers-0101")
    phone.full_register(0.0)
    phone.cseq = itertools.count(1)  # the same Call-ID with an older CSeq
    response, _ = phone.full_register(40.0)
    assert response.status == 400


def test_binding_remembers_where_the_register_really_came_from() -> None:
    switch = make_switch()
    nat = Peer(Transport.UDP, "198.51.100.20", 40001)
    phone = Phone(switch, "0101", "flowers-0101", peer=nat)
    response, outputs = phone.full_register(0.0, contacts=["<sip:0101@10.0.0.5:5062>"])
    assert response.status == 200
    saved = next(o.binding for o in outputs if isinstance(o, SaveBinding))
    assert saved.contact == "sip:0101@10.0.0.5:5062"
    assert saved.source == "udp:198.51.100.20:40001"


def test_brute_force_block_engages_and_lifts_on_the_switch_clock() -> None:
    switch = make_switch()  # 3 failures within 60 s block for 300 s; "drop"
    attacker = Phone(switch, "0101", "guess", peer=Peer(Transport.UDP, "203.0.113.9", 5060))
    for t in (0.0, 1.0, 2.0):
        challenge, _ = attacker.register(t)
        assert challenge is not None
        refused, _ = attacker.register(t, authorization=attacker.answer(challenge))
        assert refused is not None
        assert refused.status == 403
    # Blocked: nothing at all comes back, even the right password.
    assert attacker.register(3.0) == (None, [])
    blocked = switch.snapshot(3.0)["blocked_sources"]
    assert blocked == [{"source": "203.0.113.9", "username": None, "seconds_left": 299.0}]
    legit = Phone(switch, "0101", "flowers-0101", peer=attacker.peer)
    assert legit.register(301.9)[0] is None
    # The block lifts at 302 s (300 s after the third failure).
    response, _ = legit.full_register(302.0)
    assert response.status == 200


def test_failures_outside_the_window_do_not_add_up() -> None:
    switch = make_switch()
    attacker = Phone(switch, "0101", "guess", peer=Peer(Transport.UDP, "203.0.113.9", 5060))
    for t in (0.0, 61.0, 122.0):
        challenge, _ = attacker.register(t)
        assert challenge is not None
        attacker.register(t, authorization=attacker.answer(challenge))
    assert switch.snapshot(123.0)["blocked_sources"] == []


def test_an_office_behind_nat_is_not_locked_out_by_one_bad_phone() -> None:
    switch = make_switch()
    office = Peer(Transport.UDP, "198.51.100.20", 40001)
    Phone(switch, "0102", "flowers-0102", peer=office, call_id="iris").full_register(0.0)
    bad = Phone(switch, "0101", "old-password", peer=Peer(office.transport, office.host, 40002))
    for t in (1.0, 2.0, 3.0):
        challenge, _ = bad.register(t)
        assert challenge is not None
        bad.register(t, authorization=bad.answer(challenge))
    assert switch.snapshot(3.0)["blocked_sources"] == [
        {"source": "198.51.100.20", "username": "0101", "seconds_left": 300.0}
    ]
    # 0101 from the office is blocked (once its credentials name it, even right ones)...
    challenge, _ = bad.register(4.0)
    assert challenge is not None
    assert challenge.status == 401
    assert bad.register(4.0, authorization=bad.answer(challenge, password="flowers-0101")) == (
        None,
        [],
    )
    # ...while 0102 from the same address still registers.
    iris = Phone(switch, "0102", "flowers-0102", peer=office, call_id="iris")
    iris.cseq = itertools.count(10)
    response, _ = iris.full_register(4.0)
    assert response.status == 200


def test_forbidden_block_action_answers_403() -> None:
    switch = make_switch(security=SecuritySettings(max_failures=1, block_action="forbidden"))
    phone = Phone(switch, "0101", "nope-nope")
    challenge, _ = phone.register(0.0)
    assert challenge is not None
    phone.register(0.0, authorization=phone.answer(challenge))
    blocked, _ = phone.register(1.0)
    assert blocked is not None
    assert blocked.status == 403


def test_restart_restores_live_bindings_and_drops_expired_ones() -> None:
    def binding(contact: str, expires_at: float, aor: str = "0101") -> Binding:
        return Binding(
            aor=aor,
            contact=contact,
            expires_at=expires_at,
            registered_at=WALL - 10,
            call_id="c",
            cseq=1,
            source="udp:192.0.2.7:5062",
        )

    switch = make_switch()
    loaded = (
        binding("sip:0101@192.0.2.7:5062", WALL + 100),
        binding("sip:0101@192.0.2.7:5064", WALL - 1),  # expired while we were down
        binding("sip:0777@192.0.2.7:5062", WALL + 100, aor="0777"),  # no such extension now
    )
    assert switch.handle(StateLoaded(bindings=loaded), 0.0) == []
    registrations = switch.snapshot(0.0)["registrations"]
    assert list(registrations) == ["0101"]
    assert [r["contact"] for r in registrations["0101"]] == ["sip:0101@192.0.2.7:5062"]
    assert DeleteBinding(aor="0101", contact="sip:0101@192.0.2.7:5062") in switch.fire_timers(100.0)


def invite(
    switch: Switch,
    now: float,
    *,
    authorization: str | None = None,
    branch: str = "z9hG4bKinv1",
    cseq: int = 1,
) -> Response:
    lines = [
        f"INVITE sip:0102@{REALM} SIP/2.0",
        f"Via: SIP/2.0/UDP {PHONE.host}:{PHONE.port};branch={branch}",
        "Max-Forwards: 70",
        f"From: <sip:0101@{REALM}>;tag=mary",
        f"To: <sip:0102@{REALM}>",
        "Call-ID: call-1@192.0.2.7",
        f"CSeq: {cseq} INVITE",
        f"Contact: <sip:0101@{PHONE.host}:{PHONE.port}>",
    ]
    if authorization:
        lines.append(f"Proxy-Authorization: {authorization}")
    data = ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()
    sent = [
        o
        for o in switch.handle(DatagramReceived(data=data, peer=PHONE), now)
        if isinstance(o, SendDatagram)
    ]
    response = parse_message(sent[0].data)
    assert isinstance(response, Response)
    return response


def test_requests_other_than_register_are_challenged_with_407() -> None:
    switch = make_switch()
    challenge = invite(switch, 0.0)
    assert challenge.status == 407
    assert "www-authenticate" not in challenge.headers
    [first, *_] = [parse_challenge(v) for v in challenge.headers.get_all("proxy-authenticate")]
    answer = answer_challenge(
        first,
        username="0101",
        password="flowers-0101",
        method="INVITE",
        uri=f"sip:0102@{REALM}",
        cnonce="ab",
        nc=1,
    )
    # Authenticated, the call is routed: 0102 exists but no phone of it is registered.
    authenticated = invite(switch, 0.1, authorization=answer, branch="z9hG4bKinv2", cseq=2)
    assert authenticated.status == 480
    wrong = answer_challenge(
        first,
        username="0101",
        password="not-it",
        method="INVITE",
        uri=f"sip:0102@{REALM}",
        cnonce="ab",
        nc=2,
    )
    assert invite(switch, 0.2, authorization=wrong, branch="z9hG4bKinv3", cseq=3).status == 403
