"""A chapter page's run card: how the page was computed, built while its notebook executes.

The card names the parameters as run (and which differ from the chapter's defaults), the commit of the
lungcl code and whether its tree had uncommitted changes, the versions that decide the numbers, the
patch store's digest, every run the page read (computed by this execution or loaded from the results
folder, with its recorded wall time), the machine and the date. :func:`collect` gathers it;
:meth:`RunCard.html` and :meth:`RunCard.markdown` render it (a notebook shows the HTML).
"""

from __future__ import annotations

import ast
import html
import os
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence


@dataclass(frozen=True)
class RunEntry:
    """One run the page read: computed during this execution, or loaded (computed before)."""

    run_id: str
    label: str
    status: str  # "computed" | "loaded"
    seconds: float | None  # the run's recorded wall time
    created: str | None  # when its record was written (UTC)


@dataclass(frozen=True)
class RunCard:
    """Everything the card shows; pure data, rendered by :meth:`html` and :meth:`markdown`."""

    executed: str  # UTC, ISO format, seconds
    parameters: dict[str, Any]
    defaults: dict[str, Any]
    commit: str | None
    dirty: bool | None
    versions: dict[str, str]
    store: str | None  # "phantom / smoke" etc.; None: the page reads no patch store
    store_digest: str | None
    cores: int | None
    gpu: str | None
    runs: list[RunEntry] = field(default_factory=list)

    @property
    def changed(self) -> list[str]:
        """Parameters whose value as run differs from the chapter's default."""
        return [k for k, v in self.parameters.items() if k in self.defaults and self.defaults[k] != v]

    def _facts(self) -> list[tuple[str, str]]:
        if self.commit is None:
            code = "not a git checkout (an installed package)"
        else:
            code = self.commit[:12] + {True: " with uncommitted changes", False: " (clean tree)",
                                       None: ""}[self.dirty]
        versions = ", ".join(f"{k} {v}" for k, v in self.versions.items())
        machine = f"{self.cores or '?'} cores, " + (f"GPU: {self.gpu}" if self.gpu else "no GPU")
        if self.store is None:
            store = "none read by this page"
        else:
            store = f"{self.store}, digest {self.store_digest[:16]}" if self.store_digest else \
                f"{self.store}: no store prepared"
        return [("executed", self.executed.replace("T", " ").replace("+00:00", " UTC")), ("lungcl commit", code),
                ("versions", versions), ("patch store", store), ("machine", machine)]

    def _runs_summary(self) -> str:
        if not self.runs:
            return "no recorded runs (this page trains nothing it keeps)"
        computed = sum(r.status == "computed" for r in self.runs)
        seconds = sum(r.seconds or 0.0 for r in self.runs)
        return (f"{len(self.runs)} run(s): {computed} computed by this execution, {len(self.runs) - computed} "
                f"loaded from the results folder; {_duration(seconds)} of recorded wall time in all")

    def summary(self) -> str:
        """The card's one line: date, commit, versions, runs."""
        commit = "no git commit" if self.commit is None else \
            f"commit {self.commit[:8]}{' (uncommitted changes)' if self.dirty else ''}"
        versions = ", ".join(f"{k} {self.versions[k]}" for k in ("lungcl", "torch", "python") if k in self.versions)
        return f"{self._facts()[0][1]} · {commit} · {versions} · {len(self.runs)} run(s) read"

    def html(self) -> str:
        """The card as an HTML block (tables scroll inside the card on a narrow screen)."""
        e = html.escape
        facts = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in self._facts())
        params = "".join(
            f"<tr><td><code>{e(k)}</code></td><td><code>{e(repr(v))}</code></td>"
            f"<td>{'<code>' + e(repr(self.defaults[k])) + '</code>' if k in self.changed else ''}</td></tr>"
            for k, v in self.parameters.items())
        n_changed = len(self.changed)
        runs = "".join(
            f"<tr><td><code>{e(r.run_id[:12])}</code></td><td>{e(r.label)}</td><td>{e(r.status)}</td>"
            f"<td>{e(_duration(r.seconds))}</td><td>{e(r.created or '?')}</td></tr>" for r in self.runs)
        parts = ['<div class="lungcl-run-card">',
                 f'<p class="lungcl-run-card-title"><strong>Run card</strong> · {e(self.summary())}</p>',
                 f'<div class="lungcl-scroll"><table>{facts}</table></div>']
        if self.parameters:
            parts.append(f"<details><summary>Parameters as run ({len(self.parameters)}; {n_changed} differ from "
                         "the chapter's defaults)</summary><div class=\"lungcl-scroll\"><table><thead><tr>"
                         "<th>parameter</th><th>value as run</th><th>default, where different</th></tr></thead>"
                         f"<tbody>{params}</tbody></table></div></details>")
        else:
            parts.append("<p>Parameters: not recorded (not executed as a notebook).</p>")
        if self.runs:
            parts.append(f"<details><summary>Runs read: {e(self._runs_summary())}</summary>"
                         "<div class=\"lungcl-scroll\"><table><thead><tr><th>run id</th><th>run</th><th>this "
                         "execution</th><th>wall time</th><th>record written (UTC)</th></tr></thead>"
                         f"<tbody>{runs}</tbody></table></div></details>")
        else:
            parts.append(f"<p>Runs read: {e(self._runs_summary())}.</p>")
        parts.append("</div>")
        return "\n".join(parts)

    def markdown(self) -> str:
        """The card as Markdown (for a plain-text front end)."""
        lines = [f"**Run card** · {self.summary()}", ""]
        lines += [f"- {k}: {v}" for k, v in self._facts()]
        lines.append("- parameters as run: " + (", ".join(
            f"`{k} = {v!r}`" + (f" (default `{self.defaults[k]!r}`)" if k in self.changed else "")
            for k, v in self.parameters.items()) or "not recorded"))
        lines.append(f"- runs read: {self._runs_summary()}")
        lines += [f"  - `{r.run_id[:12]}` {r.label}: {r.status}, {_duration(r.seconds)}" for r in self.runs]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return self.html()

    def _repr_markdown_(self) -> str:
        return self.markdown()


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


