"""No choice is read from test data: the benchmarks that justify a setting read validation only.

The rule, checked on the code's syntax tree (not on its text, so that comments and docstrings do not
count and a renamed variable is still seen): a benchmark *touches the test split* when its code holds
the split's name as a string (``"test"``, or a key such as ``"test_accuracy"``), an identifier or
attribute naming it (``test_bal``, ``r.test``), or the package's list of splits (``SPLITS``,
``SPLIT_NAMES``, which include it). Only the scripts in :data:`REPORTS_ONLY` may, each with the reason
it reports and chooses nothing; an entry that no longer touches the split is stale and fails too. A
profile comment that cites a benchmark as a setting's reason must cite one that touches no test split.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import tokenize
from pathlib import Path

import numpy as np
import pytest

from lungcl.data.splits import PatientSplit
from synthetic_records import make_record

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"

# scripts that read the test split to REPORT (a cost, a time), never to choose a setting
REPORTS_ONLY = {
    "paper_estimate.py": "counts the test split's nodules for the evaluation's FLOPs; reads no metric",
}

_TEST_WORD = re.compile(r"^(\w+_)?test(_\w+)?$", re.IGNORECASE)
_SPLIT_LISTS = {"SPLITS", "SPLIT_NAMES"}


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the constant nodes that are docstrings (module, class, function)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def test_split_touches(source: str) -> list[str]:
    """Where ``source`` names the test split (see the module docstring), as 'line N: what'."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        what = None
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            if _TEST_WORD.match(node.value.strip()):
                what = repr(node.value)
        elif isinstance(node, ast.Name) and (_TEST_WORD.match(node.id) or node.id in _SPLIT_LISTS):
            what = node.id
        elif isinstance(node, ast.Attribute) and (_TEST_WORD.match(node.attr) or node.attr in _SPLIT_LISTS):
            what = f".{node.attr}"
        elif isinstance(node, ast.keyword) and node.arg and _TEST_WORD.match(node.arg):
            what = f"{node.arg}="
        elif isinstance(node, ast.alias) and node.name.split(".")[-1] in _SPLIT_LISTS:
            what = f"import {node.name}"
        if what:
            found.append(f"line {getattr(node, 'lineno', '?')}: {what}")
    return found


test_split_touches.__test__ = False  # a helper, not a test


def test_the_rule_sees_every_way_of_naming_the_test_split():
    seen = test_split_touches(
        '"""A docstring may say test."""\n'
        "# a comment may say test\n"
        "from lungcl.experiments.evaluation import SPLITS as S\n"
        "a = r.accuracy_matrix('test', 'accuracy')\n"
        "b = {'test_bal': 1}\n"
        "c = row.test_accuracy\n"
        "test_curve = 1\n"
        "f(split_name='val', test_size=3)\n")
    assert sorted(seen, key=lambda s: int(s.split()[1].rstrip(":"))) == [
        "line 3: import SPLITS", "line 4: 'test'", "line 5: 'test_bal'", "line 6: .test_accuracy",
        "line 7: test_curve", "line 8: test_size="]
    assert test_split_touches("x = 'val'\nprint('its test patients left out')\ntests = 1\n") == []


@pytest.mark.parametrize("script", sorted(p.name for p in BENCHMARKS.glob("*.py")))
def test_no_benchmark_reads_the_test_split_unless_it_only_reports(script: str):
    touches = test_split_touches((BENCHMARKS / script).read_text())
    if script in REPORTS_ONLY:
        assert touches, f"{script} no longer touches the test split: remove it from REPORTS_ONLY"
    else:
        assert not touches, (f"benchmarks/{script} reads the test split ({'; '.join(touches)}): a benchmark "
                             "that justifies a choice must read validation only (or, if it only reports, "
                             "add it to REPORTS_ONLY with the reason)")


def test_the_reports_only_list_names_existing_scripts():
    assert set(REPORTS_ONLY) <= {p.name for p in BENCHMARKS.glob("*.py")}


def _comments(path: Path) -> list[str]:
    with path.open() as f:
        return [tok.string for tok in tokenize.generate_tokens(f.readline) if tok.type == tokenize.COMMENT]


def test_profile_comments_cite_only_benchmarks_that_read_validation():
    cited = {m for c in _comments(ROOT / "lungcl" / "profiles.py") for m in re.findall(r"benchmarks/(\w+\.py)", c)}
    assert "single_task_budget.py" in cited  # the cpu lr and patience are justified by it
    for script in cited:
        assert (BENCHMARKS / script).exists(), f"profiles.py cites benchmarks/{script}, which does not exist"
        assert script not in REPORTS_ONLY and not test_split_touches((BENCHMARKS / script).read_text()), \
            f"profiles.py justifies a setting with benchmarks/{script}, which reads the test split"


def _load(script: str):
    spec = importlib.util.spec_from_file_location(script.removesuffix(".py"), BENCHMARKS / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_budget_table_does_not_move_when_the_test_numbers_do():
    budget = _load("single_task_budget.py")
    rng = np.random.default_rng(0)
    rec = make_record("sgd", order="malignancy,lobulation", kind="single_task", steps=8)
    curves = rec.data["curves"]
    val = [s == "val" for s in curves["split"]]
    curves["loss"] = [float(v) for v in rng.uniform(0.3, 0.7, len(val))]
    curves["balanced_loss"] = [float(v) for v in rng.uniform(0.3, 0.7, len(val))]
    curves["balanced_accuracy"] = [float(v) for v in rng.uniform(0.5, 0.9, len(val))]
    before = budget.budget_table([rec], [2, None])
    assert before.equals(budget.budget_table([rec], [2, None], "balanced_loss"))  # the trainer's rule by default
    for k in ("loss", "balanced_loss", "accuracy", "balanced_accuracy", "auc"):  # scramble every test number
        curves[k] = [x if is_val else float(rng.uniform()) for x, is_val in zip(curves[k], val)]
    after = budget.budget_table([rec], [2, None])
    assert before.equals(after)
    assert not [c for c in before.columns if "test" in c]
    assert set(before.task) == {"malignancy", "lobulation"} and before.val_bal_kept.between(0.5, 0.9).all()


def test_development_patients_leave_the_test_part_out_and_the_folds_partition_the_rest():
    split = PatientSplit({f"p{i}": ("test" if i % 6 == 0 else f"fold{i % 5}") for i in range(60)}, seed=0)
    patients = np.array([f"p{i}" for i in range(60)] * 2)
    keep = split.development(patients)
    assert keep.sum() == 100 and not any(split.assignment[p] == "test" for p in patients[keep])
    difficulty = _load("phantom_difficulty.py")
    folds = difficulty.split_folds(split, patients[keep])
    held = np.concatenate([h for _, h in folds])
    assert len(folds) == 5 and sorted(held) == list(range(100))
    for train, held_out in folds:
        assert not set(patients[keep][train]) & set(patients[keep][held_out])
