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

Once the dialog is confirmed, both roles receive and send re-INVITEs (section 14; a B2BUA
relays hold and unhold both ways), through the shared base class: ``on_reinvite`` /
``answer_reinvite`` / ``reject_reinvite`` and ``send_reinvite`` / ``on_reinvite_response`` /
``send_reinvite_ack`` / ``on_reinvite_failed``. One INVITE at a time in either direction.

Offer/answer follows what carriers and PBXs send: an INVITE without SDP gets the offer in
our 2xx and the answer in the ACK (RFC 3264; RFC 3261 section 13.2.1). SDP travels as bytes;
parsing it is the caller's business (:mod:`b2bua.sip.sdp`).

Errors: :class:`SessionStateError` (a :class:`LocalProtocolError`) when a verb is called in a
state that does not allow it; :class:`~b2bua.dialog.dialog.DialogError` (with the status to
answer) when the peer's in-dialog request does not fit the dialog.
"""

from __future__ import annotations

from collections.abc import Iterable
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
    ReinviteAccepted,
    ReinviteRejected,
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
from b2bua.sip.sdp import SdpError, refusing_answer
from b2bua.transaction.timers import TimerSettings

SDP: Final = "application/sdp"

#: Credentials an ACK for a 2xx repeats from its INVITE (RFC 3261 section 13.2.2.4).
_CREDENTIALS: Final = ("authorization", "proxy-authorization")


def _refusal(offer: bytes | None) -> bytes:
    """The answer refusing ``offer`` (empty when there is none, or it does not parse:
    then nothing valid can be said, and the BYE follows anyway)."""
    if offer is None:
        return b""
    try:
        return refusing_answer(offer)
    except SdpError:
        return b""


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


def _credentials(request: Request) -> list[tuple[str, str]]:
    return [(f.name, f.value) for f in request.headers if f.key in _CREDENTIALS]


class _InviteSession:
    """What both roles share: the state, BYE sent and received, and re-INVITEs in the
    confirmed dialog, received and sent (RFC 3261 section 14).

    Receiving: ``on_reinvite`` -> ``OfferReceived``; ``answer_reinvite`` (our 2xx, resent
    on ``RETRANSMIT_2XX`` until ``on_ack``; BYE on ``ACK_TIMEOUT``) or ``reject_reinvite``.
    Sending: ``send_reinvite`` -> ``SendRequest``; its responses go to
    ``on_reinvite_response`` (-> ``SendAck`` + ``ReinviteAccepted``, or
    ``ReinviteRejected``), a timeout to ``on_reinvite_failed``; ``send_reinvite_ack`` when
    the 2xx carried the offer. One INVITE at a time in either direction (14.1, 14.2).
    """

    def __init__(
        self,
        invite: Request,
        *,
        local_address: LocalAddress,
        ids: IdSource,
        timers: TimerSettings,
    ) -> None:
        if invite.method != "INVITE":
            raise LocalProtocolError(f"a {invite.method} starts no INVITE session")
        self.invite = invite
        self.local_address = local_address
        self.timers = timers
        self._ids = ids
        #: Header fields every 2xx we send carries (RFC 3261 section 13.3.1.4: a 2xx to an
        #: INVITE SHOULD carry Allow and Supported); the owner sets them.
        self.capabilities: tuple[tuple[str, str], ...] = ()
        self.state = SessionState.INITIAL
        self._dialog: Dialog | None = None
        self._end_reason = EndReason.LOCAL_BYE
        self._end_status: int | None = None
        # An INVITE we received in the dialog (UAS: also the initial one).
        self._pending: Request | None = None  # re-INVITE received, not answered yet
        self._answered: Request | None = None  # INVITE whose 2xx awaits its ACK
        self._response_2xx: Response | None = None
        self._interval = timers.t1
        self._offer_in_2xx = False
        self._hang_up_after_ack = False
        # A re-INVITE we sent: outstanding until its final response, or until its ACK
        # went out for a 2xx (offer/answer complete).
        self._reinvite: Request | None = None
        self._reinvite_ack_owed = False  # its 2xx made the offer: send_reinvite_ack awaited
        # CSeq number -> (the ACK sent for that re-INVITE's 2xx, kept until): a
        # retransmitted 2xx gets the same ACK while the client transaction may pass it up
        # (RFC 6026 Timer M, 64*T1).
        self._reinvite_acks: dict[int, tuple[Request, float]] = {}

    @property
    def terminated(self) -> bool:
        return self.state is SessionState.TERMINATED

    @property
    def dialog(self) -> Dialog | None:
        """The dialog (UAC: the confirmed one, once answered)."""
        return self._dialog

    @property
    def has_reinvite_outstanding(self) -> bool:
        """Whether our re-INVITE awaits its final response or, after a 2xx with the
        offer, our ACK."""
        return self._reinvite is not None

    def _require(self, *allowed: SessionState) -> None:
        if self.state not in allowed:
            raise SessionStateError(f"not allowed in state {self.state.name}")

    def _invite_in_progress(self) -> bool:
        """Whether an INVITE (transaction or offer/answer) is unfinished in either
        direction, or the session is not established: no new one may start (14.1)."""
        return (
            self.state is not SessionState.ESTABLISHED
            or self._pending is not None
            or self._reinvite is not None
        )

    def _response(self, request: Request, status: int, sdp: bytes | None) -> Response:
        """A response carrying our tag and, for a 101-299, our Contact (the dialog's
        local target)."""
        assert self._dialog is not None
        response = make_dialog_response(
            request,
            status,
            local_tag=self._dialog.local_tag,
            local_contact=self._dialog.local_target,
        )
        if 200 <= status < 300:
            for name, value in self.capabilities:
                response.headers.add(name, value)
        if sdp:
            response.headers.add("Content-Type", SDP)
            response.body = sdp
        return response

    # -- BYE

    def _send_bye(self, reason: EndReason, status: int | None = None) -> list[SessionAction]:
        assert self._dialog is not None
        bye = self._dialog.new_request(
            "BYE", branch=self._ids.new_branch(), local_address=self.local_address
        )
        self.state = SessionState.TERMINATING
        self._end_reason = reason
        self._end_status = status
        return [SendRequest(request=bye)]

    def _hang_up_confirmed(
        self, now: float, reason: EndReason = EndReason.LOCAL_BYE
    ) -> list[SessionAction]:
        """BYE from ESTABLISHED: a re-INVITE we have not answered gets 487 first, and an
        ACK we owe for our re-INVITE's 2xx goes out (without an answer) before the BYE."""
        actions: list[SessionAction] = []
        if self._pending is not None:
            actions.append(SendResponse(response=make_response(self._pending, 487)))
            self._pending = None
        if self._reinvite_ack_owed:
            actions.append(SendAck(request=self._ack_reinvite(b"", now)))
        return [*actions, *self._send_bye(reason)]

    def _end(self, reason: EndReason, status: int | None = None) -> list[SessionAction]:
        actions: list[SessionAction] = []
        if self._pending is not None:
            # RFC 3261 section 15.1.2: requests still pending get a response, 487.
            actions.append(SendResponse(response=make_response(self._pending, 487)))
        if self._answered is not None:
            actions += [
                CancelTimer(name=SessionTimer.RETRANSMIT_2XX),
                CancelTimer(name=SessionTimer.ACK_TIMEOUT),
            ]
        self._answered = self._response_2xx = self._pending = None
        self.state = SessionState.TERMINATED
        if self._dialog is not None:
            self._dialog.terminate()
        return [*actions, Terminated(reason=reason, status=status)]

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
        return self._end(self._end_reason, self._end_status)

    def on_bye_failed(self, now: float) -> list[SessionAction]:
        """The BYE transaction timed out or could not be sent: the session ends anyway."""
        if self.state is not SessionState.TERMINATING:
            return []
        return self._end(self._end_reason, self._end_status)

    # -- our 2xx to an INVITE, until its ACK (RFC 3261 section 13.3.1.4)

    def _send_2xx(self, request: Request, response: Response, now: float) -> list[SessionAction]:
        if not response.body:
            raise LocalProtocolError("a 2xx to an INVITE carries SDP")
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
        """The ACK for our 2xx (UAS: to the INVITE; either role: to a re-INVITE).
        ``Established`` only for the UAS's initial INVITE; ``AnswerReceived`` when our 2xx
        made the offer. Other ACKs (retransmissions, stale CSeq) are absorbed."""
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

    # -- re-INVITE received (RFC 3261 section 14.2)

    def on_reinvite(self, request: Request, now: float) -> list[SessionAction]:
        """A re-INVITE. Established with no INVITE in progress in either direction:
        ``OfferReceived``. While another received re-INVITE awaits our answer: 500 with a
        random Retry-After; while our own re-INVITE is outstanding or our 2xx awaits its
        ACK: 491 (RFC 3261 section 14.2). Raises DialogError
        481 once terminated, 500 for a CSeq out of order."""
        if request.method != "INVITE":
            raise LocalProtocolError(f"{request.method} given to on_reinvite")
        if self._dialog is None:
            # UAC before the 2xx: our own INVITE is in progress (unless it failed).
            if self.state is SessionState.TERMINATED:
                raise DialogError("Call/Transaction Does Not Exist", status_hint=481)
            return [SendResponse(response=make_response(request, 491))]
        self._dialog.on_request(request)  # 481 once terminated, 500 out of order
        if self._pending is not None:
            # 14.2: a second INVITE before our final response to the first gets 500
            # with a Retry-After chosen at random between 0 and 10 seconds.
            response = make_response(request, 500)
            response.headers.add("Retry-After", str(int(self._ids.new_tag()[:4], 16) % 11))
            return [SendResponse(response=response)]
        if self._invite_in_progress():
            return [SendResponse(response=make_response(request, 491))]
        self._pending = request
        return [OfferReceived(sdp=sdp_of(request))]

    def answer_reinvite(self, sdp: bytes, now: float) -> list[SessionAction]:
        """200 with ``sdp`` to the pending re-INVITE (the answer, or our offer when it had
        none), retransmitted until its ACK."""
        pending = self._take_pending()
        if not sdp:
            raise LocalProtocolError("a 2xx to an INVITE carries SDP")
        return self._send_2xx(pending, self._response(pending, 200, sdp), now)

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

    # -- re-INVITE sent (RFC 3261 section 14.1)

    def send_reinvite(
        self,
        sdp: bytes | None,
        now: float,
        *,
        extra_headers: Iterable[tuple[str, str]] = (),
    ) -> list[SessionAction]:
        """A re-INVITE with ``sdp`` as the offer (None: ask for the peer's offer in the
        2xx). Only when established with no INVITE in progress in either direction
        (14.1), else SessionStateError. ``extra_headers`` go in as they are (credentials
        after a 401/407, for one; the ACK repeats those). Send it in a client transaction;
        feed its responses to ``on_reinvite_response``, a timeout to
        ``on_reinvite_failed``."""
        if self._invite_in_progress():
            raise SessionStateError(f"no re-INVITE now (state {self.state.name})")
        assert self._dialog is not None
        reinvite = self._dialog.new_request(
            "INVITE",
            branch=self._ids.new_branch(),
            local_address=self.local_address,
            body=sdp or b"",
            content_type=SDP if sdp else None,
            extra_headers=extra_headers,
        )
        self._reinvite = reinvite
        self._reinvite_ack_owed = False
        return [SendRequest(request=reinvite)]

    def _answers_reinvite(self, response: Response) -> bool:
        """Whether ``response`` answers our outstanding re-INVITE or repeats the 2xx of
        one we ACKed."""
        if response.cseq.method != "INVITE" or response.call_id != self.invite.call_id:
            return False
        number = response.cseq.number
        reinvite = self._reinvite
        return (
            reinvite is not None and number == reinvite.cseq.number
        ) or number in self._reinvite_acks

    def on_reinvite_response(self, response: Response, now: float) -> list[SessionAction]:
        """A response to our re-INVITE (LocalProtocolError for any other response).

        1xx: nothing. 2xx: the target refresh, then ``SendAck`` + ``ReinviteAccepted`` with
        the answer, or, when our re-INVITE had no SDP, ``ReinviteAccepted(ack_owed=True)``
        with the offer (answer with ``send_reinvite_ack``). A repeated 2xx: the same ACK
        again. 300-699: ``ReinviteRejected`` (the transaction layer ACKs it; the session
        keeps its media), then for a 481 ``Terminated`` (REMOTE_GONE) and for a 408 a BYE
        (RFC 3261 section 12.2.1.2; RFC 5057). After our BYE a 2xx is only ACKed."""
        self._reinvite_acks = {n: e for n, e in self._reinvite_acks.items() if e[1] >= now}
        if not self._answers_reinvite(response):
            raise LocalProtocolError("the response does not answer our re-INVITE")
        reinvite = self._reinvite
        if reinvite is None or response.cseq.number != reinvite.cseq.number:
            # The 2xx of a re-INVITE we ACKed, again (13.2.2.4): the same ACK.
            ack, _ = self._reinvite_acks[response.cseq.number]
            if self.terminated or not 200 <= response.status < 300:
                return []
            return [SendAck(request=ack)]
        if self.terminated or response.status < 200:
            return []
        if response.status >= 300:
            self._reinvite = None
            return self._on_reinvite_rejected(response.status)
        return self._on_reinvite_2xx(response, reinvite, now)

    def _on_reinvite_2xx(
        self, response: Response, reinvite: Request, now: float
    ) -> list[SessionAction]:
        if self._reinvite_ack_owed:
            return []  # a retransmission while our answer is awaited
        assert self._dialog is not None
        self._dialog.on_response(response)  # 12.2.1.2: its Contact is the new target
        sdp = sdp_of(response)
        if self.state is not SessionState.ESTABLISHED:
            return [SendAck(request=self._ack_reinvite(b"", now))]  # we are hanging up
        if sdp_of(reinvite) is None and sdp is not None:
            self._reinvite_ack_owed = True  # the 2xx made the offer: the ACK answers it
            return [ReinviteAccepted(sdp=sdp, ack_owed=True)]
        ack = self._ack_reinvite(b"", now)
        return [SendAck(request=ack), ReinviteAccepted(sdp=sdp, ack_owed=False)]

    def _on_reinvite_rejected(self, status: int) -> list[SessionAction]:
        if self.state is not SessionState.ESTABLISHED:
            return []
        rejected: list[SessionAction] = [ReinviteRejected(status=status)]
        match status:
            case 481:
                # RFC 5057 section 5.2: the peer has no such dialog; nothing to BYE.
                return [*rejected, *self._end(EndReason.REMOTE_GONE, 481)]
            case 408:
                # RFC 3261 section 12.2.1.2: no answer, the dialog SHOULD end: BYE.
                return [*rejected, *self._send_bye(EndReason.REMOTE_GONE, 408)]
            case _:
                return rejected

    def _ack_reinvite(self, sdp: bytes, now: float) -> Request:
        """The ACK for our re-INVITE's 2xx (13.2.2.4): its CSeq number, a new branch, the
        re-INVITE's credentials; kept for retransmitted 2xx responses."""
        reinvite = self._reinvite
        assert self._dialog is not None
        assert reinvite is not None
        ack = self._dialog.ack_for_2xx(
            reinvite.cseq.number,
            branch=self._ids.new_branch(),
            local_address=self.local_address,
            body=sdp,
            content_type=SDP if sdp else None,
            extra_headers=_credentials(reinvite),
        )
        keep_until = now + self.timers.transaction_timeout
        self._reinvite_acks[reinvite.cseq.number] = (ack, keep_until)
        self._reinvite = None
        self._reinvite_ack_owed = False
        return ack

    def send_reinvite_ack(self, sdp: bytes, now: float) -> list[SessionAction]:
        """The ACK carrying our answer ``sdp`` to the offer in our re-INVITE's 2xx
        (``ReinviteAccepted(ack_owed=True)``)."""
        if not self._reinvite_ack_owed or self.state is not SessionState.ESTABLISHED:
            raise SessionStateError("no ACK is owed for a re-INVITE")
        if not sdp:
            raise LocalProtocolError("the ACK must carry the answer")
        return [SendAck(request=self._ack_reinvite(sdp, now))]

    def on_reinvite_failed(self, now: float) -> list[SessionAction]:
        """Our re-INVITE's client transaction timed out (Timer B) or its transport
        failed: as a 408. Nothing when no re-INVITE awaits a final response."""
        if self._reinvite is None or self._reinvite_ack_owed:
            return []
        self._reinvite = None
        return self._on_reinvite_rejected(408)


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
        super().__init__(invite, local_address=local_address, ids=ids, timers=timers)
        self.local_tag = local_tag
        self.local_contact = local_contact
        self._dialog = Dialog.from_uas(invite, local_tag, local_contact, over_tls=over_tls)

    @property
    def has_offer(self) -> bool:
        """Whether the INVITE carried an offer (else our 2xx carries it)."""
        return sdp_of(self.invite) is not None

    def _response(self, request: Request, status: int, sdp: bytes | None) -> Response:
        response = make_dialog_response(
            request, status, local_tag=self.local_tag, local_contact=self.local_contact
        )
        if 200 <= status < 300:
            for name, value in self.capabilities:
                response.headers.add(name, value)
        if sdp:
            response.headers.add("Content-Type", SDP)
            response.body = sdp
        return response

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
        if not sdp:
            raise LocalProtocolError("a 2xx to an INVITE carries SDP")
        assert self._dialog is not None
        self._dialog.confirm()
        return self._send_2xx(self.invite, self._response(self.invite, 200, sdp), now)

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
                return self._hang_up_confirmed(now)
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


