"""The phantom source: deterministic, realistic HU per structure, the nodule where its reader drew it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from lungcl.data.geometry import paste
from lungcl.data.nodules import CHARACTERISTICS, ReaderMasks, load_scan_table
from lungcl.data.phantom import (
    MARGIN_MM,
    PHANTOM_VERSION,
    PhantomSource,
    choose_reader,
    nodule_rng,
)
from lungcl.data.phantom.anatomy import Grid, add_tubes, background
from lungcl.data.phantom.nodule import draw_look, render_nodule
from lungcl.data.sources import make_source
from lungcl.profiles import DataSettings, data_settings

SETTINGS = data_settings("smoke")


@pytest.fixture(scope="module")
def world(data_dir):
    scans = load_scan_table(data_dir).set_index("scan_id")
    masks = ReaderMasks(data_dir)
    yield scans, masks
    masks.close()


def _scan(scans, nodule: dict) -> dict:
    return {"scan_id": int(nodule["scan_id"]), **scans.loc[nodule["scan_id"]].to_dict()}


def _pick(nodules, lo_mm: float, hi_mm: float, readers: int = 4) -> dict:
    rows = nodules[(nodules.n_readers == readers) & nodules.diameter_mm.between(lo_mm, hi_mm)]
    return rows.sort_values("nodule_id").iloc[0].to_dict()


def _force(nodule: dict, **ratings: int) -> dict:
    """The nodule with every reader giving ``ratings`` (the others left as they are)."""
    out = dict(nodule)
    for name, value in ratings.items():
        out[f"{name}_ratings"] = [value] * int(nodule["n_readers"])
    return out


def _render(world, nodule: dict, settings: DataSettings = SETTINGS):
    scans, masks = world
    return PhantomSource().render_scan(_scan(scans, nodule), [nodule], masks, settings)[0]


def _reader_mask(world, item) -> np.ndarray:
    _, masks = world
    mask, offset = masks.mask(item.provenance["reader_annotation_id"])
    return paste(item.region.hu.shape, np.asarray(item.region.origin), mask, offset)


def _core(world, item, depth_mm: float = 2.0) -> np.ndarray:
    """HU of the voxels at least ``depth_mm`` inside the reader's contour."""
    mask = _reader_mask(world, item)
    ps, dz = item.region.pixel_spacing, float(np.median(np.diff(item.region.z_mm)))
    return item.region.hu[ndimage.distance_transform_edt(mask, sampling=(ps, ps, dz)) >= depth_mm]


PLAIN = {"calcification": 6, "internal_structure": 1, "subtlety": 5}


def test_make_source_gives_the_phantom():
    assert make_source("phantom").name == "phantom"


def test_same_seed_same_bytes_other_seed_different(world, nodules):
    nodule = _pick(nodules, 6, 12)
    a, b = _render(world, nodule), _render(world, nodule)
    assert a.region.hu.dtype == np.float32
    assert a.region.hu.tobytes() == b.region.hu.tobytes()
    assert a.provenance == b.provenance
    other = _render(world, nodule, DataSettings("smoke", 32, 24, 150, phantom_seed=1))
    assert other.region.hu.shape == a.region.hu.shape
    assert not np.array_equal(other.region.hu, a.region.hu)


def test_region_is_the_scans_grid_and_covers_the_crop(world, nodules):
    scans, _ = world
    for nodule in (_pick(nodules, 6, 12), _pick(nodules, 20, 40)):
        item = _render(world, nodule)
        region, scan = item.region, scans.loc[nodule["scan_id"]]
        half = SETTINGS.crop_mm / 2 + MARGIN_MM
        ps = region.pixel_spacing
        assert ps == scan.pixel_spacing
        i0, j0, k0 = region.origin
        ni, nj, nk = region.hu.shape
        assert (nodule["centroid_i"] - i0) * ps >= half and (i0 + ni - 1 - nodule["centroid_i"]) * ps >= half
        assert (nodule["centroid_j"] - j0) * ps >= half and (j0 + nj - 1 - nodule["centroid_j"]) * ps >= half
        z = np.asarray(scan.slice_zvals)
        np.testing.assert_array_equal(region.z_mm, z[k0:k0 + nk])  # the scan's own slices
        zc = nodule["centroid_z_mm"]
        assert region.z_mm[0] <= zc - half or k0 == 0
        assert region.z_mm[-1] >= zc + half or k0 + nk == len(z)


