"""The runs the experiment chapters ask for, built in one place so that chapters meaning the same run
ask for the same configuration (and so load one cached record instead of training twice).

A chapter passes its parameters cell through :func:`sequence_configs`,
:func:`single_task_configs` or :func:`analysis_configs` and hands the list to
:func:`run_configs` (which loads finished runs and computes the others, two at
a time through Dask when it is installed); the discussion asks for the same runs
(:func:`experiment_runs`, from the same parameters) and only :func:`load_finished`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import LungclError
from ..experiments import GridOutcome, RunConfig, default_config, execute_grid, grid_configs
from ..machine import usable_cores
from ..methods import REFERENCES, THESIS_METHODS, parse_methods  # noqa: F401 (the chapters call them from here)
from ..profiles import NORMALISATION_METHODS
from ..selection import DEFAULT_SELECT
from .setup import ChapterContext

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
    from ..data.tasks import THESIS_ORDERS

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
                        epochs: int | None = None, select: str = DEFAULT_SELECT) -> list[RunConfig]:
    """One run per task and fold: a fresh network trained on that task alone, its checkpoint kept by
    ``select`` (:mod:`lungcl.selection`)."""
    return [default_config(ctx.profile, kind="single_task", tasks=(task,), method="sgd", fold=fold,
                           seed=ctx.seed, source=ctx.source, data_dir=str(ctx.data_dir), epochs=epochs,
                           select=select)
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
    def probed(self) -> list[RunConfig]:
        """The runs whose probes the chapter reads (:mod:`lungcl.experiments.run_probes`): the normalisation table's."""
        return list(self.normalisation)

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
                     norm_methods: Sequence[str] | None = None, norm_seeds: Sequence[int] | None = None,
                     select: str = DEFAULT_SELECT) -> AnalysisRuns:
    """EWC and L2 at multiples of the profile's default lambda, SGD, joint, online EWC (default lambda,
    decay ``online_gamma``) on ``order``, each of its tasks trained alone; with ``frozen_bn``, SGD / L2 /
    EWC with BatchNorm's running statistics kept from the first stage on; with ``fisher_variants``, EWC
    with each of those Fishers at the lambda its shipped tune record picked on validation (the profile's
    default where none ships) and with the exact Fisher at its default, over ``variant_seeds`` (None: the
    chapter's seed and the next two, the seeds of the sequence chapter); with ``normalisations`` (keys of
    :data:`NORMALISATIONS`), ``norm_methods`` (at their default lambda; None: the profile's
    :data:`~lungcl.profiles.NORMALISATION_METHODS`) under each, over ``norm_seeds``, probed afterwards
    (:attr:`AnalysisRuns.probed`: features against heads after every stage, read from the runs' kept stage
    weights, so the "update" rows are the sequence chapter's own runs and the "freeze" ones at the chapter's
    seed those of ``frozen_bn``). Every run keeps its checkpoints by ``select``."""
    from ..experiments.config import default_strength
    from ..experiments.tuned import tuned_path, variant_tunes
    from ..fisher import FISHER_KINDS

    ewc_default, l2_default = default_strength(ctx.profile, "ewc"), default_strength(ctx.profile, "l2")

    def configs(methods: list[str], **kw: Any) -> list[RunConfig]:
        return sequence_configs(ctx, [order], methods, folds, epochs=epochs, select=select, **kw)

    sweep = [c for lam in sorted({float(f) * ewc_default for f in ewc_factors}) for c in configs(["ewc"], ewc_lambda=lam)]
    sweep += [c for lam in sorted({float(f) * l2_default for f in l2_factors}) for c in configs(["l2"], l2_lambda=lam)]
    references = configs(["sgd", "joint"]) + configs(["online_ewc"], ewc_lambda=ewc_default, gamma=online_gamma)
    alone = single_task_configs(ctx, list(references[0].tasks), folds, epochs=epochs, select=select)
    frozen = configs(THESIS_METHODS, freeze_bn_stats=True) if frozen_bn else []
    wanted = [str(v) for v in fisher_variants if str(v) != "exact"]
    unknown = [v for v in wanted if v not in FISHER_KINDS]
    if unknown:
        raise LungclError(f"unknown Fisher variant(s) {unknown}; choose from {', '.join(FISHER_KINDS)}")
    tunes = variant_tunes(ctx.profile, wanted)
    strengths = {"exact": ewc_default, **{v: float(tunes[v]["pick"]["strength"]) if v in tunes else ewc_default
                                         for v in wanted}}
    seeds = chapter_seeds(ctx.seed, variant_seeds)
    variants = [c for v, lam in strengths.items() if wanted
                for c in configs(["ewc"], ewc_lambda=lam, seeds=seeds, **({} if v == "exact" else {"fisher": v}))]
    tuned = {"exact": tuned_path(ctx.profile, "ewc").is_file(), **{v: v in tunes for v in wanted}}
    unknown = [n for n in normalisations if n not in NORMALISATIONS]
    if unknown:
        raise LungclError(f"unknown normalisation(s) {unknown}; choose from {', '.join(NORMALISATIONS)}")
    if norm_methods is None:
        norm_methods = NORMALISATION_METHODS[ctx.profile]
    norm_runs = [c for n in normalisations
                 for c in configs(parse_methods(list(norm_methods)), seeds=chapter_seeds(ctx.seed, norm_seeds),
                                  **NORMALISATIONS[n])] if normalisations else []
    return AnalysisRuns(sweep, references, alone, ewc_default, l2_default, frozen, variants,
                        strengths if wanted else {}, tuned if wanted else {}, norm_runs)


