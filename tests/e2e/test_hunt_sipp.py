"""Hunt groups through the real switch, with SIPp (and baresip) peers on 127.0.0.1.

Every member is a real registered phone: a SIPp callee (tests.support.sipp_calls.Callee,
call_uas_register.xml plus a behaviour run for each INVITE: answer, ring forever, busy,
answer at once), or a baresip account. A member "on a call" really is: another
extension calls it through the switch and it answers (call_uac_talk.xml, held for -d
ms), so the switch's own book says it is talking. Customers call the groups' public
numbers without credentials (call_uac_public_basic.xml,
hunt_uac_public_expect_status.xml).

What each test checks comes from three sources that must agree: the SIP messages each
SIPp logged (-trace_msg, with SIPp's timestamps: who got an INVITE, a CANCEL, when), the
switch's JSON log events (member_rung, hunt_overflow, hunt_trace) and its call records
(GET /calls, with the hunt trace).

The two seed configs (configs/flower-shop.toml, configs/hunt-group.toml) are loaded as
they are: the harness gives listen addresses, data_dir and the status listen on the
command line, the RTP range moves to free ports, and only the timers named in a test are
scaled down (each replacement asserts the text it replaces, so an edit of the seed file
breaks the test loudly). The other tests build a small config of their own.

baresip (the last test): one process registers four lines of the flower shop (102 to
105), Iris's line 102 answering by itself and the others manual; several accounts in
one process work (each registers its own Contact), so no second process is needed.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import pytest

from tests.support.audio import RtpCapture, read_wav_samples, tone_power, write_tone_wav_ulaw
from tests.support.phones import (
    BaresipAccount,
    BaresipFactory,
    baresip_factory,
    free_rtp_range,
    write_tone_wav,
)
from tests.support.processes import (
    RunningSwitch,
    SwitchFactory,
    assert_nothing_left,
    free_udp_pair,
    log_events,
    wait_until,
)
from tests.support.sipp_calls import (
    BackgroundCall,
    Callee,
    SippMessage,
    call,
    password,
    received,
    report,
    sipp_messages,
)

__all__ = ["baresip_factory"]

pytestmark = pytest.mark.e2e

CONFIGS: Final = Path(__file__).resolve().parents[2] / "configs"
FLOWER_SHOP: Final = CONFIGS / "flower-shop.toml"
HUNT_GROUP: Final = CONFIGS / "hunt-group.toml"
SHOP_DID: Final = "5550200"
SALES_DID: Final = "5550300"
TEAM_DID: Final = "5550400"
TONE_WAV: Final = "caller_tone.wav"  # the fixed name call_uac_public_basic.xml plays
CALLER_HZ: Final = 1000
CALLEE_HZ: Final = 600
#: A tone is "there" when this share of the audio's power lies at its frequency (as in
#: test_call_phones.py).
TONE_SHARE: Final = 0.3
#: The issue's bound on when a staggered member's INVITE arrives.
OFFSET_TOLERANCE: Final = 0.05


# -- configs


def replaced(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"expected {old!r} once in the seed config"
    return text.replace(old, new)


def seed_config(path: Path, *replacements: tuple[str, str]) -> str:
    """A seed config as it is, its RTP range moved to free ports (outside the kernel's
    ephemeral range), plus ``replacements`` (old, new); listen, data_dir and the status
    listen come from the harness's command line."""
    text = path.read_text()
    low, high = free_rtp_range(size=100)
    text, count = re.subn(
        r"^rtp_port_min = \d+\nrtp_port_max = \d+$",
        f"rtp_port_min = {low}\nrtp_port_max = {high}",
        text,
        flags=re.MULTILINE,
    )
    assert count == 1, f"no RTP range in {path}"
    for old, new in replacements:
        text = replaced(text, old, new)
    return text


def shop_secret(number: str) -> str:
    return f"change-me-{number}"  # configs/flower-shop.toml and configs/hunt-group.toml


TEAM: Final = ("201", "202", "203")
OUTSIDER: Final = "209"  # an extension in no group: it calls members


