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


def test_say_shows_markdown_only_when_there_is_something_to_say(monkeypatch) -> None:
    import IPython.display

    from lungcl.chapter import say

    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    say(None)
    say("")
    say("**EWC** forgets less.")
    assert len(shown) == 1 and shown[0].data == "**EWC** forgets less."


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


# ---------------------------------------------------------------- 05 analysis

def _sweep(old: float, new: float) -> np.ndarray:
    """A 3-task accuracy matrix whose last row ends at ``old`` on the earlier tasks and ``new`` on the last."""
    return np.array([[0.8, 0.5, 0.5], [0.7, 0.8, 0.5], [old, old, new]])


def test_analysis_lambda_sentences_report_the_sweep_and_the_validation_choice() -> None:
    from lungcl import summaries
    from lungcl.chapter import analysis

    records = [make_record("ewc", strength=s, R=_sweep(old, new)) for s, old, new in
               ((1.0, 0.6, 0.8), (10.0, 0.7, 0.6))] + [make_record("sgd", R=_sweep(0.5, 0.9))]
    tradeoff = summaries.tradeoff_table(records)
    view = analysis.tradeoff_view(tradeoff)
    assert view.loc[("EWC", "10"), "earlier tasks"] == pytest.approx(0.7)
    assert view.loc[("SGD", "0"), "last task"] == pytest.approx(0.9)
    val = pd.DataFrame({"method": ["ewc", "ewc"], "strength": [1.0, 10.0], "all": [0.55, 0.65]})
    text = analysis.lambda_sentences(tradeoff, val, l2_default=0.5, ewc_default=1.0)
    assert text.startswith("- **EWC**: from lambda 1 to 10, the earlier tasks go from 60.0 % to 70.0 %")
    assert "the last task from 80.0 % to 60.0 %" in text
    assert "balanced accuracy 65.0 %), lambda 10 gives a test mean over all tasks of 66.7 %" in text
    assert "(the default the other chapters use is 1)." in text
    assert "L2" not in text  # one lambda or none: nothing to say
    assert analysis.lambda_sentences(tradeoff, val.iloc[:0], 0.5, 1.0) == ""


def test_analysis_default_runs_and_first_stage() -> None:
    from lungcl.chapter import analysis

    records = [make_record("sgd"), make_record("ewc", strength=1.0), make_record("ewc", strength=10.0),
               make_record("l2", strength=0.5), make_record("joint")]
    picked = analysis.default_runs(records, l2_default=0.5, ewc_default=1.0)
    assert [r.config.method for r in picked] == ["sgd", "ewc", "l2", "joint"]
    assert [r.config.method for r in analysis.default_runs(records, 0.5, 1.0, methods=("ewc",))] == ["ewc"]
    assert analysis.same_first_stage(records, 0.5, 1.0, fold=0)
    other = make_record("l2", strength=0.5)
    other.data["curves"]["loss"] = [0.9] * len(other.data["curves"]["loss"])
    assert not analysis.same_first_stage(records[:3] + [other], 0.5, 1.0, fold=0)


def _bn_table(updated: list[float], frozen: list[float]) -> pd.DataFrame:
    rows = [{"BatchNorm statistics": bn, "method": m, "mean forgetting": f, "average final accuracy": 0.7}
            for bn, values in (("updated (as above)", updated), ("frozen after stage 1", frozen))
            for m, f in zip(["SGD", "L2", "EWC"], values)]
    return pd.DataFrame(rows).set_index(["BatchNorm statistics", "method"])


def test_analysis_batchnorm_sentence_branches_on_the_drop() -> None:
    from lungcl.chapter import analysis

    large = analysis.batchnorm_sentence(_bn_table([0.20, 0.15, 0.10], [0.05, 0.05, 0.08]))
    assert large.startswith("Freezing the statistics changes the mean forgetting by SGD 20.0 -> 5.0 points, "
                            "L2 15.0 -> 5.0 points, EWC 10.0 -> 8.0 points.")
    assert "For most methods that is a large drop" in large
    small = analysis.batchnorm_sentence(_bn_table([0.20, 0.15, 0.10], [0.10, 0.14, 0.09]))
    assert "That is no large drop for most methods" in small and "large drop:" not in small


