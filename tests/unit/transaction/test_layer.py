"""TransactionLayer: matching (RFC 3261 §17.1.3, §17.2.3, §9.2), stray messages, events,
and that terminated transactions leave the layer."""

from __future__ import annotations

import pytest

from b2bua.sip.address import Peer
from b2bua.sip.errors import LocalProtocolError
from b2bua.sip.message import Request
from b2bua.transaction.actions import SendMessage
from b2bua.transaction.client_invite import ClientInviteState
from b2bua.transaction.events import (
    AckReceived,
    CancelReceived,
    CancelTransactionTimer,
    RequestReceived,
    ResponseReceived,
    StartTransactionTimer,
    StrayResponse,
    TransactionTerminated,
    TransactionTimedOut,
    TransactionTransportFailed,
)
from b2bua.transaction.keys import Side, TransactionKey
from b2bua.transaction.layer import TransactionLayer
from b2bua.transaction.server_invite import ServerInviteState, ServerInviteTransaction
from b2bua.transaction.timers import TimerName, TimerSettings
from tests.unit.transaction.clock import LayerClock
from tests.unit.transaction.factories import (
    TCP_PEER,
    UDP_PEER,
    Sent,
    ack_for,
    cancel_for,
    invite,
    request,
    response,
    sends,
    wire_events,
)

SERVER_KEY = TransactionKey(Side.SERVER, "INVITE", "z9hG4bK-inv-1", ("192.0.2.10", 5060))


def _new_invite(layer: TransactionLayer, req: Request | None = None) -> TransactionKey:
    req = req or invite()
    events = layer.on_request(req, UDP_PEER, 0.0)
    assert isinstance(events[0], RequestReceived)
    assert events[0].request is req
    assert events[0].peer == UDP_PEER
    return events[0].key


# -- server side


def test_new_invite_creates_a_server_transaction() -> None:
    layer = TransactionLayer(TimerSettings())
    req = invite()
    events = layer.on_request(req, UDP_PEER, 0.0)
    assert events == [
        RequestReceived(request=req, peer=UDP_PEER, key=SERVER_KEY),
        StartTransactionTimer(key=SERVER_KEY, name=TimerName.TRYING, at=0.2),
    ]
    assert len(layer) == layer.count == 1
    assert SERVER_KEY in layer
    machine = layer.get(SERVER_KEY)
    assert isinstance(machine, ServerInviteTransaction)
    assert machine.request is req


def test_retransmitted_invite_goes_to_its_transaction() -> None:
    layer = TransactionLayer()
    key = _new_invite(layer)
    events = layer.on_request(invite(), UDP_PEER, 0.1)
    assert wire_events(events) == [
        CancelTransactionTimer(key=key, name=TimerName.TRYING),
        Sent(response(invite(), 100).to_bytes(), UDP_PEER),
    ]
    assert len(layer) == 1


def test_same_branch_different_method_is_another_transaction() -> None:
    layer = TransactionLayer()
    invite_key = _new_invite(layer)
    options = request("OPTIONS")  # the same branch and sent-by as the INVITE
    [received] = layer.on_request(options, UDP_PEER, 0.0)
    assert isinstance(received, RequestReceived)
    assert received.key != invite_key
    assert received.key.method == "OPTIONS"
    assert len(layer) == 2


def test_same_branch_different_sent_by_is_another_transaction() -> None:
    layer = TransactionLayer()
    first = _new_invite(layer)
    second = _new_invite(layer, invite(sent_by="192.0.2.99:5060"))
    assert first != second
    assert len(layer) == 2


def test_sent_by_port_is_defaulted_and_host_case_blind() -> None:
    layer = TransactionLayer()
    key = _new_invite(layer, invite(sent_by="Host.Example.COM"))
    assert key.sent_by == ("host.example.com", 5060)
    again = layer.on_request(invite(sent_by="host.example.com:5060"), UDP_PEER, 0.1)
    assert not any(isinstance(e, RequestReceived) for e in again)
    assert len(layer) == 1


def test_ack_for_non_2xx_is_absorbed() -> None:
    layer = TransactionLayer()
    key = _new_invite(layer)
    busy = response(invite(), 486)
    layer.send_response(key, busy, 0.1)
    events = layer.on_request(ack_for(invite(), busy), UDP_PEER, 0.3)
    assert events == [
        CancelTransactionTimer(key=key, name=TimerName.G),
        CancelTransactionTimer(key=key, name=TimerName.H),
        StartTransactionTimer(key=key, name=TimerName.I, at=5.3),
    ]
    machine = layer.get(key)
    assert machine is not None
    assert machine.state is ServerInviteState.CONFIRMED


