"""The superpixel strategy end to end on a tiny synthetic set: budget, exact masks, determinism, errors,
and the places it shows up (sweep jobs, Table 1, label-efficiency benchmark); dominant-class superpixels
(one class per segment, a click budget) end to end and resumed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from alseg_utils.active import load_selection, prepare_run_data, run_active, run_region, shown_superpixels
from alseg_utils.config import UNLABELLED, config_from_dict, load_config
from alseg_utils.errors import ConfigError
from alseg_utils.labels import LabelStore
from alseg_utils.results import table1, table1_markdown
from alseg_utils.run_folder import RunFolder
from alseg_utils.selection import segments_per_step
from alseg_utils.superpixels import compute_superpixels, load_superpixels
from alseg_utils.sweep import FULL_NOTEBOOK, REGION_NOTEBOOK, check_job_configs, expand_jobs
from alseg_utils.efficiency import headlines, label_efficiency


@pytest.fixture(scope="module")
def params(tmp_path_factory: pytest.TempPathFactory, tiny_params: Callable[..., Path]) -> Path:
    return tiny_params(tmp_path_factory.mktemp("params"), active={"strategy": "superpixel", "acquisition": "bald"})


def _comparable(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "timing"} for r in records]


def test_two_step_superpixel_run_labels_exactly_the_chosen_segments(params: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = load_config(params)
    records = run_region(cfg, out, progress=False)
    assert [r["step"] for r in records] == [0, 1, 2]
    budget = cfg.active.pixel_budget()  # 3 windows of 16 x 16
    segments, _ = load_superpixels(out / "superpixels.npz")  # [N, H, W], computed once, kept with the run
    state = json.loads((out / "state.json").read_text())
    store = LabelStore.load(out / state["labels_file"])
    expected = np.zeros(store.labels.shape, dtype=bool)
    expected[:3] = store.valid[:3]  # the initial images
    for prev, cur in zip(records, records[1:]):
        picked = cur["superpixels"]
        assert picked, "every step picks at least one superpixel"
        assert 0 < cur["acquired_pixels"] == sum(p for _, _, p in picked) <= budget
        assert cur["labelled_pixels"] - prev["labelled_pixels"] == cur["acquired_pixels"]
        for image, segment, _ in picked:
            assert image >= 3  # never an initial (already labelled) image's segment
            expected[image] |= segments[image] == segment
    assert (store.labelled() == expected).all()  # exactly the union of the chosen segments
    # labels are ground truth on exactly those pixels
    train = prepare_run_data(cfg).train  # the AL training images, in the store's order
    np.testing.assert_array_equal(store.labels[expected], train.masks[expected])
    np.testing.assert_array_equal(store.contours[expected], train.contours[expected])


def test_superpixel_selection_is_shown_and_reproducible(params: Path, tmp_path: Path) -> None:
    cfg = load_config(params, {"active.steps": 1})
    a = run_active(cfg, tmp_path / "a", progress=False)
    b = run_active(cfg, tmp_path / "b", progress=False)
    assert _comparable(a) == _comparable(b)
    sel = load_selection(tmp_path / "a", 1)
    outline = shown_superpixels(sel, 0)
    image = int(sel["shown_images"][0])
    chosen = {s for i, s, _ in a[1]["superpixels"] if i == image}
    segments, _ = load_superpixels(tmp_path / "a" / "superpixels.npz")  # [N, H, W]
    assert outline.shape == (64, 96) and len(chosen) >= 1
    # the chosen segments' ids on exactly their pixels, -1 elsewhere
    np.testing.assert_array_equal(outline, np.where(np.isin(segments[image], list(chosen)), segments[image], -1))


def test_diversity_rule_reaches_the_loop(params: Path, tmp_path: Path) -> None:
    cfg = load_config(params, {"active.steps": 1, "active.max_per_image": 1, "active.strategy": "region"})
    rec = run_active(cfg, tmp_path / "r", progress=False)[1]
    images = [r[0] for r in rec["regions"]]
    assert len(images) == len(set(images)) == 3  # three windows, three different images


@pytest.mark.parametrize(("key", "value", "message"), [
    ("superpixel_pixels", 64 * 96 + 1, "larger than the images"),
    ("superpixel_pixels", -1, "must be >= 0"),
    ("superpixel_compactness", 0, "must be a number > 0"),
    ("superpixel_reduce", "median", "not one of sum, mean"),
    ("max_per_image", -2, "must be >= 0"),
    ("strategy", "superpixels", "not one of full, region, superpixel"),
])
def test_bad_superpixel_parameters_name_the_key(params: Path, key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        load_config(params, {f"active.{key}": value})
    assert f"active.{key}" in str(err.value) and "\n" not in str(err.value)


def test_sweep_runs_superpixels_through_the_region_notebook(tmp_path: Path, tiny_config: Callable[..., dict]) -> None:
    raw = tiny_config(sweep={"strategies": ["full", "superpixel"], "acquisitions": ["bald"], "seeds": [0]})
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(raw))
    jobs = {j.name: j for j in expand_jobs(config_from_dict(raw, str(path)), str(path), tmp_path / "sweep")}
    assert jobs["superpixel-bald-s0"].notebook == REGION_NOTEBOOK
    assert jobs["superpixel-bald-s0"].parameters["strategy"] == "superpixel"
    assert jobs["full-bald-s0"].notebook == FULL_NOTEBOOK


def test_sweep_lists_dominant_superpixels_as_their_own_jobs(tmp_path: Path, tiny_config: Callable[..., dict]) -> None:
    raw = tiny_config(sweep={"strategies": ["region", "superpixel", "superpixel_dominant"], "acquisitions": ["bald"],
                             "seeds": [1]})
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(raw))
    cfg = config_from_dict(raw, str(path))
    jobs = {j.name: j for j in expand_jobs(cfg, str(path), tmp_path / "sweep")}
    job = jobs["superpixel_dominant-bald-s1"]
    assert job.notebook == REGION_NOTEBOOK and job.parameters["strategy"] == "superpixel_dominant"
    assert job.parameters["out_dir"].endswith("results/superpixel_dominant-bald-s1")
    # what the job's notebook loads: the name read as superpixels labelled by class; the others stay masks
    notebook_cfg = load_config(path, {"active.strategy": job.parameters["strategy"]})
    assert (notebook_cfg.active.strategy, notebook_cfg.active.superpixel_label) == ("superpixel", "dominant")
    assert load_config(path, {"active.strategy": "superpixel"}).active.superpixel_label == "mask"
    check_job_configs(path, cfg)  # every job runs what its name says


def test_sweep_refuses_a_params_file_that_makes_every_superpixel_job_dominant(
        tmp_path: Path, tiny_config: Callable[..., dict]) -> None:
    raw = tiny_config(active={"strategy": "superpixel", "superpixel_label": "dominant"},
                      sweep={"strategies": ["superpixel"], "acquisitions": ["bald"], "seeds": [0]})
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="the 'superpixel' jobs would run 'superpixel_dominant'") as err:
        check_job_configs(path, load_config(path))
    assert "list superpixel_dominant in sweep.strategies" in str(err.value) and "\n" not in str(err.value)
    raw["sweep"]["strategies"] = ["region", "superpixel_dominant"]
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="in the sweep's 'region' jobs"):
        check_job_configs(path, load_config(path))
    raw["active"] = {**raw["active"], "strategy": "superpixel_dominant", "superpixel_label": "mask"}
    path.write_text(yaml.safe_dump(raw))  # the strategy name sets the label: every job is what it says
    check_job_configs(path, load_config(path))


# ----------------------------------------------------------------------------- dominant-class superpixels


@pytest.fixture(scope="module")
def dominant(tmp_path_factory: pytest.TempPathFactory, tiny_params: Callable[..., Path]) -> dict:
    """A two-step dominant-class superpixel run (BALD) of the tiny set, segments of 128 px (squares: 256 px)."""
    root = tmp_path_factory.mktemp("dominant")
    cfg = load_config(tiny_params(root, active={"strategy": "superpixel_dominant", "acquisition": "bald",
                                                "dominant_superpixel_pixels": 128}))
    return {"root": root, "cfg": cfg, "records": run_region(cfg, root / "whole", progress=False)}


def _store(run: Path) -> LabelStore:
    return LabelStore.load(run / json.loads((run / "state.json").read_text())["labels_file"])


def test_dominant_run_labels_whole_segments_with_their_majority_class(dominant: dict) -> None:
    cfg, records, run = dominant["cfg"], dominant["records"], dominant["root"] / "whole"
    assert [r["step"] for r in records] == [0, 1, 2]
    store = _store(run)
    count = segments_per_step(store, cfg.active)  # from the initial images, whose labels never change
    assert count > cfg.active.regions_per_step  # a window costs several polygon clicks, a segment one
    segments, _ = load_superpixels(run / "superpixels.npz")  # [N, H, W]
    train = prepare_run_data(cfg).train
    a = cfg.active
    assert a.superpixel_area() == 128 and a.superpixel_pixels == 0  # the mask-labelled superpixels keep 256
    np.testing.assert_array_equal(segments, compute_superpixels(train.images, 128, a.superpixel_compactness,
                                                                train.valid))
    expected = np.zeros(store.labels.shape, dtype=bool)
    expected[:3] = store.valid[:3]  # the initial images
    noisy = 0
    for prev, cur in zip(records, records[1:]):
        assert len(cur["superpixels"]) == count  # the click budget: one click per segment
        assert cur["acquired_pixels"] == sum(p for _, _, p in cur["superpixels"])
        assert cur["labelled_pixels"] - prev["labelled_pixels"] == cur["acquired_pixels"]
        for image, segment, pixels in cur["superpixels"]:
            inside = (segments[image] == segment) & store.valid[image]  # [H, W]
            assert image >= 3 and inside.sum() == pixels  # a whole segment of a pool image
            majority = int(2 * int(train.masks[image][inside].sum()) > int(inside.sum()))  # a tie: background
            assert (store.labels[image][inside] == majority).all()  # one class for every pixel
            assert (store.contours[image][inside] == UNLABELLED).all()  # no contour target from a class click
            noisy += int((train.masks[image][inside] != majority).sum())
            expected[image] |= inside
    assert (store.labelled() == expected).all()  # exactly the initial images and the chosen segments
    assert noisy > 0  # segments straddle gland borders: their labels are not the ground truth everywhere
    assert (store.contours[:3][store.valid[:3]] != UNLABELLED).all()  # the initial images keep theirs


def test_killed_dominant_run_resumes_to_identical_records(dominant: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stop after step 1 is committed, rerun: the click budget is recomputed from the restored labels."""
    commit = RunFolder.commit

    def commit_then_stop(self, state, step, *args):
        new = commit(self, state, step, *args)
        if step == 1:
            raise KeyboardInterrupt
        return new

    cut = dominant["root"] / "cut"
    monkeypatch.setattr(RunFolder, "commit", commit_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run_active(dominant["cfg"], cut, progress=False)
    assert json.loads((cut / "state.json").read_text())["step"] == 1
    monkeypatch.setattr(RunFolder, "commit", commit)
    assert _comparable(run_active(dominant["cfg"], cut, progress=False)) == _comparable(dominant["records"])


def _curves() -> pd.DataFrame:
    rows = []
    curves = {"full": [(0.1, 0.5), (0.3, 0.8), (0.5, 0.9)], "region": [(0.1, 0.5), (0.2, 0.86), (0.3, 0.9)],
              "superpixel": [(0.1, 0.5), (0.15, 0.86), (0.2, 0.9)]}
    for strategy, points in curves.items():
        for seed in (0, 1):
            for step, (x, f1) in enumerate(points):
                rows.append({"strategy": strategy, "acquisition": "bald", "seed": seed, "step": step,
                             "labelled_fraction": x, "f1": f1, "reference": False})
    rows.append({"strategy": "full", "acquisition": "random", "seed": 0, "step": 0, "labelled_fraction": 1.0,
                 "f1": 0.9, "reference": True})
    return pd.DataFrame(rows)


def test_table1_and_label_efficiency_show_superpixel_rows() -> None:
    df = _curves()
    md = table1_markdown(table1(df, {"f1": [0.85]}))
    assert "50.0 ± 0.0 (20.0 ± 0.0; 15.0 ± 0.0)" in md and "full image (region; superpixel)" in md
    table = label_efficiency(df, "f1", 0.95)  # goal 0.855: full 50%, region 20%, superpixel 15%
    row = table.iloc[0]
    assert row["region/full"] == pytest.approx(0.4) and row["superpixel/region"] == pytest.approx(0.75)
    lines = headlines(table, "f1", 0.95)
    assert "region/full pixel ratio 0.40" in lines[0] and "target <= 0.5 met" in lines[0]
    assert "superpixel/region pixel ratio 0.75" in lines[1] and "target <= 0.8 met" in lines[1]
