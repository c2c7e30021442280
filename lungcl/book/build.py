"""Build the book: jupytext text notebooks -> papermill execution -> Jupyter Book HTML.

Each chapter is a py:percent notebook ``notebooks/NN_name.py``. The build syncs
its paired ``.ipynb`` (what ``jupytext --sync`` does), executes it with the
profile's parameters into ``notebooks/_executed/NN_name.ipynb`` and renders the
book with ``jupyter-book build -W`` and execution off. A chapter whose source,
parameters, package code and patch store did not change since its last
successful execution is not executed again (a JSON stamp beside it says so).

Notebooks import :func:`chapter_setup` to resolve their folders and set the
figure style, so they run the same from papermill, Jupyter or the pipeline.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from .. import __version__
from ..atomic import atomic_write_bytes, atomic_write_json, make_folder
from ..errors import LungclError
from ..profiles import check_profile
from ..project import book_folder, chapter_sources, project_root
from .guard import execute_stoppably, one_build_at_a_time
from .parameters import check_chapter_settings
from .pdf import PDF, find_chromium, print_pdf, printable_page

KERNEL_NAME = "python3"  # ipykernel's own spec: always the interpreter that runs papermill
EXECUTED = "notebooks/_executed"
STAMP_VERSION = 1


# ---------------------------------------------------------------- the pipeline

@dataclass(frozen=True)
class Chapter:
    """One chapter notebook: ``notebooks/NN_name.py``."""

    name: str  # "03_sequence_ABC"
    source: Path

    @property
    def number(self) -> str:
        return self.name.split("_", 1)[0]


def discover_chapters(root: Path) -> list[Chapter]:
    """The chapter notebooks of the book at ``root``, in number order."""
    return [Chapter(p.stem, p) for p in chapter_sources(root)]


BUILD_PARAMETERS = {"profile": "--profile", "source": "--source", "data_dir": "--data-dir",
                    "results_dir": "--results", "seed": "--seed",
                    "workers": "--workers"}  # set by lungcl book's own flags


def chapter_overrides(chapters: list[Chapter], overrides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each chapter's share of ``overrides`` (the parameters its cell declares); a clear error for a
    parameter that a flag of its own sets, that no chapter declares or whose value has the wrong form
    (:mod:`lungcl.book.parameters`)."""
    if not overrides:  # nothing to share out: no chapter's cell need be read (0.5 s for the book)
        return {c.name: {} for c in chapters}
    from .parameters_page import chapter_parameters

    for key in overrides:
        if key in BUILD_PARAMETERS:
            raise LungclError(f"{key} is set with {BUILD_PARAMETERS[key]}, not --set")
    declared = {c.name: {name for name, _, _ in chapter_parameters(c.source)} for c in chapters}
    unknown = sorted(set(overrides) - set().union(*declared.values()))
    if unknown:
        known = sorted(set().union(*declared.values()) - set(BUILD_PARAMETERS))
        raise LungclError(f"no chapter has the parameter {', '.join(unknown)}; the chapters' parameters "
                          f"are {', '.join(known)} (book/run_it_yourself.md says what each does)")
    check_chapter_settings(overrides)
    return {name: {k: v for k, v in overrides.items() if k in names} for name, names in declared.items()}


def select_chapters(chapters: list[Chapter], only: list[str] | None) -> list[Chapter]:
    """Chapters named by number ("03") or name ("03_sequence_ABC"); all when ``only`` is empty."""
    if not only:
        return chapters
    wanted = [w.strip() for item in only for w in item.split(",") if w.strip()]
    chosen = []
    for w in wanted:
        hits = [c for c in chapters if w in (c.number, c.name, c.name + ".py")]
        if not hits:
            names = ", ".join(c.name for c in chapters)
            raise LungclError(f"no chapter {w!r}; chapters are {names}")
        chosen += [c for c in hits if c not in chosen]
    return sorted(chosen, key=lambda c: c.name)


