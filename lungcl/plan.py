"""The book as one plan: every selected chapter's runs, listed from the chapters' parameters cells and
computed at once, before any chapter executes.

Each experiment chapter names its runs through one function of :data:`lungcl.chapter.runs.CHAPTER_RUNS`,
which its notebook calls with its parameters. :func:`book_plan` calls the same function with the
values of the chapter's ``parameters`` cell, the build's settings (profile, source, folders, seed) and
``--set`` on top, so the plan and the chapter name the same runs without executing the notebook. The
union, de-duplicated by run id, is one grid: :func:`run_plan` computes what is missing, longest run
first, on ``workers`` local processes (default: every usable core) or a Dask cluster; the chapters
then only load. Costs are the runs' own measured times where they are finished, the median of
similar finished runs where there are some, else a nominal cost per profile (said as such). Runs that
train the same first stage compute it once (:mod:`lungcl.schedule`: the longest of them first, the
others load it); the plan counts those shared prefixes and the core-seconds they save.

The plan reads both sides, the runs the chapters declare (:mod:`lungcl.chapter.runs`) and the build
(:mod:`lungcl.book`), so it sits above both.
"""

from __future__ import annotations

import ast
import heapq
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .book.build import (BUILD_PARAMETERS, BuildReport, build_book, chapter_overrides, discover_chapters,
                         select_chapters)
from .book.parameters import check_chapter_settings
from .book.parameters_page import chapter_parameters
from .book.pdf import find_chromium
from .chapter.runs import chapter_configs, chapter_probed
from .chapter.setup import ChapterContext
from .errors import LungclError
from .experiments.runner import SEQUENCES
from .experiments.first_stage import planned_first_stage
from .experiments.run_probes import PROBES_FILE
from .machine import usable_cores
from .mtl.train import MULTITASK
from .profiles import check_profile
from .project import book_folder, project_root
from .runs.engine import RunKind
from .runs.devices import gpu_workers
from .runs.executor import execute
from .runs.folder import read_record_json
from .runs.prefix import PrefixStore
from .schedule import Job, Schedule, effective_cost, plan_schedule

KINDS = (SEQUENCES, MULTITASK)
# one run's wall seconds on one core when nothing similar has been measured yet: a three-stage sequence
# (the cpu figure: README, "a cpu ABC run takes 1-3 minutes of one core"; paper: about 20 GPU minutes)
NOMINAL_RUN_S = {"smoke": 10.0, "cpu": 120.0, "paper": 1200.0}
# one run's probes (lungcl.experiments.run_probes), seconds of one core: cpu measured (probes_s of the runs
# that recorded them in-run: 20-24 s), the others guessed in proportion
PROBES_S = {"smoke": 3.0, "cpu": 22.0, "paper": 200.0}


@dataclass
class PlannedRun:
    """One run of the plan: its configuration, the chapters asking for it, and what it costs."""

    config: Any
    kind: RunKind
    chapters: list[str]
    cached: bool
    cost_s: float  # measured (finished runs) or estimated, wall seconds on one core, the whole run
    basis: str  # "measured" | "similar" | "nominal"
    first_stage: str | None = None  # the key of a first stage other runs may share (None: shares none)
    probed: bool = False  # a chapter reads its probes (computed after the runs, from its stage weights)
    probes_cached: bool = False

    @property
    def job(self) -> Job:
        """The run for :func:`lungcl.schedule.plan_schedule` (a first stage's share: one stage of the run)."""
        return Job(self.cost_s, self.first_stage, 1.0 / _stages(self.config) if self.first_stage else 0.0)


