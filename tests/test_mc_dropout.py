"""Streaming MC-dropout inference: equality with the stacked computation, prefix caching, seeding, modes, memory."""

from __future__ import annotations

import math
import os
from collections import Counter
from typing import Any, NamedTuple

import numpy as np
import pytest
import torch
from torch import nn

from alseg_utils.mc_dropout import (
    PASS_PIXELS,
    MCPrediction,
    auto_samples_per_pass,
    categorical_entropy,
    enable_mc_dropout,
    mc_predict,
    summarize_samples,
)
from alseg_utils.uncertainty import score_pixels, score_prediction

LN2 = math.log(2.0)


# --------------------------------------------------------------------------- summaries of stacked samples


def test_categorical_entropy_hand_worked() -> None:
    p = torch.tensor([[0.25, 0.25, 0.5], [1.0, 0.0, 0.0]])
    torch.testing.assert_close(categorical_entropy(p, dim=1), torch.tensor([1.5 * LN2, 0.0]))


def test_summarize_samples_hand_worked() -> None:
    # one pixel, samples (0.9, 0.1) and (0.5, 0.5): mean (0.7, 0.3), mean entropy (H(0.9) + ln 2) / 2
    probs = torch.tensor([[0.9, 0.1], [0.5, 0.5]], dtype=torch.float64)[:, None, :, None, None]
    pred = summarize_samples(probs)
    h_first = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    torch.testing.assert_close(pred.mean[0, :, 0, 0], torch.tensor([0.7, 0.3], dtype=torch.float64))
    assert float(pred.mean_entropy[0, 0, 0]) == pytest.approx((h_first + LN2) / 2, abs=1e-12)
    assert pred.samples == 2 and pred.contour is None


def test_enable_mc_dropout_switches_only_dropout_to_training() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.Dropout(0.5), nn.Dropout2d(0.1)).train()
    assert enable_mc_dropout(net) is net
    assert [m.training for m in net] == [False, False, True, True] and not net.training


# --------------------------------------------------------------------------- streaming MC dropout


class _Out(NamedTuple):
    object: torch.Tensor
    contour: torch.Tensor


class _DropoutNet(nn.Module):
    """conv -> batch-norm -> dropout -> two 1x1 heads (object, contour), like a tiny DCAN."""

    def __init__(self, two_heads: bool = True, p: float = 0.5) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.drop = nn.Dropout(p)
        self.obj = nn.Conv2d(8, 3, 1)  # three classes: C > 2 is exercised
        self.cont = nn.Conv2d(8, 2, 1)
        self.two_heads = two_heads

    def forward(self, x: torch.Tensor) -> torch.Tensor | _Out:
        h = self.drop(torch.relu(self.bn(self.conv(x))))
        if not self.two_heads:
            return self.obj(h)
        return _Out(self.obj(h), self.cont(h))


def _net(two_heads: bool = True, p: float = 0.5) -> _DropoutNet:
    torch.manual_seed(0)
    net = _DropoutNet(two_heads, p)
    with torch.no_grad():
        net.bn.running_mean.uniform_(-0.2, 0.2)
        net.bn.running_var.uniform_(0.5, 2.0)
    return net.train()