def test_analysis_batchnorm_table_and_reference_notes() -> None:
    from lungcl import summaries
    from lungcl.chapter import analysis

    updated = [make_record("sgd", R=_sweep(0.5, 0.9))]
    frozen = [make_record("sgd", R=_sweep(0.7, 0.9))]
    table = analysis.batchnorm_table(updated, frozen, last_task="calcification")
    assert table.loc[("frozen after stage 1", "SGD"), "earlier tasks' final accuracy"] == pytest.approx(0.7)
    assert table.loc[("updated (as above)", "SGD"), "mean forgetting"] > \
        table.loc[("frozen after stage 1", "SGD"), "mean forgetting"]
    transfer = summaries.transfer_table([make_record("sgd", R=_sweep(0.5, 0.9)),
                                         make_record("joint", R=_sweep(0.8, 0.9))])
    notes = analysis.reference_notes(transfer, online_gamma=0.9)
    tv = transfer.set_index(["method", "quantity"]).value
    gap = tv[("joint", "average_accuracy")] - tv[("sgd", "average_accuracy")]
    assert notes == (f"Joint training's average final accuracy minus each sequential method's: SGD "
                     f"+{100 * gap:.1f} points: the room left for a sequential method to improve.")
    assert "Online EWC" not in notes
    above = summaries.transfer_table([make_record("sgd", R=_sweep(0.8, 0.9)),
                                      make_record("joint", R=_sweep(0.5, 0.9))])
    assert analysis.reference_notes(above, 0.9).endswith(
        "; SGD end(s) above joint training here: joint training is the usual upper reference, not a bound.")
    assert analysis.reference_notes(transfer[transfer.method == "sgd"], 0.9) == ""


def _variant_runs(gaps: dict[str, list[float]]) -> list:
    """EWC records: exact's final row 0.7 per seed, each variant's shifted by ``gaps[variant][seed]``."""
    runs = []
    for variant, shifts in {"exact": [0.0, 0.0, 0.0], **gaps}.items():
        for seed, g in enumerate(shifts):
            runs.append(make_record("ewc", strength=1.0, seed=seed, fisher=variant,
                                    R=np.full((3, 3), 0.7 + g) + 0.05 * np.eye(3)))
    return runs


def test_analysis_fisher_variant_summary_pairs_each_variant_with_exact() -> None:
    from lungcl.chapter import analysis

    runs = _variant_runs({"sampled": [-0.05, -0.06, -0.04], "batched": [0.01, -0.01, 0.0]})
    summary = analysis.fisher_variant_summary(runs)
    s = summary.set_index(["variant", "quantity"])
    assert list(dict.fromkeys(summary.variant)) == ["exact", "sampled", "batched"]
    assert s.loc[("sampled", "average_accuracy"), "minus_exact"] == pytest.approx(-0.05)
    assert s.loc[("sampled", "average_accuracy"), "minus_exact_hi"] < 0
    assert s.loc[("batched", "average_accuracy"), "minus_exact_lo"] < 0 < s.loc[("batched", "average_accuracy"),
                                                                                "minus_exact_hi"]
    assert s.loc[("exact", "average_accuracy"), "runs"] == 3 and np.isnan(s.loc[("exact", "average_accuracy"),
                                                                                  "minus_exact"])
    view = analysis.fisher_variant_view(summary, {"exact": 1.0, "sampled": 1.0, "batched": 10.0},
                                        {"exact": True, "sampled": True, "batched": False})
    assert view.loc["batched (squared batch mean)", "lambda"] == "10"
    assert view.loc["batched (squared batch mean)", "lambda chosen"] == "profile default"
    assert view.loc["sampled label", "average final balanced accuracy minus exact's"].startswith("-5.0 [")
    text = analysis.fisher_variant_sentences(summary, None, {"exact": 1.0, "sampled": 1.0, "batched": 10.0})
    assert "**sampled label** (lambda 1): average final test balanced accuracy -5.0 points against exact" in text
    assert "worse, beyond the spread between runs" in text
    assert "batched" in text and "the interval contains zero" in text
    with pytest.raises(LungclError, match="no EWC sequence records"):
        analysis.fisher_variant_summary([make_record("sgd")])


def test_analysis_fisher_distances_per_layer() -> None:
    import torch

    from lungcl.chapter import analysis

    exact = {"trunk.0.weight": torch.tensor([1.0, 2.0, 3.0]), "heads.a.weight": torch.tensor([4.0, 0.0])}
    double = {k: 2 * v for k, v in exact.items()}
    t = analysis.fisher_distances([("batched", exact, double), ("batched", exact, double)])
    assert set(t.layer) == {"stem", "head a"}
    assert t.scale.tolist() == pytest.approx([2.0, 2.0])
    assert t.relative_distance.tolist() == pytest.approx([1.0, 1.0])
    assert t.correlation.tolist() == pytest.approx([1.0, 1.0])
    with pytest.raises(LungclError, match="lacks parameter"):
        analysis.fisher_distances([("sampled", exact, {"trunk.0.weight": exact["trunk.0.weight"]})])
    text = analysis.fisher_variant_sentences(
        analysis.fisher_variant_summary(_variant_runs({"batched": [0.0, 0.01, -0.01]})), t,
        {"exact": 1.0, "batched": 10.0})
    assert "2 times its mass; its lambda is 10 times exact's." in text


