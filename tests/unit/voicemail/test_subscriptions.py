"""The notifier side of RFC 6665 for message-summary (RFC 3842): answers to SUBSCRIBE,
the NOTIFYs, refresh, unsubscribe, expiry, failed NOTIFYs, count changes and the
unsolicited NOTIFY."""

from __future__ import annotations

import pytest
import structlog

from b2bua.dialog import LocalAddress
from b2bua.ids import SeededIds
from b2bua.sip.address import Peer, Transport
from b2bua.sip.errors import LocalProtocolError
from b2bua.sip.message import Request
from b2bua.voicemail.mwi import MessageCounts, message_summary_body, parse_message_summary
from b2bua.voicemail.subscriptions import (
    ArmExpiry,
    DisarmExpiry,
    MwiSubscriptions,
    Respond,
    SendNotify,
    SubscriptionId,
)
from tests.unit.voicemail.factories import (
    CALL_ID,
    LOCAL,
    OUR_CONTACT,
    PHONE,
    PHONE_CONTACT,
    arms,
    new_subscriptions,
    notifies,
    only_notify,
    response_of,
    state_of,
    subscribe,
    subscribe_request,
    subscription_of,
)

ACCOUNT = "sip:101@192.0.2.1"
TWO_NEW = MessageCounts(2, 5)


def established(
    subscriptions: MwiSubscriptions, *, now: float = 0.0, counts: MessageCounts = TWO_NEW
) -> tuple[SubscriptionId, str]:
    """A subscription whose first NOTIFY got its 200; returns its id and our tag."""
    actions = subscribe(subscriptions, counts=counts, now=now)
    key = subscription_of(actions)
    tag = response_of(actions).to.tag
    assert tag is not None
    assert subscriptions.notify_outcome(key, 200, now) == []
    return key, tag


def refresh(
    tag: str,
    *,
    cseq: int,
    expires: int | str | None = 3600,
    event: str = "message-summary",
    accept: str = "application/simple-message-summary",
    contact: str = f"<{PHONE_CONTACT}>",
    call_id: str = CALL_ID,
    from_tag: str = "phone-tag",
) -> Request:
    """A SUBSCRIBE inside the subscription whose tag (ours) is ``tag``."""
    return subscribe_request(
        to_tag=tag,
        cseq=cseq,
        expires=expires,
        event=event,
        accept=accept,
        contact=contact,
        call_id=call_id,
        from_tag=from_tag,
    )


# -- the initial SUBSCRIBE


def test_subscribe_answers_200_and_notifies_at_once() -> None:
    subscriptions = new_subscriptions()
    actions = subscribe(subscriptions, counts=TWO_NEW, now=10.0)
    assert [type(a) for a in actions] == [Respond, SendNotify, ArmExpiry]

    response = response_of(actions)
    assert response.status == 200
    tag = response.to.tag
    assert tag is not None
    assert response.headers.get("Expires") == "3600"
    assert response.headers.get("Contact") == f"<{OUR_CONTACT}>"
    assert response.call_id == CALL_ID
    assert response.from_.tag == "phone-tag"

    notify = only_notify(actions)
    # RFC 3261 12.2.1.1: the Request-URI is the remote target (the SUBSCRIBE's Contact),
    # From and To are the SUBSCRIBE's To and From, each with its own side's tag.
    assert notify.uri == PHONE_CONTACT
    assert notify.from_.uri_text == ACCOUNT
    assert notify.from_.tag == tag
    assert notify.to.uri_text == "sip:101@192.0.2.1"
    assert notify.to.display_name == "Front Desk"
    assert notify.to.tag == "phone-tag"
    assert notify.call_id == CALL_ID
    assert notify.cseq.number == 1
    assert notify.cseq.method == "NOTIFY"
    assert notify.top_via.host == LOCAL.host
    assert notify.top_via.port == LOCAL.port
    assert notify.top_via.branch is not None
    assert notify.top_via.branch.startswith("z9hG4bK")
    assert notify.headers.get("Contact") == f"<{OUR_CONTACT}>"
    assert notify.headers.get("Event") == "message-summary"
    assert state_of(notify) == "active;expires=3600"
    assert notify.headers.get("Content-Type") == "application/simple-message-summary"
    assert notify.body == message_summary_body(TWO_NEW, ACCOUNT)
    assert notify.max_forwards == 70

    send = next(a for a in actions if isinstance(a, SendNotify))
    assert send.peer == PHONE
    assert arms(actions) == [3610.0]
    assert subscriptions.find(CALL_ID, tag) == subscription_of(actions)
    assert subscriptions.mailbox_of(subscription_of(actions)) == "101"
    assert len(subscriptions) == 1


