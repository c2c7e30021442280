"""Continual-learning runs, grids and lambda sweeps through the run engine (:mod:`lungcl.runs`).

A finished run is its record on disk; asking for it again loads it. This module
gives the engine the sequences' :data:`SEQUENCES` kind (record class, loader,
``train``: resuming an interrupted run at its last finished stage from
``partial.pt``) and builds the grids' configurations.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterable

from ..errors import LungclError
from ..methods import check_strength
from ..profiles import DEFAULT_PROFILE
from ..runs.engine import DEFAULT_RESULTS, RunKind, compute
from ..runs.executor import GridOutcome, Report, execute, records_or_raise
from ..runs.folder import load_checkpoint, save_checkpoint
from ..runs.prefix import PrefixStore
from ..schedule import Job, plan_schedule
from .config import RunConfig, default_config
from .first_stage import planned_first_stage
from .records import Record, load_record


def train_sequence(config: RunConfig, run_dir: Path, progress: bool, threads: int | None) -> tuple[dict, dict]:
    """Train ``config`` (resuming from ``partial.pt`` if an interrupted run left one); save each stage there.
    A first stage shared with other runs is taken from (or left in) the results folder's prefixes."""
    from .sequence import train_run

    partial_path = run_dir / "partial.pt"
    return train_run(config, progress=progress, resume=_read_partial(partial_path, config), threads=threads,
                     on_stage=lambda state: save_checkpoint(partial_path, state),
                     prefixes=PrefixStore(run_dir.parent.parent))


SEQUENCES = RunKind(name="sequence", subfolder="", record_type=Record, load=load_record, train=train_sequence)


def run(config: RunConfig, results: str | Path = DEFAULT_RESULTS, progress: bool = True,
        prepare: bool = True, threads: int | None = 1, wait: bool = False) -> Record:
    """The record of ``config``: loaded if finished, else computed (resuming a partial run) and saved.

    ``threads``: torch threads for the training (CPU numbers are bit-identical only for equal counts).
    A run another process is computing raises :class:`~lungcl.runs.folder.RunBusy`, or with ``wait``
    is waited for.
    """
    return compute(SEQUENCES, config, results, progress=progress, prepare=prepare, threads=threads, wait=wait)


def _read_partial(path: Path, config: RunConfig) -> dict | None:
    """The state saved after the last finished stage, if it is intact and is this run's."""
    if not path.exists():
        return None
    try:
        state = load_checkpoint(path)
    except LungclError as exc:
        print(f"lungcl: ignoring {exc}; the run starts again", file=sys.stderr)
        return None
    if state.get("run_id") != config.run_id or "progress" not in state:
        return None
    return state


def execute_grid(configs: Iterable[RunConfig], results: str | Path = DEFAULT_RESULTS,
                 workers: int | None = None, scheduler: str | None = None, progress: bool = True,
                 report: Report | None = None, dask: bool = False, devices: list[int] | None = None
                 ) -> GridOutcome:
    """Every run of the grid, skipping finished ones; failures are collected, the rest go on.

    ``workers`` > 1: that many local processes (a Dask LocalCluster with ``dask``); ``scheduler``:
    an existing Dask cluster; ``devices``: the GPU of each local worker (several runs per GPU).
    """
    return execute(SEQUENCES, configs, results, workers=workers, scheduler=scheduler, dask=dask,
                   progress=progress, report=report, devices=devices,
                   order=lambda todo, n: leaders_first(todo, results, n))


def leaders_first(configs: list[RunConfig], results: str | Path, workers: int) -> list[RunConfig]:
    """The runs in the order :func:`lungcl.schedule.plan_schedule` hands them to ``workers``: the run that
    trains a shared first stage before the runs that load it (which would otherwise wait on the stage's
    lock, their core idle), longest first at a nominal cost of one unit per stage."""
    digests: dict = {}
    jobs = [Job(float(len(c.tasks)), planned_first_stage(c, digests), 1.0 / len(c.tasks)) for c in configs]
    schedule = plan_schedule(jobs, workers, set(PrefixStore(results).keys()))
    return [configs[i] for i in schedule.order]


def run_grid(configs: Iterable[RunConfig], results: str | Path = DEFAULT_RESULTS,
             workers: int | None = None, scheduler: str | None = None, progress: bool = True) -> list[Record]:
    """The records of every configuration (computed when missing); any failure -> LungclError at the end."""
    return records_or_raise(execute_grid(configs, results, workers=workers, scheduler=scheduler,
                                         progress=progress))


def parse_int_range(spec: str, what: str) -> list[int]:
    """``0-4`` or ``0,2,3`` -> integers."""
    out: list[int] = []
    try:
        for part in spec.split(","):
            part = part.strip()
            if "-" in part[1:]:
                lo, hi = part.split("-", 1)
                out.extend(range(int(lo), int(hi) + 1))
            elif part:
                out.append(int(part))
    except ValueError as exc:
        raise LungclError(f"cannot read {what} {spec!r}; write e.g. 0-4 or 0,2") from exc
    if not out:
        raise LungclError(f"no {what} in {spec!r}")
    return out


def parse_floats(spec: str, what: str) -> list[float]:
    try:
        values = [float(v) for v in spec.split(",") if v.strip()]
    except ValueError as exc:
        raise LungclError(f"cannot read {what} {spec!r}; write e.g. 1,10,100") from exc
    if not values:
        raise LungclError(f"no {what} in {spec!r}")
    return values


def grid_configs(orders: list[str], methods: list[str], folds: list[int], seeds: list[int],
                 profile: str = DEFAULT_PROFILE, strengths: dict[str, float] | None = None,
                 **overrides) -> list[RunConfig]:
    """orders x methods x folds x seeds, each from the profile with ``overrides``."""
    out = []
    for order in orders:
        for method in methods:
            for fold in folds:
                for seed in seeds:
                    settings = {**overrides, "tasks": order, "method": method, "fold": fold, "seed": seed,
                                "strength": (strengths or {}).get(method, overrides.get("strength"))}
                    out.append(default_config(profile, **settings))
    return out


def sweep_configs(base: RunConfig, values: list[float]) -> list[RunConfig]:
    """``base`` at each lambda in ``values``."""
    for v in values:
        check_strength(v)
    return [base.replace(strength=float(v)) for v in values]