# ---------------------------------------------------------------- each chapter's runs, from its parameters
# One function per experiment chapter: the chapter's notebook calls it with its parameters, and the book's
# plan (lungcl.plan) calls it with the same parameters read from the cell, so both name the same runs.

def single_task_chapter(ctx: ChapterContext, tasks: str = "ABC", folds: Sequence[int] = (0,),
                        epochs: int | None = None, select: str = DEFAULT_SELECT, **_: Any) -> list[RunConfig]:
    """Chapter 02: each task of ``tasks`` trained alone, per fold (checkpoints kept by ``select``)."""
    from ..data.tasks import resolve_tasks

    return single_task_configs(ctx, [t.name for t in resolve_tasks(tasks)], folds, epochs=epochs, select=select)


def sequence_chapter(ctx: ChapterContext, tasks: str = "ABC", method: str = "all", folds: Sequence[int] = (0,),
                     epochs: int | None = None, l2_lambda: float | None = None, ewc_lambda: float | None = None,
                     seeds: Sequence[int] | None = None, references: str | Sequence[str] = "",
                     select: str = DEFAULT_SELECT, **_: Any) -> list[RunConfig]:
    """Chapter 03: the methods and the ``references`` (:func:`parse_references`) on one order, over the
    chapter's seeds, folds and epochs, every stage's checkpoint kept by ``select``."""
    methods = list(dict.fromkeys(parse_methods(method) + parse_references(references)))
    return sequence_configs(ctx, parse_orders(tasks)[:1], methods, folds, epochs=epochs, l2_lambda=l2_lambda,
                            ewc_lambda=ewc_lambda, seeds=chapter_seeds(ctx.seed, seeds), select=select)


def parse_references(spec: str | Sequence[str]) -> list[str]:
    """The reference methods of ``spec``: ``"frozen,joint"``, a list, or ``""`` / ``[]`` (none); a name that
    is not one of :data:`~lungcl.methods.REFERENCES` -> LungclError."""
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else map(str, spec)) if s.strip()]
    bad = [r for r in items if r not in REFERENCES]
    if bad:
        raise LungclError(f"references: unknown reference {bad[0]!r}; choose from {', '.join(REFERENCES)} "
                          "(\"\" for none)")
    return list(dict.fromkeys(items))


def orders_chapter(ctx: ChapterContext, orders: str = "all", method: str = "all", folds: Sequence[int] = (0,),
                   epochs: int | None = None, l2_lambda: float | None = None, ewc_lambda: float | None = None,
                   streams: str = "task", seeds: Sequence[int] | None = None, select: str = DEFAULT_SELECT,
                   **_: Any) -> list[RunConfig]:
    """Chapter 04: the methods on every order, over the chapter's seeds (None: seed, seed + 1, seed + 2): the
    design the discussion's findings (:mod:`lungcl.findings`) are tested on; checkpoints kept by ``select``."""
    return sequence_configs(ctx, parse_orders(orders), parse_methods(method), folds, epochs=epochs,
                            l2_lambda=l2_lambda, ewc_lambda=ewc_lambda, streams=streams,
                            seeds=chapter_seeds(ctx.seed, seeds), select=select)


