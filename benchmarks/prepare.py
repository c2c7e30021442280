"""Measure `lungcl data prepare`: phantom time for all nodules, DICOM throughput, store size, memory.

    python benchmarks/prepare.py [--profile cpu] [--workers 2] [--dicom-scans 12]

Each measurement runs in a fresh subprocess (so peak memory is its own). The
nodule table is reused from ./data (built first if missing); stores go to a
temporary folder. Prints a table; targets (cpu profile, 2 cores): phantom
<= 60 s, peak memory <= 2 GiB per process.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent("""
    import json, resource, sys, time
    from pathlib import Path
    from lungcl.data.prepare import prepare_store
    data, source, profile, workers, root = sys.argv[1:6]
    t = time.perf_counter()
    store = prepare_store(data, source, profile, lidc_root=root or None, workers=int(workers), progress=False)
    wall = time.perf_counter() - t
    size = sum(p.stat().st_size for p in (store.folder / "patches").glob("*.npz"))
    print(json.dumps({"wall_s": wall, "nodules": len(store.nodule_ids), "failed_scans": len(store.failures),
                      "store_mb": size / 2**20,
                      "peak_main_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "peak_worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
""")


def run_child(data: Path, source: str, profile: str, workers: int, root: str = "") -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(data), source, profile, str(workers), root],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def fresh_data_dir(tmp: Path, name: str) -> Path:
    """A data folder sharing the repository's cached nodule table."""
    from lungcl.data.nodules import cache_for, load_nodule_table

    load_nodule_table(REPO / "data")
    cache = cache_for(REPO / "data").folder
    d = tmp / name
    d.mkdir()
    (d / cache.name).symlink_to(cache.resolve(), target_is_directory=True)
    return d


def write_dicom_scans(root: Path, n_scans: int, profile: str) -> int:
    """Synthetic full-size LIDC series for the first ``n_scans`` scans of the profile."""
    sys.path.insert(0, str(REPO / "tests"))  # the synthetic DICOM writer is test support
    from dicom_writer import synthetic_volume, write_series
    from lungcl.data.nodules import load_nodule_table, load_scan_table
    from lungcl.data.prepare import select_nodules
    from lungcl.profiles import data_settings

    nodules = select_nodules(load_nodule_table(REPO / "data"), data_settings(profile))
    scans = load_scan_table(REPO / "data").set_index("scan_id")
    chosen = sorted(set(nodules["scan_id"]))[:n_scans]
    for sid in chosen:
        scan = {"scan_id": sid, **scans.loc[sid].to_dict()}
        rows = nodules[nodules["scan_id"] == sid].to_dict("records")
        write_series(root, scan, synthetic_volume(scan, rows))
    return len(chosen)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dicom-scans", type=int, default=12)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        phantom = run_child(fresh_data_dir(tmp, "phantom"), "phantom", args.profile, args.workers)
        reuse = run_child(tmp / "phantom", "phantom", args.profile, args.workers)
        root = tmp / "LIDC-IDRI"
        n = write_dicom_scans(root, args.dicom_scans, args.profile)
        dicom = run_child(fresh_data_dir(tmp, "dicom"), "dicom", args.profile, args.workers, str(root))
    ok_scans = n
    rows = [
        ("phantom prepare, all nodules", f"{phantom['wall_s']:.1f} s", f"{phantom['nodules']} nodules",
         "<= 60 s (cpu)"),
        ("phantom prepare, store present", f"{reuse['wall_s']:.2f} s", "reused", ""),
        ("phantom store size", f"{phantom['store_mb']:.0f} MiB", f"{phantom['store_mb'] * 1024 / max(phantom['nodules'], 1):.0f} KiB/nodule", ""),
        ("peak memory, main / worker", f"{phantom['peak_main_mb']:.0f} / {phantom['peak_worker_mb']:.0f} MiB", "", "<= 2 GiB"),
        ("dicom prepare (synthetic series)", f"{dicom['wall_s']:.1f} s",
         f"{ok_scans} scans read, {dicom['failed_scans']} absent scans reported", ""),
        ("dicom throughput", f"{ok_scans / dicom['wall_s'] * 60:.0f} scans/min",
         "incl. the absent scans' reports", ""),
        ("dicom peak memory, main / worker", f"{dicom['peak_main_mb']:.0f} / {dicom['peak_worker_mb']:.0f} MiB", "", "<= 2 GiB"),
    ]
    print(f"profile {args.profile}, {args.workers} workers")
    print(f"{'measurement':36} {'value':>18}  {'note':44} target")
    for name, value, note, target in rows:
        print(f"{name:36} {value:>18}  {note:44} {target}")


if __name__ == "__main__":
    main()
