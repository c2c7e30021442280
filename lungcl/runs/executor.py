"""Many runs at once: in this process, in local worker processes, or on a Dask cluster; the same records each way.

A grid is a list of independent configurations, deduplicated by run id. Finished
(current) runs are loaded; the patch stores are prepared once; the rest are
computed one after the other (``workers`` 1), by ``workers`` local processes
(one torch thread each), or on Dask: a ``LocalCluster`` (``dask=True``) or an
existing scheduler (``scheduler``, e.g. dask-jobqueue). On Dask each run is one
task keyed by its run id, so it is never computed twice at once. One failing run
is reported and the others go on; a worker that dies loses only its run. Dask is
optional: ``pip install "lungcl[dask]"``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from contextlib import closing
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Generator, Iterable, Iterator

from ..errors import LungclError
from .engine import RunKind, compute, current_record, prepare_stores, run_in_worker
from .folder import RunBusy, RunRecord
from .devices import device_worker_init
from .lifeline import guarded, signal_pids, stop_workers, worker_init

Report = Callable[[str, Any, str], None]  # (status, config, message or record path)
Stream = Iterator[tuple[Any, "str | None"]]  # (config, error or None), as runs finish


@dataclass
class GridOutcome:
    """What a grid did: the records (in the order asked), what was computed, loaded or failed."""

    records: list[RunRecord] = field(default_factory=list)
    computed: list[str] = field(default_factory=list)
    loaded: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # run id -> one-line message
    configs: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def unique_configs(configs: Iterable[Any]) -> list[Any]:
    """The configurations with repeated run ids dropped (first kept)."""
    seen: dict[str, Any] = {}
    for c in configs:
        seen.setdefault(c.run_id, c)
    return list(seen.values())


def execute(kind: RunKind, configs: Iterable[Any], results: str | Path, workers: int | None = None,
            scheduler: str | None = None, dask: bool = False, progress: bool = True,
            report: Report | None = None, devices: list[int] | None = None,
            order: Callable[[list[Any], int], list[Any]] | None = None) -> GridOutcome:
    """Every run of the grid, loading current ones; failures are collected, the rest go on.

    ``devices``: the GPU of each local worker (:func:`lungcl.runs.devices.gpu_workers`), several runs
    per GPU at once; the number of workers is then its length. ``order(runs to compute, workers)``: the
    order in which they are handed to parallel workers (the records come back in the order asked)."""
    configs = unique_configs(configs)
    folder = kind.folder(results)
    outcome = GridOutcome(configs={c.run_id: c for c in configs})
    report = report or (lambda status, config, msg: None)
    todo = []
    for c in configs:
        try:
            record = current_record(kind, c, results)
        except LungclError as exc:
            outcome.errors[c.run_id] = str(exc)
            report("error", c, str(exc))
            continue
        if record is None:
            todo.append(c)
        else:
            outcome.loaded.append(c.run_id)
            report("done", c, str(folder.record_path(c.run_id)))
    prepare_stores(todo, progress)
    root = str(Path(results).resolve())
    parallel = len(devices) if devices and len(devices) > 1 else (workers or 1)
    if order is not None and len(todo) > 1 and (scheduler or dask or parallel > 1):
        todo = order(todo, parallel)
    if scheduler or dask:
        stream = _on_dask(kind, todo, root, workers, scheduler)
    elif devices and len(devices) > 1 and len(todo) > 1:
        stream = _in_processes(kind, todo, root, len(devices), devices)
    elif workers and workers > 1 and len(todo) > 1:
        stream = _in_processes(kind, todo, root, workers)
    else:
        stream = _serially(kind, todo, results, progress, report)
    with closing(stream):  # interrupted (Ctrl-C, SIGTERM): the stream stops its workers at once
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
    outcome.records = [kind.load(c.run_id, results) for c in configs if c.run_id not in outcome.errors]
    return outcome


def records_or_raise(outcome: GridOutcome) -> list[RunRecord]:
    """The grid's records; any failure -> one LungclError naming the first."""
    if outcome.errors:
        first = next(iter(outcome.errors.values()))
        raise LungclError(f"{len(outcome.errors)} run(s) of the grid failed, e.g.: {first}")
    return outcome.records


_BY_OTHER = "finished by another process"  # a stream's "error" for a run another grid computed


def _serially(kind: RunKind, configs: list[Any], results: str | Path, progress: bool, report: Report) -> Stream:
    """Each run in turn; runs another process holds are skipped, then waited for at the end."""
    busy = []
    for c in configs:
        try:
            compute(kind, c, results, progress=progress, prepare=False)
            yield c, None
        except RunBusy:
            busy.append(c)
        except LungclError as exc:
            yield c, str(exc)
    folder = kind.folder(results)
    for c in busy:
        report("waiting", c, "another process is computing it")
        try:
            with folder.lock(c.run_id, wait=True):
                finished = folder.is_finished(c.run_id)
            if finished:
                kind.load(c.run_id, results)
                yield c, _BY_OTHER
            else:  # the other process stopped without finishing it: compute it here
                compute(kind, c, results, progress=progress, prepare=False, wait=True)
                yield c, None
        except LungclError as exc:
            yield c, str(exc)


