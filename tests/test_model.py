"""Tests of alseg_utils.model: shapes, output stride, dropout placement, MC mode, pretrained weights.

Nothing here downloads: ``pretrained`` is false, a weights file the test writes, or ``true`` with
the download function patched to fail (or a pre-filled torch-hub cache).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision
import yaml
from torch import nn

from alseg_utils.config import ENCODERS, ModelConfig, RunConfig, config_from_dict, load_config
from alseg_utils.errors import ConfigError
from alseg_utils.model import (
    DCAN,
    DCANOutput,
    build_encoder,
    build_model,
    load_encoder_state,
    read_weights_file,
    set_mc_mode,
    upsample_transposed,
)

BLOCKS = {"resnet10": [1, 1, 1, 1], "resnet18": [2, 2, 2, 2], "resnet34": [3, 4, 6, 3], "resnet50": [3, 4, 6, 3],
          "resnet101": [3, 4, 23, 3], "resnet152": [3, 8, 36, 3], "resnetv2_18": [2, 2, 2, 2],
          "resnetv2_34": [3, 4, 6, 3], "resnetv2_50": [3, 4, 6, 3], "resnetv2_101": [3, 4, 23, 3]}


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


@pytest.mark.parametrize("encoder", ["resnet18", "resnet50", "resnetv2_18", "resnetv2_50"])
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


@pytest.mark.parametrize("output_stride", [8, 16])
def test_timm_resnetv2_dilates_like_torchvision(output_stride):
    """Same dilation of every 3x3 convolution, unit by unit, as torchvision's ResNet-50."""
    def dilations(model):
        return [[unit.conv2.dilation[0] for unit in getattr(model, f"layer{k}")] for k in range(1, 5)]
    v1 = small_model("resnet50", output_stride=output_stride, dropout=0.0)
    v2 = small_model("resnetv2_50", output_stride=output_stride, dropout=0.0)
    assert dilations(v1) == dilations(v2)
    expected_last = [1, 2, 2] if output_stride == 16 else [2, 4, 4]
    assert dilations(v2)[3] == expected_last


def test_resnetv2_is_pre_activation_with_final_norm_and_its_statistics():
    model = small_model("resnetv2_18", dropout=0.0)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.stem.modules())  # no norm in a v2 stem
    assert isinstance(model.final_norm, nn.BatchNorm2d) and model.final_norm.num_features == 512  # layer4's width
    torch.testing.assert_close(model.mean.flatten(), torch.full((3,), 0.5))
    torch.testing.assert_close(model.std.flatten(), torch.full((3,), 0.5))
    plain = small_model("resnet18").final_norm
    t = torch.randn(1, 512, 2, 2)
    assert isinstance(plain, nn.Identity) and torch.equal(plain(t), t)  # v1 nets: layer4's output as it is


@pytest.mark.parametrize("encoder", ["resnet34", "resnetv2_34"])
def test_dropout_sits_before_every_block_of_configured_stages(encoder):
    model = small_model(encoder, dropout=0.3, dropout_stages=[1, 4])
    for stage, n in zip(range(1, 5), BLOCKS[encoder]):
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


@pytest.mark.parametrize("encoder", ["resnet18", "resnetv2_18"])
def test_mc_mode_keeps_batchnorm_in_eval_and_statistics_unchanged(encoder):
    model = small_model(encoder)
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
     {"decoder_channels": 0}, {"pretrained": 1}, {"pretrained": ""}],
)
def test_bad_config_raises(kw):
    (key,) = kw
    with pytest.raises(ConfigError, match=rf"^model\.{key}: ") as err:  # names the key, on one line
        build_model(ModelConfig(**kw))
    assert "\n" not in str(err.value)


# ----------------------------------------------------------------------------- pretrained weights


def one_line_error(err: pytest.ExceptionInfo) -> str:
    """The message of a user error: one line, no chained traceback."""
    message = str(err.value)
    assert "\n" not in message
    assert err.value.__cause__ is None and (err.value.__context__ is None or err.value.__suppress_context__)
    return message


