"""The two AL loops on a tiny synthetic set: pixel accounting, masked labels, resume identity."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from scipy.stats import chisquare

import alseg_utils.active as active
from alseg_utils.active import ActiveRun, AcquiredStep, load_selection, prepare_run_data, run_active, run_full_image, \
    run_region
from alseg_utils.config import load_config
from alseg_utils.costs import polygon_clicks
from alseg_utils.errors import ConfigError, RunStateError
from alseg_utils.labels import LabelStore
from alseg_utils.mc_dropout import MCPrediction
from alseg_utils.regions import region_origins
from alseg_utils.run_folder import RunFolder
from alseg_utils.synthetic import render_glas_image


@pytest.fixture(scope="module")
def params(tmp_path_factory: pytest.TempPathFactory, tiny_params: Callable[..., Path]) -> Path:
    return tiny_params(tmp_path_factory.mktemp("params"))


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
    # costs: every image outlined whole, one dominant click per image; the totals add up
    train = prepare_run_data(_cfg(params, strategy="full")).train
    for rec, images in zip(records, ([0, 1, 2], records[1]["images"], records[2]["images"])):
        assert rec["acquired_polygon_clicks"] == sum(polygon_clicks(train.instances[i], train.valid[i]) for i in images)
        assert rec["acquired_dominant_clicks"] == len(images) and rec["superpixel_label"] == "mask"
    _assert_totals(records)


def _assert_totals(records: list[dict]) -> None:
    """Every running total is the sum of the steps' costs; clicks as annotated are polygon clicks (masks)."""
    for k, rec in enumerate(records):
        upto = records[: k + 1]
        assert rec["labelled_pixels"] == sum(r["acquired_pixels"] for r in upto)
        for model in ("polygon_clicks", "dominant_clicks"):
            assert rec[f"labelled_{model}"] == sum(r[f"acquired_{model}"] for r in upto)
        assert rec["labelled_clicks"] == rec["labelled_polygon_clicks"]


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