def team_config(group: str) -> str:
    """Extensions 201-203 and 209 (passwords ``secret-N``) and one group ``team`` on the
    public number 5550400, whose other keys are ``group`` (TOML lines)."""
    low, high = free_rtp_range(size=100)
    lines = [
        '[server]\nlisten = ["udp:127.0.0.1:0"]',
        f"[media]\nrtp_port_min = {low}\nrtp_port_max = {high}",
    ]
    lines += [f'[extensions."{n}"]\npassword = "{password(n)}"' for n in (*TEAM, OUTSIDER)]
    lines.append(f'[groups.team]\npublic_numbers = ["{TEAM_DID}"]\n{group.strip()}')
    return "\n\n".join(lines) + "\n"


# -- peers


@contextlib.contextmanager
def phones(
    switch: RunningSwitch,
    directory: Path,
    behaviours: Mapping[str, str],
    secret: Mapping[str, str] | None = None,
) -> Iterator[dict[str, Callee]]:
    """One-call SIPp callees by number (``number -> behaviour``), each stopped by PID at
    the end (those expected to get nothing never end by themselves)."""
    started: dict[str, Callee] = {}
    try:
        for number, behaviour in behaviours.items():
            key = None if secret is None else secret[number]
            started[number] = Callee.start(switch, number, behaviour, directory, secret=key)
        yield started
    finally:
        for callee in started.values():
            callee.stop()


@contextlib.contextmanager
def talking(
    switch: RunningSwitch,
    directory: Path,
    caller: str,
    callee: str,
    *,
    hold: float,
    secret: str | None = None,
    group: str | None = None,
) -> Iterator[BackgroundCall]:
    """``caller`` calls ``callee`` through the switch (call_uac_talk.xml) and holds the
    call ``hold`` s; returns once the call is answered (and, given ``group``, the group
    sees ``callee`` talking). The callee must already run call_uas_answer.xml."""
    talk = BackgroundCall.start(
        switch, "call_uac_talk.xml", directory, "-d", str(round(hold * 1000)),
        called=callee, caller=caller, secret=secret, name=f"talk-{caller}-{callee}",
    )  # fmt: skip
    with talk:

        def up() -> bool:
            assert talk.process.poll() is None, report(directory)
            live = switch.status()["calls"]["list"]
            return any(c["answered_by"] == callee for c in live)

        wait_until(up, 10, f"{caller}'s call to {callee} answered")
        if group is not None:
            wait_until(
                lambda: member_state(switch, group, callee) == "talking",
                5,
                f"{callee} talking in the book",
            )
        yield talk


def member_state(switch: RunningSwitch, group: str, number: str) -> str:
    members: list[dict[str, Any]] = switch.status()["groups"][group]["members"]
    return next(str(m["state"]) for m in members if m["extension"] == number)


def expect(status: int) -> tuple[str, ...]:
    return ("-key", "expected_status", str(status))


def customer(
    switch: RunningSwitch, directory: Path, number: str, *, seconds: float, name: str = "customer"
) -> None:
    """A customer calls public ``number``, is answered, plays a tone ``seconds``, hangs up."""
    result = call(
        switch, "call_uac_public_basic.xml", directory, "-d", str(round(seconds * 1000)),
        called=number, caller=None, name=name,
    )  # fmt: skip
    assert result.returncode == 0, report(directory, result)


def refused_customer(
    switch: RunningSwitch, directory: Path, number: str, status: int, *, name: str = "customer"
) -> None:
    """A customer calls public ``number`` and must be refused with ``status``."""
    result = call(
        switch, "hunt_uac_public_expect_status.xml", directory, *expect(status),
        called=number, caller=None, name=name,
    )  # fmt: skip
    assert result.returncode == 0, report(directory, result)


# -- what happened


def messages(directory: Path, name: str) -> list[SippMessage]:
    return sipp_messages(directory / f"{name}-messages.log")


def invites(callee: Callee) -> list[SippMessage]:
    """The INVITEs a callee got (distinct transactions: retransmissions left out)."""
    seen: set[str] = set()
    out = []
    for message in received(callee.messages_log, "INVITE"):
        branch = re.search(r"branch=([^;\s]+)", message.text)
        key = branch.group(1) if branch else message.text
        if key not in seen:
            seen.add(key)
            out.append(message)
    return out