@pytest.fixture(scope="module")
def resnet18_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(123)
    return torchvision.models.resnet18().state_dict()  # with fc.*: a full torchvision state dict


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory, resnet18_state) -> Path:
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(resnet18_state, path)
    return path


def test_weights_file_of_torchvision_resnet_is_loaded_into_the_encoder(resnet18_file, resnet18_state):
    model = small_model("resnet18", pretrained=str(resnet18_file))
    sd = resnet18_state
    assert torch.equal(model.stem[0].weight, sd["conv1.weight"])
    assert torch.equal(model.layer1[1].bn2.running_var, sd["layer1.1.bn2.running_var"])
    assert torch.equal(model.layer3[0][1].conv1.weight, sd["layer3.0.conv1.weight"])  # behind its dropout
    assert torch.equal(model.layer4[1][1].conv2.weight, sd["layer4.1.conv2.weight"])
    random = small_model("resnet18")
    assert not torch.equal(random.stem[0].weight, sd["conv1.weight"])
    assert torch.equal(model.object_head[0].up.weight, random.object_head[0].up.weight)  # decoder untouched


def test_weights_file_of_timm_resnetv2_is_loaded_with_its_final_norm(tmp_path):
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(7)
    net = timm.create_model("resnetv2_18", pretrained=False, num_classes=10)  # a head of another size
    sd = {k: v.contiguous() for k, v in net.state_dict().items()}
    path = tmp_path / "model.safetensors"
    save_file(sd, str(path))
    model = small_model("resnetv2_18", pretrained=str(path), output_stride=8)
    assert torch.equal(model.stem.conv.weight, sd["stem.conv.weight"])
    assert torch.equal(model.layer4[1][1].conv2.weight, sd["stages.3.blocks.1.conv2.weight"])
    assert torch.equal(model.final_norm.weight, sd["norm.weight"])
    assert torch.equal(model.final_norm.running_mean, sd["norm.running_mean"])


def test_read_weights_file_unwraps_checkpoints_and_dataparallel_prefix(tmp_path):
    w = torch.arange(6.0).reshape(2, 3)
    torch.save({"epoch": 3, "state_dict": {"module.conv.weight": w, "module.bn.bias": w[0]}}, tmp_path / "c.pt")
    state = read_weights_file(tmp_path / "c.pt")
    assert sorted(state) == ["bn.bias", "conv.weight"] and torch.equal(state["conv.weight"], w)
    torch.save({"model": {"a": w}}, tmp_path / "m.pt")
    assert list(read_weights_file(tmp_path / "m.pt")) == ["a"]


@pytest.mark.parametrize(
    ("content", "words"),
    [(b"not a checkpoint", "cannot read"), ([1, 2], "holds no state dict"),
     ({"epoch": 3}, "holds no state dict"), ({"w": torch.zeros(2), "n": 5}, "holds no state dict"),
     (torch.nn.Linear(2, 2), "cannot read")],  # a pickled module: weights_only refuses it
)
def test_unreadable_weights_file_is_one_config_error(tmp_path, content, words):
    path = tmp_path / "w.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(ConfigError) as err:
        build_model(ModelConfig(encoder="resnet18", decoder_channels=4, pretrained=str(path)))
    message = one_line_error(err)
    assert words in message and str(path) in message and "model.pretrained" in message


def test_missing_weights_file_is_one_config_error(tmp_path):
    with pytest.raises(ConfigError) as err:
        build_model(ModelConfig(encoder="resnet18", pretrained=str(tmp_path / "nope.pth")))
    assert "not found" in one_line_error(err)


def test_weights_of_another_encoder_do_not_fit(resnet18_file):
    with pytest.raises(ConfigError) as err:
        build_model(ModelConfig(encoder="resnet34", decoder_channels=4, pretrained=str(resnet18_file)))
    message = one_line_error(err)
    assert "does not fit encoder resnet34" in message and "missing keys (e.g. layer1.2." in message
    with pytest.raises(ConfigError) as err:
        build_model(ModelConfig(encoder="resnetv2_18", decoder_channels=4, pretrained=str(resnet18_file)))
    message = one_line_error(err)
    assert "missing keys" in message and "unexpected keys" in message and "timm's resnetv2_18" in message


