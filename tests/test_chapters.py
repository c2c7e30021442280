"""The chapters' runtime (:mod:`lungcl.chapter`): record look-ups, number formats, each chapter's
findings and sentences, on small synthetic records and tables; and the chapters' size."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from synthetic_records import make_record

from lungcl.chapter import dataset, find, pct, pts
from lungcl.chapter.records import select
from lungcl.errors import LungclError


# ---------------------------------------------------------------- look-ups and formats

def test_find_picks_the_one_record_with_the_settings() -> None:
    records = [make_record("sgd"), make_record("ewc", strength=1.0), make_record("ewc", strength=10.0),
               make_record("ewc", order="lobulation,malignancy,calcification", strength=1.0)]
    assert find(records, method="sgd") is records[0]
    assert find(records, method="ewc", strength=10.0) is records[2]
    assert find(records, method="ewc", strength=1.0, order="BAC") is records[3]
    assert len(select(records, method="ewc")) == 3


def test_find_says_when_no_record_or_several_match() -> None:
    records = [make_record("ewc", strength=1.0), make_record("ewc", strength=1.0, fold=1)]
    with pytest.raises(LungclError, match="no run with method='l2'"):
        find(records, method="l2")
    with pytest.raises(LungclError, match="2 runs with method='ewc'"):
        find(records, method="ewc")
    assert find(records, method="ewc", fold=1) is records[1]
    with pytest.raises(LungclError, match="no setting 'colour'"):
        find(records, colour="red")


def test_number_formats() -> None:
    assert pct(0.8123) == "81.2"
    assert pct(0.8123, digits=0) == "81"
    assert pts(0.031) == "+3.1"
    assert pts(-0.0049) == "-0.5"
    assert pct(np.nan) == "-" and pts(float("nan")) == "-" and pct(None) == "-"


# ---------------------------------------------------------------- 01 data

@pytest.fixture()
def tiny_nodules() -> pd.DataFrame:
    """Four nodules of two patients with hand-set ratings (characteristics not listed are rated 1)."""
    from lungcl.data.nodules import CHARACTERISTICS

    ratings = {"malignancy": [[1, 1], [4, 5, 5], [2], [1, 4]],
               "lobulation": [[1, 1], [1, 2, 1], [5], [1, 1]],
               "calcification": [[6, 6], [6, 6, 6], [3], [6, 6]]}
    table = pd.DataFrame({"scan_id": [1, 1, 2, 2], "patient_id": ["p1", "p1", "p2", "p2"],
                          "n_readers": [2, 3, 1, 2], "diameter_mm": [5.0, 12.0, 8.0, 20.0]})
    for name in CHARACTERISTICS:
        table[f"{name}_ratings"] = ratings.get(name, [[1] * n for n in table.n_readers])
        table[name] = table[f"{name}_ratings"].map(np.median)  # the readers' consensus
    return table


def test_data_overview_and_agreement(tiny_nodules: pd.DataFrame) -> None:
    overview = dataset.overview_table(tiny_nodules, tiny_nodules.iloc[:2], "smoke")
    assert overview["all of LIDC"].tolist() == [2, 2, 4, 8]
    assert overview["profile smoke"].tolist() == [1, 1, 2, 5]
    assert dataset.few_readers_sentence(tiny_nodules).startswith("75% of the nodules")
    agreement = dataset.reader_agreement(tiny_nodules)
    # three nodules with 2+ readers; malignancy spans 0, 1 and 3 steps
    assert agreement.loc["malignancy", "identical"] == pytest.approx(1 / 3)
    assert agreement.loc["malignancy", "within one step"] == pytest.approx(2 / 3)
    text = dataset.agreement_sentence(agreement)
    assert "same rating for 33% of the nodules" in text and "within one step of each other for 67%" in text
    assert "Lobulation: 67% identical" in text and "calcification: 100% identical" in text
    pairs = dataset.rating_pairs(tiny_nodules)
    assert int(pairs.to_numpy().sum()) == 2 + 6 + 2  # ordered pairs of 2, 3 and 2 readers
    assert len(dataset.every_rating(tiny_nodules)) == 9 * 8


def test_data_task_sizes_and_sentence(tiny_nodules: pd.DataFrame) -> None:
    sizes = dataset.task_sizes(tiny_nodules)
    mal = sizes.loc["malignancy (A)"]
    # medians 1, 5, 2, 2.5 -> negative, positive, negative, dropped
    assert (mal.positive, mal.negative, mal.dropped) == (1, 2, 1)
    assert mal["majority-class accuracy"] == pytest.approx(2 / 3)
    text = dataset.thesis_tasks_sentence(sizes)
    assert "- **malignancy (A)**: 1 positive and 2 negative nodules kept, 1 dropped" in text
    assert "right 66.7% of the time" in text


def test_data_split_view_and_provenance() -> None:
    parts = ["test"] + [f"fold{k}" for k in range(5)]
    table = pd.DataFrame({"task": "malignancy", "split": parts, "positive": range(6), "negative": 1})
    view = dataset.split_view(table, np.array(["test", "test", "fold0"]), np.array(["p1", "p1", "p2"]))
    assert view.loc["malignancy", "test"] == "0 / 1" and view.loc["malignancy", "fold2"] == "3 / 1"
    assert view.loc["patients"].tolist() == ["1", "1", "0", "0", "0", "0"]
    prov = {"source": "phantom", "profile": "smoke", "n_nodules": 5, "n_failed_scans": 0,
            "settings": {"crop_mm": 48, "patch_px": 32}, "pylidc_version": "0.2.3", "manifest_sha256": "ab" * 32}
    shown = dataset.provenance_table(prov).iloc[:, 0]
    assert shown["crop (mm) / patch (px)"] == "48 / 32" and shown["store checksum"] == "ab" * 8
