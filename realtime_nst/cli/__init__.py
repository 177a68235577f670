"""The ``rtnst`` command line. Each command lives in its own module with ``register(subparsers)``;
the handler it sets returns an exit code. Library errors (RtnstError) become one line and exit 2."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .. import __version__
from ..errors import RtnstError

COMMANDS = ["image", "video", "webcam", "bench", "models", "train", "export", "eval", "optimize"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits 2 already; keep its one line, drop the usage dump
        self.exit(2, f"rtnst: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rtnst", description="Real-time neural style transfer for images, video files and webcams.")
    parser.add_argument("--version", action="version", version=f"rtnst {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors (no progress bars or info lines)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        module = importlib.import_module(f".{name}", __name__)
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s", stream=sys.stderr)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except RtnstError as exc:
        print(f"rtnst: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rtnst: interrupted", file=sys.stderr)
        return 130
