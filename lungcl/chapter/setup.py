"""What a chapter notebook calls first: its settings checked, its folders resolved, the plot style set.

This is the chapters' runtime; the build that executes and renders them is :mod:`lungcl.book`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..book.parameters import check_chapter_settings
from ..errors import LungclError
from ..profiles import check_profile
from ..project import book_root_or_none, in_root


@dataclass(frozen=True)
class ChapterContext:
    """What a chapter notebook needs: its settings and absolute data / results folders."""

    profile: str
    source: str
    seed: int
    data_dir: Path
    results_dir: Path
    started: datetime = field(default_factory=lambda: datetime.now(timezone.utc))  # the page's run card


def chapter_setup(profile: str = "cpu", source: str = "phantom", data_dir: str | Path = "data",
                  results_dir: str | Path = "results", seed: int = 0,
                  threads: int = 1, **settings: Any) -> ChapterContext:
    """Check the chapter's parameters (``settings``: the rest of its parameters cell) before any work,
    resolve its folders (relative ones against the book root) and set the plot style."""
    check_profile(profile)
    if source not in ("phantom", "dicom"):
        raise LungclError(f"unknown source {source!r}; choose phantom or dicom")
    check_chapter_settings({"data_dir": data_dir, "results_dir": results_dir, "seed": seed, **settings})
    root = book_root_or_none() or Path.cwd()
    _plot_style()
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    return ChapterContext(profile, source, int(seed), in_root(data_dir, root), in_root(results_dir, root))


def _plot_style() -> None:
    import matplotlib as mpl
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    mpl.rcParams.update({"figure.dpi": 96, "savefig.dpi": 96, "figure.figsize": (7.5, 4.0),
                         "axes.titleweight": "bold"})
