"""What the book's chapters compute: record look-ups, number formats, findings and the sentences that
report them, each a function of records or tables, tested in ``tests/test_chapters.py``.

The chapters only tell: they call these functions and show the tables, figures and text they return.
This is the chapters' runtime; the build that executes and renders them (:mod:`lungcl.book`) does not
import it.

- :mod:`.records`: :func:`find` one record by its settings
- :mod:`.formats`: :func:`pct`, :func:`pts`, the number formats of the prose
- :mod:`.display`: :func:`say`, a computed sentence shown when there is one
- :mod:`.dataset` (01 data), :mod:`.single_task` (02), :mod:`.sequence` (03), :mod:`.orders` (04),
  :mod:`.analysis` (05), :mod:`.multitask` (06), :mod:`.discussion` (07): each chapter's tables and sentences
- :mod:`.kept` (02, 03): the rule that kept each stage's checkpoint and its validation balanced accuracy;
  :mod:`.tune_provenance` (05): whether the shipped lambda tunes were made under today's rules

Figures stay in :mod:`lungcl.plots` (the data and multi-task chapters' in :mod:`lungcl.plots.dataset` and
:mod:`lungcl.plots.multitask`).
"""

from __future__ import annotations

from .display import say
from .formats import pct, pts
from .records import find

__all__ = ["find", "pct", "pts", "say"]