def test_discussion_fisher_variant_note_branches() -> None:
    from lungcl.chapter import discussion

    assert discussion.fisher_variant_note([make_record("ewc", strength=1.0)]) is None
    worse = discussion.fisher_variant_note(_variant_runs({"sampled": [-0.05, -0.06, -0.04]}))
    assert "sampled label -5.0 points" in worse and "differ(s) beyond the spread" in worse
    same = discussion.fisher_variant_note(_variant_runs({"empirical": [0.01, -0.01, 0.0]}))
    assert "no interval excludes zero" in same and "matters less" not in same
    assert "at 3 seeds the variants cannot be told apart from the exact Fisher" in same
    assert "(empirical (true label) [-2.5, +2.5] points) allow differences of up to 2.5 points" in same


def _probed(method: str, seed: int, lost: float, representation: float, calibration: float, **settings):
    """A 2-task record whose first task lost ``lost`` balanced accuracy, with probes that split it."""
    R = np.array([[0.8, 0.7], [0.8 - lost, 0.75]]) + 0.1  # make_record's balanced accuracy is accuracy - 0.1
    rec = make_record(method, order="malignancy,lobulation", R=R, seed=seed, strength=1.0 if method == "ewc" else None,
                      **settings)
    rec.data["probes"] = {"floor": {"malignancy": {"balanced_accuracy": 0.6}, "lobulation": {"balanced_accuracy": 0.55}},
                          "stages": [{"stage": 0, "task": "malignancy", "probe": {"balanced_accuracy": 0.8},
                                      "recalibrated": {"balanced_accuracy": 0.8}},
                                     {"stage": 1, "task": "malignancy",
                                      "probe": {"balanced_accuracy": 0.8 - representation},
                                      "recalibrated": {"balanced_accuracy": 0.8 - lost + calibration}}]}
    return rec


def _norm_runs() -> list:
    runs = []
    for seed, jitter in enumerate([0.0, 0.01, -0.01]):
        runs += [_probed("sgd", seed, 0.30 + jitter, 0.02, 0.20),
                 _probed("sgd", seed, 0.05 + jitter, 0.01, 0.02, bn="freeze"),
                 _probed("sgd", seed, 0.10 + jitter, 0.02, 0.05, norm="group")]
    return runs


def test_analysis_normalisation_table_and_its_sentences() -> None:
    from lungcl.chapter import analysis

    runs = analysis.normalisation_runs(_norm_runs() + [make_record("sgd")])  # the record without probes is left out
    assert len(runs) == 9 and set(runs.normalisation) == {"update", "freeze", "group"}
    upd = runs[(runs.normalisation == "update") & (runs.seed == 0)].iloc[0]
    assert upd.lost == pytest.approx(0.30) and upd.representation == pytest.approx(0.02)
    assert upd.calibration == pytest.approx(0.20) and upd.rest == pytest.approx(0.08)
    summary = analysis.normalisation_summary(runs)
    view = analysis.normalisation_view(summary)
    assert view.loc[("SGD", "BatchNorm, frozen after stage 1"), "balanced accuracy lost"].startswith("5.0 [")
    text = analysis.normalisation_sentences(summary)
    assert "the least with BatchNorm, frozen after stage 1, and its interval lies below" in text
    assert "How the loss splits" not in text  # the split is read only with the runs' intervals
    text = analysis.normalisation_sentences(summary, runs)
    assert ("SGD with BatchNorm, statistics updated: lost 30.0 [28, 32] points, of which calibration 20.0 [20, 20]: "
            "**calibration** is the largest part beyond the spread between seeds") in text
    assert ("SGD with BatchNorm, frozen after stage 1: lost 5.0 [3, 7] points, of which calibration 2.0 [2, 2]: the "
            "largest mean, but its interval overlaps another part's") in text
    assert "above the floor beyond the spread between seeds: SGD with BatchNorm, statistics updated +18.0 [+18.0, +18.0]" in text
    assert text.endswith("In every setting the trained features hold more than random ones.")
    with pytest.raises(LungclError, match="probes=true"):
        analysis.normalisation_runs([make_record("sgd")])


def _majority(seed: int, final: float = 0.4):
    """SGD with per-task statistics whose old task keeps its accuracy (forgetting 2 points) while its
    balanced accuracy falls from 80 % to ``final``: it answers the majority class."""
    rec = _probed("sgd", seed, 0.02, 0.0, 0.0, bn="task")
    rec.data["matrices"]["test"]["balanced_accuracy"] = [[0.8, None], [final, 0.75]]
    rec.data["probes"]["stages"][1]["recalibrated"]["balanced_accuracy"] = final
    return rec


