"""The files oracle: the loop's labels come from files a person wrote (``alseg run --oracle files``).

When the loop asks a step the oracle has no answers for, it writes the request into the run
folder (:mod:`alseg_utils.annotation_store`) and stops the run with :class:`AnnotationPending`.
The person exports the request, annotates it and ingests the answers; the rerun recomputes the
same selection (the loop is deterministic on the CPU) and the oracle returns the ingested labels,
matched by region id. A selection that comes out differently is refused rather than mislabelled.
A step of dominant-class superpixels asks one class per segment (:meth:`FilesOracle.label_segments`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from alseg_utils._annotation_run_folder import run_config, step_dir, to_annotate_dir
from alseg_utils.annotation_store import classes_file_names, load_answers, request_rows, write_request
from alseg_utils.config import RunConfig
from alseg_utils.data import SegmentationSet, load_dataset
from alseg_utils.errors import AlsegError, RunStateError
from alseg_utils.oracle import AnnotationRequest
from alseg_utils.regions import Region


class AnnotationPending(AlsegError):
    """The run stopped because a step waits for annotations (not an error: export, annotate, ingest).

    Attributes:
        run_dir: the run folder.
        step: the step whose labels are missing.
        count: regions (or whole images, or segments to classify) to annotate.
    """

    def __init__(self, run_dir: str | Path, step: int, count: int, n_images: int, whole_images: bool,
                 class_answers: bool = False) -> None:
        self.run_dir, self.step, self.count = Path(run_dir), step, count
        run, folder = self.run_dir, to_annotate_dir(self.run_dir, step)
        if class_answers:
            what = f"one class for each of {count} superpixels of {n_images} images"
            how = f"copy its {classes_file_names(step)[0]} into {folder / 'answers'} and fill in the class column"
        else:
            what = f"{count} whole images" if whole_images else f"{count} regions of {n_images} images"
            how = f"correct the masks into {folder / 'answers'}"
        super().__init__(
            f"step {step} of {run} waits for annotation of {what}; export them with "
            f"`alseg export {run} --to {folder}`, {how}, "
            f"store them with `alseg ingest {run} --from {folder / 'answers'}`, then rerun this command"
        )


class FilesOracle:
    """An oracle whose answers are files a person wrote (see the module docstring).

    When the answers of the asked step have been ingested, they are returned; otherwise the request
    is written to ``run_dir/annotations/step_KKK/`` and :class:`AnnotationPending` stops the run.

    Args:
        run_dir: the run folder (the ``out_dir`` of the run this oracle answers for).
        train: images holding the requested ones, found by name (e.g. ``RunData.train``); the
            training split of the run's ``config.json`` is loaded when first needed if not given.
    """

    needs_ground_truth = False  # the run's data may come without masks

    def __init__(self, run_dir: str | Path, train: SegmentationSet | None = None) -> None:
        self.run_dir = Path(run_dir)
        self._train = train
        self._cfg: RunConfig | None = None

    def label_images(self, indices: Sequence[int], request: AnnotationRequest | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Object and contour labels of whole images, each [K, H, W] in {0, 1}.

        Raises:
            AnnotationPending: the answers of this step have not been ingested yet.
            RunStateError: ingested answers exist for other images than the ones asked.
        """
        objects, contours = self._answer(self._checked(request, [int(i) for i in indices], []))
        return np.stack(objects), np.stack(contours)

    def label_regions(self, regions: Sequence[Region], request: AnnotationRequest | None = None
                      ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Object and contour label patches, each [height, width] in {0, 1}, one per region.

        Raises:
            AnnotationPending: the answers of this step have not been ingested yet.
            RunStateError: ingested answers exist for other regions than the ones asked.
        """
        return self._answer(self._checked(request, sorted({r.image for r in regions}), list(regions)))

    def label_segments(self, regions: Sequence[Region], masks: Sequence[np.ndarray],
                       request: AnnotationRequest | None = None) -> np.ndarray:
        """The ingested class of each segment (dominant-class superpixels), int64 [R] in {0, 1}.

        Args:
            regions: the segments' bounding boxes.
            masks: their pixels, bool [height, width] each (the request carries the same masks).
            request: the step's request (``class_answers`` set).

        Raises:
            AnnotationPending: the answers of this step have not been ingested yet.
            RunStateError: ingested answers exist for other segments than the ones asked, or
                masks where classes were asked.
        """
        request = self._checked(request, sorted({r.image for r in regions}), list(regions))
        if not request.class_answers or len(masks) != len(request.region_masks):
            raise ValueError("label_segments needs the AnnotationRequest of a dominant-class step (class_answers)")
        answers = self._stored(request)
        if "classes" not in answers:
            raise RunStateError(f"{step_dir(self.run_dir, request.step)}: the stored answers are masks, but this "
                                "step asks one class per superpixel; delete that folder's answers.npz and ingest "
                                "the class table")
        return answers["classes"].astype(np.int64)

    def _checked(self, request: AnnotationRequest | None, images: list[int], regions: list[Region]
                 ) -> AnnotationRequest:
        if request is None:
            raise ValueError("FilesOracle needs the AnnotationRequest of the step (ActiveRun passes it)")
        if sorted(request.images) != sorted(images) or list(request.regions) != regions or (
                not regions and list(request.images) != images):
            raise ValueError("the AnnotationRequest does not match the images / regions asked")
        return request

    def _stored(self, request: AnnotationRequest) -> dict[str, np.ndarray]:
        """The ingested answers of the request, checked to answer its rows; writes the request if none.

        Raises:
            AnnotationPending: nothing was ingested for this step (the request is written first).
            RunStateError: the answers are for other regions than the request's.
        """
        height, width = self._config().data.image_size
        rows = request_rows(request, (height, width))
        answers = load_answers(self.run_dir, request.step)
        if answers is None:
            images, valid = self._request_images(request)
            stored = write_request(self.run_dir, request, images, valid, self._config().data.contour_radius)
            raise AnnotationPending(self.run_dir, request.step, len(rows), len(stored.image_indices),
                                    stored.whole_images, stored.class_answers)
        if answers["ids"].tolist() != [row["id"] for row in rows]:
            raise RunStateError(
                f"{step_dir(self.run_dir, request.step)}: the answers were given for other regions than this "
                "rerun selects (the selection must be reproducible: rerun on the CPU, or on the device the "
                "request was made on); delete that folder's answers.npz to annotate the new selection")
        return answers

    def _answer(self, request: AnnotationRequest) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The ingested patches of the request's rows, [height, width] each; writes the request if none."""
        height, width = self._config().data.image_size
        rows = request_rows(request, (height, width))
        answers = self._stored(request)
        if "objects" not in answers:
            raise RunStateError(f"{step_dir(self.run_dir, request.step)}: the stored answers are classes, but this "
                                "step asks for masks; delete that folder's answers.npz and ingest the masks")
        return ([o[: r["height"], : r["width"]] for o, r in zip(answers["objects"], rows, strict=True)],
                [c[: r["height"], : r["width"]] for c, r in zip(answers["contours"], rows, strict=True)])

    def _config(self) -> RunConfig:
        if self._cfg is None:
            self._cfg = run_config(self.run_dir)
        return self._cfg

    def _request_images(self, request: AnnotationRequest) -> tuple[np.ndarray, np.ndarray]:
        """The requested images [K, H, W, 3] uint8 and their real pixels [K, H, W] bool, found by name.

        The training split is loaded only when a request has to be written.

        Raises:
            RunStateError: a requested image is not in the training images (the data folder changed).
        """
        if self._train is None:
            self._train = load_dataset(self._config(), "train", require_masks=False)
        where = {name: i for i, name in enumerate(self._train.names)}
        missing = [name for name in request.image_names if name not in where]
        if missing:
            raise RunStateError(f"{self.run_dir}: step {request.step} asks for image {missing[0]!r}, which the "
                                "run's training images no longer hold; restore its data folder, or start the run "
                                "again in a new --out folder")
        idx = [where[name] for name in request.image_names]
        return self._train.images[idx], self._train.valid[idx]
