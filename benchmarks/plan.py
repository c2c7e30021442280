"""The book's plan on N workers: its simulated makespan from the measured costs of a finished build.

    python benchmarks/plan.py [--results results] [--profile cpu] [--workers 2,16,64] [--set KEY=VALUE] [--json]

Lists every run the book asks for (``lungcl book --plan``), takes each finished run's own measured
wall time from its record (runs not in ``--results`` get the median of similar finished runs, else
the profile's nominal cost: the table says how many of each), and schedules them longest first on
N workers (LPT). Prints, per N: ``makespan_s`` (the simulated wall time of computing the whole plan),
``core_s`` (the sum of the run costs), ``runs`` and ``shared_prefixes`` (stage-1 prefixes computed
once for several runs: none yet). Chapter execution and rendering (minutes) come on top.
A run's cost was measured beside other runs on this machine's cores: on a machine with idle cores
it is an upper figure.
"""

from __future__ import annotations

import argparse
import json

from lungcl.cli.book import parse_chapter_settings
from lungcl.plan import book_plan, makespan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=None, help="the results folder of a finished build (default: the book root's)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--workers", default="2,16,64", help="comma-separated worker counts")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    plan = book_plan(profile=args.profile, data_dir=args.data_dir, results_dir=args.results,
                     overrides=parse_chapter_settings(args.overrides))
    costs = [r.cost_s for r in plan.runs]
    basis = {b: sum(r.basis == b for r in plan.runs) for b in ("measured", "similar", "nominal")}
    rows = [{"workers": int(n), "makespan_s": round(makespan(costs, int(n)), 1), "core_s": round(sum(costs), 1),
             "runs": len(costs), "shared_prefixes": 0, "longest_run_s": round(max(costs, default=0.0), 1),
             "cost_basis": basis} for n in args.workers.split(",")]
    if args.json:
        print(json.dumps(rows if len(rows) > 1 else rows[0], indent=1))
        return
    print(f"{'workers':>8} {'makespan_min':>13} {'core_min':>9} {'runs':>5} {'longest_min':>12}")
    for r in rows:
        print(f"{r['workers']:>8} {r['makespan_s'] / 60:>13.1f} {r['core_s'] / 60:>9.1f} {r['runs']:>5} "
              f"{r['longest_run_s'] / 60:>12.1f}")
    print(f"run costs: {basis['measured']} measured, {basis['similar']} from similar runs, "
          f"{basis['nominal']} nominal")


if __name__ == "__main__":
    main()