def test_ack_for_2xx_is_passed_up() -> None:
    layer = TransactionLayer()
    key = _new_invite(layer)
    ok = response(invite(), 200)
    layer.send_response(key, ok, 0.1)
    own_branch = ack_for(invite(), ok, branch="z9hG4bK-ack-1")
    assert layer.on_request(own_branch, UDP_PEER, 0.3) == [
        AckReceived(request=own_branch, peer=UDP_PEER)
    ]
    # RFC 6026 §7.1: even an ACK that matches the transaction in Accepted goes up.
    same_branch = ack_for(invite(), ok)
    assert layer.on_request(same_branch, UDP_PEER, 0.4) == [
        AckReceived(request=same_branch, peer=UDP_PEER)
    ]


def test_ack_matching_nothing_is_passed_up() -> None:
    layer = TransactionLayer()
    ack = ack_for(invite(), response(invite(), 200), branch="z9hG4bK-lonely")
    assert layer.on_request(ack, TCP_PEER, 0.0) == [AckReceived(request=ack, peer=TCP_PEER)]
    assert len(layer) == 0


def test_cancel_is_matched_to_its_invite() -> None:
    layer = TransactionLayer()
    invite_key = _new_invite(layer)
    cancel = cancel_for(invite())
    events = layer.on_request(cancel, UDP_PEER, 1.0)
    cancel_key = TransactionKey(Side.SERVER, "CANCEL", "z9hG4bK-inv-1", ("192.0.2.10", 5060))
    assert events == [
        CancelReceived(cancel=cancel, peer=UDP_PEER, cancel_key=cancel_key, invite_key=invite_key)
    ]
    assert len(layer) == 2
    # The TU answers the CANCEL and the INVITE.
    ok = layer.send_response(cancel_key, response(cancel, 200), 1.0)
    terminated = layer.send_response(invite_key, response(invite(), 487), 1.0)
    assert [s.message.status for s in sends(ok + terminated)] == [200, 487]  # type: ignore[union-attr]
    # A retransmitted CANCEL gets the 200 again, not a new CancelReceived.
    again = layer.on_request(cancel_for(invite()), UDP_PEER, 1.5)
    assert [type(e) for e in again] == [SendMessage]


def test_cancel_for_an_unknown_invite_has_no_invite_key() -> None:
    layer = TransactionLayer()
    cancel = cancel_for(invite(branch="z9hG4bK-gone"))
    [event] = layer.on_request(cancel, UDP_PEER, 0.0)
    assert isinstance(event, CancelReceived)
    assert event.invite_key is None
    assert len(layer) == 1


def test_cancel_from_another_sent_by_does_not_match() -> None:
    layer = TransactionLayer()
    _new_invite(layer)
    cancel = cancel_for(invite(sent_by="198.51.100.7:5060"))
    [event] = layer.on_request(cancel, UDP_PEER, 0.0)
    assert isinstance(event, CancelReceived)
    assert event.invite_key is None


# -- RFC 2543 (no magic cookie)


def test_rfc2543_retransmission_matches() -> None:
    layer = TransactionLayer()
    key = _new_invite(layer, invite(branch=None))
    assert key.legacy is not None
    assert key.branch == ""
    events = layer.on_request(invite(branch=None), UDP_PEER, 0.5)
    assert not any(isinstance(e, RequestReceived) for e in events)
    assert len(layer) == 1
    # Another CSeq is another transaction.
    _new_invite(layer, invite(branch=None, cseq=2))
    assert len(layer) == 2


def test_rfc2543_branch_without_cookie_uses_the_2543_rule() -> None:
    layer = TransactionLayer()
    key = _new_invite(layer, invite(branch="old-style-1"))
    assert key.legacy is not None
    events = layer.on_request(invite(branch="old-style-1"), UDP_PEER, 0.5)
    assert not any(isinstance(e, RequestReceived) for e in events)


def test_rfc2543_ack_for_non_2xx_is_absorbed_when_the_to_tag_matches() -> None:
    layer = TransactionLayer()
    key = _new_invite(layer, invite(branch=None))
    busy = response(invite(branch=None), 486, to_tag="uas-tag")
    layer.send_response(key, busy, 0.1)
    wrong_tag = ack_for(invite(branch=None), response(invite(branch=None), 486, to_tag="other"))
    assert layer.on_request(wrong_tag, UDP_PEER, 0.2) == [
        AckReceived(request=wrong_tag, peer=UDP_PEER)
    ]
    events = layer.on_request(ack_for(invite(branch=None), busy), UDP_PEER, 0.3)
    assert [type(e) for e in events] == [
        CancelTransactionTimer,
        CancelTransactionTimer,
        StartTransactionTimer,
    ]
    machine = layer.get(key)
    assert machine is not None
    assert machine.state is ServerInviteState.CONFIRMED


