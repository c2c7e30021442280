"""Wall time of the book's experiment grids on this machine, serial vs Dask workers, and same records.

    python benchmarks/grid.py [--profile cpu] [--data-dir data] [--grids abc,all] [--modes serial,2]

Each (grid, mode) runs ``lungcl grid`` from scratch into its own fresh results
folder (nothing cached), timing the whole command. Grids: ``abc`` = ABC x
sgd,l2,ewc (target <= 10 min on the cpu profile), ``all`` = the six thesis
orders x sgd,l2,ewc on fold 0 (target <= 30 min). Modes: ``serial`` or a worker
count (``--workers N``). Records of the same grid under different modes are
compared field by field (everything but timings, host and creation time).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lungcl.experiments import load_record
from lungcl.runs.folder import ResultsFolder

GRIDS = {"abc": ("ABC", 10), "all": ("all", 30)}


def run_grid(grid: str, mode: str, args: argparse.Namespace, results: Path) -> tuple[float, str]:
    orders, _ = GRIDS[grid]
    cmd = [sys.executable, "-m", "lungcl.cli.main", "grid", "--orders", orders, "--methods", args.methods,
           "--folds", "0", "--profile", args.profile, "--data-dir", args.data_dir,
           "--results", str(results), "--quiet", *sum((["--set", s] for s in args.set), [])]
    if mode != "serial":
        cmd += ["--workers", mode]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    summary = next((ln for ln in proc.stdout.splitlines() if " computed, " in ln), "")
    if proc.returncode != 0:  # runs that fail (e.g. diverge) are reported; the grid's others are timed
        print(f"grid {grid} ({mode}) had failures:\n{proc.stdout[-1500:]}\n{proc.stderr[-500:]}", flush=True)
    return wall, summary


def compare(a: Path, b: Path) -> tuple[int, int]:
    """(runs compared, runs whose records are identical but for clock and host)."""
    ids = ResultsFolder(a).run_ids()
    same = sum(load_record(i, a).comparable() == load_record(i, b).comparable() for i in ids)
    return len(ids), same


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--methods", default="sgd,l2,ewc")
    ap.add_argument("--grids", default="abc,all")
    ap.add_argument("--modes", default="serial,2", help="serial and/or worker counts, e.g. serial,2")
    ap.add_argument("--set", action="append", default=[], help="extra --set KEY=VALUE for every run")
    ap.add_argument("--keep", default=None, help="keep the results folders under this folder")
    args = ap.parse_args()
    from lungcl.data.prepare import prepare_store

    prepare_store(args.data_dir, profile=args.profile, progress=False)  # not part of the timing
    root = Path(args.keep or tempfile.mkdtemp(prefix="lungcl-grid-bench-"))
    rows = []
    for grid in args.grids.split(","):
        folders = {}
        for mode in args.modes.split(","):
            folders[mode] = root / f"{grid}-{mode}"
            wall, summary = run_grid(grid, mode, args, folders[mode])
            n = len(ResultsFolder(folders[mode]).run_ids())
            rows.append((grid, mode, n, wall))
            print(f"{grid:4s} {mode:>7s}: {n} runs finished in {wall / 60:6.2f} min ({summary})", flush=True)
        modes = list(folders)
        for other in modes[1:]:
            n, same = compare(folders[modes[0]], folders[other])
            print(f"{grid}: records {modes[0]} vs {other}: {same}/{n} identical", flush=True)

    print(f"\nprofile {args.profile}, {os.cpu_count()} CPUs, load average at the end "
          f"{os.getloadavg()[0]:.1f}")
    print(f"{'grid':24s} {'mode':>8s} {'done':>5s} {'wall min':>9s} {'target':>7s}")
    for grid, mode, n, wall in rows:
        orders, target = GRIDS[grid]
        name = f"{orders} x {args.methods}"
        ok = "met" if wall / 60 <= target else "NOT met"
        print(f"{name:24s} {mode:>8s} {n:5d} {wall / 60:9.2f} {f'<={target}':>7s} {ok}")
    print(f"\nresults in {root}")


if __name__ == "__main__":
    main()