def exchange(callee: Callee) -> list[str | int | None]:
    """What a callee got and answered outside its registration: request methods and
    response codes, in order (``["INVITE", 180, "CANCEL", 200, 487, "ACK"]``)."""
    return [
        m.method or m.status
        for m in sipp_messages(callee.messages_log)
        if m.cseq_method != "REGISTER"
    ]


def to_tag(message: SippMessage) -> str | None:
    found = re.search(r"^(?:To|t):.*;tag=([^;\s]+)", message.text, re.MULTILINE | re.IGNORECASE)
    return found.group(1) if found else None


def first_at(found: Sequence[SippMessage], what: str) -> float:
    assert found, f"no {what}"
    return found[0].at


def records(switch: RunningSwitch, count: int) -> list[dict[str, Any]]:
    wait_until(lambda: len(switch.calls()) >= count, 10, f"{count} call records")
    found = switch.calls()
    assert len(found) == count, found
    return found


def record_to(switch: RunningSwitch, number: str, count: int) -> dict[str, Any]:
    """The one record of a call to ``number``, among ``count`` records."""
    [record] = [r for r in records(switch, count) if r["callee"] == number]
    return record


def trace(record: Mapping[str, Any]) -> list[tuple[str, str, str | None]]:
    """(member, outcome, reason) of the record's only hunt, in order."""
    [hunt] = record["hunts"]
    return [(m["member"], m["outcome"], m.get("reason")) for m in hunt["members"]]


def times(record: Mapping[str, Any], member: str, outcome: str) -> list[float]:
    [hunt] = record["hunts"]
    return [
        float(m["t"]) for m in hunt["members"] if (m["member"], m["outcome"]) == (member, outcome)
    ]


def rung(switch: RunningSwitch, call_id: str) -> list[str]:
    """The extensions the switch's member_rung events say it rang for ``call_id``."""
    return [
        str(e["extension"]) for e in log_events(switch, "member_rung") if e["call_id"] == call_id
    ]


def logged_trace(switch: RunningSwitch, call_id: str) -> list[Any]:
    [event] = [e for e in log_events(switch, "hunt_trace") if e["call_id"] == call_id]
    hunts: list[Any] = event["hunts"]
    return hunts


# -- the flower shop (configs/flower-shop.toml)


def test_flower_shop_scenario_1_mary_talking_iris_answers(
    switch_factory: SwitchFactory, tmp_path: Path
) -> None:
    """Mary (line 101) is on a call through the switch: the customer's call to the shop
    skips her line without an INVITE, and Iris (102) answers."""
    switch = switch_factory(seed_config(FLOWER_SHOP), ("udp",))
    write_tone_wav_ulaw(tmp_path / TONE_WAV, CALLER_HZ, 1.0)
    lines = {"101": "call_uas_answer.xml", "102": "call_uas_answer.xml"}
    with phones(switch, tmp_path, lines, {n: shop_secret(n) for n in lines}) as shop:
        # Kate (103) calls Mary; the call stays up while the customer calls.
        with talking(
            switch, tmp_path, "103", "101", hold=4, secret=shop_secret("103"), group="shop"
        ) as talk:
            customer(switch, tmp_path, SHOP_DID, seconds=1)
            assert talk.process.poll() is None, "Mary's call ended before the customer's"
            assert talk.finish() == 0, report(tmp_path)
        assert shop["101"].finish() == 0, report(tmp_path)
        assert shop["102"].finish() == 0, report(tmp_path)

    assert len(invites(shop["101"])) == 1, "Mary's line got an INVITE from the hunt"
    assert len(invites(shop["102"])) == 1
    record = record_to(switch, SHOP_DID, 2)
    assert (record["caller"], record["answered_by"]) == ("customer", "102")
    assert (record["disposition"], record["caller_status"]) == ("answered", 200)
    assert trace(record) == [
        ("101", "skipped", "talking"),
        ("102", "rung", None),
        ("102", "alerting", None),
        ("102", "answered", None),
    ]
    [hunt] = record["hunts"]
    assert (hunt["group"], hunt["strategy"], hunt["result"]) == ("shop", "linear", "connected")
    assert hunt["connected"] == "102"
    assert hunt["overflow"] is None
    assert logged_trace(switch, record["call_id"]) == record["hunts"]
    assert rung(switch, record["call_id"]) == ["102"]
    [started] = [e for e in log_events(switch, "call_started") if e.get("group")]
    assert (started["group"], started["strategy"]) == ("shop", "linear")
    assert started["seed"] == hunt["seed"]
    assert_nothing_left(switch)


