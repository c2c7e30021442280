"""The pre-activation ResNet: shapes at every depth in 2D and 3D, block ordering, separate heads."""

import pytest
import torch
from torch import nn

from lungcl.errors import LungclError
from lungcl.models.resnet import DEPTHS, PreActBasicBlock, PreActBottleneck, build_resnet


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("depth", sorted(DEPTHS))
def test_output_shapes_every_depth(depth, spatial_dims):
    torch.manual_seed(0)
    model = build_resnet(depth, ["malignancy", "lobulation"], spatial_dims=spatial_dims, width=2,
                         num_classes=3).eval()
    x = torch.rand((2, 1) + ((16,) * 2 if spatial_dims == 2 else (8,) * 3))
    feats = model.features(x)
    expansion = 4 if DEPTHS[depth][0] == "bottleneck" else 1
    assert feats.shape == (2, 2 * 8 * expansion) == (2, model.num_features)
    assert model(x, "malignancy").shape == (2, 3)
    assert model(x, "lobulation").shape == (2, 3)


def test_imagenet_stem_downsamples_by_four():
    model = build_resnet(18, ["a"], width=4, small_input=False)
    stem_out = model.trunk[:2](torch.rand(1, 1, 64, 64))
    assert stem_out.shape == (1, 4, 16, 16)
    small = build_resnet(18, ["a"], width=4, small_input=True)
    assert small.trunk[0](torch.rand(1, 1, 32, 32)).shape == (1, 4, 32, 32)
    assert isinstance(small.trunk[0], nn.Conv2d) and small.trunk[0].kernel_size == (3, 3)


def _call_order(block: nn.Module, x: torch.Tensor) -> list[str]:
    order, hooks = [], []
    for name, m in block.named_modules():
        if name and not list(m.children()):
            hooks.append(m.register_forward_hook(lambda mod, i, o, name=name: order.append(name)))
    block(x)
    for h in hooks:
        h.remove()
    return order


def test_basic_block_is_pre_activation():
    torch.manual_seed(0)
    block = PreActBasicBlock(2, c_in=4, channels=8, stride=2).eval()
    x = torch.randn(2, 4, 8, 8)
    # BN -> ReLU -> conv, twice; the projection shortcut reads the pre-activated input.
    assert _call_order(block, x) == ["norm1", "act", "shortcut", "conv1", "norm2", "act", "conv2"]
    seen = {}
    block.shortcut.register_forward_hook(lambda m, i, o: seen.update(inp=i[0]))
    out = block(x)
    assert torch.allclose(seen["inp"], torch.relu(block.norm1(x)))
    # no ReLU after the addition: the output of a pre-activation block can be negative
    assert (out < 0).any()
    pre = torch.relu(block.norm1(x))
    expected = block.conv2(torch.relu(block.norm2(block.conv1(pre)))) + block.shortcut(pre)
    assert torch.allclose(out, expected, atol=1e-6)


def test_identity_shortcut_when_shape_is_kept():
    block = PreActBasicBlock(2, c_in=8, channels=8, stride=1).eval()
    assert block.shortcut is None
    x = torch.randn(1, 8, 6, 6)
    residual = block.conv2(torch.relu(block.norm2(block.conv1(torch.relu(block.norm1(x))))))
    assert torch.allclose(block(x), x + residual, atol=1e-6)


def test_bottleneck_block_is_pre_activation():
    block = PreActBottleneck(3, c_in=8, channels=4, stride=1).eval()
    order = _call_order(block, torch.randn(1, 8, 4, 4, 4))
    assert order == ["norm1", "act", "shortcut", "conv1", "norm2", "act", "conv2", "norm3", "act", "conv3"]
    assert block.conv3.out_channels == 16 and isinstance(block.conv2, nn.Conv3d)


def test_final_bn_relu_before_pooling():
    model = build_resnet(10, ["a"], width=4)
    tail = list(model.trunk)[-4:]
    assert isinstance(tail[0], nn.BatchNorm2d) and isinstance(tail[1], nn.ReLU)
    assert isinstance(tail[2], nn.AdaptiveAvgPool2d) and isinstance(tail[3], nn.Flatten)


def test_heads_are_separate_and_named():
    torch.manual_seed(0)
    model = build_resnet(10, ["a", "b"], width=4)
    names = [n for n, _ in model.named_parameters()]
    assert all(n.startswith("trunk.") or n.startswith("heads.") for n in names)
    assert {n.split(".")[1] for n in names if n.startswith("heads.")} == {"a", "b"}
    assert model.head_names() == ["a", "b"]
    x = torch.rand(3, 1, 16, 16)
    model(x, "a").sum().backward()
    assert model.heads["b"].weight.grad is None
    assert model.heads["a"].weight.grad is not None
    assert not torch.allclose(model(x, "a"), model(x, "b"))


def test_bad_settings_are_user_errors():
    with pytest.raises(LungclError, match="depth"):
        build_resnet(20, ["a"])
    with pytest.raises(LungclError, match="spatial_dims"):
        build_resnet(18, ["a"], spatial_dims=1)
    with pytest.raises(LungclError):
        build_resnet(18, ["a", "a"])
    model = build_resnet(10, ["a"], width=2)
    with pytest.raises(LungclError, match="no head"):
        model(torch.rand(1, 1, 8, 8), "b")
    with pytest.raises(LungclError, match="4-D"):
        model(torch.rand(1, 8, 8), "a")
