"""Human-in-the-loop round trip: FilesOracle, export, ingest (all or nothing), GeoJSON, your own data."""

from __future__ import annotations

import ast
import csv
import functools
import importlib.util
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from skimage.measure import label

from alseg_utils.active import ActiveRun, run_active
from alseg_utils.annotation import (
    AnnotationPending,
    FilesOracle,
    export_request,
    geojson_name,
    geojson_polygons,
    ingest_answers,
    load_answers,
    mask_polygons,
    polygons_mask,
    read_request,
    region_id,
    step_dir,
    to_annotate_dir,
)
from alseg_utils.annotation_round_trip import run_with_annotator, scripted_annotator
from alseg_utils.cli import main
from alseg_utils.config import UNLABELLED, load_config
from alseg_utils.data import contour_target, load_dataset
from alseg_utils.errors import ConfigError, DataError, RunStateError
from alseg_utils.labels import LabelStore
from alseg_utils.oracle import AnnotationRequest
from alseg_utils.regions import Region

# the tiny run (tests/conftest.py), one region-BALD step with fewer restarts, one test image
ANNOTATION_RUN = {
    "data": {"max_test": 1},
    "train": {"iterations": 2},
    "active": {"strategy": "region", "acquisition": "bald", "steps": 1, "restarts_region": 1},
    "eval": {"min_object_size": 50},  # few objects: fast object metrics
}


def _comparable(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "timing"} for r in records]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _pending(cfg, run_dir: Path, oracle: FilesOracle | None = None) -> AnnotationPending:
    with pytest.raises(AnnotationPending) as info:
        run_active(cfg, run_dir, oracle=oracle or FilesOracle(run_dir), progress=False)
    return info.value


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def params(tmp_path_factory: pytest.TempPathFactory, tiny_params: Callable[..., Path]) -> Path:
    return tiny_params(tmp_path_factory.mktemp("params"), **ANNOTATION_RUN)


@pytest.fixture(scope="module")
def cfg(params: Path):
    return load_config(params)


@pytest.fixture(scope="module")
def truth(cfg):
    return load_dataset(cfg, "train")