def test_flower_shop_scenario_2_lines_busy_line_5_unanswered_goes_to_marys_mailbox(
    switch_factory: SwitchFactory, tmp_path: Path
) -> None:
    """Lines 101 to 104 are on calls, line 105 rings its ring time (scaled from 15 s to
    2 s) and is cancelled; the caller goes to the FIRST line's mailbox: the switch answers
    (the customer hangs up during the greeting here; tests/e2e/test_voicemail.py leaves
    the message and finds it in mailbox 101)."""
    switch = switch_factory(
        seed_config(FLOWER_SHOP, ("ring_time = 15\n", "ring_time = 2\n")), ("udp",)
    )
    write_tone_wav_ulaw(tmp_path / TONE_WAV, CALLER_HZ, 1.0)
    behaviours = {
        "101": "call_uas_answer.xml",  # answers Kate's call
        "102": "call_uas_answer.xml",  # answers Line 4's call
        "103": "call_uas_ring_forever.xml",  # registered, must get nothing
        "104": "call_uas_ring_forever.xml",  # registered, must get nothing
        "105": "call_uas_ring_forever.xml",  # rings, then CANCEL, 487
    }
    lines = list(behaviours)
    with phones(switch, tmp_path, behaviours, {n: shop_secret(n) for n in lines}) as shop:
        with (
            talking(switch, tmp_path, "103", "101", hold=4.5, secret=shop_secret("103")) as one,
            talking(switch, tmp_path, "104", "102", hold=4.5, secret=shop_secret("104")) as two,
        ):
            wait_until(
                lambda: all(member_state(switch, "shop", n) == "talking" for n in lines[:4]),
                5,
                "lines 101 to 104 talking",
            )
            started = time.monotonic()
            customer(switch, tmp_path, SHOP_DID, seconds=1)
            elapsed = time.monotonic() - started
            assert one.process.poll() is None
            assert two.process.poll() is None
            assert shop["105"].finish() == 0, report(tmp_path)  # CANCEL, 200, 487, ACK
            assert one.finish() == 0, report(tmp_path)
            assert two.finish() == 0, report(tmp_path)
        assert shop["101"].finish() == 0, report(tmp_path)
        assert shop["102"].finish() == 0, report(tmp_path)

    assert 2.8 < elapsed < 7, elapsed  # line 5's ring time (2 s), then 1 s in voicemail
    assert [len(invites(shop[n])) for n in ("101", "102", "103", "104", "105")] == [1, 1, 0, 0, 1]
    assert exchange(shop["105"]) == ["INVITE", 180, "CANCEL", 200, 487, "ACK"]
    record = record_to(switch, SHOP_DID, 3)
    assert (record["caller_status"], record["answered_by"], record["disposition"]) == (
        200,
        "voicemail:101",
        "voicemail",
    )
    [hunt] = record["hunts"]
    assert (hunt["result"], hunt["overflow"], hunt["connected"]) == (
        "overflowed",
        "no_answer",
        None,
    )
    assert trace(record) == [
        ("101", "skipped", "talking"),
        ("102", "skipped", "talking"),
        ("103", "skipped", "talking"),
        ("104", "skipped", "talking"),
        ("105", "rung", None),
        ("105", "alerting", None),
        ("105", "cancelled", "ring time over"),
    ]
    assert 1.9 < times(record, "105", "cancelled")[0] < 2.5
    [overflow] = log_events(switch, "hunt_overflow")
    assert (overflow["group"], overflow["reason"], overflow["destination"]) == (
        "shop",
        "no_answer",
        "voicemail:101",
    )
    assert rung(switch, record["call_id"]) == ["105"]
    assert_nothing_left(switch)


# -- the staggered group (configs/hunt-group.toml, timers scaled down)

STAGGER: Final = {"002": 0.0, "006": 0.6, "007": 1.0}
GROUP_TIMEOUT: Final = 3.0