def _tree_digest(folder: Path, patterns: tuple[str, ...]) -> str:
    h = hashlib.sha256()
    for pattern in patterns:
        for p in sorted(folder.rglob(pattern)):
            if "__pycache__" not in p.parts:
                h.update(str(p.relative_to(folder)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def _store_digest(data_dir: Path, source: str, profile: str) -> str | None:
    """The patch store's digest (the one run records are checked against), so re-prepared data
    re-executes the chapters."""
    from ..data.store import store_digest

    return store_digest(data_dir, source, profile)


def execution_stamp(chapter: Chapter, parameters: dict, package_digest: str,
                    store_digest: str | None) -> dict:
    """What makes an executed chapter current: its source, parameters, code and data."""
    body = {"stamp_version": STAMP_VERSION, "chapter": chapter.name,
            "source_sha256": hashlib.sha256(chapter.source.read_bytes()).hexdigest(),
            "parameters": parameters, "lungcl_version": __version__,
            "package_sha256": package_digest, "store_sha256": store_digest}
    body["key"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return body


def _shown_path(path: Path, root: Path) -> str:
    """A folder as the notebooks get it: relative to the book root when inside it."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _what_changed(old: dict, new: dict, has_output: bool) -> str:
    """Why a chapter is executed again, in words."""
    if not old or not has_output:
        return "never executed"
    names = {"source_sha256": "notebook changed", "parameters": "parameters changed",
             "package_sha256": "lungcl code changed", "store_sha256": "patch store changed",
             "lungcl_version": "lungcl version changed"}
    changed = [text for key, text in names.items() if old.get(key) != new.get(key)]
    return ", ".join(changed) or "stamp format changed"


@dataclass
class ChapterResult:
    name: str
    status: str  # "executed" | "current"
    seconds: float


@dataclass
class BuildReport:
    """What a build did, for the CLI's closing table."""

    chapters: list[ChapterResult] = field(default_factory=list)
    render_seconds: float | None = None
    html_index: Path | None = None
    missing: list[str] = field(default_factory=list)
    pdf: Path | None = None
    pdf_seconds: float | None = None


def _require_tools() -> None:
    missing = []
    for module in ("papermill", "jupytext", "jupyter_book", "ipykernel", "nbformat"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise LungclError(f"the book tools are not installed ({', '.join(missing)}); "
                          "run: pip install -e '.[book]'")


def sync_pair(chapter: Chapter):
    """Update the paired ``.ipynb`` from the ``.py`` (``jupytext --sync``) and return the notebook.

    A text notebook without pairing metadata still gets its ``.ipynb`` (written from the text).
    """
    import jupytext
    from jupytext.cli import jupytext as jupytext_cli

    ipynb = chapter.source.with_suffix(".ipynb")
    text = jupytext.read(chapter.source)
    try:
        if text.metadata.get("jupytext", {}).get("formats"):
            jupytext_cli(["--sync", "--quiet", str(chapter.source)])
        elif not ipynb.exists() or ipynb.stat().st_mtime < chapter.source.stat().st_mtime:
            jupytext.write(text, ipynb)
    except (SystemExit, Exception) as exc:  # jupytext reports bad pairing by exiting
        raise LungclError(f"jupytext could not sync {chapter.source}: {exc}") from exc
    notebook = jupytext.read(chapter.source)
    notebook.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python 3 (ipykernel)",
                                       "language": "python"}
    return notebook


PARAMETER_CELLS = {"parameters": "the parameters cell (the defaults)",
                   "injected-parameters": "the parameters this build injected"}  # their collapsed cells' labels
INJECTED_NOTE = ("# Parameters of this build, injected by papermill (`lungcl book`); "
                 "they override the defaults above")


def execute_chapter(chapter: Chapter, notebook, parameters: dict, root: Path, output: Path,
                    show_progress: bool) -> int:
    """Run one notebook with papermill into ``output``; a failure names the chapter and the cell.

    Returns the number of stderr outputs (warnings, progress bars), which the book hides.
    """
    import nbformat
    import papermill as pm
    from jupyter_client.manager import KernelManager
    from papermill.exceptions import PapermillExecutionError

    with tempfile.TemporaryDirectory(prefix="lungcl-inspect-") as tmp:
        probe = Path(tmp) / f"{chapter.name}.ipynb"
        nbformat.write(notebook, probe)
        declared = set(pm.inspect_notebook(str(probe)))
    if not declared:
        raise LungclError(f"chapter {chapter.name} has no cell tagged 'parameters' "
                          "(papermill needs one to pass the profile and folders)")
    params = {k: v for k, v in parameters.items() if k in declared}
    partial = output.with_name(output.stem + ".partial.ipynb")
    failed = output.with_name(output.stem + ".failed.ipynb")
    kernel_log = output.with_name(output.stem + ".kernel.log")
    env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1")
    try:
        with tempfile.TemporaryDirectory(prefix="lungcl-kernel-") as sockets, \
                kernel_log.open("w") as log:
            # IPC sockets in a private folder: the kernel opens no TCP port. Its own
            # messages (not the notebook's outputs) go to the kernel log.
            km = KernelManager(kernel_name=KERNEL_NAME, transport="ipc",
                               ip=str(Path(sockets) / "kernel"))
            km.start_kernel(cwd=str(root), env=env, stdout=log, stderr=log)
            try:
                execute_stoppably(lambda: pm.execute_notebook(
                    notebook, str(partial), parameters=params, kernel_name=KERNEL_NAME, km=km,
                    cwd=str(root), progress_bar=show_progress, log_output=False,
                    request_save_on_cell_execute=False), lambda: km.shutdown_kernel(now=True))
            finally:
                if km.has_kernel:  # nbclient leaves a kernel it did not start running
                    km.shutdown_kernel(now=False)
    except PapermillExecutionError as exc:
        if partial.exists():
            partial.replace(failed)
        first = str(exc.evalue).splitlines()[0] if exc.evalue else ""
        code = next((ln.strip() for ln in (exc.source or "").splitlines() if ln.strip()), "")
        code = code if len(code) <= 60 else code[:57] + "..."
        raise LungclError(
            f"chapter {chapter.name} failed in its cell In [{exc.exec_count}] (starting "
            f"{code!r}): {exc.ename}: {first} -- the traceback is in "
            f"{failed.relative_to(root)}") from exc
    except Exception as exc:  # kernel died, could not start, ...
        raise LungclError(f"chapter {chapter.name} could not be executed: "
                          f"{type(exc).__name__}: {exc} (kernel log: {kernel_log.relative_to(root)})"
                          ) from exc
    executed = nbformat.read(partial, as_version=4)
    n_stderr = 0
    for cell in executed.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags:
            cell.source = cell.source.replace("# Parameters", INJECTED_NOTE, 1)
        kind = next((PARAMETER_CELLS[t] for t in ("injected-parameters", "parameters") if t in tags), None)
        if kind and "hide-cell" not in tags:
            # collapsed on the page: the run card shows the parameters as run (and the defaults they changed)
            cell.metadata["tags"] = [*tags, "hide-cell"]
            cell.metadata["mystnb"] = {**cell.metadata.get("mystnb", {}), "code_prompt_show": f"Show {kind}",
                                       "code_prompt_hide": f"Hide {kind}"}
        n_stderr += sum(1 for o in cell.get("outputs", [])
                        if o.get("output_type") == "stream" and o.get("name") == "stderr")
    nbformat.write(executed, partial)
    partial.replace(output)
    failed.unlink(missing_ok=True)
    return n_stderr


def toc_chapters(root: Path) -> list[str]:
    """The executed-notebook entries the table of contents points at (``notebooks/_executed/..``)."""
    import yaml

    entries: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            f = node.get("file")
            if isinstance(f, str) and f.startswith(EXECUTED + "/"):
                entries.append(Path(f).name)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(yaml.safe_load((root / "_toc.yml").read_text()))
    return entries


def student_config(root: Path) -> Path:
    """A copy of ``_config.yml`` with sphinx-exercise's ``hide_solutions`` on (the student edition),
    written under ``_build/``; jupyter-book reads it through ``--config``."""
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text())
    sphinx = config.setdefault("sphinx", {})
    sphinx.setdefault("config", {})["hide_solutions"] = True
    # jupyter-book finds local extensions relative to the config file, which is now in _build/
    sphinx["local_extensions"] = {name: str((Path(root) / folder).resolve())
                                  for name, folder in (sphinx.get("local_extensions") or {}).items()}
    path = root / "_build" / "_config.student.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, yaml.safe_dump(config, sort_keys=False).encode())
    return path


def render_book(root: Path, progress: Callable[[str], None], solutions: bool = True,
                builder: str = "html") -> Path:
    """``jupyter-book build -W`` with execution off; returns ``_build/html/index.html``
    (``builder="singlehtml"``: ``_build/singlehtml/index.html``, the whole book on one page).
    ``solutions=False``: the student edition, exercises without their solutions."""
    cmd = [sys.executable, "-c", "import sys; from jupyter_book.cli.main import main; sys.exit(main())",
           "build", str(root), "-W", "-n", "--keep-going", "--builder", builder]
    if not solutions:
        cmd += ["--config", str(student_config(root))]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    log = root / "_build" / ("jupyter-book.log" if builder == "html" else f"jupyter-book-{builder}.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    if proc.returncode != 0:
        problems = [ln for ln in (proc.stderr + proc.stdout).splitlines()
                    if "WARNING" in ln or "ERROR" in ln or "Error" in ln]
        first = problems[0].strip() if problems else f"exit code {proc.returncode}"
        raise LungclError(f"jupyter-book build failed ({len(problems)} problem(s)); first: {first} "
                          f"-- full log in {log.relative_to(root)}")
    index = root / "_build" / builder / "index.html"
    if builder == "html":
        write_landing_page(index, _book_title(root))
    progress(f"rendered {index.relative_to(root)}")
    return index


def write_landing_page(index: Path, title: str) -> None:
    """Replace jupyter-book's bare ``<meta http-equiv="Refresh">`` ``index.html`` by a whole page that
    redirects the same way: a title, the book's icon (without one a browser asks the server for
    ``/favicon.ico`` and logs a 404) and a link for readers whose browser does not follow the refresh."""
    import html
    import re

    text = index.read_text()
    found = re.search(r'url=([^"\']+)', text)
    if "<html" in text or found is None:  # already a whole page, or not the redirect we know
        return
    target = html.escape(found.group(1).strip(), quote=True)
    title = html.escape(title)
    icons = sorted((index.parent / "_static").glob("favicon.*"))
    icon = f'<link rel="icon" href="_static/{icons[0].name}">\n' if icons else ""
    page = (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n'
            f'{icon}<meta http-equiv="Refresh" content="0; url={target}">\n</head>\n'
            f'<body><p><a href="{target}">{title}</a></p></body>\n</html>\n')
    atomic_write_bytes(index, page.encode())


def _book_title(root: Path) -> str:
    import yaml

    config = root / "_config.yml"
    title = yaml.safe_load(config.read_text()).get("title") if config.exists() else None
    return str(title or "lungcl")


def build_book(root: str | Path | None = None, profile: str = "cpu", source: str = "phantom",
               only: list[str] | None = None, data_dir: str | Path | None = None,
               results_dir: str | Path | None = None, seed: int = 0, force: bool = False,
               render: bool = True, progress: Callable[[str], None] = print,
               solutions: bool = True, overrides: dict[str, Any] | None = None,
               workers: int | None = None, pdf: bool = False) -> BuildReport:
    """Execute the chapters that are not current, then render the book; see the module doc.

    ``workers`` reaches the chapters that declare it (runs they compute at once; None: every usable
    core); it changes no number, so it is not part of a chapter's stamp.

    ``overrides`` are chapter parameters (``{"epochs": 2}``), each given to the chapters that declare
    it; a chapter's stamp holds only its own, so an override re-executes only the chapters it reaches.
    ``data_dir`` / ``results_dir``: None is ``data`` / ``results`` under the book's root; a relative
    one given is relative to the current folder.
    ``pdf``: also print the whole book to ``_build/pdf/lungcl-book.pdf`` (:mod:`lungcl.book.pdf`).
    """
    build_start = time.perf_counter()
    _require_tools()
    chromium = find_chromium() if pdf and render else None  # before any work
    check_profile(profile)
    check_chapter_settings({"source": source, "seed": seed})
    root = Path(root).resolve() if root else project_root()
    if not (root / "_toc.yml").exists():
        raise LungclError(f"{root} has no _toc.yml: not a lungcl book")
    data_dir, results_dir = book_folder("data", data_dir, root), book_folder("results", results_dir, root)
    parameters = {"profile": profile, "source": source, "data_dir": _shown_path(data_dir, root),
                  "results_dir": _shown_path(results_dir, root), "seed": int(seed)}
    chapters = discover_chapters(root)
    selected = select_chapters(chapters, only)
    own = chapter_overrides(chapters, overrides or {})
    executed = root / EXECUTED
    make_folder(executed)
    package_digest = _tree_digest(Path(__file__).resolve().parent, ("*.py", "*.csv"))
    if source == "phantom" and _store_digest(data_dir, source, profile) is None:
        # prepared before any chapter runs, so that every chapter is stamped with the same data (a chapter
        # stamped before the store existed would look stale on the next build)
        from ..data.prepare import prepare_store

        progress(f"preparing the phantom patch store ({profile} profile) before the chapters")
        prepare_store(data_dir, "phantom", profile, progress=False)
    with one_build_at_a_time(executed, progress):  # a second build on this root waits for this one
        return _execute_and_render(selected, parameters, own, executed, package_digest, root, data_dir,
                                   source, profile, force, render, progress, solutions, workers,
                                   chapters=chapters, build_start=build_start, chromium=chromium)


def _execute_and_render(selected: list[Chapter], parameters: dict, own: dict[str, dict], executed: Path,
                        package_digest: str, root: Path, data_dir: Path, source: str, profile: str, force: bool,
                        render: bool, progress: Callable[[str], None], solutions: bool,
                        workers: int | None = None, chapters: list[Chapter] | None = None,
                        build_start: float = 0.0, chromium: str | None = None) -> BuildReport:
    """The body of :func:`build_book`, run under the book's build lock: the chapters, then the HTML."""
    report = BuildReport()
    show_bar = sys.stderr.isatty()
    for n, chapter in enumerate(selected, 1):
        start = time.perf_counter()
        notebook = sync_pair(chapter)
        chapter_params = {**parameters, **own[chapter.name]}
        run_params = {**chapter_params, **({} if workers is None else {"workers": int(workers)})}
        stamp = execution_stamp(chapter, chapter_params, package_digest,
                                _store_digest(data_dir, source, profile))
        output = executed / f"{chapter.name}.ipynb"
        stamp_path = executed / f"{chapter.name}.stamp.json"
        old = json.loads(stamp_path.read_text()) if stamp_path.exists() else {}
        if not force and output.exists() and old.get("key") == stamp["key"]:
            report.chapters.append(ChapterResult(chapter.name, "current", 0.0))
            progress(f"[{n}/{len(selected)}] {chapter.name}: current, not executed again")
            continue
        why = "forced" if force else _what_changed(old, stamp, output.exists())
        progress(f"[{n}/{len(selected)}] {chapter.name}: executing ({profile} profile; {why})")
        n_stderr = execute_chapter(chapter, notebook, run_params, root, output, show_bar)
        if n_stderr:
            progress(f"    {n_stderr} stderr output(s) (warnings or progress bars) are hidden in the "
                     f"book; read them in {output.relative_to(root)}")
        # the chapter may have prepared the store: stamp with the data it actually used
        stamp = execution_stamp(chapter, chapter_params, package_digest,
                                _store_digest(data_dir, source, profile))
        seconds = time.perf_counter() - start
        # when and how long, for the front page's execution table (not part of the stamp's key)
        atomic_write_json(stamp_path, {**stamp, "seconds": round(seconds, 1),
                                       "executed_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        report.chapters.append(ChapterResult(chapter.name, "executed", seconds))
        progress(f"[{n}/{len(selected)}] {chapter.name}: done in {seconds:.0f} s")
    report.missing = [name for name in toc_chapters(root) if not (executed / f"{name}.ipynb").exists()]
    if render:
        if report.missing:
            progress("not rendering: never executed: " + ", ".join(report.missing)
                     + " (run lungcl book without --only)")
        else:
            start = time.perf_counter()
            from .parameters_page import write_page

            progress(f"wrote {write_page(root).relative_to(root)} from the parameters cells")
            table = write_execution_table(root, chapters or selected, report, time.perf_counter() - build_start)
            progress(f"wrote {table.relative_to(root)} (the front page's execution table)")
            progress("rendering the book (jupyter-book build -W, execution off)")
            report.html_index = render_book(root, progress, solutions)
            report.render_seconds = time.perf_counter() - start
            atomic_write_json(root / RENDER_TIME, {"seconds": round(report.render_seconds, 1)})
            if chromium is not None:
                start = time.perf_counter()
                progress("rendering the book on one page (jupyter-book build --builder singlehtml) for the PDF")
                single = render_book(root, progress, solutions, builder="singlehtml")
                report.pdf = print_pdf(printable_page(single), root / PDF, chromium)
                report.pdf_seconds = time.perf_counter() - start
                progress(f"printed {report.pdf.relative_to(root)} with headless Chromium")
    return report


RENDER_TIME = "_build/lungcl-render.json"  # the last render's duration, for the next build's front page


def write_execution_table(root: Path, chapters: list[Chapter], report: BuildReport, build_seconds: float) -> Path:
    """The front page's table of every chapter's last execution (from the stamps) and this build's."""
    from .execution_table import ExecutionRow, write_table
    from .parameters_page import chapter_title

    status = {c.name: c.status for c in report.chapters}
    rows = []
    for chapter in chapters:
        stamp_path = root / EXECUTED / f"{chapter.name}.stamp.json"
        stamp = json.loads(stamp_path.read_text()) if stamp_path.exists() else {}
        rows.append(ExecutionRow(chapter.name, chapter_title(chapter.source), status.get(chapter.name, "not selected"),
                                 stamp.get("executed_at"), stamp.get("seconds")))
    last = root / RENDER_TIME
    last_render = json.loads(last.read_text()).get("seconds") if last.exists() else None
    return write_table(root, rows, build_seconds, last_render)
