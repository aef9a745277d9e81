"""HTTP Digest authentication as SIP uses it: RFC 3261 section 22, with the algorithms and
qop of RFC 7616 and SHA-256 for SIP from RFC 8760.

Supported: algorithms MD5 and SHA-256 (:class:`Algorithm`); qop ``auth``, ``auth-int`` and
none (the RFC 2069 form, ``response = KD(HA1, nonce ":" HA2)``). Not supported, and refused
with :class:`UnsupportedDigestError` at parse time: the ``-sess`` variants (their HA1 depends on
the cnonce, so a stored HA1 cannot serve them), SHA-512-256, AKA, and ``userhash``.

Strings are hashed as UTF-8 (RFC 7616 section 4). One header value holds one challenge or
one set of credentials (RFC 8760 section 2.4: one WWW-Authenticate per algorithm).

Pure: nothing here reads a clock or draws randomness. :class:`NonceKeeper` takes its secret
and every ``now`` from the caller; ``answer_challenge`` takes the cnonce.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import heapq
import hmac
import math
import re
import struct
from collections.abc import Sequence
from enum import Enum, StrEnum
from typing import Final, TypeAlias

from b2bua.sip import grammar
from b2bua.sip.errors import LocalProtocolError, ParseError, SipError


class UnsupportedDigestError(ParseError):
    """Well-formed digest parameters we do not implement: an algorithm other than MD5 and
    SHA-256 (``MD5-sess`` included), or a challenge whose qop list has neither ``auth`` nor
    ``auth-int``. A UAC skips such a challenge and tries the next one (RFC 7616 section
    3.3: "the challenge SHOULD be ignored")."""


class Algorithm(StrEnum):
    """Digest algorithms (RFC 7616 section 3.3, RFC 8760 section 2.2), as written on the wire."""

    MD5 = "MD5"
    SHA256 = "SHA-256"


_ALGORITHMS: Final = {algorithm.value: algorithm for algorithm in Algorithm}


class Qop(StrEnum):
    """Quality of protection (RFC 7616 section 3.3)."""

    AUTH = "auth"
    AUTH_INT = "auth-int"


class NonceState(Enum):
    """What :meth:`NonceKeeper.check` says of a nonce."""

    VALID = "valid"
    STALE = "stale"  # ours but too old: challenge again with stale=true (RFC 7616 section 3.3)
    INVALID = "invalid"  # not ours or malformed: a plain new challenge


_HASHES: Final = {Algorithm.MD5: "md5", Algorithm.SHA256: "sha256"}

# digest-response = dig-resp *(COMMA dig-resp) ; auth-param = auth-param-name EQUAL
# ( token / quoted-string ) ; COMMA = SWS "," SWS ; EQUAL = SWS "=" SWS. Unquoted values
# are taken up to the next comma or space, so uri=sip:host from lax clients still parses.
_SWS: Final = r"[ \t\r\n]*"
_PARAM_RE: Final = re.compile(
    rf"{_SWS}({grammar.TOKEN}){_SWS}={_SWS}({grammar.QUOTED_STRING}|[^\s,\"]+){_SWS}(,|\Z)"
)
_PARAM_ALL_RE: Final = re.compile(
    rf"({_SWS}({grammar.TOKEN}){_SWS}={_SWS}({grammar.QUOTED_STRING}|[^\s,\"]+){_SWS}(,|\Z))"
)
# credentials = ("Digest" LWS digest-response) / other-response
_SCHEME_RE: Final = re.compile(rf"{_SWS}({grammar.TOKEN})(?:[ \t\r\n]+|\Z)")
# nonce-count = "nc" EQUAL nc-value ; nc-value = 8LHEX
_NC_RE: Final = re.compile(r"[0-9a-f]{8}")
_HEX_RE: Final = re.compile(r"[0-9a-fA-F]+")
# Characters no quoted-string may carry on the wire (CR, LF and the other controls).
_CTL_RE: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _parse_params(value: str, what: str) -> dict[str, str]:
    """``Digest a=b, c="d"``: parameter names lowercased, values unquoted."""
    scheme = _SCHEME_RE.match(value)
    if scheme is None:
        raise ParseError(f"{what} without an authentication scheme")
    if scheme.group(1).lower() != "digest":
        raise ParseError(f"unsupported authentication scheme in {what}")
    pos, end = scheme.end(), len(value)
    # Fast path: every parameter found in one pass; it is the whole story when the
    # matches cover the text exactly and end well (otherwise the loop names the fault).
    found = _PARAM_ALL_RE.findall(value, pos)
    if (
        found
        and sum(len(f[0]) for f in found) == end - pos
        and found[-1][3] == ""
        and all(f[3] == "," for f in found[:-1])
    ):
        fast = {name.lower(): grammar.unquote(raw) for _, name, raw, _ in found}
        if len(fast) == len(found):
            return fast
    params: dict[str, str] = {}
    while pos < end:
        m = _PARAM_RE.match(value, pos)
        if m is None:
            raise ParseError(f"malformed parameter in {what}")
        name = m.group(1).lower()
        if name in params:
            raise ParseError(f"duplicate {name} parameter in {what}")
        params[name] = grammar.unquote(m.group(2))
        pos = m.end()
        if m.group(3) == "," and pos == end:
            raise ParseError(f"trailing comma in {what}")
    return params


def _algorithm(params: dict[str, str]) -> Algorithm:
    # RFC 7616 section 3.3: "If this is not present, it is assumed to be 'MD5'".
    name = params.get("algorithm", "MD5")
    algorithm = _ALGORITHMS.get(name.upper())
    if algorithm is not None:
        return algorithm
    raise UnsupportedDigestError(f"unsupported digest algorithm {name[:20]!r}")


def _require(params: dict[str, str], name: str, what: str) -> str:
    value = params.get(name)
    if value is None:
        raise ParseError(f"{what} without {name}")
    return value


def _quoted(value: str) -> str:
    if _CTL_RE.search(value) is not None:
        raise LocalProtocolError("control character in a digest parameter")
    return grammar.quote(value)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    """An ``Authorization`` / ``Proxy-Authorization`` value. ``nc`` is the nonce count as a
    number; ``extra`` keeps parameters this module does not use (name lowercased, unquoted)."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: Algorithm = Algorithm.MD5
    qop: Qop | None = None
    cnonce: str | None = None
    nc: int | None = None
    opaque: str | None = None
    extra: tuple[tuple[str, str], ...] = ()

    def to_header_value(self) -> str:
        names = ("username", "realm", "nonce", "uri", "response")
        parts = [f"{name}={_quoted(getattr(self, name))}" for name in names]
        parts.append(f"algorithm={self.algorithm.value}")
        if self.qop is not None:
            if self.cnonce is None or self.nc is None or not 0 < self.nc < 2**32:
                raise LocalProtocolError("digest qop needs a cnonce and an nc in 1..2**32-1")
            parts += [f"cnonce={_quoted(self.cnonce)}", f"qop={self.qop}", f"nc={self.nc:08x}"]
        if self.opaque is not None:
            parts.append(f"opaque={_quoted(self.opaque)}")
        parts += [f"{name}={_quoted(value)}" for name, value in self.extra]
        return "Digest " + ", ".join(parts)


