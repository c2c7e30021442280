"""``lungcl book``: execute the chapter notebooks with a profile's parameters and render the HTML book."""

from __future__ import annotations

import argparse
import ast
import time
from typing import Any

from ..errors import LungclError
from ..profiles import DEFAULT_PROFILE, PROFILES


def parse_chapter_settings(items: list[str]) -> dict[str, Any]:
    """``["epochs=2", "seeds=[0]", "method=ewc"]`` -> ``{"epochs": 2, "seeds": [0], "method": "ewc"}``.

    A value is read as a Python literal, as the parameters cells write it (``None``, ``[0, 1]``,
    ``"ABC"``); anything else (``ewc``) is a string.
    """
    settings: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise LungclError(f"--set wants KEY=VALUE with a parameter name as KEY, got {item!r}")
        try:
            settings[key] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            settings[key] = text.strip()
    return settings


def _build(args: argparse.Namespace) -> int:
    from ..plan import book_plan, build_planned_book, plan_json, plan_table

    start = time.perf_counter()
    if args.workers is not None and args.workers < 1:
        raise LungclError(f"--workers must be a whole number >= 1, got {args.workers}")
    settings = dict(root=args.root, profile=args.profile, source=args.source, only=args.only,
                    data_dir=args.data_dir, results_dir=args.results, seed=args.seed,
                    overrides=parse_chapter_settings(args.overrides))
    if args.plan:
        plan = book_plan(**settings, workers=args.workers, runs_per_gpu=args.runs_per_gpu)
        print(plan_json(plan) if args.json else plan_table(plan))
        return 0
    _, _, report = build_planned_book(**settings, workers=args.workers, scheduler=args.scheduler,
                                      runs_per_gpu=args.runs_per_gpu,
                                      force=args.force, render=not args.no_render,
                                      solutions=not args.no_solutions, pdf=args.pdf)
    print(f"\n{'chapter':<24} {'status':<10} {'seconds':>8}")
    for ch in report.chapters:
        print(f"{ch.name:<24} {ch.status:<10} {ch.seconds:>8.1f}")
    if report.render_seconds is not None:
        print(f"{'(render)':<24} {'built':<10} {report.render_seconds:>8.1f}")
    if report.pdf_seconds is not None:
        print(f"{'(pdf)':<24} {'printed':<10} {report.pdf_seconds:>8.1f}")
    print(f"{'total':<24} {'':<10} {time.perf_counter() - start:>8.1f}")
    if report.html_index is not None:
        print(f"\nopen {report.html_index}")
    if report.pdf is not None:
        print(f"the PDF: {report.pdf}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "book", help="build the HTML book (papermill executes the chapters, then jupyter-book renders)",
        description="Execute every chapter notebook with the profile's parameters (skipping chapters "
                    "whose source and parameters did not change) and render _build/html.")
    p.add_argument("--profile", choices=PROFILES, default=DEFAULT_PROFILE,
                   help="experiment size: smoke (minutes), cpu (the default book), paper (thesis scale)")
    p.add_argument("--source", choices=("phantom", "dicom"), default="phantom",
                   help="patch source the chapters read: the built-in phantom or a prepared LIDC-IDRI "
                        "download (run `lungcl data prepare --source dicom --lidc-root DIR` first)")
    p.add_argument("--only", nargs="+", metavar="NN",
                   help="execute only these chapters (number like 03 or name like 03_sequence_ABC)")
    p.add_argument("--data-dir", default=None,
                   help="data cache shared by all chapters (default: data/ at the book's root; a relative "
                        "path is from the current folder)")
    p.add_argument("--results", default=None,
                   help="run records shared by all chapters (default: results/ at the book's root; a "
                        "relative path is from the current folder)")
    p.add_argument("--seed", type=int, default=0, help="seed passed to every chapter (default: 0)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="a chapter parameter for every chapter that has it, as its parameters cell "
                        "writes it, e.g. --set epochs=2 --set 'seeds=[0]' (repeatable; "
                        "book/run_it_yourself.md lists them)")
    p.add_argument("--workers", type=int, default=None,
                   help="runs computed at once, one core each (default: every core this process may use)")
    p.add_argument("--runs-per-gpu", default=None, metavar="N|auto",
                   help="with CUDA GPUs: runs computed at once on each GPU (default auto: as many as fit its "
                        "memory at the profile's nominal peak per run, at most the CPU cores per GPU)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="compute the book's runs on a Dask cluster (e.g. tcp://HOST:8786; dask-jobqueue on "
                        "SLURM/PBS), with data/ and results/ on a shared file system")
    p.add_argument("--plan", action="store_true",
                   help="print the book's plan (runs per chapter, cached, estimated core-minutes and wall "
                        "time) and compute nothing")
    p.add_argument("--json", action="store_true", help="with --plan: the plan as JSON")
    p.add_argument("--force", action="store_true", help="execute chapters even if they are current")
    p.add_argument("--no-render", action="store_true", help="execute the notebooks but skip the HTML")
    p.add_argument("--pdf", action="store_true",
                   help="also write the whole book as _build/pdf/lungcl-book.pdf (single-page HTML printed "
                        "by headless Chromium: apt-get install chromium)")
    p.add_argument("--no-solutions", action="store_true",
                   help="the student edition: exercises without their solutions")
    p.add_argument("--root", default=None, help="the book's folder (default: found from the current one)")
    p.set_defaults(func=_build)
