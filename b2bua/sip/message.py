"""SIP messages: :class:`Request`, :class:`Response` and their ordered, case-insensitive
:class:`Headers` (RFC 3261 section 7).

Header fields keep the text they arrived with (``raw``), so a header the switch does not
touch goes out byte for byte; typed views (Via, CSeq, From, To, Contact) are parsed on
first access and cached until the headers change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Final, TypeVar

from b2bua.sip import grammar
from b2bua.sip.errors import LocalProtocolError, ParseError, SipError
from b2bua.sip.headers import CSeq, NameAddr, Via, parse_cseq, parse_name_addr, parse_via
from b2bua.sip.status import reason_phrase
from b2bua.sip.uri import Uri, parse_uri

SIP_VERSION: Final = "SIP/2.0"

# RFC 3261 section 7.3.3 and later RFCs: compact form -> long form (lower case).
COMPACT_FORMS: Final = {
    "i": "call-id",
    "m": "contact",
    "e": "content-encoding",
    "l": "content-length",
    "c": "content-type",
    "f": "from",
    "s": "subject",
    "k": "supported",
    "t": "to",
    "v": "via",
    "o": "event",  # RFC 6665
    "r": "refer-to",  # RFC 3515
    "b": "referred-by",  # RFC 3892
    "u": "allow-events",  # RFC 6665
    "x": "session-expires",  # RFC 4028
    "y": "identity",  # RFC 8224
    "a": "accept-contact",  # RFC 3841
    "j": "reject-contact",  # RFC 3841
    "d": "request-disposition",  # RFC 3841
}

# Spellings used when we write a header ourselves.
_CANONICAL: Final = {
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "www-authenticate": "WWW-Authenticate",
    "mime-version": "MIME-Version",
    "rack": "RAck",
    "rseq": "RSeq",
    "sip-etag": "SIP-ETag",
    "sip-if-match": "SIP-If-Match",
}

#: Headers whose grammar is a comma-separated list (RFC 3261 section 7.3.1).
LIST_HEADERS: Final = frozenset(
    {
        "via",
        "contact",
        "route",
        "record-route",
        "allow",
        "supported",
        "require",
        "proxy-require",
        "unsupported",
        "accept",
        "accept-encoding",
        "accept-language",
        "content-encoding",
        "allow-events",
        "in-reply-to",
        "path",
        "service-route",
    }
)


def header_key(name: str) -> str:
    """The lookup key of a header name: lower case, compact forms expanded."""
    key = name.strip().lower()
    return COMPACT_FORMS.get(key, key)


def canonical_name(key: str) -> str:
    """How we spell a header we write: ``Call-ID``, ``CSeq``, ``Max-Forwards``."""
    return _CANONICAL.get(key) or "-".join(p.capitalize() for p in key.split("-"))


class HeaderField:
    """A view of one header field: its name as written, its lookup key, its unfolded
    value and the text it has on the wire (folding included)."""

    __slots__ = ("key", "name", "raw", "value")

    def __init__(self, key: str, raw: str) -> None:
        self.key = key
        self.raw = raw
        name, _, value = raw.partition(":")
        self.name = name.rstrip(" \t")
        self.value = _unfold(value)

    def __repr__(self) -> str:
        return f"HeaderField({self.name!r}, {self.value!r})"


def _unfold(value: str) -> str:
    # RFC 3261 section 7.3.1: a fold (CRLF followed by whitespace) is one SP.
    if "\n" in value:
        return " ".join(part.strip() for part in value.splitlines() if part.strip())
    return value.strip()


def _value(raw: str) -> str:
    return _unfold(raw[raw.find(":") + 1 :])


def _field_text(name: str, value: str) -> tuple[str, str]:
    key = header_key(name)
    spelled = canonical_name(key) if name == name.lower() else name
    return key, f"{spelled}: {value}"


T = TypeVar("T")
_MISSING: Final = object()


class Headers:
    """Ordered, case-insensitive header fields; compact forms are the same header.

    Each field is kept as three parallel entries: its lookup key, its text on the wire
    (so a field the switch does not touch goes out byte for byte) and its unfolded value.
    Typed views are cached in ``_cache``; every mutation clears it.
    """

    __slots__ = ("_cache", "_keys", "_raws", "_values")

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        """``fields`` are (name, value) pairs; names in lower case get our spelling."""
        self._keys: list[str] = []
        self._raws: list[str] = []
        self._values: list[str | None] = []
        self._cache: dict[str, object] = {}
        for name, value in fields:
            self.add(name, value)

    @classmethod
    def from_wire(cls, keys: list[str], raws: list[str]) -> Headers:
        """Fields as the parser found them: lookup keys and original lines. Values are
        derived from the lines when first read."""
        headers = cls()
        headers._keys = keys
        headers._raws = raws
        headers._values = [None] * len(keys)
        return headers

    def __iter__(self) -> Iterator[HeaderField]:
        return (HeaderField(k, r) for k, r in zip(self._keys, self._raws, strict=True))

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and header_key(name) in self._keys

    def copy(self) -> Headers:
        headers = Headers.from_wire(list(self._keys), list(self._raws))
        headers._values = list(self._values)
        return headers

    def keys(self) -> list[str]:
        """The lookup key of every field, in order (a copy)."""
        return list(self._keys)

    def fields(self, name: str) -> list[HeaderField]:
        key = header_key(name)
        return [HeaderField(k, r) for k, r in zip(self._keys, self._raws, strict=True) if k == key]

    def get(self, name: str) -> str | None:
        """The value of the first field called ``name`` (whole, not split), or None."""
        key = COMPACT_FORMS.get(name, name) if name.islower() else header_key(name)
        try:
            return self._value_at(self._keys.index(key))
        except ValueError:
            return None

    def _value_at(self, index: int) -> str:
        value = self._values[index]
        if value is None:
            value = self._values[index] = _value(self._raws[index])
        return value

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``, in order; list headers are split at their commas."""
        key = COMPACT_FORMS.get(name, name) if name.islower() else header_key(name)
        keys = self._keys
        if keys.count(key) == 1:
            values = [self._value_at(keys.index(key))]
        else:
            values = []
            index = -1
            try:
                while True:
                    index = keys.index(key, index + 1)
                    values.append(self._value_at(index))
            except ValueError:
                pass
        if key in LIST_HEADERS:
            out: list[str] = []
            for v in values:
                if "," in v:
                    out.extend(grammar.split_list(v))
                elif v:
                    out.append(v)
            return out
        return values

    def cached(self, key: str, compute: Callable[[], T]) -> T:
        """A typed view, computed once until the headers change."""
        value = self._cache.get(key, _MISSING)
        if value is _MISSING:
            value = self._cache[key] = compute()
        return value  # type: ignore[return-value]

    # -- mutation: every method clears the typed-view cache

    def _insert(self, index: int, key: str, raw: str) -> None:
        self._keys.insert(index, key)
        self._raws.insert(index, raw)
        self._values.insert(index, None)

    def add(self, name: str, value: str) -> None:
        """Append a field (after the others of any name)."""
        self._cache.clear()
        key, raw = _field_text(name, value)
        self._insert(len(self._keys), key, raw)

    def add_wire(self, key: str, raw: str) -> None:
        """Append a field copied from another message, byte for byte."""
        self._cache.clear()
        self._insert(len(self._keys), key, raw)

    def set(self, name: str, value: str) -> None:
        """Replace every field called ``name`` by one, where the first one stood."""
        key, raw = _field_text(name, value)
        index = self._keys.index(key) if key in self._keys else len(self._keys)
        self.remove(name)
        self._insert(index, key, raw)

    def remove(self, name: str) -> None:
        self._cache.clear()
        key = header_key(name)
        kept = [i for i, k in enumerate(self._keys) if k != key]
        self._keys = [self._keys[i] for i in kept]
        self._raws = [self._raws[i] for i in kept]
        self._values = [self._values[i] for i in kept]

    def _split_first(self, name: str) -> tuple[int, str, list[str]] | None:
        key = header_key(name)
        if key not in self._keys:
            return None
        i = self._keys.index(key)
        field = HeaderField(key, self._raws[i])
        del self._keys[i], self._raws[i], self._values[i]
        return i, field.name, grammar.split_list(field.value)

    def replace_first_value(self, name: str, value: str) -> None:
        """Replace the first value of a list header (the top Via), keeping the others."""
        self._cache.clear()
        found = self._split_first(name)
        if found is None:
            raise LocalProtocolError(f"no {name} header to replace")
        i, spelled, values = found
        key = header_key(name)
        if len(values) > 1:
            self._insert(i, key, f"{spelled}: {', '.join(values[1:])}")
        self._insert(i, key, f"{spelled}: {value}")


