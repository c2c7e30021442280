"""What this machine gives a build: the cores this process may use."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container or ``taskset`` limits), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity on this platform
        return max(1, os.cpu_count() or 1)


# one run's peak GPU memory when none is measured, by profile (bytes): what `--runs-per-gpu auto` divides a
# GPU's memory by. paper: ResNet-101 width 64 on 64 px patches, batch 32, evaluation batches of 128 (an
# estimate from the activations' size; replace with torch.cuda.max_memory_allocated of a real run)
NOMINAL_GPU_BYTES = {"smoke": 256 * 2**20, "cpu": 512 * 2**20, "paper": 6 * 2**30}
GPU_HEADROOM = 0.85  # the share of a GPU's memory the runs may fill together (CUDA context, fragmentation)


def gpu_memories() -> list[int]:
    """Total memory (bytes) of each CUDA device torch can use; [] without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return []
    return [int(torch.cuda.get_device_properties(i).total_memory) for i in range(torch.cuda.device_count())]


def runs_per_gpu(memory: int, per_run: int, cores: int, gpus: int) -> int:
    """How many runs share one GPU: as many as fit ``GPU_HEADROOM`` of its ``memory`` at ``per_run`` bytes
    each, and no more than the CPU cores per GPU (each run feeds its GPU from one core); at least 1."""
    fit = int(GPU_HEADROOM * memory // max(1, per_run))
    return max(1, min(fit, max(1, cores // max(1, gpus))))


def device_slots(gpus: int, per_gpu: int) -> list[int]:
    """The GPU index of each worker: ``per_gpu`` workers per GPU, interleaved (0, 1, 0, 1, ...) so that
    the first runs of a plan (its longest) spread over the GPUs."""
    return [g for _ in range(max(0, per_gpu)) for g in range(max(0, gpus))]