@pytest.mark.parametrize(
    ("expires", "granted"), [(None, 3600), (3600, 3600), (7200, 3600), (60, 60), (600, 600)]
)
def test_subscribe_grants_at_most_an_hour(expires: int | None, granted: int) -> None:
    subscriptions = new_subscriptions()
    actions = subscribe(subscriptions, subscribe_request(expires=expires), now=5.0)
    assert response_of(actions).headers.get("Expires") == str(granted)
    assert state_of(only_notify(actions)) == f"active;expires={granted}"
    assert arms(actions) == [5.0 + granted]


def test_an_absurd_expires_is_capped() -> None:
    actions = subscribe(new_subscriptions(), subscribe_request(expires="9" * 40))
    assert response_of(actions).headers.get("Expires") == "3600"


@pytest.mark.parametrize("expires", [1, 30, 59])
def test_too_brief_is_423_with_min_expires(expires: int) -> None:
    subscriptions = new_subscriptions()
    actions = subscribe(subscriptions, subscribe_request(expires=expires))
    assert [type(a) for a in actions] == [Respond]
    response = response_of(actions)
    assert response.status == 423
    assert response.headers.get("Min-Expires") == "60"
    assert response.to.tag is not None  # RFC 3261 8.2.6.2
    assert len(subscriptions) == 0


@pytest.mark.parametrize(
    "event", ["presence", "dialog", "message-summary-x", None, "", "message-summary;=;"]
)
def test_another_event_package_is_489_with_allow_events(event: str | None) -> None:
    subscriptions = new_subscriptions()
    actions = subscribe(subscriptions, subscribe_request(event=event))
    response = response_of(actions)
    assert response.status == 489
    assert response.headers.get("Allow-Events") == "message-summary"
    assert len(subscriptions) == 0


def test_event_is_checked_before_expires() -> None:
    actions = subscribe(new_subscriptions(), subscribe_request(event="presence", expires=1))
    assert response_of(actions).status == 489


@pytest.mark.parametrize(
    "accept",
    [
        "application/pidf+xml",
        "",
        "application/simple-message-summary;q=0",
        "text/plain, application/xml",
    ],
)
def test_accept_without_our_body_is_406(accept: str) -> None:
    subscriptions = new_subscriptions()
    response = response_of(subscribe(subscriptions, subscribe_request(accept=accept)))
    assert response.status == 406
    assert response.headers.get("Accept") == "application/simple-message-summary"
    assert len(subscriptions) == 0


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "application/simple-message-summary",
        "Application/Simple-Message-Summary",
        "application/pidf+xml, application/simple-message-summary;q=0.5",
        "application/*",
        "*/*",
        "application/simple-message-summary;q=high",  # a broken q counts as 1
    ],
)
def test_accept_allowing_our_body_is_200(accept: str | None) -> None:
    assert (
        response_of(subscribe(new_subscriptions(), subscribe_request(accept=accept))).status == 200
    )


@pytest.mark.parametrize("expires", ["soon", "-5", "1.5"])
def test_malformed_expires_is_400(expires: str) -> None:
    response = response_of(subscribe(new_subscriptions(), subscribe_request(expires=expires)))
    assert response.status == 400


def test_subscribe_without_contact_is_400() -> None:
    subscriptions = new_subscriptions()
    response = response_of(subscribe(subscriptions, subscribe_request(contact=None)))
    assert response.status == 400
    assert len(subscriptions) == 0


def test_fetch_with_expires_0_notifies_once_and_keeps_nothing() -> None:
    subscriptions = new_subscriptions()
    actions = subscribe(subscriptions, subscribe_request(expires=0), counts=TWO_NEW)
    assert [type(a) for a in actions] == [Respond, SendNotify]
    response = response_of(actions)
    assert response.status == 200
    assert response.headers.get("Expires") == "0"
    notify = only_notify(actions)
    assert state_of(notify) == "terminated;reason=timeout"
    assert parse_message_summary(notify.body) == TWO_NEW
    assert len(subscriptions) == 0
    tag = response.to.tag
    assert tag is not None
    assert subscriptions.find(CALL_ID, tag) is None
    # The NOTIFY's outcome names a subscription that no longer exists.
    assert subscriptions.notify_outcome(subscription_of(actions), 481, 1.0) == []