@dataclass
class BookPlan:
    """Every run the selected chapters ask for, once each."""

    runs: list[PlannedRun]
    chapters: dict[str, list[str]]  # chapter -> its run ids
    workers: int
    stored_prefixes: frozenset[str] = frozenset()  # first stages already in the results folder
    devices: list[int] | None = None  # the GPU of each worker (several runs per GPU), None: CPU cores

    def schedule(self, workers: int | None = None) -> tuple[list[PlannedRun], Schedule]:
        """The runs still to compute in the order they are computed, and their schedule on ``workers``
        (default: the plan's)."""
        pending = [r for r in self.runs if not r.cached]
        done = plan_schedule([r.job for r in pending], workers or self.workers, self.stored_prefixes)
        return pending, done

    @property
    def todo(self) -> list[PlannedRun]:
        """The runs still to compute, longest first (a run whose first stage others load before them)."""
        pending, done = self.schedule()
        return [pending[i] for i in done.order]

    @property
    def probes_s(self) -> float:
        """Estimated core-seconds of the probes still to compute (after the runs, ``workers`` at a time)."""
        return sum(PROBES_S[r.config.profile] for r in self.runs if r.probed and not r.probes_cached)

    @property
    def core_s(self) -> float:
        """Estimated core-seconds of what is still to compute (shared first stages counted once; probes too)."""
        return self.schedule()[1].core_s + self.probes_s

    @property
    def makespan_s(self) -> float:
        """Estimated wall seconds of what is still to compute, longest first on ``workers`` cores, then the
        probes."""
        return self.schedule()[1].makespan_s + self.probes_s / max(1, self.workers)

    def summary(self) -> dict:
        """The plan as JSON-ready numbers: per chapter, in all, and what the estimate rests on."""
        pending, done = self.schedule()
        cost = {r.config.run_id: effective_cost(r.job, i in done.loads) for i, r in enumerate(pending)}
        by_id = {r.config.run_id: r for r in self.runs}
        chapters = {name: {"runs": len(ids), "cached": sum(by_id[i].cached for i in ids),
                           "estimated_core_minutes": round(sum(cost.get(i, 0.0) for i in ids) / 60, 2)}
                    for name, ids in self.chapters.items()}
        asked = sum(len(ids) for ids in self.chapters.values())
        return {"chapters": chapters, "runs": len(self.runs), "cached": len(self.runs) - len(pending),
                "to_compute": len(pending), "asked_by_chapters": asked, "shared_between_chapters": asked - len(self.runs),
                "shared_prefixes": done.shared_prefixes, "first_stages_loaded": len(done.loads),
                "saved_core_minutes": round(done.saved_core_s / 60, 2), "workers": self.workers,
                "gpus": len(set(self.devices)) if self.devices else 0,
                "runs_per_gpu": len(self.devices) // len(set(self.devices)) if self.devices else 0,
                "probed": sum(r.probed for r in self.runs),
                "probes_to_compute": sum(r.probed and not r.probes_cached for r in self.runs),
                "estimated_core_minutes": round((done.core_s + self.probes_s) / 60, 2),
                "estimated_wall_minutes": round((done.makespan_s + self.probes_s / max(1, self.workers)) / 60, 2),
                "estimate_basis": {b: sum(r.basis == b for r in pending) for b in ("similar", "nominal")}}


def makespan(costs: Sequence[float], workers: int) -> float:
    """Wall time of ``costs`` run longest first, each on the worker free first (LPT scheduling)."""
    free = [0.0] * max(1, int(workers))
    for cost in sorted(costs, reverse=True):
        heapq.heapreplace(free, free[0] + cost)
    return max(free)


def cell_values(source: Path) -> dict[str, Any]:
    """The values of a chapter's ``parameters`` cell, as Python literals."""
    values = {}
    for name, text, _ in chapter_parameters(source):
        try:
            values[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError) as exc:
            raise LungclError(f"{source.name}: parameter {name} = {text} is not a literal; the book's plan "
                              "reads the parameters cell without executing it") from exc
    return values


def _kind_of(config: Any) -> RunKind:
    for kind in KINDS:
        if isinstance(config, kind.record_type.config_type):
            return kind
    raise LungclError(f"the plan knows no kind of run for {type(config).__name__}")


def _similarity(config: Any) -> tuple:
    """What makes two runs cost about the same: the kind, the profile, the network and the work per stage."""
    names = ("profile", "kind", "model", "multiclass", "method", "fisher", "probes", "norm", "bn", "epochs",
             "depth", "width", "param_scale")
    return (type(config).__name__, len(config.tasks), *(getattr(config, n, None) for n in names))


def _stages(config: Any) -> int:
    """How many trainings of one task a run holds (a multi-task run trains once)."""
    return len(config.tasks) if getattr(config, "kind", None) in ("sequence", "single_task") else 1


def _measured_s(kind: RunKind, results: Path, run_id: str) -> float | None:
    """A finished run's measured wall seconds, whole: a first stage it loaded counted at what it cost its
    leader (the plan decides again which runs share)."""
    path = kind.folder(results).record_path(run_id)
    try:
        timings = read_record_json(path)["timings"]
        first = (timings.get("stages") or [{}])[0]
        loaded = first.get("first_stage") == "loaded"
        return float(timings["total_s"]) + (float(first.get("first_stage_s", 0.0)) if loaded else 0.0)
    except (LungclError, KeyError, TypeError, ValueError, AttributeError, IndexError):
        return None


