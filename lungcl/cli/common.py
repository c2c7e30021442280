"""Options and output shared by the commands that compute cached runs (``run``, ``grid``, ``sweep-lambda``, ``mtl``)."""

from __future__ import annotations

import argparse
import json
from typing import Any, Callable, Mapping

from ..errors import LungclError
from ..profiles import DEFAULT_PROFILE, PROFILES
from ..project import book_folder, where_defaults_go

# what --results / --data-dir say about a relative path and the default
RESULTS_HELP = "results folder (default: results/ at the book's root; a relative path is from here)"
DATA_HELP = "data folder with the patch store (default: data/ at the book's root; a relative path is from here)"
# settings every run command sets with a flag of its own: refused in --set, naming the flag
RUN_FLAGS = {"profile": "--profile", "source": "--source", "data_dir": "--data-dir"}


def add_run_options(p: argparse.ArgumentParser, set_example: str,
                    source_help: str = "phantom (default) or dicom") -> None:
    """--profile, --source, --set KEY=VALUE (repeatable), --results, --data-dir and --quiet."""
    p.add_argument("--profile", default=DEFAULT_PROFILE, choices=PROFILES,
                   help=f"{', '.join(PROFILES)} (default {DEFAULT_PROFILE})")
    p.add_argument("--source", default="phantom", help=source_help)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help=f"override any setting, e.g. {set_example} (repeatable)")
    p.add_argument("--results", default=None, help=RESULTS_HELP)
    p.add_argument("--data-dir", default=None, help=DATA_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def resolve_folders(args: argparse.Namespace) -> str | None:
    """``args.results`` and ``args.data_dir`` (those the command has) made absolute, in place: one given
    is relative to the current folder, the default is at the book's root (:func:`lungcl.project.book_folder`).
    Returns the line that says where the default folders are when that book is not around the current
    folder (the command prints it when it is done; a bad input still ends in one line), else None."""
    names = [(attr, default) for attr, default in (("results", "results"), ("data_dir", "data")) if hasattr(args, attr)]
    note = where_defaults_go() if any(getattr(args, attr) is None for attr, _ in names) else None
    for attr, default in names:
        setattr(args, attr, str(book_folder(default, getattr(args, attr))))
    return note


def refuse_flagged(overrides: Mapping[str, Any], flags: Mapping[str, str]) -> None:
    """A one-line error for a --set of a setting that has its own flag (``flags``: setting -> flag)."""
    for key in overrides:
        if key in flags:
            raise LungclError(f"{key} is set with {flags[key]}, not --set")


def print_record(record: Any, as_json: bool, render: Callable[[Any], str], show_path: bool = True) -> int:
    """Print a record as JSON, or as ``render(record)`` followed by its path (the last line); exit code 0."""
    if as_json:
        print(json.dumps(record.data, indent=1, sort_keys=True))
        return 0
    print(render(record))
    if show_path:
        print(record.path)
    return 0


__all__ = ["add_run_options", "resolve_folders", "refuse_flagged", "print_record", "RUN_FLAGS",
           "RESULTS_HELP", "DATA_HELP"]
