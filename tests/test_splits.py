"""The patient split: disjoint in every task, stratified, seeded, saved."""

import json

import numpy as np

from lungcl.data.splits import SPLIT_NAMES, load_or_make_split, make_split, split_path
from lungcl.data.tasks import resolve_tasks


def test_every_patient_in_exactly_one_part(nodules):
    split = make_split(nodules, seed=0)
    assert set(split.assignment) == set(nodules["patient_id"])
    assert set(split.assignment.values()) == set(SPLIT_NAMES)
    sizes = [len(split.patients(p)) for p in SPLIT_NAMES]
    assert max(sizes) - min(sizes) <= 0.1 * np.mean(sizes)


def test_no_patient_on_two_sides_in_any_task_and_fold(nodules):
    split = make_split(nodules, seed=0)
    part = split.part_of(nodules["patient_id"])
    for task in resolve_tasks("all"):
        labels = task.labels(nodules)
        for fold in range(5):
            roles = split.roles(fold)
            role = np.array([roles[p] for p in part])
            groups = {r: set(nodules["patient_id"][(role == r) & (labels >= 0)]) for r in ("train", "val", "test")}
            assert not groups["train"] & groups["val"]
            assert not groups["train"] & groups["test"]
            assert not groups["val"] & groups["test"]


def test_stratified_classes_in_every_part(nodules):
    split = make_split(nodules, seed=0)
    part = split.part_of(nodules["patient_id"])
    for task in resolve_tasks("ABC"):
        labels = task.labels(nodules)
        rate = (labels == 1).sum() / (labels >= 0).sum()
        for p in SPLIT_NAMES:
            sel = (part == p) & (labels >= 0)
            assert abs((labels[sel] == 1).mean() - rate) < 0.05


def test_seeded_and_saved(tmp_path, nodules):
    a = load_or_make_split(tmp_path, nodules, seed=3)
    assert split_path(tmp_path, nodules, 3).exists()
    assert load_or_make_split(tmp_path, nodules, seed=3) == a
    assert make_split(nodules, seed=3) == a
    assert make_split(nodules, seed=4) != a
    saved = json.loads(split_path(tmp_path, nodules, 3).read_text())
    assert saved["assignment"] == a.assignment
