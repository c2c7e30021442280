"""Continual-learning methods: penalties at and away from the anchors, folding, online decay, checkpoints."""

import pytest
import torch
from torch import nn

from lungcl.errors import LungclError
from lungcl.methods import METHODS, ContinualMethod, FoldedQuadratic, make_method
from lungcl.models.resnet import build_resnet


def _model(seed=0):
    torch.manual_seed(seed)
    return build_resnet(10, ["a", "b", "c"], width=2)


def _loader(seed=1, n=8):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 2, (n,), generator=g)
    return [(x[:4], y[:4]), (x[4:], y[4:])]


def _perturb(model, scale=0.05, seed=2, only=None):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if only is None or n.startswith(only):
                p.add_(scale * torch.randn(p.shape, generator=g))


def _grads(model, value):
    params = [p for p in model.parameters()]
    grads = torch.autograd.grad(value, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def _manual_ewc(model, fishers, anchors, strength):
    """(lambda/2) sum_t sum_i F_t,i (theta_i - theta*_t,i)^2, term by term."""
    named = dict(model.named_parameters())
    total = 0.0
    for task in fishers:
        for n, f in fishers[task].items():
            total = total + (f * (named[n] - anchors[task][n]) ** 2).sum()
    return 0.5 * strength * total


def test_make_method_names_and_errors():
    for name in METHODS:
        assert make_method(name, strength=1.0).name == name
    assert make_method("joint").mixes_seen_tasks and not make_method("sgd").mixes_seen_tasks
    with pytest.raises(LungclError, match="unknown method"):
        make_method("si")
    with pytest.raises(LungclError, match=">= 0"):
        make_method("ewc", strength=-1.0)
    with pytest.raises(LungclError, match="gamma"):
        make_method("online_ewc", gamma=1.5)
    with pytest.raises(LungclError, match="fisher_samples"):
        make_method("ewc", fisher_samples=0)


@pytest.mark.parametrize("name", ["sgd", "joint", "frozen"])
def test_no_penalty_methods(name):
    model, method = _model(), make_method(name, strength=5.0)
    method.consolidate(model, "a", _loader())
    _perturb(model)
    assert float(method.penalty(model).detach()) == 0.0
    assert method.consolidated == ["a"]


@pytest.mark.parametrize("name", ["l2", "ewc", "online_ewc"])
def test_penalty_is_zero_at_the_anchor_and_grows_away(name):
    model, method = _model(), make_method(name, strength=100.0, fisher_samples=8)
    assert float(method.penalty(model).detach()) == 0.0  # nothing consolidated yet
    method.consolidate(model, "a", _loader())
    value = method.penalty(model)
    assert float(value.detach()) == 0.0
    assert all(g.abs().max() == 0 for g in _grads(model, value))
    _perturb(model)
    assert float(method.penalty(model).detach()) > 0


def test_ewc_penalty_matches_its_formula():
    model, ewc = _model(), make_method("ewc", strength=7.0, fisher_samples=8)
    ewc.consolidate(model, "a", _loader())
    assert set(ewc.fishers["a"]) == {n for n, _ in model.named_parameters()
                                     if not n.startswith(("heads.b.", "heads.c."))}
    _perturb(model)
    manual = _manual_ewc(model, ewc.fishers, ewc.anchors, 7.0)
    torch.testing.assert_close(ewc.penalty(model), manual.float(), rtol=1e-5, atol=1e-8)


def test_l2_equals_ewc_with_unit_fisher():
    model = _model()
    ewc, l2 = make_method("ewc", strength=3.0, fisher_samples=4), make_method("l2", strength=3.0)
    ewc.consolidate(model, "a", _loader())
    l2.consolidate(model, "a", _loader())
    state = {k: (torch.ones_like(v) if k.startswith("fisher/") else v) for k, v in ewc.state_dict().items()}
    ewc.load_state_dict(state)
    _perturb(model)
    p_ewc, p_l2 = ewc.penalty(model), l2.penalty(model)
    torch.testing.assert_close(p_ewc, p_l2)
    for g1, g2 in zip(_grads(model, p_ewc), _grads(model, l2.penalty(model))):
        torch.testing.assert_close(g1, g2)


def test_l2_pulls_trunk_and_old_heads_but_not_new_heads():
    model, l2 = _model(), make_method("l2", strength=1.0)
    l2.consolidate(model, "a", _loader())
    _perturb(model, only="heads.b.")
    assert float(l2.penalty(model).detach()) == 0.0
    _perturb(model, only="heads.a.")
    assert float(l2.penalty(model).detach()) > 0
    l2.consolidate(model, "b", _loader())  # anchor = the weights after the latest task
    assert float(l2.penalty(model).detach()) == 0.0
    assert any(k.startswith("anchor/heads.b.") for k in l2.state_dict())
    before = l2.penalty(model)
    _perturb(model, only="heads.b.")
    assert float(l2.penalty(model).detach()) > float(before.detach())


def test_multi_task_folding_equals_sum_of_separate_penalties():
    model, ewc = _model(), make_method("ewc", strength=11.0, fisher_samples=8)
    ewc.consolidate(model, "a", _loader(1))
    _perturb(model, seed=3)
    ewc.consolidate(model, "b", _loader(4))
    _perturb(model, seed=5)
    assert len(ewc.fishers) == 2
    folded, manual = ewc.penalty(model), _manual_ewc(model, ewc.fishers, ewc.anchors, 11.0)
    torch.testing.assert_close(folded, manual, rtol=1e-4, atol=1e-6)
    for g1, g2 in zip(_grads(model, ewc.penalty(model)), _grads(model, manual)):
        torch.testing.assert_close(g1, g2, rtol=1e-4, atol=1e-7)


def test_folded_quadratic_on_hand_numbers():
    class One(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.tensor([0.0, 0.0]))
    # 1*(w-1)^2 + 3*(w-2)^2 on the first entry, 2*(w+1)^2 + 0 on the second
    quad = FoldedQuadratic({"w": 2}, [({"w": torch.tensor([1.0, 2.0])}, {"w": torch.tensor([1.0, -1.0])}),
                                      ({"w": torch.tensor([3.0, 0.0])}, {"w": torch.tensor([2.0, 5.0])})])
    m = One()
    value = quad.value(m)
    torch.testing.assert_close(value, torch.tensor(0.5 * (1 + 3 * 4 + 2 * 1)))
    value.backward()
    torch.testing.assert_close(m.w.grad, torch.tensor([(0 - 1) + 3 * (0 - 2), 2 * (0 + 1)], dtype=torch.float))


def test_online_ewc_decays_the_running_fisher():
    model = _model()
    online = make_method("online_ewc", strength=1.0, fisher_samples=8, gamma=0.5, seed=4)
    ewc = make_method("ewc", strength=1.0, fisher_samples=8, seed=4)  # same per-task label draws
    online.consolidate(model, "a", _loader(1))
    ewc.consolidate(model, "a", _loader(1))
    _perturb(model, seed=3)
    online.consolidate(model, "b", _loader(4))
    ewc.consolidate(model, "b", _loader(4))
    fa, fb = ewc.fishers["a"], ewc.fishers["b"]
    for n, f in online.fisher.items():
        expected = 0.5 * fa.get(n, 0) + fb.get(n, torch.zeros_like(f))
        torch.testing.assert_close(f, expected)
    assert "heads.a.weight" in online.fisher and "heads.b.weight" in online.fisher
    named = dict(model.named_parameters())
    assert all(torch.equal(online.anchor[n], named[n].detach()) for n in online.anchor)  # latest weights
    assert float(online.penalty(model).detach()) == 0.0


@pytest.mark.parametrize("name", ["sgd", "l2", "ewc", "online_ewc", "frozen"])
def test_state_dict_round_trip(name, tmp_path):
    model, method = _model(), make_method(name, strength=2.0, fisher_samples=8)
    method.consolidate(model, "a", _loader(1))
    _perturb(model, seed=3)
    method.consolidate(model, "b", _loader(4))
    _perturb(model, seed=5)
    torch.save(method.state_dict(), tmp_path / "m.pt")
    restored = make_method(name, strength=2.0)
    restored.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    assert restored.consolidated == ["a", "b"]
    assert torch.equal(restored.penalty(model), method.penalty(model).detach())
    with pytest.raises(LungclError):
        restored.load_state_dict({"bogus": torch.zeros(1)})


def test_ewc_is_deterministic():
    states = []
    for _ in range(2):
        model, ewc = _model(), make_method("ewc", strength=1.0, fisher_samples=8, seed=7)
        ewc.consolidate(model, "a", _loader())
        states.append(ewc.state_dict())
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_base_method_interface():
    method = ContinualMethod()
    model = _model()
    assert method.penalty(model).shape == ()
    assert method.state_dict() == {}


@pytest.mark.parametrize("norm", ["batch", "group"])
def test_frozen_trains_only_the_current_head_after_the_first_stage(norm):
    """Stage 1 trains everything (SGD); from stage 2 a step moves the stage's head and nothing else:
    no trunk weight, no earlier head, no BatchNorm statistic (weight decay and momentum included)."""
    import torch.nn.functional as F

    from lungcl.experiments.trainer import descend, make_optimizer, train_mode

    torch.manual_seed(0)
    model, method = build_resnet(10, ["a", "b", "c"], width=2, norm=norm), make_method("frozen", strength=3.0)
    assert method.strength == 0.0 and float(method.penalty(model)) == 0.0
    train_mode(model)
    method.prepare_stage(model, 0, "a")
    assert all(p.requires_grad for p in model.parameters()) and all(m.training for m in model.modules())
    train_mode(model)
    method.prepare_stage(model, 1, "b")
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["heads.b.weight", "heads.b.bias"]
    assert not model.trunk.training and not model.heads["a"].training and model.heads["b"].training
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = make_optimizer(model, lr=0.1, momentum=0.9, weight_decay=0.1)
    for x, y in _loader() * 2:
        optimizer.zero_grad(set_to_none=True)
        descend(model, method, optimizer, F.cross_entropy(model(x, "b"), y))
    moved = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert moved == {"heads.b.weight", "heads.b.bias"}


def test_frozen_needs_a_head_per_task():
    with pytest.raises(LungclError, match="one head per task"):
        make_method("frozen").prepare_stage(nn.Linear(2, 2), 1, "b")
    with pytest.raises(LungclError, match="none for 'd'"):
        make_method("frozen").prepare_stage(_model(), 1, "d")
