"""The torch state a run sets for its duration: deterministic algorithms and the thread count.

Shared by every kind of run, so the same configuration gives the same numbers on a CPU
(bit-identical only for equal thread counts).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch


@contextlib.contextmanager
def deterministic(enabled: bool = True) -> Iterator[None]:
    """Deterministic algorithms (where torch has them) for the duration of a run."""
    previous = torch.are_deterministic_algorithms_enabled()
    prev_cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = enabled, not enabled
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = prev_cudnn


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to ``n`` for the duration (None: unchanged)."""
    previous = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
