"""`lungcl book` as a process: two builds on one root take turns, and a stopped build leaves no kernel
and no worker behind (a chapter's grid workers die with the kernel that started them)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("papermill")
pytest.importorskip("jupytext")

REPO = Path(__file__).resolve().parents[1]
TOC = "format: jb-book\nroot: intro\nchapters:\n  - file: notebooks/_executed/01_wait\n"
HEADER = '''# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% tags=["parameters"]
profile = "cpu"
seed = 0

'''
# a chapter that waits for the file `gate` in the book's root (the kernel's folder)
WAITING = HEADER + '''# %%
import os, pathlib, time
pathlib.Path("started").write_text(str(os.getpid()))
while not pathlib.Path("gate").exists():
    time.sleep(0.1)
'''
# a chapter whose grid worker (a lungcl worker process, as the executor starts them) runs for ten minutes
WORKING = HEADER + '''# %%
import json, os, pathlib, time, multiprocessing
from concurrent.futures import ProcessPoolExecutor
from lungcl.runs.lifeline import worker_init
pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=worker_init,
                           initargs=(os.getpid(),))
worker = pool.submit(os.getpid).result()
pool.submit(time.sleep, 600)
pathlib.Path("started").write_text(json.dumps([os.getpid(), worker]))
time.sleep(600)
'''


def make_book(root: Path, chapter: str) -> Path:
    (root / "notebooks").mkdir(parents=True)
    (root / "_toc.yml").write_text(TOC)
    (root / "intro.md").write_text("# Intro\n")
    (root / "notebooks" / "01_wait.py").write_text(chapter)
    return root


def start_book(root: Path, data_dir: Path, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "lungcl.cli.main", "book", "--root", str(root), "--profile", "smoke",
           "--no-render", "--data-dir", str(data_dir), "--results", str(root / "results")]
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    with log.open("w") as out:
        return subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:.0f} s: {what}")
        time.sleep(0.1)


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, which holds no memory, counts as ended)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2] != "Z"


@pytest.mark.slow
def test_a_second_build_on_one_root_waits_for_the_first_and_names_it(tmp_path, smoke_store, data_dir):
    root = make_book(tmp_path / "book", WAITING)
    first = start_book(root, data_dir, tmp_path / "first.log")
    try:
        wait_for((root / "started").exists, 120, "the first build's chapter started")
        second = start_book(root, data_dir, tmp_path / "second.log")
        wait_for(lambda: "waiting" in (tmp_path / "second.log").read_text(), 60, "the second build waits")
        said = (tmp_path / "second.log").read_text()
        assert f"another lungcl book (pid {first.pid}, since " in said, said
        assert second.poll() is None  # it waits, it did not fail
        (root / "gate").write_text("")
        assert first.wait(120) == 0, (tmp_path / "first.log").read_text()
        assert second.wait(120) == 0, (tmp_path / "second.log").read_text()
    finally:
        (root / "gate").write_text("")
        for proc in (first, locals().get("second")):
            if proc is not None and proc.poll() is None:
                proc.kill()
    # the second found the first's chapter current: executed once, no second partial notebook
    assert "current, not executed again" in (tmp_path / "second.log").read_text()
    assert not list((root / "notebooks" / "_executed").glob("*.partial.ipynb"))


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="looks at processes in /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_stopped_build_leaves_no_kernel_and_no_worker(tmp_path, smoke_store, data_dir, signum):
    root = make_book(tmp_path / "book", WORKING)
    build = start_book(root, data_dir, tmp_path / "build.log")
    kernel = worker = None
    try:
        wait_for((root / "started").exists, 120, "the chapter's worker started")
        kernel, worker = json.loads((root / "started").read_text())
        assert alive(kernel) and alive(worker)
        build.send_signal(signum)
        build.wait(60)
        wait_for(lambda: not alive(kernel) and not alive(worker), 30, "the kernel and its worker ended")
    finally:
        for pid in (kernel, worker):
            if pid is not None and alive(pid):
                os.kill(pid, signal.SIGKILL)
        if build.poll() is None:
            build.kill()
    if signum == signal.SIGTERM:
        said = (tmp_path / "build.log").read_text()
        assert build.returncode == 128 + signum and "interrupted by SIGTERM" in said, said
        assert "Traceback" not in said, said