def analysis_chapter(ctx: ChapterContext, tasks: str, folds: Sequence[int], ewc_factors: Sequence[float],
                     l2_factors: Sequence[float], online_gamma: float, epochs: int | None = None,
                     frozen_bn: bool = True, fisher_variants: Sequence[str] = (),
                     variant_seeds: Sequence[int] | None = None, normalisations: Sequence[str] = (),
                     norm_methods: Sequence[str] | None = None, norm_seeds: Sequence[int] | None = None,
                     select: str = DEFAULT_SELECT, **_: Any) -> "AnalysisRuns":
    """Chapter 05: :func:`analysis_configs` on the first order of ``tasks``."""
    return analysis_configs(ctx, parse_orders(tasks)[0], ewc_factors, l2_factors, online_gamma, folds, epochs=epochs,
                            frozen_bn=frozen_bn, fisher_variants=fisher_variants, variant_seeds=variant_seeds,
                            normalisations=normalisations, norm_methods=norm_methods, norm_seeds=norm_seeds,
                            select=select)


def multitask_chapter(ctx: ChapterContext, tasks: str = "all", epochs: int | None = None,
                      fusion_init: float = 100.0, optimizer: str = "adam", sgd_comparison: bool = True,
                      single_task_baselines: bool = True, fold: int = 0, select: str = DEFAULT_SELECT, **_: Any):
    """Chapter 06: (base configuration, the named comparison runs, each task's single-task baseline), every
    run's kept epoch chosen by ``select``."""
    from ..mtl.compare import comparison_configs
    from ..mtl.config import default_mtl_config
    from ..mtl.train import single_task_configs as mtl_alone

    base = default_mtl_config(ctx.profile, tasks=tasks, source=ctx.source, data_dir=str(ctx.data_dir),
                              seed=ctx.seed, fold=fold, epochs=epochs, fusion_init=float(fusion_init),
                              optimizer=optimizer, select=select, **({"lr": 0.02, "weight_decay": 5e-4} if optimizer == "sgd" else {}))
    configs = comparison_configs(base, include_sgd=sgd_comparison)
    alone = {c.tasks[0]: c for c in mtl_alone(base.replace(multiclass=False))} if single_task_baselines else {}
    return base, configs, alone


def chapter_probed(chapter: str, ctx: ChapterContext, parameters: dict[str, Any]) -> list[RunConfig]:
    """The runs of chapter ``chapter`` whose probes it reads (computed after the runs, from their stage weights)."""
    declare = CHAPTER_RUNS.get(chapter)
    result = None if declare is None else declare(ctx, **parameters)
    return result.probed if isinstance(result, AnalysisRuns) else []


def _all_of(result: Any) -> list:
    """The flat list of configurations a chapter function returned."""
    if isinstance(result, AnalysisRuns):
        return result.all
    if isinstance(result, tuple):  # the multi-task chapter
        _, configs, alone = result
        return list(configs.values()) + list(alone.values())
    return list(result)


# chapter notebook (its file's stem) -> the function that lists its runs
CHAPTER_RUNS = {"02_single_task": single_task_chapter, "03_sequence_ABC": sequence_chapter,
                "04_task_orders": orders_chapter, "05_analysis": analysis_chapter,
                "06_multitask_gates": multitask_chapter}


def chapter_configs(chapter: str, ctx: ChapterContext, parameters: dict[str, Any]) -> list:
    """Every run configuration chapter ``chapter`` asks for with ``parameters`` (its cell's values); none
    for a chapter that computes no runs."""
    declare = CHAPTER_RUNS.get(chapter)
    return [] if declare is None else _all_of(declare(ctx, **parameters))


def experiment_runs(ctx: ChapterContext, tasks: str, orders: str | Sequence[str], method: str | Sequence[str],
                    folds: Sequence[int], epochs: int | None = None, l2_lambda: float | None = None,
                    ewc_lambda: float | None = None, seeds: Sequence[int] | None = None, streams: str = "task",
                    select: str = DEFAULT_SELECT, **analysis: Any) -> tuple[list[RunConfig], AnalysisRuns]:
    """The runs the sequence chapter (``tasks``' order, ``seeds``), the task-order chapter (``orders``,
    ``streams``) and the analysis chapter (``tasks``' order, ``analysis``: its parameters) ask for with
    these parameters (``select``: all three's), which are theirs: the runs the discussion reads. Nothing is
    trained."""
    lambdas = {"epochs": epochs, "l2_lambda": l2_lambda, "ewc_lambda": ewc_lambda, "select": select}
    every_order = orders_chapter(ctx, orders=orders, method=method, folds=folds, streams=streams, seeds=seeds,
                                 **lambdas)
    repeated = sequence_chapter(ctx, tasks=tasks, method=method, folds=folds, seeds=seeds, **lambdas)
    plan = analysis_chapter(ctx, tasks=tasks, folds=folds, epochs=epochs, select=select, **analysis)
    return list({c.run_id: c for c in every_order + repeated}.values()), plan


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


