"""Hypothesis: requests a dialog builds parse back with the dialog's Call-ID, tags, CSeq
and Route set; the CSeq rules hold over any sequence; the table agrees with a model."""

from __future__ import annotations

import string
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from b2bua.dialog import Dialog, DialogCheck, DialogError, DialogId, DialogState, DialogTable
from b2bua.sip.message import Request, Response, make_response
from b2bua.sip.parser import parse_message
from tests.unit.dialog.factories import LOCAL, OUR_CONTACT, lines, parse_request, parse_response

TOKEN_CHARS = string.ascii_letters + string.digits + "-.!%*_+`'~"

tokens = st.text(TOKEN_CHARS, min_size=1, max_size=16)
labels = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=8)
hosts = st.lists(labels, min_size=1, max_size=3).map(lambda ls: ".".join([*ls, "example"]))
ports = st.integers(1024, 65535)
call_ids = st.tuples(tokens, st.none() | hosts).map(
    lambda t: t[0] if t[1] is None else f"{t[0]}@{t[1]}"
)
branches = tokens.map(lambda t: "z9hG4bK" + t)
routes = st.tuples(hosts, st.none() | tokens).map(
    lambda t: f"<sip:{t[0]};lr>" if t[1] is None else f"<sip:{t[0]};lr;ftag={t[1]}>"
)
route_lists = st.lists(routes, max_size=4)
targets = st.tuples(labels, hosts, ports).map(lambda t: f"sip:{t[0]}@{t[1]}:{t[2]}")
sequenced_methods = st.sampled_from(
    ["BYE", "INFO", "INVITE", "UPDATE", "OPTIONS", "MESSAGE", "NOTIFY", "REFER", "PRACK"]
)


@dataclass(frozen=True)
class Scenario:
    is_uac: bool
    call_id: str
    our_tag: str
    their_tag: str
    record_route: list[str]  # as the message carries it
    joined: bool  # all Record-Route values in one comma-separated field
    remote_target: str
    cseq: int


scenarios = st.builds(
    Scenario,
    is_uac=st.booleans(),
    call_id=call_ids,
    our_tag=tokens,
    their_tag=tokens,
    record_route=route_lists,
    joined=st.booleans(),
    remote_target=targets,
    cseq=st.integers(0, 2**31 - 100),
)


def record_route_fields(s: Scenario) -> list[str]:
    if not s.record_route:
        return []
    if s.joined:
        return [f"Record-Route: {', '.join(s.record_route)}"]
    return [f"Record-Route: {rr}" for rr in s.record_route]


def make_dialog(s: Scenario) -> Dialog:
    """A dialog built from parsed messages: we sent the INVITE (UAC) or received it."""
    if s.is_uac:
        invite = parse_request(
            lines(
                "INVITE sip:peer@far.example SIP/2.0",
                "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-i",
                f"From: <sip:us@192.0.2.1>;tag={s.our_tag}",
                "To: <sip:peer@far.example>",
                f"Call-ID: {s.call_id}",
                f"CSeq: {s.cseq} INVITE",
                f"Contact: <{OUR_CONTACT}>",
            )
        )
        response = parse_response(
            lines(
                "SIP/2.0 200 OK",
                "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-i",
                *record_route_fields(s),
                f"From: <sip:us@192.0.2.1>;tag={s.our_tag}",
                f"To: <sip:peer@far.example>;tag={s.their_tag}",
                f"Call-ID: {s.call_id}",
                f"CSeq: {s.cseq} INVITE",
                f"Contact: <{s.remote_target}>",
            )
        )
        return Dialog.from_uac(invite, response)
    invite = parse_request(
        lines(
            "INVITE sip:us@192.0.2.1 SIP/2.0",
            "Via: SIP/2.0/UDP 198.51.100.7;branch=z9hG4bK-i",
            *record_route_fields(s),
            f"From: <sip:peer@far.example>;tag={s.their_tag}",
            "To: <sip:us@192.0.2.1>",
            f"Call-ID: {s.call_id}",
            f"CSeq: {s.cseq} INVITE",
            f"Contact: <{s.remote_target}>",
        )
    )
    return Dialog.from_uas(invite, s.our_tag, OUR_CONTACT, confirmed=True)


def round_trip(request: Request) -> Request:
    parsed = parse_message(request.to_bytes())
    assert isinstance(parsed, Request)
    return parsed


@settings(max_examples=150)
@given(scenarios, sequenced_methods, branches)
def test_built_requests_parse_back_with_the_dialog_state(
    s: Scenario, method: str, branch: str
) -> None:
    dialog = make_dialog(s)
    expected_routes = s.record_route[::-1] if s.is_uac else s.record_route
    assert dialog.route_set == expected_routes
    assert dialog.remote_target == s.remote_target
    before = dialog.local_cseq
    request = round_trip(dialog.new_request(method, branch=branch, local_address=LOCAL))
    assert request.method == method
    assert request.uri == s.remote_target
    assert request.call_id == s.call_id
    assert request.from_.tag == s.our_tag
    assert request.to.tag == s.their_tag
    assert request.cseq.number == (1 if before is None else before + 1) == dialog.local_cseq
    assert request.cseq.method == method
    assert request.headers.get_all("route") == expected_routes
    assert request.top_via.branch == branch
    assert request.max_forwards == 70
    # The peer's 200 to it names our dialog when it comes back.
    response = parse_message(make_response(request, 200).to_bytes())
    assert isinstance(response, Response)
    assert DialogId.of_response(response) == dialog.id


