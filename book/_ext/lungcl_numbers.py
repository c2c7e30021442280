"""A Sphinx extension: the thesis's numbers quoted in the prose pages, read from :mod:`lungcl.thesis`.

The markdown pages write ``{{ thesis_ewc_A_first }}`` (a MyST substitution) instead of typing a
number; this fills the substitutions from the CSV the package ships, so the prose cannot drift
from the tables the chapters compare against.
"""

from __future__ import annotations

from typing import Any


def thesis_substitutions() -> dict[str, str]:
    """``thesis_<method>_<task letter>_first`` / ``_last``: the task's accuracy (percent, two
    decimals) right after its stage and after the last stage of order ABC, for SGD, L2 and EWC."""
    from lungcl.thesis import THESIS_METHODS, thesis_matrix

    out = {}
    for method in THESIS_METHODS:
        R = thesis_matrix("ABC", method)
        for k, letter in enumerate("ABC"):
            out[f"thesis_{method}_{letter}_first"] = f"{100 * R.iloc[k, k]:.2f}"
            out[f"thesis_{method}_{letter}_last"] = f"{100 * R.iloc[-1, k]:.2f}"
    return out


def _fill(app: Any, config: Any) -> None:
    subs = dict(getattr(config, "myst_substitutions", None) or {})
    subs.update(thesis_substitutions())
    config.myst_substitutions = subs


def setup(app: Any) -> dict:
    app.connect("config-inited", _fill)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
