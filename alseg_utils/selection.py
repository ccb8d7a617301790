"""Labelling units: how a strategy turns pixel scores into what one step labels.

Three strategies label three kinds of unit: whole images (Alg. 1, :class:`FullImages`), square
windows (Alg. 2, :class:`Windows`) and SLIC superpixels under the windows' pixel budget
(:class:`Superpixels`), or, labelled with one dominant class each, under the windows' budget in
clicks (:class:`DominantSuperpixels`). Each is a :class:`UnitStrategy` and answers the same three
questions, so the loop (:class:`~alseg_utils.active.ActiveRun`) never asks which one it runs:

- which pool images hold a unit still to label (:meth:`UnitStrategy.candidates`; MC dropout
  scores only those);
- the *reduction* of pixel scores ``[K, H, W]`` to one score per unit (:meth:`UnitStrategy.reduce`:
  image sums, window sums, segment sums or means), as baal's heuristics reduce a sample's pixel
  uncertainties; the Random baseline replaces it by one uniform draw per unit
  (:func:`random_unit_scores`), so that every unit a step may take is equally likely whatever its
  size;
- which units to take, given their scores (:meth:`UnitStrategy.choose`: the best ``M`` images, the
  greedy non-overlapping windows, the greedy segments under the budget).

The answer is a :class:`Selection`, in pool indices: the images and regions the oracle labels,
the acquired pixels, and (:class:`SuperpixelSelection`) the chosen segments.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
import torch
from skimage.measure import label as connected_components
from torch import Tensor

from alseg_utils.config import STRATEGIES, UNLABELLED, ActiveConfig
from alseg_utils.costs import clicks_per_window
from alseg_utils.labels import LabelStore
from alseg_utils.regions import Region, region_origins, region_scores, select_windows
from alseg_utils.superpixels import (
    SuperpixelPick,
    select_segment_count,
    select_segments,
    superpixel_mask,
    superpixel_scores,
)
from alseg_utils.uncertainty import image_scores


@dataclass(frozen=True, eq=False)
class Selection:
    """What one acquisition step chose to label.

    Attributes:
        candidates: pool indices of the K images that were scored (axis K of ``acquired``).
        images: pool indices of the images to label: best first for whole images, ascending when
            regions are labelled.
        acquired: the pixels this step adds, bool ``[K, H, W]`` (never labelled or padding pixels).
        regions: the windows to label (superpixels: each segment's bounding box), in pool
            indices; empty when whole images are labelled.
        region_masks: superpixels only: one bool ``[height, width]`` patch per region, the
            segment's pixels to label inside its box; empty for whole images and square windows.
        class_answers: True when the oracle answers one class per region (dominant-class
            superpixels) instead of every pixel's label.
    """

    candidates: list[int]
    images: list[int]
    acquired: np.ndarray
    regions: list[Region] = field(default_factory=list)
    region_masks: list[np.ndarray] = field(default_factory=list)
    class_answers: bool = False

    @property
    def whole_images(self) -> bool:
        """Whether whole images are labelled (no regions)."""
        return not self.regions

    @property
    def pixels(self) -> int:
        """Pixels this step adds."""
        return int(self.acquired.sum())

    def local(self, images: list[int]) -> list[int]:
        """Positions of pool ``images`` among the candidates (axis K of the step's score maps)."""
        return [self.candidates.index(i) for i in images]

    def fields(self) -> dict[str, Any]:
        """What a step record keeps of the choice (JSON: ``images``, ``regions`` as [image, top, left, h, w])."""
        return {"images": list(self.images), "regions": [[r.image, r.top, r.left, r.height, r.width]
                                                         for r in self.regions]}

    def arrays(self, shown: int) -> dict[str, np.ndarray]:
        """What the selection file keeps of the choice: ``regions`` [R, 5] int64.

        Args:
            shown: how many of ``images`` the file shows (their maps are kept by the loop).
        """
        return {"regions": np.array(self.fields()["regions"], dtype=np.int64).reshape(-1, 5)}


@dataclass(frozen=True, eq=False, kw_only=True)
class SuperpixelSelection(Selection):
    """A :class:`Selection` of superpixels: the regions are the chosen segments' bounding boxes.

    Attributes:
        picks: the chosen segments, best first (``image`` a pool index).
        segments: segment ids of every pool image, int32 ``[N, H, W]`` (-1 on padding).
    """

    picks: list[SuperpixelPick]
    segments: np.ndarray

    def fields(self) -> dict[str, Any]:
        """:meth:`Selection.fields` and ``superpixels``: [image, segment, pixels] per pick."""
        return {**super().fields(), "superpixels": [[p.image, p.segment, p.pixels] for p in self.picks]}

    def arrays(self, shown: int) -> dict[str, np.ndarray]:
        """:meth:`Selection.arrays`, ``shown_segments`` [S, H, W] int32 of the first ``shown`` images and
        ``superpixels`` [P, 3] int64."""
        return {**super().arrays(shown), "shown_segments": self.segments[self.images[:shown]],
                "superpixels": np.array(self.fields()["superpixels"], dtype=np.int64).reshape(-1, 3)}


def random_unit_scores(shape: int | tuple[int, ...], generator: torch.Generator) -> np.ndarray:
    """The Random baseline's scores of labelling units: one independent uniform draw per unit.

    Taking the best allowed unit, again and again, by these scores draws units uniformly without
    replacement among those a step may take: images (full), windows not made only of labelled or
    padding pixels (region), segments with unlabelled pixels that fit the budget left (superpixel).

    Args:
        shape: units, e.g. ``K`` images, ``(K, nh, nw)`` windows or ``(K, S_max)`` segments.
        generator: the step's CPU generator (reproducible by seed).

    Returns:
        Scores of ``shape``, float64 in [0, 1).
    """
    return torch.rand(shape, generator=generator, dtype=torch.float64).numpy()


class UnitStrategy(ABC):
    """How one strategy scores and chooses its labelling units (see the module docstring).

    Subclasses implement :meth:`unit_shape`, :meth:`reduce` and :meth:`choose`; :meth:`select`
    chains them. Every method takes the K candidate images' arrays and their pool indices.
    """

    whole_images: ClassVar[bool] = False  # whether the units are whole images (the restarts of Alg. 1)

    @classmethod
    @abstractmethod
    def from_config(cls, active: ActiveConfig, segments: Callable[[], np.ndarray]) -> UnitStrategy:
        """The unit of ``active`` (``segments`` returns the pool's superpixels when a unit needs them)."""

    def candidates(self, store: LabelStore) -> list[int]:
        """Pool images with a pixel left to label (neither labelled nor padding), ascending."""
        done = (store.labelled() | ~store.valid).all(axis=(1, 2))  # [N]
        return [int(i) for i in np.flatnonzero(~done)]

    def select(self, scores: Tensor, candidates: list[int], labelled: np.ndarray,
               generator: torch.Generator | None = None) -> Selection | None:
        """The units to label this step, by the reduced pixel scores or (Random) by uniform draws.

        Args:
            scores: pixel scores of the candidates, ``[K, H, W]``, finite, 0 on padding.
            candidates: their pool indices (K of them).
            labelled: True where a candidate's pixel is labelled already or padding, bool ``[K, H, W]``.
            generator: the Random baseline's CPU generator: one uniform draw per unit replaces the
                reduction; None to rank the units by their reduced scores.

        Returns:
            The selection; None when no unit can be chosen.

        Raises:
            ValueError: ``scores``, ``candidates`` and ``labelled`` do not describe the same K images.
        """
        if tuple(scores.shape) != labelled.shape or scores.ndim != 3 or len(candidates) != scores.shape[0]:
            raise ValueError(f"scores {tuple(scores.shape)}, labelled {labelled.shape} and {len(candidates)} "
                             "candidates must describe the same [K, H, W] images")
        if generator is None:
            values = self.reduce(scores, candidates, labelled)
        else:
            values = random_unit_scores(self.unit_shape(candidates, labelled), generator)
        return self.choose(values, candidates, labelled)

    @abstractmethod
    def unit_shape(self, candidates: list[int], labelled: np.ndarray) -> tuple[int, ...]:
        """Shape of the unit scores of the K candidates (what :meth:`reduce` returns)."""

    @abstractmethod
    def reduce(self, scores: Tensor, candidates: list[int], labelled: np.ndarray) -> np.ndarray:
        """Pixel scores ``[K, H, W]`` to unit scores of :meth:`unit_shape`, float64; labelled pixels count 0."""

    @abstractmethod
    def choose(self, values: np.ndarray, candidates: list[int], labelled: np.ndarray) -> Selection | None:
        """The units to label given their scores ``values`` (None when none can be chosen)."""


@dataclass(frozen=True)
class FullImages(UnitStrategy):
    """Alg. 1: the ``m`` images with the largest sums of pixel scores.

    Attributes:
        m: images per step (M).
    """

    m: int
    whole_images: ClassVar[bool] = True

    @classmethod
    def from_config(cls, active: ActiveConfig, segments: Callable[[], np.ndarray]) -> FullImages:
        """The unit of ``active.strategy == "full"`` (``segments`` is not used)."""
        return cls(active.images_per_step)

    def candidates(self, store: LabelStore) -> list[int]:
        """Pool images with no labelled pixel, ascending."""
        return store.unlabelled_images()

    def unit_shape(self, candidates: list[int], labelled: np.ndarray) -> tuple[int, ...]:
        """``(K,)``: one unit per image."""
        return (len(candidates),)

    def reduce(self, scores: Tensor, candidates: list[int], labelled: np.ndarray) -> np.ndarray:
        """Image sums of pixel scores, ``[K]`` (:func:`~alseg_utils.uncertainty.image_scores`)."""
        return image_scores(scores, labelled).numpy()

    def choose(self, values: np.ndarray, candidates: list[int], labelled: np.ndarray) -> Selection | None:
        """The ``m`` best images, best first; ties go to the lowest pool index."""
        order = np.argsort(-values, kind="stable")[: self.m]  # [M]
        if not order.size:
            return None
        acquired = np.zeros(labelled.shape, bool)  # [K, H, W]
        acquired[order] = ~labelled[order]
        return Selection(list(candidates), [candidates[int(k)] for k in order], acquired)


@dataclass(frozen=True)
class Windows(UnitStrategy):
    """Alg. 2: ``m`` non-overlapping square windows, greedy by window sum (:mod:`alseg_utils.regions`).

    Attributes:
        size: window side, pixels.
        stride: step between windows, pixels.
        m: windows per step (M).
        max_per_image: at most this many windows per image and step; None = no cap.
        min_distance: pixels kept free between two windows of one image.
    """

    size: int
    stride: int
    m: int
    max_per_image: int | None = None
    min_distance: int = 0

    @classmethod
    def from_config(cls, active: ActiveConfig, segments: Callable[[], np.ndarray]) -> Windows:
        """The unit of ``active.strategy == "region"`` (``segments`` is not used)."""
        return cls(active.region_size, active.region_stride, active.regions_per_step,
                   active.max_per_image or None, active.min_distance)

    def unit_shape(self, candidates: list[int], labelled: np.ndarray) -> tuple[int, ...]:
        """``(K, nh, nw)``: the windows of :func:`~alseg_utils.regions.region_origins`."""
        height, width = labelled.shape[1:]
        tops, lefts = region_origins(height, width, self.size, self.stride)
        return len(candidates), len(tops), len(lefts)

    def reduce(self, scores: Tensor, candidates: list[int], labelled: np.ndarray) -> np.ndarray:
        """Window sums, ``[K, nh, nw]`` (:func:`~alseg_utils.regions.region_scores`)."""
        return region_scores(np.where(labelled, 0, np.asarray(scores)), self.size, self.stride).numpy()

    def choose(self, values: np.ndarray, candidates: list[int], labelled: np.ndarray) -> Selection | None:
        """Greedy non-overlapping windows (:func:`~alseg_utils.regions.select_windows`)."""
        local = select_windows(values, labelled.shape[1:], self.size, self.stride, self.m, labelled=labelled,
                               max_per_image=self.max_per_image, min_distance=self.min_distance)
        if not local:
            return None
        acquired = np.zeros(labelled.shape, bool)  # [K, H, W]
        for r in local:
            acquired[(r.image, *r.slices)] = True
        acquired &= ~labelled
        regions = [Region(candidates[r.image], r.top, r.left, r.height, r.width) for r in local]
        return Selection(list(candidates), sorted({r.image for r in regions}), acquired, regions)


class Superpixels(UnitStrategy):
    """SLIC segments under a pixel budget, greedy by segment score (:mod:`alseg_utils.superpixels`).

    The oracle is asked for each segment's bounding box with the segment's mask; only the segment's
    unlabelled pixels are stored (and counted).

    Args:
        segments: returns the segment ids of every pool image, int32 ``[N, H, W]`` (-1 on padding);
            called once, when first needed (the run folder caches them).
        budget: most unlabelled pixels a step may add.
        reduce: segment score, ``"sum"`` or ``"mean"`` of its unlabelled pixels' scores.
        max_per_image: at most this many segments per image and step; None = no cap.
        min_distance: pixels kept free between two segments of one image.
    """

    class_answers: ClassVar[bool] = False  # whether the oracle answers one class per segment

    def __init__(self, segments: Callable[[], np.ndarray], budget: int, reduce: str = "sum",
                 max_per_image: int | None = None, min_distance: int = 0) -> None:
        self._load_segments = segments
        self.budget, self.reduction = budget, reduce
        self.max_per_image, self.min_distance = max_per_image, min_distance

    @classmethod
    def from_config(cls, active: ActiveConfig, segments: Callable[[], np.ndarray]) -> Superpixels:
        """The unit of ``active.strategy == "superpixel"``."""
        return cls(segments, active.pixel_budget(), active.superpixel_reduce, active.max_per_image or None,
                   active.min_distance)

    @cached_property
    def pool_segments(self) -> np.ndarray:
        """Segment ids of every pool image, int32 ``[N, H, W]`` (-1 on padding)."""
        return self._load_segments()

    def unit_shape(self, candidates: list[int], labelled: np.ndarray) -> tuple[int, ...]:
        """``(K, S_max)``: one unit per segment id of the candidates."""
        return len(candidates), int(self.pool_segments[candidates].max(initial=-1)) + 1

    def reduce(self, scores: Tensor, candidates: list[int], labelled: np.ndarray) -> np.ndarray:
        """Segment sums or means, ``[K, S_max]`` (:func:`~alseg_utils.superpixels.superpixel_scores`)."""
        return superpixel_scores(scores, self.pool_segments[candidates], labelled, self.reduction)

    def pick(self, values: np.ndarray, segments: np.ndarray, labelled: np.ndarray) -> list[SuperpixelPick]:
        """Greedy segments under the pixel budget (:func:`~alseg_utils.superpixels.select_segments`).

        Args:
            values: segment scores of the K candidates, ``[K, S_max]``.
            segments: their segment ids, int32 ``[K, H, W]``.
            labelled: True where a candidate's pixel is labelled already or padding, bool ``[K, H, W]``.
        """
        return select_segments(values, segments, self.budget, labelled=labelled,
                               max_per_image=self.max_per_image, min_distance=self.min_distance)

    def choose(self, values: np.ndarray, candidates: list[int], labelled: np.ndarray) -> Selection | None:
        """The segments of :meth:`pick`, each as its bounding box and its unlabelled pixels in it."""
        segments = self.pool_segments[candidates]  # [K, H, W]
        picks = self.pick(values, segments, labelled)
        if not picks:
            return None
        regions, masks = [], []
        for p in picks:
            inside = (segments[p.image] == p.segment) & ~labelled[p.image]  # [H, W]
            rows, cols = np.flatnonzero(inside.any(1)), np.flatnonzero(inside.any(0))
            box = Region(candidates[p.image], int(rows[0]), int(cols[0]), int(rows[-1] - rows[0] + 1),
                         int(cols[-1] - cols[0] + 1))
            regions.append(box)
            masks.append(inside[box.slices])
        return SuperpixelSelection(
            list(candidates), sorted({r.image for r in regions}), superpixel_mask(picks, segments, labelled=labelled),
            regions, masks, class_answers=self.class_answers,
            picks=[SuperpixelPick(candidates[p.image], p.segment, p.pixels, p.score) for p in picks],
            segments=self.pool_segments)


def initial_images(store: LabelStore) -> list[int]:
    """The images labelled whole at step 0: every real pixel carries a contour label.

    In a dominant-class run this is exactly the initial set: whole images get contour labels on
    every real pixel, dominant-class segments never get any (see :mod:`alseg_utils.labels`).

    Returns:
        Their indices, ascending.
    """
    whole = ((store.contours != UNLABELLED) | ~store.valid).all(axis=(1, 2)) & store.valid.any(axis=(1, 2))  # [N]
    return [int(i) for i in np.flatnonzero(whole)]


def segments_per_step(store: LabelStore, active: ActiveConfig) -> int:
    """Dominant-class superpixels per step whose click cost matches the square strategy's step.

    ``regions_per_step x clicks_per_window``, rounded to the nearest integer (halves up) and at
    least 1, where ``clicks_per_window`` (:func:`alseg_utils.costs.clicks_per_window`) is the mean
    polygon-click cost of one square window (``region_size``, ``region_stride``) on the initial
    images' labels: objects are their 8-connected components, as ingest derives them from a mask
    answer. It reads no ground truth of the pool, and depends on the initial set only, so it is the
    same at every step and on every resume, with the simulated oracle or a person's answers.

    Args:
        store: the run's labels; its initial images (:func:`initial_images`) are used.
        active: ``regions_per_step``, ``region_size``, ``region_stride``.

    Returns:
        Segments per step, >= 1.

    Raises:
        ValueError: the store has no whole labelled image to measure clicks on.
    """
    idx = initial_images(store)
    if not idx:
        raise ValueError("no fully labelled image to measure the click cost of a square window on")
    objects = (store.labels[idx] == 1) & store.valid[idx]  # [I, H, W]
    instances = np.stack([connected_components(o, connectivity=2) for o in objects]).astype(np.int32)  # [I, H, W]
    clicks = clicks_per_window(instances, store.valid[idx], active.region_size, active.region_stride)
    return max(1, int(np.floor(active.regions_per_step * float(clicks) + 0.5)))


class DominantSuperpixels(Superpixels):
    """SLIC segments labelled with one class each, a number of them per step (Cai et al. 2021).

    The oracle answers one class per segment (:meth:`~alseg_utils.oracle.Oracle.label_segments`)
    and every unlabelled pixel of the segment gets it. One answer is one click, whatever the
    segment's size, so a step takes ``count`` segments, greedy by score
    (:func:`~alseg_utils.superpixels.select_segment_count`), instead of filling a pixel budget.

    Args:
        segments: returns the segment ids of every pool image, int32 ``[N, H, W]`` (-1 on padding).
        count: segments per step; None = :func:`segments_per_step` of ``active``, computed on the
            first :meth:`candidates` call from the label store.
        active: the loop's settings (needed when ``count`` is None).
        reduce: segment score, ``"sum"`` or ``"mean"`` of its unlabelled pixels' scores.
        max_per_image: at most this many segments per image and step; None = no cap.
        min_distance: pixels kept free between two segments of one image.

    Raises:
        ValueError: neither ``count`` nor ``active`` is given.
    """

    class_answers: ClassVar[bool] = True

    def __init__(self, segments: Callable[[], np.ndarray], count: int | None = None,
                 active: ActiveConfig | None = None, reduce: str = "sum", max_per_image: int | None = None,
                 min_distance: int = 0) -> None:
        if count is None and active is None:
            raise ValueError("DominantSuperpixels needs a count of segments per step, or the config to derive it")
        super().__init__(segments, 0, reduce, max_per_image, min_distance)
        self.count, self._active = count, active

    @classmethod
    def from_config(cls, active: ActiveConfig, segments: Callable[[], np.ndarray]) -> DominantSuperpixels:
        """The unit of ``active.strategy == "superpixel"`` with ``superpixel_label == "dominant"``."""
        return cls(segments, None, active, active.superpixel_reduce, active.max_per_image or None,
                   active.min_distance)

    def candidates(self, store: LabelStore) -> list[int]:
        """Pool images with a pixel left to label; fixes :attr:`count` from ``store`` the first time."""
        if self.count is None and self._active is not None:
            self.count = segments_per_step(store, self._active)
        return super().candidates(store)

    def pick(self, values: np.ndarray, segments: np.ndarray, labelled: np.ndarray) -> list[SuperpixelPick]:
        """The :attr:`count` best segments (:func:`~alseg_utils.superpixels.select_segment_count`).

        Raises:
            ValueError: :attr:`count` is not known yet (:meth:`candidates` was not called).
        """
        if self.count is None:
            raise ValueError("the segments per step are derived from the label store: call candidates(store) first")
        return select_segment_count(values, segments, self.count, labelled=labelled,
                                    max_per_image=self.max_per_image, min_distance=self.min_distance)


UNIT_STRATEGIES: dict[str, type[UnitStrategy]] = dict(
    zip(STRATEGIES, (FullImages, Windows, Superpixels), strict=True))  # a new strategy name needs its unit


def unit_strategy(active: ActiveConfig, segments: Callable[[], np.ndarray]) -> UnitStrategy:
    """The labelling unit of ``active.strategy`` (:data:`UNIT_STRATEGIES`), built from the config.

    Superpixels with ``active.superpixel_label == "dominant"`` are :class:`DominantSuperpixels`.

    Args:
        active: the loop's settings.
        segments: returns the pool's superpixels, int32 ``[N, H, W]``; only the superpixel
            strategy calls it, when it first scores a step.

    Raises:
        ValueError: unknown strategy.
    """
    if active.strategy not in UNIT_STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(UNIT_STRATEGIES)}, got {active.strategy!r}")
    if active.strategy == "superpixel" and active.superpixel_label == "dominant":
        return DominantSuperpixels.from_config(active, segments)
    return UNIT_STRATEGIES[active.strategy].from_config(active, segments)


def shown_windows(selection: dict[str, np.ndarray], k: int) -> list[tuple[int, int, int, int]]:
    """The square windows a step chose in its ``k``-th shown image, for :func:`alseg_utils.plots.show_selection`.

    Args:
        selection: the stored arrays of a step (:meth:`~alseg_utils.run_folder.RunFolder.load_selection`).
        k: index into ``selection["shown_images"]``.

    Returns:
        ``(top, left, height, width)`` of each window in that image; empty for whole images and for
        superpixels (those are outlined by :func:`shown_superpixels`, not by their bounding boxes).
    """
    if "superpixels" in selection:
        return []
    image = int(selection["shown_images"][k])
    return [(int(t), int(l_), int(h), int(w)) for i, t, l_, h, w in selection["regions"] if int(i) == image]


def shown_superpixels(selection: dict[str, np.ndarray], k: int) -> np.ndarray | None:
    """The superpixels a step chose in its ``k``-th shown image, for :func:`alseg_utils.plots.show_selection`.

    Args:
        selection: the stored arrays of a step (:meth:`~alseg_utils.run_folder.RunFolder.load_selection`).
        k: index into ``selection["shown_images"]``.

    Returns:
        Int [H, W]: the segment id on the chosen segments' pixels, -1 elsewhere; None when the step
        chose square regions or whole images.
    """
    if "shown_segments" not in selection:
        return None
    segments = selection["shown_segments"][k]  # [H, W]
    image = int(selection["shown_images"][k])
    chosen = [int(s) for i, s, _ in selection["superpixels"] if int(i) == image]
    return np.where(np.isin(segments, chosen), segments, -1)
