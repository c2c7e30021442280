"""Where real and phantom data meet: a native-grid HU region -> an isotropic 1 mm crop.

Both patch sources hand over a :class:`NativeRegion`: HU values in the scan's
own voxel grid (rows i, columns j, slices k, as pylidc indexes its masks) around
a nodule. Everything after that, the consensus mask, the resampling to 1 mm and
the crop around the consensus centroid, is this module's, for both sources.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

AIR_HU = -1000.0


@dataclass
class NativeRegion:
    """HU values on (part of) a scan's voxel grid.

    ``origin`` is the (i, j, k) scan voxel of ``hu[0, 0, 0]``; ``z_mm`` holds the
    z position of each of the region's slices (increasing).
    """

    hu: np.ndarray
    origin: tuple[int, int, int]
    pixel_spacing: float
    z_mm: np.ndarray

    def __post_init__(self) -> None:
        self.z_mm = np.asarray(self.z_mm, dtype=float)
        if self.hu.ndim != 3 or len(self.z_mm) != self.hu.shape[2]:
            raise ValueError("NativeRegion: hu must be 3D with one z position per slice")
        if len(self.z_mm) > 1 and np.any(np.diff(self.z_mm) <= 0):
            raise ValueError("NativeRegion: slices must be ordered by increasing z")


def consensus_mask(masks: list[tuple[np.ndarray, np.ndarray]], level: float = 0.5
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Voxels marked by at least ``level`` of the readers (pylidc's rule).

    ``masks`` are (boolean mask, (i, j, k) offset) pairs in one scan's grid;
    returns the consensus mask over the union box and that box's offset.
    """
    lo = np.min([off for _, off in masks], axis=0)
    hi = np.max([off + np.array(m.shape) for m, off in masks], axis=0)
    votes = np.zeros(tuple(hi - lo), dtype=np.int16)
    for m, off in masks:
        s = tuple(slice(a, a + n) for a, n in zip(off - lo, m.shape))
        votes[s] += m
    return votes >= level * len(masks), lo.astype(int)


def paste(region_shape: tuple[int, ...], origin: np.ndarray, mask: np.ndarray, offset: np.ndarray
          ) -> np.ndarray:
    """A boolean mask given at scan ``offset`` drawn into a region starting at ``origin``."""
    out = np.zeros(region_shape, dtype=bool)
    start = np.asarray(offset) - np.asarray(origin)
    src, dst = [], []
    for a, n, size in zip(start, mask.shape, region_shape):
        d0, d1 = max(a, 0), min(a + n, size)
        if d1 <= d0:
            return out
        src.append(slice(d0 - a, d1 - a))
        dst.append(slice(d0, d1))
    out[tuple(dst)] = mask[tuple(src)]
    return out


def crop_coordinates(region: NativeRegion, centroid_ijk: np.ndarray, z_centre_mm: float, side: int
                     ) -> np.ndarray:
    """Fractional region-voxel coordinates of a ``side``^3 grid at 1 mm, centred on the centroid.

    Axis order of the crop is (z, y, x) = (slice, row, column), the usual CT order.
    """
    u = np.arange(side, dtype=float) - (side - 1) / 2.0
    ps = region.pixel_spacing
    i = centroid_ijk[0] + u / ps - region.origin[0]
    j = centroid_ijk[1] + u / ps - region.origin[1]
    k = np.interp(z_centre_mm + u, region.z_mm, np.arange(len(region.z_mm)), left=-1e6, right=1e6)
    zz, ii, jj = np.meshgrid(k, i, j, indexing="ij")
    return np.stack([ii, jj, zz])


def crop_isotropic(region: NativeRegion, centroid_ijk: np.ndarray, z_centre_mm: float, side: int,
                   mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Resample a region to a 1 mm crop (z, y, x) around the centroid.

    HU by linear interpolation (air outside the region); the mask, if given (in
    the region's grid), by nearest neighbour.
    """
    coords = crop_coordinates(region, centroid_ijk, z_centre_mm, side)
    hu = ndimage.map_coordinates(region.hu.astype(np.float32), coords, order=1, mode="constant",
                                 cval=AIR_HU)
    out_mask = None
    if mask is not None:
        out_mask = ndimage.map_coordinates(mask.astype(np.uint8), coords, order=0, mode="constant",
                                           cval=0).astype(bool)
    return hu.astype(np.float32), out_mask
