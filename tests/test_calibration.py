"""Tests of alseg_utils.calibration: hand-worked values, peers, properties, bad input, memory."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import brier_score_loss, log_loss
from torchmetrics.functional.classification import multiclass_calibration_error

from alseg_utils import calibration as cal
from alseg_utils.calibration import CalibrationAccumulator, ReliabilityBins

# Four counted pixels and one ignored pixel, two classes, as [N=1, C=2, P=5].
P1 = np.array([0.9, 0.7, 0.3, 0.55, 0.5])
HAND_PROBS = np.stack([1 - P1, P1])[None]  # [1, 2, 5]
HAND_TARGET = np.array([[1, 0, 0, 1, 255]], dtype=np.uint8)  # [1, 5]


def random_probs(rng: np.random.Generator, n: int, c: int, alpha: float = 1.0) -> np.ndarray:
    """Dirichlet probabilities, [n, c]."""
    return rng.dirichlet(np.full(c, alpha), size=n)


def sample_targets(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One label per row drawn from the row's own categorical distribution, [n]."""
    u = rng.random((probs.shape[0], 1))
    return np.minimum((probs.cumsum(1) < u).sum(1), probs.shape[1] - 1)


# ---------------------------------------------------------------- hand-worked values


def test_nll_hand_worked() -> None:
    # true-class probabilities 0.9, 0.3 (p0 of pixel 2), 0.7 (p0 of pixel 3), 0.55; pixel 5 ignored
    expected = -(np.log(0.9) + np.log(0.3) + np.log(0.7) + np.log(0.55)) / 4
    assert cal.nll(HAND_PROBS, HAND_TARGET) == pytest.approx(expected, abs=1e-12)
    assert cal.nll(HAND_PROBS, HAND_TARGET) == pytest.approx(0.5659613, abs=1e-6)


def test_ece_hand_worked() -> None:
    # 5 bins: conf 0.9 (bin 4, correct); 0.7 and 0.7 (bin 3, one wrong); 0.55 (bin 2, correct)
    expected = 1 / 4 * abs(1 - 0.9) + 2 / 4 * abs(0.5 - 0.7) + 1 / 4 * abs(1 - 0.55)
    assert cal.ece(HAND_PROBS, HAND_TARGET, n_bins=5) == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(0.2375)


def test_brier_hand_worked_two_and_three_classes() -> None:
    expected = (0.1**2 + 0.7**2 + 0.3**2 + 0.45**2) / 4
    assert cal.brier(HAND_PROBS, HAND_TARGET) == pytest.approx(expected, abs=1e-12)
    probs = np.array([[0.2, 0.3, 0.5], [0.1, 0.8, 0.1]]).T[None]  # [1, 3, 2]
    target = np.array([[2, 0]])
    expected3 = ((0.04 + 0.09 + 0.25) + (0.81 + 0.64 + 0.01)) / 3 / 2
    assert cal.brier(probs, target) == pytest.approx(expected3, abs=1e-12)


def test_decomposition_hand_worked_singleton_bins_equal_brier() -> None:
    # every forecast alone in its bin: reliability is the Brier score itself, base rate 1/2
    rel, res, unc = cal.brier_decomposition(HAND_PROBS, HAND_TARGET, n_bins=5)
    assert rel == pytest.approx(0.198125, abs=1e-12)
    assert res == pytest.approx(0.25, abs=1e-12)
    assert unc == pytest.approx(0.25, abs=1e-12)
    assert rel - res + unc == pytest.approx(cal.brier(HAND_PROBS, HAND_TARGET), abs=1e-12)


def test_decomposition_hand_worked_pooled_bins() -> None:
    # 2 bins. Class 1: {0.9, 0.7, 0.55} with outcomes {1, 0, 1} -> f = 2.15/3, o = 2/3; {0.3} -> 0.
    # Class 0 mirrors class 1, so the class mean equals the class-1 value.
    rel, res, unc = cal.brier_decomposition(HAND_PROBS, HAND_TARGET, n_bins=2)
    assert rel == pytest.approx((3 * (2.15 / 3 - 2 / 3) ** 2 + 0.3**2) / 4, abs=1e-12)
    assert res == pytest.approx((3 * (2 / 3 - 0.5) ** 2 + 0.5**2) / 4, abs=1e-12)
    assert unc == pytest.approx(0.25, abs=1e-12)
    binned = ((2.15 / 3 - 1) ** 2 * 2 + (2.15 / 3) ** 2 + 0.3**2) / 4  # class-1 binned Brier
    assert rel - res + unc == pytest.approx(binned, abs=1e-12)