def test_provenance_names_one_reader_and_its_ratings(world, nodules):
    nodule = _pick(nodules, 6, 12)
    prov = _render(world, nodule).provenance
    assert prov["source"] == "phantom" and prov["phantom_version"] == PHANTOM_VERSION
    assert prov["phantom_seed"] == SETTINGS.phantom_seed
    k = list(nodule["annotation_ids"]).index(prov["reader_annotation_id"])
    assert prov["reader_ratings"] == {c: int(nodule[f"{c}_ratings"][k]) for c in CHARACTERISTICS}
    assert prov["nodule_drawn"] is True
    assert json.loads(json.dumps(prov)) == prov  # the store writes it as JSON


def test_reader_choice_is_stable_and_uses_every_reader(nodules):
    four = nodules[nodules.n_readers == 4].head(40).to_dict("records")
    picks = [choose_reader(n, nodule_rng(0, n["nodule_id"]))[0] for n in four]
    again = [choose_reader(n, nodule_rng(0, n["nodule_id"]))[0] for n in four]
    assert picks == again
    positions = {list(n["annotation_ids"]).index(p) for n, p in zip(four, picks)}
    assert positions == {0, 1, 2, 3}


def test_solid_nodule_sits_in_its_readers_mask_in_aerated_lung(world, nodules):
    nodule = _force(_pick(nodules, 12, 25), texture=5, margin=5, **PLAIN)
    for seed in range(6):  # find a scene without chest wall, so the lung is the background
        item = _render(world, nodule, DataSettings("smoke", 32, 24, 150, phantom_seed=seed))
        if not item.provenance["background"]["chest_wall"]:
            break
    hu, mask = item.region.hu, _reader_mask(world, item)
    ps, dz = item.region.pixel_spacing, float(np.median(np.diff(item.region.z_mm)))
    depth = ndimage.distance_transform_edt(mask, sampling=(ps, ps, dz))
    core = hu[depth >= 2.0]
    assert core.size > 20 and -40.0 <= np.median(core) <= 80.0  # soft tissue
    far = ndimage.distance_transform_edt(~mask, sampling=(ps, ps, dz)) > 8.0
    assert -920.0 <= np.median(hu[far]) <= -780.0  # aerated lung ~ -850
    assert np.median(core) - np.median(hu[far]) > 700.0


def test_ground_glass_is_between_lung_and_soft_tissue(world, nodules):
    nodule = _force(_pick(nodules, 12, 25), texture=1, margin=4, **PLAIN)
    item = _render(world, nodule)
    core = _core(world, item)
    assert core.size > 20 and -780.0 <= np.median(core) <= -280.0


def test_solid_calcification_is_dense(world, nodules):
    nodule = _force(_pick(nodules, 12, 25), texture=5, margin=5, calcification=3,
                    internal_structure=1, subtlety=5)
    item = _render(world, nodule)
    core = _core(world, item)
    assert core.size > 20 and np.median(core) >= 200.0


def _ball_nodule(look_ratings: dict, seed: int = 0):
    """A 10 mm ball drawn by ``render_nodule`` on a 0.7 x 0.7 x 1.25 mm grid (before imaging)."""
    ps, dz = 0.7, 1.25
    grid = Grid(ai=(np.arange(60) - 30) * ps, aj=(np.arange(60) - 30) * ps, ak=(np.arange(24) - 12) * dz)
    ball = (grid.ai[:, None, None] ** 2 + grid.aj[None, :, None] ** 2 + grid.ak[None, None, :] ** 2) <= 25.0
    rng = np.random.default_rng(seed)
    look = draw_look(look_ratings, rng)
    return look, ball, render_nodule(grid, ball, look, rng, ps, dz, 1.5, -850.0)


@pytest.mark.parametrize("pattern", [1, 2, 3, 4, 5])
def test_every_calcium_pattern_is_at_least_200_hu(pattern):
    look, ball, layer = _ball_nodule({"calcification": pattern, "texture": 5})
    hu = layer.hu[paste(layer.hu.shape, np.array([b.start for b in layer.box]), ball, np.zeros(3, int))]
    assert look.calcium_hu >= 200.0
    calcified = hu[hu > look.solid_hu + 100.0]
    assert calcified.size > 0 and calcified.max() >= 200.0
    if pattern == 3:  # solid: the whole nodule dense
        assert np.median(hu) >= 200.0


