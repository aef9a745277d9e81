"""re-INVITEs in a confirmed dialog (RFC 3261 section 14), received and sent, for both
roles: the leg we answered (UAS) and the leg we placed (UAC). A B2BUA relays hold and
unhold both ways, so every test that does not name a role runs for both."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from b2bua.dialog import ReinviteAccepted as ExportedAccepted
from b2bua.dialog import ReinviteRejected as ExportedRejected
from b2bua.dialog.dialog import DialogError
from b2bua.dialog.invite_session import UacInviteSession, UasInviteSession
from b2bua.dialog.session_events import (
    Answered,
    AnswerReceived,
    CancelTimer,
    EndReason,
    Established,
    OfferReceived,
    ReinviteAccepted,
    ReinviteRejected,
    SendAck,
    SendRequest,
    SendResponse,
    SessionAction,
    SessionState,
    SessionStateError,
    SessionTimer,
    StartTimer,
    Terminated,
)
from b2bua.ids import SeededIds
from b2bua.sip.errors import LocalProtocolError
from b2bua.sip.message import Request, Response
from b2bua.sip.parser import parse_message
from b2bua.transaction.timers import TimerSettings
from tests.unit.dialog.factories import (
    LOCAL,
    OUR_CONTACT,
    carrier_request,
    in_dialog_request,
    reply,
    uac_invite,
    uac_response,
    uas_invite,
    with_body,
)

T1, T2 = 0.5, 4.0
TIMERS = TimerSettings(t1=T1, t2=T2)
SDP = "application/sdp"
OFFER = b"v=0\r\no=alice 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
ANSWER = b"v=0\r\no=bob 2 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
HOLD = b"v=0\r\no=bob 2 3 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\na=sendonly\r\n"
HELD = (
    b"v=0\r\no=alice 1 2 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
    b"a=recvonly\r\n"
)
CREDENTIALS = (
    'Digest username="100", realm="carrier", nonce="n2", uri="sip:gw-a@203.0.113.10:5060", '
    'response="fedcba9876543210fedcba9876543210"'
)
MOVED = "sip:moved@203.0.113.99:5080"

Session = UasInviteSession | UacInviteSession


class PeerRequest(Protocol):
    def __call__(self, method: str, cseq: int, *, contact: str | None = None) -> Request: ...


@dataclass
class Leg:
    """An established session and what its peer looks like from our side."""

    session: Session
    peer: PeerRequest  # builds a request the peer sends in the dialog
    peer_cseq: int  # the CSeq number of the peer's next request
    our_cseq: int  # the CSeq number of our next request
    our_tag: str
    their_tag: str
    remote_target: str
    route_set: list[str] = field(default_factory=list)

    def reinvite(self, n: int = 0, sdp: bytes | None = OFFER) -> Request:
        """The peer's re-INVITE, ``n`` requests after its next one."""
        request = self.peer("INVITE", self.peer_cseq + n, contact=None)
        return request if sdp is None else with_body(request, sdp)

    def ack(self, n: int = 0, sdp: bytes | None = None) -> Request:
        """The peer's ACK for our 2xx to its re-INVITE number ``n``."""
        request = self.peer("ACK", self.peer_cseq + n, contact=None)
        return request if sdp is None else with_body(request, sdp)


def uas_leg() -> Leg:
    session = UasInviteSession(
        with_body(uas_invite(), OFFER),
        local_tag="b-tag",
        local_contact=OUR_CONTACT,
        local_address=LOCAL,
        ids=SeededIds(1),
        timers=TIMERS,
    )
    session.answer(ANSWER, 0.0)
    assert Established() in session.on_ack(in_dialog_request("ACK", 101), 0.1)
    return Leg(
        session=session,
        peer=in_dialog_request,
        peer_cseq=102,
        our_cseq=1,  # 12.1.1: the UAS's local CSeq starts empty
        our_tag="b-tag",
        their_tag="a-tag",
        remote_target="sip:alice@198.51.100.7:5060;transport=udp",
        route_set=["<sip:p2.example.net;lr>", "<sip:p1.example.org;lr;ftag=a-tag>"],
    )


def uac_leg() -> Leg:
    session = UacInviteSession(
        with_body(uac_invite(), OFFER), local_address=LOCAL, ids=SeededIds(2), timers=TIMERS
    )
    actions = session.on_response(with_body(uac_response(200), ANSWER), 0.0)
    assert [type(a) for a in actions] == [SendAck, Answered]
    return Leg(
        session=session,
        peer=carrier_request,
        peer_cseq=1,
        our_cseq=2,  # the INVITE had CSeq 1
        our_tag="our-tag",
        their_tag="fork-a",
        remote_target="sip:gw-a@203.0.113.10:5060",
        route_set=["<sip:near.example.net;lr>", "<sip:far.example.net;lr>"],
    )


@pytest.fixture(params=["uas", "uac"])
def leg(request: pytest.FixtureRequest) -> Leg:
    return uas_leg() if request.param == "uas" else uac_leg()


