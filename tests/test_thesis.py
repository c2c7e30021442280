"""The thesis's numbers (read from the shipped CSV), our summaries of records, and the two side by side."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd
import pytest

from lungcl import summaries, thesis
from lungcl import metrics as M
from lungcl.chapter import runs as chapter_runs
from lungcl.errors import LungclError
from synthetic_records import make_record

ABC = "malignancy,lobulation,calcification"


@pytest.fixture(scope="module")
def csv() -> pd.DataFrame:
    with resources.as_file(resources.files("lungcl") / "reference" / "thesis_results.csv") as p:
        return pd.read_csv(p, dtype={"thesis_table": str})


def test_thesis_results_are_the_csv_as_fractions(csv):
    t = thesis.thesis_results()
    assert len(t) == len(csv)
    assert set(t.order) == {"ABC", "ACB", "BAC", "BCA", "CAB", "CBA"}
    assert set(t.method) == {"sgd", "l2", "ewc"}
    assert np.allclose(t.accuracy.to_numpy(), csv.accuracy.to_numpy() / 100)
    assert ((t.accuracy > 0) & (t.accuracy <= 1)).all()
    # sensitivity and specificity exist for ABC only (Tables 4.1-4.6)
    assert t[t.order == "ABC"].sensitivity.notna().all()
    assert t[t.order != "ABC"].sensitivity.isna().all()
    assert (t.stage == [o.index(x) for o, x in zip(t.order, t.trained_letter)]).all()
    assert t.thesis_table[t.order == "CAB"].iloc[0] == "5.10"  # not read as the float 5.1


def test_thesis_matrix_is_lower_triangular_and_matches_the_csv(csv):
    R = thesis.thesis_matrix("BCA", "l2")
    assert list(R.columns) == ["lobulation", "calcification", "malignancy"]
    assert list(R.index) == ["after lobulation", "after calcification", "after malignancy"]
    values = R.to_numpy()
    assert np.isnan(values[np.triu_indices(3, k=1)]).all()
    assert not np.isnan(values[np.tril_indices(3)]).any()
    row = csv[(csv.order == "BCA") & (csv.method == "L2") & (csv.task == "B") & (csv.trained_through == "A")]
    assert values[2, 0] == pytest.approx(row.accuracy.iloc[0] / 100)
    with pytest.raises(LungclError, match="no joint run"):
        thesis.thesis_matrix("ABC", "joint")


def test_thesis_transfer_applies_the_metrics_to_the_matrix():
    R = thesis.thesis_matrix("ABC", "sgd").to_numpy()
    t = thesis.thesis_transfer("ABC", "sgd")
    assert t["average_accuracy"] == pytest.approx(M.average_accuracy(R))
    assert t["backward_transfer"] == pytest.approx(M.backward_transfer(R))
    assert t["forgetting_malignancy"] == pytest.approx(R[:2, 0].max() - R[2, 0])
    assert t["mean_forgetting"] == pytest.approx(-t["backward_transfer"])  # max is the diagonal here


def test_first_stage_runs_are_the_orders_that_start_with_the_task(csv):
    first = thesis.thesis_first_stage()
    assert list(first.index) == ["malignancy", "lobulation", "calcification"]
    assert (first.thesis_runs == 6).all()  # two orders x three methods
    a = csv[csv.order.isin(["ABC", "ACB"]) & (csv.task == "A") & (csv.trained_through == "A")]
    assert first.loc["malignancy", "thesis_mean"] == pytest.approx(a.accuracy.mean() / 100)
    assert (first.thesis_min <= first.thesis_mean).all() and (first.thesis_mean <= first.thesis_max).all()


def test_implied_positive_share_inverts_accuracy():
    t = thesis.thesis_implied_positive_share("ABC")
    p = t.implied_positive_share
    rebuilt = p * t.sensitivity + (1 - p) * t.specificity
    assert np.allclose(rebuilt, t.accuracy)


def test_thesis_order_recognises_names_and_letters():
    assert thesis.thesis_order(["calcification", "malignancy", "lobulation"]) == "CAB"
    assert thesis.thesis_order("CBA") == "CBA"
    assert thesis.thesis_order(["spiculation", "margin", "texture"]) is None
    assert thesis.thesis_order(["malignancy", "lobulation"]) is None


def test_stage_table_keeps_seen_tasks_and_joins_the_thesis(csv):
    rec = make_record("ewc", ABC)
    t = thesis.stage_table_with_thesis([rec])
    assert set(zip(t.stage, t.task)) == {(0, "malignancy"), (1, "malignancy"), (1, "lobulation"),
                                         (2, "malignancy"), (2, "lobulation"), (2, "calcification")}
    row = t[(t.stage == 1) & (t.task == "malignancy") & (t.metric == "specificity")].iloc[0]
    src = csv[(csv.order == "ABC") & (csv.method == "EWC") & (csv.task == "A") & (csv.trained_through == "B")]
    assert row.thesis == pytest.approx(src.specificity.iloc[0] / 100)
    assert row.value == pytest.approx(0.72)  # 0.7 + 0.02, the synthetic specificity
    acc = t[(t.stage == 0) & (t.metric == "accuracy")].iloc[0]
    assert (acc.ci_low, acc.ci_high) == pytest.approx((0.70, 0.79)) and acc.ci == "bootstrap over test patients"
    assert t[t.metric == "balanced_accuracy"].thesis.isna().all()  # the thesis has none


def test_several_folds_get_a_t_interval_over_folds():
    a = make_record("sgd", ABC, R=np.full((3, 3), 0.6), fold=0)
    b = make_record("sgd", ABC, R=np.full((3, 3), 0.8), fold=1)
    t = summaries.stage_table([a, b], metrics=["accuracy"])
    row = t[(t.stage == 0) & (t.task == "malignancy")].iloc[0]
    mean, lo, hi = M.mean_ci([0.6, 0.8])
    assert (row.value, row.ci_low, row.ci_high, row.n_runs) == pytest.approx((mean, lo, hi, 2))
    assert row.ci == "t over 2 runs"


def test_other_tasks_have_no_thesis_column():
    rec = make_record("ewc", "spiculation,margin,texture")
    assert thesis.stage_table_with_thesis([rec]).thesis.isna().all()
    m = thesis.matrix_side_by_side([rec])
    assert list(m.columns.get_level_values(1).unique()) == ["ours"]
    tr = thesis.transfer_with_thesis([rec])
    assert tr.thesis.isna().all() and set(tr.order) == {"spiculation,margin,texture"}


def test_matrix_side_by_side_has_the_table_4_7_layout():
    R = np.array([[0.9, np.nan, np.nan], [0.8, 0.85, np.nan], [0.7, 0.75, 0.95]])
    recs = [make_record(m, ABC, R=R) for m in ("ewc", "sgd", "l2")]
    m = thesis.matrix_side_by_side(recs)
    assert list(m.index.get_level_values(1)[:3]) == ["SGD", "L2", "EWC"]
    assert m.loc[("malignancy", "SGD"), ("after calcification", "ours")] == pytest.approx(0.7)
    assert m.loc[("malignancy", "SGD"), ("after calcification", "thesis")] == pytest.approx(
        thesis.thesis_matrix("ABC", "sgd").iloc[2, 0])
    assert np.isnan(m.loc[("calcification", "EWC"), ("after malignancy", "ours")])


def test_transfer_table_without_and_with_repeated_runs():
    R = np.array([[0.9, 0.5, 0.5], [0.8, 0.75, 0.5], [0.6, 0.7, 0.85]])
    tr = summaries.transfer_table([make_record("ewc", ABC, R=R)]).set_index("quantity")
    assert tr.loc["forgetting_malignancy", "value"] == pytest.approx(0.9 - 0.6)
    assert np.isnan(tr.loc["average_accuracy", "ci_low"])  # one run: no interval
    two = summaries.transfer_table([make_record("ewc", ABC, R=R, seed=0),
                                    make_record("ewc", ABC, R=R - 0.02, seed=1)]).set_index("quantity")
    assert two.loc["average_accuracy", "n_runs"] == 2 and two.loc["average_accuracy", "ci"] == "t over 2 runs"
    assert two.loc["average_accuracy", "ci_low"] < two.loc["average_accuracy", "value"]


def test_forward_transfer_is_against_the_task_learned_alone():
    R = np.array([[0.9, 0.5, 0.5], [0.8, 0.75, 0.5], [0.6, 0.7, 0.85]])
    seq = make_record("sgd", ABC, R=R)
    alone = [make_record("sgd", t, kind="single_task", R=np.array([[v]]))
             for t, v in zip(ABC.split(","), (0.9, 0.70, 0.90))]
    fwt = summaries.forward_transfer_table([seq, *alone]).set_index("quantity")
    assert fwt.loc["forward_transfer", "value"] == pytest.approx(((0.75 - 0.70) + (0.85 - 0.90)) / 2)
    with pytest.raises(LungclError):
        summaries.forward_transfer_table([seq])


def test_claims_on_the_thesis_own_matrices_agree_with_the_thesis():
    """Records whose accuracy matrices ARE the thesis's give the thesis's own verdicts."""
    recs = [make_record(m, ",".join(summaries.order_tasks(o)), R=thesis.thesis_matrix(o, m).to_numpy())
            for o in ("ABC", "CBA") for m in ("sgd", "l2", "ewc")]
    c = thesis.claims_table(recs)
    assert (c["holds in (ours)"] == c["holds in (thesis)"]).all()
    assert np.allclose(c["mean margin (ours)"], c["mean margin (thesis)"])
    assert (c["orders (ours)"] == 2).all()


def test_order_spread_and_positions():
    R1 = np.array([[0.9, 0, 0], [0.8, 0.9, 0], [0.7, 0.8, 0.9]])
    recs = [make_record("sgd", ",".join(summaries.order_tasks(o)), R=R1 * f) for o, f in (("ABC", 1.0), ("CBA", 0.9))]
    tr = thesis.transfer_with_thesis(recs)
    spread = thesis.order_spread(tr)
    avg = [R1[-1].mean(), 0.9 * R1[-1].mean()]
    assert spread.loc["SGD", "range"] == pytest.approx(max(avg) - min(avg))
    assert spread.loc["SGD", "thesis range"] > 0
    pos = thesis.positions_with_thesis(recs)
    first = pos[(pos.order == "CBA") & (pos.task == "calcification")].iloc[0]
    assert first.position == 1 and first.value == pytest.approx(0.9 * 0.7)


def test_single_task_table_and_majority_baseline():
    recs = [make_record(kind="single_task", order=t, R=np.array([[v]]))
            for t, v in (("malignancy", 0.8), ("calcification", 0.9))]
    s = thesis.single_task_with_thesis(recs)
    assert list(s.index) == ["malignancy", "calcification"]
    assert s.loc["calcification", "accuracy"] == pytest.approx(0.9)
    assert s.loc["malignancy", "thesis_runs"] == 6
    base = summaries.majority_baseline(recs[0])
    assert base.loc["malignancy", "majority_accuracy"] == pytest.approx(34 / 40)


def test_side_by_side_text_and_labels():
    assert summaries.percent_with_ci(0.9123, 0.88, 0.941) == "91.2 [88, 94]"
    assert summaries.percent_with_ci(0.9123, 0.88, 0.941, ci_digits=1) == "91.2 [88.0, 94.1]"
    assert summaries.percent_with_ci(0.5) == "50.0"
    assert summaries.percent_with_ci(np.nan) == "-"
    assert summaries.quantity_label("forgetting_lobulation") == "forgetting of lobulation"
    rec = make_record("l2", ABC)
    table = thesis.stage_side_by_side(thesis.stage_table_with_thesis([rec]), 2)
    assert "accuracy (thesis)" in table.columns and "balanced accuracy (thesis)" not in table.columns
    assert table.loc[("calcification", "L2"), "accuracy"].startswith("75.0 [")
    tv = thesis.transfer_side_by_side(thesis.transfer_with_thesis([rec]))
    assert ("L2", "thesis") in tv.columns and "forgetting of malignancy" in tv.index


def test_chapter_parameters_are_checked():
    assert chapter_runs.parse_methods("all") == ["sgd", "l2", "ewc"]
    assert chapter_runs.parse_methods("ewc,sgd") == ["ewc", "sgd"]
    assert chapter_runs.parse_methods(["l2"]) == ["l2"]
    with pytest.raises(LungclError, match="unknown method"):
        chapter_runs.parse_methods("adam")
    assert chapter_runs.parse_orders("all")[0] == "ABC" and len(chapter_runs.parse_orders("all")) == 6
    assert chapter_runs.parse_orders("ABC,CBA") == ["ABC", "CBA"]
    assert chapter_runs.parse_orders("spiculation,margin,texture") == ["spiculation,margin,texture"]


def test_chapters_ask_for_the_same_runs(tmp_path):
    """The ABC runs of the sequence chapter are the ones the orders and analysis chapters ask for."""
    from lungcl.chapter.setup import ChapterContext

    ctx = ChapterContext("smoke", "phantom", 0, tmp_path / "data", tmp_path / "results")
    abc = chapter_runs.sequence_configs(ctx, ["ABC"], ["sgd", "l2", "ewc"], [0])
    every = chapter_runs.sequence_configs(ctx, chapter_runs.parse_orders("all"), ["sgd", "l2", "ewc"], [0])
    plan = chapter_runs.analysis_configs(ctx, "ABC", [0.1, 1], [1], 0.9, [0])
    ids = {c.run_id for c in every}
    assert {c.run_id for c in abc} <= ids
    assert {c.run_id for c in abc} <= {c.run_id for c in plan.all}
    assert len({c.run_id for c in plan.all}) == len(plan.all)
    records, missing = chapter_runs.load_finished(abc, tmp_path / "results")
    assert records == [] and len(missing) == 3


def test_the_fisher_comparison_runs_each_variant_at_its_validated_lambda(tmp_path):
    """cpu: each Fisher variant at its shipped validation pick; exact EWC over the sequence chapter's seeds
    is the very run the sequence chapter computes (one cached record, not two)."""
    from lungcl.chapter.setup import ChapterContext
    from lungcl.experiments.tuned import reference_tune

    ctx = ChapterContext("cpu", "phantom", 0, tmp_path / "data", tmp_path / "results")
    plan = chapter_runs.analysis_configs(ctx, "ABC", [1], [1], 0.9, [0], fisher_variants=["sampled", "batched"])
    assert len(plan.variants) == 3 * 3  # exact, sampled, batched x seeds 0, 1, 2
    for v in ("sampled", "batched"):
        assert plan.variant_strengths[v] == reference_tune("cpu", "ewc", v)["pick"]["strength"]
        assert {c.strength for c in plan.variants if c.fisher == v} == {plan.variant_strengths[v]}
        assert plan.variant_tuned[v]
    abc_seeds = chapter_runs.sequence_configs(ctx, ["ABC"], ["ewc"], [0], seeds=[0, 1, 2])
    assert {c.run_id for c in abc_seeds} == {c.run_id for c in plan.variants if c.fisher == "exact"}
    assert len({c.run_id for c in plan.all}) == len(plan.all)  # exact seed 0 is also in the sweep: once
    none = chapter_runs.analysis_configs(ctx, "ABC", [1], [1], 0.9, [0])
    assert none.variants == [] and none.variant_strengths == {}
    with pytest.raises(LungclError, match="unknown Fisher variant"):
        chapter_runs.analysis_configs(ctx, "ABC", [1], [1], 0.9, [0], fisher_variants=["hessian"])
    norms = chapter_runs.analysis_configs(ctx, "ABC", [1], [1], 0.9, [0], normalisations=["update", "task", "group"],
                                      norm_methods=["sgd", "ewc"], norm_seeds=[0, 1])
    assert len(norms.normalisation) == 3 * 2 * 2 and not any(c.probes for c in norms.normalisation)
    assert norms.probed == norms.normalisation  # probed afterwards, from the runs' stage weights
    assert {(c.bn, c.norm) for c in norms.normalisation} == {("update", "batch"), ("task", "batch"), ("update", "group")}
    with pytest.raises(LungclError, match="unknown normalisation"):
        chapter_runs.analysis_configs(ctx, "ABC", [1], [1], 0.9, [0], normalisations=["layer"])
    # norm_methods None: the profile's table, SGD and EWC on cpu, all five methods on the paper profile
    for profile, methods in (("cpu", {"sgd", "ewc"}), ("paper", {"sgd", "l2", "ewc", "online_ewc", "joint"})):
        table = chapter_runs.analysis_configs(ChapterContext(profile, "phantom", 0, tmp_path / "d", tmp_path / "r"),
                                          "ABC", [1], [1], 0.9, [0], normalisations=["update", "group"])
        assert {c.method for c in table.normalisation} == methods
        assert len(table.normalisation) == 2 * len(methods) * 3
    smoke = chapter_runs.analysis_configs(ChapterContext("smoke", "phantom", 0, tmp_path / "d", tmp_path / "r"),
                                      "ABC", [1], [1], 0.9, [0], fisher_variants=["sampled"], variant_seeds=[4])
    assert not smoke.variant_tuned["sampled"] and {c.seed for c in smoke.variants} == {4}


def test_settings_table_shows_the_stopping_rule_and_the_steps_trained():
    recs = [make_record("sgd", ABC, steps=4, seed=0), make_record("sgd", ABC, steps=6, seed=1)]
    table = summaries.settings_table(recs)
    assert "patience" in table.index
    assert table.loc[summaries.STEPS_ROW, "SGD"] == "5, 5, 5"  # mean over the two runs, per stage