def _stacked_reference(net: nn.Module, x: torch.Tensor, T: int, batch: int, k: int,
                       seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain loop with the same RNG order as mc_predict; returns ([T,N,C,H,W], [T,N,H,W])."""
    torch.manual_seed(seed)
    enable_mc_dropout(net)
    probs, contours = [], []
    with torch.no_grad():
        for start in range(0, len(x), batch):
            xb, per_batch, per_contour = x[start:start + batch], [], []
            done = 0
            while done < T:
                kk = min(k, T - done)
                out = net(xb.repeat(kk, 1, 1, 1))
                per_batch += list(torch.softmax(out.object, 1).view(kk, len(xb), *out.object.shape[1:]))
                per_contour += list(torch.softmax(out.contour, 1)[:, 1].view(kk, len(xb), *xb.shape[2:]))
                done += kk
            probs.append(torch.stack(per_batch))
            contours.append(torch.stack(per_contour))
    return torch.cat(probs, 1), torch.cat(contours, 1)


@pytest.mark.parametrize("batch,k", [(2, 1), (5, 1), (2, 3), (2, None)])
def test_mc_predict_equals_the_stacked_computation(batch: int, k: int | None) -> None:
    net = _net()
    x = torch.rand(5, 3, 6, 7, generator=torch.Generator().manual_seed(1))
    pred = mc_predict(net, x, T=7, batch_size=batch, seed=11, samples_per_pass=k)
    k = auto_samples_per_pass(7, batch, 6, 7) if k is None else k  # auto: all 7 in one pass
    probs, contours = _stacked_reference(net, x, T=7, batch=batch, k=k, seed=11)
    assert pred.samples == 7 and pred.mean.shape == (5, 3, 6, 7) and pred.mean.dtype == torch.float32
    torch.testing.assert_close(pred.mean, probs.mean(0), atol=1e-6, rtol=0)
    torch.testing.assert_close(pred.contour, contours.mean(0), atol=1e-6, rtol=0)
    for name in ("varratio", "entropy", "bald"):
        torch.testing.assert_close(score_prediction(name, pred), score_pixels(name, probs), atol=1e-5, rtol=0)
    assert float(score_prediction("bald", pred).max()) > 1e-3  # the samples really differ


def test_auto_samples_per_pass_fills_a_pixel_budget() -> None:
    assert auto_samples_per_pass(8, 8, 128, 192) == 8  # quick setting: all samples in one pass
    assert auto_samples_per_pass(30, 4, 528, 784) == 1  # GlaS: one batch already fills a pass
    k = auto_samples_per_pass(1000, 2, 64, 64)  # budget-bound, not T-bound
    assert 1 <= k < 1000 and k * 2 * 64 * 64 <= PASS_PIXELS < (k + 1) * 2 * 64 * 64
    assert auto_samples_per_pass(3, 2, 64, 64) == 3  # never more than T


def test_mc_predict_restores_modes_and_global_rng() -> None:
    net = _net()
    net.train()
    net.bn.eval()  # a mixed state must come back as it was
    flags = [m.training for m in net.modules()]
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    mc_predict(net, torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(0)), T=3, seed=5)
    assert [m.training for m in net.modules()] == flags
    assert torch.equal(torch.rand(3), expected_next)  # seeding did not touch the global RNG


def test_mc_predict_is_deterministic_by_seed_and_uses_fresh_masks() -> None:
    net = _net()
    x = torch.rand(3, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    a, b = mc_predict(net, x, T=4, seed=3), mc_predict(net, x, T=4, seed=3)
    c = mc_predict(net, x, T=4, seed=4)
    assert torch.equal(a.mean, b.mean) and not torch.equal(a.mean, c.mean)


def test_uint8_images_equal_float_images() -> None:
    net = _net(two_heads=False)
    rgb = np.random.default_rng(0).integers(0, 256, (3, 5, 6, 3), dtype=np.uint8)  # [N, H, W, 3]
    as_float = torch.from_numpy(rgb).permute(0, 3, 1, 2).float() / 255  # [N, 3, H, W]
    a = mc_predict(net, rgb, T=3, batch_size=2, seed=0)
    b = mc_predict(net, as_float, T=3, batch_size=2, seed=0)
    torch.testing.assert_close(a.mean, b.mean)
    assert a.contour is None and b.contour is None


def test_without_dropout_all_samples_agree() -> None:
    net = _net(p=0.0)
    pred = mc_predict(net, torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(0)), T=5)
    torch.testing.assert_close(score_prediction("bald", pred), torch.zeros(2, 4, 4), atol=1e-6, rtol=0)


@pytest.mark.parametrize("kwargs,match", [
    ({"T": 0}, "T must be"),
    ({"T": 2, "batch_size": 0}, "batch_size"),
    ({"T": 2, "samples_per_pass": 0}, "samples_per_pass"),
    ({"T": 2, "samples_per_pass": 1.5}, "samples_per_pass"),
    ({"T": 2, "images": np.zeros((2, 4, 4, 3), dtype=np.float32)}, "uint8"),
    ({"T": 2, "images": torch.zeros(2, 4, 4, 3)}, r"\[N, 3, H, W\]"),
    ({"T": 2, "images": torch.zeros(0, 3, 4, 4)}, "empty"),
    ({"T": 2, "images": [[0.0]]}, "NumPy array or a torch tensor"),
])
def test_mc_predict_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    kwargs = {"images": torch.zeros(2, 3, 4, 4), **kwargs}
    with pytest.raises(ValueError, match=match):
        mc_predict(_net(), **kwargs)


def test_mc_predict_rejects_unusable_model_output_and_wrong_device() -> None:
    class Dicty(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 1)

        def forward(self, x: torch.Tensor) -> dict:
            return {"logits": self.conv(x)}

    with pytest.raises(ValueError, match=r"\.object"):
        mc_predict(Dicty(), torch.zeros(1, 3, 2, 2), T=1)
    with pytest.raises(ValueError, match="model.to"):
        mc_predict(_net(), torch.zeros(1, 3, 2, 2), T=1, device="meta")


def test_mc_predict_with_the_project_model() -> None:
    from alseg_utils.config import ModelConfig
    from alseg_utils.model import build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(encoder="resnet18", decoder_channels=4))
    x = torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    pred = mc_predict(model, x, T=2, batch_size=2, seed=0)
    assert model.training  # build_model returns a training-mode model; it is left that way
    assert isinstance(pred, MCPrediction) and pred.samples == 2
    assert pred.mean.shape == (2, 2, 32, 48) and pred.contour.shape == pred.mean_entropy.shape == (2, 32, 48)
    torch.testing.assert_close(pred.mean.sum(1), torch.ones(2, 32, 48))
    # the same numbers as the plain loop over DCAN's two heads
    probs, contours = _stacked_reference(model, x, T=2, batch=2, k=auto_samples_per_pass(2, 2, 32, 48), seed=0)
    torch.testing.assert_close(pred.mean, probs.mean(0), atol=1e-6, rtol=0)
    torch.testing.assert_close(pred.contour, contours.mean(0), atol=1e-6, rtol=0)
    torch.testing.assert_close(pred.mean_entropy, categorical_entropy(probs, dim=2).mean(0), atol=1e-5, rtol=0)


# --------------------------------------------------------------------------- the prefix before the first dropout, once


def _project_model(encoder: str = "resnet18", stages: tuple[int, ...] = (3, 4), **kw: Any) -> nn.Module:
    from alseg_utils.config import ModelConfig
    from alseg_utils.model import build_model

    torch.manual_seed(0)
    return build_model(ModelConfig(encoder=encoder, dropout_stages=list(stages), **{"decoder_channels": 4, **kw}))


@pytest.mark.parametrize("encoder,stages,stop", [
    ("resnet18", (3, 4), 4),  # stem, layer1 and layer2 (2 units each, + layer2's side outputs) cached
    ("resnet18", (1,), 0),  # dropout in stage 1: only the stem is cached
    ("resnet18", (2, 4), 2),
    ("resnet18", (), 8),  # no dropout: the whole network is cached, the suffix only fuses
    ("resnetv2_18", (3, 4), 4),  # timm's pre-activation encoder
])
def test_split_sits_in_front_of_the_first_dropout_and_composes_to_forward(
        encoder: str, stages: tuple[int, ...], stop: int) -> None:
    model = _project_model(encoder, stages).eval()
    split = model.mc_split()
    assert split.prefix.keywords["stop"] == stop
    units = [unit for _, unit in model.units()]
    assert not any(isinstance(m, nn.Dropout) for unit in units[:stop] for m in unit.modules())
    assert stop == len(units) or isinstance(units[stop][0], nn.Dropout)
    x = torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        whole, parts = model(x.repeat(3, 1, 1, 1)), split.suffix(split.prefix(x).repeat(3))  # [6, 2, 32, 48]
    for a, b in zip([whole.object, whole.contour, *whole.aux_object, *whole.aux_contour],
                    [parts.object, parts.contour, *parts.aux_object, *parts.aux_contour], strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


@pytest.mark.parametrize("encoder,stages", [("resnet18", (3, 4)), ("resnet18", (1,)), ("resnet18", (2, 4)),
                                            ("resnetv2_18", (3, 4))])
def test_cached_prefix_gives_the_naive_predictions(encoder: str, stages: tuple[int, ...]) -> None:
    model = _project_model(encoder, stages)
    x = torch.rand(5, 3, 32, 48, generator=torch.Generator().manual_seed(1))  # batches of 2, 2, 1 images
    cached = mc_predict(model, x, T=5, batch_size=2, seed=7, samples_per_pass=2)  # chunks of 2, 2, 1 samples
    naive = mc_predict(model, x, T=5, batch_size=2, seed=7, samples_per_pass=2, cache_prefix=False)
    torch.testing.assert_close(cached.mean, naive.mean, atol=1e-6, rtol=0)
    torch.testing.assert_close(cached.mean_entropy, naive.mean_entropy, atol=1e-6, rtol=0)
    torch.testing.assert_close(cached.contour, naive.contour, atol=1e-6, rtol=0)
    assert float(score_prediction("bald", cached).max()) > 1e-3  # the samples differ, and the masks are shared


def test_cached_prefix_is_bit_identical_in_the_quick_setting() -> None:
    """ResNet-10, output stride 32, 96x144 images, one thread: the same bits.

    At 64x96 (the quick images) some CPU kernels pick another algorithm for the suffix's bigger
    batch and the two paths agree to float rounding only (the 1e-6 tests above).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = _project_model("resnet10", (3, 4), output_stride=32, decoder_channels=16)
        x = torch.rand(3, 3, 96, 144, generator=torch.Generator().manual_seed(2))
        cached = mc_predict(model, x, T=3, batch_size=2, seed=5)
        naive = mc_predict(model, x, T=3, batch_size=2, seed=5, cache_prefix=False)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(cached.mean, naive.mean) and torch.equal(cached.mean_entropy, naive.mean_entropy)
    assert torch.equal(cached.contour, naive.contour)


def test_prefix_runs_once_per_batch_and_the_suffix_once_per_chunk() -> None:
    model = _project_model("resnet18", (3, 4))
    calls: Counter[str] = Counter()
    model.stem.register_forward_hook(lambda *_: calls.update(["stem"]))
    model.layer3[0].register_forward_hook(lambda *_: calls.update(["layer3"]))
    x = torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    mc_predict(model, x, T=6, batch_size=2, seed=0, samples_per_pass=2)  # 3 batches x 3 chunks of 2 samples
    assert calls == {"stem": 3, "layer3": 9}
    calls.clear()
    mc_predict(model, x, T=6, batch_size=2, seed=0, samples_per_pass=2, cache_prefix=False)
    assert calls == {"stem": 9, "layer3": 9}


def test_dropout_outside_the_residual_units_runs_the_whole_model() -> None:
    model = _project_model("resnet18", (3, 4))
    model.stem = nn.Sequential(nn.Dropout(0.2), *model.stem)  # nothing is deterministic: no split
    assert model.mc_split() is None
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    a, b = mc_predict(model, x, T=3, seed=1), mc_predict(model, x, T=3, seed=1, cache_prefix=False)
    assert torch.equal(a.mean, b.mean) and not torch.equal(a.mean, mc_predict(model, x, T=3, seed=2).mean)


# --------------------------------------------------------------------------- memory does not grow with T


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _RSSProbe(nn.Module):
    """1x1 conv (16 classes) + dropout that records the process's resident memory at every forward."""

    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.5)
        self.conv = nn.Conv2d(3, 16, 1)
        self.rss: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rss.append(_rss_bytes())
        return self.conv(self.drop(x))


