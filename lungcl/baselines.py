"""References for a single-task CNN: what contour geometry alone predicts, and how far readers agree.

Two numbers to read a CNN's test score against, on the same nodules and patient split:

- **geometry**: a class-balanced logistic regression (scikit-learn) on the consensus contour's
  geometry (log volume, log diameter, principal axes and their ratios, sphericity, slice count;
  never a rating), trained on the fold's training patients, its regularisation C chosen by balanced
  accuracy on the fold's validation patients, measured on the test patients. A CNN that does not
  beat it has learned nothing the outline does not already say.
- **readers**: one radiologist's rating, turned into the task's label by the same rule, against the
  label of the median of the *other* readers of that nodule (nodules with >= 3 readers, all
  patients); a rating in the rule's dropped middle counts as half right. The level at which humans
  agree with each other: an upper reference, not a ceiling.

Results are cached as JSON under ``<results>/baselines/`` (a few seconds to recompute).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .atomic import atomic_write_json
from .data.geometry import consensus_mask
from .data.nodules import ReaderMasks, load_nodule_table, load_scan_table
from .data.tasks import Task, resolve_tasks
from .errors import LungclError

BASELINES_VERSION = 1
C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)  # inverse regularisation strengths tried on validation
GEOMETRY_FEATURES = ("log_volume", "log_diameter", "log_major_axis", "axis2_ratio", "axis3_ratio",
                     "sphericity", "slices")


def geometry_features(nodules: pd.DataFrame, masks: ReaderMasks, scans: pd.DataFrame) -> np.ndarray:
    """Per nodule (rows of ``nodules``): the :data:`GEOMETRY_FEATURES` of its consensus contour.

    ``scans`` is indexed by scan id (its ``slice_zvals`` give the slice positions in mm).
    """
    from skimage.measure import marching_cubes, mesh_surface_area

    feats = []
    for row in nodules.itertuples():
        cmask, off = consensus_mask([masks.mask(a) for a in row.annotation_ids])
        if not cmask.any():  # tiny nodules whose readers do not overlap: use the union
            cmask, off = consensus_mask([masks.mask(a) for a in row.annotation_ids], level=1e-9)
        z = np.asarray(scans.at[row.scan_id, "slice_zvals"])
        ps = row.pixel_spacing
        pts = np.argwhere(cmask)
        mm = np.stack([pts[:, 0] * ps, pts[:, 1] * ps, z[pts[:, 2] + off[2]]], axis=1)
        dz = float(np.median(np.diff(z))) if len(z) > 1 else row.slice_spacing
        volume = len(pts) * ps * ps * dz
        axes = np.sqrt(np.sort(np.linalg.eigvalsh(np.cov(mm.T) + 1e-3 * np.eye(3)))[::-1])
        try:
            verts, faces, _, _ = marching_cubes(np.pad(cmask, 1).astype(np.float32), 0.5, spacing=(ps, ps, dz))
            area = mesh_surface_area(verts, faces)
        except (ValueError, RuntimeError):
            area = np.nan
        sphericity = np.pi ** (1 / 3) * (6 * volume) ** (2 / 3) / area if area > 0 else 1.0
        feats.append([np.log(volume), np.log(row.diameter_mm), np.log(axes[0]), axes[1] / axes[0],
                      axes[2] / axes[0], sphericity, cmask.shape[2]])
    return np.nan_to_num(np.asarray(feats, dtype=float))


def scores(y: np.ndarray, prob: np.ndarray) -> dict[str, float]:
    """Accuracy and balanced accuracy at threshold 0.5, and AUC."""
    pred = (prob >= 0.5).astype(int)
    return {"accuracy": float(accuracy_score(y, pred)), "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
            "auc": float(roc_auc_score(y, prob)) if len(set(y.tolist())) > 1 else float("nan")}


def fit_balanced_logistic(x: dict[str, np.ndarray], y: dict[str, np.ndarray],
                          grid: Sequence[float] = C_GRID) -> tuple[object, float]:
    """A standardised, class-balanced logistic regression fitted on ``x["train"]``, its C the one of
    ``grid`` with the best validation balanced accuracy (ties: the smaller C, the simpler model)."""
    best, best_c, best_score = None, grid[0], -np.inf
    for c in grid:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, class_weight="balanced", max_iter=5000))
        model.fit(x["train"], y["train"])
        score = balanced_accuracy_score(y["val"], model.predict(x["val"]))
        if score > best_score + 1e-12:
            best, best_c, best_score = model, c, score
    return best, best_c


def reader_agreement(nodules: pd.DataFrame, task: Task) -> dict[str, float]:
    """One reader vs the task label of the median of the other readers (nodules with >= 3 readers).

    A reader's own rating in the rule's dropped middle counts as half right; ``auc`` ranks by the
    raw rating. Returns accuracy, balanced_accuracy, auc and the number of reader-nodule pairs.
    """
    y, score, pred = [], [], []
    for ratings in nodules[f"{task.characteristic}_ratings"]:
        r = np.asarray(ratings, float)
        if len(r) < 3:
            continue
        for i in range(len(r)):
            lab = task.rule.label([np.median(np.delete(r, i))])[0]
            if lab < 0:
                continue
            own = task.rule.label([r[i]])[0]
            y.append(lab)
            pred.append(0.5 if own < 0 else float(own))
            score.append(-r[i] if task.rule.positive[0] < task.rule.negative[0] else r[i])
    if not y or len(set(y)) < 2:
        raise LungclError(f"task {task.name}: too few nodules with >= 3 readers of both classes")
    y, pred, score = np.array(y), np.array(pred), np.array(score)
    right = np.where(pred == 0.5, 0.5, (pred == y).astype(float))
    return {"accuracy": float(right.mean()),
            "balanced_accuracy": float((right[y == 1].mean() + right[y == 0].mean()) / 2),
            "auc": float(roc_auc_score(y, score)), "n": int(len(y))}


def _geometry_rows(data_dir: str | Path, profile: str, source: str, tasks: list[Task], fold: int,
                   split_seed: int) -> list[dict]:
    from .data.datasets import load_task_data

    data = load_task_data(data_dir, profile, source, split_seed)
    nodules = data.nodules
    scans = load_scan_table(data_dir).set_index("scan_id")
    masks = ReaderMasks(data_dir)
    try:
        geo = geometry_features(nodules, masks, scans)
    finally:
        masks.close()
    roles = data.split.roles(fold)
    role = np.array([roles[p] for p in data.split.part_of(nodules["patient_id"])])
    all_nodules = load_nodule_table(data_dir, build=False)
    rows = []
    for task in tasks:
        labels = task.labels(nodules)
        idx = {part: np.flatnonzero((labels >= 0) & (role == part)) for part in ("train", "val", "test")}
        x = {p: geo[i] for p, i in idx.items()}
        y = {p: labels[i].astype(int) for p, i in idx.items()}
        if any(len(set(v.tolist())) < 2 for v in y.values()):
            raise LungclError(f"task {task.name}: a split of fold {fold} has one class only; no geometry baseline")
        model, c = fit_balanced_logistic(x, y)
        rows.append({"task": task.name, "reference": "geometry", "C": c, "n": int(len(y["test"])),
                     **scores(y["test"], model.predict_proba(x["test"])[:, 1])})
        rows.append({"task": task.name, "reference": "readers", "C": np.nan,
                     **reader_agreement(all_nodules, task)})
    return rows


def reference_table(data_dir: str | Path, tasks: str | Sequence[str] = "ABC", fold: int = 0,
                    profile: str = "cpu", source: str = "phantom", split_seed: int = 0,
                    cache_dir: str | Path | None = None) -> pd.DataFrame:
    """Per task, the geometry baseline (test patients of ``fold``) and the readers' agreement:
    rows (task, reference), columns accuracy, balanced_accuracy, auc, n, C. Cached in ``cache_dir``."""
    task_list = resolve_tasks(",".join(tasks) if not isinstance(tasks, str) else tasks)
    from .experiments.config import data_version

    key = json.dumps({"v": BASELINES_VERSION, "data": data_version(source), "profile": profile, "fold": fold,
                      "split_seed": split_seed, "tasks": [t.name for t in task_list]}, sort_keys=True)
    path = Path(cache_dir) / "baselines" / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.json" \
        if cache_dir is not None else None
    if path is not None and path.exists():
        rows = json.loads(path.read_text())["rows"]
    else:
        # through JSON, so that a computed table and a cached one are the same table
        rows = json.loads(json.dumps(_geometry_rows(data_dir, profile, source, task_list, fold, split_seed)))
        if path is not None:
            atomic_write_json(path, {"key": json.loads(key), "rows": rows})
    columns = ["task", "reference", "accuracy", "balanced_accuracy", "auc", "n", "C"]
    return pd.DataFrame(rows)[columns].set_index(["task", "reference"])


__all__ = ["reference_table", "geometry_features", "reader_agreement", "fit_balanced_logistic", "scores",
           "GEOMETRY_FEATURES", "C_GRID"]
