"""Export of a step's request for a person to annotate (``alseg export RUN --to DIR``).

The export folder (the layout its ``HOWTO.txt`` explains)::

    manifest.json, manifest.csv          one row per region (or whole image): id, window, score, files
    regions/<id>_image.png               the crop to label
    regions/<id>_overview.png            the whole image with the region outlined
    regions/<id>_pseudo.png              the model's guess, the starting point (0 / 255)
    regions/<id>_uncertainty.png         the acquisition scores as a viridis map (not at step 0)
    regions/<id>_area.png                superpixels: the pixels of the window that are stored
    images/sKKK-<image>.png, .geojson    whole images with the regions and pseudo-labels for QuPath
    answers/                             where the answers go (see :mod:`alseg_utils.annotation_ingest`)

A step of dominant-class superpixels asks one class per segment instead: no pseudo-label PNG per
row but the model's guess of the class (``pseudo_class``), the segment outlined in the overview,
one GeoJSON feature per segment (its outline, named by its id, class ``Segment``) and the answer
templates ``sKKK-classes.csv`` / ``sKKK-classes.json`` (region id, image, an empty ``class``).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from PIL import Image
from skimage.draw import rectangle_perimeter
from skimage.segmentation import find_boundaries

from alseg_utils.annotation_store import (
    CLASS_ANSWER_FORMAT,
    LABEL_SETS,
    REQUEST_FORMAT,
    StoredRequest,
    classes_file_names,
    geojson_name,
    read_request,
)
from alseg_utils.errors import RunStateError
from alseg_utils.geojson import REGION_CLASS, SEGMENT_CLASS, mask_feature, mask_polygons, polygon_feature
from alseg_utils.oracle import CLASS_NAMES
from alseg_utils.regions import Region
from alseg_utils.results import atomic_write_bytes, atomic_write_json, atomic_write_text, read_json_file

OBJECT_CLASS = "Object"  # GeoJSON classification of the pseudo-label outlines
OUTLINE = (255, 221, 0)  # region rectangle in the overview PNG and the GeoJSON
PSEUDO_OUTLINE = (0, 200, 255)  # pseudo-label boundary in the overview PNG and the GeoJSON

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

HOWTO_CLASSES = """Annotation request: step {step} of {run}

