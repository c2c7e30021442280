"""Shared look of every figure: colours per method, labels, the thesis marker, small axis helpers."""

from __future__ import annotations

from typing import Iterable

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from ..errors import LungclError
from ..summaries import METHOD_LABELS

_PALETTE = sns.color_palette("colorblind", 8)
METHOD_COLORS = {"sgd": _PALETTE[3], "l2": _PALETTE[1], "ewc": _PALETTE[0], "online_ewc": _PALETTE[4],
                 "frozen": _PALETTE[5], "joint": _PALETTE[2], "single_task": _PALETTE[7]}
THESIS_STYLE = dict(marker="D", s=46, facecolors="white", linewidths=1.6, zorder=5)


def _method_order(methods: Iterable[str]) -> list[str]:
    present = list(dict.fromkeys(methods))
    return [m for m in METHOD_COLORS if m in present] + [m for m in present if m not in METHOD_COLORS]


def _color(method: str):
    return METHOD_COLORS.get(method, "0.3")


def _label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def short_name(task: str) -> str:
    """A tick label: ``calcification`` -> ``calcif.``."""
    return task if len(task) <= 8 else task[:6] + "."


def _percent_axis(ax, lo: float = 0.0, hi: float = 1.0) -> None:
    ax.set_ylim(lo, hi)
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{100 * v:.0f}%"))


def _sequence_records(records: Iterable) -> list:
    recs = [r for r in records if r.config.kind == "sequence"]
    if not recs:
        raise LungclError("no sequence records to draw")
    orders = {tuple(r.tasks) for r in recs}
    if len(orders) > 1:
        raise LungclError(f"records of several task orders given ({len(orders)}); draw one order at a time")
    return recs



def _dodge(n: int, width: float = 0.8) -> np.ndarray:
    step = width / n
    return (np.arange(n) - (n - 1) / 2) * step
