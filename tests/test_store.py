"""The patch store: same format from both sources, deterministic bytes, resumable, checksummed."""

import os
import shutil

import numpy as np

from dicom_writer import synthetic_volume, write_series
from lungcl.data.nodules import load_scan_table
from lungcl.data.prepare import ScanJob, prepare_store, run_scan_job, select_nodules
from lungcl.data.store import open_store, read_patch, store_folder
from lungcl.profiles import data_settings

SCAN = 698  # LIDC-IDRI-0957: the fewest slices of any scan with nodules


def scan_job(data_dir, nodules, source, out_dir, lidc_root=None, profile="smoke", seed=0):
    scan = {"scan_id": SCAN, **load_scan_table(data_dir).set_index("scan_id").loc[SCAN].to_dict()}
    rows = nodules[nodules["scan_id"] == SCAN].sort_values("nodule_id").to_dict("records")
    settings = data_settings(profile)
    if seed != settings.phantom_seed:
        settings = type(settings)(**{**settings.to_dict(), "phantom_seed": seed})
    out_dir.mkdir(parents=True, exist_ok=True)
    return ScanJob(scan, rows, str(data_dir), source, lidc_root, settings, str(out_dir)), scan, rows


def test_both_sources_write_the_same_format(data_dir, nodules, tmp_path):
    job, scan, rows = scan_job(data_dir, nodules, "phantom", tmp_path / "phantom")
    _, phantom, failure = run_scan_job(job)
    assert failure is None and set(phantom) == {r["nodule_id"] for r in rows}
    root = tmp_path / "LIDC-IDRI"
    write_series(root, scan, synthetic_volume(scan, rows))
    djob, _, _ = scan_job(data_dir, nodules, "dicom", tmp_path / "dicom", lidc_root=str(root))
    _, dicom, failure = run_scan_job(djob)
    assert failure is None and set(dicom) == set(phantom)
    side = data_settings("smoke").crop_mm
    for nid in phantom:
        hu_p, mask_p, prov_p = read_patch(tmp_path / "phantom" / f"{nid}.npz")
        hu_d, mask_d, prov_d = read_patch(tmp_path / "dicom" / f"{nid}.npz")
        assert hu_p.dtype == hu_d.dtype == np.int16 and hu_p.shape == hu_d.shape == (side,) * 3
        assert mask_p.dtype == mask_d.dtype == bool
        # the consensus mask is shared code: identical whichever source made the HU values
        assert np.array_equal(mask_p, mask_d) and mask_p[side // 2].any()
        assert (prov_p["source"], prov_d["source"]) == ("phantom", "dicom")


def test_same_seed_same_bytes_other_seed_other_bytes(data_dir, nodules, tmp_path):
    outs = []
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        job, _, _ = scan_job(data_dir, nodules, "phantom", tmp_path / name, seed=seed)
        outs.append({nid: (tmp_path / name / f"{nid}.npz").read_bytes() for nid in run_scan_job(job)[1]})
    assert outs[0] == outs[1]
    assert all(outs[0][k] != outs[2][k] for k in outs[0])


def test_interrupted_prepare_resumes_and_rerenders_only_what_is_missing(smoke_store, data_dir, tmp_path):
    d = tmp_path / "data"
    shutil.copytree(data_dir, d, symlinks=True)
    folder = store_folder(d, "phantom", "smoke")
    ids = smoke_store.nodule_ids
    originals = {nid: smoke_store.path(nid).read_bytes() for nid in ids[:6]}
    (folder / "manifest.json").unlink()                       # killed before the manifest
    for nid in ids[:3]:
        (folder / "patches" / f"{nid}.npz").unlink()           # never written
    (folder / "patches" / f"{ids[3]}.npz").write_bytes(b"PK half a file")  # damaged
    (folder / "patches" / f".{ids[4]}.npz.x.tmp").write_bytes(b"partial")   # an orphaned temp file
    untouched = folder / "patches" / f"{ids[5]}.npz"
    os.utime(untouched, (1, 1))
    store = prepare_store(d, "phantom", "smoke", workers=1, progress=False)
    assert store.nodule_ids == ids
    for nid, data in originals.items():
        assert store.path(nid).read_bytes() == data
    assert untouched.stat().st_mtime == 1                      # finished work was not redone
    assert store.verify() == []
    assert store.manifest["nodules"] == smoke_store.manifest["nodules"]


def test_checksums_catch_a_changed_file(smoke_store, data_dir, tmp_path):
    d = tmp_path / "data"
    shutil.copytree(data_dir, d, symlinks=True)
    store = open_store(d, "phantom", "smoke")
    nid = store.nodule_ids[0]
    hu, mask, prov = store.load(nid)
    from lungcl.data.store import patch_bytes
    store.path(nid).write_bytes(patch_bytes(hu + 1, mask, prov))
    assert store.verify() == [nid]


def test_smoke_profile_selects_whole_patients(nodules, smoke_store):
    sel = select_nodules(nodules, data_settings("smoke"))
    assert sel["patient_id"].nunique() == 150
    chosen = set(sel["patient_id"])
    assert set(nodules[nodules["patient_id"].isin(chosen)]["nodule_id"]) == set(sel["nodule_id"])
    assert sorted(sel["nodule_id"]) == smoke_store.nodule_ids
