"""The annotation store of a run folder: what each step asks for, and the answers ingested for it.

A step's request is written by :class:`~alseg_utils.files_oracle.FilesOracle` when the loop asks
for labels (``request.json`` last, so a request is complete once it is readable); its answers are
written by :func:`~alseg_utils.annotation_ingest.ingest_answers` and read back by the oracle on
the rerun. Where the files lie is :mod:`alseg_utils._annotation_run_folder`'s business.

Ids name what a step asks: ``s001-train_12-40-64`` is the region at row 40, column 64 of image
``train_12`` asked at step 1, ``s000-train_3`` a whole image of the initial set. They are the
stems of the files exported and expected back.

A step of dominant-class superpixels (``request.json``'s ``class_answers``) asks one class per
segment instead of masks: its answers are one table, ``sKKK-classes.csv`` or ``.json``
(:func:`classes_file_names`), and its answer store holds ``classes`` instead of object and contour
patches.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from alseg_utils._annotation_run_folder import ANSWERS_NPZ, REQUEST_JSON, REQUEST_NPZ, request_steps, step_dir
from alseg_utils.errors import RunStateError
from alseg_utils.oracle import AnnotationRequest
from alseg_utils.regions import Region
from alseg_utils.results import atomic_write_bytes, atomic_write_json, damaged_file_error, read_json_file, read_npz_file

REQUEST_FORMAT = "alseg-annotation-request/1"
LABEL_SETS = ((0, 1), (0, 255))  # allowed values of an answer PNG: 0 background, 1 or 255 object
CLASS_ANSWER_FORMAT = "alseg-class-answers/1"  # the JSON answer file of a dominant-class step
_MASK_ANSWER_KEYS = ("ids", "objects", "answered_contours", "contours")
_CLASS_ANSWER_KEYS = ("ids", "classes")


def region_id(step: int, image_name: str, region: Region | None = None) -> str:
    """Stable id of what a step asks: ``s001-train_12-40-64`` (region) or ``s000-train_3`` (image).

    Args:
        step: the acquisition step (0 = the initial set).
        image_name: the image's file stem.
        region: the window; None for a whole image.

    Returns:
        The id, also the stem of the files exported and expected for it.
    """
    base = f"s{step:03d}-{image_name}"
    return base if region is None else f"{base}-{region.top}-{region.left}"


def geojson_name(step: int, image_name: str) -> str:
    """File name of the GeoJSON exported (and expected back) for one image of a step."""
    return f"s{step:03d}-{image_name}.geojson"


def classes_file_names(step: int) -> tuple[str, str]:
    """Names of the class answer file of a dominant-class step: ``(sKKK-classes.csv, sKKK-classes.json)``.

    One of the two is expected back; the export writes both as templates.
    """
    return f"s{step:03d}-classes.csv", f"s{step:03d}-classes.json"


@dataclass
class StoredRequest:
    """A step's annotation request as written in the run folder.

    Attributes:
        step: the acquisition step.
        whole_images: True when whole images are asked (step 0, full-image strategy).
        regions: one dict per region, in request order: ``id``, ``image`` (AL index),
            ``image_name``, ``top``, ``left``, ``height``, ``width``, ``score`` (None at step 0).
        image_indices: AL indices of the requested images (axis K of the arrays).
        image_names: their file stems.
        contour_radius: disk radius of the contour labels derived from answers.
        images: the requested images, [K, H, W, 3] uint8.
        valid: real (not padded) pixels, [K, H, W] bool.
        scores: acquisition score maps, [K, H, W] float32 >= 0; None at step 0.
        pseudo_object: the model's object prediction, [K, H, W] uint8 in {0, 1}; None at step 0.
        pseudo_contour: the model's contour prediction, [K, H, W] uint8 in {0, 1}; None at step 0.
        region_masks: for superpixel regions, the pixels of each region's segment inside its
            window, [R, height_max, width_max] bool (region r uses ``[:height_r, :width_r]``); only
            these pixels of an answer are kept. None for square windows and whole images.
        class_answers: True when one class per segment is asked (dominant-class superpixels), not masks.
    """

    step: int
    whole_images: bool
    regions: list[dict[str, Any]]
    image_indices: list[int]
    image_names: list[str]
    contour_radius: int
    images: np.ndarray
    valid: np.ndarray
    scores: np.ndarray | None = None
    pseudo_object: np.ndarray | None = None
    pseudo_contour: np.ndarray | None = None
    region_masks: np.ndarray | None = None
    class_answers: bool = False

    def region_mask(self, r: int) -> np.ndarray | None:
        """The kept pixels of region ``r`` (request order), [height, width] bool; None = the whole window."""
        if self.region_masks is None:
            return None
        row = self.regions[r]
        return self.region_masks[r, : int(row["height"]), : int(row["width"])]

    @property
    def ids(self) -> list[str]:
        """Region ids in request order."""
        return [r["id"] for r in self.regions]

    def region(self, row: dict[str, Any]) -> Region:
        """The :class:`Region` (AL image index and window) of one request row."""
        return Region(int(row["image"]), int(row["top"]), int(row["left"]), int(row["height"]), int(row["width"]))

    def local(self, row: dict[str, Any]) -> int:
        """Position of a row's image on axis K of the arrays."""
        return self.image_indices.index(int(row["image"]))


