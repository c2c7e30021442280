"""A grid's worker processes live only as long as the process that started them.

Parent side: :func:`stop_on_signals` turns SIGTERM and SIGHUP into :class:`Stopped` (a
``KeyboardInterrupt``, as SIGINT already is), so ``with`` and ``finally`` blocks unwind: the
pool's workers are stopped (:func:`stop_workers`), locks released, temporary files removed.

Worker side: :func:`worker_init` (a pool's initialiser) makes a worker notice its parent's
death, however it died (SIGKILL included): Linux's parent-death signal (``prctl``) and a
watchdog thread on the parent's pid both send the worker SIGTERM. A worker that gets SIGTERM
between runs exits at once; inside a run (:func:`guarded`) it unwinds first, so it leaves no
``.tmp`` file and no lock, and never a record (a record is written last, atomically): the next
grid computes that run again. The pool must be created and fed by a thread that outlives it
(the parent-death signal fires when the *thread* that spawned a worker ends): executor's
``_in_processes`` does both in the calling thread, within one ``with``.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
WATCH_SECONDS = 0.5  # how often a worker's watchdog looks at its parent's pid
STOP_SECONDS = 10.0  # how long a stopped worker may take to unwind before it is killed

_IN_RUN = threading.Event()


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: stop like Ctrl-C (finished work kept, nothing half-written)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stopped(signum: int, frame: Any) -> None:
    raise Stopped(signum)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`Stopped` in the main thread while this is active."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, _raise_stopped) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


# ---------------------------------------------------------------- in a worker

def _on_term(signum: int, frame: Any) -> None:
    if _IN_RUN.is_set():
        raise Stopped(signum)  # unwinds the run (its lock, its temporary files), then guarded() exits
    os._exit(128 + signum)


def _set_parent_death_signal(signum: int) -> None:
    """Linux only: the kernel sends ``signum`` to this process when its parent (thread) ends."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
    except (OSError, AttributeError):  # no prctl: the watchdog alone notices
        pass


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(WATCH_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)


def worker_init(parent_pid: int) -> int:
    """Initialiser of a worker process: SIGTERM when the parent dies; Ctrl-C is the parent's to handle.

    Returns the worker's pid (what a Dask ``client.run`` hands back)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C reaches the whole group
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGHUP, _on_term)
    _set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent_pid:  # the parent died before the death signal was armed
        os._exit(128 + signal.SIGTERM)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="lungcl-parent-watch",
                     daemon=True).start()
    return os.getpid()


def guarded(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in a worker; stopped during it, the worker unwinds ``fn`` and exits.

    Only in the worker's main thread (a process pool's): a signal reaches no other thread, so a
    worker that runs ``fn`` in a thread (Dask's) exits at once, its run's files being atomic."""
    if threading.current_thread() is threading.main_thread():
        _IN_RUN.set()
    try:
        return fn(*args)
    except Stopped as exc:
        os._exit(128 + exc.signum)
    finally:
        _IN_RUN.clear()


# ---------------------------------------------------------------- in the parent

def signal_pids(pids: Iterable[int], signum: int = signal.SIGTERM) -> None:
    """``signum`` to each of ``pids`` that still runs."""
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def stop_workers(processes: Iterable[Any], seconds: float = STOP_SECONDS) -> None:
    """SIGTERM to each live worker (they unwind their run), SIGKILL to those still alive after ``seconds``."""
    processes = [p for p in processes if p.is_alive()]
    for p in processes:
        p.terminate()
    deadline = time.monotonic() + seconds
    for p in processes:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join(1.0)


__all__ = ["Stopped", "guarded", "signal_pids", "stop_on_signals", "stop_workers", "worker_init"]