def state(session: Session) -> SessionState:
    """The state, read through a call so that mypy does not narrow it across steps."""
    return session.state


def outstanding(session: Session) -> bool:
    """``has_reinvite_outstanding``, read through a call (no narrowing across steps)."""
    return session.has_reinvite_outstanding


def one_response(actions: list[SessionAction]) -> Response:
    [action] = actions
    assert isinstance(action, SendResponse)
    return action.response


def one_request(actions: list[SessionAction]) -> Request:
    [action] = actions
    assert isinstance(action, SendRequest)
    return action.request


def edited(response: Response, old: str, new: str) -> Response:
    """``response`` parsed again with ``old`` replaced by ``new`` in its wire form."""
    wire = response.to_bytes()
    assert old.encode() in wire
    message = parse_message(wire.replace(old.encode(), new.encode()))
    assert isinstance(message, Response)
    return message


BOTH_TIMERS = [
    CancelTimer(name=SessionTimer.RETRANSMIT_2XX),
    CancelTimer(name=SessionTimer.ACK_TIMEOUT),
]


def test_new_facts_are_exported() -> None:
    assert ExportedAccepted is ReinviteAccepted
    assert ExportedRejected is ReinviteRejected
    assert EndReason.REMOTE_GONE.value == "remote gone"


# -- receiving a re-INVITE


def test_received_reinvite_2xx_resent_at_t1_doubling_to_t2_until_the_ack(leg: Leg) -> None:
    session = leg.session
    reinvite = leg.reinvite(sdp=HELD)
    assert session.on_reinvite(reinvite, 10.0) == [OfferReceived(sdp=HELD)]
    actions = session.answer_reinvite(HOLD, 10.0)
    ok = one_response(actions[:1])
    assert actions[1:] == [
        StartTimer(name=SessionTimer.RETRANSMIT_2XX, at=10.5),
        StartTimer(name=SessionTimer.ACK_TIMEOUT, at=10.0 + 64 * T1),
    ]
    assert ok.status == 200
    assert ok.cseq == reinvite.cseq
    assert ok.to.tag == leg.our_tag
    assert ok.contacts[0].uri_text == OUR_CONTACT
    assert ok.body == HOLD
    assert ok.content_type == SDP
    assert state(session) is SessionState.WAITING_ACK

    resent_at: list[float] = []
    at = 10.5
    while at < 30.0:
        resend, restart = session.on_timer(SessionTimer.RETRANSMIT_2XX, at)
        assert resend == SendResponse(response=ok)  # the same object: serialised once
        assert isinstance(restart, StartTimer)
        assert restart.name is SessionTimer.RETRANSMIT_2XX
        resent_at.append(at)
        at = restart.at
    # RFC 3261 13.3.1.4: T1 after the first send, then 2*T1, 4*T1, ... capped at T2.
    assert resent_at == [10.5, 11.5, 13.5, 17.5, 21.5, 25.5, 29.5]

    assert session.on_ack(leg.ack(), 30.0) == BOTH_TIMERS  # no Established, no answer
    assert state(session) is SessionState.ESTABLISHED
    assert session.on_timer(SessionTimer.RETRANSMIT_2XX, 33.5) == []  # stale
    assert session.on_timer(SessionTimer.ACK_TIMEOUT, 42.0) == []
    assert session.on_ack(leg.ack(), 30.5) == []  # a retransmitted ACK


def test_received_reinvite_2xx_never_acked_ends_with_bye(leg: Leg) -> None:
    session = leg.session
    session.on_reinvite(leg.reinvite(), 10.0)
    session.answer_reinvite(ANSWER, 10.0)
    cancel, bye = session.on_timer(SessionTimer.ACK_TIMEOUT, 42.0)
    assert cancel == CancelTimer(name=SessionTimer.RETRANSMIT_2XX)
    assert isinstance(bye, SendRequest)
    assert bye.request.method == "BYE"
    assert bye.request.uri == leg.remote_target
    assert bye.request.cseq.number == leg.our_cseq
    assert state(session) is SessionState.TERMINATING
    assert session.on_bye_response(reply(bye.request, 200), 42.1) == [
        Terminated(reason=EndReason.ACK_TIMEOUT)
    ]


def test_received_reinvite_without_sdp_offer_in_2xx_answer_in_ack(leg: Leg) -> None:
    session = leg.session
    assert session.on_reinvite(leg.reinvite(sdp=None), 10.0) == [OfferReceived(sdp=None)]
    ok = one_response(session.answer_reinvite(HOLD, 10.0)[:1])
    assert ok.body == HOLD  # our offer
    assert session.on_ack(leg.ack(sdp=HELD), 10.2) == [*BOTH_TIMERS, AnswerReceived(sdp=HELD)]
    assert state(session) is SessionState.ESTABLISHED


