"""Every file the package reads, damaged by generation (hypothesis): a one-line LungclError or a
reported skip (ScanError), never another exception, and no finished record changed.

Damage: truncated, bytes flipped, emptied, or replaced by another format's bytes.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from lungcl.atomic import npz_bytes
from lungcl.data.patch_source import ScanError
from lungcl.errors import LungclError

FAST = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
SLOW = settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))


def _parquet_bytes() -> bytes:
    import pandas as pd

    buf = io.BytesIO()
    pd.DataFrame({"a": [1, 2]}).to_parquet(buf)
    return buf.getvalue()


def _pt_bytes() -> bytes:
    buf = io.BytesIO()
    torch.save({"model": {"w": torch.ones(2)}}, buf)
    return buf.getvalue()


OTHER_FORMATS = {
    "json": b'{"schema": 1, "nodules": [1, 2]}', "json-list": b"[1, 2, 3]", "text": b"hello\n",
    "npz": npz_bytes(a=np.arange(4)), "parquet": _parquet_bytes(), "pt": _pt_bytes(),
    "png": b"\x89PNG\r\n\x1a\n" + bytes(64), "zeros": bytes(4096), "utf16": "{}".encode("utf-16"),
}


@st.composite
def damage(draw) -> tuple[str, object]:
    """One way to damage a file: (kind, parameters)."""
    kind = draw(st.sampled_from(["truncate", "flip", "empty", "other"]))
    if kind == "truncate":
        return kind, draw(st.floats(0.0, 0.999))
    if kind == "flip":
        return kind, draw(st.lists(st.tuples(st.floats(0.0, 0.999), st.integers(1, 255)), min_size=1,
                                   max_size=6))
    if kind == "other":
        return kind, draw(st.sampled_from(sorted(OTHER_FORMATS)))
    return kind, None


def damaged(data: bytes, how: tuple[str, object]) -> bytes:
    kind, arg = how
    if kind == "truncate":
        return data[: int(len(data) * arg)]
    if kind == "flip":
        out = bytearray(data)
        for where, mask in arg:
            out[int(len(out) * where)] ^= mask
        return bytes(out)
    if kind == "other":
        return OTHER_FORMATS[arg]
    return b""


def one_line(exc: LungclError) -> str:
    text = str(exc)
    assert text and "\n" not in text, text
    return text


# ---------------------------------------------------------------- the patch store

@given(how=damage())
@FAST
def test_store_shard(smoke_store, how):
    from lungcl.data.store import read_patch

    nid = smoke_store.nodule_ids[0]
    original = smoke_store.path(nid).read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{nid}.npz"
        path.write_bytes(damaged(original, how))
        try:
            hu, mask, prov = read_patch(path)
            assert hu.shape == mask.shape and isinstance(prov, dict)
            event(f"{how[0]}: read")
        except LungclError as exc:
            assert str(path) in one_line(exc)
            event(f"{how[0]}: LungclError")


@given(how=damage())
@FAST
def test_store_manifest(smoke_store, data_dir, how):
    from lungcl.data.store import open_store, store_folder

    original = (smoke_store.folder / "manifest.json").read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        folder = store_folder(tmp, "phantom", "smoke")
        folder.mkdir(parents=True)
        (folder / "patches").symlink_to(smoke_store.folder / "patches")
        (folder / "manifest.json").write_bytes(damaged(original, how))
        try:
            store = open_store(tmp, "phantom", "smoke")
            assert store.provenance["n_nodules"] == len(store.nodule_ids) > 0
            store.verify()
            event(f"{how[0]}: read")
        except LungclError as exc:
            one_line(exc)
            event(f"{how[0]}: LungclError")


# ---------------------------------------------------------------- the nodule table and split caches

@given(which=st.sampled_from(["nodules", "scans", "masks"]), how=damage())
@SLOW
def test_nodule_table_cache(nodule_cache, which, how):
    from lungcl.data.nodules import ReaderMasks, cache_for, load_nodule_table, load_scan_table

    with tempfile.TemporaryDirectory() as tmp:
        cache = cache_for(tmp)
        cache.folder.mkdir(parents=True)
        for name in ("nodules.parquet", "scans.parquet", "reader_masks.npz"):
            (cache.folder / name).symlink_to(nodule_cache / name)
        target = getattr(cache, which)
        original = target.read_bytes()
        target.unlink()
        target.write_bytes(damaged(original, how))
        try:
            if which == "masks":
                masks = ReaderMasks(tmp)
                for aid in load_nodule_table(tmp, build=False)["annotation_ids"].iloc[0]:
                    masks.mask(int(aid))
            else:
                load_nodule_table(tmp, build=False)
                load_scan_table(tmp)
            event(f"{which} {how[0]}: read")
        except LungclError as exc:
            assert str(target) in one_line(exc)
            event(f"{which} {how[0]}: LungclError")


@pytest.fixture(scope="module")
def split_file(nodules):
    from lungcl.data.splits import load_or_make_split, split_path

    folder = Path(tempfile.mkdtemp())
    load_or_make_split(folder, nodules, seed=0)
    return split_path(folder, nodules, 0)


@given(how=damage())
@FAST
def test_split_json(split_file, nodules, how):
    from lungcl.data.splits import read_split

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / split_file.name
        path.write_bytes(damaged(split_file.read_bytes(), how))
        patients = set(nodules["patient_id"])
        try:
            split = read_split(path, patients, 0)
            split.part_of(sorted(patients))
            event(f"{how[0]}: read")
        except LungclError as exc:
            assert str(path) in one_line(exc)
            event(f"{how[0]}: LungclError")


# ---------------------------------------------------------------- records and checkpoints

@pytest.fixture(scope="module")
def results_with_two_runs():
    from synthetic_records import make_record, sequence_state

    from lungcl.experiments.records import Record
    from lungcl.runs.folder import ResultsFolder, save_run

    folder = ResultsFolder(tempfile.mkdtemp()).check(create=True)
    saved = []
    for method in ("sgd", "l2"):
        record = make_record(method=method)
        record.data["run_id"] = record.config.id_for(record.data.get("data_version"))
        model, _ = sequence_state(record.tasks)
        saved.append(save_run(folder, record.data, {"model": model}, Record))
    return folder, saved


@given(which=st.sampled_from(["record.json", "model.pt"]), how=damage())
@FAST
def test_record_and_checkpoint(results_with_two_runs, which, how, capsys):
    from lungcl.cli.main import main
    from lungcl.experiments.records import load_record

    folder, (victim, other) = results_with_two_runs
    path = victim.folder / which
    original = path.read_bytes()
    before = load_record(other.run_id, folder.root).comparable()
    try:
        path.write_bytes(damaged(original, how))
        try:
            record = load_record(victim.run_id, folder.root)
            record.accuracy_matrix()
            record.load_checkpoint()
            event(f"{which} {how[0]}: read")
        except LungclError as exc:
            assert str(path) in one_line(exc)
            event(f"{which} {how[0]}: LungclError")
        code = main(["show", victim.run_id, "--results", str(folder.root)])
        err = capsys.readouterr().err
        assert code in (0, 2) and "Traceback" not in err and len(err.strip().splitlines()) <= 1
    finally:
        path.write_bytes(original)
    assert load_record(other.run_id, folder.root).comparable() == before


@given(how=damage())
@FAST
def test_partial_checkpoint_is_ignored_when_damaged(results_with_two_runs, how, capsys):
    from lungcl.experiments.runner import _read_partial

    folder, (victim, _) = results_with_two_runs
    buf = io.BytesIO()
    torch.save({"model": {"w": torch.ones(3)}, "run_id": victim.run_id, "progress": {"stage": 1}}, buf)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "partial.pt"
        path.write_bytes(damaged(buf.getvalue(), how))
        state = _read_partial(path, victim.config)
        assert state is None or state["run_id"] == victim.run_id
        event(f"{how[0]}: {'ignored' if state is None else 'resumed'}")
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) <= 1


# ---------------------------------------------------------------- DICOM files

SCAN = 616  # a smoke-profile scan with few slices


@pytest.fixture(scope="module")
def dicom_series(tmp_path_factory, nodule_cache):
    """(root, scan row, nodule rows, series folder) of one synthetic LIDC series, written once."""
    from dicom_writer import synthetic_volume, write_series
    from lungcl.data.nodules import load_nodule_table, load_scan_table

    scans = load_scan_table(nodule_cache.parent).set_index("scan_id")
    table = load_nodule_table(nodule_cache.parent, build=False)
    scan = {"scan_id": SCAN, **scans.loc[SCAN].to_dict()}
    nodules = table[table["scan_id"] == SCAN].to_dict("records")
    root = tmp_path_factory.mktemp("lidc") / "LIDC-IDRI"
    folder = write_series(root, scan, synthetic_volume(scan, nodules), seed=3)
    return root, scan, nodules, folder


def _render(root: Path, scan: dict, nodules: list[dict], data_dir: Path):
    """What prepare does with one scan: regions, or a ScanError (reported skip)."""
    from lungcl.data.dicom import DicomSource
    from lungcl.data.nodules import ReaderMasks
    from lungcl.data.prepare import nodule_patch
    from lungcl.profiles import data_settings

    masks = ReaderMasks(data_dir)
    out = DicomSource(root).render_scan(scan, nodules, masks, data_settings("smoke"))
    for item in out:
        hu, _ = nodule_patch(item.region, next(n for n in nodules if n["nodule_id"] == item.nodule_id),
                             masks, data_settings("smoke").crop_mm)
        assert np.isfinite(hu).all()
    return out


def _near_nodule(folder: Path, scan: dict, nodules: list[dict], fraction: float) -> int:
    """A slice index: half the time one that is decoded (near the nodule), else any."""
    n = len(scan["slice_zvals"])
    k = int(round(nodules[0]["centroid_k"]))
    return min(max(k + int((fraction - 0.5) * 6), 0), n - 1) if fraction < 0.5 else int(fraction * n) % n


@given(fraction=st.floats(0, 0.999), how=damage())
@SLOW
def test_dicom_slice_bytes(dicom_series, nodule_cache, fraction, how):
    from dicom_writer import slice_files

    root, scan, nodules, folder = dicom_series
    path = slice_files(folder)[_near_nodule(folder, scan, nodules, fraction)]
    original = path.read_bytes()
    try:
        path.write_bytes(damaged(original, how))
        try:
            _render(root, scan, nodules, nodule_cache.parent)
            event(f"{how[0]}: read")
        except ScanError as exc:
            assert str(exc) and "\n" not in str(exc)
            event(f"{how[0]}: skip (ScanError)")
    finally:
        path.write_bytes(original)


@given(fraction=st.floats(0, 0.999),
       kind=st.sampled_from(["short-pixels", "compressed", "slope-padding", "gap", "duplicate",
                             "duplicate-moved"]))
@SLOW
def test_dicom_series_faults(dicom_series, nodule_cache, fraction, kind):
    import pydicom
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEG2000Lossless

    from dicom_writer import duplicate_slice, slice_files

    root, scan, nodules, folder = dicom_series
    path = slice_files(folder)[_near_nodule(folder, scan, nodules, fraction)]
    original, added = path.read_bytes(), None
    try:
        if kind in ("short-pixels", "compressed", "slope-padding"):
            ds = pydicom.dcmread(path)
            if kind == "short-pixels":  # pixel data element shorter than Rows x Columns declare
                ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]
            elif kind == "compressed":  # JPEG 2000, which no installed decoder reads (nor this data)
                ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
                ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(60)])
                ds["PixelData"].VR = "OB"
            else:
                ds.RescaleSlope, ds.RescaleIntercept = 2.0, -1024.0
                ds.add_new(0x00280120, "SS", -2000)  # PixelPaddingValue
            ds.save_as(path, enforce_file_format=True)
        elif kind == "gap":
            path.unlink()
        else:
            added = duplicate_slice(folder, slice_files(folder).index(path), instance_number=9000,
                                    z_shift_mm=0.0 if kind == "duplicate" else 0.7)
        try:
            out = _render(root, scan, nodules, nodule_cache.parent)
            assert kind in ("slope-padding", "duplicate", "compressed") and out
            if kind == "compressed":  # never decoded: the slice is far from every nodule
                assert all(abs(n["centroid_k"] - slice_files(folder).index(path)) > 8 for n in nodules)
            event(f"{kind}: read")
        except ScanError as exc:
            event(f"{kind}: skip (ScanError)")
            assert str(exc) and "\n" not in str(exc)
            assert kind not in ("duplicate", "slope-padding")  # pylidc's rule: lower instance number kept
    finally:
        path.write_bytes(original)
        if added is not None:
            added.unlink()


@given(slope=st.sampled_from([0.5, 1.0, 2.0]), intercept=st.sampled_from([-1024.0, -1000.0, 0.0]),
       pad=st.sampled_from([-2000, -3000]), ranged=st.booleans())
@FAST
def test_rescale_slope_and_pixel_padding(dicom_series, slope, intercept, pad, ranged):
    """HU = slope x stored + intercept, except padding pixels (outside the field of view), read as air."""
    import pydicom

    from lungcl.data.dicom import AIR_HU, slice_hu
    from dicom_writer import slice_files

    _, _, _, folder = dicom_series
    ds = pydicom.dcmread(slice_files(folder)[0])
    stored = ds.pixel_array.astype(np.int16).copy()
    stored[:40, :40] = pad  # a padded corner, as scanners write outside the reconstruction circle
    if ranged:
        stored[40:50, :10] = pad + 5
    ds.PixelData = stored.tobytes()
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    ds.add_new(0x00280120, "SS", pad)  # PixelPaddingValue
    if ranged:
        ds.add_new(0x00280121, "SS", pad + 5)  # PixelPaddingRangeLimit
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "slice.dcm"
        ds.save_as(path, enforce_file_format=True)
        hu, _ = slice_hu(path)
    padded = np.zeros(stored.shape, bool)
    padded[:40, :40] = True
    padded[40:50, :10] = ranged
    assert (hu[padded] == AIR_HU).all()
    assert np.allclose(hu[~padded], stored[~padded] * slope + intercept)
