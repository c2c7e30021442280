"""A full disk while writing a record or a store shard, a read-only results or data folder: one line
naming the path, the previous files intact.

Needs root to mount a small tmpfs (remounted read-only: the one read-only folder root cannot write to,
as root ignores permission bits); skipped where mounting is not allowed.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from lungcl.cli.main import main
from lungcl.errors import LungclError


@contextmanager
def tmpfs(size: str):
    """A tmpfs of ``size``, unmounted afterwards."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = Path(tempfile.mkdtemp())
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        mount.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)
        mount.rmdir()


@pytest.fixture
def small_disk():
    """A 256 kB tmpfs."""
    with tmpfs("256k") as mount:
        yield mount


@pytest.fixture
def roomy_disk():
    """An 8 MB tmpfs: room for a few smoke runs."""
    with tmpfs("8m") as mount:
        yield mount


def make_read_only(disk: Path) -> None:
    done = subprocess.run(["mount", "-o", "remount,ro", str(disk)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot remount the tmpfs read-only: {done.stderr.strip()}")


def fill(disk: Path) -> None:
    """Use up the disk's free space."""
    try:
        with open(disk / "filler", "wb") as fh:
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
    except OSError:
        pass


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "filler"}


def test_record_and_shard_writes_on_a_full_disk(small_disk):
    from synthetic_records import make_record

    from lungcl.data.store import patch_bytes
    from lungcl.atomic import atomic_write_bytes
    from lungcl.experiments.records import Record, load_record
    from lungcl.runs.folder import ResultsFolder, save_run

    results = ResultsFolder(small_disk / "results").check(create=True)
    first = make_record(method="sgd")
    first.data["run_id"] = first.config.id_for(first.data.get("data_version"))
    save_run(results, first.data, {"model": {}}, Record)
    shard = small_disk / "patches" / "n1.npz"
    atomic_write_bytes(shard, patch_bytes(np.zeros((8, 8, 8)), np.zeros((8, 8, 8), bool), {"a": 1}))
    fill(small_disk)
    before = snapshot(small_disk)

    second = make_record(method="l2")
    second.data["run_id"] = second.config.id_for(second.data.get("data_version"))
    rng = np.random.default_rng(0)
    for write in (lambda: save_run(results, second.data, {"model": {"w": rng.random(20000)}}, Record),
                  lambda: save_run(results, dict(first.data, note="x" * 300000), {"model": {}}, Record),
                  lambda: atomic_write_bytes(shard, patch_bytes(rng.normal(size=(32, 32, 32)) * 1000,
                                                                np.ones((32, 32, 32), bool), {"a": 2}))):
        with pytest.raises(LungclError) as info:
            write()
        assert "\n" not in str(info.value) and "No space left" in str(info.value)
    new_run = f"results/runs/{second.run_id}/"
    after = snapshot(small_disk)
    assert {k: v for k, v in after.items() if not k.startswith(new_run)} == before
    assert not {k for k in after if k.startswith(new_run)} - {new_run + ".lock"}
    assert not [p for p in small_disk.rglob("*.tmp")]
    assert load_record(first.run_id, results.root).comparable() == first.comparable() | {
        "run_id": first.run_id}
    assert not results.is_finished(second.run_id)


def one_error_line(code: int, err: str, *words: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("lungcl: error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def data_folder(disk: Path, nodule_cache: Path) -> Path:
    """A data folder on ``disk`` with the shared nodule table and no patch store yet."""
    data = disk / "data"
    data.mkdir()
    (data / nodule_cache.name).symlink_to(nodule_cache, target_is_directory=True)
    return data


def prepare_smoke(data: Path) -> int:
    return main(["data", "prepare", "--profile", "smoke", "--workers", "1", "--data-dir", str(data)])


def test_prepare_on_a_full_disk_is_one_line(small_disk, nodule_cache, capsys):
    data = data_folder(small_disk, nodule_cache)
    fill(small_disk)
    one_error_line(prepare_smoke(data), capsys.readouterr().err, "No space left")


def test_a_new_run_in_a_read_only_results_folder_is_one_line(roomy_disk, smoke_store, data_dir, capsys):
    """A results folder that holds a finished run, then became read-only: that run still loads; a new
    run is refused in one line naming its folder, before any training."""
    results = roomy_disk / "results"
    common = ["run", "--profile", "smoke", "--order", "AB", "--data-dir", str(data_dir), "--results",
              str(results), "--quiet"]
    assert main([*common, "--method", "sgd", "--set", "epochs=1", "--set", "max_steps_per_epoch=1"]) == 0
    finished = capsys.readouterr().out.strip().splitlines()[-1]
    make_read_only(roomy_disk)
    assert main([*common, "--method", "sgd", "--set", "epochs=1", "--set", "max_steps_per_epoch=1"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == finished
    code = main([*common, "--method", "l2", "--set", "epochs=1", "--set", "max_steps_per_epoch=1"])
    out, err = capsys.readouterr()
    one_error_line(code, err, str(results / "runs"), "Read-only file system")
    assert "steps in" not in out  # refused before training


def test_a_new_store_in_a_read_only_data_folder_is_one_line(small_disk, nodule_cache, capsys):
    data = data_folder(small_disk, nodule_cache)
    make_read_only(small_disk)
    one_error_line(prepare_smoke(data), capsys.readouterr().err, str(data / "store"), "Read-only file system")
