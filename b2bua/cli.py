"""The command line: ``b2bua run``, ``b2bua check-config``, ``b2bua simulate``,
``b2bua reload``, ``b2bua --version``.

Wiring only: parse arguments, load the config, hand over to the runtime.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
from pathlib import Path

from b2bua import __version__
from b2bua.config import Config, ConfigError, ListenAddress, load_config, parse_http_listen
from b2bua.hunt import MemberBook, Phone
from b2bua.hunt.timeline import json_report, parse_answer, parse_fail, phones, simulate, text_report
from b2bua.logging import configure_logging


def _listen_arg(text: str) -> ListenAddress:
    try:
        return ListenAddress.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _http_listen_arg(text: str) -> str:
    try:
        parse_http_listen(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="b2bua", description="A SIP softswitch (back-to-back user agent) with call hunting."
    )
    parser.add_argument("--version", action="version", version=f"b2bua {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the softswitch")
    run.add_argument("--config", "-c", required=True, type=Path, help="TOML configuration file")
    run.add_argument(
        "--listen",
        action="append",
        type=_listen_arg,
        default=None,
        metavar="TRANSPORT:HOST:PORT",
        help="listen address, e.g. udp:127.0.0.1:5070 (repeatable; replaces the "
        "config's server.listen; port 0 picks a free port)",
    )
    run.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="data directory (replaces the config's server.data_dir)",
    )
    run.add_argument(
        "--log-format",
        choices=["auto", "console", "json"],
        default=None,
        help="log format (default: the config's log.format)",
    )
    run.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default=None)
    run.add_argument(
        "--status-listen",
        type=_http_listen_arg,
        default=None,
        metavar="HOST:PORT",
        help="status server address (replaces the config's status.listen; port 0 picks a "
        "free port, written to the ready file)",
    )
    run.add_argument(
        "--ready-file",
        type=Path,
        default=None,
        help="write the bound addresses as JSON to this file once serving",
    )

    run.add_argument(
        "--pid-file",
        type=Path,
        default=None,
        help="write the process id to this file while running (for b2bua reload)",
    )

    reload = sub.add_parser(
        "reload",
        help="ask a running switch to read its config again (sends SIGHUP)",
        description="Send SIGHUP to a running switch: it reads its config file again and "
        "takes [groups], [numbers] and [calls] for new calls; a file with errors (or "
        "with changes that need a restart) is refused and logged, and the running "
        "config stays. Check a file first with b2bua check-config.",
    )
    target = reload.add_mutually_exclusive_group(required=True)
    target.add_argument("--pid", type=int, help="the switch's process id")
    target.add_argument("--pid-file", type=Path, help="the file b2bua run --pid-file wrote")
    reload.add_argument(
        "--config",
        "-c",
        type=Path,
        default=None,
        help="check this file (the one the switch runs with) first: with errors, list "
        "them and send nothing",
    )

    check = sub.add_parser("check-config", help="validate configuration files, list every error")
    check.add_argument("files", nargs="+", type=Path)

    sim = sub.add_parser(
        "simulate",
        help="print the hunt timeline of a hypothetical call into a group (no network)",
        description="Run one call into a hunt group at t=0 on a virtual clock, with the "
        "engine the switch runs, and print what the hunt does. Every extension of the "
        "config is registered and idle (max_calls and dnd as configured) unless told "
        "otherwise; a member that is rung and not scripted rings until it is stopped.",
    )
    sim.add_argument("--config", "-c", required=True, type=Path, help="TOML configuration file")
    sim.add_argument("--group", required=True, metavar="NAME", help="the group to call")
    sim.add_argument(
        "--busy",
        action="append",
        default=[],
        metavar="EXT,EXT",
        help="extensions already on a call (talking), e.g. 101,102",
    )
    sim.add_argument(
        "--dnd", action="append", default=[], metavar="EXT,EXT", help="extensions on do-not-disturb"
    )
    sim.add_argument(
        "--unregistered",
        action="append",
        default=[],
        metavar="EXT,EXT",
        help="extensions with no registered phone",
    )
    sim.add_argument(
        "--answer",
        action="append",
        default=[],
        metavar="EXT@SECONDS",
        help="EXT answers SECONDS after it STARTS RINGING (not after the call starts), "
        "e.g. 103@12 (repeatable)",
    )
    sim.add_argument(
        "--fail",
        action="append",
        default=[],
        metavar="EXT@SECONDS:CODE",
        help="EXT answers with status CODE SECONDS after it starts ringing, e.g. 102@3:486 "
        "(486, 600 and 603 count as busy; repeatable)",
    )
    sim.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the hunt's random generator (random strategy); by default a random "
        "one, printed so the call can be replayed",
    )
    sim.add_argument("--json", action="store_true", help="print the hunt record as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "check-config":
        return _check_config(args.files)
    if args.command == "simulate":
        return _simulate(args)
    if args.command == "reload":
        if args.config is not None:
            try:
                load_config(args.config)
            except ConfigError as exc:
                sys.stderr.write("\n".join(exc.lines()) + "\n")
                sys.stderr.write("b2bua reload: not sent; the switch keeps its config\n")
                return 2
        return _reload(args.pid, args.pid_file)
    return _run(args)


def _reload(pid: int | None, pid_file: Path | None) -> int:
    if pid is None:
        assert pid_file is not None
        try:
            text = pid_file.read_text().strip()
        except OSError as exc:
            sys.stderr.write(f"b2bua reload: cannot read {pid_file}: {exc.strerror}\n")
            return 1
        if not text.isdigit():
            sys.stderr.write(f"b2bua reload: {pid_file} holds no process id\n")
            return 1
        pid = int(text)
    if pid <= 1:
        sys.stderr.write(f"b2bua reload: refusing process id {pid}\n")
        return 1
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        sys.stderr.write(f"b2bua reload: no process {pid}\n")
        return 1
    except PermissionError:
        sys.stderr.write(f"b2bua reload: not allowed to signal process {pid}\n")
        return 1
    sys.stdout.write(f"b2bua reload: sent SIGHUP to {pid}; the switch logs the outcome\n")
    return 0


def _check_config(files: list[Path]) -> int:
    failed = False
    for path in files:
        try:
            load_config(path)
        except ConfigError as exc:
            failed = True
            sys.stderr.write("\n".join(exc.lines()) + "\n")
        else:
            sys.stdout.write(f"{path}: OK\n")
    return 1 if failed else 0


def _numbers(values: list[str]) -> set[str]:
    return {item.strip() for value in values for item in value.split(",") if item.strip()}


def _simulate(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        sys.stderr.write("\n".join(exc.lines()) + "\n")
        return 2
    try:
        book, scripted = _simulation_inputs(config, args)
    except ValueError as exc:
        sys.stderr.write(f"b2bua simulate: {exc}\n")
        return 2
    if args.group not in config.groups:
        known = ", ".join(sorted(config.groups)) or "none"
        sys.stderr.write(
            f"b2bua simulate: no group {args.group!r} in {args.config} (groups: {known})\n"
        )
        return 2
    groups = config.hunt_groups()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    call = simulate(groups, book, args.group, scripted, seed)
    if args.json:
        sys.stdout.write(json.dumps(json_report(call), indent=2) + "\n")
    else:
        sys.stdout.write(text_report(call))
    return 0


def _simulation_inputs(
    config: Config, args: argparse.Namespace
) -> tuple[MemberBook, dict[str, Phone]]:
    busy = _numbers(args.busy)
    dnd = _numbers(args.dnd)
    unregistered = _numbers(args.unregistered)
    answers = dict(parse_answer(text) for text in args.answer)
    failures = {m: (after, code) for m, after, code in (parse_fail(t) for t in args.fail)}
    # External members (external:<number>, rung through a trunk) are always reachable
    # for the switch, as here; they may be scripted like extensions.
    externals = {
        member.number
        for group in config.groups.values()
        for member in group.members
        if member.external is not None
    }
    for number in sorted(busy | dnd | unregistered | answers.keys() | failures.keys()):
        if number not in config.extensions and number not in externals:
            raise ValueError(f"no extension {number} in [extensions] of {args.config}")
    book = MemberBook()
    for number, ext in config.extensions.items():
        book.add(
            number,
            max_calls=ext.max_calls,
            dnd=ext.dnd or number in dnd,
            registered=number not in unregistered,
        )
    for number in sorted(externals):
        book.add(number, dnd=number in dnd, registered=number not in unregistered)
    for number in sorted(busy):
        extension = config.extensions.get(number)
        for _ in range(1 if extension is None else extension.max_calls):
            book.call_started(number)
    return book, phones(answers, failures)


def _run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        sys.stderr.write("\n".join(exc.lines()) + "\n")
        sys.stderr.write("b2bua: refusing to start with an invalid configuration\n")
        return 2
    configure_logging(args.log_format or config.log.format, args.log_level or config.log.level)
    from b2bua.runtime.server import run  # noqa: PLC0415 - keeps check-config light
    from b2bua.runtime.store import StoreError  # noqa: PLC0415

    listen = args.listen or config.server.listen_addresses
    data_dir = args.data_dir or Path(config.server.data_dir)
    try:
        run(
            config,
            listen,
            data_dir,
            args.ready_file,
            args.status_listen,
            config_path=args.config,
            pid_file=args.pid_file,
        )
    except (OSError, StoreError) as exc:
        sys.stderr.write(f"b2bua: cannot start: {exc}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
