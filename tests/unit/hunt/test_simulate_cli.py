"""``b2bua simulate`` on the two seed configs: the flower shop and the staggered group."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from b2bua.cli import main

CONFIGS = Path(__file__).parents[3] / "configs"
SHOP = str(CONFIGS / "flower-shop.toml")
STAGGERED = str(CONFIGS / "hunt-group.toml")


def simulate(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["simulate", *args]) == 0
    return capsys.readouterr().out


def timeline(output: str) -> list[str]:
    """The lines between "timeline:" and the blank line after it, stripped."""
    block = output.split("timeline:\n", 1)[1].split("\n\n", 1)[0]
    return [" ".join(line.split()) for line in block.splitlines()]


def test_scenario_1_skips_mary_and_iris_answers_at_4_s(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = simulate(
        capsys, "--config", SHOP, "--group", "shop", "--busy", "101", "--answer", "102@4"
    )
    assert timeline(out) == ["0.000 ring 102", "4.000 connect 102"]
    assert "ring 101" not in out
    assert "101    skipped (talking)" in out
    assert "result: connected" in out


def test_scenario_2_ends_in_the_first_lines_mailbox(capsys: pytest.CaptureFixture[str]) -> None:
    out = simulate(capsys, "--config", SHOP, "--group", "shop", "--busy", "101,102,103,104")
    assert timeline(out) == [
        "0.000 ring 105",
        "15.000 stop 105",
        "15.000 overflow no_answer -> voicemail:101",
    ]
    assert "15.000  105    cancelled (ring time over)" in out


def test_staggered_group_rings_at_0_6_10_and_hangs_up_at_30(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = simulate(capsys, "--config", STAGGERED, "--group", "sales")
    assert timeline(out) == [
        "0.000 ring 002",
        "6.000 ring 006",
        "10.000 ring 007",
        "30.000 stop 002",
        "30.000 stop 006",
        "30.000 stop 007",
        "30.000 overflow timeout -> hangup 480",
    ]


def test_a_failure_counts_as_busy_and_the_hunt_moves_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = simulate(
        capsys, "--config", SHOP, "--group", "shop", "--busy", "101", "--fail", "102@3:486",
        "--answer", "103@2", "--seed", "5",
    )  # fmt: skip
    assert timeline(out) == ["0.000 ring 102", "3.000 ring 103", "5.000 connect 103"]
    assert "102    failed (486)" in out


def test_the_seed_replays_the_call(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--config", SHOP, "--group", "shop", "--busy", "101", "--seed", "42"]
    first = simulate(capsys, *args)
    assert first == simulate(capsys, *args)
    assert first.endswith("seed: 42\n")


def test_json_is_the_hunt_record_with_its_actions(capsys: pytest.CaptureFixture[str]) -> None:
    out = simulate(capsys, "--config", STAGGERED, "--group", "sales", "--seed", "7", "--json")
    record = json.loads(out)
    assert record["group"] == "sales"
    assert record["seed"] == 7
    assert record["result"] == "overflowed"
    assert record["overflow"] == "timeout"
    assert record["actions"][-1] == {"t": 30.0, "action": "overflow timeout -> hangup 480"}
    assert {"t": 6.0, "member": "006", "outcome": "rung", "round": 0} in record["members"]


def test_an_unknown_group_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--config", SHOP, "--group", "nope"]) == 2
    err = capsys.readouterr().err
    assert "no group 'nope'" in err
    assert "shop" in err


def test_an_unknown_extension_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--config", SHOP, "--group", "shop", "--busy", "999"]) == 2
    assert "no extension 999" in capsys.readouterr().err


def test_an_invalid_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[server]\ncolour = 1\n")
    assert main(["simulate", "--config", str(path), "--group", "shop"]) == 2
    assert "server.colour" in capsys.readouterr().err


def test_an_external_member_is_simulated_like_an_always_reachable_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "mobile.toml"
    config.write_text(
        """
[extensions."101"]
password = "secret-0101"

[groups.shop]
strategy = "linear"
ring_time = 10
members = ["101", { external = "+447700900123", confirm = true }]

[trunks.provider]
host = "198.51.100.1"
routes = [{ prefix = "+" }]
"""
    )
    out = simulate(
        capsys, "--config", str(config), "--group", "shop",
        "--answer", "external:+447700900123@4",
    )  # fmt: skip
    assert timeline(out) == [
        "0.000 ring 101",
        "10.000 stop 101",
        "10.000 ring external:+447700900123",
        "14.000 connect external:+447700900123",
    ]
