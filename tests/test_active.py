"""The two AL loops on a tiny synthetic set: pixel accounting, masked labels, resume identity."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from alseg_utils.active import ActiveRun, load_selection, run_active, run_full_image, run_region
from alseg_utils.config import load_config
from alseg_utils.errors import ConfigError, RunStateError
from alseg_utils.labels import LabelStore

TINY = {
    "name": "tiny",
    "data": {"dataset": "glas", "root": "data", "synthetic": True, "synthetic_n_train": 14,
             "synthetic_n_test": 4, "synthetic_size": [64, 96], "image_size": [64, 96], "n_initial": 3,
             "n_val": 3, "contour_radius": 1},
    "model": {"encoder": "resnet18", "decoder_channels": 8, "output_stride": 16},
    "train": {"iterations": 3, "batch_size": 2, "crop_size": [], "progress": False, "rotation": 0.0},
    "active": {"steps": 2, "images_per_step": 2, "regions_per_step": 3, "region_size": 16,
               "region_stride": 8, "mc_samples": 2, "mc_batch_size": 4, "restarts_full": 1,
               "restarts_region": 2},
    "eval": {"min_object_size": 5, "eval_batch_size": 4},
}


@pytest.fixture(scope="module")
def params(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("params")
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


def _cfg(params: Path, **active):
    return load_config(params, {f"active.{k}": v for k, v in active.items()})


def _comparable(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "timing"} for r in records]


def test_full_image_run_labels_whole_images(params: Path, tmp_path: Path) -> None:
    records = run_full_image(_cfg(params, strategy="full", acquisition="entropy"), tmp_path / "run", progress=False)
    assert [r["step"] for r in records] == [0, 1, 2]
    assert records[0]["labelled_images"] == 3
    chosen = records[1]["images"] + records[2]["images"]
    assert len(chosen) == 4 and len(set(chosen)) == 4 and not set(chosen) & {0, 1, 2}
    fractions = [r["labelled_fraction"] for r in records]
    assert fractions[0] < fractions[1] < fractions[2]
    # 11 AL images of equal size: 3, 5 then 7 of them labelled
    assert fractions == pytest.approx([3 / 11, 5 / 11, 7 / 11])
    for r in records:
        for key in ("f1", "object_dice", "dice", "jaccard", "nll", "ece", "brier", "reliability"):
            assert np.isfinite(r[key])
    assert sum(records[1]["reliability_bins"]["count"]) == 4 * 64 * 96


def test_region_run_accounts_pixels_exactly(params: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    records = run_region(_cfg(params, strategy="region", acquisition="bald"), out, progress=False)
    assert len(records) == 3
    for prev, cur in zip(records, records[1:]):
        assert cur["labelled_pixels"] - prev["labelled_pixels"] == cur["acquired_pixels"] > 0
        assert len(cur["regions"]) == 3
    state = json.loads((out / "state.json").read_text())
    store = LabelStore.load(out / state["labels_file"])
    labelled = store.labelled()
    assert labelled[:3].all()  # the initial images are fully labelled
    mask = np.zeros_like(labelled)
    for rec in records[1:]:
        for image, top, left, h, w in rec["regions"]:
            mask[image, top:top + h, left:left + w] = True
    assert (labelled[3:] == mask[3:]).all()  # elsewhere only the chosen windows carry labels
    sel = load_selection(out, 1)
    assert sel["acquired_score"].shape == (records[1]["acquired_pixels"],)
    assert sel["shown_pseudo_object"].shape[1:] == (64, 96)


def test_same_seed_same_records(params: Path, tmp_path: Path) -> None:
    cfg = _cfg(params, strategy="region", acquisition="random", steps=1)
    a = run_active(cfg, tmp_path / "a", progress=False)
    b = run_active(cfg, tmp_path / "b", progress=False)
    assert _comparable(a) == _comparable(b)
    # rerunning a finished run resumes (trains nothing) and returns the same records
    assert _comparable(run_active(cfg, tmp_path / "a", progress=False)) == _comparable(a)


def test_foreign_run_folder_is_refused(params: Path, tmp_path: Path) -> None:
    run_active(_cfg(params, strategy="full", acquisition="random", steps=0), tmp_path / "r", progress=False)
    with pytest.raises(RunStateError, match="different configuration"):
        ActiveRun(_cfg(params, strategy="full", acquisition="random", steps=0, seed=5), tmp_path / "r")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(RunStateError, match="not empty"):
        ActiveRun(_cfg(params, strategy="full", steps=0), tmp_path / "other")


def test_m_larger_than_pool_is_refused(params: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="images_per_step"):
        run_active(_cfg(params, strategy="full", images_per_step=50), tmp_path / "r", progress=False)


def test_reference_run_labels_everything(params: Path, tmp_path: Path) -> None:
    records = run_active(_cfg(params, strategy="full"), tmp_path / "ref", progress=False, reference=True)
    assert len(records) == 1 and records[0]["reference"] is True
    assert records[0]["labelled_fraction"] == 1.0


@pytest.mark.slow
def test_killed_run_resumes_to_identical_records(params: Path, tmp_path: Path) -> None:
    """Kill a CLI run after its first finished step, rerun the same command, compare records."""
    slow = params.parent / "slow.yaml"
    raw = yaml.safe_load(params.read_text())
    raw["train"]["iterations"] = 12
    raw["active"]["steps"] = 2
    slow.write_text(yaml.safe_dump(raw))
    args = [sys.executable, "-m", "alseg_utils.cli", "run", str(slow), "--strategy", "region",
            "--acquisition", "bald", "--no-progress", "--out"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([*args, str(tmp_path / "whole")], check=True, env=env, capture_output=True)
    proc = subprocess.Popen([*args, str(tmp_path / "cut")], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    state = tmp_path / "cut" / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline and not (state.exists() and json.loads(state.read_text())["step"] >= 1):
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert json.loads(state.read_text())["step"] < 2
    subprocess.run([*args, str(tmp_path / "cut")], check=True, env=env, capture_output=True)
    whole = [json.loads(x) for x in (tmp_path / "whole" / "steps.jsonl").read_text().splitlines()]
    cut = [json.loads(x) for x in (tmp_path / "cut" / "steps.jsonl").read_text().splitlines()]
    assert len(whole) == 3 and _comparable(cut) == _comparable(whole)
