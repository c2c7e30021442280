"""Binarisation rules and task names."""

import numpy as np
import pytest

from lungcl.data.tasks import DEFAULT_RULES, TaskRule, make_task, resolve_tasks
from lungcl.errors import LungclError


def test_default_rule_drops_three_and_ties():
    rule = TaskRule()
    got = rule.label(np.array([1, 2, 2.5, 3, 3.5, 4, 5]))
    assert got.tolist() == [0, 0, -1, -1, -1, 1, 1]


def test_calcification_rule_is_calcified_vs_absent():
    rule = DEFAULT_RULES["calcification"]
    assert rule.label(np.array([1, 3, 5, 5.5, 6])).tolist() == [1, 1, 1, -1, 0]


def test_reference_class_sizes(nodules):
    counts = {t.name: np.bincount(t.labels(nodules)[t.labels(nodules) >= 0], minlength=2).tolist()
              for t in resolve_tasks("ABC")}
    assert counts["malignancy"] == [875, 377]
    assert counts["lobulation"] == [2226, 111]
    assert counts["calcification"] == [2322, 317]


def test_names_letters_and_errors():
    assert [t.name for t in resolve_tasks("CAB")] == ["calcification", "malignancy", "lobulation"]
    assert [t.name for t in resolve_tasks("spiculation,margin,texture")] == ["spiculation", "margin", "texture"]
    assert len(resolve_tasks("all")) == 9
    assert make_task("A").letter == "A"
    for bad in ("ABD", "spiculation,foo", "", "AA"):
        with pytest.raises(LungclError):
            resolve_tasks(bad)


def test_rule_is_a_setting():
    rule = TaskRule.parse("pos=3-5,neg=1-2")
    assert rule.label(np.array([3.0])).tolist() == [1]
    assert resolve_tasks("A", {"malignancy": rule})[0].labels(
        {"malignancy": np.array([3.0, 1.0])}).tolist() == [1, 0]
    with pytest.raises(LungclError):
        TaskRule.parse("positive four")
    with pytest.raises(LungclError):
        TaskRule.parse("pos=1-4,neg=3-5").label(np.array([3.0]))
