"""The label store of an active-learning run, and exact pixel accounting.

One uint8 label map per training image with ``255 = not labelled``
(:data:`alseg_utils.config.UNLABELLED`, re-exported here). Acquiring a full image writes its
whole ground truth; acquiring a region writes ground truth inside the window only. The loss ignores
255, so only human-labelled pixels are back-propagated. Zero padding (``valid == False``) is never
labelled and never counted: the labelled fraction is labelled real pixels over all real pixels of
the AL training images (initial set + pool; validation images excluded).

A dominant-class superpixel (:meth:`LabelStore.add_segments`) gives every pixel of the segment the
one class the annotator answered, and leaves their *contour* labels at 255: a class click says
nothing about where an object's boundary runs, and contours painted along the segment's edges would
teach the contour head SLIC's edges instead of the glands'. Those pixels train the object head only
(the loss of each head averages over its own labelled pixels, so a batch of them alone adds no
contour loss); they count as labelled, as every pixel with an object label does.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alseg_utils.config import UNLABELLED
from alseg_utils.regions import Region
from alseg_utils.results import atomic_write_bytes, damaged_file_error, read_npz_file


@dataclass
class LabelStore:
    """Labels acquired so far for the N AL training images.

    Attributes:
        labels: object labels, [N, H, W] uint8 in {0, 1, 255}.
        contours: contour labels, [N, H, W] uint8 in {0, 1, 255}.
        valid: real (not padded) pixels, [N, H, W] bool.
    """

    labels: np.ndarray
    contours: np.ndarray
    valid: np.ndarray

    @classmethod
    def empty(cls, valid: np.ndarray) -> LabelStore:
        """A store with nothing labelled for images whose real pixels are ``valid`` [N, H, W]."""
        shape = valid.shape
        return cls(np.full(shape, UNLABELLED, np.uint8), np.full(shape, UNLABELLED, np.uint8),
                   valid.astype(bool))

    def labelled(self) -> np.ndarray:
        """Labelled pixels, [N, H, W] bool."""
        return self.labels != UNLABELLED

    def labelled_fraction(self) -> float:
        """Unique labelled real pixels over all real pixels (the x-axis of every figure)."""
        return float((self.labelled() & self.valid).sum() / max(int(self.valid.sum()), 1))

    def labelled_pixels(self) -> int:
        """Number of unique labelled real pixels."""
        return int((self.labelled() & self.valid).sum())

    def labelled_images(self) -> list[int]:
        """Indices of images with at least one labelled pixel (the training set)."""
        return [int(i) for i in np.flatnonzero(self.labelled().any(axis=(1, 2)))]

    def unlabelled_images(self) -> list[int]:
        """Indices of images with no labelled pixel (the full-image pool)."""
        return [int(i) for i in np.flatnonzero(~self.labelled().any(axis=(1, 2)))]

    def add_images(self, indices: Sequence[int], labels: np.ndarray, contours: np.ndarray) -> None:
        """Store whole-image labels; padding stays unlabelled.

        Args:
            indices: K image indices.
            labels: object labels, [K, H, W] in {0, 1}.
            contours: contour labels, [K, H, W] in {0, 1}.
        """
        for i, lab, con in zip(indices, labels, contours, strict=True):
            keep = self.valid[i]  # [H, W]
            self.labels[i] = np.where(keep, lab, UNLABELLED)
            self.contours[i] = np.where(keep, con, UNLABELLED)

    def add_regions(self, regions: Sequence[Region], labels: Sequence[np.ndarray],
                    contours: Sequence[np.ndarray], masks: Sequence[np.ndarray] | None = None) -> None:
        """Store labels inside each region only; padding stays unlabelled.

        Args:
            regions: K windows.
            labels: K object label patches, each [height, width] in {0, 1}.
            contours: K contour label patches, each [height, width] in {0, 1}.
            masks: optional K bool patches, each [height, width]: only their True pixels are stored
                (a superpixel inside its bounding box). ``None`` = the whole window.
        """
        patches = [None] * len(regions) if masks is None else list(masks)
        for reg, lab, con, inside in zip(regions, labels, contours, patches, strict=True):
            rows, cols = reg.slices
            keep = self.valid[reg.image, rows, cols]  # [h, w]
            if inside is not None:
                keep = keep & np.asarray(inside, dtype=bool)
            self.labels[reg.image, rows, cols] = np.where(keep, lab, self.labels[reg.image, rows, cols])
            self.contours[reg.image, rows, cols] = np.where(keep, con, self.contours[reg.image, rows, cols])

    def add_segments(self, regions: Sequence[Region], classes: Sequence[int] | np.ndarray,
                     masks: Sequence[np.ndarray]) -> None:
        """Give every pixel of each segment its one class; contours stay as they were (255 when unlabelled).

        Args:
            regions: K windows, each a segment's bounding box.
            classes: K classes in {0, 1}, one per segment (:meth:`~alseg_utils.oracle.Oracle.label_segments`).
            masks: K bool patches, each [height, width] of its window: the segment's pixels. Padding
                inside them stays unlabelled.

        Raises:
            ValueError: a class outside {0, 1}, or a patch that does not fit its window.
        """
        for reg, cls, inside in zip(regions, np.asarray(classes).tolist(), masks, strict=True):
            if cls not in (0, 1):
                raise ValueError(f"a segment's class must be 0 (background) or 1 (object), got {cls!r}")
            inside = np.asarray(inside, dtype=bool)  # [h, w]
            if inside.shape != (reg.height, reg.width):
                raise ValueError(f"segment mask {inside.shape} does not fit its window {reg.height}x{reg.width}")
            rows, cols = reg.slices
            keep = self.valid[reg.image, rows, cols] & inside  # [h, w]
            self.labels[reg.image, rows, cols] = np.where(keep, np.uint8(cls), self.labels[reg.image, rows, cols])

    def save(self, path: str | Path) -> None:
        """Write the store atomically as a compressed ``.npz``."""
        buf = io.BytesIO()
        np.savez_compressed(buf, labels=self.labels, contours=self.contours, valid=self.valid)
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | Path, advice: str = "restore it from a copy, or start a new run folder"
             ) -> LabelStore:
        """Read a store written by :meth:`save`.

        Args:
            path: the ``.npz`` file.
            advice: what the user can do when the file is damaged (part of the error).

        Raises:
            RunStateError: the file is missing, truncated or corrupt, or its arrays do not fit together.
        """
        what = "the label store"
        z = read_npz_file(path, what, advice, keys=("labels", "contours", "valid"))
        labels, contours, valid = z["labels"], z["contours"], z["valid"]
        if not (labels.ndim == 3 and labels.shape == contours.shape == valid.shape and labels.dtype == np.uint8
                and contours.dtype == np.uint8 and valid.dtype == bool):
            raise damaged_file_error(path, what, f"arrays {labels.shape}, {contours.shape}, {valid.shape} do not "
                                     "form [N, H, W] uint8 labels and contours with a bool valid mask", advice)
        return cls(labels, contours, valid)
