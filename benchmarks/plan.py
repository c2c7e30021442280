"""The book's plan on N workers: its simulated makespan from the measured costs of a finished build.

    python benchmarks/plan.py [--results results] [--profile cpu] [--workers 2,16,64] [--set KEY=VALUE] [--json]

Lists every run the book asks for (``lungcl book --plan``), takes each finished run's own measured
wall time from its record (runs not in ``--results`` get the median of similar finished runs, else
the profile's nominal cost: the table says how many of each), and schedules them longest first on
N workers (LPT), runs that train the same first stage computing it once (``lungcl.schedule``: the
longest of them trains it, the others load it; a stage is 1/3 of a three-task run's cost). Prints,
per N: ``makespan_s`` (the simulated wall time of computing the whole plan from scratch), ``core_s``
(the sum of the run costs, shared first stages counted once), ``runs``, ``shared_prefixes`` (first
stages trained once for several runs) and ``saved_core_s`` (what that sharing saves). Chapter
execution and rendering (minutes) come on top. A finished run that loaded its first stage is
counted whole (its leader's measured first stage added). The probes the analysis chapter reads from
the runs' stage weights come after the runs, on the same workers: their cost (``probes_s`` of each run's
``probes.json``, else the profile's nominal figure) is in ``core_s`` and ``makespan_s``, and on its own
in ``probes_core_s``.
A run's cost was measured beside other runs on this machine's cores: on a machine with idle cores
it is an upper figure.
"""

from __future__ import annotations

import argparse
import json

from lungcl.cli.book import parse_chapter_settings
from lungcl.experiments.run_probes import PROBES_FILE
from lungcl.plan import PROBES_S, book_plan, makespan
from lungcl.project import book_folder, project_root
from lungcl.schedule import plan_schedule


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
    jobs = [r.job for r in plan.runs]  # every run, as from a fresh clone (no first stage stored)
    basis = {b: sum(r.basis == b for r in plan.runs) for b in ("measured", "similar", "nominal")}
    results = book_folder("results", args.results, project_root())
    probes = [_probes_s(r, results) for r in plan.runs if r.probed]
    rows = []
    for n in args.workers.split(","):
        s = plan_schedule(jobs, int(n))
        rows.append({"workers": int(n), "makespan_s": round(s.makespan_s + makespan(probes, int(n)), 1),
                     "core_s": round(s.core_s + sum(probes), 1), "probes_core_s": round(sum(probes), 1),
                     "runs": len(jobs), "probed": len(probes),
                     "shared_prefixes": s.shared_prefixes, "first_stages_loaded": len(s.loads),
                     "saved_core_s": round(s.saved_core_s, 1),
                     "longest_run_s": round(max((j.cost_s for j in jobs), default=0.0), 1), "cost_basis": basis})
    if args.json:
        print(json.dumps(rows if len(rows) > 1 else rows[0], indent=1))
        return
    print(f"{'workers':>8} {'makespan_min':>13} {'core_min':>9} {'runs':>5} {'longest_min':>12}")
    for r in rows:
        print(f"{r['workers']:>8} {r['makespan_s'] / 60:>13.1f} {r['core_s'] / 60:>9.1f} {r['runs']:>5} "
              f"{r['longest_run_s'] / 60:>12.1f}")
    print(f"run costs: {basis['measured']} measured, {basis['similar']} from similar runs, "
          f"{basis['nominal']} nominal; {rows[0]['shared_prefixes']} first stages trained once for "
          f"{rows[0]['first_stages_loaded']} more runs, saving {rows[0]['saved_core_s'] / 60:.1f} core-minutes")


def _probes_s(run, results) -> float:
    """A probed run's measured probe seconds (its probes.json), else the profile's nominal figure."""
    path = run.kind.folder(results).run_dir(run.config.run_id) / PROBES_FILE
    try:
        return float(json.loads(path.read_text())["probes_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return PROBES_S[run.config.profile]


if __name__ == "__main__":
    main()
