"""The REGISTER client of a carrier trunk: the switch registers to a SIP provider as a UAC
(RFC 3261 section 10.2) so that the provider sends the company's DID calls to our Contact.

Pure, like the rest of the core: :class:`RegistrationClient` builds requests and reacts to
the final responses, failures and timer expiries the switch feeds it, always with ``now``.
The switch owns the client transactions (retransmissions, Timer F) and the one timer the
client asks for; the client never reads a clock and draws its jitter from the
``random.Random`` it is given, its tags, branches and cnonces from an :class:`IdSource`.

The rules, each one a unit test on the virtual clock:

- Refresh ``granted - min(granted / 2, 60)`` seconds after the REGISTER that got the 200
  was *sent*: half the grant for short grants (a 60 s grant refreshes at 30 s, leaving
  room for a retransmitted request), one minute early for long ones (a 3600 s grant
  refreshes at 3540 s, not at 1800 s, which would double the provider's load for nothing).
  Counting from the send time rather than the response time keeps the refresh on the safe
  side of the registrar's clock (it started the binding after we sent) and stops the
  schedule from drifting by one round trip per refresh. A 200 that comes after that
  instant (a short grant, a slow provider) refreshes at once.
- After the k-th consecutive failure, wait ``min(retry_max, retry_min * 2**(k-1))`` scaled
  by a factor drawn uniformly from [0.5, 1.0] (RFC 5626 section 4.5), so that many
  switches behind one failed provider do not come back in step. A failing response with a
  positive ``Retry-After`` waits that long instead (capped at ``retry_max``, no jitter: the
  provider chose the instant). A 200 resets the count. Failures never end the retrying.
- While registered, a CRLF keep-alive every ``keepalive`` seconds; the single timer is
  armed for whichever of refresh and keep-alive is due first.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, TypeAlias

from b2bua.ids import IdSource
from b2bua.registrar.qualify import LocalIdentity
from b2bua.sip import grammar
from b2bua.sip.address import Transport
from b2bua.sip.digest import Challenge, DigestAccount
from b2bua.sip.errors import SipError
from b2bua.sip.headers import NameAddr, parse_name_addr
from b2bua.sip.message import Headers, Request, Response
from b2bua.sip.status import reason_phrase
from b2bua.sip.uri import SipUri, parse_sip_uri

#: What a trunk accepts from the provider (RFC 3261 section 20.5).
ALLOW: Final = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, NOTIFY, SUBSCRIBE"

#: RFC 5626 section 4.4.1: the CRLF keep-alive "ping" is a double CRLF.
KEEPALIVE: Final = b"\r\n\r\n"

#: How many requests one attempt may send at once after the first (challenge answers and
#: 423 re-sends). A 423, a 407 and a 401 answered, then a stale nonce, take four; a
#: registrar that says "stale" or "too brief" forever is a failure, not a busy loop.
MAX_FOLLOW_UPS: Final = 4

#: Refresh at most this many seconds before the grant runs out (see the module docstring).
REFRESH_MARGIN: Final = 60.0

# delta-seconds = 1*DIGIT (RFC 3261 section 25.1), at most 2**32 - 1 (section 20.19).
_DELTA_SECONDS_RE: Final = re.compile(r"[0-9]{1,10}")
# Retry-After = delta-seconds [ comment ] *( SEMI retry-param ) (RFC 3261 section 20.33).
_RETRY_AFTER_RE: Final = re.compile(r"[ \t]*([0-9]{1,10})(?![0-9])")
_MAX_DELTA: Final = 2**32 - 1
# The first algorithm we have a secret for wins (RFC 8760 section 2.4: SHA-256 over MD5).
# Which header answers which challenge (RFC 3261 sections 22.2 and 22.3).
_ANSWER_HEADER: Final = {401: "Authorization", 407: "Proxy-Authorization"}
_CHALLENGE_HEADER: Final = {401: "WWW-Authenticate", 407: "Proxy-Authenticate"}


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrationSettings:
    """One trunk's registration. The secret is ``password``, or instead one or both stored
    HA1s (each computed for the provider's realm and its algorithm: set ``realm`` with
    them, as an HA1 for another realm can only fail). With ``realm`` set, a challenge for
    any other realm is refused rather than answered: our secret is not sent to whoever
    asks for it."""

    trunk: str
    registrar: SipUri | str
    aor: str
    contact_user: str
    username: str
    password: str | None = None
    ha1_md5: str | None = None
    ha1_sha256: str | None = None
    realm: str | None = None
    expires: int = 3600
    retry_min: float = 5.0
    retry_max: float = 300.0
    keepalive: float = 30.0
    transport: Transport = Transport.UDP

    def __post_init__(self) -> None:
        has_ha1 = self.ha1_md5 is not None or self.ha1_sha256 is not None
        if (self.password is None) == (not has_ha1):
            raise ValueError(f"trunk {self.trunk}: give a password or stored HA1s (not both)")
        try:
            if isinstance(self.registrar, str):
                parse_sip_uri(self.registrar)
            parse_sip_uri(self.aor)
        except SipError as exc:
            raise ValueError(f"trunk {self.trunk}: {exc}") from None
        if grammar.USER_RE.match(self.contact_user) is None:
            raise ValueError(f"trunk {self.trunk}: contact_user is not a SIP URI user part")
        if not 0 < self.expires <= _MAX_DELTA:
            raise ValueError(f"trunk {self.trunk}: expires must be 1..{_MAX_DELTA}")
        if not 0 < self.retry_min <= self.retry_max:
            raise ValueError(f"trunk {self.trunk}: expected 0 < retry_min <= retry_max")
        if self.keepalive < 0:
            raise ValueError(f"trunk {self.trunk}: keepalive must be >= 0")


class RegistrationState(Enum):
    """Where the registration stands. REGISTERED and FAILING say how the last attempt
    ended; a refresh or a retry in flight does not change them."""

    IDLE = "idle"  # not started
    REGISTERING = "registering"  # the first REGISTER is in flight
    REGISTERED = "registered"  # the provider holds our binding
    FAILING = "failing"  # the last attempt failed; the next one is on the back-off timer
    UNREGISTERING = "unregistering"  # stop(): the Expires 0 REGISTER is in flight
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True, kw_only=True)
class SendRegister:
    """Start a non-INVITE client transaction for ``request`` to the registrar; feed its
    final response to :meth:`RegistrationClient.on_response`, its timeout or transport
    error to :meth:`RegistrationClient.on_failure`."""

    request: Request


@dataclass(frozen=True, slots=True, kw_only=True)
class ArmTimer:
    """Call :meth:`RegistrationClient.on_timer` at ``at``; replaces the armed timer."""

    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class DisarmTimer:
    """Forget the armed timer."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SendKeepAlive:
    """Write ``data`` to the registrar on the trunk's transport (RFC 5626 section 4.4.1).

    On TCP the double CRLF is the RFC's keep-alive. On UDP the RFC wants STUN, which only
    an outbound-capable edge proxy is required to answer (RFC 5626 section 8) and whose
    answer our SIP receive path would have to demultiplex; carriers do not negotiate
    outbound with us. What we need is only to keep our NAT binding towards the registrar
    open, and any datagram does that: the same double CRLF, which providers' stacks ignore
    as they ignore CRLFs before a start line (RFC 3261 section 7.5), and which our own
    parser drops as an empty message.
    """

    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class StateChanged:
    """For logs and metrics: the state after an outcome, emitted when the state changes
    and after every failed attempt (FAILING to FAILING too, so each failure is logged).
    ``status`` and ``reason`` are the response's (or 408/503 for a timeout or transport
    error); ``detail`` says why we judged a response a failure when its code does not."""

    state: RegistrationState
    status: int | None
    reason: str
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Stopped:
    """After stop(): nothing more will be sent; the shell may exit."""


