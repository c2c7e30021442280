"""The Fisher diagonal: vmap == loop, the logistic closed form, mean of squares, bookkeeping."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lungcl.errors import LungclError
from lungcl.fisher import fisher_diagonal, task_parameter_names
from lungcl.models.resnet import build_resnet


class Logistic(nn.Module):
    """Softmax regression with one head per task and a frozen 'trunk' (nothing to learn)."""

    def __init__(self, d: int):
        super().__init__()
        self.trunk = nn.Flatten(1)
        self.heads = nn.ModuleDict({"a": nn.Linear(d, 2), "b": nn.Linear(d, 2)})

    def forward(self, x, task):
        return self.heads[task](self.trunk(x))


def _small_cnn(seed=0):
    torch.manual_seed(seed)
    model = build_resnet(10, ["a", "b"], width=4)
    for m in model.modules():  # non-trivial running statistics, so eval-mode BN matters
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    return model


def _data(n=24, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 16, 16, generator=g), torch.randint(0, 2, (n,), generator=g)


@pytest.mark.parametrize("empirical", [False, True])
def test_vmap_equals_loop(empirical):
    model = _small_cnn()
    x, y = _data()
    loader = [(x[:10], y[:10]), (x[10:], y[10:])]
    fast = fisher_diagonal(model, "a", loader, 24, empirical=empirical, seed=3, chunk_size=7)
    slow = fisher_diagonal(model, "a", loader, 24, empirical=empirical, seed=3, vectorised=False)
    assert fast.keys() == slow.keys()
    assert set(fast) == {n for n, _ in model.named_parameters() if not n.startswith("heads.b.")}
    for n in fast:
        assert torch.allclose(fast[n], slow[n], atol=1e-5, rtol=1e-4), n
    assert max(f.abs().max() for f in fast.values()) > 1e-3  # not trivially zero


def test_chunking_does_not_change_the_result():
    model = _small_cnn()
    x, y = _data(12)
    a = fisher_diagonal(model, "a", [(x, y)], 12, chunk_size=1)
    b = fisher_diagonal(model, "a", [(x, y)], 12, chunk_size=64)
    for n in a:
        assert torch.allclose(a[n], b[n], atol=1e-7, rtol=1e-5)


def test_logistic_closed_form_exact_expectation_over_labels():
    """E_y~p [g^2] = p(1-p) x^2 for every weight row of a two-class softmax regression:
    weight each label's empirical (one-sample) Fisher by the model's p(y|x) and compare."""
    torch.manual_seed(0)
    d, n = 5, 6
    model = Logistic(d)
    x = torch.randn(n, d)
    with torch.no_grad():
        p = F.softmax(model(x, "a"), dim=1)
    expected_w = (p[:, :1] * p[:, 1:] * x ** 2).mean(0)  # (d,), same for both rows
    expected_b = (p[:, 0] * p[:, 1]).mean()
    total = {"heads.a.weight": torch.zeros(2, d), "heads.a.bias": torch.zeros(2)}
    for i in range(n):
        for label in (0, 1):
            one = fisher_diagonal(model, "a", [(x[i:i + 1], torch.tensor([label]))], 1, empirical=True)
            for k in total:
                total[k] += p[i, label] * one[k] / n
    assert set(one) == {"heads.a.weight", "heads.a.bias"}
    torch.testing.assert_close(total["heads.a.weight"], expected_w.expand(2, d), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(total["heads.a.bias"], expected_b.expand(2), atol=1e-6, rtol=1e-5)


def test_logistic_sampled_fisher_converges_to_closed_form():
    torch.manual_seed(0)
    d, n = 3, 20000
    model = Logistic(d)
    x = torch.randn(n, d)
    with torch.no_grad():
        p = F.softmax(model(x, "a"), dim=1)
    expected = (p[:, :1] * p[:, 1:] * x ** 2).mean(0)
    fisher = fisher_diagonal(model, "a", [(x, torch.zeros(n, dtype=torch.long))], n, seed=5, chunk_size=4096)
    # Monte Carlo over labels only: relative error ~ 1/sqrt(n) of a bounded variable
    torch.testing.assert_close(fisher["heads.a.weight"][0], expected, rtol=0.03, atol=0)


def test_true_fisher_uses_seeded_labels_drawn_from_the_model():
    model = _small_cnn()
    x, y = _data(16)
    with torch.no_grad():
        model.eval()
        probs = F.softmax(model(x, "a"), dim=1)
    drawn = torch.multinomial(probs, 1, generator=torch.Generator().manual_seed(9)).squeeze(1)
    true = fisher_diagonal(model, "a", [(x, y)], 16, seed=9)
    same = fisher_diagonal(model, "a", [(x, drawn)], 16, empirical=True)
    for n in true:
        torch.testing.assert_close(true[n], same[n])
    again = fisher_diagonal(model, "a", [(x, y)], 16, seed=9)
    other = fisher_diagonal(model, "a", [(x, y)], 16, seed=10)
    assert all(torch.equal(true[n], again[n]) for n in true)  # deterministic
    assert any(not torch.equal(true[n], other[n]) for n in true)


def test_mean_of_squares_is_not_square_of_mean():
    model = _small_cnn()
    x, y = _data(16)
    fisher = fisher_diagonal(model, "a", [(x, y)], 16, empirical=True)
    model.eval()
    names = task_parameter_names(model, "a")
    params = dict(model.named_parameters())
    log_p = F.log_softmax(model(x, "a"), dim=1).gather(1, y[:, None]).mean()
    mean_grad = dict(zip(names, torch.autograd.grad(log_p, [params[n] for n in names])))
    fisher_total = sum(f.sum() for f in fisher.values())
    square_total = sum((g ** 2).sum() for g in mean_grad.values())
    for n in names:  # Jensen: mean of squares >= square of mean, everywhere
        assert (fisher[n] >= mean_grad[n] ** 2 - 1e-7).all()
    assert fisher_total > 2 * square_total  # and not by a rounding error


def test_uses_exactly_n_samples_and_restores_mode():
    model = _small_cnn()
    x, y = _data(24)
    model.train()
    running = model.trunk[-4].running_mean.clone()
    cut = fisher_diagonal(model, "a", [(x[:8], y[:8]), (x[8:16], y[8:16]), (x[16:], y[16:])], 10,
                          empirical=True)
    assert model.training and torch.equal(model.trunk[-4].running_mean, running)
    first = fisher_diagonal(model, "a", [(x[:10], y[:10])], 10, empirical=True)
    for n in cut:
        torch.testing.assert_close(cut[n], first[n])
    model.eval()
    fisher_diagonal(model, "a", [(x, y)], 4)
    assert not model.training


def test_frozen_parameters_and_other_heads_are_left_out():
    model = _small_cnn()
    model.trunk[0].weight.requires_grad_(False)
    names = task_parameter_names(model, "b")
    assert "trunk.0.weight" not in names and "heads.b.weight" in names
    assert not any(n.startswith("heads.a.") for n in names)
    with pytest.raises(LungclError, match="head"):
        task_parameter_names(model, "c")


def test_bad_input_is_a_user_error():
    model = _small_cnn()
    with pytest.raises(LungclError):
        fisher_diagonal(model, "a", [], 5)
    with pytest.raises(LungclError):
        fisher_diagonal(model, "a", [_data(2)], 0)


def test_exact_vmap_equals_its_loop_oracle():
    """Two classes: p(1-p) (grad(z1 - z0))^2 (vmap) == sum_y p_y (grad log p_y)^2 (autograd loop)."""
    model = _small_cnn()
    x, y = _data()
    loader = [(x[:10], y[:10]), (x[10:], y[10:])]
    fast = fisher_diagonal(model, "a", loader, 24, kind="exact", chunk_size=7, per_layer=False)
    slow = fisher_diagonal(model, "a", loader, 24, kind="exact", vectorised=False)
    for n in fast:
        assert torch.allclose(fast[n], slow[n], atol=1e-6, rtol=1e-4), n
    assert max(f.abs().max() for f in fast.values()) > 1e-4


def test_exact_fisher_of_logistic_regression_is_p_one_minus_p_x_squared():
    torch.manual_seed(0)
    model = Logistic(5).double()
    x = torch.randn(40, 5, dtype=torch.float64)
    fisher = fisher_diagonal(model, "a", [(x, torch.zeros(40, dtype=torch.long))], 40, kind="exact")
    p = torch.softmax(model(x, "a"), dim=1)[:, 1].detach()
    analytic = ((p * (1 - p))[:, None] * x ** 2).mean(0)
    for row in range(2):  # both rows of the 2-class head share the analytic diagonal
        assert torch.allclose(fisher["heads.a.weight"][row], analytic, rtol=1e-10)
    assert torch.allclose(fisher["heads.a.bias"], (p * (1 - p)).mean().expand(2), rtol=1e-10)


def test_exact_fisher_for_three_classes_is_the_label_expectation():
    torch.manual_seed(0)
    model = nn.Sequential()
    model.heads = nn.ModuleDict({"a": nn.Linear(4, 3)})
    model.forward = lambda x, task: model.heads[task](x)  # type: ignore[method-assign]
    x = torch.randn(6, 4)
    fast = fisher_diagonal(model, "a", [(x, torch.zeros(6, dtype=torch.long))], 6, kind="exact")
    slow = fisher_diagonal(model, "a", [(x, torch.zeros(6, dtype=torch.long))], 6, kind="exact",
                           vectorised=False)
    for n in fast:
        assert torch.allclose(fast[n], slow[n], atol=1e-6), n


def test_sampled_fisher_approaches_exact_and_batched_is_smaller():
    model = _small_cnn()
    x, y = _data(64)
    loader = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]
    exact = fisher_diagonal(model, "a", loader, 64, kind="exact")
    batched = fisher_diagonal(model, "a", loader, 64, kind="batched")
    sampled = [fisher_diagonal(model, "a", loader, 64, kind="sampled", seed=s) for s in range(8)]
    mean_sampled = {n: sum(f[n] for f in sampled) / len(sampled) for n in exact}
    from lungcl.fisher import compare_fishers
    rows = compare_fishers(exact, {"sampled": sampled[0], "sampled_x8": mean_sampled, "batched": batched,
                                   "exact": exact})
    dist = {(r["variant"], r["parameter"]): r["relative_distance"] for r in rows}
    assert len(rows) == 4 * len(exact)
    assert all(dist[("exact", n)] == 0 for n in exact)
    # averaging 8 draws shrinks the sampling error of the whole Fisher
    total = lambda v: sum(dist[(v, n)] for n in exact)  # noqa: E731
    assert total("sampled_x8") < total("sampled")
    scale = {r["parameter"]: r["scale"] for r in rows if r["variant"] == "batched"}
    assert sum(scale.values()) / len(scale) < 1  # squared batch means: smaller than the per-sample Fisher


def test_unknown_fisher_kind_is_a_clear_error():
    with pytest.raises(LungclError, match="unknown Fisher"):
        fisher_diagonal(Logistic(3), "a", [(torch.randn(2, 3), torch.zeros(2, dtype=torch.long))], 2, kind="true")


def test_per_layer_exact_fisher_equals_the_vmap_path():
    """The one-backward per-layer rebuild (Linear, Conv2d, BatchNorm2d) == per-sample vmap of grad(z1 - z0)."""
    from lungcl.fisher import _layer_modules

    model = _small_cnn()
    model.eval()
    names = task_parameter_names(model, "a")
    assert _layer_modules(model, names) is not None  # the per-layer path is the one taken
    x, y = _data()
    loader = [(x[:10], y[:10]), (x[10:], y[10:])]
    layers = fisher_diagonal(model, "a", loader, 24, kind="exact", per_layer=True)
    vmapped = fisher_diagonal(model, "a", loader, 24, kind="exact", per_layer=False)
    assert layers.keys() == vmapped.keys()
    for n in layers:
        assert torch.allclose(layers[n], vmapped[n], atol=1e-7, rtol=1e-4), n


@pytest.mark.parametrize("side", [16, 32])
def test_default_exact_fisher_matches_the_loop_oracle_per_tensor(side):
    """The default exact path (per-layer rebuild: strided-view convolutions at >4x4 outputs, unfold
    below, stride-2 and 1x1 shortcuts) == one sample and one class at a time, rel. error <= 1e-5
    per parameter tensor."""
    model = _small_cnn(seed=3)
    g = torch.Generator().manual_seed(4)
    x = torch.rand(12, 1, side, side, generator=g)
    loader = [(x[:5], torch.zeros(5, dtype=torch.long)), (x[5:], torch.zeros(7, dtype=torch.long))]
    fast = fisher_diagonal(model, "b", loader, 12, kind="exact")
    slow = fisher_diagonal(model, "b", loader, 12, kind="exact", vectorised=False)
    assert fast.keys() == slow.keys() and any(n.startswith("trunk.") for n in fast)
    for n in fast:
        err = float((fast[n].double() - slow[n].double()).norm() / slow[n].double().norm())
        assert err <= 1e-5, (n, err)
