"""One patient-level split shared by every task: 1/6 of patients test, the rest in 5 folds.

Stratified as well as the groups allow with scikit-learn's StratifiedGroupKFold,
on a joint label of the thesis's three tasks, so that no patient is ever on
two sides and each fold has a similar class mix. Seeded and saved as JSON.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_write_json
from ..errors import LungclError
from .tasks import THESIS_LETTERS, make_task

N_FOLDS = 5
SPLIT_NAMES = ("test",) + tuple(f"fold{k}" for k in range(N_FOLDS))


@dataclass(frozen=True)
class PatientSplit:
    """patient id -> "test" or "fold0".."fold4"."""

    assignment: dict[str, str]
    seed: int

    def patients(self, part: str) -> list[str]:
        return sorted(p for p, s in self.assignment.items() if s == part)

    def part_of(self, patients: pd.Series | list[str]) -> np.ndarray:
        return np.array([self.assignment[p] for p in patients])

    def development(self, patients: pd.Series | list[str]) -> np.ndarray:
        """Which of ``patients`` lie outside the test part: the patients a choice (a setting, a check of
        the data) may be read from; the test patients are only ever reported on."""
        return self.part_of(patients) != "test"

    def roles(self, fold: int) -> dict[str, str]:
        """For cross-validation fold ``fold``: which part is train, val or test."""
        if not 0 <= fold < N_FOLDS:
            raise LungclError(f"fold must be 0..{N_FOLDS - 1}, got {fold}")
        return {name: ("test" if name == "test" else "val" if name == f"fold{fold}" else "train")
                for name in SPLIT_NAMES}

    def to_json(self) -> dict:
        return {"seed": self.seed, "assignment": dict(sorted(self.assignment.items()))}

    @classmethod
    def from_json(cls, obj: dict) -> "PatientSplit":
        return cls(assignment=dict(obj["assignment"]), seed=int(obj["seed"]))


def _strata(nodules: pd.DataFrame) -> np.ndarray:
    """A joint label per nodule from the thesis's tasks A, B, C (dropped = 'x')."""
    parts = []
    for name in THESIS_LETTERS.values():
        lab = make_task(name).labels(nodules)
        parts.append(np.where(lab < 0, "x", lab.astype(str)))
    return np.array(["".join(t) for t in zip(*parts)])


def make_split(nodules: pd.DataFrame, seed: int = 0) -> PatientSplit:
    """Assign every patient of ``nodules`` to test (1/6) or one of 5 folds."""
    nodules = nodules.sort_values("nodule_id").reset_index(drop=True)
    groups = nodules["patient_id"].to_numpy()
    if len(set(groups)) < 6 * 2:
        raise LungclError(f"only {len(set(groups))} patients: too few for a 1/6 test split and 5 folds")
    y = _strata(nodules)
    from sklearn.model_selection import StratifiedGroupKFold  # here: only a new split needs scikit-learn

    with warnings.catch_warnings():  # rare joint strata (fewer members than folds) are expected
        warnings.filterwarnings("ignore", message="The least populated class")
        outer = StratifiedGroupKFold(n_splits=6, shuffle=True, random_state=seed)
        rest_idx, test_idx = next(outer.split(np.zeros(len(y)), y, groups))
        assignment = {p: "test" for p in groups[test_idx]}
        inner = StratifiedGroupKFold(n_splits=N_FOLDS, shuffle=True, random_state=seed + 1)
        for k, (_, val_idx) in enumerate(inner.split(np.zeros(len(rest_idx)), y[rest_idx],
                                                     groups[rest_idx])):
            for p in groups[rest_idx][val_idx]:
                assignment[p] = f"fold{k}"
    return PatientSplit(assignment=assignment, seed=seed)


def split_path(data_dir: str | Path, nodules: pd.DataFrame, seed: int) -> Path:
    digest = hashlib.sha256("\n".join(sorted(set(nodules["patient_id"]))).encode()).hexdigest()[:10]
    return Path(data_dir) / "splits" / f"split-seed{seed}-{digest}.json"


def load_or_make_split(data_dir: str | Path, nodules: pd.DataFrame, seed: int = 0) -> PatientSplit:
    """The saved split for these patients and seed, made and saved on first use."""
    path = split_path(data_dir, nodules, seed)
    if path.exists():
        return read_split(path, set(nodules["patient_id"]), seed)
    split = make_split(nodules, seed)
    atomic_write_json(path, split.to_json())
    return split


def read_split(path: Path, patients: set[str], seed: int) -> PatientSplit:
    """A saved split, checked to cover ``patients`` with known parts; damaged -> LungclError naming it."""
    hint = f"delete {path} to make it again"
    try:
        split = PatientSplit.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LungclError(f"corrupt split file {path} ({type(exc).__name__}); {hint}") from exc
    parts = set(split.assignment.values())
    if split.seed != seed or not parts <= set(SPLIT_NAMES) or not patients <= set(split.assignment):
        raise LungclError(f"split file {path} does not match seed {seed} and these patients; {hint}")
    return split
