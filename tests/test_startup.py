"""Start-up: the CLI and a run import only what they use (each fresh interpreter checked in a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# heavy libraries that neither the CLI's parser nor a training run needs
NOT_FOR_A_RUN = ("monai", "papermill", "seaborn", "dask", "distributed", "matplotlib", "pylidc", "jupyter_client")


def _imported_after(code: str, candidates: tuple[str, ...]) -> list[str]:
    """Which of ``candidates`` a fresh interpreter has imported after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {list(candidates)!r} if m in sys.modules]))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_cli_parser_loads_no_numerics_library():
    heavy = ("torch", "pandas", "scipy", "sklearn", "pyarrow") + NOT_FOR_A_RUN
    assert _imported_after("from lungcl.cli.main import build_parser; build_parser()", heavy) == []


def test_a_run_imports_no_notebook_plotting_or_cluster_library(smoke_store, data_dir):
    code = (f"from lungcl.experiments import default_config, run\n"
            f"run(default_config('smoke', tasks='AB', data_dir={str(data_dir)!r}), "
            f"{str(data_dir / 'startup-results')!r}, progress=False)")
    assert _imported_after(code, NOT_FOR_A_RUN) == []
