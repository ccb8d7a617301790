"""Tests of alseg_utils.evaluate: the record keys and the eval.object_aggregate option."""

from __future__ import annotations

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
    assert {"dice", "jaccard", "nll", "ece", "brier", "reliability_bins"} <= set(record)
