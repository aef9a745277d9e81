"""The parser corpus (tests/data/sip): messages written by us that exercise the
properties RFC 4475 lists, each with the outcome cases.toml expects."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from b2bua.sip.message import Request, Response
from b2bua.sip.parser import MessageParseError, parse_message

CORPUS = Path(__file__).parents[2] / "data" / "sip"
CASES: dict[str, dict[str, Any]] = tomllib.loads((CORPUS / "cases.toml").read_text())


def test_every_file_is_a_case() -> None:
    files = {p.relative_to(CORPUS).as_posix() for p in CORPUS.glob("*/*.sip")}
    listed = {case["file"] for case in CASES.values()}
    assert files == listed
    assert len(CASES) >= 60


def _parse(name: str) -> Request | Response:
    case = CASES[name]
    data = (CORPUS / case["file"]).read_bytes()
    return parse_message(data, stream=case.get("transport", "udp") == "tcp")


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c["parse"] == "error"))
def test_invalid_message_is_refused_with_the_expected_status(name: str) -> None:
    with pytest.raises(MessageParseError) as info:
        _parse(name)
    assert info.value.status_hint == CASES[name].get("status_hint"), info.value.reason
    if info.value.status_hint is not None:
        # A reply can be built only from a request whose top Via we understood.
        assert info.value.request is not None
        assert info.value.request.top_via.sent_by
    else:
        assert info.value.request is None


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c["parse"] == "ok"))
def test_valid_message_parses_with_the_expected_facts(name: str) -> None:
    message = _parse(name)
    expect: dict[str, Any] = CASES[name].get("expect", {})
    facts = _facts(message, expect)
    assert facts == expect
    # Formatting and parsing again gives the same message.
    again = parse_message(message.to_bytes(), stream=True)
    assert again.to_bytes() == message.to_bytes()
    assert _facts(again, expect) == expect


_FACTS: dict[str, Callable[[Request | Response], object]] = {
    "method": lambda m: _request(m).method,
    "request_uri": lambda m: _request(m).uri,
    "status": lambda m: _response(m).status,
    "reason": lambda m: _response(m).reason,
    "call_id": lambda m: m.call_id,
    "via_count": lambda m: len(m.vias),
    "top_via_branch": lambda m: m.top_via.branch,
    "top_via_host": lambda m: m.top_via.host,
    "top_via_port": lambda m: m.top_via.port,
    "top_via_transport": lambda m: m.top_via.transport,
    "cseq_number": lambda m: m.cseq.number,
    "cseq_method": lambda m: m.cseq.method,
    "from_tag": lambda m: m.from_.tag,
    "to_tag": lambda m: m.to.tag,
    "from_uri": lambda m: m.from_.uri_text,
    "to_uri": lambda m: m.to.uri_text,
    "from_display_name": lambda m: m.from_.display_name,
    "contact_count": lambda m: len(m.contacts),
    "max_forwards": lambda m: m.max_forwards,
    "body_length": lambda m: len(m.body),
}


def _request(message: Request | Response) -> Request:
    assert isinstance(message, Request)
    return message


def _response(message: Request | Response) -> Response:
    assert isinstance(message, Response)
    return message


def _facts(message: Request | Response, expect: dict[str, Any]) -> dict[str, Any]:
    """The facts named in ``expect``, read from the parsed message."""
    out: dict[str, Any] = {}
    for key, expected in expect.items():
        if key == "headers":
            out[key] = {name: message.headers.get_all(name) for name in expected}
        elif key in _FACTS:
            out[key] = _FACTS[key](message)
        else:
            pytest.fail(f"unknown fact {key!r} in cases.toml")
    return out