def test_the_event_id_comes_back_in_every_notify() -> None:
    subscriptions = new_subscriptions()
    actions = subscribe(subscriptions, subscribe_request(event="message-summary;id=42"))
    assert only_notify(actions).headers.get("Event") == "message-summary;id=42"


def test_subscribe_refuses_an_in_dialog_request() -> None:
    with pytest.raises(LocalProtocolError):
        subscribe(new_subscriptions(), subscribe_request(to_tag="ours"))


def test_account_uri_given_by_the_switch() -> None:
    subscriptions = new_subscriptions()
    actions = subscriptions.subscribe(
        subscribe_request(),
        mailbox="101",
        counts=TWO_NEW,
        peer=PHONE,
        local=LOCAL,
        contact=OUR_CONTACT,
        now=0.0,
        account_uri="sip:*97@pbx.example.com",
    )
    body = only_notify(actions).body
    assert b"Message-Account: sip:*97@pbx.example.com\r\n" in body


# -- NOTIFYs over the subscription's life


def test_expires_counts_down_and_cseq_increases() -> None:
    subscriptions = new_subscriptions()
    key, _ = established(subscriptions)
    first = only_notify(subscriptions.counts_changed("101", MessageCounts(3, 5), 100.0))
    assert state_of(first) == "active;expires=3500"
    assert first.cseq.number == 2
    assert subscriptions.notify_outcome(key, 200, 101.0) == []
    second = only_notify(subscriptions.counts_changed("101", MessageCounts(0, 8), 1000.4))
    assert state_of(second) == "active;expires=2599"  # rounded down: refresh early
    assert second.cseq.number == 3
    assert parse_message_summary(second.body) == MessageCounts(0, 8)


def test_counts_changed_skips_unchanged_counts() -> None:
    subscriptions = new_subscriptions()
    established(subscriptions, counts=TWO_NEW)
    assert subscriptions.counts_changed("101", TWO_NEW, 50.0) == []


def test_counts_changed_reaches_only_that_mailboxs_subscribers() -> None:
    subscriptions = new_subscriptions()
    desk = subscription_of(subscribe(subscriptions, mailbox="101"))
    other_phone = subscribe_request(call_id="mwi-2@198.51.100.8", from_tag="p2")
    softphone = subscription_of(subscribe(subscriptions, other_phone, mailbox="101"))
    sales = subscribe_request(call_id="mwi-3@198.51.100.9", from_tag="p3", user="200")
    other = subscription_of(subscribe(subscriptions, sales, mailbox="200"))
    for key in (desk, softphone, other):
        subscriptions.notify_outcome(key, 200, 1.0)

    actions = subscriptions.counts_changed("101", MessageCounts(1, 0), 2.0)
    assert {a.subscription for a in actions if isinstance(a, SendNotify)} == {desk, softphone}
    assert {n.call_id for n in notifies(actions)} == {CALL_ID, "mwi-2@198.51.100.8"}
    assert subscriptions.counts_changed("300", MessageCounts(1, 0), 2.0) == []


def test_changes_while_a_notify_is_in_flight_go_out_as_one_after_it() -> None:
    subscriptions = new_subscriptions()
    actions = subscribe(subscriptions, counts=MessageCounts(0, 0))
    key = subscription_of(actions)
    assert subscriptions.counts_changed("101", MessageCounts(1, 0), 1.0) == []
    assert subscriptions.counts_changed("101", MessageCounts(2, 0), 2.0) == []
    follow_up = only_notify(subscriptions.notify_outcome(key, 200, 3.0))
    assert parse_message_summary(follow_up.body) == MessageCounts(2, 0)
    assert follow_up.cseq.number == 2
    assert state_of(follow_up) == "active;expires=3597"
    assert subscriptions.notify_outcome(key, 200, 4.0) == []


