"""``lungcl mtl``: the gated multi-task network (or the hard-sharing baseline) on many tasks at once, cached."""

from __future__ import annotations

import argparse

from ..errors import LungclError
from .common import RUN_FLAGS, add_run_options, print_record, refuse_flagged

# the settings lungcl mtl sets with a flag of its own (refused in --set, the flag named)
MTL_FLAGS = {**RUN_FLAGS, "tasks": "--tasks", "model": "--model", "multiclass": "--multiclass",
             "param_scale": "--param-scale", "dataset": "--derm7pt", "derm7pt_root": "--derm7pt",
             "fold": "--fold", "seed": "--seed"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mtl", help="train the gated multi-task network on several characteristics at once",
                       description="Train one network on many tasks together (a branch per task, fused by "
                                   "gated blocks whose weights give a task-by-task sharing degree). The record "
                                   "is cached under --results by its configuration; the last line printed is "
                                   "its path.")
    p.add_argument("--tasks", default="all",
                   help="'all' (default: the nine LIDC characteristics, or the eight Derm7pt columns) or "
                        "comma-separated names")
    p.add_argument("--model", choices=("gated", "hard"), default="gated",
                   help="gated (default) or hard: the shared-trunk multi-head baseline")
    p.add_argument("--multiclass", action="store_true", help="LIDC ratings as classes (1-5) instead of binary")
    p.add_argument("--param-scale", type=float, default=None, help="gated: fraction of the parameters, e.g. 0.5")
    p.add_argument("--derm7pt", metavar="DIR", default=None,
                   help="run on a Derm7pt release folder (meta/meta.csv, meta/*_indexes.csv, images/)")
    p.add_argument("--fold", type=int, default=None, help="cross-validation fold 0..4 (default 0)")
    p.add_argument("--seed", type=int, default=None)
    add_run_options(p, "--set epochs=30 --set optimizer=adam", "LIDC patch source: phantom (default) or dicom")
    p.add_argument("--json", action="store_true", help="print the record as JSON on stdout")
    p.set_defaults(func=cmd_mtl)


def config_from_args(args: argparse.Namespace):
    """The run's MTLConfig: profile defaults, then the flags, then --set."""
    from ..mtl.config import default_mtl_config, parse_mtl_overrides

    settings = {"tasks": args.tasks, "model": args.model, "source": args.source, "data_dir": args.data_dir,
                "param_scale": args.param_scale, "fold": args.fold, "seed": args.seed}
    if args.multiclass:
        settings["multiclass"] = True
    if args.derm7pt is not None:
        settings.update(dataset="derm7pt", derm7pt_root=args.derm7pt)
    overrides = parse_mtl_overrides(args.overrides)
    refuse_flagged(overrides, MTL_FLAGS)
    settings.update(overrides)
    return default_mtl_config(args.profile, **settings)


def cmd_mtl(args: argparse.Namespace) -> int:
    import torch

    from ..mtl.train import run_mtl

    config = config_from_args(args)
    torch.set_num_threads(1)
    return print_record(run_mtl(config, args.results, progress=not args.quiet), args.json, render_mtl_record)


def render_mtl_record(record) -> str:
    """Per-task test metrics, then the overall sharing matrix (gated) as text."""
    import pandas as pd

    d = record.data
    kept = (f" ({d['select']}; validation balanced accuracy {d['best_val_balanced_accuracy']:.3f})"
            if d.get("best_val_balanced_accuracy") is not None else "")
    head = (f"{d['label']}  run {d['run_id']}  best epoch {d['best_epoch']}{kept}  "
            f"{d['n_parameters']:,} parameters  {d['timings']['total_s']:.0f} s")
    lines = [head]
    cols = [c for c in ("n", "accuracy", "balanced_accuracy", "sensitivity", "specificity", "auc", "mae")
            if c in record.metrics("test").columns]
    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.precision", 3):
        lines += ["", f"test metrics at the kept epoch (select={d.get('select', 'loss')}):", record.metrics("test")[cols].to_string()]
        if d.get("sharing") is not None:
            from ..mtl.sharing import borrowed_share

            overall = record.sharing()
            short = [t[:6] for t in overall.columns]
            shown = pd.DataFrame(overall.to_numpy(), index=overall.index, columns=short)
            lines += ["", "sharing degree (overall; row draws on column):",
                      shown.to_string(float_format=lambda v: f"{v:.4f}"),
                      f"mean share borrowed from other tasks: {borrowed_share(overall).mean():.4f}"]
    return "\n".join(lines)


__all__ = ["register", "cmd_mtl", "config_from_args", "render_mtl_record", "LungclError"]
