"""A sequence run's first stage, computed once for every run that trains the same one.

No penalty acts before a task has been learned: before the first consolidation L2's and EWC's
quadratic is empty (their penalty is zero and the proximal step does nothing) and joint training
mixes only the first task, so SGD, L2, EWC, online EWC and joint train the same stage 1 at any
lambda (tests/test_first_stage.py checks it bit for bit). Each head starts from its task's name
(:func:`lungcl.experiments.sequence.build_model`), the first task's data stream is seeded by its
name or first place, and the evaluator pools patches in the tasks' name order, so stage 1 is also
the same for every order of the later tasks. The key hashes every setting stage 1 reads (all but
:data:`NOT_READ`), the patch store and the machine's arithmetic (torch, CPU instruction set,
threads); the prefix holds the kept weights, the stage's curves, its result and the untrained
network's scores, and a run built on it records what it would have computed itself.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Callable

import torch

from ..data.store import store_digest
from ..runs.config import hash_id
from ..runs.prefix import PrefixStore
from .config import CONFIG_VERSION, RunConfig
from .evaluation import SPLITS
from .trainer import StageContext, StageResult, resolve_device

# the methods whose first stage is plain SGD on the first task (no penalty before a task is learned)
FIRST_STAGE_AS_SGD = ("sgd", "l2", "ewc", "online_ewc", "joint", "frozen")
# settings stage 1 does not read: the method's, what is measured after the stage (reports, probes), the
# later tasks' order (the set of tasks is read: stage 1 scores every task), BatchNorm freezing (from stage 2
# on: the network's normalisation is read as ``model_norm``) and where files are
NOT_READ = ("kind", "method", "strength", "fisher_samples", "fisher", "gamma", "penalty_step", "probes", "n_boot",
            "tasks", "bn", "freeze_bn_stats", "norm", "device", "data_dir", "lidc_root")
PREFIX_VERSION = 1  # what a stored prefix holds


def shares_first_stage(config: RunConfig) -> bool:
    """Whether ``config``'s first stage is one other runs may share (a sequence of two or more tasks whose
    method trains stage 1 as SGD)."""
    return config.kind == "sequence" and config.method in FIRST_STAGE_AS_SGD and len(config.tasks) > 1


def first_stage_settings(config: RunConfig, store_digest: str | None = None, threads: int | None = None) -> dict:
    """Everything stage 1 of ``config`` reads, as JSON-ready values (the prefix key's text); ``threads``: torch's
    (None: this process's now; CPU bits depend on it)."""
    settings = {k: v for k, v in config.to_dict().items() if k not in NOT_READ}
    settings.update(first_task=config.tasks[0], task_set=sorted(config.tasks), model_norm=config.model_norm,
                    device=resolve_device(config.device).type, config_version=CONFIG_VERSION,
                    data_version=config.data_version, store=store_digest, prefix_version=PREFIX_VERSION,
                    torch=torch.__version__, cpu=torch.backends.cpu.get_cpu_capability(),
                    threads=torch.get_num_threads() if threads is None else int(threads))
    return settings


def first_stage_key(config: RunConfig, store_digest: str | None = None, threads: int | None = None) -> str:
    """The key of ``config``'s first stage: equal for two runs exactly when their stage 1 is the same."""
    settings = first_stage_settings(config, store_digest, threads)
    return hash_id(json.dumps(settings, sort_keys=True, separators=(",", ":")))


def planned_first_stage(config: object, digests: dict) -> str | None:
    """The key of ``config``'s first stage as a grid's worker computes it (one torch thread), if it shares
    one (None for any other run); ``digests`` remembers each patch store's digest between calls."""
    if not (isinstance(config, RunConfig) and shares_first_stage(config)):
        return None
    store = config.store
    if store not in digests:
        digests[store] = store_digest(store.data_dir, store.source, store.profile)
    return first_stage_key(config, digests[store], threads=1)


def first_stage(ctx: StageContext, store: PrefixStore | None, train: Callable[[], StageResult],
                untrained: Callable[[], dict]) -> tuple[StageResult, dict]:
    """(stage 1's result, the untrained network's scores per task): computed by ``train`` and ``untrained``
    (and stored for the other runs when ``store`` is given and the run shares its first stage), or loaded
    from ``store`` into ``ctx`` (weights, curves, step count) as if computed here."""
    config = ctx.config
    if store is None or not shares_first_stage(config):
        result = train()
        return result, untrained()
    provenance = next(iter(ctx.splits.values())).provenance or {}
    key = first_stage_key(config, provenance.get("manifest_sha256"))
    t0 = time.perf_counter()
    prefix, computed = store.shared(key, lambda: _computed(ctx, train, untrained))
    stage = json.loads(prefix["stage"])
    result = StageResult(**stage["result"])
    if computed:
        result.timings["first_stage"] = "computed"
        return result, stage["initial"]
    _load_into(ctx, prefix, stage)
    result.timings.update(first_stage="loaded", first_stage_s=stage["seconds"],
                          first_stage_load_s=time.perf_counter() - t0)
    tasks = list(config.tasks)
    return result, {t: stage["initial"][t] for t in tasks}


def _computed(ctx: StageContext, train: Callable[[], StageResult], untrained: Callable[[], dict]) -> dict:
    """Train stage 1 here (its curve points go to the run as always) and pack it as a prefix."""
    t0 = time.perf_counter()
    rows: list[dict] = []
    append = ctx.curve
    ctx.curve = lambda row: (rows.append(row), append(row))[-1]
    try:
        result = train()
    finally:
        ctx.curve = append
    initial = untrained()
    rng = torch.get_rng_state()
    stage = {"result": asdict(result), "rows": rows, "initial": initial, "global_step": ctx.global_step,
             "seconds": time.perf_counter() - t0}
    return {"model": {k: v.detach().cpu().clone() for k, v in ctx.model.state_dict().items()},
            "rng": rng, "stage": json.dumps(stage)}


def _load_into(ctx: StageContext, prefix: dict, stage: dict) -> None:
    """The stored stage 1 in ``ctx``: weights (the kept checkpoint), curve points in this run's order of tasks,
    the step count, torch's generator, and the evaluator's memory of the kept weights' scores."""
    ctx.model.load_state_dict(prefix["model"])
    ctx.model.eval()
    for row in in_task_order(stage["rows"], list(ctx.config.tasks)):
        ctx.curve(row)
    ctx.global_step = int(stage["global_step"])
    torch.set_rng_state(prefix["rng"])
    # the stage's reports read the kept weights' scores of the whole pool, as a run that trained them does
    ctx.evaluator.curve_point(ctx.model, list(ctx.config.tasks))


def in_task_order(rows: list[dict], tasks: list[str]) -> list[dict]:
    """Curve rows as a run of ``tasks`` records them: each evaluation's rows (a run of rows at one step) by
    the task's place in ``tasks``, then by split (validation first)."""
    out: list[dict] = []
    group: list[dict] = []
    for row in rows + [None]:  # type: ignore[list-item]
        if group and (row is None or row["step"] != group[-1]["step"]):
            out += sorted(group, key=lambda r: (tasks.index(r["task"]), SPLITS.index(r["split"])))
            group = []
        if row is not None:
            group.append(row)
    return out


__all__ = ["FIRST_STAGE_AS_SGD", "NOT_READ", "first_stage", "first_stage_key", "first_stage_settings", "planned_first_stage",
           "in_task_order", "shares_first_stage"]
