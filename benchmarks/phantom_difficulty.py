"""Is the phantom as hard as the real task? Geometry baseline vs a small CNN on phantom patches.

For each task (A, B, C by default; ``--tasks all`` for the nine) prints accuracy,
balanced accuracy and AUC, cross-validated over the patient split's five folds, of

  geometry    logistic regression on the consensus contour's geometry only
              (volume, diameter, principal axes, sphericity; never a rating);
  geometry-bal  the same with class-balanced weights;
  img-feat    logistic regression on geometry + simple intensity statistics of
              the phantom's central slice (a leak alarm: a rating should not be
              readable off a few numbers);
  oracle      geometry + the ratings the phantom drew each nodule from (its chosen
              reader's, malignancy excluded): what a perfect reader of the phantom
              could know, the ceiling of any image model;
  cnn         a small CNN trained a few epochs on the phantom's central axial slice
              (class-balanced loss); ``--hybrid`` adds one given the geometry too;
  reader      one reader vs the median of the others (nodules with >= 3 readers):
              the level of agreement among radiologists, an upper reference.

The phantom should beat the geometry baseline (it adds what readers see) and
stay below the readers (it must not leak the label). Whether it does decides how
the phantom is drawn, so the split's test patients (``--split-seed``, the
profile's split) are left out of everything here: the folds are the split's own
five, the readers' agreement is read on the same patients. Usage::

    python benchmarks/phantom_difficulty.py --data-dir data --tasks ABC
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import ndimage
from skimage import measure, morphology
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from lungcl.atomic import atomic_write_npz
from lungcl.baselines import geometry_features, reader_agreement
from lungcl.data.nodules import (
    CHARACTERISTICS,
    ReaderMasks,
    load_nodule_table,
    load_scan_table,
)
from lungcl.data.phantom import (
    PHANTOM_VERSION,
    PhantomSource,
    choose_reader,
    nodule_rng,
)
from lungcl.data.prepare import nodule_patch, select_nodules
from lungcl.data.splits import N_FOLDS, PatientSplit, load_or_make_split
from lungcl.data.store import open_store
from lungcl.data.tasks import resolve_tasks
from lungcl.profiles import data_settings

CONTEXT = 1  # central slice +- 1 kept in the cache


# geometry of the consensus contour: lungcl.baselines.geometry_features (the package computes it)


# --- phantom patches ---------------------------------------------------------------------------

def _render_chunk(args: tuple) -> list[tuple[str, np.ndarray, np.ndarray]]:
    data_dir, profile, scan_rows, nodule_rows = args
    torch.set_num_threads(1)
    settings = data_settings(profile)
    masks, source, out = ReaderMasks(data_dir), PhantomSource(), []
    c = settings.crop_mm // 2
    for scan, rows in zip(scan_rows, nodule_rows):
        for item in source.render_scan(scan, rows, masks, settings):
            nodule = next(r for r in rows if r["nodule_id"] == item.nodule_id)
            hu, mask = nodule_patch(item.region, nodule, masks, settings.crop_mm)
            out.append((item.nodule_id, np.rint(hu[c - CONTEXT:c + CONTEXT + 1]).astype(np.int16),
                        mask[c - CONTEXT:c + CONTEXT + 1]))
    return out


def phantom_slices(nodules: pd.DataFrame, data_dir: Path, profile: str, workers: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Central slices (N, 3, S, S) HU and consensus masks of every nodule, cached per phantom version."""
    settings = data_settings(profile)
    cache = data_dir / "benchmarks" / (f"phantom-v{PHANTOM_VERSION}-seed{settings.phantom_seed}-"
                                       f"crop{settings.crop_mm}-n{len(nodules)}.npz")
    if cache.exists():
        with np.load(cache) as z:
            if list(z["ids"]) == list(nodules["nodule_id"]):
                return z["hu"], z["mask"]
    scans = load_scan_table(data_dir).set_index("scan_id")
    groups = [(int(sid), g.to_dict("records")) for sid, g in nodules.groupby("scan_id", sort=True)]
    chunks = []
    for start in range(0, len(groups), 25):
        part = groups[start:start + 25]
        chunks.append((str(data_dir), profile,
                       [{"scan_id": sid, **scans.loc[sid].to_dict()} for sid, _ in part],
                       [rows for _, rows in part]))
    t0 = time.time()
    results = {}
    if workers > 1:
        with mp.get_context("spawn").Pool(workers) as pool:
            for out in pool.imap_unordered(_render_chunk, chunks):
                results.update({nid: (h, m) for nid, h, m in out})
    else:
        for ch in chunks:
            results.update({nid: (h, m) for nid, h, m in _render_chunk(ch)})
    print(f"rendered {len(results)} phantom nodules in {time.time() - t0:.0f} s", file=sys.stderr)
    hu = np.stack([results[n][0] for n in nodules["nodule_id"]])
    mask = np.stack([results[n][1] for n in nodules["nodule_id"]])
    atomic_write_npz(cache, ids=nodules["nodule_id"].to_numpy().astype(str), hu=hu, mask=mask)
    return hu, mask


