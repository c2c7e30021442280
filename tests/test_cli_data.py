"""`lungcl data`: bad input gives one clear line and a non-zero exit, never a traceback."""

import json

import pytest

from lungcl.cli.main import main
from lungcl.data.store import store_folder


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, *words):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lungcl: error:"), err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0]


@pytest.mark.parametrize("argv, words", [
    (["data", "prepare", "--profile", "huge"], ["unknown profile", "huge"]),
    (["data", "prepare", "--source", "mri"], ["unknown source", "mri"]),
    (["data", "prepare", "--source", "dicom"], ["--lidc-root"]),
    (["data", "summary", "--tasks", "malignancy,colour"], ["unknown task", "colour"]),
])
def test_bad_arguments(capsys, data_dir, argv, words):
    code, _, err = run(capsys, *argv, "--data-dir", str(data_dir))
    one_line_error(code, err, *words)


def test_missing_and_empty_lidc_root(capsys, data_dir, tmp_path):
    code, _, err = run(capsys, "data", "prepare", "--source", "dicom", "--lidc-root", str(tmp_path / "nope"),
                       "--data-dir", str(data_dir))
    one_line_error(code, err, "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no dicoms here")
    code, _, err = run(capsys, "data", "prepare", "--source", "dicom", "--lidc-root", str(empty),
                       "--data-dir", str(data_dir))
    one_line_error(code, err, "DICOM")
    assert not store_folder(data_dir, "dicom", "cpu").joinpath("manifest.json").exists()


def test_summary_without_store_says_how_to_prepare(capsys, tmp_path, nodule_cache):
    (tmp_path / nodule_cache.name).symlink_to(nodule_cache)
    code, _, err = run(capsys, "data", "summary", "--profile", "smoke", "--data-dir", str(tmp_path))
    one_line_error(code, err, "lungcl data prepare")


def test_store_of_another_version_is_not_misread(capsys, smoke_store, nodule_cache, tmp_path):
    other = tmp_path / "old"
    other.mkdir()
    (other / nodule_cache.name).symlink_to(nodule_cache)
    folder = store_folder(other, "phantom", "smoke")
    folder.mkdir(parents=True)
    manifest = dict(smoke_store.manifest, store_version=0)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    code, _, err = run(capsys, "data", "summary", "--profile", "smoke", "--data-dir", str(other))
    one_line_error(code, err, "store version 0", "lungcl data prepare")


def test_prepare_and_summary(capsys, smoke_store, data_dir):
    code, out, _ = run(capsys, "data", "prepare", "--profile", "smoke", "--data-dir", str(data_dir))
    assert code == 0 and f"{len(smoke_store.nodule_ids)} nodules" in out
    code, out, _ = run(capsys, "data", "summary", "--profile", "smoke", "--data-dir", str(data_dir), "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["provenance"]["source"] == "phantom"
    assert set(summary["tasks"]) == {"subtlety", "internal_structure", "calcification", "sphericity",
                                     "margin", "lobulation", "spiculation", "texture", "malignancy"}
    for task in summary["tasks"].values():
        parts = task["splits"]
        assert set(parts) == {"test", "fold0", "fold1", "fold2", "fold3", "fold4"}
        seen: set = set()
        for p in parts.values():
            assert not seen & set(p["patients"])
            seen |= set(p["patients"])
    code, out, _ = run(capsys, "data", "summary", "--profile", "smoke", "--data-dir", str(data_dir), "--tasks", "ABC")
    assert code == 0 and "malignancy" in out and "fold4" in out
