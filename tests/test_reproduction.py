"""The statistical reproduction check on records built here: a noisy copy passes, another setting fails."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alseg_utils.cli import main
from alseg_utils.errors import RunStateError
from alseg_utils.reproduction import (
    BAND_FLOOR,
    BAND_SDS,
    check_reproduction,
    check_same_grid,
    interval_overlaps,
    load_side,
    pooled_std,
    reproduction_metric,
    results_folder,
    run_grid,
    seed_bands,
)
from alseg_utils.results import write_records

METHODS = {"full": (0.40, 0.05), "region": (0.45, 0.08), "superpixel": (0.47, 0.09)}  # (start, gain per step)
SEED_OFFSET = {0: 0.0, 1: 0.04, 2: -0.03}  # spread over seeds, as between real seeds


def _curve(method: str, seed: int, steps: int) -> list[float]:
    start, gain = METHODS[method]
    return [start + SEED_OFFSET[seed] + gain * k + 0.01 * seed * (method == "region") for k in range(steps)]


def _write_sweep(root: Path, shift: float = 0.0, noise: float = 0.0, seeds: tuple[int, ...] = (0, 1, 2),
                 steps: int = 4, noise_seed: int = 0) -> Path:
    """Runs of every method x (bald, random) x seed and one reference per seed; ``shift`` and ``noise`` on F1."""
    rng = np.random.default_rng(noise_seed)
    for seed in seeds:
        for method in METHODS:
            for acq in ("bald", "random"):
                f1 = np.asarray(_curve(method, seed, steps)) + shift + rng.normal(0, noise, steps) * (noise > 0)
                fractions = [0.1 + (0.1 if method == "full" else 0.03) * k for k in range(steps)]
                write_records(root / f"{method}-{acq}-s{seed}", [
                    {"strategy": method, "superpixel_label": "mask", "acquisition": acq, "seed": seed, "step": k,
                     "reference": False, "labelled_fraction": fractions[k], "f1": float(f1[k]),
                     "jaccard": float(f1[k]) - 0.1} for k in range(steps)])
        write_records(root / f"reference-s{seed}", [
            {"strategy": "full", "acquisition": "random", "seed": seed, "step": 0, "reference": True,
             "labelled_fraction": 1.0, "f1": 0.8 + SEED_OFFSET[seed] + shift + rng.normal(0, noise) * (noise > 0),
             "jaccard": 0.7}])
    return root


def test_a_copy_with_small_noise_reproduces(tmp_path: Path) -> None:
    committed = _write_sweep(tmp_path / "committed")
    fresh = _write_sweep(tmp_path / "fresh", noise=0.005)  # another CPU: last-bit drift grown to ~0.005
    check = check_reproduction(fresh, committed)
    assert check.metric == "f1" and check.passed
    assert len(check.bands) == 3 * 2 * 4 + 1  # method x function x step, and the reference
    assert len(check.intervals) == 2 * 2  # region − full and superpixel − region, per function
    assert check.lines() == ["reproduction check: PASS \N{EM DASH} 25/25 mean-curve points within the committed "
                             "seed bands, 4/4 paired intervals overlap"]


def test_shifted_curves_fail_with_one_line_per_point(tmp_path: Path) -> None:
    committed = _write_sweep(tmp_path / "committed")
    check = check_reproduction(_write_sweep(tmp_path / "fresh", shift=0.15), committed)
    assert not check.passed and check.bands["within"].sum() == 0
    assert check.intervals["overlap"].all()  # the same shift on every method: the differences agree
    lines = check.lines()
    half = BAND_SDS * np.std([0.0, 0.04, -0.03], ddof=1) * (2 / 3) ** 0.5  # 4 SE of a difference of 3-seed means
    assert len(lines) == 10 + 2 and lines[-2] == "  and 15 more"
    assert lines[0] == f"  full/bald step 0: fresh mean {0.4 + 1 / 300 + 0.15:.3f} outside the committed " \
                       f"{0.4 + 1 / 300:.3f} \N{PLUS-MINUS SIGN} {half:.3f}"
    assert lines[-1] == ("reproduction check: FAIL \N{EM DASH} 25/25 mean-curve points outside the committed seed "
                         "bands, 0/4 paired intervals do not overlap")
    assert "reference step 0" in "\n".join(check.lines(max_listed=100))


def test_another_setting_fails_on_the_paired_intervals_too(tmp_path: Path) -> None:
    committed = _write_sweep(tmp_path / "committed")
    fresh = _write_sweep(tmp_path / "fresh")
    for path in fresh.glob("region-*/steps.jsonl"):  # another data set: regions lose their edge over full images
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        for r in rows:
            r["f1"] = 0.40 + SEED_OFFSET[r["seed"]] + 0.02 * r["step"]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    check = check_reproduction(fresh, committed)
    assert not check.passed
    apart = check.intervals[~check.intervals["overlap"]]
    assert sorted(apart["comparison"]) == ["region \N{MINUS SIGN} full"] * 2 + ["superpixel \N{MINUS SIGN} region"] * 2
    assert any(line.startswith("  region \N{MINUS SIGN} full bald AULC f1: fresh [") for line in check.lines(100))
    assert check.lines()[-1].endswith("4/4 paired intervals do not overlap")


def test_the_floor_keeps_agreeing_seeds_from_failing_on_drift(tmp_path: Path) -> None:
    committed = _write_sweep(tmp_path / "committed", seeds=(0,))  # one seed: no spread, the floor alone
    assert check_reproduction(_write_sweep(tmp_path / "near", shift=BAND_FLOOR / 2, seeds=(0,)), committed).passed
    far = check_reproduction(_write_sweep(tmp_path / "far", shift=2 * BAND_FLOOR, seeds=(0,)), committed)
    assert not far.bands["within"].any() and far.intervals["overlap"].all()  # one-seed intervals: the means


def test_grids_must_match(tmp_path: Path) -> None:
    committed = _write_sweep(tmp_path / "committed")
    assert run_grid(load_side(committed, "committed"))["region/bald/s1"] == (0, 1, 2, 3)
    assert run_grid(load_side(committed, "committed"))["reference/s2"] == (0,)
    with pytest.raises(RunStateError, match=r"only committed: full/bald/s2, full/random/s2, reference/s2, "
                                            r"region/bald/s2 and 3 more\); run the fresh sweep"):
        check_reproduction(_write_sweep(tmp_path / "two", seeds=(0, 1)), committed)
    with pytest.raises(RunStateError, match=r"other steps: full/bald/s0 \(fresh 3, committed 4\)"):
        check_same_grid(load_side(_write_sweep(tmp_path / "short", steps=3), "fresh"), load_side(committed, "c"))


def test_sweep_folders_metric_and_missing_input(tmp_path: Path) -> None:
    sweep = tmp_path / "runs" / "quick"
    _write_sweep(sweep / "results", noise=0.005)
    (sweep / "sweep.json").write_text("{}")
    assert results_folder(sweep) == sweep / "results" and results_folder(sweep / "results") == sweep / "results"
    committed = _write_sweep(tmp_path / "committed")
    assert check_reproduction(sweep, committed).passed
    assert reproduction_metric(committed, load_side(committed, "committed")) == "f1"  # no config.json: by the values
    (committed / "full-bald-s0" / "config.json").write_text(json.dumps(
        {"fingerprint": "x", "config": {"eval": {"targets": {"jaccard": [0.6], "dice": [0.7]}}}}))
    assert check_reproduction(sweep, committed).metric == "jaccard"  # the committed config's primary metric
    assert check_reproduction(sweep, committed, metric="f1").metric == "f1"
    with pytest.raises(RunStateError, match="no such folder"):
        check_reproduction(tmp_path / "missing", committed)
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunStateError, match="no run records"):
        check_reproduction(tmp_path / "empty", committed)
    with pytest.raises(RunStateError, match="the fresh records have no 'dice' values"):
        check_reproduction(sweep, committed, metric="dice")


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str], refused: Callable[..., str]) -> None:
    committed = str(_write_sweep(tmp_path / "committed"))
    assert main(["check-reproduction", str(_write_sweep(tmp_path / "fresh", noise=0.005)), committed]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("on f1: bands committed mean \N{PLUS-MINUS SIGN} max(4 x SE of the two means (committed "
                           "seed std pooled per method), 0.02); paired AULC t intervals at most 0.01 apart")
    assert out[-1].startswith("reproduction check: PASS") and len(out) == 2
    assert main(["check-reproduction", str(_write_sweep(tmp_path / "shifted", shift=0.15)), committed]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("reproduction check: FAIL \N{EM DASH} 25/25 mean-curve points outside")
    refused(["check-reproduction", str(tmp_path / "missing"), committed], tmp_path, "missing: no such folder")
    (tmp_path / "empty").mkdir()
    refused(["check-reproduction", str(tmp_path / "empty"), committed], tmp_path, "no run records (steps.jsonl)")
    refused(["check-reproduction", str(_write_sweep(tmp_path / "one", seeds=(0,))), committed], tmp_path,
            "hold different runs", "only committed:")


def test_pooled_std_weighs_points_by_their_degrees_of_freedom() -> None:
    stats = pd.DataFrame({"method": ["a", "a", "b", "c"], "acquisition": ["x"] * 4, "step": [0, 1, 0, 0],
                          "std": [0.1, 0.2, 0.3, 0.0], "count": [3, 2, 3, 1]})
    stats = stats.set_index(["method", "acquisition", "step"])
    pooled = pooled_std(stats)
    assert pooled["a"] == pytest.approx(((2 * 0.01 + 1 * 0.04) / 3) ** 0.5)
    assert pooled["b"] == pytest.approx(0.3) and pooled["c"] == 0.0  # one seed: no spread known


# The quick grid's seed spread (pooled per method over the committed records): full, region, superpixel, reference.
QUICK_SPREAD = {"full": 0.043, "region": 0.034, "superpixel": 0.036, "reference": 0.006}


def _simulated_side(rng: np.random.Generator, shift: float = 0.0, seeds: int = 3, steps: int = 4) -> pd.DataFrame:
    """One sweep of the quick grid drawn afresh: every seed's run a new draw, step 0 shared within a seed."""
    rows = []
    step0 = rng.normal(0.29, 0.05, seeds)
    for method in ("full", "region", "superpixel"):
        for acq in ("random", "varratio", "entropy", "bald"):
            for seed in range(seeds):
                rows += [{"method": method, "strategy": method, "acquisition": acq, "step": k, "seed": seed,
                          "reference": False, "labelled_fraction": 0.34 + 0.2 * k,
                          "f1": step0[seed] if k == 0 else 0.3 + 0.05 * k + shift + rng.normal(0, QUICK_SPREAD[method])}
                         for k in range(steps)]
    rows += [{"method": "full", "strategy": "full", "acquisition": "random", "step": 0, "seed": seed,
              "reference": True, "labelled_fraction": 1.0, "f1": 0.477 + shift + rng.normal(0, QUICK_SPREAD["reference"])} for seed in range(seeds)]
    return pd.DataFrame(rows)