def test_staggered_group_nobody_answers_invites_on_time_then_all_cancelled(
    switch_factory: SwitchFactory, tmp_path: Path
) -> None:
    """002 at 0 s, 006 at 0.6 s, 007 at 1.0 s (each INVITE within 50 ms of its offset
    from the caller's INVITE), all ringing until the 3 s group timeout, then every leg is
    CANCELled and the caller gets 480 (destination hangup)."""
    members = (
        '  { extension = "002", start_delay = 0 },\n'
        '  { extension = "006", start_delay = 6 },\n'
        '  { extension = "007", start_delay = 10 },\n'
    )
    scaled = (
        '  { extension = "002", start_delay = 0 },\n'
        '  { extension = "006", start_delay = 0.6 },\n'
        '  { extension = "007", start_delay = 1.0 },\n'
    )
    config = seed_config(
        HUNT_GROUP,
        (members, scaled),
        ("group_timeout = 30\n", f"group_timeout = {GROUP_TIMEOUT}\n"),
    )
    switch = switch_factory(config, ("udp",))
    behaviours = dict.fromkeys(STAGGER, "call_uas_ring_forever.xml")
    with phones(switch, tmp_path, behaviours, {n: shop_secret(n) for n in STAGGER}) as sales:
        refused_customer(switch, tmp_path, SALES_DID, 480)
        for number in STAGGER:
            assert sales[number].finish() == 0, report(tmp_path)  # CANCEL, 200, 487, ACK

    caller = messages(tmp_path, "customer")
    t0 = first_at([m for m in caller if m.sent and m.method == "INVITE"], "caller INVITE")
    final = first_at([m for m in caller if m.status == 480], "480 to the caller")
    offsets = {n: first_at(invites(sales[n]), f"INVITE to {n}") - t0 for n in STAGGER}
    cancels = {
        n: first_at(received(sales[n].messages_log, "CANCEL"), "CANCEL") - t0 for n in STAGGER
    }
    for number, planned in STAGGER.items():
        assert abs(offsets[number] - planned) <= OFFSET_TOLERANCE, offsets
        assert exchange(sales[number]) == ["INVITE", 180, "CANCEL", 200, 487, "ACK"]
        assert 2.9 <= cancels[number] <= 4.0, cancels
    assert 2.9 <= final - t0 <= 4.0, final - t0

    record = record_to(switch, SALES_DID, 1)
    assert (record["caller"], record["caller_status"], record["answered_by"]) == (
        "customer",
        480,
        None,
    )
    [hunt] = record["hunts"]
    assert (hunt["strategy"], hunt["result"], hunt["overflow"]) == (
        "staggered",
        "overflowed",
        "timeout",
    )
    got = trace(record)
    assert [e for e in got if e[1] == "rung"] == [(n, "rung", None) for n in STAGGER]
    for number, planned in STAGGER.items():  # the switch's own view agrees
        assert abs(times(record, number, "rung")[0] - planned) <= OFFSET_TOLERANCE
    assert sorted(e for e in got if e[1] == "cancelled") == [
        (n, "cancelled", "group timeout") for n in STAGGER
    ]
    [overflow] = log_events(switch, "hunt_overflow")
    assert (overflow["reason"], overflow["destination"]) == ("timeout", "hangup 480")
    assert_nothing_left(switch)


# -- strategies on a small team


