"""The message-waiting lamp through the switch (RFC 3842 over RFC 6665), on a virtual
clock: a phone SUBSCRIBEs to its own mailbox (digest, 407 first), gets a NOTIFY at once
and one whenever the store's counts change; other mailboxes are refused; registered
phones also get an unsolicited NOTIFY when a message arrives."""

from __future__ import annotations

from b2bua.events import MailboxCounts
from b2bua.sip.digest import answer_challenge, parse_challenge
from b2bua.sip.message import Request, Response
from b2bua.voicemail.mwi import MessageCounts, parse_message_summary
from b2bua.voicemail.settings import Mailbox

from .harness import REALM, Net, Phone
from .test_hunting import LINES, extensions, password


def mailbox(number: str) -> Mailbox:
    return Mailbox(
        number=number,
        greeting=None,
        email=None,
        pin=None,
        max_message_length=180.0,
        min_message_length=1.0,
        max_messages=100,
        silence_timeout=10.0,
    )


def lamp_net(*, unsolicited: bool = True) -> Net:
    net = Net(
        extensions=extensions(*LINES),
        mailboxes={n: mailbox(n) for n in ("101", "102")},
        unsolicited_notify=unsolicited,
    )
    return net


def subscribe(phone: Phone, number: str, *, expires: int = 3600) -> Response:
    """SUBSCRIBE, 407, SUBSCRIBE with Proxy-Authorization: the final response."""
    headers = ("Event: message-summary", "Accept: application/simple-message-summary")
    first = _subscribe(phone, number, 1, (*headers, f"Expires: {expires}"))
    challenged = phone.take_response("407 SUBSCRIBE")
    challenge = parse_challenge(challenged.headers.get_all("proxy-authenticate")[0])
    authorization = answer_challenge(
        challenge,
        username=phone.extension,
        password=phone.password,
        method="SUBSCRIBE",
        uri=first.uri,
        cnonce="c0ffee",
        nc=1,
    )
    _subscribe(
        phone,
        number,
        2,
        (*headers, f"Expires: {expires}", f"Proxy-Authorization: {authorization}"),
        call_id=first.call_id,
    )
    final = phone.inbox.popleft().response()
    return final


def _subscribe(
    phone: Phone, number: str, cseq: int, extra: tuple[str, ...], call_id: str | None = None
) -> Request:
    request = phone.build(
        "SUBSCRIBE",
        f"sip:{number}@{REALM}",
        from_=f"<sip:{phone.extension}@{REALM}>;tag=mwi-{phone.extension}",
        to=f"<sip:{number}@{REALM}>",
        call_id=call_id or f"mwi-{number}-{phone.host}",
        cseq=cseq,
        extra=extra,
    )
    phone.send(request)
    return request


def notified(phone: Phone) -> tuple[Request, MessageCounts]:
    """The next NOTIFY the phone got, answered 200, and the counts it carries."""
    notify = phone.take_request("NOTIFY")
    assert notify.headers.get("event") == "message-summary"
    assert notify.content_type == "application/simple-message-summary"
    phone.respond(notify, 200)
    return notify, parse_message_summary(notify.body)


def test_a_phone_watches_its_own_mailbox_and_sees_the_lamp_go_on_and_off() -> None:
    net = lamp_net(unsolicited=False)
    mary = net.phone("101", password=password("101"))
    ok = subscribe(mary, "101")
    assert (ok.status, ok.headers.get("expires")) == (200, "3600")
    notify, counts = notified(mary)
    assert counts == MessageCounts(0, 0)
    assert (notify.headers.get("subscription-state") or "").startswith("active")
    net.feed(MailboxCounts(mailbox="101", new=1, old=0))
    notify, counts = notified(mary)
    assert counts == MessageCounts(1, 0)
    assert b"Messages-Waiting: yes" in notify.body
    net.feed(MailboxCounts(mailbox="101", new=1, old=0))  # no change: no NOTIFY
    mary.assert_nothing()
    net.feed(MailboxCounts(mailbox="101", new=0, old=1))  # listened to (or deleted)
    assert b"Messages-Waiting: no" in notified(mary)[0].body
    net.feed(MailboxCounts(mailbox="102", new=3, old=0))  # someone else's mailbox
    mary.assert_nothing()
    net.run_until(3600.0)  # not refreshed: the subscription ends with a last NOTIFY
    notify, _ = notified(mary)
    assert (notify.headers.get("subscription-state") or "").startswith("terminated")
    net.feed(MailboxCounts(mailbox="101", new=2, old=1))
    mary.assert_nothing()


def test_another_extensions_mailbox_and_a_number_without_one_are_refused() -> None:
    net = lamp_net()
    mary = net.phone("101", password=password("101"))
    assert subscribe(mary, "102").status == 403
    assert subscribe(mary, "105").status == 404  # 105 has no mailbox here


def test_a_new_message_lights_registered_phones_that_did_not_subscribe() -> None:
    net = lamp_net()
    desk, mobile = (net.phone("101", password=password("101")) for _ in range(2))
    net.feed(MailboxCounts(mailbox="101", new=1, old=2))
    for phone in (desk, mobile):
        notify, counts = notified(phone)
        assert counts == MessageCounts(1, 2)
        assert notify.to.tag is None  # out of any dialog
    later = net.phone("101", password=password("101"))  # comes up with the lamp lit
    assert notified(later)[1] == MessageCounts(1, 2)