class UacInviteSession(_InviteSession):
    """An INVITE we sent (a callee leg). Early dialogs are kept per fork (To tag); the first
    2xx confirms its dialog, a 2xx from any other fork is ACKed and BYEd. ``timers`` (RFC
    3261 defaults when omitted) pace our 2xx to a re-INVITE we receive."""

    def __init__(
        self,
        invite: Request,
        *,
        local_address: LocalAddress,
        ids: IdSource,
        timers: TimerSettings | None = None,
        over_tls: bool = False,
    ) -> None:
        super().__init__(
            invite,
            local_address=local_address,
            ids=ids,
            timers=TimerSettings() if timers is None else timers,
        )
        if invite.from_.tag is None:
            raise LocalProtocolError("our INVITE has no From tag")
        self._over_tls = over_tls
        self._forks: dict[str | None, Dialog] = {}
        self._answered_tag: str | None = None
        self._ack: Request | None = None
        self._ack_owed = False  # the 2xx carried the offer: send_ack(answer) is awaited
        self._offer_2xx_sdp: bytes | None = None
        self._cancelling = False

    @property
    def is_answered(self) -> bool:
        return self._dialog is not None

    def _invite_in_progress(self) -> bool:
        # Until the ACK with our answer goes out, the initial offer/answer is unfinished.
        return self._ack_owed or super()._invite_in_progress()

    def on_response(self, response: Response, now: float) -> list[SessionAction]:
        """A response to our INVITE (a response to our BYE goes to ``on_bye_response``,
        one to our re-INVITE to ``on_reinvite_response``)."""
        if response.cseq.method == "BYE":
            return self.on_bye_response(response, now)
        if response.cseq.number != self.invite.cseq.number and self._answers_reinvite(response):
            return self.on_reinvite_response(response, now)
        if response.cseq != self.invite.cseq or response.call_id != self.invite.call_id:
            raise LocalProtocolError("the response does not answer our INVITE")
        if self.state is SessionState.TERMINATED or response.status == 100:
            return []
        if response.status < 200:
            return self._on_provisional(response)
        if response.status < 300:
            return self._on_2xx(response, now)
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

    def _on_2xx(self, response: Response, now: float) -> list[SessionAction]:
        tag = response.to.tag
        if self.is_answered:
            if tag == self._answered_tag:
                # A retransmission: the same ACK again (13.2.2.4), unless still owed.
                return [] if self._ack is None else [SendAck(request=self._ack)]
            offer = sdp_of(response) if sdp_of(self.invite) is None else None
            refusal = _refusal(offer) if offer is not None else b""
            ack, bye = ack_and_bye_for_stray_2xx(
                self.invite,
                response,
                local_address=self.local_address,
                ack_branch=self._ids.new_branch(),
                bye_branch=self._ids.new_branch(),
                ack_body=refusal,
                ack_content_type=SDP if refusal else None,
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
            self._offer_2xx_sdp = sdp
        else:
            actions.append(SendAck(request=self._build_ack(b"")))
        actions.append(Answered(sdp=sdp))
        if self._cancelling:
            # Our CANCEL lost the race (RFC 3261 section 9.1): ACK and BYE the answer.
            actions += self._release(now, EndReason.CANCELLED)
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
            extra_headers=_credentials(self.invite),
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

    def _release(self, now: float, reason: EndReason = EndReason.LOCAL_BYE) -> list[SessionAction]:
        actions: list[SessionAction] = []
        if self._ack_owed:
            # We hang up before answering the 2xx's offer: the ACK still answers it (it
            # MUST, 13.2.2.4), refusing every stream, then the BYE.
            actions.append(SendAck(request=self._build_ack(_refusal(self._offer_2xx_sdp))))
        return [*actions, *self._hang_up_confirmed(now, reason)]

    def hang_up(self, now: float) -> list[SessionAction]:
        """BYE once answered (held back while our 2xx to a re-INVITE awaits its ACK, as
        for the UAS); before a final response, ``CancelNeeded`` (the 487 that follows the
        CANCEL ends the session). Already ending: nothing."""
        match self.state:
            case SessionState.INITIAL | SessionState.EARLY:
                self._cancelling = True
                self.state = SessionState.TERMINATING
                return [CancelNeeded()]
            case SessionState.ESTABLISHED:
                return self._release(now)
            case SessionState.WAITING_ACK:
                self._hang_up_after_ack = True
                return []
            case SessionState.TERMINATING | SessionState.TERMINATED:
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