def test_a_normalisation_that_keeps_accuracy_by_the_majority_class_is_called_so() -> None:
    from lungcl.chapter import analysis, discussion

    runs = [_probed("sgd", s, 0.30, 0.02, 0.20) for s in range(3)] + [_majority(s) for s in range(3)]
    text = analysis.normalisation_sentences(analysis.normalisation_summary(analysis.normalisation_runs(runs)))
    assert "In balanced accuracy the earlier tasks lose update 30.0, task 40.0 points" in text
    assert "more with task than with updated statistics" in text and "majority class" in text
    note = discussion.normalisation_note(runs)
    assert "but in balanced accuracy the earlier tasks lose more with it" in note
    assert "most of the forgetting is the normalisation" not in note
    # the same mean loss, but spread so that its interval reaches below updated statistics': no such claim
    noisy = [_probed("sgd", s, 0.30, 0.02, 0.20) for s in range(3)] + [_majority(s, v) for s, v in
                                                                         enumerate([0.7, 0.3, 0.4])]
    text = analysis.normalisation_sentences(analysis.normalisation_summary(analysis.normalisation_runs(noisy)))
    assert "task 33.3 points." in text and "majority class" not in text
    assert "lose more with it" not in discussion.normalisation_note(noisy)


def test_discussion_normalisation_note_reads_the_numbers() -> None:
    from lungcl.chapter import discussion

    assert discussion.normalisation_note([make_record("sgd")]) is None
    note = discussion.normalisation_note(_norm_runs())
    assert note.startswith("**Why the network forgets**: mean forgetting over the methods run, by normalisation:")
    assert "The least forgetting is with BatchNorm, frozen after stage 1 (freeze)" in note
    assert "most of the forgetting is the normalisation" in note and "Keeping the old statistics" not in note
    # calibration stands out beyond the seeds' spread in one of the three settings only: no advice
    assert "In 1 of the 3 settings (method x normalisation) the earlier tasks lose" in note and "sgd/update calibration" in note
    assert "refit the old heads' thresholds" not in note
    features = discussion.normalisation_note([_probed("sgd", s, 0.3, 0.25, 0.01) for s in range(2)])
    assert "**representation** in every one" in features and "the features themselves forget" in features
    calibrated = discussion.normalisation_note([_probed("sgd", s, 0.3 + 0.01 * s, 0.02, 0.2) for s in range(3)])
    assert "**calibration** in every one" in calibrated and "refit the old heads' thresholds" in calibrated
    group = discussion.normalisation_note([_probed("sgd", s, 0.3, 0.02, 0.01, norm="group") for s in range(2)]
                                          + [_probed("sgd", s, 0.3, 0.02, 0.01) for s in range(2)])
    assert "The least forgetting is with GroupNorm (no statistics) (group)" not in group  # the same forgetting
    best = discussion.normalisation_note([_probed("sgd", s, 0.1, 0.02, 0.01, norm="group") for s in range(2)]
                                         + [_probed("sgd", s, 0.3, 0.02, 0.01) for s in range(2)])
    assert "The least forgetting is with GroupNorm (no statistics) (group)" in best
    overlap = discussion.normalisation_note(
        [_probed("sgd", s, v, 0.02, 0.01) for s, v in enumerate([0.1, 0.3, 0.5])]
        + [_probed("sgd", s, v, 0.02, 0.01, norm="group") for s, v in enumerate([0.05, 0.25, 0.45])])
    assert "5.0 points below updated statistics: but the intervals over runs overlap" in overlap
    assert "most of the forgetting" not in overlap


# ---------------------------------------------------------------- 06 multi-task

def test_multitask_best_setting_is_chosen_on_validation() -> None:
    from lungcl.chapter import multitask

    test = pd.DataFrame({"gated": [0.7, 0.8], "hard": [0.9, 0.9]}, index=["malignancy", "lobulation"])
    val = pd.DataFrame({"gated": [0.8, 0.8], "hard": [0.6, 0.7]}, index=test.index)
    text = multitask.best_setting_sentence(test, val)
    assert text.startswith("Mean over tasks (test): gated 0.750, hard 0.900.")
    assert "the best setting is **gated** (validation mean 0.800, test mean 0.750)" in text


def test_multitask_sharing_sentences() -> None:
    from lungcl.chapter import multitask

    sharing = pd.DataFrame([[1.0, 0.2, 0.1], [0.3, 1.0, 0.0], [0.05, 0.4, 1.0]],
                           index=["a", "b", "c"], columns=["a", "b", "c"])
    text = multitask.sharing_sentence(sharing)
    assert "Off the diagonal the matrix ranges from 0 to 0.4:" in text
    history = pd.DataFrame({"setting": ["x", "x", "y", "y", "z"], "epoch": [0, 1, 0, 1, 0],
                            "borrowed share": [0.1, 0.2, 0.3, 0.1, 0.5]})
    grows = multitask.growing_sentence(history)
    assert grows.startswith("The borrowed share still grows in the last epoch for 1 of the 3 settings (x)")
    assert multitask.growing_sentence(history[history.setting != "x"]) is None