def store_slices(nodules: pd.DataFrame, data_dir: Path, profile: str) -> tuple[np.ndarray, np.ndarray]:
    """The same central slices, read from the finished phantom patch store (``lungcl data prepare``)."""
    store = open_store(data_dir, "phantom", profile)
    c = store.settings.crop_mm // 2
    hu, mask = [], []
    for nid in nodules["nodule_id"]:
        h, m, prov = store.load(nid)
        if prov.get("phantom_version") != PHANTOM_VERSION:
            raise SystemExit(f"the store holds phantom version {prov.get('phantom_version')}, this code "
                             f"draws {PHANTOM_VERSION}: rebuild it (lungcl data prepare --rebuild)")
        hu.append(h[c - CONTEXT:c + CONTEXT + 1])
        mask.append(m[c - CONTEXT:c + CONTEXT + 1])
    return np.stack(hu), np.stack(mask)


def image_features(hu: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """What a radiologist's first glance measures on the central slice, as numbers.

    Density inside the consensus contour (mean, spread, peak, calcium fraction),
    the surroundings, and the outline of the dense blob at the centre (solidity =
    area / convex area drops with lobulation and spiculation; the part removed by
    an opening of radius 2 px counts strands).
    """
    out = []
    disk = morphology.disk(2)
    for h, m in zip(hu[:, CONTEXT].astype(float), mask[:, CONTEXT]):
        c = h.shape[0] // 2
        inside = h[m] if m.any() else h[c - 1:c + 2, c - 1:c + 2].ravel()
        ring = h[c - 10:c + 11, c - 10:c + 11]
        dense = ndimage.gaussian_filter(h, 0.7) > -450.0
        labels, _ = ndimage.label(dense)
        seed = labels[m].max() if m.any() and labels[m].max() > 0 else labels[c, c]
        blob = labels == seed if seed > 0 else np.zeros_like(dense)
        if blob.sum() >= 4:
            props = measure.regionprops(blob.astype(np.uint8))[0]
            strands = blob.sum() - ndimage.binary_opening(blob, disk).sum()
            shape = [np.log(props.area), props.solidity, props.eccentricity,
                     props.perimeter ** 2 / (4 * np.pi * props.area), strands / props.area]
        else:
            shape = [0.0, 1.0, 0.0, 1.0, 0.0]
        out.append([inside.mean(), inside.std(), np.percentile(inside, 90), inside.max(),
                    (inside > 200).mean(), ring.mean(), ring.std(), (ring > -500).mean(), *shape])
    return np.asarray(out)


def reader_cues(nodules: pd.DataFrame, seed: int) -> np.ndarray:
    """The ratings the phantom drew each nodule from (its chosen reader's), malignancy excluded.

    With geometry, an upper bound: what a perfect reader of the phantom could know.
    """
    names = [c for c in CHARACTERISTICS if c != "malignancy"]
    rows = []
    for n in nodules.to_dict("records"):
        _, ratings = choose_reader(n, nodule_rng(seed, n["nodule_id"]))
        rows.append([ratings[c] for c in names] + [ratings["calcification"] < 6])
    return np.asarray(rows, dtype=float)


# --- models ------------------------------------------------------------------------------------

def scores(y: np.ndarray, prob: np.ndarray) -> tuple[float, float, float]:
    pred = (prob >= 0.5).astype(int)
    return accuracy_score(y, pred), balanced_accuracy_score(y, pred), roc_auc_score(y, prob)


def cv_logistic(x: np.ndarray, y: np.ndarray, folds: list, balanced: bool) -> np.ndarray:
    prob = np.zeros(len(y))
    for tr, te in folds:
        model = make_pipeline(StandardScaler(), LogisticRegression(
            max_iter=2000, class_weight="balanced" if balanced else None))
        model.fit(x[tr], y[tr])
        prob[te] = model.predict_proba(x[te])[:, 1]
    return prob


class SmallCNN(nn.Module):
    """Four conv blocks and a linear head (~30k weights); optionally fed extra features at the head."""

    def __init__(self, channels: int = 3, n_extra: int = 0):
        super().__init__()

        def block(i: int, o: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU())

        self.body = nn.Sequential(block(channels, 16), nn.MaxPool2d(2), block(16, 32), nn.MaxPool2d(2),
                                  block(32, 32), nn.MaxPool2d(2), block(32, 48),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2))
        self.head = nn.Linear(48 + n_extra, 2)

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        h = self.body(x)
        return self.head(h if extra is None else torch.cat([h, extra], 1))


