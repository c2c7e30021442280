"""`lungcl grid` killed with SIGKILL at random moments, or run twice at once on one results folder:
each run is computed once and the final records equal an uninterrupted grid's."""

from __future__ import annotations

import fcntl
import os
import random
import re
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


def grid_command(data_dir: Path, results: Path) -> list[str]:
    return [sys.executable, "-m", "lungcl.cli.main", "grid", "--profile", "smoke", "--orders", "ABC",
            "--methods", ",".join(METHODS), "--data-dir", str(data_dir), "--results", str(results), "--quiet"]


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


def kill_mid_run(proc: subprocess.Popen, results: Path, rng: random.Random) -> bool:
    """Wait until the grid computes a run, let it go on for a random moment, SIGKILL it.

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
    proc.kill()  # SIGKILL: no handler runs, files are as the kill left them
    return True


def start_grid(data_dir: Path, results: Path) -> subprocess.Popen:
    """The grid in a subprocess importing this checkout's code, one torch thread."""
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.Popen(grid_command(data_dir, results), cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


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