def test_multitask_sgd_sentence_only_when_it_can_say_something() -> None:
    from lungcl.chapter import multitask

    summary = pd.DataFrame({"mean_borrowed": [0.0012, 0.034]}, index=[multitask.SGD_SETTING, "gated binary"])
    text = multitask.sgd_sentence(summary, "gated binary", "adam", 100.0)
    assert text.startswith("With plain SGD the tasks borrow 0.0012 of their input on average, against 0.034 "
                           "with adam: a fusion that starts at 100 hardly moves")
    assert multitask.sgd_sentence(summary, "gated binary", "sgd", 100.0) is None
    assert multitask.sgd_sentence(summary, "gated binary", "adam", 1.0) is None
    assert multitask.sgd_sentence(summary.iloc[1:], "gated binary", "adam", 100.0) is None


def test_multitask_correlation_and_missing_orders() -> None:
    from lungcl.chapter import multitask

    link = pd.DataFrame({"sharing_mutual": [0.1, 0.2, 0.3, 0.4], "drop_first_after_second": [0.0, 0.1, 0.2, 0.3]})
    assert multitask.correlation_sentence(link).startswith(
        "Spearman's rank correlation over the 4 ordered pairs is 1.00 (p = 0.00).")
    assert multitask.correlation_sentence(link.iloc[:2]) is None
    assert multitask.missing_sequences_sentence(["ACB", "CBA"], "results").startswith(
        "The SGD runs of order(s) ACB, CBA are not in `results/` yet")
    assert multitask.missing_sequences_sentence([], "results") is None


# ---------------------------------------------------------------- 07 discussion

def test_discussion_missing_runs_and_folds() -> None:
    from lungcl.chapter import discussion

    absent = [make_record("ewc", strength=1.0).config]
    text = discussion.missing_runs_sentence(absent, "results")
    assert text.startswith(f"**1 run(s) of the experiment chapters are not in `results/`** (e.g. {absent[0].label})")
    assert discussion.missing_runs_sentence([], "results") is None
    assert "1 fold(s) with 3 seed(s) per method in each of 6 order(s)" in discussion.folds_and_seeds_note(3, 6, 1)
    assert discussion.bullets(["a", "b"]) == "- a\n\n- b"


def _final(method: str, strength: float | None, final_acc: float):
    return make_record(method, strength=strength, R=np.array([[0.8, 0.5, 0.5], [0.7, 0.8, 0.5],
                                                               [final_acc] * 3]))


def test_discussion_final_accuracy_says_whether_joint_ends_above_every_method() -> None:
    from lungcl.chapter import discussion

    seq = [_final("sgd", None, 0.6), _final("ewc", 1.0, 0.7), _final("ewc", 10.0, 0.9), _final("joint", None, 0.8)]
    text = discussion.final_accuracy_note(seq, l2_default=0.5, ewc_default=1.0)
    # make_record's balanced accuracy is its accuracy minus 10 points
    assert text.startswith("**Average final balanced accuracy on ABC**: SGD 50.0 %, EWC 60.0 %, joint 70.0 %.")
    assert text.endswith("is the usual upper reference (not a bound); here it ends above every sequential method.")
    seq[1] = _final("ewc", 1.0, 0.85)
    assert discussion.final_accuracy_note(seq, 0.5, 1.0).endswith("here it ends below EWC.")
    assert discussion.final_accuracy_note(seq[2:3], 0.5, 1.0) is None  # only a non-default lambda
    lam = discussion.lambda_notes(seq)
    assert lam == ["**EWC's lambda**: over the sweep (1, 10) the earlier tasks end between 85.0 and 90.0 % and "
                   "the last task between 85.0 and 90.0 %."]


def test_discussion_batchnorm_note_branches() -> None:
    from lungcl.chapter import discussion

    def runs(final_old: float) -> list:  # forgetting of the first two tasks: 0.8 - final_old
        return [make_record(m, strength=s, R=np.array([[0.8, 0.5, 0.5], [0.8, 0.8, 0.5],
                                                       [final_old, final_old, 0.8]]))
                for m, s in (("sgd", None), ("l2", 0.5), ("ewc", 1.0))]

    updated = runs(0.6)  # forgetting 20 points
    drop = discussion.batchnorm_note(updated, [r for r in runs(0.75)], 0.5, 1.0)
    assert drop.startswith("**BatchNorm's statistics**: with them frozen after the first stage, the mean "
                           "forgetting of balanced accuracy is SGD 5.0 (updated: 20.0)")
    assert "for most methods a drop of more than 5 points" in drop
    assert "*raises* the forgetting" in discussion.batchnorm_note(updated, runs(0.4), 0.5, 1.0)
    assert "no drop of more than 5 points" in discussion.batchnorm_note(updated, runs(0.62), 0.5, 1.0)
    assert discussion.analysis_notes([], 0.5, 1.0) == "The analysis chapter's runs are not there yet."