def _augment(x: torch.Tensor, g: torch.Generator, side: int) -> torch.Tensor:
    _, _, s, _ = x.shape
    off = torch.randint(0, s - side + 1, (2,), generator=g)
    x = x[:, :, off[0]:off[0] + side, off[1]:off[1] + side]
    if torch.rand(1, generator=g) < 0.5:
        x = x.flip(2)
    if torch.rand(1, generator=g) < 0.5:
        x = x.flip(3)
    if torch.rand(1, generator=g) < 0.5:
        x = x.transpose(2, 3)
    return x


def cv_cnn(images: np.ndarray, y: np.ndarray, folds: list, epochs: int, seed: int,
           extra: np.ndarray | None = None) -> np.ndarray:
    """Out-of-fold probabilities of a small CNN (class-balanced loss, flips/crops).

    ``extra`` (e.g. the geometry features) joins the image features at the head.
    """
    x_all = torch.from_numpy(np.clip((images.astype(np.float32) + 1000.0) / 1600.0, 0, 1))
    s = x_all.shape[-1]
    side = s - 8
    prob = np.zeros(len(y))
    for f, (tr, te) in enumerate(folds):
        torch.manual_seed(seed + f)
        g = torch.Generator().manual_seed(seed + f)
        model = SmallCNN(x_all.shape[1], 0 if extra is None else extra.shape[1])
        if extra is not None:
            mu, sd = extra[tr].mean(0), extra[tr].std(0) + 1e-6
            e_all = torch.from_numpy(((extra - mu) / sd).astype(np.float32))
        opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
        counts = np.bincount(y[tr], minlength=2).astype(float)
        weight = torch.tensor(counts.sum() / (2 * np.maximum(counts, 1)), dtype=torch.float32)
        loss_fn = nn.CrossEntropyLoss(weight=weight)
        ytr = torch.from_numpy(y[tr]).long()
        steps = epochs * int(np.ceil(len(tr) / 64))
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
        for _ in range(epochs):
            model.train()
            order = torch.randperm(len(tr), generator=g)
            for b in range(0, len(tr), 64):
                idx = order[b:b + 64]
                xb = _augment(x_all[tr][idx], g, side)
                eb = None if extra is None else e_all[tr][idx]
                loss = loss_fn(model(xb, eb), ytr[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        model.eval()
        c0 = (s - side) // 2
        with torch.no_grad():
            xt = x_all[te][:, :, c0:c0 + side, c0:c0 + side]
            et = None if extra is None else e_all[te]
            prob[te] = torch.softmax(model(xt, et), 1)[:, 1].numpy()
    return prob


# readers: lungcl.baselines.reader_agreement (one reader vs the median of the others)


# --- which patients ----------------------------------------------------------------------------

def development_nodules(data_dir: Path, profile: str, split_seed: int) -> tuple[pd.DataFrame, PatientSplit]:
    """The profile's nodules outside the split's test part (sorted by id), and the split."""
    nodules = select_nodules(load_nodule_table(data_dir), data_settings(profile))
    split = load_or_make_split(data_dir, nodules, split_seed)
    return nodules[split.development(nodules["patient_id"])].reset_index(drop=True), split


def split_folds(split: PatientSplit, patients: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, held-out) indices of ``patients`` for each of the split's five folds."""
    part = split.part_of(list(patients))
    return [(np.flatnonzero(part != f"fold{k}"), np.flatnonzero(part == f"fold{k}")) for k in range(N_FOLDS)]


# --- main --------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=Path("data"))
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--tasks", default="ABC")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0, help="the CNN's seed")
    ap.add_argument("--split-seed", type=int, default=0, help="the patient split whose test patients are left out")
    ap.add_argument("--no-cnn", action="store_true")
    ap.add_argument("--from-store", action="store_true",
                    help="read the patches from the prepared phantom store instead of rendering them")
    ap.add_argument("--hybrid", action="store_true", help="also a CNN given the geometry at its head")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    nodules, split = development_nodules(args.data_dir, args.profile, args.split_seed)
    scans = load_scan_table(args.data_dir).set_index("scan_id")
    masks = ReaderMasks(args.data_dir)
    geo = geometry_features(nodules, masks, scans)
    if args.from_store:
        hu, mask = store_slices(nodules, args.data_dir, args.profile)
    else:
        hu, mask = phantom_slices(nodules, args.data_dir, args.profile, args.workers)
    img = np.concatenate([geo, image_features(hu, mask)], axis=1)
    settings = data_settings(args.profile)
    oracle = np.concatenate([geo, reader_cues(nodules, settings.phantom_seed)], axis=1)

    rows = []
    for task in resolve_tasks(args.tasks):
        lab = task.labels(nodules)
        keep = np.flatnonzero(lab >= 0)
        y = lab[keep].astype(int)
        folds = split_folds(split, nodules["patient_id"].to_numpy()[keep])
        name = f"{task.letter or '-'} {task.name}"
        info = f"neg {int((y == 0).sum())} / pos {int((y == 1).sum())}"
        for model, prob in [("geometry", cv_logistic(geo[keep], y, folds, False)),
                            ("geometry-bal", cv_logistic(geo[keep], y, folds, True)),
                            ("img-feat", cv_logistic(img[keep], y, folds, True)),
                            ("oracle", cv_logistic(oracle[keep], y, folds, True))]:
            rows.append((name, info, model, *scores(y, prob)))
        if not args.no_cnn:
            t0 = time.time()
            prob = cv_cnn(hu[keep], y, folds, args.epochs, args.seed)
            rows.append((name, info, "cnn", *scores(y, prob)))
            print(f"{name}: cnn cross-validated in {time.time() - t0:.0f} s", file=sys.stderr)
            if args.hybrid:
                prob = cv_cnn(hu[keep], y, folds, args.epochs, args.seed, extra=geo[keep])
                rows.append((name, info, "cnn+geometry", *scores(y, prob)))
        agree = reader_agreement(nodules, task)
        rows.append((name, f"{agree['n']} reader-nodule pairs", "reader", agree["accuracy"],
                     agree["balanced_accuracy"], agree["auc"]))
        print(rows[-1], file=sys.stderr)
    table = pd.DataFrame(rows, columns=["task", "n", "model", "accuracy", "balanced_acc", "auc"])
    print(f"phantom version {PHANTOM_VERSION}, profile {args.profile}, the split's 5 folds (split seed "
          f"{args.split_seed}; its test patients left out: {len(nodules)} nodules)")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