def _growth(run: object) -> int:
    probe = _RSSProbe()
    start = _rss_bytes()
    run(probe)
    return max(probe.rss) - start


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads Linux /proc")
def test_peak_memory_does_not_grow_with_T() -> None:
    """Run in a fresh interpreter: after other tests the allocator holds free pages and RSS hides growth."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, __file__], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]


def _memory_probe() -> None:
    x = torch.rand(1, 3, 128, 256, generator=torch.Generator().manual_seed(0))  # 2 MiB per sample

    def stacked(probe: nn.Module, T: int = 48) -> None:  # what streaming avoids: [T, ...] held
        enable_mc_dropout(probe)
        with torch.no_grad():
            kept = [torch.softmax(probe(x), 1) for _ in range(T)]
        del kept

    mc_predict(_RSSProbe(), x, T=2)  # warm-up: allocator pools, lazy imports
    small = _growth(lambda p: mc_predict(p, x, T=4, seed=0, samples_per_pass=1))
    large = _growth(lambda p: mc_predict(p, x, T=64, seed=0, samples_per_pass=1))
    naive = _growth(stacked)
    mib = 2**20
    assert naive - small > 48 * mib, "the probe cannot see a stacked implementation's growth"
    assert large - small < 16 * mib, f"memory grew by {(large - small) / mib:.0f} MiB from T=4 to T=64"


if __name__ == "__main__":  # the fresh-process body of test_peak_memory_does_not_grow_with_T
    _memory_probe()