Each row of manifest.csv is one superpixel (a segment of similar pixels): name the class that covers
most of it. Its pixels are the white ones of regions/<region_id>_area.png inside the crop
regions/<region_id>_image.png; regions/<region_id>_overview.png outlines it in the whole image, and
images/<file>.geojson holds every segment's outline (class "Segment", named by its region id) for QuPath.
Copy {csv} (or {json}) into answers/ and fill in the class of every row: {classes}
(or {values}). The pseudo_class column is the model's guess; the class you give is what counts.
Every pixel of the segment is then labelled with that class (no contour is derived from it).
Then run:  alseg ingest {run} --from {answers}
and rerun the `alseg run ... --oracle files` command.
"""


def write_png(path: str | Path, array: np.ndarray) -> None:
    """Write an image atomically as PNG.

    Args:
        path: the file (its folder is created).
        array: [H, W] or [H, W, 3] uint8.
    """
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


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
        features.append(polygon_feature([rect], row["id"], REGION_CLASS, OUTLINE))
        if req.pseudo_object is not None:
            crop = req.pseudo_object[(k, *reg.slices)] * req.valid[(k, *reg.slices)]  # [h, w]
            for rings in mask_polygons(crop):
                shifted = [ring + np.array([reg.left, reg.top]) for ring in rings]
                features.append(polygon_feature(shifted, f"pseudo-label {row['id']}", OBJECT_CLASS, PSEUDO_OUTLINE))
    return {"type": "FeatureCollection", "features": features}


def _overview(image: np.ndarray, reg: Region, pseudo: np.ndarray | None, area: np.ndarray | None = None
              ) -> np.ndarray:
    """The whole image [H, W, 3] with the region outlined (and the pseudo-label boundary inside it).

    With ``area`` (a superpixel to classify, [h, w] bool) the segment is outlined instead of its window.
    """
    out = image.copy()  # [H, W, 3]
    if area is not None:
        canvas = np.zeros(image.shape[:2], bool)
        canvas[reg.slices] = area
        out[find_boundaries(canvas, mode="outer")] = OUTLINE  # the pixels around the segment
        return out
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
    """Score map [h, w] as viridis RGB, [h, w, 3] uint8, 0 .. ``vmax`` mapped to the whole colour range."""
    rgba = colormaps["viridis"](np.clip(scores / vmax, 0.0, 1.0))  # [h, w, 4]
    return (rgba[..., :3] * 255).round().astype(np.uint8)


def _region_pngs(req: StoredRequest, row: dict[str, Any], to: Path, vmax: float) -> dict[str, str]:
    """Write the crop, overview, pseudo-label, uncertainty and area PNGs of one region; their names."""
    k, reg, rid = req.local(row), req.region(row), row["id"]
    files = {"crop": f"regions/{rid}_image.png", "overview": f"regions/{rid}_overview.png",
             "pseudo_label": f"regions/{rid}_pseudo.png", "uncertainty": ""}
    pseudo = None if req.pseudo_object is None else req.pseudo_object[(k, *reg.slices)]  # [h, w]
    write_png(to / files["crop"], req.images[(k, *reg.slices)])
    write_png(to / files["overview"], _overview(req.images[k], reg, pseudo))
    start = np.zeros((reg.height, reg.width), np.uint8) if pseudo is None else pseudo
    write_png(to / files["pseudo_label"], (start * req.valid[(k, *reg.slices)] * 255).astype(np.uint8))
    if req.scores is not None:
        files["uncertainty"] = f"regions/{rid}_uncertainty.png"
        write_png(to / files["uncertainty"], _heat(req.scores[(k, *reg.slices)], vmax))
    area = req.region_mask(req.regions.index(row))
    files["area"] = ""
    if area is not None:  # a superpixel: only its pixels inside the window are kept
        files["area"] = f"regions/{rid}_area.png"
        write_png(to / files["area"], (area * 255).astype(np.uint8))
    return files


def pseudo_class(req: StoredRequest, r: int) -> str:
    """The model's guess of region ``r``'s dominant class: the majority of its pseudo-label over the area.

    Returns:
        A name of :data:`~alseg_utils.oracle.CLASS_NAMES` (a tie is background), or ``""`` without a model.
    """
    area = req.region_mask(r)
    row = req.regions[r]
    if req.pseudo_object is None or area is None:
        return ""
    k, reg = req.local(row), req.region(row)
    inside = area & req.valid[(k, *reg.slices)]  # [h, w]
    objects = int((req.pseudo_object[(k, *reg.slices)][inside] > 0).sum())
    return CLASS_NAMES[int(2 * objects > int(inside.sum()))]


def _export_class_row(req: StoredRequest, r: int, to: Path, vmax: float) -> dict[str, Any]:
    """Write the PNGs of one superpixel to classify; its manifest row."""
    row = req.regions[r]
    k, reg, rid = req.local(row), req.region(row), row["id"]
    area = req.region_mask(r)
    if area is None:
        raise RunStateError(f"request of step {req.step}: region {rid} has no segment area; rerun the "
                            "`alseg run ... --oracle files` command to write the request again")
    files = {"crop": f"regions/{rid}_image.png", "overview": f"regions/{rid}_overview.png",
             "uncertainty": "", "area": f"regions/{rid}_area.png"}
    write_png(to / files["crop"], req.images[(k, *reg.slices)])
    write_png(to / files["overview"], _overview(req.images[k], reg, None, area))
    write_png(to / files["area"], (area * 255).astype(np.uint8))
    if req.scores is not None:
        files["uncertainty"] = f"regions/{rid}_uncertainty.png"
        write_png(to / files["uncertainty"], _heat(req.scores[(k, *reg.slices)], vmax))
    return {"region_id": rid, "step": req.step, "image_index": row["image"], "image_name": row["image_name"],
            "top": reg.top, "left": reg.left, "height": reg.height, "width": reg.width, "score": row["score"],
            **files, "pseudo_class": pseudo_class(req, r),
            "image_file": f"images/s{req.step:03d}-{row['image_name']}.png",
            "outline_file": f"images/{geojson_name(req.step, row['image_name'])}",
            "answer_file": classes_file_names(req.step)[0]}


def segments_geojson(req: StoredRequest, k: int) -> dict[str, Any]:
    """GeoJSON of one image of a dominant-class request: one feature per segment, its outline.

    Args:
        req: the stored request (``class_answers``).
        k: position of the image on axis K of the request.

    Returns:
        A FeatureCollection in the image's pixel coordinates: per segment a Polygon (MultiPolygon
        when its pixels touch only at corners) named by its region id, class ``Segment``.
    """
    features = []
    for r, row in enumerate(req.regions):
        area = req.region_mask(r)
        if req.local(row) == k and area is not None:
            reg = req.region(row)
            features.append(mask_feature(area, row["id"], SEGMENT_CLASS, OUTLINE, offset=(reg.left, reg.top)))
    return {"type": "FeatureCollection", "features": features}


def _write_class_templates(to: Path, req: StoredRequest, rows: list[dict[str, Any]]) -> None:
    """The answer templates ``sKKK-classes.csv`` / ``.json``: one row per segment, ``class`` empty."""
    csv_name, json_name = classes_file_names(req.step)
    table = [{"region_id": r["region_id"], "image_name": r["image_name"], "class": "",
              "pseudo_class": r["pseudo_class"]} for r in rows]
    _write_csv(to / csv_name, table)
    answers = [{**t, "class": None} for t in table]
    atomic_write_json(to / json_name, {"format": CLASS_ANSWER_FORMAT, "step": req.step, "classes": list(CLASS_NAMES),
                                       "answers": answers})


def _export_region(req: StoredRequest, row: dict[str, Any], to: Path, vmax: float) -> dict[str, Any]:
    """Write the PNGs of one region; its manifest row."""
    reg = req.region(row)
    files = _region_pngs(req, row, to, vmax)
    return {"region_id": row["id"], "step": req.step, "image_index": row["image"], "image_name": row["image_name"],
            "top": reg.top, "left": reg.left, "height": reg.height, "width": reg.width, "score": row["score"],
            **files, "image_file": f"images/s{req.step:03d}-{row['image_name']}.png",
            "mask_file": f"{row['id']}_mask.png", "contour_file": f"{row['id']}_contour.png",
            "geojson_file": geojson_name(req.step, row["image_name"])}


def _check_export_folder(to: Path, run_dir: Path, step: int) -> None:
    """Refuse a ``to`` folder holding anything but an export of this very request."""
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


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    atomic_write_text(path, buf.getvalue())


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
    if req.class_answers:
        rows = [_export_class_row(req, r, to, vmax) for r in range(len(req.regions))]
    else:
        rows = [_export_region(req, row, to, vmax) for row in req.regions]
    geojson = segments_geojson if req.class_answers else request_geojson
    for k, name in enumerate(req.image_names):
        write_png(to / "images" / f"s{req.step:03d}-{name}.png", req.images[k])
        atomic_write_text(to / "images" / geojson_name(req.step, name), json.dumps(geojson(req, k)))
    (to / "answers").mkdir(parents=True, exist_ok=True)
    if req.class_answers:
        _write_class_templates(to, req, rows)
        csv_name, json_name = classes_file_names(req.step)
        howto = HOWTO_CLASSES.format(step=req.step, run=run_dir, csv=csv_name, json=json_name,
                                     classes=" or ".join(CLASS_NAMES), values="0 / 1", answers=to / "answers")
    else:
        what = "whole image" if req.whole_images else "region"
        howto = HOWTO.format(step=req.step, run=run_dir, what=what, answers=to / "answers")
    atomic_write_text(to / "HOWTO.txt", howto)
    _write_csv(to / "manifest.csv", rows)
    manifest = {"format": REQUEST_FORMAT, "run": str(run_dir.resolve()), "step": req.step,
                "whole_images": req.whole_images, "class_answers": req.class_answers,
                "label_values": [list(s) for s in LABEL_SETS], "class_values": list(CLASS_NAMES),
                "uncertainty_max": vmax, "contour_radius": req.contour_radius, "regions": rows}
    atomic_write_json(to / "manifest.json", manifest)
    return to / "manifest.json"
