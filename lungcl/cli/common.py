"""Options and output shared by the commands that compute cached runs (``run``, ``grid``, ``sweep-lambda``, ``mtl``)."""

from __future__ import annotations

import argparse
import json
from typing import Any, Callable

from ..profiles import DEFAULT_PROFILE, PROFILES


def add_run_options(p: argparse.ArgumentParser, set_example: str,
                    source_help: str = "phantom (default) or dicom") -> None:
    """--profile, --source, --set KEY=VALUE (repeatable), --results, --data-dir and --quiet."""
    p.add_argument("--profile", default=DEFAULT_PROFILE, choices=PROFILES,
                   help=f"{', '.join(PROFILES)} (default {DEFAULT_PROFILE})")
    p.add_argument("--source", default="phantom", help=source_help)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help=f"override any setting, e.g. {set_example} (repeatable)")
    p.add_argument("--results", default="results", help="results folder (default ./results)")
    p.add_argument("--data-dir", default="data", help="data folder with the patch store (default ./data)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def print_record(record: Any, as_json: bool, render: Callable[[Any], str], show_path: bool = True) -> int:
    """Print a record as JSON, or as ``render(record)`` followed by its path (the last line); exit code 0."""
    if as_json:
        print(json.dumps(record.data, indent=1, sort_keys=True))
        return 0
    print(render(record))
    if show_path:
        print(record.path)
    return 0


__all__ = ["add_run_options", "print_record"]
