"""Task orders: how a sequence of tasks is named ("ABC"), parsed from text, and recognised as the thesis's.

One vocabulary for the whole package: a run's label and record, the tables, the
figures and the CLI all name an order with :func:`order_label` and read one with
:func:`parse_orders`.
"""

from __future__ import annotations

from collections.abc import Sequence

from .data.tasks import THESIS_LETTERS, THESIS_ORDERS, resolve_tasks
from .errors import LungclError

_LETTER = {name: letter for letter, name in THESIS_LETTERS.items()}


def order_label(tasks: Sequence[str]) -> str:
    """``ABC`` when every task is one of the thesis's (A, B, C; any number of them), else the names
    joined by commas (``spiculation,margin``)."""
    if all(t in _LETTER for t in tasks):
        return "".join(_LETTER[t] for t in tasks)
    return ",".join(tasks)


def order_tasks(order: str) -> list[str]:
    """The task names of an order label (the inverse of :func:`order_label`)."""
    if order and set(order) <= set(THESIS_LETTERS):
        return [THESIS_LETTERS[c] for c in order]
    return order.split(",")


def thesis_order(tasks: Sequence[str] | str) -> str | None:
    """``"ABC"`` etc. when ``tasks`` (names, or an order label such as "CBA") are the thesis's three
    in some order, else None."""
    names = order_tasks(tasks) if isinstance(tasks, str) else list(tasks)
    label = order_label(names)
    return label if label in THESIS_ORDERS else None


def parse_orders(spec: str | Sequence[str]) -> list[str]:
    """Orders from text: ``all`` (the thesis's six), letter orders separated by commas (``ABC,CBA``),
    or ONE order of named characteristics (``spiculation,margin,texture``); several named orders are
    separated by semicolons (``spiculation,margin;margin,spiculation``). A list is taken as its orders.
    Every order is checked (known tasks, none twice); a bad one -> LungclError.
    """
    if isinstance(spec, str):
        if spec.strip() == "all":
            return list(THESIS_ORDERS)
        orders: list[str] = []
        for part in spec.split(";"):
            items = [p.strip() for p in part.split(",") if p.strip()]
            if items and all(set(p) <= set(THESIS_LETTERS) for p in items):
                orders += items  # letter orders: "ABC,CBA"
            elif items:
                orders.append(",".join(items))  # one order of named characteristics
    else:
        orders = [str(s).strip() for s in spec if str(s).strip()]
    if not orders:
        raise LungclError("no order given; use e.g. all, ABC,BAC or spiculation,margin,texture")
    for order in orders:
        resolve_tasks(order)
    return orders


__all__ = ["THESIS_ORDERS", "order_label", "order_tasks", "thesis_order", "parse_orders"]
