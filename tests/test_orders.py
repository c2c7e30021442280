"""The one vocabulary of task orders and methods: labels, parsing, checks."""

from __future__ import annotations

import pytest

from lungcl.data.tasks import THESIS_ORDERS
from lungcl.errors import LungclError
from lungcl.methods import METHODS, check_method, check_strength, parse_methods
from lungcl.orders import order_label, order_tasks, parse_orders, thesis_order


def test_order_label_and_its_inverse():
    for order in THESIS_ORDERS + ("A", "BA"):
        assert order_label(order_tasks(order)) == order
    assert order_label(["spiculation", "margin"]) == "spiculation,margin"
    assert order_tasks("spiculation,margin") == ["spiculation", "margin"]


def test_thesis_order_only_for_the_three_thesis_tasks():
    assert thesis_order(["calcification", "malignancy", "lobulation"]) == "CAB"
    assert thesis_order("CBA") == "CBA"
    assert thesis_order(["malignancy", "lobulation"]) is None
    assert thesis_order("spiculation,margin,texture") is None


def test_parse_orders_has_one_meaning():
    assert parse_orders("all") == list(THESIS_ORDERS)
    assert parse_orders("ABC, CBA") == ["ABC", "CBA"]
    assert parse_orders("spiculation,margin,texture") == ["spiculation,margin,texture"]
    assert parse_orders("spiculation,margin;margin,spiculation") == ["spiculation,margin", "margin,spiculation"]
    assert parse_orders(["ABC", "texture,margin"]) == ["ABC", "texture,margin"]
    for bad in ("", "ABD", "spiculation,wrong", "ABA"):
        with pytest.raises(LungclError):
            parse_orders(bad)


def test_method_vocabulary_checks():
    assert parse_methods("all") == ["sgd", "l2", "ewc"]
    assert parse_methods("ewc, sgd,ewc") == ["ewc", "sgd"]
    assert check_method("joint") == "joint" and "online_ewc" in METHODS
    with pytest.raises(LungclError, match="unknown method"):
        check_method("adam")
    assert check_strength(3) == 3.0
    for bad in (-1.0, float("nan")):
        with pytest.raises(LungclError, match="lambda must be >= 0"):
            check_strength(bad)
