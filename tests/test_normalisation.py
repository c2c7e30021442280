"""BatchNorm as a factor (bn=update|freeze|task, norm=group) and the probes of features against heads."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lungcl.errors import LungclError
from lungcl.experiments import default_config, run
from lungcl.experiments.config import canonical_json
from lungcl.experiments.probes import best_threshold, forgetting_split
from lungcl.fisher import fisher_diagonal
from lungcl.models.resnet import TaskBatchNorm, build_resnet


# ---------------------------------------------------------------- settings


def test_new_settings_leave_every_existing_run_id_alone():
    # streams=position is how every run was seeded before streams existed: its ids are the old ids
    for cfg in (default_config("cpu", method="ewc", streams="position"),
                default_config("smoke", method="l2", freeze_bn_stats=True, streams="position")):
        hashed = json.loads(canonical_json(cfg))
        assert not {"bn", "norm", "probes", "streams"} & set(hashed)
    assert json.loads(canonical_json(default_config("cpu")))["streams"] == "task"  # the default is hashed
    assert default_config("smoke", bn="freeze").run_id == default_config("smoke", freeze_bn_stats=True).run_id
    ids = {default_config("smoke", **kw).run_id for kw in ({}, {"bn": "freeze"}, {"bn": "task"},
                                                            {"norm": "group"}, {"probes": True},
                                                            {"streams": "position"})}
    assert len(ids) == 6


def test_a_record_written_before_bn_existed_loads_as_bn_freeze():
    old = default_config("smoke", freeze_bn_stats=True).to_dict()
    del old["bn"], old["norm"], old["probes"]
    cfg = type(default_config("smoke")).from_dict(old)
    assert cfg.bn == "freeze" and cfg.freeze_bn_stats and "frozen-BN" in cfg.label


@pytest.mark.parametrize("settings, message", [
    ({"bn": "sometimes"}, "bn must be one of update, freeze, task"),
    ({"norm": "layer"}, "norm must be one of batch, group"),
    ({"norm": "group", "bn": "task"}, "keeps no running statistics"),
    ({"freeze_bn_stats": True, "bn": "task"}, "not with bn=task"),
    ({"kind": "single_task", "probes": True}, "sequence runs only"),
])
def test_bad_normalisation_settings_are_clear_errors(settings, message):
    with pytest.raises(LungclError, match=message):
        default_config("smoke", **settings)


# ---------------------------------------------------------------- the network


def test_task_batchnorm_keeps_each_tasks_statistics_apart():
    torch.manual_seed(0)
    model = build_resnet(10, ["a", "b"], width=8, norm="task")
    norms = [m for m in model.modules() if isinstance(m, TaskBatchNorm)]
    assert norms and all(set(m.stats) == {"a", "b"} for m in norms)
    before = {t: norms[0].stats[t].running_mean.clone() for t in ("a", "b")}
    model.train()
    model(torch.randn(8, 1, 24, 24) + 3.0, "b")
    assert torch.equal(norms[0].stats["a"].running_mean, before["a"])
    assert not torch.equal(norms[0].stats["b"].running_mean, before["b"])
    model.eval()
    x = torch.randn(4, 1, 24, 24)
    assert not torch.allclose(model.features(x, "a"), model.features(x, "b"))
    with pytest.raises(LungclError, match="say which task"):
        model.features(x)
    # the shared scale and shift keep BatchNorm's parameter names (the methods' penalties see them)
    plain = build_resnet(10, ["a", "b"], width=8)
    assert [n for n, _ in model.named_parameters()] == [n for n, _ in plain.named_parameters()]


def test_group_norm_trunk_has_no_running_statistics():
    model = build_resnet(10, ["a"], width=8, norm="group")
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert not [n for n, _ in model.named_buffers()]
    with pytest.raises(LungclError, match="unknown normalisation"):
        build_resnet(10, ["a"], width=8, norm="instance")


@pytest.mark.parametrize("norm", ["task", "group"])
def test_exact_fisher_of_other_normalisations_matches_the_per_sample_loop(norm):
    torch.manual_seed(1)
    model = build_resnet(10, ["a", "b"], width=4, norm=norm)
    model.train()
    model(torch.randn(16, 1, 16, 16), "a")  # move task a's statistics away from the initial ones
    x, y = torch.randn(12, 1, 16, 16), torch.randint(0, 2, (12,))
    fast = fisher_diagonal(model, "a", [(x, y)], 12, kind="exact")
    slow = fisher_diagonal(model, "a", [(x, y)], 12, kind="exact", vectorised=False)
    for name in slow:
        assert torch.allclose(fast[name], slow[name], rtol=1e-4, atol=1e-9), name


# ---------------------------------------------------------------- probes and thresholds


def test_best_threshold_maximises_balanced_accuracy_on_validation():
    y = np.array([0, 0, 0, 0, 1, 1])
    prob = np.array([0.7, 0.72, 0.74, 0.8, 0.9, 0.95])  # every p > 0.5: the head says "positive" to all
    t = best_threshold(y, prob)
    assert 0.8 < t < 0.9
    assert best_threshold(np.array([0, 1]), np.array([0.5, 0.5])) in (0.5 - 1e-9, 0.5 + 1e-9)


def test_forgetting_split_adds_up():
    R = [[0.8, None], [0.6, 0.7]]
    data = {"run_id": "x", "tasks": ["a", "b"], "matrices": {"test": {"balanced_accuracy": R}},
            "probes": {"floor": {"a": {"balanced_accuracy": 0.55}, "b": {"balanced_accuracy": 0.5}},
                       "stages": [{"stage": 0, "task": "a", "probe": {"balanced_accuracy": 0.78},
                                   "recalibrated": {"balanced_accuracy": 0.8}},
                                  {"stage": 1, "task": "a", "probe": {"balanced_accuracy": 0.74},
                                   "recalibrated": {"balanced_accuracy": 0.7}}]}}
    row = forgetting_split(data).iloc[0]
    assert row.lost == pytest.approx(0.2) and row.representation == pytest.approx(0.04)
    assert row.calibration == pytest.approx(0.1) and row.rest == pytest.approx(0.06)
    assert row.probe_floor == 0.55
    with pytest.raises(LungclError, match="--set probes=true"):
        forgetting_split({**data, "probes": None})


def test_calibration_is_the_gap_at_the_end_minus_the_gap_at_the_tasks_own_stage():
    # the head was mis-calibrated from the start: re-thresholding gave back 0.08 at its own stage and 0.10 at
    # the end, so only 0.02 of the 0.2 lost is calibration that the later stage took away
    R = [[0.7, None], [0.5, 0.7]]
    data = {"run_id": "x", "tasks": ["a", "b"], "matrices": {"test": {"balanced_accuracy": R}},
            "probes": {"floor": {"a": {"balanced_accuracy": 0.6}},
                       "stages": [{"stage": 0, "task": "a", "probe": {"balanced_accuracy": 0.8},
                                   "recalibrated": {"balanced_accuracy": 0.78}},
                                  {"stage": 1, "task": "a", "probe": {"balanced_accuracy": 0.7},
                                   "recalibrated": {"balanced_accuracy": 0.6}}]}}
    row = forgetting_split(data).iloc[0]
    assert row.calibration_gap_own == pytest.approx(0.08) and row.calibration_gap_final == pytest.approx(0.10)
    assert row.calibration == pytest.approx(0.02) and row.representation == pytest.approx(0.1)
    assert row.rest == pytest.approx(0.08)  # the re-thresholded head lost 0.18, the probe 0.1
    assert row.lost == pytest.approx(row.representation + row.calibration + row.rest)


def _split_runs(lost, representation, calibration, probe_final, floor=0.6):
    """A normalisation_runs table of one setting (sgd, update), one row per seed."""
    import pandas as pd

    n = len(lost)
    return pd.DataFrame({"method": ["sgd"] * n, "normalisation": ["update"] * n, "seed": range(n), "fold": [0] * n,
                         "lost": lost, "representation": representation, "calibration": calibration,
                         "rest": np.subtract(np.subtract(lost, representation), calibration),
                         "probe_final": probe_final, "probe_floor": [floor] * n,
                         "probe_above_floor": np.subtract(probe_final, floor)})


def test_the_floor_sentence_reads_the_final_probe_against_the_floor_over_seeds():
    from lungcl.chapter.normalisation import floor_sentence, setting_readings

    def sentence(probe_final):
        return floor_sentence(setting_readings(_split_runs([0.2] * len(probe_final), [0.05] * len(probe_final),
                                                           [0.1] * len(probe_final), probe_final)))

    above = sentence([0.70, 0.72, 0.71])
    assert "above the floor beyond the spread between seeds: SGD with BatchNorm, statistics updated +11.0 [+8.5, +13.5]" \
        in above and above.endswith("the trained features hold more than random ones.")
    below = sentence([0.50, 0.52, 0.51])
    assert "*below* the floor" in below and "hold less of these tasks than random ones" in below
    assert "hold more than random" not in below
    level = sentence([0.55, 0.66, 0.60])
    assert "not told apart from the floor (the interval contains zero)" in level
    assert level.endswith("Not every setting's trained features are shown to hold more than random ones.")
    one = sentence([0.9])
    assert "one run, not read: SGD with BatchNorm, statistics updated +30.0" in one and "In every setting" not in one


def test_the_split_sentence_names_a_part_only_beyond_the_spread_between_seeds():
    from lungcl.chapter.normalisation import setting_readings, split_sentence

    def sentence(*columns):
        return split_sentence(setting_readings(_split_runs(*columns, probe_final=[0.7] * len(columns[0]))))

    clear = sentence([0.30, 0.31, 0.29], [0.02, 0.03, 0.02], [0.2, 0.21, 0.19])
    assert "of which calibration 20.0 [18, 22]: **calibration** is the largest part beyond the spread" in clear
    overlap = sentence([0.30, 0.31, 0.29], [0.12, 0.03, 0.14], [0.14, 0.2, 0.1])
    assert "its interval overlaps another part's, so no part stands out" in overlap and "**" not in overlap
    nothing = sentence([0.05, -0.06, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
    assert "an interval containing zero: no loss beyond the spread between seeds to split" in nothing
    gained = sentence([-0.05, -0.06, -0.04], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
    assert "below zero (a gain)" in gained
    assert "one run, no interval: not read" in sentence([0.3], [0.1], [0.1])


# ---------------------------------------------------------------- runs


@pytest.mark.parametrize("settings", [{"bn": "task"}, {"bn": "freeze"}, {"norm": "group"}, {"bn": "update"}])
def test_every_normalisation_runs_and_records_probes_after_every_stage(data_dir, smoke_store, tmp_path, settings):
    cfg = default_config("smoke", data_dir=str(data_dir), tasks="ABC", method="ewc", probes=True, **settings)
    rec = run(cfg, tmp_path, progress=False)
    probes = rec.data["probes"]
    seen = {(r["stage"], r["task"]) for r in probes["stages"]}
    tasks = rec.tasks
    assert seen == {(s, t) for s in range(3) for t in tasks[:s + 1]}
    for r in probes["stages"]:
        for part in ("probe", "recalibrated"):
            assert 0.0 <= r[part]["balanced_accuracy"] <= 1.0
    assert set(probes["floor"]) == set(tasks)
    split = forgetting_split(rec)
    assert list(split.task) == tasks[:-1]
    assert np.allclose(split.lost, split.representation + split.calibration + split.rest)


def test_probes_do_not_change_the_runs_numbers(data_dir, smoke_store, tmp_path):
    base = default_config("smoke", data_dir=str(data_dir), tasks="AB", method="ewc", bn="task")
    a = run(base, tmp_path / "a", progress=False)
    b = run(base.replace(probes=True), tmp_path / "b", progress=False)
    assert a.data["matrices"] == b.data["matrices"] and a.data["curves"] == b.data["curves"]
    assert "probes" not in a.data and "probes" in b.data


# ---------------------------------------------------------------- order effects without data noise


def test_streams_by_task_name_give_a_task_the_same_data_in_every_order(data_dir, smoke_store):
    from lungcl.data.datasets import load_task_datasets
    from lungcl.data.tasks import resolve_tasks
    from lungcl.experiments.trainer import stream_seed

    def lobulation(order: str, by_name: bool):
        splits = load_task_datasets(data_dir, resolve_tasks(order), 0, profile="smoke", seed_by_name=by_name)
        return splits["lobulation"].train

    first, second = lobulation("lobulation,malignancy", True), lobulation("malignancy,lobulation", True)
    assert first.seed == second.seed and np.array_equal(first.order, second.order)
    assert lobulation("lobulation,malignancy", False).seed != lobulation("malignancy,lobulation", False).seed

    ab = default_config("smoke", tasks="AB", streams="task")
    ba = default_config("smoke", tasks="BA", streams="task")
    a, b = ab.tasks
    assert stream_seed(ab, 0, 0, a) == stream_seed(ba, 1, 0, a) and stream_seed(ab, 1, 0, b) == stream_seed(ba, 0, 0, b)
    joint = default_config("smoke", tasks="AB", streams="task", method="joint")
    assert stream_seed(joint, 1, 0, a) != stream_seed(joint, 0, 0, a)  # a revisit is a new stream
    assert default_config("smoke").streams == "task"  # the default: orders compare orders
    pos = default_config("smoke", tasks="AB", streams="position")
    assert stream_seed(pos, 0, 0, a) != stream_seed(default_config("smoke", tasks="BA", streams="position"), 1, 0, a)
    assert default_config("smoke", streams="position").run_id != default_config("smoke").run_id
    assert "position-streams" in default_config("smoke", streams="position").label
    assert "streams" not in default_config("smoke").label
    with pytest.raises(LungclError, match="streams must be one of"):
        default_config("smoke", streams="random")
