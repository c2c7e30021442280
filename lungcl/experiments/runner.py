"""Runs, grids and lambda sweeps over the results folder: compute what is missing, load the rest.

A finished run is its record on disk; asking for it again loads it. A grid is a
list of independent configurations, deduplicated by run id, computed serially
or through Dask (:mod:`lungcl.experiments.distributed`); one failing run is
reported and the others go on. An interrupted run resumes at its last finished
stage.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from ..errors import LungclError
from ..methods import check_strength
from .config import RunConfig, default_config
from .records import (Record, ResultsFolder, RunBusy, load_checkpoint, load_record, save_checkpoint,
                      save_run)

DEFAULT_RESULTS = "results"


def prepare_data(config: RunConfig, progress: bool = True, workers: int = 2) -> None:
    """The patch store the run reads (built when missing, at once when present)."""
    from ..data.prepare import prepare_store

    prepare_store(config.data_dir, source=config.source, profile=config.profile,
                  lidc_root=config.lidc_root, workers=workers, progress=progress)


def run(config: RunConfig, results: str | Path = DEFAULT_RESULTS, progress: bool = True,
        prepare: bool = True, threads: int | None = 1, wait: bool = False) -> Record:
    """The record of ``config``: loaded if finished, else computed (resuming a partial run) and saved.

    ``threads``: torch threads for the training (CPU numbers are bit-identical only for equal counts).
    A run another process is computing raises :class:`RunBusy`, or with ``wait`` is waited for.
    """
    folder = ResultsFolder(results).check(create=True)
    if folder.is_finished(config.run_id):
        return load_record(config.run_id, folder.root)
    if prepare:
        prepare_data(config, progress)
    from .sequence import train_run

    with folder.lock(config.run_id, wait=wait):
        if folder.is_finished(config.run_id):  # finished by another process while we waited
            return load_record(config.run_id, folder.root)
        partial_path = folder.run_dir(config.run_id) / "partial.pt"
        resume = _read_partial(partial_path, config)
        data, checkpoint = train_run(config, progress=progress, resume=resume, threads=threads,
                                     on_stage=lambda state: save_checkpoint(partial_path, state))
        return save_run(folder, data, checkpoint)


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


# ---------------------------------------------------------------- grids

@dataclass
class GridOutcome:
    """What a grid did: the records (in the order asked), what was computed, loaded or failed."""

    records: list[Record] = field(default_factory=list)
    computed: list[str] = field(default_factory=list)
    loaded: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # run id -> one-line message
    configs: dict[str, RunConfig] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


Report = Callable[[str, RunConfig, str], None]  # (status, config, message or record path)


def unique_configs(configs: Iterable[RunConfig]) -> list[RunConfig]:
    """The configurations with repeated run ids dropped (first kept)."""
    seen: dict[str, RunConfig] = {}
    for c in configs:
        seen.setdefault(c.run_id, c)
    return list(seen.values())


def execute_grid(configs: Iterable[RunConfig], results: str | Path = DEFAULT_RESULTS,
                 workers: int | None = None, scheduler: str | None = None, progress: bool = True,
                 report: Report | None = None) -> GridOutcome:
    """Every run of the grid, skipping finished ones; failures are collected, the rest go on."""
    configs = unique_configs(configs)
    folder = ResultsFolder(results).check(create=True)
    outcome = GridOutcome(configs={c.run_id: c for c in configs})
    report = report or (lambda status, config, msg: None)
    todo = []
    for c in configs:
        if folder.is_finished(c.run_id):
            try:
                load_record(c.run_id, folder.root)
                outcome.loaded.append(c.run_id)
                report("done", c, str(folder.record_path(c.run_id)))
            except LungclError as exc:
                outcome.errors[c.run_id] = str(exc)
                report("error", c, str(exc))
        else:
            todo.append(c)
    for key in {(c.data_dir, c.source, c.profile, c.lidc_root) for c in todo}:
        prepare_data(next(c for c in todo if (c.data_dir, c.source, c.profile, c.lidc_root) == key),
                     progress)
    if workers or scheduler:
        from .distributed import run_on_dask

        stream = run_on_dask(todo, folder.root, run_in_worker, workers=workers, scheduler=scheduler)
    else:
        stream = _run_serially(todo, folder.root, progress, report)
    for config, error in stream:
        if error is _BY_OTHER:
            outcome.loaded.append(config.run_id)
            report("done", config, str(folder.record_path(config.run_id)))
        elif error is None:
            outcome.computed.append(config.run_id)
            report("computed", config, str(folder.record_path(config.run_id)))
        else:
            outcome.errors[config.run_id] = error
            report("error", config, error)
    for c in configs:
        if c.run_id not in outcome.errors:
            outcome.records.append(load_record(c.run_id, folder.root))
    return outcome


def run_in_worker(config: dict, results: str) -> str | None:
    """Compute one run in a Dask worker process; None when done, else the one-line error."""
    import torch

    torch.set_num_threads(1)
    try:
        run(RunConfig.from_dict(config), results, progress=False, prepare=False)
        return None
    except LungclError as exc:
        return str(exc)


_BY_OTHER = "finished by another process"  # a stream's "error" for a run another grid computed


def _run_serially(configs: list[RunConfig], results: Path, progress: bool, report: Report):
    """Each run in turn; runs another process holds are skipped, then waited for at the end."""
    busy = []
    for c in configs:
        try:
            run(c, results, progress=progress, prepare=False)
            yield c, None
        except RunBusy:
            busy.append(c)
        except LungclError as exc:
            yield c, str(exc)
    folder = ResultsFolder(results)
    for c in busy:
        report("waiting", c, "another process is computing it")
        try:
            with folder.lock(c.run_id, wait=True):
                finished = folder.is_finished(c.run_id)
            if finished:
                load_record(c.run_id, results)
                yield c, _BY_OTHER
            else:  # the other process stopped without finishing it: compute it here
                run(c, results, progress=progress, prepare=False, wait=True)
                yield c, None
        except LungclError as exc:
            yield c, str(exc)


def run_grid(configs: Iterable[RunConfig], results: str | Path = DEFAULT_RESULTS,
             workers: int | None = None, scheduler: str | None = None, progress: bool = True) -> list[Record]:
    """The records of every configuration (computed when missing); any failure -> LungclError at the end."""
    outcome = execute_grid(configs, results, workers=workers, scheduler=scheduler, progress=progress)
    if outcome.errors:
        first = next(iter(outcome.errors.values()))
        raise LungclError(f"{len(outcome.errors)} run(s) of the grid failed, e.g.: {first}")
    return outcome.records


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
                 profile: str = "cpu", strengths: dict[str, float] | None = None,
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
