"""Tests of alseg_utils.evaluate: the record keys, hand-worked metric values and eval.object_aggregate."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from alseg_utils.config import config_from_dict
from alseg_utils.data import SegmentationSet
from alseg_utils.evaluate import evaluate_model
from alseg_utils.metrics import label_objects, segmentation_scores


class RedChannelModel(nn.Module):
    """Object logits read off the red channel: red 255 -> p(object) ~ 1, red 0 -> ~ 0."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(20.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [B, 2, H, W] from images [B, 3, H, W] in [0, 1]."""
        z = self.scale * (x[:, :1] - 0.5)  # [B, 1, H, W]
        return torch.cat([-z, z], dim=1)


def two_image_set() -> tuple[SegmentationSet, np.ndarray]:
    """Image 0: one of two glands found (plus a false positive); image 1: its one gland found."""
    gt = np.zeros((2, 24, 24), dtype=np.int32)
    gt[0, 2:8, 2:8], gt[0, 12:20, 12:20], gt[1, 4:10, 4:10] = 1, 2, 1
    pred_mask = np.zeros(gt.shape, dtype=bool)
    pred_mask[0, 2:8, 2:8] = pred_mask[0, 20:23, 0:3] = True  # gland 1 and a false positive
    pred_mask[1] = gt[1] > 0
    images = np.zeros((*gt.shape, 3), dtype=np.uint8)
    images[..., 0] = pred_mask * 255
    test = SegmentationSet(
        images=images, masks=(gt > 0).astype(np.uint8), instances=gt, contours=np.zeros_like(gt, np.uint8),
        valid=np.ones(gt.shape, dtype=bool), names=["a", "b"], grades=["", ""],
    )
    return test, pred_mask


@pytest.mark.parametrize("aggregate", ["pooled", "image_mean"])
def test_evaluate_model_object_aggregate(aggregate: str) -> None:
    test, pred_mask = two_image_set()
    cfg = config_from_dict({"active": {"mc_samples": 1},
                            "eval": {"min_object_size": 0, "object_aggregate": aggregate}})
    record = evaluate_model(RedChannelModel(), test, cfg, seed=0)
    expected = segmentation_scores(label_objects(pred_mask), test.instances, object_aggregate=aggregate)
    for key in ("f1", "object_dice", "object_hausdorff"):
        assert record[key] == pytest.approx(expected[key], abs=1e-9)
    # image 0: TP 1, #S 2, #G 2; image 1: TP 1, #S 1, #G 1
    assert record["f1"] == pytest.approx(4 / 6 if aggregate == "pooled" else (0.5 + 1.0) / 2)


RECORD_KEYS = {"f1", "object_dice", "object_hausdorff", "dice", "jaccard",
               "nll", "ece", "brier", "reliability", "resolution", "uncertainty", "reliability_bins"}


class NinetyPercentModel(nn.Module):
    """p(object) = 0.9 on red pixels and 0.1 elsewhere: always 90 % sure of the red channel's answer."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [B, 2, H, W] from images [B, 3, H, W] in [0, 1]: (0, ln 9) on red, (0, -ln 9) elsewhere."""
        z = math.log(9.0) * (2 * x[:, :1] - 1)  # [B, 1, H, W]
        return torch.cat([torch.zeros_like(z), z], dim=1)