@pytest.mark.parametrize(
    ("change", "words"),
    [(lambda sd: sd.update({"conv1.weight": torch.zeros(64, 3, 3, 3)}),
      "1 tensors of another shape (e.g. conv1.weight [64, 3, 3, 3] vs [64, 3, 7, 7])"),
     (lambda sd: sd.pop("layer1.0.conv1.weight"), "1 missing keys (e.g. layer1.0.conv1.weight)"),
     (lambda sd: sd.update({"extra.weight": torch.zeros(1)}), "1 unexpected keys (e.g. extra.weight)")],
)
def test_load_encoder_state_names_the_misfit(resnet18_state, change, words):
    state = dict(resnet18_state)
    change(state)
    with pytest.raises(ConfigError) as err:
        load_encoder_state(torchvision.models.resnet18(), state, "w.pth", "resnet18")
    assert words in one_line_error(err)


def test_plain_encoder_state_without_classifier_loads(resnet18_state):
    net = torchvision.models.resnet18()
    load_encoder_state(net, {k: v for k, v in resnet18_state.items() if not k.startswith("fc.")}, "w", "resnet18")
    assert torch.equal(net.layer2[0].downsample[0].weight, resnet18_state["layer2.0.downsample.0.weight"])


def _no_network(*args, **kwargs):
    raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")


def test_imagenet_download_failure_is_one_line_naming_the_offline_options(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))  # an empty cache
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_network)
    with pytest.raises(ConfigError) as err:
        build_model(ModelConfig(encoder="resnet18", pretrained=True))
    message = one_line_error(err)
    assert "could not fetch the ImageNet weights of resnet18 (URLError" in message
    assert torchvision.models.ResNet18_Weights.DEFAULT.url in message
    assert str(tmp_path / "hub" / "checkpoints") in message
    assert "path of a weights file" in message and "false" in message


def test_imagenet_weights_come_from_the_torch_hub_cache_without_network(tmp_path, monkeypatch, resnet18_file,
                                                                         resnet18_state):
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_network)
    cached = tmp_path / "hub" / "checkpoints" / Path(torchvision.models.ResNet18_Weights.DEFAULT.url).name
    cached.parent.mkdir(parents=True)
    cached.symlink_to(resnet18_file)  # what the offline message tells the user to do
    model = small_model("resnet18", pretrained=True)
    assert torch.equal(model.stem[0].weight, resnet18_state["conv1.weight"])


def test_hugging_face_download_failure_is_one_line_naming_the_offline_options(monkeypatch):
    import timm.models._hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline(*args, **kwargs):
        raise LocalEntryNotFoundError("An error happened while trying to locate the file on the Hub and we cannot "
                                      "find the requested files in the local cache.\nPlease check your connection")

    monkeypatch.setattr(timm.models._hub, "hf_hub_download", offline)
    with pytest.raises(ConfigError) as err:
        build_model(ModelConfig(encoder="resnetv2_50", pretrained=True))
    message = one_line_error(err)
    assert "could not fetch the ImageNet weights of resnetv2_50 from the Hugging Face hub" in message
    assert "LocalEntryNotFoundError" in message and "https://huggingface.co/timm/resnetv2_50.a1h_in1k" in message
    assert "set model.pretrained to its path" in message and "false" in message


# ----------------------------------------------------------------------------- model.pretrained in params files


def _params(tmp_path: Path, pretrained) -> Path:
    f = tmp_path / "sub" / "p.yaml"
    f.parent.mkdir(exist_ok=True)
    f.write_text(yaml.safe_dump({"model": {"pretrained": pretrained}}))
    return f


@pytest.mark.parametrize("value", [True, False])
def test_pretrained_bool_is_kept(tmp_path, value):
    assert load_config(_params(tmp_path, value)).model.pretrained is value


