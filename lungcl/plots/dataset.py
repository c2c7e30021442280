"""The data chapter's figures: readers and sizes, ratings, agreement, task sizes, patches, augmentation."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from ..data.nodules import CHARACTERISTICS
from ..data.tasks import THESIS_LETTERS, resolve_tasks
from ..data.transforms import HU_WINDOW, eval_transform


def readers_and_sizes(all_nodules: pd.DataFrame) -> Figure:
    """Readers per nodule (bars, 5+ pooled) beside the histogram of nodule diameters."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    n_readers = all_nodules.n_readers.clip(upper=5).value_counts().sort_index()
    axes[0].bar([str(k) if k < 5 else "5+" for k in n_readers.index], n_readers.values, color="C0")
    axes[0].set(xlabel="readers who marked the nodule", ylabel="nodules", title="Readers per nodule")
    sns.histplot(all_nodules.diameter_mm, bins=40, ax=axes[1], color="C2")
    axes[1].set(xlabel="diameter (mm, from the readers' outlines)", ylabel="nodules", title="Nodule size")
    fig.tight_layout()
    return fig


def rating_grid(ratings: pd.DataFrame) -> Figure:
    """One count plot per characteristic of every individual rating; the tasks' ones in bold."""
    grid = sns.FacetGrid(ratings, col="characteristic", col_wrap=3, height=2.0, aspect=1.5, sharey=False,
                         col_order=list(CHARACTERISTICS))
    grid.map_dataframe(sns.countplot, x="rating", color="C0", order=[1, 2, 3, 4, 5, 6])
    letters = {v: k for k, v in THESIS_LETTERS.items()}
    for ax, name in zip(grid.axes.flat, CHARACTERISTICS):
        title = name + (f"  (task {letters[name]})" if name in letters else "")
        ax.set_title(title, fontweight="bold" if name in letters else "normal")
    grid.set_axis_labels("rating", "ratings")
    grid.figure.suptitle("Every reader's rating, per characteristic", y=1.02)
    return grid.figure


def agreement_figure(agreement: pd.DataFrame, pair_counts: pd.DataFrame, n_nodules: int) -> Figure:
    """Agreement bars per characteristic beside the heat map of malignancy rating pairs."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [1.5, 1]})
    agreement.plot.barh(ax=axes[0], color=["C0", "C1"])
    axes[0].set(xlabel=f"share of the {n_nodules} nodules with 2+ readers", ylabel="", xlim=(0, 1),
                title="Reader agreement")
    axes[0].invert_yaxis()
    sns.heatmap(pair_counts, annot=True, fmt="d", cmap="Blues", cbar=False, ax=axes[1])
    axes[1].set_title("Malignancy: pairs of readers")
    fig.tight_layout()
    return fig


def task_size_bars(sizes: pd.DataFrame) -> Figure:
    """Stacked bars per task: negative, positive and dropped nodules."""
    ax = sizes[["negative", "positive", "dropped"]].plot.barh(stacked=True, figsize=(8, 3.6),
                                                             color=["C0", "C3", "0.8"])
    ax.invert_yaxis()
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set(xlabel="nodules", ylabel="", title="What each task keeps")
    return ax.figure


def _bare(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def patch_pipeline(image: np.ndarray, patch_px: int, title: str) -> Figure:
    """One stored slice in HU, its values against the intensity window, and the windowed patch."""
    hu = image[0].astype(float)
    shown = np.asarray(eval_transform(patch_px)(image))[0]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), gridspec_kw={"width_ratios": [1, 1.3, 1]})
    im = axes[0].imshow(hu, cmap="gray")
    fig.colorbar(im, ax=axes[0], fraction=0.046, label="HU")
    axes[0].set_title(f"stored slice, {hu.shape[0]} mm")
    axes[1].hist(hu.ravel(), bins=60, color="0.4")
    for edge in HU_WINDOW:
        axes[1].axvline(edge, color="C3", ls="--")
    axes[1].set(xlabel="HU", ylabel="voxels", title="values and the window (dashes)")
    axes[2].imshow(shown, cmap="gray", vmin=0, vmax=1)
    axes[2].set_title(f"what the network sees, {patch_px} px")
    for ax in (axes[0], axes[2]):
        _bare(ax)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def task_examples(images: np.ndarray, nodules: pd.DataFrame, rows: Sequence[int], patch_px: int,
                  rng: np.random.Generator, n_show: int = 4) -> Figure:
    """``n_show`` positive and negative patches per thesis task, drawn with ``rng`` from ``rows``."""
    rows = np.asarray(rows)
    fig, axes = plt.subplots(3, 2 * n_show, figsize=(12, 5.2))
    for row, (letter, name) in enumerate(THESIS_LETTERS.items()):
        labels = resolve_tasks(name)[0].labels(nodules)
        for col, (value, word) in enumerate([(1, "positive"), (0, "negative")]):
            pool = rows[labels[rows] == value]
            picks = rng.choice(pool, size=min(n_show, len(pool)), replace=False)
            for k in range(n_show):
                ax = axes[row, col * n_show + k]
                _bare(ax)
                if k < len(picks):
                    ax.imshow(np.asarray(eval_transform(patch_px)(images[picks[k]]))[0], cmap="gray",
                              vmin=0, vmax=1)
                else:  # fewer test nodules than panels (small profiles)
                    ax.axis("off")
                if k == 0:
                    ax.set_title(f"{word}", loc="left", fontsize=9)
            axes[row, 0].set_ylabel(f"{letter}: {name}", fontsize=9)
    fig.suptitle("Test-set patches per task (left: positive, right: negative)")
    fig.tight_layout()
    return fig


def augmentation_strip(dataset, epochs: int = 8) -> Figure:
    """The first patch of ``dataset`` (augmenting) as drawn in each of ``epochs`` epochs."""
    fig, axes = plt.subplots(1, epochs, figsize=(12, 1.9))
    for epoch, ax in enumerate(axes):
        dataset.set_epoch(epoch)
        x, _ = dataset[0]
        ax.imshow(x[0].numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"epoch {epoch}", fontsize=9)
        _bare(ax)
    fig.tight_layout()
    return fig
