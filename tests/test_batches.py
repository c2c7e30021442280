"""The batched pipeline against the per-patch MONAI reference: eval equal, augmentation equal in law."""

import numpy as np
import pytest
import torch
from scipy import stats

from lungcl.data.batches import PatchBatches, augment, centre_crop, window_hu
from lungcl.data.datasets import load_task_datasets
from lungcl.data.tasks import resolve_tasks
from lungcl.data.transforms import apply, item_seed, train_transform

DRAWS = 300  # augmented copies of each source patch, per pipeline


def test_eval_tensor_equals_the_monai_eval_transform(smoke_store, data_dir):
    data = load_task_datasets(data_dir, resolve_tasks("AB"), fold=0, profile="smoke", context_slices=1)
    for splits in data.values():
        for ds in (splits.val, splits.test):
            assert torch.equal(ds.eval_tensor(), torch.stack([ds[i][0] for i in range(len(ds))]))


def test_batches_are_seeded_and_each_epoch_is_new(smoke_store, data_dir):
    ds = load_task_datasets(data_dir, resolve_tasks("A"), fold=0, profile="smoke", seed=3)["malignancy"].train
    a, b = PatchBatches(ds, 16, seed=5, drop_last=True), PatchBatches(ds, 16, seed=5, drop_last=True)
    first_a, first_b = list(a), list(b)
    assert len(first_a) == len(a) == len(ds) // 16
    assert all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(first_a, first_b))
    x, y = first_a[0]
    assert x.shape == (16, 1, ds.patch_px, ds.patch_px) and y.dtype == torch.int64
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert not torch.equal(next(iter(a))[0], x)  # the next epoch: another order and augmentation
    # an epoch visits the up-sampled order: labels balanced as in the dataset's order
    ys = torch.cat([y for _, y in PatchBatches(ds, 16, seed=1)])
    assert sorted(ys.tolist()) == sorted(ds.labels[ds.order].tolist())


def _blobs(side: int, n: int) -> np.ndarray:
    """Off-centre elongated bright blobs on a dark background (HU): orientation matters."""
    rng = np.random.default_rng(0)
    r, c = np.mgrid[:side, :side].astype(float)
    out = []
    for _ in range(n):
        cr, cc = side / 2 + rng.uniform(-4, 4, 2)
        a = rng.uniform(0, np.pi)
        u, v = (r - cr) * np.cos(a) + (c - cc) * np.sin(a), -(r - cr) * np.sin(a) + (c - cc) * np.cos(a)
        out.append(-900 + 1300 * np.exp(-(u / 8) ** 2 - (v / 3) ** 2))
    return np.stack(out)[:, None].astype(np.int16)


def _both(images: np.ndarray, patch_px: int) -> tuple[np.ndarray, np.ndarray]:
    """(MONAI reference, batched) augmentations: DRAWS copies of each image, (n, DRAWS, C, P, P)."""
    reference = train_transform(patch_px)
    ref = np.stack([[apply(_seeded(reference, item_seed(11, e, i)), images[i].astype(np.float32)).numpy()
                     for e in range(DRAWS)] for i in range(len(images))])
    x = window_hu(images).repeat_interleave(DRAWS, 0)
    new = augment(x, patch_px, torch.Generator().manual_seed(11)).numpy().reshape(ref.shape)
    return ref, new


def _seeded(transform, seed: int):
    transform.set_random_state(seed=seed)
    return transform


def _angle(p: np.ndarray) -> np.ndarray:
    """Orientation (mod 180 degrees) of the intensity's second moments of each (..., P, P) patch."""
    side = p.shape[-1]
    r, c = np.mgrid[:side, :side] - (side - 1) / 2
    w = p / p.sum(axis=(-2, -1), keepdims=True)
    mr, mc = (w * r).sum((-2, -1)), (w * c).sum((-2, -1))
    rr = (w * r * r).sum((-2, -1)) - mr ** 2
    cc = (w * c * c).sum((-2, -1)) - mc ** 2
    rc = (w * r * c).sum((-2, -1)) - mr * mc
    return np.degrees(0.5 * np.arctan2(2 * rc, rr - cc)) % 180