def test_memory_hunt_adds_one_member_per_wave_and_keeps_the_others_ringing(
    switch_factory: SwitchFactory, tmp_path: Path
) -> None:
    """Progressive: 201 at 0 s, 202 joins at 0.5 s, 203 at 1.0 s (201 and 202 keep
    ringing: one INVITE each); 203 answers, the other two are CANCELled."""
    group = """
strategy = "memory_hunt"
members = ["201", "202", "203"]
wave_interval = 0.5
group_timeout = 10
"""
    switch = switch_factory(team_config(group), ("udp",))
    write_tone_wav_ulaw(tmp_path / TONE_WAV, CALLER_HZ, 1.0)
    behaviours = {
        "201": "call_uas_ring_forever.xml",
        "202": "call_uas_ring_forever.xml",
        "203": "call_uas_answer.xml",
    }
    with phones(switch, tmp_path, behaviours) as team:
        customer(switch, tmp_path, TEAM_DID, seconds=0.5)
        for number in TEAM:
            assert team[number].finish() == 0, report(tmp_path)

    caller = messages(tmp_path, "customer")
    t0 = first_at([m for m in caller if m.sent and m.method == "INVITE"], "caller INVITE")
    offsets = [first_at(invites(team[n]), f"INVITE to {n}") - t0 for n in TEAM]
    assert [len(invites(team[n])) for n in TEAM] == [1, 1, 1]
    assert offsets == sorted(offsets)
    for offset, planned in zip(offsets, (0.0, 0.5, 1.0), strict=True):
        assert abs(offset - planned) < 0.2, offsets
    for number in ("201", "202"):  # still ringing when 203 answered, then cancelled
        cancel = first_at(received(team[number].messages_log, "CANCEL"), f"CANCEL to {number}")
        assert offsets[2] <= cancel - t0 < offsets[2] + 1.0

    record = record_to(switch, TEAM_DID, 1)
    assert record["answered_by"] == "203"
    [hunt] = record["hunts"]
    assert (hunt["strategy"], hunt["result"], hunt["connected"]) == (
        "memory_hunt",
        "connected",
        "203",
    )
    got = trace(record)
    assert [e[0] for e in got if e[1] == "rung"] == ["201", "202", "203"]
    assert sorted(e for e in got if e[1] == "cancelled") == [
        ("201", "cancelled", "answered elsewhere"),
        ("202", "cancelled", "answered elsewhere"),
    ]
    assert rung(switch, record["call_id"]) == ["201", "202", "203"]
    assert_nothing_left(switch)


def test_first_available_skips_a_member_on_a_call_without_an_invite(
    switch_factory: SwitchFactory, tmp_path: Path
) -> None:
    """201 is on a call through the switch (209 called it): the hunt passes it over
    without an INVITE and offers the call to 202, who answers; 203 gets nothing."""
    group = """
strategy = "first_available"
members = ["201", "202", "203"]
ring_time = 5
"""
    switch = switch_factory(team_config(group), ("udp",))
    write_tone_wav_ulaw(tmp_path / TONE_WAV, CALLER_HZ, 1.0)
    behaviours = {
        "201": "call_uas_answer.xml",  # answers 209's call
        "202": "call_uas_answer.xml",  # answers the customer
        "203": "call_uas_ring_forever.xml",  # must get nothing
    }
    with phones(switch, tmp_path, behaviours) as team:
        with talking(switch, tmp_path, OUTSIDER, "201", hold=3, group="team") as talk:
            customer(switch, tmp_path, TEAM_DID, seconds=0.5)
            assert talk.process.poll() is None, "201's call ended before the customer's"
            assert talk.finish() == 0, report(tmp_path)
        assert team["201"].finish() == 0, report(tmp_path)
        assert team["202"].finish() == 0, report(tmp_path)

    assert [len(invites(team[n])) for n in TEAM] == [1, 1, 0]
    record = record_to(switch, TEAM_DID, 2)
    assert record["answered_by"] == "202"
    assert trace(record) == [
        ("201", "skipped", "talking"),
        ("202", "rung", None),
        ("202", "alerting", None),
        ("202", "answered", None),
    ]
    assert rung(switch, record["call_id"]) == ["202"]
    assert_nothing_left(switch)