def book_plan(root: str | Path | None = None, profile: str = "cpu", source: str = "phantom",
              data_dir: str | Path | None = None, results_dir: str | Path | None = None, seed: int = 0,
              overrides: dict[str, Any] | None = None, only: list[str] | None = None,
              workers: int | None = None, runs_per_gpu: int | str | None = None) -> BookPlan:
    """The runs of the selected chapters with their settings, once each, with what is cached and what the
    rest costs (nothing is computed). With CUDA present the workers are GPU slots, ``runs_per_gpu`` per
    device (None or ``auto``: as many as fit its memory, :func:`lungcl.runs.devices.gpu_workers`). Folders as :func:`lungcl.project.book_folder` reads them: None is
    ``data`` / ``results`` at the book's root, a relative one given is from the current folder."""
    check_profile(profile)
    check_chapter_settings({"source": source, "seed": seed})
    devices = gpu_workers(runs_per_gpu, profile)
    root = Path(root).resolve() if root else project_root()
    data_dir, results_dir = book_folder("data", data_dir, root), book_folder("results", results_dir, root)
    chapters = discover_chapters(root)
    own = chapter_overrides(chapters, overrides or {})
    ctx = ChapterContext(profile, source, int(seed), data_dir, results_dir)
    planned: dict[str, PlannedRun] = {}
    per_chapter: dict[str, list[str]] = {}
    similar: dict[tuple, list[float]] = {}
    digests: dict = {}
    probed: set[str] = set()
    for chapter in select_chapters(chapters, only):
        values = {**cell_values(chapter.source), **own[chapter.name]}
        for key in BUILD_PARAMETERS:
            values.pop(key, None)
        configs = chapter_configs(chapter.name, ctx, values)
        probed.update(c.run_id for c in chapter_probed(chapter.name, ctx, values))
        per_chapter[chapter.name] = list(dict.fromkeys(c.run_id for c in configs))
        for c in configs:
            if c.run_id in planned:
                planned[c.run_id].chapters.append(chapter.name)
                continue
            kind = _kind_of(c)
            cached = kind.folder(results_dir).is_finished(c.run_id)
            cost = _measured_s(kind, results_dir, c.run_id) if cached else None
            if cost is not None:
                similar.setdefault(_similarity(c), []).append(cost)
            planned[c.run_id] = PlannedRun(c, kind, [chapter.name], cached, cost or 0.0, "measured",
                                           planned_first_stage(c, digests))
    for run in planned.values():
        if run.basis == "measured" and run.cost_s:
            continue
        seen = similar.get(_similarity(run.config))
        run.cost_s, run.basis = ((statistics.median(seen), "similar") if seen
                                 else (NOMINAL_RUN_S[run.config.profile] * _stages(run.config) / 3, "nominal"))
    for run_id in probed & set(planned):
        run = planned[run_id]
        run.probed = True
        run.probes_cached = run.cached and (run.kind.folder(results_dir).run_dir(run_id) / PROBES_FILE).is_file()
    if devices:
        workers = len(devices)
    prefixes = PrefixStore(results_dir)
    stored = frozenset(k for k in {r.first_stage for r in planned.values() if r.first_stage} if prefixes.exists(k))
    return BookPlan(list(planned.values()), per_chapter, usable_cores() if workers is None else int(workers), stored,
                    devices)


def plan_table(plan: BookPlan) -> str:
    """The plan for a terminal: runs per chapter, cached, and the estimate."""
    s = plan.summary()
    lines = [f"{'chapter':<24} {'runs':>5} {'cached':>7} {'core-min':>9}"]
    for name, c in s["chapters"].items():
        lines.append(f"{name:<24} {c['runs']:>5} {c['cached']:>7} {c['estimated_core_minutes']:>9.1f}")
    basis = ", ".join(f"{n} {b}" for b, n in s["estimate_basis"].items() if n) or "nothing to compute"
    lines += ["", f"{s['runs']} distinct runs ({s['shared_between_chapters']} asked by more than one chapter), "
                  f"{s['cached']} cached, {s['to_compute']} to compute: about {s['estimated_core_minutes']:.0f} "
                  f"core-minutes, {s['estimated_wall_minutes']:.0f} minutes on {s['workers']} worker(s), "
                  f"longest first (estimated from: {basis}; 'nominal' is a per-profile guess that the "
                  "measured times of a finished build replace)",
              f"{s['shared_prefixes']} first stage(s) trained once for several runs: {s['first_stages_loaded']} "
              f"run(s) load theirs, saving about {s['saved_core_minutes']:.0f} core-minutes"]
    if s["probed"]:
        lines.append(f"{s['probed']} run(s) probed from their stage weights after training (not trained again for "
                     f"it), {s['probes_to_compute']} still to probe")
    return "\n".join(lines)


