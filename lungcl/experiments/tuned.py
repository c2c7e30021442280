"""The tune records behind the profiles' default lambdas, shipped with the package.

``lungcl tune --order ABC --method M --profile P`` (fold 0, seed 0) writes a tune record (the whole
validation curve and its pick, :mod:`.tune`); the record of the run that set a profile's default is
copied to ``lungcl/reference/tuned/<profile>_<method>.json`` so that the book can show the curve the
default came from without re-training it, and a test checks that the default IS that pick.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import LungclError

TUNED_DIR = Path(__file__).resolve().parent.parent / "reference" / "tuned"


def tuned_path(profile: str, method: str) -> Path:
    return TUNED_DIR / f"{profile}_{method}.json"


def reference_tune(profile: str, method: str) -> dict:
    """The shipped tune record that chose ``method``'s default lambda on ``profile``."""
    path = tuned_path(profile, method)
    if not path.is_file():
        raise LungclError(f"no shipped tune record for {method} on the {profile} profile ({path.name}); "
                          f"run `lungcl tune --method {method} --profile {profile}`")
    return json.loads(path.read_text())


def reference_tunes(profile: str) -> list[dict]:
    """Every shipped tune record of ``profile``, in the order l2, ewc, online_ewc."""
    return [reference_tune(profile, m) for m in ("l2", "ewc", "online_ewc") if tuned_path(profile, m).is_file()]


__all__ = ["TUNED_DIR", "reference_tune", "reference_tunes", "tuned_path"]