def test_reliability_bins_hand_worked() -> None:
    bins = cal.reliability_bins(HAND_PROBS, HAND_TARGET, n_bins=5)
    np.testing.assert_allclose(bins.edges, [0, 0.2, 0.4, 0.6, 0.8, 1.0])
    np.testing.assert_array_equal(bins.count, [0, 0, 1, 2, 1])
    np.testing.assert_allclose(bins.confidence, [np.nan, np.nan, 0.55, 0.7, 0.9])
    np.testing.assert_allclose(bins.accuracy, [np.nan, np.nan, 1.0, 0.5, 1.0])
    assert bins.ece == pytest.approx(0.2375)


def test_nll_is_clamped_not_infinite() -> None:
    probs = np.array([[[1.0], [0.0]]])  # [1, 2, 1], all mass on the wrong class
    value = cal.nll(probs, np.array([[1]]))
    assert np.isfinite(value) and value == pytest.approx(-np.log(cal.NLL_EPS))


def test_result_keys_and_identity() -> None:
    r = CalibrationAccumulator(2, 2).update(HAND_PROBS, HAND_TARGET).result()
    assert set(r) >= {"nll", "ece", "brier", "reliability", "resolution", "uncertainty", "bins"}
    assert r["n_pixels"] == 4
    assert r["brier_binned"] == pytest.approx(r["reliability"] - r["resolution"] + r["uncertainty"])
    assert all(isinstance(r[k], float) for k in ("nll", "ece", "brier", "reliability"))


def test_bins_from_record_round_trip() -> None:
    bins = cal.reliability_bins(HAND_PROBS, HAND_TARGET, n_bins=5)
    record = {"confidence": [None if np.isnan(x) else float(x) for x in bins.confidence],
              "accuracy": [float(x) for x in bins.accuracy], "count": [int(x) for x in bins.count]}
    again = ReliabilityBins.from_record(record)
    np.testing.assert_allclose(again.edges, bins.edges)
    assert again.ece == pytest.approx(bins.ece)
    with pytest.raises(ValueError, match="lacks"):
        ReliabilityBins.from_record({"count": [1]})


def test_bins_from_a_whole_step_record_and_through_results() -> None:
    from alseg_utils.results import reliability_from_record

    step = {"step": 0, "ece": 0.25, "reliability_bins": {"confidence": [None, 0.75], "accuracy": [None, 0.5],
                                                         "count": [0, 4]}}
    for bins in (ReliabilityBins.from_record(step), reliability_from_record(step)):
        np.testing.assert_allclose(bins.edges, [0.0, 0.5, 1.0])
        assert np.isnan(bins.confidence[0]) and bins.confidence[1] == 0.75 and bins.count.tolist() == [0, 4]
        assert bins.ece == pytest.approx(0.25)  # |0.5 - 0.75|, all pixels in bin 1
    with pytest.raises(ValueError, match="reliability_bins"):
        reliability_from_record({"step": 0})


# ---------------------------------------------------------------- peers and brute force


@pytest.mark.parametrize("c", [2, 3, 5])
def test_agrees_with_sklearn(c: int) -> None:
    rng = np.random.default_rng(c)
    probs = random_probs(rng, 500, c)  # [n, C]
    target = rng.integers(0, c, 500)
    ours_nll = cal.nll(probs[:, :, None], target[:, None])  # as [N, C, 1] and [N, 1]
    assert ours_nll == pytest.approx(log_loss(target, probs, labels=list(range(c))), rel=1e-10)
    ours_brier = cal.brier(probs[:, :, None], target[:, None])
    if c == 2:
        assert ours_brier == pytest.approx(brier_score_loss(target, probs[:, 1]), rel=1e-10)
    else:  # scikit-learn sums over classes; Eq. 8 divides by C
        peer = brier_score_loss(target, probs, labels=list(range(c)))
        assert ours_brier == pytest.approx(peer / c, rel=1e-10)


@pytest.mark.parametrize(("c", "n_bins"), [(2, 15), (3, 10), (4, 7)])
def test_ece_agrees_with_torchmetrics_on_images(c: int, n_bins: int) -> None:
    g = torch.Generator().manual_seed(c)
    probs = torch.softmax(3 * torch.randn(3, c, 9, 11, generator=g), 1)  # [N, C, H, W]
    target = torch.randint(0, c, (3, 9, 11), generator=g)
    target[:, :2] = 255
    peer = multiclass_calibration_error(probs, target, num_classes=c, n_bins=n_bins, norm="l1", ignore_index=255)
    assert cal.ece(probs, target, n_bins=n_bins) == pytest.approx(float(peer), abs=1e-6)


