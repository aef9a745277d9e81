"""The INVITE usage of a dialog (pjsip's split): one machine per role, pure.

:class:`UasInviteSession` is a leg we answer (an INVITE we received); :class:`UacInviteSession`
a leg we placed (an INVITE we sent). Each sits on a :class:`~b2bua.dialog.dialog.Dialog` and
returns a list of :data:`SessionAction`: messages to send (``SendResponse``, ``SendRequest``
in a new client transaction, ``SendAck`` sent directly), timers (``StartTimer``/``CancelTimer``
with a :class:`SessionTimer` name; call ``on_timer(name, now)`` when one is due) and facts
(``Ringing``, ``Answered``, ``Established``, ``Terminated``...). No I/O, no clock.

What the transaction layer does is not repeated here: it retransmits requests and non-2xx
responses and answers CANCEL with 200/487. What RFC 3261 gives the TU is here: the 2xx
retransmission until the ACK (section 13.3.1.4), the ACK for a 2xx and the ACK+BYE for a
stray fork's 2xx (13.2.2.4), BYE (15), re-INVITE glare (14.2), the CANCEL request (9.1).

Offer/answer follows what carriers and PBXs send: an INVITE without SDP gets the offer in
our 2xx and the answer in the ACK (RFC 3264; RFC 3261 section 13.2.1). SDP travels as bytes;
parsing it is the caller's business (:mod:`b2bua.sip.sdp`).

Errors: :class:`SessionStateError` (a :class:`LocalProtocolError`) when a verb is called in a
state that does not allow it; :class:`~b2bua.dialog.dialog.DialogError` (with the status to
answer) when the peer's in-dialog request does not fit the dialog.
"""

from __future__ import annotations

from typing import Final

from b2bua.dialog.dialog import Dialog, DialogError
from b2bua.dialog.routing import LocalAddress, make_dialog_response
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
from b2bua.dialog.stray import ack_and_bye_for_stray_2xx
from b2bua.ids import IdSource
from b2bua.sip.errors import LocalProtocolError
from b2bua.sip.message import Headers, Message, Request, Response, make_response
from b2bua.transaction.timers import TimerSettings

SDP: Final = "application/sdp"

#: Credentials an ACK for a 2xx repeats from its INVITE (RFC 3261 section 13.2.2.4).
_CREDENTIALS: Final = ("authorization", "proxy-authorization")


def sdp_of(message: Message) -> bytes | None:
    """The SDP body of ``message``, or None (no body, or a body of another type)."""
    if message.body and message.content_type in (SDP, None):
        return message.body
    return None


def unsupported_requirements(request: Request, supported: frozenset[str]) -> list[str]:
    """The option tags of ``request``'s Require that are not in ``supported`` (lower case)."""
    required = [tag.strip().lower() for tag in request.headers.get_all("require")]
    return [tag for tag in required if tag and tag not in supported]


def reject_unsupported(
    request: Request, *, supported: frozenset[str], local_tag: str
) -> Response | None:
    """420 (Bad Extension) with ``Unsupported`` listing each Require option tag we do not
    support (RFC 3261 section 8.2.2.3), or None when we support them all."""
    unsupported = unsupported_requirements(request, supported)
    if not unsupported:
        return None
    response = make_response(request, 420, to_tag=local_tag)
    response.headers.add("Unsupported", ", ".join(unsupported))
    return response


def build_cancel(invite: Request) -> Request:
    """The CANCEL for ``invite`` (RFC 3261 section 9.1): same Request-URI, Call-ID, From, To
    (no tag added) and CSeq number; only the INVITE's top Via (same branch); the INVITE's
    Route header fields. It goes in a client transaction of its own."""
    if invite.method != "INVITE":
        raise LocalProtocolError("only an INVITE is cancelled by the session")
    headers = Headers()
    headers.add("Via", invite.headers.get_all("via")[0])
    for route in invite.headers.get_all("route"):
        headers.add("Route", route)
    headers.add("Max-Forwards", "70")
    for name in ("From", "To", "Call-ID"):
        value = invite.headers.get(name.lower())
        if value is None:
            raise LocalProtocolError(f"the INVITE has no {name}")
        headers.add(name, value)
    headers.add("CSeq", f"{invite.cseq.number} CANCEL")
    return Request("CANCEL", invite.uri, headers)


