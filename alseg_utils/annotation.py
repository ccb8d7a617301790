"""Human-in-the-loop annotation: a file-based oracle, export for the annotator, ingest of the answers.

The round trip of ``alseg run ... --oracle files``::

    alseg run params.yaml --oracle files --out RUN     stops at a step that needs labels (status 3)
    alseg export RUN --to DIR                          crops, pseudo-labels, GeoJSON, manifest
    (the annotator corrects the masks, into DIR/answers)
    alseg ingest RUN --from DIR/answers                checks every file, stores them (all or nothing)
    alseg run params.yaml --oracle files --out RUN     recomputes the same selection, uses the answers

The loop is deterministic on the CPU (MC dropout seeded per step), so the rerun selects exactly the
regions that were exported; the answers are matched by region id and a selection that comes out
differently is refused rather than silently mislabelled.

Run folder additions (next to the files of :mod:`alseg_utils.active`)::

    annotations/step_KKK/request.json   what step K asks: region ids, image names, coordinates, scores
    annotations/step_KKK/request.npz    the requested images, padding, score maps and pseudo-labels
    annotations/step_KKK/answers.npz    the ingested object and contour patches, by region id

Answers. One PNG per region, ``<id>_mask.png``, the size of the crop, 0 = background and 1 (or 255)
= object; or one GeoJSON file per image, ``sKKK-<image>.geojson``, with one polygon per object in the
pixel coordinates of the exported whole image (x = column, y = row, (0, 0) the top-left corner of
the top-left pixel; a pixel belongs to a polygon when its centre lies inside). The annotator answers
the object mask only: contour labels are derived from it with :func:`~alseg_utils.data.contour_target`
on the crop (objects = the connected components of a PNG, one per polygon of a GeoJSON file); a
``<id>_contour.png`` next to the mask overrides that (a scripted annotator answering from ground
truth uses it). Pixels labelled at an earlier step keep their labels: an object answer that
contradicts them is refused, and their contour labels are kept. Zero padding is never labelled.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from PIL import Image
from skimage.draw import polygon as fill_polygon
from skimage.draw import rectangle_perimeter
from skimage.measure import find_contours
from skimage.measure import label as connected_components
from skimage.segmentation import find_boundaries

from alseg_utils.config import RunConfig, config_from_dict
from alseg_utils.data import SegmentationSet, contour_target, read_labels
from alseg_utils.errors import AlsegError, DataError, RunStateError
from alseg_utils.labels import UNLABELLED, LabelStore
from alseg_utils.oracle import AnnotationRequest
from alseg_utils.regions import Region
from alseg_utils.results import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    damaged_file_error,
    read_json_file,
    read_npz_file,
    read_run_config_file,
)

REQUEST_FORMAT = "alseg-annotation-request/1"
LABEL_SETS = ((0, 1), (0, 255))  # allowed values of an answer PNG: 0 background, 1 or 255 object
REGION_CLASS = "Region"  # GeoJSON classification of the region rectangles (ignored on ingest)
OBJECT_CLASS = "Object"  # GeoJSON classification of the pseudo-label outlines
OUTLINE = (255, 221, 0)  # region rectangle in the overview PNG
PSEUDO_OUTLINE = (0, 200, 255)  # pseudo-label boundary in the overview PNG
_STEP_PREFIX = re.compile(r"^s(\d{3})-")


# ----------------------------------------------------------------------------- names and errors


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


def step_dir(run_dir: str | Path, step: int) -> Path:
    """The folder holding the request and the answers of ``step`` in a run folder."""
    return Path(run_dir) / "annotations" / f"step_{step:03d}"


class AnnotationPending(AlsegError):
    """The run stopped because a step waits for annotations (not an error: export, annotate, ingest).

    Attributes:
        run_dir: the run folder.
        step: the step whose labels are missing.
        count: regions (or whole images) to annotate.
    """

    def __init__(self, run_dir: str | Path, step: int, count: int, n_images: int, whole_images: bool) -> None:
        self.run_dir, self.step, self.count = Path(run_dir), step, count
        run, folder = self.run_dir, self.run_dir / "to_annotate" / f"step_{step:03d}"
        what = f"{count} whole images" if whole_images else f"{count} regions of {n_images} images"
        super().__init__(
            f"step {step} of {run} waits for annotation of {what}; export them with "
            f"`alseg export {run} --to {folder}`, correct the masks into {folder / 'answers'}, "
            f"store them with `alseg ingest {run} --from {folder / 'answers'}`, then rerun this command"
        )


# ----------------------------------------------------------------------------- the stored request


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


def _request_rows(request: AnnotationRequest, shape: tuple[int, int]) -> list[dict[str, Any]]:
    """One row per region (or whole image) of an in-memory request."""
    whole = not request.regions
    regions = [Region(i, 0, 0, *shape) for i in request.images] if whole else list(request.regions)
    masks = list(request.region_masks) or [None] * len(regions)  # superpixels: their pixels in the window
    rows, seen = [], set()
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
    rows = _request_rows(request, images.shape[1:3])
    arrays = {"ids": np.array([r["id"] for r in rows], dtype=np.str_), "images": images.astype(np.uint8),
              "valid": valid.astype(bool)}
    for key in ("scores", "pseudo_object", "pseudo_contour"):
        if getattr(request, key) is not None:
            arrays[key] = np.asarray(getattr(request, key))
    if request.region_masks:
        h_max = max(m.shape[0] for m in request.region_masks)
        w_max = max(m.shape[1] for m in request.region_masks)
        masks = np.zeros((len(request.region_masks), h_max, w_max), dtype=bool)  # [R, h_max, w_max]
        for r, m in enumerate(request.region_masks):
            masks[r, : m.shape[0], : m.shape[1]] = m
        arrays["region_masks"] = masks
    folder = step_dir(run_dir, request.step)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(folder / "request.npz", buf.getvalue())
    meta = {"format": REQUEST_FORMAT, "step": request.step, "whole_images": not request.regions,
            "image_size": list(images.shape[1:3]), "contour_radius": int(contour_radius),
            "image_indices": [int(i) for i in request.images], "image_names": list(request.image_names),
            "regions": rows}
    atomic_write_json(folder / "request.json", meta)
    return read_request(run_dir, request.step)


def request_steps(run_dir: str | Path) -> list[int]:
    """Steps of a run folder that have a stored request, ascending."""
    root = Path(run_dir) / "annotations"
    found = [int(p.parent.name[5:]) for p in root.glob("step_*/request.json")] if root.is_dir() else []
    return sorted(found)


def read_request(run_dir: str | Path, step: int | None = None) -> StoredRequest:
    """Read the request of ``step`` (default: the latest) from a run folder.

    Raises:
        RunStateError: the run folder has no request for that step, or its ``request.json`` /
            ``request.npz`` is damaged (named, with what to do).
    """
    steps = request_steps(run_dir)
    if step is None and not steps:
        raise RunStateError(f"{run_dir}: no annotation request found; start the run with "
                            "`alseg run PARAMS --oracle files --out RUN` first")
    step = steps[-1] if step is None else step
    folder = step_dir(run_dir, step)
    if step not in steps:
        raise RunStateError(f"{folder}: no annotation request for step {step}; this run asked for steps "
                            f"{steps or 'none yet'}")
    advice = (f"rerun the `alseg run ... --oracle files --out {run_dir}` command: while step {step} waits for "
              "its answers it writes the same request again")
    meta = read_json_file(folder / "request.json", f"the annotation request of step {step}", advice)
    arrays = read_npz_file(folder / "request.npz", f"the annotation request of step {step}", advice,
                           keys=("ids", "images", "valid"))
    try:
        regions = [dict(r) for r in meta["regions"]]
        if arrays["ids"].tolist() != [r["id"] for r in regions]:
            raise RunStateError(f"{folder}: request.json and request.npz disagree (an interrupted write); rerun the "
                                "`alseg run ... --oracle files` command to write the request again")
        return StoredRequest(
            step=int(meta["step"]), whole_images=bool(meta["whole_images"]), regions=regions,
            image_indices=[int(i) for i in meta["image_indices"]], image_names=list(meta["image_names"]),
            contour_radius=int(meta["contour_radius"]), images=arrays["images"], valid=arrays["valid"],
            scores=arrays.get("scores"), pseudo_object=arrays.get("pseudo_object"),
            pseudo_contour=arrays.get("pseudo_contour"), region_masks=arrays.get("region_masks"),
        )
    except (KeyError, TypeError, ValueError) as err:  # valid JSON without the fields a request has
        raise damaged_file_error(folder / "request.json", f"the annotation request of step {step}",
                                 f"no usable {err}" if isinstance(err, KeyError) else err, advice) from None


def load_answers(run_dir: str | Path, step: int) -> dict[str, np.ndarray] | None:
    """The ingested answers of ``step``.

    ``ids`` [R] str; ``objects`` and ``contours`` [R, h, w] uint8 in {0, 1}, what the run trains on
    (superpixel windows differ in size: zero-padded to the largest, region r is ``[:height_r, :width_r]``);
    ``answered_contours`` the contours as answered or derived, before earlier labels were kept;
    ``sources`` [R] the file that answered each region.

    Returns:
        None when nothing was ingested for that step.

    Raises:
        RunStateError: ``answers.npz`` is damaged (named, with what to do).
    """
    path = step_dir(run_dir, step) / "answers.npz"
    if not path.exists():
        return None
    advice = (f"if step {step} has not run yet, move the file away and store the answers again with `alseg "
              f"ingest {run_dir} --from ANSWERS`; if it has, continue the run in a new --out folder")
    return read_npz_file(path, f"the answer store of step {step}", advice,
                         keys=("ids", "objects", "answered_contours", "contours"))


# ----------------------------------------------------------------------------- the oracle


def run_config(run_dir: str | Path) -> RunConfig:
    """The configuration stored in a run folder's ``config.json``.

    Raises:
        RunStateError: the folder is not an alseg run folder, or its ``config.json`` is damaged.
    """
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise RunStateError(f"{run_dir}: not an alseg run folder (no config.json); give the --out folder of a run")
    raw = dict(read_run_config_file(path, "it names the run's configuration, so the run cannot go on; "
                                    "start a new --out folder")["config"])
    source = raw.pop("source", "")
    return config_from_dict(raw, source=source)


class FilesOracle:
    """An oracle whose answers are files a person wrote (see the module docstring).

    When the answers of the asked step have been ingested, they are returned; otherwise the request
    is written to ``run_dir/annotations/step_KKK/`` and :class:`AnnotationPending` stops the run.

    Args:
        run_dir: the run folder (the ``out_dir`` of the run this oracle answers for).
        train: the run's AL training images (``RunData.train``); loaded from the run's
            ``config.json`` when first needed if not given.
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

    def _checked(self, request: AnnotationRequest | None, images: list[int], regions: list[Region]
                 ) -> AnnotationRequest:
        if request is None:
            raise ValueError("FilesOracle needs the AnnotationRequest of the step (ActiveRun passes it)")
        if sorted(request.images) != sorted(images) or list(request.regions) != regions or (
                not regions and list(request.images) != images):
            raise ValueError("the AnnotationRequest does not match the images / regions asked")
        return request

    def _answer(self, request: AnnotationRequest) -> tuple[list[np.ndarray], list[np.ndarray]]:
        ids = [row["id"] for row in _request_rows(request, tuple(self._config().data.image_size))]
        answers = load_answers(self.run_dir, request.step)
        if answers is None:
            train = self._training_images()
            stored = write_request(self.run_dir, request, train.images[request.images],
                                   train.valid[request.images], self._config().data.contour_radius)
            raise AnnotationPending(self.run_dir, request.step, len(ids), len(stored.image_indices),
                                    stored.whole_images)
        if answers["ids"].tolist() != ids:
            raise RunStateError(
                f"{step_dir(self.run_dir, request.step)}: the answers were given for other regions than this "
                "rerun selects (the selection must be reproducible: rerun on the CPU, or on the device the "
                "request was made on); delete that folder's answers.npz to annotate the new selection")
        rows = _request_rows(request, tuple(self._config().data.image_size))
        return ([o[: r["height"], : r["width"]] for o, r in zip(answers["objects"], rows, strict=True)],
                [c[: r["height"], : r["width"]] for c, r in zip(answers["contours"], rows, strict=True)])

    def _config(self) -> RunConfig:
        if self._cfg is None:
            self._cfg = run_config(self.run_dir)
        return self._cfg

    def _training_images(self) -> SegmentationSet:
        """The run's AL training images, loaded only when a request has to be written."""
        if self._train is None:
            from alseg_utils.active import prepare_run_data  # active builds runs with this oracle

            self._train = prepare_run_data(self._config(), require_masks=False).train
        return self._train


