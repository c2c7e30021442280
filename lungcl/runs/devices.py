"""Several runs per GPU: each worker process of a plan claims one GPU slot when it starts.

With CUDA present, :func:`gpu_workers` gives a plan ``runs_per_gpu`` workers per device
(:func:`lungcl.machine.device_slots`); each worker takes its slot from a queue in its initialiser
and makes that device current (``torch.cuda.set_device``), so a run configured with ``device`` auto
or ``cuda`` computes on it. A run's numbers do not depend on the slot: the device is not part of
the run id, and the GPUs of one machine are assumed to be of one model.
"""

from __future__ import annotations

from typing import Any, Callable

from ..errors import LungclError
from ..machine import NOMINAL_GPU_BYTES, device_slots, gpu_memories, runs_per_gpu, usable_cores
from .lifeline import worker_init


def gpu_workers(setting: int | str | None, profile: str, memories: list[int] | None = None,
                cores: int | None = None) -> list[int] | None:
    """The GPU index of each worker of a plan, or None (no CUDA and no setting: the plan runs on CPU cores).

    ``setting``: runs per GPU (a whole number), ``"auto"`` (as many as fit the smallest GPU's memory at
    the profile's nominal peak per run, at most the CPU cores per GPU), or None (``auto`` when CUDA is
    present). Asking for GPUs where torch sees none is an error, said in one line."""
    memories = gpu_memories() if memories is None else memories
    cores = usable_cores() if cores is None else cores
    if setting is None and not memories:
        return None
    if not memories:
        raise LungclError("--runs-per-gpu places runs on CUDA GPUs, and torch sees none here; leave it out "
                          "(the plan then runs on --workers CPU cores)")
    if setting in (None, "auto"):
        per_gpu = runs_per_gpu(min(memories), NOMINAL_GPU_BYTES[profile], cores, len(memories))
    else:
        try:
            per_gpu = int(setting)
        except (TypeError, ValueError):
            per_gpu = 0
        if per_gpu < 1 or str(setting).strip() != str(per_gpu):
            raise LungclError(f"--runs-per-gpu must be a whole number >= 1 or auto, got {setting!r}")
    return device_slots(len(memories), per_gpu)


def claim_device(slots: Any, set_device: Callable[[int], None] | None = None) -> int:
    """In a worker's initialiser: take this worker's GPU from the ``slots`` queue and make it current."""
    index = int(slots.get(timeout=60))
    if set_device is None:
        import torch

        set_device = torch.cuda.set_device
    set_device(index)
    return index


def device_worker_init(parent_pid: int, slots: Any) -> int:
    """Initialiser of a worker that computes on a GPU: :func:`~.lifeline.worker_init`, then its slot."""
    pid = worker_init(parent_pid)
    claim_device(slots)
    return pid


__all__ = ["claim_device", "device_worker_init", "gpu_workers"]