def test_ring_all_two_members_answer_together_only_one_is_bridged(
    switch_factory: SwitchFactory, tmp_path: Path
) -> None:
    """Both answer 200 the moment their INVITE arrives: the caller gets one 200; the
    other member's 200 is ACKed and then BYEd by the switch straight away."""
    group = """
strategy = "ring_all"
members = ["201", "202"]
group_timeout = 10
"""
    switch = switch_factory(team_config(group), ("udp",))
    write_tone_wav_ulaw(tmp_path / TONE_WAV, CALLER_HZ, 1.0)
    behaviours = dict.fromkeys(("201", "202"), "hunt_uas_answer_at_once.xml")
    with phones(switch, tmp_path, behaviours) as team:
        customer(switch, tmp_path, TEAM_DID, seconds=1.5)
        for number in ("201", "202"):
            assert team[number].finish() == 0, report(tmp_path)  # ACK, then BYE, 200

    caller = messages(tmp_path, "customer")
    answers = [m for m in caller if not m.sent and m.status == 200 and m.cseq_method == "INVITE"]
    assert len({to_tag(m) for m in answers}) == 1, answers  # one answer (retransmitted or not)
    record = record_to(switch, TEAM_DID, 1)
    winner = record["answered_by"]
    assert winner in ("201", "202")
    loser = "202" if winner == "201" else "201"
    for number in ("201", "202"):
        # No CANCEL: these members send no provisional response, and RFC 3261 section 9.1
        # forbids a CANCEL before one (hunt_uas_answer_at_once.xml would take it).
        got = exchange(team[number])
        assert [step for step in got if isinstance(step, str)] == ["INVITE", "ACK", "BYE"], got
    loser_bye = first_at(received(team[loser].messages_log, "BYE"), "BYE to the loser")
    winner_bye = first_at(received(team[winner].messages_log, "BYE"), "BYE to the winner")
    caller_bye = first_at([m for m in caller if m.sent and m.method == "BYE"], "caller's BYE")
    assert loser_bye < caller_bye - 1.0  # ended by the switch, not by the caller
    assert abs(winner_bye - caller_bye) < 0.5  # the caller's hang-up, relayed
    [hunt] = record["hunts"]
    assert (hunt["result"], hunt["connected"]) == ("connected", winner)
    outcomes = {(m, o) for m, o, _ in trace(record)}
    assert (winner, "answered") in outcomes
    assert (loser, "answered") not in outcomes
    assert (loser, "answered late") in outcomes
    assert rung(switch, record["call_id"]) == ["201", "202"]
    assert_nothing_left(switch)


def test_channel_limit_second_caller_gets_486(
    switch_factory: SwitchFactory, tmp_path: Path
) -> None:
    """channel_limit = 1: while a first customer holds the group's channel, a second gets
    486 (over_limit's default) and no member is offered the call, though 202 is free."""
    group = """
strategy = "linear"
members = ["201", "202"]
channel_limit = 1
"""
    switch = switch_factory(team_config(group), ("udp",))
    write_tone_wav_ulaw(tmp_path / TONE_WAV, CALLER_HZ, 1.0)
    behaviours = {"201": "call_uas_answer.xml", "202": "call_uas_ring_forever.xml"}
    with phones(switch, tmp_path, behaviours) as team:
        with BackgroundCall.start(
            switch, "call_uac_public_basic.xml", tmp_path, "-d", "3000",
            called=TEAM_DID, caller=None, name="first",
        ) as first:  # fmt: skip
            wait_until(
                lambda: any(c["answered_by"] == "201" for c in switch.status()["calls"]["list"]),
                10,
                "the first customer answered",
            )
            assert switch.status()["groups"]["team"]["channels"] == 1
            refused_customer(switch, tmp_path, TEAM_DID, 486, name="second")
            assert first.process.poll() is None, "the first call ended before the second"
            assert first.finish() == 0, report(tmp_path)
        assert team["201"].finish() == 0, report(tmp_path)

    assert [len(invites(team[n])) for n in ("201", "202")] == [1, 0]
    first_record, second_record = records(switch, 2)
    assert first_record["answered_by"] == "201"
    assert (second_record["caller_status"], second_record["disposition"]) == (486, "busy")
    [hunt] = second_record["hunts"]
    assert (hunt["result"], hunt["overflow"]) == ("overflowed", "over_limit")
    assert hunt["members"] == []
    assert rung(switch, second_record["call_id"]) == []
    [overflow] = log_events(switch, "hunt_overflow")
    assert (overflow["reason"], overflow["destination"]) == ("over_limit", "hangup 486")
    assert_nothing_left(switch)