class Message:
    """What requests and responses share: headers, body and the typed views."""

    __slots__ = ("body", "headers")

    def __init__(self, headers: Headers, body: bytes = b"") -> None:
        self.headers = headers
        self.body = body

    def start_line(self) -> str:
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """The message for the wire. Content-Length is always written from the body."""
        lines = [self.start_line()]
        length_written = False
        for key, raw in zip(self.headers._keys, self.headers._raws, strict=True):
            if key == "content-length":
                if not length_written:
                    lines.append(f"Content-Length: {len(self.body)}")
                    length_written = True
                continue
            lines.append(raw)
        if not length_written:
            lines.append(f"Content-Length: {len(self.body)}")
        lines.append("\r\n")
        return "\r\n".join(lines).encode("utf-8", "surrogateescape") + self.body

    # -- typed views (parsed on first access, cached until the headers change)

    @property
    def vias(self) -> list[Via]:
        cache = self.headers._cache
        vias: list[Via] | None = cache.get("via")  # type: ignore[assignment]
        if vias is None:
            values = self.headers.get_all("via")
            vias = cache["via"] = [self.top_via, *map(parse_via, values[1:])] if values else []
        return vias

    @property
    def top_via(self) -> Via:
        cache = self.headers._cache
        via: Via | None = cache.get("top-via")  # type: ignore[assignment]
        if via is None:
            via = cache["top-via"] = parse_via(self._first_list_value("via"))
        return via

    @property
    def call_id(self) -> str:
        return self._required("call-id")

    @property
    def cseq(self) -> CSeq:
        cache = self.headers._cache
        cseq: CSeq | None = cache.get("cseq")  # type: ignore[assignment]
        if cseq is None:
            cseq = cache["cseq"] = parse_cseq(self._required("cseq"))
        return cseq

    @property
    def from_(self) -> NameAddr:
        cache = self.headers._cache
        value: NameAddr | None = cache.get("from")  # type: ignore[assignment]
        if value is None:
            value = cache["from"] = parse_name_addr(self._required("from"), "From header")
        return value

    @property
    def to(self) -> NameAddr:
        cache = self.headers._cache
        value: NameAddr | None = cache.get("to")  # type: ignore[assignment]
        if value is None:
            value = cache["to"] = parse_name_addr(self._required("to"), "To header")
        return value

    @property
    def contacts(self) -> list[NameAddr]:
        return self.headers.cached(
            "contact",
            lambda: [parse_name_addr(v, "Contact header") for v in self.headers.get_all("contact")],
        )

    @property
    def max_forwards(self) -> int | None:
        value = self.headers.get("max-forwards")
        return int(value) if value is not None and value.isdigit() else None

    @property
    def content_type(self) -> str | None:
        value = self.headers.get("content-type")
        return None if value is None else value.split(";", 1)[0].strip().lower()

    def _required(self, key: str) -> str:
        headers = self.headers
        if key not in headers._keys:
            raise ParseError(f"Missing {canonical_name(key)} Header")
        index = headers._keys.index(key)
        value = headers._values[index]
        return headers._value_at(index) if value is None else value

    def _first_list_value(self, key: str) -> str:
        value = self._required(key)
        if "," in value:
            return grammar.split_list(value)[0]
        return value


