"""Which training crops a training sees: every labelled pixel in view equally often.

A training step shows the network random crops of the labelled images. When the label store mixes
fully labelled images with square windows and superpixels (region acquisition), how the crops are
drawn decides how often each labelled pixel is seen: drawing images in proportion to their labelled
pixels and cropping around one of them over-samples the fully labelled images, because a crop of a
full image shows thousands of labels while a crop around a 32x32 window shows about a thousand.

The sampler here is built so that every labelled pixel gets, in expectation, the same number of
views whichever unit holds it. A crop is drawn in three moves: an *anchor* labelled pixel ``p``, then
a crop offset drawn uniformly among the offsets whose window contains ``p`` (per axis, inside the
image). Let ``D(p)`` be the expected number of labelled pixels in such a crop. Anchors are drawn with
probability proportional to ``1 / D(p)``; the expected number of views of pixel ``q`` per crop is then

    V(q) = sum_p  [1 / D(p)] / Z * P(crop contains q | anchor p),   Z = sum_p 1 / D(p),

and since ``D(p) = sum_q P(crop contains q | anchor p)`` over labelled ``q``, ``V`` is flat wherever
``D`` is locally flat: inside a full image, over a window, over a superpixel (tested by a Monte Carlo
of this code on a mixed store). Two limits remain, as with any random cropping inside the image:
pixels in the outermost rows and columns of an image are covered by fewer offsets, and a pixel at the
edge of a unit sees a slightly different ``D`` than its centre.

``Z`` is also the natural unit of a training budget: one *epoch* is ``Z`` crops, the number after
which every labelled pixel has been in view once in expectation (``crops_per_epoch``). For a fully
labelled image of ``H x W`` and crops of ``h x w`` it contributes ``H W / (h w)`` crops; for a window
smaller than the crop, about one crop.

Without cropping (``size`` empty) a view shows the whole image; the same rule then draws images
uniformly, which is again one view per draw for every labelled pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def coverage_matrix(length: int, crop: int) -> Tensor:
    """Per-axis probability that a crop drawn around an anchor covers a pixel.

    The crop offset is uniform among ``[max(0, p - crop + 1), min(p, length - crop)]``, the
    offsets whose window of ``crop`` pixels contains the anchor ``p`` and stays inside the image.

    Args:
        length: image length along the axis, pixels.
        crop: crop length along the axis, 1 <= crop <= length.

    Returns:
        ``P[p, q]``, [length, length], float64: probability that the crop covers ``q`` given anchor ``p``.

    Raises:
        ValueError: ``crop`` is not in ``[1, length]``.
    """
    if not 1 <= crop <= length:
        raise ValueError(f"crop of {crop} px does not fit an axis of {length} px; use a smaller crop")
    pos = torch.arange(length, dtype=torch.float64)
    low = (pos - crop + 1).clamp_min(0)  # [L] first admissible offset per anchor
    high = pos.clamp_max(length - crop)  # [L] last admissible offset per anchor
    # offsets covering q are [q - crop + 1, q]; intersect with [low_p, high_p]
    lo = torch.maximum(low[:, None], (pos - crop + 1)[None, :])  # [L, L]
    hi = torch.minimum(high[:, None], pos[None, :])  # [L, L]
    return (hi - lo + 1).clamp_min(0) / (high - low + 1)[:, None]  # [L, L]


def labels_in_view(labelled: Tensor, size: list[int]) -> Tensor:
    """``D(p)``: expected labelled pixels in a crop drawn around each pixel ``p``.

    Args:
        labelled: which pixels carry a label, [N, H, W], bool.
        size: crop [h, w]; an empty list means no crop (the view is the whole image).

    Returns:
        [N, H, W], float64; meaningful on labelled pixels (the crop anchors).
    """
    n, H, W = labelled.shape
    lab = labelled.to(torch.float64)  # [N, H, W]
    if not size:
        return lab.sum((1, 2), keepdim=True).expand(n, H, W)  # every view shows the whole image
    py, px = coverage_matrix(H, size[0]), coverage_matrix(W, size[1])  # [H, H], [W, W]
    return py @ lab @ px.T  # [N, H, W]


def anchor_weights(labelled: Tensor, size: list[int]) -> Tensor:
    """Unnormalised probability of drawing each labelled pixel as a crop anchor, ``1 / D(p)``.

    Args:
        labelled: [N, H, W], bool.
        size: crop [h, w], or empty for no crop.

    Returns:
        [N, H, W], float64, zero on unlabelled pixels. Its sum is :func:`crops_per_epoch`.
    """
    d = labels_in_view(labelled, size)  # [N, H, W]
    return torch.where(labelled, 1.0 / d.clamp_min(1e-12), torch.zeros((), dtype=torch.float64))


def crops_per_epoch(labelled: Tensor, size: list[int]) -> float:
    """Crops after which every labelled pixel has been in view once, in expectation (``Z``).

    Args:
        labelled: [N, H, W], bool.
        size: crop [h, w], or empty for no crop.

    Returns:
        ``Z = sum_p 1 / D(p)`` over labelled pixels; 0.0 when nothing is labelled.
    """
    return float(anchor_weights(labelled, size).sum())


@dataclass
class CropPlan:
    """Every crop of one training, drawn up front (deterministic for a generator).

    Attributes:
        images: image index of every crop, [iterations, batch], long.
        tops: top row of every crop, [iterations, batch], long.
        lefts: left column of every crop, [iterations, batch], long.
        size: crop [h, w] (the full image size when the training does not crop).
    """

    images: Tensor
    tops: Tensor
    lefts: Tensor
    size: list[int]

    def __len__(self) -> int:
        """Number of iterations."""
        return len(self.images)


def _offsets(anchor: Tensor, crop: int, length: int, generator: torch.Generator) -> Tensor:
    """Uniform offsets among those whose window of ``crop`` pixels holds each anchor, [K] long."""
    low = (anchor - crop + 1).clamp_min(0)  # [K]
    high = anchor.clamp_max(length - crop)  # [K]
    u = torch.rand(len(anchor), generator=generator, dtype=torch.float64)  # [K]
    return low + (u * (high - low + 1).double()).long().clamp_max(high - low)


def plan_crops(labelled: Tensor, size: list[int], iterations: int, batch_size: int,
               generator: torch.Generator) -> CropPlan:
    """Draw every crop of a training so that each labelled pixel is in view equally often.

    Args:
        labelled: which pixels carry a label, [N, H, W], bool (at least one True).
        size: crop [h, w]; empty = no crop (whole images, drawn uniformly).
        iterations: optimizer steps.
        batch_size: crops per step.
        generator: CPU generator, the only source of randomness.

    Returns:
        The :class:`CropPlan`.

    Raises:
        ValueError: no labelled pixel, or a crop larger than the images.
    """
    n, H, W = labelled.shape
    if not bool(labelled.any()):
        raise ValueError("plan_crops: no pixel is labelled; label at least one image or region")
    if size and (size[0] > H or size[1] > W):
        raise ValueError(f"train.crop_size {size} is larger than the training images ({H}x{W}); use a smaller crop")
    weights = anchor_weights(labelled, size).reshape(n, H * W)  # [N, H*W]
    k = iterations * batch_size
    images = torch.multinomial(weights.sum(1), k, replacement=True, generator=generator)  # [K]
    if not size:
        zeros = torch.zeros(iterations, batch_size, dtype=torch.long)
        return CropPlan(images.view(iterations, batch_size), zeros, zeros.clone(), [H, W])
    anchors = torch.empty(k, dtype=torch.long)
    for i in images.unique().tolist():  # per image: anchors in proportion to 1 / D(p)
        where = (images == i).nonzero().squeeze(1)  # [K_i]
        anchors[where] = torch.multinomial(weights[i], len(where), replacement=True, generator=generator)
    tops = _offsets(anchors // W, size[0], H, generator)  # [K]
    lefts = _offsets(anchors % W, size[1], W, generator)  # [K]
    shape = (iterations, batch_size)
    return CropPlan(images.view(shape), tops.view(shape), lefts.view(shape), list(size))


def labelled_in_crops(labelled: Tensor, plan: CropPlan) -> Tensor:
    """Labelled pixels inside every crop of a plan (box sums of a summed-area table).

    Args:
        labelled: [N, H, W], bool.
        plan: the training's :class:`CropPlan`.

    Returns:
        [iterations, batch], int64.
    """
    h, w = plan.size
    table = torch.zeros(labelled.shape[0], labelled.shape[1] + 1, labelled.shape[2] + 1, dtype=torch.int64)
    table[:, 1:, 1:] = labelled.long().cumsum(1).cumsum(2)  # [N, H+1, W+1]
    n, top, left = plan.images, plan.tops, plan.lefts  # [iterations, batch] each
    return (table[n, top + h, left + w] - table[n, top, left + w] - table[n, top + h, left]
            + table[n, top, left])


def crop_batch(images: Tensor, targets: Tensor, tops: Tensor, lefts: Tensor,
               size: list[int]) -> tuple[Tensor, Tensor]:
    """Cut one crop per sample (the same window for the image and its label maps).

    Args:
        images: [B, 3, H, W], any dtype.
        targets: [B, K, H, W], label maps.
        tops: [B], long, top row of each crop.
        lefts: [B], long, left column of each crop.
        size: crop [h, w].

    Returns:
        Images [B, 3, h, w] and targets [B, K, h, w].
    """
    h, w = size
    if (h, w) == tuple(images.shape[-2:]):
        return images, targets
    rows = zip(images, targets, tops.tolist(), lefts.tolist(), strict=True)
    cut = [(im[:, top : top + h, left : left + w], tg[:, top : top + h, left : left + w]) for im, tg, top, left in rows]
    return torch.stack([c[0] for c in cut]), torch.stack([c[1] for c in cut])