def request_rows(request: AnnotationRequest, shape: tuple[int, int]) -> list[dict[str, Any]]:
    """One row per region (or whole image) of an in-memory request, as :class:`StoredRequest` holds them.

    Args:
        request: what the loop asks.
        shape: (H, W) of the images, the window of a whole-image request.

    Returns:
        The rows in request order; ids made unique (two superpixels whose windows share a corner).
    """
    whole = not request.regions
    regions = [Region(i, 0, 0, *shape) for i in request.images] if whole else list(request.regions)
    # superpixels: their pixels in the window
    masks: list[np.ndarray | None] = list(request.region_masks) or [None] * len(regions)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for reg, inside in zip(regions, masks, strict=True):
        k = request.images.index(reg.image)
        name = request.image_names[k]
        window = request.scores[(k, *reg.slices)] if request.scores is not None else None  # [h, w]
        score = None if window is None else float((window if inside is None else window[inside]).sum(dtype=np.float64))
        rid = base = region_id(request.step, name, None if whole else reg)
        while rid in seen:  # two superpixels whose windows share a corner
            rid = f"{base}-{len(seen)}"
        seen.add(rid)
        rows.append({"id": rid, "image": int(reg.image),
                     "image_name": name, "top": reg.top, "left": reg.left, "height": reg.height,
                     "width": reg.width, "score": score})
    return rows


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]  # mypy matches **arrays against allow_pickle
    return buf.getvalue()


def _padded_masks(region_masks: list[np.ndarray]) -> np.ndarray:
    """Superpixel masks of different [h, w] as one zero-padded [R, h_max, w_max] bool array."""
    h_max = max(m.shape[0] for m in region_masks)
    w_max = max(m.shape[1] for m in region_masks)
    masks = np.zeros((len(region_masks), h_max, w_max), dtype=bool)  # [R, h_max, w_max]
    for r, m in enumerate(region_masks):
        masks[r, : m.shape[0], : m.shape[1]] = m
    return masks


def write_request(run_dir: str | Path, request: AnnotationRequest, images: np.ndarray, valid: np.ndarray,
                  contour_radius: int) -> StoredRequest:
    """Write a step's request (arrays first, ``request.json`` last, each atomically).

    Args:
        run_dir: the run folder.
        request: what the loop asks.
        images: the requested images in ``request.images`` order, [K, H, W, 3] uint8.
        valid: their real pixels, [K, H, W] bool.
        contour_radius: disk radius of the contour labels derived from the answers.

    Returns:
        The request as stored.
    """
    rows = request_rows(request, images.shape[1:3])
    arrays = {"ids": np.array([r["id"] for r in rows], dtype=np.str_), "images": images.astype(np.uint8),
              "valid": valid.astype(bool)}
    for key in ("scores", "pseudo_object", "pseudo_contour"):
        if getattr(request, key) is not None:
            arrays[key] = np.asarray(getattr(request, key))
    if request.region_masks:
        arrays["region_masks"] = _padded_masks(request.region_masks)
    folder = step_dir(run_dir, request.step)
    atomic_write_bytes(folder / REQUEST_NPZ, _npz_bytes(arrays))
    meta = {"format": REQUEST_FORMAT, "step": request.step, "whole_images": not request.regions,
            "class_answers": bool(request.class_answers),
            "image_size": list(images.shape[1:3]), "contour_radius": int(contour_radius),
            "image_indices": [int(i) for i in request.images], "image_names": list(request.image_names),
            "regions": rows}
    atomic_write_json(folder / REQUEST_JSON, meta)
    return read_request(run_dir, request.step)