def test_relative_weights_path_resolves_against_the_params_file(tmp_path):
    cfg = load_config(_params(tmp_path, "../w/enc.pth"))
    assert cfg.model.pretrained == str((tmp_path / "w" / "enc.pth").resolve())
    assert cfg.weights_file() == (tmp_path / "w" / "enc.pth").resolve()
    assert load_config(_params(tmp_path, False)).weights_file() is None


@pytest.mark.parametrize(("value", "words"), [(1, "expected bool or str, got 1"), (0.5, "expected bool or str"),
                                              ("", "give true"), ([True], "expected bool or str")])
def test_bad_pretrained_values_are_refused(tmp_path, value, words):
    f = _params(tmp_path, value)
    with pytest.raises(ConfigError) as err:
        load_config(f)
    message = str(err.value)
    assert "model.pretrained" in message and words in message and str(f) in message and "\n" not in message


def test_fingerprint_hashes_the_weights_file_content(tmp_path):
    a, b = tmp_path / "a.pth", tmp_path / "b.pth"
    a.write_bytes(b"weights one")
    b.write_bytes(b"weights one")
    fa = config_from_dict({"model": {"pretrained": str(a)}})
    fb = config_from_dict({"model": {"pretrained": str(b)}})
    assert fa.fingerprint() == fb.fingerprint()  # same content elsewhere: same run
    assert fa.fingerprint_dict()["model"]["pretrained"] == "sha256:" + hashlib.sha256(b"weights one").hexdigest()
    b.write_bytes(b"weights two")
    assert fb.fingerprint() != fa.fingerprint()  # other content: another run
    assert fa.fingerprint() != config_from_dict({"model": {"pretrained": True}}).fingerprint()
    a.unlink()
    with pytest.raises(ConfigError, match="not found"):
        fa.fingerprint()


def test_fingerprint_of_bool_pretrained_is_unchanged():
    """Run folders made before weights files existed keep their fingerprint (resumable)."""
    cfg = RunConfig()
    d = cfg.to_dict()
    for key in ("source", "sweep"):
        d.pop(key)
    d["train"].pop("progress")
    expected = hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]
    assert cfg.fingerprint() == expected


def test_resnet10_is_one_basic_block_per_stage_with_dropout_and_dilation() -> None:
    cfg = ModelConfig(encoder="resnet10", dropout=0.5, dropout_stages=[3, 4], output_stride=16, decoder_channels=4)
    model = build_model(cfg)
    assert [len(getattr(model, f"layer{k}")) for k in range(1, 5)] == [1, 1, 1, 1]
    assert sum(isinstance(m, torch.nn.Dropout) for m in model.modules()) == 2  # one unit in each of stages 3, 4
    assert [side.conv[0].in_channels for side in model.object_head] == [128, 256, 512]
    assert model.layer4[0][1].conv1.stride == (1, 1)  # stride 32 -> 16: layer4 no longer downsamples
    out = model(torch.rand(1, 3, 32, 48))
    assert out.object.shape == (1, 2, 32, 48) and len(out.aux_contour) == 3


def test_resnet10_has_no_imagenet_weights_to_ask_for() -> None:
    with pytest.raises(ConfigError, match="no ImageNet weights ship for resnet10"):
        config_from_dict({"model": {"encoder": "resnet10", "pretrained": True}})


