"""`make lab`: JupyterLab with jupytext's contents manager serves a chapter's .py as a notebook (127.0.0.1 only),
started by the Makefile's recipe itself, as root too."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("jupyterlab")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_make_lab_recipe_uses_jupytext_contents_manager():
    recipe = (ROOT / "Makefile").read_text()
    assert re.search(r"^lab: venv", recipe, flags=re.M)
    assert "contents_manager_class=jupytext.TextFileContentsManager" in recipe
    assert "LAB_IP   ?= 127.0.0.1" in recipe


def test_the_recipe_allows_root_only_for_root():
    """Jupyter refuses root unless given --allow-root: the recipe adds it for root, and only then."""
    dry = subprocess.run(["make", "-n", "-C", str(ROOT), "lab-server", f"BIN={Path(sys.executable).parent}"],
                         capture_output=True, text=True, check=True).stdout
    assert "jupyterlab" in dry
    assert ("--allow-root" in dry) == (os.geteuid() == 0)


@pytest.mark.timeout(120)
def test_lab_server_lists_a_chapter_as_a_notebook(tmp_path):
    """The Makefile's own recipe (`make lab-server`, what `make lab` runs after installing) serves a chapter,
    as whichever user runs the tests (root in CI containers)."""
    port, token = _free_port(), "lungcl-test"
    cmd = ["make", "--no-print-directory", "-C", str(ROOT), "lab-server", f"BIN={Path(sys.executable).parent}",
           f"LAB_PORT={port}", f"LAB_ARGS=--no-browser --IdentityProvider.token={token}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env={"JUPYTER_CONFIG_DIR": str(tmp_path), "JUPYTER_RUNTIME_DIR": str(tmp_path),
                                 "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    try:
        url = f"http://127.0.0.1:{port}/api/contents/03_sequence_ABC.py?content=0&token={token}"
        deadline, model = time.monotonic() + 90, None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    model = json.load(r)
                break
            except OSError:
                time.sleep(1)
        assert model is not None, "the lab server did not answer within 90 s"
        assert model["type"] == "notebook"
        with urllib.request.urlopen(url.replace("content=0", "content=1"), timeout=30) as r:
            nb = json.load(r)["content"]
        assert any("parameters" in c["metadata"].get("tags", []) for c in nb["cells"])
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # make and the server it started
        proc.wait(timeout=30)
