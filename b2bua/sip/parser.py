"""Bytes to messages: :func:`parse_message` for one datagram or one framed stream
message, and :class:`StreamFramer`, which cuts a TCP byte stream into messages by
Content-Length (RFC 3261 section 18.3).

Every failure raises :class:`~b2bua.sip.errors.ParseError`. When the bytes are a
request whose response can still be routed (a request line and a usable top Via),
the error carries that request in ``request`` and a ``status_hint`` to answer with;
otherwise ``status_hint`` is None and the message is dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from b2bua.sip import grammar
from b2bua.sip.errors import ParseError, SipError
from b2bua.sip.message import COMPACT_FORMS, SIP_VERSION, Headers, Request, Response


@dataclass(frozen=True, slots=True)
class ParserLimits:
    """Bounds on what we accept; each breach is refused with 513 Message Too Large."""

    max_message_size: int = 65535
    max_headers: int = 100
    max_line_length: int = 8192


DEFAULT_LIMITS: Final = ParserLimits()


class MessageParseError(ParseError):
    """A ParseError that may carry the request it was found in, for building the reply."""

    def __init__(
        self, reason: str, *, status_hint: int | None = 400, request: Request | None = None
    ) -> None:
        super().__init__(reason, status_hint=status_hint)
        self.request = request


_REQUIRED_IN_REQUEST: Final = (
    ("to", "To"),
    ("from", "From"),
    ("call-id", "Call-ID"),
    ("cseq", "CSeq"),
)
_REQUIRED_IN_RESPONSE: Final = ("via", "to", "from", "call-id", "cseq")


def parse_message(
    data: bytes, *, stream: bool = False, limits: ParserLimits = DEFAULT_LIMITS
) -> Request | Response:
    """Parse one message. ``stream=True`` means TCP framing has already cut the body to
    Content-Length, which must then be present (RFC 3261 section 18.3)."""
    try:
        return _parse(data, stream, limits)
    except _RequestLineError as exc:
        raise _request_line_error(exc.request, data, stream, limits) from None


def parse_datagram(data: bytes, limits: ParserLimits = DEFAULT_LIMITS) -> Request | Response:
    """Parse one UDP datagram (see :func:`parse_message`)."""
    try:
        return _parse(data, False, limits)
    except _RequestLineError as exc:
        raise _request_line_error(exc.request, data, False, limits) from None


def _parse(data: bytes, stream: bool, limits: ParserLimits) -> Request | Response:
    # RFC 3261 section 7.5: ignore CRLFs before the start line (keep-alives too).
    start = 0
    n = len(data)
    while start < n and data[start] in b"\r\n":
        start += 1
    if start == n:
        raise MessageParseError("empty message", status_hint=None)
    sep = data.find(b"\r\n\r\n", start)
    if sep >= 0:
        head, body, eol = data[start:sep], data[sep + 4 :], "\r\n"
    else:
        sep = data.find(b"\n\n", start)
        if sep >= 0:  # bare LF line ends: be lenient
            head, body, eol = data[start:sep], data[sep + 2 :], "\n"
        else:
            head, body = data[start:], b""
            eol = "\r\n" if b"\r\n" in head else "\n"
    problems: list[tuple[str, int]] = []
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = head.decode("utf-8", "surrogateescape")
        problems.append(("Non-UTF-8 Bytes In Header", 400))
    if "\x00" in text:
        problems.append(("NUL Byte In Header", 400))
    lines = text.split(eol)
    if eol == "\n":
        lines = [line.rstrip("\r") for line in lines]
    message = _start_line(lines[0])
    headers = _header_fields(text, lines, limits, problems)
    message.headers = headers
    if n - start > limits.max_message_size:
        problems.append(("Message Too Large", 513))
    if isinstance(message, Response):
        _check_response(message, body, stream, problems)
        return message
    return _check_request(message, body, stream, problems)


def _start_line(line: str) -> Request | Response:
    if line.startswith("SIP/"):
        m = grammar.STATUS_LINE_RE.match(line)
        if m is None or m.group(1) != SIP_VERSION:
            raise MessageParseError("bad status line", status_hint=None)
        return Response(int(m.group(2)), m.group(3) or "")
    m = grammar.REQUEST_LINE_RE.match(line)
    if m is None or m.group(2).startswith("<"):
        parts = line.split()
        if len(parts) >= 3 and grammar.METHOD_RE.match(parts[0]) and parts[-1].startswith("SIP/"):
            # A request line we can answer: still a request, but a malformed one.
            request = Request(parts[0], " ".join(parts[1:-1]), version=parts[-1])
            request.headers = Headers()
            raise _RequestLineError(request)
        raise MessageParseError("bad start line", status_hint=None)
    return Request(m.group(1), m.group(2), version=m.group(3))


class _RequestLineError(Exception):
    """Internal: the request line is malformed but the rest may let us answer 400."""

    def __init__(self, request: Request) -> None:
        super().__init__("malformed request line")
        self.request = request


# header-name HCOLON at the start of each line (on the lower-cased block): the fast path
# finds every name in one pass; any surprise (folding, a line without a colon, a name
# that is not a token) falls back to the line-by-line path that names the fault.
_NAMES_RE: Final = re.compile(rf"\n({grammar.TOKEN})[ \t]*:")


def _header_fields(
    text: str, lines: list[str], limits: ParserLimits, problems: list[tuple[str, int]]
) -> Headers:
    raws = lines[1:]
    if raws and not raws[-1]:
        raws.pop()
    names = _NAMES_RE.findall(text.lower())
    if len(names) == len(raws):
        compact = COMPACT_FORMS
        keys = [compact.get(k, k) if len(k) == 1 else k for k in names]
    else:
        keys, raws = _header_fields_slowly(raws, problems)
    if len(keys) > limits.max_headers:
        problems.append(("Too Many Headers", 513))
    if max(map(len, raws), default=0) > limits.max_line_length:
        problems.append(("Header Line Too Long", 513))
    return Headers.from_wire(keys, raws)


def _header_fields_slowly(
    lines: list[str], problems: list[tuple[str, int]]
) -> tuple[list[str], list[str]]:
    keys: list[str] = []
    raws: list[str] = []
    for line in lines:
        if not line:
            continue
        if line[0] in " \t":
            # RFC 3261 section 7.3.1: a line starting with whitespace continues the field.
            if not raws:
                problems.append(("Folded Line Without Header", 400))
            else:
                raws[-1] = f"{raws[-1]}\r\n{line}"
            continue
        colon = line.find(":")
        key = line[:colon].rstrip(" \t").lower()
        if colon <= 0:
            problems.append(("Header Line Without Colon", 400))
            continue
        if grammar.TOKEN_RE.fullmatch(key) is None:
            problems.append(("Bad Header Name", 400))
            continue
        keys.append(COMPACT_FORMS.get(key, key))
        raws.append(line)
    return keys, raws


def _content_length(headers: Headers, problems: list[tuple[str, int]]) -> int | None:
    keys = headers._keys
    if "content-length" not in keys:
        return None
    values = (
        headers.get_all("content-length")
        if keys.count("content-length") > 1
        else [headers.get("content-length") or ""]
    )
    first = values[0]
    if not first.isdigit():
        problems.append(("Bad Content-Length", 400))
        return None
    if len(values) > 1 and values.count(first) != len(values):
        problems.append(("Conflicting Content-Length", 400))
        return None
    return int(first)


def _body(headers: Headers, body: bytes, stream: bool, problems: list[tuple[str, int]]) -> bytes:
    length = _content_length(headers, problems)
    if length is None:
        if stream and not any(p[0].endswith("Content-Length") for p in problems):
            problems.append(("Missing Content-Length", 400))
        return body
    if length > len(body):
        problems.append(("Content-Length Exceeds Body", 400))
        return body
    # RFC 3261 section 18.3: bytes past Content-Length in a datagram are discarded.
    return body[:length]


def _check_response(
    message: Response, body: bytes, stream: bool, problems: list[tuple[str, int]]
) -> None:
    headers = message.headers
    for key in _REQUIRED_IN_RESPONSE:
        if headers.get(key) is None:
            raise MessageParseError(f"response without {key}", status_hint=None)
    message.body = _body(headers, body, stream, problems)
    try:
        message.top_via  # noqa: B018 - parse for validation
        message.cseq  # noqa: B018
        message.from_  # noqa: B018
        message.to  # noqa: B018
    except SipError as exc:
        raise MessageParseError(f"bad response: {exc}", status_hint=None) from exc
    if problems:
        raise MessageParseError(problems[0][0], status_hint=None)


def _check_request(
    message: Request, body: bytes, stream: bool, problems: list[tuple[str, int]]
) -> Request:
    headers = message.headers
    if "via" not in headers._keys:
        raise MessageParseError("request without Via", status_hint=None)
    try:
        message.top_via  # noqa: B018 - a response is routed by the top Via
    except SipError as exc:
        raise MessageParseError("Malformed Via Header", status_hint=None) from exc
    message.body = _body(headers, body, stream, problems)
    if message.version != SIP_VERSION:
        problems.insert(0, ("SIP Version Not Supported", 505))
    missing = _MANDATORY_KEYS.difference(headers._keys)
    for key, name in _REQUIRED_IN_REQUEST:
        if key in missing:
            problems.append((f"Missing {name} Header", 400))
    if not problems:
        try:
            message.vias  # noqa: B018 - every Via goes back in the response
        except SipError:
            problems.append(("Malformed Via Header", 400))
        try:
            message.cseq  # noqa: B018
        except SipError:
            problems.append(("Malformed CSeq", 400))
        try:
            message.from_  # noqa: B018
        except SipError:
            problems.append(("Malformed From", 400))
        try:
            message.to  # noqa: B018
        except SipError:
            problems.append(("Malformed To", 400))
    if problems:
        reason, status = min(problems, key=_precedence)
        raise MessageParseError(reason, status_hint=status, request=message)
    return message


_MANDATORY_KEYS: Final = frozenset(k for k, _ in _REQUIRED_IN_REQUEST)


def _precedence(problem: tuple[str, int]) -> int:
    # A version we do not speak is answered 505 before anything else; size limits next.
    return {505: 0, 513: 1}.get(problem[1], 2)


def _request_line_error(
    request: Request, data: bytes, stream: bool, limits: ParserLimits
) -> MessageParseError:
    # Parse the rest with a well-formed placeholder line, so the reply can copy headers.
    eol = data.find(b"\n")
    rest = data[eol + 1 :] if eol >= 0 else b""
    parsed: Request | Response | None
    try:
        parsed = _parse(b"OPTIONS sip:invalid SIP/2.0\r\n" + rest, stream, limits)
    except MessageParseError as inner:
        parsed = inner.request
    if not isinstance(parsed, Request):
        return MessageParseError("Malformed Request-Line", status_hint=None)
    request.headers = parsed.headers
    request.body = parsed.body
    status = (
        505
        if request.version != SIP_VERSION
        and request.version.startswith("SIP/")
        and " " not in request.uri
        and not request.uri.startswith("<")
        else 400
    )
    reason = "SIP Version Not Supported" if status == 505 else "Malformed Request-Line"
    if request.uri.startswith("<"):
        reason = "Request-URI In Angle Brackets"
    return MessageParseError(reason, status_hint=status, request=request)


class StreamFramer:
    """Cuts a TCP byte stream into SIP messages by Content-Length.

    ``feed(data)`` returns the complete messages (as bytes) found so far. Leading CRLFs
    between messages are skipped; a double CRLF keep-alive (RFC 5626 section 3.5.1) is
    reported as ``b"\\r\\n\\r\\n"`` so the transport can answer it with a CRLF pong. A
    missing or bad Content-Length, or a header block past the size limit, raises
    ParseError: the stream cannot be re-synchronised and the connection must close.
    """

    __slots__ = ("_buffer", "_limits")

    def __init__(self, limits: ParserLimits = DEFAULT_LIMITS) -> None:
        self._buffer = bytearray()
        self._limits = limits

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        out: list[bytes] = []
        buf = self._buffer
        while buf:
            skipped = 0
            while skipped < len(buf) and buf[skipped] in b"\r\n":
                skipped += 1
            if skipped:
                if bytes(buf[:4]) == b"\r\n\r\n":
                    out.append(b"\r\n\r\n")
                    del buf[:4]
                    continue
                if (
                    skipped == len(buf)
                    and skipped < 4
                    and bytes(buf) in (b"\r", b"\r\n", b"\r\n\r")
                ):
                    break  # maybe the start of a keep-alive
                del buf[:skipped]
                continue
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > self._limits.max_message_size:
                    raise ParseError("header block too large", status_hint=513)
                break
            length = _stream_content_length(bytes(buf[:end]))
            total = end + 4 + length
            if total > self._limits.max_message_size:
                raise ParseError("message too large", status_hint=513)
            if len(buf) < total:
                break
            out.append(bytes(buf[:total]))
            del buf[:total]
        return out


def _stream_content_length(head: bytes) -> int:
    value: bytes | None = None
    for line in head.split(b"\r\n")[1:]:
        name, colon, rest = line.partition(b":")
        if colon and name.strip().lower() in (b"content-length", b"l"):
            value = rest.strip()
            break
    if value is None:
        raise ParseError("Missing Content-Length on a stream", status_hint=400)
    if not value.isdigit():
        raise ParseError("Bad Content-Length", status_hint=400)
    return int(value)
