"""The runs the experiment chapters ask for, built in one place so that chapters meaning the same run
ask for the same configuration (and so load one cached record instead of training twice).

A chapter passes its parameters cell through :func:`sequence_configs`,
:func:`single_task_configs` or :func:`analysis_configs` and hands the list to
:func:`run_configs` (which loads finished runs and computes the others, two at
a time through Dask when it is installed); the discussion only
:func:`load_finished`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .chapter_context import ChapterContext
from .errors import LungclError
from .experiments import GridOutcome, RunConfig, default_config, execute_grid, grid_configs
from .methods import THESIS_METHODS, parse_methods  # noqa: F401 (the chapters call them from here)
from .profiles import NORMALISATION_METHODS

# the analysis chapter's default sweep (its parameters cell repeats them; a test checks they agree), so that
# the discussion finds the same runs
ANALYSIS_DEFAULTS = {"ewc_factors": [0.1, 1, 10], "l2_factors": [0.1, 1, 10], "online_gamma": 0.9,
                     "frozen_bn": True, "fisher_variants": ["sampled", "empirical", "batched"], "variant_seeds": None,
                     "normalisations": ["update", "freeze", "task", "group"], "norm_methods": None,
                     "norm_seeds": None}
# a normalisation of the analysis chapter's table -> the run settings that give it
NORMALISATIONS = {"update": {}, "freeze": {"bn": "freeze"}, "task": {"bn": "task"}, "group": {"norm": "group"}}


def chapter_seeds(seed: int, seeds: Sequence[int] | None, n: int = 3) -> list[int]:
    """A chapter's seeds: ``seeds`` as given, or ``n`` consecutive seeds from ``seed``."""
    chosen = list(range(int(seed), int(seed) + n)) if seeds is None else [int(s) for s in seeds]
    if not chosen or len(set(chosen)) != len(chosen):
        raise LungclError(f"seeds must be distinct integers, got {seeds!r}")
    return chosen


def parse_orders(spec: str | Sequence[str]) -> list[str]:
    """``"all"`` (the thesis's six orders), ``"ABC,CBA"``, one order of characteristics
    (``"spiculation,margin,texture"``) or a list of orders."""
    from .data.tasks import THESIS_ORDERS

    if not isinstance(spec, str):
        return [str(s).strip() for s in spec]
    if spec.strip() == "all":
        return list(THESIS_ORDERS)
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if all(set(p) <= set("ABC") for p in parts):
        return parts  # letter orders: "ABC,CBA"
    return [",".join(parts)]  # one order of named characteristics


def sequence_configs(ctx: ChapterContext, orders: Sequence[str], methods: Sequence[str], folds: Sequence[int],
                     epochs: int | None = None, l2_lambda: float | None = None, ewc_lambda: float | None = None,
                     seeds: Sequence[int] | None = None, **overrides: Any) -> list[RunConfig]:
    """orders x methods x folds x seeds (None: the chapter's seed); lambdas None take the profile's default."""
    strengths = {"l2": l2_lambda, "ewc": ewc_lambda, "online_ewc": ewc_lambda}
    seeds = [ctx.seed] if seeds is None else [int(s) for s in seeds]
    return grid_configs(list(orders), list(methods), list(folds), seeds, profile=ctx.profile,
                        strengths=strengths, source=ctx.source, data_dir=str(ctx.data_dir), epochs=epochs,
                        **overrides)


def single_task_configs(ctx: ChapterContext, tasks: Sequence[str], folds: Sequence[int],
                        epochs: int | None = None) -> list[RunConfig]:
    """One run per task and fold: a fresh network trained on that task alone."""
    return [default_config(ctx.profile, kind="single_task", tasks=(task,), method="sgd", fold=fold,
                           seed=ctx.seed, source=ctx.source, data_dir=str(ctx.data_dir), epochs=epochs)
            for task in tasks for fold in folds]


@dataclass
class AnalysisRuns:
    """The analysis chapter's runs: lambda sweeps, the references (SGD, joint, online EWC), tasks alone,
    the three methods again with BatchNorm's running statistics frozen after the first stage, and EWC with
    each Fisher variant at its own validated lambda over several seeds (with the exact Fisher beside it)."""

    sweep: list[RunConfig]
    references: list[RunConfig]
    alone: list[RunConfig]
    ewc_default: float
    l2_default: float
    frozen_bn: list[RunConfig] = field(default_factory=list)
    variants: list[RunConfig] = field(default_factory=list)
    variant_strengths: dict[str, float] = field(default_factory=dict)
    variant_tuned: dict[str, bool] = field(default_factory=dict)
    normalisation: list[RunConfig] = field(default_factory=list)

    @property
    def all(self) -> list[RunConfig]:
        configs = self.sweep + self.references + self.alone + self.frozen_bn + self.variants + self.normalisation
        return list({c.run_id: c for c in configs}.values())

    def records_of(self, records: Sequence, part: str) -> list:
        """The records among ``records`` of one part of the plan (``"sweep"``, ``"references"``, ``"alone"``,
        ``"frozen_bn"``, ``"variants"``, ``"normalisation"``, or ``"main"``: sweep + references + alone)."""
        parts = {"main": self.sweep + self.references + self.alone}.get(part) or getattr(self, part)
        ids = {c.run_id for c in parts}
        return [r for r in records if r.config.run_id in ids]