def test_discussion_imbalance_note_only_for_lopsided_tasks() -> None:
    from lungcl.chapter import discussion

    lopsided = make_record("sgd", positives=2)  # 2 of 40 test nodules positive
    text = discussion.imbalance_note(lopsided)
    assert text.startswith("**Class imbalance.** On our test sets, malignancy has 5% positive nodules "
                           "(always answering *negative*: 95.0%)")
    assert discussion.imbalance_note(make_record("sgd", positives=20)) is None


# ---------------------------------------------------------------- 03 sequence ABC

def test_sequence_majority_and_interval_sentences() -> None:
    from lungcl.chapter import sequence

    baseline = pd.DataFrame({"positive_share": [0.1, 0.45], "majority_accuracy": [0.9, 0.55]},
                            index=["lobulation", "malignancy"])
    text = sequence.majority_sentence(baseline)
    assert ("on **lobulation** only 10% of the test nodules are positive, so answering *negative* every time "
            "already scores 90.0%.") in text and "malignancy" not in text
    assert sequence.majority_sentence(baseline.iloc[1:]) is None
    no_ci = pd.DataFrame({"ci_low": [np.nan], "ci": ["t over runs"]})
    assert sequence.interval_sentence(no_ci).startswith("These summaries have no interval here")
    assert sequence.interval_sentence(no_ci.assign(ci_low=0.1)) == "Intervals: t over runs."


def test_sequence_findings_need_the_three_methods() -> None:
    from lungcl.chapter import sequence

    table, text = sequence.findings_section([make_record("sgd")])
    assert table is None and text == sequence.NEEDS_THREE
    records = [make_record(m, strength=s, seed=k) for k in range(2)
               for m, s in (("sgd", None), ("l2", 0.5), ("ewc", 1.0))]
    table, text = sequence.findings_section(records)
    html = table.to_html()
    assert "The thesis&#x27;s findings on our runs" in html or "The thesis's findings on our runs" in html
    assert text.startswith("A verdict reads the interval of the margin") and "\n\n- " in text


def test_sequence_notes_branch_on_chance_level_and_order() -> None:
    from lungcl.chapter import sequence

    stage_table = pd.DataFrame({"metric": "balanced_accuracy", "stage": 2, "method": ["sgd", "sgd", "ewc"],
                                "task": ["malignancy", "lobulation", "malignancy"], "value": [0.55, 0.7, 0.58]})
    baseline = pd.DataFrame({"positive_share": [0.3]}, index=["malignancy"])
    notes = sequence.sequence_notes(stage_table, baseline, "ABC", 3, n_folds=1, n_seeds=3)
    first, second, third = notes.split("\n\n")
    assert "below 60 % balanced accuracy" in first and "SGD: malignancy; EWC: malignancy." in first
    assert second.startswith("In every row of the thesis's Tables 4.1-4.6") and "malignancy 30%" in second
    assert "1 fold(s) with 3 seed(s)" in third
    alone = sequence.sequence_notes(stage_table.assign(value=0.7), baseline, None, 3, 1, 1)
    assert alone.startswith("Our numbers come from the phantom") and "\n\n" not in alone


# ---------------------------------------------------------------- 02 single task

def _single(**values: float) -> pd.DataFrame:
    """One task's single-task row with intervals of +-0.05 around each metric."""
    row = {"accuracy": 0.8, "balanced_accuracy": 0.75, "auc": 0.8, "specificity": 0.7, "thesis_mean": np.nan,
           "thesis_min": np.nan, "thesis_max": np.nan, "thesis_runs": np.nan, **values}
    for m in ("accuracy", "balanced_accuracy", "auc", "specificity"):
        row[f"{m}_ci_low"], row[f"{m}_ci_high"] = row[m] - 0.05, row[m] + 0.05
    return pd.DataFrame([row], index=["malignancy"])


def test_single_task_sentences_branch_on_the_numbers() -> None:
    from lungcl.chapter import single_task

    baseline = pd.DataFrame({"majority_accuracy": [0.7], "positive_share": [0.3]}, index=["malignancy"])
    fine = single_task.task_sentences(_single(), baseline)
    assert fine.startswith("- **malignancy**: accuracy ") and "against 70.0 % for always answering" in fine
    assert fine.endswith("balanced accuracy 75.0 %, AUC 80.0 %.")
    threshold = single_task.task_sentences(_single(balanced_accuracy=0.55, auc=0.7), baseline)
    assert "the decision threshold, not the ranking, is off." in threshold
    flat = single_task.task_sentences(_single(balanced_accuracy=0.55, auc=0.6), baseline)
    assert flat.endswith("The network barely separates the classes on this task.")
    floor = single_task.task_sentences(_single(accuracy=0.65), baseline)
    assert "it calls 30 % of the negative nodules positive, and with only 30 % positives" in floor
    thesis = single_task.task_sentences(_single(thesis_mean=0.85), baseline)
    assert thesis.endswith("The thesis: 85.0 % accuracy (-5.0 points for us).")


