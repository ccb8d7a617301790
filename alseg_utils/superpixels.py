"""Superpixel regions: SLIC segments as labelling units, chosen under a pixel budget.

The paper labels square windows (:mod:`alseg_utils.regions`). A square cuts through glands and
background alike, so an annotator must trace boundaries it did not choose. SLIC superpixels
(Achanta et al. 2012, :func:`skimage.segmentation.slic`) follow colour edges instead, so a unit tends
to hold one kind of tissue. Each pool image is segmented once (:func:`compute_superpixels`, cached
with the run by :func:`cached_superpixels`), into about ``valid pixels / n_pixels`` segments; with
``n_pixels = region_size ** 2`` a segment has roughly the area of the paper's square.

The score of a segment is the sum (or mean, over the pixels it would add) of its pixel scores,
already-labelled pixels scoring zero, computed with one ``np.bincount`` per image. A step then takes
the best segments across the pool while their *unlabelled* pixels fit a pixel budget
(:func:`select_superpixels`); with a budget of ``regions_per_step * region_size ** 2`` a step costs
at most what the square strategy's step costs, so learning curves compare at equal labelling cost.
Dominant-class superpixels (one class click each, Cai et al. 2021) are budgeted in clicks instead:
a step takes a number of segments (:func:`select_segment_count`), the same greedy walk without a
pixel limit.

**Spatial diversity** (``max_per_image``, ``min_distance``; here and in
:func:`alseg_utils.regions.select_regions`; off by default, which is the paper's setting). Greedy
top-score selection spends a whole step where the model is most uncertain, and uncertainty is
spatially smooth: it lines the boundaries of the same few hard glands, so the best units sit next to
each other, often in one or two images. Neighbouring units share texture, stain and the model's
error, so the second and third add little the first did not (the redundancy of top-k batch
acquisition that BatchBALD and core-set methods address). Capping the picks per image, or keeping
picks of one image at least ``min_distance`` pixels apart, spreads the same budget over more
distinct appearances and images, at the price of taking some lower-scored units.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage.segmentation import slic
from torch import Tensor

from alseg_utils.config import SUPERPIXEL_REDUCTIONS
from alseg_utils.regions import _as_mask, _as_scores, _check_diversity
from alseg_utils.results import atomic_write_bytes

_CACHE_VERSION = 1  # bump when the segmentation recipe changes (invalidates caches)


@dataclass(frozen=True)
class SuperpixelPick:
    """One chosen superpixel.

    Attributes:
        image: index of the image in the pool (axis N).
        segment: segment id in that image (``segments[image] == segment``).
        pixels: unlabelled pixels it adds (what it costs of the budget).
        score: its score (sum or mean of pixel scores, see :func:`superpixel_scores`).
    """

    image: int
    segment: int
    pixels: int
    score: float


# --------------------------------------------------------------------------- segmentation


def _check_images(images: np.ndarray, valid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``[N, H, W, 3]`` images and their ``[N, H, W]`` bool valid mask."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be RGB [N, H, W, 3], got shape {images.shape}")
    if not np.issubdtype(images.dtype, np.number):
        raise ValueError(f"images must be numeric (uint8 or float), got dtype {images.dtype}")
    if valid is None:
        return images, np.ones(images.shape[:3], dtype=bool)
    valid = np.asarray(valid)
    if valid.dtype != bool or valid.shape != images.shape[:3]:
        raise ValueError(f"valid must be a bool mask of shape {images.shape[:3]}, "
                         f"got {valid.dtype} {valid.shape}")
    return images, valid


def _check_segment_size(n_pixels: int, compactness: float, height: int, width: int) -> None:
    if not isinstance(n_pixels, (int, np.integer)) or isinstance(n_pixels, bool) or n_pixels < 1:
        raise ValueError(f"n_pixels (superpixel area) must be an integer >= 1, got {n_pixels!r}; "
                         "0 would ask for zero-sized segments")
    if n_pixels > height * width:
        raise ValueError(f"superpixels of {n_pixels} px are larger than the images ({height}x{width} = "
                         f"{height * width} px); use at most {height * width}")
    if not (isinstance(compactness, (int, float)) and np.isfinite(compactness) and compactness > 0):
        raise ValueError(f"compactness must be a finite number > 0, got {compactness!r}")


def _slic_one(image: np.ndarray, valid: np.ndarray, n_pixels: int, compactness: float) -> np.ndarray:
    """SLIC ids ``0..S-1`` of one ``[H, W, 3]`` image, ``-1`` outside ``valid`` ``[H, W]``.

    SLIC runs on the bounding box of the valid pixels (the zero padding of ``resize="pad"`` is a
    bottom/right band), with skimage's masked SLIC only when the valid pixels are not a rectangle.
    """
    out = np.full(valid.shape, -1, dtype=np.int32)  # [H, W]
    rows, cols = np.flatnonzero(valid.any(1)), np.flatnonzero(valid.any(0))
    if rows.size == 0:
        return out  # nothing to segment
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    crop, inside = image[box], valid[box]  # [h, w, 3], [h, w]
    n_segments = max(1, int(inside.sum() / n_pixels + 0.5))
    with warnings.catch_warnings():  # masked SLIC seeds with scipy's k-means, which may warn
        warnings.filterwarnings("ignore", message="One of the clusters is empty", category=UserWarning)
        labels = slic(crop, n_segments=n_segments, compactness=float(compactness), start_label=0,
                      mask=None if inside.all() else inside, channel_axis=-1)  # [h, w]
    _, ids = np.unique(labels[inside], return_inverse=True)  # contiguous 0..S-1
    out[box][inside] = ids.astype(np.int32)
    return out


def compute_superpixels(images: np.ndarray, n_pixels: int, compactness: float = 40.0,
                        valid: np.ndarray | None = None) -> np.ndarray:
    """SLIC superpixels of every image, about ``n_pixels`` pixels each.

    Deterministic (SLIC seeds on a regular grid; skimage's masked variant fixes its own seed), so
    there is no seed argument. The segment count asked of SLIC is ``valid pixels / n_pixels``
    rounded to the nearest integer (at least 1); SLIC may return fewer, larger segments, more so the
    lower ``compactness`` (on GlaS-like images the default 40 gives a mean area of 1.0-1.3 ``n_pixels``).

    Args:
        images: RGB images, ``[N, H, W, 3]``, uint8 (or float in [0, 1]).
        n_pixels: wanted segment area, pixels, in ``1 .. H * W`` (e.g. ``region_size ** 2``).
        compactness: SLIC's colour/space trade-off, > 0; higher = more square-like segments.
        valid: ``False`` on padding, bool ``[N, H, W]``; ``None`` = every pixel is valid.

    Returns:
        Segment ids, int32 ``[N, H, W]``: ``0 .. S_n - 1`` on the valid pixels of image ``n``,
        ``-1`` elsewhere. Every segment is connected and non-empty.

    Raises:
        ValueError: malformed ``images``/``valid``, ``n_pixels`` < 1 or larger than an image,
            ``compactness`` <= 0.
    """
    images, valid = _check_images(images, valid)
    _check_segment_size(n_pixels, compactness, images.shape[1], images.shape[2])
    out = np.full(valid.shape, -1, dtype=np.int32)  # [N, H, W]
    for i in range(len(images)):
        out[i] = _slic_one(images[i], valid[i], int(n_pixels), compactness)
    return out


# --------------------------------------------------------------------------- cache


def _fingerprint(images: np.ndarray, valid: np.ndarray | None, n_pixels: int, compactness: float) -> str:
    """Hash of what the segmentation depends on."""
    h = hashlib.sha256(f"v{_CACHE_VERSION}|{images.shape}|{images.dtype}|{n_pixels}|{compactness!r}".encode())
    h.update(np.ascontiguousarray(images).tobytes())
    if valid is not None:
        h.update(np.packbits(np.asarray(valid, dtype=bool)).tobytes())
    return h.hexdigest()


def save_superpixels(path: str | Path, segments: np.ndarray, fingerprint: str = "") -> None:
    """Write segment ids to a compressed ``.npz``, atomically.

    Args:
        path: destination file; its folder is created when missing.
        segments: segment ids, int ``[N, H, W]``, ``-1`` on padding.
        fingerprint: what they were computed from (see :func:`cached_superpixels`).
    """
    buf = io.BytesIO()
    np.savez_compressed(buf, segments=np.asarray(segments, dtype=np.int32), fingerprint=np.array(fingerprint))
    atomic_write_bytes(path, buf.getvalue())


def load_superpixels(path: str | Path) -> tuple[np.ndarray, str]:
    """Read what :func:`save_superpixels` wrote.

    Args:
        path: the ``.npz`` file.

    Returns:
        ``(segments, fingerprint)``: int32 ``[N, H, W]`` ids and the stored fingerprint.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: when the file is damaged (truncated, corrupt) or not a superpixel file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such superpixel file")
    try:
        with open(path, "rb") as fh, np.load(fh) as z:  # own handle: np.load leaks its own on a bad zip
            arrays = {k: z[k] for k in z.files}  # a plain .npy has no context manager: TypeError
    except Exception as err:  # noqa: BLE001 - zipfile, zlib, numpy and OS errors all mean "cannot be read"
        raise ValueError(f"{path} cannot be read ({type(err).__name__}); delete it and let the superpixels be "
                         "recomputed") from None
    if "segments" not in arrays:
        raise ValueError(f"{path} holds no superpixels; delete it and let them be recomputed")
    return arrays["segments"].astype(np.int32), str(arrays["fingerprint"]) if "fingerprint" in arrays else ""


def cached_superpixels(path: str | Path, images: np.ndarray, n_pixels: int, compactness: float = 40.0,
                       valid: np.ndarray | None = None) -> np.ndarray:
    """:func:`compute_superpixels`, read from ``path`` when it was computed from the same inputs.

    The file stores a hash of the images, valid mask, ``n_pixels`` and ``compactness``; when any of
    them differ (or the file is missing or damaged) the segments are recomputed and the file
    rewritten. That is safe because SLIC is deterministic: the recomputed segments are the ones the
    file held.

    Args:
        path: cache file (``.npz``), e.g. ``<run folder>/superpixels.npz``.
        images: RGB images, ``[N, H, W, 3]``, uint8.
        n_pixels: wanted segment area, pixels.
        compactness: SLIC compactness, > 0.
        valid: ``False`` on padding, bool ``[N, H, W]``; ``None`` = all valid.

    Returns:
        Segment ids, int32 ``[N, H, W]`` (see :func:`compute_superpixels`).

    Raises:
        ValueError: as :func:`compute_superpixels`.
    """
    images, _ = _check_images(images, valid)
    _check_segment_size(n_pixels, compactness, images.shape[1], images.shape[2])
    key = _fingerprint(images, valid, int(n_pixels), float(compactness))
    if Path(path).exists():
        try:
            segments, stored = load_superpixels(path)
        except ValueError:  # damaged: recomputed below, with the same result
            segments, stored = np.zeros(0, np.int32), ""
        if stored == key and segments.shape == images.shape[:3]:
            return segments
    segments = compute_superpixels(images, n_pixels, compactness, valid)
    save_superpixels(path, segments, key)
    return segments


# --------------------------------------------------------------------------- scores


def _as_segments(segments: np.ndarray | Tensor, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Validated integer ``[N, H, W]`` segment ids (of ``shape`` when given)."""
    if isinstance(segments, Tensor):
        segments = segments.detach().cpu().numpy()
    segments = np.asarray(segments)
    if not np.issubdtype(segments.dtype, np.integer) or segments.ndim != 3:
        raise ValueError(f"segments must be integer ids [N, H, W], got {segments.dtype} {segments.shape}")
    if shape is not None and segments.shape != shape:
        raise ValueError(f"segments {segments.shape} must have the shape of scores {shape}")
    if segments.size and segments.min() < -1:
        raise ValueError("segment ids must be >= 0 (or -1 on padding); use compute_superpixels")
    return segments


def _unlabelled(segments: np.ndarray, labelled: np.ndarray | Tensor | None) -> np.ndarray:
    """Bool ``[N, H, W]``: pixels of some segment that are not labelled yet."""
    open_ = segments >= 0  # [N, H, W]
    if labelled is not None:
        open_ &= ~_as_mask(labelled, segments.shape)
    return open_


def _per_segment(segments: np.ndarray, open_: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """Per-image ``np.bincount`` of ``weights`` (or pixel counts) over open pixels: ``[N, S_max]``."""
    s_max = int(segments.max(initial=-1)) + 1
    out = np.zeros((segments.shape[0], s_max), dtype=np.float64)  # [N, S_max]
    for i in range(segments.shape[0]):  # one bincount per image keeps memory at one image
        w = None if weights is None else weights[i][open_[i]]
        out[i] = np.bincount(segments[i][open_[i]], weights=w, minlength=s_max)
    return out


def segment_pixels(segments: np.ndarray | Tensor, labelled: np.ndarray | Tensor | None = None) -> np.ndarray:
    """Unlabelled pixels of every segment (what picking it costs).

    Args:
        segments: segment ids, int ``[N, H, W]``, ``-1`` on padding.
        labelled: ``True`` where a pixel is already labelled, bool ``[N, H, W]``; ``None`` = none.

    Returns:
        Counts, int64 ``[N, S_max]`` with ``S_max = segments.max() + 1``; 0 for ids an image lacks.

    Raises:
        ValueError: malformed ``segments`` or ``labelled``.
    """
    segments = _as_segments(segments)
    return _per_segment(segments, _unlabelled(segments, labelled), None).astype(np.int64)


def superpixel_scores(scores: Tensor | np.ndarray, segments: np.ndarray | Tensor,
                      labelled: np.ndarray | Tensor | None = None, reduce: str = "sum") -> np.ndarray:
    """Score of every superpixel: sum (or mean) of its pixel scores, labelled pixels scoring 0.

    ``reduce="mean"`` divides the sum by the segment's *unlabelled* pixels, the pixels a pick adds:
    score per pixel of budget, independent of segment size. A segment with no unlabelled pixel
    scores 0 either way.

    Args:
        scores: per-pixel scores, ``[N, H, W]``, finite (>= 0 for every acquisition function).
        segments: segment ids, int ``[N, H, W]``, ``-1`` on padding (ignored).
        labelled: ``True`` where a pixel is already labelled, bool ``[N, H, W]``; ``None`` = none.
        reduce: ``"sum"`` or ``"mean"``.

    Returns:
        Segment scores, float64 ``[N, S_max]``, entry ``[n, s]`` for ``segments[n] == s``; 0 for ids
        an image lacks.

    Raises:
        ValueError: malformed or non-finite ``scores``, mismatched ``segments``/``labelled``,
            unknown ``reduce``.
    """
    if reduce not in SUPERPIXEL_REDUCTIONS:
        raise ValueError(f"reduce must be one of {', '.join(SUPERPIXEL_REDUCTIONS)}, got {reduce!r}")
    scores = _as_scores(scores)
    segments = _as_segments(segments, scores.shape)
    open_ = _unlabelled(segments, labelled)  # [N, H, W]
    sums = _per_segment(segments, open_, scores)  # [N, S_max]
    if not np.isfinite(sums).all():
        raise ValueError("scores contain NaN or infinity; check the model's predictions")
    if reduce == "sum":
        return sums
    counts = _per_segment(segments, open_, None)  # [N, S_max]
    return np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)


# --------------------------------------------------------------------------- selection


def _segments_near(segments: np.ndarray, segment: int, distance: int) -> np.ndarray:
    """Ids of the segments of one image ``[H, W]`` with a pixel within ``distance`` of ``segment``.

    Distance is Chebyshev (a square neighbourhood): the pick is dilated by a ``2d+1`` square,
    restricted to its bounding box grown by ``d``.
    """
    where = segments == segment  # [H, W]
    rows, cols = np.flatnonzero(where.any(1)), np.flatnonzero(where.any(0))
    box = (slice(max(rows[0] - distance, 0), rows[-1] + distance + 1),
           slice(max(cols[0] - distance, 0), cols[-1] + distance + 1))
    near = ndimage.maximum_filter(where[box].view(np.uint8), size=2 * distance + 1, mode="constant") > 0
    ids = np.unique(segments[box][near])
    return ids[ids >= 0]


def _candidate_order(value: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Flat ``[N * S_max]`` indices of segments with cost > 0, best score first, ties lowest index."""
    cand = np.flatnonzero(cost.ravel() > 0)
    return cand[np.lexsort((cand, -value.ravel()[cand]))]


def select_superpixels(scores: Tensor | np.ndarray, segments: np.ndarray | Tensor, budget_pixels: int,
                       labelled: np.ndarray | Tensor | None = None, reduce: str = "sum",
                       max_per_image: int | None = None, min_distance: int = 0) -> list[SuperpixelPick]:
    """The best superpixels of the pool whose unlabelled pixels fit ``budget_pixels``.

    Greedy by score (best first, ties to the lowest (image, segment)). A segment costs its
    unlabelled pixels only. A segment that does not fit the budget left is skipped and the next one
    tried, until none fits: the budget is never exceeded, and may be left partly unspent (at most
    by the size of the smallest unpicked segment, when no diversity rule is on). Segments with no
    unlabelled pixel are never picked.

    Args:
        scores: per-pixel scores, ``[N, H, W]``, finite.
        segments: segment ids, int ``[N, H, W]``, ``-1`` on padding.
        budget_pixels: most unlabelled pixels a step may add, >= 0
            (e.g. ``regions_per_step * region_size ** 2``).
        labelled: ``True`` where a pixel is already labelled, bool ``[N, H, W]``; ``None`` = none.
        reduce: segment score, ``"sum"`` or ``"mean"`` (see :func:`superpixel_scores`).
        max_per_image: at most this many picks per image in this step; ``None`` = no cap.
        min_distance: at least this many pixel rows or columns lie between two picks of one image
            (the Chebyshev distance of their nearest pixels exceeds it; the same rule as
            :func:`alseg_utils.regions.select_regions`); 0 = adjacent segments allowed.

    Returns:
        The picks, best first; their ``pixels`` sum to at most ``budget_pixels``.

    Raises:
        ValueError: malformed inputs, ``budget_pixels`` < 0, bad diversity settings.
    """
    _check_budget(budget_pixels, max_per_image, min_distance)
    value = superpixel_scores(scores, segments, labelled, reduce)  # [N, S_max]
    return select_segments(value, segments, budget_pixels, labelled, max_per_image, min_distance)


def select_segments(values: np.ndarray | Tensor, segments: np.ndarray | Tensor, budget_pixels: int,
                    labelled: np.ndarray | Tensor | None = None, max_per_image: int | None = None,
                    min_distance: int = 0, max_picks: int | None = None) -> list[SuperpixelPick]:
    """The search of :func:`select_superpixels` on scores given per segment instead of per pixel.

    Greedy by value under the pixel budget, with the same rules (a segment costs its unlabelled
    pixels; one that does not fit the budget left is skipped; segments with no unlabelled pixel are
    never picked; ties to the lowest (image, segment)). With one independent uniform draw per
    segment as ``values`` (the Random baseline) each pick is uniform among the segments that still
    fit the budget (and the diversity rule): the walk goes best first and the budget only shrinks,
    so a segment skipped once never fits later.

    Args:
        values: segment scores, ``[N, S_max]`` with ``S_max = segments.max() + 1``, finite.
        segments: segment ids, int ``[N, H, W]``, ``-1`` on padding.
        budget_pixels: most unlabelled pixels a step may add, >= 0.
        labelled: ``True`` where a pixel is already labelled, bool ``[N, H, W]``; ``None`` = none.
        max_per_image: at most this many picks per image in this step; ``None`` = no cap.
        min_distance: pixel rows or columns kept free between two picks of one image, >= 0.
        max_picks: stop after this many picks (:func:`select_segment_count`); None = no limit.

    Returns:
        The picks, best first; their ``pixels`` sum to at most ``budget_pixels``.

    Raises:
        ValueError: ``values`` of the wrong shape or not finite, malformed ``segments`` or
            ``labelled``, ``budget_pixels`` < 0, bad diversity settings.
    """
    _check_budget(budget_pixels, max_per_image, min_distance)
    segments = _as_segments(segments)
    cost = segment_pixels(segments, labelled)  # [N, S_max]
    value = np.asarray(values.detach().cpu().numpy() if isinstance(values, Tensor) else values, dtype=np.float64)
    if value.shape != cost.shape:
        raise ValueError(f"values {value.shape} must be [N, S_max] = {cost.shape}: one score per segment id")
    if not np.isfinite(value).all():
        raise ValueError("segment values contain NaN or infinity; check the model's predictions")
    return _greedy_budget(value, cost, segments, int(budget_pixels), max_per_image, int(min_distance), max_picks)


def select_segment_count(values: np.ndarray | Tensor, segments: np.ndarray | Tensor, count: int,
                         labelled: np.ndarray | Tensor | None = None, max_per_image: int | None = None,
                         min_distance: int = 0) -> list[SuperpixelPick]:
    """The ``count`` best segments with unlabelled pixels: :func:`select_segments` with a count budget.

    A budget in clicks (one class per segment, whatever its size) instead of pixels: greedy by
    value, ties to the lowest (image, segment), the same diversity rules, segments with no
    unlabelled pixel never picked. With one uniform draw per segment as ``values`` (Random) the
    picks are a uniform sample without replacement of the allowed segments.

    Args:
        values: segment scores, ``[N, S_max]`` with ``S_max = segments.max() + 1``, finite.
        segments: segment ids, int ``[N, H, W]``, ``-1`` on padding.
        count: most segments a step takes, >= 0.
        labelled: ``True`` where a pixel is already labelled, bool ``[N, H, W]``; ``None`` = none.
        max_per_image: at most this many picks per image in this step; ``None`` = no cap.
        min_distance: pixel rows or columns kept free between two picks of one image, >= 0.

    Returns:
        At most ``count`` picks, best first (fewer when fewer segments are allowed).

    Raises:
        ValueError: as :func:`select_segments`, or ``count`` < 0.
    """
    if not isinstance(count, (int, np.integer)) or isinstance(count, bool) or count < 0:
        raise ValueError(f"count (segments per step) must be an integer >= 0, got {count!r}")
    segments = _as_segments(segments)
    unlimited = int(np.count_nonzero(segments >= 0))  # every pixel fits: only the count limits
    return select_segments(values, segments, unlimited, labelled, max_per_image, min_distance, max_picks=int(count))


def _check_budget(budget_pixels: int, max_per_image: int | None, min_distance: int) -> None:
    if not isinstance(budget_pixels, (int, np.integer)) or isinstance(budget_pixels, bool) or budget_pixels < 0:
        raise ValueError(f"budget_pixels must be an integer >= 0, got {budget_pixels!r}")
    _check_diversity(max_per_image, min_distance)


def _greedy_budget(value: np.ndarray, cost: np.ndarray, segments: np.ndarray, budget: int,
                   max_per_image: int | None, min_distance: int, max_picks: int | None = None
                   ) -> list[SuperpixelPick]:
    """Walk the candidates best first, taking each that fits the budget and the diversity rule
    (at most ``max_picks`` of them when given)."""
    order = _candidate_order(value, cost)  # [K]
    costs = cost.ravel()[order]  # [K]
    cheapest_after = np.minimum.accumulate(costs[::-1])[::-1] if order.size else costs  # [K]
    s_max = cost.shape[1]
    per_image = np.zeros(cost.shape[0], dtype=np.int64)
    blocked = np.zeros(cost.shape, dtype=bool)  # [N, S_max] too close to an earlier pick
    picks: list[SuperpixelPick] = []
    for k, flat in enumerate(order):
        if budget < cheapest_after[k] or (max_picks is not None and len(picks) >= max_picks):
            break  # nothing left fits, or the step has its picks
        i, s = divmod(int(flat), s_max)
        if costs[k] > budget or blocked[i, s] or (max_per_image is not None and per_image[i] >= max_per_image):
            continue
        picks.append(SuperpixelPick(i, s, int(costs[k]), float(value[i, s])))
        budget -= int(costs[k])
        per_image[i] += 1
        if min_distance > 0:
            blocked[i, _segments_near(segments[i], s, min_distance)] = True
    return picks


def superpixel_mask(picks: list[SuperpixelPick], segments: np.ndarray | Tensor,
                    labelled: np.ndarray | Tensor | None = None) -> np.ndarray:
    """Pixels the picks cover: the union of the chosen segments (minus labelled pixels).

    Args:
        picks: what :func:`select_superpixels` returned for ``segments``.
        segments: segment ids, int ``[N, H, W]``, ``-1`` on padding.
        labelled: ``True`` where a pixel is already labelled, bool ``[N, H, W]``; these are left
            out of the mask. ``None`` = keep every pixel of the chosen segments.

    Returns:
        Bool ``[N, H, W]``, ``True`` on the acquired pixels; with ``labelled`` its sum equals the
        picks' ``pixels`` total.

    Raises:
        ValueError: a pick names an image or segment that ``segments`` lacks.
    """
    segments = _as_segments(segments)
    n, s_max = segments.shape[0], int(segments.max(initial=-1)) + 1
    chosen = np.zeros((n, s_max + 1), dtype=bool)  # [N, S_max + 1]; id -1 (padding) reads the last column
    for p in picks:
        if not (0 <= p.image < n and 0 <= p.segment < s_max):
            raise ValueError(f"{p} is not a segment of a pool of {n} images with {s_max} segment ids")
        chosen[p.image, p.segment] = True
    mask = np.zeros(segments.shape, dtype=bool)  # [N, H, W]
    for i in np.unique([p.image for p in picks]).astype(int):
        mask[i] = chosen[i][segments[i]]  # [H, W] lookup of each pixel's segment
    if labelled is not None:
        mask &= ~_as_mask(labelled, segments.shape)
    return mask
