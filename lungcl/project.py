"""Where the book lives: the folder with ``_toc.yml`` and ``notebooks/``.

Shared by the chapters' runtime (:mod:`lungcl.chapter_context`) and the book build
(:mod:`lungcl.book`), which otherwise do not import each other.
"""

from __future__ import annotations

from pathlib import Path

from .errors import LungclError

NOTEBOOKS = "notebooks"


def project_root(start: str | Path | None = None) -> Path:
    """The book's root: the nearest folder holding ``_toc.yml`` above ``start`` (cwd)."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").exists() and (folder / NOTEBOOKS).is_dir():
            return folder
    package_parent = Path(__file__).resolve().parents[1]
    if (package_parent / "_toc.yml").exists():
        return package_parent
    raise LungclError(f"no lungcl book (a folder with _toc.yml and notebooks/) at or above {here}")


def chapter_sources(root: Path) -> list[Path]:
    """The chapter notebooks (``notebooks/NN_name.py``) of the book at ``root``, in number order."""
    return sorted((root / NOTEBOOKS).glob("[0-9][0-9]_*.py"))