def _checked_step(run_dir: str | Path, step: int | None) -> int:
    """``step``, or the latest requested one when None, checked to have a request."""
    steps = request_steps(run_dir)
    if step is None and not steps:
        raise RunStateError(f"{run_dir}: no annotation request found; start the run with "
                            "`alseg run PARAMS --oracle files --out RUN` first")
    step = steps[-1] if step is None else step
    if step not in steps:
        raise RunStateError(f"{step_dir(run_dir, step)}: no annotation request for step {step}; this run asked "
                            f"for steps {steps or 'none yet'}")
    return step


def read_request(run_dir: str | Path, step: int | None = None) -> StoredRequest:
    """Read the request of ``step`` (default: the latest) from a run folder.

    Raises:
        RunStateError: the run folder has no request for that step, or its ``request.json`` /
            ``request.npz`` is damaged (named, with what to do).
    """
    step = _checked_step(run_dir, step)
    folder = step_dir(run_dir, step)
    what = f"the annotation request of step {step}"
    advice = (f"rerun the `alseg run ... --oracle files --out {run_dir}` command: while step {step} waits for "
              "its answers it writes the same request again")
    meta = read_json_file(folder / REQUEST_JSON, what, advice)
    arrays = read_npz_file(folder / REQUEST_NPZ, what, advice, keys=("ids", "images", "valid"))
    try:
        regions = [dict(r) for r in meta["regions"]]
        if arrays["ids"].tolist() != [r["id"] for r in regions]:
            raise RunStateError(f"{folder}: {REQUEST_JSON} and {REQUEST_NPZ} disagree (an interrupted write); "
                                "rerun the `alseg run ... --oracle files` command to write the request again")
        return StoredRequest(
            step=int(meta["step"]), whole_images=bool(meta["whole_images"]), regions=regions,
            image_indices=[int(i) for i in meta["image_indices"]], image_names=list(meta["image_names"]),
            contour_radius=int(meta["contour_radius"]), images=arrays["images"], valid=arrays["valid"],
            scores=arrays.get("scores"), pseudo_object=arrays.get("pseudo_object"),
            pseudo_contour=arrays.get("pseudo_contour"), region_masks=arrays.get("region_masks"),
            class_answers=bool(meta.get("class_answers", False)),
        )
    except (KeyError, TypeError, ValueError) as err:  # valid JSON without the fields a request has
        raise damaged_file_error(folder / REQUEST_JSON, what,
                                 f"no usable {err}" if isinstance(err, KeyError) else err, advice) from None


def answers_path(run_dir: str | Path, step: int) -> Path:
    """The answer store of ``step`` (it exists once answers were ingested)."""
    return step_dir(run_dir, step) / ANSWERS_NPZ


def load_answers(run_dir: str | Path, step: int) -> dict[str, np.ndarray] | None:
    """The ingested answers of ``step``.

    ``ids`` [R] str; ``objects`` and ``contours`` [R, h, w] uint8 in {0, 1}, what the run trains on
    (superpixel windows differ in size: zero-padded to the largest, region r is ``[:height_r, :width_r]``);
    ``answered_contours`` the contours as answered or derived, before earlier labels were kept;
    ``sources`` [R] the file that answered each region. A dominant-class step's store holds
    ``ids``, ``classes`` [R] uint8 in {0, 1} and ``sources`` instead.

    Returns:
        None when nothing was ingested for that step.

    Raises:
        RunStateError: ``answers.npz`` is damaged (named, with what to do).
    """
    path = answers_path(run_dir, step)
    if not path.exists():
        return None
    advice = (f"if step {step} has not run yet, move the file away and store the answers again with `alseg "
              f"ingest {run_dir} --from ANSWERS`; if it has, continue the run in a new --out folder")
    what = f"the answer store of step {step}"
    answers = read_npz_file(path, what, advice, keys=("ids",))
    keys = _CLASS_ANSWER_KEYS if "classes" in answers else _MASK_ANSWER_KEYS
    missing = [k for k in keys if k not in answers]
    if missing:
        raise damaged_file_error(path, what, f"no {missing[0]!r} array", advice)
    return answers


def save_answers(run_dir: str | Path, step: int, answers: dict[str, np.ndarray]) -> Path:
    """Store the checked answers of ``step`` atomically (the arrays :func:`load_answers` returns).

    Returns:
        The path of the answer store.
    """
    path = answers_path(run_dir, step)
    atomic_write_bytes(path, _npz_bytes(answers))
    return path