def test_rfc2543_ack_for_2xx_is_passed_up() -> None:
    layer = TransactionLayer()
    key = _new_invite(layer, invite(branch=None))
    ok = response(invite(branch=None), 200, to_tag="uas-tag")
    layer.send_response(key, ok, 0.1)
    ack = ack_for(invite(branch=None), ok)
    assert layer.on_request(ack, UDP_PEER, 0.2) == [AckReceived(request=ack, peer=UDP_PEER)]


def test_rfc2543_cancel_matches_its_invite() -> None:
    layer = TransactionLayer()
    invite_key = _new_invite(layer, invite(branch=None))
    [event] = layer.on_request(cancel_for(invite(branch=None)), UDP_PEER, 0.5)
    assert isinstance(event, CancelReceived)
    assert event.invite_key == invite_key
    assert event.cancel_key.method == "CANCEL"


# -- client side


def test_response_is_matched_by_branch_and_method() -> None:
    layer = TransactionLayer()
    inv = invite(branch="z9hG4bK-out-1")
    key, events = layer.send_request(inv, TCP_PEER, 0.0)
    assert key == TransactionKey(Side.CLIENT, "INVITE", "z9hG4bK-out-1")
    assert wire_events(events) == [
        Sent(inv.to_bytes(), TCP_PEER),
        StartTransactionTimer(key=key, name=TimerName.B, at=32.0),
    ]
    ringing = response(inv, 180)
    assert layer.on_response(ringing, TCP_PEER, 1.0) == [
        CancelTransactionTimer(key=key, name=TimerName.B),
        ResponseReceived(response=ringing, key=key),
    ]
    # Same branch, CSeq method CANCEL: the CANCEL's transaction, not the INVITE's.
    cancel = cancel_for(inv)
    cancel_key, _ = layer.send_request(cancel, TCP_PEER, 2.0)
    assert cancel_key == TransactionKey(Side.CLIENT, "CANCEL", "z9hG4bK-out-1")
    ok = response(cancel, 200)
    events = layer.on_response(ok, TCP_PEER, 2.1)
    assert ResponseReceived(response=ok, key=cancel_key) in events
    assert TransactionTerminated(key=cancel_key) in events
    assert layer.get(key) is not None
    assert len(layer) == 1


def test_stray_2xx_to_invite_is_reported_other_strays_dropped() -> None:
    layer = TransactionLayer()
    inv = invite(branch="z9hG4bK-nobody")
    ok = response(inv, 200)
    assert layer.on_response(ok, UDP_PEER, 0.0) == [StrayResponse(response=ok, peer=UDP_PEER)]
    assert layer.on_response(response(inv, 486), UDP_PEER, 0.0) == []
    assert layer.on_response(response(inv, 180), UDP_PEER, 0.0) == []
    bye = request("BYE", branch="z9hG4bK-nobody", to_tag="t")
    assert layer.on_response(response(bye, 200), UDP_PEER, 0.0) == []


def test_2xx_after_a_non_2xx_final_is_a_stray() -> None:
    layer = TransactionLayer()
    inv = invite(branch="z9hG4bK-fork")
    key, _ = layer.send_request(inv, UDP_PEER, 0.0)
    layer.on_response(response(inv, 486, to_tag="fork-1"), UDP_PEER, 1.0)
    machine = layer.get(key)
    assert machine is not None
    assert machine.state is ClientInviteState.COMPLETED
    late = response(inv, 200, to_tag="fork-2")
    assert layer.on_response(late, UDP_PEER, 1.5) == [StrayResponse(response=late, peer=UDP_PEER)]


def test_2xx_retransmissions_reach_the_tu_until_timer_m() -> None:
    layer = TransactionLayer()
    inv = invite(branch="z9hG4bK-2xx")
    key, _ = layer.send_request(inv, UDP_PEER, 0.0)
    first, second = response(inv, 200), response(inv, 200)
    assert ResponseReceived(response=first, key=key) in layer.on_response(first, UDP_PEER, 1.0)
    assert layer.on_response(second, UDP_PEER, 2.0) == [ResponseReceived(response=second, key=key)]
    assert layer.on_timer(key, TimerName.M, 33.0) == [TransactionTerminated(key=key)]
    third = response(inv, 200)
    assert layer.on_response(third, UDP_PEER, 34.0) == [
        StrayResponse(response=third, peer=UDP_PEER)
    ]


