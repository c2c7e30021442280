"""Chapter parameters checked before any work (lungcl.book.parameters), and the discussion reading the
runs the experiment chapters ask for with the same parameters (issue 26, items 3 and 4)."""

from __future__ import annotations

import ast
import math
import shlex
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lungcl.chapter import runs as chapter_runs
from lungcl.chapter.setup import chapter_setup
from lungcl.book.parameters import RULES, check_chapter_settings
from lungcl.errors import LungclError
from lungcl.project import chapter_sources
from lungcl.book.parameters_page import chapter_parameters

ROOT = Path(__file__).resolve().parents[1]
FIRST_FIVE = ("profile", "source", "data_dir", "results_dir", "seed")  # chapter_setup's positional ones
DISCUSSION, READ_BY_IT = "07_discussion", ("03_sequence_ABC", "04_task_orders", "05_analysis")
NOT_A_RUN_SETTING = {"workers"}  # how many runs at once: the same runs either way
# the sequence chapter's references (frozen trunk, joint): read by its own section only, not by the discussion,
# whose findings compare the thesis's three methods
NOT_READ_BY_THE_DISCUSSION = {"references"}


def declared() -> dict[str, dict[str, object]]:
    """Every chapter's parameters cell: chapter name -> {parameter: default value}."""
    return {src.stem: {name: ast.literal_eval(value) for name, value, _ in chapter_parameters(src)}
            for src in chapter_sources(ROOT)}


def setup_keywords(src: Path) -> set[str]:
    """The keyword arguments of the chapter's ``chapter_setup(...)`` call (``**d`` adds d's keys)."""
    tree = ast.parse(src.read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "chapter_setup"]
    assert len(calls) == 1, f"{src.name}: one chapter_setup call"
    names = {k.arg for k in calls[0].keywords if k.arg}
    for k in calls[0].keywords:
        if k.arg is None and isinstance(k.value, ast.Name):  # **analysis_parameters = dict(a=a, ...)
            assigned = next(n.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
                            and getattr(n.targets[0], "id", "") == k.value.id)
            names |= {kw.arg for kw in assigned.keywords}
    positional = [getattr(a, "id", None) for a in calls[0].args]
    assert positional == list(FIRST_FIVE), f"{src.name}: chapter_setup({', '.join(FIRST_FIVE)}, ...)"
    return names


def test_every_chapter_parameter_has_a_rule_its_default_passes():
    for chapter, params in declared().items():
        for name, default in params.items():
            assert name in RULES, f"{chapter}: no rule for parameter {name} in lungcl.book.parameters"
            check_chapter_settings({name: default})


def test_every_chapter_gives_chapter_setup_every_parameter_it_declares():
    """So a papermill -p value is checked by the chapter's first call, before it trains anything."""
    for src in chapter_sources(ROOT):
        names = {n for n, _, _ in chapter_parameters(src)}
        assert names - set(FIRST_FIVE) <= setup_keywords(src), src.name


@pytest.mark.parametrize("name, value, form", [
    ("epochs", 2.5, "integer >= 1"), ("epochs", "abc", "integer >= 1"), ("epochs", 0, "integer >= 1"),
    ("epochs", True, "integer >= 1"), ("seeds", 0, "list of distinct integers"),
    ("seeds", [-1], "integers >= 0"), ("seeds", [0, 0], "distinct"), ("seeds", [], "distinct"),
    ("seed", -1, "integer >= 0"), ("folds", [5], "0..4"), ("folds", 0, "list"),
    ("ewc_lambda", -1, "number >= 0"), ("ewc_lambda", math.inf, "number >= 0"),
    ("ewc_factors", [0], "numbers > 0"), ("online_gamma", 0, "(0, 1]"), ("frozen_bn", "yes", "True or False"),
    ("fisher_variants", "sampled", "list of names"), ("streams", "stream", "task or position"),
    ("workers", 0, "integer >= 1"), ("optimizer", "lbfgs", "adam or sgd"), ("method", [], "name"),
])
def test_a_wrong_form_is_one_line_naming_the_parameter_and_the_form(name, value, form):
    with pytest.raises(LungclError) as info:
        check_chapter_settings({name: value})
    message = str(info.value)
    assert message.startswith(f"chapter parameter {name}=") and form in message and "\n" not in message


def test_chapter_setup_refuses_a_papermill_value_of_the_wrong_form():
    with pytest.raises(LungclError, match=r"chapter parameter seeds=\[-1\]"):
        chapter_setup("smoke", "phantom", "data", "results", 0, seeds=[-1], epochs=None)
    with pytest.raises(LungclError, match="chapter parameter seed=-1"):
        chapter_setup("smoke", "phantom", "data", "results", -1)
    assert chapter_setup("smoke", "phantom", "data", "results", 0, seeds=[0, 2], epochs=3).seed == 0


# every form a --set / -p value can take: literals as lungcl book's --set reads them, and text
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 12), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
    st.lists(st.integers(-2, 6), max_size=4), st.lists(st.floats(-1, 20), max_size=3),
    st.lists(st.sampled_from(["sgd", "ewc", "sampled", "task", "group", "", "x"]), max_size=3),
    st.tuples(st.integers(0, 3)), st.dictionaries(st.text(max_size=2), st.integers(), max_size=1))
PARAMETERS = sorted({(chapter, name) for chapter, params in declared().items() for name in params})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PARAMETERS), VALUES)
def test_any_value_of_any_chapter_parameter_is_accepted_or_one_line(chapter_and_name, value):
    """The check a chapter and lungcl book make before any work: success or one LungclError line
    naming the parameter, never another exception."""
    chapter, name = chapter_and_name
    try:
        check_chapter_settings({name: value})
    except LungclError as exc:
        assert str(exc).startswith(f"chapter parameter {name}=") and "\n" not in str(exc)


