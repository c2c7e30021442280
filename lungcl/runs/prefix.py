"""Shared prefixes: a run's first stage computed once for every run that trains the same one.

A prefix is a checkpoint keyed by a hash of exactly the settings that stage reads (the kind of run
says which: :mod:`lungcl.experiments.first_stage`), stored in the results folder at
``<results>/prefixes/runs/<key>/stage.pt`` (the layout of every kind's runs). The first run that
needs it computes it under the prefix's lock and writes it atomically; a run needing it meanwhile
waits for that lock and then loads it, so two processes never both compute one prefix, and an
interrupted writer leaves no file (a half-written prefix is never read).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

from ..errors import LungclError
from .folder import ResultsFolder, load_checkpoint, save_checkpoint

PREFIXES = "prefixes"  # the sub-folder of a results folder that holds them
PREFIX_FILE = "stage.pt"


class PrefixStore:
    """The prefixes of one results folder."""

    def __init__(self, results: str | Path):
        self.folder = ResultsFolder(Path(results) / PREFIXES)

    def path(self, key: str) -> Path:
        return self.folder.run_dir(key) / PREFIX_FILE

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def keys(self) -> list[str]:
        """The keys of every stored prefix."""
        runs = self.folder.root / "runs"
        return sorted(p.parent.name for p in runs.glob(f"*/{PREFIX_FILE}")) if runs.is_dir() else []

    def load(self, key: str) -> dict | None:
        """The stored prefix ``key``, or None when there is none (a damaged one is said and ignored)."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            return load_checkpoint(path)
        except LungclError as exc:
            print(f"lungcl: ignoring the shared first stage {exc}; computing it again", file=sys.stderr)
            return None

    def shared(self, key: str, compute: Callable[[], dict]) -> tuple[dict, bool]:
        """(the prefix ``key``, whether this call computed it): loaded when stored, else computed by
        ``compute`` and stored, under the prefix's lock (a second process waits, then loads)."""
        found = self.load(key)
        if found is not None:
            return found, False
        with self.folder.lock(key, wait=True):
            found = self.load(key)  # stored by another process while we waited?
            if found is not None:
                return found, False
            state = compute()
            save_checkpoint(self.path(key), state)
            return state, True


__all__ = ["PREFIXES", "PREFIX_FILE", "PrefixStore"]
