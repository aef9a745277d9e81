"""URIs: sip/sips (RFC 3261 section 19.1), tel (RFC 3966), and any other absolute URI.

``parse_uri`` returns a :class:`SipUri`, :class:`TelUri` or :class:`AbsoluteUri`;
``str(uri)`` formats it back. Components are kept as written (escaped), so that
formatting a parsed URI gives back the same text; :func:`uri_equivalent` applies
the comparison rules of RFC 3261 section 19.1.4.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, TypeAlias

from b2bua.sip import grammar
from b2bua.sip.errors import ParseError

Params: TypeAlias = tuple[tuple[str, str | None], ...]

# RFC 3261 section 19.1.4: these parameters must match when present in either URI.
_ALWAYS_COMPARED: Final = frozenset({"user", "ttl", "method", "maddr", "transport"})


def _parse_params(text: str, what: str) -> Params:
    """``;name[=value]`` pairs (the leading ``;`` already removed)."""
    params: list[tuple[str, str | None]] = []
    for item in text.split(";"):
        if not item:
            raise ParseError(f"empty parameter in {what}")
        name, eq, value = item.partition("=")
        if not name or grammar.PARAMCHARS_RE.match(name) is None:
            raise ParseError(f"bad parameter name in {what}")
        if eq:
            if grammar.PARAMCHARS_RE.match(value) is None:
                raise ParseError(f"bad parameter value in {what}")
            params.append((name, value))
        else:
            params.append((name, None))
    return tuple(params)


def _format_params(params: Params) -> str:
    return "".join(f";{n}" if v is None else f";{n}={v}" for n, v in params)


@dataclass(frozen=True, slots=True)
class SipUri:
    """A sip: or sips: URI. ``user``, ``password``, params and headers are kept escaped."""

    host: str
    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: Params = ()
    headers: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        parts = [self.scheme, ":"]
        if self.user is not None:
            parts.append(self.user)
            if self.password is not None:
                parts.append(":" + self.password)
            parts.append("@")
        parts.append(self.host)
        if self.port is not None:
            parts.append(f":{self.port}")
        parts.append(_format_params(self.params))
        if self.headers:
            parts.append("?" + "&".join(f"{n}={v}" for n, v in self.headers))
        return "".join(parts)

    @property
    def is_secure(self) -> bool:
        return self.scheme == "sips"

    def param(self, name: str) -> str | None:
        """The value of parameter ``name`` (case-insensitive); "" for a flag, None if absent."""
        lname = name.lower()
        for n, v in self.params:
            if n.lower() == lname:
                return "" if v is None else v
        return None

    def has_param(self, name: str) -> bool:
        lname = name.lower()
        return any(n.lower() == lname for n, _ in self.params)

    def with_params(self, **updates: str | None) -> SipUri:
        """A copy with parameters set (value None means a flag) or replaced."""
        kept = [(n, v) for n, v in self.params if n.lower() not in updates]
        kept.extend(updates.items())
        return SipUri(
            self.host, self.scheme, self.user, self.password, self.port, tuple(kept), self.headers
        )

    @property
    def host_port(self) -> tuple[str, int | None]:
        """The host without IPv6 brackets, and the port if one was written."""
        host = self.host[1:-1] if self.host.startswith("[") else self.host
        return host, self.port


@dataclass(frozen=True, slots=True)
class TelUri:
    """A tel: URI (RFC 3966): a global (+...) or local number with parameters."""

    number: str
    params: Params = ()

    def __str__(self) -> str:
        return f"tel:{self.number}{_format_params(self.params)}"

    @property
    def scheme(self) -> str:
        return "tel"

    @property
    def is_global(self) -> bool:
        return self.number.startswith("+")


@dataclass(frozen=True, slots=True)
class AbsoluteUri:
    """Any other absolute URI (RFC 3986), kept as text: ``scheme:rest``."""

    scheme: str
    rest: str = field(default="")

    def __str__(self) -> str:
        return f"{self.scheme}:{self.rest}"


Uri: TypeAlias = SipUri | TelUri | AbsoluteUri


def parse_uri(text: str) -> Uri:
    """Parse any absolute URI; sip, sips and tel are checked against their grammar."""
    scheme, colon, rest = text.partition(":")
    if not colon or grammar.SCHEME_RE.match(scheme) is None:
        raise ParseError("URI without a scheme")
    lscheme = scheme.lower()
    if lscheme in ("sip", "sips"):
        return _parse_sip(lscheme, rest)
    if lscheme == "tel":
        return _parse_tel(rest)
    if not rest or any(c in rest for c in ' \t\r\n<>"') or "\x00" in rest:
        raise ParseError("bad absolute URI")
    return AbsoluteUri(lscheme, rest)


def parse_sip_uri(text: str) -> SipUri:
    """Parse a URI that must be sip: or sips:."""
    uri = parse_uri(text)
    if not isinstance(uri, SipUri):
        raise ParseError("not a SIP URI", status_hint=416)
    return uri


def _parse_sip(scheme: str, rest: str) -> SipUri:
    user: str | None = None
    password: str | None = None
    at = rest.find("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user, pcolon, pw = userinfo.partition(":")
        if pcolon:
            if grammar.PASSWORD_RE.match(pw) is None:
                raise ParseError("bad password in SIP URI")
            password = pw
        if not user or grammar.USER_RE.match(user) is None:
            raise ParseError("bad user part in SIP URI")
    headers: tuple[tuple[str, str], ...] = ()
    rest, qmark, header_text = rest.partition("?")
    if qmark:
        hs: list[tuple[str, str]] = []
        for item in header_text.split("&"):
            name, eq, value = item.partition("=")
            if (
                not name
                or not eq
                or grammar.HEADERCHARS_RE.match(name) is None
                or grammar.HEADERCHARS_RE.match(value) is None
            ):
                raise ParseError("bad header in SIP URI")
            hs.append((name, value))
        headers = tuple(hs)
    hostport, semi, param_text = rest.partition(";")
    params = _parse_params(param_text, "SIP URI") if semi else ()
    port: int | None = None
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise ParseError("unclosed IPv6 reference in SIP URI")
        host, port_text = hostport[: end + 1], hostport[end + 1 :]
        if port_text:
            if not port_text.startswith(":"):
                raise ParseError("bad host in SIP URI")
            port = _port(port_text[1:])
    else:
        host, pcolon, port_text = hostport.partition(":")
        if pcolon:
            port = _port(port_text)
    if grammar.HOST_RE.match(host) is None:
        raise ParseError("bad host in SIP URI")
    return SipUri(host, scheme, user, password, port, params, headers)


def _port(text: str) -> int:
    if not text.isdigit() or len(text) > 5 or int(text) > 65535:
        raise ParseError("bad port in SIP URI")
    return int(text)


def _parse_tel(rest: str) -> TelUri:
    number, semi, param_text = rest.partition(";")
    # RFC 3966 section 3: global-number-digits = "+" *phonedigit DIGIT *phonedigit;
    # local-number-digits = *phonedigit-hex (HEXDIG / "*" / "#") *phonedigit-hex
    is_global = number.startswith("+")
    allowed = "0123456789-.()" if is_global else "0123456789abcdefABCDEF*#-.()"
    body = number[1:] if is_global else number
    if not body or any(c not in allowed for c in body):
        raise ParseError("bad number in tel URI")
    params = _parse_params(param_text, "tel URI") if semi else ()
    return TelUri(number, params)


def _visual_free(number: str) -> str:
    # RFC 3966 section 4: visual separators are ignored when comparing.
    return "".join(c for c in number if c not in "-.()").lower()


def uri_equivalent(a: Uri, b: Uri) -> bool:
    """Compare two URIs by RFC 3261 section 19.1.4 (sip/sips) and RFC 3966 section 4 (tel)."""
    if isinstance(a, SipUri) and isinstance(b, SipUri):
        return _sip_equivalent(a, b)
    if isinstance(a, TelUri) and isinstance(b, TelUri):
        return _visual_free(a.number) == _visual_free(b.number) and _param_map(
            a.params
        ) == _param_map(b.params)
    if isinstance(a, AbsoluteUri) and isinstance(b, AbsoluteUri):
        return a.scheme == b.scheme and grammar.unescape(a.rest) == grammar.unescape(b.rest)
    return False


def _param_map(params: Params) -> dict[str, str | None]:
    return {
        grammar.unescape(n).lower(): None if v is None else grammar.unescape(v).lower()
        for n, v in params
    }


def _sip_equivalent(a: SipUri, b: SipUri) -> bool:
    # A SIP and SIPS URI are never equivalent.
    if a.scheme != b.scheme:
        return False
    # Comparison of the userinfo is case-sensitive, after unescaping.
    if (a.user is None) != (b.user is None):
        return False
    if (
        a.user is not None
        and b.user is not None
        and grammar.unescape(a.user) != grammar.unescape(b.user)
    ):
        return False
    pwa = None if a.password is None else grammar.unescape(a.password)
    pwb = None if b.password is None else grammar.unescape(b.password)
    if pwa != pwb:
        return False
    # Comparison of the host is case-insensitive; an omitted port differs from an explicit one.
    if a.host.lower() != b.host.lower() or a.port != b.port:
        return False
    pa, pb = _param_map(a.params), _param_map(b.params)
    for name in _ALWAYS_COMPARED:
        if pa.get(name, "<absent>") != pb.get(name, "<absent>"):
            return False
    for name in pa.keys() & pb.keys():
        if pa[name] != pb[name]:
            return False
    # URI header components are never ignored; compared case-insensitively by name,
    # values case-sensitively after unescaping.
    ha = {grammar.unescape(n).lower(): grammar.unescape(v) for n, v in a.headers}
    hb = {grammar.unescape(n).lower(): grammar.unescape(v) for n, v in b.headers}
    return ha == hb