_CREDENTIAL_FIELDS: Final = frozenset(
    {"username", "realm", "nonce", "uri", "response", "algorithm", "qop", "cnonce", "nc", "opaque"}
)


def parse_credentials(value: str) -> Credentials:
    """Parse one Authorization / Proxy-Authorization value (RFC 3261 section 25.1,
    ``credentials``). Raises :class:`ParseError` (400) naming the fault, and
    :class:`UnsupportedDigestError` for an algorithm or qop we do not implement."""
    what = "Digest credentials"
    params = _parse_params(value, what)
    username, realm, nonce, uri, response = (
        _require(params, name, what) for name in ("username", "realm", "nonce", "uri", "response")
    )
    if _HEX_RE.fullmatch(response) is None:
        raise ParseError("digest response is not hexadecimal")
    qop_text = params.get("qop")
    qop = None
    if qop_text is not None:
        try:
            qop = Qop(qop_text.lower())
        except ValueError:
            raise UnsupportedDigestError(f"unsupported qop {qop_text[:20]!r}") from None
    nc_text = params.get("nc")
    if nc_text is not None and _NC_RE.fullmatch(nc_text) is None:
        raise ParseError("digest nc is not 8 lowercase hex digits")
    cnonce = params.get("cnonce")
    # RFC 7616 section 3.4: cnonce and nc MUST be sent with a qop (and not without one).
    if qop is not None and (cnonce is None or nc_text is None):
        raise ParseError("digest qop without cnonce and nc")
    return Credentials(
        username=username,
        realm=realm,
        nonce=nonce,
        uri=uri,
        response=response,
        algorithm=_algorithm(params),
        qop=qop,
        cnonce=cnonce,
        nc=None if nc_text is None else int(nc_text, 16),
        opaque=params.get("opaque"),
        extra=tuple((n, v) for n, v in params.items() if n not in _CREDENTIAL_FIELDS),
    )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Challenge:
    """A ``WWW-Authenticate`` / ``Proxy-Authenticate`` value. ``qop`` lists the options
    offered, in order; an empty tuple means none (the client answers in RFC 2069 form)."""

    realm: str
    nonce: str
    algorithm: Algorithm = Algorithm.MD5
    opaque: str | None = None
    qop: tuple[Qop, ...] = (Qop.AUTH,)
    stale: bool = False

    def to_header_value(self) -> str:
        parts = [f"Digest realm={_quoted(self.realm)}", f"nonce={_quoted(self.nonce)}"]
        if self.opaque is not None:
            parts.append(f"opaque={_quoted(self.opaque)}")
        parts.append(f"algorithm={self.algorithm.value}")
        if self.qop:
            parts.append(f'qop="{",".join(q.value for q in self.qop)}"')
        if self.stale:
            parts.append("stale=true")
        return ", ".join(parts)