# ----------------------------------------------------------------------------- GeoJSON


def mask_polygons(mask: np.ndarray) -> list[list[np.ndarray]]:
    """Outlines of each 4-connected object of a mask, as rings in pixel-corner coordinates.

    Args:
        mask: object pixels, [H, W], bool or {0, 1}.

    Returns:
        One polygon per object: its outer ring first, then one ring per hole; each ring is an
        [P, 2] float array of closed ``(x, y)`` points (x = column, y = row, pixel centres at
        half-integers). Filling them (:func:`polygons_mask`) gives back ``mask`` exactly.
    """
    objects = connected_components(np.asarray(mask) > 0, connectivity=1)  # [H, W]
    polygons = []
    for k in range(1, int(objects.max()) + 1):
        padded = np.pad(objects == k, 1).astype(np.float64)  # [H + 2, W + 2]
        rings = [ring[:, ::-1] - 0.5 for ring in find_contours(padded, 0.5)]  # (row, col) -> (x, y)
        rings.sort(key=lambda ring: -abs(_ring_area(ring)))  # the outer ring encloses the most
        polygons.append(rings)
    return polygons


def _ring_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _polygon_pixels(rings: Sequence[np.ndarray], shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the pixels inside a polygon with holes (even-odd over its rings).

    A pixel is inside when its centre is. Pixels outside the ``shape`` (H, W) canvas are returned
    too (negative or too large), so a caller can tell a polygon that leaves the image.

    Raises:
        ValueError: the polygon's bounding box is far larger than the canvas.
    """
    rows = [ring[:, 1] - 0.5 for ring in rings]  # pixel centres at integers
    cols = [ring[:, 0] - 0.5 for ring in rings]
    r0, c0 = int(np.floor(min(r.min() for r in rows))), int(np.floor(min(c.min() for c in cols)))
    r1, c1 = int(np.ceil(max(r.max() for r in rows))), int(np.ceil(max(c.max() for c in cols)))
    if (r1 - r0 + 1) * (c1 - c0 + 1) > 16 * (shape[0] + 2) * (shape[1] + 2):
        raise ValueError(f"polygon spans rows {r0}..{r1}, columns {c0}..{c1}, far outside a {shape} image")
    canvas = np.zeros((r1 - r0 + 1, c1 - c0 + 1), bool)  # the polygon's bounding box
    for r, c in zip(rows, cols):
        rr, cc = fill_polygon(r - r0, c - c0, canvas.shape)
        canvas[rr, cc] ^= True
    rr, cc = np.nonzero(canvas)
    return rr + r0, cc + c0


def polygons_mask(polygons: Sequence[Sequence[np.ndarray]], shape: tuple[int, int]) -> np.ndarray:
    """Rasterise polygons (outer ring, then holes) into an instance map, one id per polygon.

    Args:
        polygons: as returned by :func:`mask_polygons`, in pixel-corner coordinates.
        shape: (H, W) of the canvas; pixels outside it are dropped.

    Returns:
        Instance ids, [H, W] int32, 0 = no polygon, k = the k-th polygon (later ones on top).
    """
    out = np.zeros(shape, np.int32)
    for k, rings in enumerate(polygons, start=1):
        rr, cc = _polygon_pixels(rings, shape)
        keep = (rr >= 0) & (rr < shape[0]) & (cc >= 0) & (cc < shape[1])
        out[rr[keep], cc[keep]] = k
    return out


def _feature(rings: Sequence[np.ndarray], name: str, cls: str, color: tuple[int, int, int]) -> dict[str, Any]:
    coords = [[[round(float(x), 3), round(float(y), 3)] for x, y in ring] for ring in rings]
    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": coords},
            "properties": {"objectType": "annotation", "name": name,
                           "classification": {"name": cls, "color": list(color)}}}


def request_geojson(req: StoredRequest, k: int) -> dict[str, Any]:
    """GeoJSON of one requested image: region rectangles and pseudo-label outlines inside them.

    Args:
        req: the stored request.
        k: position of the image on axis K of the request.

    Returns:
        A FeatureCollection in the image's pixel coordinates (QuPath imports it as annotations:
        class ``Region`` for the rectangles, class ``Object`` for the pseudo-label outlines).
    """
    features = []
    for row in (r for r in req.regions if req.local(r) == k):
        reg = req.region(row)
        x0, y0, x1, y1 = reg.left, reg.top, reg.left + reg.width, reg.top + reg.height
        rect = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]], np.float64)
        features.append(_feature([rect], row["id"], REGION_CLASS, OUTLINE))
        if req.pseudo_object is not None:
            crop = req.pseudo_object[(k, *reg.slices)] * req.valid[(k, *reg.slices)]  # [h, w]
            for rings in mask_polygons(crop):
                shifted = [ring + np.array([reg.left, reg.top]) for ring in rings]
                features.append(_feature(shifted, f"pseudo-label {row['id']}", OBJECT_CLASS, PSEUDO_OUTLINE))
    return {"type": "FeatureCollection", "features": features}


def _feature_list(obj: Any, path: Path) -> list[Any]:
    if isinstance(obj, list):
        return obj
    if isinstance(obj, dict) and obj.get("type") == "FeatureCollection" and isinstance(obj.get("features"), list):
        return obj["features"]
    if isinstance(obj, dict) and obj.get("type") == "Feature":
        return [obj]
    raise DataError(f"{path}: not a GeoJSON FeatureCollection; export the annotations as GeoJSON objects")


def _is_region(feature: dict[str, Any]) -> bool:
    cls = (feature.get("properties") or {}).get("classification")
    name = cls.get("name") if isinstance(cls, dict) else cls
    return isinstance(name, str) and name.strip().lower() == REGION_CLASS.lower()


def _rings(coords: Any, path: Path, n: int) -> list[np.ndarray]:
    """The rings of one GeoJSON Polygon as [P, 2] float arrays."""
    bad = DataError(f"{path}: feature {n} has malformed coordinates; a Polygon is a list of rings of [x, y] "
                    "points (at least 3, finite)")
    if not isinstance(coords, list) or not coords:
        raise bad
    rings = []
    for ring in coords:
        try:
            arr = np.asarray(ring, dtype=np.float64)
        except (TypeError, ValueError):
            raise bad from None
        if arr.ndim != 2 or arr.shape[1] < 2 or len(arr) < 3 or not np.isfinite(arr).all():
            raise bad
        rings.append(arr[:, :2])
    return rings


def geojson_polygons(path: str | Path) -> list[list[np.ndarray]]:
    """Read the object polygons of a GeoJSON file (``Region`` rectangles are skipped).

    Args:
        path: a FeatureCollection (or a list of Features) of Polygon / MultiPolygon features.

    Returns:
        One entry per polygon: its rings (outer, then holes) as [P, 2] ``(x, y)`` arrays.

    Raises:
        DataError: unreadable or malformed file, or a feature that is not a polygon.
    """
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: not a readable GeoJSON file ({err}); export it again") from None
    polygons = []
    for n, feature in enumerate(_feature_list(obj, path)):
        if not isinstance(feature, dict) or not isinstance(feature.get("geometry"), dict):
            raise DataError(f"{path}: feature {n} has no geometry; keep only polygon annotations")
        if _is_region(feature):
            continue
        geom = feature["geometry"]
        if geom.get("type") == "Polygon":
            polygons.append(_rings(geom.get("coordinates"), path, n))
        elif geom.get("type") == "MultiPolygon" and isinstance(geom.get("coordinates"), list):
            polygons.extend(_rings(part, path, n) for part in geom["coordinates"])
        else:
            raise DataError(f"{path}: feature {n} is a {geom.get('type')}; outline objects as polygons")
    return polygons


# ----------------------------------------------------------------------------- export


def _png(path: Path, array: np.ndarray) -> None:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def _overview(image: np.ndarray, reg: Region, pseudo: np.ndarray | None) -> np.ndarray:
    """The whole image with the region outlined (and the pseudo-label boundary inside it)."""
    out = image.copy()  # [H, W, 3]
    if pseudo is not None:
        edge = np.zeros(image.shape[:2], bool)
        edge[reg.slices] = find_boundaries(pseudo, mode="inner")
        out[edge] = PSEUDO_OUTLINE
    for grow in (0, 1):  # two pixels wide, just outside the region
        start = (reg.top - grow, reg.left - grow)
        end = (reg.top + reg.height - 1 + grow, reg.left + reg.width - 1 + grow)
        rr, cc = rectangle_perimeter(start, end, shape=image.shape[:2], clip=True)
        out[rr, cc] = OUTLINE
    return out


def _heat(scores: np.ndarray, vmax: float) -> np.ndarray:
    """Score map as viridis RGB, [h, w, 3] uint8, 0 .. ``vmax`` mapped to the whole colour range."""
    rgba = colormaps["viridis"](np.clip(scores / vmax, 0.0, 1.0))  # [h, w, 4]
    return (rgba[..., :3] * 255).round().astype(np.uint8)


def _export_region(req: StoredRequest, row: dict[str, Any], to: Path, vmax: float) -> dict[str, Any]:
    """Write the crop, overview, pseudo-label and uncertainty PNGs of one region; its manifest row."""
    k, reg, rid = req.local(row), req.region(row), row["id"]
    files = {"crop": f"regions/{rid}_image.png", "overview": f"regions/{rid}_overview.png",
             "pseudo_label": f"regions/{rid}_pseudo.png", "uncertainty": ""}
    pseudo = None if req.pseudo_object is None else req.pseudo_object[(k, *reg.slices)]  # [h, w]
    _png(to / files["crop"], req.images[(k, *reg.slices)])
    _png(to / files["overview"], _overview(req.images[k], reg, pseudo))
    start = np.zeros((reg.height, reg.width), np.uint8) if pseudo is None else pseudo
    _png(to / files["pseudo_label"], (start * req.valid[(k, *reg.slices)] * 255).astype(np.uint8))
    if req.scores is not None:
        files["uncertainty"] = f"regions/{rid}_uncertainty.png"
        _png(to / files["uncertainty"], _heat(req.scores[(k, *reg.slices)], vmax))
    area = req.region_mask(req.regions.index(row))
    files["area"] = ""
    if area is not None:  # a superpixel: only its pixels inside the window are kept
        files["area"] = f"regions/{rid}_area.png"
        _png(to / files["area"], (area * 255).astype(np.uint8))
    return {"region_id": rid, "step": req.step, "image_index": row["image"], "image_name": row["image_name"],
            "top": reg.top, "left": reg.left, "height": reg.height, "width": reg.width, "score": row["score"],
            **files, "image_file": f"images/s{req.step:03d}-{row['image_name']}.png",
            "mask_file": f"{rid}_mask.png", "contour_file": f"{rid}_contour.png",
            "geojson_file": geojson_name(req.step, row["image_name"])}


def _check_export_folder(to: Path, run_dir: Path, step: int) -> None:
    manifest = to / "manifest.json"
    if manifest.is_file():
        old = read_json_file(manifest, "an export's manifest", "choose another --to folder (this one is left "
                             "as it is)")
        if old.get("run") == str(run_dir.resolve()) and old.get("step") == step:
            return  # exporting the same request again refreshes it
        raise RunStateError(f"{to} holds the export of step {old.get('step')} of {old.get('run')}; "
                            "choose another --to folder")
    if to.exists() and (not to.is_dir() or any(to.iterdir())):
        raise RunStateError(f"{to} exists and is not an alseg export folder; choose an empty --to folder")


HOWTO = """Annotation request: step {step} of {run}

