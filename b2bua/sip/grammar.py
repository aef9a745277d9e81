"""Pieces of the RFC 3261 section 25 grammar, as compiled regular expressions.

Each rule quotes the ABNF it implements. Only what the parser needs is here; the
parser itself lives in :mod:`b2bua.sip.parser` and the typed headers in
:mod:`b2bua.sip.headers`.
"""

from __future__ import annotations

import re
from typing import Final

# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" )
TOKEN: Final = r"[A-Za-z0-9\-.!%*_+`'~]+"
TOKEN_RE: Final = re.compile(TOKEN)

# Method = INVITEm / ACKm / ... / extension-method ; extension-method = token
METHOD_RE: Final = re.compile(rf"^{TOKEN}$")

# quoted-string = SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE
# quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
QUOTED_STRING: Final = r'"(?:[^"\\]|\\.)*"'

# Request-Line = Method SP Request-URI SP SIP-Version CRLF
# The URI is any run of non-space characters; the URI grammar is checked by uri.py.
REQUEST_LINE_RE: Final = re.compile(rf"^({TOKEN}) (\S+) (SIP/\d+\.\d+)$")

# Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF
# Reason-Phrase = *(reserved / unreserved / escaped / UTF8-NONASCII / UTF8-CONT / SP / HTAB)
STATUS_LINE_RE: Final = re.compile(r"^(SIP/\d+\.\d+) ([1-6]\d\d)(?: (.*))?$")

# LWS = [*WSP CRLF] 1*WSP ; after unfolding only the WSP part remains
LWS: Final = r"[ \t]*"

# Via: sent-protocol LWS sent-by *( SEMI via-params )
# sent-protocol = protocol-name SLASH protocol-version SLASH transport
# SLASH = SWS "/" SWS ; sent-by = host [ COLON port ]
VIA_RE: Final = re.compile(
    rf"^({TOKEN}){LWS}/{LWS}({TOKEN}){LWS}/{LWS}({TOKEN})[ \t]+"
    r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.]+)"  # host: IPv6reference / hostname / IPv4address
    rf"(?:{LWS}:{LWS}(\d{{1,5}}))?"  # [ COLON port ]
    rf"{LWS}(.*)$",  # *( SEMI via-params )
    re.DOTALL,
)

# CSeq = "CSeq" HCOLON 1*DIGIT LWS Method
CSEQ_RE: Final = re.compile(rf"^(\d{{1,10}})[ \t]+({TOKEN})$")

# name-addr = [ display-name ] LAQUOT addr-spec RAQUOT
# display-name = *(token LWS)/ quoted-string
NAME_ADDR_RE: Final = re.compile(
    rf"^({QUOTED_STRING}|(?:{TOKEN}(?:[ \t]+{TOKEN})*))?{LWS}<([^<>]*)>{LWS}(.*)$",
    re.DOTALL,
)

# hostname = *( domainlabel "." ) toplabel [ "." ] ; IPv4address ; IPv6reference
HOST_RE: Final = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9.])?)$")

# scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
SCHEME_RE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+\-.]*$")

# user = 1*( unreserved / escaped / user-unreserved )
# user-unreserved = "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"
USER_RE: Final = re.compile(r"^(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|%[0-9A-Fa-f]{2})+$")

# password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )
PASSWORD_RE: Final = re.compile(r"^(?:[A-Za-z0-9\-_.!~*'()&=+$,]|%[0-9A-Fa-f]{2})*$")

# paramchar = param-unreserved / unreserved / escaped
# param-unreserved = "[" / "]" / "/" / ":" / "&" / "+" / "$"
PARAMCHARS_RE: Final = re.compile(r"^(?:[A-Za-z0-9\-_.!~*'()\[\]/:&+$]|%[0-9A-Fa-f]{2})*$")

# hname/hvalue = 1*( hnv-unreserved / unreserved / escaped ) ; hnv-unreserved = "[" / "]" / "/" /
# "?" / ":" / "+" / "$"
HEADERCHARS_RE: Final = re.compile(r"^(?:[A-Za-z0-9\-_.!~*'()\[\]/?:+$]|%[0-9A-Fa-f]{2})*$")

ESCAPE_RE: Final = re.compile(r"%([0-9A-Fa-f]{2})")


def unescape(text: str) -> str:
    """Decode ``%HH`` escapes (RFC 3261 section 19.1.4 compares URIs unescaped)."""
    if "%" not in text:
        return text
    return ESCAPE_RE.sub(lambda m: chr(int(m.group(1), 16)), text)


def unquote(text: str) -> str:
    """The content of a quoted-string, with quoted-pairs resolved."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = text[1:-1]
        if "\\" in text:
            return re.sub(r"\\(.)", r"\1", text, flags=re.DOTALL)
    return text


def quote(text: str) -> str:
    """A quoted-string holding ``text`` (backslash and DQUOTE escaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def split_list(value: str) -> list[str]:
    """Split a header value at commas that are outside quotes and angle brackets.

    RFC 3261 section 7.3.1: a header field whose grammar is a comma-separated list
    may carry several values; commas inside a quoted-string or a <URI> do not count.
    """
    if "," not in value:
        v = value.strip()
        return [v] if v else []
    parts: list[str] = []
    depth = 0
    in_quotes = False
    escaped = False
    start = 0
    for i, ch in enumerate(value):
        if in_quotes:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_quotes = False
        elif ch == '"':
            in_quotes = True
        elif ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            parts.append(value[start:i].strip())
            start = i + 1
    parts.append(value[start:].strip())
    return [p for p in parts if p]
