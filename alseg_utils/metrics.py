"""Segmentation metrics: GlaS object-level F1, Dice and Hausdorff; ISIC pixel Jaccard and Dice.

Object metrics (Sirinukunwattana et al. 2017, the GlaS challenge) take instance label maps: 0 is
background and every other value is one object (ids need not be consecutive; an id split into
several pieces is still one object). Pixel metrics take binary masks (any non-zero is foreground).
Every function accepts one image ``[H, W]`` or a batch ``[N, H, W]`` (torch or NumPy) and returns
the mean over images of the per-image value, as the GlaS evaluation (object metrics per image) and
the ISIC challenge (Jaccard per image) do.

Definitions, per image, with ground-truth objects ``G_i`` and segmented objects ``S_j``:

- F1: ``S_j`` is a true positive when it covers at least 50% of some ``G_i``
  (``|S_j ∩ G_i| >= 0.5 |G_i|``), each ``G_i`` matched at most once (a maximum matching, so the
  count does not depend on the order of ids); ``F1 = 2 TP / (#G + #S)``.
- Object Dice: ``1/2 [sum_i |G_i|/|G| Dice(G_i, S*(G_i)) + sum_j |S_j|/|S| Dice(G*(S_j), S_j)]``,
  where ``S*(G_i)`` is the segmented object with the largest overlap with ``G_i`` (Dice 0 when
  none overlaps) and symmetrically ``G*(S_j)``.
- Object Hausdorff: the same area-weighted two-way sum of Hausdorff distances (pixels); when no
  object overlaps, the partner is the object at the smallest Hausdorff distance. Ties in the
  largest overlap are broken in favour of the better score, so that relabelling ids never
  changes a value.

Edge cases (no object on either side): both empty gives F1 = Dice = 1 and Hausdorff = 0; exactly
one empty gives F1 = Dice = 0 and Hausdorff = the image diagonal ``sqrt(H^2 + W^2)`` (the largest
distance possible inside the image, a finite penalty so that image means stay defined). The same
holds for pixel Jaccard and Dice: both masks empty is a perfect 1, one empty is 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import directed_hausdorff
from skimage.measure import label as connected_components

ArrayLike = np.ndarray | torch.Tensor


@dataclass(frozen=True)
class _Objects:
    """The objects of one instance map: consecutive labels 1..n and per-object pixel coordinates."""

    labels: np.ndarray  # [H, W], 0 background, 1..n objects
    area: np.ndarray  # [n]
    coords: list[np.ndarray]  # n arrays [area_k, 2] of (row, col)
    boundary: list[np.ndarray]  # n arrays [b_k, 2]: pixels with a 4-neighbour outside the object


ImageMetric = Callable[[_Objects, _Objects, np.ndarray], float]
"""A per-image metric of (ground-truth objects, predicted objects, overlap [nG, nS])."""


def _to_numpy(x: ArrayLike, name: str) -> np.ndarray:
    """NumPy view of a torch (any device) or NumPy input."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return x
    raise ValueError(f"{name} must be a numpy.ndarray or torch.Tensor, got {type(x).__name__}")


def _label_batch(x: ArrayLike, name: str) -> np.ndarray:
    """Integer label maps as [N, H, W]; rejects floats with non-integer values, NaN and negatives."""
    a = _to_numpy(x, name)
    if a.ndim not in (2, 3):
        raise ValueError(f"{name} must be [H, W] or [N, H, W], got shape {a.shape}")
    if a.dtype == bool:
        a = a.astype(np.int64)
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all() or (a != np.round(a)).any():
            raise ValueError(f"{name} must hold integer labels (threshold probabilities first), got non-integer values")
        a = a.astype(np.int64)
    elif not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must be an integer or boolean array, got {a.dtype}")
    if a.size and a.min() < 0:
        raise ValueError(f"{name} has negative labels; use 0 for background and positive object ids")
    return a[None] if a.ndim == 2 else a


