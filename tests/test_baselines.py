"""The single-task references: geometry logistic regression on the CNN's split, readers' agreement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lungcl import baselines
from lungcl.data.tasks import make_task
from lungcl.errors import LungclError


def test_readers_who_always_agree_score_one_and_a_dropped_rating_half():
    task = make_task("malignancy")  # positive 4-5, negative 1-2, 3 dropped
    agree = baselines.reader_agreement(pd.DataFrame({"malignancy_ratings": [[5, 5, 4], [1, 2, 1]]}), task)
    assert agree["accuracy"] == 1.0 and agree["balanced_accuracy"] == 1.0 and agree["n"] == 6
    # one reader of the positive nodule says 3 (dropped middle): half right for that pair
    half = baselines.reader_agreement(pd.DataFrame({"malignancy_ratings": [[5, 5, 3], [1, 2, 1]]}), task)
    assert half["n"] == 6 and half["accuracy"] == pytest.approx(5.5 / 6)
    with pytest.raises(LungclError):
        baselines.reader_agreement(pd.DataFrame({"malignancy_ratings": [[5, 5]]}), task)


def test_logistic_regression_picks_c_on_validation_and_is_class_balanced():
    rng = np.random.default_rng(0)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = (rng.random(n) < 0.1).astype(int)  # 10 % positives
        return np.c_[y + 0.35 * rng.standard_normal(n), rng.standard_normal(n)], y

    x, y = zip(*(draw(n) for n in (400, 200, 200)))
    model, c = baselines.fit_balanced_logistic(dict(zip(("train", "val", "test"), x)),
                                               dict(zip(("train", "val", "test"), y)))
    assert c in baselines.C_GRID
    s = baselines.scores(y[2], model.predict_proba(x[2])[:, 1])
    assert s["balanced_accuracy"] > 0.8 and s["auc"] > 0.9
    # balanced weights: the minority class is found (a plain fit on 10 % positives leans negative)
    assert (model.predict(x[2])[y[2] == 1] == 1).mean() > 0.7


def test_reference_table_on_the_smoke_split_is_cached(smoke_store, data_dir, tmp_path):
    table = baselines.reference_table(data_dir, "ABC", fold=0, profile="smoke", cache_dir=tmp_path)
    assert set(table.index.get_level_values("reference")) == {"geometry", "readers"}
    geo = table.xs("geometry", level="reference")
    assert list(geo.index) == ["malignancy", "lobulation", "calcification"]
    assert geo.balanced_accuracy.between(0, 1).all() and geo.auc.between(0, 1).all()
    assert (list(tmp_path.glob("baselines/*.json")))
    again = baselines.reference_table(data_dir, "ABC", fold=0, profile="smoke", cache_dir=tmp_path)
    pd.testing.assert_frame_equal(table, again)
