"""A kind of run whose worker dies on one configuration (seed 1), as a native crash or the kernel's
out-of-memory killer ends a worker: no exception, no handler, the process gone."""

from __future__ import annotations

import os
import signal

from lungcl.experiments.runner import SEQUENCES, train_sequence
from lungcl.runs.engine import RunKind


def train_or_die(config, run_dir, progress, threads):
    if config.seed == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return train_sequence(config, run_dir, progress, threads)


DYING = RunKind(name=SEQUENCES.name, subfolder=SEQUENCES.subfolder, record_type=SEQUENCES.record_type,
                load=SEQUENCES.load, train=train_or_die)


def die_at_start(*_args):
    """A worker initializer that kills its process: a pool whose workers cannot start at all."""
    os.kill(os.getpid(), signal.SIGKILL)
