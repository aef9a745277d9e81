"""Call: the caller's leg (A, the INVITE we received), the callee legs (B, one INVITE we
send to each registered device of the destination), the media session that bridges them
through the relay, and the record written when it ends. Pure: methods take ``now`` and
return :data:`CallAction` lists that the switch carries out.

Each leg is an independent dialog with its own Call-ID, tags and CSeq (an INVITE session
of :mod:`b2bua.dialog`). The first B leg to answer wins: the others get CANCEL, and a 2xx
that still arrives from one of them is ACKed and then BYEd. When every B leg fails, the
caller gets the best final response (RFC 3261 section 16.7). Once bridged, BYE on one side
ends the other; re-INVITE and UPDATE are relayed with the SDP rewritten to the relay
(:mod:`b2bua.call.media`); INFO and the other in-dialog requests are relayed as they are.

Side A of the media session faces the caller, side B the answered callee (every B leg is
offered the same relay port: whichever answers owns it).
"""

from __future__ import annotations

import contextlib
from typing import Final

from structlog.typing import FilteringBoundLogger

from b2bua.call.actions import (
    CALLER,
    Abandon,
    Arm,
    CallAction,
    CallContext,
    CallEnded,
    CallFinished,
    CallTimer,
    Disarm,
    MemberAnswered,
    MemberConfirming,
    MemberFailed,
    MemberRinging,
    Purpose,
    Respond,
    SendDirect,
    SendInLeg,
    Target,
    TimerName,
)
from b2bua.call.legs import Leg, Relayed, best_final_status, disposition_of
from b2bua.call.media import MediaView, SdpFace, answer_as_endpoint, g711_of, view_of
from b2bua.call.records import CallRecord, Disposition
from b2bua.call.session_timer import NegotiatedTimer, Refresher, negotiate
from b2bua.dialog import (
    SessionAction,
    SessionState,
    SessionStateError,
    SessionTimer,
    UacInviteSession,
    UasInviteSession,
    build_cancel,
    sdp_of,
)
from b2bua.dialog.dialog import DialogError
from b2bua.dialog.routing import build_request
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
    StartTimer,
    Terminated,
)
from b2bua.hunt.engine import Hunt, HuntTimer
from b2bua.ids import IdSource
from b2bua.sip.address import Peer
from b2bua.sip.errors import LocalProtocolError, RemoteProtocolError, SipError
from b2bua.sip.message import Request, Response, make_response
from b2bua.sip.status import StatusCode
from b2bua.transaction.keys import TransactionKey, client_key
from b2bua.voicemail.settings import Mailbox
from media.commands import (
    CloseSession,
    ConfirmAnswer,
    MediaSessionId,
    MessageStop,
    OpenSession,
    Side,
    StopConfirm,
    StopMessage,
    SwitchLegB,
    TakeMessage,
    UpdateRemote,
)
from media.dtmf import parse_info_dtmf

SDP: Final = "application/sdp"
_UNANSWERED: Final = (SessionState.INITIAL, SessionState.EARLY)

#: Header fields an in-dialog request keeps when relayed to the other leg (the rest are
#: hop-by-hop or rebuilt by the dialog: Via, Route, From, To, Call-ID, CSeq, Contact...).
#: What our 2xx responses and INVITEs say we accept (RFC 3261 sections 13.3.1.4, 20.5).
ALLOW: Final = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO"

RELAYED_HEADERS: Final = (
    "event",
    "subscription-state",
    "info-package",
    "recv-info",
    "content-disposition",
    "content-encoding",
    "content-language",
)

#: In-dialog methods a B2BUA must not pass on: REFER would have the far phone call a
#: third party around the switch; PRACK belongs to reliable provisionals, which we never
#: send or require; SUBSCRIBE in a call dialog is not offered.
NOT_RELAYED: Final = frozenset({"REFER", "PRACK", "SUBSCRIBE"})
#: How /status names a callee leg's session state.
_LEG_STATES: Final = {SessionState.INITIAL: "calling", SessionState.EARLY: "ringing"}
#: A provider's challenges answered per callee leg. A challenge after our answer means the
#: credentials are wrong, unless it says stale=true (its nonce expired): that one is
#: answered too, up to this many in all.
MAX_CHALLENGES: Final = 3


