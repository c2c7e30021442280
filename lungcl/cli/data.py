"""``lungcl data prepare | summary``: the patch store and what is in it."""

from __future__ import annotations

import argparse
import json
import os

from ..data.sources import DEFAULT_MIN_SHARE, SOURCES
from ..errors import LungclError
from ..profiles import DEFAULT_PROFILE, PROFILES, check_profile
from .common import DATA_HELP


def add_data_options(p: argparse.ArgumentParser) -> None:
    """Options every command that reads the data shares."""
    p.add_argument("--profile", default=DEFAULT_PROFILE, help=f"one of {', '.join(PROFILES)} (default {DEFAULT_PROFILE})")
    p.add_argument("--source", default="phantom", help=f"one of {', '.join(SOURCES)} (default phantom)")
    p.add_argument("--data-dir", default=None, help="where the nodule table and stores live " + DATA_HELP[DATA_HELP.index("("):])


def register(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="prepare and summarise the LIDC patch data")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    p = dsub.add_parser("prepare", help="build the nodule table and the patch store (resumable)")
    add_data_options(p)
    p.add_argument("--lidc-root", help="the LIDC-IDRI folder of a TCIA download (for --source dicom)")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--rebuild", action="store_true", help="discard the store and build it again")
    p.add_argument("--retry-failed", action="store_true", help="try scans that failed last time again")
    p.add_argument("--min-share", type=float, default=DEFAULT_MIN_SHARE,
                   help="fail (and leave the store unfinished) if fewer than this share of the nodules "
                        f"could be prepared (default {DEFAULT_MIN_SHARE})")
    p.set_defaults(func=cmd_prepare)

    s = dsub.add_parser("summary", help="per task and split: positives, negatives, patients")
    add_data_options(s)
    s.add_argument("--tasks", default="all", help="ABC, all, or names like spiculation,margin")
    s.add_argument("--split-seed", type=int, default=0)
    s.add_argument("--json", action="store_true", help="print JSON (with patient ids) instead of a table")
    s.set_defaults(func=cmd_summary)


def cmd_prepare(args: argparse.Namespace) -> int:
    from ..data.prepare import prepare_store

    check_profile(args.profile)
    store = prepare_store(args.data_dir, args.source, args.profile, args.lidc_root, args.workers,
                          rebuild=args.rebuild, retry_failed=args.retry_failed, min_share=args.min_share)
    print(f"{store.source} store for profile {store.settings.profile}: {len(store.nodule_ids)} nodules "
          f"in {store.folder}")
    for series, why in sorted(store.failures.items()):
        print(f"  skipped scan {series}: {why}")
    if store.failures:
        print(f"{len(store.failures)} scan(s) skipped; fix them and run with --retry-failed")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from ..data.summary import data_summary, summary_table
    from ..data.tasks import resolve_tasks

    check_profile(args.profile)
    if args.split_seed < 0:  # numpy's generators take no negative seed
        raise LungclError(f"--split-seed must be an integer >= 0, got {args.split_seed}")
    summary = data_summary(args.data_dir, resolve_tasks(args.tasks), args.profile, args.source,
                           args.split_seed)
    if args.json:
        print(json.dumps(summary, indent=1, sort_keys=True))
        return 0
    prov = summary["provenance"]
    print(f"source {prov['source']}, profile {prov['profile']}, {prov['n_nodules']} nodules, "
          f"{prov['n_failed_scans']} failed scans, split seed {summary['split_seed']}")
    for task, info in summary["tasks"].items():
        print(f"{task}: {info['rule']}")
    print(summary_table(summary).to_string(index=False))
    return 0
