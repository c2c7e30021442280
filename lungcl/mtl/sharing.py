"""The sharing-degree matrix of the gated blocks: tables, summaries and heat maps.

Definition (``GatedBlock.sharing``): for output task t and input task s, the
mean absolute value of the gated fusion weights sigmoid(a[t, s]) * W[t, :, s, :]
(a C x C block of the 1x1 convolution), divided by the sum over s of the same,
so each row sums to 1. S[t, t] = 1 means task t uses only its own maps (the
state at initialisation); S[t, s] is the share of task t's fused input drawn
from task s. "Overall" is the mean of the per-stage matrices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .record import MTLRecord


def sharing_frame(matrix: np.ndarray, tasks: Sequence[str]) -> pd.DataFrame:
    """A (T, T) matrix as a labelled table: rows draw on columns."""
    return pd.DataFrame(np.asarray(matrix, dtype=float), index=list(tasks), columns=list(tasks))


def borrowed_share(matrix: np.ndarray | pd.DataFrame) -> np.ndarray:
    """Per task, the share of its fused input drawn from the OTHER tasks: 1 - S[t, t]."""
    m = np.asarray(matrix, dtype=float)
    return 1.0 - np.diag(m)


def mutual_sharing(matrix: np.ndarray | pd.DataFrame) -> np.ndarray:
    """Symmetric pair score (S[t, s] + S[s, t]) / 2, diagonal set to nan (for ranking task pairs)."""
    m = np.asarray(matrix, dtype=float)
    sym = (m + m.T) / 2
    np.fill_diagonal(sym, np.nan)
    return sym


def top_pairs(matrix: pd.DataFrame, n: int = 5) -> pd.DataFrame:
    """The ``n`` task pairs that share most (mutual score), one row per pair."""
    sym = mutual_sharing(matrix)
    tasks = list(matrix.index)
    rows = [{"task_a": tasks[i], "task_b": tasks[j], "sharing": sym[i, j]}
            for i in range(len(tasks)) for j in range(i + 1, len(tasks))]
    return pd.DataFrame(rows).sort_values("sharing", ascending=False).head(n).reset_index(drop=True)


def short_names(tasks: Sequence[str]) -> list[str]:
    """Three-letter upper-case labels (``MAL`` for malignancy) when they are unique, else the names."""
    short = [t.replace("_", " ")[:3].upper() for t in tasks]
    return short if len(set(short)) == len(short) else list(tasks)


def plot_sharing(matrix: pd.DataFrame, ax=None, title: str | None = None, off_diagonal: bool = True,
                 vmax: float | None = None, annotate: bool | None = None, short: bool = False, cbar: bool = True):
    """Heat map of a sharing matrix (greener = more sharing, as in the source's figure).

    With ``off_diagonal`` the diagonal (a task's own maps, close to 1) is blanked so
    the colour scale shows what tasks borrow from each other.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 4.4))
    m = matrix.astype(float).copy()
    if short:
        m.index = m.columns = short_names(list(matrix.index))
    mask = np.eye(len(m), dtype=bool) if off_diagonal else None
    annotate = len(m) <= 9 if annotate is None else annotate
    sns.heatmap(m, ax=ax, mask=mask, cmap="Greens", vmin=0.0, vmax=vmax, square=True, cbar=cbar,
                annot=annotate, fmt=".2g", annot_kws={"size": 7})
    ax.set_xlabel("drawn on (input task)")
    ax.set_ylabel("drawing (output task)")
    if title:
        ax.set_title(title)
    return ax


def plot_sharing_grid(records: Mapping[str, MTLRecord], stage: int | None = None, off_diagonal: bool = True,
                      ncols: int = 2):
    """One heat map per record on a common colour scale (the source's comparison figure), short task labels."""
    import matplotlib.pyplot as plt

    frames = {name: rec.sharing(stage) for name, rec in records.items()}
    vals = [np.where(np.eye(len(f), dtype=bool), np.nan, f.to_numpy()) if off_diagonal else f.to_numpy()
            for f in frames.values()]
    vmax = float(np.nanmax([np.nanmax(v) for v in vals])) if vals else None
    ncols = max(1, min(ncols, len(frames)))
    nrows = -(-len(frames) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 4.0 * nrows), squeeze=False)
    for ax, (name, frame) in zip(axes.flat, frames.items()):
        plot_sharing(frame, ax=ax, title=name, off_diagonal=off_diagonal, vmax=vmax, annotate=False, short=True)
    for ax in list(axes.flat)[len(frames):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def sharing_summary(records: Mapping[str, MTLRecord]) -> pd.DataFrame:
    """Per setting: mean borrowed share over tasks (overall and per stage) and the most-shared pair."""
    rows = []
    for name, rec in records.items():
        overall = rec.sharing()
        row = {"setting": name, "mean_borrowed": float(borrowed_share(overall).mean())}
        for k in range(len(rec.data["sharing"]["per_stage"])):
            row[f"stage{k + 1}_borrowed"] = float(borrowed_share(rec.sharing(k)).mean())
        pair = top_pairs(overall, 1)
        if len(pair):
            row["top_pair"] = f"{pair.task_a[0]} - {pair.task_b[0]}"
            row["top_pair_sharing"] = float(pair.sharing[0])
        rows.append(row)
    return pd.DataFrame(rows).set_index("setting")


def forgetting_vs_sharing(sharing: pd.DataFrame, sequence_records: Mapping[str, object],
                          metric: str = "accuracy", split: str = "test") -> pd.DataFrame:
    """Pair each ordered task pair (first, second) of the continual-learning runs with its sharing degree.

    ``sequence_records`` maps an order name to its continual-learning ``Record``
    (``lungcl.experiments.records``). For each, the first task's drop in ``metric``
    right after the second task is trained, R[0, 0] - R[1, 0], is put beside the
    sharing between the two tasks in the multi-task network: S[first, second],
    S[second, first] and their mean.
    """
    rows = []
    for order, rec in sequence_records.items():
        R = rec.accuracy_matrix(split, metric)
        first, second = list(R.columns[:2])
        rows.append({"order": order, "first": first, "second": second,
                     "drop_first_after_second": float(R.iloc[0, 0] - R.iloc[1, 0]),
                     "sharing_first_from_second": float(sharing.loc[first, second]),
                     "sharing_second_from_first": float(sharing.loc[second, first]),
                     "sharing_mutual": float((sharing.loc[first, second] + sharing.loc[second, first]) / 2)})
    return pd.DataFrame(rows).set_index("order")
