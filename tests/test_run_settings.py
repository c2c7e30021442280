"""Run settings checked before any work (issue 26, item 4): any --set value of any setting of
``lungcl run`` / ``lungcl mtl`` ends in a configuration or in one LungclError line, never a traceback;
a few real CLI calls show exit 2, the one line, and that nothing was computed."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lungcl.cli.common import RUN_FLAGS, refuse_flagged
from lungcl.cli.experiments import FLAGS
from lungcl.cli.main import main
from lungcl.cli.mtl import MTL_FLAGS
from lungcl.errors import LungclError
from lungcl.experiments.config import RunConfig, default_config, parse_overrides
from lungcl.mtl.config import MTLConfig, default_mtl_config, parse_mtl_overrides

RUN_FIELDS = sorted(f.name for f in dataclasses.fields(RunConfig))
MTL_FIELDS = sorted(f.name for f in dataclasses.fields(MTLConfig))
TEXTS = st.one_of(
    st.sampled_from(["-1", "0", "1", "2.5", "abc", "none", "true", "false", "inf", "nan", "1e309", "[0]", "cuda",
                     "cuda:0", "cuda:7", "cudax", "cpu", "auto", "ABC", "all", "ewc", "group", "task", ""]),
    st.integers(-10, 10**6).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=6))


def run_config_from_set(name: str, text: str) -> RunConfig:
    """What ``lungcl run --profile smoke --set NAME=TEXT`` checks before it trains: a pure function."""
    overrides = parse_overrides([f"{name}={text}"])
    refuse_flagged(overrides, {**RUN_FLAGS, "lidc_root": "--lidc-root", **FLAGS["run"]})
    return default_config("smoke", **overrides)


def mtl_config_from_set(name: str, text: str) -> MTLConfig:
    """What ``lungcl mtl --profile smoke --set NAME=TEXT`` checks before it trains."""
    overrides = parse_mtl_overrides([f"{name}={text}"])
    refuse_flagged(overrides, MTL_FLAGS)
    return default_mtl_config("smoke", **overrides)


SETTINGS = [(run_config_from_set, name) for name in RUN_FIELDS] + [(mtl_config_from_set, name) for name in MTL_FIELDS]


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SETTINGS), TEXTS)
def test_any_set_value_of_a_run_or_multitask_setting_is_a_config_or_one_line(setting, text):
    build, name = setting
    try:
        config = build(name, text)
    except LungclError as exc:
        assert "\n" not in str(exc) and str(exc)
    else:
        assert config.seed >= 0 and config.split_seed >= 0 and config.epochs >= 1
        assert not getattr(config, "amp", False) or torch.cuda.is_available()


@pytest.mark.parametrize("command, flag", [("run", "--profile"), ("grid", "--profile"), ("tune", "--profile"),
                                           ("sweep-lambda", "--profile"), ("mtl", "--profile"),
                                           ("run", "--method"), ("grid", "--seeds"), ("mtl", "--seed")])
def test_a_setting_with_its_own_flag_is_refused_in_set_naming_the_flag(command, flag):
    setting = {"--profile": "profile=paper", "--method": "method=ewc", "--seeds": "seed=1", "--seed": "seed=1"}[flag]
    extra = ["--values", "1"] if command == "sweep-lambda" else []
    with pytest.raises(LungclError, match=f"is set with {flag}, not --set"):
        from lungcl.cli.main import build_parser

        args = build_parser().parse_args([command, *extra, "--set", setting])
        args.func(args)


@pytest.mark.parametrize("argv, line", [
    (["run", "--set", "profile=paper"], "profile is set with --profile, not --set"),
    (["mtl", "--set", "profile=paper"], "profile is set with --profile, not --set"),
    (["grid", "--seeds=-1"], "seed must be an integer >= 0, got -1"),
    (["run", "--seed", "-1"], "seed must be an integer >= 0, got -1"),
    (["run", "--set", "split_seed=-1"], "split_seed must be an integer >= 0, got -1"),
    (["run", "--set", "device=cudax"], "device must be auto, cpu, cuda or cuda:N, got 'cudax'"),
    (["run", "--set", "device=cpu", "--set", "amp=true"], "amp=true is mixed precision on CUDA"),
    (["book", "--set", "seeds=[-1]"], "chapter parameter seeds=[-1]: expected None or a list of distinct integers"),
    (["book", "--set", "epochs=2.5"], "chapter parameter epochs=2.5: expected None or an integer >= 1"),
    (["book", "--set", "seeds=0"], "chapter parameter seeds=0"),
    (["book", "--seed", "-1"], "chapter parameter seed=-1: expected an integer >= 0"),
])
def test_a_bad_setting_is_exit_2_and_one_line_before_any_work(argv, line, tmp_path, capsys):
    folders = ["--results", str(tmp_path / "results"), "--data-dir", str(tmp_path / "data")]
    code = main([argv[0], "--profile", "smoke", *folders, *argv[1:]])
    err = capsys.readouterr().err
    assert code == 2 and err == f"lungcl: error: {err.split('error: ', 1)[1]}" and len(err.splitlines()) == 1
    assert line in err
    assert not (tmp_path / "results").exists() and not (tmp_path / "data").exists()  # nothing computed


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a torch without CUDA")
@pytest.mark.parametrize("setting, line", [
    ("device=cuda", "device=cuda: this torch sees 0 CUDA device(s)"),
    ("amp=true", "amp=true is mixed precision on CUDA and this torch sees no CUDA device"),
])
def test_cuda_settings_on_a_torch_without_cuda_are_one_line(setting, line, tmp_path, capsys):
    code = main(["run", "--profile", "smoke", "--results", str(tmp_path / "r"), "--set", setting])
    err = capsys.readouterr().err
    assert code == 2 and line in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_data_summary_refuses_a_negative_split_seed_before_reading_anything(tmp_path, capsys):
    code = main(["data", "summary", "--split-seed", "-1", "--data-dir", str(tmp_path / "data")])
    err = capsys.readouterr().err
    assert code == 2 and err == "lungcl: error: --split-seed must be an integer >= 0, got -1\n"
    assert not (tmp_path / "data").exists()
