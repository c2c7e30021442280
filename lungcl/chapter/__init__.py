"""What runs inside a chapter notebook: its setup, the runs it asks for, its run card, and what it computes
from records and tables (record look-ups, number formats, findings and the sentences that report them).

The chapters only tell: they call these functions and show the tables, figures and text they return.
The build that executes and renders them (:mod:`lungcl.book`) does not import this package; the plan
(:mod:`lungcl.plan`) reads the runs each chapter asks for from :mod:`.runs`.

- :mod:`.setup`: :func:`chapter_setup`, what a chapter calls first (parameters checked, folders, plot style)
- :mod:`.runs`: the runs each chapter asks for, computed or loaded (:func:`run_configs`), and
  :func:`show_run_card`; :mod:`.run_card`: the page's run card (how the page was computed)
- :mod:`.records`: :func:`find` one record by its settings
- :mod:`.formats`: :func:`pct`, :func:`pts`, the number formats of the prose
- :mod:`.display`: :func:`say`, a computed sentence shown when there is one
- :mod:`.dataset` (01 data), :mod:`.single_task` (02), :mod:`.sequence` (03), :mod:`.orders` (04),
  :mod:`.analysis` (05), :mod:`.multitask` (06), :mod:`.discussion` (07): each chapter's tables and sentences
  (tested in ``tests/test_chapters.py``)
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
