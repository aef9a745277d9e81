"""The generated switch config and SIPp injection files of the call benchmarks.

Callees: K extensions (``200000`` up, password ``bench-pw-NUMBER``), each with
``max_calls = 100`` (the most the config allows), all registered by one SIPp process
(``scenarios/cps_uas_register.xml``). Each has a public number (``5550000`` up) that
reaches it without authentication, as a call from a trunk does; the caller dials the
numbers in turn (``SEQUENTIAL``), so K extensions take up to 100 K calls at once.

The RTP port range (``10000``-``30000``) lies below the kernel's ephemeral range
(32768-60999 here), where SIPp's and the generator's own ports come from, so the
switch never finds a media port taken. Each call holds two RTP port pairs (four
sockets): the range fits 5,000 calls, as does the open file limit of 20,000.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from common import authentication_row, config_head, injection_text, password_for

FIRST_CALLEE: Final = 200000
FIRST_NUMBER: Final = 5550000
CALLS_PER_EXTENSION: Final = 100
RTP_PORT_MIN: Final = 10000
RTP_PORT_MAX: Final = 30000


@dataclass(frozen=True, slots=True)
class Inputs:
    config: Path
    callees_csv: Path  # field0: number, field1: [authentication ...]
    numbers_csv: Path  # field0: the public number to dial
    callees: int


def callees_for(concurrent_calls: int) -> int:
    """Extensions needed for ``concurrent_calls`` at once, with room to spare (a switch
    that falls behind holds more calls than the nominal rate times the hold)."""
    return max(10, -(-2 * concurrent_calls // CALLS_PER_EXTENSION))


def config_text(
    callees: int, data_dir: Path, *, rtp_timeout: float = 0.0, max_calls: int = 20000
) -> str:
    """The switch's config: ``callees`` extensions, each with its public number."""
    lines = [
        *config_head("the call benchmarks (benchmarks/calls/setup.py)", data_dir),
        "[status]",
        "enabled = true",
        'listen = "127.0.0.1:0"',
        "[registrar]",
        'algorithms = ["MD5"]',
        "[calls]",
        f"max_calls = {max_calls}",
        "[media]",
        f"rtp_port_min = {RTP_PORT_MIN}",
        f"rtp_port_max = {RTP_PORT_MAX}",
        f"rtp_timeout = {rtp_timeout:g}",
    ]
    for index in range(callees):
        number = FIRST_CALLEE + index
        lines += [
            f'[extensions."{number}"]',
            f'password = "{password_for(number)}"',
            f"max_calls = {CALLS_PER_EXTENSION}",
        ]
    for index in range(callees):
        lines += [
            f'[numbers."{FIRST_NUMBER + index}"]',
            f'destination = "extension:{FIRST_CALLEE + index}"',
            "public = true",
        ]
    return "\n".join(lines) + "\n"


def write_inputs(directory: Path, callees: int, *, rtp_timeout: float = 0.0) -> Inputs:
    """Write the config and the callees' and the caller's injection files."""
    config = directory / "switch.toml"
    config.write_text(config_text(callees, directory / "data", rtp_timeout=rtp_timeout))
    extensions = range(FIRST_CALLEE, FIRST_CALLEE + callees)
    callees_csv = directory / "callees.csv"
    callees_csv.write_text(
        injection_text(authentication_row(str(n), password_for(n)) for n in extensions)
    )
    numbers_csv = directory / "numbers.csv"
    numbers_csv.write_text(
        injection_text(str(n) for n in range(FIRST_NUMBER, FIRST_NUMBER + callees))
    )
    return Inputs(config, callees_csv, numbers_csv, callees)
