"""Calls that end in voicemail, on a virtual clock: the switch answers the caller itself
(its own SDP: the caller's first G.711 codec, telephone-event), asks the media host to
take the message (TakeMessage), hangs up when the host says the message is over, and
takes the stop key over SIP INFO. The media host itself is tested over real sockets."""

from __future__ import annotations

from b2bua.call.records import Disposition
from b2bua.events import MailboxCounts
from b2bua.hunt.model import Member
from b2bua.voicemail.settings import Mailbox
from media.commands import (
    CloseSession,
    MessageRecorded,
    MessageStop,
    OpenSession,
    StopMessage,
    TakeMessage,
)

from .harness import MEDIA_HOST, WALL, Net, OutCall, Phone, connection_of, sdp
from .test_hunting import LINES, SHOP_NUMBER, STAFF, extensions, password, shop

MARY = Mailbox(
    number="101",
    greeting="/greetings/mary.wav",
    email="mary@shop.example",
    pin=None,
    max_message_length=120.0,
    min_message_length=1.0,
    max_messages=2,
    silence_timeout=10.0,
)


def voicemail_net() -> Net:
    return Net(
        extensions=extensions(*LINES, *STAFF),
        groups={"shop": shop(members=(Member("101"),))},
        rtp_ports=(30000, 30099),
        mailboxes={"101": MARY},
    )


def to_voicemail(net: Net, *, body: bytes | None = None) -> tuple[Phone, OutCall, TakeMessage]:
    """A customer calls the shop; Mary rings for her 15 s and does not answer."""
    mary = net.phone("101", password=password("101"))
    customer = net.outsider()
    call = customer.invite(SHOP_NUMBER, body=body)
    ringing = mary.incoming(at=0.0)
    ringing.ring()
    customer.take_response("180 INVITE")
    net.run_until(15.0)
    ringing.respond(200, request=mary.take_request("CANCEL"))
    ringing.respond(487)
    mary.take("ACK")
    [(at, take)] = [(at, m) for at, m in net.media if isinstance(m, TakeMessage)]
    assert at == 15.0
    return customer, call, take


def test_nobody_answers_the_switch_answers_and_takes_a_message_for_the_first_line() -> None:
    net = voicemail_net()
    customer, call, take = to_voicemail(net)
    ok = customer.take("200 INVITE")
    assert ok.at == 15.0
    opened = next(m for _, m in net.media if isinstance(m, OpenSession))
    assert connection_of(ok.response().body) == (MEDIA_HOST, opened.rtp_port_a, "sendrecv")
    assert b"m=audio 30000 RTP/AVP 0 101" in ok.response().body
    assert take == TakeMessage(
        session_id=opened.session_id,
        remote=customer.media_address,
        payload_type=0,
        event_payload_type=101,
        greeting="/greetings/mary.wav",
        mailbox="101",
        caller="5551234",
        caller_name="Phone 5551234",
        called=SHOP_NUMBER,
        group="shop",
        received_at=WALL + 15.0,
        max_length=120.0,
        min_length=1.0,
        silence_timeout=10.0,
    )
    call.ack(ok.response())
    net.run_until(40.0)
    net.feed(
        MessageRecorded(
            session_id=opened.session_id,
            mailbox="101",
            reason=MessageStop.SILENCE,
            duration=14.2,
            message_id="1800000015000-abcdef",
        )
    )
    bye = customer.take_request("BYE")
    customer.respond(bye, 200)
    record = net.records[-1][1]
    assert (record.disposition, record.answered_by, record.caller_status) == (
        Disposition.VOICEMAIL,
        "voicemail:101",
        200,
    )
    assert record.end_reason == "voicemail: silence"
    assert record.duration == 25.0
    assert any(isinstance(m, CloseSession) for _, m in net.media)
    net.assert_idle()


def test_the_hash_key_over_sip_info_stops_the_recording() -> None:
    net = voicemail_net()
    customer, call, take = to_voicemail(net)
    call.ack(customer.take_response("200 INVITE"))
    assert call.dialog is not None
    call.dialog.send(
        "INFO", body=b"Signal=#\r\nDuration=160\r\n", content_type="application/dtmf-relay"
    )
    customer.take_response("200 INFO")
    assert net.media[-1][1] == StopMessage(session_id=take.session_id, reason=MessageStop.DIGIT)
    call.dialog.send("INFO", body=b"5", content_type="application/dtmf")
    customer.take_response("200 INFO")  # another key: answered, and nothing else
    assert sum(isinstance(m, StopMessage) for _, m in net.media) == 1


def test_the_caller_hanging_up_ends_the_call_and_the_host_finishes_the_message() -> None:
    net = voicemail_net()
    customer, call, take = to_voicemail(net)
    call.ack(customer.take_response("200 INVITE"))
    net.run_until(30.0)
    call.bye()
    customer.take_response("200 BYE")
    assert isinstance(net.media[-1][1], CloseSession)
    net.feed(  # the host's report comes after the call is gone: nothing left to do
        MessageRecorded(
            session_id=take.session_id,
            mailbox="101",
            reason=MessageStop.HANGUP,
            duration=14.9,
            message_id="1800000015000-abcdef",
        )
    )
    customer.assert_nothing()
    assert net.records[-1][1].end_reason == "caller BYE"
    net.assert_idle()


def test_a_full_mailbox_plays_the_greeting_without_recording() -> None:
    net = voicemail_net()
    net.feed(MailboxCounts(mailbox="101", new=0, old=2))  # max_messages is 2, all heard
    customer, call, take = to_voicemail(net)
    assert take.record is False
    call.ack(customer.take_response("200 INVITE"))


def test_pcma_first_in_the_offer_is_what_the_switch_answers_with() -> None:
    net = voicemail_net()
    offer = sdp("198.51.100.7", 7000).replace(b"RTP/AVP 0 101", b"RTP/AVP 8 0 101")
    offer = offer.replace(b"a=rtpmap:0", b"a=rtpmap:8 PCMA/8000\r\na=rtpmap:0")
    customer, call, take = to_voicemail(net, body=offer)
    assert (take.payload_type, take.event_payload_type) == (8, 101)
    call.ack(customer.take_response("200 INVITE"))


def test_a_caller_without_g711_gets_488_and_one_without_an_offer_480() -> None:
    net = voicemail_net()
    offer = sdp("198.51.100.7", 7000).replace(b"RTP/AVP 0 101", b"RTP/AVP 9 101")
    offer = offer.replace(b"a=rtpmap:0 PCMU/8000", b"a=rtpmap:9 G722/8000")
    mary = net.phone("101", password=password("101"))
    customer = net.outsider()
    call = customer.invite(SHOP_NUMBER, body=offer)
    ringing = mary.incoming()
    net.run_until(15.0)
    ringing.respond(487)
    mary.take("ACK")
    call.ack(customer.take_response("488 INVITE"))
    assert "no G.711" in net.records[-1][1].end_reason
