"""Generated extensions: a switch config (TOML) and the matching SIPp injection file.

The numbers are 6 digits from 100000 up, the passwords ``bench-pw-NUMBER`` (the config
wants at least 8 characters). The CSV's second field is the whole
``[authentication ...]`` keyword, the form ``sipp-scenarios/uac_register_digest.xml``
documents, read SEQUENTIAL so that each registration takes the next user.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from common import authentication_row, config_head, injection_text, password_for

FIRST_NUMBER: Final = 100000


@dataclass(frozen=True, slots=True)
class User:
    number: str
    password: str


def make_users(count: int) -> list[User]:
    """``count`` extensions, numbered from FIRST_NUMBER."""
    if not 1 <= count <= 899999:
        raise ValueError(f"user count out of range: {count}")
    return [User(str(n), password_for(n)) for n in range(FIRST_NUMBER, FIRST_NUMBER + count)]


def config_text(users: list[User], data_dir: Path, algorithms: tuple[str, ...]) -> str:
    """A minimal config: quiet logs, no status server, one table per extension. The listen
    address is replaced on the command line (``--listen``); MD5 must come first for SIPp."""
    algos = ", ".join(f'"{a}"' for a in algorithms)
    lines = [
        *config_head("benchmarks/bench_register.py", data_dir),
        "[status]",
        "enabled = false",
        "[registrar]",
        f"algorithms = [{algos}]",
        "min_expires = 60",
        "max_expires = 3600",
        "default_expires = 3600",
    ]
    for user in users:
        lines += [f'[extensions."{user.number}"]', f'password = "{user.password}"']
    return "\n".join(lines) + "\n"


def users_csv_text(users: list[User]) -> str:
    """SIPp's injection file: each user's number and credentials, taken in turn."""
    return injection_text(authentication_row(u.number, u.password) for u in users)


def write_inputs(
    directory: Path, users: list[User], algorithms: tuple[str, ...] = ("MD5", "SHA-256")
) -> tuple[Path, Path]:
    """Write ``switch.toml`` and ``users.csv`` into ``directory``; return both paths."""
    config = directory / "switch.toml"
    config.write_text(config_text(users, directory / "data", algorithms))
    csv = directory / "users.csv"
    csv.write_text(users_csv_text(users))
    return config, csv