class Call:
    """One call through the switch (see the module docstring). ``ref`` names it in the
    switch's tables and timers."""

    def __init__(
        self,
        *,
        ref: int,
        invite: Request,
        invite_key: TransactionKey,
        peer: Peer,
        caller: str,
        callee: str,
        ports: tuple[int, int],
        context: CallContext,
        ids: IdSource,
        log: FilteringBoundLogger,
        now: float,
    ) -> None:
        """Raises :class:`~b2bua.dialog.DialogError` (a request that cannot start a dialog,
        e.g. without Contact), SdpError for an offer that does not parse and
        :class:`~b2bua.call.session_timer.TooSmall` for a Session-Expires below our
        Min-SE: the switch answers those with their status before any call exists."""
        self.ref = ref
        self.context = context
        self._ids = ids
        self.session_id = MediaSessionId(f"call-{ref}")
        self.ports = ports
        self.caller = caller
        self.callee = callee
        self.caller_name = invite.from_.display_name
        self.started_at = now
        self.answered_at: float | None = None
        self.ended_at: float | None = None
        self.end_reason = ""
        self._disposition: Disposition | None = None
        self.log = log.bind(call_id=invite.call_id, call=ref)
        offer = sdp_of(invite)
        a_view = None if offer is None else view_of(offer)
        a_session = UasInviteSession(
            invite,
            local_tag=ids.new_tag(),
            local_contact=context.contact(peer),
            local_address=context.local(peer),
            ids=ids,
            timers=context.timers,
        )
        self.session_timer: NegotiatedTimer | None = negotiate(invite)
        timer_headers = () if self.session_timer is None else self.session_timer.headers()
        a_session.capabilities = (("Allow", ALLOW), *timer_headers)
        self.a_session = a_session
        self.a = Leg(CALLER, a_session, peer, self._face(ports[0]), invite_key=invite_key)
        self.a.view = a_view
        self.a.server_keys[(invite.cseq.number, "INVITE")] = invite_key
        self.legs: list[Leg] = [self.a]
        self.winner: Leg | None = None
        self._rang = False
        self._early_leg: Leg | None = None
        self._relays: dict[TransactionKey, Relayed] = {}
        self._reinvite: tuple[Leg, Leg] | None = None  # (asked by, sent to)
        self._owed_ack: Leg | None = None  # B leg whose 2xx offer awaits A's answer
        self._finished = False
        self._hanging_up = False  # the call is being torn down
        # A call to a hunt group: the switch sets ``hunt`` (the current one of a chain)
        # and feeds it; the call rings and stops members as it says.
        self.hunt: Hunt | None = None
        self._rings: dict[str, int] = {}  # member -> its current ring
        self._ring_count = 0
        self._closed_rings: set[int] = set()  # stopped by the hunt, or failure reported
        self._alerted_rings: set[int] = set()
        # Nobody answered and the switch answered itself to take a message for this
        # mailbox (take_message); the recording runs in the media host.
        self.voicemail: str | None = None
        self._stop_digits = "#"
        # Confirm-call: the answered callee being asked to press 1, and its SDP answer.
        self._confirming: Leg | None = None
        self._confirm_answer: bytes | None = None
        # Why the call is forwarded out through a trunk (RFC 5806 Diversion reason).
        self.diversion_reason = "follow-me"

    def _face(self, port: int) -> SdpFace:
        return SdpFace(self.context.media_host, port, self._ids.new_tag()[:8].encode().hex())

    # -- identity, for the switch's tables

    @property
    def invite(self) -> Request:
        return self.a.session.invite

    def dialog_ids(self) -> list[tuple[str, str, int]]:
        """(Call-ID, our tag, leg) of every leg: in-dialog requests find the call by them."""
        out = [(self.invite.call_id, self.a_session.local_tag, CALLER)]
        for leg in self.legs[1:]:
            invite = leg.session.invite
            out.append((invite.call_id, invite.from_.tag or "", leg.index))
        return out

    @property
    def is_ended(self) -> bool:
        return self.ended_at is not None

    @property
    def is_finished(self) -> bool:
        return self._finished

    def extensions(self) -> list[str]:
        return [leg.extension for leg in self.legs[1:] if leg.extension is not None]

    def snapshot(self, now: float, wall_offset: float) -> dict[str, object]:
        """What /status shows of a live call."""
        hunt = self.hunt
        hunting = None
        if hunt is not None:
            hunting = {
                "group": hunt.group.name,
                "state": hunt.state.value,
                "ringing": sorted(hunt.ringing),
            }
        return {
            "call_id": self.invite.call_id,
            "caller": self.caller,
            "callee": self.callee,
            "state": self._state_name(),
            "answered_by": self._answered_by(),
            "started_at": round(self.started_at + wall_offset, 3),
            "age": round(now - self.started_at, 3),
            "legs": len(self.legs) - 1,
            "callees": [self._leg_snapshot(leg) for leg in self.legs[1:]],
            "media_ports": list(self.ports),
            "hunt": hunting,
        }

    def _leg_snapshot(self, leg: Leg) -> dict[str, object]:
        """One callee leg in /status: whom it rings, where, its state and final status."""
        if leg is self.winner:
            state = "answered"
        elif leg is self._confirming:
            state = "confirming"
        else:
            state = _LEG_STATES.get(leg.session.state, leg.session.state.value)
        return {
            "leg": leg.index,
            "to": leg.extension or leg.label,
            "peer": str(leg.peer),
            "state": state,
            "status": leg.final_status,
        }

    # -- starting

    def start(self, targets: list[Target], now: float) -> list[CallAction]:
        """Open the media session and ring every target (or refuse the call when there
        is none)."""
        actions = self._open_media()
        self.log.info("call_started", caller=self.caller, callee=self.callee, devices=len(targets))
        if not targets:
            self.end_reason = "not registered"
            self._disposition = Disposition.FAILED
            actions += self._reject_caller(StatusCode.TEMPORARILY_UNAVAILABLE, now)
            return actions + self._end_if_done("not registered", now)
        offer = sdp_of(self.invite)
        for target in targets:
            leg, request = self._new_callee_leg(target, offer)
            actions.append(SendInLeg(leg.index, request, leg.peer, Purpose.INVITE))
        actions.append(Arm(CALLER, CallTimer.RING_TIMEOUT, now + self.context.ring_timeout))
        return actions

    def start_hunt(self, hunt: Hunt) -> list[CallAction]:
        """A call to a hunt group: open the media session; ``hunt`` (started by the
        switch) then decides whom to ring, through :meth:`ring_member`,
        :meth:`stop_member` and :meth:`give_up`. No ring timeout: the group's timers rule."""
        self.hunt = hunt
        self.log.info(
            "call_started",
            caller=self.caller,
            callee=self.callee,
            group=hunt.group.name,
            strategy=hunt.group.strategy.value,
            seed=hunt.seed,
        )
        return self._open_media()

    def ring_member(self, number: str, targets: list[Target], now: float) -> list[CallAction]:
        """Ring every device of member ``number`` at once, as one ring of it. With no
        device to ring, the member fails at once (480)."""
        if self.winner is not None or self.is_ended or self.a.terminated:
            return []
        self._ring_count += 1
        ring = self._ring_count
        self._rings[number] = ring
        if not targets:
            self._closed_rings.add(ring)
            return [MemberFailed(number, StatusCode.TEMPORARILY_UNAVAILABLE)]
        offer = sdp_of(self.invite)
        out: list[CallAction] = []
        for target in targets:
            leg, request = self._new_callee_leg(target, offer)
            leg.ring = ring
            out.append(SendInLeg(leg.index, request, leg.peer, Purpose.INVITE))
        self.log.info("member_rung", extension=number, devices=len(targets))
        return out

    def stop_member(self, number: str, now: float) -> list[CallAction]:
        """Stop ringing member ``number``: CANCEL its devices (an answer that crosses the
        CANCEL is ACKed and BYEd)."""
        ring = self._rings.get(number)
        if ring is None or ring in self._closed_rings:
            return []
        self._closed_rings.add(ring)
        out: list[CallAction] = []
        for leg in self.legs[1:]:
            if leg.ring == ring and leg is not self.winner and not leg.terminated:
                out += self._run(leg, leg.session.hang_up(now), now)
        return out

    def give_up(
        self, status: int, reason: str, disposition: Disposition, now: float
    ) -> list[CallAction]:
        """The hunt found nobody: refuse the caller with ``status`` and stop every callee."""
        if self.winner is not None or self.is_ended:
            return []
        self.log.info("hunt_gave_up", reason=reason, status=int(status))
        self.end_reason = self.end_reason or reason
        self._disposition = self._disposition or disposition
        actions = self._hang_up_callees(now)
        return actions + self._reject_caller(status, now) + self._end_if_done(reason, now)

    def take_message(
        self,
        mailbox: Mailbox,
        *,
        group: str | None,
        record: bool,
        wall_now: float,
        now: float,
    ) -> list[CallAction]:
        """Nobody took the call: the switch answers the caller itself, and the media host
        plays ``mailbox``'s greeting and a beep, then records a message (``record``
        False: the mailbox is full, the greeting only). The caller's offer must carry
        G.711 (else 488); a caller that sent no offer gets 480 (delayed offer is not
        supported for voicemail)."""
        if self.winner is not None or self.is_ended or self.a.terminated:
            return []
        offer = sdp_of(self.invite)
        if offer is None:
            return self.give_up(
                StatusCode.TEMPORARILY_UNAVAILABLE,
                f"voicemail {mailbox.number}: the caller sent no SDP offer",
                Disposition.FAILED,
                now,
            )
        try:
            own = answer_as_endpoint(
                offer, self.context.media_host, self.ports[0], self._ids.new_tag()[:8]
            )
        except SipError:
            own = None
        if own is None:
            return self.give_up(
                StatusCode.NOT_ACCEPTABLE_HERE,
                f"voicemail {mailbox.number}: no G.711 in the caller's offer",
                Disposition.FAILED,
                now,
            )
        self.voicemail = mailbox.number
        self.answered_at = now
        self._disposition = Disposition.VOICEMAIL
        self.log.info("voicemail_answered", mailbox=mailbox.number, record=record)
        out = self._hang_up_callees(now)
        out.append(Disarm(CALLER, CallTimer.RING_TIMEOUT))
        out.append(
            TakeMessage(
                session_id=self.session_id,
                remote=own.view.address,
                payload_type=own.payload_type,
                event_payload_type=own.event_payload_type,
                greeting=mailbox.greeting,
                mailbox=mailbox.number,
                caller=self.caller,
                caller_name=self.caller_name,
                called=self.callee,
                group=group,
                received_at=wall_now,
                max_length=mailbox.max_message_length,
                min_length=mailbox.min_message_length,
                silence_timeout=mailbox.silence_timeout,
                stop_digits=self._stop_digits,
                record=record,
            )
        )
        out += self._run(self.a, self.a_session.answer(own.sdp, now), now)
        return out + self._refreshed(now)

    def message_recorded(self, reason: MessageStop, now: float) -> list[CallAction]:
        """The media host ended the message (a key, its length, silence, no RTP, or the
        greeting of a full mailbox is over): the switch hangs up."""
        if self.voicemail is None or self.is_ended or reason is MessageStop.HANGUP:
            return []
        return self._hang_up_all(f"voicemail: {reason.value}", now)

    def _open_media(self) -> list[CallAction]:
        a_view = self.a.view
        return [
            OpenSession(
                session_id=self.session_id,
                local_host=self.context.media_host,
                rtp_port_a=self.ports[0],
                rtp_port_b=self.ports[1],
                expected_a=None if a_view is None else a_view.address,
                expected_b=None,
                latch_any=self.context.latch_any,
            )
        ]

    def _new_callee_leg(self, target: Target, offer: bytes | None) -> tuple[Leg, Request]:
        face = self._face(self.ports[1])
        body = b"" if offer is None else face.present(offer)
        request = self._callee_invite(
            target,
            call_id=self._ids.new_call_id(),
            from_tag=self._ids.new_tag(),
            cseq=1,
            body=body,
        )
        trunk = target.trunk
        extension = target.extension if trunk is None else trunk.member
        leg = Leg(len(self.legs), self._uac_session(request, target.peer), target.peer, face,
                  extension=extension, trunk=trunk)  # fmt: skip
        if trunk is not None:
            leg.label = f"trunk:{trunk.trunk}"
        leg.invite_key = client_key(request)
        self.legs.append(leg)
        return leg, request

    def _callee_invite(
        self,
        target: Target,
        *,
        call_id: str,
        from_tag: str,
        cseq: int,
        body: bytes,
        authorization: tuple[str, str] | None = None,
    ) -> Request:
        """The INVITE of a callee leg: to an extension's contact, or through a trunk with
        its To, From and header fields (and ``authorization`` answering its provider)."""
        domain = self.context.domain
        trunk = target.trunk
        if trunk is None:
            caller = self.caller_name
            from_uri = f"<sip:{self.caller}@{domain}>"
            from_ = f'"{_quoted(caller)}" {from_uri}' if caller else from_uri
            to = f"<sip:{target.extension}@{domain}>"
            extra = [("Allow", ALLOW), ("User-Agent", self.context.user_agent)]
        else:
            from_, to = trunk.from_, trunk.to
            extra = [("Allow", ALLOW), ("User-Agent", self.context.user_agent), *trunk.headers]
        if authorization is not None:
            extra.append(authorization)
        request = build_request(
            "INVITE",
            remote_target=target.contact,
            route_set=[],
            via=self.context.local(target.peer).via(self._ids.new_branch()),
            from_=f"{from_};tag={from_tag}",
            to=to,
            call_id=call_id,
            cseq=cseq,
            contact=self.context.contact(target.peer),
            body=body,
            content_type=SDP if body else None,
            extra_headers=extra,
        )
        max_forwards = self.invite.max_forwards
        if max_forwards is not None:
            request.headers.set("Max-Forwards", str(max(min(max_forwards - 1, 70), 0)))
        return request

    def _uac_session(self, request: Request, peer: Peer) -> UacInviteSession:
        session = UacInviteSession(
            request,
            local_address=self.context.local(peer),
            ids=self._ids,
            timers=self.context.timers,
        )
        session.capabilities = (("Allow", ALLOW),)
        return session

    def _answer_challenge(self, leg: Leg, response: Response) -> list[CallAction] | None:
        """A trunk's provider asked a callee leg for credentials (401/407): send the
        INVITE again with the trunk's (same Call-ID and From tag, CSeq + 1, RFC 3261
        section 22.2), once per leg and only while the call still wants the leg. ``None``
        when the challenge is not answered (the response then fails the leg as any)."""
        trunk = leg.trunk
        account = None if trunk is None else trunk.account
        if (
            trunk is None
            or account is None
            or leg.challenges >= MAX_CHALLENGES
            or leg.cancel_wanted
            or self._hanging_up
            or self.winner is not None
        ):
            return None
        sent = leg.session.invite
        header = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
        values = response.headers.get_all(header.lower())
        challenge, problem = account.choose(values, method="INVITE", uri=sent.uri)
        if challenge is None:
            self.log.warning(
                "trunk_challenge_not_answered", trunk=trunk.trunk, leg=leg.index, why=problem
            )
            return None
        if leg.challenges and not challenge.stale:
            self.log.warning("trunk_credentials_refused", trunk=trunk.trunk, leg=leg.index)
            return None
        authorization = account.answer(
            challenge, method="INVITE", uri=sent.uri, nc=1, cnonce=self._ids.new_tag()
        )
        if authorization is None:  # choose() answered it once already: cannot happen
            return None
        leg.challenges += 1
        name = "Authorization" if response.status == 401 else "Proxy-Authorization"
        target = Target(leg.extension or "", sent.uri, leg.peer, trunk)
        request = self._callee_invite(
            target,
            call_id=sent.call_id,
            from_tag=sent.from_.tag or "",
            cseq=sent.cseq.number + 1,
            body=sent.body,
            authorization=(name, authorization),
        )
        leg.session = self._uac_session(request, leg.peer)
        leg.invite_key = client_key(request)
        leg.provisional = False
        self.log.info("trunk_challenge_answered", trunk=trunk.trunk, leg=leg.index)
        return [SendInLeg(leg.index, request, leg.peer, Purpose.INVITE)]

    # -- inputs

    def on_response(
        self, leg_index: int, purpose: Purpose, response: Response, key: TransactionKey, now: float
    ) -> list[CallAction]:
        leg = self.legs[leg_index]
        session = leg.session
        match purpose:
            case Purpose.INVITE:
                assert isinstance(session, UacInviteSession)
                actions: list[CallAction] = []
                if response.status in (401, 407) and key == leg.invite_key:
                    again = self._answer_challenge(leg, response)
                    if again is not None:
                        return again
                if response.status < 200:
                    leg.provisional = True
                    actions += self._send_cancel(leg, now)
                elif leg.final_status is None:
                    # A callee's challenge is not the caller's to answer (its credentials
                    # are for the switch): an unanswered 401/407 reaches it as 403.
                    unanswered = response.status in (401, 407)
                    leg.final_status = StatusCode.FORBIDDEN if unanswered else response.status
                return actions + self._run(leg, session.on_response(response, now), now)
            case Purpose.CANCEL:
                return []  # the INVITE's 487 (or its 2xx) ends the leg
            case Purpose.BYE:
                return self._run(leg, session.on_bye_response(response, now), now)
            case Purpose.REINVITE:
                if response.status in (408, 481):
                    self.end_reason = self.end_reason or f"re-INVITE answered {response.status}"
                return self._run(leg, session.on_reinvite_response(response, now), now)
            case Purpose.RELAY:
                if response.status < 200:
                    return []
                return self._relay_response(leg, key, response)
            case Purpose.REFRESH:
                if response.status in (408, 481):  # RFC 5057: the caller's dialog is gone
                    return self._hang_up_all("session refresh failed", now)
                return []

    def on_transaction_failed(
        self, leg_index: int, purpose: Purpose, key: TransactionKey, status: int, now: float
    ) -> list[CallAction]:
        """A client transaction timed out (``status`` 408) or could not be sent (503)."""
        leg = self.legs[leg_index]
        session = leg.session
        match purpose:
            case Purpose.INVITE:
                assert isinstance(session, UacInviteSession)
                if leg.final_status is None:
                    leg.final_status = status
                return self._run(leg, session.on_invite_failed(now, status), now)
            case Purpose.CANCEL:
                return []
            case Purpose.BYE:
                return self._run(leg, session.on_bye_failed(now), now)
            case Purpose.REINVITE:
                self.end_reason = self.end_reason or "request timeout"
                return self._run(leg, session.on_reinvite_failed(now), now)
            case Purpose.REFRESH:
                return self._hang_up_all("session refresh failed", now)
            case Purpose.RELAY:
                relayed = self._relays.pop(key, None)
                if relayed is None:
                    return []
                origin = self.legs[relayed.origin]
                out = self._respond(origin, make_response(relayed.request, status))
                # A request that goes unanswered means the other side is gone (RFC 5057).
                return out + self._hang_up_all("request timeout", now)

    def on_request(
        self, leg_index: int, request: Request, key: TransactionKey, now: float
    ) -> list[CallAction]:
        """A request inside one of the call's dialogs (not ACK, not CANCEL)."""
        leg = self.legs[leg_index]
        leg.server_keys[(request.cseq.number, request.method)] = key
        session = leg.session
        refresh: list[CallAction] = []
        if leg is self.a and request.method in ("INVITE", "UPDATE") and self.winner is not None:
            refresh = self._refreshed(now)  # RFC 4028 section 10: any re-INVITE or UPDATE
        try:
            if request.method == "UPDATE" and not request.body:
                return refresh + self._answer_refresh(leg, request)
            return refresh + self._on_request(leg, session, request, now)
        except DialogError as error:
            code: int = error.status_hint or StatusCode.CALL_TRANSACTION_DOES_NOT_EXIST
            return self._respond(leg, make_response(request, code, error.reason))
        except RemoteProtocolError as error:
            # Bad SDP in an UPDATE, a malformed Contact in a re-INVITE...
            code = error.status_hint or StatusCode.BAD_REQUEST
            return self._respond(leg, make_response(request, code))
        except LocalProtocolError:
            self.log.exception("in_dialog_request_failed", method=request.method)
            return self._respond(leg, make_response(request, StatusCode.SERVER_INTERNAL_ERROR))

    def _answer_refresh(self, leg: Leg, request: Request) -> list[CallAction]:
        """An UPDATE without a body only refreshes its session (RFC 4028 section 7): it is
        answered here, with our session timer, not relayed."""
        dialog = leg.session.dialog
        if dialog is None or leg.terminated:
            raise DialogError("Call/Transaction Does Not Exist", status_hint=481)
        dialog.on_request(request)
        response = make_response(request, StatusCode.OK)
        if leg is self.a and self.session_timer is not None:
            for name, value in self.session_timer.headers():
                response.headers.add(name, value)
        return self._respond(leg, response)

    def _on_request(
        self,
        leg: Leg,
        session: UasInviteSession | UacInviteSession,
        request: Request,
        now: float,
    ) -> list[CallAction]:
        match request.method:
            case "BYE":
                return self._run(leg, session.on_bye(request, now), now)
            case "INVITE":
                return self._run(leg, session.on_reinvite(request, now), now)
            case method if method in NOT_RELAYED:
                status = (
                    StatusCode.CALL_TRANSACTION_DOES_NOT_EXIST
                    if method == "PRACK"
                    else StatusCode.METHOD_NOT_ALLOWED
                )
                response = make_response(request, status)
                if status == StatusCode.METHOD_NOT_ALLOWED:
                    response.headers.add("Allow", ALLOW)
                return self._respond(leg, response)
            case _:
                return self._relay_request(leg, request, now)

    def on_ack(self, leg_index: int, ack: Request, now: float) -> list[CallAction]:
        leg = self.legs[leg_index]
        try:
            return self._run(leg, leg.session.on_ack(ack, now), now)
        except (DialogError, SipError):
            return []  # an ACK is never answered

    def on_cancel(self, now: float) -> list[CallAction]:
        """The caller cancelled its INVITE (the switch answered 200 and 487)."""
        session = self.a_session
        self.log.info("caller_cancelled")
        return self._run(self.a, session.on_cancel(now), now)

    def on_timer(self, leg_index: int, name: TimerName, now: float) -> list[CallAction]:
        leg = self.legs[leg_index]
        match name:
            case CallTimer.RING_TIMEOUT:
                if self.winner is not None or self.is_ended:
                    return []
                self.log.info("ring_timeout")
                self.end_reason = "ring timeout"
                self._disposition = Disposition.NO_ANSWER
                actions = self._hang_up_callees(now)
                return actions + self._reject_caller(StatusCode.TEMPORARILY_UNAVAILABLE, now)
            case CallTimer.SESSION_TIMER:
                return self._session_timer_due(now)
            case CallTimer.CONFIRM_TIMEOUT:
                return self._confirm_timed_out(leg, now)
            case CallTimer.CANCEL_TIMEOUT:
                session = leg.session
                if leg.terminated or not isinstance(session, UacInviteSession):
                    return []
                # RFC 3261 9.1: the callee never answered our CANCEL's INVITE; give up.
                self.log.info("cancel_unanswered", leg=leg.index)
                actions = [] if leg.invite_key is None else [Abandon(leg.invite_key)]
                return actions + self._run(leg, session.on_invite_failed(now, 487), now)
            case HuntTimer():
                return []  # the switch feeds these to the hunt
            case SessionTimer():
                if name is SessionTimer.ACK_TIMEOUT and not self.end_reason:
                    self.end_reason = ("caller" if leg is self.a else "callee") + " never ACKed"
                return self._run(leg, leg.session.on_timer(name, now), now)

    def _session_timer_due(self, now: float) -> list[CallAction]:
        """RFC 4028 section 10: as refresher, send an UPDATE (no body) to the caller; as
        the other side, the caller stopped refreshing: the session is over."""
        timer = self.session_timer
        dialog = self.a.session.dialog
        if timer is None or self.is_ended or dialog is None or self.a.terminated:
            return []
        if timer.refresher is Refresher.UAC:
            self.log.info("session_expired", interval=timer.interval)
            return self._hang_up_all("session expired", now)
        update = dialog.new_request(
            "UPDATE",
            branch=self._ids.new_branch(),
            local_address=self.context.local(self.a.peer),
            extra_headers=timer.headers(),
        )
        return [SendInLeg(CALLER, update, self.a.peer, Purpose.REFRESH), *self._refreshed(now)]

    def on_rtp_timeout(self, idle_for: float, now: float) -> list[CallAction]:
        """No RTP from either side for a while: the call is dead unless a side put it on
        hold (a held call may be silent)."""
        if self.winner is None or self.is_ended:
            return []
        held = any(leg.view is not None and leg.view.is_held for leg in (self.a, self.winner))
        if held:
            return []
        self.log.info("rtp_timeout", idle_for=round(idle_for, 1))
        return self._hang_up_all("RTP timeout", now)

    def abort(self, reason: str, now: float) -> list[CallAction]:
        """End the call from the switch's side (media ports unavailable, shutting down):
        503 to an unanswered caller, BYE or CANCEL to everyone else."""
        self.log.warning("call_aborted", reason=reason)
        return self._hang_up_all(reason, now, status=StatusCode.SERVICE_UNAVAILABLE)

    # -- session actions -> call actions

    def _run(self, leg: Leg, actions: list[SessionAction], now: float) -> list[CallAction]:
        out: list[CallAction] = []
        for action in actions:
            match action:
                case SendResponse(response=response):
                    out += self._respond(leg, response)
                case SendRequest(request=request):
                    purpose = Purpose.BYE if request.method == "BYE" else Purpose.REINVITE
                    out.append(SendInLeg(leg.index, request, leg.peer, purpose))
                    bridged = leg is self.a or leg is self.winner
                    if purpose is Purpose.BYE and bridged and not self._hanging_up:
                        # The session hung up by itself (no ACK, a request that timed
                        # out): the other side must not wait for that BYE's answer.
                        out += self._hang_up_all(self.end_reason or "session timeout", now)
                case SendAck(request=request):
                    out.append(SendDirect(request, leg.peer))
                case StartTimer(name=name, at=at):
                    out.append(Arm(leg.index, name, at))
                case CancelTimer(name=name):
                    out.append(Disarm(leg.index, name))
                case CancelNeeded():
                    leg.cancel_wanted = True
                    out += self._send_cancel(leg, now)
                case Ringing(status=status):
                    out += self._callee_ringing(leg, status, None, now)
                case EarlyMedia(status=status, sdp=sdp):
                    out += self._callee_ringing(leg, status, sdp, now)
                case Answered(sdp=sdp):
                    out += self._callee_answered(leg, sdp, now)
                case Established():
                    self.log.info("call_established")
                case OfferReceived(sdp=sdp):
                    out += self._relay_reinvite(leg, sdp, now)
                case AnswerReceived(sdp=sdp):
                    out += self._answer_in_ack(leg, sdp, now)
                case ReinviteAccepted(sdp=sdp, ack_owed=ack_owed):
                    out += self._reinvite_accepted(leg, sdp, ack_owed, now)
                case ReinviteRejected(status=status):
                    out += self._reinvite_rejected(leg, status, now)
                case Terminated(reason=reason, status=status):
                    out += self._leg_terminated(leg, reason, status, now)
        return out

    def _respond(self, leg: Leg, response: Response) -> list[CallAction]:
        key = leg.server_keys.get((response.cseq.number, response.cseq.method))
        if key is None:
            self.log.warning("response_without_transaction", status=response.status)
            return []
        if response.status >= 200 and not (
            response.cseq.method == "INVITE" and response.status < 300
        ):
            # The 2xx to an INVITE may be sent again (until the ACK): keep the key.
            del leg.server_keys[(response.cseq.number, response.cseq.method)]
        return [Respond(key, response, leg.peer)]

    def _send_cancel(self, leg: Leg, now: float) -> list[CallAction]:
        """CANCEL once wanted and allowed: after a provisional response (RFC 3261 9.1)."""
        if not leg.cancel_wanted or leg.cancel_sent or not leg.provisional or leg.terminated:
            return []
        leg.cancel_sent = True
        cancel = build_cancel(leg.session.invite)
        at = now + self.context.timers.transaction_timeout
        return [
            SendInLeg(leg.index, cancel, leg.peer, Purpose.CANCEL),
            Arm(leg.index, CallTimer.CANCEL_TIMEOUT, at),
        ]

    # -- the callee side

    def _callee_ringing(
        self, leg: Leg, status: int, sdp: bytes | None, now: float
    ) -> list[CallAction]:
        if self.winner is not None or self.a.terminated or self.is_ended:
            return []
        a_session = self.a_session
        out: list[CallAction] = []
        ring = leg.ring
        fresh = ring not in self._alerted_rings and ring not in self._closed_rings
        if ring is not None and leg.extension is not None and fresh:
            self._alerted_rings.add(ring)
            out.append(MemberRinging(leg.extension))
        if sdp is not None and a_session.has_offer and self._early_leg in (None, leg):
            # Early media (183 with SDP): the caller hears this callee's audio now.
            try:
                view, presented = self.a.face.cross(sdp)
            except SipError:
                view = None
            if view is not None:
                self._early_leg = leg
                leg.view = view
                leg.remote_sdp = sdp
                out += self._expect(Side.B, view)
                out += self._run(self.a, a_session.ring(now, status=183, sdp=presented), now)
                self._rang = True
                return out
        if not self._rang:
            self._rang = True
            self.log.info("call_ringing", leg=leg.index, extension=leg.extension)
            out += self._run(self.a, a_session.ring(now, status=180), now)
        return out

    def _callee_answered(self, leg: Leg, sdp: bytes | None, now: float) -> list[CallAction]:
        session = leg.session
        assert isinstance(session, UacInviteSession)
        late = self.winner is not None or self.a.terminated or self.is_ended
        # A device we already CANCELled (ring time over, the hunt moved on) cannot win;
        # nor can a member once the hunt's group timeout has come.
        late = late or leg.cancel_wanted
        if not late and self.hunt is not None and leg.extension is not None:
            late = not self.hunt.may_answer(leg.extension, now)
        if late:
            # Lost the race (or the caller is gone): ACK (done) and BYE this one.
            self.log.info("late_answer_released", leg=leg.index)
            released = self._run(leg, session.hang_up(now), now)
            if self.hunt is not None and leg.extension is not None:
                released.append(MemberAnswered(leg.extension, late=True))
            return released
        a_session = self.a_session
        body = sdp
        if body is None and leg is self._early_leg:
            body = leg.remote_sdp  # the answer came early, in the 183 (RFC 3261 13.2.1)
        if body is None:
            # RFC 3264: a 2xx to an offer carries the answer. Without one there is no call.
            self.log.warning("answer_without_sdp", leg=leg.index)
            return self._refuse_answer(leg, "callee sent no SDP", now)
        try:
            view, presented = self.a.face.cross(body)
        except SipError:
            self.log.warning("answer_with_bad_sdp", leg=leg.index)
            return self._refuse_answer(leg, "callee sent bad SDP", now)
        trunk = leg.trunk
        if trunk is not None and trunk.confirm and not leg.confirmed and a_session.has_offer:
            return self._ask_to_confirm(leg, body, view, now)
        out: list[CallAction] = self._end_confirm()
        self.winner = leg
        self.answered_at = now
        self.log.info("call_answered", leg=leg.index, extension=leg.extension)
        leg.view = view
        out.append(Disarm(CALLER, CallTimer.RING_TIMEOUT))
        if leg.extension is not None:
            out.append(MemberAnswered(leg.extension))
        early = self._early_leg
        if early is not None and early is not leg and view.address is not None:
            # The caller heard another device's early media: the answering device's
            # stream must continue it (same SSRC, sequence and timestamps go on).
            out.append(SwitchLegB(session_id=self.session_id, expected_b=view.address))
        else:
            out += self._expect(Side.B, view)
        out += self._hang_up_callees(now)
        if not a_session.has_offer:
            self._owed_ack = leg  # the 2xx made the offer: the caller's ACK has the answer
        out += self._run(self.a, a_session.answer(presented, now), now)
        return out + self._refreshed(now)

    # -- confirm-call: the person who answers presses 1 before the caller is bridged

    def _ask_to_confirm(
        self, leg: Leg, answer: bytes, view: MediaView, now: float
    ) -> list[CallAction]:
        """A callee that must confirm answered (its 2xx is ACKed): the switch plays it the
        prompt and waits for 1, for ``confirm_timeout``; the caller keeps hearing ringing.
        One confirmation at a time: side B has one port."""
        try:
            formats = g711_of(answer)
        except SipError:
            formats = None
        if self._confirming is not None or formats is None or view.address is None:
            self.log.info("confirm_impossible", leg=leg.index, member=leg.extension)
            leg.final_status = StatusCode.TEMPORARILY_UNAVAILABLE
            return self._run(leg, leg.session.hang_up(now), now)
        payload_type, event_payload_type = formats
        self._confirming, self._confirm_answer = leg, answer
        self.log.info("confirm_asked", leg=leg.index, member=leg.extension)
        until = now + self.context.confirm_timeout
        held: list[CallAction] = []
        if self.hunt is not None and leg.extension is not None:
            held.append(MemberConfirming(leg.extension, until))
        return [
            *held,
            ConfirmAnswer(
                session_id=self.session_id,
                remote=view.address,
                payload_type=payload_type,
                event_payload_type=event_payload_type,
            ),
            Arm(leg.index, CallTimer.CONFIRM_TIMEOUT, until),
        ]

    def on_digit(self, digit: str, now: float) -> list[CallAction]:
        """A key from the callee asked to confirm (RFC 4733 via the media host, or INFO):
        1 bridges it to the caller; other keys are ignored (the prompt goes on)."""
        leg = self._confirming
        if leg is None or self.is_ended:
            return []
        self.log.info("confirm_key", leg=leg.index, digit=digit)
        if digit != "1":
            return []
        answer = self._confirm_answer
        out = self._end_confirm()
        leg.confirmed = True
        return out + self._callee_answered(leg, answer, now)

    def _confirm_timed_out(self, leg: Leg, now: float) -> list[CallAction]:
        """Nobody pressed 1 (a mobile's own voicemail took the call): hang up on it; the
        member failed and the hunt goes on."""
        if leg is not self._confirming:
            return []
        self.log.info("confirm_timeout", leg=leg.index, member=leg.extension)
        leg.final_status = StatusCode.TEMPORARILY_UNAVAILABLE
        return self._end_confirm() + self._run(leg, leg.session.hang_up(now), now)

    def _end_confirm(self) -> list[CallAction]:
        leg = self._confirming
        if leg is None:
            return []
        self._confirming = self._confirm_answer = None
        return [
            StopConfirm(session_id=self.session_id),
            Disarm(leg.index, CallTimer.CONFIRM_TIMEOUT),
        ]

    def _confirm_request(self, leg: Leg, request: Request, now: float) -> list[CallAction]:
        """A request from the callee being asked to confirm: INFO may carry its key."""
        if request.method != "INFO":
            return self._respond(leg, make_response(request, StatusCode.NOT_ACCEPTABLE_HERE))
        out = self._respond(leg, make_response(request, StatusCode.OK))
        digit = parse_info_dtmf(request.content_type or "", request.body.decode("latin-1"))
        return out if digit is None else out + self.on_digit(digit, now)

    def _refreshed(self, now: float) -> list[CallAction]:
        """The caller's session was (re)established or refreshed: time the next step."""
        timer = self.session_timer
        if timer is None or self.is_ended:
            return []
        return [Arm(CALLER, CallTimer.SESSION_TIMER, timer.next_deadline(now))]

    def _refuse_answer(self, leg: Leg, reason: str, now: float) -> list[CallAction]:
        """A callee answered with no usable SDP: 502 to the caller, BYE to that callee,
        CANCEL to the others."""
        self._hanging_up = True
        self.end_reason = reason
        self._disposition = Disposition.FAILED
        out = self._reject_caller(StatusCode.BAD_GATEWAY, now)
        out += self._run(leg, leg.session.hang_up(now), now)
        return out + self._hang_up_callees(now)

    def _answer_in_ack(self, leg: Leg, sdp: bytes, now: float) -> list[CallAction]:
        """The ACK carried the answer to an offer that came from the other leg's 2xx
        (a delayed-offer INVITE or re-INVITE)."""
        other = self._other(leg)
        if other is None or other.terminated:
            return []
        try:
            view, presented = other.face.cross(sdp)
        except SipError:
            return self._hang_up_all("bad SDP in ACK", now)
        leg.view = view
        out = self._expect(self._side(leg), view)
        if leg is self.a and self._owed_ack is other:
            self._owed_ack = None
            session = other.session
            assert isinstance(session, UacInviteSession)
            return out + self._run(other, session.send_ack(presented, now), now)
        return out + self._run(other, other.session.send_reinvite_ack(presented, now), now)

    def _hang_up_callees(self, now: float) -> list[CallAction]:
        out: list[CallAction] = []
        for leg in self.legs[1:]:
            if leg is not self.winner and not leg.terminated:
                out += self._run(leg, leg.session.hang_up(now), now)
        return out

    def _reject_caller(self, status: int, now: float) -> list[CallAction]:
        session = self.a_session
        if session.state not in (SessionState.INITIAL, SessionState.EARLY):
            return []
        self.log.info("call_rejected", status=int(status))
        return self._run(self.a, session.reject(status, now), now)

    def _hang_up_all(
        self, reason: str, now: float, status: int = StatusCode.TEMPORARILY_UNAVAILABLE
    ) -> list[CallAction]:
        self._hanging_up = True
        if not self.end_reason:
            self.end_reason = reason
        out = self._reject_caller(status, now)
        for leg in self.legs:
            if leg.terminated or (leg.session.state in _UNANSWERED and leg is self.a):
                continue  # an unanswered caller was rejected just above
            out += self._run(leg, leg.session.hang_up(now), now)
        return out + self._end_if_done(reason, now)

    # -- legs ending

    def _leg_terminated(
        self, leg: Leg, reason: EndReason, status: int | None, now: float
    ) -> list[CallAction]:
        if status is not None and leg.final_status is None:
            leg.final_status = status
        out: list[CallAction] = []
        if leg.cancel_sent:
            out.append(Disarm(leg.index, CallTimer.CANCEL_TIMEOUT))
        if leg is self._confirming:
            out += self._end_confirm()
        if leg is self.a or leg is self.winner:
            self._hanging_up = True
        if leg is self.a and reason is EndReason.REMOTE_BYE and self.answered_at is None:
            # A BYE in the early dialog is the caller giving up: the INVITE got 487.
            leg.final_status = StatusCode.REQUEST_TERMINATED
            self._disposition = Disposition.CANCELLED
        if leg is self.a:
            if not self.end_reason:
                self.end_reason = {
                    EndReason.REMOTE_BYE: "caller BYE",
                    EndReason.CANCELLED: "caller cancelled",
                    EndReason.ACK_TIMEOUT: "caller never ACKed",
                }.get(reason, reason.value)
            if reason is EndReason.CANCELLED:
                self._disposition = Disposition.CANCELLED
            out += self._hang_up_callees(now)
            if self.winner is not None and not self.winner.terminated:
                out += self._run(self.winner, self.winner.session.hang_up(now), now)
        elif leg is self.winner:
            if not self.end_reason:
                self.end_reason = "callee BYE" if reason is EndReason.REMOTE_BYE else reason.value
            if not self.a.terminated:
                out += self._hang_up_all(self.end_reason, now)
        elif self.hunt is not None:
            out += self._ring_ended(leg)
        elif (
            self.winner is None
            and not self.a.terminated
            and not self.is_ended
            and all(b.terminated for b in self.legs[1:])
        ):
            best = best_final_status(
                b.final_status for b in self.legs[1:] if b.final_status is not None
            )
            self.end_reason = self.end_reason or f"callees answered {best}"
            self._disposition = self._disposition or disposition_of(best)
            out += self._reject_caller(best, now)
        return out + self._end_if_done(self.end_reason or reason.value, now)

    def _ring_ended(self, leg: Leg) -> list[CallAction]:
        """A hunt's callee leg ended unanswered: when it was the last device of its
        member's ring, the member failed (unless the hunt had stopped it)."""
        ring = leg.ring
        if ring is None or leg.extension is None or ring in self._closed_rings:
            return []
        if self.winner is not None or self.is_ended or self.a.terminated:
            return []
        legs = [b for b in self.legs[1:] if b.ring == ring]
        if not all(b.terminated for b in legs):
            return []
        self._closed_rings.add(ring)
        best = best_final_status(b.final_status for b in legs if b.final_status is not None)
        return [MemberFailed(leg.extension, best)]

    def _end_if_done(self, reason: str, now: float) -> list[CallAction]:
        out: list[CallAction] = []
        a_done = self.a.terminated or self.a.session.state is SessionState.TERMINATING
        if not self.is_ended and a_done:
            out += self._end(reason, now)
        if self.is_ended and not self._finished and all(leg.terminated for leg in self.legs):
            self._finished = True
            out.append(Disarm(CALLER, CallTimer.RING_TIMEOUT))
            out.append(CallFinished())
        return out

    def failed(self, now: float) -> CallRecord:
        """The record of a call dropped because of an internal error."""
        self.end_reason = "internal error"
        self._disposition = Disposition.FAILED
        self._finished = True
        actions = self._end(self.end_reason, now)
        return next(a.record for a in actions if isinstance(a, CallEnded))

    def _state_name(self) -> str:
        if self.voicemail is not None:
            return "voicemail"
        return "answered" if self.winner is not None else "ringing"

    def _answered_by(self) -> str | None:
        if self.winner is not None:
            return self.winner.extension or self.winner.label
        return None if self.voicemail is None else f"voicemail:{self.voicemail}"

    def _end(self, reason: str, now: float) -> list[CallAction]:
        self.ended_at = now
        self.end_reason = self.end_reason or reason
        caller_status = self.a.final_status
        if self.answered_at is not None:
            caller_status = 200
            voicemail = self.voicemail is not None
            disposition = Disposition.VOICEMAIL if voicemail else Disposition.ANSWERED
        else:
            disposition = self._disposition or disposition_of(caller_status or 0)
        tried = [leg.final_status for leg in self.legs[1:] if leg.final_status is not None]
        callee_status = (
            200 if self.winner is not None else (best_final_status(tried) if tried else None)
        )
        offset = self.context.wall_offset
        record = CallRecord(
            call_id=self.invite.call_id,
            caller=self.caller,
            caller_name=self.caller_name,
            callee=self.callee,
            answered_by=self._answered_by(),
            started_at=self.started_at + offset,
            answered_at=None if self.answered_at is None else self.answered_at + offset,
            ended_at=now + offset,
            duration=0.0 if self.answered_at is None else round(now - self.answered_at, 3),
            disposition=disposition,
            caller_status=None if caller_status is None else int(caller_status),
            callee_status=None if callee_status is None else int(callee_status),
            end_reason=self.end_reason,
        )
        self.log.info(
            "call_ended",
            reason=self.end_reason,
            disposition=disposition.value,
            caller_status=None if caller_status is None else int(caller_status),
            duration=record.duration,
        )
        return [CloseSession(session_id=self.session_id), CallEnded(record)]

    # -- relaying inside the bridge

    def _other(self, leg: Leg) -> Leg | None:
        if leg is self.a:
            return self.winner
        return self.a if leg is self.winner else None

    @staticmethod
    def _side(leg: Leg) -> Side:
        return Side.A if leg.index == CALLER else Side.B

    def _expect(self, side: Side, view: MediaView) -> list[CallAction]:
        if view.address is None:
            return []
        return [UpdateRemote(session_id=self.session_id, side=side, expected=view.address)]

    def _relay_reinvite(self, leg: Leg, sdp: bytes | None, now: float) -> list[CallAction]:
        other = self._other(leg)
        session = leg.session
        if self.voicemail is not None:
            # Nobody to pass it to: the switch keeps its media as it is.
            return self._run(leg, session.reject_reinvite(StatusCode.NOT_ACCEPTABLE_HERE, now), now)
        if other is None or not other.established or self._reinvite is not None:
            return self._run(leg, session.reject_reinvite(StatusCode.REQUEST_PENDING, now), now)
        presented = None
        if sdp is not None:
            try:
                view, presented = other.face.cross(sdp)
            except SipError:
                return self._run(
                    leg, session.reject_reinvite(StatusCode.NOT_ACCEPTABLE_HERE, now), now
                )
        try:
            sent = other.session.send_reinvite(presented, now)
        except SessionStateError:
            return self._run(leg, session.reject_reinvite(StatusCode.REQUEST_PENDING, now), now)
        self._reinvite = (leg, other)
        out: list[CallAction] = []
        if sdp is not None:
            leg.view = view
            out += self._expect(self._side(leg), view)
            self.log.info("reinvite_relayed", leg=leg.index, direction=view.direction.value)
        return out + self._run(other, sent, now)

    def _reinvite_accepted(
        self, leg: Leg, sdp: bytes | None, ack_owed: bool, now: float
    ) -> list[CallAction]:
        pending, self._reinvite = self._reinvite, None
        if pending is None or pending[1] is not leg:
            return []
        origin = pending[0]
        if origin.terminated:
            return []
        if sdp is None:
            # A 2xx without the answer to our offer: the caller's change did not happen.
            return self._run(
                origin, origin.session.reject_reinvite(StatusCode.SERVER_INTERNAL_ERROR, now), now
            )
        try:
            view, presented = origin.face.cross(sdp)
        except SipError:
            return self._run(
                origin, origin.session.reject_reinvite(StatusCode.NOT_ACCEPTABLE_HERE, now), now
            )
        leg.view = view
        out = self._expect(self._side(leg), view)
        return out + self._run(origin, origin.session.answer_reinvite(presented, now), now)

    def _reinvite_rejected(self, leg: Leg, status: int, now: float) -> list[CallAction]:
        pending, self._reinvite = self._reinvite, None
        if pending is None or pending[1] is not leg:
            return []
        origin = pending[0]
        if origin.terminated:
            return []
        if status in (408, 481):
            status = StatusCode.SERVER_INTERNAL_ERROR  # the far leg is gone; the call ends
        return self._run(origin, origin.session.reject_reinvite(status, now), now)

    def _relay_request(self, leg: Leg, request: Request, now: float) -> list[CallAction]:
        dialog = leg.session.dialog
        if dialog is None or leg.terminated:
            return self._respond(
                leg, make_response(request, StatusCode.CALL_TRANSACTION_DOES_NOT_EXIST)
            )
        dialog.on_request(request)  # DialogError: 481, 500 out of order
        if self.voicemail is not None and leg is self.a:
            return self._voicemail_request(leg, request)
        if leg is self._confirming:
            return self._confirm_request(leg, request, now)
        other = self._other(leg)
        if other is None or other.session.dialog is None or not other.session.dialog.is_confirmed:
            response = make_response(request, StatusCode.SERVICE_UNAVAILABLE)
            response.headers.add("Retry-After", "1")
            return self._respond(leg, response)
        body = request.body
        content_type = request.content_type if body else None
        out: list[CallAction] = []
        if body and content_type == SDP:
            view, body = other.face.cross(body)
            leg.view = view
            out += self._expect(self._side(leg), view)
        extra = [(f.name, f.value) for f in request.headers if f.key in RELAYED_HEADERS]
        try:
            relayed = other.session.dialog.new_request(
                request.method,
                branch=self._ids.new_branch(),
                local_address=self.context.local(other.peer),
                body=body,
                content_type=content_type,
                extra_headers=extra,
            )
        except LocalProtocolError:
            return self._respond(leg, make_response(request, StatusCode.SERVER_INTERNAL_ERROR))
        key = client_key(relayed)
        self._relays[key] = Relayed(
            leg.index, leg.server_keys[(request.cseq.number, request.method)], request
        )
        out.append(SendInLeg(other.index, relayed, other.peer, Purpose.RELAY))
        return out

    def _voicemail_request(self, leg: Leg, request: Request) -> list[CallAction]:
        """The caller talks to the switch itself: INFO may carry a key (SIP INFO DTMF); a
        stop key ends the recording. Other requests have nowhere to go (488)."""
        if request.method != "INFO":
            return self._respond(leg, make_response(request, StatusCode.NOT_ACCEPTABLE_HERE))
        out = self._respond(leg, make_response(request, StatusCode.OK))
        digit = parse_info_dtmf(request.content_type or "", request.body.decode("latin-1"))
        if digit is not None and digit in self._stop_digits:
            self.log.info("voicemail_stop_key", digit=digit, by="INFO")
            out.append(StopMessage(session_id=self.session_id, reason=MessageStop.DIGIT))
        return out

    def _relay_response(
        self, leg: Leg, key: TransactionKey, response: Response
    ) -> list[CallAction]:
        relayed = self._relays.pop(key, None)
        if relayed is None:
            return []
        dialog = leg.session.dialog
        if dialog is not None and not dialog.is_terminated:
            with contextlib.suppress(SipError):
                dialog.on_response(response)
        origin = self.legs[relayed.origin]
        answer = make_response(relayed.request, response.status, response.reason)
        out: list[CallAction] = []
        body = response.body
        if body and response.content_type == SDP and 200 <= response.status < 300:
            try:
                view, body = origin.face.cross(body)
            except SipError:
                body = b""
            else:
                leg.view = view
                out += self._expect(self._side(leg), view)
        if body:
            answer.headers.add("Content-Type", response.content_type or SDP)
            answer.body = body
        return out + self._respond(origin, answer)


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
