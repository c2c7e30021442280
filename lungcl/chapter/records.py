"""Finding one run record among a chapter's records by the settings that name it."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from ..errors import LungclError
from ..orders import order_label

# keyword -> how to read it from a record's config
_READERS = {
    "method": lambda c: c.method,
    "strength": lambda c: c.strength,
    "order": lambda c: order_label(c.tasks),  # "ABC"
    "tasks": lambda c: tuple(c.tasks),
    "fold": lambda c: c.fold,
    "seed": lambda c: c.seed,
}


def _value(record: Any, key: str) -> Any:
    config = record.config
    if key in _READERS:
        return _READERS[key](config)
    if not hasattr(config, key):
        raise LungclError(f"a run's config has no setting {key!r}")
    return getattr(config, key)


def select(records: Iterable, **settings: Any) -> list:
    """The records whose config has every given setting (``tasks`` compares as a tuple)."""
    wanted = {k: tuple(v) if k == "tasks" and not isinstance(v, str) else v for k, v in settings.items()}
    return [r for r in records if all(_value(r, k) == v for k, v in wanted.items())]


def find(records: Sequence, **settings: Any) -> Any:
    """The one record with these settings, e.g. ``find(records, method="ewc", strength=1.0)``.

    Raises a one-line :class:`LungclError` when no record, or more than one, matches.
    """
    found = select(records, **settings)
    shown = ", ".join(f"{k}={v!r}" for k, v in settings.items())
    if not found:
        raise LungclError(f"no run with {shown} among the chapter's {len(records)} records")
    if len(found) > 1:
        raise LungclError(f"{len(found)} runs with {shown}: add a setting to choose one")
    return found[0]
