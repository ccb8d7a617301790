"""benchmarks.paper_scale: the paper-scale timing and grid projection, every code path in its --tiny mode."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

STEP_COLUMNS = ("step", "images", "windows", "crops/epoch", "train steps", "restart min", "restarts", "train min",
                "scored", "score min", "eval min", "step min")


def test_split_evenly_covers_every_image_once() -> None:
    from benchmarks.paper_scale import split_evenly

    assert split_evenly(85, 16) == [6] * 5 + [5] * 11
    assert split_evenly(3, 16) == [1, 1, 1] and split_evenly(7, 1) == [7]


def test_region_steps_add_windows_and_crops() -> None:
    from benchmarks.paper_scale import full_steps, region_steps

    from alseg_utils.config import ActiveConfig

    valid = np.zeros((6, 32, 48), bool)
    valid[:, :30, :45] = True  # zero padding bottom / right, as GlaS
    a = ActiveConfig(steps=3, images_per_step=1, regions_per_step=2, region_size=8)
    full = full_steps(valid, 2, a, [16, 16])
    assert [r.images for r in full] == [2, 3, 4, 5] and [r.candidates for r in full] == [0, 4, 3, 2]
    region = region_steps(valid, 2, a, [16, 16], seed=0)
    assert [r.windows for r in region] == [0, 2, 4, 6] and region[0].crops == full[0].crops
    assert all(b.crops > a.crops for a, b in zip(region, region[1:]))  # every window adds labels in view
    assert all(r.candidates == 4 for r in region[1:])  # windows never label a whole pool image here


def _table(out: str) -> tuple[dict[tuple[str, str], list[float]], dict[str, list[float]]]:
    """Step rows keyed (strategy, step) and grid rows keyed by part, as numbers."""
    steps: dict[tuple[str, str], list[float]] = {}
    parts: dict[str, list[float]] = {}
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("strategy"))
    for line in lines[start + 1:]:
        if not line.strip():
            break
        cells = line.split()
        steps[(cells[0], cells[1])] = [float(c) for c in cells[2:]]
    start = next(i for i, line in enumerate(lines) if line.startswith("part "))
    for line in lines[start + 1:]:
        name, numbers = line[:36].strip(), line[36:].split()
        if not numbers:
            break
        parts[name] = [float(c) for c in numbers]
        if name == "total":
            break
    return steps, parts


def test_tiny_run_prints_every_step_and_the_grid(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.paper_scale import main

    out_file = tmp_path / "out" / "paper_scale.json"
    assert main(["--tiny", "--device", "cpu", "--data", str(tmp_path / "data"), "--out", str(out_file),
                 "--timed-steps", "3"]) == 0
    out = capsys.readouterr().out
    assert "model.pretrained forced to False" in out and "3 steps timed after 2 warm-up" in out
    assert "ours (mc_predict):" in out and "scores finite" in out
    steps, parts = _table(out)
    assert set(steps) == {(s, str(k)) for s in ("full", "region") for k in range(4)} | {("reference", "-")}
    for key, numbers in steps.items():
        assert len(numbers) == len(STEP_COLUMNS) - 1 and all(math.isfinite(x) and x >= 0 for x in numbers), key
        row = dict(zip(STEP_COLUMNS[1:], numbers, strict=True))
        assert row["train steps"] > 0 and row["restart min"] > 0 and row["eval min"] > 0, key
        assert row["step min"] >= row["train min"] > 0, key
        assert (row["scored"] > 0) == (key[1] not in ("0", "-")), key
    assert [steps[("full", str(k))][0] for k in range(4)] == [2, 4, 6, 8]  # 2 initial + 2 images a step
    assert [steps[("region", str(k))][1] for k in range(4)] == [0, 4, 8, 12]  # + 4 windows a step
    assert steps[("region", "1")][5] == 4 and steps[("full", "1")][5] == 3  # restarts_region / restarts_full
    assert list(parts) == ["full, steps 1-3 (8 runs)", "full, step 0 (2 seeds)", "region, steps 1-3 (8 runs)",
                           "region, step 0 (2 seeds)", "full-data reference (2 seeds)", "total"]
    for name, numbers in parts.items():
        assert all(math.isfinite(x) and x > 0 for x in numbers), name
    total = parts.pop("total")[-1]
    assert total == pytest.approx(sum(numbers[-1] for numbers in parts.values()), abs=0.005 * (len(parts) + 1))
    headline = out.splitlines()[-1]
    assert headline.startswith("paper_scale [CPU") and "CPU-hours" in headline
    saved = json.loads(out_file.read_text())
    assert saved["headline"] == headline and saved["setting"]["pretrained"] is False
    assert saved["total_hours"] == pytest.approx(sum(p["hours"] for p in saved["grid"]))
    assert saved["total_hours"] == pytest.approx(total, abs=0.006) and saved["measured"]["train"]["step_s"] > 0
    assert sorted(p.name for p in out_file.parent.iterdir()) == ["paper_scale.json"]  # atomic: no temporary left
    assert len(list((tmp_path / "data").glob("train_*_anno.bmp"))) == 10  # the pieces numbered into one folder
    assert not list((tmp_path / "data").glob(".part-*"))
