"""Message-waiting subscriptions: the notifier side of RFC 6665 for the ``message-summary``
event package (RFC 3842), plus the unsolicited NOTIFY many desk phones expect instead.

:class:`MwiSubscriptions` is pure: every input takes ``now`` and returns a list of
:data:`MwiAction`; the switch sends, times and authorises. Inputs:

- ``subscribe(request, *, mailbox, counts, peer, local, contact, now)``: an initial SUBSCRIBE
  (no To tag) the switch has authenticated and allowed to watch ``mailbox``.
- ``resubscribe(request, now, *, peer=None)``: a SUBSCRIBE inside a subscription's dialog
  (a refresh, or Expires: 0 to unsubscribe). ``find(call_id, local_tag)`` tells the switch
  whether a dialog is one of ours.
- ``notify_outcome(subscription, status, now)``: the final response to one of our
  NOTIFYs, or None when its transaction timed out or the transport failed.
- ``expired(subscription, now)``: the expiry timer fired.
- ``counts_changed(mailbox, counts, now)``: the mailbox's counts changed.
- ``drop_mailbox(mailbox, now)``: the mailbox is gone (configuration reloaded).
- ``unsolicited(mailbox, counts, *, contact_uri, peer, local, now)``: an out-of-dialog
  NOTIFY to a phone that did not subscribe.

Actions: :class:`Respond` (in the SUBSCRIBE's server transaction), :class:`SendNotify`
(in a new client transaction, whose outcome comes back to ``notify_outcome``),
:class:`ArmExpiry` and :class:`DisarmExpiry` (one timer per subscription; arming again
replaces it). ``snapshot(now)`` is for /status.

Choices where the RFCs leave room:

- At most one NOTIFY of a subscription is in flight. What changes meanwhile waits for its
  final response and goes out as one NOTIFY with the latest counts: over UDP two NOTIFYs
  can arrive out of order, the phone answers the older one 500 (CSeq out of order, RFC
  3261 section 12.2.2), and RFC 6665 section 4.2.2 would then have us drop the
  subscription. A NOTIFY that ends a subscription goes at once.
- RFC 6665 section 4.2.2: a NOTIFY that fails (timeout, or an error response that implies
  no retry) removes the subscription. Every 3xx-6xx does so except 491 Request Pending,
  which asks to try later: the subscription stays and its next change or refresh sends
  the counts again.
- One subscription per dialog: a SUBSCRIBE in the dialog with another Event ``id`` gets 481.
- The Message-Account is the URI the phone subscribed to (the SUBSCRIBE's To URI) unless
  the switch names one; every NOTIFY, also the final one, carries the counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal, NewType, TypeAlias

from structlog.typing import FilteringBoundLogger

from b2bua.dialog.dialog import Dialog, DialogId
from b2bua.dialog.routing import LocalAddress, build_request, make_dialog_response
from b2bua.ids import IdSource
from b2bua.sip.address import Peer
from b2bua.sip.errors import LocalProtocolError, ParseError, RemoteProtocolError
from b2bua.sip.headers import get_param, parse_params
from b2bua.sip.message import Request, Response, make_response
from b2bua.sip.status import StatusCode
from b2bua.voicemail.mwi import (
    CONTENT_TYPE,
    EVENT_PACKAGE,
    MessageCounts,
    message_summary_body,
)

SubscriptionId = NewType("SubscriptionId", int)

#: RFC 3842 section 3.4: "The default expiration time for subscriptions ... is 3600
#: seconds"; we grant no more, and refuse less than a minute (423, RFC 6665 4.2.1.1).
DEFAULT_EXPIRES: Final = 3600
MAX_EXPIRES: Final = 3600
MIN_EXPIRES: Final = 60


class TerminationReason(StrEnum):
    """The ``reason`` of ``Subscription-State: terminated`` we use (RFC 6665 4.1.3)."""

    TIMEOUT = "timeout"  # expired, unsubscribed or fetched: the phone may subscribe again
    NORESOURCE = "noresource"  # the mailbox no longer exists


# -- actions (subscriptions -> switch)


@dataclass(frozen=True, slots=True, kw_only=True)
class Respond:
    """Send ``response`` in the server transaction of the SUBSCRIBE just handed in."""

    response: Response


@dataclass(frozen=True, slots=True, kw_only=True)
class SendNotify:
    """Send ``request`` to ``peer`` in a new client transaction. Its final response (or
    its timeout) goes back to :meth:`MwiSubscriptions.notify_outcome` with
    ``subscription``; None for an unsolicited NOTIFY, whose outcome nobody needs."""

    request: Request
    peer: Peer
    subscription: SubscriptionId | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ArmExpiry:
    """Call :meth:`MwiSubscriptions.expired` at ``at`` (replacing the timer armed before)."""

    subscription: SubscriptionId
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class DisarmExpiry:
    subscription: SubscriptionId


MwiAction: TypeAlias = Respond | SendNotify | ArmExpiry | DisarmExpiry


@dataclass(slots=True, kw_only=True, eq=False)
class _Subscription:
    id: SubscriptionId
    mailbox: str
    dialog: Dialog
    peer: Peer
    local: LocalAddress
    event_id: str | None  # the SUBSCRIBE's Event id, echoed in every NOTIFY (RFC 6665 8.2.1)
    account_uri: str
    expires_at: float
    counts: MessageCounts
    notified: MessageCounts | None = None  # the counts of the last NOTIFY sent
    is_notifying: bool = False  # a NOTIFY awaits its final response
    owes_notify: bool = True  # accepted or refreshed: RFC 6665 4.2.1.2 wants a NOTIFY

    @property
    def event(self) -> str:
        return EVENT_PACKAGE if self.event_id is None else f"{EVENT_PACKAGE};id={self.event_id}"


class MwiSubscriptions:
    """Every message-waiting subscription of the switch (see the module docstring)."""

    def __init__(
        self,
        ids: IdSource,
        log: FilteringBoundLogger,
        *,
        default_expires: int = DEFAULT_EXPIRES,
        max_expires: int = MAX_EXPIRES,
        min_expires: int = MIN_EXPIRES,
    ) -> None:
        if not 0 < min_expires <= default_expires <= max_expires:
            raise ValueError("expected 0 < min_expires <= default_expires <= max_expires")
        self._ids = ids
        self._log = log
        self.default_expires = default_expires
        self.max_expires = max_expires
        self.min_expires = min_expires
        self._last_id = 0
        self._subscriptions: dict[SubscriptionId, _Subscription] = {}
        self._by_dialog: dict[tuple[str, str], SubscriptionId] = {}
        # A dict keeps insertion order: NOTIFYs go out oldest subscription first.
        self._by_mailbox: dict[str, dict[SubscriptionId, None]] = {}

    def __len__(self) -> int:
        return len(self._subscriptions)

    def find(self, call_id: str, local_tag: str) -> SubscriptionId | None:
        """The subscription whose dialog has this Call-ID and our tag (the To tag of an
        incoming SUBSCRIBE), or None: then the switch answers the SUBSCRIBE 481."""
        return self._by_dialog.get((call_id, local_tag))

    def mailbox_of(self, subscription: SubscriptionId) -> str | None:
        found = self._subscriptions.get(subscription)
        return None if found is None else found.mailbox

    # -- SUBSCRIBE

    def subscribe(
        self,
        request: Request,
        *,
        mailbox: str,
        counts: MessageCounts,
        peer: Peer,
        local: LocalAddress,
        contact: str,
        now: float,
        account_uri: str | None = None,
    ) -> list[MwiAction]:
        """Answer an initial SUBSCRIBE for ``mailbox``, whose counts are ``counts``.

        489 (with Allow-Events) for another event package, 400 for a malformed Expires,
        423 (with Min-Expires) below the minimum, 406 when Accept excludes our body, 400
        without a usable Contact. Otherwise 200 with our To tag, Expires (the granted
        duration) and Contact ``contact`` (our URI; it becomes the dialog's local
        target), then the first NOTIFY at once, and the expiry timer. Expires: 0 is a
        fetch (RFC 6665 4.4.3): 200, one NOTIFY ``terminated;reason=timeout``, and
        nothing kept. ``peer`` is where NOTIFYs go; ``local`` gives their Via.
        """
        if request.method != "SUBSCRIBE" or request.to.tag is not None:
            raise LocalProtocolError("subscribe() takes an initial SUBSCRIBE (no To tag)")
        tag = self._ids.new_tag()
        event_id = _event_id(request)
        if event_id is False:
            return [Respond(response=_bad_event(request, tag))]
        granted = self._granted_expires(request, tag)
        if isinstance(granted, Response):
            return [Respond(response=granted)]
        if not _accepts_summary(request):
            return [Respond(response=_not_acceptable(request, tag))]
        try:
            dialog = Dialog.from_uas(request, tag, contact, confirmed=True)
        except RemoteProtocolError as exc:
            status = exc.status_hint or StatusCode.BAD_REQUEST
            return [Respond(response=make_response(request, status, exc.reason, to_tag=tag))]
        response = make_dialog_response(
            request, StatusCode.OK, local_tag=tag, local_contact=contact
        )
        response.headers.add("Expires", str(granted))
        self._last_id += 1
        subscription = _Subscription(
            id=SubscriptionId(self._last_id),
            mailbox=mailbox,
            dialog=dialog,
            peer=peer,
            local=local,
            event_id=event_id,
            account_uri=account_uri or request.to.uri_text,
            expires_at=now + granted,
            counts=counts,
        )
        if granted == 0:
            self._log.info("mwi_fetched", mailbox=mailbox, subscriber=dialog.remote_uri)
            return [
                Respond(response=response),
                self._final_notify(subscription, TerminationReason.TIMEOUT),
            ]
        self._add(subscription)
        self._log.info(
            "mwi_subscribed",
            mailbox=mailbox,
            subscription=subscription.id,
            subscriber=dialog.remote_uri,
            expires=granted,
        )
        return [
            Respond(response=response),
            *self._flush(subscription, now),
            ArmExpiry(subscription=subscription.id, at=subscription.expires_at),
        ]

    def resubscribe(
        self, request: Request, now: float, *, peer: Peer | None = None
    ) -> list[MwiAction]:
        """Answer a SUBSCRIBE inside a subscription's dialog (RFC 6665 4.2.1.2).

        481 when the dialog is not one of ours (or names another Event id), 500 for a
        CSeq out of order, 489/400/423/406 as for :meth:`subscribe` (the subscription
        stays as it was). Otherwise 200 with Expires and Contact; Expires: 0 ends the
        subscription with a NOTIFY ``terminated;reason=timeout``, any other duration
        re-arms the expiry and sends a NOTIFY with the new ``expires``. A Contact in the
        SUBSCRIBE becomes the target of later NOTIFYs; ``peer``, when given, is where
        they go from now on (the phone's address may have changed).
        """
        if request.method != "SUBSCRIBE":
            raise LocalProtocolError("resubscribe() takes a SUBSCRIBE")
        found = DialogId.of_request(request)
        subscription = None
        if found is not None:
            key = self._by_dialog.get((found.call_id, found.local_tag))
            subscription = None if key is None else self._subscriptions[key]
        if subscription is None or subscription.dialog.id != found:
            return [
                Respond(response=make_response(request, StatusCode.CALL_TRANSACTION_DOES_NOT_EXIST))
            ]
        try:
            subscription.dialog.on_request(request)
        except RemoteProtocolError as exc:
            status = exc.status_hint or StatusCode.BAD_REQUEST
            return [Respond(response=make_response(request, status, exc.reason))]
        event_id = _event_id(request)
        if event_id is False:
            return [Respond(response=_bad_event(request, None))]
        if event_id != subscription.event_id:
            return [
                Respond(response=make_response(request, StatusCode.CALL_TRANSACTION_DOES_NOT_EXIST))
            ]
        granted = self._granted_expires(request, None)
        if isinstance(granted, Response):
            return [Respond(response=granted)]
        if not _accepts_summary(request):
            return [Respond(response=_not_acceptable(request, None))]
        if peer is not None:
            subscription.peer = peer
        response = make_response(request, StatusCode.OK)
        response.headers.add("Contact", f"<{subscription.dialog.local_target}>")
        response.headers.add("Expires", str(granted))
        if granted == 0:
            self._log.info(
                "mwi_unsubscribed", mailbox=subscription.mailbox, subscription=subscription.id
            )
            return [
                Respond(response=response),
                DisarmExpiry(subscription=subscription.id),
                self._final_notify(subscription, TerminationReason.TIMEOUT),
            ]
        subscription.expires_at = now + granted
        subscription.owes_notify = True
        return [
            Respond(response=response),
            *self._flush(subscription, now),
            ArmExpiry(subscription=subscription.id, at=subscription.expires_at),
        ]

    # -- what happened since

    def notify_outcome(
        self, subscription: SubscriptionId, status: int | None, now: float
    ) -> list[MwiAction]:
        """The final ``status`` of the NOTIFY sent for ``subscription``, or None when its
        transaction timed out (or the transport failed). A 2xx keeps the subscription and
        sends what changed meanwhile; a failure removes it (see the module docstring).
        Unknown subscriptions (a final NOTIFY's outcome) and provisional ones are ignored.
        """
        found = self._subscriptions.get(subscription)
        if found is None or not found.is_notifying or (status is not None and status < 200):
            return []
        found.is_notifying = False
        if status is not None and status < 300:
            return self._flush(found, now)
        if status == StatusCode.REQUEST_PENDING:
            found.notified = None  # unknown whether the phone took it: send it again next time
            return []
        self._forget(found)
        self._log.info(
            "mwi_notify_failed",
            mailbox=found.mailbox,
            subscription=found.id,
            status="timeout" if status is None else status,
        )
        return [DisarmExpiry(subscription=found.id)]

    def expired(self, subscription: SubscriptionId, now: float) -> list[MwiAction]:
        """The expiry timer of ``subscription`` fired: a NOTIFY ``terminated;reason=timeout``
        (RFC 6665 4.2.2), and the subscription is forgotten."""
        found = self._subscriptions.get(subscription)
        if found is None:
            return []
        if now < found.expires_at:
            # A timer armed before a refresh: only the latest one counts.
            return [ArmExpiry(subscription=found.id, at=found.expires_at)]
        self._log.info("mwi_expired", mailbox=found.mailbox, subscription=found.id)
        return [self._final_notify(found, TerminationReason.TIMEOUT)]

    def counts_changed(self, mailbox: str, counts: MessageCounts, now: float) -> list[MwiAction]:
        """A NOTIFY with ``counts`` to each subscription of ``mailbox`` that has not been
        told them yet (one whose NOTIFY is in flight gets them after its response)."""
        actions: list[MwiAction] = []
        for key in self._by_mailbox.get(mailbox, {}):
            subscription = self._subscriptions[key]
            subscription.counts = counts
            actions.extend(self._flush(subscription, now))
        return actions

    def drop_mailbox(self, mailbox: str, now: float) -> list[MwiAction]:
        """``mailbox`` no longer exists: each of its subscriptions ends with a NOTIFY
        ``terminated;reason=noresource`` (RFC 6665 4.1.3)."""
        actions: list[MwiAction] = []
        for key in list(self._by_mailbox.get(mailbox, {})):
            actions.append(DisarmExpiry(subscription=key))
            actions.append(
                self._final_notify(self._subscriptions[key], TerminationReason.NORESOURCE)
            )
        return actions

    # -- without a subscription

    def unsolicited(
        self,
        mailbox: str,
        counts: MessageCounts,
        *,
        contact_uri: str,
        peer: Peer,
        local: LocalAddress,
        now: float,
        account_uri: str | None = None,
        contact: str | None = None,
    ) -> list[MwiAction]:
        """An out-of-dialog NOTIFY of ``counts`` to a registered phone at ``contact_uri``
        (reached at ``peer``) that did not subscribe, as many desk phones expect: no To
        tag, a new Call-ID every time, CSeq 1, ``Event: message-summary`` and
        ``Subscription-State: active``. Request-URI and To are the phone's contact; From
        is ``account_uri`` (default ``sip:<mailbox>@<our host>``) with a new tag, and the
        body names the same account. ``contact``, when given, is sent as our Contact."""
        account = account_uri or f"sip:{mailbox}@{_uri_host(local.host)}"
        request = build_request(
            "NOTIFY",
            remote_target=contact_uri,
            route_set=[],
            via=local.via(self._ids.new_branch()),
            from_=f"<{account}>;tag={self._ids.new_tag()}",
            to=f"<{contact_uri}>",
            call_id=self._ids.new_call_id(),
            cseq=1,
            contact=contact,
            body=message_summary_body(counts, account),
            content_type=CONTENT_TYPE,
            extra_headers=(("Event", EVENT_PACKAGE), ("Subscription-State", "active")),
        )
        return [SendNotify(request=request, peer=peer, subscription=None)]

    # -- status

    def snapshot(self, now: float) -> dict[str, list[dict[str, object]]]:
        """Subscriptions per mailbox, for /status: who watches, where NOTIFYs go, the
        seconds left and the counts last sent."""
        state: dict[str, list[dict[str, object]]] = {}
        for mailbox, keys in sorted(self._by_mailbox.items()):
            rows: list[dict[str, object]] = []
            for key in keys:
                subscription = self._subscriptions[key]
                notified = subscription.notified
                rows.append(
                    {
                        "id": int(key),
                        "subscriber": subscription.dialog.remote_uri,
                        "target": subscription.dialog.remote_target,
                        "peer": str(subscription.peer),
                        "expires_in": max(0, round(subscription.expires_at - now)),
                        "notified": None if notified is None else _counts_text(notified),
                    }
                )
            state[mailbox] = rows
        return state

    # -- internals

    def _granted_expires(self, request: Request, to_tag: str | None) -> int | Response:
        """The duration to grant, or the refusal (400 malformed, 423 too brief)."""
        value = request.headers.get("expires")
        if value is None:
            return self.default_expires
        value = value.strip()
        if not value.isascii() or not value.isdigit():
            return make_response(
                request, StatusCode.BAD_REQUEST, "Malformed Expires", to_tag=to_tag
            )
        requested = self.max_expires if len(value) > 10 else int(value)
        if 0 < requested < self.min_expires:
            response = make_response(request, StatusCode.INTERVAL_TOO_BRIEF, to_tag=to_tag)
            response.headers.add("Min-Expires", str(self.min_expires))
            return response
        return min(requested, self.max_expires)

    def _add(self, subscription: _Subscription) -> None:
        dialog = subscription.dialog
        self._subscriptions[subscription.id] = subscription
        self._by_dialog[(dialog.call_id, dialog.local_tag)] = subscription.id
        self._by_mailbox.setdefault(subscription.mailbox, {})[subscription.id] = None

    def _forget(self, subscription: _Subscription) -> None:
        dialog = subscription.dialog
        dialog.terminate()
        if self._subscriptions.pop(subscription.id, None) is None:
            return  # a fetch: never added
        del self._by_dialog[(dialog.call_id, dialog.local_tag)]
        keys = self._by_mailbox[subscription.mailbox]
        del keys[subscription.id]
        if not keys:
            del self._by_mailbox[subscription.mailbox]

    def _flush(self, subscription: _Subscription, now: float) -> list[MwiAction]:
        """The NOTIFY the subscription is owed, unless one is in flight."""
        if subscription.is_notifying:
            return []
        if not subscription.owes_notify and subscription.counts == subscription.notified:
            return []
        # RFC 6665 4.1.3: expires is the time left; rounded down, so the phone refreshes
        # a little early rather than late.
        left = max(1, int(subscription.expires_at - now))
        notify = self._notify(subscription, f"active;expires={left}")
        subscription.is_notifying = True
        return [notify]

    def _final_notify(self, subscription: _Subscription, reason: TerminationReason) -> SendNotify:
        notify = self._notify(subscription, f"terminated;reason={reason}")
        self._forget(subscription)
        return notify

    def _notify(self, subscription: _Subscription, state: str) -> SendNotify:
        request = subscription.dialog.new_request(
            "NOTIFY",
            branch=self._ids.new_branch(),
            local_address=subscription.local,
            body=message_summary_body(subscription.counts, subscription.account_uri),
            content_type=CONTENT_TYPE,
            extra_headers=(("Event", subscription.event), ("Subscription-State", state)),
        )
        subscription.notified = subscription.counts
        subscription.owes_notify = False
        return SendNotify(request=request, peer=subscription.peer, subscription=subscription.id)


def _event_id(request: Request) -> str | Literal[False] | None:
    """The Event id of a message-summary SUBSCRIBE (None without one), or False when the
    request names another package or none (RFC 6665 8.2.1: the token, then parameters)."""
    value = request.headers.get("event")
    if value is None:
        return False
    package, semi, rest = value.partition(";")
    # Event packages are tokens; we accept any case, as phones are not all careful.
    if package.strip().lower() != EVENT_PACKAGE:
        return False
    if not semi:
        return None
    try:
        return get_param(parse_params(semi + rest, "Event header"), "id")
    except ParseError:
        return False


def _accepts_summary(request: Request) -> bool:
    """Whether the SUBSCRIBE's Accept allows our body (RFC 6665 4.2.1.1, RFC 3261 20.1:
    no Accept means the package's default; an empty one accepts nothing; q=0 refuses)."""
    if "accept" not in request.headers:
        return True
    for media_range in request.headers.get_all("accept"):
        media, _, params = media_range.partition(";")
        if media.strip().lower() not in (CONTENT_TYPE, "application/*", "*/*"):
            continue
        if _quality(params) > 0:
            return True
    return False


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 1.0
    return 1.0


def _bad_event(request: Request, to_tag: str | None) -> Response:
    # RFC 6665 4.2.1.1: 489, with Allow-Events naming the packages we support.
    response = make_response(request, StatusCode.BAD_EVENT, to_tag=to_tag)
    response.headers.add("Allow-Events", EVENT_PACKAGE)
    return response


def _not_acceptable(request: Request, to_tag: str | None) -> Response:
    response = make_response(request, StatusCode.NOT_ACCEPTABLE, to_tag=to_tag)
    response.headers.add("Accept", CONTENT_TYPE)
    return response


def _uri_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _counts_text(counts: MessageCounts) -> str:
    text = f"{counts.new}/{counts.old}"
    return (
        text if counts.urgent_new is None else f"{text} ({counts.urgent_new}/{counts.urgent_old})"
    )
