"""The INVITE session (RFC 3261 sections 13-15): UAS and UAC machines, on a virtual clock."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from b2bua.dialog.dialog import DialogError
from b2bua.dialog.invite_session import (
    UacInviteSession,
    UasInviteSession,
    build_cancel,
    reject_unsupported,
)
from b2bua.dialog.session_events import (
    Answered,
    AnswerReceived,
    CancelNeeded,
    CancelTimer,
    EarlyMedia,
    EndReason,
    Established,
    OfferReceived,
    Ringing,
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
    in_dialog_request,
    lines,
    parse_request,
    parse_response,
    uac_invite,
    uac_response,
)

T1, T2 = 0.5, 4.0
TIMERS = TimerSettings(t1=T1, t2=T2)
OFFER = b"v=0\r\no=alice 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
ANSWER = b"v=0\r\no=bob 2 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"


def with_sdp(text: str, sdp: bytes) -> bytes:
    """``text`` (from ``lines``, with ``Content-Length: 0``) as wire bytes with an SDP body."""
    head = text.rstrip("\n").replace(
        "Content-Length: 0", f"Content-Type: application/sdp\nContent-Length: {len(sdp)}"
    )
    return (head.replace("\n", "\r\n") + "\r\n\r\n").encode() + sdp


def invite_text(*, cseq: int = 101, to_tag: str | None = None) -> str:
    return lines(
        "INVITE sip:bob@192.0.2.1:5060 SIP/2.0",
        f"Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK-a{cseq};rport",
        "Record-Route: <sip:p1.example.org;lr>",
        "Max-Forwards: 70",
        "From: <sip:alice@example.org>;tag=a-tag",
        "To: <sip:bob@example.com>" + ("" if to_tag is None else f";tag={to_tag}"),
        "Call-ID: c1@198.51.100.7",
        f"CSeq: {cseq} INVITE",
        "Contact: <sip:alice@198.51.100.7:5060>",
        "Content-Length: 0",
    )


def parse_sdp_request(text: str, sdp: bytes | None) -> Request:
    if sdp is None:
        return parse_request(text)
    message = parse_message(with_sdp(text, sdp))
    assert isinstance(message, Request)
    return message


def ack_request(*, cseq: int = 101, sdp: bytes | None = None) -> Request:
    text = lines(
        "ACK sip:b2bua@192.0.2.1:5060 SIP/2.0",
        f"Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK-ack{cseq}",
        "Max-Forwards: 70",
        "From: <sip:alice@example.org>;tag=a-tag",
        "To: <sip:bob@example.com>;tag=b-tag",
        "Call-ID: c1@198.51.100.7",
        f"CSeq: {cseq} ACK",
        "Content-Length: 0",
    )
    return parse_sdp_request(text, sdp)


def uas(*, offer: bytes | None = OFFER) -> UasInviteSession:
    return UasInviteSession(
        parse_sdp_request(invite_text(), offer),
        local_tag="b-tag",
        local_contact=OUR_CONTACT,
        local_address=LOCAL,
        ids=SeededIds(1),
        timers=TIMERS,
    )


def answered_uas(*, offer: bytes | None = OFFER) -> UasInviteSession:
    session = uas(offer=offer)
    session.answer(ANSWER, 0.0)
    return session


def established_uas() -> UasInviteSession:
    session = answered_uas()
    session.on_ack(ack_request(), 0.1)
    return session


def state(session: UasInviteSession | UacInviteSession) -> SessionState:
    """The state, read through a call so that mypy does not narrow it across steps."""
    return session.state


def sent(actions: list[SessionAction]) -> list[SendResponse]:
    return [a for a in actions if isinstance(a, SendResponse)]


# -- UAS


def test_ring_sends_180_with_our_tag_and_contact() -> None:
    session = uas()
    [action] = session.ring(0.0)
    assert isinstance(action, SendResponse)
    assert action.response.status == 180
    assert action.response.to.tag == "b-tag"
    assert action.response.contacts[0].uri_text == OUR_CONTACT
    assert state(session) is SessionState.EARLY


def test_ring_with_sdp_is_early_media() -> None:
    [action] = uas().ring(0.0, status=183, sdp=ANSWER)
    assert isinstance(action, SendResponse)
    assert action.response.status == 183
    assert action.response.body == ANSWER
    assert action.response.content_type == "application/sdp"


def test_answer_sends_200_and_starts_both_timers() -> None:
    session = uas()
    actions = session.answer(ANSWER, 10.0)
    response = actions[0]
    assert isinstance(response, SendResponse)
    assert response.response.status == 200
    assert response.response.body == ANSWER
    assert actions[1:] == [
        StartTimer(name=SessionTimer.RETRANSMIT_2XX, at=10.0 + T1),
        StartTimer(name=SessionTimer.ACK_TIMEOUT, at=10.0 + 64 * T1),
    ]
    assert state(session) is SessionState.WAITING_ACK
    assert session.dialog is not None
    assert session.dialog.is_confirmed


def test_2xx_retransmitted_at_t1_doubling_capped_at_t2_then_bye_at_64_t1() -> None:
    session = uas()
    first = session.answer(ANSWER, 0.0)[0]
    assert isinstance(first, SendResponse)
    times: list[float] = []
    deadline = T1
    while deadline < 64 * T1:
        actions = session.on_timer(SessionTimer.RETRANSMIT_2XX, deadline)
        assert actions[0] == first  # the same response object, every time
        times.append(deadline)
        restart = actions[1]
        assert isinstance(restart, StartTimer)
        deadline = restart.at
    intervals = [b - a for a, b in zip([0.0, *times], times, strict=False)]
    assert intervals[:4] == [T1, 2 * T1, 4 * T1, T2]
    assert all(i == T2 for i in intervals[3:])
    actions = session.on_timer(SessionTimer.ACK_TIMEOUT, 64 * T1)
    assert actions[0] == CancelTimer(name=SessionTimer.RETRANSMIT_2XX)
    bye = actions[1]
    assert isinstance(bye, SendRequest)
    assert bye.request.method == "BYE"
    assert bye.request.headers.get_all("route") == ["<sip:p1.example.org;lr>"]
    assert state(session) is SessionState.TERMINATING
    assert session.on_bye_failed(70.0) == [Terminated(reason=EndReason.ACK_TIMEOUT)]
    assert session.terminated


def test_ack_stops_retransmission_and_establishes() -> None:
    session = answered_uas()
    assert session.on_ack(ack_request(), 0.2) == [
        CancelTimer(name=SessionTimer.RETRANSMIT_2XX),
        CancelTimer(name=SessionTimer.ACK_TIMEOUT),
        Established(),
    ]
    assert state(session) is SessionState.ESTABLISHED
    assert session.on_timer(SessionTimer.RETRANSMIT_2XX, T1) == []  # stale
    assert session.on_ack(ack_request(), 0.3) == []  # retransmitted ACK


def test_invite_without_sdp_offer_in_2xx_answer_in_ack() -> None:
    session = answered_uas(offer=None)
    assert not session.has_offer
    actions = session.on_ack(ack_request(sdp=OFFER), 0.2)
    assert actions[-2:] == [Established(), AnswerReceived(sdp=OFFER)]


def test_bye_from_peer_gets_200_and_terminates() -> None:
    session = established_uas()
    actions = session.on_bye(in_dialog_request("BYE", 102), 5.0)
    assert [r.response.status for r in sent(actions)] == [200]
    assert actions[-1] == Terminated(reason=EndReason.REMOTE_BYE)
    with pytest.raises(DialogError) as caught:
        session.on_bye(in_dialog_request("BYE", 103), 5.1)
    assert caught.value.status_hint == 481


def test_hang_up_sends_bye_and_ends_on_its_response() -> None:
    session = established_uas()
    [bye] = session.hang_up(5.0)
    assert isinstance(bye, SendRequest)
    assert bye.request.method == "BYE"
    assert bye.request.cseq.number == 1
    assert bye.request.to.tag == "a-tag"
    assert bye.request.from_.tag == "b-tag"
    assert session.hang_up(5.1) == []
    ok = parse_response(
        lines(
            "SIP/2.0 200 OK",
            f"Via: {bye.request.headers.get('via')}",
            "From: <sip:bob@example.com>;tag=b-tag",
            "To: <sip:alice@example.org>;tag=a-tag",
            "Call-ID: c1@198.51.100.7",
            "CSeq: 1 BYE",
            "Content-Length: 0",
        )
    )
    assert session.on_bye_response(ok, 5.2) == [Terminated(reason=EndReason.LOCAL_BYE)]


def test_hang_up_before_ack_waits_for_the_ack() -> None:
    session = answered_uas()
    assert session.hang_up(0.1) == []
    actions = session.on_ack(ack_request(), 0.2)
    assert isinstance(actions[-1], SendRequest)
    assert actions[-1].request.method == "BYE"


def test_reinvite_offer_and_answer() -> None:
    session = established_uas()
    reinvite = parse_sdp_request(invite_text(cseq=102, to_tag="b-tag"), OFFER)
    assert session.on_reinvite(reinvite, 1.0) == [OfferReceived(sdp=OFFER)]
    actions = session.answer_reinvite(ANSWER, 1.1)
    [response] = sent(actions)
    assert response.response.status == 200
    assert response.response.cseq.number == 102
    assert state(session) is SessionState.WAITING_ACK
    assert Established() not in session.on_ack(ack_request(cseq=102), 1.2)
    assert state(session) is SessionState.ESTABLISHED


def test_reinvite_while_one_is_pending_gets_500_and_before_the_ack_491() -> None:
    session = established_uas()
    session.on_reinvite(parse_sdp_request(invite_text(cseq=102, to_tag="b-tag"), OFFER), 1.0)
    glare = parse_sdp_request(invite_text(cseq=103, to_tag="b-tag"), OFFER)
    [response] = sent(session.on_reinvite(glare, 1.1))
    # RFC 3261 section 14.2: the earlier INVITE is still unanswered.
    assert response.response.status == 500
    assert response.response.headers.get("retry-after") is not None
    # Before the initial 2xx is ACKed: the offer/answer is unfinished (491).
    waiting = answered_uas()
    [response] = sent(waiting.on_reinvite(glare, 0.1))
    assert response.response.status == 491


def test_reject_reinvite_keeps_the_session() -> None:
    session = established_uas()
    session.on_reinvite(parse_sdp_request(invite_text(cseq=102, to_tag="b-tag"), OFFER), 1.0)
    [response] = sent(session.reject_reinvite(488, 1.1))
    assert response.response.status == 488
    assert state(session) is SessionState.ESTABLISHED


def test_cancel_before_answer_terminates() -> None:
    session = uas()
    session.ring(0.0)
    assert session.on_cancel(1.0) == [Terminated(reason=EndReason.CANCELLED, status=487)]
    assert session.terminated
    assert session.on_cancel(1.1) == []
    with pytest.raises(SessionStateError):
        session.answer(ANSWER, 1.2)


def test_cancel_after_answer_does_nothing() -> None:
    session = answered_uas()
    assert session.on_cancel(0.1) == []


def test_reject_sends_final_and_terminates() -> None:
    session = uas()
    actions = session.reject(486, 0.0)
    [response] = sent(actions)
    assert response.response.status == 486
    assert response.response.to.tag == "b-tag"
    assert actions[-1] == Terminated(reason=EndReason.REJECTED, status=486)


def test_require_we_do_not_support_gets_420() -> None:
    text = invite_text().replace("Content-Length: 0", "Require: 100rel, timer\nContent-Length: 0")
    response = reject_unsupported(
        parse_request(text), supported=frozenset({"timer"}), local_tag="b-tag"
    )
    assert response is not None
    assert response.status == 420
    assert response.headers.get("unsupported") == "100rel"
    assert (
        reject_unsupported(parse_request(invite_text()), supported=frozenset(), local_tag="x")
        is None
    )


# -- UAC


def uac() -> UacInviteSession:
    return UacInviteSession(uac_invite(), local_address=LOCAL, ids=SeededIds(2))


def test_180_then_200_acks_with_invite_cseq_new_branch_and_route() -> None:
    session = uac()
    assert session.on_response(uac_response(180), 0.0) == [Ringing(status=180)]
    assert state(session) is SessionState.EARLY
    actions = session.on_response(uac_response(200), 1.0)
    ack_action, answered = actions
    assert answered == Answered(sdp=None)
    assert isinstance(ack_action, SendAck)
    ack = ack_action.request
    assert ack.method == "ACK"
    assert ack.uri == "sip:gw-a@203.0.113.10:5060"
    assert str(ack.cseq) == "1 ACK"
    assert ack.top_via.branch != "z9hG4bK-inv"
    assert ack.headers.get_all("route") == ["<sip:near.example.net;lr>", "<sip:far.example.net;lr>"]
    assert ack.to.tag == "fork-a"
    assert ack.headers.get("proxy-authorization") is not None
    assert state(session) is SessionState.ESTABLISHED
    # A retransmitted 2xx: the same ACK, byte for byte.
    [again] = session.on_response(uac_response(200), 1.5)
    assert isinstance(again, SendAck)
    assert again.request is ack
    assert again.request.to_bytes() == ack.to_bytes()


def test_early_media() -> None:
    session = uac()
    text = lines(
        "SIP/2.0 183 Session Progress",
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-inv",
        "From: <sip:100@192.0.2.1>;tag=our-tag",
        "To: <sip:+15551234@carrier.example.net>;tag=fork-a",
        "Call-ID: out-1@192.0.2.1",
        "CSeq: 1 INVITE",
        "Contact: <sip:gw-a@203.0.113.10:5060>",
        "Content-Type: application/sdp",
        "Content-Length: 3",
    )
    response = parse_response(text.rstrip("\n") + "\n\nv=0")
    assert session.on_response(response, 0.0) == [EarlyMedia(status=183, sdp=b"v=0")]


def test_second_fork_2xx_is_acked_and_byed() -> None:
    session = uac()
    session.on_response(uac_response(180, to_tag="fork-b"), 0.0)
    session.on_response(uac_response(200), 1.0)
    ack, bye = session.on_response(uac_response(200, to_tag="fork-b"), 1.1)
    assert isinstance(ack, SendAck)
    assert isinstance(bye, SendRequest)
    assert ack.request.to.tag == bye.request.to.tag == "fork-b"
    assert bye.request.method == "BYE"
    assert bye.request.cseq.number == 2
    assert session.dialog is not None
    assert session.dialog.remote_tag == "fork-a"
    assert state(session) is SessionState.ESTABLISHED


def test_486_terminates_with_486() -> None:
    session = uac()
    actions = session.on_response(uac_response(486), 0.0)
    assert actions == [Terminated(reason=EndReason.REJECTED, status=486)]
    assert session.terminated
    assert session.on_response(uac_response(200), 0.1) == []


def test_hang_up_before_answer_needs_cancel() -> None:
    session = uac()
    session.on_response(uac_response(180), 0.0)
    assert session.hang_up(1.0) == [CancelNeeded()]
    assert session.hang_up(1.1) == []
    actions = session.on_response(uac_response(487), 1.2)
    assert actions == [Terminated(reason=EndReason.CANCELLED, status=487)]


def test_cancel_racing_a_2xx_acks_and_byes_it() -> None:
    session = uac()
    session.hang_up(0.5)
    actions = session.on_response(uac_response(200), 1.0)
    assert [type(a) for a in actions] == [SendAck, Answered, SendRequest]
    assert state(session) is SessionState.TERMINATING
    assert session.on_bye_failed(33.0) == [Terminated(reason=EndReason.CANCELLED)]


def test_build_cancel() -> None:
    invite_text_ = lines(
        "INVITE sip:+15551234@carrier.example.net SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-inv;rport",
        "Route: <sip:near.example.net;lr>",
        "Max-Forwards: 70",
        "From: <sip:100@192.0.2.1>;tag=our-tag",
        "To: <sip:+15551234@carrier.example.net>",
        "Call-ID: out-1@192.0.2.1",
        "CSeq: 7 INVITE",
        "Contact: <sip:b2bua@192.0.2.1:5060>",
        "Content-Length: 0",
    )
    cancel = build_cancel(parse_request(invite_text_))
    assert cancel.to_bytes().decode().replace("\r\n", "\n") == lines(
        "CANCEL sip:+15551234@carrier.example.net SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-inv;rport",
        "Route: <sip:near.example.net;lr>",
        "Max-Forwards: 70",
        "From: <sip:100@192.0.2.1>;tag=our-tag",
        "To: <sip:+15551234@carrier.example.net>",
        "Call-ID: out-1@192.0.2.1",
        "CSeq: 7 CANCEL",
        "Content-Length: 0",
    )
    with pytest.raises(LocalProtocolError):
        build_cancel(ack_request())


def test_uac_hang_up_after_answer_sends_bye() -> None:
    session = uac()
    session.on_response(uac_response(200), 1.0)
    [bye] = session.hang_up(2.0)
    assert isinstance(bye, SendRequest)
    assert bye.request.method == "BYE"
    assert bye.request.uri == "sip:gw-a@203.0.113.10:5060"
    assert bye.request.cseq.number == 2
    ok = uac_response(200, cseq="2 BYE")
    assert session.on_response(ok, 2.1) == [Terminated(reason=EndReason.LOCAL_BYE)]


def test_uac_bye_from_peer() -> None:
    session = uac()
    session.on_response(uac_response(200), 1.0)
    bye = parse_request(
        lines(
            "BYE sip:b2bua@192.0.2.1:5060 SIP/2.0",
            "Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK-bye1",
            "Max-Forwards: 70",
            "From: <sip:+15551234@carrier.example.net>;tag=fork-a",
            "To: <sip:100@192.0.2.1>;tag=our-tag",
            "Call-ID: out-1@192.0.2.1",
            "CSeq: 1 BYE",
            "Content-Length: 0",
        )
    )
    actions = session.on_bye(bye, 3.0)
    assert [r.response.status for r in sent(actions)] == [200]
    assert actions[-1] == Terminated(reason=EndReason.REMOTE_BYE)


def test_uac_delayed_offer_ack_carries_the_answer() -> None:
    session = uac()
    text = uac_response(200).to_bytes().decode().replace("\r\n", "\n")
    response = parse_message(with_sdp(text, OFFER))
    assert isinstance(response, Response)
    actions = session.on_response(response, 1.0)
    assert actions == [Answered(sdp=OFFER)]
    [ack] = session.send_ack(ANSWER, 1.5)
    assert isinstance(ack, SendAck)
    assert ack.request.body == ANSWER


# -- Hypothesis: any sequence of inputs raises only documented errors and nothing after
# TERMINATED.

DOCUMENTED = (SessionStateError, LocalProtocolError, DialogError)

uas_steps = st.lists(
    st.sampled_from(
        [
            "ring",
            "answer",
            "reject",
            "cancel",
            "ack",
            "bye",
            "hang_up",
            "reinvite",
            "answer_reinvite",
            "retransmit",
            "ack_timeout",
            "bye_ok",
            "bye_failed",
        ]
    ),
    max_size=20,
)


def uas_step(session: UasInviteSession, step: str, now: float, cseq: int) -> list[SessionAction]:
    bye_ok = uac_response(200, cseq="1 BYE")
    match step:
        case "ring":
            return session.ring(now)
        case "answer":
            return session.answer(ANSWER, now)
        case "reject":
            return session.reject(486, now)
        case "cancel":
            return session.on_cancel(now)
        case "ack":
            return session.on_ack(ack_request(cseq=cseq), now)
        case "bye":
            return session.on_bye(in_dialog_request("BYE", cseq + 1), now)
        case "hang_up":
            return session.hang_up(now)
        case "reinvite":
            request = parse_sdp_request(invite_text(cseq=cseq + 1, to_tag="b-tag"), OFFER)
            return session.on_reinvite(request, now)
        case "answer_reinvite":
            return session.answer_reinvite(ANSWER, now)
        case "retransmit":
            return session.on_timer(SessionTimer.RETRANSMIT_2XX, now)
        case "ack_timeout":
            return session.on_timer(SessionTimer.ACK_TIMEOUT, now)
        case "bye_ok":
            return session.on_bye_response(bye_ok, now)
        case _:
            return session.on_bye_failed(now)


@settings(max_examples=300, deadline=None)
@given(uas_steps)
def test_uas_any_sequence(steps: list[str]) -> None:
    session = uas()
    cseq = 101
    for index, step in enumerate(steps):
        was_terminated = session.terminated
        try:
            actions = uas_step(session, step, float(index), cseq)
        except DOCUMENTED:
            continue
        finally:
            if step in ("reinvite", "bye"):
                cseq += 1
        if was_terminated:
            assert actions == []
        if any(isinstance(a, Terminated) for a in actions):
            assert isinstance(actions[-1], Terminated)
            assert session.terminated


uac_steps = st.lists(
    st.sampled_from(
        ["180", "183b", "200", "200b", "486", "487", "hang_up", "bye", "bye_ok", "failed", "ack"]
    ),
    max_size=20,
)


def uac_step(session: UacInviteSession, step: str, now: float) -> list[SessionAction]:
    match step:
        case "180":
            return session.on_response(uac_response(180), now)
        case "183b":
            return session.on_response(uac_response(183, to_tag="fork-b"), now)
        case "200":
            return session.on_response(uac_response(200), now)
        case "200b":
            return session.on_response(uac_response(200, to_tag="fork-b"), now)
        case "486" | "487":
            return session.on_response(uac_response(int(step)), now)
        case "hang_up":
            return session.hang_up(now)
        case "bye":
            return session.on_bye(
                parse_request(
                    lines(
                        "BYE sip:b2bua@192.0.2.1:5060 SIP/2.0",
                        "Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK-bye1",
                        "From: <sip:+15551234@carrier.example.net>;tag=fork-a",
                        "To: <sip:100@192.0.2.1>;tag=our-tag",
                        "Call-ID: out-1@192.0.2.1",
                        f"CSeq: {int(now) + 1} BYE",
                        "Content-Length: 0",
                    )
                ),
                now,
            )
        case "bye_ok":
            return session.on_response(uac_response(200, cseq="2 BYE"), now)
        case "failed":
            return session.on_invite_failed(now)
        case _:
            return session.send_ack(ANSWER, now)


@settings(max_examples=300, deadline=None)
@given(uac_steps)
def test_uac_any_sequence(steps: list[str]) -> None:
    session = uac()
    for index, step in enumerate(steps):
        was_terminated = session.terminated
        try:
            actions = uac_step(session, step, float(index))
        except DOCUMENTED:
            continue
        if was_terminated:
            assert actions == []
        if any(isinstance(a, Terminated) for a in actions):
            assert isinstance(actions[-1], Terminated)
            assert session.terminated