@pytest.fixture(scope="module")
def simulated(cfg, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    return run_active(cfg, tmp_path_factory.mktemp("simulated") / "run", progress=False)


@pytest.fixture(scope="module")
def paused(cfg, truth, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A files run whose step 0 was answered, now waiting for step 1 (kept pristine: copy it)."""
    root = tmp_path_factory.mktemp("paused")
    run = root / "run"
    assert _pending(cfg, run).step == 0
    scripted_annotator(export_request(run, root / "export0").parent, truth)
    ingest_answers(run, root / "export0" / "answers")
    assert _pending(cfg, run).step == 1
    export_request(run, root / "export1")
    return {"run": run, "export": root / "export1"}


@pytest.fixture(scope="module")
def finished(cfg, truth, paused: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The paused run carried to its end by the scripted annotator, interrupted on the way."""
    root = tmp_path_factory.mktemp("finished")
    run = root / "run"
    shutil.copytree(paused["run"], run)
    seen: dict = {"request": (step_dir(run, 1) / "request.json").read_bytes()}
    seen["pending"] = _pending(cfg, run)  # interrupted between export and ingest: rerun
    seen["request_again"] = (step_dir(run, 1) / "request.json").read_bytes()
    answers = scripted_annotator(export_request(run, root / "export1").parent, truth)
    seen["first_ingest"] = ingest_answers(run, answers)
    before = _snapshot(run)
    seen["second_ingest"] = ingest_answers(run, answers)
    seen["unchanged"] = _snapshot(run) == before
    records = run_with_annotator(cfg, run, functools.partial(scripted_annotator, truth=truth),
                                 export_root=root / "exports")
    return {"run": run, "answers": answers, "records": records, "seen": seen}


@pytest.fixture
def paused_copy(paused: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    run, export = tmp_path / "work" / "run", tmp_path / "work" / "export"
    shutil.copytree(paused["run"], run)
    shutil.copytree(paused["export"], export)
    manifest = json.loads((export / "manifest.json").read_text())
    return {"run": run, "export": export, "answers": export / "answers", "manifest": manifest}


# ----------------------------------------------------------------------------- ids, paths, layering


def test_region_ids_are_stable_and_readable() -> None:
    assert region_id(1, "train_12", Region(4, 40, 64, 16, 16)) == "s001-train_12-40-64"
    assert region_id(0, "train_3") == "s000-train_3"
    assert geojson_name(12, "ISIC_0000001") == "s012-ISIC_0000001.geojson"


def test_folders_of_a_step_are_named_in_one_place(tmp_path: Path) -> None:
    assert step_dir(tmp_path, 3) == tmp_path / "annotations" / "step_003"
    assert to_annotate_dir(tmp_path, 3) == tmp_path / "to_annotate" / "step_003"
    assert to_annotate_dir(tmp_path, 12, root=tmp_path / "exports") == tmp_path / "exports" / "step_012"
    message = str(AnnotationPending(tmp_path, 3, 5, 2, whole_images=False))
    assert f"--to {to_annotate_dir(tmp_path, 3)}`" in message and "5 regions of 2 images" in message


ANNOTATION_MODULES = ("annotation", "annotation_store", "files_oracle", "geojson", "annotation_export",
                      "annotation_ingest", "_annotation_run_folder")


def _alseg_imports(module: str) -> set[str]:
    """The ``alseg_utils`` modules that ``alseg_utils.<module>`` imports anywhere in its code."""
    source = Path(importlib.util.find_spec(f"alseg_utils.{module}").origin).read_text()
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module == "alseg_utils":  # from alseg_utils import x
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("alseg_utils."):
            found.add(node.module.removeprefix("alseg_utils."))
        elif isinstance(node, ast.Import):
            found.update(a.name.removeprefix("alseg_utils.") for a in node.names if a.name.startswith("alseg_utils."))
    return found


def test_annotation_modules_never_import_the_loop() -> None:
    """Only the scripted round trip drives the loop; the oracle, export and ingest stay below it."""
    seen, todo = set(), list(ANNOTATION_MODULES)
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(_alseg_imports(module))
    assert "active" not in seen, sorted(seen)
    assert "active" in _alseg_imports("annotation_round_trip")  # the check does see an import of the loop


# ----------------------------------------------------------------------------- the round trip


def test_files_oracle_gives_the_records_of_the_simulated_oracle(cfg, simulated, finished: dict) -> None:
    """Scripted annotator through export -> files -> ingest, with interruptions, equals ground truth."""
    seen = finished["seen"]
    # interrupted between export and ingest: the rerun asks for exactly the same regions again
    message = str(seen["pending"])
    assert seen["pending"].step == 1 and "alseg export" in message and "alseg ingest" in message
    assert seen["request_again"] == seen["request"]
    assert seen["first_ingest"].written and not seen["second_ingest"].written and seen["unchanged"]
    assert [r["step"] for r in finished["records"]] == [0, 1]
    assert _comparable(finished["records"]) == _comparable(simulated)
    run = finished["run"]
    assert _comparable(run_active(cfg, run, oracle=FilesOracle(run), progress=False)) == _comparable(simulated)


def test_changed_answers_after_the_step_ran_are_refused(finished: dict, tmp_path: Path) -> None:
    run, answers = tmp_path / "run", tmp_path / "answers"
    shutil.copytree(finished["run"], run)
    shutil.copytree(finished["answers"], answers)
    assert not ingest_answers(run, answers).written  # the same answers after the step ran: no-op
    mask = next(answers.glob("*_mask.png"))
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(mask)
    before = _snapshot(run)
    with pytest.raises(RunStateError, match="already ran"):
        ingest_answers(run, answers)
    assert _snapshot(run) == before


def test_re_ingest_before_the_rerun_replaces_the_answers(truth, paused_copy: dict) -> None:
    run, answers = paused_copy["run"], paused_copy["answers"]
    scripted_annotator(paused_copy["export"], truth, contours=False)
    ingest_answers(run, answers)
    first = load_answers(run, 1)
    row = paused_copy["manifest"]["regions"][0]
    mask = np.asarray(Image.open(answers / row["mask_file"]))
    Image.fromarray(255 - mask).save(answers / row["mask_file"])
    assert ingest_answers(run, answers).written
    again = load_answers(run, 1)
    assert np.array_equal(again["objects"][0], 1 - first["objects"][0])
    assert np.array_equal(again["objects"][1:], first["objects"][1:])


def test_answers_are_checked_and_contours_derived(truth, paused_copy: dict) -> None:
    run = paused_copy["run"]
    scripted_annotator(paused_copy["export"], truth, contours=False)
    ingest_answers(run, paused_copy["answers"])
    got = load_answers(run, 1)
    req = read_request(run, 1)
    names = {n: i for i, n in enumerate(truth.names)}
    assert got["ids"].tolist() == req.ids
    for row, obj, con in zip(req.regions, got["objects"], got["contours"]):
        window = (names[row["image_name"]], *req.region(row).slices)
        assert np.array_equal(obj, truth.masks[window])
        derived = contour_target(label(obj, connectivity=2), 1)
        assert np.array_equal(con, derived.astype(np.uint8))  # derived from the crop's objects


def test_geojson_answers_are_rasterised(truth, paused_copy: dict) -> None:
    run, answers = paused_copy["run"], paused_copy["answers"]
    req = read_request(run, 1)
    names = {n: i for i, n in enumerate(truth.names)}
    for k, name in enumerate(req.image_names):
        features = []
        for row in (r for r in req.regions if req.local(r) == k):
            reg = req.region(row)
            for rings in mask_polygons(truth.masks[(names[name], *reg.slices)]):
                coords = [(ring + [reg.left, reg.top]).tolist() for ring in rings]
                features.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": coords},
                                 "properties": {}})
        (answers / geojson_name(1, name)).write_text(json.dumps({"type": "FeatureCollection",
                                                                 "features": features}))
    assert ingest_answers(run, answers).written
    got = load_answers(run, 1)
    for row, obj in zip(req.regions, got["objects"]):
        assert np.array_equal(obj, truth.masks[(names[row["image_name"]], *req.region(row).slices)])
    assert all(s.endswith(".geojson") for s in got["sources"].tolist())


# ----------------------------------------------------------------------------- bad answers


def _first(manifest: dict) -> dict:
    return manifest["regions"][0]


def _wrong_size(a: Path, m: dict) -> tuple[str, str]:
    Image.fromarray(np.zeros((16, 15), np.uint8)).save(a / _first(m)["mask_file"])
    return _first(m)["mask_file"], "16x15"


def _unknown_id(a: Path, m: dict) -> tuple[str, str]:
    name = "s001-train_999-0-0_mask.png"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(a / name)
    return name, "unknown region id"


def _bad_values(a: Path, m: dict) -> tuple[str, str]:
    Image.fromarray(np.full((16, 16), 7, np.uint8)).save(a / _first(m)["mask_file"])
    return _first(m)["mask_file"], "outside the label set"


def _mixed_values(a: Path, m: dict) -> tuple[str, str]:
    values = np.zeros((16, 16), np.uint8)
    values[0, 0], values[1, 1] = 1, 255
    Image.fromarray(values).save(a / _first(m)["mask_file"])
    return _first(m)["mask_file"], "outside the label set"


def _missing(a: Path, m: dict) -> tuple[str, str]:
    (a / _first(m)["mask_file"]).unlink()
    return _first(m)["mask_file"], "missing file"


def _unreadable(a: Path, m: dict) -> tuple[str, str]:
    (a / _first(m)["mask_file"]).write_bytes(b"not a png")
    return _first(m)["mask_file"], "cannot read"


def _geojson(a: Path, m: dict, content: str) -> str:
    row = _first(m)
    for r in m["regions"]:
        if r["image_name"] == row["image_name"]:
            (a / r["mask_file"]).unlink()
            (a / r["contour_file"]).unlink()
    (a / row["geojson_file"]).write_text(content)
    return row["geojson_file"]


def _spill(a: Path, m: dict) -> tuple[str, str]:
    row = _first(m)
    x0, y0 = row["left"] + 2, row["top"] + 2
    square = [[x0, y0], [x0 + row["width"], y0], [x0 + row["width"], y0 + 3], [x0, y0 + 3], [x0, y0]]
    feature = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [square]}, "properties": {}}
    return _geojson(a, m, json.dumps({"type": "FeatureCollection", "features": [feature]})), "outside the regions"


