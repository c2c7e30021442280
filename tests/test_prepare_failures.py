"""Preparations that fail leave no store later commands take for finished; bad folders are one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lungcl.cli.main import main
from lungcl.errors import LungclError
from lungcl.data.nodules import load_nodule_table, load_scan_table
from lungcl.data.prepare import skip_reason
from lungcl.data.store import read_manifest, store_folder

SCAN_A, SCAN_B = 616, 369  # the two smoke-profile scans with the fewest slices


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, *words):
    assert code == 2, err
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("lungcl: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def fresh_data(tmp_path: Path, nodule_cache: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    (d / nodule_cache.name).symlink_to(nodule_cache, target_is_directory=True)
    return d


def junk_root(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "junk.dcm").write_text("not a DICOM file")
    return folder


def test_all_scans_skipped_fails_and_leaves_no_finished_store(capsys, fresh_data, tmp_path):
    code, _, err = run(capsys, "data", "prepare", "--source", "dicom", "--profile", "smoke", "--workers", 1,
                       "--lidc-root", junk_root(tmp_path / "junk"), "--data-dir", fresh_data)
    line = one_line_error(code, err, "0 of", "not finished", "skipped", "no folder <patient>")
    assert "(need at least 50%)" in line
    folder = store_folder(fresh_data, "dicom", "smoke")
    assert read_manifest(folder) is None  # not a finished store
    for argv in (["data", "summary"], ["run", "--results", tmp_path / "res"]):
        code, _, err = run(capsys, *argv, "--source", "dicom", "--profile", "smoke", "--data-dir", fresh_data,
                           *(["--lidc-root", tmp_path / "junk"] if argv[0] == "run" else []))
        one_line_error(code, err)
    # another root: checked first (a missing one is refused), then said and used
    code, _, err = run(capsys, "data", "prepare", "--source", "dicom", "--profile", "smoke", "--workers", 1,
                       "--lidc-root", tmp_path / "missing", "--data-dir", fresh_data)
    one_line_error(code, err, "missing", "does not exist")
    code, _, err = run(capsys, "data", "prepare", "--source", "dicom", "--profile", "smoke", "--workers", 1,
                       "--lidc-root", junk_root(tmp_path / "other"), "--data-dir", fresh_data)
    assert "differs" in err and str(tmp_path / "other") in err
    one_line_error(code, err, str(tmp_path / "other"))


def test_empty_store_of_an_older_lungcl_is_refused(capsys, smoke_store, fresh_data):
    folder = store_folder(fresh_data, "phantom", "smoke")
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps(dict(smoke_store.manifest, nodules={})))
    code, _, err = run(capsys, "data", "summary", "--profile", "smoke", "--data-dir", fresh_data)
    one_line_error(code, err, "holds no nodule")


def test_foreign_store_is_refused(capsys, smoke_store, fresh_data):
    folder = store_folder(fresh_data, "phantom", "smoke")
    folder.mkdir(parents=True)
    settings = dict(smoke_store.manifest["settings"], crop_mm=7)
    (folder / "manifest.json").write_text(json.dumps(dict(smoke_store.manifest, settings=settings)))
    code, _, err = run(capsys, "data", "summary", "--profile", "smoke", "--data-dir", fresh_data)
    one_line_error(code, err, "another source", "--rebuild")


@pytest.mark.parametrize("argv", [["run", "--profile", "smoke", "--results", "{file}"],
                                  ["grid", "--profile", "smoke", "--results", "{file}"],
                                  ["show", "abcd", "--results", "{file}"],
                                  ["data", "summary", "--profile", "smoke", "--data-dir", "{file}"],
                                  ["data", "prepare", "--profile", "smoke", "--data-dir", "{file}"]])
def test_a_file_where_a_folder_belongs(capsys, tmp_path, argv):
    path = tmp_path / "a-file"
    path.write_text("x")
    code, _, err = run(capsys, *[str(path) if a == "{file}" else a for a in argv])
    one_line_error(code, err, str(path))


def test_min_share_is_checked(capsys, fresh_data):
    code, _, err = run(capsys, "data", "prepare", "--profile", "smoke", "--min-share", 2,
                       "--data-dir", fresh_data)
    one_line_error(code, err, "--min-share")


def test_skip_reasons_group_by_kind():
    a = skip_reason("LIDC-IDRI-0009: no folder LIDC-IDRI-0009 under /x/root")
    b = skip_reason("LIDC-IDRI-0390: no folder LIDC-IDRI-0390 under /y/other")
    assert a == b == "no folder <patient> under <path>"
    assert skip_reason("LIDC-IDRI-0001: truncated series: 90 of 92 slices") != a


@pytest.fixture(scope="module")
def two_roots(tmp_path_factory, nodule_cache):
    """Two downloads: one holding smoke scan A only, the other scan B only."""
    from dicom_writer import synthetic_volume, write_series

    scans = load_scan_table(nodule_cache.parent).set_index("scan_id")
    table = load_nodule_table(nodule_cache.parent, build=False)
    roots = []
    for scan_id in (SCAN_A, SCAN_B):
        root = tmp_path_factory.mktemp("lidc") / "LIDC-IDRI"
        scan = {"scan_id": scan_id, **scans.loc[scan_id].to_dict()}
        nodules = table[table["scan_id"] == scan_id].to_dict("records")
        write_series(root, scan, synthetic_volume(scan, nodules), seed=scan_id)
        roots.append(root)
    return roots


def test_another_root_is_used_for_the_skipped_scans(capsys, fresh_data, two_roots):
    base = ["data", "prepare", "--source", "dicom", "--profile", "smoke", "--workers", 1, "--min-share", 0,
            "--data-dir", fresh_data]
    code, out, _ = run(capsys, *base, "--lidc-root", two_roots[0])
    assert code == 0 and "skipped" in out
    folder = store_folder(fresh_data, "dicom", "smoke")
    first = read_manifest(folder)
    assert first["lidc_root"] == str(two_roots[0].resolve()) and len(first["nodules"]) >= 1
    code, out, err = run(capsys, *base, "--lidc-root", two_roots[1])
    assert code == 0 and "differs" in err
    second = read_manifest(folder)
    assert second["lidc_root"] == str(two_roots[1].resolve())
    assert set(first["nodules"]) < set(second["nodules"])  # scan B added, scan A's patches kept
    assert all(second["nodules"][n] == e for n, e in first["nodules"].items())
    assert len(second["failures"]) == len(first["failures"]) - 1


def test_missing_patch_of_a_finished_store_is_rendered_again(capsys, smoke_store, fresh_data):
    import shutil

    folder = store_folder(fresh_data, "phantom", "smoke")
    shutil.copytree(smoke_store.folder, folder)
    for cache in folder.glob("central-*.npy"):  # made by other tests; summary would not read patches
        cache.unlink()
    lost = folder / "patches" / f"{smoke_store.nodule_ids[0]}.npz"
    lost.unlink()
    code, _, err = run(capsys, "data", "summary", "--profile", "smoke", "--data-dir", fresh_data)
    one_line_error(code, err, str(lost), "lungcl data prepare")
    code, _, err = run(capsys, "data", "prepare", "--profile", "smoke", "--workers", 1, "--data-dir", fresh_data)
    assert code == 0 and "missing" in err
    assert read_manifest(folder)["nodules"] == smoke_store.manifest["nodules"]


@pytest.mark.parametrize("damage", ["truncated", "emptied", "other rows"])
def test_a_cache_that_does_not_match_the_manifest_is_named_by_a_run_and_rebuilt_by_prepare(
        capsys, smoke_store, fresh_data, damage):
    """A damaged central-slices cache (e.g. truncated: every run died in numpy's mmap while `data prepare`
    called the store fine): reading it names it and `data prepare`; `data prepare` rebuilds it as it was."""
    import shutil

    import numpy as np

    from lungcl.data.store import central_cache_path, central_slices, open_store

    folder = store_folder(fresh_data, "phantom", "smoke")
    shutil.copytree(smoke_store.folder, folder)
    store = open_store(fresh_data, "phantom", "smoke")
    cache = central_cache_path(store, 0)
    cache.unlink(missing_ok=True)
    _, good = central_slices(store)
    intact = cache.read_bytes()
    if damage == "other rows":
        np.save(cache, np.asarray(good)[:-1])
    else:
        cache.write_bytes(intact[: len(intact) // 2] if damage == "truncated" else b"")
    stale = folder / "central-ctx0-0123456789ab.npy"  # made for another build of the store
    stale.write_bytes(intact)

    with pytest.raises(LungclError) as info:
        central_slices(store)
    message = str(info.value)
    assert str(cache) in message and "lungcl data prepare" in message and "\n" not in message

    code, _, err = run(capsys, "data", "prepare", "--profile", "smoke", "--data-dir", fresh_data)
    assert code == 0 and "Traceback" not in err
    assert f"{cache} does not match the store's manifest" in err and "rebuilding" in err
    assert cache.read_bytes() == intact and not stale.exists()
    code, _, err = run(capsys, "data", "prepare", "--profile", "smoke", "--data-dir", fresh_data)
    assert code == 0 and "does not match" not in err  # nothing left to repair


def test_a_file_at_a_runs_folder_or_a_folder_at_its_lock_is_one_line(capsys, smoke_store, data_dir, tmp_path):
    from lungcl.experiments import default_config

    config = default_config("smoke", tasks="AB", method="sgd", data_dir=str(data_dir))
    results = tmp_path / "results"
    common = ["run", "--profile", "smoke", "--order", "AB", "--method", "sgd", "--data-dir", data_dir,
              "--results", results, "--quiet"]
    run_dir = results / "runs" / config.run_id
    run_dir.parent.mkdir(parents=True)
    run_dir.write_text("not a folder")
    code, _, err = run(capsys, *common)
    one_line_error(code, err, str(run_dir), "is a file, not a folder")
    run_dir.unlink()
    (run_dir / ".lock").mkdir(parents=True)
    code, _, err = run(capsys, *common)
    one_line_error(code, err, str(run_dir / ".lock"), "is a folder", "delete it")