def brute_force(probs: np.ndarray, target: np.ndarray, n_bins: int) -> dict[str, float]:
    """Pixel-by-pixel loops over probs [n, C] and labels [n]."""
    n, c = probs.shape
    top: dict[int, list[tuple[float, bool]]] = {}
    groups: dict[tuple[int, int], list[tuple[float, float]]] = {}
    for p, y in zip(probs, target):
        conf = max(p)
        k = min(int(conf * n_bins), n_bins - 1)
        top.setdefault(k, []).append((conf, int(np.argmax(p)) == y))
        for j in range(c):
            groups.setdefault((j, min(int(p[j] * n_bins), n_bins - 1)), []).append((p[j], float(y == j)))
    ece = sum(abs(np.mean([a for _, a in v]) - np.mean([f for f, _ in v])) * len(v) for v in top.values()) / n
    binned = 0.0
    for v in groups.values():
        mean_f = np.mean([f for f, _ in v])
        binned += sum((mean_f - o) ** 2 for _, o in v)
    return {"ece": ece, "brier_binned": binned / (n * c)}


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 60), c=st.integers(2, 4), n_bins=st.integers(1, 20))
@settings(max_examples=40, deadline=None)
def test_vectorised_matches_brute_force(seed: int, n: int, c: int, n_bins: int) -> None:
    rng = np.random.default_rng(seed)
    probs = random_probs(rng, n, c, alpha=0.5)
    target = rng.integers(0, c, n)
    r = CalibrationAccumulator(c, n_bins).update(probs[:, :, None], target[:, None]).result()
    expected = brute_force(probs, target, n_bins)
    assert r["ece"] == pytest.approx(expected["ece"], abs=1e-10)
    assert r["brier_binned"] == pytest.approx(expected["brier_binned"], abs=1e-10)


def test_streaming_equals_one_shot_and_chunking_is_invisible() -> None:
    rng = np.random.default_rng(0)
    probs = random_probs(rng, 6 * 7 * 5, 3).reshape(6, 7, 5, 3).transpose(0, 3, 1, 2)  # [6, 3, 7, 5]
    target = rng.integers(0, 3, (6, 7, 5))
    target[0, 0] = 255
    whole = CalibrationAccumulator(3, 10).update(probs, target).result()
    parts = CalibrationAccumulator(3, 10, chunk_pixels=4)
    for start in (0, 1, 4):
        stop = {0: 1, 1: 4, 4: 6}[start]
        parts.update(torch.from_numpy(probs[start:stop]).float(), torch.from_numpy(target[start:stop]))
    merged = CalibrationAccumulator(3, 10).update(probs[:3], target[:3])
    merged.merge(CalibrationAccumulator(3, 10).update(probs[3:], target[3:]))
    for other in (parts.result(), merged.result()):
        for key in ("nll", "ece", "brier", "reliability", "resolution", "uncertainty"):
            assert other[key] == pytest.approx(whole[key], abs=1e-6)


def test_ignored_pixels_do_not_count() -> None:
    rng = np.random.default_rng(1)
    probs = random_probs(rng, 40, 2).T[None]  # [1, 2, 40]
    target = rng.integers(0, 2, (1, 40))
    padded_target = np.concatenate([target, np.full((1, 10), 255)], 1)  # [1, 50]
    padded_probs = np.concatenate([probs, np.tile([[1.0], [0.0]], (1, 1, 10))], 2)  # [1, 2, 50]
    for fn in (cal.nll, cal.ece, cal.brier):
        assert fn(padded_probs, padded_target) == pytest.approx(fn(probs, target), abs=1e-12)


# ---------------------------------------------------------------- properties


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 300), c=st.integers(2, 6), n_bins=st.integers(1, 30),
       alpha=st.floats(0.05, 5.0))
@settings(max_examples=40, deadline=None)
def test_properties_ranges_and_decomposition_identity(seed: int, n: int, c: int, n_bins: int, alpha: float) -> None:
    rng = np.random.default_rng(seed)
    probs = random_probs(rng, n, c, alpha)[:, :, None].astype(np.float32)  # [n, C, 1]
    target = rng.integers(0, c, (n, 1))
    r = CalibrationAccumulator(c, n_bins).update(probs, target).result()
    assert 0.0 <= r["ece"] <= 1.0
    assert 0.0 <= r["brier"] <= 2.0 / c + 1e-9
    assert r["nll"] >= 0.0
    assert r["reliability"] >= 0 and r["resolution"] >= 0 and 0 <= r["uncertainty"] <= 0.25
    assert r["reliability"] - r["resolution"] + r["uncertainty"] == pytest.approx(r["brier_binned"], abs=1e-12)
    assert int(r["bins"].count.sum()) == n


