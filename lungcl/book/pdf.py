"""The book as one PDF: jupyter-book's single-page HTML printed by headless Chromium.

``lungcl book --pdf`` renders ``_build/singlehtml`` (every page, run cards, tables and figures on one
page) and prints it to :data:`PDF`; ``book/_static/lungcl.css`` holds the print rules (wide tables
wrap and shrink to the paper, collapsed details open). Chromium is a system package (``apt-get
install chromium``), looked for before any work.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..atomic import atomic_write
from ..errors import LungclError

PDF = "_build/pdf/lungcl-book.pdf"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")
# every script (MathJax typesetting) gets this much virtual time before the page is printed
SCRIPT_BUDGET_MS = 60_000


def find_chromium() -> str:
    """The Chromium binary on PATH; a one-line error naming the fix when there is none."""
    for name in CHROMIUM_NAMES:
        if path := shutil.which(name):
            return path
    raise LungclError("lungcl book --pdf prints the book with headless Chromium, which is not installed: "
                      "apt-get install chromium (or build without --pdf)")


def printable_page(index: Path) -> Path:
    """The single page to print, from singlehtml's ``index.html``.

    With the book's root document in a folder (``book/intro``) the builder writes the page as
    ``book/intro.html`` and ``index.html`` redirects there, but the page's links to its styles, scripts
    and images are relative to the build folder. A copy beside ``index.html`` (``lungcl-book.html``)
    finds them."""
    import re

    text = index.read_text()
    found = re.search(r'http-equiv="Refresh" content="0; url=([^"]+)"', text)
    page = index.parent / found.group(1).split("#")[0] if found else index
    if not page.is_file():
        raise LungclError(f"no {page} to print: the single-page HTML build did not write it")
    return atomic_write(index.parent / "lungcl-book.html", lambda p: p.write_bytes(page.read_bytes()))


def print_pdf(page: Path, pdf: Path, chromium: str, timeout: float = 900.0) -> Path:
    """Print the HTML ``page`` to ``pdf`` (written atomically) with headless Chromium."""
    if not page.is_file():
        raise LungclError(f"no {page} to print: the single-page HTML build did not write it")
    flags = ["--headless", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
             "--disable-background-networking", "--disable-component-update", "--no-pdf-header-footer",
             "--run-all-compositor-stages-before-draw", f"--virtual-time-budget={SCRIPT_BUDGET_MS}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        flags.append("--no-sandbox")  # Chromium refuses to start as root with its sandbox

    def write(tmp: Path) -> None:
        with tempfile.TemporaryDirectory(prefix="lungcl-chromium-") as profile:
            try:
                done = subprocess.run([chromium, *flags, f"--user-data-dir={profile}", f"--print-to-pdf={tmp}",
                                       page.resolve().as_uri()], capture_output=True, text=True, timeout=timeout)
            except subprocess.TimeoutExpired as exc:
                raise LungclError(f"Chromium did not print {page.name} in {timeout:.0f} s") from exc
        if done.returncode != 0 or tmp.stat().st_size == 0:
            last = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
            raise LungclError(f"Chromium could not print {page.name} to PDF: {last}")

    return atomic_write(pdf, write)