def test_region_costs_are_the_windows_objects_and_survive_a_resume(params: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Polygon clicks of each window's new pixels, brute force; a run stopped after step 1 resumes to the same."""
    cfg = _cfg(params, strategy="region", acquisition="bald")
    whole = run_active(cfg, tmp_path / "whole", progress=False)
    train = prepare_run_data(cfg).train
    labelled = np.zeros(train.valid.shape, bool)  # [N, H, W]
    labelled[:3] = train.valid[:3]
    assert whole[0]["acquired_polygon_clicks"] == sum(polygon_clicks(train.instances[i], train.valid[i])
                                                      for i in range(3))
    for rec in whole[1:]:
        clicks = 0
        for image, top, left, h, w in rec["regions"]:
            unit = train.valid[image, top:top + h, left:left + w] & ~labelled[image, top:top + h, left:left + w]
            clicks += polygon_clicks(train.instances[image, top:top + h, left:left + w], unit)
            labelled[image, top:top + h, left:left + w] |= unit
        assert rec["acquired_polygon_clicks"] == clicks > 0
        assert rec["acquired_dominant_clicks"] == len(rec["regions"]) == 3
    _assert_totals(whole)
    commit = RunFolder.commit

    def commit_then_stop(self, state, step, *args):
        new = commit(self, state, step, *args)
        if step == 1:
            raise KeyboardInterrupt  # killed after step 1 was written
        return new

    monkeypatch.setattr(RunFolder, "commit", commit_then_stop)
    with pytest.raises(KeyboardInterrupt):  # step 0 from the cached initial model: costs are counted anew
        run_active(cfg, tmp_path / "cut", progress=False)
    monkeypatch.undo()
    assert len(RunFolder(tmp_path / "cut").read_records()) == 2
    assert _comparable(run_active(cfg, tmp_path / "cut", progress=False)) == _comparable(whole)


def test_costs_count_ground_truth_instances_or_else_the_answers(params: Path, tmp_path: Path) -> None:
    run = ActiveRun(_cfg(params, strategy="region", steps=0), tmp_path / "r", progress=False)
    store = run._initial_store()
    train = run.data.train
    initial = AcquiredStep({"images": [0, 1, 2]})
    truth = sum(polygon_clicks(train.instances[i], train.valid[i]) for i in range(3))
    answers = sum(polygon_clicks(train.masks[i] > 0, train.valid[i]) for i in range(3))
    assert truth > answers  # the tiny set has touching glands: instances are outlined apart
    assert run._costs(0, store, initial)["acquired_polygon_clicks"] == truth
    run.data.train.has_masks = False  # a person's images: only the answers are known
    assert run._costs(0, store, initial)["acquired_polygon_clicks"] == answers


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


# ----------------------------------------------------------------------------- Random is uniform over units

# train/test images of unequal sizes, zero-padded to 64 x 96 (``data.resize: pad``)
UNEQUAL_SIZES = [(64, 96), (40, 96), (64, 48), (33, 40), (50, 70), (64, 96), (20, 30), (45, 96), (64, 64),
                 (30, 90), (60, 33), (64, 96), (36, 50), (25, 96)]


@pytest.fixture(scope="module")
def unequal_params(tmp_path_factory: pytest.TempPathFactory, tiny_config: Callable[..., dict]) -> Path:
    """A ``folder`` data set of images of unequal sizes, with the tiny run's other settings."""
    root = tmp_path_factory.mktemp("unequal")
    rng = np.random.default_rng(0)
    for split, sizes in (("train", UNEQUAL_SIZES), ("test", UNEQUAL_SIZES[:2])):
        for k, (h, w) in enumerate(sizes):
            (root / "data" / split / "images").mkdir(parents=True, exist_ok=True)
            (root / "data" / split / "masks").mkdir(parents=True, exist_ok=True)
            image, glands = render_glas_image(rng, (h, w), malignant=bool(k % 2))
            Image.fromarray(image).save(root / "data" / split / "images" / f"img{k:02d}.png")
            Image.fromarray(glands).save(root / "data" / split / "masks" / f"img{k:02d}.png")
    raw = tiny_config(active={"acquisition": "random", "images_per_step": 1, "regions_per_step": 1,
                              "region_size": 32, "region_stride": 32})
    raw["data"] = {"dataset": "folder", "root": "data", "synthetic": False, "image_size": [64, 96],
                   "resize": "pad", "n_initial": 3, "n_val": 3, "contour_radius": 1}
    path = root / "unequal.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _constant_prediction(model, images, T, **kwargs) -> MCPrediction:
    """What mc_predict would return for a model that is equally unsure everywhere (no network run)."""
    n, h, w = images.shape[:3]
    return MCPrediction(mean=torch.full((n, 2, h, w), 0.5), mean_entropy=torch.full((n, h, w), 0.6931),
                        contour=None, samples=T)


def _random_steps(params: Path, out: Path, monkeypatch: pytest.MonkeyPatch, trials: int, prepare=None,
                  **active_overrides) -> tuple[ActiveRun, LabelStore, list[active.AcquiredStep]]:
    """``trials`` Random acquisitions (steps 1..trials, each its own generator) on the same labelled set."""
    monkeypatch.setattr(active, "mc_predict", _constant_prediction)
    run = ActiveRun(_cfg(params, **active_overrides), out, progress=False)
    base = run._initial_store()
    if prepare is not None:
        prepare(base)
    selections = []
    for step in range(1, trials + 1):
        store = LabelStore(base.labels.copy(), base.contours.copy(), base.valid)
        selections.append(run._acquire(step, store, model=None))
    return run, base, selections


def _assert_uniform(counts: dict, units: list, trials: int) -> None:
    """Every allowed unit chosen, nothing else, and a chi-square test of equal frequencies passes."""
    assert set(counts) <= set(units), f"chose units that may not be chosen: {set(counts) - set(units)}"
    observed = np.array([counts.get(u, 0) for u in units])
    assert observed.sum() == trials
    assert chisquare(observed).pvalue > 1e-3, f"not uniform over {len(units)} units: {observed.tolist()}"


def test_random_full_images_are_drawn_uniformly_whatever_their_size(unequal_params: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    trials = 400
    run, base, selections = _random_steps(unequal_params, tmp_path / "r", monkeypatch, trials, strategy="full")
    pool = base.unlabelled_images()
    real = base.valid[pool].sum(axis=(1, 2))
    assert real.max() > 3 * real.min()  # the pool really holds images of unequal size
    counts: dict = {}
    for sel in selections:
        (image,) = sel.fields["images"]
        counts[image] = counts.get(image, 0) + 1
        assert sel.fields["acquired_pixels"] == base.valid[image].sum()  # what was labelled is still recorded
        assert sel.arrays["acquired_score"].shape == (sel.fields["acquired_pixels"],)
    _assert_uniform(counts, pool, trials)
    again = run._acquire(7, LabelStore(base.labels.copy(), base.contours.copy(), base.valid), model=None)
    assert again.fields["images"] == selections[6].fields["images"]  # reproducible by step seed


def _open_windows(already: np.ndarray, size: int, stride: int) -> list[tuple[int, int, int]]:
    """(image, top, left) of the windows with at least one pixel still to label, by brute force."""
    tops, lefts = region_origins(already.shape[1], already.shape[2], size, stride)
    return [(i, t, l) for i in range(len(already)) for t in tops for l in lefts
            if not already[i, t:t + size, l:l + size].all()]


def test_random_windows_are_drawn_uniformly_among_those_left_to_label(unequal_params: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def label_some(store: LabelStore) -> None:  # a whole window of pool image 3 and half of another
        store.labels[3, 0:32, 0:32] = 0
        store.labels[3, 0:16, 32:64] = 0

    trials = 1000
    _, base, selections = _random_steps(unequal_params, tmp_path / "r", monkeypatch, trials, prepare=label_some,
                                        strategy="region")
    already = base.labelled() | ~base.valid  # [N, H, W]
    windows = _open_windows(already, 32, 32)
    assert (3, 0, 0) not in windows and (3, 0, 32) in windows
    partly = [w for w in windows if already[w[0], w[1]:w[1] + 32, w[2]:w[2] + 32].any()]
    assert len(partly) > len(windows) // 4  # many windows hold padding: the old sum-of-noise rule skipped them
    counts: dict = {}
    for sel in selections:
        ((image, top, left, h, w),) = sel.fields["regions"]
        counts[(image, top, left)] = counts.get((image, top, left), 0) + 1
        assert sel.fields["acquired_pixels"] == (~already[image, top:top + h, left:left + w]).sum()
    _assert_uniform(counts, windows, trials)


def test_random_superpixels_are_drawn_uniformly_among_those_that_fit(unequal_params: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    trials = 800
    run, base, selections = _random_steps(unequal_params, tmp_path / "r", monkeypatch, trials,
                                          strategy="superpixel", region_size=30, superpixel_pixels=700)
    budget = run.cfg.active.pixel_budget()  # one 30 x 30 window: 900 px
    segments = run._superpixels()  # [N, H, W]
    already = base.labelled() | ~base.valid
    sizes = {(i, int(s)): int(((segments[i] == s) & ~already[i]).sum())
             for i in range(len(segments)) for s in np.unique(segments[i]) if s >= 0}
    allowed = sorted(u for u, px in sizes.items() if 0 < px <= budget)
    assert len(allowed) < sum(px > 0 for px in sizes.values())  # some segments do not fit the budget
    assert max(sizes[u] for u in allowed) > 1.5 * min(sizes[u] for u in allowed)  # unequal segments
    counts: dict = {}
    for sel in selections:
        image, segment, pixels = sel.fields["superpixels"][0]  # the first pick: drawn among all that fit
        counts[(image, segment)] = counts.get((image, segment), 0) + 1
        assert pixels == sizes[(image, segment)]
        assert sum(p for _, _, p in sel.fields["superpixels"]) <= budget
    _assert_uniform(counts, allowed, trials)


def test_restarts_initial_trains_the_shared_initial_model_alike_for_every_strategy(
        params: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = active.train_with_restarts

    def recording(*args, restarts: int, **kwargs):
        calls.append(restarts)
        return real(*args, restarts=restarts, **kwargs)

    monkeypatch.setattr(active, "train_with_restarts", recording)
    run_region(_cfg(params, strategy="region", steps=1, restarts_initial=3), tmp_path / "region", progress=False)
    assert calls == [3, 2]  # step 0: restarts_initial; step 1: restarts_region
    run_full_image(_cfg(params, strategy="full", steps=1, restarts_initial=3), tmp_path / "full", progress=False)
    assert calls == [3, 2, 1]  # the full run's step 0 is the region run's cached model; step 1: restarts_full
    calls.clear()
    run_region(_cfg(params, strategy="region", steps=0), tmp_path / "other", progress=False)
    assert calls == [2]  # 0 = the strategy's own restarts, as before


def test_restarts_initial_must_not_be_negative(params: Path) -> None:
    with pytest.raises(ConfigError, match="restarts_initial"):
        _cfg(params, restarts_initial=-1)