def parse_challenge(value: str) -> Challenge:
    """Parse one WWW-Authenticate / Proxy-Authenticate value (RFC 3261 section 25.1,
    ``challenge``). Unknown parameters (domain, charset, ...) are ignored."""
    what = "Digest challenge"
    params = _parse_params(value, what)
    qop: tuple[Qop, ...] = ()
    if "qop" in params:
        # qop-options = "qop" EQUAL LDQUOT qop-value *("," qop-value) RDQUOT; keep the
        # server's order and skip options we do not know (RFC 7616 section 3.3).
        known = {q.value for q in Qop}
        offered = [q.strip().lower() for q in params["qop"].split(",")]
        qop = tuple(dict.fromkeys(Qop(q) for q in offered if q in known))
        if not qop:
            raise UnsupportedDigestError("challenge offers no qop we support")
    return Challenge(
        realm=_require(params, "realm", what),
        nonce=_require(params, "nonce", what),
        algorithm=_algorithm(params),
        opaque=params.get("opaque"),
        qop=qop,
        stale=params.get("stale", "").lower() == "true",
    )


def make_challenges(
    realm: str,
    nonce: str,
    opaque: str | None,
    algorithms: Sequence[Algorithm],
    stale: bool,
) -> list[str]:
    """One challenge value per algorithm, in the order given, each offering qop="auth".

    RFC 8760 section 2.4: the server sends one WWW-Authenticate (or Proxy-Authenticate)
    per algorithm, the preferred first; clients take the first they support.
    """
    if not algorithms or len(set(algorithms)) != len(algorithms):
        raise LocalProtocolError("make_challenges needs distinct algorithms")
    return [
        Challenge(
            realm=realm, nonce=nonce, algorithm=a, opaque=opaque, stale=stale
        ).to_header_value()
        for a in algorithms
    ]