def test_single_task_reference_verdicts() -> None:
    from lungcl.chapter import single_task

    single = _single()  # balanced accuracy 0.75, interval 0.70-0.80
    readers = pd.DataFrame({"balanced_accuracy": [0.9], "auc": [0.95]}, index=["malignancy"])

    def said(geo: float, rd: pd.DataFrame = readers) -> str:
        return single_task.reference_verdicts(single, pd.DataFrame({"balanced_accuracy": [geo], "auc": [0.7]},
                                                                   index=["malignancy"]), rd)

    assert "does **not** beat the contour's geometry alone (85.0 %)" in said(0.85)
    assert "beats the contour's geometry alone (60.0 %) beyond its interval" in said(0.6)
    assert "not distinguishable from the contour's geometry alone (72.0 %)" in said(0.72)
    assert said(0.6).endswith("the readers agree with each other at 90.0 %.")
    assert said(0.6, readers.assign(balanced_accuracy=0.65)).endswith(", and the network is above that.")
    compare = single_task.reference_comparison(single, readers, readers)
    assert compare.loc["malignancy", "readers: AUC"] == "95.0"


def test_single_task_view_and_thesis_level() -> None:
    from lungcl.chapter import single_task

    baseline = pd.DataFrame({"majority_accuracy": [0.7]}, index=["malignancy"])
    assert single_task.thesis_level_sentence(_single()) is None
    assert "thesis: accuracy learned first" not in single_task.single_view(_single(), baseline)
    with_thesis = _single(thesis_mean=0.85, thesis_min=0.8, thesis_max=0.9, thesis_runs=6)
    view = single_task.single_view(with_thesis, baseline)
    assert view.loc["malignancy", "thesis: accuracy learned first"] == "85.0 (80.0-90.0, 6 runs)"
    assert view.loc["malignancy", "majority class"] == "70.0"
    assert single_task.thesis_level_sentence(with_thesis).startswith(
        "The thesis's first-stage accuracies of one task differ by at most 10.0 points between its runs, and "
        "lie between 80.0 % and 90.0 %")


# ---------------------------------------------------------------- 04 task orders

def test_orders_spread_sentences_read_the_range_against_one_run() -> None:
    from lungcl.chapter import orders

    spread = pd.DataFrame({"range": [0.02, 0.06, 0.2], "orders": 6, "min": 0.6, "max": [0.62, 0.66, 0.8],
                           "median CI width": [0.04, 0.04, 0.04], "thesis range": [np.nan, 0.01, np.nan]},
                          index=["SGD", "L2", "EWC"])
    lines = orders.spread_sentences(spread).split("\n\n")
    assert lines[0] == ("- **SGD**: the average final accuracy ranges over 2.0 points across 6 orders (from 60.0 % "
                        "to 62.0 %), against a median interval width of 4.0 points for one order: the spread is "
                        "smaller than the noise of one run.")
    assert "comparable to the noise" in lines[1] and lines[1].endswith("; the thesis's ranges over 1.0 points.")
    assert "larger than the noise" in lines[2]
    no_ci = orders.spread_sentences(spread.assign(**{"median CI width": np.nan}).iloc[:1])
    assert no_ci.endswith("(from 60.0 % to 62.0 %).")


def test_orders_finding_four_reads_the_findings_of_the_design() -> None:
    """The task-order chapter's finding-4 text is the findings module's (the discussion's numbers), and without
    the three methods at one order and seed it says what to run."""
    from lungcl import findings
    from lungcl.chapter import orders

    assert orders.order_finding([make_record("ewc")]) == orders.NEEDS_THREE
    recs = [make_record(m, o, seed=s, R=np.full((3, 3), 0.7) + 0.01 * s + 0.05 * np.eye(3))
            for o in ("malignancy,lobulation,calcification", "calcification,lobulation,malignancy")
            for s in range(2) for m in ("sgd", "l2", "ewc")]
    text = orders.order_finding(recs)
    report = findings.findings_report(recs, n_boot=20)
    assert text.startswith("- " + findings.verdict_sentences(report, "order")[0])
    assert "Holm" in text and findings.ORDER_FINDING not in findings.verdict_sentences(report, "methods")[0]


