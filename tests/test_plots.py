"""Every figure of the experiment chapters, drawn from in-memory records: the right panels, the thesis
marked where it has the number, and nothing drawn where it has none."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from lungcl import plots, summaries, thesis  # noqa: E402
from lungcl.errors import LungclError  # noqa: E402
from synthetic_records import make_record, sequence_state  # noqa: E402

ABC = "malignancy,lobulation,calcification"


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def abc_records(order: str = ABC) -> list:
    R = np.array([[0.9, 0.5, 0.5], [0.8, 0.85, 0.5], [0.7, 0.75, 0.95]])
    return [make_record(m, order, R=R - 0.02 * k) for k, m in enumerate(("sgd", "l2", "ewc"))]


def diamonds(fig: Figure) -> int:
    """Hollow thesis diamonds drawn (scatter collections with the diamond marker)."""
    n = 0
    for ax in fig.axes:
        for coll in ax.collections:
            paths = coll.get_paths()
            if len(paths) and len(paths[0].vertices) == 5 and coll.get_facecolor().size \
                    and np.allclose(coll.get_facecolor()[0][:3], 1.0):
                n += int(np.isfinite(np.asarray(coll.get_offsets())).all(axis=1).sum())
    return n


def test_accuracy_curves_one_panel_per_task_with_stage_lines_and_thesis():
    fig = plots.accuracy_curves(abc_records())
    assert isinstance(fig, Figure)
    axes = [ax for ax in fig.axes if ax.get_ylabel()]
    assert len(axes) == 3
    assert axes[0].get_ylabel() == "A malignancy"
    # two dashed stage boundaries per panel
    dashed = [ln for ln in axes[1].get_lines() if ln.get_linestyle() == "--"]
    assert len(dashed) == 2
    # thesis diamonds at the end of every stage a task has seen: 3 + 2 + 1 per method
    assert diamonds(fig) == 6 * 3
    # a task is not drawn before its own stage: the C panel's method lines start at stage 3
    c_lines = [ln for ln in axes[2].get_lines() if ln.get_linestyle() == "-" and len(ln.get_xdata()) > 1]
    assert c_lines and min(min(ln.get_xdata()) for ln in c_lines) == 8


def test_curves_without_thesis_for_other_tasks_and_one_order_at_a_time():
    fig = plots.accuracy_curves(abc_records("spiculation,margin,texture"))
    assert diamonds(fig) == 0
    with pytest.raises(LungclError, match="one order at a time"):
        plots.accuracy_curves(abc_records() + abc_records("calcification,lobulation,malignancy"))


def test_matrix_heatmaps_ours_and_the_thesis():
    fig = plots.matrix_heatmaps(abc_records())
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["ours: SGD", "ours: L2", "ours: EWC", "thesis: SGD", "thesis: L2", "thesis: EWC"]
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["90.0", "80.0", "85.0", "70.0", "75.0", "95.0"]  # lower triangle only
    th = thesis.thesis_matrix("ABC", "ewc").to_numpy()
    assert fig.axes[5].texts[0].get_text() == f"{100 * th[0, 0]:.1f}"
    single = plots.matrix_heatmaps(abc_records("spiculation,margin,texture"))
    assert len(single.axes) == 3


def test_metric_bars_with_intervals_thesis_and_reference():
    table = thesis.stage_table_with_thesis(abc_records())
    fig = plots.metric_bars(table, metrics=("accuracy", "sensitivity"),
                            reference={"accuracy": {"malignancy": 0.8}})
    assert len(fig.axes) == 3 * 2  # stages x metrics
    # accuracy after stage 1: one bar per method, with the thesis's values as diamonds
    ax = fig.axes[0]
    assert len([p for p in ax.patches if p.get_height() > 0]) == 3
    assert diamonds(fig) == 2 * 6 * 3  # two metrics, six (stage, task) cells, three methods
    assert len(ax.collections) >= 1  # reference tick or error bars
    last = plots.metric_bars(table, metrics=("balanced_accuracy",), stages=[-1])
    assert len(last.axes) == 1 and diamonds(last) == 0  # no thesis balanced accuracy


def test_single_task_bars_and_training_curves():
    recs = [make_record(kind="single_task", order=t, R=np.array([[v]]))
            for t, v in (("malignancy", 0.8), ("lobulation", 0.9))]
    table = thesis.single_task_with_thesis(recs)
    fig = plots.single_task_bars(table, majority={"malignancy": 0.85})
    assert [ax.get_title() for ax in fig.axes] == ["malignancy", "lobulation"]
    assert diamonds(fig) == 2
    curves = plots.training_curves(recs)
    assert len(curves.axes) == 2
    assert len(curves.axes[0].get_lines()) == 3 * 2 + 1  # metrics x splits + majority line
    with pytest.raises(LungclError):
        plots.training_curves(abc_records())


def test_transfer_order_and_position_figures():
    recs = abc_records() + abc_records("calcification,lobulation,malignancy")
    tr = thesis.transfer_with_thesis(recs)
    fig = plots.transfer_bars(tr, order="ABC")
    assert [ax.get_title() for ax in fig.axes] == ["average final accuracy", "forgetting of malignancy",
                                                   "forgetting of lobulation", "backward transfer (BWT)"]
    with pytest.raises(LungclError, match="one task order"):
        plots.transfer_bars(tr)
    fig = plots.order_comparison(tr)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["ABC", "CBA"]
    assert diamonds(fig) == 2 * 2 * 3
    pos = plots.position_effect(thesis.positions_with_thesis(recs))
    assert [ax.get_title() for ax in pos.axes] == ["malignancy", "lobulation", "calcification"]


def test_lambda_tradeoff_marks_failed_runs():
    R = np.array([[0.9, 0, 0], [0.8, 0.85, 0], [0.7, 0.75, 0.95]])
    recs = [make_record("sgd", ABC, R=R)] + [make_record("ewc", ABC, R=R + d, strength=lam)
                                            for lam, d in ((10, 0.01), (100, 0.02))]
    table = summaries.tradeoff_table(recs)
    assert table.set_index("strength").loc[100.0, "old"] == pytest.approx((0.72 + 0.77) / 2)
    fig = plots.lambda_tradeoff(table, failed={("ewc", 1000.0): "diverged"})
    assert len(fig.axes) == 2  # the EWC sweep and the trade-off plane
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    crosses = [c for c in ax.collections if len(c.get_offsets()) and c.get_offsets()[0][0] == 1000.0]
    assert crosses


def test_fisher_tables_and_figure():
    tasks = ["malignancy", "lobulation"]
    model, method = sequence_state(tasks)
    fisher = summaries.fisher_layer_table(method)
    assert np.allclose(fisher.groupby("task").share.sum(), 1.0)
    labels = list(dict.fromkeys(fisher.label))
    assert labels[0] == "stem" and labels[1] == "block 1" and "final norm" in labels
    assert "head malignancy" in labels
    anchor = summaries.ewc_anchor(method, "malignancy")
    same = summaries.layer_drift_table({"ewc": anchor}, anchor)
    assert np.allclose(same.drift, 0.0)
    moved = {k: v * 1.1 for k, v in anchor.items()}
    drift = summaries.layer_drift_table({"sgd": moved, "ewc": anchor}, anchor)
    assert np.allclose(drift[drift.model == "sgd"].drift, 0.1)
    fig = plots.fisher_per_layer(fisher, drift)
    assert len(fig.axes) == 3
    assert len(plots.fisher_per_layer(fisher).axes) == 2
    with pytest.raises(LungclError, match="no Fisher"):
        summaries.fisher_layer_table({"task/0/malignancy": anchor["trunk.0.weight"].new_tensor(0)})  # SGD
    with pytest.raises(LungclError, match="no EWC anchor"):
        summaries.ewc_anchor(method, "texture")


def test_accuracy_curves_align_runs_whose_stages_stopped_at_different_steps():
    recs = [make_record("sgd", steps=4, seed=0), make_record("sgd", steps=6, seed=1)]
    fig = plots.accuracy_curves(recs, thesis=False)
    # the dashed stage boundaries sit after the longest run's stages: 6 and 12 steps
    xs = sorted({round(float(line.get_xdata()[0]), 6) for line in fig.axes[0].lines if line.get_linestyle() == "--"})
    assert xs == [6.0, 12.0]
    plt.close(fig)
