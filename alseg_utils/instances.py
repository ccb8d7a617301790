"""Gland instances from object and contour probabilities (DCAN post-processing).

DCAN separates touching glands with its contour head: foreground = object and not contour, each
connected component of it seeds one instance, components smaller than ``min_size`` pixels are
dropped, and each seed is then grown back over the object mask (watershed on the contour
probability, restricted to the object mask) so that the contour pixels of a gland belong to it
again. Object-mask regions without a seed (e.g. only small components) stay background.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from skimage.measure import label
from skimage.segmentation import relabel_sequential, watershed


def _as_numpy(x: ArrayLike) -> np.ndarray:
    """NumPy view of a NumPy array or a (CPU or CUDA) torch tensor."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _check_inputs(
    object_prob: np.ndarray, contour_prob: np.ndarray, ndim: int, thresholds: tuple[float, float], min_size: int
) -> None:
    if object_prob.ndim != ndim or object_prob.shape != contour_prob.shape:
        raise ValueError(
            f"object_prob {object_prob.shape} and contour_prob {contour_prob.shape} must be the same "
            f"{'[H, W]' if ndim == 2 else '[N, H, W]'} maps (pass the class-1 channel of the softmax)"
        )
    if not all(0.0 <= t <= 1.0 for t in thresholds):
        raise ValueError(f"thresholds must be in [0, 1], got {thresholds}")
    if min_size < 0:
        raise ValueError(f"min_size must be >= 0 pixels, got {min_size}")


def remove_small(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Zero every labelled component with fewer than ``min_size`` pixels.

    Args:
        labels: integer label map, [H, W], 0 = background.
        min_size: smallest size kept, in pixels.

    Returns:
        A new label map (same labels for the kept components).
    """
    sizes = np.bincount(labels.ravel())  # [max_label + 1]
    small = sizes < min_size
    small[0] = False
    out = labels.copy()
    out[small[labels]] = 0
    return out


def predict_instances(
    object_prob: ArrayLike,
    contour_prob: ArrayLike,
    object_threshold: float = 0.5,
    contour_threshold: float = 0.5,
    min_size: int = 100,
) -> np.ndarray:
    """Instance label map of one image (DCAN: object minus contour, components, growth).

    Args:
        object_prob: probability of the object class, [H, W], in [0, 1].
        contour_prob: probability of the contour class, [H, W], in [0, 1].
        object_threshold: object pixels have ``object_prob >= object_threshold``.
        contour_threshold: contour pixels have ``contour_prob >= contour_threshold``.
        min_size: seeds (object minus contour components) smaller than this are removed, pixels.

    Returns:
        Instances, [H, W], int32: 0 = background, 1..k = instances (consecutive).

    Raises:
        ValueError: mismatched or non-2-D inputs, thresholds outside [0, 1], negative min_size.
    """
    obj, con = _as_numpy(object_prob), _as_numpy(contour_prob)
    _check_inputs(obj, con, 2, (object_threshold, contour_threshold), min_size)
    mask = obj >= object_threshold  # [H, W]
    seeds = label(mask & ~(con >= contour_threshold), connectivity=1)  # [H, W]
    seeds = remove_small(seeds, min_size)
    if seeds.max() == 0:
        return np.zeros(obj.shape, dtype=np.int32)
    grown = watershed(con.astype(np.float64), markers=seeds, mask=mask)  # [H, W]
    return relabel_sequential(grown)[0].astype(np.int32)


def predict_instances_batch(
    object_prob: ArrayLike,
    contour_prob: ArrayLike,
    object_threshold: float = 0.5,
    contour_threshold: float = 0.5,
    min_size: int = 100,
) -> np.ndarray:
    """:func:`predict_instances` for a stack of images.

    Args:
        object_prob: probability of the object class, [N, H, W], in [0, 1].
        contour_prob: probability of the contour class, [N, H, W], in [0, 1].
        object_threshold: see :func:`predict_instances`.
        contour_threshold: see :func:`predict_instances`.
        min_size: see :func:`predict_instances`.

    Returns:
        Instances, [N, H, W], int32, numbered 1..k_n within each image.

    Raises:
        ValueError: mismatched or non-3-D inputs, or bad thresholds / min_size.
    """
    obj, con = _as_numpy(object_prob), _as_numpy(contour_prob)
    _check_inputs(obj, con, 3, (object_threshold, contour_threshold), min_size)
    out = np.zeros(obj.shape, dtype=np.int32)
    for i in range(len(obj)):
        out[i] = predict_instances(obj[i], con[i], object_threshold, contour_threshold, min_size)
    return out
