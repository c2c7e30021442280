"""Where the book lives: the folder with ``_toc.yml`` and ``notebooks/``.

Shared by the chapters' runtime (:mod:`lungcl.chapter.setup`) and the book build
(:mod:`lungcl.book`); the build never imports the chapters' runtime.
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


def book_root_or_none(start: str | Path | None = None) -> Path | None:
    """:func:`project_root`, or None outside any book (then the current folder stands in for it)."""
    try:
        return project_root(start)
    except LungclError:
        return None


def in_root(path: str | Path, root: Path) -> Path:
    """``path`` made absolute: a relative one against ``root`` (the rule for the default folders and for
    the chapters' ``data_dir`` / ``results_dir``, wherever the process runs)."""
    p = Path(path).expanduser()
    return (p if p.is_absolute() else root / p).resolve()


def book_folder(default: str, given: str | Path | None = None, root: Path | None = None) -> Path:
    """A command's folder: ``given`` on the command line (a relative one against the current folder, as a
    shell user expects), else ``default`` (``data``, ``results``) under the book's root ``root`` (found
    from the current folder; outside any book, the current folder)."""
    if given is not None:
        return Path(given).expanduser().resolve()
    return in_root(default, root or book_root_or_none() or Path.cwd())


def where_defaults_go(root: Path | None = None, cwd: Path | None = None) -> str | None:
    """One line saying where the default folders are when that is not the book around the current
    folder (None when it is)."""
    cwd = (cwd or Path.cwd()).resolve()
    root = root or book_root_or_none(cwd)
    if root is None:
        return f"no lungcl book at or above {cwd}: data/ and results/ are made here"
    if cwd != root and root not in cwd.parents:
        return f"outside the book: data/ and results/ are those of the book at {root}"
    return None


def chapter_sources(root: Path) -> list[Path]:
    """The chapter notebooks (``notebooks/NN_name.py``) of the book at ``root``, in number order."""
    return sorted((root / NOTEBOOKS).glob("[0-9][0-9]_*.py"))