def _not_json(a: Path, m: dict) -> tuple[str, str]:
    return _geojson(a, m, '{"type": "FeatureCollection", "features": ['), "not a readable GeoJSON"


def _point(a: Path, m: dict) -> tuple[str, str]:
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [3, 4]}, "properties": {}}
    return _geojson(a, m, json.dumps({"type": "FeatureCollection", "features": [feature]})), "is a Point"


def _bad_coords(a: Path, m: dict) -> tuple[str, str]:
    feature = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[1, 2], [3]]]}, "properties": {}}
    return _geojson(a, m, json.dumps({"type": "FeatureCollection", "features": [feature]})), "malformed"


def _not_a_collection(a: Path, m: dict) -> tuple[str, str]:
    return _geojson(a, m, json.dumps({"type": "Polygon"})), "not a GeoJSON FeatureCollection"


def _twice(a: Path, m: dict) -> tuple[str, str]:
    row = _first(m)
    (a / row["geojson_file"]).write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    return row["mask_file"], "also answered"


def _contour_alone(a: Path, m: dict) -> tuple[str, str]:
    contour = (a / _first(m)["contour_file"]).read_bytes()
    _geojson(a, m, json.dumps({"type": "FeatureCollection", "features": []}))
    (a / _first(m)["contour_file"]).write_bytes(contour)
    return _first(m)["contour_file"], "needs its object mask"


BAD = {"wrong size": _wrong_size, "unknown id": _unknown_id, "values": _bad_values, "mixed 1 and 255": _mixed_values,
       "missing file": _missing, "unreadable": _unreadable, "spill": _spill, "not json": _not_json,
       "point": _point, "bad coordinates": _bad_coords, "not a collection": _not_a_collection,
       "answered twice": _twice, "contour alone": _contour_alone}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_answers_are_refused_and_nothing_is_written(case: str, truth, paused_copy: dict) -> None:
    run, answers = paused_copy["run"], paused_copy["answers"]
    scripted_annotator(paused_copy["export"], truth)
    file_name, problem = BAD[case](answers, paused_copy["manifest"])
    before = _snapshot(run)
    with pytest.raises(DataError) as info:
        ingest_answers(run, answers)
    message = str(info.value)
    assert file_name in message and problem in message and "\n" not in message
    assert _snapshot(run) == before