def test_a_change_undone_in_flight_sends_nothing_more() -> None:
    subscriptions = new_subscriptions()
    key = subscription_of(subscribe(subscriptions, counts=MessageCounts(0, 0)))
    subscriptions.counts_changed("101", MessageCounts(1, 0), 1.0)
    subscriptions.counts_changed("101", MessageCounts(0, 0), 2.0)
    assert subscriptions.notify_outcome(key, 200, 3.0) == []


# -- refresh and unsubscribe (RFC 6665 4.2.1.2)


def test_refresh_re_arms_and_notifies_the_new_expiry() -> None:
    subscriptions = new_subscriptions()
    key, tag = established(subscriptions)
    actions = subscriptions.resubscribe(refresh(tag, cseq=2, expires=1800), 1000.0)
    assert [type(a) for a in actions] == [Respond, SendNotify, ArmExpiry]
    response = response_of(actions)
    assert response.status == 200
    assert response.to.tag == tag
    assert response.headers.get("Expires") == "1800"
    assert response.headers.get("Contact") == f"<{OUR_CONTACT}>"
    notify = only_notify(actions)
    assert state_of(notify) == "active;expires=1800"
    assert notify.cseq.number == 2
    assert arms(actions) == [2800.0]
    # The old timer firing at 3600 finds the subscription refreshed.
    assert subscriptions.expired(key, 2000.0) == [ArmExpiry(subscription=key, at=2800.0)]


def test_refresh_while_the_first_notify_is_in_flight_waits_for_it() -> None:
    subscriptions = new_subscriptions()
    actions = subscribe(subscriptions)
    key = subscription_of(actions)
    tag = response_of(actions).to.tag
    assert tag is not None
    refreshed = subscriptions.resubscribe(refresh(tag, cseq=2), 10.0)
    assert [type(a) for a in refreshed] == [Respond, ArmExpiry]
    owed = only_notify(subscriptions.notify_outcome(key, 200, 20.0))
    assert state_of(owed) == "active;expires=3590"
    assert owed.cseq.number == 2


def test_refresh_with_a_new_contact_and_address_moves_the_notifies() -> None:
    subscriptions = new_subscriptions()
    _, tag = established(subscriptions)
    moved = Peer(Transport.UDP, "203.0.113.5", 40000)
    request = refresh(tag, cseq=2, contact="<sip:101@203.0.113.5:40000>")
    actions = subscriptions.resubscribe(request, 30.0, peer=moved)
    notify = only_notify(actions)
    assert notify.uri == "sip:101@203.0.113.5:40000"
    assert next(a for a in actions if isinstance(a, SendNotify)).peer == moved


def test_unsubscribe_answers_200_then_a_final_notify() -> None:
    subscriptions = new_subscriptions()
    key, tag = established(subscriptions, counts=TWO_NEW)
    actions = subscriptions.resubscribe(refresh(tag, cseq=2, expires=0), 50.0)
    assert [type(a) for a in actions] == [Respond, DisarmExpiry, SendNotify]
    response = response_of(actions)
    assert response.status == 200
    assert response.headers.get("Expires") == "0"
    notify = only_notify(actions)
    assert state_of(notify) == "terminated;reason=timeout"
    assert notify.cseq.number == 2
    assert parse_message_summary(notify.body) == TWO_NEW
    assert DisarmExpiry(subscription=key) in actions
    assert len(subscriptions) == 0
    assert subscriptions.find(CALL_ID, tag) is None
    again = subscriptions.resubscribe(refresh(tag, cseq=3), 60.0)
    assert response_of(again).status == 481


def test_unknown_dialog_is_481() -> None:
    subscriptions = new_subscriptions()
    _, tag = established(subscriptions)
    assert subscriptions.find(CALL_ID, "not-ours") is None
    for request in (
        refresh("not-ours", cseq=2),
        refresh(tag, cseq=2, call_id="other@198.51.100.7"),
        refresh(tag, cseq=2, from_tag="someone-else"),
    ):
        actions = subscriptions.resubscribe(request, 1.0)
        assert [type(a) for a in actions] == [Respond]
        assert response_of(actions).status == 481
    assert len(subscriptions) == 1


