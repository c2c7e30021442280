"""Import pylidc 0.2.3 on a modern stack, without touching the user's home.

pylidc uses ``numpy.int`` / ``numpy.float`` (removed in numpy 2) and
``pkg_resources`` (setuptools < 82). It also writes ``~/.pylidcrc`` when asked
for DICOM paths; lungcl locates DICOM series itself, so that method is blocked.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from types import ModuleType

import numpy as np

from .errors import LungclError


def _no_dicom_lookup(self, *args, **kwargs):  # pragma: no cover - guard only
    raise LungclError(
        "pylidc's own DICOM lookup is disabled in lungcl (it writes ~/.pylidcrc); "
        "use `lungcl data prepare --source dicom --lidc-root DIR`"
    )


@lru_cache(maxsize=1)
def pylidc() -> ModuleType:
    """The pylidc module, shimmed; imported once per process."""
    for name, value in (("int", int), ("float", float)):
        if not hasattr(np, name):
            setattr(np, name, value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import pylidc as pl
        except ModuleNotFoundError as exc:  # pkg_resources missing: setuptools >= 82
            raise LungclError(f"pylidc cannot be imported ({exc}); install setuptools<82") from exc
    pl.Scan.get_path_to_dicom_files = _no_dicom_lookup
    pl.Scan.load_all_dicom_images = _no_dicom_lookup
    return pl


def pylidc_version() -> str:
    """pylidc's installed version, read from its package metadata (importing pylidc takes ~1.5 s,
    which a run reading the cached nodule table does not need); the module's own as fallback."""
    from importlib import metadata

    try:
        return metadata.version("pylidc")
    except metadata.PackageNotFoundError:
        return pylidc().__version__


@contextmanager
def geometry_computed_once() -> Iterator[None]:
    """Within: each annotation's ``contours_matrix`` and each scan's ``slice_zvals`` computed once.

    pylidc recomputes both at every access (parsing every contour's text, sorting the scan's z
    values); ``Scan.cluster_annotations`` asks for an annotation's contour matrix once per pair it
    compares, and every contour point asks for the z values. Both are read-only views of the
    database, so a per-object cache gives the same values; the properties are restored on exit.
    """
    pl = pylidc()
    originals = {(pl.Annotation, "contours_matrix"): pl.Annotation.contours_matrix,
                 (pl.Scan, "slice_zvals"): pl.Scan.slice_zvals}
    cache: dict[tuple[int, str], tuple[object, object]] = {}

    def once(name: str, compute: property) -> property:
        def get(obj):
            key = (id(obj), name)
            if key not in cache:
                value = compute.fget(obj)
                value.setflags(write=False)  # shared: nobody may change it in place
                cache[key] = (obj, value)  # the object is kept alive, so its id stays its own
            return cache[key][1]
        return property(get)

    try:
        for (cls, name), prop in originals.items():
            setattr(cls, name, once(name, prop))
        yield
    finally:
        for (cls, name), prop in originals.items():
            setattr(cls, name, prop)
        cache.clear()