class _InviteSession:
    """What both roles share: the state, BYE sent and received."""

    def __init__(self, invite: Request, *, local_address: LocalAddress, ids: IdSource) -> None:
        if invite.method != "INVITE":
            raise LocalProtocolError(f"a {invite.method} starts no INVITE session")
        self.invite = invite
        self.local_address = local_address
        self._ids = ids
        self.state = SessionState.INITIAL
        self._dialog: Dialog | None = None
        self._end_reason = EndReason.LOCAL_BYE

    @property
    def terminated(self) -> bool:
        return self.state is SessionState.TERMINATED

    @property
    def dialog(self) -> Dialog | None:
        """The dialog (UAC: the confirmed one, once answered)."""
        return self._dialog

    def _send_bye(self, reason: EndReason) -> list[SessionAction]:
        assert self._dialog is not None
        bye = self._dialog.new_request(
            "BYE", branch=self._ids.new_branch(), local_address=self.local_address
        )
        self.state = SessionState.TERMINATING
        self._end_reason = reason
        return [SendRequest(request=bye)]

    def _end(self, reason: EndReason, status: int | None = None) -> list[SessionAction]:
        self.state = SessionState.TERMINATED
        if self._dialog is not None:
            self._dialog.terminate()
        return [Terminated(reason=reason, status=status)]

    def _answer_bye(self, request: Request) -> list[SessionAction]:
        """200 to the peer's BYE; the session ends (RFC 3261 section 15.1.2)."""
        if request.method != "BYE":
            raise LocalProtocolError(f"{request.method} given to on_bye")
        if self._dialog is None or self.state is SessionState.TERMINATED:
            raise DialogError("Call/Transaction Does Not Exist", status_hint=481)
        self._dialog.on_request(request)
        return [SendResponse(response=make_response(request, 200)), *self._end_bye()]

    def _end_bye(self) -> list[SessionAction]:
        return self._end(EndReason.REMOTE_BYE)

    def on_bye_response(self, response: Response, now: float) -> list[SessionAction]:
        """A response to our BYE. Any final one ends the session (RFC 3261 section 15.1.1:
        even a failure means the dialog is gone for us)."""
        if response.status < 200 or self.state is not SessionState.TERMINATING:
            return []
        return self._end(self._end_reason)

    def on_bye_failed(self, now: float) -> list[SessionAction]:
        """The BYE transaction timed out or could not be sent: the session ends anyway."""
        if self.state is not SessionState.TERMINATING:
            return []
        return self._end(self._end_reason)