def test_refresh_out_of_order_is_500() -> None:
    subscriptions = new_subscriptions()
    _, tag = established(subscriptions)
    assert response_of(subscriptions.resubscribe(refresh(tag, cseq=5), 1.0)).status == 200
    stale = subscriptions.resubscribe(refresh(tag, cseq=4), 2.0)
    assert response_of(stale).status == 500


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"expires": "10"}, 423),
        ({"event": "presence"}, 489),
        ({"event": "message-summary;id=9"}, 481),
        ({"accept": "text/plain"}, 406),
        ({"expires": "x"}, 400),
    ],
)
def test_a_refused_refresh_leaves_the_subscription(kwargs: dict[str, str], status: int) -> None:
    subscriptions = new_subscriptions()
    key, tag = established(subscriptions)
    actions = subscriptions.resubscribe(refresh(tag, cseq=2, **kwargs), 10.0)
    assert [type(a) for a in actions] == [Respond]
    assert response_of(actions).status == status
    assert subscriptions.mailbox_of(key) == "101"
    assert subscriptions.expired(key, 100.0) == [ArmExpiry(subscription=key, at=3600.0)]


def test_resubscribe_refuses_another_method() -> None:
    subscriptions = new_subscriptions()
    request = subscribe_request(to_tag="x")
    request.method = "NOTIFY"
    with pytest.raises(LocalProtocolError):
        subscriptions.resubscribe(request, 0.0)


# -- expiry (RFC 6665 4.2.2)


def test_expiry_sends_terminated_timeout_and_forgets() -> None:
    subscriptions = new_subscriptions()
    key, tag = established(subscriptions, counts=TWO_NEW)
    actions = subscriptions.expired(key, 3600.0)
    notify = only_notify(actions)
    assert [type(a) for a in actions] == [SendNotify]
    assert state_of(notify) == "terminated;reason=timeout"
    assert notify.cseq.number == 2
    assert notify.to.tag == "phone-tag"
    assert notify.from_.tag == tag
    assert len(subscriptions) == 0
    assert subscriptions.expired(key, 3601.0) == []
    assert subscriptions.counts_changed("101", MessageCounts(9, 9), 3602.0) == []


def test_expiry_does_not_wait_for_a_notify_in_flight() -> None:
    subscriptions = new_subscriptions()
    key = subscription_of(subscribe(subscriptions))
    assert state_of(only_notify(subscriptions.expired(key, 3600.0))) == "terminated;reason=timeout"
    assert subscriptions.notify_outcome(key, 200, 3601.0) == []


# -- the NOTIFY's outcome (RFC 6665 4.2.2)


@pytest.mark.parametrize("status", [481, 408, 404, 403, 500, 503, 603, 302, None])
def test_a_failed_notify_ends_the_subscription(status: int | None) -> None:
    subscriptions = new_subscriptions()
    actions = subscribe(subscriptions)
    key = subscription_of(actions)
    tag = response_of(actions).to.tag
    assert tag is not None
    assert subscriptions.notify_outcome(key, status, 1.0) == [DisarmExpiry(subscription=key)]
    assert len(subscriptions) == 0
    assert subscriptions.find(CALL_ID, tag) is None
    assert subscriptions.snapshot(2.0) == {}
    assert subscriptions.counts_changed("101", MessageCounts(1, 0), 2.0) == []
    assert subscriptions.expired(key, 3600.0) == []


def test_a_2xx_keeps_it_and_a_provisional_changes_nothing() -> None:
    subscriptions = new_subscriptions()
    key = subscription_of(subscribe(subscriptions))
    assert subscriptions.notify_outcome(key, 100, 0.5) == []
    assert subscriptions.counts_changed("101", MessageCounts(1, 0), 0.6) == []  # still in flight
    assert len(notifies(subscriptions.notify_outcome(key, 202, 1.0))) == 1
    assert len(subscriptions) == 1


def test_491_keeps_it_and_the_next_change_sends_the_counts_again() -> None:
    subscriptions = new_subscriptions()
    key = subscription_of(subscribe(subscriptions, counts=TWO_NEW))
    assert subscriptions.notify_outcome(key, 491, 1.0) == []
    assert len(subscriptions) == 1
    again = only_notify(subscriptions.counts_changed("101", TWO_NEW, 5.0))
    assert parse_message_summary(again.body) == TWO_NEW


def test_an_outcome_when_nothing_is_in_flight_is_ignored() -> None:
    subscriptions = new_subscriptions()
    key, _ = established(subscriptions)
    assert subscriptions.notify_outcome(key, 481, 1.0) == []
    assert len(subscriptions) == 1


