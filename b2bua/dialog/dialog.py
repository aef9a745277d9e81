"""The dialog: RFC 3261 section 12, the state two user agents share for a while.

A :class:`Dialog` holds the dialog state (Call-ID, tags, local and remote CSeq, local
and remote URI, remote target, route set, secure flag) and its lifecycle state
(:class:`DialogState`). It is pure: it reads messages and builds requests; the switch
sends them (in client transactions, except the ACK for a 2xx, which the dialog's owner
sends directly, RFC 3261 section 13.2.2.4). Usages such as the INVITE session sit on top.

Inputs, all plain method calls:

- ``Dialog.from_uas(request, ...)``: we answered a dialog-creating request (12.1.1).
- ``Dialog.from_uac(request, response)``: a tagged 1xx or a 2xx to our request (12.1.2).
- ``confirm(response)``: the 2xx that confirms an early dialog (13.2.2.4).
- ``on_request(request)``: a request the peer sent in the dialog (12.2.2).
- ``on_response(response)``: a response to a request we sent in the dialog (12.2.1.2).
- ``terminate()``.

Outputs: requests from ``new_request`` and ``ack_for_2xx`` (12.2.1.1, 13.2.2.4), and
:class:`DialogCheck` verdicts, or a :class:`DialogError` carrying the status to answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from b2bua.dialog.routing import (
    LocalAddress,
    build_request,
    first_contact_uri,
    record_route,
    route_uri,
    with_tag,
    without_tag,
)
from b2bua.sip.errors import LocalProtocolError, RemoteProtocolError
from b2bua.sip.message import Request, Response

#: Requests that may create a dialog: INVITE (RFC 3261 section 12.1), SUBSCRIBE
#: (RFC 6665) and REFER (RFC 3515, through its implicit subscription).
DIALOG_CREATING_METHODS: Final = frozenset({"INVITE", "SUBSCRIBE", "REFER"})

#: Target refresh requests: they, and their 2xx, replace the remote target. INVITE
#: (RFC 3261 section 12.2), UPDATE (RFC 3311), SUBSCRIBE and NOTIFY (RFC 6665).
TARGET_REFRESH_METHODS: Final = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY"})

#: Requests that take the CSeq number of the request they belong to instead of a new
#: one (RFC 3261 sections 9.1 and 13.2.2.4).
UNSEQUENCED_METHODS: Final = frozenset({"ACK", "CANCEL"})


class DialogState(Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class DialogCheck(Enum):
    """What the dialog made of an in-dialog request or a response to one."""

    ACCEPTED = "accepted"  # in order (remote CSeq recorded); the remote target is unchanged
    TARGET_REFRESHED = "target refreshed"  # accepted, and the remote target changed
    ACK = "ack"  # an ACK: not sequenced (it carries its INVITE's CSeq), changes nothing
    TERMINATED = "terminated"  # the response ended the dialog (13.2.2.3)


class DialogError(RemoteProtocolError):
    """The peer's message does not fit the dialog; ``status_hint`` is the response to send
    (500 for a CSeq out of order, 481 for a terminated dialog, 400 for a bad Contact)."""


@dataclass(frozen=True, slots=True)
class DialogId:
    """RFC 3261 section 12: Call-ID, local tag, remote tag. ``remote_tag`` is None for
    an RFC 2543 peer that sent no tag (12.1.1, 12.1.2: "a value of null")."""

    call_id: str
    local_tag: str
    remote_tag: str | None

    @classmethod
    def of_request(cls, request: Request) -> DialogId | None:
        """The dialog an incoming request names: ours is its To tag, theirs its From tag
        (section 12.2.2). None when it has no To tag (not sent in a dialog)."""
        local = request.to.tag
        return None if local is None else cls(request.call_id, local, request.from_.tag)

    @classmethod
    def of_response(cls, response: Response) -> DialogId | None:
        """The dialog a response to our request names: ours is its From tag, theirs its
        To tag. None when the From has no tag (never for requests we sent)."""
        local = response.from_.tag
        return None if local is None else cls(response.call_id, local, response.to.tag)


@dataclass(slots=True, kw_only=True, eq=False)
class Dialog:
    """One dialog (see the module docstring for its inputs).

    ``local_uri``/``remote_uri`` are our and their From/To values without the tag.
    ``local_cseq`` is None on the UAS side until we send a request (section 12.1.1:
    "the local sequence number MUST be empty"); the first one then gets 1. ``route_set``
    holds Record-Route values as written. ``local_target`` is the Contact URI we send in
    target refresh requests.
    """

    call_id: str
    local_tag: str
    remote_tag: str | None
    local_uri: str
    remote_uri: str
    local_cseq: int | None
    remote_cseq: int | None
    remote_target: str
    route_set: list[str] = field(default_factory=list)
    local_target: str | None = None
    secure: bool = False
    is_uac: bool
    state: DialogState = DialogState.EARLY

    # -- creation (RFC 3261 section 12.1)

    @classmethod
    def from_uas(
        cls,
        request: Request,
        local_tag: str,
        local_contact: str,
        *,
        confirmed: bool = False,
        over_tls: bool = False,
    ) -> Dialog:
        """The dialog we create by answering ``request`` with a 1xx (early) or a 2xx
        (``confirmed=True``) carrying To tag ``local_tag`` and Contact ``local_contact``
        (section 12.1.1). Raises DialogError(400) when the request has no Contact, and
        ParseError (also a RemoteProtocolError with ``status_hint``) on a malformed one."""
        if request.method not in DIALOG_CREATING_METHODS:
            raise LocalProtocolError(f"{request.method} does not create a dialog")
        if request.to.tag is not None:
            raise LocalProtocolError("the request is already inside a dialog")
        remote_target = first_contact_uri(request)
        if remote_target is None:
            raise DialogError("Missing Contact Header", status_hint=400)
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=request.from_.tag,
            local_uri=without_tag(request.to),
            remote_uri=without_tag(request.from_),
            local_cseq=None,
            remote_cseq=request.cseq.number,
            remote_target=remote_target,
            # 12.1.1: the Record-Route URIs of the request, in order.
            route_set=record_route(request),
            local_target=local_contact,
            # 12.1.1: secure when the request came over TLS to a SIPS Request-URI.
            secure=over_tls and request.uri.lower().startswith("sips:"),
            is_uac=False,
            state=DialogState.CONFIRMED if confirmed else DialogState.EARLY,
        )

    @classmethod
    def from_uac(cls, request: Request, response: Response, *, over_tls: bool = False) -> Dialog:
        """The dialog a response to our ``request`` creates (section 12.1.2): a 101-199
        with a To tag makes an early dialog, a 2xx a confirmed one.

        The remote target is the response's Contact; when a carrier leaves it out, the
        Request-URI stands in until a later response or request supplies one.
        """
        if not 101 <= response.status < 300:
            raise LocalProtocolError(f"a {response.status} creates no dialog")
        _check_response_to(request, response)
        local_tag = request.from_.tag
        if local_tag is None:
            raise LocalProtocolError("our request has no From tag")
        remote_tag = response.to.tag
        if remote_tag is None and response.status < 200:
            # 12.1.2: only an RFC 2543 2xx may lack the tag ("a value of null").
            raise LocalProtocolError("a provisional response without a To tag creates no dialog")
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=remote_tag,
            local_uri=without_tag(request.from_),
            remote_uri=without_tag(request.to),
            local_cseq=request.cseq.number,
            remote_cseq=None,
            remote_target=first_contact_uri(response) or request.uri,
            # 12.1.2: the Record-Route URIs of the response, in reverse order.
            route_set=record_route(response)[::-1],
            local_target=first_contact_uri(request),
            secure=over_tls and request.uri.lower().startswith("sips:"),
            is_uac=True,
            state=DialogState.CONFIRMED if response.status >= 200 else DialogState.EARLY,
        )

    # -- views

    @property
    def id(self) -> DialogId:
        return DialogId(self.call_id, self.local_tag, self.remote_tag)

    @property
    def is_early(self) -> bool:
        return self.state is DialogState.EARLY

    @property
    def is_confirmed(self) -> bool:
        return self.state is DialogState.CONFIRMED

    @property
    def is_terminated(self) -> bool:
        return self.state is DialogState.TERMINATED

    @property
    def next_hop(self) -> str:
        """The URI a request in this dialog goes to (RFC 3261 section 8.1.2, resolved by
        RFC 3263): the first route, else the remote target. Strict routing sends to the
        first route too, which it puts in the Request-URI."""
        return route_uri(self.route_set[0]) if self.route_set else self.remote_target

    # -- state changes

    def confirm(self, response: Response | None = None) -> None:
        """Early -> confirmed.

        UAC: ``response`` is the 2xx to the INVITE (required). RFC 3261 section 13.2.2.4:
        the route set is recomputed from it (Record-Route reversed, section 12.1.2; the
        text's pointer to 12.2.1.2 means 12.1.2), and nothing else is, so both CSeqs stay.
        Being a 2xx to a target refresh request, its Contact replaces the remote target
        (12.2.1.2). UAS: ``response`` is ignored (our own 2xx may be passed); it carries
        nothing the dialog needs.
        A dialog already confirmed is left alone (a 2xx retransmission).
        """
        if self.state is DialogState.TERMINATED:
            raise LocalProtocolError("cannot confirm a terminated dialog")
        if self.state is DialogState.CONFIRMED:
            return
        if self.is_uac:
            if response is None:
                raise LocalProtocolError("a UAC dialog is confirmed by the 2xx it received")
            if not 200 <= response.status < 300 or response.cseq.method != "INVITE":
                raise LocalProtocolError(f"a {response.status} does not confirm a dialog")
            self._check_ids(DialogId.of_response(response))
            self.route_set = record_route(response)[::-1]
            self.remote_target = first_contact_uri(response) or self.remote_target
        self.state = DialogState.CONFIRMED

    def terminate(self) -> None:
        self.state = DialogState.TERMINATED

    def on_request(self, request: Request) -> DialogCheck:
        """Check a request the peer sent in this dialog (RFC 3261 section 12.2.2).

        An ACK is not sequenced and changes nothing. Otherwise the CSeq number is checked
        against the remote CSeq: lower is out of order (DialogError 500); an equal number
        is not "lower", and retransmissions never get here (the transaction layer absorbs
        them), so it is accepted. The first request sets the remote CSeq. A target
        refresh request with a Contact replaces the remote target; it stays replaced
        even if the request then fails. CANCEL belongs to the transaction layer (9.2).
        """
        self._check_ids(DialogId.of_request(request))
        if request.method == "CANCEL":
            raise LocalProtocolError("CANCEL is matched by the transaction layer, not a dialog")
        if self.state is DialogState.TERMINATED:
            raise DialogError("Call/Transaction Does Not Exist", status_hint=481)
        if request.method == "ACK":
            return DialogCheck.ACK
        number = request.cseq.number
        if self.remote_cseq is not None and number < self.remote_cseq:
            raise DialogError("CSeq Out Of Order", status_hint=500)
        self.remote_cseq = number
        if request.method in TARGET_REFRESH_METHODS:
            return self._refresh_target(first_contact_uri(request))
        return DialogCheck.ACCEPTED

    def on_response(self, response: Response) -> DialogCheck:
        """A response to a request we sent in this dialog (RFC 3261 section 12.2.1.2): a
        2xx to a target refresh request replaces the remote target with its Contact.

        While a UAC dialog is early, a later provisional response to the INVITE with a
        Contact also updates the remote target (as pjsip does), so a PRACK or UPDATE
        reaches the device that answers; the route set is left for the 2xx to settle.
        The confirming 2xx goes to :meth:`confirm`; a 300-699 to the INVITE ends the
        early dialog (13.2.2.3; the table's ``drop_early`` ends the other forks). A 481
        or 408 to a request in the dialog means it SHOULD end (12.2.1.2); that decision
        belongs to the usage (RFC 5057).
        """
        self._check_ids(DialogId.of_response(response))
        method = response.cseq.method
        if self.is_uac and self.is_early and method == "INVITE":
            if 200 <= response.status < 300:
                raise LocalProtocolError("the 2xx to the INVITE goes to confirm()")
            if response.status >= 300:
                # 13.2.2.3: a non-2xx final response ends the early dialogs.
                self.terminate()
                return DialogCheck.TERMINATED
            return self._refresh_target(first_contact_uri(response))
        if 200 <= response.status < 300 and method in TARGET_REFRESH_METHODS:
            return self._refresh_target(first_contact_uri(response))
        return DialogCheck.ACCEPTED

    def _refresh_target(self, contact: str | None) -> DialogCheck:
        if contact is None or contact == self.remote_target:
            return DialogCheck.ACCEPTED
        self.remote_target = contact
        return DialogCheck.TARGET_REFRESHED

    def _check_ids(self, found: DialogId | None) -> None:
        # The table routed the message here; a mismatch is our bug, not the peer's.
        if found != self.id:
            raise LocalProtocolError(f"message for {found} given to dialog {self.id}")

    # -- building requests

    def new_request(
        self,
        method: str,
        *,
        branch: str,
        local_address: LocalAddress,
        local_contact: str | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        extra_headers: Iterable[tuple[str, str]] = (),
    ) -> Request:
        """A request in this dialog (RFC 3261 section 12.2.1.1).

        Request-URI and Route from the remote target and route set (loose routing; a
        strict first hop gets the RFC 2543 layout, see :func:`routing.request_target`);
        To = remote URI and tag, From = local URI and tag, the Call-ID; CSeq = the local
        CSeq plus one (1 when still empty), except for ACK and CANCEL, which reuse the
        current number (for the ACK of a 2xx prefer :meth:`ack_for_2xx`; a CANCEL must
        carry the ``branch`` of the request it cancels, section 9.1). Target refresh
        requests carry Contact: ``local_contact``, which then becomes our local target,
        or the local target already known.
        """
        if self.state is DialogState.TERMINATED:
            raise LocalProtocolError(f"cannot send {method} in a terminated dialog")
        local_target = self.local_target if local_contact is None else local_contact
        contact = None
        if method in TARGET_REFRESH_METHODS:
            contact = local_target
            if contact is None:
                raise LocalProtocolError(f"{method} needs a Contact")
        if method in UNSEQUENCED_METHODS:
            if self.local_cseq is None:
                raise LocalProtocolError(f"{method} before any request in the dialog")
            cseq = self.local_cseq
        else:
            cseq = 1 if self.local_cseq is None else self.local_cseq + 1
        request = self._build(
            method,
            cseq,
            branch=branch,
            local_address=local_address,
            contact=contact,
            body=body,
            content_type=content_type,
            extra_headers=extra_headers,
        )
        # Committed only once the request is built: a refused request consumes nothing.
        self.local_cseq = cseq
        self.local_target = local_target
        return request

    def ack_for_2xx(
        self,
        invite_cseq: int,
        *,
        branch: str,
        local_address: LocalAddress,
        body: bytes = b"",
        content_type: str | None = None,
        extra_headers: Iterable[tuple[str, str]] = (),
    ) -> Request:
        """The ACK for a 2xx to the INVITE with CSeq ``invite_cseq`` (RFC 3261 section
        13.2.2.4): built like any request in the dialog, with its own ``branch`` (a new
        transaction of its own, never sent in one), but CSeq ``invite_cseq ACK``. It
        MUST carry the INVITE's credentials: pass Authorization/Proxy-Authorization in
        ``extra_headers``; an answer to an offer made in the 2xx goes in ``body``.
        Allowed in any state: a 2xx retransmitted after our BYE is ACKed again."""
        return self._build(
            "ACK",
            invite_cseq,
            branch=branch,
            local_address=local_address,
            contact=None,
            body=body,
            content_type=content_type,
            extra_headers=extra_headers,
        )

    def _build(
        self,
        method: str,
        cseq: int,
        *,
        branch: str,
        local_address: LocalAddress,
        contact: str | None,
        body: bytes,
        content_type: str | None,
        extra_headers: Iterable[tuple[str, str]],
    ) -> Request:
        return build_request(
            method,
            remote_target=self.remote_target,
            route_set=self.route_set,
            via=local_address.via(branch),
            from_=with_tag(self.local_uri, self.local_tag),
            to=with_tag(self.remote_uri, self.remote_tag),
            call_id=self.call_id,
            cseq=cseq,
            contact=contact,
            body=body,
            content_type=content_type,
            extra_headers=extra_headers,
        )


def _check_response_to(request: Request, response: Response) -> None:
    if (
        response.call_id != request.call_id
        or response.cseq != request.cseq
        or response.from_.tag != request.from_.tag
    ):
        raise LocalProtocolError("the response does not answer this request")