def test_bands_pass_new_draws_of_the_seeds_and_fail_another_experiment() -> None:
    """A fresh sweep that diverged completely (as on another CPU) is a new draw: it must pass; a shift fails."""
    rng = np.random.default_rng(0)
    trials = 200
    same = sum(bool(seed_bands(_simulated_side(rng), _simulated_side(rng), "f1")["within"].all())
               for _ in range(trials))
    assert same >= 0.93 * trials  # 98% expected; a band of 2 sd per point would pass about 31%
    shifted = sum(bool(seed_bands(_simulated_side(rng, shift=0.2), _simulated_side(rng), "f1")["within"].all())
                  for _ in range(50))
    assert shifted == 0  # 0.2 F1 lower at every step but 0: another experiment


def test_paired_t_intervals_of_new_draws_overlap() -> None:
    """The 8 paired AULC t intervals of two new draws of the quick grid overlap in nearly every sweep."""
    rng = np.random.default_rng(1)
    trials = 40
    overlapping = sum(bool(interval_overlaps(_simulated_side(rng), _simulated_side(rng), "f1")["overlap"].all())
                      for _ in range(trials))
    assert overlapping >= 0.85 * trials


# Real sweeps of the quick grid (records only, benchmarks/records/reproduction): the committed main job,
# the same params with two compute threads per job (every record differs from the committed one), and a
# deliberately different setting (a 20-epoch ceiling instead of 60).
ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "notebooks" / "example_results" / "quick"
OTHER_BITS = ROOT / "benchmarks" / "records" / "reproduction" / "quick_two_threads"
OTHER_SETTING = ROOT / "benchmarks" / "records" / "reproduction" / "quick_epochs20"


def test_a_real_sweep_with_other_bits_reproduces_the_committed_records() -> None:
    fresh, committed = load_side(OTHER_BITS, "fresh"), load_side(COMMITTED, "committed")
    merged = fresh.merge(committed, on=["method", "acquisition", "seed", "step", "reference"])
    assert len(merged) == len(committed) == 147 and (merged["f1_x"] != merged["f1_y"]).all()  # diverged runs
    check = check_reproduction(OTHER_BITS, COMMITTED)
    assert check.passed, check.lines()
    assert check.lines() == ["reproduction check: PASS \N{EM DASH} 49/49 mean-curve points within the committed "
                             "seed bands, 8/8 paired intervals overlap"]


def test_a_real_sweep_of_another_setting_fails() -> None:
    check = check_reproduction(OTHER_SETTING, COMMITTED)
    assert not check.passed
    assert check.lines()[-1].startswith("reproduction check: FAIL \N{EM DASH} ")
    assert all(line.startswith("  ") for line in check.lines()[:-1])  # one line per failing item
