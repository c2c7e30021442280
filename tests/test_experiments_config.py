"""RunConfig: profiles, the content hash (run id), --set parsing and validation."""

from __future__ import annotations

import pytest

from lungcl.errors import LungclError
from lungcl.experiments.config import (RunConfig, canonical_json, default_config, default_strength,
                                       parse_overrides)


def test_run_id_is_a_content_hash_of_what_changes_results():
    a = default_config("cpu", tasks="ABC", method="ewc")
    assert a.run_id == default_config("cpu", tasks="malignancy,lobulation,calcification", method="ewc").run_id
    assert a.run_id == default_config("cpu", tasks="ABC", method="ewc", data_dir="/elsewhere").run_id
    assert a.run_id != default_config("cpu", tasks="BAC", method="ewc").run_id
    assert a.run_id != default_config("cpu", tasks="ABC", method="ewc", strength=a.strength + 1).run_id
    assert a.run_id != default_config("cpu", tasks="ABC", method="ewc", seed=1).run_id
    assert "data_dir" not in canonical_json(a) and '"config_version"' in canonical_json(a)
    assert len(a.run_id) == 16 and int(a.run_id, 16) >= 0


def test_settings_a_method_ignores_do_not_split_run_ids():
    assert default_config("cpu", method="sgd", strength=5.0).run_id == default_config("cpu", method="sgd").run_id
    assert default_config("cpu", method="ewc", gamma=0.5).gamma == 1.0
    assert default_config("cpu", method="online_ewc", gamma=0.5).gamma == 0.5
    assert default_config("cpu", lr=1).run_id == default_config("cpu", lr=1.0).run_id


def test_profiles_fill_training_settings_and_lambda_per_method():
    smoke, cpu, paper = (default_config(p) for p in ("smoke", "cpu", "paper"))
    assert smoke.depth == 10 and smoke.max_steps_per_epoch is not None
    assert paper.depth == 101 and paper.device == "auto"
    assert cpu.epochs >= 1 and cpu.depth == 10
    assert default_config("cpu", method="ewc").strength == default_strength("cpu", "ewc") > 0
    assert default_config("cpu", method="ewc", strength=3.0).strength == 3.0


def test_dict_round_trip():
    c = default_config("smoke", tasks="spiculation,margin", method="l2", strength=2.5, patience=3)
    assert RunConfig.from_dict(c.to_dict()) == c
    with pytest.raises(LungclError, match="unknown configuration fields"):
        RunConfig.from_dict({**c.to_dict(), "bogus": 1})


def test_set_overrides_are_typed():
    got = parse_overrides(["lr=0.1", "epochs=20", "patience=none", "amp=true", "tasks=BAC", "device=cpu"])
    assert got == {"lr": 0.1, "epochs": 20, "patience": None, "amp": True,
                   "tasks": ("lobulation", "malignancy", "calcification"), "device": "cpu"}
    assert type(got["epochs"]) is int and type(got["lr"]) is float


@pytest.mark.parametrize("item, message", [
    ("nosuchkey=1", "unknown setting 'nosuchkey'"),
    ("epochs=1.5", "expected int"),
    ("lr=fast", "expected float"),
    ("amp=maybe", "expected bool"),
    ("patience=soon", "expected int or none"),
    ("lr", "expects key=value"),
    ("tasks=XYZ", "unknown tasks"),
])
def test_bad_set_is_a_clear_error(item, message):
    with pytest.raises(LungclError, match=message):
        parse_overrides([item])


@pytest.mark.parametrize("overrides, message", [
    (dict(method="adam"), "unknown method 'adam'"),
    (dict(method="ewc", strength=-1.0), "lambda"),
    (dict(fold=5), "fold must be 0..4"),
    (dict(depth=20), "depth must be one of"),
    (dict(tasks="ABQ"), "unknown tasks"),
    (dict(tasks="AA"), "names a task twice"),
    (dict(kind="single_task", method="ewc"), "single-task"),
    (dict(device="tpu"), "device"),
    (dict(device="cudax"), "device must be auto, cpu, cuda or cuda:N"),
    (dict(device="cpu", amp=True), "amp=true is mixed precision on CUDA"),
    (dict(seed=-1), "seed must be an integer >= 0"),
    (dict(split_seed=-1), "split_seed must be an integer >= 0"),
    (dict(epochs=0), "epochs must be >= 1"),
    (dict(weight_decay=float("inf")), "weight_decay must be a finite number, got inf"),
    (dict(lr=float("inf")), "lr must be a finite number"),
    (dict(method="ewc", momentum=float("nan")), "momentum must be a finite number"),
    (dict(nonsense=1), "unknown setting"),
])
def test_bad_config_is_a_clear_error(overrides, message):
    with pytest.raises(LungclError, match=message):
        default_config("smoke", **overrides)
    with pytest.raises(LungclError):
        default_config("huge")


def test_settings_added_later_keep_old_run_ids_at_their_neutral_value():
    base = default_config("smoke", tasks="ABC", method="ewc")
    assert "freeze_bn_stats" not in canonical_json(base)
    frozen = base.replace(freeze_bn_stats=True)
    assert '"freeze_bn_stats":true' in canonical_json(frozen) and frozen.run_id != base.run_id
    old_record_config = {k: v for k, v in base.to_dict().items() if k != "freeze_bn_stats"}
    assert RunConfig.from_dict(old_record_config).run_id == base.run_id


def test_run_id_follows_the_data_version():
    c = default_config("cpu", method="ewc")
    assert c.run_id == c.id_for(c.data_version) and c.data_version.startswith("phantom-")
    assert c.id_for("phantom-1/store1") != c.id_for("phantom-2/store1") != c.id_for(None)


def test_fisher_setting_defaults_to_exact_and_old_records_still_load():
    for profile in ("smoke", "cpu", "paper"):
        assert default_config(profile, method="ewc").fisher == "exact"
    assert parse_overrides(["fisher=batched"]) == {"fisher": "batched"}
    ewc = default_config("cpu", method="ewc")
    assert ewc.run_id != ewc.replace(fisher="sampled").run_id
    assert default_config("cpu", method="l2", fisher="sampled").fisher == "exact"  # unused: no id split
    with pytest.raises(LungclError, match="fisher must be one of"):
        default_config("cpu", method="ewc", fisher="true")
    old = {k: v for k, v in ewc.to_dict().items() if k != "fisher"}
    assert RunConfig.from_dict({**old, "empirical_fisher": False}).fisher == "sampled"
    assert RunConfig.from_dict({**old, "empirical_fisher": True}).fisher == "empirical"


def test_momentum_must_leave_the_proximal_step_defined():
    with pytest.raises(LungclError, match="momentum"):
        default_config("cpu", momentum=1.0)
