"""Tests of alseg_utils.devices: device names, and where a model is run."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from alseg_utils.devices import amp_dtype, model_device, resolve_device


def test_resolve_device_names() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")


def test_model_device_defaults_to_the_parameters_device() -> None:
    assert model_device(nn.Conv2d(3, 2, 1)) == torch.device("cpu")
    assert model_device(nn.ReLU()) == torch.device("cpu")  # no parameters: the CPU
    assert model_device(nn.Conv2d(3, 2, 1).to("meta")) == torch.device("meta")


def test_model_device_accepts_the_model_s_own_device_in_any_spelling() -> None:
    net = nn.Conv2d(3, 2, 1)
    for device in ("cpu", torch.device("cpu"), "auto" if not torch.cuda.is_available() else "cpu"):
        assert model_device(net, device) == torch.device("cpu")
    assert model_device(nn.ReLU(), "meta") == torch.device("meta")  # nothing to move, nothing to check


def test_model_device_refuses_a_device_the_model_is_not_on() -> None:
    with pytest.raises(ValueError, match=r"lives on cpu, not meta; call model.to\('meta'\)"):
        model_device(nn.Conv2d(3, 2, 1), "meta")
    with pytest.raises(ValueError, match="lives on meta, not cpu"):
        model_device(nn.Conv2d(3, 2, 1).to("meta"), torch.device("cpu"))
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        model_device(nn.Conv2d(3, 2, 1), "tpu")


@pytest.mark.parametrize("bf16, expected", [(True, torch.bfloat16), (False, torch.float16)])
def test_amp_dtype_is_bfloat16_where_the_gpu_has_it(monkeypatch, bf16, expected):
    """Training and MC inference share this rule (a bf16-trained model is never scored in fp16)."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    assert amp_dtype(torch.device("cuda"), True) == expected
    assert amp_dtype(torch.device("cuda"), False) is None
    assert amp_dtype(torch.device("cpu"), True) is None
