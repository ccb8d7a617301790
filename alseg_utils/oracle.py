"""The oracle: who answers an annotation request.

In simulation the oracle copies ground truth. A human annotation step implements the same
:class:`Oracle` protocol (see ``alseg export`` / ``alseg ingest``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from alseg_utils.regions import Region


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
    """

    step: int
    images: list[int]
    image_names: list[str]
    regions: list[Region] = field(default_factory=list)
    region_masks: list[np.ndarray] = field(default_factory=list)
    scores: np.ndarray | None = None
    pseudo_object: np.ndarray | None = None
    pseudo_contour: np.ndarray | None = None


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


class SimulatedOracle:
    """An error-free annotator that copies ground truth (the paper's setting).

    Args:
        masks: ground-truth object masks of the AL training images, [N, H, W] in {0, 1}.
        contours: ground-truth contour targets, [N, H, W] in {0, 1}.
    """

    def __init__(self, masks: np.ndarray, contours: np.ndarray) -> None:
        if masks.shape != contours.shape:
            raise ValueError(f"masks {masks.shape} and contours {contours.shape} differ in shape")
        self.masks = masks.astype(np.uint8)
        self.contours = contours.astype(np.uint8)

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