class Request(Message):
    """A SIP request. ``uri`` is the Request-URI as written; ``request_uri`` parses it."""

    __slots__ = ("method", "uri", "version")

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Headers | None = None,
        body: bytes = b"",
        version: str = SIP_VERSION,
    ) -> None:
        super().__init__(headers if headers is not None else Headers(), body)
        self.method = method
        self.uri = uri
        self.version = version

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri}>"

    def start_line(self) -> str:
        return f"{self.method} {self.uri} {self.version}"

    @property
    def request_uri(self) -> Uri:
        return self.headers.cached("request-uri", lambda: parse_uri(self.uri))


class Response(Message):
    """A SIP response."""

    __slots__ = ("reason", "status", "version")

    def __init__(
        self,
        status: int,
        reason: str | None = None,
        headers: Headers | None = None,
        body: bytes = b"",
        version: str = SIP_VERSION,
    ) -> None:
        super().__init__(headers if headers is not None else Headers(), body)
        self.status = status
        self.reason = reason_phrase(status) if reason is None else reason
        self.version = version

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"

    def start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"


def make_response(
    request: Request, status: int, reason: str | None = None, *, to_tag: str | None = None
) -> Response:
    """A response to ``request`` built as RFC 3261 section 8.2.6.2 says.

    Via (all of them, in order), From, Call-ID and CSeq are copied byte for byte; To is
    copied and gets ``to_tag`` when it has no tag yet (never on 100 Trying). A 100 Trying
    copies Timestamp (section 8.2.6.1).
    """
    headers = Headers()
    for key, raw in zip(request.headers._keys, request.headers._raws, strict=True):
        if key in _COPIED_TO_RESPONSE or (status == 100 and key == "timestamp"):
            tagged = key == "to" and to_tag is not None and status > 100
            headers.add_wire(
                key, f"{raw};tag={to_tag}" if tagged and not _has_tag(request) else raw
            )
    return Response(status, reason, headers)


def _has_tag(request: Request) -> bool:
    try:
        return request.to.tag is not None
    except SipError:
        return True


_COPIED_TO_RESPONSE: Final = frozenset({"via", "from", "to", "call-id", "cseq"})