def _in_processes(kind: RunKind, configs: list[Any], results: str, workers: int,
                  devices: list[int] | None = None) -> Stream:
    """``workers`` local processes (spawned: no torch state inherited), one run each at a time; with
    ``devices``, worker i computes on GPU ``devices[i]``.

    A worker that dies (a native crash, the kernel's out-of-memory killer) breaks its pool and every
    pending future with it; the runs it did not finish are handed to a new pool, except the ones a worker
    had started (one of them killed it), which are then computed one at a time, each in a pool of its own:
    only the run that kills its worker again fails. The workers die with this process (:mod:`.lifeline`);
    stopped early (an exception, Ctrl-C, SIGTERM, the stream closed), it cancels the queued runs and stops
    the workers' current ones.
    """
    queue, suspects = list(configs), []
    while queue or suspects:
        alone = not queue
        if alone:
            batch, width = [suspects.pop(0)], 1
        else:
            batch, queue, width = queue, [], workers
        unfinished, started = yield from _one_pool(kind, batch, results, width, devices)
        if alone:
            for c in unfinished:
                yield c, (f"run {c.run_id} failed in its worker: the worker died while computing it, alone "
                          f"(a native crash or the out-of-memory killer; the run's partial state is kept)")
        elif not started:  # the pool broke before any run began (its workers cannot start): a retry would loop
            for c in unfinished:
                yield c, f"run {c.run_id} failed: the pool's workers died before starting any run"
        else:  # each break that started a run moves it out of the queue: the loop ends
            queue = [c for c in unfinished if c.run_id not in started]
            suspects += [c for c in unfinished if c.run_id in started]


def _one_pool(kind: RunKind, configs: list[Any], results: str, workers: int, devices: list[int] | None
              ) -> Generator[tuple[Any, "str | None"], None, tuple[list[Any], set[str]]]:
    """One process pool over ``configs``, yielding (config, error or None) as runs finish; returns the runs
    a dead worker left unfinished and the ids of every run a worker started."""
    context = mp.get_context("spawn")
    announced = context.SimpleQueue()  # written before a run starts, unbuffered: a worker's death loses nothing
    if devices:
        slots = context.Queue()
        for index in devices[:workers]:
            slots.put(index)
        start, start_args = device_worker_init, (os.getpid(), slots)
    else:
        start, start_args = worker_init, (os.getpid(),)
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_announcing_init,
                               initargs=(announced, start, start_args))
    finished, unfinished = False, []
    try:
        futures = {pool.submit(_announced, c.run_id, run_in_worker, kind, c.with_absolute_paths().to_dict(),
                               results): c for c in configs}
        for fut in as_completed(futures):
            config = futures[fut]
            try:
                yield config, fut.result()
            except BrokenProcessPool:  # a worker died: this run may be innocent, retried by the caller
                unfinished.append(config)
            except Exception as exc:  # the call itself failed in its worker
                yield config, f"run {config.run_id} failed in its worker: {type(exc).__name__}: {exc}"
        finished = True
    finally:
        if not finished:
            stop_workers(list((pool._processes or {}).values()))  # no public way to stop a pool's workers
        pool.shutdown(wait=True, cancel_futures=True)
    started = set()
    while not announced.empty():
        started.add(announced.get())
    announced.close()
    return unfinished, started


_ANNOUNCED: Any = None  # in a worker: where it writes the id of each run before computing it


def _announcing_init(announced: Any, start: Callable[..., Any], start_args: tuple) -> None:
    global _ANNOUNCED
    _ANNOUNCED = announced
    start(*start_args)


def _announced(run_id: str, fn: Callable[..., Any], *args: Any) -> Any:
    _ANNOUNCED.put(run_id)
    return guarded(fn, *args)


def _require_dask():
    try:
        import distributed
    except ImportError as exc:
        raise LungclError('--scheduler and Dask workers need Dask: pip install "dask[distributed]" '
                          '(or lungcl[dask])') from exc
    return distributed


def _on_dask(kind: RunKind, configs: list[Any], results: str, workers: int | None,
             scheduler: str | None) -> Stream:
    """(config, error or None) for each run, as they finish, on a LocalCluster or at ``scheduler``."""
    if not configs:
        return
    distributed = _require_dask()
    if scheduler:
        try:
            client = distributed.Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise LungclError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
        cluster, local_pids = None, []
    else:
        if workers is None or workers < 1:
            raise LungclError(f"--workers must be >= 1, got {workers}")
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                           dashboard_address=None, silence_logs=40)
        client = distributed.Client(cluster)
        local_pids = list(client.run(worker_init, os.getpid()).values())  # they die with this process
    finished = False
    try:
        by_key = {}
        futures = []
        for c in configs:
            fut = client.submit(partial(guarded, run_in_worker, kind), c.with_absolute_paths().to_dict(), results,
                                key=f"lungcl-{kind.name}-{c.run_id}", pure=False, retries=0)
            by_key[fut.key] = c
            futures.append(fut)
        for fut in distributed.as_completed(futures):
            config = by_key[fut.key]
            try:
                yield config, fut.result()
            except Exception as exc:  # a worker died or the task raised something unexpected
                yield config, f"run {config.run_id} failed in its worker: {type(exc).__name__}: {exc}"
        finished = True
    finally:
        if not finished:  # stopped early: the local workers end their runs now, not the cluster's way
            signal_pids(local_pids)
        client.close()
        if cluster is not None:
            cluster.close()


__all__ = ["GridOutcome", "Report", "execute", "records_or_raise", "unique_configs"]