EXPERIMENT_PARAMETERS = sorted(set(declared()[DISCUSSION]) - set(FIRST_FIVE))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(EXPERIMENT_PARAMETERS), VALUES)
def test_a_value_that_passes_the_check_builds_the_runs_or_is_one_line(name, value):
    """Past the form check, the experiment chapters' run lists are built (nothing trained) or a name
    is refused in one line: no TypeError or IndexError reaches a chapter."""
    params = {**declared()[DISCUSSION], name: value}
    try:
        check_chapter_settings({name: value})
        ctx = chapter_setup("smoke", "phantom", "data", "results", 0)
        analysis = {k: params[k] for k in declared()["05_analysis"] if k not in (*FIRST_FIVE, "workers", "tasks",
                                                                                 "epochs", "folds")}
        wanted, plan = chapter_runs.experiment_runs(ctx, params["tasks"], params["orders"], params["method"],
                                                params["folds"], epochs=params["epochs"],
                                                l2_lambda=params["l2_lambda"], ewc_lambda=params["ewc_lambda"],
                                                seeds=params["seeds"], streams=params["streams"], **analysis)
    except LungclError as exc:
        assert "\n" not in str(exc)
    else:
        assert wanted and plan.all


# ---------------------------------------------------------------- the discussion reads what the chapters ran

def test_the_discussion_declares_every_run_setting_of_the_chapters_it_reads_with_their_defaults():
    cells = declared()
    discussion = cells[DISCUSSION]
    for chapter in READ_BY_IT:
        for name, default in cells[chapter].items():
            if name in NOT_A_RUN_SETTING | NOT_READ_BY_THE_DISCUSSION:
                continue
            assert name in discussion, f"{DISCUSSION} does not declare {chapter}'s {name}"
            assert discussion[name] == default, f"{name}: {DISCUSSION} {discussion[name]!r}, {chapter} {default!r}"
    for name in discussion:
        assert name in FIRST_FIVE or any(name in cells[c] for c in READ_BY_IT), \
            f"{DISCUSSION} declares {name}, which none of {', '.join(READ_BY_IT)} has"


def test_the_discussion_asks_for_exactly_the_runs_the_chapters_ask_for_under_the_quick_settings():
    """The README's quick build: the run lists the discussion builds are those chapters 03, 04 and 05
    build with the same --set values (here without training: the configurations only)."""
    from lungcl.cli.book import parse_chapter_settings

    line = next(ln for ln in (ROOT / "README.md").read_text().splitlines()
                if ln.startswith("lungcl book --set epochs="))
    words = shlex.split(line)[2:]
    quick = parse_chapter_settings([w for w in words[1::2]])
    assert words[0::2] == ["--set"] * len(words[1::2]) and "fisher_variants" in quick
    ctx = chapter_setup("smoke", "phantom", "data", "results", 0)
    p = {**declared()[DISCUSSION], **quick}
    analysis = {k: p[k] for k in declared()["05_analysis"] if k not in (*FIRST_FIVE, "workers", "tasks", "epochs",
                                                                        "folds")}
    wanted, plan = chapter_runs.experiment_runs(ctx, p["tasks"], p["orders"], p["method"], p["folds"],
                                            epochs=p["epochs"], l2_lambda=p["l2_lambda"],
                                            ewc_lambda=p["ewc_lambda"], seeds=p["seeds"], streams=p["streams"],
                                            **analysis)
    sequence = chapter_runs.sequence_configs(ctx, ["ABC"], chapter_runs.THESIS_METHODS, [0], epochs=2, seeds=[0])
    orders = chapter_runs.sequence_configs(ctx, chapter_runs.parse_orders("all"), chapter_runs.THESIS_METHODS, [0], epochs=2,
                                       streams="task")
    analysed = chapter_runs.analysis_configs(ctx, "ABC", [0.1, 1, 10], [0.1, 1, 10], 0.9, [0], epochs=2,
                                         fisher_variants=[], normalisations=[])
    assert {c.run_id for c in wanted} == {c.run_id for c in sequence + orders}
    assert {c.run_id for c in plan.all} == {c.run_id for c in analysed.all}
    assert not plan.variants and not plan.normalisation


def test_a_chapter_whose_every_run_failed_says_so_in_one_sentence(monkeypatch):
    """Instead of the IndexError of ``records[0]`` in the chapter's next line."""
    from lungcl.experiments import GridOutcome, default_config

    configs = [default_config("smoke", method=m) for m in ("sgd", "ewc")]
    failed = GridOutcome(errors={c.run_id: "diverged at step 3" for c in configs},
                         configs={c.run_id: c for c in configs})
    monkeypatch.setattr(chapter_runs, "execute_grid", lambda *a, **k: failed)
    with pytest.raises(LungclError, match=r"every one of the chapter's 2 run\(s\) failed, e.g. ABC sgd .*: "
                                          "diverged at step 3") as info:
        chapter_runs.run_configs(configs, "results", allow_failures=True)
    assert "\n" not in str(info.value)
    one = GridOutcome(records=["a record"], errors={configs[1].run_id: "diverged"},
                      configs={c.run_id: c for c in configs})
    monkeypatch.setattr(chapter_runs, "execute_grid", lambda *a, **k: one)
    assert list(chapter_runs.run_configs(configs, "results", allow_failures=True).failed) == [configs[1].run_id]
