"""Several runs per GPU: how many fit, which worker takes which GPU, and the one-line refusals on a machine
without CUDA. (No GPU is lent to this project: the CUDA test runs only where torch sees one.)"""

from __future__ import annotations

import json
import queue
from pathlib import Path

import pytest
import torch

from lungcl.errors import LungclError
from lungcl.machine import NOMINAL_GPU_BYTES, device_slots, runs_per_gpu
from lungcl.runs.devices import claim_device, gpu_workers

REPO = Path(__file__).resolve().parents[1]
GIB = 2**30


def test_as_many_runs_per_gpu_as_fit_its_memory_and_no_more_than_its_cores():
    assert runs_per_gpu(16 * GIB, 6 * GIB, cores=8, gpus=1) == 2  # 0.85 x 16 = 13.6 GiB: two runs of 6
    assert runs_per_gpu(80 * GIB, 6 * GIB, cores=8, gpus=1) == 8  # eleven would fit; eight cores feed them
    assert runs_per_gpu(80 * GIB, 6 * GIB, cores=8, gpus=4) == 2  # two cores per GPU
    assert runs_per_gpu(4 * GIB, 6 * GIB, cores=8, gpus=1) == 1  # never fewer than one


def test_workers_are_spread_over_the_gpus_so_the_longest_runs_start_on_different_ones():
    assert device_slots(2, 3) == [0, 1, 0, 1, 0, 1]
    assert device_slots(1, 2) == [0, 0]
    assert device_slots(0, 2) == []


def test_gpu_workers_from_the_setting():
    assert gpu_workers(None, "cpu", memories=[], cores=2) is None  # no CUDA, nothing asked: CPU cores
    assert gpu_workers(3, "cpu", memories=[16 * GIB], cores=8) == [0, 0, 0]
    paper = int(0.85 * 24 * GIB // NOMINAL_GPU_BYTES["paper"])
    assert gpu_workers("auto", "paper", memories=[24 * GIB, 40 * GIB], cores=64) == device_slots(2, paper)
    assert gpu_workers(None, "paper", memories=[24 * GIB], cores=64) == device_slots(1, paper)


@pytest.mark.parametrize("setting", [0, -1, "two", "1.5"])
def test_a_bad_runs_per_gpu_is_one_line(setting):
    with pytest.raises(LungclError, match="--runs-per-gpu must be a whole number"):
        gpu_workers(setting, "cpu", memories=[16 * GIB], cores=8)


def test_asking_for_gpus_where_torch_sees_none_is_one_line():
    with pytest.raises(LungclError, match="torch sees none"):
        gpu_workers(2, "cpu", memories=[], cores=8)


def test_each_worker_claims_its_own_slot():
    slots: queue.Queue = queue.Queue()
    for index in device_slots(2, 2):
        slots.put(index)
    chosen: list[int] = []
    claimed = [claim_device(slots, chosen.append) for _ in range(4)]
    assert claimed == chosen == [0, 1, 0, 1] and slots.empty()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cli_refuses_runs_per_gpu_without_cuda(tmp_path: Path, capsys):
    from lungcl.cli.main import main

    assert main(["book", "--root", str(REPO), "--profile", "smoke", "--plan", "--runs-per-gpu", "2",
                 "--results", str(tmp_path / "results"), "--only", "03"]) == 2
    assert "torch sees none" in capsys.readouterr().err
    assert main(["grid", "--profile", "smoke", "--orders", "ABC", "--runs-per-gpu", "2",
                 "--results", str(tmp_path / "results"), "--data-dir", str(tmp_path / "data")]) == 2
    assert "torch sees none" in capsys.readouterr().err
    assert main(["book", "--root", str(REPO), "--profile", "smoke", "--plan", "--json",
                 "--results", str(tmp_path / "results"), "--only", "03"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["gpus"] == 0 and out["runs_per_gpu"] == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none is lent to this project)")
def test_two_runs_per_gpu_give_the_records_of_one_at_a_time(tmp_path: Path, data_dir: Path):
    from lungcl.experiments import default_config
    from lungcl.experiments.runner import execute_grid

    configs = [default_config("smoke", method=m, data_dir=str(data_dir)) for m in ("sgd", "ewc", "l2")]
    together = execute_grid(configs, tmp_path / "together", devices=device_slots(1, 2), progress=False)
    alone = execute_grid(configs, tmp_path / "alone", progress=False)
    for a, b in zip(together.records, alone.records):
        assert a.comparable() == b.comparable()
