"""``lungcl run | grid | sweep-lambda | tune | show``: continual-learning experiments as cached records."""

from __future__ import annotations

import argparse

import numpy as np

from ..errors import LungclError
from .common import RESULTS_HELP, RUN_FLAGS, add_run_options, print_record, refuse_flagged


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="train one task sequence (or single-task baselines); cached by config",
                       description="Train one network on the tasks one after another; the record is saved "
                                   "under --results and loaded instantly next time. The last line printed "
                                   "is the record's path.")
    _tasks_args(p)
    p.add_argument("--method", default="sgd", help="sgd, l2, ewc, online_ewc, frozen or joint (default sgd)")
    p.add_argument("--lambda", dest="strength", type=float, default=None,
                   help="penalty strength of l2 / ewc / online_ewc (default: the profile's)")
    p.add_argument("--fold", type=int, default=0, help="cross-validation fold 0..4 (default 0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--single-task", action="store_true",
                   help="the single-task baselines: each task trained alone, from scratch")
    p.add_argument("--kind", choices=("sequence", "single_task"), default=None, help="same as --single-task")
    p.add_argument("--json", action="store_true", help="print the record as JSON on stdout")
    _common(p)
    p.set_defaults(func=cmd_run)

    g = sub.add_parser("grid", help="orders x methods x folds x seeds; resumable, optionally on Dask",
                       description="Run every combination, skipping finished runs; an interrupted grid "
                                   "resumes where it stopped.")
    g.add_argument("--orders", default="ABC",
                   help="'all' (the six thesis orders), letter orders such as ABC,BAC, or one order of "
                        "named characteristics such as spiculation,margin,texture (several: separate "
                        "them with ';')")
    g.add_argument("--methods", default="sgd,l2,ewc", help="comma-separated methods (default sgd,l2,ewc)")
    g.add_argument("--folds", default="0", help="e.g. 0-4 or 0,2 (default 0)")
    g.add_argument("--seeds", default="0", help="e.g. 0-2 (default 0)")
    _dask_args(g)
    _common(g)
    g.set_defaults(func=cmd_grid)

    s = sub.add_parser("sweep-lambda", help="one order and method at several lambdas (resumable)")
    _tasks_args(s)
    s.add_argument("--method", default="ewc", help="l2, ewc or online_ewc (default ewc)")
    s.add_argument("--values", required=True, help="lambdas, e.g. 1,10,100,1000")
    s.add_argument("--folds", default="0")
    s.add_argument("--seeds", default="0")
    _dask_args(s)
    _common(s)
    s.set_defaults(func=cmd_sweep)

    t = sub.add_parser("tune", help="choose lambda on the fold's validation split over a decade grid",
                       description="Train the order at every lambda of a decade grid (cached, resumable) and "
                                   "pick the lambda with the best validation criterion; test numbers are "
                                   "never read. The tune record (whole curve + pick) is saved under "
                                   "--results/tunes.")
    _tasks_args(t)
    t.add_argument("--method", default="ewc", help="l2, ewc or online_ewc (default ewc)")
    t.add_argument("--values", default=None,
                   help="lambdas, e.g. 1,10,100 (default: ewc/online_ewc 1e0..1e6, l2 1e-3..1e3, per decade)")
    t.add_argument("--criterion", default="final_val_bacc",
                   help="final_val_bacc (default: mean final validation balanced accuracy) or new_task_val_bacc")
    t.add_argument("--fold", type=int, default=0)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--seeds", default=None,
                   help="several seeds, e.g. 0-2: each lambda is trained at every seed and scored by the "
                        "criterion's mean over them (default: --seed alone)")
    t.add_argument("--json", action="store_true", help="print the tune record as JSON")
    _dask_args(t)
    _common(t)
    t.set_defaults(func=cmd_tune)

    sh = sub.add_parser("show", help="a record's accuracy matrix, forgetting and per-stage table")
    sh.add_argument("ref", metavar="RUN_ID|PATH", help="a run id (or unique prefix), run folder or record.json")
    sh.add_argument("--results", default=None, help=RESULTS_HELP)
    sh.add_argument("--split", choices=("test", "val"), default="test")
    sh.add_argument("--metric", choices=("accuracy", "balanced_accuracy"), default="balanced_accuracy",
                    help="the metric of the matrix and summary (default balanced accuracy, which a network "
                         "answering one class cannot flatter; accuracy: the thesis's published metric)")
    sh.add_argument("--json", action="store_true", help="print the record as JSON")
    sh.set_defaults(func=cmd_show)