class UasInviteSession(_InviteSession):
    """An INVITE we received (the caller-facing leg). The dialog is created at once, early,
    with our tag ``local_tag`` and Contact ``local_contact``; it confirms on ``answer``."""

    def __init__(
        self,
        invite: Request,
        *,
        local_tag: str,
        local_contact: str,
        local_address: LocalAddress,
        ids: IdSource,
        timers: TimerSettings,
        over_tls: bool = False,
    ) -> None:
        super().__init__(invite, local_address=local_address, ids=ids)
        self.local_tag = local_tag
        self.local_contact = local_contact
        self.timers = timers
        self._dialog = Dialog.from_uas(invite, local_tag, local_contact, over_tls=over_tls)
        self._pending: Request | None = None  # re-INVITE received, not answered yet
        self._answered: Request | None = None  # INVITE whose 2xx awaits its ACK
        self._response_2xx: Response | None = None
        self._interval = timers.t1
        self._offer_in_2xx = False
        self._hang_up_after_ack = False

    @property
    def has_offer(self) -> bool:
        """Whether the INVITE carried an offer (else our 2xx carries it)."""
        return sdp_of(self.invite) is not None

    def _response(self, request: Request, status: int, sdp: bytes | None) -> Response:
        response = make_dialog_response(
            request, status, local_tag=self.local_tag, local_contact=self.local_contact
        )
        if sdp:
            response.headers.add("Content-Type", SDP)
            response.body = sdp
        return response

    def _require(self, *allowed: SessionState) -> None:
        if self.state not in allowed:
            raise SessionStateError(f"not allowed in state {self.state.name}")

    def ring(
        self, now: float, *, status: int = 180, sdp: bytes | None = None
    ) -> list[SessionAction]:
        """A provisional response (180, or 183 with ``sdp`` for early media)."""
        self._require(SessionState.INITIAL, SessionState.EARLY)
        if not 100 < status < 200:
            raise LocalProtocolError(f"{status} is not a provisional response")
        self.state = SessionState.EARLY
        return [SendResponse(response=self._response(self.invite, status, sdp))]

    def answer(self, sdp: bytes, now: float) -> list[SessionAction]:
        """200 with ``sdp`` (the answer, or the offer when the INVITE had none), then its
        retransmission until the ACK (RFC 3261 section 13.3.1.4)."""
        self._require(SessionState.INITIAL, SessionState.EARLY)
        assert self._dialog is not None
        self._dialog.confirm()
        return self._send_2xx(self.invite, sdp, now)

    def _send_2xx(self, request: Request, sdp: bytes, now: float) -> list[SessionAction]:
        if not sdp:
            raise LocalProtocolError("a 2xx to an INVITE carries SDP")
        response = self._response(request, 200, sdp)
        self.state = SessionState.WAITING_ACK
        self._answered = request
        self._response_2xx = response
        self._offer_in_2xx = sdp_of(request) is None
        self._interval = self.timers.t1
        return [
            SendResponse(response=response),
            StartTimer(name=SessionTimer.RETRANSMIT_2XX, at=now + self.timers.t1),
            StartTimer(name=SessionTimer.ACK_TIMEOUT, at=now + self.timers.transaction_timeout),
        ]

    def reject(self, status: int, now: float) -> list[SessionAction]:
        """A final non-2xx response; the server transaction retransmits it."""
        self._require(SessionState.INITIAL, SessionState.EARLY)
        if not 300 <= status < 700:
            raise LocalProtocolError(f"{status} is not a rejection")
        response = self._response(self.invite, status, None)
        return [SendResponse(response=response), *self._end(EndReason.REJECTED, status)]

    def on_cancel(self, now: float) -> list[SessionAction]:
        """The INVITE was cancelled (the switch sends 487 through the transaction layer).
        After our 2xx, CANCEL has no effect (RFC 3261 section 9.2)."""
        if self.state not in (SessionState.INITIAL, SessionState.EARLY):
            return []
        return self._end(EndReason.CANCELLED, 487)

    def on_timer(self, name: SessionTimer, now: float) -> list[SessionAction]:
        if self.state is not SessionState.WAITING_ACK:
            return []  # a stale timer
        assert self._response_2xx is not None
        match name:
            case SessionTimer.RETRANSMIT_2XX:
                self._interval = min(2 * self._interval, self.timers.t2)
                return [
                    SendResponse(response=self._response_2xx),
                    StartTimer(name=SessionTimer.RETRANSMIT_2XX, at=now + self._interval),
                ]
            case SessionTimer.ACK_TIMEOUT:
                # 13.3.1.4: the dialog is confirmed, but the session SHOULD be terminated.
                self._answered = None
                return [
                    CancelTimer(name=SessionTimer.RETRANSMIT_2XX),
                    *self._send_bye(EndReason.ACK_TIMEOUT),
                ]

    def on_ack(self, ack: Request, now: float) -> list[SessionAction]:
        """The ACK for our 2xx. Other ACKs (retransmissions, stale CSeq) are absorbed."""
        if ack.method != "ACK":
            raise LocalProtocolError(f"{ack.method} given to on_ack")
        answered = self._answered
        if (
            self.state is not SessionState.WAITING_ACK
            or answered is None
            or ack.cseq.number != answered.cseq.number
        ):
            return []
        assert self._dialog is not None
        self._dialog.on_request(ack)
        self._answered = self._response_2xx = None
        self.state = SessionState.ESTABLISHED
        actions: list[SessionAction] = [
            CancelTimer(name=SessionTimer.RETRANSMIT_2XX),
            CancelTimer(name=SessionTimer.ACK_TIMEOUT),
        ]
        if answered is self.invite:
            actions.append(Established())
        answer = sdp_of(ack)
        if self._offer_in_2xx and answer is not None:
            actions.append(AnswerReceived(sdp=answer))
        if self._hang_up_after_ack:
            actions += self._send_bye(EndReason.LOCAL_BYE)
        return actions

    def on_reinvite(self, request: Request, now: float) -> list[SessionAction]:
        """A re-INVITE. Established with none pending: ``OfferReceived``. While another
        INVITE is in progress (not answered or not ACKed): 491 (RFC 3261 section 14.2)."""
        if request.method != "INVITE":
            raise LocalProtocolError(f"{request.method} given to on_reinvite")
        assert self._dialog is not None
        self._dialog.on_request(request)  # 481 once terminated, 500 out of order
        if self.state is not SessionState.ESTABLISHED or self._pending is not None:
            return [SendResponse(response=make_response(request, 491))]
        self._pending = request
        return [OfferReceived(sdp=sdp_of(request))]

    def answer_reinvite(self, sdp: bytes, now: float) -> list[SessionAction]:
        """200 with ``sdp`` to the pending re-INVITE, retransmitted until its ACK."""
        pending = self._take_pending()
        return self._send_2xx(pending, sdp, now)

    def reject_reinvite(self, status: int, now: float) -> list[SessionAction]:
        """A non-2xx to the pending re-INVITE (488, say): the session goes on unchanged."""
        if not 300 <= status < 700:
            raise LocalProtocolError(f"{status} is not a rejection")
        pending = self._take_pending()
        return [SendResponse(response=make_response(pending, status))]

    def _take_pending(self) -> Request:
        pending = self._pending
        if pending is None or self.state is not SessionState.ESTABLISHED:
            raise SessionStateError("no re-INVITE to answer")
        self._pending = None
        return pending

    def hang_up(self, now: float) -> list[SessionAction]:
        """BYE. Before the ACK for our 2xx it is held back until the ACK (or its timeout)
        arrives (RFC 3261 section 15). Before an answer, use ``reject``. Already ending:
        nothing."""
        match self.state:
            case SessionState.INITIAL | SessionState.EARLY:
                raise SessionStateError("not answered: reject instead of hanging up")
            case SessionState.WAITING_ACK:
                self._hang_up_after_ack = True
                return []
            case SessionState.ESTABLISHED:
                actions: list[SessionAction] = []
                if self._pending is not None:
                    actions.append(SendResponse(response=make_response(self._pending, 487)))
                    self._pending = None
                return [*actions, *self._send_bye(EndReason.LOCAL_BYE)]
            case SessionState.TERMINATING | SessionState.TERMINATED:
                return []

    def on_bye(self, request: Request, now: float) -> list[SessionAction]:
        """The peer's BYE: 200, and the session ends (an unanswered INVITE gets 487)."""
        unanswered = self.state in (SessionState.INITIAL, SessionState.EARLY)
        actions = self._answer_bye(request)
        if unanswered:
            response = self._response(self.invite, 487, None)
            actions.insert(1, SendResponse(response=response))
        return actions

    def _end(self, reason: EndReason, status: int | None = None) -> list[SessionAction]:
        timers: list[SessionAction] = []
        if self._answered is not None:
            timers = [
                CancelTimer(name=SessionTimer.RETRANSMIT_2XX),
                CancelTimer(name=SessionTimer.ACK_TIMEOUT),
            ]
        self._answered = self._response_2xx = self._pending = None
        return [*timers, *super()._end(reason, status)]