def test_received_reinvite_with_sdp_ignores_sdp_in_the_ack(leg: Leg) -> None:
    session = leg.session
    session.on_reinvite(leg.reinvite(sdp=OFFER), 10.0)
    session.answer_reinvite(ANSWER, 10.0)
    assert session.on_ack(leg.ack(sdp=OFFER), 10.2) == BOTH_TIMERS


def test_rejected_received_reinvite_keeps_the_session(leg: Leg) -> None:
    session = leg.session
    reinvite = leg.reinvite()
    session.on_reinvite(reinvite, 10.0)
    response = one_response(session.reject_reinvite(488, 10.1))
    assert response.status == 488
    assert response.cseq == reinvite.cseq
    assert state(session) is SessionState.ESTABLISHED
    assert session.on_reinvite(leg.reinvite(1), 11.0) == [OfferReceived(sdp=OFFER)]


def test_answer_without_a_pending_reinvite_raises(leg: Leg) -> None:
    with pytest.raises(SessionStateError):
        leg.session.answer_reinvite(ANSWER, 1.0)
    with pytest.raises(SessionStateError):
        leg.session.reject_reinvite(488, 1.0)


def test_received_reinvite_refreshes_the_remote_target(leg: Leg) -> None:
    session = leg.session
    reinvite = leg.peer("INVITE", leg.peer_cseq, contact=f"<{MOVED}>")
    session.on_reinvite(reinvite, 10.0)
    assert session.dialog is not None
    assert session.dialog.remote_target == MOVED


def test_received_reinvite_out_of_order_or_after_the_end(leg: Leg) -> None:
    session = leg.session
    session.on_reinvite(leg.reinvite(5), 10.0)
    session.reject_reinvite(488, 10.0)
    with pytest.raises(DialogError) as caught:
        session.on_reinvite(leg.reinvite(4), 10.1)
    assert caught.value.status_hint == 500
    session.on_bye(leg.peer("BYE", leg.peer_cseq + 6), 11.0)
    with pytest.raises(DialogError) as caught:
        session.on_reinvite(leg.reinvite(7), 11.1)
    assert caught.value.status_hint == 481


# -- glare (RFC 3261 section 14.2): 491 while any INVITE is in progress


def test_glare_our_reinvite_outstanding_gets_491(leg: Leg) -> None:
    session = leg.session
    ours = one_request(session.send_reinvite(HOLD, 5.0))
    theirs = leg.reinvite()
    response = one_response(session.on_reinvite(theirs, 5.1))
    assert response.status == 491
    assert response.cseq == theirs.cseq
    # Ours goes on.
    actions = session.on_reinvite_response(reply(ours, 200, sdp=HELD), 5.2)
    assert actions[1:] == [ReinviteAccepted(sdp=HELD, ack_owed=False)]


def test_a_second_reinvite_before_our_answer_gets_500_with_retry_after(leg: Leg) -> None:
    """RFC 3261 section 14.2: "it MUST return a 500 (Server Internal Error) response to
    the second INVITE and MUST include a Retry-After header field with a randomly chosen
    value of between 0 and 10 seconds"."""
    session = leg.session
    first = leg.reinvite()
    assert session.on_reinvite(first, 5.0) == [OfferReceived(sdp=OFFER)]
    second = one_response(session.on_reinvite(leg.reinvite(1), 5.1))
    assert second.status == 500
    retry_after = second.headers.get("retry-after")
    assert retry_after is not None
    assert 0 <= int(retry_after) <= 10
    ok = one_response(session.answer_reinvite(ANSWER, 5.2)[:1])
    assert ok.cseq == first.cseq  # the first one is the one answered


def test_glare_our_2xx_awaiting_its_ack_gets_491(leg: Leg) -> None:
    session = leg.session
    session.on_reinvite(leg.reinvite(), 5.0)
    session.answer_reinvite(ANSWER, 5.0)
    assert one_response(session.on_reinvite(leg.reinvite(1), 5.1)).status == 491
    assert session.on_ack(leg.ack(), 5.2) == BOTH_TIMERS
    assert session.on_reinvite(leg.reinvite(2), 6.0) == [OfferReceived(sdp=OFFER)]


def test_uac_reinvite_before_the_answer_gets_491_and_after_rejection_481() -> None:
    session = UacInviteSession(uac_invite(), local_address=LOCAL, ids=SeededIds(3))
    session.on_response(uac_response(180), 0.0)
    early = carrier_request("INVITE", 1)
    assert one_response(session.on_reinvite(early, 0.5)).status == 491
    session.on_response(uac_response(486), 1.0)
    with pytest.raises(DialogError) as caught:
        session.on_reinvite(carrier_request("INVITE", 2), 1.5)
    assert caught.value.status_hint == 481


