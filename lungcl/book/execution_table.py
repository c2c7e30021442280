"""The front page's execution table: every chapter's last execution (when, how long) and what this build
did with it, as MyST-NB's execution table shows for books it executes itself.

``lungcl book`` writes it (:func:`write_table`) before rendering, to a file ``book/intro.md`` includes;
the file changes with every build, so it is not committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_write_bytes

PAGE = "book/_execution_table.md"
STATUS_TEXT = {"executed": "executed by this build", "current": "unchanged: not executed again",
               "not selected": "not executed (left out by --only)"}


@dataclass(frozen=True)
class ExecutionRow:
    """One chapter: its title, what this build did, and its last execution (from its stamp)."""

    name: str
    title: str
    status: str  # "executed" | "current" | "not selected"
    executed_at: str | None  # UTC, ISO format
    seconds: float | None


def _seconds(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min"


def render_table(rows: list[ExecutionRow], build_seconds: float, last_render_seconds: float | None) -> str:
    """The Markdown of the table and the build's totals."""
    out = ["| chapter | this build | last executed (UTC) | execution time |", "| --- | --- | --- | --- |"]
    for r in rows:
        when = (r.executed_at or "?").replace("T", " ").replace("+00:00", "")
        status = STATUS_TEXT.get(r.status, r.status)
        out.append(f"| {r.name}: {r.title.replace('|', '/')} | {status} | {when} | {_seconds(r.seconds)} |")
    known = [r.seconds for r in rows if r.seconds is not None]
    executed = [r for r in rows if r.status == "executed"]
    out += ["", f"Executing every chapter took {_seconds(sum(known))} in their last executions"
            + (f" ({len(rows) - len(known)} chapter(s) without a recorded time)" if len(known) < len(rows) else "")
            + f". This build executed {len(executed)} of the {len(rows)} chapters"
            + f" in {_seconds(sum(r.seconds or 0.0 for r in executed))}"
            + f" and spent {_seconds(build_seconds)} in all before rendering"
            + ("" if last_render_seconds is None else
               f"; rendering the HTML took {_seconds(last_render_seconds)} in the build before")
            + ". A chapter's execution time includes training the runs it computed; runs already in the "
            "results folder are loaded instead (each page's run card says which).", ""]
    return "\n".join(out)


def write_table(root: Path, rows: list[ExecutionRow], build_seconds: float,
                last_render_seconds: float | None) -> Path:
    """Write the table (atomically) to :data:`PAGE` under ``root``; returns its path."""
    path = root / PAGE
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, render_table(rows, build_seconds, last_render_seconds).encode())
    return path