def test_answer_contradicting_earlier_labels_is_refused(truth, paused_copy: dict) -> None:
    """A region overlapping pixels labelled earlier must agree with them (objects); contours are kept."""
    run, answers = paused_copy["run"], paused_copy["answers"]
    scripted_annotator(paused_copy["export"], truth)
    state = json.loads((run / "state.json").read_text())
    store = LabelStore.load(run / state["labels_file"])
    row = _first(paused_copy["manifest"])
    image, top, left = row["image_index"], row["top"], row["left"]
    truth_value = int(np.asarray(Image.open(answers / row["mask_file"]))[0, 0] > 0)
    other_contour = 1 - int(np.asarray(Image.open(answers / row["contour_file"]))[0, 0] > 0)
    store.labels[image, top, left] = 1 - truth_value  # an earlier step labelled this pixel otherwise
    store.contours[image, top, left] = other_contour
    store.save(run / state["labels_file"])
    before = _snapshot(run)
    with pytest.raises(DataError, match="labelled at an earlier step"):
        ingest_answers(run, answers)
    assert _snapshot(run) == before
    store.labels[image, top, left] = truth_value
    store.save(run / state["labels_file"])
    ingest_answers(run, answers)
    got = load_answers(run, 1)
    assert got["contours"][0][0, 0] == other_contour  # the earlier contour label is kept
    assert got["answered_contours"][0][0, 0] == 1 - other_contour


def test_oracle_refuses_answers_for_another_selection(cfg, paused_copy: dict) -> None:
    run = paused_copy["run"]
    req = read_request(run, 1)
    other = {"ids": np.array(["s001-elsewhere-0-0"] * len(req.ids)),
             "objects": np.zeros((len(req.ids), 16, 16), np.uint8)}
    other["contours"] = other["answered_contours"] = other["objects"]
    np.savez(step_dir(run, 1) / "answers.npz", **other)
    with pytest.raises(RunStateError, match="other regions"):
        run_active(cfg, run, oracle=FilesOracle(run), progress=False)


# ----------------------------------------------------------------------------- export


def test_export_writes_crops_pseudo_labels_and_a_manifest(paused: dict, truth) -> None:
    export, req = paused["export"], read_request(paused["run"], 1)
    names = {n: i for i, n in enumerate(truth.names)}  # the request holds the images it names
    assert np.array_equal(req.images, truth.images[[names[n] for n in req.image_names]])
    assert np.array_equal(req.valid, truth.valid[[names[n] for n in req.image_names]])
    manifest = json.loads((export / "manifest.json").read_text())
    rows = list(csv.DictReader((export / "manifest.csv").read_text().splitlines()))
    assert [r["region_id"] for r in rows] == [r["region_id"] for r in manifest["regions"]] == req.ids
    assert len(req.ids) == 3 and manifest["step"] == 1 and not manifest["whole_images"]
    for row, stored in zip(manifest["regions"], req.regions):
        k, reg = req.local(stored), req.region(stored)
        assert np.array_equal(np.asarray(Image.open(export / row["crop"])), req.images[(k, *reg.slices)])
        pseudo = np.asarray(Image.open(export / row["pseudo_label"]))
        assert np.array_equal(pseudo, req.pseudo_object[(k, *reg.slices)] * 255)
        assert np.asarray(Image.open(export / row["uncertainty"])).shape == (16, 16, 3)
        assert np.asarray(Image.open(export / row["overview"])).shape == (64, 96, 3)
        assert row["score"] == pytest.approx(float(req.scores[(k, *reg.slices)].sum()), rel=1e-6)
    # the exported GeoJSON holds the pseudo-labels inside the regions, and reads back exactly
    for k, name in enumerate(req.image_names):
        back = polygons_mask(geojson_polygons(export / "images" / geojson_name(1, name)), (64, 96)) > 0
        expected = np.zeros((64, 96), bool)
        for stored in (r for r in req.regions if req.local(r) == k):
            sl = req.region(stored).slices
            expected[sl] = req.pseudo_object[(k, *sl)] > 0
        assert np.array_equal(back, expected)


def test_export_of_the_initial_set_and_foreign_folders(cfg, paused: dict, tmp_path: Path) -> None:
    export = tmp_path / "e0"
    manifest = json.loads(export_request(paused["run"], export, step=0).read_text())
    assert manifest["whole_images"] and len(manifest["regions"]) == 3
    assert all(r["uncertainty"] == "" and r["score"] is None for r in manifest["regions"])
    pseudo = np.asarray(Image.open(export / manifest["regions"][0]["pseudo_label"]))
    assert pseudo.shape == (64, 96) and not pseudo.any()  # no model yet: start from an empty mask
    export_request(paused["run"], export, step=0)  # exporting the same step again is fine
    with pytest.raises(RunStateError, match="holds the export of step 0"):
        export_request(paused["run"], export, step=1)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    with pytest.raises(RunStateError, match="not an alseg export folder"):
        export_request(paused["run"], tmp_path / "mine")
    with pytest.raises(RunStateError, match="no annotation request for step 7"):
        export_request(paused["run"], tmp_path / "e7", step=7)


# ----------------------------------------------------------------------------- damaged run folders


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _answer_png_truncated(c: dict) -> tuple[str, str]:
    _truncate(c["answers"] / _first(c["manifest"])["mask_file"])
    return _first(c["manifest"])["mask_file"], "cannot read this image"


def _request_json_truncated(c: dict) -> tuple[str, str]:
    _truncate(step_dir(c["run"], 1) / "request.json")
    return "request.json", "rerun the `alseg run"


