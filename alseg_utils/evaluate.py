"""Test-set evaluation after each acquisition step: segmentation and calibration metrics.

The model is evaluated through its MC-dropout predictive distribution (Eq. 1, the same T as for
acquisition), because that is the distribution whose calibration the paper studies. Object metrics
use instances from the mean object and contour probabilities (DCAN post-processing); calibration
uses the object head's mean probabilities against the binary mask, ignoring zero padding. Pixel
Dice and Jaccard compare the thresholded object probability with the mask (not the instances), so a
weak contour head cannot erase them.

Object F1 / Dice / Hausdorff combine the test images as ``eval.object_aggregate`` says: ``pooled``
(the default, what the GlaS challenge reports: TP / FP / FN summed over the test set, objects
weighted over all objects of the set) or ``image_mean`` (the mean of the per-image values). Pixel
Dice and Jaccard are always means over images (ISIC). See :mod:`alseg_utils.metrics`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from alseg_utils.calibration import CalibrationAccumulator
from alseg_utils.config import CALIBRATION_METRICS, SEGMENTATION_METRICS, UNLABELLED, RunConfig
from alseg_utils.data import SegmentationSet
from alseg_utils.instances import predict_instances_batch
from alseg_utils.mc_dropout import mc_predict
from alseg_utils.metrics import dice, jaccard, segmentation_scores

# DCAN's rule for separating touching objects: object minus (contour >= 0.5). The lower contour
# threshold of the authors' code (0.2, active.contour_threshold) is used for pseudo-labels only.
INSTANCE_CONTOUR_THRESHOLD = 0.5


def evaluate_model(
    model: nn.Module,
    test: SegmentationSet,
    cfg: RunConfig,
    seed: int,
    device: torch.device | None = None,
) -> dict[str, Any]:
    """Segmentation and calibration metrics of ``model`` on ``test``.

    Args:
        model: a trained DCAN.
        test: the test images with ground truth.
        cfg: run configuration (T, thresholds, bins, minimum object size, object aggregation).
        seed: seeds the dropout masks, so evaluation is deterministic on CPU.
        device: where to run the model (default: the model's device).

    Returns:
        Metric name -> float (f1, object_dice, object_hausdorff, dice, jaccard, nll, ece, brier,
        reliability, resolution, uncertainty) and ``reliability_bins`` (lists per bin).
    """
    a, e = cfg.active, cfg.eval
    pred = mc_predict(model, test.images, T=a.mc_samples, batch_size=e.eval_batch_size,
                      device=device, seed=seed)
    target = np.where(test.valid, test.masks, UNLABELLED).astype(np.uint8)  # [N, H, W]
    acc = CalibrationAccumulator(n_classes=pred.mean.shape[1], n_bins=e.n_bins)
    for start in range(0, len(test), e.eval_batch_size):
        stop = start + e.eval_batch_size
        acc.update(pred.mean[start:stop], torch.from_numpy(target[start:stop]))
    calib = acc.result()
    object_prob = pred.mean[:, 1].numpy()  # [N, H, W]
    contour_prob = pred.contour.numpy() if pred.contour is not None else np.zeros_like(object_prob)
    instances = predict_instances_batch(
        object_prob * test.valid, contour_prob, object_threshold=a.object_threshold,
        contour_threshold=INSTANCE_CONTOUR_THRESHOLD, min_size=e.min_object_size,
    )
    seg = segmentation_scores(instances, test.instances, object_aggregate=e.object_aggregate)
    binary = (object_prob >= a.object_threshold) & test.valid  # [N, H, W]
    seg["dice"], seg["jaccard"] = dice(binary, test.masks), jaccard(binary, test.masks)
    return _metrics_record(seg, calib)


def _metrics_record(seg: dict[str, Any], calib: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {k: float(seg[k]) for k in SEGMENTATION_METRICS}
    for key in CALIBRATION_METRICS:
        out[key] = float(calib[key])
    bins = calib["bins"]
    out["reliability_bins"] = {
        "confidence": [_finite_or_none(x) for x in np.asarray(bins.confidence)],
        "accuracy": [_finite_or_none(x) for x in np.asarray(bins.accuracy)],
        "count": [int(x) for x in np.asarray(bins.count)],
    }
    return out


def _finite_or_none(x: float) -> float | None:
    """Empty bins hold NaN; records store them as JSON null."""
    return float(x) if np.isfinite(x) else None
