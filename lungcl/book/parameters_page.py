"""The "Run it yourself" page: every chapter's parameters, defaults and meaning, generated from the
chapters' ``parameters`` cells (so nothing is typed twice). ``lungcl book`` writes it before rendering."""

from __future__ import annotations

import re
from pathlib import Path

from ..atomic import atomic_write_bytes
from ..errors import LungclError
from ..project import chapter_sources

PAGE = "book/run_it_yourself.md"
_ASSIGN = re.compile(r"^(?P<name>\w+)\s*=\s*(?P<value>.*?)\s*(?:#\s*(?P<comment>.*))?$")


def chapter_parameters(source: Path) -> list[tuple[str, str, str]]:
    """(name, default, meaning) of each assignment in the chapter's cell tagged ``parameters``."""
    import jupytext

    cells = [c for c in jupytext.read(source).cells if "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise LungclError(f"{source.name}: needs exactly one cell tagged 'parameters', found {len(cells)}")
    rows = []
    for line in cells[0].source.splitlines():
        m = _ASSIGN.match(line)
        if m:
            rows.append((m["name"], m["value"], (m["comment"] or "").strip()))
    return rows


def chapter_title(source: Path) -> str:
    """The chapter's title: its first ``# # `` line (its Markdown title), else its file name."""
    for line in source.read_text().splitlines():
        if line.startswith("# # "):
            return line[4:].strip()
    return source.stem


def render_page(root: Path) -> str:
    """The page's Markdown for the chapters under ``root/notebooks``."""
    out = ["# Run it yourself", "",
           "Every chapter is a notebook with a *parameters* cell. Open it with `make lab` (JupyterLab),",
           "or execute it with papermill, e.g.",
           "`papermill notebooks/03_sequence_ABC.ipynb out.ipynb -p profile smoke -p method ewc`",
           "(make the `.ipynb` once with `jupytext --to ipynb notebooks/03_sequence_ABC.py`).",
           "`profile = \"smoke\"` runs any chapter in minutes. The whole book takes a parameter too:",
           "`lungcl book --set epochs=2 --set 'seeds=[0]'` gives it to every chapter that has it (and",
           "executes again only those). This page is generated from the chapters' parameters cells",
           "by `lungcl book`.", ""]
    for source in chapter_sources(root):
        out += [f"## {source.stem}: {chapter_title(source)}", "",
                "| parameter | default | meaning |", "| --- | --- | --- |"]
        for name, value, meaning in chapter_parameters(source):
            cell = value.replace("|", "\\|")
            out.append(f"| `{name}` | `{cell}` | {meaning.replace('|', chr(92) + '|')} |")
        out.append("")
    return "\n".join(out)


def write_page(root: Path) -> Path:
    """Write the page (atomically) only when its text changed, so a current build stays current."""
    path = root / PAGE
    text = render_page(root)
    if not path.exists() or path.read_text() != text:
        atomic_write_bytes(path, text.encode())
    return path