@dataclass
class PlanOutcome:
    """What computing the plan did."""

    computed: list[str] = field(default_factory=list)
    loaded: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def run_plan(plan: BookPlan, results_dir: str | Path, scheduler: str | None = None,
             progress: bool = True) -> PlanOutcome:
    """Compute every missing run of ``plan``, longest first, on its workers (or at a Dask ``scheduler``),
    with one progress bar over the whole plan, then the probes the chapters read from the finished runs'
    stage weights (on the local workers: seconds per run). A failed run is reported and the others go on
    (the chapter that asks for it says so)."""
    from tqdm.auto import tqdm

    outcome = PlanOutcome()
    todo = plan.todo
    start = time.perf_counter()
    bar = tqdm(total=len(todo), desc="runs of the book", unit="run", disable=not progress or not todo)

    def report(status: str, config: Any, message: str) -> None:
        if status in ("computed", "done", "error"):
            bar.update(1)

    try:
        for kind in KINDS:
            configs = [r.config for r in todo if r.kind is kind]
            if not configs:
                continue
            workers = plan.workers if plan.workers > 1 else None
            done = execute(kind, configs, results_dir, workers=workers, scheduler=scheduler, progress=False,
                           report=report, devices=plan.devices)
            outcome.computed += done.computed
            outcome.loaded += done.loaded
            outcome.errors.update(done.errors)
    finally:
        bar.close()
    probed = [r.config for r in plan.runs if r.probed and not r.probes_cached]
    if probed:
        from .experiments.records import load_record
        from .experiments.run_probes import attach_probes

        folder = SEQUENCES.folder(results_dir)
        try:
            attach_probes([load_record(c.run_id, results_dir) for c in probed if folder.is_finished(c.run_id)],
                          plan.workers)
        except LungclError as exc:
            outcome.errors["probes"] = str(exc)
    outcome.seconds = time.perf_counter() - start
    return outcome


def build_planned_book(root: str | Path | None = None, profile: str = "cpu", source: str = "phantom",
                       only: list[str] | None = None, data_dir: str | Path | None = None,
                       results_dir: str | Path | None = None, seed: int = 0, workers: int | None = None,
                       scheduler: str | None = None, progress: Callable[[str], None] = print,
                       overrides: dict[str, Any] | None = None, runs_per_gpu: int | str | None = None,
                       **build: Any) -> tuple[BookPlan, PlanOutcome, BuildReport]:
    """``lungcl book``: the plan computed first (every core), then the chapters executed (they load)
    and the book rendered by :func:`lungcl.book.build.build_book` (``build``: its other options)."""
    if build.get("pdf") and build.get("render", True):
        find_chromium()  # no Chromium: one line before any run is computed
    root = Path(root).resolve() if root else project_root()
    data_dir, results_dir = book_folder("data", data_dir, root), book_folder("results", results_dir, root)
    settings = dict(root=root, profile=profile, source=source, only=only, data_dir=data_dir,
                    results_dir=results_dir, seed=seed, overrides=overrides)
    plan = book_plan(**settings, workers=workers, runs_per_gpu=runs_per_gpu)
    s = plan.summary()
    where = f" ({s['runs_per_gpu']} per GPU on {s['gpus']} GPU(s))" if plan.devices else ""
    progress(f"the book's plan: {s['runs']} runs, {s['cached']} cached, {s['to_compute']} to compute on "
             f"{plan.workers} worker(s){where} (about {s['estimated_wall_minutes']:.0f} min; {s['first_stages_loaded']} "
             f"load a first stage trained once for several runs)")
    outcome = run_plan(plan, results_dir, scheduler=scheduler)
    if outcome.computed or outcome.errors:
        progress(f"the plan: {len(outcome.computed)} run(s) computed in {outcome.seconds:.0f} s"
                 + (f", {len(outcome.errors)} failed (the chapters that asked for them say so)"
                    if outcome.errors else ""))
        labels = {r.config.run_id: r.config.label for r in plan.runs}
        for run_id, message in list(outcome.errors.items())[:5]:
            progress(f"    {labels.get(run_id, run_id)}: {message}")
    report = build_book(**settings, progress=progress, workers=plan.workers, **build)
    return plan, outcome, report


def plan_json(plan: BookPlan) -> str:
    return json.dumps(plan.summary(), indent=1)


__all__ = ["BookPlan", "PlannedRun", "PlanOutcome", "NOMINAL_RUN_S", "book_plan", "build_planned_book",
           "cell_values", "makespan", "plan_json", "plan_table", "run_plan"]
