"""Acquisition functions on hand-worked samples, their bounds, baal agreement, image scores."""

from __future__ import annotations

import math
import warnings
from types import ModuleType

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from alseg_utils import mc_dropout, uncertainty
from alseg_utils.config import ACQUISITIONS
from alseg_utils.mc_dropout import summarize_samples
from alseg_utils.uncertainty import ACQUISITION_FUNCTIONS, image_scores, score_pixels, score_prediction

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
    assert tuple(ACQUISITION_FUNCTIONS) == ACQUISITIONS  # the config's names, in the same order


def test_public_api_aliases_point_at_mc_dropout() -> None:
    assert uncertainty.mc_predict is mc_dropout.mc_predict
    assert uncertainty.MCPrediction is mc_dropout.MCPrediction


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


@pytest.fixture(scope="module")
def baal_heuristics() -> ModuleType:
    """``baal.active.heuristics``; only the three cross-checks below skip when baal is not installed."""
    with warnings.catch_warnings():
        # baal 2.1 configures its logger through the deprecated structlog.threadlocal when imported.
        warnings.filterwarnings("ignore", message=".*structlog.threadlocal.*", category=DeprecationWarning)
        return pytest.importorskip("baal.active.heuristics")


def _baal_layout(probs: torch.Tensor) -> np.ndarray:
    """baal's heuristics take [N, C, H, W, T] (MC samples last)."""
    return probs.permute(1, 2, 3, 4, 0).numpy()


@pytest.mark.parametrize("seed", [0, 1])
def test_bald_matches_baal(seed: int, baal_heuristics: ModuleType) -> None:
    probs = _random_probs(seed)
    ours = score_pixels("bald", probs).numpy()
    theirs = baal_heuristics.BALD().compute_score(_baal_layout(probs))
    np.testing.assert_allclose(ours, np.maximum(theirs, 0.0), atol=1e-6)


def test_entropy_matches_baal(baal_heuristics: ModuleType) -> None:
    probs = _random_probs(2)
    theirs = baal_heuristics.Entropy().compute_score(_baal_layout(probs))  # entropy of the MC mean
    np.testing.assert_allclose(score_pixels("entropy", probs).numpy(), theirs, atol=1e-6)


def test_varratio_is_one_minus_baal_certainty(baal_heuristics: ModuleType) -> None:
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