def test_discussion_verdicts_page_reads_the_design_only() -> None:
    from lungcl.chapter import discussion

    recs = [make_record(m, seed=s) for s in range(2) for m in ("sgd", "l2", "ewc")]
    assert discussion.design_records(recs + [make_record("joint")], [r.config for r in recs]) == recs
    table, text = discussion.verdicts_page(recs)
    assert "untestable" in text and "Holm" in text and "p (Holm)" in table.data.columns


def test_orders_position_sentence() -> None:
    from lungcl.chapter import orders

    positions = pd.DataFrame({"method": ["sgd"] * 4 + ["ewc"] * 2, "task": ["a", "a", "b", "b", "a", "a"],
                              "position": [1, 3, 1, 3, 1, 3], "value": [0.9, 0.7, 0.8, 0.8, 0.7, 0.72],
                              "thesis": [np.nan] * 4 + [0.8, 0.9]})
    text = orders.position_sentence(positions)
    assert text.startswith("Learned last minus learned first, mean over the tasks: SGD -10.0 points; "
                           "EWC +2.0 points (thesis +10.0). A positive number")


# ---------------------------------------------------------------- the chapters tell

MAX_CODE_LINES = 80


def test_orders_initial_weights_are_checked_on_the_networks() -> None:
    from lungcl.chapter import orders
    from lungcl.experiments import default_config

    configs = [default_config("smoke", tasks=o, method=m) for o in ("ABC", "BAC", "ACB", "CBA") for m in ("sgd", "ewc")]
    found = orders.initial_weights(configs)
    assert found["orders"] == ["ABC", "BAC", "ACB", "CBA"] and found["seed"] == 0
    # what build_model does: the trunk from the seed, each head from (seed, task name): the same in every order
    assert found["same_trunk"] and not found["same_by_place"]
    assert found["starts"] == {"malignancy": 1, "lobulation": 1, "calcification": 1}
    text = orders.initial_weights_sentence(found)
    assert "the trunk starts from the same weights in every order" in text
    assert "each task's head starts from the same weights in every order" in text
    by_place = orders.initial_weights_sentence({**found, "same_by_place": True,
                                                "starts": {"malignancy": 3, "lobulation": 3, "calcification": 3}})
    assert "by its place" in by_place and "malignancy 3, lobulation 3, calcification 3" in by_place
    other_seed = orders.initial_weights([default_config("smoke", tasks="ABC", seed=1)])
    assert "one order: nothing to compare" in orders.initial_weights_sentence(other_seed)
    moved = orders.initial_weights_sentence({**found, "same_trunk": False, "same_by_place": False})
    assert "does *not* start from the same weights" in moved and "by its place" not in moved


def code_lines_outside_parameters(path) -> int:
    """Lines of code a chapter runs besides its parameters cell.

    Counted on the jupytext py:percent text as jupytext reads it: every code cell except the one tagged
    ``parameters``; a line counts when it is neither blank nor a comment (``#`` after leading spaces).
    Markdown cells (the prose) do not count.
    """
    import jupytext

    notebook = jupytext.read(path)
    return sum(1 for cell in notebook.cells
               if cell.cell_type == "code" and "parameters" not in cell.metadata.get("tags", [])
               for line in cell.source.splitlines()
               if line.strip() and not line.strip().startswith("#"))


def test_code_line_count_reads_code_cells_only(tmp_path) -> None:
    chapter = tmp_path / "99_x.py"
    chapter.write_text('# %% [markdown]\n# prose\n# more prose\n\n# %% tags=["parameters"]\nprofile = "cpu"\n\n'
                       '# %%\nimport math\n\n# a comment\nx = 1\n    # indented comment\n')
    assert code_lines_outside_parameters(chapter) == 2


def test_every_chapter_tells_in_at_most_80_lines_of_code() -> None:
    """The package computes, the chapter tells: no chapter runs more than 80 lines of code besides its
    parameters (see :func:`code_lines_outside_parameters` for how lines are counted)."""
    from pathlib import Path

    chapters = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.py"))
    assert len(chapters) >= 8
    counts = {p.stem: code_lines_outside_parameters(p) for p in chapters}
    too_long = {name: n for name, n in counts.items() if n > MAX_CODE_LINES}
    assert not too_long, f"chapters over {MAX_CODE_LINES} lines of code: {too_long}"


def test_forgetting_split_bars_one_panel_per_method() -> None:
    from lungcl import plots
    from lungcl.chapter import analysis

    runs = _norm_runs() + [_probed("ewc", s, 0.1, 0.05, 0.02) for s in range(2)]
    summary = analysis.normalisation_summary(analysis.normalisation_runs(runs))
    fig = plots.forgetting_split_bars(summary, analysis.NORMALISATION_LABELS)
    assert [ax.get_title() for ax in fig.axes] == ["SGD", "EWC"]
    assert "GroupNorm (no statistics)" in [t.get_text() for t in fig.axes[0].get_yticklabels()]