def _pair(pred: ArrayLike, gt: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validated (pred, gt) batches [N, H, W] of equal shape."""
    p, g = _label_batch(pred, "pred"), _label_batch(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred shape {p.shape} does not match gt shape {g.shape}")
    if p.shape[0] == 0:
        raise ValueError("no images: pred and gt are empty batches")
    return p, g


def _objects(instances: np.ndarray) -> _Objects:
    """Relabel an instance map [H, W] to 1..n and gather each object's pixels and boundary."""
    ids, inverse = np.unique(instances, return_inverse=True)
    labels = inverse.reshape(instances.shape) + (0 if ids[0] == 0 else 1)  # [H, W]
    n = int(labels.max())
    area = np.bincount(labels.ravel(), minlength=n + 1)[1:]  # [n]
    coords, boundary = [], []
    for k, box in enumerate(ndimage.find_objects(labels), start=1):
        mask = labels[box] == k  # [h, w] crop
        inner = ndimage.binary_erosion(mask, border_value=0)  # 4-connected erosion
        offset = np.array([box[0].start, box[1].start])
        coords.append(np.argwhere(mask) + offset)
        boundary.append(np.argwhere(mask & ~inner) + offset)
    return _Objects(labels, area, coords, boundary)


def _overlap(gt: _Objects, pred: _Objects) -> np.ndarray:
    """Pixel counts |G_i ∩ S_j|, [nG, nS]."""
    n_g, n_s = len(gt.area), len(pred.area)
    joint = gt.labels.ravel().astype(np.int64) * (n_s + 1) + pred.labels.ravel()  # [H * W]
    table = np.bincount(joint, minlength=(n_g + 1) * (n_s + 1)).reshape(n_g + 1, n_s + 1)
    return table[1:, 1:]


def _f1(gt: _Objects, pred: _Objects, overlap: np.ndarray) -> float:
    """Object-level F1 of one image (see module docstring)."""
    n_g, n_s = len(gt.area), len(pred.area)
    if n_g == 0 or n_s == 0:
        return 1.0 if n_g == n_s else 0.0
    hit = overlap >= 0.5 * gt.area[:, None]  # [nG, nS], candidate true positives
    rows, cols = linear_sum_assignment(hit, maximize=True)  # maximum matching
    tp = int(hit[rows, cols].sum())
    return 2.0 * tp / (n_g + n_s)


def _partner_scores(overlap: np.ndarray, score: np.ndarray, best: str) -> np.ndarray:
    """Per row, the score of the largest-overlap column (ties -> best score); [rows]."""
    top = overlap.max(1, keepdims=True)  # [R, 1]
    tied = overlap == top  # [R, K]
    fill = -np.inf if best == "max" else np.inf
    masked = np.where(tied, score, fill)  # [R, K]
    return masked.max(1) if best == "max" else masked.min(1)


def _dice(gt: _Objects, pred: _Objects, overlap: np.ndarray) -> float:
    """Object-level Dice of one image (see module docstring)."""
    n_g, n_s = len(gt.area), len(pred.area)
    if n_g == 0 or n_s == 0:
        return 1.0 if n_g == n_s else 0.0
    dice = 2.0 * overlap / (gt.area[:, None] + pred.area[None, :])  # [nG, nS]; 0 where disjoint
    g_term = _partner_scores(overlap, dice, "max") @ (gt.area / gt.area.sum())
    s_term = _partner_scores(overlap.T, dice.T, "max") @ (pred.area / pred.area.sum())
    return float(0.5 * (g_term + s_term))


def _directed(a_outside_b: np.ndarray, b_boundary: np.ndarray) -> float:
    """Directed Hausdorff distance sup_{a in A} d(a, B), from A's pixels outside B and B's boundary.

    The nearest pixel of B to a pixel outside B always has a 4-neighbour outside B, so B's
    boundary pixels suffice; pixels of A inside B are at distance 0.
    """
    if len(a_outside_b) == 0:
        return 0.0
    return float(directed_hausdorff(a_outside_b, b_boundary)[0])


def _hausdorff_pair(gt: _Objects, pred: _Objects, i: int, j: int) -> float:
    """Symmetric Hausdorff distance (pixels) between G_i and S_j, 0-based object indices."""
    g_pts, s_pts = gt.coords[i], pred.coords[j]  # [a, 2], [b, 2]
    g_out = g_pts[pred.labels[g_pts[:, 0], g_pts[:, 1]] != j + 1]  # pixels of G_i not in S_j
    s_out = s_pts[gt.labels[s_pts[:, 0], s_pts[:, 1]] != i + 1]
    return max(_directed(g_out, pred.boundary[j]), _directed(s_out, gt.boundary[i]))


def _hausdorff_side(overlap: np.ndarray, dist: Callable[[int, int], float]) -> np.ndarray:
    """For each row object, the Hausdorff distance ``dist(row, col)`` to its partner column; [R]."""
    out = np.empty(overlap.shape[0])
    for i in range(overlap.shape[0]):
        row = overlap[i]  # [nB]
        top = row.max()
        candidates = np.flatnonzero(row == top) if top > 0 else np.arange(len(row))
        out[i] = min(dist(i, j) for j in candidates)
    return out


def _hausdorff(gt: _Objects, pred: _Objects, overlap: np.ndarray) -> float:
    """Object-level Hausdorff distance of one image (see module docstring)."""
    n_g, n_s = len(gt.area), len(pred.area)
    if n_g == 0 or n_s == 0:
        return 0.0 if n_g == n_s else float(np.hypot(*gt.labels.shape))
    cache: dict[tuple[int, int], float] = {}

    def dist(i: int, j: int) -> float:
        """Cached Hausdorff distance between G_i and S_j."""
        if (i, j) not in cache:
            cache[(i, j)] = _hausdorff_pair(gt, pred, i, j)
        return cache[(i, j)]

    g_side = _hausdorff_side(overlap, dist) @ (gt.area / gt.area.sum())
    s_side = _hausdorff_side(overlap.T, lambda j, i: dist(i, j)) @ (pred.area / pred.area.sum())
    return float(0.5 * (g_side + s_side))


def _object_metric(pred_instances: ArrayLike, gt_instances: ArrayLike, metric: ImageMetric) -> float:
    """Mean over images of ``metric(gt_objects, pred_objects, overlap)``."""
    pred, gt = _pair(pred_instances, gt_instances)
    values = []
    for p, g in zip(pred, gt):
        go, po = _objects(g), _objects(p)
        values.append(metric(go, po, _overlap(go, po)))
    return float(np.mean(values))


def object_f1(pred_instances: ArrayLike, gt_instances: ArrayLike) -> float:
    """GlaS object-level F1 (50% overlap of a ground-truth object), mean over images.

    Args:
        pred_instances: predicted instance ids, [H, W] or [N, H, W], 0 = background, ints >= 0.
        gt_instances: ground-truth instance ids, same shape and convention.

    Returns:
        F1 in [0, 1]; 1 for an image where both maps are empty.

    Raises:
        ValueError: on shape mismatch, non-integer or negative labels.
    """
    return _object_metric(pred_instances, gt_instances, _f1)


def object_dice(pred_instances: ArrayLike, gt_instances: ArrayLike) -> float:
    """Object-level Dice (Sirinukunwattana et al. 2017, area-weighted, two-way), mean over images.

    Args:
        pred_instances: predicted instance ids, [H, W] or [N, H, W], 0 = background, ints >= 0.
        gt_instances: ground-truth instance ids, same shape and convention.

    Returns:
        Object Dice in [0, 1]; 1 for an image where both maps are empty.

    Raises:
        ValueError: on shape mismatch, non-integer or negative labels.
    """
    return _object_metric(pred_instances, gt_instances, _dice)


def object_hausdorff(pred_instances: ArrayLike, gt_instances: ArrayLike) -> float:
    """Object-level Hausdorff distance in pixels (Sirinukunwattana et al. 2017), mean over images.

    Args:
        pred_instances: predicted instance ids, [H, W] or [N, H, W], 0 = background, ints >= 0.
        gt_instances: ground-truth instance ids, same shape and convention.

    Returns:
        Distance >= 0 (lower is better); 0 when both maps of an image are empty, the image
        diagonal when exactly one is.

    Raises:
        ValueError: on shape mismatch, non-integer or negative labels.
    """
    return _object_metric(pred_instances, gt_instances, _hausdorff)


def _pixel_counts(pred: ArrayLike, gt: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per image |P ∩ G|, |P| and |G| of the foreground (non-zero) pixels; each [N]."""
    p, g = _pair(pred, gt)
    p, g = p != 0, g != 0  # [N, H, W] each
    return (p & g).sum((1, 2)), p.sum((1, 2)), g.sum((1, 2))


def jaccard(pred: ArrayLike, gt: ArrayLike) -> float:
    """Pixel Jaccard index |P ∩ G| / |P ∪ G| per image, averaged over images (ISIC challenge).

    Args:
        pred: predicted mask, [H, W] or [N, H, W], non-zero = foreground.
        gt: ground-truth mask, same shape.

    Returns:
        Mean Jaccard in [0, 1]; an image with both masks empty scores 1.

    Raises:
        ValueError: on shape mismatch or non-integer values.
    """
    inter, n_p, n_g = _pixel_counts(pred, gt)
    union = n_p + n_g - inter  # [N]
    per_image = np.where(union > 0, inter / np.maximum(union, 1), 1.0)  # [N]
    return float(per_image.mean())


def dice(pred: ArrayLike, gt: ArrayLike) -> float:
    """Pixel Dice 2|P ∩ G| / (|P| + |G|) per image, averaged over images.

    Args:
        pred: predicted mask, [H, W] or [N, H, W], non-zero = foreground.
        gt: ground-truth mask, same shape.

    Returns:
        Mean Dice in [0, 1]; an image with both masks empty scores 1.

    Raises:
        ValueError: on shape mismatch or non-integer values.
    """
    inter, n_p, n_g = _pixel_counts(pred, gt)
    total = n_p + n_g  # [N]
    per_image = np.where(total > 0, 2 * inter / np.maximum(total, 1), 1.0)  # [N]
    return float(per_image.mean())


def segmentation_scores(pred_instances: ArrayLike, gt_instances: ArrayLike) -> dict[str, float]:
    """All segmentation metrics of a batch, each the mean over images of its per-image value.

    Args:
        pred_instances: predicted instance ids, [N, H, W] (or [H, W]), 0 = background.
        gt_instances: ground-truth instance ids, same shape. The pixel metrics use ``ids > 0``.

    Returns:
        ``f1``, ``object_dice``, ``object_hausdorff`` (pixels), ``dice`` and ``jaccard``.

    Raises:
        ValueError: on shape mismatch, non-integer or negative labels.
    """
    pred, gt = _pair(pred_instances, gt_instances)
    rows = []
    for p, g in zip(pred, gt):
        go, po = _objects(g), _objects(p)
        ov = _overlap(go, po)
        rows.append([_f1(go, po, ov), _dice(go, po, ov), _hausdorff(go, po, ov)])
    f1, obj_dice, obj_hd = np.mean(rows, axis=0)
    return {"f1": float(f1), "object_dice": float(obj_dice), "object_hausdorff": float(obj_hd),
            "dice": dice(pred, gt), "jaccard": jaccard(pred, gt)}


def label_objects(mask: ArrayLike, min_size: int = 0, connectivity: int = 1) -> np.ndarray:
    """Instance map of the connected components of a binary mask, small components removed.

    Args:
        mask: binary mask, [H, W] or [N, H, W], non-zero = foreground.
        min_size: components with fewer pixels are dropped (GlaS post-processing).
        connectivity: 1 (4-neighbours) or 2 (8-neighbours).

    Returns:
        int32 instance ids of the same shape, 1..n per image, 0 = background.

    Raises:
        ValueError: if ``min_size < 0`` or the mask is not [H, W] or [N, H, W].
    """
    if min_size < 0:
        raise ValueError(f"min_size must be >= 0, got {min_size}")
    batch = _label_batch(mask, "mask") != 0  # [N, H, W]
    out = np.zeros(batch.shape, dtype=np.int32)
    for k, m in enumerate(batch):
        lab = connected_components(m, connectivity=connectivity)  # [H, W]
        keep = np.bincount(lab.ravel()) >= min_size  # [n + 1]
        keep[0] = False
        out[k] = (np.cumsum(keep) * keep)[lab]  # consecutive ids of the kept components
    return out if _to_numpy(mask, "mask").ndim == 3 else out[0]
