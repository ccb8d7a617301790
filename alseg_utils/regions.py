"""Region search of Alg. 2: window sums of pixel scores and greedy non-overlapping selection.

A region is a ``size`` x ``size`` window placed every ``stride`` pixels; when the image side is not
a multiple of the stride away from the window size, one more row (column) of windows is aligned
with the bottom (right) edge, so every pixel is covered by some window. The score of a window is the
sum of its pixel scores (the convolution of Alg. 2), computed exactly in float64 from cumulative
sums. :func:`select_regions` takes the best window over all images, removes every window of the
same image that overlaps it, and repeats: unlike the authors' code, which let chosen windows
overlap and OR-merged them, no pixel of the labelling budget is counted twice.
:func:`select_windows` runs the same search on scores given per window; the Random baseline gives
it one uniform draw per window, so every window that may be chosen is equally likely.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class Region:
    """A rectangular window of one pool image, in pixels.

    Attributes:
        image: index of the image in the pool (axis N).
        top: first row.
        left: first column.
        height: rows covered.
        width: columns covered.
    """

    image: int
    top: int
    left: int
    height: int
    width: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(rows, columns)`` slices selecting the region in an ``[H, W]`` array."""
        return slice(self.top, self.top + self.height), slice(self.left, self.left + self.width)

    @property
    def area(self) -> int:
        """Number of pixels covered."""
        return self.height * self.width

    def overlaps(self, other: Region) -> bool:
        """Whether the two regions share at least one pixel."""
        return (self.image == other.image
                and self.top < other.top + other.height and other.top < self.top + self.height
                and self.left < other.left + other.width and other.left < self.left + self.width)


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    """``(height, width)`` of a square side or a pair, validated >= 1."""
    pair = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if len(pair) != 2 or not all(isinstance(s, (int, np.integer)) and s >= 1 for s in pair):
        raise ValueError(f"region size must be an integer >= 1 or a (height, width) pair, got {size!r}")
    return int(pair[0]), int(pair[1])


def _axis_origins(length: int, size: int, stride: int) -> list[int]:
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)  # last window flush with the edge
    return starts


def region_origins(height: int, width: int, size: int | tuple[int, int],
                   stride: int) -> tuple[list[int], list[int]]:
    """Top rows and left columns of the windows covering an image.

    Args:
        height: image rows H.
        width: image columns W.
        size: window side, or ``(height, width)``.
        stride: step between windows, pixels (>= 1).

    Returns:
        ``(tops, lefts)``: ``0, stride, 2*stride, ...`` plus ``H - size`` (``W - size``) when the
        last regular window does not reach the edge.

    Raises:
        ValueError: when the window is larger than the image or ``size``/``stride`` < 1.
    """
    h, w = _pair(size)
    if not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"stride must be an integer >= 1, got {stride!r}")
    if h > height or w > width:
        raise ValueError(f"region {h}x{w} is larger than the images ({height}x{width}); "
                         "use a smaller region size")
    return _axis_origins(height, h, int(stride)), _axis_origins(width, w, int(stride))


def _as_scores(scores: Tensor | np.ndarray) -> np.ndarray:
    """Scores as a NumPy ``[N, H, W]`` array (no copy for CPU tensors and arrays)."""
    if isinstance(scores, Tensor):
        scores = scores.detach().cpu().numpy()
    scores = np.asarray(scores)
    if scores.ndim != 3:
        raise ValueError(f"scores must be [N, H, W], got shape {scores.shape}")
    if not (np.issubdtype(scores.dtype, np.number) or scores.dtype == bool):
        raise ValueError(f"scores must be numeric, got dtype {scores.dtype}")
    return scores