def _similarity(p: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Correlation of each augmented patch with its source's un-augmented centre crop."""
    a = p.reshape(*p.shape[:2], -1)
    b = centre.reshape(len(centre), 1, -1)
    a, b = a - a.mean(-1, keepdims=True), b - b.mean(-1, keepdims=True)
    return (a * b).sum(-1) / np.sqrt((a * a).sum(-1) * (b * b).sum(-1) + 1e-12)


@pytest.mark.parametrize("source", ["smoke_store", "blobs48"])
def test_augmentation_has_the_distribution_of_the_monai_reference(source, request, data_dir):
    if source == "smoke_store":
        request.getfixturevalue("smoke_store")
        ds = load_task_datasets(data_dir, resolve_tasks("A"), fold=0, profile="smoke")["malignancy"].train
        images, patch_px = ds.images[:6], ds.patch_px
    else:
        images, patch_px = _blobs(48, 6), 32
    ref, new = _both(images, patch_px)
    n = DRAWS
    # 1. per-pixel mean and std images of each source: differences within sampling error
    se_mean = np.sqrt((ref.var(1) + new.var(1)) / n) + 1e-4
    z_mean = (ref.mean(1) - new.mean(1)) / se_mean
    assert np.abs(z_mean).max() < 5.5, np.abs(z_mean).max()  # ~2000-7000 correlated pixels, 5.5 sigma
    # std of a sample std ~ sigma * sqrt((kurtosis - 1) / 4n); bound kurtosis by the data's own
    kurt = stats.kurtosis(np.concatenate([ref, new], 1), axis=1, fisher=False)
    se_std = np.sqrt((ref.std(1) ** 2 + new.std(1) ** 2) * np.maximum(kurt - 1, 0.5) / (4 * n)) + 1e-4
    z_std = (ref.std(1) - new.std(1)) / se_std
    assert np.abs(z_std).max() < 5.5, np.abs(z_std).max()
    # 2. intensity histograms: per-patch histograms (patches are the independent units), each bin's mean
    bins = np.linspace(0, 1, 11)

    def hist(p):
        flat = p.reshape(*p.shape[:2], -1)
        return np.stack([np.stack([np.histogram(q, bins)[0] / q.size for q in row]) for row in flat])
    hr, hn = hist(ref), hist(new)
    se_h = np.sqrt((hr.var(1) + hn.var(1)) / n) + 1e-4
    assert np.abs((hr.mean(1) - hn.mean(1)) / se_h).max() < 4.5
    # 3. rotation-sensitive statistics, per source: two-sample KS (n = DRAWS each), Bonferroni over tests
    centre = centre_crop(window_hu(images), patch_px).numpy()
    sim_r, sim_n = _similarity(ref, centre), _similarity(new, centre)
    ang_r, ang_n = _angle(ref[:, :, 0]), _angle(new[:, :, 0])
    p_values = [stats.ks_2samp(a[i], b[i]).pvalue for a, b in ((sim_r, sim_n), (ang_r, ang_n))
                for i in range(len(images))]
    assert min(p_values) > 1e-3 / len(p_values), p_values
    # the statistics do see augmentation (a test that could fail): the un-rotated reference differs
    plain = np.broadcast_to(centre[:, None], ref.shape)
    assert stats.ks_2samp(_similarity(plain, centre)[0], sim_r[0]).pvalue < 1e-6


def test_evaluator_remembers_a_state_and_sees_any_change(smoke_store, data_dir):
    from lungcl.experiments import default_config
    from lungcl.experiments.evaluation import Evaluator
    from lungcl.experiments.sequence import build_model

    splits = load_task_datasets(data_dir, resolve_tasks("A"), fold=0, profile="smoke")
    model = build_model(default_config("smoke", tasks="A"), ["malignancy"])
    ev = Evaluator(splits, torch.device("cpu"))
    loss, prob = ev.predict(model, "malignancy", "val")
    calls = []
    ev._forward = lambda model, pairs: calls.append(pairs) or {p: (0.0, np.zeros(0), 0.0) for p in pairs}
    again = ev.predict(model, "malignancy", "val")
    assert not calls and again[0] == loss and np.array_equal(again[1], prob)
    with torch.no_grad():
        next(model.parameters()).add_(1e-3)
    ev.predict(model, "malignancy", "val")
    assert len(calls) == 1  # changed weights: evaluated again


def test_multitask_batches_use_the_batched_path(smoke_store, data_dir):
    from lungcl.data.transforms import eval_transform
    from lungcl.mtl.data import load_lidc_multitask

    data = load_lidc_multitask(data_dir, ["malignancy", "lobulation"], fold=0, profile="smoke", seed=2)
    a, ya = data.train.batch([0, 3, 3, 5], key=4)
    b, _ = data.train.batch([0, 3, 3, 5], key=4)
    assert torch.equal(a, b) and ya.shape == (4, 2)
    assert not torch.equal(a, data.train.batch([0, 3, 3, 5], key=5)[0])
    x, _ = data.val.batch([1, 2])
    reference = eval_transform(data.val.patch_px)
    assert torch.equal(x, torch.stack([apply(reference, data.val.images[i].astype(np.float32)) for i in (1, 2)]))
