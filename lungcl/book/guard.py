"""What keeps a book build safe: one build per book at a time, and a stop signal that stops the chapter.

Two ``lungcl book`` on one root would both write ``notebooks/_executed/NN.partial.ipynb`` and
render into one ``_build``: :func:`one_build_at_a_time` makes the second wait for the first (it
names the first's pid and start time). papermill takes SIGTERM and SIGINT for itself while a cell
runs and lets the cell finish (minutes, with a grid's workers): :func:`execute_stoppably` runs it
in a thread so that the signal reaches the build, which kills the chapter's kernel at once (the
kernel's grid workers die with it, :mod:`lungcl.runs.lifeline`) and stops.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import LungclError

LOCK_NAME = ".build.lock"


def _holder(lock: Path) -> str:
    """'pid N, since T' of the build that holds ``lock`` (as it wrote it), or what is known."""
    try:
        held = json.loads(lock.read_text())
        return f"pid {held['pid']}, since {held['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "pid unknown"


@contextmanager
def one_build_at_a_time(folder: Path, progress: Callable[[str], None]) -> Iterator[None]:
    """Hold ``folder/.build.lock`` while the block runs; a build holding it already is waited for."""
    lock = folder / LOCK_NAME
    try:
        fh = open(lock, "a+")
    except OSError as exc:
        raise LungclError(f"cannot open the book's build lock {lock}: {exc.strerror or exc}") from exc
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress(f"waiting: another lungcl book ({_holder(lock)}) is building this book "
                     f"(lock {lock}); this build goes on when it ends")
            fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "since": time.strftime("%Y-%m-%d %H:%M:%S %Z")}))
        fh.flush()
        try:
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)


def execute_stoppably(execute: Callable[[], Any], kill_kernel: Callable[[], None]) -> Any:
    """``execute()`` in a thread; interrupted here (Ctrl-C, SIGTERM), ``kill_kernel()`` and re-raise."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = execute()
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="lungcl-chapter", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.2)
    except KeyboardInterrupt:
        kill_kernel()
        thread.join(30)
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


__all__ = ["execute_stoppably", "one_build_at_a_time"]