class UacInviteSession(_InviteSession):
    """An INVITE we sent (a callee leg). Early dialogs are kept per fork (To tag); the first
    2xx confirms its dialog, a 2xx from any other fork is ACKed and BYEd."""

    def __init__(
        self,
        invite: Request,
        *,
        local_address: LocalAddress,
        ids: IdSource,
        over_tls: bool = False,
    ) -> None:
        super().__init__(invite, local_address=local_address, ids=ids)
        if invite.from_.tag is None:
            raise LocalProtocolError("our INVITE has no From tag")
        self._over_tls = over_tls
        self._forks: dict[str | None, Dialog] = {}
        self._answered_tag: str | None = None
        self._ack: Request | None = None
        self._ack_owed = False  # the 2xx carried the offer: send_ack(answer) is awaited
        self._cancelling = False

    @property
    def is_answered(self) -> bool:
        return self._dialog is not None

    def _credentials(self) -> list[tuple[str, str]]:
        return [(f.name, f.value) for f in self.invite.headers if f.key in _CREDENTIALS]

    def on_response(self, response: Response, now: float) -> list[SessionAction]:
        """A response to our INVITE (a response to our BYE goes to ``on_bye_response``)."""
        if response.cseq.method == "BYE":
            return self.on_bye_response(response, now)
        if response.cseq != self.invite.cseq or response.call_id != self.invite.call_id:
            raise LocalProtocolError("the response does not answer our INVITE")
        if self.state is SessionState.TERMINATED or response.status == 100:
            return []
        if response.status < 200:
            return self._on_provisional(response)
        if response.status < 300:
            return self._on_2xx(response)
        if self.is_answered:
            return []  # cannot happen after a 2xx (one final response per transaction)
        reason = EndReason.CANCELLED if self._cancelling else EndReason.REJECTED
        self._forks.clear()
        return self._end(reason, response.status)

    def _on_provisional(self, response: Response) -> list[SessionAction]:
        if self.is_answered:
            return []
        tag = response.to.tag
        if tag is not None:
            fork = self._forks.get(tag)
            if fork is None:
                self._forks[tag] = Dialog.from_uac(self.invite, response, over_tls=self._over_tls)
            else:
                fork.on_response(response)
        if self.state is SessionState.INITIAL:
            self.state = SessionState.EARLY
        sdp = sdp_of(response)
        if sdp is not None:
            return [EarlyMedia(status=response.status, sdp=sdp)]
        return [Ringing(status=response.status)]

    def _on_2xx(self, response: Response) -> list[SessionAction]:
        tag = response.to.tag
        if self.is_answered:
            if tag == self._answered_tag:
                # A retransmission: the same ACK again (13.2.2.4), unless still owed.
                return [] if self._ack is None else [SendAck(request=self._ack)]
            ack, bye = ack_and_bye_for_stray_2xx(
                self.invite,
                response,
                local_address=self.local_address,
                ack_branch=self._ids.new_branch(),
                bye_branch=self._ids.new_branch(),
                over_tls=self._over_tls,
            )
            return [SendAck(request=ack), SendRequest(request=bye)]
        dialog = self._forks.pop(tag, None)
        if dialog is None:
            dialog = Dialog.from_uac(self.invite, response, over_tls=self._over_tls)
        else:
            dialog.confirm(response)
        for other in self._forks.values():
            other.terminate()
        self._forks.clear()
        self._dialog = dialog
        self._answered_tag = tag
        sdp = sdp_of(response)
        actions: list[SessionAction] = []
        if sdp_of(self.invite) is None and sdp is not None:
            self._ack_owed = True  # the 2xx made the offer: the ACK carries our answer
        else:
            actions.append(SendAck(request=self._build_ack(b"")))
        actions.append(Answered(sdp=sdp))
        if self._cancelling:
            # Our CANCEL lost the race (RFC 3261 section 9.1): ACK and BYE the answer.
            actions += self._release(EndReason.CANCELLED)
        else:
            self.state = SessionState.ESTABLISHED
        return actions

    def _build_ack(self, sdp: bytes) -> Request:
        assert self._dialog is not None
        self._ack = self._dialog.ack_for_2xx(
            self.invite.cseq.number,
            branch=self._ids.new_branch(),
            local_address=self.local_address,
            body=sdp,
            content_type=SDP if sdp else None,
            extra_headers=self._credentials(),
        )
        self._ack_owed = False
        return self._ack

    def send_ack(self, sdp: bytes, now: float) -> list[SessionAction]:
        """The ACK carrying our answer ``sdp`` to the offer in the 2xx (``Answered`` came
        with the offer because our INVITE had none)."""
        if not self._ack_owed or self.state is not SessionState.ESTABLISHED:
            raise SessionStateError("no ACK is owed")
        if not sdp:
            raise LocalProtocolError("the ACK must carry the answer")
        return [SendAck(request=self._build_ack(sdp))]

    def on_invite_failed(self, now: float, status: int = 408) -> list[SessionAction]:
        """The INVITE transaction timed out (408, Timer B) or its transport failed (503)."""
        if self.is_answered or self.state is SessionState.TERMINATED:
            return []
        reason = EndReason.CANCELLED if self._cancelling else EndReason.REJECTED
        return self._end(reason, status)

    def _release(self, reason: EndReason = EndReason.LOCAL_BYE) -> list[SessionAction]:
        actions: list[SessionAction] = []
        if self._ack_owed:
            # We hang up before answering the 2xx's offer: ACK without SDP, then BYE.
            actions.append(SendAck(request=self._build_ack(b"")))
        return [*actions, *self._send_bye(reason)]

    def hang_up(self, now: float) -> list[SessionAction]:
        """BYE once answered; before a final response, ``CancelNeeded`` (the 487 that
        follows the CANCEL ends the session). Already ending: nothing."""
        match self.state:
            case SessionState.INITIAL | SessionState.EARLY:
                self._cancelling = True
                self.state = SessionState.TERMINATING
                return [CancelNeeded()]
            case SessionState.ESTABLISHED:
                return self._release()
            case SessionState.WAITING_ACK | SessionState.TERMINATING | SessionState.TERMINATED:
                return []

    def on_bye(self, request: Request, now: float) -> list[SessionAction]:
        """The peer's BYE in the answered dialog: 200, and the session ends."""
        if not self.is_answered:
            raise DialogError("Call/Transaction Does Not Exist", status_hint=481)
        return self._answer_bye(request)

    def on_bye_response(self, response: Response, now: float) -> list[SessionAction]:
        if not self.is_answered:
            return []  # a CANCEL is pending, not a BYE
        return super().on_bye_response(response, now)

    def on_bye_failed(self, now: float) -> list[SessionAction]:
        if not self.is_answered:
            return []
        return super().on_bye_failed(now)
