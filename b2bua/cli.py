"""The command line: ``b2bua run``, ``b2bua check-config``, ``b2bua --version``.

Wiring only: parse arguments, load the config, hand over to the runtime.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from b2bua import __version__
from b2bua.config import ConfigError, ListenAddress, load_config, parse_http_listen
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

    check = sub.add_parser("check-config", help="validate configuration files, list every error")
    check.add_argument("files", nargs="+", type=Path)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "check-config":
        return _check_config(args.files)
    return _run(args)


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
        run(config, listen, data_dir, args.ready_file, args.status_listen)
    except (OSError, StoreError) as exc:
        sys.stderr.write(f"b2bua: cannot start: {exc}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