def test_uac_reinvite_while_our_initial_ack_is_owed_gets_491() -> None:
    session = UacInviteSession(uac_invite(), local_address=LOCAL, ids=SeededIds(3))
    assert session.on_response(with_body(uac_response(200), OFFER), 0.0) == [Answered(sdp=OFFER)]
    assert one_response(session.on_reinvite(carrier_request("INVITE", 1), 0.1)).status == 491
    with pytest.raises(SessionStateError):
        session.send_reinvite(HOLD, 0.1)
    session.send_ack(ANSWER, 0.2)
    assert session.on_reinvite(carrier_request("INVITE", 2), 0.3) == [OfferReceived(sdp=None)]


# -- sending a re-INVITE


def test_send_reinvite_builds_the_request_in_the_dialog(leg: Leg) -> None:
    session = leg.session
    assert not outstanding(session)
    reinvite = one_request(session.send_reinvite(HOLD, 5.0))
    assert reinvite.method == "INVITE"
    assert reinvite.uri == leg.remote_target
    assert reinvite.headers.get_all("route") == leg.route_set
    assert str(reinvite.cseq) == f"{leg.our_cseq} INVITE"
    assert reinvite.call_id == session.invite.call_id
    assert reinvite.from_.tag == leg.our_tag
    assert reinvite.to.tag == leg.their_tag
    assert [c.uri_text for c in reinvite.contacts] == [OUR_CONTACT]
    assert reinvite.body == HOLD
    assert reinvite.content_type == SDP
    assert reinvite.top_via.branch != session.invite.top_via.branch
    assert reinvite.headers.get("proxy-authorization") is None
    assert outstanding(session)
    assert state(session) is SessionState.ESTABLISHED
    assert session.dialog is not None
    assert session.dialog.local_cseq == leg.our_cseq


def test_2xx_to_our_reinvite_is_acked_and_accepted(leg: Leg) -> None:
    session = leg.session
    reinvite = one_request(session.send_reinvite(HOLD, 5.0))
    assert session.on_reinvite_response(reply(reinvite, 100), 5.05) == []
    assert session.on_reinvite_response(reply(reinvite, 180), 5.1) == []
    ok = reply(reinvite, 200, contact=f"<{MOVED}>", sdp=HELD)
    send_ack, accepted = session.on_reinvite_response(ok, 5.2)
    assert accepted == ReinviteAccepted(sdp=HELD, ack_owed=False)
    assert isinstance(send_ack, SendAck)
    ack = send_ack.request
    assert ack.method == "ACK"
    assert str(ack.cseq) == f"{leg.our_cseq} ACK"
    assert ack.top_via.branch != reinvite.top_via.branch
    assert ack.uri == MOVED  # 12.2.1.2: the 2xx's Contact is the new remote target
    assert ack.headers.get_all("route") == leg.route_set
    assert ack.from_.tag == leg.our_tag
    assert ack.to.tag == leg.their_tag
    assert ack.body == b""
    assert session.dialog is not None
    assert session.dialog.remote_target == MOVED
    assert not outstanding(session)
    # A retransmitted 2xx: the very same ACK, nothing else.
    assert session.on_reinvite_response(ok, 5.7) == [SendAck(request=ack)]
    # The session goes on: the next re-INVITE takes the next CSeq and the new target.
    again = one_request(session.send_reinvite(OFFER, 6.0))
    assert again.cseq.number == leg.our_cseq + 1
    assert again.uri == MOVED


def test_2xx_without_sdp_to_our_offer_is_accepted_without_answer(leg: Leg) -> None:
    reinvite = one_request(leg.session.send_reinvite(HOLD, 5.0))
    actions = leg.session.on_reinvite_response(reply(reinvite, 200), 5.1)
    assert [type(a) for a in actions] == [SendAck, ReinviteAccepted]
    assert actions[1] == ReinviteAccepted(sdp=None, ack_owed=False)


def test_ack_repeats_the_reinvite_credentials(leg: Leg) -> None:
    session = leg.session
    reinvite = one_request(
        session.send_reinvite(HOLD, 5.0, extra_headers=[("Proxy-Authorization", CREDENTIALS)])
    )
    assert reinvite.headers.get("proxy-authorization") == CREDENTIALS
    send_ack, _ = session.on_reinvite_response(reply(reinvite, 200, sdp=HELD), 5.1)
    assert isinstance(send_ack, SendAck)
    assert send_ack.request.headers.get_all("proxy-authorization") == [CREDENTIALS]


def test_uac_reinvite_ack_does_not_copy_the_initial_invites_credentials() -> None:
    # 13.2.2.4: an ACK carries the credentials of the INVITE it acknowledges.
    leg = uac_leg()
    assert leg.session.invite.headers.get("proxy-authorization") is not None
    reinvite = one_request(leg.session.send_reinvite(HOLD, 5.0))
    send_ack, _ = leg.session.on_reinvite_response(reply(reinvite, 200, sdp=HELD), 5.1)
    assert isinstance(send_ack, SendAck)
    assert send_ack.request.headers.get("proxy-authorization") is None