def test_a_member_answering_486_moves_a_linear_hunt_on(
    switch_factory: SwitchFactory, tmp_path: Path
) -> None:
    """201 answers 486 (call_uas_busy.xml): the hunt moves on to 202 at once (not after
    201's ring time), who answers."""
    group = """
strategy = "linear"
members = ["201", "202"]
ring_time = 5
"""
    switch = switch_factory(team_config(group), ("udp",))
    write_tone_wav_ulaw(tmp_path / TONE_WAV, CALLER_HZ, 1.0)
    behaviours = {"201": "call_uas_busy.xml", "202": "call_uas_answer.xml"}
    with phones(switch, tmp_path, behaviours) as team:
        customer(switch, tmp_path, TEAM_DID, seconds=0.5)
        for number in ("201", "202"):
            assert team[number].finish() == 0, report(tmp_path)

    assert [len(invites(team[n])) for n in ("201", "202")] == [1, 1]
    record = record_to(switch, TEAM_DID, 1)
    assert record["answered_by"] == "202"
    [hunt] = record["hunts"]
    failed = [m for m in hunt["members"] if m["outcome"] == "failed"]
    assert [(m["member"], m["status"]) for m in failed] == [("201", 486)]
    assert [(m, o) for m, o, _ in trace(record)] == [
        ("201", "rung"),
        ("201", "failed"),
        ("202", "rung"),
        ("202", "alerting"),
        ("202", "answered"),
    ]
    assert times(record, "202", "rung")[0] < 1.0  # at once, not after 201's ring time
    assert_nothing_left(switch)


# -- baresip: four shop lines in one process


@pytest.mark.requires_tool("sipp", "baresip", "tcpdump")
def test_flower_shop_scenario_1_with_iris_on_baresip_hearing_the_customer(
    switch_factory: SwitchFactory, baresip_factory: BaresipFactory, tmp_path: Path
) -> None:
    """Lines 102-105 are accounts of one baresip (Iris's 102 answers by itself); Mary's
    line 101 is a SIPp phone on a call. The customer's tone reaches Iris and hers the
    customer."""
    switch = switch_factory(seed_config(FLOWER_SHOP), ("udp",))
    write_tone_wav_ulaw(tmp_path / TONE_WAV, CALLER_HZ, 1.0)
    accounts = [
        BaresipAccount(
            n, switch.udp, password=shop_secret(n), answermode="auto" if n == "102" else "manual"
        )
        for n in ("102", "103", "104", "105")
    ]
    phone = baresip_factory(
        accounts,
        audio_source=write_tone_wav(tmp_path / "iris.wav", frequency=CALLEE_HZ, seconds=20),
    )
    phone.wait_registered(10)
    with phones(
        switch, tmp_path, {"101": "call_uas_answer.xml"}, {"101": shop_secret("101")}
    ) as mary:
        # Kate (103, on another phone) calls Mary.
        with talking(
            switch, tmp_path, "103", "101", hold=5.5, secret=shop_secret("103"), group="shop"
        ) as talk:
            since = phone.mark()
            customer_media = free_udp_pair()
            with RtpCapture(tmp_path, [customer_media]) as capture:
                result = call(
                    switch, "call_uac_public_basic.xml", tmp_path, "-d", "3000",
                    "-mp", str(customer_media), called=SHOP_DID, caller=None, name="customer",
                )  # fmt: skip
            assert result.returncode == 0, report(tmp_path, result) + phone.output()
            established = phone.wait_event("CALL_ESTABLISHED", 5, since=since)
            phone.wait_event("CALL_CLOSED", 10, since=since)
            assert talk.process.poll() is None, "Mary's call ended before the customer's"
            assert talk.finish() == 0, report(tmp_path)
        assert mary["101"].finish() == 0, report(tmp_path)

    # One call, on Iris's line: lines 103-105 of the same baresip were never offered it.
    call_events = [e for e in phone.events[since:] if "accountaor" in e]
    assert {(e["accountaor"], e.get("id")) for e in call_events} == {
        (accounts[0].aor, established.get("id"))
    }, call_events
    assert len(invites(mary["101"])) == 1
    rate, heard_by_iris = read_wav_samples(sorted(phone.snd_dir.glob("dump-*-dec.wav"))[-1])
    assert tone_power(heard_by_iris, rate, CALLER_HZ) > TONE_SHARE
    assert tone_power(heard_by_iris, rate, CALLEE_HZ) < 0.05
    heard_by_customer = capture.pcmu_samples(customer_media)
    assert tone_power(heard_by_customer, 8000, CALLEE_HZ) > TONE_SHARE
    record = record_to(switch, SHOP_DID, 2)
    assert record["answered_by"] == "102"
    assert trace(record) == [
        ("101", "skipped", "talking"),
        ("102", "rung", None),
        ("102", "alerting", None),
        ("102", "answered", None),
    ]
    assert_nothing_left(switch)
