"""Ingest of a person's answers into the run folder (``alseg ingest RUN --from DIR/answers``), all or nothing.

Answers. One PNG per region, ``<id>_mask.png``, the size of the crop, 0 = background and 1 (or 255)
= object; or one GeoJSON file per image, ``sKKK-<image>.geojson``, with one polygon per object in the
pixel coordinates of the exported whole image (see :mod:`alseg_utils.geojson`). The annotator
answers the object mask only: contour labels are derived from it with
:func:`~alseg_utils.data.contour_target` on the crop (objects = the connected components of a PNG,
one per polygon of a GeoJSON file); a ``<id>_contour.png`` next to the mask overrides that (a
scripted annotator answering from ground truth uses it). Pixels labelled at an earlier step keep
their labels: an object answer that contradicts them is refused, and their contour labels are
kept. Zero padding is never labelled.

Class answers (a step of dominant-class superpixels). One table for the step, ``sKKK-classes.csv``
(columns ``region_id`` and ``class``; others, such as ``image_name`` and ``pseudo_class``, are
ignored except that a given ``image_name`` must be the segment's) or ``sKKK-classes.json``
(``{"answers": [{"region_id": ..., "class": ...}, ...]}``), the templates the export wrote with the
classes filled in. A class is ``object`` or ``background`` (any case) or ``1`` / ``0``. Every segment
of the request is answered exactly once; a missing, duplicate or unknown id, a class outside those,
a malformed table, both tables or a mask file for this step refuse the whole answer.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from skimage.measure import label as connected_components

from alseg_utils._annotation_run_folder import last_finished_labels
from alseg_utils.annotation_store import (
    LABEL_SETS,
    StoredRequest,
    answers_path,
    classes_file_names,
    geojson_name,
    load_answers,
    read_request,
    save_answers,
)
from alseg_utils.data import contour_target, read_labels
from alseg_utils.errors import DataError, RunStateError
from alseg_utils.geojson import geojson_polygons, polygon_pixels
from alseg_utils.labels import UNLABELLED, LabelStore
from alseg_utils.oracle import CLASS_NAMES

_STEP_PREFIX = re.compile(r"^s(\d{3})-")

CLASS_VALUES = {**{name: k for k, name in enumerate(CLASS_NAMES)}, **{str(k): k for k in range(len(CLASS_NAMES))}}
"""What a class answer may say (lower case, stripped) -> the class: ``background`` / ``0``, ``object`` / ``1``."""

_AnswerFiles = tuple[dict[str, Path], dict[str, Path], dict[str, Path]]  # masks, contours (by id), GeoJSON (by image)


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


def _answer_files(source: Path, req: StoredRequest) -> _AnswerFiles:
    """Mask PNGs and contour PNGs by region id, GeoJSON files by image name, found in ``source``.

    Files of other steps (another ``sKKK-`` prefix) and files of other kinds are ignored.
    """
    if not source.is_dir():
        raise DataError(f"{source}: answers folder not found; give the folder holding the corrected masks")
    ids, names = set(req.ids), set(req.image_names)
    masks: dict[str, Path] = {}
    contours: dict[str, Path] = {}
    geo: dict[str, Path] = {}
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
            rr, cc = polygon_pixels(rings, shape)
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


def _answer_region(row: dict[str, Any], req: StoredRequest, source: Path, files: _AnswerFiles,
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


def _class_table(source: Path, req: StoredRequest) -> Path:
    """The one class table of the step in ``source``; refuses mask answers and a second table."""
    names = classes_file_names(req.step)
    if not source.is_dir():
        raise DataError(f"{source}: answers folder not found; give the folder holding {names[0]}")
    tables = [source / name for name in names if (source / name).is_file()]
    for path in sorted(source.iterdir()):
        match = _STEP_PREFIX.match(path.name)
        if match and int(match.group(1)) == req.step and path.name.endswith(("_mask.png", "_contour.png", ".geojson")):
            raise DataError(f"{path}: step {req.step} asks one class per superpixel, not masks or outlines; "
                            f"answer in {names[0]} and remove this file")
    if len(tables) == 2:
        raise DataError(f"{tables[0]}: the classes are also answered by {tables[1]}; keep one of the two")
    if not tables:
        raise DataError(f"{source / names[0]}: missing file, step {req.step} asks one class for each of "
                        f"{len(req.regions)} superpixels; fill in the class column of the exported {names[0]} there")
    return tables[0]


def _table_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a class table (CSV or JSON) as dicts, or DataError naming the file."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's CSV may start with a byte-order mark
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read this file ({type(err).__name__}); save it again as UTF-8 text") from None
    if path.suffix == ".csv":
        try:
            reader = csv.DictReader(text.splitlines(), strict=True)
            rows = list(reader)
        except csv.Error as err:
            raise DataError(f"{path}: malformed CSV ({err}); keep the exported columns region_id and class") from None
        if reader.fieldnames is None or not {"region_id", "class"} <= set(reader.fieldnames):
            raise DataError(f"{path}: malformed CSV: it needs a header row with the columns region_id and class "
                            f"(found {list(reader.fieldnames or [])})")
        return [dict(r) for r in rows]
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: malformed JSON ({err.msg} at line {err.lineno}); export the template again") from None
    answers = obj.get("answers") if isinstance(obj, dict) else None
    if not isinstance(answers, list) or not all(isinstance(a, dict) for a in answers):
        raise DataError(f'{path}: malformed JSON: expected {{"answers": [{{"region_id": ..., "class": ...}}, ...]}}')
    return answers


def _class_value(value: Any, rid: str, path: Path) -> int:
    """One answered class as 0 / 1, or DataError naming the region and the file."""
    text = "" if value is None else str(value).strip().lower()
    if not text:
        raise DataError(f"{path}: region {rid} has no class; give {' or '.join(CLASS_NAMES)} (or 0 / 1) for every row")
    if text not in CLASS_VALUES:
        raise DataError(f"{path}: class {value!r} of region {rid} is not one of {', '.join(CLASS_NAMES)}, 0, 1")
    return CLASS_VALUES[text]


def _collect_classes(source: Path, req: StoredRequest) -> dict[str, np.ndarray]:
    """Read and check the class table of a dominant-class step: ids [R], classes [R] uint8, sources [R]."""
    path = _class_table(source, req)
    names = {row["id"]: row["image_name"] for row in req.regions}
    classes: dict[str, int] = {}
    for n, row in enumerate(_table_rows(path), start=1):
        rid = str(row.get("region_id") or "").strip()
        if rid not in names:
            raise DataError(f"{path}: row {n}: unknown region id {rid!r}: step {req.step} asks for "
                            f"{sorted(names)[:3]}...; check the id against manifest.csv")
        if rid in classes:
            raise DataError(f"{path}: row {n}: region {rid} is answered twice; keep one row per region")
        image = str(row.get("image_name") or "").strip()
        if image and image != names[rid]:
            raise DataError(f"{path}: row {n}: region {rid} lies in image {names[rid]}, not {image}; "
                            "check the row against manifest.csv")
        classes[rid] = _class_value(row.get("class"), rid, path)
    missing = [rid for rid in req.ids if rid not in classes]
    if missing:
        raise DataError(f"{path}: {len(missing)} regions have no row, e.g. {missing[0]}; answer every row of "
                        "the exported template")
    return {"ids": np.array(req.ids, dtype=np.str_), "classes": np.array([classes[i] for i in req.ids], np.uint8),
            "sources": np.array([path.name] * len(req.ids), dtype=np.str_)}


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    keys = ("ids", "classes") if "classes" in b else ("ids", "objects", "answered_contours")
    return all(k in a and np.array_equal(a[k], b[k]) for k in keys)


def ingest_answers(run_dir: str | Path, source: str | Path) -> IngestResult:
    """Check the answers in ``source`` against the latest request and store them, all or nothing.

    Every region of the request needs an answer (PNG or GeoJSON, see the module docstring). Each is
    checked: known region id, exact size, values 0/1 or 0/255, polygons inside their region, no
    change to pixels labelled at an earlier step. A dominant-class step needs its class table
    instead: every segment once, each class allowed. The first problem raises one error naming the file
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
    answers = _collect_classes(source, req) if req.class_answers else _collect_answers(source, req)
    path = answers_path(run_dir, req.step)
    done, store = last_finished_labels(run_dir)  # a damaged run folder is refused before anything is written
    old = load_answers(run_dir, req.step)
    if old is not None and _same(old, answers):
        return IngestResult(req.step, len(req.regions), False, path)
    if req.step <= done:
        raise RunStateError(f"{path}: step {req.step} already ran with other answers; they cannot change now")
    # class answers label only never-labelled pixels (a segment's area), so there is nothing to merge
    save_answers(run_dir, req.step, answers if req.class_answers else _merge_answers(answers, req, store))
    return IngestResult(req.step, len(req.regions), True, path)