def test_rejected_reinvite_keeps_the_session_and_its_media(leg: Leg) -> None:
    session = leg.session
    reinvite = one_request(session.send_reinvite(HOLD, 5.0))
    rejected = reply(reinvite, 488, contact=f"<{MOVED}>")
    assert session.on_reinvite_response(rejected, 5.1) == [ReinviteRejected(status=488)]
    assert state(session) is SessionState.ESTABLISHED
    assert not outstanding(session)
    assert session.dialog is not None
    assert session.dialog.remote_target == leg.remote_target  # no refresh on a failure
    again = one_request(session.send_reinvite(HOLD, 9.0))
    assert again.cseq.number == leg.our_cseq + 1
    assert session.on_reinvite_response(reply(again, 491), 9.1) == [ReinviteRejected(status=491)]
    assert state(session) is SessionState.ESTABLISHED


def test_481_to_our_reinvite_ends_the_session_at_once(leg: Leg) -> None:
    session = leg.session
    reinvite = one_request(session.send_reinvite(HOLD, 5.0))
    assert session.on_reinvite_response(reply(reinvite, 481), 5.1) == [
        ReinviteRejected(status=481),
        Terminated(reason=EndReason.REMOTE_GONE, status=481),
    ]
    assert session.terminated
    assert session.dialog is not None
    assert session.dialog.is_terminated
    assert session.hang_up(5.2) == []
    with pytest.raises(DialogError) as caught:
        session.on_reinvite(leg.reinvite(), 5.3)
    assert caught.value.status_hint == 481


def test_408_to_our_reinvite_ends_the_session_with_bye(leg: Leg) -> None:
    session = leg.session
    reinvite = one_request(session.send_reinvite(HOLD, 5.0))
    rejected, send_bye = session.on_reinvite_response(reply(reinvite, 408), 5.1)
    assert rejected == ReinviteRejected(status=408)
    assert isinstance(send_bye, SendRequest)
    bye = send_bye.request
    assert bye.method == "BYE"
    assert bye.cseq.number == leg.our_cseq + 1
    assert state(session) is SessionState.TERMINATING
    assert session.on_bye_response(reply(bye, 200), 5.2) == [
        Terminated(reason=EndReason.REMOTE_GONE, status=408)
    ]


def test_reinvite_timeout_ends_the_session_with_bye(leg: Leg) -> None:
    session = leg.session
    session.send_reinvite(HOLD, 5.0)
    rejected, send_bye = session.on_reinvite_failed(37.0)
    assert rejected == ReinviteRejected(status=408)
    assert isinstance(send_bye, SendRequest)
    assert send_bye.request.method == "BYE"
    assert state(session) is SessionState.TERMINATING
    assert session.on_reinvite_failed(37.1) == []
    assert session.on_bye_failed(69.0) == [Terminated(reason=EndReason.REMOTE_GONE, status=408)]


def test_reinvite_failed_without_a_reinvite_does_nothing(leg: Leg) -> None:
    assert leg.session.on_reinvite_failed(5.0) == []
    assert state(leg.session) is SessionState.ESTABLISHED


def test_delayed_offer_reinvite_ack_carries_our_answer(leg: Leg) -> None:
    session = leg.session
    reinvite = one_request(session.send_reinvite(None, 5.0))
    assert reinvite.body == b""
    assert reinvite.headers.get("content-type") is None
    ok = reply(reinvite, 200, sdp=OFFER)
    assert session.on_reinvite_response(ok, 5.1) == [ReinviteAccepted(sdp=OFFER, ack_owed=True)]
    assert outstanding(session)
    assert session.on_reinvite_response(ok, 5.6) == []  # our answer is still awaited
    assert one_response(session.on_reinvite(leg.reinvite(), 5.7)).status == 491
    with pytest.raises(SessionStateError):
        session.send_reinvite(HOLD, 5.8)
    [send_ack] = session.send_reinvite_ack(HOLD, 6.0)
    assert isinstance(send_ack, SendAck)
    ack = send_ack.request
    assert str(ack.cseq) == f"{leg.our_cseq} ACK"
    assert ack.body == HOLD
    assert ack.content_type == SDP
    assert not outstanding(session)
    assert session.on_reinvite_response(ok, 6.1) == [SendAck(request=ack)]
    with pytest.raises(SessionStateError):
        session.send_reinvite_ack(HOLD, 6.2)


def test_send_reinvite_ack_needs_an_answer(leg: Leg) -> None:
    reinvite = one_request(leg.session.send_reinvite(None, 5.0))
    leg.session.on_reinvite_response(reply(reinvite, 200, sdp=OFFER), 5.1)
    with pytest.raises(LocalProtocolError):
        leg.session.send_reinvite_ack(b"", 5.2)


def test_send_reinvite_ack_without_a_delayed_offer_raises(leg: Leg) -> None:
    with pytest.raises(SessionStateError):
        leg.session.send_reinvite_ack(ANSWER, 5.0)
    reinvite = one_request(leg.session.send_reinvite(HOLD, 5.0))
    leg.session.on_reinvite_response(reply(reinvite, 200, sdp=HELD), 5.1)
    with pytest.raises(SessionStateError):
        leg.session.send_reinvite_ack(ANSWER, 5.2)


