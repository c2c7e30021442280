"""`lungcl grid` killed with SIGKILL at random moments, stopped by any signal while its workers compute,
or run twice at once on one results folder: no process of the grid outlives it, each run is computed
once and the final records equal an uninterrupted grid's."""

from __future__ import annotations

import fcntl
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lungcl.experiments.records import load_record
from lungcl.experiments.runner import execute_grid, grid_configs

REPO = Path(__file__).resolve().parents[1]
METHODS = ["sgd", "ewc"]
KILL_SEED = 15


def grid_command(data_dir: Path, results: Path, *options: str) -> list[str]:
    return [sys.executable, "-m", "lungcl.cli.main", "grid", "--profile", "smoke", "--orders", "ABC",
            "--methods", ",".join(METHODS), "--data-dir", str(data_dir), "--results", str(results), "--quiet",
            *options]


def a_run_is_computing(results: Path) -> bool:
    """True when some run's lock is held (a process is computing it): a shared lock cannot be taken."""
    for lock in (results / "runs").glob("*/.lock"):
        with open(lock) as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(fh, fcntl.LOCK_UN)
    return False


def kill_mid_run(proc: subprocess.Popen, results: Path, rng: random.Random,
                 signum: int = signal.SIGKILL) -> bool:
    """Wait until the grid computes a run, let it go on for a random moment, send it ``signum`` (SIGKILL).

    False when the grid ended first (nothing left to compute). Waiting for the lock instead of
    sleeping a fixed time keeps the kill inside a run however fast the machine is."""
    deadline = time.monotonic() + 300
    while proc.poll() is None and not a_run_is_computing(results):
        if time.monotonic() > deadline:
            raise AssertionError("the grid never started computing a run")
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, 2.0))
    if proc.poll() is not None:
        return False
    proc.send_signal(signum)  # SIGKILL: no handler runs, files are as the kill left them
    return True


def start_grid(data_dir: Path, results: Path, *options: str) -> subprocess.Popen:
    """The grid in a subprocess importing this checkout's code, one torch thread, in a session of its
    own (its id: the grid's pid), so that its workers can be found however they were re-parented."""
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.Popen(grid_command(data_dir, results, *options), cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def live_processes_of_session(session: int) -> list[str]:
    """'pid command' of every process (zombies aside: they hold no memory) in the session ``session``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # ended while we looked
            continue
        state, _ppid, _pgrp, sid = text[text.rindex(")") + 2:].split()[:4]
        if int(sid) == session and state != "Z":
            found.append(f"{stat.parent.name} {text[text.index('(') + 1:text.rindex(')')]}")
    return found


def wait_until_gone(session: int, seconds: float) -> list[str]:
    """The session's live processes still there after at most ``seconds`` (none: all ended)."""
    deadline = time.monotonic() + seconds
    while (left := live_processes_of_session(session)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@pytest.fixture(scope="module")
def reference(smoke_store, data_dir, tmp_path_factory) -> dict[str, dict]:
    """run id -> comparable record of the uninterrupted grid (in this process, one thread)."""
    configs = grid_configs(["ABC"], METHODS, [0], [0], profile="smoke", source="phantom",
                           data_dir=str(data_dir), lidc_root=None)
    outcome = execute_grid(configs, tmp_path_factory.mktemp("reference"), progress=False)
    assert outcome.ok and len(outcome.computed) == len(METHODS)
    return {r.run_id: r.comparable() for r in outcome.records}


def final_records(results: Path, run_ids) -> dict[str, dict]:
    return {rid: load_record(rid, results).comparable() for rid in run_ids}


@pytest.mark.slow
def test_killed_grid_resumes_to_the_same_records(reference, data_dir, tmp_path):
    results = tmp_path / "results"
    rng = random.Random(KILL_SEED)
    killed_while_running = 0
    for _ in range(3):
        proc = start_grid(data_dir, results)
        killed_while_running += kill_mid_run(proc, results, rng)
        proc.communicate()
    proc = start_grid(data_dir, results)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert killed_while_running >= 1
    assert final_records(results, reference) == reference
    leftovers = [p for p in results.rglob("*") if p.name.endswith(".tmp") or p.name == "partial.pt"]
    assert not leftovers, leftovers


@pytest.mark.slow
def test_two_grids_at_once_compute_each_run_once(reference, data_dir, tmp_path):
    results = tmp_path / "results"
    first = start_grid(data_dir, results)
    time.sleep(1.0)
    second = start_grid(data_dir, results)
    outputs = [p.communicate(timeout=600) for p in (first, second)]
    for proc, (out, err) in zip((first, second), outputs):
        assert proc.returncode == 0, err
        assert "Traceback" not in err
    computed = [int(re.search(r"(\d+) computed, (\d+) already done, 0 failed", out).group(1))
                for out, _ in outputs]
    assert sum(computed) == len(METHODS), [o for o, _ in outputs]
    assert final_records(results, reference) == reference


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the grid's processes in /proc")
def test_a_stopped_grid_leaves_no_process_and_resumes_to_the_same_records(reference, data_dir, tmp_path):
    """`grid --workers 2` (two runs at once) stopped by each signal while its workers compute: within a
    bounded wait no process of its session is left (workers, resource tracker), and the next grid
    finishes the same records as the uninterrupted one, with no temporary file left behind."""
    results = tmp_path / "results"
    rng = random.Random(KILL_SEED)
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGKILL):
        proc = start_grid(data_dir, results, "--workers", "2")
        try:
            assert kill_mid_run(proc, results, rng, signum), f"the grid ended before {signum.name}"
            _, err = proc.communicate(timeout=60)
            left = wait_until_gone(proc.pid, 20.0)
        finally:
            for line in live_processes_of_session(proc.pid):  # do not leave them to the next test
                os.kill(int(line.split()[0]), signal.SIGKILL)
        assert not left, f"after {signum.name}: {left}"
        assert "Traceback" not in err, err
        if signum != signal.SIGKILL:
            assert proc.returncode == 128 + signum, (signum.name, proc.returncode, err)
            assert "interrupted" in err, err
    proc = start_grid(data_dir, results, "--workers", "2")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    counts = re.search(r"(\d+) computed, (\d+) already done, 0 failed", out)
    assert counts and int(counts.group(1)) + int(counts.group(2)) == len(METHODS), out
    assert final_records(results, reference) == reference
    leftovers = [p for p in results.rglob("*") if p.name.endswith(".tmp") or p.name == "partial.pt"]
    assert not leftovers, leftovers


def test_a_killed_writers_run_folder_is_taken_over(tmp_path):
    """What a SIGKILLed worker can leave in its run's folder: the lock file (flock is released by the OS)
    and a half-written temporary. The run is not finished, and the next lock holder removes the temporary."""
    from lungcl.runs.folder import ResultsFolder

    folder = ResultsFolder(tmp_path / "results").check(create=True)
    run_dir = folder.run_dir("0123456789abcdef")
    run_dir.mkdir(parents=True)
    (run_dir / ".lock").write_text("")
    half = run_dir / ".record.json.x1y2z3.tmp"
    half.write_text('{"run_id": "01234')
    (run_dir / "partial.pt").write_bytes(b"resume state")  # kept: the next run resumes from it
    assert not folder.is_finished("0123456789abcdef")
    with folder.lock("0123456789abcdef"):  # not busy: nobody holds it
        assert not half.exists()
    assert (run_dir / "partial.pt").exists()
