"""Generate the SIP parser test corpus: ``valid/*.sip``, ``invalid/*.sip`` and ``cases.toml``.

Run from anywhere with ``python3 tests/data/sip/make_corpus.py``. The script rewrites every
``.sip`` file and the manifest deterministically (running it twice gives identical bytes) and
removes ``.sip`` files that no case names any more.

Every message below is written by us. The properties follow RFC 4475 (SIP torture tests) and
RFC 3261 where they apply, but the hosts, tags, branches and values are our own. Messages are
written with explicit "\\r\\n" so the bytes on the wire are unambiguous; a few large messages
are built by small functions, still line by line.

Manifest contract (read by the parser tests), one table per case, keyed by the case name:

* ``file``: path relative to this directory.
* ``property``: what the case exercises, citing RFC 4475 when there is a matching section.
* ``transport``: "udp" or "tcp".
* ``parse``: "ok" (file under ``valid/``) or "error" (file under ``invalid/``).
* ``status_hint``: for parse errors that can be answered; absent when the message is dropped.
* ``reply``: for requests that parse, the status the switch answers with, when a rule applies.
* ``[<name>.expect]``: facts the parsed message must show (keys listed in ``EXPECT_KEYS``).

Content-Length values are checked by this script: unless a case sets ``check_length=False``
(it is about a wrong, missing or truncating Content-Length), generation fails when the
declared length differs from the body.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Keys allowed in an ``expect`` table, in the order they are written.
EXPECT_KEYS = (
    "method",
    "request_uri",
    "status",
    "reason",
    "call_id",
    "via_count",
    "top_via_branch",
    "top_via_host",
    "top_via_port",
    "top_via_transport",
    "cseq_number",
    "cseq_method",
    "from_tag",
    "to_tag",
    "from_uri",
    "to_uri",
    "from_display_name",
    "contact_count",
    "max_forwards",
    "body_length",
    "headers",
)

Expect = dict[str, object]


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # "valid" (parse = "ok") or "invalid" (parse = "error")
    prop: str
    raw: bytes
    transport: str = "udp"
    status_hint: int | None = None
    reply: int | None = None
    expect: Expect = field(default_factory=dict)
    check_length: bool = True


def _b(raw: str | bytes) -> bytes:
    return raw.encode("utf-8") if isinstance(raw, str) else raw


def ok(
    name: str,
    prop: str,
    raw: str | bytes,
    *,
    transport: str = "udp",
    reply: int | None = None,
    expect: Expect | None = None,
    check_length: bool = True,
) -> Case:
    """A message the parser must accept."""
    return Case(
        name=name,
        kind="valid",
        prop=prop,
        raw=_b(raw),
        transport=transport,
        reply=reply,
        expect=expect or {},
        check_length=check_length,
    )


def error(
    name: str,
    prop: str,
    raw: str | bytes,
    *,
    status: int | None,
    transport: str = "udp",
    check_length: bool = True,
) -> Case:
    """A message the parser must reject; ``status`` None means it is dropped silently."""
    return Case(
        name=name,
        kind="invalid",
        prop=prop,
        raw=_b(raw),
        transport=transport,
        status_hint=status,
        check_length=check_length,
    )


# ---------------------------------------------------------------------------------------------
# Bodies shared by several messages. Their lengths are written literally in each message's
# Content-Length; the check at the bottom of this file fails if they ever drift.
# ---------------------------------------------------------------------------------------------

# 190 bytes
SDP_OFFER = (
    "v=0\r\n"
    "o=ines 2890 2890 IN IP4 198.51.100.23\r\n"
    "s=-\r\n"
    "c=IN IP4 198.51.100.23\r\n"
    "t=0 0\r\n"
    "m=audio 41000 RTP/AVP 0 8 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
)

# 130 bytes
SDP_ANSWER = (
    "v=0\r\n"
    "o=b2bua 7341 7341 IN IP4 203.0.113.10\r\n"
    "s=b2bua\r\n"
    "c=IN IP4 203.0.113.10\r\n"
    "t=0 0\r\n"
    "m=audio 30000 RTP/AVP 0\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
)


# ---------------------------------------------------------------------------------------------
# Messages built by code because they are large. Still written line by line with CRLF.
# ---------------------------------------------------------------------------------------------


LONG_VALUE = "long-value-" + "abcdefghij" * 400
LONG_RRS = [f"<sip:rr{i:02d}.b2bua.test;lr>" for i in range(1, 21)]
LONG_CALL_ID = "long." + "abcdefghijklmnop" * 40 + "@198.51.100.60"
LONG_TAG = "t" + "0123456789abcdef" * 20


def _long_values() -> bytes:
    """A long but legal INVITE: 30 Vias, 20 Record-Routes, long URI, tag, Call-ID and value."""
    user = "very-long-user-" + "x" * 240
    display = "Long Name " * 30
    vias = [
        f"SIP/2.0/UDP hop{i:02d}.b2bua.test:5060;branch=z9hG4bK-long-{i:02d}" for i in range(1, 31)
    ]
    lines = [
        f"INVITE sip:{user}@b2bua.test SIP/2.0",
        "Via: " + ", ".join(vias[:10]),
        *(f"Via: {v}" for v in vias[10:]),
        f'To: "{display}" <sip:{user}@b2bua.test>',
        f"From: <sip:caller@b2bua.test>;tag={LONG_TAG}",
        f"Call-ID: {LONG_CALL_ID}",
        "CSeq: 100 INVITE",
        "Max-Forwards: 70",
        *(f"Record-Route: {r}" for r in LONG_RRS[:10]),
        "Record-Route: " + ", ".join(LONG_RRS[10:]),
        "X-Long-Value: " + LONG_VALUE,
        "Contact: <sip:caller@198.51.100.60>",
        "Content-Type: application/sdp",
        f"Content-Length: {len(SDP_OFFER)}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n" + SDP_OFFER).encode()


def _options_with_headers(count: int, branch: str) -> bytes:
    """An OPTIONS with exactly ``count`` header fields; five fillers are folded over 2 lines."""
    fixed = [
        f"Via: SIP/2.0/UDP 198.51.100.150;branch={branch}",
        "To: <sip:sw.b2bua.test>",
        f"From: <sip:counter@b2bua.test>;tag={branch[-4:]}",
        f"Call-ID: {branch}@198.51.100.150",
        "CSeq: 1 OPTIONS",
        "Max-Forwards: 70",
    ]
    fillers = []
    for i in range(1, count - len(fixed)):  # the last header is Content-Length
        if i % 18 == 0:
            fillers.append(f"X-Filler-{i:03d}: folded value {i}\r\n continues here")
        else:
            fillers.append(f"X-Filler-{i:03d}: value {i}")
    lines = ["OPTIONS sip:sw.b2bua.test SIP/2.0", *fixed, *fillers, "Content-Length: 0"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _huge_header_block() -> bytes:
    """Ten header lines of 7000 bytes each: every line is legal, the message is > 65535."""
    lines = [
        "MESSAGE sip:big@b2bua.test SIP/2.0",
        "Via: SIP/2.0/TCP 198.51.100.160;branch=z9hG4bK-bigblock",
        "To: <sip:big@b2bua.test>",
        "From: <sip:sender@b2bua.test>;tag=bb-1",
        "Call-ID: bigblock.1@198.51.100.160",
        "CSeq: 1 MESSAGE",
        "Max-Forwards: 70",
        *(f"X-Bulk-{i:02d}: " + "z" * 7000 for i in range(10)),
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _huge_body() -> bytes:
    """A MESSAGE whose body alone is 66000 bytes (with an exact Content-Length)."""
    body = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n" * 1000 + "e" * 2000
    head = (
        "MESSAGE sip:big@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/TCP 198.51.100.161;branch=z9hG4bK-bigbody\r\n"
        "To: <sip:big@b2bua.test>\r\n"
        "From: <sip:sender@b2bua.test>;tag=bb-2\r\n"
        "Call-ID: bigbody.1@198.51.100.161\r\n"
        "CSeq: 1 MESSAGE\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    return (head + body).encode()


def _long_header_line(folded: bool) -> bytes:
    """A MESSAGE with one header line longer than 8192 bytes (optionally built by folding)."""
    if folded:
        value = "\r\n ".join(["b" * 500] * 20)  # 20 physical lines, > 10000 bytes unfolded
        name, branch = "X-Huge-Folded", "z9hG4bK-hugefold"
    else:
        value = "a" * 9000
        name, branch = "X-Huge", "z9hG4bK-huge"
    lines = [
        "MESSAGE sip:big@b2bua.test SIP/2.0",
        f"Via: SIP/2.0/UDP 198.51.100.162;branch={branch}",
        "To: <sip:big@b2bua.test>",
        "From: <sip:sender@b2bua.test>;tag=hh-1",
        f"Call-ID: {branch}@198.51.100.162",
        "CSeq: 1 MESSAGE",
        "Max-Forwards: 70",
        f"{name}: {value}",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


MULTIPART_BODY = (
    b"--b2bua.boundary.42\r\n"
    b"Content-Type: application/sdp\r\n"
    b"\r\n" + SDP_OFFER.encode() + b"--b2bua.boundary.42\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Disposition: signal;handling=optional\r\n"
    b"\r\n"
    b"\x01\x00\x49\x00\x00\x03\x02\x00\x07\x04\x10\x00\x33\x63\x21\x43\x00\x00\xff\xfe"
    b"\r\n\x80\x8a\r\n"
    b"--b2bua.boundary.42--\r\n"
)

# ---------------------------------------------------------------------------------------------
# Valid messages: the parser accepts them.
# ---------------------------------------------------------------------------------------------

VALID: list[Case] = [
    ok(
        "tortuous-invite",
        "RFC 4475 3.1.1.1: an INVITE with odd whitespace and folding in every header, "
        "mixed-case and compact header names, whitespace before colons, leading zeros, "
        "unusual URI parameters, unknown headers and quoted display names with escapes.",
        "INVITE sip:ines.moreira@lisbon.b2bua.test;transport=udp;x-flavour;x-n=1 SIP/2.0\r\n"
        "tO :\r\n"
        " <sip:ines.moreira@lisbon.b2bua.test>  ;  tag   =  tt-51ac\r\n"
        'fROM\t:   "Omar \\"the Navigator\\" \\Farid"  <sip:omar@cairo.b2bua.test>\r\n'
        "   ;\r\n"
        "\t tag = ff-9d2e\r\n"
        "mAX-fORWARDS:   0069\r\n"
        "I: tort.0042@198.51.100.23\r\n"
        "cONTENT-lENGTH   :  190\r\n"
        "CSEQ:  000031\r\n"
        " \t INVITE\r\n"
        "Via    :   SIP   /   2.0\r\n"
        "  /   UDP\r\n"
        "     198.51.100.23  :  5062 ;branch=z9hG4bK-tort-a1\r\n"
        "s :\r\n"
        " Lunch, at noon\r\n"
        "X-Folded-Thing:   first part\r\n"
        " second part\r\n"
        "X-Odd-Punctuation: ;;,,;,;\r\n"
        "c: application/sdp\r\n"
        "Route:\r\n"
        " <sip:edge.b2bua.test;lr;flavour=mint;bare-flag>\r\n"
        "v:  SIP / 2.0 / TCP    relay.b2bua.test  ;\r\n"
        "   branch  =  z9hG4bK-tort-b2   ,\r\n"
        " SIP/2.0/UDP   203.0.113.40  ; branch=\r\n"
        " z9hG4bK-tort-c3\r\n"
        'm:"Omar \\"\\\\\\""<sip:omar@198.51.100.23:5062;transport=udp> ; expires =\r\n'
        "     300 ;\r\n"
        "  x-lonely ; q = 0.25\r\n"
        "\r\n" + SDP_OFFER,
        expect={
            "method": "INVITE",
            "request_uri": "sip:ines.moreira@lisbon.b2bua.test;transport=udp;x-flavour;x-n=1",
            "call_id": "tort.0042@198.51.100.23",
            "via_count": 3,
            "top_via_branch": "z9hG4bK-tort-a1",
            "top_via_host": "198.51.100.23",
            "top_via_port": 5062,
            "top_via_transport": "UDP",
            "cseq_number": 31,
            "cseq_method": "INVITE",
            "from_tag": "ff-9d2e",
            "to_tag": "tt-51ac",
            "from_uri": "sip:omar@cairo.b2bua.test",
            "to_uri": "sip:ines.moreira@lisbon.b2bua.test",
            "from_display_name": 'Omar "the Navigator" Farid',
            "contact_count": 1,
            "max_forwards": 69,
            "body_length": 190,
            "headers": {
                "Subject": ["Lunch, at noon"],
                "X-Folded-Thing": ["first part second part"],
                "X-Odd-Punctuation": [";;,,;,;"],
                "Content-Type": ["application/sdp"],
                "Route": ["<sip:edge.b2bua.test;lr;flavour=mint;bare-flag>"],
            },
        },
    ),
    ok(
        "wide-range-chars",
        "RFC 4475 3.1.1.2: every token character in the method, the CSeq method, a Via branch, "
        "a header name and parameters; unusual user and password characters in the "
        "Request-URI; control characters as quoted-pairs and UTF-8 in quoted strings; "
        "a Call-ID using every word character.",
        "x-Weird.method!%*_+`'~0987 "
        "sip:it's_a~(strange!)&user+name$/ok?,/;;*:s3cr3t&=+$,_(pw)~!*'@chars.b2bua.test"
        " SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.31;branch=z9hG4bK-.!%77*_+`'~\r\n"
        'To: "Bell:\\\x07 Del:\\\x7f Tab:\\\t" '
        "<sip:it's_a~(strange!)&user+name$/ok?,/;;*@chars.b2bua.test>\r\n"
        "From: tok1~` tok2'+_ tok3*%!.- <sip:plain@b2bua.test> "
        ";x-param''~+*_!.-%=\"привет, мир\";tag=_t~1'+`*%!-.\r\n"
        "Call-ID: wide.%ZZ-!.*_+'@w0rd`~)(><:\\/\"][?}{\r\n"
        "CSeq: 2209 x-Weird.method!%*_+`'~0987\r\n"
        "Max-Forwards: 255\r\n"
        "X-Ext!.%*+_`'~: héllo wörld ☃ ユニコード\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        reply=501,
        expect={
            "method": "x-Weird.method!%*_+`'~0987",
            "request_uri": "sip:it's_a~(strange!)&user+name$/ok?,/;;*:s3cr3t&=+$,_(pw)~!*'"
            "@chars.b2bua.test",
            "call_id": "wide.%ZZ-!.*_+'@w0rd`~)(><:\\/\"][?}{",
            "via_count": 1,
            "top_via_branch": "z9hG4bK-.!%77*_+`'~",
            "cseq_number": 2209,
            "cseq_method": "x-Weird.method!%*_+`'~0987",
            "from_tag": "_t~1'+`*%!-.",
            "from_uri": "sip:plain@b2bua.test",
            "to_uri": "sip:it's_a~(strange!)&user+name$/ok?,/;;*@chars.b2bua.test",
            "from_display_name": "tok1~` tok2'+_ tok3*%!.-",
            "max_forwards": 255,
            "body_length": 0,
            "headers": {"X-Ext!.%*+_`'~": ["héllo wörld ☃ ユニコード"]},
        },
    ),
    ok(
        "percent-escapes",
        "RFC 4475 3.1.1.3: % escapes in the Request-URI user part (an escaped sips URI), in "
        "To/From user parts, in URI parameters and in a header parameter; URIs are kept "
        "exactly as written.",
        "INVITE sip:sips%3Ahelga%40nordic.b2bua.test@gw.b2bua.test;x-tag=%61%62 SIP/2.0\r\n"
        "To: sip:%68elga@nordic.b2bua.test\r\n"
        "From: <sip:I%20have%20spaces@b2bua.test>;tag=pe-01\r\n"
        "Max-Forwards: 70\r\n"
        "Call-ID: pct.escapes.1@198.51.100.40\r\n"
        "Contact: <sip:helga@198.51.100.40;x-ping=%70%6fng>;x-up=%40home\r\n"
        "Via: SIP/2.0/UDP 198.51.100.40;branch=z9hG4bK-pct-1\r\n"
        "CSeq: 1 INVITE\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        expect={
            "method": "INVITE",
            "request_uri": "sip:sips%3Ahelga%40nordic.b2bua.test@gw.b2bua.test;x-tag=%61%62",
            "from_uri": "sip:I%20have%20spaces@b2bua.test",
            "to_uri": "sip:%68elga@nordic.b2bua.test",
            "from_tag": "pe-01",
            "contact_count": 1,
            "headers": {"Contact": ["<sip:helga@198.51.100.40;x-ping=%70%6fng>;x-up=%40home"]},
        },
    ),
    ok(
        "escaped-nul",
        "RFC 4475 3.1.1.4: an escaped NUL (%00) in URI user parts of To, From and Contact "
        "is legal text; only a raw NUL byte is an error.",
        "REGISTER sip:b2bua.test SIP/2.0\r\n"
        "To: sip:zero%00byte@b2bua.test\r\n"
        "From: sip:zero%00byte@b2bua.test;tag=nul-77\r\n"
        "Via: SIP/2.0/UDP 203.0.113.61;branch=z9hG4bK-nul-1\r\n"
        "Call-ID: escnul.1@203.0.113.61\r\n"
        "CSeq: 3 REGISTER\r\n"
        "Max-Forwards: 70\r\n"
        "Contact: <sip:zero%00%00byte@203.0.113.61:5070>\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        expect={
            "method": "REGISTER",
            "from_uri": "sip:zero%00byte@b2bua.test",
            "from_tag": "nul-77",
            "to_uri": "sip:zero%00byte@b2bua.test",
            "contact_count": 1,
        },
    ),
    ok(
        "percent-not-escape",
        "RFC 4475 3.1.1.5: % in tokens (method, tag, branch), in a Call-ID and in a quoted "
        "display name is a literal character, not an escape: PUB%4cISH is an unknown method, "
        "not PUBLISH.",
        "PUB%4cISH sip:presence.b2bua.test SIP/2.0\r\n"
        "To: sip:kai@presence.b2bua.test\r\n"
        'From: "100% %real%" <sip:kai@oslo.b2bua.test>;tag=%5x%\r\n'
        "Call-ID: pct%zz%4@oslo.b2bua.test\r\n"
        "Via: SIP/2.0/UDP 203.0.113.62;branch=z9hG4bK-%4-pct\r\n"
        "CSeq: 12 PUB%4cISH\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        reply=501,
        expect={
            "method": "PUB%4cISH",
            "call_id": "pct%zz%4@oslo.b2bua.test",
            "top_via_branch": "z9hG4bK-%4-pct",
            "cseq_method": "PUB%4cISH",
            "from_tag": "%5x%",
            "from_display_name": "100% %real%",
        },
    ),
    ok(
        "no-lws-display-name",
        "RFC 4475 3.1.1.6: no whitespace between a display name (quoted or token) and '<'.",
        "OPTIONS sip:sw.b2bua.test SIP/2.0\r\n"
        'To: "Switch"<sip:sw.b2bua.test>\r\n'
        "From: Probe<sip:probe@monitor.b2bua.test>;tag=nolws-3\r\n"
        "Call-ID: nolws.3@198.51.100.50\r\n"
        "CSeq: 8 OPTIONS\r\n"
        "Via: SIP/2.0/UDP 198.51.100.50;branch=z9hG4bK-nolws-3\r\n"
        "Max-Forwards: 70\r\n"
        "Accept: application/sdp\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        reply=200,
        expect={
            "method": "OPTIONS",
            "from_display_name": "Probe",
            "from_uri": "sip:probe@monitor.b2bua.test",
            "from_tag": "nolws-3",
            "to_uri": "sip:sw.b2bua.test",
        },
    ),
    ok(
        "long-values",
        "RFC 4475 3.1.1.7: long values everywhere (255-character user part, 300-character "
        "display name, 321-character tag, 659-character Call-ID, a 4011-character unknown "
        "header), 30 Vias (10 in one line) and 20 Record-Routes (10 in one line), "
        "all within the size limits.",
        _long_values(),
        expect={
            "method": "INVITE",
            "call_id": LONG_CALL_ID,
            "via_count": 30,
            "top_via_branch": "z9hG4bK-long-01",
            "top_via_host": "hop01.b2bua.test",
            "top_via_port": 5060,
            "top_via_transport": "UDP",
            "from_tag": LONG_TAG,
            "body_length": len(SDP_OFFER),
            "headers": {"Record-Route": LONG_RRS, "X-Long-Value": [LONG_VALUE]},
        },
    ),
    ok(
        "trailing-octets",
        "RFC 4475 3.1.1.8: a UDP datagram holding a REGISTER with Content-Length 0 followed by "
        "a second message; the octets after the declared body are discarded.",
        "REGISTER sip:b2bua.test SIP/2.0\r\n"
        "To: sip:lena@b2bua.test\r\n"
        "From: sip:lena@b2bua.test;tag=dbl-1\r\n"
        "Call-ID: dbl.1@203.0.113.70\r\n"
        "CSeq: 4 REGISTER\r\n"
        "Via: SIP/2.0/UDP 203.0.113.70;branch=z9hG4bK-dbl-1\r\n"
        "Max-Forwards: 70\r\n"
        "Contact: <sip:lena@203.0.113.70>\r\n"
        "Content-Length: 0\r\n"
        "\r\n"
        "INVITE sip:lena@b2bua.test SIP/2.0\r\n"
        "To: sip:lena@b2bua.test\r\n"
        "From: sip:mallory@b2bua.test;tag=dbl-2\r\n"
        "Call-ID: dbl.2@203.0.113.70\r\n"
        "CSeq: 1 INVITE\r\n"
        "Via: SIP/2.0/UDP 203.0.113.70;branch=z9hG4bK-dbl-2\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        check_length=False,
        expect={
            "method": "REGISTER",
            "call_id": "dbl.1@203.0.113.70",
            "top_via_branch": "z9hG4bK-dbl-1",
            "cseq_number": 4,
            "body_length": 0,
        },
    ),
    ok(
        "semicolon-userpart",
        "RFC 4475 3.1.1.9: semicolons (and an escaped @) in the user part of the Request-URI "
        "and To URI belong to the user, not to URI parameters.",
        "OPTIONS sip:rex;ext=7%40b2bua.test@sw.b2bua.test SIP/2.0\r\n"
        "To: <sip:rex;ext=7%40b2bua.test@sw.b2bua.test>\r\n"
        "From: <sip:probe@monitor.b2bua.test>;tag=semi-5\r\n"
        "Call-ID: semi.5@198.51.100.51\r\n"
        "CSeq: 2 OPTIONS\r\n"
        "Via: SIP/2.0/UDP 198.51.100.51;branch=z9hG4bK-semi-5\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        reply=200,
        expect={
            "method": "OPTIONS",
            "request_uri": "sip:rex;ext=7%40b2bua.test@sw.b2bua.test",
            "to_uri": "sip:rex;ext=7%40b2bua.test@sw.b2bua.test",
        },
    ),
    ok(
        "varied-transports",
        "RFC 4475 3.1.1.10: Via transports SCTP, TLS, TLS-SCTP (lower case), WSS and an "
        "unknown token are all accepted.",
        "OPTIONS sip:sw.b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/SCTP edge1.b2bua.test;branch=z9hG4bK-tr-sctp\r\n"
        "Via: SIP/2.0/TLS edge2.b2bua.test;branch=z9hG4bK-tr-tls\r\n"
        "Via: SIP/2.0/tls-sctp edge3.b2bua.test;branch=z9hG4bK-tr-tlssctp\r\n"
        "Via: SIP/2.0/WSS edge4.b2bua.test;branch=z9hG4bK-tr-wss\r\n"
        "Via: SIP/2.0/CARRIER-PIGEON edge5.b2bua.test;branch=z9hG4bK-tr-bird\r\n"
        "Via: SIP/2.0/UDP 198.51.100.80;branch=z9hG4bK-tr-udp\r\n"
        "To: <sip:sw.b2bua.test>\r\n"
        "From: <sip:probe@monitor.b2bua.test>;tag=tr-6\r\n"
        "Call-ID: transports.6@198.51.100.80\r\n"
        "CSeq: 6 OPTIONS\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        reply=200,
        expect={
            "via_count": 6,
            "top_via_transport": "SCTP",
            "top_via_host": "edge1.b2bua.test",
            "top_via_branch": "z9hG4bK-tr-sctp",
        },
    ),
    ok(
        "multipart-mime",
        "RFC 4475 3.1.1.11: a multipart/mixed body (SDP plus a binary part holding NUL, 0xFF "
        "and CRLF bytes) with an exact Content-Length; binary bytes are fine in the body.",
        b"INVITE sip:hugo@b2bua.test SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 198.51.100.90;branch=z9hG4bK-mpart-1\r\n"
        b"To: <sip:hugo@b2bua.test>\r\n"
        b"From: <sip:isup-gw@pstn.b2bua.test>;tag=mp-1\r\n"
        b"Call-ID: mpart.1@198.51.100.90\r\n"
        b"CSeq: 1 INVITE\r\n"
        b"Max-Forwards: 70\r\n"
        b"Contact: <sip:isup-gw@198.51.100.90>\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed;boundary=b2bua.boundary.42\r\n"
        b"Content-Length: 403\r\n"
        b"\r\n" + MULTIPART_BODY,
        expect={
            "method": "INVITE",
            "body_length": 403,
            "headers": {"Content-Type": ["multipart/mixed;boundary=b2bua.boundary.42"]},
        },
    ),
    ok(
        "unusual-reason",
        "RFC 4475 3.1.1.12: a response whose reason phrase holds UTF-8, commas and symbols.",
        "SIP/2.0 200 Tudo bem, ça marche — 日本語も大丈夫 ✓\r\n"
        "Via: SIP/2.0/UDP sw.b2bua.test:5060;branch=z9hG4bK-unr-1\r\n"
        "From: <sip:sw@b2bua.test>;tag=unr-s\r\n"
        "To: <sip:paulo@b2bua.test>;tag=unr-p\r\n"
        "Call-ID: unreason.1@sw.b2bua.test\r\n"
        "CSeq: 5 INVITE\r\n"
        "Contact: <sip:paulo@203.0.113.80>\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        expect={
            "status": 200,
            "reason": "Tudo bem, ça marche — 日本語も大丈夫 ✓",
            "to_tag": "unr-p",
            "cseq_method": "INVITE",
        },
    ),
    ok(
        "empty-reason",
        "RFC 4475 3.1.1.13: a status line with an empty reason phrase (code, SP, CRLF).",
        "SIP/2.0 100 \r\n"
        "Via: SIP/2.0/UDP sw.b2bua.test:5060;branch=z9hG4bK-nor-1\r\n"
        "From: <sip:sw@b2bua.test>;tag=nor-s\r\n"
        "To: <sip:paulo@b2bua.test>\r\n"
        "Call-ID: noreason.1@sw.b2bua.test\r\n"
        "CSeq: 7 INVITE\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        expect={"status": 100, "reason": "", "cseq_number": 7},
    ),
    ok(
        "rfc2543-invite",
        "RFC 4475 3.4.1: an RFC 2543 style INVITE: Via without a branch, From without a tag, "
        "addr-spec To/From and no Max-Forwards; all legal at the parser.",
        "INVITE sip:theo@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.91:5060\r\n"
        "From: sip:legacy@old.b2bua.test\r\n"
        "To: sip:theo@b2bua.test\r\n"
        "Call-ID: 2543.legacy@198.51.100.91\r\n"
        "CSeq: 1 INVITE\r\n"
        "Content-Type: application/sdp\r\n"
        "Content-Length: 130\r\n"
        "\r\n" + SDP_ANSWER,
        expect={
            "method": "INVITE",
            "via_count": 1,
            "top_via_host": "198.51.100.91",
            "top_via_port": 5060,
            "from_uri": "sip:legacy@old.b2bua.test",
            "to_uri": "sip:theo@b2bua.test",
            "body_length": 130,
        },
    ),
    ok(
        "branch-cookie-only",
        "RFC 4475 3.2.1: a Via branch that is only the magic cookie z9hG4bK parses; what the "
        "transaction layer makes of it is not the parser's business.",
        "INVITE sip:theo@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.92;branch=z9hG4bK\r\n"
        "From: <sip:cookie@b2bua.test>;tag=ck-1\r\n"
        "To: <sip:theo@b2bua.test>\r\n"
        "Call-ID: cookie.1@198.51.100.92\r\n"
        "CSeq: 1 INVITE\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        expect={"top_via_branch": "z9hG4bK", "top_via_host": "198.51.100.92"},
    ),
    ok(
        "ipv6-references",
        "IPv6 references in brackets in the Request-URI, Via sent-by (with a port), From, To "
        "and Contact, plus an IPv6 received parameter (RFC 5118).",
        "INVITE sip:nadia@[2001:db8::10]:5060 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP [2001:db8::9:1]:5070;branch=z9hG4bK-v6-1;received=2001:db8::9:255"
        ";rport=5070\r\n"
        "Via: SIP/2.0/UDP [2001:db8:0:0:1::7];branch=z9hG4bK-v6-0\r\n"
        "From: <sip:zara@[2001:db8::9:1]:5070>;tag=v6-a\r\n"
        "To: <sip:nadia@[2001:db8::10]>\r\n"
        "Call-ID: v6.1@2001:db8::9:1\r\n"
        "CSeq: 1 INVITE\r\n"
        "Max-Forwards: 70\r\n"
        "Contact: <sip:zara@[2001:db8::9:1]:5070>\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        expect={
            "request_uri": "sip:nadia@[2001:db8::10]:5060",
            "call_id": "v6.1@2001:db8::9:1",
            "via_count": 2,
            "top_via_branch": "z9hG4bK-v6-1",
            "top_via_host": "[2001:db8::9:1]",
            "top_via_port": 5070,
            "from_uri": "sip:zara@[2001:db8::9:1]:5070",
            "to_uri": "sip:nadia@[2001:db8::10]",
        },
    ),
    ok(
        "vias-one-line",
        "Several Via values in one header line, comma-separated with and without spaces, "
        "followed by another Via line; the order is kept.",
        "BYE sip:ruth@203.0.113.100 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.101;branch=z9hG4bK-one-1, SIP/2.0/TCP "
        "relay2.b2bua.test:5061;branch=z9hG4bK-one-2,SIP/2.0/UDP 203.0.113.102;branch="
        "z9hG4bK-one-3\r\n"
        "Via: SIP/2.0/TLS relay4.b2bua.test;branch=z9hG4bK-one-4\r\n"
        "From: <sip:sam@b2bua.test>;tag=one-s\r\n"
        "To: <sip:ruth@b2bua.test>;tag=one-r\r\n"
        "Call-ID: vias.1@198.51.100.101\r\n"
        "CSeq: 2 BYE\r\n"
        "Max-Forwards: 67\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        expect={
            "method": "BYE",
            "via_count": 4,
            "top_via_branch": "z9hG4bK-one-1",
            "top_via_host": "198.51.100.101",
            "top_via_transport": "UDP",
            "headers": {
                "Via": [
                    "SIP/2.0/UDP 198.51.100.101;branch=z9hG4bK-one-1",
                    "SIP/2.0/TCP relay2.b2bua.test:5061;branch=z9hG4bK-one-2",
                    "SIP/2.0/UDP 203.0.113.102;branch=z9hG4bK-one-3",
                    "SIP/2.0/TLS relay4.b2bua.test;branch=z9hG4bK-one-4",
                ],
            },
        },
    ),
    ok(
        "unknown-header-empty",
        "An unknown header with nothing at all after the colon is kept with an empty value.",
        "INFO sip:ruth@203.0.113.100 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.103;branch=z9hG4bK-empty-1\r\n"
        "From: <sip:sam@b2bua.test>;tag=em-s\r\n"
        "To: <sip:ruth@b2bua.test>;tag=em-r\r\n"
        "Call-ID: empty.1@198.51.100.103\r\n"
        "CSeq: 3 INFO\r\n"
        "X-Empty-Thing:\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        expect={"method": "INFO", "headers": {"X-Empty-Thing": [""]}},
    ),
    ok(
        "unknown-header-whitespace",
        "An unknown header whose value is only spaces and a tab (trailing whitespace on the "
        "line) is kept with an empty value.",
        "UPDATE sip:ruth@203.0.113.100 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.104;branch=z9hG4bK-blank-1\r\n"
        "From: <sip:sam@b2bua.test>;tag=bl-s\r\n"
        "To: <sip:ruth@b2bua.test>;tag=bl-r\r\n"
        "Call-ID: blank.1@198.51.100.104\r\n"
        "CSeq: 4 UPDATE\r\n"
        "X-Blank-Thing: \t  \r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        expect={"method": "UPDATE", "headers": {"X-Blank-Thing": [""]}},
    ),
    ok(
        "compact-forms-core",
        "RFC 3261 7.3.3 / RFC 6665: a SUBSCRIBE using the compact form of every header that "
        "has one (v t f i m o u k s l); list headers in compact form are split too.",
        "SUBSCRIBE sip:room-12@conf.b2bua.test SIP/2.0\r\n"
        "v: SIP/2.0/UDP 198.51.100.111:5060;branch=z9hG4bK-cpt-1\r\n"
        "t: <sip:room-12@conf.b2bua.test>\r\n"
        'f: "Watcher" <sip:watcher@b2bua.test>;tag=cpt-w\r\n'
        "i: compact.1@198.51.100.111\r\n"
        "CSeq: 1 SUBSCRIBE\r\n"
        "m: <sip:watcher@198.51.100.111:5060>\r\n"
        "o: conference\r\n"
        "u: conference, dialog\r\n"
        "k: eventlist,timer\r\n"
        "s: compact only\r\n"
        "l: 0\r\n"
        "\r\n",
        expect={
            "method": "SUBSCRIBE",
            "call_id": "compact.1@198.51.100.111",
            "via_count": 1,
            "top_via_branch": "z9hG4bK-cpt-1",
            "top_via_port": 5060,
            "from_display_name": "Watcher",
            "from_tag": "cpt-w",
            "to_uri": "sip:room-12@conf.b2bua.test",
            "contact_count": 1,
            "body_length": 0,
            "headers": {
                "Event": ["conference"],
                "Allow-Events": ["conference", "dialog"],
                "Supported": ["eventlist", "timer"],
                "Subject": ["compact only"],
                "Content-Length": ["0"],
            },
        },
    ),
    ok(
        "compact-forms-extensions",
        "Compact forms defined after RFC 3261: x Session-Expires, a Accept-Contact, "
        "j Reject-Contact, d Request-Disposition, y Identity, e Content-Encoding.",
        "INVITE sip:ivo@b2bua.test SIP/2.0\r\n"
        "v: SIP/2.0/UDP 203.0.113.120;branch=z9hG4bK-cpx-1\r\n"
        "f: <sip:uma@b2bua.test>;tag=cpx-u\r\n"
        "t: <sip:ivo@b2bua.test>\r\n"
        "i: cpx.1@203.0.113.120\r\n"
        "CSeq: 2 INVITE\r\n"
        "Max-Forwards: 70\r\n"
        "m: <sip:uma@203.0.113.120>\r\n"
        "x: 1800;refresher=uac\r\n"
        "k: timer\r\n"
        "a: *;audio;require\r\n"
        "j: *;video\r\n"
        "d: parallel\r\n"
        "y: aGVhZGVy.Y2xhaW1z.c2lnbmF0dXJl;info=<https://cert.b2bua.test/sw.pem>;alg=ES256\r\n"
        "e: gzip\r\n"
        "l: 0\r\n"
        "\r\n",
        expect={
            "method": "INVITE",
            "from_tag": "cpx-u",
            "to_uri": "sip:ivo@b2bua.test",
            "headers": {
                "Session-Expires": ["1800;refresher=uac"],
                "Supported": ["timer"],
                "Accept-Contact": ["*;audio;require"],
                "Reject-Contact": ["*;video"],
                "Request-Disposition": ["parallel"],
                "Identity": [
                    "aGVhZGVy.Y2xhaW1z.c2lnbmF0dXJl;info=<https://cert.b2bua.test/sw.pem>;alg=ES256"
                ],
                "Content-Encoding": ["gzip"],
                "Content-Length": ["0"],
            },
        },
    ),
    ok(
        "refer-escaped-headers",
        "A Refer-To (compact r) URI carrying escaped headers (an escaped Replaces value and a "
        "second header after &), and a Referred-By in compact form b.",
        "REFER sip:ivo@203.0.113.121 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 203.0.113.120;branch=z9hG4bK-ref-1\r\n"
        "From: <sip:uma@b2bua.test>;tag=ref-u\r\n"
        "To: <sip:ivo@b2bua.test>;tag=ref-i\r\n"
        "Call-ID: refer.1@203.0.113.120\r\n"
        "CSeq: 3 REFER\r\n"
        "Max-Forwards: 70\r\n"
        "Contact: <sip:uma@203.0.113.120>\r\n"
        "r: <sip:wes@b2bua.test?Replaces=cid-77%40198.51.100.3%3Bto-tag%3Dt1%3Bfrom-tag%3Df1"
        "&X-Why=because>\r\n"
        'b: "Uma" <sip:uma@b2bua.test>\r\n'
        "Content-Length: 0\r\n"
        "\r\n",
        expect={
            "method": "REFER",
            "to_tag": "ref-i",
            "headers": {
                "Refer-To": [
                    "<sip:wes@b2bua.test?Replaces=cid-77%40198.51.100.3%3Bto-tag%3Dt1"
                    "%3Bfrom-tag%3Df1&X-Why=because>"
                ],
                "Referred-By": ['"Uma" <sip:uma@b2bua.test>'],
            },
        },
    ),
    ok(
        "register-escaped-contact",
        "RFC 4475 3.3.14: a REGISTER whose Contact URI carries an escaped Route header "
        "(?Route=%3C...%3E) and an escaped URI parameter; To has an escaped URI parameter.",
        "REGISTER sip:b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.130;branch=z9hG4bK-regesc-1\r\n"
        "From: <sip:tess@b2bua.test>;tag=re-1\r\n"
        "To: <sip:tess@b2bua.test;x-a=%41>\r\n"
        "Call-ID: regesc.1@198.51.100.130\r\n"
        "CSeq: 1 REGISTER\r\n"
        "Max-Forwards: 70\r\n"
        "Contact: <sip:tess@198.51.100.130;x-k=%7Ev?Route=%3Csip:edge.b2bua.test%3Blr%3E>"
        ";expires=300\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        expect={
            "method": "REGISTER",
            "to_uri": "sip:tess@b2bua.test;x-a=%41",
            "contact_count": 1,
            "headers": {
                "Contact": [
                    "<sip:tess@198.51.100.130;x-k=%7Ev?Route=%3Csip:edge.b2bua.test%3Blr%3E>"
                    ";expires=300"
                ],
            },
        },
    ),
    ok(
        "unknown-method-body",
        "RFC 4475 3.1.1.2 (unknown method): an unknown method carrying a text body parses; "
        "the switch answers 501.",
        "FROBNICATE sip:gadget@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.140;branch=z9hG4bK-frob-1\r\n"
        "From: <sip:tinker@b2bua.test>;tag=frob-t\r\n"
        "To: <sip:gadget@b2bua.test>\r\n"
        "Call-ID: frob.1@198.51.100.140\r\n"
        "CSeq: 77 FROBNICATE\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Type: text/plain\r\n"
        "Content-Length: 24\r\n"
        "\r\n"
        "frob level: 11\r\n"
        "please\r\n",
        reply=501,
        expect={
            "method": "FROBNICATE",
            "cseq_number": 77,
            "cseq_method": "FROBNICATE",
            "body_length": 24,
        },
    ),
    ok(
        "response-unknown-cseq-method",
        "A 200 response whose CSeq names an unknown method parses.",
        "SIP/2.0 200 OK\r\n"
        "Via: SIP/2.0/UDP sw.b2bua.test:5060;branch=z9hG4bK-frob-2\r\n"
        "From: <sip:sw@b2bua.test>;tag=frob-s\r\n"
        "To: <sip:gadget@b2bua.test>;tag=frob-g\r\n"
        "Call-ID: frob.2@sw.b2bua.test\r\n"
        "CSeq: 4 FROBNICATE\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        expect={
            "status": 200,
            "reason": "OK",
            "cseq_number": 4,
            "cseq_method": "FROBNICATE",
            "to_tag": "frob-g",
        },
    ),
    ok(
        "lowercase-method",
        "Methods are case-sensitive: 'invite' is an unknown method (not INVITE), so it parses "
        "and the switch answers 501.",
        "invite sip:gadget@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.141;branch=z9hG4bK-lower-1\r\n"
        "From: <sip:tinker@b2bua.test>;tag=low-t\r\n"
        "To: <sip:gadget@b2bua.test>\r\n"
        "Call-ID: lower.1@198.51.100.141\r\n"
        "CSeq: 1 invite\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        reply=501,
        expect={"method": "invite", "cseq_method": "invite"},
    ),
    ok(
        "options-require-unknown",
        "RFC 4475 3.3.5: an OPTIONS with a Require listing option tags we do not support "
        "parses; the switch answers 420 (Proxy-Require is kept but ignored by a UAS).",
        "OPTIONS sip:sw.b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.142;branch=z9hG4bK-req-1\r\n"
        "From: <sip:probe@monitor.b2bua.test>;tag=req-p\r\n"
        "To: <sip:sw.b2bua.test>\r\n"
        "Call-ID: require.1@198.51.100.142\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Max-Forwards: 70\r\n"
        "Require: x-teleport, x-time-travel\r\n"
        "Proxy-Require: x-teleport\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        reply=420,
        expect={
            "method": "OPTIONS",
            "headers": {
                "Require": ["x-teleport", "x-time-travel"],
                "Proxy-Require": ["x-teleport"],
            },
        },
    ),
    ok(
        "options-max-forwards-zero",
        "RFC 4475 3.3.11: an OPTIONS with Max-Forwards 0 to a sip URI; the switch answers it "
        "itself with 200.",
        "OPTIONS sip:sw.b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.143;branch=z9hG4bK-mf0-1\r\n"
        "From: <sip:probe@monitor.b2bua.test>;tag=mf0-p\r\n"
        "To: <sip:sw.b2bua.test>\r\n"
        "Call-ID: zeromf.1@198.51.100.143\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Max-Forwards: 0\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        reply=200,
        expect={"method": "OPTIONS", "max_forwards": 0},
    ),
    ok(
        "invite-max-forwards-zero",
        "RFC 4475 3.3.11: an INVITE with Max-Forwards 0 parses; the switch answers 483.",
        "INVITE sip:dora@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.144;branch=z9hG4bK-mf0-2\r\n"
        "From: <sip:loop@b2bua.test>;tag=mf0-l\r\n"
        "To: <sip:dora@b2bua.test>\r\n"
        "Call-ID: zeromf.2@198.51.100.144\r\n"
        "CSeq: 1 INVITE\r\n"
        "Max-Forwards: 0\r\n"
        "Contact: <sip:loop@198.51.100.144>\r\n"
        "Content-Type: application/sdp\r\n"
        "Content-Length: 190\r\n"
        "\r\n" + SDP_OFFER,
        reply=483,
        expect={"method": "INVITE", "max_forwards": 0, "body_length": 190},
    ),
    ok(
        "unknown-scheme-ruri",
        "RFC 4475 3.3.2: a Request-URI with an unknown scheme parses; the switch answers 416.",
        "INVITE nope:carrot.and.stick SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.145;branch=z9hG4bK-unk-1\r\n"
        "From: <sip:farmer@b2bua.test>;tag=unk-f\r\n"
        "To: <nope:carrot.and.stick>\r\n"
        "Call-ID: unkscm.1@198.51.100.145\r\n"
        "CSeq: 1 INVITE\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        reply=416,
        expect={
            "method": "INVITE",
            "request_uri": "nope:carrot.and.stick",
            "to_uri": "nope:carrot.and.stick",
        },
    ),
    ok(
        "atypical-scheme-ruri",
        "RFC 4475 3.3.3: an OPTIONS to a registered but non-SIP scheme (soap.beep) parses; "
        "the OPTIONS rule only covers sip/sips, so the switch answers 416.",
        "OPTIONS soap.beep://203.0.113.5:3002 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.146;branch=z9hG4bK-novel-1\r\n"
        "From: <sip:probe@monitor.b2bua.test>;tag=nov-p\r\n"
        "To: <soap.beep://203.0.113.5:3002>\r\n"
        "Call-ID: novelsc.1@198.51.100.146\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        reply=416,
        expect={"method": "OPTIONS", "request_uri": "soap.beep://203.0.113.5:3002"},
    ),
    ok(
        "tel-request-uri",
        "A tel URI (global number) as the Request-URI and in To parses; tel is a scheme "
        "the switch accepts.",
        "INVITE tel:+4915550142 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.147;branch=z9hG4bK-tel-1\r\n"
        "From: <sip:desk-4@b2bua.test>;tag=tel-d\r\n"
        "To: <tel:+4915550142>\r\n"
        "Call-ID: tel.1@198.51.100.147\r\n"
        "CSeq: 1 INVITE\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        expect={
            "method": "INVITE",
            "request_uri": "tel:+4915550142",
            "to_uri": "tel:+4915550142",
        },
    ),
    ok(
        "to-tel-uri",
        "A To header holding a local tel URI with a phone-context parameter, under a sip "
        "Request-URI with user=phone.",
        "INVITE sip:7042@gw.b2bua.test;user=phone SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.148;branch=z9hG4bK-tel-2\r\n"
        "From: <sip:desk-4@b2bua.test>;tag=tel-e\r\n"
        "To: <tel:7042;phone-context=pbx.b2bua.test>\r\n"
        "Call-ID: tel.2@198.51.100.148\r\n"
        "CSeq: 1 INVITE\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        expect={
            "request_uri": "sip:7042@gw.b2bua.test;user=phone",
            "to_uri": "tel:7042;phone-context=pbx.b2bua.test",
        },
    ),
    ok(
        "unknown-scheme-headers",
        "RFC 4475 3.3.4: unknown URI schemes in To and Contact (with a sip Request-URI) "
        "are accepted by the parser.",
        "MESSAGE sip:listener@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.149;branch=z9hG4bK-unksm-1\r\n"
        "From: <sip:talker@b2bua.test>;tag=uns-t\r\n"
        "To: <nope:listener.b2bua.test>\r\n"
        "Call-ID: unksm2.1@198.51.100.149\r\n"
        "CSeq: 1 MESSAGE\r\n"
        "Max-Forwards: 70\r\n"
        "Contact: <urn:x-b2bua:talker>\r\n"
        "Content-Type: text/plain\r\n"
        "Content-Length: 5\r\n"
        "\r\n"
        "hello",
        expect={
            "method": "MESSAGE",
            "to_uri": "nope:listener.b2bua.test",
            "contact_count": 1,
            "body_length": 5,
        },
    ),
    ok(
        "register-contact-star",
        "A REGISTER removing every binding: Contact * with Expires 0.",
        "REGISTER sip:b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.150;branch=z9hG4bK-star-1\r\n"
        "From: <sip:vera@b2bua.test>;tag=star-v\r\n"
        "To: <sip:vera@b2bua.test>\r\n"
        "Call-ID: star.1@198.51.100.150\r\n"
        "CSeq: 9 REGISTER\r\n"
        "Max-Forwards: 70\r\n"
        "Contact: *\r\n"
        "Expires: 0\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        expect={
            "method": "REGISTER",
            "contact_count": 1,
            "headers": {"Contact": ["*"], "Expires": ["0"]},
        },
    ),
    ok(
        "register-contact-list",
        "Three Contacts over two lines, one line comma-separated, one display name holding a "
        "comma inside quotes (not a separator).",
        "REGISTER sip:b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.151;branch=z9hG4bK-clist-1\r\n"
        "From: <sip:wim@b2bua.test>;tag=cl-w\r\n"
        "To: <sip:wim@b2bua.test>\r\n"
        "Call-ID: clist.1@198.51.100.151\r\n"
        "CSeq: 1 REGISTER\r\n"
        "Max-Forwards: 70\r\n"
        'Contact: <sip:wim@198.51.100.151>;q=0.7, "Desk, Phone" <sip:wim@198.51.100.152>'
        ";q=0.3\r\n"
        "Contact: <sip:wim@198.51.100.153;transport=tcp>;expires=60\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        expect={
            "contact_count": 3,
            "headers": {
                "Contact": [
                    "<sip:wim@198.51.100.151>;q=0.7",
                    '"Desk, Phone" <sip:wim@198.51.100.152>;q=0.3',
                    "<sip:wim@198.51.100.153;transport=tcp>;expires=60",
                ],
            },
        },
    ),
    ok(
        "register-contact-params",
        "RFC 4475 3.3.12/3.3.13: a Contact in addr-spec form whose ;expires is a header "
        "parameter, and a Contact in name-addr form with a URI parameter inside <>.",
        "REGISTER sip:b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.154;branch=z9hG4bK-cparam-1\r\n"
        "From: <sip:mia@b2bua.test>;tag=cp-m\r\n"
        "To: <sip:mia@b2bua.test>\r\n"
        "Call-ID: cparam.1@198.51.100.154\r\n"
        "CSeq: 1 REGISTER\r\n"
        "Max-Forwards: 70\r\n"
        "Contact: sip:mia@198.51.100.154;expires=120\r\n"
        "Contact: <sip:mia@198.51.100.155;x-uri-param=1>;q=0.5\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        expect={
            "contact_count": 2,
            "headers": {
                "Contact": [
                    "sip:mia@198.51.100.154;expires=120",
                    "<sip:mia@198.51.100.155;x-uri-param=1>;q=0.5",
                ],
            },
        },
    ),
    ok(
        "response-200-sdp",
        "A 200 OK to INVITE with an SDP answer, a To tag, Record-Routes and a Contact.",
        "SIP/2.0 200 OK\r\n"
        "Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK-sw-100;received=203.0.113.10\r\n"
        "Record-Route: <sip:rr1.b2bua.test;lr>, <sip:rr2.b2bua.test;lr>\r\n"
        "From: <sip:sw@b2bua.test>;tag=sw-4411\r\n"
        "To: <sip:yusuf@b2bua.test>;tag=yu-9087\r\n"
        "Call-ID: answer.1@203.0.113.10\r\n"
        "CSeq: 1 INVITE\r\n"
        "Contact: <sip:yusuf@198.51.100.170:5060>\r\n"
        "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n"
        "Content-Type: application/sdp\r\n"
        "Content-Length: 130\r\n"
        "\r\n" + SDP_ANSWER,
        expect={
            "status": 200,
            "reason": "OK",
            "call_id": "answer.1@203.0.113.10",
            "top_via_branch": "z9hG4bK-sw-100",
            "cseq_number": 1,
            "cseq_method": "INVITE",
            "from_tag": "sw-4411",
            "to_tag": "yu-9087",
            "contact_count": 1,
            "body_length": 130,
            "headers": {
                "Record-Route": ["<sip:rr1.b2bua.test;lr>", "<sip:rr2.b2bua.test;lr>"],
                "Allow": ["INVITE", "ACK", "CANCEL", "BYE", "OPTIONS"],
            },
        },
    ),
    ok(
        "response-180-ringing",
        "A 180 Ringing with a To tag and no body.",
        "SIP/2.0 180 Ringing\r\n"
        "Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK-sw-101\r\n"
        "From: <sip:sw@b2bua.test>;tag=sw-4412\r\n"
        "To: <sip:yusuf@b2bua.test>;tag=yu-9088\r\n"
        "Call-ID: ringing.1@203.0.113.10\r\n"
        "CSeq: 1 INVITE\r\n"
        "Contact: <sip:yusuf@198.51.100.170:5060>\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        expect={"status": 180, "reason": "Ringing", "to_tag": "yu-9088", "body_length": 0},
    ),
    ok(
        "response-100-trying",
        "A 100 Trying without a To tag.",
        "SIP/2.0 100 Trying\r\n"
        "Via: SIP/2.0/UDP 198.51.100.171:5060;branch=z9hG4bK-caller-7\r\n"
        "From: <sip:xena@b2bua.test>;tag=xe-1\r\n"
        "To: <sip:yusuf@b2bua.test>\r\n"
        "Call-ID: trying.1@198.51.100.171\r\n"
        "CSeq: 1 INVITE\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        expect={"status": 100, "reason": "Trying", "via_count": 1, "from_tag": "xe-1"},
    ),
    ok(
        "bare-lf",
        "Lines ending in a bare LF instead of CRLF are accepted (lenient reading).",
        "OPTIONS sip:sw.b2bua.test SIP/2.0\n"
        "Via: SIP/2.0/UDP 198.51.100.172;branch=z9hG4bK-lf-1\n"
        "From: <sip:probe@monitor.b2bua.test>;tag=lf-p\n"
        "To: <sip:sw.b2bua.test>\n"
        "Call-ID: barelf.1@198.51.100.172\n"
        "CSeq: 5 OPTIONS\n"
        "Max-Forwards: 70\n"
        "Content-Length: 0\n"
        "\n",
        reply=200,
        expect={
            "method": "OPTIONS",
            "call_id": "barelf.1@198.51.100.172",
            "top_via_branch": "z9hG4bK-lf-1",
            "cseq_number": 5,
            "from_tag": "lf-p",
            "max_forwards": 70,
            "body_length": 0,
        },
    ),
    ok(
        "udp-content-length-truncates",
        "RFC 3261 18.3: on UDP a Content-Length smaller than the bytes present truncates the "
        "body to Content-Length (here 100 of 190 SDP bytes).",
        "INVITE sip:zeno@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.173;branch=z9hG4bK-trunc-1\r\n"
        "From: <sip:ada@b2bua.test>;tag=tr-a\r\n"
        "To: <sip:zeno@b2bua.test>\r\n"
        "Call-ID: trunc.1@198.51.100.173\r\n"
        "CSeq: 1 INVITE\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Type: application/sdp\r\n"
        "Content-Length: 100\r\n"
        "\r\n" + SDP_OFFER,
        check_length=False,
        expect={"method": "INVITE", "body_length": 100},
    ),
    ok(
        "udp-no-content-length",
        "On UDP a message without Content-Length has a body running to the end of the datagram.",
        "MESSAGE sip:listener@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.174;branch=z9hG4bK-nocl-1\r\n"
        "From: <sip:talker@b2bua.test>;tag=nocl-t\r\n"
        "To: <sip:listener@b2bua.test>\r\n"
        "Call-ID: nocl.1@198.51.100.174\r\n"
        "CSeq: 2 MESSAGE\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Type: text/plain;charset=utf-8\r\n"
        "\r\n"
        "Olá! Körper ohne Längenangabe.\r\n",
        check_length=False,
        expect={"method": "MESSAGE", "body_length": 35},
    ),
    ok(
        "tcp-with-body",
        "A message received over TCP with a Via TCP and an SDP body delimited by its exact "
        "Content-Length.",
        "INVITE sip:zeno@b2bua.test;transport=tcp SIP/2.0\r\n"
        "Via: SIP/2.0/TCP 198.51.100.175:5060;branch=z9hG4bK-tcp-1\r\n"
        "From: <sip:ada@b2bua.test>;tag=tcp-a\r\n"
        "To: <sip:zeno@b2bua.test>\r\n"
        "Call-ID: tcp.1@198.51.100.175\r\n"
        "CSeq: 1 INVITE\r\n"
        "Max-Forwards: 70\r\n"
        "Contact: <sip:ada@198.51.100.175:5060;transport=tcp>\r\n"
        "Content-Type: application/sdp\r\n"
        "Content-Length: 190\r\n"
        "\r\n" + SDP_OFFER,
        transport="tcp",
        expect={
            "method": "INVITE",
            "top_via_transport": "TCP",
            "top_via_port": 5060,
            "body_length": 190,
        },
    ),
    ok(
        "from-addr-spec-tag",
        "From and To in addr-spec form (no angle brackets): the ;tag after the addr-spec is a "
        "header parameter, not part of the URI.",
        "BYE sip:yann@198.51.100.176 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.177;branch=z9hG4bK-aspec-1\r\n"
        "From: sip:zoe@b2bua.test;tag=as-88\r\n"
        "To: sip:yann@b2bua.test;tag=as-99\r\n"
        "Call-ID: aspec.1@198.51.100.177\r\n"
        "CSeq: 2 BYE\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        expect={
            "from_uri": "sip:zoe@b2bua.test",
            "from_tag": "as-88",
            "to_uri": "sip:yann@b2bua.test",
            "to_tag": "as-99",
        },
    ),
    ok(
        "display-name-escapes",
        "A quoted display name holding an escaped backslash and escaped double quotes is "
        "unescaped.",
        "INVITE sip:yann@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.178;branch=z9hG4bK-dnesc-1\r\n"
        'From: "Back\\\\slash \\"Quote\\" Person" <sip:bq@b2bua.test>;tag=dn-1\r\n'
        "To: <sip:yann@b2bua.test>\r\n"
        "Call-ID: dnesc.1@198.51.100.178\r\n"
        "CSeq: 1 INVITE\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        expect={
            "from_display_name": 'Back\\slash "Quote" Person',
            "from_uri": "sip:bq@b2bua.test",
            "from_tag": "dn-1",
        },
    ),
    ok(
        "cseq-max",
        "The largest legal CSeq number, 2**31 - 1.",
        "INVITE sip:yann@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.179;branch=z9hG4bK-cmax-1\r\n"
        "From: <sip:big@b2bua.test>;tag=cm-1\r\n"
        "To: <sip:yann@b2bua.test>\r\n"
        "Call-ID: cseqmax.1@198.51.100.179\r\n"
        "CSeq: 2147483647 INVITE\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        expect={"cseq_number": 2147483647, "cseq_method": "INVITE"},
    ),
    ok(
        "via-rport-received",
        "Via parameters: an empty rport and a received on the top Via (host behind NAT, with "
        "port), rport with a value, maddr, ttl and an unknown parameter on the second.",
        "INVITE sip:yann@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 10.20.30.40:5062;rport;received=203.0.113.77;branch=z9hG4bK-nat-1\r\n"
        "Via: SIP/2.0/UDP 10.1.1.1;rport=5099;received=203.0.113.78;branch=z9hG4bK-nat-0"
        ";maddr=239.255.255.1;ttl=16;x-mystery=1\r\n"
        "From: <sip:natted@b2bua.test>;tag=nat-1\r\n"
        "To: <sip:yann@b2bua.test>\r\n"
        "Call-ID: nat.1@10.20.30.40\r\n"
        "CSeq: 1 INVITE\r\n"
        "Max-Forwards: 69\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        expect={
            "via_count": 2,
            "top_via_branch": "z9hG4bK-nat-1",
            "top_via_host": "10.20.30.40",
            "top_via_port": 5062,
            "headers": {
                "Via": [
                    "SIP/2.0/UDP 10.20.30.40:5062;rport;received=203.0.113.77;branch=z9hG4bK-nat-1",
                    "SIP/2.0/UDP 10.1.1.1;rport=5099;received=203.0.113.78;branch=z9hG4bK-nat-0"
                    ";maddr=239.255.255.1;ttl=16;x-mystery=1",
                ],
            },
        },
    ),
    ok(
        "cseq-method-mismatch",
        "RFC 4475 3.1.2.17: the CSeq method differs from the request-line method; it parses "
        "and the switch answers 400.",
        "INVITE sip:yann@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.180;branch=z9hG4bK-mism-1\r\n"
        "From: <sip:confused@b2bua.test>;tag=mm-1\r\n"
        "To: <sip:yann@b2bua.test>\r\n"
        "Call-ID: mismatch.1@198.51.100.180\r\n"
        "CSeq: 9 OPTIONS\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        reply=400,
        expect={"method": "INVITE", "cseq_number": 9, "cseq_method": "OPTIONS"},
    ),
    ok(
        "unknown-method-cseq-mismatch",
        "RFC 4475 3.1.2.18: an unknown method whose CSeq names a different (known) method; it "
        "parses, and the switch answers 501 (RFC 4475 prefers 501 over 400 here).",
        "NEWMETHOD sip:yann@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.181;branch=z9hG4bK-mism-2\r\n"
        "From: <sip:confused@b2bua.test>;tag=mm-2\r\n"
        "To: <sip:yann@b2bua.test>\r\n"
        "Call-ID: mismatch.2@198.51.100.181\r\n"
        "CSeq: 5 INVITE\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        reply=501,
        expect={"method": "NEWMETHOD", "cseq_method": "INVITE"},
    ),
    ok(
        "notify-event-compact",
        "A NOTIFY with the Event header in compact form (o) with a parameter, a "
        "Subscription-State and an XML body.",
        "NOTIFY sip:watcher@198.51.100.111:5060 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK-ntf-1\r\n"
        "From: <sip:room-12@conf.b2bua.test>;tag=ntf-r\r\n"
        "To: <sip:watcher@b2bua.test>;tag=cpt-w\r\n"
        "Call-ID: compact.1@198.51.100.111\r\n"
        "CSeq: 1 NOTIFY\r\n"
        "Max-Forwards: 70\r\n"
        "o: dialog;id=sub-55\r\n"
        "Subscription-State: active;expires=3600\r\n"
        "Contact: <sip:sw@203.0.113.10:5060>\r\n"
        "Content-Type: application/dialog-info+xml\r\n"
        "Content-Length: 81\r\n"
        "\r\n"
        '<?xml version="1.0"?>\r\n'
        '<dialog-info version="0" state="full" entity="sip:a@b"/>\r\n',
        expect={
            "method": "NOTIFY",
            "body_length": 81,
            "headers": {
                "Event": ["dialog;id=sub-55"],
                "Subscription-State": ["active;expires=3600"],
            },
        },
    ),
    ok(
        "date-header-commas",
        "A Date header (RFC 1123 format, with a comma) and a Subject with commas are kept "
        "whole, not split.",
        "REGISTER sip:b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.182;branch=z9hG4bK-date-1\r\n"
        "From: <sip:clock@b2bua.test>;tag=dt-1\r\n"
        "To: <sip:clock@b2bua.test>\r\n"
        "Call-ID: date.1@198.51.100.182\r\n"
        "CSeq: 1 REGISTER\r\n"
        "Max-Forwards: 70\r\n"
        "Date: Tue, 04 Mar 2025 09:15:27 GMT\r\n"
        "Subject: one, two, three\r\n"
        "Contact: <sip:clock@198.51.100.182>\r\n"
        "Expires: 3600\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        expect={
            "headers": {
                "Date": ["Tue, 04 Mar 2025 09:15:27 GMT"],
                "Subject": ["one, two, three"],
                "Expires": ["3600"],
            },
        },
    ),
    ok(
        "route-record-route-one-line",
        "Route and Record-Route with several values in one line; commas inside a quoted "
        "display name and inside a URI user part do not split.",
        "INVITE sip:yann@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.183;branch=z9hG4bK-route-1\r\n"
        'Route: "proxy, one" <sip:p1.b2bua.test;lr>,<sip:a,b@p2.b2bua.test;lr> , '
        "<sip:p3.b2bua.test;lr>\r\n"
        "Record-Route: <sip:up2.b2bua.test;lr>, <sip:up1.b2bua.test;lr;x-hop=1>\r\n"
        "From: <sip:routed@b2bua.test>;tag=rt-1\r\n"
        "To: <sip:yann@b2bua.test>\r\n"
        "Call-ID: route.1@198.51.100.183\r\n"
        "CSeq: 1 INVITE\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        expect={
            "headers": {
                "Route": [
                    '"proxy, one" <sip:p1.b2bua.test;lr>',
                    "<sip:a,b@p2.b2bua.test;lr>",
                    "<sip:p3.b2bua.test;lr>",
                ],
                "Record-Route": [
                    "<sip:up2.b2bua.test;lr>",
                    "<sip:up1.b2bua.test;lr;x-hop=1>",
                ],
            },
        },
    ),
    ok(
        "ack-2xx",
        "An ACK for a 2xx (CSeq number of the INVITE, method ACK); ACK never gets a reply.",
        "ACK sip:yusuf@198.51.100.170:5060 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK-ack-1\r\n"
        "Route: <sip:rr2.b2bua.test;lr>, <sip:rr1.b2bua.test;lr>\r\n"
        "From: <sip:sw@b2bua.test>;tag=sw-4411\r\n"
        "To: <sip:yusuf@b2bua.test>;tag=yu-9087\r\n"
        "Call-ID: answer.1@203.0.113.10\r\n"
        "CSeq: 1 ACK\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        expect={"method": "ACK", "cseq_number": 1, "cseq_method": "ACK", "to_tag": "yu-9087"},
    ),
    ok(
        "ack-max-forwards-zero",
        "An ACK with Max-Forwards 0 parses and gets no reply (ACK is never answered).",
        "ACK sip:yusuf@198.51.100.170:5060 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK-ack-2\r\n"
        "From: <sip:sw@b2bua.test>;tag=sw-4413\r\n"
        "To: <sip:yusuf@b2bua.test>;tag=yu-9089\r\n"
        "Call-ID: ackmf0.1@203.0.113.10\r\n"
        "CSeq: 1 ACK\r\n"
        "Max-Forwards: 0\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        expect={"method": "ACK", "max_forwards": 0},
    ),
    ok(
        "cancel",
        "A CANCEL with the INVITE's branch and CSeq number and CSeq method CANCEL.",
        "CANCEL sip:yann@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.184;branch=z9hG4bK-inv-77\r\n"
        "From: <sip:impatient@b2bua.test>;tag=cn-1\r\n"
        "To: <sip:yann@b2bua.test>\r\n"
        "Call-ID: cancel.1@198.51.100.184\r\n"
        "CSeq: 12 CANCEL\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        expect={
            "method": "CANCEL",
            "top_via_branch": "z9hG4bK-inv-77",
            "cseq_number": 12,
            "cseq_method": "CANCEL",
        },
    ),
    ok(
        "unknown-content-type",
        "RFC 4475 3.3.6: an INVITE with a body of an unknown Content-Type still parses.",
        "INVITE sip:yann@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.185;branch=z9hG4bK-invut-1\r\n"
        "From: <sip:odd@b2bua.test>;tag=ut-1\r\n"
        "To: <sip:yann@b2bua.test>\r\n"
        "Call-ID: invut.1@198.51.100.185\r\n"
        "CSeq: 1 INVITE\r\n"
        "Max-Forwards: 70\r\n"
        "Contact: <sip:odd@198.51.100.185>\r\n"
        "Content-Type: application/x-b2bua-mystery\r\n"
        "Content-Length: 13\r\n"
        "\r\n"
        "\x01\x02\x03mystery\x7f\r\n",
        expect={"body_length": 13, "headers": {"Content-Type": ["application/x-b2bua-mystery"]}},
    ),
    ok(
        "unknown-auth-scheme",
        "RFC 4475 3.3.7: an Authorization with an unknown scheme and commas inside quoted "
        "values parses and is kept whole (Authorization is not a list header).",
        "REGISTER sip:b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.186;branch=z9hG4bK-auth-1\r\n"
        "From: <sip:psychic@b2bua.test>;tag=au-1\r\n"
        "To: <sip:psychic@b2bua.test>\r\n"
        "Call-ID: regaut.1@198.51.100.186\r\n"
        "CSeq: 2 REGISTER\r\n"
        "Max-Forwards: 70\r\n"
        'Authorization: Telepathy realm="b2bua.test", thought="yes, no", nonce="77aa"\r\n'
        "Contact: <sip:psychic@198.51.100.186>\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        expect={
            "headers": {
                "Authorization": ['Telepathy realm="b2bua.test", thought="yes, no", nonce="77aa"'],
            },
        },
    ),
    ok(
        "response-401-www-authenticate",
        "A 401 with a WWW-Authenticate holding commas (kept whole) and an Allow list (split).",
        "SIP/2.0 401 Unauthorized\r\n"
        "Via: SIP/2.0/UDP 198.51.100.186;branch=z9hG4bK-auth-0;received=198.51.100.186\r\n"
        "From: <sip:psychic@b2bua.test>;tag=au-1\r\n"
        "To: <sip:psychic@b2bua.test>;tag=sw-au\r\n"
        "Call-ID: regaut.1@198.51.100.186\r\n"
        "CSeq: 1 REGISTER\r\n"
        'WWW-Authenticate: Digest realm="b2bua.test", nonce="c0ffee42", algorithm=SHA-256, '
        'qop="auth,auth-int"\r\n'
        "Allow: REGISTER,OPTIONS\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        expect={
            "status": 401,
            "reason": "Unauthorized",
            "headers": {
                "WWW-Authenticate": [
                    'Digest realm="b2bua.test", nonce="c0ffee42", algorithm=SHA-256, '
                    'qop="auth,auth-int"'
                ],
                "Allow": ["REGISTER", "OPTIONS"],
            },
        },
    ),
    ok(
        "response-broadcast-via",
        "RFC 4475 3.3.10: a 200 response whose second Via sent-by is 255.255.255.255 parses.",
        "SIP/2.0 200 OK\r\n"
        "Via: SIP/2.0/UDP 203.0.113.10;branch=z9hG4bK-bc-1\r\n"
        "Via: SIP/2.0/UDP 255.255.255.255;branch=z9hG4bK-bc-0\r\n"
        "From: <sip:sw@b2bua.test>;tag=bc-s\r\n"
        "To: <sip:yusuf@b2bua.test>;tag=bc-y\r\n"
        "Call-ID: bcast.1@203.0.113.10\r\n"
        "CSeq: 3 OPTIONS\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        expect={"status": 200, "via_count": 2, "top_via_host": "203.0.113.10"},
    ),
    ok(
        "hundred-headers",
        "Exactly 100 header fields (the limit), five of them folded over two lines, so "
        "105 physical lines unfold to 100 header lines.",
        _options_with_headers(100, "z9hG4bK-h100"),
        reply=200,
        expect={
            "method": "OPTIONS",
            "headers": {"X-Filler-018": ["folded value 18 continues here"]},
        },
    ),
]

# ---------------------------------------------------------------------------------------------
# Invalid messages: the parser rejects them (status_hint), or drops them (status None).
# ---------------------------------------------------------------------------------------------

INVALID: list[Case] = [
    error(
        "content-length-too-large",
        "RFC 4475 3.1.2.2: on UDP a Content-Length larger than the bytes present is an error.",
        "INVITE sip:yann@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.200;branch=z9hG4bK-clbig-1\r\n"
        "From: <sip:liar@b2bua.test>;tag=cl-1\r\n"
        "To: <sip:yann@b2bua.test>\r\n"
        "Call-ID: clerr.1@198.51.100.200\r\n"
        "CSeq: 1 INVITE\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Type: application/sdp\r\n"
        "Content-Length: 9999\r\n"
        "\r\n" + SDP_OFFER,
        status=400,
        check_length=False,
    ),
    error(
        "content-length-negative",
        "RFC 4475 3.1.2.3: a negative Content-Length is an error.",
        "INVITE sip:yann@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.201;branch=z9hG4bK-clneg-1\r\n"
        "From: <sip:liar@b2bua.test>;tag=cl-2\r\n"
        "To: <sip:yann@b2bua.test>\r\n"
        "Call-ID: ncl.1@198.51.100.201\r\n"
        "CSeq: 1 INVITE\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Type: application/sdp\r\n"
        "Content-Length: -180\r\n"
        "\r\n" + SDP_OFFER,
        status=400,
        check_length=False,
    ),
    error(
        "content-length-non-numeric",
        "A Content-Length that is not a number is an error.",
        "MESSAGE sip:yann@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.202;branch=z9hG4bK-clnan-1\r\n"
        "From: <sip:liar@b2bua.test>;tag=cl-3\r\n"
        "To: <sip:yann@b2bua.test>\r\n"
        "Call-ID: clnan.1@198.51.100.202\r\n"
        "CSeq: 1 MESSAGE\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Type: text/plain\r\n"
        "Content-Length: five\r\n"
        "\r\n"
        "hello",
        status=400,
        check_length=False,
    ),
    error(
        "content-length-conflict",
        "RFC 4475 3.3.9: two Content-Length headers with different values are an error.",
        "MESSAGE sip:yann@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.203;branch=z9hG4bK-mcl-1\r\n"
        "From: <sip:liar@b2bua.test>;tag=cl-4\r\n"
        "To: <sip:yann@b2bua.test>\r\n"
        "Call-ID: mcl.1@198.51.100.203\r\n"
        "CSeq: 1 MESSAGE\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Type: text/plain\r\n"
        "Content-Length: 5\r\n"
        "l: 3\r\n"
        "\r\n"
        "hello",
        status=400,
        check_length=False,
    ),
    error(
        "content-length-overlarge",
        "RFC 4475 3.1.2.4: a Content-Length far beyond any integer we hold (and beyond the "
        "bytes present) is an error.",
        "MESSAGE sip:yann@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.204;branch=z9hG4bK-clhuge-1\r\n"
        "From: <sip:liar@b2bua.test>;tag=cl-5\r\n"
        "To: <sip:yann@b2bua.test>\r\n"
        "Call-ID: clhuge.1@198.51.100.204\r\n"
        "CSeq: 1 MESSAGE\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Type: text/plain\r\n"
        "Content-Length: 184467440737095516170\r\n"
        "\r\n"
        "hello",
        status=400,
        check_length=False,
    ),
    error(
        "missing-call-id",
        "RFC 4475 3.3.1: a request without Call-ID is an error.",
        "INVITE sip:yann@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.205;branch=z9hG4bK-insuf-1\r\n"
        "From: <sip:forgetful@b2bua.test>;tag=in-1\r\n"
        "To: <sip:yann@b2bua.test>\r\n"
        "CSeq: 1 INVITE\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        status=400,
    ),
    error(
        "missing-cseq",
        "RFC 4475 3.3.1: a request without CSeq is an error.",
        "INVITE sip:yann@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.206;branch=z9hG4bK-insuf-2\r\n"
        "From: <sip:forgetful@b2bua.test>;tag=in-2\r\n"
        "To: <sip:yann@b2bua.test>\r\n"
        "Call-ID: insuf.2@198.51.100.206\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        status=400,
    ),
    error(
        "missing-to",
        "RFC 4475 3.3.1: a request without To is an error.",
        "INVITE sip:yann@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.207;branch=z9hG4bK-insuf-3\r\n"
        "From: <sip:forgetful@b2bua.test>;tag=in-3\r\n"
        "Call-ID: insuf.3@198.51.100.207\r\n"
        "CSeq: 1 INVITE\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        status=400,
    ),
    error(
        "missing-from",
        "RFC 4475 3.3.1: a request without From is an error.",
        "INVITE sip:yann@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.208;branch=z9hG4bK-insuf-4\r\n"
        "To: <sip:yann@b2bua.test>\r\n"
        "Call-ID: insuf.4@198.51.100.208\r\n"
        "CSeq: 1 INVITE\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        status=400,
    ),
    error(
        "missing-via",
        "RFC 4475 3.3.1: a request without Via cannot be answered, so it is dropped.",
        "INVITE sip:yann@b2bua.test SIP/2.0\r\n"
        "From: <sip:forgetful@b2bua.test>;tag=in-5\r\n"
        "To: <sip:yann@b2bua.test>\r\n"
        "Call-ID: insuf.5@198.51.100.209\r\n"
        "CSeq: 1 INVITE\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        status=None,
    ),
    error(
        "via-unparseable",
        "A request whose only Via is not a Via (no protocol, no sent-by) cannot be answered, "
        "so it is dropped.",
        "INVITE sip:yann@b2bua.test SIP/2.0\r\n"
        "Via: this is not a via at all\r\n"
        "From: <sip:broken@b2bua.test>;tag=vu-1\r\n"
        "To: <sip:yann@b2bua.test>\r\n"
        "Call-ID: viabad.1@198.51.100.210\r\n"
        "CSeq: 1 INVITE\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        status=None,
    ),
    error(
        "extraneous-via-separators",
        "RFC 4475 3.1.2.1: a second Via line made of stray semicolons and commas after a good "
        "top Via is an error that can still be answered.",
        "OPTIONS sip:sw.b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.211;branch=z9hG4bK-sep-1\r\n"
        "Via: SIP/2.0/TCP 203.0.113.4;;,;,,\r\n"
        "From: <sip:sloppy@b2bua.test>;tag=sep-1\r\n"
        "To: <sip:sw.b2bua.test>\r\n"
        "Call-ID: badinv.1@198.51.100.211\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        status=400,
    ),
    error(
        "cseq-non-numeric",
        "A CSeq whose number is not digits is an error.",
        "INVITE sip:yann@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.212;branch=z9hG4bK-cseq-1\r\n"
        "From: <sip:counter@b2bua.test>;tag=cs-1\r\n"
        "To: <sip:yann@b2bua.test>\r\n"
        "Call-ID: cseq.1@198.51.100.212\r\n"
        "CSeq: one INVITE\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        status=400,
    ),
    error(
        "cseq-too-large",
        "RFC 4475 3.1.2.4: a CSeq number of 2**31 (one past the largest legal value) is an error.",
        "INVITE sip:yann@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.213;branch=z9hG4bK-cseq-2\r\n"
        "From: <sip:counter@b2bua.test>;tag=cs-2\r\n"
        "To: <sip:yann@b2bua.test>\r\n"
        "Call-ID: cseq.2@198.51.100.213\r\n"
        "CSeq: 2147483648 INVITE\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        status=400,
    ),
    error(
        "cseq-no-method",
        "A CSeq with a number but no method is an error.",
        "INVITE sip:yann@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.214;branch=z9hG4bK-cseq-3\r\n"
        "From: <sip:counter@b2bua.test>;tag=cs-3\r\n"
        "To: <sip:yann@b2bua.test>\r\n"
        "Call-ID: cseq.3@198.51.100.214\r\n"
        "CSeq: 42\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        status=400,
    ),
    error(
        "request-bad-version",
        "RFC 4475 3.1.2.16: a request line with version SIP/7.0 (and a good SIP/2.0 Via, so a "
        "response can be routed) is answered 505.",
        "OPTIONS sip:sw.b2bua.test SIP/7.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.215;branch=z9hG4bK-vers-1\r\n"
        "From: <sip:future@b2bua.test>;tag=ver-1\r\n"
        "To: <sip:sw.b2bua.test>\r\n"
        "Call-ID: badvers.1@198.51.100.215\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        status=505,
    ),
    error(
        "request-line-double-space",
        "RFC 4475 3.1.2.9: two spaces between the method and the Request-URI is an error.",
        "INVITE  sip:yann@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.216;branch=z9hG4bK-lws-1\r\n"
        "From: <sip:spacey@b2bua.test>;tag=sp-1\r\n"
        "To: <sip:yann@b2bua.test>\r\n"
        "Call-ID: lwsstart.1@198.51.100.216\r\n"
        "CSeq: 1 INVITE\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        status=400,
    ),
    error(
        "request-line-trailing-space",
        "RFC 4475 3.1.2.10: a space after SIP/2.0 at the end of the request line is an error.",
        "OPTIONS sip:sw.b2bua.test SIP/2.0 \r\n"
        "Via: SIP/2.0/UDP 198.51.100.217;branch=z9hG4bK-lws-2\r\n"
        "From: <sip:spacey@b2bua.test>;tag=sp-2\r\n"
        "To: <sip:sw.b2bua.test>\r\n"
        "Call-ID: trws.1@198.51.100.217\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        status=400,
    ),
    error(
        "request-uri-unescaped-space",
        "RFC 4475 3.1.2.8: an unescaped space inside the Request-URI is an error.",
        "INVITE sip:yann martel@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.218;branch=z9hG4bK-lws-3\r\n"
        "From: <sip:spacey@b2bua.test>;tag=sp-3\r\n"
        "To: <sip:yann@b2bua.test>\r\n"
        "Call-ID: lwsruri.1@198.51.100.218\r\n"
        "CSeq: 1 INVITE\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        status=400,
    ),
    error(
        "request-uri-angle-brackets",
        "RFC 4475 3.1.2.7: a Request-URI enclosed in <> is an error.",
        "INVITE <sip:yann@b2bua.test> SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.219;branch=z9hG4bK-ltgt-1\r\n"
        "From: <sip:brackets@b2bua.test>;tag=lt-1\r\n"
        "To: <sip:yann@b2bua.test>\r\n"
        "Call-ID: ltgtruri.1@198.51.100.219\r\n"
        "CSeq: 1 INVITE\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        status=400,
    ),
    error(
        "nul-in-header",
        "A raw NUL byte inside a header value is an error.",
        b"INVITE sip:yann@b2bua.test SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 198.51.100.220;branch=z9hG4bK-nul-2\r\n"
        b"From: <sip:nully@b2bua.test>;tag=nu-1\r\n"
        b"To: <sip:yann@b2bua.test>\r\n"
        b"Call-ID: nul.2@198.51.100.220\r\n"
        b"CSeq: 1 INVITE\r\n"
        b"Subject: before\x00after\r\n"
        b"Max-Forwards: 70\r\n"
        b"Content-Length: 0\r\n"
        b"\r\n",
        status=400,
    ),
    error(
        "non-utf8-header",
        "Latin-1 bytes (not valid UTF-8) in a header value are an error.",
        b"INVITE sip:yann@b2bua.test SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 198.51.100.221;branch=z9hG4bK-latin-1\r\n"
        b"From: <sip:latin@b2bua.test>;tag=la-1\r\n"
        b"To: <sip:yann@b2bua.test>\r\n"
        b"Call-ID: latin.1@198.51.100.221\r\n"
        b"CSeq: 1 INVITE\r\n"
        b"Subject: caf\xe9 cr\xe8me \xff\r\n"
        b"Max-Forwards: 70\r\n"
        b"Content-Length: 0\r\n"
        b"\r\n",
        status=400,
    ),
    error(
        "header-line-too-long",
        "A single header line of more than 8192 bytes (9000-byte value) is answered 513.",
        _long_header_line(folded=False),
        status=513,
    ),
    error(
        "header-line-too-long-folded",
        "A header folded over 20 short lines whose unfolded length exceeds 8192 bytes is "
        "answered 513.",
        _long_header_line(folded=True),
        status=513,
    ),
    error(
        "too-many-headers",
        "101 header fields (one over the limit of 100, five of them folded) are answered 513.",
        _options_with_headers(101, "z9hG4bK-h101"),
        status=513,
    ),
    error(
        "header-block-too-large",
        "A header block over 65535 bytes made of legal lines under 8192 bytes each is "
        "answered 513 (TCP, since no datagram is that large).",
        _huge_header_block(),
        status=513,
        transport="tcp",
    ),
    error(
        "message-too-large",
        "A message whose body alone is 66000 bytes (exact Content-Length) is answered 513 "
        "(TCP, since no datagram is that large).",
        _huge_body(),
        status=513,
        transport="tcp",
    ),
    error(
        "from-unclosed-bracket",
        "A From whose '<' is never closed is neither name-addr nor addr-spec: an error.",
        "INVITE sip:yann@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.222;branch=z9hG4bK-from-1\r\n"
        "From: <sip:unclosed@b2bua.test;tag=fr-1\r\n"
        "To: <sip:yann@b2bua.test>\r\n"
        "Call-ID: from.1@198.51.100.222\r\n"
        "CSeq: 1 INVITE\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        status=400,
    ),
    error(
        "to-unterminated-quote",
        "RFC 4475 3.1.2.6: a To display name whose quoted string is never closed is an error.",
        "INVITE sip:yann@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.223;branch=z9hG4bK-quot-1\r\n"
        "From: <sip:quoter@b2bua.test>;tag=qb-1\r\n"
        'To: "Yann the Unbalanced <sip:yann@b2bua.test>\r\n'
        "Call-ID: quotbal.1@198.51.100.223\r\n"
        "CSeq: 1 INVITE\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        status=400,
    ),
    error(
        "from-space-in-uri",
        "RFC 4475 3.1.2.14: a space inside the URI of a From name-addr is an error.",
        "INVITE sip:yann@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.224;branch=z9hG4bK-aspec-2\r\n"
        "From: <sip:pat @b2bua.test>;tag=ba-1\r\n"
        "To: <sip:yann@b2bua.test>\r\n"
        "Call-ID: badaspec.1@198.51.100.224\r\n"
        "CSeq: 1 INVITE\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        status=400,
    ),
    error(
        "from-non-token-display-name",
        "RFC 4475 3.1.2.15: an unquoted display name with a non-token character (a comma) "
        "is an error.",
        "INVITE sip:yann@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.225;branch=z9hG4bK-baddn-1\r\n"
        "From: Martel, Yann <sip:ym@b2bua.test>;tag=dn-2\r\n"
        "To: <sip:yann@b2bua.test>\r\n"
        "Call-ID: baddn.1@198.51.100.225\r\n"
        "CSeq: 1 INVITE\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        status=400,
    ),
    error(
        "header-without-colon",
        "A header line with no colon at all is an error.",
        "INVITE sip:yann@b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 198.51.100.226;branch=z9hG4bK-colon-1\r\n"
        "From: <sip:colonless@b2bua.test>;tag=co-1\r\n"
        "To: <sip:yann@b2bua.test>\r\n"
        "Call-ID: colon.1@198.51.100.226\r\n"
        "CSeq: 1 INVITE\r\n"
        "This line has no colon\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        status=400,
    ),
    error(
        "tcp-missing-content-length",
        "Over TCP Content-Length is mandatory (RFC 3261 20.14); a request without it is an error.",
        "OPTIONS sip:sw.b2bua.test SIP/2.0\r\n"
        "Via: SIP/2.0/TCP 198.51.100.227;branch=z9hG4bK-tcpcl-1\r\n"
        "From: <sip:streamer@b2bua.test>;tag=tc-1\r\n"
        "To: <sip:sw.b2bua.test>\r\n"
        "Call-ID: tcpcl.1@198.51.100.227\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Max-Forwards: 70\r\n"
        "\r\n",
        status=400,
        transport="tcp",
        check_length=False,
    ),
    error(
        "response-bad-version",
        "A response with version SIP/3.0 is dropped.",
        "SIP/3.0 200 OK\r\n"
        "Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK-rv-1\r\n"
        "From: <sip:sw@b2bua.test>;tag=rv-s\r\n"
        "To: <sip:yusuf@b2bua.test>;tag=rv-y\r\n"
        "Call-ID: respvers.1@203.0.113.10\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        status=None,
    ),
    error(
        "response-two-digit-code",
        "A response with a two-digit status code is dropped.",
        "SIP/2.0 20 OK\r\n"
        "Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK-rc-1\r\n"
        "From: <sip:sw@b2bua.test>;tag=rc-s\r\n"
        "To: <sip:yusuf@b2bua.test>;tag=rc-y\r\n"
        "Call-ID: respcode.1@203.0.113.10\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        status=None,
    ),
    error(
        "response-overlarge-code",
        "RFC 4475 3.1.2.19: a response with a ten-digit status code is dropped.",
        "SIP/2.0 4294967497 Definitely Not A Status\r\n"
        "Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK-rc-2\r\n"
        "From: <sip:sw@b2bua.test>;tag=rc-s2\r\n"
        "To: <sip:yusuf@b2bua.test>;tag=rc-y2\r\n"
        "Call-ID: bigcode.1@203.0.113.10\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        status=None,
    ),
    error(
        "response-missing-call-id",
        "A response without Call-ID is dropped (a response is never answered).",
        "SIP/2.0 200 OK\r\n"
        "Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK-rm-1\r\n"
        "From: <sip:sw@b2bua.test>;tag=rm-s\r\n"
        "To: <sip:yusuf@b2bua.test>;tag=rm-y\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        status=None,
    ),
    error(
        "response-cseq-too-large",
        "RFC 4475 3.1.2.5: a response with a CSeq number of 2**32 + 1 is dropped.",
        "SIP/2.0 503 Service Unavailable\r\n"
        "Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK-rl-1\r\n"
        "From: <sip:sw@b2bua.test>;tag=rl-s\r\n"
        "To: <sip:yusuf@b2bua.test>;tag=rl-y\r\n"
        "Call-ID: scalarlg.1@203.0.113.10\r\n"
        "CSeq: 4294967297 INVITE\r\n"
        "Retry-After: 30\r\n"
        "Content-Length: 0\r\n"
        "\r\n",
        status=None,
    ),
    error(
        "empty-datagram",
        "An empty datagram (zero bytes) is dropped.",
        b"",
        status=None,
        check_length=False,
    ),
    error(
        "crlf-keepalive",
        "A CRLF keep-alive (RFC 5626 style, only CRLFs) is dropped, never answered.",
        b"\r\n\r\n",
        status=None,
        check_length=False,
    ),
    error(
        "garbage-binary",
        "Binary garbage (the start of a TLS ClientHello sent to the UDP port) is dropped.",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x9a\x4f\x00\x11\xde\xad\xbe\xef"
        b"\x20\x7e\x13\x01\x13\x02\x13\x03\xc0\x2b\xc0\x2f\xcc\xa9\xcc\xa8\x00\x00",
        status=None,
        check_length=False,
    ),
    error(
        "garbage-text",
        "A line of text that is neither a request line nor a status line, with no headers, "
        "is dropped.",
        "Hello? Is anyone listening on this port?\r\n\r\n",
        status=None,
        check_length=False,
    ),
]

CASES: list[Case] = VALID + INVALID


# ---------------------------------------------------------------------------------------------
# Checks run before anything is written.
# ---------------------------------------------------------------------------------------------

_SPLIT = re.compile(rb"\r?\n\r?\n")
_CL_LINE = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\S*)[ \t]*$", re.IGNORECASE)


def _declared_lengths(raw: bytes) -> tuple[list[bytes], bytes]:
    """The Content-Length values (unfolded lines only) and the body after the blank line."""
    match = _SPLIT.search(raw)
    if match is None:
        return [], b""
    head, body = raw[: match.start()], raw[match.end() :]
    values = []
    for line in re.split(rb"\r?\n", head):
        cl = _CL_LINE.match(line)
        if cl:
            values.append(cl.group(1))
    return values, body


def _check(cases: list[Case]) -> None:
    names = [c.name for c in cases]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise SystemExit(f"duplicate case names: {sorted(dupes)}")
    for c in cases:
        where = f"case {c.name}"
        if not re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", c.name):
            raise SystemExit(f"{where}: name must be lower-case words joined by '-'")
        if c.transport not in ("udp", "tcp"):
            raise SystemExit(f"{where}: transport must be udp or tcp")
        if c.kind == "valid" and c.status_hint is not None:
            raise SystemExit(f"{where}: a valid case has no status_hint")
        if c.kind == "invalid" and (c.reply is not None or c.expect):
            raise SystemExit(f"{where}: an invalid case has no reply and no expect")
        if c.reply is not None and (c.raw.startswith(b"SIP/") or c.raw.startswith(b"ACK ")):
            raise SystemExit(f"{where}: responses and ACKs never get a reply")
        unknown = set(c.expect) - set(EXPECT_KEYS)
        if unknown:
            raise SystemExit(f"{where}: unknown expect keys {sorted(unknown)}")
        if c.check_length:
            values, body = _declared_lengths(c.raw)
            if values != [str(len(body)).encode()]:
                raise SystemExit(
                    f"{where}: Content-Length {values!r} but the body has {len(body)} bytes"
                )
        if "body_length" in c.expect and c.check_length:
            _, body = _declared_lengths(c.raw)
            if c.expect["body_length"] != len(body):
                raise SystemExit(f"{where}: body_length differs from the body's {len(body)}")


# ---------------------------------------------------------------------------------------------
# TOML output (written by hand: the standard library reads TOML but does not write it).
# ---------------------------------------------------------------------------------------------

_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}


def _toml_str(s: str) -> str:
    out = []
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else _toml_str(k)


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return _toml_str(v)
    if isinstance(v, list):
        items = [_toml_value(x) for x in v]
        if len(items) <= 1:
            return "[" + ", ".join(items) + "]"
        return "[\n" + "".join(f"    {i},\n" for i in items) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def _manifest(cases: list[Case]) -> str:
    out = [
        "# SIP parser test corpus: one table per case, keyed by the case name.",
        "# Generated by make_corpus.py; edit that script, not this file.",
        "",
    ]
    for c in cases:
        out.append(f"[{c.name}]")
        out.append(f"file = {_toml_str(f'{c.kind}/{c.name}.sip')}")
        out.append(f"property = {_toml_str(c.prop)}")
        out.append(f"transport = {_toml_str(c.transport)}")
        out.append(f"parse = {_toml_str('ok' if c.kind == 'valid' else 'error')}")
        if c.status_hint is not None:
            out.append(f"status_hint = {c.status_hint}")
        if c.reply is not None:
            out.append(f"reply = {c.reply}")
        scalars = [k for k in EXPECT_KEYS if k in c.expect and k != "headers"]
        headers = c.expect.get("headers")
        if scalars:
            out.append("")
            out.append(f"[{c.name}.expect]")
            out.extend(f"{k} = {_toml_value(c.expect[k])}" for k in scalars)
        if isinstance(headers, dict) and headers:
            out.append("")
            out.append(f"[{c.name}.expect.headers]")
            for hname, hvalues in headers.items():
                out.append(f"{_toml_key(hname)} = {_toml_value(hvalues)}")
        out.append("")
    return "\n".join(out)


def main() -> None:
    _check(CASES)
    for kind in ("valid", "invalid"):
        folder = HERE / kind
        folder.mkdir(exist_ok=True)
        wanted = {f"{c.name}.sip" for c in CASES if c.kind == kind}
        for stale in folder.glob("*.sip"):
            if stale.name not in wanted:
                stale.unlink()
    for c in CASES:
        (HERE / c.kind / f"{c.name}.sip").write_bytes(c.raw)
    (HERE / "cases.toml").write_text(_manifest(CASES), encoding="utf-8", newline="\n")
    sys.stdout.write(f"wrote {len(CASES)} cases ({len(VALID)} valid, {len(INVALID)} invalid)\n")


if __name__ == "__main__":
    main()