def analysis_configs(ctx: ChapterContext, order: str, ewc_factors: Sequence[float], l2_factors: Sequence[float],
                     online_gamma: float, folds: Sequence[int], epochs: int | None = None,
                     frozen_bn: bool = True, fisher_variants: Sequence[str] = (),
                     variant_seeds: Sequence[int] | None = None, normalisations: Sequence[str] = (),
                     norm_methods: Sequence[str] | None = None, norm_seeds: Sequence[int] | None = None
                     ) -> AnalysisRuns:
    """EWC and L2 at multiples of the profile's default lambda, SGD, joint, online EWC (default lambda,
    decay ``online_gamma``) on ``order``, each of its tasks trained alone; with ``frozen_bn``, SGD / L2 /
    EWC with BatchNorm's running statistics kept from the first stage on; with ``fisher_variants``, EWC
    with each of those Fishers at the lambda its shipped tune record picked on validation (the profile's
    default where none ships) and with the exact Fisher at its default, over ``variant_seeds`` (None: the
    chapter's seed and the next two, the seeds of the sequence chapter); with ``normalisations`` (keys of
    :data:`NORMALISATIONS`), ``norm_methods`` (at their default lambda; None: the profile's
    :data:`~lungcl.profiles.NORMALISATION_METHODS`) under each, over ``norm_seeds``, with ``probes``
    (features against heads after every stage)."""
    from .experiments.config import default_strength
    from .experiments.tuned import tuned_path, variant_tunes
    from .fisher import FISHER_KINDS

    ewc_default, l2_default = default_strength(ctx.profile, "ewc"), default_strength(ctx.profile, "l2")

    def configs(methods: list[str], **kw: Any) -> list[RunConfig]:
        return sequence_configs(ctx, [order], methods, folds, epochs=epochs, **kw)

    sweep = [c for lam in sorted({float(f) * ewc_default for f in ewc_factors}) for c in configs(["ewc"], ewc_lambda=lam)]
    sweep += [c for lam in sorted({float(f) * l2_default for f in l2_factors}) for c in configs(["l2"], l2_lambda=lam)]
    references = configs(["sgd", "joint"]) + configs(["online_ewc"], ewc_lambda=ewc_default, gamma=online_gamma)
    alone = single_task_configs(ctx, list(references[0].tasks), folds, epochs=epochs)
    frozen = sequence_configs(ctx, [order], THESIS_METHODS, folds, epochs=epochs,
                              freeze_bn_stats=True) if frozen_bn else []
    wanted = [str(v) for v in fisher_variants if str(v) != "exact"]
    unknown = [v for v in wanted if v not in FISHER_KINDS]
    if unknown:
        raise LungclError(f"unknown Fisher variant(s) {unknown}; choose from {', '.join(FISHER_KINDS)}")
    tunes = variant_tunes(ctx.profile, wanted)
    strengths = {"exact": ewc_default, **{v: float(tunes[v]["pick"]["strength"]) if v in tunes else ewc_default
                                         for v in wanted}}
    seeds = chapter_seeds(ctx.seed, variant_seeds)
    variants = [c for v, lam in strengths.items() if wanted
                for c in sequence_configs(ctx, [order], ["ewc"], folds, epochs=epochs, ewc_lambda=lam, seeds=seeds,
                                          **({} if v == "exact" else {"fisher": v}))]
    tuned = {"exact": tuned_path(ctx.profile, "ewc").is_file(), **{v: v in tunes for v in wanted}}
    unknown = [n for n in normalisations if n not in NORMALISATIONS]
    if unknown:
        raise LungclError(f"unknown normalisation(s) {unknown}; choose from {', '.join(NORMALISATIONS)}")
    if norm_methods is None:
        norm_methods = NORMALISATION_METHODS[ctx.profile]
    norm_runs = [c for n in normalisations
                 for c in sequence_configs(ctx, [order], parse_methods(list(norm_methods)), folds, epochs=epochs,
                                           seeds=chapter_seeds(ctx.seed, norm_seeds), probes=True,
                                           **NORMALISATIONS[n])] if normalisations else []
    return AnalysisRuns(sweep, references, alone, ewc_default, l2_default, frozen, variants,
                        strengths if wanted else {}, tuned if wanted else {}, norm_runs)


