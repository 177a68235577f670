"""The ``rtnst`` command line. Each command lives in its own module with ``register(subparsers)``;
the handler it sets returns an exit code. Library errors (RtnstError) become one line naming the
command's own flags, and exit code 2. Building the parser imports no heavy dependency: commands
import what they need when they run."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import sys

from .. import __version__
from ..errors import RtnstError, install_hint

COMMANDS = ["image", "video", "webcam", "serve", "bench", "models", "train", "export", "eval", "optimize"]
# What each optional package is installed by, for a command that reaches one the user lacks.
EXTRAS = {"torch": "train", "onnx": "train", "onnxscript": "train", "safetensors": "train", "matplotlib": "train",
          "pyvirtualcam": "vcam"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits 2 already; keep its one line, drop the usage dump
        self.exit(2, f"rtnst: error: {message} (see {self.prog} --help)\n")


def _add_quiet(parser: argparse.ArgumentParser, *, default) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", default=default,
                        help="only errors (no progress bars or info lines)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rtnst", description="Real-time neural style transfer for images, video files and webcams.")
    parser.add_argument("--version", action="version", version=f"rtnst {__version__}")
    _add_quiet(parser, default=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f".{name}", __name__).register(sub)
    for command in _commands(parser):  # -q after the command too; SUPPRESS keeps one given before it
        _add_quiet(command, default=argparse.SUPPRESS)
    return parser


def _commands(parser: argparse.ArgumentParser):
    """Every (sub)command parser below ``parser``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                yield command
                yield from _commands(command)


def _command_parser(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.ArgumentParser:
    """The (sub)parser of the command being run: its flags name the library's parameters."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for word in argv:
                if word in action.choices:
                    return _command_parser(action.choices[word], argv[argv.index(word) + 1:])
    return parser


def in_cli_terms(exc: RtnstError, parser: argparse.ArgumentParser) -> str:
    """The error's message with each parameter it names (``max_side_px``, ``overwrite=True``) put
    as the command's flag for it (``--max-side``, ``--overwrite``)."""
    text = str(exc)
    flags = {a.dest: a.option_strings[-1] for a in parser._actions if a.option_strings}
    for name in exc.params:
        flag = flags.get(name)
        if flag:
            text = re.sub(rf"(?<![\w-]){re.escape(name)}(=True)?(?![\w-])", flag, text)
    return text


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s", stream=sys.stderr)
    if not args.command:
        parser.print_help()
        return 2
    # OpenCV logs its decoders' failures ("imdecode_: can't read header") before our own one-line error
    # says the same in rtnst's terms; it reads this once, when the command first imports cv2.
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
    try:
        return int(args.handler(args) or 0)
    except RtnstError as exc:
        print(f"rtnst: error: {in_cli_terms(exc, _command_parser(parser, argv))}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:  # an optional package a command reached without a require()
        extra = EXTRAS.get((exc.name or "").partition(".")[0])
        if extra is None:
            raise
        print(f"rtnst: error: {exc.name} is not installed; {install_hint(extra)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rtnst: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `rtnst models | head`: the reader is gone, which is no error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
