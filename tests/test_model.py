"""Tests of alseg_utils.model: shapes, output stride, dropout placement, MC mode."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from alseg_utils.config import ENCODERS, ModelConfig
from alseg_utils.errors import ConfigError
from alseg_utils.model import DCAN, DCANOutput, build_model, set_mc_mode

BLOCKS = {"resnet18": [2, 2, 2, 2], "resnet34": [3, 4, 6, 3], "resnet50": [3, 4, 6, 3],
          "resnet101": [3, 4, 23, 3], "resnet152": [3, 8, 36, 3]}


def small_model(encoder: str = "resnet18", **kw) -> DCAN:
    torch.manual_seed(0)
    return build_model(ModelConfig(encoder=encoder, decoder_channels=4, **kw))


def encoder_shapes(model: DCAN, x: torch.Tensor) -> list[tuple[int, int]]:
    """Spatial size after layer1..layer4."""
    h, sizes = model.stem(x), []
    for stage in range(1, 5):
        h = getattr(model, f"layer{stage}")(h)
        sizes.append(tuple(h.shape[-2:]))
    return sizes


@pytest.mark.parametrize("encoder", ENCODERS)
def test_output_shapes_every_encoder(encoder):
    model = small_model(encoder).eval()
    x = torch.rand(2, 3, 35, 50)
    with torch.no_grad():
        out = model(x)
    assert isinstance(out, DCANOutput)
    assert out.object.shape == (2, 2, 35, 50) and out.contour.shape == (2, 2, 35, 50)
    assert len(out.aux_object) == 3 and len(out.aux_contour) == 3
    assert all(a.shape == (2, 2, 35, 50) for a in out.aux_object + out.aux_contour)
    n_dropout = sum(isinstance(m, nn.Dropout) for m in model.modules())
    assert n_dropout == sum(BLOCKS[encoder][2:])  # default stages [3, 4]


@pytest.mark.parametrize("encoder", ["resnet18", "resnet50"])
@pytest.mark.parametrize(
    ("output_stride", "expected"),
    [(32, [(16, 16), (8, 8), (4, 4), (2, 2)]), (16, [(16, 16), (8, 8), (4, 4), (4, 4)]),
     (8, [(16, 16), (8, 8), (8, 8), (8, 8)])],
)
def test_output_stride_dilates_instead_of_striding(encoder, output_stride, expected):
    model = small_model(encoder, output_stride=output_stride).eval()
    with torch.no_grad():
        assert encoder_shapes(model, torch.rand(1, 3, 64, 64)) == expected


def test_fused_is_sum_of_side_outputs():
    model = small_model().eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 32, 32))
    torch.testing.assert_close(out.object, sum(out.aux_object))
    torch.testing.assert_close(out.contour, sum(out.aux_contour))


def test_dropout_sits_before_every_block_of_configured_stages():
    model = small_model("resnet34", dropout=0.3, dropout_stages=[1, 4])
    for stage, n in zip(range(1, 5), BLOCKS["resnet34"]):
        layer = getattr(model, f"layer{stage}")
        assert len(layer) == n
        for unit in layer:
            has = isinstance(unit, nn.Sequential) and isinstance(unit[0], nn.Dropout)
            assert has == (stage in (1, 4))
            if has:
                assert unit[0].p == 0.3


def test_mc_mode_passes_differ_eval_passes_equal():
    model = small_model(dropout=0.5)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        set_mc_mode(model, True)
        a, b = model(x).object, model(x).object
        assert not torch.allclose(a, b)
        set_mc_mode(model, False)
        c, d = model(x).object, model(x).object
    torch.testing.assert_close(c, d, rtol=0, atol=0)
    assert not any(m.training for m in model.modules())


def test_mc_mode_keeps_batchnorm_in_eval_and_statistics_unchanged():
    model = small_model()
    set_mc_mode(model, True)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and not any(bn.training for bn in bns)
    assert all(m.training for m in model.modules() if isinstance(m, nn.Dropout))
    before = [(bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone()) for bn in bns]
    with torch.no_grad():
        for _ in range(2):
            model(torch.rand(2, 3, 32, 32) * 5)
    for bn, (mean, var, n) in zip(bns, before):
        assert torch.equal(bn.running_mean, mean) and torch.equal(bn.running_var, var)
        assert torch.equal(bn.num_batches_tracked, n)


def test_zero_dropout_has_no_dropout_layers():
    model = small_model(dropout=0.0)
    assert not any(isinstance(m, nn.Dropout) for m in model.modules())


def test_same_seed_same_weights():
    a, b = small_model(), small_model()
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_normalisation_buffers_are_not_in_the_checkpoint():
    keys = small_model().state_dict().keys()
    assert "mean" not in keys and "std" not in keys
    assert any(k.startswith("object_head.") for k in keys) and any(k.startswith("contour_head.") for k in keys)


@pytest.mark.parametrize(
    "kw",
    [{"encoder": "resnet9"}, {"output_stride": 4}, {"dropout": 1.0}, {"dropout_stages": [5]},
     {"decoder_channels": 0}],
)
def test_bad_config_raises(kw):
    with pytest.raises(ConfigError):
        build_model(ModelConfig(**kw))
