"""A grid hands a shared first stage's leader to a worker before the runs that load that stage."""

from __future__ import annotations

from lungcl.experiments.config import default_config
from lungcl.experiments.first_stage import planned_first_stage
from lungcl.experiments.runner import leaders_first


def test_the_run_training_a_shared_first_stage_goes_before_the_runs_loading_it(tmp_path):
    loaders = [default_config("smoke", tasks=t, method=m, data_dir=str(tmp_path)) for t, m in
               (("ACB", "ewc"), ("ABC", "l2"))]
    alone = default_config("smoke", tasks="BAC", method="sgd", data_dir=str(tmp_path))
    leader = default_config("smoke", tasks="ABC", method="sgd", data_dir=str(tmp_path))
    digests: dict = {}
    keys = {c.run_id: planned_first_stage(c, digests) for c in (*loaders, alone, leader)}
    assert len({keys[c.run_id] for c in (*loaders, leader)}) == 1 and keys[alone.run_id] != keys[leader.run_id]
    single = default_config("smoke", tasks="AB", kind="single_task", data_dir=str(tmp_path))
    assert planned_first_stage(single, digests) is None  # shares no stage

    ordered = leaders_first([*loaders, alone, leader], tmp_path, workers=2)
    assert sorted(c.run_id for c in ordered) == sorted(c.run_id for c in (*loaders, alone, leader))
    group = [c.run_id for c in ordered if keys[c.run_id] == keys[leader.run_id]]
    # the group's first run trains the stage (the others load it): it is handed out before them, and
    # the whole runs (the group's leader and the run sharing nothing) go before the loaders
    assert ordered.index(alone) < min(ordered.index(c) for c in ordered if c.run_id in group[1:])
    assert ordered[0].run_id in (group[0], alone.run_id) and ordered[1].run_id in (group[0], alone.run_id)


def test_a_stored_stage_is_loaded_by_every_run_and_the_order_is_the_grid_s(tmp_path):
    from lungcl.runs.prefix import PrefixStore

    runs = [default_config("smoke", tasks=t, method=m, data_dir=str(tmp_path)) for t, m in
            (("ACB", "ewc"), ("ABC", "l2"), ("ABC", "sgd"))]
    key = planned_first_stage(runs[0], {})
    path = PrefixStore(tmp_path).path(key)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"stored")  # only its presence is read here
    assert leaders_first(runs, tmp_path, workers=2) == runs  # all load: equal costs, the order asked
