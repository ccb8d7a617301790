"""Acquisition functions on hand-worked samples, their bounds, baal agreement, streaming MC dropout."""

from __future__ import annotations

import math
import os
import warnings
from typing import NamedTuple

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torch import nn

from alseg_utils.uncertainty import (
    ACQUISITION_FUNCTIONS,
    PASS_PIXELS,
    MCPrediction,
    auto_samples_per_pass,
    categorical_entropy,
    enable_mc_dropout,
    image_scores,
    mc_predict,
    score_pixels,
    score_prediction,
    summarize_samples,
)

with warnings.catch_warnings():
    # baal 2.1 configures its logger through the deprecated structlog.threadlocal when imported.
    warnings.filterwarnings("ignore", message=".*structlog.threadlocal.*", category=DeprecationWarning)
    baal_heuristics = pytest.importorskip("baal.active.heuristics")

LN2 = math.log(2.0)


def _pixels(*dists: list[float]) -> torch.Tensor:
    """Stack per-sample class distributions of ONE pixel into ``[T, 1, C, 1, 1]`` float64."""
    return torch.tensor(dists, dtype=torch.float64)[:, None, :, None, None]


def _scores(probs: torch.Tensor) -> dict[str, float]:
    return {name: float(score_pixels(name, probs)[0, 0, 0]) for name in ("varratio", "entropy", "bald")}


# --------------------------------------------------------------------------- hand-worked samples


def test_certain_samples_score_zero_and_are_safe_at_p0() -> None:
    s = _scores(_pixels([1.0, 0.0], [1.0, 0.0], [1.0, 0.0]))
    assert s == {"varratio": 0.0, "entropy": 0.0, "bald": 0.0}


def test_uniform_samples_have_max_entropy_but_no_bald() -> None:
    s = _scores(_pixels([0.5, 0.5], [0.5, 0.5]))
    assert s["varratio"] == pytest.approx(0.5, abs=1e-12)
    assert s["entropy"] == pytest.approx(LN2, abs=1e-12)
    assert s["bald"] == pytest.approx(0.0, abs=1e-12)


def test_disagreeing_confident_samples_have_max_bald() -> None:
    s = _scores(_pixels([1.0, 0.0], [0.0, 1.0]))
    assert s["varratio"] == pytest.approx(0.5, abs=1e-12)
    assert s["entropy"] == pytest.approx(LN2, abs=1e-12)
    assert s["bald"] == pytest.approx(LN2, abs=1e-12)


def test_mixed_samples_hand_worked() -> None:
    # samples (0.9, 0.1) and (0.5, 0.5): mean (0.7, 0.3)
    s = _scores(_pixels([0.9, 0.1], [0.5, 0.5]))
    h_mean = -(0.7 * math.log(0.7) + 0.3 * math.log(0.3))  # 0.610864
    h_first = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))  # 0.325083
    assert s["varratio"] == pytest.approx(0.3, abs=1e-12)
    assert s["entropy"] == pytest.approx(0.6108643020548935, abs=1e-9)
    assert s["entropy"] == pytest.approx(h_mean, abs=1e-12)
    assert s["bald"] == pytest.approx(h_mean - (h_first + LN2) / 2, abs=1e-12)
    assert s["bald"] == pytest.approx(0.1017492251, abs=1e-9)


def test_three_classes_uniform() -> None:
    s = _scores(_pixels([1 / 3, 1 / 3, 1 / 3]))
    assert s["varratio"] == pytest.approx(2 / 3, abs=1e-12)
    assert s["entropy"] == pytest.approx(math.log(3), abs=1e-12)
    assert s["bald"] == pytest.approx(0.0, abs=1e-12)


def test_scores_are_per_pixel_and_per_image() -> None:
    probs = torch.zeros(2, 2, 2, 1, 2, dtype=torch.float64)  # [T, N, C, H, W]
    probs[:, :, 0] = 1.0  # everything certain of class 0 ...
    probs[0, 1, :, 0, 1] = torch.tensor([1.0, 0.0])  # ... except image 1, pixel (0, 1): disagreement
    probs[1, 1, :, 0, 1] = torch.tensor([0.0, 1.0])
    bald = score_pixels("bald", probs)
    assert bald.shape == (2, 1, 2)
    expected = torch.zeros(2, 1, 2, dtype=torch.float64)
    expected[1, 0, 1] = LN2
    torch.testing.assert_close(bald, expected)


def test_numpy_input_and_dtype_kept() -> None:
    probs = np.full((2, 1, 2, 3, 3), 0.5, dtype=np.float32)
    out = score_pixels("entropy", probs)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == (1, 3, 3)
    np.testing.assert_allclose(out.numpy(), LN2, rtol=1e-6)


def test_categorical_entropy_hand_worked() -> None:
    p = torch.tensor([[0.25, 0.25, 0.5], [1.0, 0.0, 0.0]])
    torch.testing.assert_close(categorical_entropy(p, dim=1), torch.tensor([1.5 * LN2, 0.0]))


# --------------------------------------------------------------------------- random baseline


def test_random_needs_a_generator_and_is_reproducible() -> None:
    probs = torch.full((3, 2, 2, 4, 5), 0.5)
    with pytest.raises(ValueError, match="generator"):
        score_pixels("random", probs)
    a = score_pixels("random", probs, generator=torch.Generator().manual_seed(7))
    b = score_pixels("random", probs, generator=torch.Generator().manual_seed(7))
    c = score_pixels("random", probs, generator=torch.Generator().manual_seed(8))
    assert a.shape == (2, 4, 5) and bool((a >= 0).all()) and bool((a < 1).all())
    assert torch.equal(a, b) and not torch.equal(a, c)


# --------------------------------------------------------------------------- bad inputs


