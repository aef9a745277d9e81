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


# Every class of configuration error, with the exact location and the message a user gets.
ERRORS = [
    (
        '[extensions."12a"]\npassword = "long-enough"',
        "extensions.12a.[key]",
        'expected an extension number of 1 to 15 digits, e.g. [extensions."0101"]',
    ),
    (
        '[extensions."0101"]\npassword = "short"',
        "extensions.0101.password",
        "String should have at least 8 characters (got 'short')",
    ),
    (
        '[extensions."0101"]\nname = "Mary"',
        "extensions.0101",
        "give the extension a password (or ha1_md5 / ha1_sha256)",
    ),
    (
        '[extensions."0101"]\npassword = "long-enough"\nha1_md5 = "' + "a" * 32 + '"',
        "extensions.0101",
        "give either a password or an HA1, not both",
    ),
    (
        '[extensions."0101"]\nha1_md5 = "xyz"',
        "extensions.0101.ha1_md5",
        "expected 32 hexadecimal digits",
    ),
    (
        '[registrar]\nalgorithms = ["SHA-256", "MD5"]\n[extensions."0101"]\nha1_md5 = "'
        + "a" * 32
        + '"',
        "extensions.0101",
        "no HA1 for SHA-256, which registrar.algorithms offers",
    ),
    (
        '[extensions."0101"]\npassword = "long-enough"\nmax_calls = 0',
        "extensions.0101.max_calls",
        "Input should be greater than or equal to 1 (got 0)",
    ),
    (
        '[extensions."0101"]\npassword = "long-enough"\nvoicemail = true',
        "extensions.0101.voicemail",
        "unknown key (not one this version understands)",
    ),
    (
        '[extensions."0101"]\npassword = "long-enough"\n[extensions."0101".mailbox]\npin = "12"',
        "extensions.0101.mailbox.pin",
        "expected a PIN of 4 to 12 digits, in quotes",
    ),
    (
        '[extensions."0101"]\npassword = "long-enough"\nmailbox = "yes"',
        "extensions.0101.mailbox",
        'expected true, false or a table [extensions."NUMBER".mailbox]',
    ),
    (
        '[extensions."0101"]\npassword = "long-enough"\nmailbox = { email = "mary" }',
        "extensions.0101.mailbox.email",
        'expected an e-mail address, e.g. "mary@example.com"',
    ),
    (
        '[voicemail.smtp]\nhost = "127.0.0.1"\nfrom = "vm@shop.example"\nusername = "vm"',
        "voicemail.smtp",
        "give both username and password to log in, or neither",
    ),
    (
        "[voicemail]\nmax_message_length = 0",
        "voicemail.max_message_length",
        "Input should be greater than 0 (got 0)",
    ),
    (
        "[registrar]\nmin_expires = 600\ndefault_expires = 60",
        "registrar",
        "expected min_expires <= default_expires <= max_expires",
    ),
    (
        '[registrar]\nalgorithms = ["MD5", "MD5"]',
        "registrar",
        "each algorithm may appear once in algorithms",
    ),
    (
        '[registrar]\nalgorithms = ["SHA-512"]',
        "registrar.algorithms[0]",
        "Input should be 'MD5' or 'SHA-256' (got 'SHA-512')",
    ),
    (
        "[registrar]\nalgorithms = []",
        "registrar.algorithms",
        "List should have at least 1 item after validation, not 0 (got [])",
    ),
    (
        '[security]\nblock_action = "tarpit"',
        "security.block_action",
        "Input should be 'drop' or 'forbidden' (got 'tarpit')",
    ),
    (
        "[security]\nmax_failures = 0",
        "security.max_failures",
        "Input should be greater than or equal to 1 (got 0)",
    ),
    (
        '[status]\nlisten = "localhost:80"',
        "status.listen",
        "expected an IP address to bind, got 'localhost'",
    ),
    ('[server]\ndomain = "pbx example"', "server.domain", "expected a host name or IP address"),
    (
        '[server]\nrealm = "a\\"b"',
        "server.realm",
        "expected a non-empty realm without quotes or backslashes",
    ),
    (
        '[log]\nlevel = "loud"',
        "log.level",
        "Input should be 'debug', 'info', 'warning' or 'error' (got 'loud')",
    ),
]


@pytest.mark.parametrize(("text", "location", "message"), ERRORS)
def test_each_config_error_names_its_place_and_the_fix(
    tmp_path: Path, text: str, location: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.errors == [(location, message)]


def test_mailboxes_take_the_voicemail_defaults_unless_they_set_their_own(tmp_path: Path) -> None:
    path = tmp_path / "vm.toml"
    path.write_text(
        "[voicemail]\nmax_message_length = 120\nsilence_timeout = 0\n"
        '[extensions."101"]\npassword = "long-enough"\n'
        '[extensions."102"]\npassword = "long-enough"\nmailbox = false\n'
        '[extensions."103"]\npassword = "long-enough"\n'
        '[extensions."103".mailbox]\nemail = "kate@shop.example"\npin = "0042"\n'
        "max_message_length = 30\nmax_messages = 5\n"
    )
    mailboxes = load_config(path).mailboxes()
    assert sorted(mailboxes) == ["101", "103"]
    assert (mailboxes["101"].max_message_length, mailboxes["101"].email) == (120.0, None)
    kate = mailboxes["103"]
    assert (kate.email, kate.pin, kate.max_message_length, kate.max_messages) == (
        "kate@shop.example",
        "0042",
        30.0,
        5,
    )
    assert (kate.min_message_length, kate.silence_timeout) == (1.0, None)
