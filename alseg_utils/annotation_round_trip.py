"""The annotation round trip, scripted: export -> annotate -> ingest -> rerun, until the run ends.

What a person does between ``alseg run --oracle files`` invocations, as library calls for the
notebooks and the tests. It drives the loop (:func:`~alseg_utils.active.run_active`), so it sits
above both the loop and the annotation modules; those never import the loop.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from alseg_utils._annotation_run_folder import to_annotate_dir
from alseg_utils.active import run_active
from alseg_utils.annotation_export import export_request, write_png
from alseg_utils.annotation_ingest import ingest_answers
from alseg_utils.annotation_store import classes_file_names
from alseg_utils.config import RunConfig
from alseg_utils.data import SegmentationSet, read_labels
from alseg_utils.errors import RunStateError
from alseg_utils.files_oracle import AnnotationPending, FilesOracle
from alseg_utils.oracle import CLASS_NAMES, dominant_classes
from alseg_utils.regions import Region
from alseg_utils.results import atomic_write_text


def scripted_annotator(export_dir: str | Path, truth: SegmentationSet, contours: bool = True) -> Path:
    """Answer an export from ground truth, through the same files a person would write.

    A step of dominant-class superpixels is answered with its class table (``sKKK-classes.csv``):
    the ground-truth majority over each segment's area (:func:`~alseg_utils.oracle.dominant_classes`,
    what the simulated oracle answers).

    Args:
        export_dir: a folder written by :func:`~alseg_utils.annotation_export.export_request`.
        truth: the training images with their masks, as the model sees them (``load_dataset(cfg,
            "train")``), matched to the request by image name.
        contours: also write ``<id>_contour.png`` from the ground-truth contours (then the run gets
            exactly the labels of the simulated oracle); False lets ingest derive them.

    Returns:
        The answers folder (``export_dir/answers``).
    """
    export_dir = Path(export_dir)
    manifest = json.loads((export_dir / "manifest.json").read_text())
    if manifest.get("class_answers"):
        return _answer_classes(export_dir, manifest, truth)
    where = {name: i for i, name in enumerate(truth.names)}
    answers = export_dir / "answers"
    for row in manifest["regions"]:
        i = where[row["image_name"]]
        window = (i, slice(row["top"], row["top"] + row["height"]), slice(row["left"], row["left"] + row["width"]))
        write_png(answers / row["mask_file"], (truth.masks[window] > 0).astype(np.uint8) * 255)
        if contours:
            write_png(answers / row["contour_file"], (truth.contours[window] > 0).astype(np.uint8))
    return answers


def _answer_classes(export_dir: Path, manifest: dict[str, Any], truth: SegmentationSet) -> Path:
    """Write the class table of a dominant-class export from ground truth; the answers folder."""
    where = {name: i for i, name in enumerate(truth.names)}
    rows = manifest["regions"]
    regions = [Region(where[r["image_name"]], r["top"], r["left"], r["height"], r["width"]) for r in rows]
    areas = [read_labels(export_dir / r["area"]) > 0 for r in rows]  # [h, w] each: the segment's pixels
    classes = dominant_classes(truth.masks, regions, areas, truth.valid)  # [R]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["region_id", "image_name", "class"])
    writer.writerows([r["region_id"], r["image_name"], CLASS_NAMES[int(c)]] for r, c in zip(rows, classes, strict=True))
    answers = export_dir / "answers"
    atomic_write_text(answers / classes_file_names(int(manifest["step"]))[0], buf.getvalue())
    return answers


def run_with_annotator(cfg: RunConfig, out_dir: str | Path, annotate: Callable[[Path], Path],
                       export_root: str | Path | None = None, progress: bool = False) -> list[dict[str, Any]]:
    """Run with :class:`FilesOracle`, answering every request through export -> ``annotate`` -> ingest.

    Args:
        cfg: the run configuration.
        out_dir: the run folder.
        annotate: called with each export folder; writes the answers and returns their folder.
        export_root: where the exports go (default ``out_dir/to_annotate``), one ``step_KKK`` each.
        progress: show progress bars.

    Returns:
        The records of the finished run.

    Raises:
        RunStateError: the run asked for more annotation rounds than it has steps (the answers
            never satisfy it).
    """
    out_dir = Path(out_dir)
    oracle = FilesOracle(out_dir)
    for _ in range(cfg.active.steps + 2):
        try:
            return run_active(cfg, out_dir, oracle=oracle, progress=progress)
        except AnnotationPending as pending:
            folder = to_annotate_dir(out_dir, pending.step, export_root)
            export_request(out_dir, folder, pending.step)
            ingest_answers(out_dir, annotate(folder))
    raise RunStateError(f"{out_dir}: the run kept asking for the same annotations; check the annotator")
