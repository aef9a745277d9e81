"""The message-waiting body (RFC 3842 section 5): written byte for byte, and read back
leniently, as phones and other servers send it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from b2bua.sip.errors import ParseError
from b2bua.voicemail.mwi import (
    MAX_COUNT,
    MessageCounts,
    message_summary_body,
    parse_message_summary,
)

ACCOUNT = "sip:101@pbx.example.com"


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        (
            MessageCounts(0, 0),
            b"Messages-Waiting: no\r\n"
            b"Message-Account: sip:101@pbx.example.com\r\n"
            b"Voice-Message: 0/0\r\n",
        ),
        (
            MessageCounts(1, 0),
            b"Messages-Waiting: yes\r\n"
            b"Message-Account: sip:101@pbx.example.com\r\n"
            b"Voice-Message: 1/0\r\n",
        ),
        (
            # RFC 3842 section 4's example: two new, eight old, two of the old urgent.
            MessageCounts(2, 8, urgent_new=0, urgent_old=2),
            b"Messages-Waiting: yes\r\n"
            b"Message-Account: sip:101@pbx.example.com\r\n"
            b"Voice-Message: 2/8 (0/2)\r\n",
        ),
        (
            # Only old messages: the lamp is off.
            MessageCounts(0, 12, urgent_new=0, urgent_old=0),
            b"Messages-Waiting: no\r\n"
            b"Message-Account: sip:101@pbx.example.com\r\n"
            b"Voice-Message: 0/12 (0/0)\r\n",
        ),
    ],
)
def test_body_byte_for_byte(counts: MessageCounts, expected: bytes) -> None:
    assert message_summary_body(counts, ACCOUNT) == expected
    assert parse_message_summary(expected) == counts


def test_lamp_follows_new_messages_only() -> None:
    assert MessageCounts(3, 0).messages_waiting
    assert not MessageCounts(0, 3).messages_waiting
    assert MessageCounts(1, 1, 1, 0).has_urgent
    assert not MessageCounts(1, 1).has_urgent


@pytest.mark.parametrize(
    "kwargs",
    [
        {"new": -1, "old": 0},
        {"new": 0, "old": MAX_COUNT + 1},
        {"new": 1, "old": 0, "urgent_new": 1},  # one urgent count without the other
        {"new": 1, "old": 0, "urgent_new": 2, "urgent_old": 0},  # more urgent than new
        {"new": 1, "old": 0, "urgent_new": 0, "urgent_old": 1},
    ],
)
def test_impossible_counts_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each message says which rule
        MessageCounts(**kwargs)


@pytest.mark.parametrize("account", ["", "sip:a@b\r\nVoice-Message: 9/9"])
def test_an_account_that_would_break_the_body_is_refused(account: str) -> None:
    with pytest.raises(ValueError, match="Message-Account"):
        message_summary_body(MessageCounts(0, 0), account)


# -- bodies as they arrive


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # Asterisk / FreePBX
        (
            b"Messages-Waiting: yes\r\nMessage-Account: sip:*97@192.0.2.10\r\n"
            b"Voice-Message: 1/2 (0/0)\r\n",
            MessageCounts(1, 2, 0, 0),
        ),
        # FreeSWITCH ends with an empty line
        (
            b"Messages-Waiting: yes\r\nMessage-Account: sip:1000@example.com\r\n"
            b"Voice-Message: 3/0 (1/0)\r\n\r\n",
            MessageCounts(3, 0, 1, 0),
        ),
        # no Message-Account (a subscription to one account needs none, section 3.5)
        (b"Messages-Waiting: no\r\nVoice-Message: 0/4\r\n", MessageCounts(0, 4)),
        # LF line ends, and no line end at all after the last line
        (b"Messages-Waiting: yes\nVoice-Message: 5/6", MessageCounts(5, 6)),
        # CR only
        (b"Messages-Waiting: yes\rVoice-Message: 5/6\r", MessageCounts(5, 6)),
        # spaces everywhere the grammar allows SWS, and a tab
        (
            b"Messages-Waiting :  yes \r\nVoice-Message:\t2 / 8  ( 0 / 2 ) \r\n",
            MessageCounts(2, 8, 0, 2),
        ),
        # field names and the status in any case
        (b"MESSAGES-WAITING: YES\r\nvoice-message: 7/1\r\n", MessageCounts(7, 1)),
        # other message classes are ignored, the voice one kept
        (
            b"Messages-Waiting: yes\r\nFax-Message: 2/0\r\nVoice-Message: 0/1\r\n"
            b"Text-Message: 9/9 (1/1)\r\n",
            MessageCounts(0, 1),
        ),
        # opt-msg-headers after the blank line (RFC 3842 section 4's last example)
        (
            b"Messages-Waiting: yes\r\nMessage-Account: sip:alice@vmail.example.com\r\n"
            b"Voice-Message: 4/8 (1/2)\r\n\r\nTo: <alice@atlanta.example.com>\r\n"
            b"From: <bob@biloxi.example.com>\r\nSubject: carpool tomorrow?\r\n"
            b"Voice-Message: 99/99\r\n",
            MessageCounts(4, 8, 1, 2),
        ),
        # a folded summary line
        (b"Messages-Waiting: yes\r\nVoice-Message: 2/3\r\n  (1/0)\r\n", MessageCounts(2, 3, 1, 0)),
        # the status line only: the lamp is all it tells
        (b"Messages-Waiting: yes\r\n", MessageCounts(1, 0)),
        (b"Messages-Waiting: no\r\n", MessageCounts(0, 0)),
        # section 5.2: a count above 2^32-1 reads as 2^32-1
        (b"Messages-Waiting: yes\r\nVoice-Message: 99999999999/0\r\n", MessageCounts(MAX_COUNT, 0)),
        (
            b"Messages-Waiting: yes\r\nVoice-Message: 1/" + b"9" * 5000 + b"\r\n",
            MessageCounts(1, MAX_COUNT),
        ),
        # urgent counted apart from the totals by some servers: totals raised to match
        (b"Messages-Waiting: yes\r\nVoice-Message: 0/0 (2/1)\r\n", MessageCounts(2, 1, 2, 1)),
        # leading blank lines
        (b"\r\nMessages-Waiting: no\r\nVoice-Message: 0/0\r\n", MessageCounts(0, 0)),
    ],
)
def test_parse_bodies_as_sent(body: bytes, expected: MessageCounts) -> None:
    assert parse_message_summary(body) == expected


def test_parse_takes_text_too() -> None:
    assert parse_message_summary("Messages-Waiting: yes\nVoice-Message: 1/0\n") == MessageCounts(
        1, 0
    )


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\r\n\r\n",
        b"hello",
        b"Messages-Waiting yes\r\n",
        b"Messages-Waiting: maybe\r\n",
        b"Messages-Waiting: yes\r\nVoice-Message: 1\r\n",
        b"Messages-Waiting: yes\r\nVoice-Message: a/b\r\n",
        b"Messages-Waiting: yes\r\nVoice-Message: 1/2 (0\r\n",
        b"Messages-Waiting: yes\r\nVoice-Message: -1/2\r\n",
        b"Messages-Waiting: yes\r\n: 1/2\r\n",
        b"Message-Account: sip:a@b\r\n",  # neither status nor counts
        b"Messages-Waiting: yes\r\n" + b"x" * 20_000,
    ],
)
def test_parse_refuses_what_is_no_message_summary(body: bytes) -> None:
    with pytest.raises(ParseError) as caught:
        parse_message_summary(body)
    assert caught.value.status_hint == 400


_count = st.integers(min_value=0, max_value=MAX_COUNT)


@st.composite
def message_counts(draw: st.DrawFn) -> MessageCounts:
    new, old = draw(_count), draw(_count)
    if not draw(st.booleans()):
        return MessageCounts(new, old)
    return MessageCounts(
        new, old, draw(st.integers(min_value=0, max_value=new)), draw(st.integers(0, old))
    )


@settings(max_examples=200, deadline=None)
@given(counts=message_counts(), line_end=st.sampled_from(["\r\n", "\n"]))
def test_every_body_reads_back_as_written(counts: MessageCounts, line_end: str) -> None:
    body = message_summary_body(counts, ACCOUNT)
    assert body.count(b"\r\n") == 3
    assert body.endswith(b"\r\n")
    assert parse_message_summary(body.decode().replace("\r\n", line_end)) == counts