@dataclass
class ChapterRuns:
    """The records a chapter asked for, and the runs that failed (config -> one-line reason)."""

    records: list = field(default_factory=list)
    failed: dict[str, tuple[RunConfig, str]] = field(default_factory=dict)
    computed: int = 0
    loaded: int = 0


def dask_available() -> bool:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


def run_configs(configs: Sequence[RunConfig], results: str | Path, workers: int = 2,
                allow_failures: bool = False) -> ChapterRuns:
    """Load the finished runs and compute the others, ``workers`` at a time when Dask is installed
    (else one after the other). A failed run raises, unless ``allow_failures`` (e.g. a lambda
    sweep, where a diverging lambda is a result): then it is reported in ``failed``."""
    parallel = workers if workers and workers > 1 and dask_available() else None
    outcome: GridOutcome = execute_grid(configs, results, workers=parallel, progress=False)
    if outcome.errors and not allow_failures:
        run_id, message = next(iter(outcome.errors.items()))
        raise LungclError(f"{len(outcome.errors)} run(s) failed, e.g. {outcome.configs[run_id].label}: {message}")
    return ChapterRuns(records=outcome.records,
                       failed={rid: (outcome.configs[rid], msg) for rid, msg in outcome.errors.items()},
                       computed=len(outcome.computed), loaded=len(outcome.loaded))


def show_run_times(records: Sequence) -> None:
    """The measured wall time of each run of a chapter, and their sum, for the reader."""
    from IPython.display import Markdown, display

    from .summaries import timing_table

    times = timing_table(records)
    display(Markdown(
        f"The {len(times)} runs of this chapter took {times.minutes.sum():.0f} minutes of one core in all "
        f"({times.minutes.mean():.1f} per run on average, on the {int(times.cpus.iloc[0])}-core machine that "
        "computed them; two runs at a time share its cores and each runs slower). Runs found in the results "
        "folder were loaded, not re-run. On another machine, scale by its speed per core."))
    display(times.style.format({"minutes": "{:.1f}"}).set_caption(
        "Measured wall time of each run (one CPU core each, when it was computed)"))


def show_run_card(ctx: ChapterContext, runs: ChapterRuns | Sequence = (), reads_store: bool = True) -> None:
    """Show the page's run card (:mod:`lungcl.run_card`): the parameters as run (read from the kernel's
    parameter cells), commit, versions, the patch store (unless the page reads none), the runs it read
    (``runs``: a :class:`ChapterRuns` or any records), the machine and the date."""
    from IPython import get_ipython
    from IPython.display import display

    from . import run_card

    shell = get_ipython()
    parameters, defaults = run_card.parameters_as_run(shell.user_ns if shell is not None else {})
    records = runs.records if isinstance(runs, ChapterRuns) else list(runs)
    display(run_card.collect(parameters, defaults, records, ctx.started, ctx.data_dir,
                             ctx.source if reads_store else None, ctx.profile))


def show_failures(runs: ChapterRuns) -> None:
    """Tell the reader which runs failed and why (e.g. a lambda too large diverges), as a note."""
    if not runs.failed:
        return
    from IPython.display import Markdown, display

    lines = "\n".join(f"- {cfg.label}: {msg}" for cfg, msg in runs.failed.values())
    display(Markdown(f"**{len(runs.failed)} run(s) failed** and are left out of what follows (a failed "
                     f"run is tried again at the next execution):\n\n{lines}"))


def load_finished(configs: Sequence[RunConfig], results: str | Path) -> tuple[list, list[RunConfig]]:
    """The records of the runs already computed, and the configurations still missing (nothing is trained)."""
    from .experiments import ResultsFolder, load_record

    folder = ResultsFolder(results)
    done, missing = [], []
    for c in configs:
        (done if folder.is_finished(c.run_id) else missing).append(c)
    return [load_record(c.run_id, folder.root) for c in done], missing


__all__ = ["THESIS_METHODS", "ANALYSIS_DEFAULTS", "NORMALISATIONS", "parse_methods", "parse_orders", "sequence_configs", "single_task_configs", "show_run_times",
           "show_run_card",
           "AnalysisRuns", "analysis_configs", "ChapterRuns", "dask_available", "run_configs", "show_failures",
           "load_finished"]