@settings(max_examples=100)
@given(scenarios, branches)
def test_ack_for_2xx_parses_back_with_the_invite_cseq(s: Scenario, branch: str) -> None:
    dialog = make_dialog(s)
    cseq_before = dialog.local_cseq
    ack = round_trip(dialog.ack_for_2xx(s.cseq, branch=branch, local_address=LOCAL))
    assert (ack.cseq.number, ack.cseq.method) == (s.cseq, "ACK")
    assert (ack.call_id, ack.from_.tag, ack.to.tag) == (s.call_id, s.our_tag, s.their_tag)
    assert ack.headers.get_all("route") == dialog.route_set
    assert dialog.local_cseq == cseq_before


@settings(max_examples=100)
@given(scenarios, route_lists)
def test_strict_first_hop_moves_the_target_to_the_last_route(s: Scenario, rest: list[str]) -> None:
    dialog = make_dialog(s)
    dialog.route_set = ["<sip:strict.example>", *rest]
    request = round_trip(dialog.new_request("BYE", branch="z9hG4bK-s", local_address=LOCAL))
    assert request.uri == "sip:strict.example"
    assert request.headers.get_all("route") == [*rest, f"<{s.remote_target}>"]


@settings(max_examples=100)
@given(
    scenarios,
    st.lists(st.sampled_from(["BYE", "INFO", "INVITE", "UPDATE", "ACK", "CANCEL"]), max_size=12),
)
def test_local_cseq_counts_requests_except_ack_and_cancel(s: Scenario, methods: list[str]) -> None:
    dialog = make_dialog(s)
    expected = dialog.local_cseq
    for i, method in enumerate(methods):
        if method in ("ACK", "CANCEL") and expected is None:
            continue
        request = dialog.new_request(method, branch=f"z9hG4bK-{i}", local_address=LOCAL)
        if method not in ("ACK", "CANCEL"):
            expected = 1 if expected is None else expected + 1
        assert request.cseq.number == expected
        assert dialog.local_cseq == expected


def peer_request(s: Scenario, method: str, cseq: int) -> Request:
    return parse_request(
        lines(
            f"{method} {OUR_CONTACT} SIP/2.0",
            f"Via: SIP/2.0/UDP 198.51.100.7;branch=z9hG4bK-{cseq}",
            f"From: <sip:peer@far.example>;tag={s.their_tag}",
            f"To: <sip:us@192.0.2.1>;tag={s.our_tag}",
            f"Call-ID: {s.call_id}",
            f"CSeq: {cseq} {method}",
            "Contact: <sip:peer@198.51.100.99>",
        )
    )


@settings(max_examples=100)
@given(
    scenarios,
    st.lists(st.tuples(st.sampled_from(["BYE", "INFO", "ACK", "UPDATE"]), st.integers(0, 40))),
)
def test_remote_cseq_rejects_exactly_the_lower_numbers(
    s: Scenario, incoming: list[tuple[str, int]]
) -> None:
    dialog = make_dialog(s)
    highest = dialog.remote_cseq
    for method, offset in incoming:
        number = s.cseq + offset - 20 if s.cseq >= 20 else offset
        request = peer_request(s, method, number)
        if method == "ACK":
            assert dialog.on_request(request) is DialogCheck.ACK
        elif highest is not None and number < highest:
            with pytest.raises(DialogError) as caught:
                dialog.on_request(request)
            assert caught.value.status_hint == 500
        else:
            assert dialog.on_request(request) in (
                DialogCheck.ACCEPTED,
                DialogCheck.TARGET_REFRESHED,
            )
            highest = number
        assert dialog.remote_cseq == highest


# -- the table against a model

ops = st.lists(
    st.tuples(
        st.sampled_from(["add", "remove", "drop_early", "confirm"]),
        st.integers(0, 1),  # which INVITE (Call-ID)
        st.integers(0, 3),  # which fork (To tag)
    ),
    max_size=30,
)


def fork(call: int, tag: int) -> Dialog:
    return Dialog(
        call_id=f"call-{call}",
        local_tag="ours",
        remote_tag=f"fork-{tag}",
        local_uri="<sip:us@192.0.2.1>",
        remote_uri="<sip:peer@far.example>",
        local_cseq=1,
        remote_cseq=None,
        remote_target=f"sip:gw{tag}@far.example",
        is_uac=True,
    )


@settings(max_examples=200)
@given(ops)
def test_table_agrees_with_a_model(operations: list[tuple[str, int, int]]) -> None:
    table = DialogTable()
    model: dict[DialogId, Dialog] = {}
    for op, call, tag in operations:
        dialog_id = DialogId(f"call-{call}", "ours", f"fork-{tag}")
        if op == "add" and dialog_id not in model:
            model[dialog_id] = fork(call, tag)
            table.add(model[dialog_id])
        elif op == "remove":
            assert table.remove(dialog_id) is model.pop(dialog_id, None)
        elif op == "confirm" and dialog_id in model:
            model[dialog_id].state = DialogState.CONFIRMED
        elif op == "drop_early":
            keep = dialog_id if dialog_id in model else None
            expected = [
                d
                for i, d in model.items()
                if i.call_id == f"call-{call}" and d.is_early and i != keep
            ]
            assert table.drop_early(f"call-{call}", "ours", keep=keep) == expected
            for dialog in expected:
                assert dialog.is_terminated
                del model[dialog.id]
        assert len(table) == len(model)
        assert set(d.id for d in table) == set(model)
        for i, d in model.items():
            assert table.get(i) is d
            assert d in table.forks(i.call_id, "ours")
        for c in (0, 1):
            assert table.forks(f"call-{c}", "ours") == [
                d for i, d in model.items() if i.call_id == f"call-{c}"
            ]
