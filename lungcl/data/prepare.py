"""``lungcl data prepare``: fill the patch store from a source, in parallel, resumably.

Per scan: the source renders (phantom) or reads (dicom) a native-grid region per
nodule; the consensus mask of the readers is drawn into that grid; both are
resampled to the profile's 1 mm crop and written as one patch file. Scans that
fail are reported (which, why) and skipped; finished patch files are kept, so
an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..atomic import atomic_write_bytes, atomic_write_json
from ..profiles import DataSettings, data_settings
from ..pylidc_compat import pylidc_version
from .geometry import consensus_mask, crop_isotropic, paste
from .nodules import ReaderMasks, load_nodule_table, load_scan_table
from .sources import ScanError, make_source, source_version
from .store import (PatchStore, is_compatible, new_manifest, open_store, patch_bytes, read_manifest,
                    read_patch, sha256_file, store_folder, write_manifest)


def select_nodules(nodules: pd.DataFrame, settings: DataSettings) -> pd.DataFrame:
    """The nodules a profile uses: all, or a fixed pseudo-random subset of patients (smoke)."""
    nodules = nodules.sort_values("nodule_id").reset_index(drop=True)
    if settings.max_patients is None:
        return nodules
    patients = sorted(set(nodules["patient_id"]),
                      key=lambda p: hashlib.sha256(f"{settings.phantom_seed}:{p}".encode()).hexdigest())
    keep = set(patients[: settings.max_patients])
    return nodules[nodules["patient_id"].isin(keep)].reset_index(drop=True)


@dataclass(frozen=True)
class ScanJob:
    """Everything a worker needs to turn one scan into patch files."""

    scan: dict
    nodules: list[dict]
    data_dir: str
    source: str
    lidc_root: str | None
    settings: DataSettings
    out_dir: str


_WORKER_CACHE: dict = {}


def _masks(data_dir: str) -> ReaderMasks:
    if _WORKER_CACHE.get("masks_dir") != data_dir:
        _WORKER_CACHE["masks"] = ReaderMasks(data_dir)
        _WORKER_CACHE["masks_dir"] = data_dir
    return _WORKER_CACHE["masks"]


def nodule_patch(rendered_region, nodule: dict, masks: ReaderMasks, side: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The 1 mm crop of a region and the readers' consensus mask, around the consensus centroid."""
    cmask, offset = consensus_mask([masks.mask(a) for a in nodule["annotation_ids"]])
    region_mask = paste(rendered_region.hu.shape, np.asarray(rendered_region.origin), cmask, offset)
    centroid = np.array([nodule["centroid_i"], nodule["centroid_j"], nodule["centroid_k"]])
    return crop_isotropic(rendered_region, centroid, nodule["centroid_z_mm"], side, region_mask)


def run_scan_job(job: ScanJob) -> tuple[ScanJob, dict[str, dict], str | None]:
    """Render one scan's nodules into patch files: (job, {nodule id: entry}, failure reason)."""
    key = ("source", job.source, job.lidc_root)
    if _WORKER_CACHE.get("source_key") != key:
        _WORKER_CACHE["source"] = make_source(job.source, job.lidc_root)
        _WORKER_CACHE["source_key"] = key
    masks = _masks(job.data_dir)
    try:
        rendered = _WORKER_CACHE["source"].render_scan(job.scan, job.nodules, masks, job.settings)
    except ScanError as exc:
        return job, {}, str(exc) or type(exc).__name__
    except Exception as exc:  # a bug or an odd file in one scan must not stop the others
        return job, {}, f"unexpected {type(exc).__name__}: {exc}"
    by_id = {n["nodule_id"]: n for n in job.nodules}
    entries = {}
    for item in rendered:
        nodule = by_id[item.nodule_id]
        hu, mask = nodule_patch(item.region, nodule, masks, job.settings.crop_mm)
        path = Path(job.out_dir) / f"{item.nodule_id}.npz"
        atomic_write_bytes(path, patch_bytes(hu, mask, item.provenance))
        entries[item.nodule_id] = _entry(path, nodule, item.provenance)
    return job, entries, None


def _entry(path: Path, nodule: dict, provenance: dict) -> dict:
    return {"sha256": sha256_file(path), "patient_id": nodule["patient_id"],
            "scan_id": int(nodule["scan_id"]), "provenance": provenance}


def _existing_entry(path: Path, nodule: dict) -> dict | None:
    """The entry of a patch file left by an earlier run, or None if absent or unreadable."""
    if not path.exists():
        return None
    try:
        _, _, provenance = read_patch(path)
    except Exception:  # a damaged file is simply rendered again
        path.unlink(missing_ok=True)
        return None
    return _entry(path, nodule, provenance)


def prepare_store(data_dir: str | Path = "data", source: str = "phantom", profile: str = "cpu",
                  lidc_root: str | Path | None = None, workers: int = 2, rebuild: bool = False,
                  retry_failed: bool = False, progress: bool = True) -> PatchStore:
    """Build (or finish, or reuse) the patch store of ``source`` for ``profile``.

    A finished store is returned as it is, unless ``rebuild`` (start again) or
    ``retry_failed`` (try the scans that failed last time again).
    """
    settings = data_settings(profile)
    version = source_version(source)
    folder = store_folder(data_dir, source, profile)
    manifest = read_manifest(folder) if folder.exists() else None
    compatible = manifest is not None and is_compatible(manifest, source, version, settings)
    if compatible and not rebuild:
        if not (retry_failed and manifest["failures"]):
            return PatchStore(folder, manifest)
    make_source(source, lidc_root)  # validates the source's arguments before any work
    # an unfinished store (no manifest yet) is resumed only if it was started with the same settings
    started = folder / "started.json"
    unfinished = json.loads(started.read_text()) if manifest is None and started.exists() else None
    if rebuild or (manifest is not None and not compatible) or (
            unfinished is not None and not is_compatible(unfinished, source, version, settings)):
        shutil.rmtree(folder, ignore_errors=True)
    patch_dir = folder / "patches"
    patch_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(started, new_manifest(source, version, settings, pylidc_version()))

    nodules = select_nodules(load_nodule_table(data_dir, progress=progress), settings)
    scans = load_scan_table(data_dir).set_index("scan_id")
    manifest = new_manifest(source, version, settings, pylidc_version())
    jobs = []
    for scan_id, group in nodules.groupby("scan_id", sort=True):
        rows = group.to_dict("records")
        done = {n["nodule_id"]: _existing_entry(patch_dir / f"{n['nodule_id']}.npz", n) for n in rows}
        if all(done.values()):
            manifest["nodules"].update(done)
            continue
        scan = {"scan_id": int(scan_id), **scans.loc[scan_id].to_dict()}
        jobs.append(ScanJob(scan, rows, str(data_dir), source, str(lidc_root) if lidc_root else None,
                            settings, str(patch_dir)))

    bar = tqdm(total=len(nodules), initial=len(manifest["nodules"]), unit="nodule",
               desc=f"{source} patches ({profile})", disable=not progress)
    for job, entries, failure in _run_jobs(jobs, workers):
        manifest["nodules"].update(entries)
        if failure:
            manifest["failures"][job.scan["series_uid"]] = f"{job.scan['patient_id']}: {failure}"
        bar.update(len(job.nodules))
    bar.close()
    write_manifest(folder, manifest)
    return open_store(data_dir, source, profile)


def _run_jobs(jobs: list[ScanJob], workers: int):
    if workers <= 1 or len(jobs) <= 1:
        yield from map(run_scan_job, jobs)
        return
    with mp.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap_unordered(run_scan_job, jobs, chunksize=4)
