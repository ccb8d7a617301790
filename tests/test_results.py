"""Records, atomic writes and Table 1 on hand-made curves."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alseg_utils.errors import RunStateError
from alseg_utils.results import (
    atomic_write_text,
    check_results,
    load_records,
    pixels_to_reach,
    read_json_file,
    read_npz_file,
    read_records,
    table1,
    table1_markdown,
    write_records,
)


def test_pixels_to_reach_first_step_at_or_above_target() -> None:
    fr = [0.1, 0.2, 0.3, 0.4]
    assert pixels_to_reach(fr, [0.5, 0.7, 0.8, 0.9], 0.8) == 0.3
    assert pixels_to_reach(fr, [0.5, 0.85, 0.7, 0.9], 0.8) == 0.2  # first, even if it dips later
    assert pixels_to_reach(fr, [0.9, 0.9, 0.9, 0.9], 0.5) == 0.1
    assert math.isnan(pixels_to_reach(fr, [0.1, 0.2, 0.3, 0.4], 0.8))  # never reached
    assert math.isnan(pixels_to_reach([], [], 0.5))


def test_pixels_to_reach_bad_input() -> None:
    with pytest.raises(ValueError, match="equal length"):
        pixels_to_reach([0.1, 0.2], [0.5], 0.5)
    with pytest.raises(ValueError, match="non-decreasing"):
        pixels_to_reach([0.2, 0.1], [0.5, 0.6], 0.5)


def _records(strategy: str, seed: int, fractions: list[float], f1: list[float]) -> list[dict]:
    return [{"strategy": strategy, "acquisition": "bald", "seed": seed, "step": i, "reference": False,
             "labelled_fraction": fr, "f1": s, "reliability_bins": {"count": [1]}}
            for i, (fr, s) in enumerate(zip(fractions, f1))]


def test_table1_mean_std_over_seeds_and_never_reached(tmp_path: Path) -> None:
    write_records(tmp_path / "full-bald-s0", _records("full", 0, [0.1, 0.2, 0.3], [0.5, 0.7, 0.8]))
    write_records(tmp_path / "full-bald-s1", _records("full", 1, [0.1, 0.2, 0.3], [0.5, 0.8, 0.9]))
    write_records(tmp_path / "region-bald-s0", _records("region", 0, [0.1, 0.12, 0.14], [0.5, 0.8, 0.8]))
    write_records(tmp_path / "region-bald-s1", _records("region", 1, [0.1, 0.12, 0.14], [0.5, 0.6, 0.7]))
    ref = [{"strategy": "full", "acquisition": "random", "seed": 0, "step": 0, "reference": True,
            "labelled_fraction": 1.0, "f1": 0.9}]
    write_records(tmp_path / "reference-s0", ref)
    df = load_records(tmp_path)
    assert len(df) == 13 and "reliability_bins" not in df.columns
    t = table1(df, {"f1": [0.8]}, relative_target=0.95)
    full = t[(t.strategy == "full") & (t.target == "0.8")].iloc[0]
    assert full.mean_pct == pytest.approx(25.0) and full.std_pct == pytest.approx(5.0)
    region = t[(t.strategy == "region") & (t.target == "0.8")].iloc[0]
    assert region.reached == 1 and region.seeds == 2 and region.mean_pct == pytest.approx(12.0)
    rel = t[t.target.str.startswith("95%")]
    assert len(rel) == 2  # 0.95 * 0.9 = 0.855: full seed 1 only; region never
    assert rel[rel.strategy == "region"].iloc[0].reached == 0
    md = table1_markdown(t)
    assert "25.0 ± 5.0 (12.0 ± 0.0 [1/2])" in md and "–" in md


def test_records_round_trip_and_atomic_write(tmp_path: Path) -> None:
    recs = _records("full", 0, [0.1, 0.2], [0.3, 0.4])
    write_records(tmp_path, recs)
    assert read_records(tmp_path) == json.loads(json.dumps(recs))
    assert read_records(tmp_path / "missing") == []
    atomic_write_text(tmp_path / "a" / "b.txt", "hello")
    assert (tmp_path / "a" / "b.txt").read_text() == "hello"
    assert not [p for p in os.listdir(tmp_path / "a") if p.endswith(".tmp")]
    empty = load_records(tmp_path / "nothing_here")  # no run yet: an empty table with every column
    assert isinstance(empty, pd.DataFrame) and len(empty) == 0
    assert list(empty.columns) == ["run", "strategy", "method", "acquisition", "seed", "step", "labelled_fraction",
                                   "reference", "f1", "object_dice", "object_hausdorff", "dice", "jaccard",
                                   "nll", "ece", "brier", "reliability", "resolution", "uncertainty"]


def test_copy_records_keeps_records_and_step_one_selections(tmp_path: Path) -> None:
    from alseg_utils.results import copy_records

    run = tmp_path / "src" / "region-bald-s0"
    write_records(run, _records("region", 0, [0.1], [0.5]))
    (run / "config.json").write_text("{}")
    (run / "selections").mkdir()
    for name in ("step_001.npz", "step_002.npz", "model_step_002.pt"):
        (run / "selections" / name).write_bytes(b"x")
    written = copy_records(tmp_path / "src", tmp_path / "dst")
    names = sorted(str(p.relative_to(tmp_path / "dst")) for p in written)
    assert names == ["region-bald-s0/config.json", "region-bald-s0/selections/step_001.npz",
                     "region-bald-s0/steps.jsonl"]
    np.savez(run / "selections" / "step_001.npz", acquired_score=np.ones(3), shown_score=np.ones((2, 4, 4)))
    copy_records(tmp_path / "src", tmp_path / "slim", selection_fields=("acquired_score", "acquired_entropy"))
    with np.load(tmp_path / "slim" / "region-bald-s0" / "selections" / "step_001.npz") as z:
        assert z.files == ["acquired_score"] and z["acquired_score"].tolist() == [1.0, 1.0, 1.0]


def test_seed_summary_matches_seeds_by_step() -> None:
    from alseg_utils.results import seed_summary  # local: the import block above belongs to the loading tests

    df = pd.DataFrame({
        "strategy": ["region"] * 4 + ["full"] * 2, "acquisition": ["bald"] * 6, "seed": [0, 1, 0, 1, 0, 0],
        "step": [0, 0, 1, 1, 0, 1], "labelled_fraction": [0.1, 0.1, 0.2, 0.3, 0.1, 1.0],
        "ece": [0.1, 0.3, 0.2, np.nan, 0.4, 9.0], "nll": [1.0, 2.0, 3.0, 5.0, 4.0, 9.0],
        "reference": [False] * 5 + [True],
    })
    out = seed_summary(df, ["ece", "nll"]).set_index(["method", "step", "metric"])  # method: the strategy here
    assert len(out) == 6  # the reference row (full, step 1) is left out
    row = out.loc[("region", 0, "ece")]
    assert (row["mean"], row["std"], row["seeds"]) == (pytest.approx(0.2), pytest.approx(math.sqrt(0.02)), 2)
    row = out.loc[("region", 1, "nll")]
    assert (row["mean"], row["fraction"], row["fraction_std"]) == (4.0, 0.25, pytest.approx(math.sqrt(0.005)))
    row = out.loc[("region", 1, "ece")]  # the NaN of seed 1 is dropped: one seed, no spread
    assert (row["mean"], row["std"], row["seeds"], row["fraction"]) == (0.2, 0.0, 1, 0.2)
    assert out.loc[("full", 0, "nll")]["std"] == 0.0
    with pytest.raises(ValueError, match="brier"):
        seed_summary(df, ["brier"])


# ----------------------------------------------------------------------------- damaged files


def test_damaged_records_name_the_file_and_the_line(tmp_path: Path) -> None:
    path = write_records(tmp_path, _records("full", 0, [0.1, 0.2, 0.3], [0.3, 0.4, 0.5]))
    text = path.read_text()
    path.write_text(text[:-10])  # the last record cut short
    with pytest.raises(RunStateError, match=r"steps.jsonl: the step record file is damaged .*line 3: JSONDecodeError"):
        read_records(tmp_path)
    lines = text.splitlines()
    path.write_text(lines[0] + "\n" + lines[2] + "\n")  # a record lost in the middle
    with pytest.raises(RunStateError, match="line 2 is not the record of step 1"):
        read_records(tmp_path)
    with pytest.raises(RunStateError, match="line 2 is not the record of step 1"):
        load_records(tmp_path)
    path.write_text("\n".join(lines) + "\n\n")  # blank lines are fine
    assert [r["step"] for r in read_records(tmp_path)] == [0, 1, 2]


def test_read_json_file_refuses_missing_broken_and_other_shapes(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    with pytest.raises(RunStateError, match=r"x.json: the thing is missing; do this"):
        read_json_file(path, "the thing", "do this")
    path.write_text('{"a": [1, 2')
    with pytest.raises(RunStateError, match=r"x.json: the thing is damaged or truncated \(JSONDecodeError.*; do this"):
        read_json_file(path, "the thing", "do this")
    path.write_text("[1, 2]")
    with pytest.raises(RunStateError, match=r"\(a JSON list, not a dict\)"):
        read_json_file(path, "the thing", "do this")
    assert read_json_file(path, "the thing", "do this", kind=list) == [1, 2]


def test_read_npz_file_refuses_truncated_foreign_and_incomplete_files(tmp_path: Path) -> None:
    path = tmp_path / "a.npz"
    np.savez_compressed(path, x=np.arange(1000), y=np.ones((30, 30)))
    got = read_npz_file(path, "the arrays", "do this", keys=("x", "y"))
    assert got["x"].tolist() == list(range(1000)) and got["y"].shape == (30, 30)
    data = path.read_bytes()
    for broken, reason in ((data[: len(data) // 2], "BadZipFile"), (b"", "EOFError"),
                           (data[:100] + bytes(60) + data[160:], r"\w+")):
        path.write_bytes(broken)
        with pytest.raises(RunStateError, match=rf"a.npz: the arrays is damaged or truncated \({reason}.*; do this"):
            read_npz_file(path, "the arrays", "do this")
    with open(path, "wb") as fh:
        np.save(fh, np.arange(3))  # a .npy, not an .npz
    with pytest.raises(RunStateError, match="TypeError"):
        read_npz_file(path, "the arrays", "do this")
    np.savez(path, x=np.arange(3))
    with pytest.raises(RunStateError, match="no 'y' array"):
        read_npz_file(path, "the arrays", "do this", keys=("x", "y"))


def test_check_results_reads_every_record_once(tmp_path: Path) -> None:
    for seed in (0, 1):
        run = tmp_path / "results" / f"full-bald-s{seed}"
        write_records(run, _records("full", seed, [0.1, 0.2], [0.3, 0.4]))
        (run / "config.json").write_text(json.dumps({"fingerprint": "abc", "config": {}}))
    assert check_results(tmp_path) == 2
    (tmp_path / "results" / "full-bald-s1" / "config.json").write_text('{"fingerprint": "abc"}')
    with pytest.raises(RunStateError, match=r"full-bald-s1/config.json: .*no fingerprint or config"):
        check_results(tmp_path)


def _write_run(root: Path, strategy: str, acquisition: str, seed: int, entropy: list[float]) -> None:
    """A run folder with one record per step 0, 1 and a step-1 selection holding ``entropy``."""
    from alseg_utils.run_folder import save_npz

    run = root / f"{strategy}-{acquisition}-s{seed}"
    run.mkdir(parents=True)
    rows = [{"strategy": strategy, "acquisition": acquisition, "seed": seed, "step": k, "labelled_fraction": 0.1 * (k + 1),
             "f1": 0.5, "reference": False} for k in (0, 1)]
    (run / "steps.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    values = np.array(entropy, np.float32)
    save_npz(run / "selections" / "step_001.npz", {"acquired_score": values, "acquired_entropy": values})


def test_acquired_certainty_counts_certain_pixels_over_seeds(tmp_path: Path) -> None:
    from alseg_utils.results import acquired_certainty

    _write_run(tmp_path, "full", "bald", 0, [0.05, 0.5, 0.6, 0.7])
    _write_run(tmp_path, "full", "bald", 1, [0.01, 0.02, 0.65, 0.69])
    _write_run(tmp_path, "region", "bald", 0, [0.3, 0.4])
    table = acquired_certainty(tmp_path, step=1, certain_below=0.1)
    assert table[["strategy", "acquired pixels", "certain (%)"]].values.tolist() == [["full", 8, 37.5], ["region", 2, 0.0]]
    assert table["median entropy"].tolist() == pytest.approx([(0.5 + 0.6) / 2, 0.35], abs=1e-3)


def test_primary_metric_and_table1_files(tmp_path: Path) -> None:
    from alseg_utils.config import config_from_dict
    from alseg_utils.results import load_records, primary_metric, write_table1

    assert primary_metric(config_from_dict({"eval": {"targets": {"jaccard": [0.7], "dice": [0.8]}}})) == "jaccard"
    assert primary_metric(config_from_dict({"eval": {"targets": {}}})) == "f1"
    # the order of a run's config.json (sorted keys: dice first) does not decide
    assert primary_metric(config_from_dict({"eval": {"targets": {"dice": [0.7], "f1": [0.5]}}})) == "f1"
    assert primary_metric(config_from_dict({"eval": {"targets": {"dice": [0.7], "jaccard": [0.6]}}})) == "jaccard"
    assert primary_metric(config_from_dict({"eval": {"targets": {"dice": [0.7]}}})) == "dice"
    _write_run(tmp_path / "runs", "full", "bald", 0, [0.1])
    cfg = config_from_dict({"name": "demo", "eval": {"targets": {"f1": [0.5]}, "relative_target": 0.9}})
    csv, md = write_table1(load_records(tmp_path / "runs"), cfg, tmp_path / "figs")
    assert (csv.name, md.name) == ("table1_demo.csv", "table1_demo.md")
    assert "| f1 | 0.5 |  |  |  | 10.0 ± 0.0 |" in md.read_text()  # BALD reached 0.5 at step 0 (10% of the pixels)
    assert pd.read_csv(csv)["metric"].tolist() == ["f1"]  # no reference run: no relative-target row


def test_table1_files_carry_the_paired_differences(tmp_path: Path) -> None:
    from alseg_utils.config import config_from_dict
    from alseg_utils.results import write_table1

    for seed in (0, 1):
        write_records(tmp_path / f"full-bald-s{seed}", _records("full", seed, [0.1, 0.3, 0.5], [0.5, 0.7, 0.9]))
        write_records(tmp_path / f"region-bald-s{seed}", _records("region", seed, [0.1, 0.2, 0.3], [0.5, 0.8, 0.9]))
    write_records(tmp_path / "reference-s0", [{"strategy": "full", "acquisition": "random", "seed": 0, "step": 0,
                                               "reference": True, "labelled_fraction": 1.0, "f1": 0.9}])
    cfg = config_from_dict({"name": "demo", "eval": {"targets": {"f1": [0.8]}, "relative_target": 0.95}})
    csv, md = write_table1(load_records(tmp_path), cfg, tmp_path / "figs")
    assert (csv.name, md.name) == ("table1_demo.csv", "table1_demo.md")  # Table 1 as before, paired beside it
    text = md.read_text()
    assert text.startswith("| metric | target |") and "\n### Paired differences over seeds\n" in text
    # region over [0.1, 0.3]: (0.065 + 0.085) / 0.2 = 0.75, full 0.6; 95% of 0.9 = 0.855: 30% vs 50% of the pixels
    assert "| bald | region \N{MINUS SIGN} full | AULC f1 | +0.150 | [+0.150, +0.150] | [+0.150, +0.150] | 2/2 | yes / yes | 2 |" in text
    assert "| bald | region \N{MINUS SIGN} full | % pixels to reach 95% of full f1 (0.855) | -20.0 |" in text
    paired = pd.read_csv(tmp_path / "figs" / "table1_demo_paired.csv")
    assert paired["quantity"].tolist() == ["aulc", "pixels_to_reach"]
    assert paired["mean"].tolist() == pytest.approx([0.15, -20.0], abs=1e-4)
    write_records(tmp_path / "region-bald-s2", _records("region", 2, [0.1, 0.2], [0.5, 0.8]))  # seeds differ
    _, md = write_table1(load_records(tmp_path), cfg, tmp_path / "figs")
    assert "Not computed: paired comparison: region and full (bald) were run with different seeds" in md.read_text()
    assert pd.read_csv(tmp_path / "figs" / "table1_demo_paired.csv").empty


# ----------------------------------------------------------------------------- methods and click axes


def _click_records(method: str, seed: int, clicks: list[int], f1: list[float]) -> list[dict]:
    strategy, label = ("superpixel", "dominant") if method == "superpixel_dominant" else (method, "mask")
    return [{"strategy": strategy, "superpixel_label": label, "acquisition": "bald", "seed": seed, "step": i,
             "reference": False, "labelled_fraction": 0.1 * (i + 1), "labelled_clicks": c,
             "labelled_polygon_clicks": 2 * c, "labelled_dominant_clicks": i + 1, "f1": s}
            for i, (c, s) in enumerate(zip(clicks, f1))]


def test_method_of_records_and_tables() -> None:
    from alseg_utils.results import METHOD_LABELS, method_label, method_of, with_method

    assert method_of({"strategy": "superpixel", "superpixel_label": "dominant"}) == "superpixel_dominant"
    assert method_of({"strategy": "superpixel", "superpixel_label": "mask"}) == "superpixel"
    assert method_of({"strategy": "superpixel"}) == "superpixel"  # records written before superpixel_label
    assert method_of({"strategy": "region", "superpixel_label": "dominant"}) == "region"
    assert method_label("superpixel_dominant") == METHOD_LABELS["superpixel_dominant"] != "superpixel_dominant"
    assert method_label("full") == "full image" and method_label("other") == "other"
    df = pd.DataFrame({"strategy": ["superpixel", "superpixel", "full"], "superpixel_label": ["dominant", "mask", "mask"]})
    assert with_method(df)["method"].tolist() == ["superpixel_dominant", "superpixel", "full"]
    assert with_method(df[["strategy"]])["method"].tolist() == ["superpixel", "superpixel", "full"]


def test_table1_in_clicks_groups_by_method(tmp_path: Path) -> None:
    from alseg_utils.config import config_from_dict
    from alseg_utils.results import write_table1

    write_records(tmp_path / "region-bald-s0", _click_records("region", 0, [100, 200, 300], [0.5, 0.8, 0.9]))
    write_records(tmp_path / "region-bald-s1", _click_records("region", 1, [100, 250, 300], [0.5, 0.8, 0.9]))
    write_records(tmp_path / "superpixel-bald-s0", _click_records("superpixel", 0, [100, 400, 600], [0.5, 0.6, 0.8]))
    write_records(tmp_path / "superpixel_dominant-bald-s0",
                  _click_records("superpixel_dominant", 0, [100, 120, 140], [0.5, 0.8, 0.9]))
    df = load_records(tmp_path)
    assert sorted(set(df.method)) == ["region", "superpixel", "superpixel_dominant"]
    t = table1(df, {"f1": [0.8]}, cost="clicks").set_index("strategy")
    assert "mean_pct" not in t.columns
    assert t.loc["region", "mean_clicks"] == pytest.approx(225.0) and t.loc["region", "std_clicks"] == pytest.approx(25)
    assert t.loc["superpixel", "mean_clicks"] == 600 and t.loc["superpixel_dominant", "mean_clicks"] == 120
    polygon = table1(df, {"f1": [0.8]}, cost="polygon_clicks").set_index("strategy")
    assert polygon.loc["region", "mean_clicks"] == pytest.approx(450.0)
    pixels = table1(df, {"f1": [0.8]}).set_index("strategy")  # the default: % of pixels, as before
    assert pixels.loc["region", "mean_pct"] == pytest.approx(20.0) and "mean_clicks" not in pixels.columns
    md = table1_markdown(table1(df, {"f1": [0.8]}, cost="clicks"), cost="clicks")
    assert "| 225 ± 25 (600 ± 0; 120 ± 0) |" in md
    assert "Cells: clicks as annotated" in md and "region (superpixel; dominant-class superpixel)" in md
    with pytest.raises(ValueError, match="mean_pct"):
        table1_markdown(table1(df, {"f1": [0.8]}, cost="clicks"))  # a click table rendered as pixels
    cfg = config_from_dict({"name": "demo", "eval": {"targets": {"f1": [0.8]}}})
    csv, md_file = write_table1(df, cfg, tmp_path / "figs", cost="clicks")
    assert (csv.name, md_file.name) == ("table1_demo_clicks.csv", "table1_demo_clicks.md")
    assert write_table1(df, cfg, tmp_path / "figs")[0].name == "table1_demo.csv"


def test_click_axes_of_old_records_fail_with_one_line(tmp_path: Path) -> None:
    write_records(tmp_path / "full-bald-s0", _records("full", 0, [0.1, 0.2, 0.3], [0.5, 0.7, 0.8]))
    df = load_records(tmp_path)
    assert len(table1(df, {"f1": [0.7]})) == 1  # pixels still work
    with pytest.raises(RunStateError) as err:
        table1(df, {"f1": [0.7]}, cost="polygon_clicks")
    assert "'labelled_polygon_clicks'" in str(err.value) and "\n" not in str(err.value)


def test_stop_points_counts_trainings_that_kept_early_weights(tmp_path) -> None:
    """benchmarks.stop_points: epochs = steps / (labelled images / batch) when a crop is the whole image."""
    import json

    from benchmarks.stop_points import early_stops

    def run(name, crop, records):
        folder = tmp_path / name
        folder.mkdir()
        cfg = {"config": {"train": {"crop_size": crop, "batch_size": 4}, "data": {"image_size": [64, 96]}}}
        (folder / "config.json").write_text(json.dumps(cfg))
        (folder / "steps.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))

    def record(step, images, best, f1, strategy="region", reference=False):
        return {"step": step, "labelled_images": images, "train_best_iteration": best, "f1": f1,
                "strategy": strategy, "reference": reference}

    # 20 images = 5 steps per epoch: 15 epochs = 75 steps
    run("region-a", [64, 96], [record(0, 4, 10, 0.9), record(1, 20, 70, 0.1), record(2, 20, 80, 0.3)])
    run("region-b", [32, 32], [record(1, 20, 10, 0.5)])  # crops smaller than the image: skipped
    run("reference", [], [record(0, 44, 10, 0.9, "full", True)])
    assert early_stops(tmp_path, 15.0, "f1") == {"region": (2, 1, 0.1, 0.3)}


def test_initial_record_is_step_0_of_the_first_seed_from_any_strategy(tmp_path):
    """Fig. E.1 reads step 0; a sweep without full-image runs (quick_dominant) gives the same step 0."""
    import shutil

    from alseg_utils.results import initial_record

    example = Path(__file__).resolve().parent.parent / "notebooks" / "example_results" / "quick"
    first = initial_record(example)
    assert (first["strategy"], first["acquisition"], first["seed"], first["step"]) == ("full", "bald", 0, 0)
    for run in ("region-entropy-s0", "region-entropy-s1", "reference-s0"):
        shutil.copytree(example / run, tmp_path / run)
    other = initial_record(tmp_path)
    assert (other["strategy"], other["seed"], other["step"]) == ("region", 0, 0)
    assert other["ece"] == first["ece"] and other["f1"] == first["f1"]
    shutil.rmtree(tmp_path / "region-entropy-s0")
    shutil.rmtree(tmp_path / "region-entropy-s1")
    with pytest.raises(FileNotFoundError, match="no active-learning run"):
        initial_record(tmp_path)