def _band_sums(x: np.ndarray, starts: list[int], size: int, axis: int) -> np.ndarray:
    """Sums of ``x`` over ``[s, s + size)`` along ``axis`` for each start ``s``, in float64.

    The axis is cut at every window edge; each piece is summed once (float64 accumulation) and
    window sums are differences of the prefix sums of the pieces, so every pixel is read once.
    """
    edges = np.unique(np.r_[starts, np.asarray(starts) + size])  # window edges, 0 .. length
    lead = (slice(None),) * axis
    pieces = [x[(*lead, slice(a, b))].sum(axis, dtype=np.float64) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    prefix = np.cumsum(np.stack([np.zeros_like(pieces[0])] + pieces, axis), axis)  # [.., edges, ..]
    upper = prefix.take(np.searchsorted(edges, np.asarray(starts) + size), axis)
    return upper - prefix.take(np.searchsorted(edges, starts), axis)


def region_scores(scores: Tensor | np.ndarray, size: int | tuple[int, int], stride: int) -> Tensor:
    """Sum of pixel scores in every window (the strided convolution of Alg. 2).

    Args:
        scores: per-pixel scores, ``[N, H, W]``, finite.
        size: window side, or ``(height, width)``.
        stride: step between windows, pixels.

    Returns:
        Window sums ``[N, nh, nw]``, float64 on the CPU; entry ``[i, a, b]`` is the window of image
        ``i`` at ``(tops[a], lefts[b])`` of :func:`region_origins`.

    Raises:
        ValueError: malformed or non-finite ``scores``, window larger than the image, or
            ``size``/``stride`` < 1.
    """
    scores = _as_scores(scores)
    n, height, width = scores.shape
    tops, lefts = region_origins(height, width, size, stride)
    h, w = _pair(size)
    if n == 0:
        return torch.zeros((0, len(tops), len(lefts)), dtype=torch.float64)
    rows = _band_sums(scores, tops, h, axis=1)  # [N, nh, W]
    sums = _band_sums(rows, lefts, w, axis=2)  # [N, nh, nw]
    if not np.isfinite(sums).all():  # a NaN or infinite pixel spoils every window holding it
        raise ValueError("scores contain NaN or infinity; check the model's predictions")
    return torch.from_numpy(sums)


def _as_mask(labelled: Tensor | np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if isinstance(labelled, Tensor):
        labelled = labelled.detach().cpu().numpy()
    mask = np.asarray(labelled)
    if mask.dtype != bool:
        raise ValueError(f"labelled must be a bool mask (True = labelled), got dtype {mask.dtype}")
    if mask.shape != shape:
        raise ValueError(f"labelled {mask.shape} must have the shape of scores {shape}")
    return mask


def _check_diversity(max_per_image: int | None, min_distance: int) -> None:
    if max_per_image is not None and (not isinstance(max_per_image, (int, np.integer))
                                      or isinstance(max_per_image, bool) or max_per_image < 1):
        raise ValueError(f"max_per_image must be None (no cap) or an integer >= 1, got {max_per_image!r}")
    if not isinstance(min_distance, (int, np.integer)) or isinstance(min_distance, bool) or min_distance < 0:
        raise ValueError(f"min_distance must be an integer >= 0 (pixels), got {min_distance!r}")


def _greedy(value: np.ndarray, tops: list[int], lefts: list[int], h: int, w: int, m: int,
            max_per_image: int | None = None, min_distance: int = 0) -> list[Region]:
    """Repeatedly take the best window and drop the windows of its image that it rules out.

    ``value`` ``[N, nh, nw]`` holds window scores, ``-inf`` for windows that may not be chosen; it
    is modified in place. A chosen window rules out the windows of its image that come closer than
    ``min_distance`` pixels to it (with 0: those that overlap it) and, once its image holds
    ``max_per_image`` chosen windows, the rest of that image. ``np.argmax`` returns the first
    maximum, so ties go to the lowest (image, top, left).
    """
    tops_a, lefts_a = np.asarray(tops), np.asarray(lefts)
    per_image = np.zeros(value.shape[0], dtype=np.int64)
    chosen: list[Region] = []
    while len(chosen) < m:
        flat = int(np.argmax(value))
        if value.flat[flat] == -np.inf:
            break  # nothing left to choose
        i, a, b = np.unravel_index(flat, value.shape)
        chosen.append(Region(int(i), tops[a], lefts[b], h, w))
        rows = np.abs(tops_a - tops[a]) < h + min_distance  # [nh] windows too close in rows
        cols = np.abs(lefts_a - lefts[b]) < w + min_distance  # [nw]
        value[i][np.ix_(rows, cols)] = -np.inf
        per_image[i] += 1
        if max_per_image is not None and per_image[i] >= max_per_image:
            value[i] = -np.inf  # this image is full for this step
    return chosen


def select_regions(scores: Tensor | np.ndarray, size: int | tuple[int, int], stride: int, m: int,
                   labelled: Tensor | np.ndarray | None = None, *, max_per_image: int | None = None,
                   min_distance: int = 0) -> list[Region]:
    """The ``m`` most uncertain non-overlapping windows over all pool images (Alg. 2).

    Already-labelled pixels score 0; windows made only of labelled pixels are never chosen. The
    best window over all images is taken first, then the best window overlapping none chosen so
    far, and so on. Ties go to the lowest (image, top, left). The window scores are the sums of
    :func:`region_scores`; :func:`select_windows` does the same search on scores given per window.

    The optional spatial-diversity rule (off by default, the paper's setting; see
    :mod:`alseg_utils.superpixels` for why it helps) caps the windows per image and keeps the
    windows of one image apart: at least ``min_distance`` pixel rows or columns lie between any two
    of them (the Chebyshev distance of their nearest pixels exceeds ``min_distance``; equivalently,
    one grown by ``min_distance`` on every side does not overlap the other).

    Args:
        scores: per-pixel scores, ``[N, H, W]``, finite (>= 0 for every acquisition function).
        size: window side, or ``(height, width)``.
        stride: step between windows, pixels.
        m: number of regions wanted (>= 0); fewer are returned when fewer fit.
        labelled: ``True`` where a pixel is already labelled, bool ``[N, H, W]``; ``None`` = none.
        max_per_image: at most this many windows per image; ``None`` = no cap.
        min_distance: pixels kept free between two windows of one image (>= 0); 0 = they may touch.

    Returns:
        Up to ``m`` :class:`Region` objects, best first, pairwise disjoint.

    Raises:
        ValueError: malformed ``scores``/``labelled``, window larger than the image, ``m`` < 0, bad
            diversity settings.
    """
    _check_selection(m, max_per_image, min_distance)
    scores = _as_scores(scores)
    if labelled is not None:
        scores = np.where(_as_mask(labelled, scores.shape), 0, scores)  # [N, H, W]
    sums = region_scores(scores, size, stride)  # [N, nh, nw]
    return select_windows(sums, scores.shape[1:], size, stride, m, labelled,
                          max_per_image=max_per_image, min_distance=min_distance)


def select_windows(values: Tensor | np.ndarray, image_size: tuple[int, int], size: int | tuple[int, int],
                   stride: int, m: int, labelled: Tensor | np.ndarray | None = None, *,
                   max_per_image: int | None = None, min_distance: int = 0) -> list[Region]:
    """The search of :func:`select_regions` on scores given per window instead of per pixel.

    Greedy: the best window first, then the best window that overlaps none chosen so far (and
    keeps the diversity rule), and so on; ties go to the lowest (image, top, left). Windows made
    only of labelled pixels are never chosen. With one independent uniform draw per window as
    ``values`` (the Random baseline) this draws ``m`` windows uniformly, one after the other, among
    the windows still allowed.

    Args:
        values: window scores, ``[N, nh, nw]``, finite; entry ``[i, a, b]`` is the window of image
            ``i`` at ``(tops[a], lefts[b])`` of :func:`region_origins`.
        image_size: ``(H, W)`` of the pool images.
        size: window side, or ``(height, width)``.
        stride: step between windows, pixels.
        m: number of regions wanted (>= 0); fewer are returned when fewer fit.
        labelled: ``True`` where a pixel is already labelled (or padding), bool ``[N, H, W]``;
            ``None`` = none.
        max_per_image: at most this many windows per image; ``None`` = no cap.
        min_distance: pixels kept free between two windows of one image (>= 0); 0 = they may touch.

    Returns:
        Up to ``m`` :class:`Region` objects, best first, pairwise disjoint.

    Raises:
        ValueError: ``values`` of the wrong shape or not finite, malformed ``labelled``, window
            larger than the image, ``m`` < 0, bad diversity settings.
    """
    _check_selection(m, max_per_image, min_distance)
    height, width = (int(s) for s in image_size)
    tops, lefts = region_origins(height, width, size, stride)
    value = np.array(_as_scores(values), dtype=np.float64)  # [N, nh, nw], a copy _greedy may change
    if value.shape[1:] != (len(tops), len(lefts)):
        raise ValueError(f"values {value.shape} must be [N, {len(tops)}, {len(lefts)}]: one score per window "
                         f"of a {height}x{width} image (region_origins)")
    if not np.isfinite(value).all():
        raise ValueError("window values contain NaN or infinity; check the model's predictions")
    if labelled is not None:
        unlabelled = (~_as_mask(labelled, (value.shape[0], height, width))).view(np.uint8)  # [N, H, W]
        value[region_scores(unlabelled, size, stride).numpy() == 0] = -np.inf  # nothing left to label
    h, w = _pair(size)
    return _greedy(value, tops, lefts, h, w, int(m), max_per_image, int(min_distance))


def _check_selection(m: int, max_per_image: int | None, min_distance: int) -> None:
    if not isinstance(m, (int, np.integer)) or m < 0:
        raise ValueError(f"m (regions to select) must be an integer >= 0, got {m!r}")
    _check_diversity(max_per_image, min_distance)


def regions_mask(regions: list[Region], shape: tuple[int, int, int]) -> np.ndarray:
    """Pixels covered by ``regions`` as a mask.

    Args:
        regions: regions of a pool of ``shape[0]`` images.
        shape: ``(N, H, W)`` of the pool.

    Returns:
        Bool ``[N, H, W]``, ``True`` inside any region.

    Raises:
        ValueError: when a region lies outside the pool.
    """
    n, height, width = shape
    mask = np.zeros((n, height, width), dtype=bool)
    for r in regions:
        inside = 0 <= r.image < n and r.top >= 0 and r.left >= 0
        if not (inside and r.top + r.height <= height and r.left + r.width <= width):
            raise ValueError(f"{r} lies outside a pool of shape {tuple(shape)}")
        mask[(r.image, *r.slices)] = True
    return mask
