"""Grids through Dask distributed: a local process pool, or an existing cluster (e.g. dask-jobqueue).

Each run is one Dask task keyed by its run id, so a run is never computed twice
at once; it needs only its configuration, the patch store and the results
folder (which must be shared by every worker). Workers use one torch thread
each. A worker that dies loses only its run; the next ``grid`` call redoes it.
Dask is optional: ``pip install "lungcl[dask]"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

from ..errors import LungclError
from .config import RunConfig


def _require_dask():
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        raise LungclError('grid --workers / --scheduler need Dask: pip install "dask[distributed]" '
                          '(or lungcl[dask])') from exc
    return distributed


Worker = Callable[[dict, str], "str | None"]  # (config as a dict, results folder) -> error or None


def run_on_dask(configs: list[RunConfig], results: str | Path, worker: Worker, workers: int | None = None,
                scheduler: str | None = None) -> Iterator[tuple[RunConfig, str | None]]:
    """(config, error or None) for each run, as they finish, on a LocalCluster or at ``scheduler``.

    ``worker`` computes one run in a worker process; it is passed in (Dask pickles it by name)
    rather than imported, so this module does not import the runner that calls it.
    """
    if not configs:
        return
    distributed = _require_dask()
    results = str(Path(results).resolve())
    if scheduler:
        try:
            client = distributed.Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise LungclError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
        cluster = None
    else:
        if workers is None or workers < 1:
            raise LungclError(f"--workers must be >= 1, got {workers}")
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                           dashboard_address=None, silence_logs=40)
        client = distributed.Client(cluster)
    try:
        by_key = {}
        futures = []
        for c in configs:
            key = f"lungcl-run-{c.run_id}"
            fut = client.submit(worker, _absolute(c).to_dict(), results, key=key, pure=False,
                                retries=0)
            by_key[fut.key] = c
            futures.append(fut)
        for fut in distributed.as_completed(futures):
            config = by_key[fut.key]
            try:
                yield config, fut.result()
            except Exception as exc:  # a worker died or the task raised something unexpected
                yield config, f"run {config.run_id} failed in its worker: {type(exc).__name__}: {exc}"
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _absolute(config: RunConfig) -> RunConfig:
    """Paths made absolute, so a worker started elsewhere finds the same data."""
    lidc = str(Path(config.lidc_root).resolve()) if config.lidc_root else None
    return config.replace(data_dir=str(Path(config.data_dir).resolve()), lidc_root=lidc)
