"""``lungcl``: entry point. Each command group lives in its own module with a ``register``."""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import LungclError
from .common import resolve_folders
from ..runs.lifeline import Stopped, stop_on_signals

# modules of lungcl.cli, each with register(subparsers) adding its commands
COMMAND_MODULES = ("data", "experiments", "findings", "mtl", "book")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lungcl",
        description="Continual learning on LIDC-IDRI lung-nodule characteristics (SGD, L2, EWC).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"lungcl.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors print one line and return 2, never a traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        # the book's folders are at the root it is given (--root): lungcl book resolves them itself
        note = resolve_folders(args) if args.command != "book" else None
        with stop_on_signals():  # SIGTERM, SIGHUP: stop as on Ctrl-C (workers stopped, nothing half-written)
            code = int(args.func(args) or 0)
        if note:
            print(f"lungcl: {note}", file=sys.stderr)
        return code
    except LungclError as exc:
        print(f"lungcl: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        name = f" by {exc.args[0]}" if isinstance(exc, Stopped) else ""
        print(f"lungcl: interrupted{name}; finished work is kept, run the same command to resume",
              file=sys.stderr)
        return 128 + (exc.signum if isinstance(exc, Stopped) else 2)


if __name__ == "__main__":
    sys.exit(main())
