"""Number formats the chapters' prose and tables share, so that one value reads the same everywhere.

Values are fractions; the prose shows them as percent numbers, with the unit (" %" or " points")
written by the sentence around them.
"""

from __future__ import annotations

import math


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def pct(value: float | None, digits: int = 1) -> str:
    """A fraction as a percent number: ``0.8123`` -> ``"81.2"``; missing -> ``"-"``."""
    return "-" if _missing(value) else f"{100 * value:.{digits}f}"


def pts(value: float | None, digits: int = 1) -> str:
    """A difference of fractions as signed percentage points: ``0.031`` -> ``"+3.1"``; missing -> ``"-"``."""
    return "-" if _missing(value) else f"{100 * value:+.{digits}f}"
