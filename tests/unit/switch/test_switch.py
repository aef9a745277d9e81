"""The switch on a virtual clock: what it answers, where it sends it, and that every
transaction it creates goes away again."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from b2bua.config import ListenAddress
from b2bua.events import (
    CloseConnection,
    ConnectionClosed,
    DatagramReceived,
    Output,
    SendDatagram,
    SendStream,
    StreamReceived,
)
from b2bua.ids import BRANCH_PREFIX, SeededIds
from b2bua.sip.address import ConnectionId, Peer, Transport
from b2bua.sip.message import Response
from b2bua.sip.parser import parse_message
from b2bua.switch import ALLOWED_METHODS, Switch, SwitchSettings

PHONE = Peer(Transport.UDP, "192.0.2.7", 5062)
SWITCH = ListenAddress(Transport.UDP, "127.0.0.1", 5060)


def make_switch() -> Switch:
    settings = SwitchSettings(listen=(SWITCH, ListenAddress(Transport.TCP, "127.0.0.1", 5060)))
    return Switch(settings, SeededIds(1), structlog.get_logger(), secret=b"k" * 64)


def request(
    method: str = "OPTIONS",
    *,
    uri: str = "sip:127.0.0.1",
    branch: str = "z9hG4bKphone1",
    via_host: str = "192.0.2.7:5062",
    extra: str = "",
    cseq: str | None = None,
    to_tag: str = "",
) -> bytes:
    return (
        f"{method} {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {via_host};branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        f"To: <sip:127.0.0.1>{to_tag}\r\n"
        "From: <sip:0101@127.0.0.1>;tag=ph1\r\n"
        "Call-ID: call-1@192.0.2.7\r\n"
        f"CSeq: {cseq or '1 ' + method}\r\n"
        f"{extra}"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def only_response(outputs: list[Output]) -> tuple[Response, Peer]:
    sent = [o for o in outputs if isinstance(o, SendDatagram | SendStream)]
    assert len(sent) == 1, outputs
    message = parse_message(sent[0].data)
    assert isinstance(message, Response)
    return message, sent[0].peer


def only_status_line(outputs: list[Output]) -> str:
    """The status line of the one message sent. A reply to a malformed request copies
    the malformed headers (RFC 3261 section 8.2.6.2), so it may not parse itself."""
    sent = [o for o in outputs if isinstance(o, SendDatagram | SendStream)]
    assert len(sent) == 1, outputs
    return sent[0].data.split(b"\r\n", 1)[0].decode()


def answer(switch: Switch, data: bytes, now: float = 0.0, peer: Peer = PHONE) -> Response:
    return only_response(switch.handle(DatagramReceived(data=data, peer=peer), now))[0]


def test_options_gets_200_with_allow_accept_and_supported() -> None:
    response = answer(make_switch(), request())
    assert response.status == 200
    assert response.headers.get_all("allow") == list(ALLOWED_METHODS)
    assert response.headers.get("accept") == "application/sdp"
    assert "supported" in response.headers
    assert response.to.tag
    assert response.call_id == "call-1@192.0.2.7"


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (request("NEWMETHOD"), 501),
        (request("INVITE"), 407),
        (request("SUBSCRIBE"), 407),
        (request("MESSAGE"), 407),
        (request("MESSAGE", extra="Max-Forwards: 0\r\n"), 483),
        (request("OPTIONS", uri="mailto:a@b.example"), 416),
        (request("OPTIONS", cseq="1 INVITE"), 400),
        (request("OPTIONS", extra="Require: 100rel, foo\r\n"), 420),
        (request("OPTIONS", uri="sip:@@"), 400),
    ],
)
def test_refusals(data: bytes, status: int) -> None:
    if b"Max-Forwards: 0" in data:
        data = data.replace(b"Max-Forwards: 70\r\n", b"")
    response = answer(make_switch(), data)
    assert response.status == status
    if status == 407:
        assert (response.headers.get("proxy-authenticate") or "").startswith("Digest ")
        assert "www-authenticate" not in response.headers
    if status == 420:
        assert response.headers.get_all("unsupported") == ["100rel", "foo"]


def test_options_with_max_forwards_zero_is_answered_by_the_switch() -> None:
    data = request().replace(b"Max-Forwards: 70", b"Max-Forwards: 0")
    assert answer(make_switch(), data).status == 200


def test_a_request_carrying_our_own_via_is_a_loop() -> None:
    own = f"SIP/2.0/UDP 127.0.0.1:5060;branch={BRANCH_PREFIX}abc"
    data = request(extra=f"Via: {own}\r\n")
    assert answer(make_switch(), data).status == 482


def test_a_merged_request_gets_482() -> None:
    switch = make_switch()
    assert answer(switch, request(branch="z9hG4bKpath1")).status == 200
    # The same request forked by a proxy upstream arrives by a second path.
    second = request(branch="z9hG4bKpath2", via_host="198.51.100.9:5060")
    assert answer(switch, second, 0.1).status == 482


def test_retransmission_is_absorbed_and_the_same_bytes_are_resent() -> None:
    switch = make_switch()
    first = switch.handle(DatagramReceived(data=request(), peer=PHONE), 0.0)
    again = switch.handle(DatagramReceived(data=request(), peer=PHONE), 0.4)
    assert isinstance(first[0], SendDatagram)
    assert isinstance(again[0], SendDatagram)
    assert again[0].data == first[0].data
    assert switch.transaction_count == 1


def test_transactions_end_after_timer_j() -> None:
    switch = make_switch()
    switch.handle(DatagramReceived(data=request(), peer=PHONE), 0.0)
    switch.handle(DatagramReceived(data=request("FOO", branch="z9hG4bKx2"), peer=PHONE), 0.0)
    assert switch.transaction_count == 2
    # RFC 3261 section 17.2.2: Timer J is 64*T1 = 32 s on UDP.
    assert switch.next_deadline() == 32.0
    assert switch.fire_timers(31.9) == []
    assert switch.transaction_count == 2
    switch.fire_timers(32.0)
    assert switch.transaction_count == 0
    assert switch.next_deadline() is None


def test_received_and_rport_are_filled_in_and_the_response_goes_to_the_source() -> None:
    # Behind NAT: sent-by says 10.0.0.5:5062, the packet came from 192.0.2.7:40001.
    data = request(via_host="10.0.0.5:5062").replace(
        b"branch=z9hG4bKphone1", b"branch=z9hG4bKphone1;rport"
    )
    nat = Peer(Transport.UDP, "192.0.2.7", 40001)
    response, peer = only_response(switch_handle(make_switch(), data, nat))
    assert peer == nat
    assert response.top_via.received == "192.0.2.7"
    assert response.top_via.rport == 40001


def test_without_rport_the_response_goes_to_the_source_address_and_the_via_port() -> None:
    data = request(via_host="10.0.0.5:5070")
    response, peer = only_response(switch_handle(make_switch(), data, PHONE))
    assert (peer.host, peer.port) == ("192.0.2.7", 5070)
    assert response.top_via.received == "192.0.2.7"


def switch_handle(switch: Switch, data: bytes, peer: Peer) -> list[Output]:
    return switch.handle(DatagramReceived(data=data, peer=peer), 0.0)


def test_cancel_without_a_matching_invite_gets_481() -> None:
    assert answer(make_switch(), request("CANCEL")).status == 481


def test_cancel_of_an_answered_invite_gets_200_and_changes_nothing() -> None:
    switch = make_switch()
    assert answer(switch, request("INVITE")).status == 407
    assert answer(switch, request("CANCEL"), 0.1).status == 200


def test_ack_to_a_refused_invite_is_absorbed() -> None:
    switch = make_switch()
    answer(switch, request("INVITE"))
    ack = request("ACK", cseq="1 ACK", to_tag=";tag=x")
    assert switch.handle(DatagramReceived(data=ack, peer=PHONE), 0.1) == []


def test_malformed_request_gets_400_naming_the_fault() -> None:
    data = request().replace(b"CSeq: 1 OPTIONS", b"CSeq: one OPTIONS")
    outputs = make_switch().handle(DatagramReceived(data=data, peer=PHONE), 0.0)
    assert only_status_line(outputs) == "SIP/2.0 400 Malformed CSeq"
    assert b"\r\nCSeq: one OPTIONS\r\n" in outputs[0].data  # type: ignore[union-attr]


def test_unroutable_garbage_is_dropped_and_the_next_request_answered() -> None:
    switch = make_switch()
    for junk in (b"", b"\r\n\r\n", b"\x00\xff" * 40, b"SIP/2.0 200 OK\r\n\r\n", b"HELLO"):
        assert switch.handle(DatagramReceived(data=junk, peer=PHONE), 0.0) == []
    assert answer(switch, request()).status == 200


def test_stray_responses_are_dropped() -> None:
    data = (
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKnone\r\n"
        b"To: <sip:a@b>;tag=1\r\nFrom: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    assert make_switch().handle(DatagramReceived(data=data, peer=PHONE), 0.0) == []


def test_tcp_response_goes_back_on_the_connection() -> None:
    peer = Peer(Transport.TCP, "192.0.2.7", 40002, ConnectionId(7))
    data = request().replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP")
    outputs = make_switch().handle(StreamReceived(data=data, peer=peer), 0.0)
    response, to = only_response(outputs)
    assert response.status == 200
    assert to == peer
    assert isinstance(outputs[0], SendStream)


def test_tcp_message_that_cannot_be_answered_closes_the_connection() -> None:
    peer = Peer(Transport.TCP, "192.0.2.7", 40002, ConnectionId(7))
    outputs = make_switch().handle(StreamReceived(data=b"GARBAGE\r\n\r\n", peer=peer), 0.0)
    assert outputs == [CloseConnection(connection=ConnectionId(7))]
    assert make_switch().handle(ConnectionClosed(connection=ConnectionId(7)), 0.0) == []


# -- the corpus, through the switch: every request with a `reply` gets exactly that status

CORPUS = Path(__file__).parents[2] / "data" / "sip"
CASES: dict[str, dict[str, Any]] = tomllib.loads((CORPUS / "cases.toml").read_text())


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if "reply" in c))
def test_corpus_reply(name: str) -> None:
    case = CASES[name]
    data = (CORPUS / case["file"]).read_bytes()
    if case.get("transport") == "tcp":
        peer = Peer(Transport.TCP, "192.0.2.7", 40002, ConnectionId(3))
        outputs = make_switch().handle(StreamReceived(data=data, peer=peer), 0.0)
    else:
        outputs = make_switch().handle(DatagramReceived(data=data, peer=PHONE), 0.0)
    response, _ = only_response(outputs)
    assert response.status == case["reply"]


@pytest.mark.parametrize(
    "name", sorted(n for n, c in CASES.items() if c["parse"] == "error" and "status_hint" in c)
)
def test_corpus_malformed_request_is_answered(name: str) -> None:
    case = CASES[name]
    data = (CORPUS / case["file"]).read_bytes()
    if case.get("transport") == "tcp":
        peer = Peer(Transport.TCP, "192.0.2.7", 40002, ConnectionId(3))
        outputs = make_switch().handle(StreamReceived(data=data, peer=peer), 0.0)
    else:
        outputs = make_switch().handle(DatagramReceived(data=data, peer=PHONE), 0.0)
    assert only_status_line(outputs).startswith(f"SIP/2.0 {case['status_hint']} ")


@pytest.mark.parametrize(
    "name", sorted(n for n, c in CASES.items() if c["parse"] == "error" and "status_hint" not in c)
)
def test_corpus_unanswerable_message_is_dropped(name: str) -> None:
    data = (CORPUS / CASES[name]["file"]).read_bytes()
    assert make_switch().handle(DatagramReceived(data=data, peer=PHONE), 0.0) == []


# -- nothing a peer sends makes the switch raise, and it answers the next request

_seeds = [request(), request("INVITE"), request("CANCEL"), request("FOO", extra="Require: x\r\n")]


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(_seeds),
    st.lists(st.tuples(st.integers(0, 400), st.binary(min_size=0, max_size=6)), max_size=4),
    st.booleans(),
)
def test_mutated_requests_never_break_the_switch(
    seed: bytes, edits: list[tuple[int, bytes]], over_tcp: bool
) -> None:
    data = seed
    for position, junk in edits:
        data = data[:position] + junk + data[position + len(junk) :]
    switch = make_switch()
    tcp = Peer(Transport.TCP, "192.0.2.7", 40002, ConnectionId(3))
    event = (
        StreamReceived(data=data, peer=tcp) if over_tcp else DatagramReceived(data=data, peer=PHONE)
    )
    switch.handle(event, 0.0)
    switch.fire_timers(100.0)
    assert answer(switch, request(branch="z9hG4bKnext"), 100.0).status == 200