# -- the mailbox goes away


def test_drop_mailbox_ends_its_subscriptions_with_noresource() -> None:
    subscriptions = new_subscriptions()
    key, _ = established(subscriptions)
    sales = subscribe_request(call_id="mwi-3@198.51.100.9", from_tag="p3", user="200")
    kept = subscription_of(subscribe(subscriptions, sales, mailbox="200"))
    actions = subscriptions.drop_mailbox("101", 10.0)
    assert actions[0] == DisarmExpiry(subscription=key)
    assert state_of(only_notify(actions)) == "terminated;reason=noresource"
    assert list(subscriptions.snapshot(10.0)) == ["200"]
    assert subscriptions.mailbox_of(kept) == "200"
    assert subscriptions.drop_mailbox("101", 11.0) == []


# -- without a subscription


def test_unsolicited_notify() -> None:
    subscriptions = new_subscriptions()
    contact = "sip:101@198.51.100.7:5062;line=abc"
    actions = subscriptions.unsolicited(
        "101", TWO_NEW, contact_uri=contact, peer=PHONE, local=LOCAL, now=0.0
    )
    assert len(actions) == 1
    send = actions[0]
    assert isinstance(send, SendNotify)
    assert send.subscription is None
    assert send.peer == PHONE
    notify = only_notify(actions)
    assert notify.uri == contact
    assert notify.to.uri_text == contact
    assert notify.to.tag is None
    assert notify.from_.uri_text == "sip:101@192.0.2.1"
    assert notify.from_.tag is not None
    assert notify.cseq.number == 1
    assert notify.headers.get("Event") == "message-summary"
    assert state_of(notify) == "active"
    assert notify.headers.get("Content-Type") == "application/simple-message-summary"
    assert notify.body == message_summary_body(TWO_NEW, "sip:101@192.0.2.1")
    assert notify.top_via.host == "192.0.2.1"
    assert "contact" not in notify.headers

    second = only_notify(
        subscriptions.unsolicited(
            "101",
            MessageCounts(0, 7),
            contact_uri=contact,
            peer=PHONE,
            local=LOCAL,
            now=1.0,
            account_uri="sip:*97@pbx.example.com",
            contact=OUR_CONTACT,
        )
    )
    assert second.call_id != notify.call_id
    assert second.from_.tag != notify.from_.tag
    assert second.top_via.branch != notify.top_via.branch
    assert second.from_.uri_text == "sip:*97@pbx.example.com"
    assert second.headers.get("Contact") == f"<{OUR_CONTACT}>"
    assert parse_message_summary(second.body) == MessageCounts(0, 7)
    assert len(subscriptions) == 0


def test_unsolicited_over_ipv6_brackets_the_host() -> None:
    local = LocalAddress("2001:db8::1", 5060)
    actions = new_subscriptions().unsolicited(
        "101", TWO_NEW, contact_uri="sip:101@[2001:db8::7]", peer=PHONE, local=local, now=0.0
    )
    assert only_notify(actions).from_.uri_text == "sip:101@[2001:db8::1]"


# -- status


def test_snapshot_lists_subscriptions_per_mailbox() -> None:
    subscriptions = new_subscriptions()
    key, _ = established(subscriptions, now=100.0, counts=MessageCounts(1, 2, 1, 0))
    assert subscriptions.snapshot(700.0) == {
        "101": [
            {
                "id": int(key),
                "subscriber": "Front Desk <sip:101@192.0.2.1>",
                "target": PHONE_CONTACT,
                "peer": "udp:198.51.100.7:5062",
                "expires_in": 3000,
                "notified": "1/2 (1/0)",
            }
        ]
    }


def test_expiry_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="min_expires"):
        MwiSubscriptions(SeededIds(1), structlog.get_logger(), min_expires=0)
    small = MwiSubscriptions(
        SeededIds(1),
        structlog.get_logger(),
        default_expires=600,
        max_expires=900,
        min_expires=30,
    )
    actions = subscribe(small, subscribe_request(expires=None))
    assert response_of(actions).headers.get("Expires") == "600"
    assert (
        response_of(subscribe(small, subscribe_request(expires=20))).headers.get("Min-Expires")
        == "30"
    )