def run_configs(configs: Sequence[RunConfig], results: str | Path, workers: int | None = None,
                allow_failures: bool = False, probed: Sequence[RunConfig] = ()) -> ChapterRuns:
    """Load the finished runs and compute the others, ``workers`` at a time (None: every usable core) when
    Dask is installed (else one after the other). A failed run raises, unless ``allow_failures`` (e.g. a
    lambda sweep, where a diverging lambda is a result): then it is reported in ``failed``. The records of
    ``probed`` get their probes (:func:`lungcl.experiments.run_probes.attach_probes`: cached, or computed
    ``workers`` at a time). Built by ``lungcl book``, a chapter finds every run and probe already computed by
    the book's plan and only loads."""
    workers = usable_cores() if workers is None else int(workers)
    parallel = workers if workers > 1 and dask_available() else None
    outcome: GridOutcome = execute_grid(configs, results, workers=parallel, progress=False)
    if configs and not outcome.records and outcome.errors:  # nothing to show: say so, not an IndexError later
        run_id, message = next(iter(outcome.errors.items()))
        raise LungclError(f"every one of the chapter's {len(outcome.errors)} run(s) failed, e.g. "
                          f"{outcome.configs[run_id].label}: {message}")
    if outcome.errors and not allow_failures:
        run_id, message = next(iter(outcome.errors.items()))
        raise LungclError(f"{len(outcome.errors)} run(s) failed, e.g. {outcome.configs[run_id].label}: {message}")
    wanted = {c.run_id for c in probed}
    if wanted:
        from ..experiments.run_probes import attach_probes

        attach_probes([r for r in outcome.records if r.run_id in wanted], workers)
    return ChapterRuns(records=outcome.records,
                       failed={rid: (outcome.configs[rid], msg) for rid, msg in outcome.errors.items()},
                       computed=len(outcome.computed), loaded=len(outcome.loaded))


def show_run_times(records: Sequence) -> None:
    """The measured wall time of each run of a chapter, and their sum, for the reader."""
    from IPython.display import Markdown, display

    from ..summaries import timing_table

    times = timing_table(records)
    display(Markdown(
        f"The {len(times)} runs of this chapter took {times.minutes.sum():.0f} minutes of one core in all "
        f"({times.minutes.mean():.1f} per run on average, on the {int(times.cpus.iloc[0])}-core machine that "
        "computed them; two runs at a time share its cores and each runs slower). Runs found in the results "
        "folder were loaded, not re-run. On another machine, scale by its speed per core."))
    display(times.style.format({"minutes": "{:.1f}"}).set_caption(
        "Measured wall time of each run (one CPU core each, when it was computed)"))


def show_run_card(ctx: ChapterContext, runs: ChapterRuns | Sequence = (), reads_store: bool = True) -> None:
    """Show the page's run card (:mod:`lungcl.chapter.run_card`): the parameters as run (read from the kernel's
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
    from ..experiments import ResultsFolder, load_record

    folder = ResultsFolder(results)
    done, missing = [], []
    for c in configs:
        (done if folder.is_finished(c.run_id) else missing).append(c)
    return [load_record(c.run_id, folder.root) for c in done], missing


def with_cached_probes(records: Sequence) -> list:
    """``records``, each with the probes already computed for it (by the analysis chapter or the book's plan)
    in ``record.data["probes"]``; nothing is computed."""
    from ..experiments.run_probes import cached_probes

    for r in records:
        found = cached_probes(r)
        if found is not None:
            r.data["probes"] = found
    return list(records)


__all__ = ["THESIS_METHODS", "NORMALISATIONS", "experiment_runs", "CHAPTER_RUNS", "chapter_configs", "single_task_chapter",
           "sequence_chapter", "parse_references", "orders_chapter", "analysis_chapter", "multitask_chapter", "parse_methods", "parse_orders", "sequence_configs", "single_task_configs", "show_run_times",
           "show_run_card",
           "AnalysisRuns", "analysis_configs", "ChapterRuns", "dask_available", "run_configs", "show_failures",
           "load_finished", "chapter_probed", "with_cached_probes"]
