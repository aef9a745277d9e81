"""[groups] in the config file: the format, the defaults, and every check with its location."""

from __future__ import annotations

import tomllib

import pytest

from b2bua.config import ConfigError, parse_config
from b2bua.hunt import (
    Hangup,
    HuntGroup,
    Member,
    Strategy,
    ToExtension,
    ToGroup,
    ToVoicemail,
    build_groups,
    parse_destination,
)

from .test_scenarios import FLOWER_SHOP, HUNT_GROUP, groups_of, load

EXTENSIONS = """
[extensions."101"]
password = "secret-101"
[extensions."102"]
password = "secret-102"
[extensions."103"]
password = "secret-103"
mailbox = false
"""


def errors_of(text: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        parse_config(tomllib.loads(EXTENSIONS + text), "test.toml")
    return info.value.errors


def test_flower_shop_defaults_to_the_mailbox_of_line_1() -> None:
    flowers = groups_of(load(FLOWER_SHOP))["flowers"]
    assert flowers.strategy is Strategy.LINEAR
    assert flowers.public_numbers == ("5550101",)
    assert [m.number for m in flowers.members] == ["101", "102", "103", "104", "105"]
    assert (flowers.no_answer, flowers.all_busy, flowers.timeout) == (ToVoicemail("101"),) * 3
    assert flowers.over_limit == Hangup(486)


def test_staggered_hunt_group_model() -> None:
    support = groups_of(load(HUNT_GROUP))["support"]
    assert support == HuntGroup(
        name="support",
        description="Support: staggered hunt group",
        numbers=("200",),
        public_numbers=("5550200",),
        strategy=Strategy.STAGGERED,
        members=(Member("002"), Member("006", 6.0), Member("007", 10.0)),
        group_timeout=30.0,
        no_answer=ToVoicemail("002"),
        all_busy=ToVoicemail("002"),
        timeout=Hangup(480),
    )


def test_without_a_mailbox_the_defaults_are_480_and_486() -> None:
    config = parse_config(
        tomllib.loads(EXTENSIONS + '[groups.g]\nmembers = ["103", "101"]'), "test.toml"
    )
    g = config.hunt_groups()["g"]
    assert (g.no_answer, g.all_busy, g.timeout, g.over_limit) == (
        Hangup(480),
        Hangup(486),
        Hangup(480),
        Hangup(486),
    )
    assert g.strategy is Strategy.RING_ALL
    assert (g.ring_time, g.group_timeout, g.rounds, g.wave_interval) == (20.0, 60.0, 1, 20.0)


def test_every_destination_form() -> None:
    text = """
[groups.a]
strategy = "memory_hunt"
wave_interval = 5
members = [{ extension = "101", ring_time = 12 }, "102"]
channel_limit = 3
rounds = 2
primary_first = true
[groups.a.destinations]
no_answer = "voicemail:102"
all_busy = "busy"
timeout = "group:b"
over_limit = "extension:102"
[groups.b]
members = ["102"]
destinations = { no_answer = "hangup" }
"""
    config = parse_config(tomllib.loads(EXTENSIONS + text), "test.toml")
    a = build_groups(config.groups, ["101", "102"])["a"]
    assert (a.no_answer, a.all_busy, a.timeout, a.over_limit) == (
        ToVoicemail("102"),
        Hangup(486),
        ToGroup("b"),
        ToExtension("102"),
    )
    assert a.members[0] == Member("101", ring_time=12.0)
    assert (a.wave_interval, a.channel_limit, a.rounds, a.primary_first) == (5.0, 3, 2, True)


def test_parse_destination_refuses_other_forms() -> None:
    for text in ("voicemail", "voicemail:", "phone:101", "hangup:now", "group:a:b"):
        with pytest.raises(ValueError, match="voicemail:<mailbox>"):
            parse_destination(text)


GROUP_ERRORS = [
    (
        '[groups.g]\nmembers = ["101", "109"]',
        "groups.g.members[1].extension",
        "no extension 109 in [extensions]",
    ),
    (
        '[groups.g]\nmembers = ["101", "102", "101"]',
        "groups.g.members[2]",
        "extension 101 is already members[0]",
    ),
    (
        '[groups.g]\nmembers = ["1x"]',
        "groups.g.members[0].extension",
        "expected an extension number of 1 to 15 digits",
    ),
    ("[groups.g]\nmembers = []", "groups.g.members", "List should have at least 1 item"),
    ("[groups.g]\n", "groups.g.members", "Field required"),
    (
        '[groups.g]\nstrategy = "staggered"\ngroup_timeout = 30\n'
        'members = ["101", { extension = "102", start_delay = 30 }]',
        "groups.g.members[1].start_delay",
        "30 s is at or past the group timeout (30 s): this member would never ring",
    ),
    (
        '[groups.g]\nstrategy = "linear"\nmembers = [{ extension = "101", start_delay = 5 }]',
        "groups.g.members[0].start_delay",
        "start delays apply to strategy staggered, not linear",
    ),
    (
        '[groups.g]\nstrategy = "ring_all"\nwave_interval = 5\nmembers = ["101"]',
        "groups.g.wave_interval",
        "wave_interval applies to strategy memory_hunt, not ring_all",
    ),
    (
        '[groups.g]\nstrategy = "memory_hunt"\nwave_interval = 60\nmembers = ["101", "102"]',
        "groups.g.wave_interval",
        "60 s is at or past the group timeout (60 s): only the first member would ever ring",
    ),
    (
        '[groups.g]\nmembers = [{ extension = "101", ring_time = 0 }]',
        "groups.g.members[0].ring_time",
        "Input should be greater than 0",
    ),
    ('[groups.g]\nring_time = -1\nmembers = ["101"]', "groups.g.ring_time", "greater than 0"),
    ('[groups.g]\nrounds = 0\nmembers = ["101"]', "groups.g.rounds", "greater than or equal"),
    ('[groups.g]\nstrategy = "hunt"\nmembers = ["101"]', "groups.g.strategy", "Input should be"),
    ('[groups.g]\ncolour = "red"\nmembers = ["101"]', "groups.g.colour", "unknown key"),
    (
        '[groups."sales team"]\nmembers = ["101"]',
        "groups.sales team.[key]",
        "expected a group name: a letter, then letters, digits, _ or -",
    ),
    (
        '[groups.g]\nnumbers = ["12ab"]\nmembers = ["101"]',
        "groups.g.numbers[0]",
        "expected a number of 1 to 20 digits",
    ),
    (
        '[groups.a]\nnumbers = ["200"]\nmembers = ["101"]\n'
        '[groups.b]\npublic_numbers = ["200"]\nmembers = ["102"]',
        "groups.b.public_numbers[0]",
        "200 is already a number of group a",
    ),
    (
        '[groups.g]\nnumbers = ["200"]\npublic_numbers = ["200"]\nmembers = ["101"]',
        "groups.g.public_numbers[0]",
        "200 is listed twice in this group",
    ),
    (
        '[groups.g]\nnumbers = ["102"]\nmembers = ["101"]',
        "groups.g.numbers[0]",
        "102 is already an extension's number",
    ),
    (
        '[numbers."5550100"]\ndestination = "extension:101"\n'
        '[groups.g]\npublic_numbers = ["5550100"]\nmembers = ["101"]',
        "groups.g.public_numbers[0]",
        "5550100 is already in [numbers]",
    ),
    (
        '[groups.g]\nmembers = ["101"]\ndestinations = { no_answer = "group:nowhere" }',
        "groups.g.destinations.no_answer",
        "no group nowhere in [groups]",
    ),
    (
        '[groups.g]\nmembers = ["101"]\ndestinations = { timeout = "group:g" }',
        "groups.g.destinations.timeout",
        "a group cannot overflow to itself",
    ),
    (
        '[groups.a]\nmembers = ["101"]\ndestinations = { all_busy = "group:b" }\n'
        '[groups.b]\nmembers = ["102"]\ndestinations = { no_answer = "group:a" }',
        "groups.a.destinations.all_busy",
        "overflow goes round in a loop: a -> b -> a",
    ),
    (
        '[groups.g]\nmembers = ["101"]\ndestinations = { no_answer = "voicemail:109" }',
        "groups.g.destinations.no_answer",
        "no extension 109 in [extensions]",
    ),
    (
        '[groups.g]\nmembers = ["101"]\ndestinations = { all_busy = "voicemail:103" }',
        "groups.g.destinations.all_busy",
        "extension 103 has no mailbox (mailbox = false)",
    ),
    (
        '[groups.g]\nmembers = ["101"]\ndestinations = { over_limit = "extension:109" }',
        "groups.g.destinations.over_limit",
        "no extension 109 in [extensions]",
    ),
    (
        '[groups.g]\nmembers = ["101"]\ndestinations = { timeout = "voicemail" }',
        "groups.g.destinations.timeout",
        '"voicemail:<mailbox>", "hangup" (480), "busy" (486)',
    ),
    (
        '[groups.g]\nmembers = ["101"]\nchannel_limit = 0',
        "groups.g.channel_limit",
        "greater than or equal to 1",
    ),
]


@pytest.mark.parametrize(("text", "location", "message"), GROUP_ERRORS)
def test_each_group_error_names_its_location(text: str, location: str, message: str) -> None:
    errors = errors_of(text)
    assert location in [where for where, _ in errors], errors
    assert any(where == location and message in what for where, what in errors), errors


def test_every_group_error_is_reported_at_once() -> None:
    text = """
[numbers."5550100"]
destination = "extension:101"
[groups.a]
public_numbers = ["5550100", "200"]
strategy = "staggered"
group_timeout = 10
members = ["101", "109", { extension = "102", start_delay = 12 }, "101"]
destinations = { no_answer = "group:a", all_busy = "voicemail:103" }
[groups.b]
numbers = ["200"]
members = ["102"]
"""
    assert errors_of(text) == [
        ("groups.a.members[1].extension", "no extension 109 in [extensions]"),
        ("groups.a.members[3]", "extension 101 is already members[0]"),
        (
            "groups.a.members[2].start_delay",
            "12 s is at or past the group timeout (10 s): this member would never ring",
        ),
        ("groups.a.public_numbers[0]", "5550100 is already in [numbers]"),
        ("groups.a.destinations.no_answer", "a group cannot overflow to itself"),
        ("groups.a.destinations.all_busy", "extension 103 has no mailbox (mailbox = false)"),
        ("groups.b.numbers[0]", "200 is already a number of group a"),
    ]


def test_staggered_without_any_start_delay_is_ring_all_and_valid() -> None:
    config = parse_config(
        tomllib.loads(EXTENSIONS + '[groups.g]\nstrategy = "staggered"\nmembers = ["101", "102"]'),
        "test.toml",
    )
    assert config.groups["g"].strategy is Strategy.STAGGERED