def _tasks_args(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--order", default=None, help="a thesis order of A, B, C such as ABC (default ABC)")
    group.add_argument("--tasks", default=None,
                       help="characteristics in order, e.g. spiculation,margin,texture (or ABC, 'all')")


def _common(p: argparse.ArgumentParser) -> None:
    add_run_options(p, "--set lr=0.05 --set epochs=20")
    p.add_argument("--lidc-root", default=None, help="the LIDC-IDRI folder (for --source dicom)")


def _dask_args(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--workers", type=int, default=None,
                       help="run in N local processes (one torch thread each)")
    group.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="send the runs to an existing Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--dask", action="store_true",
                   help="run the --workers processes as a Dask LocalCluster (needs lungcl[dask])")
    p.add_argument("--runs-per-gpu", default=None, metavar="N|auto",
                   help="with CUDA GPUs: runs computed at once on each GPU, one worker each (default "
                        "auto: as many as fit its memory)")


# the settings each command sets with a flag of its own (refused in --set, the flag named)
TASK_FLAG = {"tasks": "--tasks or --order"}
FLAGS = {
    "run": {**TASK_FLAG, "method": "--method", "strength": "--lambda", "fold": "--fold", "seed": "--seed",
            "kind": "--single-task"},
    "grid": {"tasks": "--orders", "method": "--methods", "fold": "--folds", "seed": "--seeds"},
    "sweep-lambda": {**TASK_FLAG, "method": "--method", "strength": "--values", "fold": "--folds",
                     "seed": "--seeds"},
    "tune": {**TASK_FLAG, "method": "--method", "strength": "--values", "fold": "--fold", "seed": "--seed or --seeds"},
}


def _base_settings(args: argparse.Namespace) -> dict:
    """The --source / --data-dir / --lidc-root settings and the --set ones (none that has its own flag)."""
    from ..experiments.config import parse_overrides

    settings = {"source": args.source, "data_dir": args.data_dir, "lidc_root": args.lidc_root}
    overrides = parse_overrides(args.overrides)
    refuse_flagged(overrides, {**RUN_FLAGS, "lidc_root": "--lidc-root", **FLAGS.get(getattr(args, "command", ""), {})})
    settings.update(overrides)
    return settings


def _task_spec(args: argparse.Namespace) -> str:
    return args.tasks or args.order or "ABC"


def cmd_run(args: argparse.Namespace) -> int:
    from ..experiments import default_config, run
    from ..methods import check_method, check_strength

    kind = "single_task" if args.single_task else (args.kind or "sequence")
    if args.strength is not None:
        check_strength(args.strength)
    settings = {"tasks": _task_spec(args), "method": check_method(args.method), "fold": args.fold,
                "seed": args.seed, "kind": kind, "strength": args.strength, **_base_settings(args)}
    config = default_config(args.profile, **settings)
    return print_record(run(config, args.results, progress=not args.quiet), args.json, render_record)


def _grid_report(total: int):
    state = {"n": 0}

    def report(status: str, config, message: str) -> None:
        if status == "waiting":  # not an outcome: the run's line follows once the other process is done
            print(f"        waiting  {config.run_id}  {config.label}: {message}", flush=True)
            return
        state["n"] += 1
        line = f"[{state['n']}/{total}] {status:8s} {config.run_id}  {config.label}"
        if status == "error":
            line += f"\n    {message}"
        print(line, flush=True)
    return report


def _devices(args: argparse.Namespace, profile: str) -> list[int] | None:
    """The GPU of each local worker (several runs per GPU), or None (CPU, or a Dask cluster's own)."""
    from ..runs.devices import gpu_workers

    if args.scheduler or args.dask:
        if args.runs_per_gpu is not None:
            raise LungclError("--runs-per-gpu places local workers on GPUs; a Dask cluster places its own "
                              "(leave --runs-per-gpu out with --scheduler or --dask)")
        return None
    return gpu_workers(args.runs_per_gpu, profile)


