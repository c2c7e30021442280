"""The gated multi-task network: shapes, the independent-branches start, parameter scale, sharing matrix."""

import numpy as np
import pytest
import torch

from lungcl.errors import LungclError
from lungcl.models.gated import GatedBlock, GatedMultiTaskNet, count_parameters


def test_gated_block_shapes():
    torch.manual_seed(0)
    block = GatedBlock(n_tasks=3, channels=4)
    x = torch.randn(5, 3 * 4, 7, 6)
    assert block(x).shape == (5, 12, 7, 6)
    assert block.gate_logits.shape == (3, 3)
    assert block.fusion.shape == (3, 4, 3, 4)


def test_gated_block_starts_as_independent_branches():
    """At step 0 each task's fused output is a scaled copy of its own (normalised) maps."""
    torch.manual_seed(0)
    t, c = 3, 4
    block = GatedBlock(t, c, fusion_init=100.0, gate_init=0.0)
    x = torch.randn(8, t * c, 5, 5) * 3 + 1
    # eval mode, fresh running statistics (mean 0, var 1): BN(x) = x / sqrt(1 + eps)
    block.eval()
    out = block(x)
    scale = 100.0 * torch.sigmoid(torch.tensor(0.0)) / torch.sqrt(torch.tensor(1.0 + block.norm.eps))
    torch.testing.assert_close(out, scale * x, rtol=1e-6, atol=0)
    # train mode: task k's output depends on task k's maps only
    block.train()
    base = block(x)
    for k in range(t):
        other = x.clone()
        other[:, [i for i in range(t * c) if i // c != k]] = torch.randn(8, (t - 1) * c, 5, 5)
        assert torch.equal(block(other)[:, k * c:(k + 1) * c], base[:, k * c:(k + 1) * c])
        ref = 50.0 * torch.nn.functional.batch_norm(x[:, k * c:(k + 1) * c], None, None, training=True,
                                                    eps=block.norm.eps)
        torch.testing.assert_close(base[:, k * c:(k + 1) * c], ref, rtol=1e-5, atol=1e-5)


def test_network_shapes_and_class_counts():
    torch.manual_seed(0)
    net = GatedMultiTaskNet([2, 5, 6], in_channels=1, width=4, n_stages=3)
    out = net(torch.randn(3, 1, 24, 24))
    assert [tuple(o.shape) for o in out] == [(3, 2), (3, 5), (3, 6)]
    maps = net.features(torch.randn(2, 1, 24, 24))
    assert [tuple(m.shape) for m in maps] == [(2, 12, 24, 24), (2, 24, 12, 12), (2, 48, 6, 6)]
    net3d = GatedMultiTaskNet([2, 2], width=2, n_stages=2, spatial_dims=3)
    assert [tuple(o.shape) for o in net3d(torch.randn(2, 1, 8, 8, 8))] == [(2, 2), (2, 2)]


def test_branches_are_independent_at_start():
    """Before training, task k's logits do not change when another branch's weights change."""
    torch.manual_seed(0)
    net = GatedMultiTaskNet([2, 2, 2], width=4).eval()
    x = torch.randn(4, 1, 16, 16)
    before = net(x)
    with torch.no_grad():  # perturb branch 1's stem and head only
        net.stem.weight[4:8] += 1.0
        net.head_fc[1].weight += 1.0
    after = net(x)
    assert torch.equal(before[0], after[0]) and torch.equal(before[2], after[2])
    assert not torch.equal(before[1], after[1])


def test_fusion_scale_does_not_change_the_function():
    """Everything after a gated block starts with batch norm: init 100 and 1 give the same outputs."""
    x = torch.randn(6, 1, 16, 16)
    outs = []
    for init in (100.0, 1.0):
        torch.manual_seed(0)
        outs.append(GatedMultiTaskNet([2, 3], width=4, fusion_init=init).train()(x))
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)


def test_param_scale_halves_parameters():
    full = count_parameters(GatedMultiTaskNet([2] * 9, width=8))
    half = count_parameters(GatedMultiTaskNet([2] * 9, width=8, param_scale=0.5))
    assert 0.45 < half / full < 0.55


def test_sharing_matrix_identity_at_start_and_normalised():
    torch.manual_seed(0)
    net = GatedMultiTaskNet([2, 2, 2], width=4, n_stages=2)
    s = net.sharing_matrices()
    assert s.shape == (2, 3, 3)
    np.testing.assert_allclose(s, np.broadcast_to(np.eye(3), s.shape))
    with torch.no_grad():
        net.gated[0].fusion[0, :, 1, :] = 100.0 / 4  # task 0 takes task 1's block, mean |w| = 25
        net.gated[0].fusion[0, :, 0, :] = 0.0
        net.gated[0].fusion[0, :, 0, :].fill_diagonal_(100.0)  # own block mean |w| = 100 / 4 = 25
    s0 = net.sharing_matrices()[0]
    np.testing.assert_allclose(s0[0], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(s0.sum(axis=1), 1.0)
    np.testing.assert_allclose(net.sharing_overall().sum(axis=1), 1.0)


def test_bad_settings_are_clear_errors():
    with pytest.raises(LungclError, match="at least 2 classes"):
        GatedMultiTaskNet([2, 1])
    with pytest.raises(LungclError, match="param_scale"):
        GatedMultiTaskNet([2, 2], param_scale=0)


def test_sharing_summaries():
    import pandas as pd

    from lungcl.mtl.sharing import borrowed_share, forgetting_vs_sharing, sharing_frame, top_pairs

    m = sharing_frame([[0.8, 0.2, 0.0], [0.1, 0.9, 0.0], [0.0, 0.3, 0.7]], ["a", "b", "c"])
    np.testing.assert_allclose(borrowed_share(m), [0.2, 0.1, 0.3])
    pairs = top_pairs(m, 2)
    assert pairs.iloc[0][["task_a", "task_b"]].tolist() == ["a", "b"]
    assert pairs.iloc[0].sharing == pytest.approx(0.15)

    class FakeSequence:  # the one method of lungcl.experiments.records.Record that is used
        def __init__(self, order, r):
            self.order, self.r = order, np.array(r, dtype=float)

        def accuracy_matrix(self, split="test", metric="accuracy"):
            return pd.DataFrame(self.r, columns=self.order)

    table = forgetting_vs_sharing(m, {"ab": FakeSequence(["a", "b"], [[0.9, 0.5], [0.7, 0.8]]),
                                      "cb": FakeSequence(["c", "b"], [[0.8, 0.4], [0.75, 0.9]])})
    assert table.loc["ab", "drop_first_after_second"] == pytest.approx(0.2)
    assert table.loc["cb", "sharing_first_from_second"] == pytest.approx(0.3)
    assert table.loc["cb", "sharing_mutual"] == pytest.approx(0.15)