def test_unknown_acquisition_name_lists_the_known_ones() -> None:
    probs = torch.full((1, 1, 2, 2, 2), 0.5)
    with pytest.raises(ValueError, match="unknown acquisition function 'margin'.*bald"):
        score_pixels("margin", probs)
    pred = summarize_samples(probs)
    with pytest.raises(ValueError, match="unknown acquisition"):
        score_prediction("BALD", pred)


@pytest.mark.parametrize("probs", [
    torch.full((1, 2, 2, 2), 0.5),  # 4-D: the T axis is missing
    torch.full((0, 1, 2, 2, 2), 0.5),  # T = 0
    torch.ones((1, 1, 2, 2, 2), dtype=torch.int64),  # integers, not probabilities
    torch.full((1, 1, 2, 2, 2), -0.5),  # negative
    torch.full((1, 1, 2, 2, 2), 3.0),  # logits, not softmax
])
def test_malformed_probs_are_rejected(probs: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="probs"):
        score_pixels("entropy", probs)


def test_registry_holds_the_four_paper_functions() -> None:
    assert set(ACQUISITION_FUNCTIONS) == {"random", "varratio", "entropy", "bald"}


# --------------------------------------------------------------------------- properties


@st.composite
def _stacked_probs(draw: st.DrawFn) -> np.ndarray:
    t, c = draw(st.integers(1, 4)), draw(st.integers(2, 4))
    h, w = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    weights = draw(arrays(np.float64, (t, 1, c, h, w),
                          elements=st.one_of(st.just(0.0), st.floats(0.0, 1.0))))
    total = weights.sum(2, keepdims=True)
    uniform = np.full_like(weights, 1.0 / c)
    safe = np.where(total > 0, total, 1.0)
    return np.where(total > 0, weights / safe, uniform)  # exact zeros kept


@settings(max_examples=60, deadline=None)
@given(_stacked_probs())
def test_bounds_hold_for_any_samples(probs: np.ndarray) -> None:
    c = probs.shape[2]
    s = {name: score_pixels(name, probs).numpy() for name in ("varratio", "entropy", "bald")}
    assert all(np.isfinite(v).all() for v in s.values())
    tol = 1e-12
    assert (s["bald"] >= 0).all()
    assert (s["bald"] <= s["entropy"] + tol).all()
    assert (s["entropy"] <= math.log(c) + tol).all() and (s["entropy"] >= -tol).all()
    assert (s["varratio"] >= -tol).all() and (s["varratio"] <= 1 - 1 / c + tol).all()


@settings(max_examples=30, deadline=None)
@given(_stacked_probs())
def test_identical_samples_have_zero_bald(probs: np.ndarray) -> None:
    same = np.repeat(probs[:1], 3, axis=0)  # T = 3 copies of one sample
    np.testing.assert_allclose(score_pixels("bald", same).numpy(), 0.0, atol=1e-12)


# --------------------------------------------------------------------------- baal cross-check


def _random_probs(seed: int, shape: tuple[int, ...] = (6, 3, 3, 5, 4)) -> torch.Tensor:
    logits = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return torch.softmax(3 * logits, dim=2)  # [T, N, C, H, W]


def _baal_layout(probs: torch.Tensor) -> np.ndarray:
    """baal's heuristics take [N, C, H, W, T] (MC samples last)."""
    return probs.permute(1, 2, 3, 4, 0).numpy()


@pytest.mark.parametrize("seed", [0, 1])
def test_bald_matches_baal(seed: int) -> None:
    probs = _random_probs(seed)
    ours = score_pixels("bald", probs).numpy()
    theirs = baal_heuristics.BALD().compute_score(_baal_layout(probs))
    np.testing.assert_allclose(ours, np.maximum(theirs, 0.0), atol=1e-6)


def test_entropy_matches_baal() -> None:
    probs = _random_probs(2)
    theirs = baal_heuristics.Entropy().compute_score(_baal_layout(probs))  # entropy of the MC mean
    np.testing.assert_allclose(score_pixels("entropy", probs).numpy(), theirs, atol=1e-6)


def test_varratio_is_one_minus_baal_certainty() -> None:
    # baal has no variation ratio; its Certainty is max_c of the MC mean, so VarRatio = 1 - it.
    # (baal's Variance heuristic is the variance over samples, a different quantity.)
    probs = _random_probs(3)
    certainty = baal_heuristics.Certainty().compute_score(_baal_layout(probs))
    np.testing.assert_allclose(score_pixels("varratio", probs).numpy(), 1 - certainty, atol=1e-6)


# --------------------------------------------------------------------------- image scores


def test_image_scores_sum_pixels_and_skip_labelled() -> None:
    scores = torch.arange(12, dtype=torch.float32).view(2, 2, 3)  # image 0: 0..5, image 1: 6..11
    torch.testing.assert_close(image_scores(scores), torch.tensor([15.0, 51.0], dtype=torch.float64))
    labelled = np.zeros((2, 2, 3), dtype=bool)
    labelled[1, 0, :] = True  # 6 + 7 + 8 no longer count
    expected = torch.tensor([15.0, 30.0], dtype=torch.float64)
    torch.testing.assert_close(image_scores(scores, labelled), expected)
    with pytest.raises(ValueError, match="labelled"):
        image_scores(scores, labelled[:, :1])
    with pytest.raises(ValueError, match=r"\[N, H, W\]"):
        image_scores(scores[0])


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
    assert isinstance(pred, MCPrediction)
    assert pred.mean.shape == (2, 2, 32, 48)
    assert pred.contour is not None and pred.contour.shape == (2, 32, 48)
    torch.testing.assert_close(pred.mean.sum(1), torch.ones(2, 32, 48))
    assert model.training  # build_model returns a training-mode model; it is left that way


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
