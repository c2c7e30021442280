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
import re
import shutil
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..atomic import atomic_write_bytes, atomic_write_json, make_folder
from ..errors import LungclError
from ..profiles import DataSettings, data_settings
from ..pylidc_compat import pylidc_version
from .geometry import consensus_mask, crop_isotropic, paste
from .nodules import ReaderMasks, load_nodule_table, load_scan_table
from .patch_source import ScanError
from .sources import DEFAULT_MIN_SHARE, make_source, source_version
from .store import (PatchStore, check_data_dir, is_compatible, new_manifest, open_store, patch_bytes,
                    read_manifest, read_patch, rebuild_damaged_caches, sha256_file, store_folder,
                    write_manifest)


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


def _lidc_root_text(source: str, lidc_root: str | Path | None) -> str | None:
    """The resolved LIDC root a dicom store is read from (validated), None for other sources."""
    if source != "dicom" or lidc_root is None:
        return None
    from .dicom import resolve_lidc_root

    return str(resolve_lidc_root(lidc_root).resolve())


def skip_reason(message: str) -> str:
    """A failure message without its patient, uid, path and numbers: what the skips have in common."""
    text = re.sub(r"^LIDC-IDRI-\d+: ", "", message)
    text = re.sub(r"LIDC-IDRI-\d+", "<patient>", text)
    text = re.sub(r"\d+(\.\d+){3,}", "<uid>", text)
    text = re.sub(r"(?<![\w<])/\S+", "<path>", text)
    text = re.sub(r"\b\d+(\.\d+)?\b", "N", text)
    return text[:120]


def skip_summary(failures: dict[str, str], top: int = 3) -> str:
    """``153 x no folder <patient> under <path>; ...`` for the most common reasons."""
    counts = Counter(skip_reason(m) for m in failures.values())
    parts = [f"{n} x {reason}" for reason, n in counts.most_common(top)]
    if len(counts) > top:
        parts.append(f"{sum(n for _, n in counts.most_common()[top:])} x other reasons")
    return "; ".join(parts)


def prepare_store(data_dir: str | Path = "data", source: str = "phantom", profile: str = "cpu",
                  lidc_root: str | Path | None = None, workers: int = 2, rebuild: bool = False,
                  retry_failed: bool = False, progress: bool = True,
                  min_share: float = DEFAULT_MIN_SHARE) -> PatchStore:
    """Build (or finish, or reuse) the patch store of ``source`` for ``profile``.

    A finished store is returned as it is, unless ``rebuild`` (start again),
    ``retry_failed`` (try the scans that failed last time again) or a dicom
    ``lidc_root`` other than the one it was read from (validated, then used for
    the skipped scans). If fewer than ``min_share`` of the asked nodules could be
    prepared, no manifest is written (the store stays unfinished, its patches kept)
    and a LungclError says how many were prepared and why the others were skipped.
    """
    if not 0.0 <= min_share <= 1.0:
        raise LungclError(f"--min-share must be between 0 and 1, got {min_share:g}")
    settings = data_settings(profile)
    version = source_version(source)
    folder = store_folder(check_data_dir(data_dir), source, profile)
    manifest = read_manifest(folder) if folder.exists() else None
    compatible = (manifest is not None and is_compatible(manifest, source, version, settings)
                  and bool(manifest["nodules"]))
    root_text = _lidc_root_text(source, lidc_root)  # a bad --lidc-root is refused before anything
    if compatible and not rebuild:
        recorded = manifest.get("lidc_root")
        new_root = root_text is not None and recorded is not None and root_text != recorded
        if new_root:
            print(f"lungcl: --lidc-root {root_text} differs from the store's {recorded}; "
                  f"{len(manifest['failures'])} skipped scan(s) are read from the new root",
                  file=sys.stderr)
        missing = [n for n in manifest["nodules"] if not (folder / "patches" / f"{n}.npz").exists()]
        if missing:
            print(f"lungcl: {len(missing)} patch file(s) of the store in {folder} are missing "
                  f"(e.g. {missing[0]}); rendering them again", file=sys.stderr)
        elif not ((retry_failed or new_root) and manifest["failures"]):
            store = PatchStore(folder, manifest)
            rebuild_damaged_caches(store)  # e.g. a truncated central-slices cache: every run would fail on it
            return store
    make_source(source, lidc_root)  # validates the source's arguments before any work
    # an unfinished store (no manifest yet) is resumed only if it was started with the same settings
    started = folder / "started.json"
    unfinished = _read_started(started) if manifest is None else None
    if unfinished and root_text and unfinished.get("lidc_root") not in (None, root_text):
        print(f"lungcl: --lidc-root {root_text} differs from the unfinished store's "
              f"{unfinished['lidc_root']}; the missing scans are read from the new root", file=sys.stderr)
    if rebuild or (manifest is not None and not compatible) or (
            unfinished is not None and not is_compatible(unfinished, source, version, settings)):
        shutil.rmtree(folder, ignore_errors=True)
    patch_dir = folder / "patches"
    make_folder(patch_dir)
    manifest = new_manifest(source, version, settings, pylidc_version())
    if root_text is not None:
        manifest["lidc_root"] = root_text
    atomic_write_json(started, manifest)

    nodules = select_nodules(load_nodule_table(data_dir, progress=progress), settings)
    scans = load_scan_table(data_dir).set_index("scan_id")
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
    _check_share(manifest, len(nodules), min_share, started, source, profile)
    write_manifest(folder, manifest)
    return open_store(data_dir, source, profile)


def _read_started(path: Path) -> dict | None:
    """The settings an unfinished store was started with; None if absent or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _check_share(manifest: dict, asked: int, min_share: float, started: Path, source: str,
                 profile: str) -> None:
    """Refuse to finish a store holding less than ``min_share`` of the ``asked`` nodules."""
    prepared, failures = len(manifest["nodules"]), manifest["failures"]
    if prepared > 0 and prepared >= min_share * asked:
        return
    atomic_write_json(started, manifest)  # the skips stay on disk for a look; no manifest: not finished
    first = next(iter(sorted(failures.values())), "")
    raise LungclError(
        f"{source} store for profile {profile} not finished: {prepared} of {asked} nodules prepared "
        f"(need at least {min_share:.0%}), {len(failures)} scan(s) skipped: {skip_summary(failures)}"
        f"{f' (first: {first[:160]})' if first else ''}; fix the cause and run the same command again "
        f"(prepared patches are kept)")


def _run_jobs(jobs: list[ScanJob], workers: int):
    if workers <= 1 or len(jobs) <= 1:
        yield from map(run_scan_job, jobs)
        return
    with mp.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap_unordered(run_scan_job, jobs, chunksize=4)
