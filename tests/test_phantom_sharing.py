"""What the phantom shares between the thesis's tasks by construction, measured (the data chapter)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lungcl.chapter import dataset


def _nodules_and_manifest(n: int = 120, seed: int = 0):
    """Nodules whose malignancy follows lobulation, and the looks a phantom drew from their ratings."""
    rng = np.random.default_rng(seed)
    lobulation = rng.choice([1, 2, 4, 5], n).astype(float)
    malignancy = np.where(lobulation >= 4, rng.choice([4, 5], n), rng.choice([1, 2, 4], n)).astype(float)
    calcification = rng.choice([3, 6, 6, 6], n).astype(float)
    nodules = pd.DataFrame({"nodule_id": [f"n{i:03d}" for i in range(n)], "patient_id": [f"p{i // 2}" for i in range(n)],
                            "malignancy": malignancy, "lobulation": lobulation, "calcification": calcification,
                            "diameter_mm": rng.uniform(3, 30, n)})
    looks = {nid: {"lobulation_amp": [0.0, 0.06, 0.1, 0.15, 0.2][int(lob) - 1] * rng.uniform(0.5, 1.3),
                   "n_spicules": int(rng.integers(0, 5)), "margin_mm": float(rng.uniform(0.2, 3)),
                   "core_fraction": float(rng.uniform()), "calcium_hu": 500.0 if calc < 6 else 0.0}
             for nid, lob, calc in zip(nodules.nodule_id, lobulation, calcification)}
    manifest = {"nodules": {nid: {"provenance": {"look": look}} for nid, look in looks.items()}}
    return nodules, manifest


def test_the_cues_are_read_from_the_stores_provenance():
    nodules, manifest = _nodules_and_manifest()
    cues = dataset.phantom_cues(manifest, nodules)
    assert list(cues.columns) == list(dataset.PHANTOM_CUES) and len(cues) == len(nodules)
    assert set(cues["calcium present"]) == {0.0, 1.0}
    assert cues.loc["n000", "size"] == pytest.approx(nodules.diameter_mm[0])
    assert dataset.phantom_cues({"nodules": {"n000": {"provenance": {"source": "dicom"}}}}, nodules) is None


def test_shared_labels_and_cues_measure_what_the_tasks_share():
    nodules, manifest = _nodules_and_manifest()
    cues = dataset.phantom_cues(manifest, nodules)
    pairs = dataset.shared_labels(nodules, cues)
    assert list(pairs.index) == ["malignancy - lobulation", "malignancy - calcification", "lobulation - calcification"]
    a = (nodules.malignancy >= 4).astype(float)
    b = (nodules.lobulation >= 4).astype(float)
    both = nodules.malignancy.ne(3) & nodules.lobulation.ne(3)
    assert pairs.loc["malignancy - lobulation", "labels (phi)"] == pytest.approx(np.corrcoef(a[both], b[both])[0, 1])
    assert pairs.loc["malignancy - lobulation", "labels (phi)"] > 0.3  # malignancy follows lobulation here
    assert np.isnan(pairs.loc["malignancy - lobulation", "phantom cues (Spearman)"])  # malignancy has no cue
    assert np.isfinite(pairs.loc["lobulation - calcification", "phantom cues (Spearman)"])
    by_task = dataset.cues_against_labels(nodules, cues)
    assert list(by_task.columns) == ["malignancy", "lobulation", "calcification"]
    assert by_task["malignancy"].abs().idxmax() == "lobulation bulges"
    assert by_task.loc["calcium present", "calcification"] == pytest.approx(1.0)
    text = dataset.phantom_sharing_sentence(pairs, by_task)
    assert "its labels correlate most with the drawn lobulation bulges (+" in text
    assert "drawn from the lobulation rating" in text
    assert "Lobulation bulges" in text and "the cue(s) another task of the sequence is drawn from" in text
    assert "a property of the phantom" in text
    real = dataset.phantom_sharing_sentence(dataset.shared_labels(nodules), None)
    assert "not the phantom's" in real and "phantom cues" not in dataset.shared_labels(nodules).columns


def test_the_smoke_store_is_measured(data_dir, smoke_store):
    pairs, by_task = dataset.phantom_sharing(data_dir, "smoke", "phantom")
    assert len(pairs) == 3 and pairs["nodules in both"].gt(0).all()
    assert by_task.shape == (len(dataset.PHANTOM_CUES), 3) and np.isfinite(by_task.to_numpy()).all()
    assert by_task.loc["calcium present", "calcification"] > 0.5  # calcium is drawn from that rating
    assert dataset.phantom_sharing_sentence(pairs, by_task).startswith("The tasks' labels correlate (phi)")