def _h(algorithm: Algorithm, data: str | bytes) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return hashlib.new(_HASHES[algorithm], raw).hexdigest()


def compute_ha1(username: str, realm: str, password: str, algorithm: Algorithm) -> str:
    """HA1 = H(username ":" realm ":" password), lowercase hex (RFC 7616 section 3.4.2)."""
    return _h(algorithm, f"{username}:{realm}:{password}")


def _expected_response(
    credentials: Credentials, *, method: str, ha1: str, body: bytes
) -> str | None:
    c, h = credentials, functools.partial(_h, credentials.algorithm)
    # RFC 7616 section 3.4.3: A2 = Method ":" request-uri, plus ":" H(entity-body) for auth-int.
    a2 = f"{method}:{c.uri}:{h(body)}" if c.qop is Qop.AUTH_INT else f"{method}:{c.uri}"
    if c.qop is None:
        return h(f"{ha1}:{c.nonce}:{h(a2)}")  # RFC 2069, kept by RFC 2617 section 3.2.2.1
    if c.nc is None or c.cnonce is None or not 0 < c.nc < 2**32:
        return None
    return h(f"{ha1}:{c.nonce}:{c.nc:08x}:{c.cnonce}:{c.qop.value}:{h(a2)}")


def verify(credentials: Credentials, *, method: str, ha1: str, body: bytes = b"") -> bool:
    """True when ``credentials.response`` is right for this request and HA1.

    ``ha1`` must belong to ``credentials.algorithm`` and the realm challenged (see
    :func:`ha1_for`); ``body`` matters only for qop=auth-int. This checks the hash and
    nothing else: the caller checks realm, nonce (:class:`NonceKeeper`), nc, opaque and uri.
    """
    expected = _expected_response(credentials, method=method, ha1=ha1.lower(), body=body)
    if expected is None:
        return False
    return hmac.compare_digest(expected.encode(), credentials.response.lower().encode())


@dataclasses.dataclass(frozen=True, slots=True)
class Password:
    """A plaintext password: serves every algorithm and realm."""

    text: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StoredHa1:
    """Precomputed HA1s instead of a password. Each was computed for one realm and one
    algorithm: an MD5 HA1 verifies only MD5 answers, so challenge such an account only
    with the algorithms it has (:func:`algorithms_for`)."""

    md5: str | None = None
    sha256: str | None = None


Secret: TypeAlias = Password | StoredHa1


def ha1_for(secret: Secret, *, username: str, realm: str, algorithm: Algorithm) -> str | None:
    """The HA1 to verify with, or None when ``secret`` cannot serve ``algorithm``.
    A stored HA1 is trusted to match ``realm``: change the realm and it no longer verifies."""
    if isinstance(secret, Password):
        return compute_ha1(username, realm, secret.text, algorithm)
    stored = secret.md5 if algorithm is Algorithm.MD5 else secret.sha256
    return None if stored is None else stored.lower()


def algorithms_for(secret: Secret, preferred: Sequence[Algorithm]) -> list[Algorithm]:
    """The algorithms of ``preferred``, in order, that ``secret`` can verify."""
    if isinstance(secret, Password):
        return list(preferred)
    return [a for a in preferred if (secret.md5 if a is Algorithm.MD5 else secret.sha256)]


