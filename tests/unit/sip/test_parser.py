"""Parser properties: round trips, arbitrary input, limits, TCP framing, responses."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from b2bua.sip.errors import ParseError
from b2bua.sip.message import Headers, Request, Response, make_response
from b2bua.sip.parser import MessageParseError, ParserLimits, StreamFramer, parse_message

INVITE = (
    b"INVITE sip:bob@biloxi.example SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@biloxi.example>\r\n"
    b"From: Alice <sip:alice@atlanta.example>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@pc33.atlanta.example>\r\n"
    b"X-Odd:   spaced   value   \r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n\r\nv=0\n"
)


def test_untouched_message_goes_out_byte_for_byte() -> None:
    message = parse_message(INVITE)
    assert message.to_bytes() == INVITE


def test_headers_are_case_insensitive_with_compact_forms() -> None:
    message = parse_message(INVITE.replace(b"Call-ID:", b"i:").replace(b"To:", b"tO :"))
    assert message.headers.get("CALL-ID") == "a84b4c76e66710@pc33.atlanta.example"
    assert message.headers.get("i") == message.call_id
    assert message.to.display_name == "Bob"
    assert "call-id" in message.headers


def test_a_changed_header_is_rewritten_and_the_others_kept() -> None:
    message = parse_message(INVITE)
    assert isinstance(message, Request)
    message.headers.replace_first_value(
        "via", str(message.top_via.with_params(received="192.0.2.1", rport="5062"))
    )
    wire = message.to_bytes()
    assert b"X-Odd:   spaced   value   \r\n" in wire
    assert b";rport=5062;received=192.0.2.1\r\n" in wire
    assert parse_message(wire).top_via.rport == 5062


def test_response_copies_headers_and_adds_the_to_tag() -> None:
    request = parse_message(INVITE)
    assert isinstance(request, Request)
    response = make_response(request, 486, to_tag="abc")
    assert response.to.tag == "abc"
    assert response.call_id == request.call_id
    assert response.cseq == request.cseq
    assert [str(v) for v in response.vias] == [str(v) for v in request.vias]
    trying = make_response(request, 100, to_tag="abc")
    assert trying.to.tag is None
    again = parse_message(response.to_bytes())
    assert isinstance(again, Response)
    assert (again.status, again.reason) == (486, "Busy Here")


def test_datagram_body_is_cut_to_content_length() -> None:
    message = parse_message(INVITE + b"trailing junk")
    assert message.body == b"v=0\n"


def test_stream_message_needs_content_length() -> None:
    without = INVITE.replace(b"Content-Length: 4\r\n", b"")
    with pytest.raises(MessageParseError) as info:
        parse_message(without, stream=True)
    assert info.value.status_hint == 400


@pytest.mark.parametrize(
    ("limits", "status"),
    [
        (ParserLimits(max_message_size=300), 513),
        (ParserLimits(max_headers=5), 513),
        (ParserLimits(max_line_length=40), 513),
    ],
)
def test_limits_are_refused_with_513(limits: ParserLimits, status: int) -> None:
    with pytest.raises(MessageParseError) as info:
        parse_message(INVITE, limits=limits)
    assert info.value.status_hint == status
    assert info.value.request is not None


def test_stream_framer_cuts_messages_and_keeps_partial_ones() -> None:
    framer = StreamFramer()
    two = INVITE + b"\r\n\r\n" + INVITE
    assert framer.feed(two[:100]) == []
    out = framer.feed(two[100:-10])
    assert out == [INVITE, b"\r\n\r\n"]
    assert framer.feed(two[-10:]) == [INVITE]
    assert framer.pending == 0


def test_stream_framer_refuses_a_bad_content_length() -> None:
    framer = StreamFramer()
    with pytest.raises(ParseError):
        framer.feed(INVITE.replace(b"Content-Length: 4", b"Content-Length: -4"))
    with pytest.raises(ParseError):
        StreamFramer().feed(INVITE.replace(b"Content-Length: 4\r\n", b""))


def test_stream_framer_bounds_an_endless_header_block() -> None:
    framer = StreamFramer(ParserLimits(max_message_size=2000))
    framer.feed(b"OPTIONS sip:x SIP/2.0\r\n")
    filler = b"X-Filler: " + b"a" * 50 + b"\r\n"
    for _ in range(30):
        assert framer.feed(filler) == []
    with pytest.raises(ParseError) as info:
        framer.feed(filler * 10)
    assert info.value.status_hint == 513


# -- Hypothesis: formatting a parsed message and parsing it again gives the same message

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_token = st.text(alphabet=_ALNUM + "-.!%*_+`'~", min_size=1, max_size=10)
_value = st.builds(
    lambda a, mid, b: a + mid + b,
    st.sampled_from(_ALNUM),
    st.text(alphabet=_ALNUM + " ,;:=<>@/()[]{}?!#$%&*+-_.~^|", max_size=30),
    st.sampled_from(_ALNUM),
)
_label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
_host = st.builds(lambda a, b: f"h{a}.{b}", _label, st.sampled_from(["example", "test"]))


@st.composite
def messages(draw: st.DrawFn) -> Request | Response:
    fields: list[tuple[str, str]] = [
        (
            "Via",
            f"SIP/2.0/{draw(st.sampled_from(['UDP', 'TCP']))} "
            f"{draw(_host)}:{draw(st.integers(1, 65535))};branch=z9hG4bK{draw(_token)}",
        )
        for _ in range(draw(st.integers(1, 3)))
    ]
    fields += [
        ("From", f"<sip:{draw(_token)}@{draw(_host)}>;tag={draw(_token)}"),
        ("To", f'"{draw(_value)}" <sip:{draw(_token)}@{draw(_host)}>'),
        ("Call-ID", f"{draw(_token)}@{draw(_host)}"),
    ]
    method = draw(st.sampled_from(["INVITE", "OPTIONS", "REGISTER", "BYE", "FOO"]))
    fields.append(("CSeq", f"{draw(st.integers(0, 2**31 - 1))} {method}"))
    fields += [
        (name, draw(_value)) for name in draw(st.lists(_token.map("X-".__add__), max_size=5))
    ]
    order = draw(st.permutations(fields))
    body = draw(st.binary(max_size=200))
    headers = Headers(order)
    if draw(st.booleans()):
        return Request(method, f"sip:{draw(_token)}@{draw(_host)}", headers, body)
    return Response(draw(st.integers(100, 699)), draw(_value), headers, body)


def _same(a: Request | Response, b: Request | Response) -> None:
    assert type(a) is type(b)
    assert a.start_line() == b.start_line()
    assert [(f.key, f.value) for f in a.headers if f.key != "content-length"] == [
        (f.key, f.value) for f in b.headers if f.key != "content-length"
    ]
    assert a.body == b.body


@settings(max_examples=300)
@given(messages())
def test_format_parse_round_trip(message: Request | Response) -> None:
    wire = message.to_bytes()
    parsed = parse_message(wire)
    _same(parsed, message)
    assert parse_message(parsed.to_bytes()).to_bytes() == parsed.to_bytes() == wire
    assert parse_message(wire, stream=True).to_bytes() == wire


@settings(max_examples=500)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_raise_only_parse_error(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse_message(data)


@settings(max_examples=300)
@given(st.integers(0, len(INVITE) - 1), st.binary(min_size=1, max_size=8))
def test_corrupted_invite_raises_only_parse_error(position: int, junk: bytes) -> None:
    data = INVITE[:position] + junk + INVITE[position + len(junk) :]
    try:
        message = parse_message(data)
    except ParseError:
        return
    message.to_bytes()


@settings(max_examples=200)
@given(st.lists(st.integers(1, 50), max_size=30))
def test_stream_framer_gives_the_same_messages_however_the_bytes_are_cut(
    cuts: list[int],
) -> None:
    stream = INVITE * 3
    framer = StreamFramer()
    out: list[bytes] = []
    pos = 0
    for size in cuts:
        out += framer.feed(stream[pos : pos + size])
        pos += size
    out += framer.feed(stream[pos:])
    assert out == [INVITE] * 3
