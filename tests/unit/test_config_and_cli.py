"""The configuration file and the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from b2bua import __version__
from b2bua.cli import main
from b2bua.config import ConfigError, ListenAddress, load_config
from b2bua.sip.address import Transport

ROOT = Path(__file__).parents[2]

BAD = """
[server]
listen = ["udp:127.0.0.1:99999", "sctp:192.0.2.1:5060", "tcp:localhost:5060"]
colour = "red"

[sip]
t1 = -1
max_headers = "lots"

[logs]
level = "info"
"""


def test_every_example_config_is_valid() -> None:
    configs = sorted((ROOT / "configs").glob("*.toml"))
    assert configs
    for path in configs:
        load_config(path)


def test_every_error_is_listed_with_its_location(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BAD)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    locations = [loc for loc, _ in info.value.errors]
    assert locations == [
        "server.listen[0]",
        "server.listen[1]",
        "server.listen[2]",
        "server.colour",
        "sip.t1",
        "sip.max_headers",
        "logs",
    ]
    messages = dict(info.value.errors)
    assert "65535" in messages["server.listen[0]"]
    assert "unknown key" in messages["server.colour"]
    assert "greater than 0" in messages["sip.t1"]


def test_syntax_errors_and_missing_files_are_config_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[server\nlisten = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(broken)
    assert info.value.errors[0][0] == "(syntax)"
    with pytest.raises(ConfigError):
        load_config(tmp_path / "missing.toml")


def test_listen_address_parsing() -> None:
    assert ListenAddress.parse("udp:[::1]:0") == ListenAddress(Transport.UDP, "::1", 0)
    assert str(ListenAddress.parse("tcp:127.0.0.1:5070")) == "tcp:127.0.0.1:5070"


def test_check_config_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = ROOT / "configs" / "example.toml"
    assert main(["check-config", str(good)]) == 0
    assert "OK" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text(BAD)
    assert main(["check-config", str(good), str(bad)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 7
    assert err[0].startswith(f"{bad}: server.listen[0]: ")


def test_run_refuses_a_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(BAD)
    assert main(["run", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "server.colour" in err
    assert "refusing to start" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"b2bua {__version__}"


def test_bad_listen_override_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "--config", "x.toml", "--listen", "udp:nowhere:5060"])
    assert info.value.code == 2
    assert "expected an IP address" in capsys.readouterr().err
