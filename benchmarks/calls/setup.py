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

:func:`config_text` is built from pieces (:func:`switch_lines`, :func:`extension_lines`,
:func:`public_number_lines`, :func:`group_lines` for hunt groups) that bench_hunt.py
assembles into its own configs, with the injection files of :func:`write_callees_csv`
and :func:`write_numbers_csv`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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


def switch_lines(
    data_dir: Path, *, rtp_timeout: float = 0.0, max_calls: int = 20000,
    ring_timeout: float | None = None,
) -> list[str]:  # fmt: skip
    """The config's sections before the extensions: the head, the status server, MD5
    digest, the call limit (and ``ring_timeout``, how long a plain call rings, when
    given) and the RTP range."""
    calls = [f"max_calls = {max_calls}"]
    if ring_timeout is not None:
        calls.append(f"ring_timeout = {ring_timeout:g}")
    return [
        *config_head("the call benchmarks (benchmarks/calls/setup.py)", data_dir),
        "[status]",
        "enabled = true",
        'listen = "127.0.0.1:0"',
        "[registrar]",
        'algorithms = ["MD5"]',
        "[calls]",
        *calls,
        "[media]",
        f"rtp_port_min = {RTP_PORT_MIN}",
        f"rtp_port_max = {RTP_PORT_MAX}",
        f"rtp_timeout = {rtp_timeout:g}",
    ]


def extension_lines(number: int, *, max_calls: int = CALLS_PER_EXTENSION) -> list[str]:
    """Extension ``number`` with its generated password."""
    return [
        f'[extensions."{number}"]',
        f'password = "{password_for(number)}"',
        f"max_calls = {max_calls}",
    ]


def public_number_lines(number: int, extension: int) -> list[str]:
    """A public number (no authentication needed) that reaches ``extension``."""
    return [
        f'[numbers."{number}"]',
        f'destination = "extension:{extension}"',
        "public = true",
    ]


def group_lines(
    name: str, public_number: int, members: Sequence[tuple[int, float | None]], *,
    strategy: str, group_timeout: float | None = None, destinations: Sequence[str] = (),
) -> list[str]:  # fmt: skip
    """Hunt group ``name`` on ``public_number`` (no authentication needed): ``members``
    in hunt order as (extension, start delay or None), ``destinations`` as
    ``no_answer = "hangup"`` lines."""
    entries = ", ".join(
        f'{{ extension = "{number}" }}'
        if delay is None
        else f'{{ extension = "{number}", start_delay = {delay:g} }}'
        for number, delay in members
    )
    lines = [
        f"[groups.{name}]",
        f'public_numbers = ["{public_number}"]',
        f'strategy = "{strategy}"',
        f"members = [{entries}]",
    ]
    if group_timeout is not None:
        lines.append(f"group_timeout = {group_timeout:g}")
    if destinations:
        lines += [f"[groups.{name}.destinations]", *destinations]
    return lines


def config_text(
    callees: int, data_dir: Path, *, rtp_timeout: float = 0.0, max_calls: int = 20000
) -> str:
    """The switch's config: ``callees`` extensions, each with its public number."""
    lines = switch_lines(data_dir, rtp_timeout=rtp_timeout, max_calls=max_calls)
    for index in range(callees):
        lines += extension_lines(FIRST_CALLEE + index)
    for index in range(callees):
        lines += public_number_lines(FIRST_NUMBER + index, FIRST_CALLEE + index)
    return "\n".join(lines) + "\n"


def write_callees_csv(path: Path, extensions: Iterable[int]) -> Path:
    """The callees' injection file: each extension and its ``[authentication ...]``."""
    path.write_text(injection_text(authentication_row(str(n), password_for(n)) for n in extensions))
    return path


def write_numbers_csv(path: Path, numbers: Iterable[int]) -> Path:
    """The caller's injection file: the numbers to dial, in turn."""
    path.write_text(injection_text(str(n) for n in numbers))
    return path


def write_inputs(directory: Path, callees: int, *, rtp_timeout: float = 0.0) -> Inputs:
    """Write the config and the callees' and the caller's injection files."""
    config = directory / "switch.toml"
    config.write_text(config_text(callees, directory / "data", rtp_timeout=rtp_timeout))
    callees_csv = write_callees_csv(
        directory / "callees.csv", range(FIRST_CALLEE, FIRST_CALLEE + callees)
    )
    numbers_csv = write_numbers_csv(
        directory / "numbers.csv", range(FIRST_NUMBER, FIRST_NUMBER + callees)
    )
    return Inputs(config, callees_csv, numbers_csv, callees)
