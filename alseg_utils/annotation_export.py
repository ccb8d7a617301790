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

from alseg_utils.annotation_store import LABEL_SETS, REQUEST_FORMAT, StoredRequest, geojson_name, read_request
from alseg_utils.errors import RunStateError
from alseg_utils.geojson import REGION_CLASS, mask_polygons, polygon_feature
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


def _overview(image: np.ndarray, reg: Region, pseudo: np.ndarray | None) -> np.ndarray:
    """The whole image [H, W, 3] with the region outlined (and the pseudo-label boundary inside it)."""
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
    rows = [_export_region(req, row, to, vmax) for row in req.regions]
    for k, name in enumerate(req.image_names):
        write_png(to / "images" / f"s{req.step:03d}-{name}.png", req.images[k])
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