RegistrationAction: TypeAlias = (
    SendRegister | ArmTimer | DisarmTimer | SendKeepAlive | StateChanged | Stopped
)


@dataclass(slots=True)
class _Credential:
    """The last challenge of one kind (401 or 407) and the nc last used with its nonce."""

    challenge: Challenge
    nc: int
    answered: bool  # set by a challenge; the next request answers it (not pre-emptively)
    sent_fresh: bool = False  # the request in flight answers a challenge of its predecessor


class RegistrationClient:
    """A UAC keeping one binding at a registrar (RFC 3261 section 10.2).

    Inputs: :meth:`start`, :meth:`on_response` (final responses of our REGISTER
    transactions), :meth:`on_failure` (their timeouts and transport errors),
    :meth:`on_timer` (the timer last armed fired), :meth:`stop`. Each returns the actions to
    execute, in order. All REGISTERs share one Call-ID and From tag (section 10.2.4); the
    CSeq goes up by one per request, so a response with another CSeq is stale and ignored.
    """

    def __init__(
        self,
        settings: RegistrationSettings,
        local: LocalIdentity,
        ids: IdSource,
        rng: random.Random,
    ) -> None:
        self.settings = settings
        self._ids = ids
        self._rng = rng
        self._user_agent = local.user_agent
        port = local.ports.get(settings.transport.value)
        if port is None:
            raise ValueError(
                f"trunk {settings.trunk}: the switch does not listen on {settings.transport}"
            )
        host = local.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"  # an IPv6 reference (RFC 3261 section 25.1)
        self._host, self._port = host, port
        self._registrar = str(settings.registrar)
        self._account = DigestAccount(
            username=settings.username,
            password=settings.password,
            ha1_md5=settings.ha1_md5,
            ha1_sha256=settings.ha1_sha256,
            realm=settings.realm,
        )
        tcp = ";transport=tcp" if settings.transport is Transport.TCP else ""
        self.contact = f"sip:{settings.contact_user}@{host}:{port}{tcp}"
        self._call_id = f"{ids.new_call_id()}@{host}"
        self._from_tag = ids.new_tag()
        self._state = RegistrationState.IDLE
        self._cseq = 0
        self._in_flight = False
        self._sent_at = 0.0
        self._expires = settings.expires  # raised for good by a 423
        self._sent_expires = settings.expires  # the Expires of the request in flight
        self._credentials: dict[str, _Credential] = {}  # answer header -> credential
        self._follow_ups = 0
        self._failures = 0
        self._last_status: int | None = None
        self._last_reason: str | None = None
        self._last_detail = ""
        self._granted: int | None = None
        self._registered_until: float | None = None
        self._refresh_at: float | None = None
        self._keepalive_at: float | None = None
        self._retry_at: float | None = None
        self._armed: float | None = None

    # -- inputs --------------------------------------------------------------------------

    @property
    def state(self) -> RegistrationState:
        return self._state

    @property
    def deadline(self) -> float | None:
        """When the armed timer fires (what the last ArmTimer said), or None."""
        return self._armed

    @property
    def is_in_flight(self) -> bool:
        """A REGISTER of ours awaits its final response."""
        return self._in_flight

    def start(self, now: float) -> list[RegistrationAction]:
        """Send the first REGISTER. Only an IDLE client starts; otherwise nothing happens."""
        if self._state is not RegistrationState.IDLE:
            return []
        actions = self._set_state(RegistrationState.REGISTERING, None, "")
        actions.append(self._new_attempt(now, self._expires))
        return actions + self._timer_actions()

    def on_response(self, response: Response, now: float) -> list[RegistrationAction]:
        """A final response of a REGISTER transaction. Responses to anything but the
        request in flight (an older CSeq, another Call-ID) are ignored, as are
        provisional ones."""
        if not self._is_current(response) or response.status < 200:
            return []
        self._in_flight = False
        status = response.status
        unregistering = self._state is RegistrationState.UNREGISTERING
        detail = ""
        if 200 <= status < 300:
            if unregistering:
                return self._stop(status, response.reason, "")
            return self._on_ok(response, now)
        if status in _ANSWER_HEADER:
            problem = self._take_challenge(response)
            if problem is None:
                return [self._send(now, self._sent_expires), *self._timer_actions()]
            detail = problem
        elif status == 423 and not unregistering:
            problem = self._take_min_expires(response)
            if problem is None:
                return [self._send(now, self._sent_expires), *self._timer_actions()]
            detail = problem
        if unregistering:
            return self._stop(status, response.reason, detail)
        return self._fail(now, status, response.reason, detail, _retry_after(response))

    def on_failure(
        self, status: int, now: float, *, cseq: int | None = None
    ) -> list[RegistrationAction]:
        """Our REGISTER transaction ended without a response: 408 (Timer F) or 503 (a
        transport error, RFC 3261 section 8.1.3.1). ``cseq`` is the CSeq number of its
        request: pass it, so that the end of a transaction still running when stop() sent
        the un-REGISTER is not taken for the un-REGISTER's. Without it, the failure is
        taken to be the current request's."""
        if not self._in_flight or (cseq is not None and cseq != self._cseq):
            return []
        self._in_flight = False
        detail = "no response" if status == 408 else "transport error"
        if self._state is RegistrationState.UNREGISTERING:
            return self._stop(status, reason_phrase(status), detail)
        return self._fail(now, status, reason_phrase(status), detail, None)

    def on_timer(self, now: float) -> list[RegistrationAction]:
        """The timer armed last fired: refresh, keep-alive or retry, whichever is due."""
        self._armed = None  # it fired: the switch holds no timer of ours any more
        actions: list[RegistrationAction] = []
        if self._state is RegistrationState.REGISTERED:
            if not self._in_flight and self._refresh_at is not None and self._refresh_at <= now:
                actions.append(self._new_attempt(now, self._expires))
                if self._keepalive_at is not None:
                    # The REGISTER keeps the NAT binding open as well as a keep-alive would.
                    self._keepalive_at = now + self.settings.keepalive
            elif self._keepalive_at is not None and self._keepalive_at <= now:
                actions.append(SendKeepAlive(data=KEEPALIVE))
                self._keepalive_at = now + self.settings.keepalive
        elif (
            self._state is RegistrationState.FAILING
            and not self._in_flight
            and self._retry_at is not None
            and self._retry_at <= now
        ):
            self._retry_at = None
            actions.append(self._new_attempt(now, self._expires))
        return actions + self._timer_actions()

    def connection_lost(self, now: float) -> list[RegistrationAction]:
        """The connection our binding was registered over closed (TCP): the provider
        would send calls down a flow that is gone (RFC 5626 section 4.4.1), so register
        again at once (the transport opens a new connection)."""
        if self._state is not RegistrationState.REGISTERED or self._in_flight:
            return []
        return [self._new_attempt(now, self._expires), *self._timer_actions()]

    def stop(self, now: float) -> list[RegistrationAction]:
        """Remove our binding (RFC 3261 section 10.2.2: Expires 0) and then stop.

        The un-REGISTER goes out when a binding may exist: registered, a request in flight
        (it may succeed), or a grant that has not run out yet (a refresh failed). Otherwise
        Stopped comes at once. No retries follow, whatever the outcome: Stopped comes with
        the un-REGISTER's final response or failure (after answering challenges).
        """
        if self._state in (RegistrationState.UNREGISTERING, RegistrationState.STOPPED):
            return []
        may_be_bound = (
            self._state in (RegistrationState.REGISTERING, RegistrationState.REGISTERED)
            or self._in_flight
            or (self._registered_until is not None and self._registered_until > now)
        )
        self._refresh_at = self._keepalive_at = self._retry_at = None
        if not may_be_bound:
            return self._stop(self._last_status, self._last_reason or "", self._last_detail)
        actions = self._set_state(RegistrationState.UNREGISTERING, None, "")
        actions.append(self._new_attempt(now, 0))
        return actions + self._timer_actions()

    def snapshot(self, now: float, wall_offset: float) -> dict[str, Any]:
        """For /status: instants are wall-clock seconds (``now + wall_offset``)."""

        def wall(instant: float | None) -> float | None:
            return None if instant is None else instant + wall_offset

        next_attempt = None
        if not self._in_flight:
            if self._state is RegistrationState.REGISTERED:
                next_attempt = self._refresh_at
            elif self._state is RegistrationState.FAILING:
                next_attempt = self._retry_at
        until = self._registered_until
        return {
            "trunk": self.settings.trunk,
            "state": self._state.value,
            "registrar": self._registrar,
            "aor": self.settings.aor,
            "contact": self.contact,
            "transport": self.settings.transport.value,
            "last_status": self._last_status,
            "last_reason": self._last_reason,
            "detail": self._last_detail,
            "expires": self._granted,
            "registered_until": wall(until) if until is not None and until > now else None,
            "next_attempt": wall(next_attempt),
            "request_in_flight": self._in_flight,
            "consecutive_failures": self._failures,
        }

    # -- outcomes ------------------------------------------------------------------------

    def _on_ok(self, response: Response, now: float) -> list[RegistrationAction]:
        granted, problem = self._granted_expiry(response)
        if problem:
            return self._fail(now, response.status, response.reason, problem, None)
        self._failures = 0
        self._granted = granted
        self._registered_until = self._sent_at + granted
        # A 200 that took longer than half a short grant to come: refresh at once.
        self._refresh_at = max(now, self._sent_at + granted - min(granted / 2, REFRESH_MARGIN))
        keepalive = self.settings.keepalive
        self._keepalive_at = now + keepalive if keepalive > 0 else None
        self._retry_at = None
        self._last_status, self._last_reason, self._last_detail = (
            response.status,
            response.reason,
            "",
        )
        actions: list[RegistrationAction] = []
        if self._state is not RegistrationState.REGISTERED:
            actions = self._set_state(
                RegistrationState.REGISTERED, response.status, response.reason
            )
        return actions + self._timer_actions()

    def _granted_expiry(self, response: Response) -> tuple[int, str]:
        """RFC 3261 section 10.2.4: our contact's expires parameter in the 200, else its
        Expires header, else what we asked. Other contacts of the AOR may be listed."""
        ours = next((c for c in _contacts(response) if self._is_our_contact(c)), None)
        if ours is None:
            return 0, "our contact is not in the 200"
        granted = _delta_seconds(ours.param("expires"))
        if granted is None:
            granted = _delta_seconds(response.headers.get("expires"))
        if granted is None:
            granted = self._sent_expires
        if granted == 0:
            return 0, "binding granted for 0 seconds"
        return granted, ""

    def _is_our_contact(self, contact: NameAddr) -> bool:
        """Same user, host and port as our Contact (default port 5060 when left out)."""
        try:
            uri = contact.uri
        except SipError:
            return False
        if not isinstance(uri, SipUri) or uri.user is None:
            return False
        host, port = uri.host_port
        ours = self._host.strip("[]")
        return (
            grammar.unescape(uri.user) == grammar.unescape(self.settings.contact_user)
            and host.lower() == ours.lower()
            and (port or 5060) == self._port
        )

    def _take_challenge(self, response: Response) -> str | None:
        """Keep the challenge of a 401/407 to answer in the next request; None when it is
        to be answered, else why not (which makes the response a failure)."""
        kind = _ANSWER_HEADER[response.status]
        values = response.headers.get_all(_CHALLENGE_HEADER[response.status])
        challenge, problem = self._account.choose(values, method="REGISTER", uri=self._registrar)
        if challenge is None:
            return problem
        sent = self._credentials.get(kind)
        if sent is not None and sent.sent_fresh and not challenge.stale:
            # RFC 3261 section 22.2: our answer was computed right, so the secret is wrong.
            return "credentials refused"
        if self._follow_ups >= MAX_FOLLOW_UPS:
            return "too many challenges"
        # RFC 7616 section 3.4: nc counts the requests sent with one nonce.
        same_nonce = sent is not None and sent.challenge.nonce == challenge.nonce
        nc = sent.nc + 1 if sent is not None and same_nonce else 1
        self._credentials[kind] = _Credential(challenge=challenge, nc=nc, answered=True)
        self._follow_ups += 1
        return None

    def _take_min_expires(self, response: Response) -> str | None:
        """RFC 3261 section 10.2.8: 423 asks again with Expires = Min-Expires."""
        min_expires = _delta_seconds(response.headers.get("min-expires"))
        if min_expires is None or min_expires <= self._sent_expires:
            return "423 without a larger Min-Expires"
        if self._follow_ups >= MAX_FOLLOW_UPS:
            return "too many re-sends"
        self._follow_ups += 1
        self._expires = self._sent_expires = min_expires
        return None

    def _fail(
        self, now: float, status: int, reason: str, detail: str, retry_after: int | None
    ) -> list[RegistrationAction]:
        self._failures += 1
        # A retry starts afresh: credentials that failed, or that met a fault, are not reused.
        self._credentials.clear()
        self._last_status, self._last_reason, self._last_detail = status, reason, detail
        settings = self.settings
        if retry_after:
            wait = min(settings.retry_max, float(retry_after))
        else:
            exponent = min(self._failures - 1, 64)  # 2**64 * retry_min is past any cap
            backoff = min(settings.retry_max, settings.retry_min * 2**exponent)
            wait = backoff * self._rng.uniform(0.5, 1.0)
        self._retry_at = now + wait
        self._refresh_at = self._keepalive_at = None
        self._state = RegistrationState.FAILING
        state_changed = StateChanged(
            state=RegistrationState.FAILING, status=status, reason=reason, detail=detail
        )
        return [state_changed, *self._timer_actions()]

    def _stop(self, status: int | None, reason: str, detail: str) -> list[RegistrationAction]:
        self._in_flight = False
        self._refresh_at = self._keepalive_at = self._retry_at = None
        self._credentials.clear()
        if status is not None:
            self._last_status, self._last_reason, self._last_detail = status, reason, detail
        self._state = RegistrationState.STOPPED
        state_changed = StateChanged(
            state=RegistrationState.STOPPED, status=status, reason=reason, detail=detail
        )
        return [state_changed, *self._timer_actions(), Stopped()]

    # -- requests ------------------------------------------------------------------------

    def _new_attempt(self, now: float, expires: int) -> SendRegister:
        self._follow_ups = 0
        return self._send(now, expires)

    def _send(self, now: float, expires: int) -> SendRegister:
        """The next REGISTER (RFC 3261 section 10.2): a new branch and CSeq each time."""
        self._cseq += 1
        self._in_flight = True
        self._sent_at = now
        self._sent_expires = expires
        transport = self.settings.transport.value
        aor = self.settings.aor
        headers = Headers(
            [
                (
                    "Via",
                    f"SIP/2.0/{transport} {self._host}:{self._port}"
                    f";branch={self._ids.new_branch()};rport",
                ),
                ("Max-Forwards", "70"),
                ("From", f"<{aor}>;tag={self._from_tag}"),
                ("To", f"<{aor}>"),
                ("Call-ID", self._call_id),
                ("CSeq", f"{self._cseq} REGISTER"),
                ("Contact", f"<{self.contact}>;expires={expires}"),
                ("Expires", str(expires)),
                ("Allow", ALLOW),
                ("User-Agent", self._user_agent),
            ]
        )
        for kind, credential in list(self._credentials.items()):
            value = self._credential_value(credential)
            if value is None:
                del self._credentials[kind]
            else:
                headers.add(kind, value)
        headers.add("Content-Length", "0")
        return SendRegister(request=Request("REGISTER", self._registrar, headers))

    def _credential_value(self, credential: _Credential) -> str | None:
        """Answer a challenge just received, or reuse the last one pre-emptively with the
        next nc (RFC 3261 section 22.3 lets a UAC cache credentials per realm), which saves
        the refresh a round trip. Without qop there is no nc: reusing the nonce would be a
        replay, so such a challenge is answered once and dropped."""
        if credential.answered:
            credential.answered = False
            credential.sent_fresh = True
        elif not credential.challenge.qop:
            return None
        else:
            credential.nc += 1
            credential.sent_fresh = False
        # None (the credential dropped, the next challenge answered afresh) once nc would
        # pass 2**32 - 1 (RFC 7616 section 3.4: 8 hex digits).
        return self._answer(credential.challenge, nc=credential.nc, cnonce=self._ids.new_tag())

    def _answer(self, challenge: Challenge, *, nc: int, cnonce: str) -> str | None:
        return self._account.answer(
            challenge, method="REGISTER", uri=self._registrar, nc=nc, cnonce=cnonce
        )

    # -- bookkeeping ---------------------------------------------------------------------

    def _is_current(self, response: Response) -> bool:
        if not self._in_flight:
            return False
        try:
            cseq = response.cseq
            call_id = response.call_id
        except SipError:
            return False
        return cseq.number == self._cseq and cseq.method == "REGISTER" and call_id == self._call_id

    def _set_state(
        self, state: RegistrationState, status: int | None, reason: str
    ) -> list[RegistrationAction]:
        self._state = state
        return [StateChanged(state=state, status=status, reason=reason)]

    def _next_deadline(self) -> float | None:
        if self._state is RegistrationState.REGISTERED:
            due = [self._keepalive_at]
            if not self._in_flight:
                due.append(self._refresh_at)
            return min((t for t in due if t is not None), default=None)
        if self._state is RegistrationState.FAILING and not self._in_flight:
            return self._retry_at
        return None

    def _timer_actions(self) -> list[RegistrationAction]:
        """ArmTimer / DisarmTimer when the deadline moved; nothing when it did not."""
        deadline = self._next_deadline()
        if deadline == self._armed:
            return []
        self._armed = deadline
        return [DisarmTimer() if deadline is None else ArmTimer(at=deadline)]


def _contacts(response: Response) -> list[NameAddr]:
    """The response's Contact values that parse; one bad value does not hide the others."""
    contacts = []
    for value in response.headers.get_all("contact"):
        try:
            contacts.append(parse_name_addr(value, "Contact header"))
        except SipError:
            continue
    return contacts


def _delta_seconds(text: str | None) -> int | None:
    if text is None or _DELTA_SECONDS_RE.fullmatch(text.strip()) is None:
        return None
    return min(int(text), _MAX_DELTA)


def _retry_after(response: Response) -> int | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    m = _RETRY_AFTER_RE.match(value)
    return None if m is None else int(m.group(1))
