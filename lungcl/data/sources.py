"""Patch sources: where a nodule's HU values come from ("phantom" or "dicom").

A source turns one scan (its row of the scan table, its nodules, the readers'
masks) into a :class:`~lungcl.data.geometry.NativeRegion` per nodule, plus
provenance. Everything after that is shared (``lungcl.data.prepare``).
"""

from __future__ import annotations

from pathlib import Path

from typing import TYPE_CHECKING

from ..errors import LungclError

if TYPE_CHECKING:  # annotations only: the CLI imports SOURCES without scipy and pandas
    from .patch_source import PatchSource

__all__ = ["SOURCES", "DEFAULT_MIN_SHARE", "make_source", "source_version"]

SOURCES = ("phantom", "dicom")
DEFAULT_MIN_SHARE = 0.5  # a store with fewer of the asked nodules than this is not a finished store


def source_version(name: str) -> str:
    """The version of a source's output: a store made by another version is rebuilt."""
    if name == "phantom":
        from .phantom import PHANTOM_VERSION

        return f"phantom-{PHANTOM_VERSION}"
    return "dicom-2"  # 2: PixelPaddingValue pixels read as air


def make_source(name: str, lidc_root: str | Path | None = None) -> PatchSource:
    """The patch source called ``name``; ``dicom`` needs the LIDC-IDRI folder."""
    if name == "phantom":
        from .phantom import PhantomSource

        return PhantomSource()
    if name == "dicom":
        from .dicom import DicomSource

        if lidc_root is None:
            raise LungclError("--source dicom needs --lidc-root DIR (the LIDC-IDRI download)")
        return DicomSource(lidc_root)
    raise LungclError(f"unknown source {name!r}; choose one of {', '.join(SOURCES)}")
