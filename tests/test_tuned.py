"""The cpu profile's default lambdas are the picks of the shipped tune records (chosen on validation)."""

from __future__ import annotations

import pytest

from lungcl.experiments.config import CONFIG_VERSION, RunConfig, default_config, default_strength
from lungcl.selection import DEFAULT_SELECT
from lungcl.experiments.tuned import reference_tune, reference_tunes
from lungcl.errors import LungclError
from lungcl.plots.tuning import tune_curves


@pytest.mark.parametrize("method", ["l2", "ewc", "online_ewc"])
def test_cpu_default_lambda_is_the_shipped_validation_pick(method):
    record = reference_tune("cpu", method)
    assert record["split"] == "val" and record["profile"] == "cpu" and record["method"] == method
    assert record["pick"]["strength"] == default_strength("cpu", method)
    values = [p["strength"] for p in record["curve"]]
    assert len(values) >= 6 and max(values) / min(values) >= 1e5  # >= 6 values over >= 5 decades
    assert not record["at_grid_edge"]
    best = max(p["criterion"] for p in record["curve"] if p["criterion"] is not None)
    assert record["pick"]["criterion"] == best
    if (record.get("config_version"), record.get("select")) == (CONFIG_VERSION, DEFAULT_SELECT):
        # a tune of today's runs: its criterion is a mean over >= 3 seeds (#24); an older one is named as such
        # under the analysis chapter's tune figure (test_a_shipped_tune_is_of_the_configuration_the_book_runs)
        assert len(record["seeds"]) >= 3


@pytest.mark.parametrize("method", ["l2", "ewc"])
def test_the_l2_and_ewc_tunes_are_today_s_over_three_seeds(method):
    record = reference_tune("cpu", method)
    assert (record["config_version"], record["select"]) == (CONFIG_VERSION, DEFAULT_SELECT)
    assert record["seeds"] == [0, 1, 2] and all(len(p["per_seed"]) == 3 for p in record["curve"])


def test_missing_tune_record_is_a_clear_error():
    with pytest.raises(LungclError, match="no shipped tune record"):
        reference_tune("paper", "ewc")


def test_tune_curves_draws_one_panel_per_method():
    fig = tune_curves(reference_tunes("cpu"))
    assert len(fig.axes) == 3
    assert all(ax.get_xscale() == "log" for ax in fig.axes)


@pytest.mark.parametrize("variant", ["sampled", "empirical", "batched"])
def test_each_fisher_variant_has_its_own_validation_pick(variant):
    from lungcl.experiments.tuned import variant_tunes

    record = variant_tunes("cpu", [variant])[variant]
    assert record["split"] == "val" and record["method"] == "ewc"
    assert record["base_config"]["fisher"] == variant
    values = [p["strength"] for p in record["curve"]]
    assert len(values) >= 5 and max(values) / min(values) >= 1e4 and not record["at_grid_edge"]
    assert record["pick"]["criterion"] == max(p["criterion"] for p in record["curve"] if p["criterion"] is not None)
    fig = tune_curves([record])
    assert variant in fig.axes[0].get_title()


def test_a_variant_without_a_shipped_tune_is_skipped_or_a_clear_error():
    from lungcl.experiments.tuned import variant_tunes

    assert variant_tunes("smoke", ["sampled"]) == {}
    with pytest.raises(LungclError, match="--set fisher=sampled"):
        reference_tune("smoke", "ewc", "sampled")


@pytest.mark.parametrize("method,fisher", [("l2", "exact"), ("ewc", "exact"), ("online_ewc", "exact"),
                                           ("ewc", "sampled"), ("ewc", "empirical"), ("ewc", "batched")])
def test_a_shipped_tune_is_of_the_configuration_the_book_runs(method, fisher):
    """The curve was measured on the runs the defaults now make (e.g. with the current data streams), in every
    setting but the two a tune record names beside its configuration: the configuration version and the
    checkpoint rule. Where those differ from today's, the analysis chapter says so in a computed sentence."""
    from lungcl.chapter.tune_provenance import tune_provenance_sentence
    from lungcl.experiments.config import CONFIG_VERSION
    from lungcl.experiments.tuned import tuned_under

    record = reference_tune("cpu", method, fisher)
    version, select = tuned_under(record)
    tuned = RunConfig.from_dict({**record["base_config"], "select": select})
    now = default_config("cpu", method=method, fisher=fisher).replace(strength=0.0)
    # (data_dir is not in the run id; curve_every, the cpu profile's 8 since the tunes, records fewer curve points
    # between evaluations and changes no kept checkpoint or table cell: tests/test_curve_cadence.py)
    assert tuned.replace(select=now.select, curve_every=now.curve_every).run_id == now.run_id
    sentence = tune_provenance_sentence([record], now)
    if (version, select) == (CONFIG_VERSION, now.select):
        assert sentence is None
    else:
        assert f"under version {version} with the" in sentence and f"`select={select}`" in sentence
        assert f"configuration version {CONFIG_VERSION}" in sentence and f"`select={now.select}`" in sentence


def test_a_tune_record_names_its_version_and_rule_and_old_ones_read_as_version_3_with_loss():
    from lungcl.chapter.tune_provenance import tune_provenance_sentence
    from lungcl.experiments.config import CONFIG_VERSION
    from lungcl.experiments.tuned import stale_tunes, tuned_under

    shipped = reference_tune("cpu", "ewc")
    old = {k: v for k, v in shipped.items() if k not in ("config_version", "select")}  # as written before version 4
    assert tuned_under(old) == (3, "loss")
    current = {**old, "config_version": CONFIG_VERSION, "select": "balanced_loss"}
    now = default_config("cpu", method="ewc")
    assert stale_tunes([old, current], now) == [old]
    assert tune_provenance_sentence([current], now) is None
    assert "of EWC under version 3" in tune_provenance_sentence([old, current], now)
    assert stale_tunes([current], now.replace(select="auc")) == [current]


def test_a_tune_of_other_training_settings_is_named_as_such():
    """A book re-run with another learning rate (``--set lr=0.005``) does not run the tunes' configuration:
    the analysis chapter's sentence says which setting differs, with both values, instead of "made under
    this book's rules"."""
    from lungcl.chapter.tune_provenance import tune_provenance_sentence
    from lungcl.experiments.tuned import stale_tunes, tuned_settings_differ

    shipped = reference_tune("cpu", "ewc")
    now = default_config("cpu", method="ewc")
    assert tuned_settings_differ(shipped, now) == {}
    moved = now.replace(lr=now.lr / 2, patience=3)
    assert tuned_settings_differ(shipped, moved) == {"lr": (now.lr, now.lr / 2), "patience": (now.patience, 3)}
    assert stale_tunes([shipped], moved) == [shipped]
    sentence = tune_provenance_sentence([shipped], moved)
    assert f"lr {now.lr:g} (here {now.lr / 2:g})" in sentence and f"patience {now.patience} (here 3)" in sentence
    assert tune_provenance_sentence([shipped], now.replace(seed=2, tasks="BAC")) is None  # neither is a tune setting