def _request_json_without_regions(c: dict) -> tuple[str, str]:
    (step_dir(c["run"], 1) / "request.json").write_text('{"step": 1}')
    return "request.json", "rerun the `alseg run"


def _request_npz_truncated(c: dict) -> tuple[str, str]:
    _truncate(step_dir(c["run"], 1) / "request.npz")
    return "request.npz", "rerun the `alseg run"


def _state_truncated(c: dict) -> tuple[str, str]:
    _truncate(c["run"] / "state.json")
    return "state.json", "--recover"


def _labels_truncated(c: dict) -> tuple[str, str]:
    _truncate(c["run"] / "labels_step_000.npz")
    return "labels_step_000.npz", "new --out"


def _stored_answers_truncated(c: dict) -> tuple[str, str]:
    assert main(["ingest", str(c["run"]), "--from", str(c["answers"])]) == 0
    _truncate(step_dir(c["run"], 1) / "answers.npz")
    return "answers.npz", "move the file away"


DAMAGED = {"answer png": _answer_png_truncated, "request.json": _request_json_truncated,
           "request.json fields": _request_json_without_regions, "request.npz": _request_npz_truncated,
           "state": _state_truncated, "labels": _labels_truncated, "stored answers": _stored_answers_truncated}


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_ingest_into_a_damaged_run_folder_gives_one_line_and_changes_nothing(
        case: str, truth, paused_copy: dict, refused: Callable[..., str]) -> None:
    scripted_annotator(paused_copy["export"], truth)
    name, advice = DAMAGED[case](paused_copy)
    refused(["ingest", str(paused_copy["run"]), "--from", str(paused_copy["answers"])], paused_copy["run"],
            name, advice)


def test_export_from_a_damaged_request_or_into_a_damaged_export(paused_copy: dict, tmp_path: Path,
                                                                refused: Callable[..., str]) -> None:
    run, export = paused_copy["run"], paused_copy["export"]
    (export / "manifest.json").write_text('{"run": ')
    refused(["export", str(run), "--to", str(export)], export, "manifest.json", "choose another --to")
    _truncate(step_dir(run, 1) / "request.npz")
    refused(["export", str(run), "--to", str(tmp_path / "new")], run, "request.npz", "rerun the `alseg run")
    assert not (tmp_path / "new").exists()


def test_files_run_with_damaged_stored_answers(params: Path, truth, paused_copy: dict,
                                               refused: Callable[..., str]) -> None:
    run = paused_copy["run"]
    scripted_annotator(paused_copy["export"], truth)
    name, advice = _stored_answers_truncated(paused_copy)
    refused(["run", str(params), "--oracle", "files", "--no-progress", "--out", str(run)], run, name, advice)


def test_oracle_needs_the_request() -> None:
    oracle = FilesOracle("nowhere")
    with pytest.raises(ValueError, match="AnnotationRequest"):
        oracle.label_images([0])
    with pytest.raises(ValueError, match="does not match"):
        oracle.label_images([0], AnnotationRequest(step=0, images=[1], image_names=["a"]))


def test_oracle_refuses_a_request_for_images_the_data_no_longer_holds(truth, paused_copy: dict) -> None:
    run = paused_copy["run"]
    oracle = FilesOracle(run, train=truth.subset([0, 1]))
    with pytest.raises(RunStateError, match="asks for image 'gone'"):
        oracle.label_images([0], AnnotationRequest(step=5, images=[0], image_names=["gone"]))
    assert not step_dir(run, 5).exists()


# ----------------------------------------------------------------------------- your own data


@pytest.fixture(scope="module")
def own_data(truth, tmp_path_factory: pytest.TempPathFactory, tiny_config: Callable[..., dict]) -> Path:
    """Images only: no masks, no test set (a user's unlabelled slides)."""
    root = tmp_path_factory.mktemp("own")
    (root / "data" / "train" / "images").mkdir(parents=True)
    for image, name in zip(truth.images[:9], truth.names[:9]):
        Image.fromarray(image).save(root / "data" / "train" / "images" / f"{name}.png")
    raw = tiny_config(**{**ANNOTATION_RUN, "active": {**ANNOTATION_RUN["active"], "strategy": "full"}})
    raw["data"] = {"dataset": "folder", "root": "data", "synthetic": False, "image_size": [64, 96],
                   "resize": "resize", "n_initial": 2, "n_val": 0, "contour_radius": 1}
    (root / "own.yaml").write_text(yaml.safe_dump(raw))
    return root / "own.yaml"