def _run_many(configs: list, args: argparse.Namespace) -> int:
    from ..experiments import execute_grid, records_table
    from ..runs.executor import unique_configs

    configs = unique_configs(configs)
    devices = _devices(args, configs[0].profile) if configs else None
    outcome = execute_grid(configs, args.results, workers=args.workers, scheduler=args.scheduler,
                           progress=not args.quiet, report=_grid_report(len(configs)), dask=args.dask,
                           devices=devices)
    if outcome.records:
        table = records_table(outcome.records)
        cols = [c for c in ("order", "method", "strength", "fold", "seed", "average_accuracy",
                            "mean_forgetting", "backward_transfer") if c in table]
        print()
        print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"\n{len(outcome.computed)} computed, {len(outcome.loaded)} already done, "
          f"{len(outcome.errors)} failed; records in {args.results}/runs")
    if outcome.errors:
        raise LungclError(f"{len(outcome.errors)} run(s) failed (see above); the others are saved")
    return 0


def cmd_grid(args: argparse.Namespace) -> int:
    from ..experiments.runner import grid_configs, parse_int_range
    from ..methods import check_method
    from ..orders import parse_orders

    orders = parse_orders(args.orders)
    methods = [check_method(m.strip()) for m in args.methods.split(",") if m.strip()]
    if not methods:
        raise LungclError("no method given; use e.g. --methods sgd,l2,ewc")
    configs = grid_configs(orders, methods, parse_int_range(args.folds, "folds"),
                           parse_int_range(args.seeds, "seeds"), profile=args.profile,
                           **_base_settings(args))
    return _run_many(configs, args)


def cmd_sweep(args: argparse.Namespace) -> int:
    from ..experiments import default_config
    from ..experiments.runner import parse_floats, parse_int_range, sweep_configs
    from ..methods import check_method

    method = check_method(args.method)
    if method not in ("l2", "ewc", "online_ewc"):
        raise LungclError(f"method {method!r} has no lambda; sweep l2, ewc or online_ewc")
    values = parse_floats(args.values, "lambda values")
    configs = []
    for fold in parse_int_range(args.folds, "folds"):
        for seed in parse_int_range(args.seeds, "seeds"):
            base = default_config(args.profile, tasks=_task_spec(args), method=method, fold=fold, seed=seed,
                                  **_base_settings(args))
            configs += sweep_configs(base, values)
    return _run_many(configs, args)


def cmd_tune(args: argparse.Namespace) -> int:
    import json

    from ..experiments import default_config
    from ..experiments.runner import parse_floats, parse_int_range
    from ..experiments.tune import tune, tune_path
    from ..methods import check_method

    method = check_method(args.method)
    values = parse_floats(args.values, "lambda values") if args.values else None
    base = default_config(args.profile, tasks=_task_spec(args), method=method, fold=args.fold, seed=args.seed,
                          **_base_settings(args))
    seeds = parse_int_range(args.seeds, "seeds") if args.seeds else [args.seed]
    base = base.replace(seed=seeds[0])
    record = tune(base, values, args.criterion, args.results, workers=args.workers, scheduler=args.scheduler,
                  dask=args.dask, devices=_devices(args, base.profile), seeds=seeds,
                  progress=not args.quiet,
                  report=None if args.json else _grid_report(len(values or [0] * 7) * len(seeds)))
    if args.json:
        print(json.dumps(record, indent=1, sort_keys=True))
        _require_a_pick(record)
        return 0
    print(f"\n{record['order']} {method} fold {record['fold']}: {record['criterion_description']} "
          f"on the {record['split']} split")
    for p in record["curve"]:
        value = "failed: " + p.get("error", "") if p["criterion"] is None else f"{100 * p['criterion']:.2f} %"
        if p["criterion"] is not None and len(seeds) > 1:
            value += f" (sd {100 * p['criterion_sd']:.2f} over {len(seeds)} seeds)"
        mark = "  <- pick" if record["pick"] and p["strength"] == record["pick"]["strength"] else ""
        print(f"  lambda {p['strength']:<10g} {value}{mark}")
    if record.get("flat"):
        print("  (every lambda scores the same: the curve does not choose; the pick is the smallest. Train "
              "longer, e.g. the cpu profile, before tuning)")
    elif record["at_grid_edge"]:
        print("  (the pick is at the grid's edge: widen --values)")
    print(tune_path(args.results, base, record["values"], args.criterion, seeds))
    _require_a_pick(record)
    return 0