def test_ack_for_a_repeated_2xx_kept_for_64_t1(leg: Leg) -> None:
    session = leg.session
    reinvite = one_request(session.send_reinvite(HOLD, 4.0))
    ok = reply(reinvite, 200, sdp=HELD)
    send_ack, _ = session.on_reinvite_response(ok, 5.0)
    assert session.on_reinvite_response(ok, 5.0 + 64 * T1) == [send_ack]
    # After Timer M (RFC 6026) no transaction passes it up: one here is our bug.
    with pytest.raises(LocalProtocolError):
        session.on_reinvite_response(ok, 5.0 + 64 * T1 + 0.1)


def test_response_to_another_request_is_refused(leg: Leg) -> None:
    session = leg.session
    with pytest.raises(LocalProtocolError):
        session.on_reinvite_response(uac_response(200, cseq="2 INVITE"), 4.0)  # none sent
    reinvite = one_request(session.send_reinvite(HOLD, 5.0))
    ok = reply(reinvite, 200, sdp=HELD)
    number = leg.our_cseq
    for old, new in [
        (f"{number} INVITE", f"{number + 5} INVITE"),
        (f"{number} INVITE", f"{number} UPDATE"),
        (f"Call-ID: {reinvite.call_id}", "Call-ID: other@192.0.2.1"),
    ]:
        with pytest.raises(LocalProtocolError):
            session.on_reinvite_response(edited(ok, old, new), 5.1)
    assert outstanding(session)  # the refused ones changed nothing
    assert [type(a) for a in session.on_reinvite_response(ok, 5.2)] == [SendAck, ReinviteAccepted]


def test_uac_on_response_routes_reinvite_responses() -> None:
    leg = uac_leg()
    session = leg.session
    assert isinstance(session, UacInviteSession)
    reinvite = one_request(session.send_reinvite(HOLD, 5.0))
    assert session.on_response(reply(reinvite, 180), 5.1) == []
    send_ack, accepted = session.on_response(reply(reinvite, 200, sdp=HELD), 5.2)
    assert accepted == ReinviteAccepted(sdp=HELD, ack_owed=False)
    assert isinstance(send_ack, SendAck)
    assert str(send_ack.request.cseq) == "2 ACK"
    # A retransmission of the initial INVITE's 2xx still gets the initial ACK.
    [initial] = session.on_response(with_body(uac_response(200), ANSWER), 5.3)
    assert isinstance(initial, SendAck)
    assert str(initial.request.cseq) == "1 ACK"
    again = one_request(session.send_reinvite(OFFER, 6.0))
    assert session.on_response(reply(again, 488), 6.1) == [ReinviteRejected(status=488)]
    with pytest.raises(LocalProtocolError):
        session.on_response(uac_response(200, cseq="9 INVITE"), 6.2)


# -- hanging up in the middle of a re-INVITE


def test_hang_up_while_our_reinvite_2xx_awaits_its_ack(leg: Leg) -> None:
    session = leg.session
    session.on_reinvite(leg.reinvite(), 5.0)
    session.answer_reinvite(ANSWER, 5.0)
    assert session.hang_up(5.1) == []
    assert state(session) is SessionState.WAITING_ACK
    cancel_resend, cancel_timeout, send_bye = session.on_ack(leg.ack(), 5.2)
    assert [cancel_resend, cancel_timeout] == BOTH_TIMERS
    assert isinstance(send_bye, SendRequest)
    assert send_bye.request.method == "BYE"
    assert state(session) is SessionState.TERMINATING
    assert session.on_bye_response(reply(send_bye.request, 200), 5.3) == [
        Terminated(reason=EndReason.LOCAL_BYE)
    ]


def test_hang_up_while_our_reinvite_2xx_is_never_acked(leg: Leg) -> None:
    session = leg.session
    session.on_reinvite(leg.reinvite(), 5.0)
    session.answer_reinvite(ANSWER, 5.0)
    assert session.hang_up(5.1) == []
    actions = session.on_timer(SessionTimer.ACK_TIMEOUT, 5.0 + 64 * T1)
    assert one_request(actions[1:]).method == "BYE"
    assert session.hang_up(40.0) == []


def test_hang_up_with_a_received_reinvite_unanswered_sends_487_then_bye(leg: Leg) -> None:
    session = leg.session
    reinvite = leg.reinvite()
    session.on_reinvite(reinvite, 5.0)
    refused, send_bye = session.hang_up(5.1)
    assert isinstance(refused, SendResponse)
    assert refused.response.status == 487
    assert refused.response.cseq == reinvite.cseq
    assert isinstance(send_bye, SendRequest)
    assert send_bye.request.method == "BYE"