@given(seed=st.integers(0, 2**32 - 1), c=st.integers(2, 4), alpha=st.floats(0.3, 3.0))
@settings(max_examples=8, deadline=None)
def test_ece_near_zero_on_sample_from_own_confidences(seed: int, c: int, alpha: float) -> None:
    # 50,000 pixels, 15 bins: sampling noise bounds E[ECE] by sqrt(2 K / (pi n)) ~ 0.014
    rng = np.random.default_rng(seed)
    probs = random_probs(rng, 50_000, c, alpha)
    target = sample_targets(rng, probs)
    calibrated = cal.ece(probs[:, :, None], target[:, None])
    assert calibrated < 0.02
    sharpened = probs**4 / (probs**4).sum(1, keepdims=True)  # overconfident, same labels
    assert cal.ece(sharpened[:, :, None], target[:, None]) > 0.05


# ---------------------------------------------------------------- bad input


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="does not match"):
        cal.ece(np.full((2, 2, 4, 4), 0.5), np.zeros((2, 4, 5), dtype=np.int64))
    with pytest.raises(ValueError, match=r"\[N, C, \.\.\.\]"):
        cal.nll(np.full(4, 0.5), np.zeros(4, dtype=np.int64))
    with pytest.raises(ValueError, match="classes"):
        CalibrationAccumulator(3).update(np.full((1, 2, 3), 0.5), np.zeros((1, 3), dtype=np.int64))


def test_probabilities_must_sum_to_one_and_be_finite() -> None:
    logits = np.array([[[2.0, -1.0], [0.5, 0.3]]])  # [1, 2, 2]
    with pytest.raises(ValueError, match="logits"):
        cal.brier(logits, np.array([[0, 1]]))
    with pytest.raises(ValueError, match="sum to 1"):
        cal.brier(np.array([[[0.3, 0.5], [0.3, 0.5]]]), np.array([[0, 1]]))
    nan = np.array([[[np.nan, 0.5], [0.5, 0.5]]])
    with pytest.raises(ValueError, match="NaN"):
        cal.nll(nan, np.array([[0, 1]]))
    # ... but an ignored pixel may hold anything (e.g. zero padding)
    assert np.isfinite(cal.nll(nan, np.array([[255, 1]])))


def test_bad_labels_and_settings_raise() -> None:
    probs = np.full((1, 2, 3), 0.5)
    with pytest.raises(ValueError, match="outside"):
        cal.ece(probs, np.array([[0, 2, 1]]))
    with pytest.raises(ValueError, match="integer"):
        cal.ece(probs, np.zeros((1, 3)))
    with pytest.raises(ValueError, match="no pixels"):
        cal.ece(probs, np.full((1, 3), 255))
    with pytest.raises(ValueError, match="n_bins"):
        CalibrationAccumulator(2, n_bins=0)
    with pytest.raises(ValueError, match="n_classes"):
        CalibrationAccumulator(1)
    with pytest.raises(ValueError, match="merge"):
        CalibrationAccumulator(2, 10).merge(CalibrationAccumulator(2, 15))


# ---------------------------------------------------------------- memory and device


def _status_mib(key: str) -> float:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"{key}:\s+(\d+)", text).group(1)) / 1024  # type: ignore[union-attr]


def test_glas_sized_test_set_runs_in_bounded_memory() -> None:
    """80 images of 528x784, C = 2, fed in batches of 4 as float32 tensors.

    Holding every pixel's probabilities alone would take 265 MiB (float32). Measured on the 2-core
    CPU dev machine: peak resident memory 65 MiB above the baseline (the batches themselves take
    ~22 MiB), in ~3 s. The bound asserted is 150 MiB.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets the peak-RSS counter VmHWM
    except OSError:
        pytest.skip("cannot reset the peak-RSS counter on this system")
    base = _status_mib("VmRSS")
    if _status_mib("VmHWM") > base + 10:
        pytest.skip("peak-RSS counter did not reset")
    g = torch.Generator().manual_seed(0)
    acc = CalibrationAccumulator(n_classes=2, n_bins=15)
    for _ in range(20):
        p = torch.rand(4, 1, 528, 784, generator=g)  # [B, 1, H, W]
        target = (torch.rand(4, 528, 784, generator=g) < p[:, 0]).to(torch.uint8)  # [B, H, W]
        target[:, :, 700:] = 255  # zero padding
        acc.update(torch.cat([1 - p, p], 1), target)
    result = acc.result()
    assert result["n_pixels"] == 80 * 528 * 700
    assert result["ece"] < 0.01  # targets drawn from the probabilities: calibrated
    assert _status_mib("VmHWM") - base < 150


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_inputs_match_cpu() -> None:
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(2, 3, 16, 16, generator=g), 1)  # [N, C, H, W]
    target = torch.randint(0, 3, (2, 16, 16), generator=g)
    cpu = CalibrationAccumulator(3).update(probs, target).result()
    gpu = CalibrationAccumulator(3).update(probs.cuda(), target.cuda()).result()
    for key in ("nll", "ece", "brier", "reliability", "resolution", "uncertainty"):
        assert gpu[key] == pytest.approx(cpu[key], abs=1e-9)