@pytest.mark.parametrize("stride, h, w", [(8, 8, 12), (16, 4, 6), (32, 2, 3), (16, 33, 49), (4, 1, 1)])
def test_upsample_transposed_is_the_transposed_convolution(stride, h, w):
    """Values and gradients (input, weight, bias) equal PyTorch's conv_transpose2d to float rounding."""
    gen = torch.Generator().manual_seed(stride + h)
    x = torch.randn(3, 5, h, w, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(5, 2, 2 * stride, 2 * stride, generator=gen, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(2, generator=gen, dtype=torch.float64, requires_grad=True)
    probe = torch.randn(3, 2, h * stride, w * stride, generator=gen, dtype=torch.float64)
    ours = upsample_transposed(x, weight, bias, stride)
    grads = torch.autograd.grad((ours * probe).sum(), (x, weight, bias))
    ref = torch.nn.functional.conv_transpose2d(x, weight, bias, stride=stride, padding=stride // 2)
    ref_grads = torch.autograd.grad((ref * probe).sum(), (x, weight, bias))
    assert ours.shape == ref.shape == (3, 2, h * stride, w * stride)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-10)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-10)


def test_upsample_transposed_refuses_other_kernels():
    with pytest.raises(ValueError, match="even stride"):
        upsample_transposed(torch.zeros(1, 2, 3, 3), torch.zeros(2, 2, 6, 6), None, 3)
    with pytest.raises(ValueError, match="kernel"):
        upsample_transposed(torch.zeros(1, 2, 3, 3), torch.zeros(2, 2, 5, 5), None, 2)


def test_side_output_keeps_the_deconvolution_parameters():
    """Checkpoints keep their keys: the side output's upsampling is still an nn.ConvTranspose2d's weight."""
    model = build_model(ModelConfig(encoder="resnet18", pretrained=False))
    head = model.object_head[0]
    assert isinstance(head.up, nn.ConvTranspose2d)
    feats = torch.randn(2, head.conv[0].in_channels, 4, 6)
    ref = head.up(head.conv(feats))
    torch.testing.assert_close(head(feats, tuple(ref.shape[-2:])), ref, rtol=1e-5, atol=1e-5)


def test_upsample_transposed_sums_half_precision_in_float32():
    gen = torch.Generator().manual_seed(0)
    x, weight = torch.randn(2, 4, 3, 5, generator=gen), torch.randn(4, 2, 16, 16, generator=gen)
    ours = upsample_transposed(x.bfloat16(), weight.bfloat16(), None, 8)
    ref = torch.nn.functional.conv_transpose2d(x, weight, None, stride=8, padding=4)
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours, ref, rtol=0.05, atol=0.1)


# ----------------------------------------------------------------------------- narrow encoders and weights files


def test_narrow_encoder_takes_a_weights_file_of_its_own_width(tmp_path):
    from benchmarks.encoder_pretraining import encoder_state

    cfg = ModelConfig(encoder="resnet10", width=16, decoder_channels=4, output_stride=32)
    torch.manual_seed(5)
    state = encoder_state(build_encoder(cfg))
    path = tmp_path / "narrow.pth"
    torch.save(state, path)
    run = config_from_dict({"model": {"encoder": "resnet10", "width": 16, "pretrained": str(path)}})
    assert run.model.pretrained == str(path)
    model = build_model(dataclasses.replace(cfg, pretrained=str(path)))
    assert torch.equal(model.stem[0].weight, state["conv1.weight"])
    assert torch.equal(model.layer4[0][1].conv2.weight, state["layer4.0.conv2.weight"])  # behind its dropout
    torch.save(encoder_state(build_encoder(dataclasses.replace(cfg, width=8))), path)  # another width
    with pytest.raises(ConfigError) as err:
        build_model(dataclasses.replace(cfg, pretrained=str(path)))
    assert "tensors of another shape" in one_line_error(err)


def test_narrow_encoder_refuses_imagenet_weights_in_one_line():
    with pytest.raises(ConfigError) as err:
        config_from_dict({"model": {"encoder": "resnet18", "width": 32, "pretrained": True}})
    message = one_line_error(err)
    assert "model.width" in message and "width 64 only" in message and "weights file" in message


@pytest.mark.parametrize("pretext", ["inpainting", "contrastive"])
def test_pretext_training_moves_the_encoder_and_is_seeded(pretext):
    from benchmarks.encoder_pretraining import PRETEXTS, encoder_state

    cfg = ModelConfig(encoder="resnet10", width=8, decoder_channels=4, output_stride=32)
    images = torch.rand(4, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    states = []
    for _ in range(2):
        torch.manual_seed(1)
        enc = build_encoder(cfg)
        before = encoder_state(enc)
        losses = PRETEXTS[pretext](enc, images, 2, seed=3)
        assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
        states.append(encoder_state(enc))
    assert not torch.equal(states[0]["conv1.weight"], before["conv1.weight"])
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])  # same seed, same weights
