"""Fisher variants against the exact Fisher, layer by layer: the table and its figure."""

import numpy as np
import pytest
import torch

from lungcl import plots
from lungcl.errors import LungclError
from lungcl.fisher import FISHER_KINDS, compare_fishers, fisher_diagonal, fisher_variant_table
from lungcl.models.resnet import build_resnet


def _model_and_loader():
    torch.manual_seed(0)
    model = build_resnet(10, ["a", "b"], width=4)
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(32, 1, 16, 16, generator=g), torch.randint(0, 2, (32,), generator=g)
    return model, [(x[i:i + 8], y[i:i + 8]) for i in range(0, 32, 8)]


def test_variant_table_per_layer_and_per_parameter():
    model, loader = _model_and_loader()
    by_layer = fisher_variant_table(model, "a", loader, 32, seed=2)
    by_tensor = fisher_variant_table(model, "a", loader, 32, seed=2, by="parameter")
    kinds = [k for k in FISHER_KINDS if k != "exact"]
    assert list(dict.fromkeys(by_layer.variant)) == kinds
    layers = list(dict.fromkeys(by_layer.layer))
    assert "trunk.0" in layers and "heads.a" in layers and not any(la.startswith("heads.b") for la in layers)
    assert len(by_tensor) > len(by_layer)
    # a layer's weights are the sum of its tensors' weights; one tensor per layer -> identical figures
    assert by_layer.groupby("variant").numel.sum().eq(by_tensor.groupby("variant").numel.sum()).all()
    stem = by_layer[(by_layer.layer == "trunk.0")].set_index("variant")
    stem_t = by_tensor[(by_tensor.parameter == "trunk.0.weight")].set_index("variant")
    assert np.allclose(stem[["relative_distance", "relative_l1", "correlation"]],
                       stem_t[["relative_distance", "relative_l1", "correlation"]])
    assert (by_layer.relative_distance > 0).all() and (by_layer.relative_l1 > 0).all()
    assert by_layer.correlation.between(-1, 1).all()
    # squared batch means are ~batch-size times smaller than the per-sample Fisher
    assert (by_layer[by_layer.variant == "batched"].scale < 1).all()
    # the sampled table draws its labels from the seed
    exact = fisher_diagonal(model, "a", loader, 32, kind="exact")
    sampled = fisher_diagonal(model, "a", loader, 32, kind="sampled", seed=2)
    rows = compare_fishers(exact, {"sampled": sampled, "exact": exact}, by="layer")
    again = [r["relative_distance"] for r in rows if r["variant"] == "sampled"]
    assert np.allclose(again, by_layer[by_layer.variant == "sampled"].relative_distance)
    same = [r for r in rows if r["variant"] == "exact"]
    assert all(r["relative_distance"] == 0 and r["relative_l1"] == 0 for r in same)
    assert all(abs(r["correlation"] - 1) < 1e-12 for r in same if r["numel"] > 1)


def test_compare_by_unknown_grouping_is_a_user_error():
    with pytest.raises(LungclError, match="by 'parameter' or 'layer'"):
        compare_fishers({"w": torch.ones(2)}, {"v": {"w": torch.ones(2)}}, by="module")


def test_variant_figure_has_distance_and_correlation_panels():
    model, loader = _model_and_loader()
    table = fisher_variant_table(model, "a", loader, 16, seed=0)
    fig = plots.fisher_variant_distance(table)
    dist, corr = fig.axes
    assert dist.get_xscale() == "log"
    n_layers = table.layer.nunique()
    assert len(dist.patches) == len(corr.patches) == 3 * n_layers
    assert [t.get_text() for t in dist.get_yticklabels()] == list(dict.fromkeys(table.layer))
    assert len(fig.legends) == 1 and len(fig.legends[0].get_texts()) == 3
    with pytest.raises(LungclError, match="no Fisher comparison"):
        plots.fisher_variant_distance(table.iloc[:0])
