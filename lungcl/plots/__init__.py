"""Every figure of the experiment chapters: each function takes records or tables and returns a Figure.

Colours are fixed per method across the book (SGD, L2, EWC, ...). Where the thesis has
a number, the figure marks it with a hollow diamond in the method's colour; our values
are filled. Values are fractions, drawn as percent.

- :mod:`.style`: colours, labels, the thesis marker, axis helpers
- :mod:`.curves`: accuracy curves during training
- :mod:`.matrices`: accuracy-matrix heat maps, metric bars per stage, single-task bars
- :mod:`.transfer`: transfer bars, order comparison, position effect
- :mod:`.references`: the methods beside their references (frozen trunk, joint) in the kept/learned plane
- :mod:`.diagnostics`: the lambda trade-off, the Fisher per layer, Fisher variants against the exact one
"""

from __future__ import annotations

from ..errors import LungclError  # noqa: F401
from ..summaries import METHOD_LABELS, METRIC_LABELS, quantity_label  # noqa: F401
from ..thesis import THESIS_METHODS, thesis_matrix, thesis_order  # noqa: F401
from .curves import accuracy_curves, training_curves
from .diagnostics import fisher_per_layer, fisher_variant_distance, forgetting_split_bars, lambda_tradeoff
from .matrices import matrix_heatmaps, metric_bars, single_task_bars
from .references import bounds_plane
from .style import METHOD_COLORS, THESIS_STYLE, short_name  # noqa: F401
from .tuning import tune_curves
from .transfer import order_comparison, position_effect, transfer_bars

__all__ = ["METHOD_COLORS", "tune_curves", "accuracy_curves", "training_curves", "matrix_heatmaps", "metric_bars",
           "single_task_bars", "transfer_bars", "order_comparison", "position_effect", "lambda_tradeoff",
           "fisher_per_layer", "fisher_variant_distance", "forgetting_split_bars", "bounds_plane"]