def test_timeout_and_transport_errors_are_reported_with_the_key() -> None:
    layer = TransactionLayer()
    key, _ = layer.send_request(request("OPTIONS", branch="z9hG4bK-o1"), TCP_PEER, 0.0)
    assert layer.on_timer(key, TimerName.F, 32.0) == [
        TransactionTimedOut(key=key, name=TimerName.F),
        TransactionTerminated(key=key),
    ]
    other, _ = layer.send_request(request("OPTIONS", branch="z9hG4bK-o2"), TCP_PEER, 0.0)
    assert layer.on_transport_error(other, 0.1) == [
        TransactionTransportFailed(key=other),
        CancelTransactionTimer(key=other, name=TimerName.F),
        TransactionTerminated(key=other),
    ]
    assert len(layer) == 0
    assert layer.on_timer(key, TimerName.F, 40.0) == []
    assert layer.on_transport_error(other, 40.0) == []


def test_terminate_on_request_of_the_tu() -> None:
    layer = TransactionLayer()
    key, _ = layer.send_request(invite(branch="z9hG4bK-t"), UDP_PEER, 0.0)
    layer.on_response(response(invite(branch="z9hG4bK-t"), 180), UDP_PEER, 0.1)
    assert layer.terminate(key, 40.0) == [TransactionTerminated(key=key)]
    assert len(layer) == 0
    assert layer.terminate(key, 41.0) == []


def test_misuse_raises() -> None:
    layer = TransactionLayer()
    with pytest.raises(LocalProtocolError):
        layer.send_response(SERVER_KEY, response(invite(), 200), 0.0)
    with pytest.raises(LocalProtocolError):
        layer.send_request(ack_for(invite(), response(invite(), 200)), UDP_PEER, 0.0)
    with pytest.raises(LocalProtocolError):
        layer.send_request(invite(branch="no-cookie"), UDP_PEER, 0.0)
    with pytest.raises(LocalProtocolError):
        layer.send_request(invite(branch=None), UDP_PEER, 0.0)
    client_key, _ = layer.send_request(invite(), UDP_PEER, 0.0)
    with pytest.raises(LocalProtocolError):
        layer.send_request(invite(), UDP_PEER, 0.0)  # the branch is in use
    with pytest.raises(LocalProtocolError):
        layer.send_response(client_key, response(invite(), 200), 0.0)


# -- nothing leaks


def _drive_everything(clock: LayerClock, peer: Peer) -> None:
    layer = clock.layer
    # Server INVITE answered 486 and ACKed; server INVITE answered 200; OPTIONS answered.
    rejected = invite(branch="z9hG4bK-s1", transport=peer.transport)
    accepted = invite(branch="z9hG4bK-s2", transport=peer.transport)
    options = request("OPTIONS", branch="z9hG4bK-s3", transport=peer.transport)
    keys = {}
    for req in (rejected, accepted, options):
        [received, *_] = clock.feed(layer.on_request(req, peer, 0.0), 0.0)
        assert isinstance(received, RequestReceived)
        keys[req.method, received.key.branch] = received.key
    busy = response(rejected, 486)
    clock.at(1.0, lambda now: layer.send_response(keys["INVITE", "z9hG4bK-s1"], busy, now))
    clock.at(
        1.0,
        lambda now: layer.send_response(keys["INVITE", "z9hG4bK-s2"], response(accepted, 200), now),
    )
    clock.at(
        1.0,
        lambda now: layer.send_response(keys["OPTIONS", "z9hG4bK-s3"], response(options, 200), now),
    )
    clock.at(2.0, lambda now: layer.on_request(ack_for(rejected, busy), peer, now))
    # Client transactions: one answered, one never answered, one rejected.
    answered = invite(branch="z9hG4bK-c1", transport=peer.transport)
    silent = request("OPTIONS", branch="z9hG4bK-c2", transport=peer.transport)
    refused = invite(branch="z9hG4bK-c3", transport=peer.transport)
    clock.run_until(3.0)
    for req in (answered, silent, refused):
        clock.feed(layer.send_request(req, peer, 3.0)[1], 3.0)
    clock.at(4.0, lambda now: layer.on_response(response(answered, 200), peer, now))
    clock.at(4.0, lambda now: layer.on_response(response(refused, 603), peer, now))


@pytest.mark.parametrize("peer", [UDP_PEER, TCP_PEER])
def test_terminated_transactions_leave_the_layer(peer: Peer) -> None:
    layer = TransactionLayer()
    clock = LayerClock(layer)
    _drive_everything(clock, peer)
    assert len(layer) > 0
    clock.run()
    assert len(layer) == 0
    assert len(clock.timers) == 0
    terminated = [e.key for _, e in clock.log if isinstance(e, TransactionTerminated)]
    assert len(terminated) == len(set(terminated)) == 6
    assert [(t, e) for t, e in clock.log if isinstance(e, TransactionTimedOut)] == [
        (
            35.0,
            TransactionTimedOut(
                key=TransactionKey(Side.CLIENT, "OPTIONS", "z9hG4bK-c2"), name=TimerName.F
            ),
        )
    ]
