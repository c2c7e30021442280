"""The lung around a phantom nodule: parenchyma, vessels, fissures and chest wall.

Thin structures are drawn *already imaged*: a tube (vessel, spicule, rib) or
a sheet (fissure) with a Gaussian cross-section, convolved analytically with
the scanner's anisotropic point spread, is again Gaussian, so it can be
evaluated straight on the scan's coarse native grid without aliasing (a 1 mm
vessel between two 2.5 mm slices shows, faintly, on both, as on a real scan).
Everything is in mm relative to the nodule's centre, axes (i, j, k) = (row,
column, slice); ``HU`` values here are contrasts above the lung.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .scanner import noise_gain

SOFT_TISSUE_HU = 40.0
FAT_HU = -90.0
SQRT2 = np.sqrt(2.0)
RADIUS_TO_SIGMA = 1.0 / 1.1774  # a Gaussian profile whose half-maximum is at the radius


@dataclass
class Grid:
    """The mm positions (relative to the nodule centre) of a region's rows, columns and slices."""

    ai: np.ndarray
    aj: np.ndarray
    ak: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return len(self.ai), len(self.aj), len(self.ak)

    def window(self, lo: np.ndarray, hi: np.ndarray) -> tuple[slice, slice, slice] | None:
        """Index ranges of the voxels inside the mm box [lo, hi]; None if it misses the grid."""
        out = []
        for axis, a, b in zip((self.ai, self.aj, self.ak), lo, hi):
            i0, i1 = np.searchsorted(axis, a), np.searchsorted(axis, b, side="right")
            if i1 <= i0:
                return None
            out.append(slice(int(i0), int(i1)))
        return tuple(out)

    def axes(self, box: tuple[slice, slice, slice], origin: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable mm offsets from ``origin`` of the voxels in ``box``."""
        return ((self.ai[box[0]] - origin[0])[:, None, None],
                (self.aj[box[1]] - origin[1])[None, :, None],
                (self.ak[box[2]] - origin[2])[None, None, :])


# --- imaged primitives -----------------------------------------------------------------------

def add_tubes(out: np.ndarray, grid: Grid, tubes: np.ndarray, psf_cov: np.ndarray) -> None:
    """Add straight tube segments, as imaged, to ``out``.

    ``tubes`` rows: start (3 mm), end (3 mm), radius (mm, half-maximum), contrast (HU).
    The cross-section blurred by the PSF is Gaussian with covariance A restricted to
    the plane normal to the axis; the ends fade with the PSF along the axis, so
    consecutive segments of one vessel join without a seam.
    """
    rows = np.asarray(tubes, dtype=float).reshape(-1, 8)
    d = rows[:, 3:6] - rows[:, :3]
    length = np.linalg.norm(d, axis=1)
    rows, d, length = rows[length > 1e-6], d[length > 1e-6], length[length > 1e-6]
    if len(rows) == 0:
        return
    # the whole batch's linear algebra at once (per-segment numpy calls cost more than the voxels)
    u = d / length[:, None]
    s0 = rows[:, 6] * RADIUS_TO_SIGMA
    cov = s0[:, None, None] ** 2 * (np.eye(3) - u[:, :, None] * u[:, None, :]) + psf_cov
    inv = np.linalg.inv(cov)
    iu = np.einsum("nij,nj->ni", inv, u)
    uiu = np.einsum("ni,ni->n", u, iu)
    m = (inv - iu[:, :, None] * iu[:, None, :] / uiu[:, None, None]).astype(np.float32)
    amp = rows[:, 7] * s0 ** 2 / np.sqrt(np.linalg.det(cov) * uiu)
    ramp = 1.25 * np.sqrt(np.einsum("ni,ij,nj->n", u, psf_cov, u))  # ends fade over +-1.25 sigma
    reach = 2.5 * np.sqrt(s0 ** 2 + float(psf_cov.diagonal().max()))
    lo = np.minimum(rows[:, :3], rows[:, 3:6]) - reach[:, None]
    hi = np.maximum(rows[:, :3], rows[:, 3:6]) + reach[:, None]
    axes = (grid.ai, grid.aj, grid.ak)
    start = np.stack([np.searchsorted(ax, lo[:, n]) for n, ax in enumerate(axes)], 1)
    stop = np.stack([np.searchsorted(ax, hi[:, n], side="right") for n, ax in enumerate(axes)], 1)
    for n in np.flatnonzero(np.all(stop > start, axis=1) & (amp != 0)):
        box = tuple(slice(int(a), int(b)) for a, b, in zip(start[n], stop[n]))
        wi, wj, wk = (w.astype(np.float32) for w in grid.axes(box, rows[n, :3]))
        mn, un = m[n], u[n].astype(np.float32)
        q = ((mn[0, 0] * wi + 2.0 * mn[0, 1] * wj) * wi + (mn[1, 1] * wj + 2.0 * mn[1, 2] * wk) * wj
             + (mn[2, 2] * wk + 2.0 * mn[0, 2] * wi) * wk)
        t = wi * un[0] + wj * un[1] + wk * un[2]
        r = np.float32(ramp[n])
        ends = np.clip((t + r) / (2 * r), 0, 1) - np.clip((t - np.float32(length[n]) + r) / (2 * r), 0, 1)
        q *= np.float32(-0.5)
        np.exp(q, out=q)
        q *= ends
        q *= np.float32(amp[n])
        out[box] += q


def plane_distance(grid: Grid, point: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Signed distance (mm) of every voxel from the plane through ``point`` with unit ``normal``."""
    n = normal / np.linalg.norm(normal)
    wi, wj, wk = grid.axes((slice(None),) * 3, point)
    return (wi * n[0] + wj * n[1] + wk * n[2]).astype(np.float32)


def sheet(distance: np.ndarray, normal: np.ndarray, thickness_mm: float, contrast: float,
          psf_cov: np.ndarray) -> np.ndarray:
    """A thin sheet (fissure, pleura) of Gaussian profile across ``distance``, as imaged."""
    n = normal / np.linalg.norm(normal)
    s0 = thickness_mm * RADIUS_TO_SIGMA / 2.0
    se2 = s0 ** 2 + float(n @ psf_cov @ n)
    return np.float32(contrast * s0 / np.sqrt(se2)) * np.exp(distance * distance * np.float32(-0.5 / se2))


def half_space(distance: np.ndarray, normal: np.ndarray, psf_cov: np.ndarray) -> np.ndarray:
    """Occupancy (0..1) of the side ``distance > 0`` of a plane, as imaged (a blurred step)."""
    n = normal / np.linalg.norm(normal)
    sn = np.sqrt(float(n @ psf_cov @ n))
    # the logistic 1/(1+exp(-1.702 x)) is within 0.01 of the normal CDF, and far cheaper than erf
    x = distance * np.float32(-1.702 / sn)
    np.clip(x, -60.0, 60.0, out=x)
    np.exp(x, out=x)
    x += np.float32(1.0)
    return np.reciprocal(x, out=x)


# --- random anatomy ---------------------------------------------------------------------------

def random_unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal(3)
    return v / np.linalg.norm(v)


def _turn(u: np.ndarray, angle_rad: float, rng: np.random.Generator) -> np.ndarray:
    """``u`` rotated by ``angle_rad`` about a random axis normal to it."""
    w = rng.standard_normal(3)
    w -= (w @ u) * u
    w /= np.sqrt(w @ w) + 1e-12
    v = np.cos(angle_rad) * u + np.sin(angle_rad) * w
    return v / np.sqrt(v @ v)


def vessel_tree(rng: np.random.Generator, start: np.ndarray, direction: np.ndarray,
                radius: float, contrast: float, half_extent: float, max_segments: int = 12
                ) -> list[np.ndarray]:
    """A branching, tapering vessel as tube segments (4-7 mm each) until it is < 0.35 mm or leaves."""
    segments: list[np.ndarray] = []
    stack = [(np.asarray(start, float), direction / np.linalg.norm(direction), radius)]
    while stack and len(segments) < max_segments:
        p, u, r = stack.pop()
        while r >= 0.35 and len(segments) < max_segments and np.abs(p).max() < half_extent + 4.0:
            q = p + u * rng.uniform(4.0, 7.0)
            segments.append(np.concatenate([p, q, [r, contrast]]))
            if rng.random() < 0.18:  # bifurcation: a thinner daughter leaves at 30-70 degrees
                stack.append((q, _turn(u, np.radians(rng.uniform(30, 70)), rng), r * rng.uniform(0.55, 0.8)))
                r *= rng.uniform(0.8, 0.95)
            p, u = q, _turn(u, np.radians(rng.uniform(0, 15)), rng)
            r *= rng.uniform(0.93, 0.99)
    return segments


def vessels(rng: np.random.Generator, half_extent: float, nodule_radius: float, lung_hu: float
            ) -> np.ndarray:
    """Two to four vessel trees crossing the region; often one grazes or enters the nodule."""
    contrast = rng.uniform(30.0, 50.0) - lung_hu
    segments: list[np.ndarray] = []
    n_trees = int(rng.integers(2, 5))
    for tree in range(n_trees):
        radius = rng.uniform(0.6, 2.5)
        if tree == 0 and rng.random() < 0.6:
            # aimed to pass at about the nodule's surface
            u = random_unit(rng)
            side = np.cross(u, random_unit(rng))
            side /= np.linalg.norm(side)
            target = side * (nodule_radius + radius * rng.uniform(-0.5, 1.0))
            start = target - u * rng.uniform(0.6, 1.0) * half_extent
        else:
            start = random_unit(rng) * half_extent * rng.uniform(0.7, 1.0)
            u = rng.uniform(-0.5, 0.5, 3) * half_extent - start
        segments += vessel_tree(rng, start, u, radius, contrast, half_extent)
    return np.array(segments).reshape(-1, 8)


def _upsample2(x: np.ndarray, axis: int, n: int) -> np.ndarray:
    """Linear 2x upsampling along ``axis``, cut to ``n`` samples."""
    x = np.moveaxis(x, axis, 0)
    out = np.empty((2 * x.shape[0] - 1,) + x.shape[1:], x.dtype)
    out[0::2] = x
    out[1::2] = x[:-1]
    out[1::2] += x[1:]
    out[1::2] *= np.float32(0.5)
    return np.moveaxis(out[:n], 0, axis)


def lung_texture(shape: tuple[int, int, int], pixel_spacing: float, slice_step: float,
                 rng: np.random.Generator) -> np.ndarray:
    """Fine, low-contrast parenchymal texture (unit SD): smoothed noise, ~1 mm grain.

    Drawn on a grid twice as coarse in-plane where pixels are small (the grain is
    wider than two pixels), then interpolated: a quarter of the work.
    """
    f = 2 if pixel_spacing < 0.8 else 1
    extra = 1 if f == 2 else 0
    coarse = (-(-shape[0] // f) + extra, -(-shape[1] // f) + extra, shape[2])
    white = rng.random(coarse, dtype=np.float32)  # uniform: Gaussian once smoothed, 6x cheaper
    white -= np.float32(0.5)
    sig = (1.0 / (f * pixel_spacing), 1.0 / (f * pixel_spacing), 1.0 / max(slice_step, 1e-3))
    tex = ndimage.gaussian_filter(white, sigma=sig, mode="wrap", truncate=2.0)
    tex *= np.float32(np.sqrt(12.0) / noise_gain(sig, truncate=2.0))
    if f == 2:
        tex = _upsample2(_upsample2(tex, 0, shape[0]), 1, shape[1])
    return np.ascontiguousarray(tex)


@dataclass
class Background:
    """The imaged lung around a nodule (HU), and what a nodule must not paint over."""

    hu: np.ndarray  # lung, texture, fissures, chest wall (no vessels)
    vessels: np.ndarray  # imaged vessels and fissures as contrast above the lung
    lung: np.ndarray | None  # 0 inside the chest wall, 1 in the lung (imaged); None: all lung
    description: dict


def background(grid: Grid, rng: np.random.Generator, psf_cov: np.ndarray, lung_hu: float,
               pixel_spacing: float, slice_step: float, nodule_extent: Callable[[np.ndarray], float],
               nodule_radius: float) -> Background:
    """Lung parenchyma with vessels, sometimes a fissure, sometimes the chest wall.

    ``nodule_extent(n)`` is how far (mm) the nodule reaches along unit direction ``n``,
    so that a chest wall is placed touching it (juxtapleural) rather than through it.
    """
    half_extent = float(max(np.abs(grid.ai).max(), np.abs(grid.aj).max()))
    texture_sd = rng.uniform(8.0, 20.0)
    gradient = rng.uniform(0.0, 0.8)  # HU per mm, denser towards the dependent (posterior) rows
    hu = lung_texture(grid.shape, pixel_spacing, slice_step, rng)
    hu *= np.float32(texture_sd)
    hu += np.float32(lung_hu) + (gradient * grid.ai[:, None, None]).astype(np.float32)
    tubes = vessels(rng, half_extent, nodule_radius, lung_hu)
    vess = np.zeros(grid.shape, np.float32)
    add_tubes(vess, grid, tubes, psf_cov)
    lung = None
    desc = {"n_vessel_segments": len(tubes), "fissure": False, "chest_wall": False, "rib": False}

    if rng.random() < 0.25:  # a fissure: thin soft-tissue sheet, often near the nodule
        n = random_unit(rng)
        offset = nodule_extent(n) + rng.uniform(-1.0, 10.0)
        dist = plane_distance(grid, n * offset, n)
        vess += sheet(dist, n, rng.uniform(0.6, 1.2), SOFT_TISSUE_HU - lung_hu, psf_cov)
        desc["fissure"] = True

    if rng.random() < 0.3:  # juxtapleural: the chest wall touches or nearly touches the nodule
        theta = rng.uniform(0, 2 * np.pi)
        n = np.array([np.cos(theta), np.sin(theta), rng.uniform(-0.3, 0.3)])
        n /= np.linalg.norm(n)
        offset = nodule_extent(n) + rng.uniform(-0.5, 3.0)
        dist = plane_distance(grid, n * offset, n)
        wall = half_space(dist, n, psf_cov)
        fat_depth = rng.uniform(1.0, 5.0)
        muscle = half_space(dist - fat_depth, n, psf_cov)
        hu += wall * (FAT_HU + rng.uniform(-20, 20) - hu) + muscle * (SOFT_TISSUE_HU - FAT_HU)
        hu += sheet(dist, n, rng.uniform(0.5, 1.0), (SOFT_TISSUE_HU - lung_hu) * 0.5, psf_cov)
        lung = 1.0 - wall
        desc.update(chest_wall=True, chest_wall_mm=round(float(offset - nodule_extent(n)), 2))
        if rng.random() < 0.6:  # a rib inside the wall, running along it
            t = np.cross(n, [0.0, 0.0, 1.0]) + rng.uniform(-0.5, 0.5) * np.array([0.0, 0.0, 1.0])
            t /= np.linalg.norm(t)
            r = rng.uniform(3.0, 5.0)
            centre = n * (offset + fat_depth + r + rng.uniform(1.0, 6.0))
            rib = np.concatenate([centre - t * 3 * half_extent, centre + t * 3 * half_extent,
                                  [r, rng.uniform(250.0, 600.0)]])
            bone = np.zeros(grid.shape, np.float32)
            add_tubes(bone, grid, rib[None], psf_cov)
            hu += bone
            desc["rib"] = True
        vess *= lung
    return Background(hu=hu, vessels=vess, lung=lung, description=desc)
