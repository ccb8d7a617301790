"""Human-in-the-loop annotation: a file-based oracle, export for the annotator, ingest of the answers.

The round trip of ``alseg run ... --oracle files``::

    alseg run params.yaml --oracle files --out RUN     stops at a step that needs labels (status 3)
    alseg export RUN --to DIR                          crops, pseudo-labels, GeoJSON, manifest
    (the annotator corrects the masks, into DIR/answers)
    alseg ingest RUN --from DIR/answers                checks every file, stores them (all or nothing)
    alseg run params.yaml --oracle files --out RUN     recomputes the same selection, uses the answers

The loop is deterministic on the CPU (MC dropout seeded per step), so the rerun selects exactly the
regions that were exported; the answers are matched by region id and a selection that comes out
differently is refused rather than silently mislabelled. With dominant-class superpixels
(``active.strategy: superpixel_dominant``) a step asks one class per segment: the export writes the
segments' outlines and a class table to fill in (``sKKK-classes.csv`` / ``.json``), ingest checks it.

This module gathers the public names of the modules that do the work, one job each:

- :mod:`alseg_utils.annotation_store`: what a step asks and what was answered, in the run folder
  (ids, :class:`StoredRequest`, :func:`read_request`, :func:`load_answers`);
- :mod:`alseg_utils.files_oracle`: :class:`FilesOracle` and :class:`AnnotationPending`;
- :mod:`alseg_utils.geojson`: masks as polygons and back (:func:`mask_polygons`, :func:`polygons_mask`);
- :mod:`alseg_utils.annotation_export`: :func:`export_request`, the folder a person annotates;
- :mod:`alseg_utils.annotation_ingest`: :func:`ingest_answers`, the answer formats and their checks;
- :mod:`alseg_utils._annotation_run_folder`: every path and file of the run folder they use.

The scripted round trip (:func:`~alseg_utils.annotation_round_trip.run_with_annotator`,
:func:`~alseg_utils.annotation_round_trip.scripted_annotator`) drives the loop itself, so it lives
in :mod:`alseg_utils.annotation_round_trip` and is not re-exported here: importing this module
never imports :mod:`alseg_utils.active`.
"""

from __future__ import annotations

from alseg_utils._annotation_run_folder import request_steps, run_config, step_dir, to_annotate_dir
from alseg_utils.annotation_export import HOWTO, HOWTO_CLASSES, export_request, request_geojson, segments_geojson
from alseg_utils.annotation_ingest import CLASS_VALUES, IngestResult, ingest_answers
from alseg_utils.annotation_store import (
    LABEL_SETS,
    REQUEST_FORMAT,
    StoredRequest,
    classes_file_names,
    geojson_name,
    load_answers,
    read_request,
    region_id,
    write_request,
)
from alseg_utils.files_oracle import AnnotationPending, FilesOracle
from alseg_utils.geojson import geojson_polygons, mask_polygons, polygons_mask

__all__ = [
    "CLASS_VALUES", "HOWTO", "HOWTO_CLASSES", "LABEL_SETS", "REQUEST_FORMAT", "AnnotationPending", "FilesOracle",
    "IngestResult", "StoredRequest", "classes_file_names", "export_request", "geojson_name", "geojson_polygons",
    "ingest_answers", "load_answers", "mask_polygons", "polygons_mask", "read_request", "region_id",
    "request_geojson", "request_steps", "run_config", "segments_geojson", "step_dir", "to_annotate_dir",
    "write_request",
]