def test_hang_up_while_our_reinvite_ack_is_owed_acks_then_byes(leg: Leg) -> None:
    session = leg.session
    reinvite = one_request(session.send_reinvite(None, 5.0))
    ok = reply(reinvite, 200, sdp=OFFER)
    session.on_reinvite_response(ok, 5.1)
    send_ack, send_bye = session.hang_up(5.2)
    assert isinstance(send_ack, SendAck)
    assert str(send_ack.request.cseq) == f"{leg.our_cseq} ACK"
    assert send_ack.request.body == b""
    assert isinstance(send_bye, SendRequest)
    assert send_bye.request.method == "BYE"
    assert session.on_reinvite_response(ok, 5.3) == [send_ack]


def test_hang_up_while_our_reinvite_is_outstanding_acks_a_late_2xx(leg: Leg) -> None:
    session = leg.session
    reinvite = one_request(session.send_reinvite(HOLD, 5.0))
    send_bye = one_request(session.hang_up(5.1))
    assert send_bye.method == "BYE"
    ok = reply(reinvite, 200, sdp=HELD)
    [send_ack] = session.on_reinvite_response(ok, 5.2)  # ACKed, nothing reported
    assert isinstance(send_ack, SendAck)
    assert str(send_ack.request.cseq) == f"{leg.our_cseq} ACK"
    assert session.on_reinvite_response(ok, 5.3) == [send_ack]
    assert session.on_bye_response(reply(send_bye, 200), 5.4) == [
        Terminated(reason=EndReason.LOCAL_BYE)
    ]
    assert session.on_reinvite_response(ok, 5.5) == []


def test_peer_bye_with_a_reinvite_pending_answers_it_487(leg: Leg) -> None:
    session = leg.session
    reinvite = leg.reinvite()
    session.on_reinvite(reinvite, 5.0)
    ok, refused, ended = session.on_bye(leg.peer("BYE", leg.peer_cseq + 1), 5.1)
    assert isinstance(ok, SendResponse)
    assert ok.response.status == 200
    assert isinstance(refused, SendResponse)
    assert refused.response.status == 487
    assert refused.response.cseq == reinvite.cseq
    assert ended == Terminated(reason=EndReason.REMOTE_BYE)


def test_peer_bye_while_our_2xx_awaits_its_ack_stops_the_timers(leg: Leg) -> None:
    session = leg.session
    session.on_reinvite(leg.reinvite(), 5.0)
    session.answer_reinvite(ANSWER, 5.0)
    actions = session.on_bye(leg.peer("BYE", leg.peer_cseq + 1), 5.1)
    assert actions[1:] == [*BOTH_TIMERS, Terminated(reason=EndReason.REMOTE_BYE)]
    assert session.on_timer(SessionTimer.RETRANSMIT_2XX, 5.5) == []


# -- send_reinvite only when established with nothing in progress


def _uas_initial() -> Session:
    return UasInviteSession(
        with_body(uas_invite(), OFFER),
        local_tag="b-tag",
        local_contact=OUR_CONTACT,
        local_address=LOCAL,
        ids=SeededIds(4),
        timers=TIMERS,
    )


def _uas_early() -> Session:
    session = _uas_initial()
    assert isinstance(session, UasInviteSession)
    session.ring(0.0)
    return session


def _uas_waiting_ack() -> Session:
    session = _uas_initial()
    assert isinstance(session, UasInviteSession)
    session.answer(ANSWER, 0.0)
    return session


def _uac_initial() -> Session:
    return UacInviteSession(uac_invite(), local_address=LOCAL, ids=SeededIds(5))


def _uac_early() -> Session:
    session = UacInviteSession(uac_invite(), local_address=LOCAL, ids=SeededIds(5))
    session.on_response(uac_response(180), 0.0)
    return session


def _uac_ack_owed() -> Session:
    session = UacInviteSession(uac_invite(), local_address=LOCAL, ids=SeededIds(5))
    session.on_response(with_body(uac_response(200), OFFER), 0.0)
    return session


def _pending(leg: Leg) -> Session:
    leg.session.on_reinvite(leg.reinvite(), 1.0)
    return leg.session


def _waiting_reinvite_ack(leg: Leg) -> Session:
    leg.session.on_reinvite(leg.reinvite(), 1.0)
    leg.session.answer_reinvite(ANSWER, 1.0)
    return leg.session


def _ours_outstanding(leg: Leg) -> Session:
    leg.session.send_reinvite(HOLD, 1.0)
    return leg.session


def _hung_up(leg: Leg) -> Session:
    leg.session.hang_up(1.0)
    return leg.session


def _ended(leg: Leg) -> Session:
    leg.session.on_bye(leg.peer("BYE", leg.peer_cseq), 1.0)
    return leg.session