Each row of manifest.csv is one {what} to label. For each one, either
  * save a corrected mask as answers/<region_id>_mask.png: the size of regions/<region_id>_image.png,
    0 = background, 1 or 255 = object (start from regions/<region_id>_pseudo.png, the model's guess), or
  * open images/<file>.png in QuPath (or another tool), import images/<file>.geojson, correct the
    "Object" polygons inside the "Region" rectangles (one polygon per object, nothing outside the
    rectangles), and export all objects as GeoJSON to answers/<file>.geojson.
Contours are derived from the objects; answers/<region_id>_contour.png (same format) overrides that.
Where a row has an "area" file (superpixel regions), only the white pixels of regions/<region_id>_area.png
are stored: label the window, but only that area counts.
Then run:  alseg ingest {run} --from {answers}
and rerun the `alseg run ... --oracle files` command.
"""


def export_request(run_dir: str | Path, to: str | Path, step: int | None = None) -> Path:
    """Write what a step asks for, for a person to annotate (layout in ``HOWTO.txt`` of the folder).

    Args:
        run_dir: the run folder.
        to: the export folder (created; must be empty or an export of the same step).
        step: the step (default: the latest request).

    Returns:
        The path of ``manifest.json``; ``manifest.csv`` is its table view.

    Raises:
        RunStateError: no request for that step, a damaged request, or ``to`` holds something else
            (or an export whose manifest cannot be read).
    """
    run_dir, to = Path(run_dir), Path(to)
    req = read_request(run_dir, step)
    _check_export_folder(to, run_dir, req.step)
    vmax = float(req.scores.max()) if req.scores is not None and req.scores.max() > 0 else 1.0
    rows = [_export_region(req, row, to, vmax) for row in req.regions]
    for k, name in enumerate(req.image_names):
        _png(to / "images" / f"s{req.step:03d}-{name}.png", req.images[k])
        atomic_write_text(to / "images" / geojson_name(req.step, name), json.dumps(request_geojson(req, k)))
    (to / "answers").mkdir(parents=True, exist_ok=True)
    what = "whole image" if req.whole_images else "region"
    atomic_write_text(to / "HOWTO.txt", HOWTO.format(step=req.step, run=run_dir, what=what, answers=to / "answers"))
    _write_csv(to / "manifest.csv", rows)
    manifest = {"format": REQUEST_FORMAT, "run": str(run_dir.resolve()), "step": req.step,
                "whole_images": req.whole_images, "label_values": [list(s) for s in LABEL_SETS],
                "uncertainty_max": vmax, "contour_radius": req.contour_radius, "regions": rows}
    atomic_write_json(to / "manifest.json", manifest)
    return to / "manifest.json"


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    atomic_write_text(path, buf.getvalue())


# ----------------------------------------------------------------------------- ingest


@dataclass
class IngestResult:
    """What :func:`ingest_answers` did.

    Attributes:
        step: the step answered.
        regions: number of regions (or whole images) answered.
        written: False when the same answers were already stored (nothing changed).
        path: the answers file of the step.
    """

    step: int
    regions: int
    written: bool
    path: Path


def _binary(values: np.ndarray, path: Path) -> np.ndarray:
    """A 0/1 or 0/255 label image as bool, or DataError naming the file."""
    found = set(np.unique(values).tolist())
    if not any(found <= set(allowed) for allowed in LABEL_SETS):
        bad = sorted(found - {0, 1, 255})
        what = f"values {bad[:5]} are" if bad else "a mix of 1 and 255 is"
        raise DataError(f"{path}: {what} outside the label set; use 0 for background and either 1 or 255 "
                        "(not both) for object")
    return values > 0


def _read_png(path: Path, row: dict[str, Any]) -> np.ndarray:
    """One answer PNG of a region, checked for size and values, as bool [h, w]."""
    values = read_labels(path)
    shape = (int(row["height"]), int(row["width"]))
    if values.shape != shape:
        raise DataError(f"{path}: mask is {values.shape[0]}x{values.shape[1]} but region {row['id']} is "
                        f"{shape[0]}x{shape[1]}; save it at the size of the exported crop")
    return _binary(values, path)


def _answer_files(source: Path, req: StoredRequest) -> tuple[dict[str, Path], dict[str, Path], dict[str, Path]]:
    """Mask PNGs and contour PNGs by region id, GeoJSON files by image name, found in ``source``.

    Files of other steps (another ``sKKK-`` prefix) and files of other kinds are ignored.
    """
    if not source.is_dir():
        raise DataError(f"{source}: answers folder not found; give the folder holding the corrected masks")
    ids, names = set(req.ids), set(req.image_names)
    masks, contours, geo = {}, {}, {}
    for path in sorted(source.iterdir()):
        match = _STEP_PREFIX.match(path.name)
        if not match or int(match.group(1)) != req.step:
            continue
        for suffix, found, known, what in (("_mask.png", masks, ids, "region id"),
                                           ("_contour.png", contours, ids, "region id"),
                                           (".geojson", geo, names, "image")):
            if path.name.endswith(suffix):
                key = path.name[: -len(suffix)]
                key = key[5:] if suffix == ".geojson" else key
                if key not in known:
                    raise DataError(f"{path}: unknown {what} {key!r}: step {req.step} asks for "
                                    f"{sorted(known)[:3]}...; check the name against manifest.csv")
                found[key] = path
    return masks, contours, geo


def _geojson_instances(path: Path, req: StoredRequest, image_name: str) -> np.ndarray:
    """Rasterised objects of one image's GeoJSON answer, checked to stay inside the regions, [H, W] int32."""
    k = req.image_names.index(image_name)
    shape = req.images.shape[1:3]
    inside = np.zeros(shape, bool)
    for row in (r for r in req.regions if req.local(r) == k):
        inside[req.region(row).slices] = True
    out = np.zeros(shape, np.int32)
    for n, rings in enumerate(geojson_polygons(path), start=1):
        try:
            rr, cc = _polygon_pixels(rings, shape)
        except ValueError as err:
            raise DataError(f"{path}: object polygon {n}: {err}; keep every object inside its Region "
                            "rectangle") from None
        in_image = (rr >= 0) & (rr < shape[0]) & (cc >= 0) & (cc < shape[1])
        spill = ~in_image
        spill[in_image] = ~inside[rr[in_image], cc[in_image]]
        if spill.any():
            y, x = int(rr[spill][0]), int(cc[spill][0])
            raise DataError(f"{path}: object polygon {n} covers pixels outside the regions to annotate "
                            f"(e.g. x={x}, y={y}); keep every object inside its Region rectangle")
        out[rr, cc] = n
    return out


def _answer_region(row: dict[str, Any], req: StoredRequest, source: Path, files: tuple[dict, dict, dict],
                   geo_cache: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, str]:
    """Object and contour labels [h, w] uint8 of one region, and the file that answered it."""
    masks, contours, geo = files
    rid, name = row["id"], row["image_name"]
    if rid in masks and name in geo:
        raise DataError(f"{masks[rid]}: region {rid} is also answered by {geo[name]}; keep one of the two")
    if rid not in masks and name not in geo:
        raise DataError(f"{source / f'{rid}_mask.png'}: missing file, region {rid} has no answer; save its "
                        f"mask there (or outline image {name} in {geojson_name(req.step, name)})")
    if rid in contours and rid not in masks:
        raise DataError(f"{contours[rid]}: a contour answer needs its object mask {rid}_mask.png next to it")
    if rid in masks:
        obj = _read_png(masks[rid], row)
        instances = connected_components(obj, connectivity=2)  # [h, w]
        src = masks[rid]
    else:
        if name not in geo_cache:
            geo_cache[name] = _geojson_instances(geo[name], req, name)
        instances = geo_cache[name][req.region(row).slices]  # [h, w]
        obj, src = instances > 0, geo[name]
    con = _read_png(contours[rid], row) if rid in contours else contour_target(instances, req.contour_radius)
    return obj.astype(np.uint8), con.astype(np.uint8), src.name


def _current_store(run_dir: Path) -> tuple[int, LabelStore | None]:
    """The last finished step of a run and its label store (None before step 0 finished)."""
    path = run_dir / "state.json"
    if not path.exists():
        return -1, None
    advice = ("answers are checked against the labels of the last finished step: rerun the run's `alseg run "
              "... --oracle files` command first (with --recover when it says so)")
    state = read_json_file(path, "the run state", advice)
    step, labels_file = state.get("step"), state.get("labels_file")
    if not isinstance(step, int) or (step >= 0 and not isinstance(labels_file, str)):
        raise damaged_file_error(path, "the run state", "it names no step or label store", advice)
    if step < 0:
        return step, None
    return step, LabelStore.load(run_dir / labels_file, advice=f"the run cannot go on from step {step} (earlier "
                                 "steps' files are not kept): continue it in a new --out folder")


def _stack_padded(patches: Sequence[np.ndarray]) -> np.ndarray:
    """Patches of possibly different [h, w] (superpixel windows) as one zero-padded [R, h_max, w_max] uint8."""
    h_max, w_max = max(p.shape[0] for p in patches), max(p.shape[1] for p in patches)
    out = np.zeros((len(patches), h_max, w_max), dtype=np.uint8)
    for r, p in enumerate(patches):
        out[r, : p.shape[0], : p.shape[1]] = p
    return out


def _merge_with_store(row: dict[str, Any], req: StoredRequest, obj: np.ndarray, con: np.ndarray,
                      store: LabelStore | None, src: str, area: np.ndarray | None = None) -> np.ndarray:
    """Refuse an object answer that changes earlier labels; keep earlier contour labels. Returns contours.

    ``area`` (superpixels, [h, w] bool): only these pixels will be stored, so only they are checked.
    """
    if store is None:
        return con
    reg = req.region(row)
    old_obj, old_con = store.labels[(reg.image, *reg.slices)], store.contours[(reg.image, *reg.slices)]
    known = (old_obj != UNLABELLED) & store.valid[(reg.image, *reg.slices)]  # [h, w]
    clash = known & (old_obj != obj)
    if area is not None:
        clash &= area
    if clash.any():
        y, x = (int(v[0]) for v in np.nonzero(clash))
        raise DataError(f"{src}: {int(clash.sum())} pixels of region {row['id']} were labelled at an earlier step "
                        f"and this answer changes them (e.g. row {y}, column {x} of the crop: was "
                        f"{int(old_obj[y, x])}, now {int(obj[y, x])}); keep the earlier labels there")
    return np.where(old_con != UNLABELLED, old_con, con).astype(np.uint8)


def _collect_answers(source: Path, req: StoredRequest) -> dict[str, np.ndarray]:
    """Read and check every answer of a request: ids [R], objects and contours [R, h, w], sources [R]."""
    files = _answer_files(source, req)
    geo_cache: dict[str, np.ndarray] = {}
    answers = [_answer_region(row, req, source, files, geo_cache) for row in req.regions]
    return {"ids": np.array(req.ids, dtype=np.str_), "objects": _stack_padded([a[0] for a in answers]),
            "answered_contours": _stack_padded([a[1] for a in answers]),
            "sources": np.array([a[2] for a in answers], dtype=np.str_)}


def _merge_answers(answers: dict[str, np.ndarray], req: StoredRequest, store: LabelStore | None
                   ) -> dict[str, np.ndarray]:
    """Add ``contours`` (the answered ones, earlier labels kept) after checking objects against ``store``."""
    contours = []
    for r, (row, obj, con, src) in enumerate(zip(req.regions, answers["objects"], answers["answered_contours"],
                                                 answers["sources"], strict=True)):
        h, w = int(row["height"]), int(row["width"])  # answers are zero-padded to the largest window
        contours.append(_merge_with_store(row, req, obj[:h, :w], con[:h, :w], store, src, req.region_mask(r)))
    return {**answers, "contours": _stack_padded(contours)}


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return all(np.array_equal(a[k], b[k]) for k in ("ids", "objects", "answered_contours"))


def ingest_answers(run_dir: str | Path, source: str | Path) -> IngestResult:
    """Check the answers in ``source`` against the latest request and store them, all or nothing.

    Every region of the request needs an answer (PNG or GeoJSON, see the module docstring). Each is
    checked: known region id, exact size, values 0/1 or 0/255, polygons inside their region, no
    change to pixels labelled at an earlier step. The first problem raises one error naming the file
    and nothing is written. Ingesting the same answers again changes nothing.

    Args:
        run_dir: the run folder.
        source: the folder holding the answers.

    Returns:
        What was done.

    Raises:
        DataError: a missing, unknown, bad or unreadable answer file.
        RunStateError: no request to answer, the step's answers were used already and differ, or a
            file of the run folder (request, stored answers, state, label store) is damaged.
    """
    run_dir, source = Path(run_dir), Path(source)
    req = read_request(run_dir)
    answers = _collect_answers(source, req)
    path = step_dir(run_dir, req.step) / "answers.npz"
    done, store = _current_store(run_dir)  # a damaged run folder is refused before anything is written
    old = load_answers(run_dir, req.step)
    if old is not None and _same(old, answers):
        return IngestResult(req.step, len(req.regions), False, path)
    if req.step <= done:
        raise RunStateError(f"{path}: step {req.step} already ran with other answers; they cannot change now")
    answers = _merge_answers(answers, req, store)
    buf = io.BytesIO()
    np.savez_compressed(buf, **answers)
    atomic_write_bytes(path, buf.getvalue())
    return IngestResult(req.step, len(req.regions), True, path)


# ----------------------------------------------------------------------------- scripted round trip


def scripted_annotator(export_dir: str | Path, truth: SegmentationSet, contours: bool = True) -> Path:
    """Answer an export from ground truth, through the same files a person would write.

    Args:
        export_dir: a folder written by :func:`export_request`.
        truth: the training images with their masks, as the model sees them (``load_dataset(cfg,
            "train")``), matched to the request by image name.
        contours: also write ``<id>_contour.png`` from the ground-truth contours (then the run gets
            exactly the labels of the simulated oracle); False lets ingest derive them.

    Returns:
        The answers folder (``export_dir/answers``).
    """
    export_dir = Path(export_dir)
    manifest = json.loads((export_dir / "manifest.json").read_text())
    where = {name: i for i, name in enumerate(truth.names)}
    answers = export_dir / "answers"
    for row in manifest["regions"]:
        i = where[row["image_name"]]
        window = (i, slice(row["top"], row["top"] + row["height"]), slice(row["left"], row["left"] + row["width"]))
        _png(answers / row["mask_file"], (truth.masks[window] > 0).astype(np.uint8) * 255)
        if contours:
            _png(answers / row["contour_file"], (truth.contours[window] > 0).astype(np.uint8))
    return answers


def run_with_annotator(cfg: RunConfig, out_dir: str | Path, annotate: Callable[[Path], Path],
                       export_root: str | Path | None = None, progress: bool = False) -> list[dict[str, Any]]:
    """Run with :class:`FilesOracle`, answering every request through export -> ``annotate`` -> ingest.

    What a person does between ``alseg run --oracle files`` invocations, scripted (notebooks, tests).

    Args:
        cfg: the run configuration.
        out_dir: the run folder.
        annotate: called with each export folder; writes the answers and returns their folder.
        export_root: where the exports go (default ``out_dir/to_annotate``), one ``step_KKK`` each.
        progress: show progress bars.

    Returns:
        The records of the finished run.
    """
    from alseg_utils.active import run_active

    out_dir = Path(out_dir)
    root = Path(export_root) if export_root is not None else out_dir / "to_annotate"
    oracle = FilesOracle(out_dir)
    for _ in range(cfg.active.steps + 2):
        try:
            return run_active(cfg, out_dir, oracle=oracle, progress=progress)
        except AnnotationPending as pending:
            folder = root / f"step_{pending.step:03d}"
            export_request(out_dir, folder, pending.step)
            ingest_answers(out_dir, annotate(folder))
    raise RunStateError(f"{out_dir}: the run kept asking for the same annotations; check the annotator")