def _require_a_pick(record: dict) -> None:
    """A tune where no lambda finished picked nothing: an error (exit 2), after its curve was shown."""
    if record["pick"] is None:
        raise LungclError(f"no lambda of {len(record['curve'])} finished (every run failed, see above), so "
                          f"none is picked; fix the cause (e.g. a lower lr) and tune again")


def cmd_show(args: argparse.Namespace) -> int:
    from ..experiments import load_record

    record = load_record(args.ref, args.results)
    try:
        text = None if args.json else render_record(record, split=args.split, metric=args.metric)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:  # an edited or damaged record
        raise LungclError(f"corrupt record {record.path}: {type(exc).__name__} {exc}"[:240]) from exc
    return print_record(record, args.json, lambda r: text, show_path=False)


def _pct(v: float | None) -> str:
    return "   -  " if v is None or not np.isfinite(v) else f"{100 * v:6.2f}"


def _probe_lines(record, metric: str) -> list[str]:
    """The probes of a run (recorded with ``probes=true``, or computed afterwards from its stage weights and
    cached beside it: :mod:`lungcl.experiments.run_probes`): what each earlier task lost, split."""
    from ..experiments.probes import forgetting_split

    split = forgetting_split(record, metric)
    lines = [f"features or heads: the {metric.replace('_', ' ')} (test, pp) each earlier task lost, split into "
             "representation (linear probe), calibration (the gain of a threshold refitted on val, at the end "
             "minus at the task's own stage) and the rest"]
    if split.empty:
        return lines + ["  (no earlier task with probes)"]
    cols = ["task", "lost", "representation", "calibration", "rest", "probe_final", "probe_floor"]
    shown = split[cols].copy()
    shown[cols[1:]] = 100 * shown[cols[1:]]
    return lines + [shown.to_string(index=False, float_format=lambda v: f"{v:.2f}")]


def render_record(record, split: str = "test", metric: str = "balanced_accuracy") -> str:
    """The run's label, accuracy matrix, forgetting and per-stage metrics as plain text."""
    from ..experiments.run_probes import cached_probes

    d = record.data
    if d.get("kind") == "sequence" and not d.get("probes") and cached_probes(record) is not None:
        d["probes"] = cached_probes(record)
    lines = [f"run {record.run_id}: {d['label']} ({d['config']['profile']} profile, "
             f"{d['provenance'].get('source', '?')} data)"]
    R = record.accuracy_matrix(split, metric)
    lines.append(f"\n{metric.replace('_', ' ')} matrix R[stage, task] on {split} (%):")
    lines.append(R.map(lambda v: _pct(v)).to_string())
    if d["kind"] == "sequence":
        s = d["summary"][split][metric]
        forget = ", ".join(f"{t} {100 * s['forgetting'][t]:.2f}" for t in record.tasks
                           if t in s["forgetting"]) or "-"
        lines.append(f"\naverage {metric.replace('_', ' ')} {100 * s['average_accuracy']:.2f} %   "
                     f"forgetting (pp): {forget}")
        lines.append(f"backward transfer {100 * s['backward_transfer']:+.2f} pp")
    if d.get("probes") and split == "test":
        lines += ["", *_probe_lines(record, metric)]
    table = record.stage_metrics()
    table = table[table["split"] == split]
    cols = [c for c in ("trained", "task", "accuracy", "balanced_accuracy", "sensitivity", "specificity", "auc",
                        "accuracy_ci_low", "accuracy_ci_high") if c in table]
    lines.append(f"\nper stage, {split}:")
    lines.append(table[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    lines += _kept_lines(record)
    t = d["timings"]
    lines.append(f"\n{sum(s.get('steps', 0) for s in t['stages'])} steps in {t.get('total_s', 0):.1f} s")
    return "\n".join(lines)


def _kept_lines(record) -> list[str]:
    """Per stage: the rule that kept its checkpoint, the step and the validation balanced accuracy there
    (records of config version 3 and before name no rule: they kept the lowest validation loss)."""
    lines = ["\nkept checkpoint per stage (validation, the stage's task(s)):"]
    for s in record.stages():
        bacc = "-" if s.best_val_balanced_accuracy is None else f"{100 * s.best_val_balanced_accuracy:.2f} %"
        lines.append(f"  {s.stage + 1} {s.task}: step {s.best_stage_step} by {s.select or 'loss'}, "
                     f"balanced accuracy {bacc}, loss {s.best_val_loss:.4f}")
    return lines


__all__ = ["register", "render_record"]
