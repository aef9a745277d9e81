"""The message-waiting body: ``application/simple-message-summary`` (RFC 3842 section 5).

:class:`MessageCounts` is what a mailbox holds (new and old voice messages, optionally how
many of each are urgent); :func:`message_summary_body` writes the body a NOTIFY carries and
:func:`parse_message_summary` reads one back, leniently, as phones and other servers write
them. Pure functions, no state.

The grammar (RFC 3842 section 5.2), of which we write the first three lines::

    message-summary  = msg-status-line CRLF [msg-account CRLF]
                       [*(msg-summary-line CRLF)] [ *opt-msg-headers ]
    msg-status-line  = "Messages-Waiting" HCOLON msg-status
    msg-status       = "yes" / "no"
    msg-account      = "Message-Account" HCOLON Account-URI
    msg-summary-line = message-context-class HCOLON newmsgs SLASH oldmsgs
                       [ LPAREN new-urgentmsgs SLASH old-urgentmsgs RPAREN ]
    opt-msg-headers  = CRLF 1*(extension-header CRLF)
    msgcount         = 1*DIGIT   ; MUST NOT exceed 2^32-1
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from b2bua.sip.errors import ParseError

#: The body's media type (RFC 3842 section 3.5) and the event package (section 3.1).
CONTENT_TYPE: Final = "application/simple-message-summary"
EVENT_PACKAGE: Final = "message-summary"

#: RFC 3842 section 5.2: "msgcount ... MUST NOT exceed 2^32-1", and a subscriber reading a
#: larger one treats it as 2^32-1.
MAX_COUNT: Final = 2**32 - 1

#: The message-context-class of voice mail (RFC 3458 section 6.2), as RFC 3842's examples
#: spell it; classes are compared without regard to case.
VOICE_MESSAGE: Final = "Voice-Message"

#: A body bigger than this is not a message summary (a handful of short lines in practice).
MAX_BODY: Final = 16 * 1024

# newmsgs SLASH oldmsgs [ LPAREN new-urgentmsgs SLASH old-urgentmsgs RPAREN ]; SLASH and
# the parentheses take SWS either side (RFC 3261 section 25.1).
_COUNTS_RE: Final = re.compile(
    r"\s*(\d+)\s*/\s*(\d+)\s*(?:\(\s*(\d+)\s*/\s*(\d+)\s*\))?\s*", re.ASCII
)


@dataclass(frozen=True, slots=True)
class MessageCounts:
    """A mailbox's voice messages: ``new`` (unheard) and ``old`` (heard, kept).

    ``urgent_new``/``urgent_old`` are how many of those are urgent (RFC 3842's example
    ``2/8 (0/2)``: two new, eight old of which two are urgent), so each is at most its
    total; both None (the default) leaves the parenthesised pair out of the body. Giving
    one without the other is refused, so what is written reads back the same.
    """

    new: int
    old: int
    urgent_new: int | None = None
    urgent_old: int | None = None

    def __post_init__(self) -> None:
        if (self.urgent_new is None) != (self.urgent_old is None):
            raise ValueError("urgent_new and urgent_old go together")
        for name in ("new", "old", "urgent_new", "urgent_old"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= MAX_COUNT:
                raise ValueError(f"{name}={value} is not a message count")
        if (
            self.urgent_new is not None
            and self.urgent_old is not None
            and (self.urgent_new > self.new or self.urgent_old > self.old)
        ):
            raise ValueError("urgent messages are counted among new and old ones")

    @property
    def messages_waiting(self) -> bool:
        """The lamp: on while there is a new message (RFC 3842 section 3.5's status line)."""
        return self.new > 0

    @property
    def has_urgent(self) -> bool:
        return self.urgent_new is not None


def message_summary_body(counts: MessageCounts, account_uri: str) -> bytes:
    """The ``application/simple-message-summary`` body for ``counts`` of the mailbox named
    by ``account_uri`` (the Message-Account line, section 5.2): three lines, each ending
    in CRLF, for example::

        Messages-Waiting: yes
        Message-Account: sip:101@pbx.example.com
        Voice-Message: 2/8 (0/2)
    """
    if not account_uri or any(c in account_uri for c in "\r\n"):
        raise ValueError(f"bad Message-Account URI {account_uri!r}")
    summary = f"{counts.new}/{counts.old}"
    if counts.urgent_new is not None:
        summary += f" ({counts.urgent_new}/{counts.urgent_old})"
    lines = (
        f"Messages-Waiting: {'yes' if counts.messages_waiting else 'no'}",
        f"Message-Account: {account_uri}",
        f"{VOICE_MESSAGE}: {summary}",
    )
    return "".join(f"{line}\r\n" for line in lines).encode("utf-8")


def parse_message_summary(body: bytes | str) -> MessageCounts:
    """The voice-message counts of a message-summary body, read leniently.

    Accepted as phones and servers send them: CRLF, LF or CR line ends, any case in the
    field names and in yes/no, spaces around ``:``, ``/`` and the parentheses, a folded
    line (one starting with white space continues the previous one), no Message-Account,
    other message classes (ignored), and whatever follows the blank line that starts
    ``opt-msg-headers`` (ignored). A count above 2^32-1 reads as 2^32-1 (section 5.2).

    A body with the status line only (section 5.2 allows it) reads as 1/0 when it says
    yes and 0/0 when it says no, so ``messages_waiting`` still tells the lamp. When
    Voice-Message appears twice, the last one wins.

    Raises :class:`ParseError` (status hint 400) when the body is no message summary:
    empty, too big, a line without a colon, a status other than yes/no, or counts that
    do not follow the grammar.
    """
    if len(body) > MAX_BODY:
        raise ParseError("message summary too large", status_hint=400)
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    waiting: bool | None = None
    counts: MessageCounts | None = None
    for name, value in _fields(text):
        key = name.lower()
        if key == "messages-waiting":
            status = value.strip().lower()
            if status not in ("yes", "no"):
                raise ParseError(f"Messages-Waiting: {value!r}", status_hint=400)
            waiting = status == "yes"
        elif key == VOICE_MESSAGE.lower():
            counts = _counts(value)
    if counts is not None:
        return counts
    if waiting is None:
        raise ParseError("not a message summary", status_hint=400)
    return MessageCounts(1 if waiting else 0, 0)


def _fields(text: str) -> list[tuple[str, str]]:
    """(name, value) of each line up to the blank line that ends the summary block."""
    fields: list[tuple[str, str]] = []
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # opt-msg-headers: details of single messages we do not read
            continue
        if line[0] in " \t" and fields:
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise ParseError(f"not a message summary line: {line[:40]!r}", status_hint=400)
        fields.append((name.strip(), value.strip()))
    return fields


def _counts(value: str) -> MessageCounts:
    m = _COUNTS_RE.fullmatch(value)
    if m is None:
        raise ParseError(f"bad message counts {value[:40]!r}", status_hint=400)
    new, old = _count(m.group(1)), _count(m.group(2))
    if m.group(3) is None:
        return MessageCounts(new, old)
    urgent_new, urgent_old = _count(m.group(3)), _count(m.group(4))
    # Urgent counts above the totals (a server counting urgent messages apart from the
    # others) are not refused: the totals are read as at least the urgent counts.
    return MessageCounts(max(new, urgent_new), max(old, urgent_old), urgent_new, urgent_old)


def _count(digits: str) -> int:
    # More than ten significant digits is past 2^32-1 (and int() refuses very long ones).
    if len(digits.lstrip("0")) > 10:
        return MAX_COUNT
    return min(int(digits), MAX_COUNT)