def _hand_worked(padded: int) -> dict[str, float]:
    """Calibration of NinetyPercentModel on two_image_set() with ``padded`` correct background pixels removed.

    Red (p = 0.9): 81 pixels, 72 of them object. Not red (p = 0.1): 1071 - padded pixels, 64 of them object
    (the missed gland). Every pixel's top class has confidence 0.9; 73 pixels (64 + 9) are wrong.
    """
    n, wrong = 1152 - padded, 73
    correct = n - wrong
    base = 136 / n  # object pixels over all counted pixels
    red, other = (81, 72 / 81), (1071 - padded, 64 / (1071 - padded))  # (pixels, object frequency)
    # two classes, p_0 = 1 - p_1: both one-vs-rest decompositions equal class 1's
    return {
        "nll": (correct * -math.log(0.9) + wrong * -math.log(0.1)) / n,
        "ece": abs(correct / n - 0.9),
        "brier": (correct * 0.1**2 + wrong * 0.9**2) / n,  # 1/C sum_c (p_c - y_c)^2, C = 2
        "reliability": (red[0] * (0.9 - red[1]) ** 2 + other[0] * (0.1 - other[1]) ** 2) / n,
        "resolution": (red[0] * (red[1] - base) ** 2 + other[0] * (other[1] - base) ** 2) / n,
        "uncertainty": base * (1 - base),
        "accuracy": correct / n,
        "n": n,
    }


@pytest.mark.parametrize("padded", [0, 288])
def test_evaluate_model_record_keys_and_hand_worked_values(padded: int) -> None:
    test, _ = two_image_set()
    if padded:  # image 1, columns 12-23: background the model gets right, now zero padding
        test.valid[1, :, 12:] = False
    cfg = config_from_dict({"active": {"mc_samples": 1}, "eval": {"min_object_size": 0}})
    record = evaluate_model(NinetyPercentModel(), test, cfg, seed=0)
    assert set(record) == RECORD_KEYS
    assert all(type(record[k]) is float for k in RECORD_KEYS - {"reliability_bins"})
    json.dumps(record, allow_nan=False)  # a record line holds no NaN
    expected = _hand_worked(padded)
    for key in ("nll", "ece", "brier", "reliability", "resolution", "uncertainty"):
        assert record[key] == pytest.approx(expected[key], abs=1e-6), key
    # one forecast value per bin: Murphy's decomposition adds up to the Brier score exactly
    assert record["reliability"] - record["resolution"] + record["uncertainty"] == pytest.approx(
        record["brier"], abs=1e-6)
    # pixel Dice / Jaccard per image, then averaged: image 0 has 45 predicted, 100 true, 36 shared pixels
    assert record["dice"] == pytest.approx((2 * 36 / 145 + 1.0) / 2, abs=1e-9)
    assert record["jaccard"] == pytest.approx((36 / 109 + 1.0) / 2, abs=1e-9)
    # pooled objects: glands of 36, 64, 36 pixels (Dice 1, 0, 1); segments of 36, 9, 36 (Dice 1, 0, 1)
    assert record["f1"] == pytest.approx(4 / 6, abs=1e-9)
    assert record["object_dice"] == pytest.approx((72 / 136 + 72 / 81) / 2, abs=1e-9)
    bins = record["reliability_bins"]
    assert set(bins) == {"confidence", "accuracy", "count"} and len(bins["count"]) == cfg.eval.n_bins == 15
    assert bins["count"] == [0] * 13 + [expected["n"], 0]  # confidence 0.9 falls in [13/15, 14/15)
    assert bins["confidence"][:13] == [None] * 13 and bins["accuracy"][14] is None  # empty bins are null
    assert bins["confidence"][13] == pytest.approx(0.9, abs=1e-6)
    assert bins["accuracy"][13] == pytest.approx(expected["accuracy"], abs=1e-12)


def test_evaluate_model_image_mean_object_dice() -> None:
    test, _ = two_image_set()
    cfg = config_from_dict({"active": {"mc_samples": 1},
                            "eval": {"min_object_size": 0, "object_aggregate": "image_mean"}})
    record = evaluate_model(NinetyPercentModel(), test, cfg, seed=0)
    # image 0: glands 36 (Dice 1) and 64 (0) of 100, segments 36 (1) and 9 (0) of 45; image 1: perfect
    assert record["object_dice"] == pytest.approx(((36 / 100 + 36 / 45) / 2 + 1.0) / 2, abs=1e-9)
    assert record["f1"] == pytest.approx((2 / 4 + 1.0) / 2, abs=1e-9)
