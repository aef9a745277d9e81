"""The issue's scenarios, from the config file to the hunt timeline, on exact virtual times."""

from __future__ import annotations

import tomllib

from b2bua.config import Config, parse_config
from b2bua.hunt import (
    HuntGroup,
    MemberBook,
    Outcome,
    Phone,
    Simulation,
    StopCause,
)

from .helpers import book, timeline

FLOWER_SHOP = """
[extensions."101"]
name = "Line 1 (Mary)"
password = "flowers-101"
[extensions."102"]
name = "Line 2 (Iris, the other shop)"
password = "flowers-102"
[extensions."103"]
name = "Line 3 (Kate)"
password = "flowers-103"
[extensions."104"]
name = "Line 4"
password = "flowers-104"
[extensions."105"]
name = "Line 5 (the back room)"
password = "flowers-105"

[groups.flowers]
description = "Mary's flower shop: five lines hunted in order"
public_numbers = ["5550101"]
strategy = "linear"
members = ["101", "102", "103", "104", "105"]
ring_time = 20
group_timeout = 120
# No destinations: no answer, all busy and timeout go to the mailbox of line 1.
"""

HUNT_GROUP = """
[extensions."002"]
password = "secret-002"
[extensions."006"]
password = "secret-006"
[extensions."007"]
password = "secret-007"

[groups.support]
description = "Support: staggered hunt group"
numbers = ["200"]
public_numbers = ["5550200"]
strategy = "staggered"
members = [
    "002",
    { extension = "006", start_delay = 6 },
    { extension = "007", start_delay = 10 },
]
group_timeout = 30
destinations = { timeout = "hangup" }
"""


def load(text: str) -> Config:
    return parse_config(tomllib.loads(text), "test.toml")


def groups_of(config: Config) -> dict[str, HuntGroup]:
    return config.hunt_groups()


def flower_shop(members: MemberBook) -> Simulation:
    return Simulation(groups_of(load(FLOWER_SHOP)), members)


LINES = ("101", "102", "103", "104", "105")


def test_flower_shop_scenario_1_mary_busy_iris_answers() -> None:
    sim = flower_shop(book(*LINES, talking=["101"]))
    sim.phone("102", Phone(answers_after=4))
    sim.call("flowers")
    sim.run()
    assert timeline(sim) == [(0.0, "ring 102"), (4.0, "connect 102")]
    skipped = [(e.member, e.reason) for e in sim.hunts[0].trace if e.outcome is Outcome.SKIPPED]
    assert skipped == [("101", "talking")]


def test_flower_shop_scenario_1_with_mary_on_a_call_through_the_same_number() -> None:
    """Mary answers the first customer; a second customer calls the same number and Iris
    gets it: a member on a call is never rung."""
    sim = flower_shop(book(*LINES))
    sim.phone("101", Phone(answers_after=3))
    sim.phone("102", Phone(answers_after=2))
    sim.call("flowers", at=0.0)
    sim.call("flowers", at=10.0)
    sim.run()
    assert timeline(sim, 0) == [(0.0, "ring 101"), (3.0, "connect 101")]
    assert timeline(sim, 1) == [(10.0, "ring 102"), (12.0, "connect 102")]


def test_flower_shop_scenario_2_nobody_answers_line_5_voicemail_of_line_1() -> None:
    sim = flower_shop(book(*LINES, talking=["101", "102", "103", "104"]))
    sim.call("flowers")
    sim.run()
    assert timeline(sim) == [
        (0.0, "ring 105"),
        (20.0, "stop 105"),
        (20.0, "overflow no_answer -> voicemail:101"),
    ]
    outcomes = [(e.at, e.member, e.outcome, e.reason) for e in sim.hunts[0].trace]
    assert outcomes == [
        (0.0, "101", Outcome.SKIPPED, "talking"),
        (0.0, "102", Outcome.SKIPPED, "talking"),
        (0.0, "103", Outcome.SKIPPED, "talking"),
        (0.0, "104", Outcome.SKIPPED, "talking"),
        (0.0, "105", Outcome.RUNG, None),
        (0.0, "105", Outcome.ALERTING, None),
        (20.0, "105", Outcome.CANCELLED, StopCause.RING_TIME),
    ]


def test_flower_shop_all_lines_busy_goes_to_line_1_mailbox_at_once() -> None:
    sim = flower_shop(book(*LINES, talking=LINES))
    sim.call("flowers")
    sim.run()
    assert timeline(sim) == [(0.0, "overflow all_busy -> voicemail:101")]


def test_flower_shop_walks_every_line_in_order_when_nobody_answers() -> None:
    sim = flower_shop(book(*LINES))
    sim.call("flowers")
    sim.run()
    rings = [(at, text) for at, text in timeline(sim) if text.startswith("ring")]
    assert rings == [(20.0 * i, f"ring 10{i + 1}") for i in range(5)]
    assert timeline(sim)[-1] == (100.0, "overflow no_answer -> voicemail:101")


def staggered_group(members: MemberBook) -> Simulation:
    return Simulation(groups_of(load(HUNT_GROUP)), members)


def test_staggered_hunt_group_nobody_answers_disconnected_at_the_group_timeout() -> None:
    sim = staggered_group(book("002", "006", "007"))
    sim.call("support", at=100.0)
    sim.run()
    assert timeline(sim) == [
        (100.0, "ring 002"),
        (106.0, "ring 006"),
        (110.0, "ring 007"),
        (130.0, "stop 002"),
        (130.0, "stop 006"),
        (130.0, "stop 007"),
        (130.0, "overflow timeout -> hangup 480"),
    ]
    cancelled = {e.member: e.reason for e in sim.hunts[0].trace if e.outcome is Outcome.CANCELLED}
    assert cancelled == dict.fromkeys(("002", "006", "007"), StopCause.GROUP_TIMEOUT)


def test_staggered_hunt_group_first_pickup_wins_and_later_members_never_ring() -> None:
    sim = staggered_group(book("002", "006", "007"))
    sim.phone("006", Phone(answers_after=2.5))
    sim.call("support")
    sim.run()
    assert timeline(sim) == [
        (0.0, "ring 002"),
        (6.0, "ring 006"),
        (8.5, "connect 006"),
        (8.5, "stop 002"),
    ]
    assert sim.hunts[0].record()["connected"] == "006"


def test_staggered_scaled_down_timers_as_the_end_to_end_test_uses_them() -> None:
    config = load(
        HUNT_GROUP.replace("start_delay = 6", "start_delay = 0.6")
        .replace("start_delay = 10", "start_delay = 1.0")
        .replace("group_timeout = 30", "group_timeout = 3")
    )
    sim = Simulation(groups_of(config), book("002", "006", "007"))
    sim.call("support", at=5.0)
    sim.run()
    assert timeline(sim) == [
        (5.0, "ring 002"),
        (5.6, "ring 006"),
        (6.0, "ring 007"),
        (8.0, "stop 002"),
        (8.0, "stop 006"),
        (8.0, "stop 007"),
        (8.0, "overflow timeout -> hangup 480"),
    ]