def answer_challenge(
    challenge: Challenge,
    *,
    username: str,
    password: str | None = None,
    ha1: str | None = None,
    method: str,
    uri: str,
    cnonce: str,
    nc: int,
    body: bytes = b"",
) -> str:
    """An Authorization value answering ``challenge``: qop=auth when offered (else auth-int,
    hashing ``body``), the RFC 2069 form when the challenge offers no qop.

    Give exactly one of ``password`` and ``ha1``. A stored ``ha1`` (a trunk's credentials
    kept as HA1 so the plaintext need not sit in the config) must be the one for
    ``challenge.algorithm`` and ``challenge.realm`` (hex, either case).
    """
    if (password is None) == (ha1 is None):
        raise LocalProtocolError("answer_challenge needs exactly one of password and ha1")
    if password is not None:
        ha1 = compute_ha1(username, challenge.realm, password, challenge.algorithm)
    qop = None
    if challenge.qop:
        qop = Qop.AUTH if Qop.AUTH in challenge.qop else Qop.AUTH_INT
    unsigned = Credentials(
        username=username,
        realm=challenge.realm,
        nonce=challenge.nonce,
        uri=uri,
        response="",
        algorithm=challenge.algorithm,
        qop=qop,
        cnonce=None if qop is None else cnonce,
        nc=None if qop is None else nc,
        opaque=challenge.opaque,
    )
    response = _expected_response(unsigned, method=method, ha1=str(ha1).lower(), body=body)
    if response is None:
        raise LocalProtocolError("nc must be between 1 and 2**32 - 1")
    return dataclasses.replace(unsigned, response=response).to_header_value()


# issued_at (8-byte IEEE double, big-endian) + serial (6 bytes) + HMAC-SHA256 truncated to 16:
# 30 bytes, 40 base64url characters with no padding and no spare bits, so each nonce has
# exactly one spelling (a second spelling would get a fresh nc history: a replay).
_STAMP: Final = struct.Struct(">d6s")
_NONCE_RE: Final = re.compile(r"[A-Za-z0-9_-]{40}")
_MAC_BYTES: Final = 16


class NonceKeeper:
    """Self-validating nonces that expire, and nonce-count replay protection.

    Inputs: :meth:`issue` (a new nonce), :meth:`check` (is it ours and fresh?),
    :meth:`accept_nc` (record a nonce count after a successful :func:`verify`).
    Issuing keeps no table, only a serial so nonces issued at the same ``now`` differ.
    The nc table holds at most ``max_tracked`` nonces and drops expired ones.
    """

    def __init__(self, secret: bytes, lifetime: float = 300.0, max_tracked: int = 10000) -> None:
        if len(secret) < 16 or not lifetime > 0 or max_tracked < 1:
            raise ValueError("NonceKeeper needs a 16-byte secret, lifetime > 0, max_tracked >= 1")
        self._secret = secret
        self.lifetime = lifetime
        self.max_tracked = max_tracked
        self._serial = 0
        self._last_nc: dict[str, int] = {}
        self._by_age: list[tuple[float, int, str]] = []  # heap of (issued_at, serial, nonce)
        # Nonces at or below this (issued_at, serial) lost their nc history to eviction.
        self._forgotten: tuple[float, int] = (-math.inf, -1)

    def __len__(self) -> int:
        """How many nonces the nc table tracks."""
        return len(self._last_nc)

    def _mac(self, stamp: bytes) -> bytes:
        return hmac.new(self._secret, stamp, hashlib.sha256).digest()[:_MAC_BYTES]

    def issue(self, now: float) -> str:
        self._serial = (self._serial + 1) % 2**48
        stamp = _STAMP.pack(now, self._serial.to_bytes(6, "big"))
        return base64.urlsafe_b64encode(stamp + self._mac(stamp)).decode("ascii")

    def _decode(self, nonce: str) -> tuple[float, int] | None:
        if _NONCE_RE.fullmatch(nonce) is None:
            return None
        raw = base64.urlsafe_b64decode(nonce)
        stamp = raw[: _STAMP.size]
        if not hmac.compare_digest(raw[_STAMP.size :], self._mac(stamp)):
            return None
        issued_at, serial = _STAMP.unpack(stamp)
        return issued_at, int.from_bytes(serial, "big")

    def _is_fresh(self, issued_at: float, now: float) -> bool:
        # Stale from issued_at + lifetime on. A nonce from the future (the clock base moved,
        # the secret stayed) is ours but of unknown age: stale, so the phone retries silently.
        return 0 <= now - issued_at < self.lifetime

    def check(self, nonce: str, now: float) -> NonceState:
        decoded = self._decode(nonce)
        if decoded is None:
            return NonceState.INVALID
        return NonceState.VALID if self._is_fresh(decoded[0], now) else NonceState.STALE

    def accept_nc(self, nonce: str, nc: int, now: float) -> bool:
        """Record ``nc`` for ``nonce``; False when the nonce is not valid, or ``nc`` is not
        greater than the last accepted for it (a replay, RFC 7616 section 5.3), or the
        nonce's history was evicted. Credentials without qop have no nc: pass 1, which
        makes their nonce single-use."""
        decoded = self._decode(nonce)
        if decoded is None or not self._is_fresh(decoded[0], now) or nc < 1:
            return False
        while self._by_age and not self._is_fresh(self._by_age[0][0], now):
            del self._last_nc[heapq.heappop(self._by_age)[2]]
        last = self._last_nc.get(nonce)
        if last is None:
            if decoded <= self._forgotten:
                return False
            heapq.heappush(self._by_age, (*decoded, nonce))
        elif nc <= last:
            return False
        self._last_nc[nonce] = nc
        while len(self._last_nc) > self.max_tracked:
            issued_at, serial, oldest = heapq.heappop(self._by_age)
            del self._last_nc[oldest]
            self._forgotten = max(self._forgotten, (issued_at, serial))
        return True