# ---------------------------------------------------------------- what the card reads

def parameter_cells(inputs: Iterable[str]) -> list[dict[str, Any]]:
    """The cells among ``inputs`` (a kernel's executed sources, in order) made only of ``name = literal``
    assignments: a chapter's parameters cell and papermill's injected one. Each as ``{name: value}``."""
    cells = []
    for source in inputs:
        try:
            body = ast.parse(source).body
        except SyntaxError:
            continue
        values: dict[str, Any] = {}
        for stmt in body:
            if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                    and isinstance(stmt.targets[0], ast.Name)):
                break
            try:
                values[stmt.targets[0].id] = ast.literal_eval(stmt.value)
            except ValueError:
                break
        else:
            if values:
                cells.append(values)
    return cells


def parameters_as_run(namespace: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the parameters' current values, their defaults) from a notebook kernel's namespace: the names are
    those its parameter cells assigned (``In`` is IPython's list of executed sources); the defaults are
    the first such cell's (the chapter's own), the values what the namespace holds now."""
    cells = parameter_cells(namespace.get("In", []))
    if not cells:
        return {}, {}
    names = list(dict.fromkeys(k for cell in cells for k in cell))
    return {k: namespace.get(k) for k in names}, dict(cells[0])


def code_commit(folder: Path) -> tuple[str | None, bool | None]:
    """(HEAD's commit, whether the tree has uncommitted or untracked changes) of the git checkout holding
    ``folder``; (None, None) outside a checkout or without git."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout if done.returncode == 0 else None

    head = git("rev-parse", "HEAD")
    if head is None:
        return None, None
    status = git("status", "--porcelain")
    return head.strip(), None if status is None else bool(status.strip())


def run_entries(records: Iterable, started: datetime) -> list[RunEntry]:
    """The runs behind ``records`` (any run kind's records), each computed by this execution when its
    record was written after ``started``, else loaded."""
    entries = []
    for r in records:
        created = r.data.get("created")
        when = datetime.fromisoformat(created) if created else None
        status = "computed" if when is not None and when >= started.replace(microsecond=0) else "loaded"
        label = getattr(r.config, "label", None) or r.run_id
        seconds = r.data.get("timings", {}).get("total_s")
        entries.append(RunEntry(r.run_id, str(label), status, None if seconds is None else float(seconds),
                                created.replace("T", " ").replace("+00:00", "") if created else None))
    return entries


def gpu_name() -> str | None:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def collect(parameters: Mapping[str, Any], defaults: Mapping[str, Any], records: Sequence, started: datetime,
            data_dir: Path, source: str | None, profile: str, now: datetime | None = None) -> RunCard:
    """The card of a page executed from ``started``, which read ``records`` and the patch store of
    ``source`` / ``profile`` under ``data_dir`` (``source`` None: no store)."""
    from ..data.store import store_digest
    from ..runs.folder import package_versions

    commit, dirty = code_commit(Path(__file__).resolve().parent)
    versions = package_versions()
    ordered = {k: versions[k] for k in ("lungcl", "torch", "python") if k in versions}
    ordered.update({k: v for k, v in versions.items() if k not in ordered})
    now = now or datetime.now(timezone.utc)
    return RunCard(executed=now.isoformat(timespec="seconds"), parameters=dict(parameters),
                   defaults=dict(defaults), commit=commit, dirty=dirty, versions=ordered,
                   store=None if source is None else f"{source} / {profile}",
                   store_digest=None if source is None else store_digest(data_dir, source, profile),
                   cores=os.cpu_count(), gpu=gpu_name(), runs=run_entries(records, started))