@pytest.mark.parametrize(
    "make", [_uas_initial, _uas_early, _uas_waiting_ack, _uac_initial, _uac_early, _uac_ack_owed]
)
def test_send_reinvite_before_the_dialog_is_established_raises(
    make: Callable[[], Session],
) -> None:
    session = make()
    local_cseq = None if session.dialog is None else session.dialog.local_cseq
    with pytest.raises(SessionStateError):
        session.send_reinvite(HOLD, 1.0)
    assert not outstanding(session)
    assert (None if session.dialog is None else session.dialog.local_cseq) == local_cseq


@pytest.mark.parametrize(
    "make", [_pending, _waiting_reinvite_ack, _ours_outstanding, _hung_up, _ended]
)
def test_send_reinvite_while_busy_or_ending_raises(
    leg: Leg, make: Callable[[Leg], Session]
) -> None:
    session = make(leg)
    assert session.dialog is not None
    local_cseq = session.dialog.local_cseq
    with pytest.raises(SessionStateError):
        session.send_reinvite(HOLD, 2.0)
    assert session.dialog.local_cseq == local_cseq  # a refused re-INVITE takes no CSeq


# -- Hypothesis: any sequence of re-INVITE inputs, both roles: only documented errors,
# nothing after TERMINATED, Terminated last, never two INVITEs in progress at once.

DOCUMENTED = (SessionStateError, LocalProtocolError, DialogError)

STEPS = [
    "their_reinvite",
    "their_reinvite_no_sdp",
    "answer",
    "reject",
    "their_ack",
    "retransmit",
    "ack_timeout",
    "send",
    "send_no_sdp",
    "ok",
    "rejected",
    "gone",
    "timeout",
    "failed",
    "send_ack",
    "hang_up",
    "their_bye",
    "bye_ok",
]


@dataclass
class Driver:
    leg: Leg
    peer_cseq: int
    sent: Request | None = None
    bye: Request | None = None

    def step(self, name: str, now: float) -> list[SessionAction]:
        session, leg = self.leg.session, self.leg
        match name:
            case "their_reinvite" | "their_reinvite_no_sdp":
                self.peer_cseq += 1
                request = leg.peer("INVITE", self.peer_cseq, contact=None)
                if name == "their_reinvite":
                    request = with_body(request, OFFER)
                return session.on_reinvite(request, now)
            case "answer":
                return session.answer_reinvite(ANSWER, now)
            case "reject":
                return session.reject_reinvite(488, now)
            case "their_ack":
                return session.on_ack(leg.peer("ACK", self.peer_cseq, contact=None), now)
            case "retransmit":
                return session.on_timer(SessionTimer.RETRANSMIT_2XX, now)
            case "ack_timeout":
                return session.on_timer(SessionTimer.ACK_TIMEOUT, now)
            case "send" | "send_no_sdp":
                actions = session.send_reinvite(HOLD if name == "send" else None, now)
                self.sent = one_request(actions)
                return actions
            case "ok" | "rejected" | "gone" | "timeout":
                if self.sent is None:
                    raise LocalProtocolError("nothing sent")
                status = {"ok": 200, "rejected": 488, "gone": 481, "timeout": 408}[name]
                sdp = HELD if status == 200 else None  # the answer, or the offer
                actions = session.on_reinvite_response(reply(self.sent, status, sdp=sdp), now)
                return self._note_bye(actions)
            case "failed":
                return self._note_bye(session.on_reinvite_failed(now))
            case "send_ack":
                return session.send_reinvite_ack(ANSWER, now)
            case "hang_up":
                return self._note_bye(session.hang_up(now))
            case "their_bye":
                self.peer_cseq += 1
                return session.on_bye(leg.peer("BYE", self.peer_cseq, contact=None), now)
            case _:
                if self.bye is None:
                    return []
                return session.on_bye_response(reply(self.bye, 200), now)

    def _note_bye(self, actions: list[SessionAction]) -> list[SessionAction]:
        for action in actions:
            if isinstance(action, SendRequest) and action.request.method == "BYE":
                self.bye = action.request
        return actions


@settings(max_examples=200, deadline=None)
@given(role=st.sampled_from(["uas", "uac"]), steps=st.lists(st.sampled_from(STEPS), max_size=25))
def test_any_reinvite_sequence(role: str, steps: list[str]) -> None:
    leg = uas_leg() if role == "uas" else uac_leg()
    driver = Driver(leg=leg, peer_cseq=leg.peer_cseq - 1)
    session = leg.session
    for index, name in enumerate(steps):
        now = 1.0 + index
        was_terminated = session.terminated
        was_outstanding = outstanding(session)
        try:
            actions = driver.step(name, now)
        except DOCUMENTED:
            continue
        if was_terminated:
            assert actions == []
        if any(isinstance(a, OfferReceived) for a in actions):
            assert not was_outstanding  # 14.2: never a new INVITE while ours is out
            assert state(session) is SessionState.ESTABLISHED
        if name.startswith("send") and name != "send_ack":
            assert state(session) is SessionState.ESTABLISHED
        if any(isinstance(a, Terminated) for a in actions):
            assert isinstance(actions[-1], Terminated)
            assert session.terminated
