"""The oracle: who answers an annotation request.

In simulation the oracle copies ground truth. A human annotation step implements the same
:class:`Oracle` protocol (see ``alseg export`` / ``alseg ingest``).

Three kinds of answer: whole images and regions get object and contour labels for every pixel;
dominant-class superpixels (``active.superpixel_label: dominant``, Cai et al. 2021) get one class
per segment, the majority of its real pixels (:func:`dominant_classes`), which the loop then
gives to every pixel of the segment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from alseg_utils.regions import Region

CLASS_NAMES = ("background", "object")
"""Names of the classes a dominant-class answer may give, by class index (0, 1)."""


@dataclass
class AnnotationRequest:
    """What the loop asks the oracle at one step, with what a human annotator needs to see.

    Attributes:
        step: the acquisition step (0 = the initial set).
        images: AL image indices of the request (whole images, or the images holding the regions).
        image_names: their file stems.
        regions: the windows to label; empty for whole images.
        region_masks: for superpixels, one bool [height, width] patch per region marking the
            segment inside its bounding box (only those pixels are kept); empty for square windows.
        scores: acquisition score maps of ``images``, [K, H, W] float32 (None at step 0).
        pseudo_object: the model's object prediction for ``images``, [K, H, W] uint8 (None at step 0).
        pseudo_contour: the model's contour prediction, [K, H, W] uint8 (None at step 0).
        class_answers: True when one class per region is asked (dominant-class superpixels,
            :meth:`Oracle.label_segments`) instead of its pixels' labels.
    """

    step: int
    images: list[int]
    image_names: list[str]
    regions: list[Region] = field(default_factory=list)
    region_masks: list[np.ndarray] = field(default_factory=list)
    scores: np.ndarray | None = None
    pseudo_object: np.ndarray | None = None
    pseudo_contour: np.ndarray | None = None
    class_answers: bool = False


class Oracle(Protocol):
    """Answers annotation requests for the AL training images."""

    def label_images(self, indices: Sequence[int], request: AnnotationRequest | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Object and contour labels of whole images, each [K, H, W] in {0, 1}."""
        ...

    def label_regions(self, regions: Sequence[Region], request: AnnotationRequest | None = None
                      ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Object and contour label patches, each [height, width] in {0, 1}, one per region."""
        ...

    def label_segments(self, regions: Sequence[Region], masks: Sequence[np.ndarray],
                       request: AnnotationRequest | None = None) -> np.ndarray:
        """One class per segment (its bounding box ``regions[r]``, its pixels ``masks[r]`` [height, width]
        bool): int64 [R] in {0 background, 1 object}."""
        ...


def dominant_classes(masks: np.ndarray, regions: Sequence[Region], areas: Sequence[np.ndarray],
                     valid: np.ndarray | None = None) -> np.ndarray:
    """The class of each segment that most of its real pixels have; a tie is background.

    A tie goes to background (class 0, as ``argmax`` of the class counts breaks it): an annotator
    answers "object" only when the object covers more than half of the segment.

    Args:
        masks: object masks holding the segments, [N, H, W] in {0, 1}.
        regions: R windows (each segment's bounding box), ``image`` indexing axis N.
        areas: R bool patches, each [height, width] of its window: the segment's pixels.
        valid: real (not padded) pixels, [N, H, W] bool; None = all real. Padding never votes.

    Returns:
        Classes, int64 [R] in {0, 1}.

    Raises:
        ValueError: a patch does not fit its window, or a segment has no real pixel.
    """
    out = np.zeros(len(regions), dtype=np.int64)  # [R]
    for r, (reg, area) in enumerate(zip(regions, areas, strict=True)):
        inside = np.asarray(area, dtype=bool)  # [h, w]
        if inside.shape != (reg.height, reg.width):
            raise ValueError(f"segment {r}: its mask {inside.shape} does not fit its window {reg.height}x{reg.width}")
        if valid is not None:
            inside = inside & valid[(reg.image, *reg.slices)]
        votes = int(inside.sum())
        if votes == 0:
            raise ValueError(f"segment {r} (image {reg.image}) has no real pixel to take a class from")
        objects = int((masks[(reg.image, *reg.slices)][inside] > 0).sum())
        out[r] = int(2 * objects > votes)  # strictly more than half: object
    return out


class SimulatedOracle:
    """An error-free annotator that copies ground truth (the paper's setting).

    Args:
        masks: ground-truth object masks of the AL training images, [N, H, W] in {0, 1}.
        contours: ground-truth contour targets, [N, H, W] in {0, 1}.
        valid: real (not padded) pixels, [N, H, W] bool; None = every pixel is real. Only
            :meth:`label_segments` uses it (padding never votes for a segment's class).
    """

    def __init__(self, masks: np.ndarray, contours: np.ndarray, valid: np.ndarray | None = None) -> None:
        if masks.shape != contours.shape:
            raise ValueError(f"masks {masks.shape} and contours {contours.shape} differ in shape")
        if valid is not None and valid.shape != masks.shape:
            raise ValueError(f"valid {valid.shape} and masks {masks.shape} differ in shape")
        self.masks = masks.astype(np.uint8)
        self.contours = contours.astype(np.uint8)
        self.valid = None if valid is None else valid.astype(bool)

    def label_images(self, indices: Sequence[int], request: AnnotationRequest | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Ground truth of whole images, each [K, H, W]."""
        idx = list(indices)
        return self.masks[idx], self.contours[idx]

    def label_regions(self, regions: Sequence[Region], request: AnnotationRequest | None = None
                      ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Ground truth inside each region, [height, width] each."""
        labels = [self.masks[(r.image, *r.slices)] for r in regions]
        contours = [self.contours[(r.image, *r.slices)] for r in regions]
        return labels, contours

    def label_segments(self, regions: Sequence[Region], masks: Sequence[np.ndarray],
                       request: AnnotationRequest | None = None) -> np.ndarray:
        """The ground-truth majority class of each segment (:func:`dominant_classes`), int64 [R]."""
        return dominant_classes(self.masks, regions, masks, self.valid)
