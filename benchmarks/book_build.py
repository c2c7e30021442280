"""The cpu book built from a fresh clone, timed chapter by chapter.

    python benchmarks/book_build.py [--content then|now] [--commit REV] [--profile cpu] [--keep DIR] [--json]

Clones this repository (at HEAD, or at ``--commit``) into a temporary folder, so nothing is
cached: no nodule table, no patch store, no run records, no executed notebooks; then runs
``lungcl book`` there with the interpreter running this script (its environment is the one
``make venv`` made; the clone's own package is imported, through PYTHONPATH). Prints the
time of every chapter, the render, the whole build, the largest process's peak memory and
the machine's load before and after (the machine is shared: a busy machine is slower), and
``core_minutes`` (CPU time of every process of the build) with ``efficiency`` = core_minutes /
(workers x wall_minutes): how well the build kept its workers busy.

``--content`` says which experiments the chapters run:

- ``now``: the book as it ships (the chapters' defaults).
- ``then``: the content the book had when issue 12 ("fast runs") was filed (commit 5a085a1,
  28 minutes then): about 100 training steps per task (``epochs=2``), one seed per method,
  no Fisher-variant comparison and no normalisation study; the chapters pass these with
  ``lungcl book --set``. The same runs as then, a little more work each: the engine now
  evaluates every 25 steps instead of 50 and computes the exact Fisher instead of a sampled
  one, and the book has a first-demo chapter (a toy, seconds) and the geometry baselines.

``--commit 5a085a1 --content now`` builds that commit's own book with its own code: the
"before" on the same machine (``--set`` does not exist there, so ``then`` is refused).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lungcl.machine import usable_cores

REPO = Path(__file__).resolve().parents[1]
CONTENT = {
    "now": [],
    "then": ["epochs=2", "seeds=[0]", "fisher_variants=[]", "normalisations=[]"],
}
# a row of the table ``lungcl book`` prints at its end (the same in the code of 5a085a1)
ROW = re.compile(r"^(?P<name>\d\d_\w+|\(render\))\s+(?:executed|current|built)\s+(?P<s>[\d.]+)$", re.M)


def clone(into: Path, commit: str | None) -> str:
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(into)], check=True)
    if commit:
        subprocess.run(["git", "-C", str(into), "checkout", "--quiet", commit], check=True)
    return subprocess.run(["git", "-C", str(into), "rev-parse", "--short", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()


def build(root: Path, profile: str, settings: list[str], log: Path, workers: int | None) -> dict:
    """Run ``lungcl book`` in the clone; its chapter times, wall time, the CPU time of all its processes
    (``core_minutes``: every process it started and waited for, run workers and kernels included),
    exit code and peak memory."""
    argv = [sys.executable, "-c", "import sys; from lungcl.cli.main import main; sys.exit(main())",
            "book", "--profile", profile, "--root", str(root), "--data-dir", str(root / "data"),
            "--results", str(root / "results")] + ([] if workers is None else ["--workers", str(workers)])
    for item in settings:
        argv += ["--set", item]
    env = dict(os.environ, PYTHONPATH=str(root))
    start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    with log.open("w") as out:
        rc = subprocess.run(argv, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - start
    text = log.read_text()
    rows = {m["name"]: float(m["s"]) for m in ROW.finditer(text)}
    render = rows.pop("(render)", None)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    core_s = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    peak_kib = after.ru_maxrss
    if rc:
        print("".join(text.splitlines(keepends=True)[-15:]), file=sys.stderr)
    return {"rc": rc, "wall_s": round(wall, 1), "wall_minutes": round(wall / 60, 2),
            "core_minutes": round(core_s / 60, 2), "chapters_s": rows, "render_s": render,
            "peak_process_gb": round(peak_kib / 1024 ** 2, 2)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--content", choices=sorted(CONTENT), default="then")
    p.add_argument("--commit", default=None, help="build this revision's book instead of HEAD's")
    p.add_argument("--profile", default="cpu")
    p.add_argument("--keep", type=Path, default=None, help="clone into this (new) folder and keep it")
    p.add_argument("--workers", type=int, default=None,
                   help="lungcl book --workers (default: its own, every usable core; older revisions: none)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = p.parse_args()
    if args.commit and args.content != "now":
        p.error("--commit builds that revision's own book: use --content now")
    with tempfile.TemporaryDirectory(prefix="lungcl-book-") as tmp:
        root = args.keep.resolve() if args.keep else Path(tmp) / "clone"
        if root.exists():
            p.error(f"{root} exists: --keep wants a new folder")
        rev = clone(root, args.commit)
        load_before = os.getloadavg()[0]
        result = build(root, args.profile, CONTENT[args.content], root.parent / f"{root.name}.log", args.workers)
    workers = args.workers or usable_cores()
    result["workers"] = workers
    result["efficiency"] = round(result["core_minutes"] / (workers * max(result["wall_minutes"], 1e-9)), 3)
    result = {"revision": rev, "content": args.content, "profile": args.profile,
              "settings": CONTENT[args.content], **result,
              "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
    if args.json:
        print(json.dumps(result))
        return result["rc"]
    print(f"book of {rev}, content {args.content!r} ({' '.join(result['settings']) or 'as shipped'}), "
          f"profile {args.profile}, from a fresh clone")
    print(f"\n{'chapter':<24} {'seconds':>8}")
    for name, s in result["chapters_s"].items():
        print(f"{name:<24} {s:>8.0f}")
    if result["render_s"] is not None:
        print(f"{'(render)':<24} {result['render_s']:>8.0f}")
    rest = result["wall_s"] - sum(result["chapters_s"].values()) - (result["render_s"] or 0)
    print(f"{'(outside the chapters)':<24} {rest:>8.0f}   (start-up; and the nodule table and patch store "
          "where the build prepares them before chapter 1)")
    print(f"{'total (wall)':<24} {result['wall_s']:>8.0f}   = {result['wall_s'] / 60:.1f} min")
    print(f"{'core time (all processes)':<24} {result['core_minutes'] * 60:>8.0f}   = {result['core_minutes']:.1f} "
          f"core-min on {result['workers']} worker(s): efficiency {result['efficiency']:.2f} "
          "(core-minutes / (workers x wall minutes))")
    print(f"\nexit code {result['rc']}; largest process's peak memory {result['peak_process_gb']} GB; "
          f"load average {result['load_average'][0]} before, {result['load_average'][1]} after")
    return result["rc"]


if __name__ == "__main__":
    sys.exit(main())