def test_own_images_without_masks_through_the_command_line(own_data: Path, truth, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    args = ["run", str(own_data), "--oracle", "files", "--out", str(run), "--no-progress"]
    for step in (0, 1):
        assert main(args) == 3
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"step {step} of" in err and "alseg ingest" in err
        export = tmp_path / f"export{step}"
        assert main(["export", str(run), "--to", str(export)]) == 0
        scripted_annotator(export, truth, contours=step == 0)
        assert main(["ingest", str(run), "--from", str(export / "answers")]) == 0
        assert main(["ingest", str(run), "--from", str(export / "answers")]) == 0
        assert "nothing changed" in capsys.readouterr().out
    assert main(args) == 0
    assert "not evaluated" in capsys.readouterr().out
    records = [json.loads(x) for x in (run / "steps.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [0, 1] and "f1" not in records[-1]
    assert records[0]["labelled_fraction"] == pytest.approx(2 / 9)
    assert records[1]["labelled_fraction"] == pytest.approx(4 / 9)


def test_own_images_need_the_files_oracle_and_no_validation(own_data: Path, tmp_path: Path) -> None:
    cfg = load_config(own_data)
    with pytest.raises(DataError, match="mask"):
        ActiveRun(cfg, tmp_path / "a")  # the simulated oracle needs ground truth
    with pytest.raises(ConfigError, match="data.n_val"):
        ActiveRun(load_config(own_data, {"data.n_val": 2}), tmp_path / "b", oracle=FilesOracle(tmp_path / "b"))
    assert main(["run", str(own_data), "--reference", "--oracle", "files", "--out", str(tmp_path / "c")]) == 2


def test_superpixel_requests_export_their_area_and_match_the_simulated_oracle(params: Path, truth,
                                                                               tmp_path: Path) -> None:
    """Superpixels go to a person as windows plus an area mask; only the area is stored."""
    cfg = load_config(params, {"active.strategy": "superpixel"})
    simulated = run_active(cfg, tmp_path / "simulated", progress=False)
    run = tmp_path / "files"
    records = run_with_annotator(cfg, run, functools.partial(scripted_annotator, truth=truth),
                                 export_root=tmp_path / "exports")
    assert _comparable(records) == _comparable(simulated)
    req = read_request(run, 1)
    assert req.region_masks is not None  # square windows have none; superpixels carry their areas
    assert len(req.region_masks) == len(req.regions) == len(records[1]["superpixels"])
    assert len({r["id"] for r in req.regions}) == len(req.regions)
    manifest = json.loads(export_request(run, tmp_path / "again").read_text())
    for r, row in enumerate(manifest["regions"]):
        area = np.asarray(Image.open(tmp_path / "again" / row["area"]))  # white = stored
        assert req.region_mask(r).shape == (row["height"], row["width"]) and req.region_mask(r).any()
        np.testing.assert_array_equal(area, np.where(req.region_mask(r), 255, 0))
    # labelled: the initial images, and inside each window only its area (the window outside it was not stored)
    store = LabelStore.load(run / json.loads((run / "state.json").read_text())["labels_file"])
    expected = np.zeros(store.labels.shape, dtype=bool)
    expected[:cfg.data.n_initial] = store.valid[:cfg.data.n_initial]
    for r, row in enumerate(req.regions):
        where = (req.region(row).image, *req.region(row).slices)
        expected[where] |= req.region_mask(r) & store.valid[where]
    np.testing.assert_array_equal(store.labelled(), expected)
    assert not expected.all() and expected[cfg.data.n_initial:].any()
    # the person's answers are the labels the simulated oracle gave
    simulated_store = LabelStore.load(tmp_path / "simulated" / json.loads(
        (tmp_path / "simulated" / "state.json").read_text())["labels_file"])
    np.testing.assert_array_equal(store.labels, simulated_store.labels)
    np.testing.assert_array_equal(store.contours, simulated_store.contours)


# ----------------------------------------------------------------------------- dominant-class superpixels


@pytest.fixture(scope="module")
def dominant_paused(params: Path, truth, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A files run of dominant-class superpixels: step 0 answered, waiting for the classes of step 1."""
    cfg = load_config(params, {"active.strategy": "superpixel_dominant"})
    root = tmp_path_factory.mktemp("dominant")
    run = root / "run"
    assert _pending(cfg, run).step == 0  # the initial images: whole masks, as in every run
    scripted_annotator(export_request(run, root / "export0").parent, truth)
    ingest_answers(run, root / "export0" / "answers")
    pending = _pending(cfg, run)
    export_request(run, root / "export1")
    return {"cfg": cfg, "run": run, "export": root / "export1", "pending": pending}


@pytest.fixture
def dominant_copy(dominant_paused: dict, truth, tmp_path: Path) -> dict:
    """A copy of the paused run and its export, answered from ground truth (``answers/s001-classes.csv``)."""
    run, export = tmp_path / "work" / "run", tmp_path / "work" / "export"
    shutil.copytree(dominant_paused["run"], run)
    shutil.copytree(dominant_paused["export"], export)
    answers = scripted_annotator(export, truth)
    return {"run": run, "export": export, "answers": answers, "csv": answers / "s001-classes.csv",
            "manifest": json.loads((export / "manifest.json").read_text())}


def test_dominant_requests_ask_one_class_per_segment_and_round_trip(dominant_paused: dict, truth,
                                                                    tmp_path: Path) -> None:
    cfg, pending = dominant_paused["cfg"], dominant_paused["pending"]
    assert pending.step == 1 and "one class for each of" in str(pending) and "s001-classes.csv" in str(pending)
    req = read_request(dominant_paused["run"], 1)
    assert req.class_answers and req.region_masks is not None and len(req.regions) == pending.count
    simulated = run_active(cfg, tmp_path / "simulated", progress=False)
    run = tmp_path / "files"
    shutil.copytree(dominant_paused["run"], run)
    records = run_with_annotator(cfg, run, functools.partial(scripted_annotator, truth=truth),
                                 export_root=tmp_path / "exports")
    assert _comparable(records) == _comparable(simulated)  # the person's classes are the simulated oracle's
    assert len(records[1]["superpixels"]) == len(req.regions)
    got = load_answers(run, 1)
    assert set(got) == {"ids", "classes", "sources"} and got["ids"].tolist() == req.ids
    assert set(got["sources"].tolist()) == {"s001-classes.csv"}
    store = LabelStore.load(run / json.loads((run / "state.json").read_text())["labels_file"])
    for r, row in enumerate(req.regions):  # each segment's area holds its class, and no contour
        where = (req.region(row).image, *req.region(row).slices)
        area = req.region_mask(r)
        assert (store.labels[where][area] == got["classes"][r]).all()
        assert (store.contours[where][area] == UNLABELLED).all()


def test_dominant_export_writes_outlines_and_answer_templates(dominant_paused: dict) -> None:
    export, req = dominant_paused["export"], read_request(dominant_paused["run"], 1)
    manifest = json.loads((export / "manifest.json").read_text())
    assert manifest["class_answers"] and manifest["class_values"] == ["background", "object"]
    rows = manifest["regions"]
    assert [r["region_id"] for r in rows] == req.ids and all(r["answer_file"] == "s001-classes.csv" for r in rows)
    assert "pseudo_label" not in rows[0] and "mask_file" not in rows[0]  # nothing to draw
    template = list(csv.DictReader((export / "s001-classes.csv").read_text().splitlines()))
    assert [t["region_id"] for t in template] == req.ids and all(t["class"] == "" for t in template)
    assert [t["image_name"] for t in template] == [r["image_name"] for r in req.regions]
    as_json = json.loads((export / "s001-classes.json").read_text())
    assert as_json["step"] == 1 and [a["region_id"] for a in as_json["answers"]] == req.ids
    assert all(a["class"] is None for a in as_json["answers"])
    for r, (row, stored) in enumerate(zip(rows, req.regions)):
        k, reg, area = req.local(stored), req.region(stored), req.region_mask(r)
        guess = req.pseudo_object[(k, *reg.slices)][area & req.valid[(k, *reg.slices)]]
        assert row["pseudo_class"] == template[r]["pseudo_class"] == ("object" if 2 * guess.sum() > guess.size
                                                                      else "background")
        np.testing.assert_array_equal(np.asarray(Image.open(export / row["area"])), np.where(area, 255, 0))
    for k, name in enumerate(req.image_names):  # one feature per segment: its outline, named by its id
        path = export / "images" / geojson_name(1, name)
        features = json.loads(path.read_text())["features"]
        mine = [(r, row) for r, row in enumerate(req.regions) if req.local(row) == k]
        assert [f["properties"]["name"] for f in features] == [row["id"] for _, row in mine]
        assert {f["properties"]["classification"]["name"] for f in features} == {"Segment"}
        for feature, (r, row) in zip(features, mine):
            parts = feature["geometry"]["coordinates"]
            parts = parts if feature["geometry"]["type"] == "MultiPolygon" else [parts]
            drawn = polygons_mask([[np.array(ring) for ring in part] for part in parts], (64, 96)) > 0
            expected = np.zeros((64, 96), bool)
            expected[req.region(row).slices] = req.region_mask(r)
            np.testing.assert_array_equal(drawn, expected)
        assert geojson_polygons(path) == []  # outlines of what to classify are not objects
    assert "s001-classes.csv" in (export / "HOWTO.txt").read_text()


def test_class_answers_as_csv_or_json_are_stored_all_at_once(dominant_copy: dict, tmp_path: Path) -> None:
    run, answers = dominant_copy["run"], dominant_copy["answers"]
    other_run = tmp_path / "other"
    shutil.copytree(run, other_run)
    rows = list(csv.DictReader(dominant_copy["csv"].read_text().splitlines()))
    truth_classes = [1 if r["class"] == "object" else 0 for r in rows]
    assert 0 < sum(truth_classes) < len(rows)  # both classes occur
    assert ingest_answers(run, answers).written
    assert load_answers(run, 1)["classes"].tolist() == truth_classes
    assert not ingest_answers(run, answers).written  # the same answers again: nothing changes
    dominant_copy["csv"].unlink()  # the same classes as JSON, spelled otherwise, in another order
    spelled = [{"region_id": r["region_id"], "class": ("Object " if c else 0)} for r, c in zip(rows, truth_classes)]
    (answers / "s001-classes.json").write_text(json.dumps({"answers": spelled[::-1]}))
    assert not ingest_answers(run, answers).written  # the same classes: nothing changes
    result = ingest_answers(other_run, answers)
    got = load_answers(other_run, 1)
    assert result.written and result.regions == len(rows)
    assert got["classes"].tolist() == truth_classes and got["sources"][0] == "s001-classes.json"
    (answers / "s001-classes.json").write_text(json.dumps({"answers": [{**a, "class": 1} for a in spelled]}))
    assert ingest_answers(other_run, answers).written  # changed before the step ran: replaced
    assert load_answers(other_run, 1)["classes"].tolist() == [1] * len(rows)


def _rewrite(path: Path, edit: Callable[[list[dict]], list[dict]]) -> None:
    rows = edit(list(csv.DictReader(path.read_text().splitlines())))
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["region_id", "image_name", "class"])
        writer.writeheader()
        writer.writerows(rows)


def _set(rows: list[dict], key: str, value: str) -> list[dict]:
    return [{**rows[0], key: value}, *rows[1:]]


def _class_missing_row(c: dict) -> tuple[str, str]:
    _rewrite(c["csv"], lambda rows: rows[:-1])
    return "s001-classes.csv", "have no row"


def _class_duplicate(c: dict) -> tuple[str, str]:
    _rewrite(c["csv"], lambda rows: [*rows, rows[0]])
    return "s001-classes.csv", "answered twice"


def _class_unknown_id(c: dict) -> tuple[str, str]:
    _rewrite(c["csv"], lambda rows: _set(rows, "region_id", "s001-nowhere-0-0"))
    return "s001-classes.csv", "unknown region id 's001-nowhere-0-0'"


def _class_not_allowed(c: dict) -> tuple[str, str]:
    _rewrite(c["csv"], lambda rows: _set(rows, "class", "gland"))
    return "s001-classes.csv", "class 'gland' of region"


def _class_blank(c: dict) -> tuple[str, str]:
    _rewrite(c["csv"], lambda rows: _set(rows, "class", " "))
    return "s001-classes.csv", "has no class"


def _class_other_image(c: dict) -> tuple[str, str]:
    _rewrite(c["csv"], lambda rows: _set(rows, "image_name", "train_999"))
    return "s001-classes.csv", "not train_999"


def _class_no_header(c: dict) -> tuple[str, str]:
    c["csv"].write_text("s001-a,object\n")
    return "s001-classes.csv", "malformed CSV"


def _class_bad_csv(c: dict) -> tuple[str, str]:
    c["csv"].write_text('region_id,class\n"s001-a,object\n')
    return "s001-classes.csv", "malformed CSV"


def _class_bad_json(c: dict) -> tuple[str, str]:
    c["csv"].unlink()
    (c["answers"] / "s001-classes.json").write_text('{"answers": [')
    return "s001-classes.json", "malformed JSON"


def _class_json_shape(c: dict) -> tuple[str, str]:
    c["csv"].unlink()
    (c["answers"] / "s001-classes.json").write_text(json.dumps({"answers": {"s001-a": "object"}}))
    return "s001-classes.json", "malformed JSON"


def _class_both_tables(c: dict) -> tuple[str, str]:
    shutil.copy(c["export"] / "s001-classes.json", c["answers"])
    return "s001-classes.json", "also answered by"


def _class_mask_file(c: dict) -> tuple[str, str]:
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(c["answers"] / f"{_first(c['manifest'])['region_id']}_mask.png")
    return "_mask.png", "asks one class per superpixel"


def _class_no_table(c: dict) -> tuple[str, str]:
    c["csv"].unlink()
    return "s001-classes.csv", "missing file"


BAD_CLASSES = {"missing row": _class_missing_row, "duplicate": _class_duplicate, "unknown id": _class_unknown_id,
               "class not allowed": _class_not_allowed, "blank class": _class_blank, "other image": _class_other_image,
               "no header": _class_no_header, "bad csv": _class_bad_csv, "bad json": _class_bad_json,
               "json shape": _class_json_shape, "both tables": _class_both_tables, "mask file": _class_mask_file,
               "no table": _class_no_table}


@pytest.mark.parametrize("case", sorted(BAD_CLASSES))
def test_bad_class_answers_are_refused_and_nothing_is_written(case: str, dominant_copy: dict) -> None:
    run = dominant_copy["run"]
    file_name, problem = BAD_CLASSES[case](dominant_copy)
    before = _snapshot(run)
    with pytest.raises(DataError) as info:
        ingest_answers(run, dominant_copy["answers"])
    message = str(info.value)
    assert file_name in message and problem in message and "\n" not in message, message
    assert _snapshot(run) == before


def test_bad_class_answers_through_the_command_line(dominant_copy: dict, refused: Callable[..., str]) -> None:
    _class_not_allowed(dominant_copy)
    refused(["ingest", str(dominant_copy["run"]), "--from", str(dominant_copy["answers"])], dominant_copy["run"],
            "s001-classes.csv", "is not one of background, object, 0, 1")


def test_mask_answers_stored_for_a_class_step_are_refused(dominant_paused: dict, dominant_copy: dict) -> None:
    run = dominant_copy["run"]
    ids = read_request(run, 1).ids
    objects = np.zeros((len(ids), 16, 16), np.uint8)
    np.savez(step_dir(run, 1) / "answers.npz", ids=np.array(ids), objects=objects, answered_contours=objects,
             contours=objects)
    with pytest.raises(RunStateError, match="the stored answers are masks"):
        run_active(dominant_paused["cfg"], run, oracle=FilesOracle(run), progress=False)
