"""A worker that dies (SIGKILL: a native crash, the out-of-memory killer) fails its own run only: the
runs it shared a process pool with are computed in a new pool, and the suspects one at a time."""

from __future__ import annotations

from dying_worker import DYING

from lungcl.experiments.config import default_config
from lungcl.experiments.runner import SEQUENCES
from lungcl.runs.executor import execute


def test_a_dead_worker_loses_only_its_run(smoke_store, data_dir, tmp_path):
    configs = [default_config("smoke", tasks="AB", seed=s, data_dir=str(data_dir)) for s in range(4)]
    outcome = execute(DYING, configs, tmp_path / "results", workers=2, progress=False)
    dead = configs[1].run_id
    assert list(outcome.errors) == [dead]
    assert "died while computing it, alone" in outcome.errors[dead]
    assert sorted(outcome.computed) == sorted(c.run_id for c in configs if c.run_id != dead)
    assert [r.run_id for r in outcome.records] == [c.run_id for c in configs if c.run_id != dead]


def test_workers_that_cannot_start_fail_their_runs_instead_of_retrying_forever(smoke_store, data_dir, tmp_path,
                                                                               monkeypatch):
    from dying_worker import die_at_start

    import lungcl.runs.executor as executor

    monkeypatch.setattr(executor, "worker_init", die_at_start)  # pickled by name: the spawned workers run it
    configs = [default_config("smoke", tasks="AB", seed=s, data_dir=str(data_dir)) for s in range(3)]
    outcome = execute(SEQUENCES, configs, tmp_path / "results", workers=2, progress=False)
    assert sorted(outcome.errors) == sorted(c.run_id for c in configs)
    assert all("died before starting any run" in m for m in outcome.errors.values())
    assert not outcome.computed and not outcome.records
