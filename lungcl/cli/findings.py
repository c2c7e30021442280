"""``lungcl findings``: the thesis's four findings tested on the task-order design (:mod:`lungcl.findings`)."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import LungclError
from ..profiles import DEFAULT_PROFILE, PROFILES
from .common import DATA_HELP, RESULTS_HELP


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("findings", help="the thesis's findings tested on every order x seeds (computes missing runs)",
                       description="The task-order chapter's design (SGD, L2 and EWC on every order, fold and "
                                   "seed): its runs are loaded, or computed when missing, then each finding's "
                                   "estimate, interval (two-level bootstrap: seeds within orders, test patients "
                                   "within runs), Holm-adjusted p and verdict on test balanced accuracy.")
    p.add_argument("--profile", default=DEFAULT_PROFILE, choices=PROFILES,
                   help=f"{', '.join(PROFILES)} (default {DEFAULT_PROFILE})")
    p.add_argument("--source", default="phantom", choices=("phantom", "dicom"), help="phantom (default) or dicom")
    p.add_argument("--orders", default="all", help="'all' (the six orders, default) or e.g. ABC,CBA")
    p.add_argument("--seed", type=int, default=0, help="the first seed (default 0)")
    p.add_argument("--seeds", default=None, help="e.g. 0-2 (default: --seed and the next two)")
    p.add_argument("--folds", default="0", help="e.g. 0-4 (default 0)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per stage (default: the profile's)")
    p.add_argument("--l2-lambda", type=float, default=None, help="L2 strength (default: the profile's)")
    p.add_argument("--ewc-lambda", type=float, default=None, help="EWC strength (default: the profile's)")
    p.add_argument("--streams", default="task", help="task (default) or position")
    p.add_argument("--n-boot", type=int, default=None, help="bootstrap draws (default: the runs' n_boot setting)")
    p.add_argument("--alpha", type=float, default=0.05, help="level of the tests and intervals (default 0.05)")
    p.add_argument("--margin", type=float, default=0.02,
                   help="finding 4's equivalence margin, balanced accuracy as a fraction (default 0.02: 2 points)")
    p.add_argument("--results", default=None, help=RESULTS_HELP)
    p.add_argument("--data-dir", default=None, help=DATA_HELP)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--workers", type=int, default=None, help="compute missing runs in N local processes")
    group.add_argument("--scheduler", default=None, metavar="ADDRESS", help="or on a Dask scheduler")
    p.add_argument("--json", action="store_true", help='print {"findings": [...]} as JSON on stdout')
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_findings)


def _check(args: argparse.Namespace) -> None:
    """Every option's form, in one line naming it, before any run is computed."""
    if args.n_boot is not None and args.n_boot < 10:
        raise LungclError(f"--n-boot {args.n_boot}: need at least 10 bootstrap draws")
    if not 0 < args.alpha < 0.5:
        raise LungclError(f"--alpha {args.alpha}: need a level between 0 and 0.5, e.g. 0.05")
    if not 0 < args.margin < 1:
        raise LungclError(f"--margin {args.margin}: need a fraction between 0 and 1, e.g. 0.02 (2 points)")
    if args.workers is not None and args.workers < 1:
        raise LungclError(f"--workers {args.workers}: need 1 or more")


def design_configs(args: argparse.Namespace) -> list:
    """The task-order chapter's runs for these options (:func:`lungcl.chapter.runs.orders_chapter`)."""
    from ..book.parameters import check_chapter_settings
    from ..chapter.runs import orders_chapter
    from ..chapter.setup import ChapterContext
    from ..experiments.runner import parse_int_range

    seeds = parse_int_range(args.seeds, "seeds") if args.seeds is not None else None
    folds = parse_int_range(args.folds, "folds")
    check_chapter_settings({"seed": args.seed, "seeds": seeds, "folds": folds, "epochs": args.epochs,
                            "l2_lambda": args.l2_lambda, "ewc_lambda": args.ewc_lambda, "streams": args.streams,
                            "orders": args.orders})
    ctx = ChapterContext(args.profile, args.source, args.seed, args.data_dir, args.results)
    return orders_chapter(ctx, orders=args.orders, method="all", folds=folds, epochs=args.epochs,
                          l2_lambda=args.l2_lambda, ewc_lambda=args.ewc_lambda, streams=args.streams, seeds=seeds)


def cmd_findings(args: argparse.Namespace) -> int:
    from ..experiments import execute_grid
    from ..findings import findings_report, findings_table

    _check(args)
    configs = design_configs(args)

    def report(status: str, config, message: str) -> None:
        if not args.quiet and status != "waiting":
            print(f"{status:8s} {config.run_id}  {config.label}" + (f": {message}" if status == "error" else ""),
                  file=sys.stderr, flush=True)

    outcome = execute_grid(configs, args.results, workers=args.workers, scheduler=args.scheduler, progress=False,
                           report=report)
    if outcome.errors:
        run_id, message = next(iter(outcome.errors.items()))
        raise LungclError(f"{len(outcome.errors)} of the design's {len(configs)} runs failed, e.g. "
                          f"{outcome.configs[run_id].label}: {message}")
    result = findings_report(outcome.records, n_boot=args.n_boot, alpha=args.alpha, equivalence_margin=args.margin)
    if args.json:
        print(json.dumps(result, indent=1, allow_nan=False))  # strict JSON: an undefined number is null
        return 0
    print(f"{result['replicates']} replicates ({len(configs)} runs) on test {result['metric'].replace('_', ' ')}")
    print(findings_table(result).to_string())
    print(f"\ninterval: {result['interval']} ({result['n_boot']} draws)\np-values: {result['correction']}")
    learned = result["learned"]["per_task"]
    print(f"learned: {result['learned']['rule']}: "
          + ", ".join(f"{t} {'-' if v is None else f'{100 * v:.1f} %'}" for t, v in learned.items()))
    return 0


__all__ = ["register", "design_configs", "cmd_findings"]
