"""Segmentation metrics: GlaS object-level F1, Dice and Hausdorff; ISIC pixel Jaccard and Dice.

Object metrics (Sirinukunwattana et al. 2017, "Gland segmentation in colon histology images: The
GlaS challenge contest", Med. Image Anal. 35:489-502) take instance label maps: 0 is background and
every other value is one object (ids need not be consecutive; an id split into several pieces is
still one object). Pixel metrics take binary masks (any non-zero is foreground). Every function
accepts one image ``[H, W]`` or a batch ``[N, H, W]`` (torch or NumPy) and returns a float.

Definitions, per image, with ground-truth objects (glands) ``G_i`` and segmented objects ``S_j``;
the partner ``G*(S_j)`` is the gland that ``S_j`` overlaps most, ``S*(G_i)`` symmetrically:

- F1, as the challenge's ``F1score.m``: ``S_j`` is a true positive when its partner ``G*(S_j)``
  exists and ``|S_j ∩ G*| > 0.5 |G*|`` (strictly more than half; exactly half is a miss), else a
  false positive; ``FN = #G - TP``; ``F1 = 2 TP / (2 TP + FP + FN) = 2 TP / (#S + #G)``. A segment
  that covers a small gland fully but overlaps a bigger one more is a false positive. The code
  enforces no one-to-one matching, and needs none: segments are disjoint, so at most one of them
  covers more than half of a gland, and each gland yields at most one true positive.
- Object Dice, as ``ObjectDice.m``: ``1/2 [sum_i w_i Dice(G_i, S*(G_i)) + sum_j w~_j
  Dice(G*(S_j), S_j)]``, ``w_i = |G_i| / sum |G|``, ``w~_j = |S_j| / sum |S|``; Dice 0 for an
  object that overlaps nothing.
- Object Hausdorff, as ``ObjectHausdorff.m``: the same area-weighted two-way sum of Hausdorff
  distances (pixels, over all pixels of the two objects); an object that overlaps nothing is paired
  with the object of the other set (same image) at the smallest Hausdorff distance.

Aggregation over a test set (``aggregate``): ``"pooled"`` (the default) is what the challenge
reports. Its evaluation page defines the object Dice and Hausdorff weights over the set of *all*
objects of the test set (``𝒢 = ∪_a 𝒢_a``, partners still found within each image ``a``), and the F1
from the TP / FP / FN counts summed over the test set. ``"image_mean"`` is the mean over images of
the per-image value (what many re-implementations report; it gives an image with two glands as much
weight as one with twenty). Both come from the additive per-image sums of :class:`ObjectStats`.

References: the definitions follow the challenge's evaluation page
(warwick.ac.uk/fac/cross_fac/tia/data/glascontest, "Evaluation") and its Matlab code by
K. Sirinukunwattana (``F1score.m``, ``ObjectDice.m``, ``ObjectHausdorff.m``, evaluation_v6.zip),
read from a public copy. The page says "at least 50%"; ``F1score.m`` tests ``> 0.5`` and we follow
the code. The Li & Alstrøm authors' repository (lyn1874/region_based_active_learning) holds no
object-metric code: it exports predictions to evaluate them in Matlab.

Where the Matlab code is silent or undefined we choose:

- Ties in the largest overlap are broken in favour of the better score (Matlab takes the smallest
  id), so that relabelling ids never changes a value.
- No object on either side of an image: both empty gives F1 = Dice = 1 and Hausdorff = 0; exactly one
  empty gives F1 = Dice = 0 and Hausdorff = the image diagonal ``sqrt(H^2 + W^2)`` (Matlab: Inf for
  the distance; a finite penalty keeps means defined). In sums, each object of an image with
  nothing on the other side counts with Dice 0 and that image's diagonal; when a whole side is empty
  (no ground truth, or no segmentation, in any image) its weighted term is undefined and the score
  is the other term alone. F1 with TP = 0 is 0 (Matlab: NaN when both sides are non-empty).

Pixel metrics: both masks empty is a perfect 1, one empty is 0; they are averaged over images, as
the ISIC challenge does (Jaccard per image).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch
from scipy import ndimage
from scipy.spatial.distance import directed_hausdorff
from skimage.measure import label as connected_components

from alseg_utils.config import OBJECT_AGGREGATES

ArrayLike = np.ndarray | torch.Tensor


@dataclass(frozen=True)
class _Objects:
    """The objects of one instance map: consecutive labels 1..n and per-object pixel coordinates."""

    labels: np.ndarray  # [H, W], 0 background, 1..n objects
    area: np.ndarray  # [n]
    coords: list[np.ndarray]  # n arrays [area_k, 2] of (row, col)
    boundary: list[np.ndarray]  # n arrays [b_k, 2]: pixels with a 4-neighbour outside the object


@dataclass(frozen=True)
class ObjectStats:
    """Additive sums behind the GlaS object metrics, of one image or (summed with ``+``) a set.

    ``stats_a + stats_b`` pools two sets of objects; the methods turn the sums into scores (see the
    module docstring for the definitions and the empty-side conventions).

    Attributes:
        tp: true positives (segmented objects covering > 50% of their largest-overlap gland).
        n_pred: number of segmented objects, #S.
        n_gt: number of ground-truth objects, #G.
        gt_area: sum of |G_i| (pixels).
        pred_area: sum of |S_j| (pixels).
        dice_gt: sum_i |G_i| Dice(G_i, S*(G_i)).
        dice_pred: sum_j |S_j| Dice(G*(S_j), S_j).
        hausdorff_gt: sum_i |G_i| H(G_i, S*(G_i)), pixels; NaN when not computed.
        hausdorff_pred: sum_j |S_j| H(G*(S_j), S_j), pixels; NaN when not computed.
    """

    tp: int = 0
    n_pred: int = 0
    n_gt: int = 0
    gt_area: float = 0.0
    pred_area: float = 0.0
    dice_gt: float = 0.0
    dice_pred: float = 0.0
    hausdorff_gt: float = 0.0
    hausdorff_pred: float = 0.0

    def __add__(self, other: ObjectStats) -> ObjectStats:
        """Field-wise sum: the statistics of both sets of images together."""
        if not isinstance(other, ObjectStats):
            return NotImplemented
        return ObjectStats(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def f1(self) -> float:
        """Object F1 ``2 TP / (#S + #G)`` in [0, 1]; 1 when there is no object at all."""
        total = self.n_pred + self.n_gt
        return 1.0 if total == 0 else 2.0 * self.tp / total

    def _two_way(self, gt_sum: float, pred_sum: float, both_empty: float) -> float:
        """1/2 (gt term + pred term) over the non-empty sides; ``both_empty`` when none is."""
        terms = []
        if self.n_gt > 0:
            terms.append(gt_sum / self.gt_area)  # sum_i w_i score(G_i, S*(G_i))
        if self.n_pred > 0:
            terms.append(pred_sum / self.pred_area)  # sum_j w~_j score(G*(S_j), S_j)
        return float(np.mean(terms)) if terms else both_empty

    def dice(self) -> float:
        """Object Dice in [0, 1]; 1 when there is no object at all."""
        return self._two_way(self.dice_gt, self.dice_pred, 1.0)

    def hausdorff(self) -> float:
        """Object Hausdorff distance in pixels (>= 0, lower is better); 0 when there is no object."""
        return self._two_way(self.hausdorff_gt, self.hausdorff_pred, 0.0)


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


def _check_aggregate(aggregate: str) -> None:
    """Raise ValueError unless ``aggregate`` is one of OBJECT_AGGREGATES."""
    if aggregate not in OBJECT_AGGREGATES:
        raise ValueError(f"aggregate must be one of {', '.join(OBJECT_AGGREGATES)}, got {aggregate!r}")


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


def _true_positives(gt: _Objects, overlap: np.ndarray) -> int:
    """Segmented objects covering more than half of their largest-overlap gland (``F1score.m``)."""
    if overlap.size == 0:
        return 0
    top = overlap.max(0)  # [nS], each segment's largest overlap with one gland
    partner = (overlap == top) & (top > 0)  # [nG, nS], the largest-overlap gland(s) of each segment
    covered = 2 * overlap > gt.area[:, None]  # [nG, nS], strictly more than half of the gland
    return int((partner & covered).any(0).sum())


def _partner_scores(overlap: np.ndarray, score: np.ndarray, best: str) -> np.ndarray:
    """Per row, the score of the largest-overlap column (ties -> best score); [rows]."""
    top = overlap.max(1, keepdims=True)  # [R, 1]
    tied = overlap == top  # [R, K]
    fill = -np.inf if best == "max" else np.inf
    masked = np.where(tied, score, fill)  # [R, K]
    return masked.max(1) if best == "max" else masked.min(1)


def _dice_sums(gt: _Objects, pred: _Objects, overlap: np.ndarray) -> tuple[float, float]:
    """(sum_i |G_i| Dice(G_i, S*), sum_j |S_j| Dice(G*, S_j)) of one image; 0 for unpartnered objects."""
    if overlap.size == 0:
        return 0.0, 0.0
    dice = 2.0 * overlap / (gt.area[:, None] + pred.area[None, :])  # [nG, nS]; 0 where disjoint
    g_sum = _partner_scores(overlap, dice, "max") @ gt.area
    s_sum = _partner_scores(overlap.T, dice.T, "max") @ pred.area
    return float(g_sum), float(s_sum)


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
        out[i] = min(dist(i, int(j)) for j in candidates)
    return out


def _hausdorff_sums(gt: _Objects, pred: _Objects, overlap: np.ndarray) -> tuple[float, float]:
    """(sum_i |G_i| H(G_i, S*), sum_j |S_j| H(G*, S_j)) of one image, pixels.

    An object of an image with no object on the other side counts with the image diagonal.
    """
    if overlap.size == 0:
        diagonal = float(np.hypot(*gt.labels.shape))
        return diagonal * float(gt.area.sum()), diagonal * float(pred.area.sum())
    cache: dict[tuple[int, int], float] = {}

    def dist(i: int, j: int) -> float:
        """Cached Hausdorff distance between G_i and S_j."""
        if (i, j) not in cache:
            cache[(i, j)] = _hausdorff_pair(gt, pred, i, j)
        return cache[(i, j)]

    g_sum = _hausdorff_side(overlap, dist) @ gt.area
    s_sum = _hausdorff_side(overlap.T, lambda j, i: dist(i, j)) @ pred.area
    return float(g_sum), float(s_sum)


def _image_stats(gt_map: np.ndarray, pred_map: np.ndarray, hausdorff: bool) -> ObjectStats:
    """:class:`ObjectStats` of one image from instance maps [H, W]."""
    gt, pred = _objects(gt_map), _objects(pred_map)
    overlap = _overlap(gt, pred)  # [nG, nS]
    dice_gt, dice_pred = _dice_sums(gt, pred, overlap)
    hd_gt, hd_pred = _hausdorff_sums(gt, pred, overlap) if hausdorff else (np.nan, np.nan)
    return ObjectStats(
        tp=_true_positives(gt, overlap), n_pred=len(pred.area), n_gt=len(gt.area),
        gt_area=float(gt.area.sum()), pred_area=float(pred.area.sum()),
        dice_gt=dice_gt, dice_pred=dice_pred, hausdorff_gt=hd_gt, hausdorff_pred=hd_pred,
    )


def object_stats(pred_instances: ArrayLike, gt_instances: ArrayLike, hausdorff: bool = True) -> list[ObjectStats]:
    """Per-image additive statistics of the GlaS object metrics (sum them to pool images).

    Args:
        pred_instances: predicted instance ids, [H, W] or [N, H, W], 0 = background, ints >= 0.
        gt_instances: ground-truth instance ids, same shape and convention.
        hausdorff: also compute the Hausdorff sums (the slow part); False leaves them NaN.

    Returns:
        One :class:`ObjectStats` per image (N of them; 1 for an [H, W] input).

    Raises:
        ValueError: on shape mismatch, non-integer or negative labels.
    """
    pred, gt = _pair(pred_instances, gt_instances)
    return [_image_stats(g, p, hausdorff) for p, g in zip(pred, gt, strict=True)]


def aggregate_object_stats(stats: Sequence[ObjectStats], aggregate: str = "pooled") -> dict[str, float]:
    """Object F1, Dice and Hausdorff of a set of images from their per-image statistics.

    Args:
        stats: per-image statistics, e.g. from :func:`object_stats`, at least one.
        aggregate: ``"pooled"`` (the GlaS challenge: counts and area weights over all objects of the
            set) or ``"image_mean"`` (mean over images of each image's value).

    Returns:
        ``f1``, ``object_dice`` and ``object_hausdorff`` (pixels).

    Raises:
        ValueError: if ``aggregate`` is unknown or ``stats`` is empty.
    """
    _check_aggregate(aggregate)
    if len(stats) == 0:
        raise ValueError("no images: stats is empty")
    if aggregate == "pooled":
        total = sum(stats, ObjectStats())
        return {"f1": total.f1(), "object_dice": total.dice(), "object_hausdorff": total.hausdorff()}
    return {"f1": float(np.mean([s.f1() for s in stats])),
            "object_dice": float(np.mean([s.dice() for s in stats])),
            "object_hausdorff": float(np.mean([s.hausdorff() for s in stats]))}


def _object_metric(pred: ArrayLike, gt: ArrayLike, key: str, aggregate: str) -> float:
    """One object metric of a batch, aggregated as asked."""
    _check_aggregate(aggregate)
    stats = object_stats(pred, gt, hausdorff=key == "object_hausdorff")
    return aggregate_object_stats(stats, aggregate)[key]


def object_f1(pred_instances: ArrayLike, gt_instances: ArrayLike, aggregate: str = "pooled") -> float:
    """GlaS object-level F1 (``F1score.m``: > 50% of the largest-overlap gland).

    Args:
        pred_instances: predicted instance ids, [H, W] or [N, H, W], 0 = background, ints >= 0.
        gt_instances: ground-truth instance ids, same shape and convention.
        aggregate: for a batch, ``"pooled"`` (TP, FP, FN summed over images, the challenge) or
            ``"image_mean"``; one image gives the same value either way.

    Returns:
        F1 in [0, 1]; 1 when both maps are empty.

    Raises:
        ValueError: on shape mismatch, non-integer or negative labels, unknown ``aggregate``.
    """
    return _object_metric(pred_instances, gt_instances, "f1", aggregate)


def object_dice(pred_instances: ArrayLike, gt_instances: ArrayLike, aggregate: str = "pooled") -> float:
    """Object-level Dice (Sirinukunwattana et al. 2017, area-weighted, two-way; ``ObjectDice.m``).

    Args:
        pred_instances: predicted instance ids, [H, W] or [N, H, W], 0 = background, ints >= 0.
        gt_instances: ground-truth instance ids, same shape and convention.
        aggregate: for a batch, ``"pooled"`` (weights over all objects of the batch, the challenge)
            or ``"image_mean"``; one image gives the same value either way.

    Returns:
        Object Dice in [0, 1]; 1 when both maps are empty.

    Raises:
        ValueError: on shape mismatch, non-integer or negative labels, unknown ``aggregate``.
    """
    return _object_metric(pred_instances, gt_instances, "object_dice", aggregate)


def object_hausdorff(pred_instances: ArrayLike, gt_instances: ArrayLike, aggregate: str = "pooled") -> float:
    """Object-level Hausdorff distance in pixels (Sirinukunwattana et al. 2017; ``ObjectHausdorff.m``).

    Args:
        pred_instances: predicted instance ids, [H, W] or [N, H, W], 0 = background, ints >= 0.
        gt_instances: ground-truth instance ids, same shape and convention.
        aggregate: for a batch, ``"pooled"`` (weights over all objects of the batch, the challenge)
            or ``"image_mean"``; one image gives the same value either way.

    Returns:
        Distance >= 0 (lower is better); 0 when both maps of an image are empty, the image
        diagonal when exactly one is.

    Raises:
        ValueError: on shape mismatch, non-integer or negative labels, unknown ``aggregate``.
    """
    return _object_metric(pred_instances, gt_instances, "object_hausdorff", aggregate)


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


def segmentation_scores(
    pred_instances: ArrayLike, gt_instances: ArrayLike, object_aggregate: str = "pooled",
) -> dict[str, float]:
    """All segmentation metrics of a batch.

    Args:
        pred_instances: predicted instance ids, [N, H, W] (or [H, W]), 0 = background.
        gt_instances: ground-truth instance ids, same shape. The pixel metrics use ``ids > 0``.
        object_aggregate: how the object metrics combine images, ``"pooled"`` (the GlaS challenge)
            or ``"image_mean"`` (see :func:`aggregate_object_stats`). Pixel metrics are always
            the mean over images (ISIC).

    Returns:
        ``f1``, ``object_dice``, ``object_hausdorff`` (pixels), ``dice`` and ``jaccard``.

    Raises:
        ValueError: on shape mismatch, non-integer or negative labels, unknown ``object_aggregate``.
    """
    _check_aggregate(object_aggregate)
    pred, gt = _pair(pred_instances, gt_instances)
    scores = aggregate_object_stats(object_stats(pred, gt), object_aggregate)
    return {**scores, "dice": dice(pred, gt), "jaccard": jaccard(pred, gt)}


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