def test_no_calcium_when_absent_and_solid_tissue_in_range():
    look, _, layer = _ball_nodule({"calcification": 6, "texture": 5, "internal_structure": 1})
    hu = layer.hu[layer.occupancy > 0.99]
    assert look.calcium_hu == 0.0 and hu.max() < 120.0
    assert -40.0 <= np.median(hu) <= 60.0


def test_ground_glass_texture_range_and_part_solid_core():
    ggo = _ball_nodule({"texture": 1, "calcification": 6})[2]
    assert -750.0 - 40 <= np.median(ggo.hu[ggo.occupancy > 0.99]) <= -300.0 + 40
    part = _ball_nodule({"texture": 3, "calcification": 6})[2]
    inside = part.hu[part.occupancy > 0.99]
    assert inside.min() < -250.0 and inside.max() > -100.0  # ground glass round a solid core


def test_malignancy_is_not_painted(world, nodules):
    """Readers judge malignancy from what they see: changing only it changes no voxel."""
    nodule = _pick(nodules, 6, 12)
    low, high = _render(world, _force(nodule, malignancy=1)), _render(world, _force(nodule, malignancy=5))
    assert np.array_equal(low.region.hu, high.region.hu)


def test_spiculation_adds_strands_outside_the_contour(world, nodules):
    nodule = _pick(nodules, 12, 25)
    smooth = _render(world, _force(nodule, spiculation=1, texture=5, **PLAIN))
    spiky = _render(world, _force(nodule, spiculation=5, texture=5, **PLAIN))
    assert smooth.provenance["look"]["n_spicules"] == 0 and spiky.provenance["look"]["n_spicules"] >= 7


def test_imaged_tube_equals_a_blurred_tube():
    """The analytic imaged vessel matches a Gaussian tube blurred numerically by the same PSF."""
    step = 0.25
    ax = (np.arange(48) - 23.5) * step
    grid = Grid(ai=ax, aj=ax, ak=ax)
    u = np.array([1.0, 0.6, 0.5]) / np.linalg.norm([1.0, 0.6, 0.5])
    radius, contrast = 1.0, 800.0
    sigma_psf = np.array([0.4, 0.4, 0.9])
    imaged = np.zeros(grid.shape, np.float32)
    add_tubes(imaged, grid, np.concatenate([-30 * u, 30 * u, [radius, contrast]])[None], np.diag(sigma_psf ** 2))
    p = np.stack(np.meshgrid(ax, ax, ax, indexing="ij"), -1)
    d2 = (p ** 2).sum(-1) - (p @ u) ** 2
    s0 = radius / 1.1774
    truth = ndimage.gaussian_filter(contrast * np.exp(-0.5 * d2 / s0 ** 2), sigma_psf / step, mode="nearest")
    inner = (slice(12, 36),) * 3
    assert np.abs(imaged[inner] - truth[inner]).max() < 0.03 * contrast
    assert truth[inner].max() > 0.4 * contrast  # the comparison is not vacuous


def test_backgrounds_vary_vessels_always_wall_and_fissure_sometimes():
    ps, dz = 0.8, 2.0
    grid = Grid(ai=(np.arange(50) - 25) * ps, aj=(np.arange(50) - 25) * ps, ak=(np.arange(16) - 8) * dz)
    cov = np.diag([0.17, 0.17, 0.72])
    seen = []
    for seed in range(20):
        bg = background(grid, np.random.default_rng(seed), cov, -850.0, ps, dz, lambda n: 4.0, 4.0)
        seen.append(bg.description)
        assert bg.vessels.max() > 300.0  # a vessel crosses every region
        assert -900.0 <= np.median(bg.hu if bg.lung is None else bg.hu[bg.lung > 0.99]) <= -800.0
        if bg.description["chest_wall"]:
            assert np.median(bg.hu[bg.lung < 0.01]) > -150.0  # fat and muscle, not lung
    walls = sum(d["chest_wall"] for d in seen)
    fissures = sum(d["fissure"] for d in seen)
    assert 1 <= walls <= 15 and 1 <= fissures <= 15