# --- the client side: an account answering a server's challenges --------------------------

#: The stronger algorithm first, when a server offers both (RFC 8760 section 3).
CLIENT_PREFERENCE: Final = {Algorithm.SHA256: 0, Algorithm.MD5: 1}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DigestAccount:
    """Credentials a UAC answers challenges with (a carrier trunk's account): one of
    ``password`` and the HA1s; ``realm``, when set, is the only realm answered."""

    username: str
    password: str | None = None
    ha1_md5: str | None = None
    ha1_sha256: str | None = None
    realm: str | None = None

    def secret(self, algorithm: Algorithm) -> tuple[str | None, str | None] | None:
        """(password, ha1) that answer ``algorithm``, or None when nothing does."""
        if self.password is not None:
            return self.password, None
        ha1 = self.ha1_md5 if algorithm is Algorithm.MD5 else self.ha1_sha256
        return None if ha1 is None else (None, ha1)

    def answer(
        self, challenge: Challenge, *, method: str, uri: str, nc: int, cnonce: str
    ) -> str | None:
        """The credentials for ``challenge``, or None when they cannot be written (no
        secret for its algorithm, characters we cannot echo, nc out of range)."""
        password, ha1 = self.secret(challenge.algorithm) or (None, None)
        if password is None and ha1 is None:
            return None
        try:
            return answer_challenge(
                challenge,
                username=self.username,
                password=password,
                ha1=ha1,
                method=method,
                uri=uri,
                cnonce=cnonce,
                nc=nc,
            )
        except SipError:
            return None

    def choose(
        self, values: Sequence[str], *, method: str, uri: str
    ) -> tuple[Challenge | None, str]:
        """The challenge of ``values`` (header field values) to answer, the stronger
        algorithm first; or None and why none can be: not digest, another realm than
        ours, an algorithm we hold no secret for, characters we cannot echo."""
        usable: list[Challenge] = []
        problems: list[str] = []
        for value in values:
            try:
                challenge = parse_challenge(value)
            except SipError as exc:
                problems.append(f"unusable challenge: {exc}")
                continue
            if self.realm is not None and challenge.realm != self.realm:
                problems.append(f"challenge for realm {challenge.realm[:64]!r}, not {self.realm!r}")
            elif self.secret(challenge.algorithm) is None:
                problems.append(f"no secret for {challenge.algorithm.value}")
            elif self.answer(challenge, method=method, uri=uri, nc=1, cnonce="0") is None:
                problems.append("challenge with characters we cannot echo")
            else:
                usable.append(challenge)
        if not usable:
            return None, problems[0] if problems else "no digest challenge"
        return min(usable, key=lambda c: CLIENT_PREFERENCE[c.algorithm]), ""
