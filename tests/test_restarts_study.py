"""benchmarks.restarts: best of k trainings against one, on validation only."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks.restarts import best_of, kept, reach_share, summarise


def _trainings(pairs: list[tuple[float, float]]) -> list[dict[str, float]]:
    return [{"val_loss": loss, "val_f1": f1} for loss, f1 in pairs]


def test_kept_is_the_lowest_validation_loss_and_the_first_of_a_tie() -> None:
    t = _trainings([(1.2, 0.1), (1.0, 0.5), (1.0, 0.9), (1.1, 0.3)])
    assert kept(t, (0, 3))["val_f1"] == 0.3
    assert kept(t, (0, 1, 2))["val_f1"] == 0.5  # tie at 1.0: the earlier training, as train_with_restarts keeps


def test_best_of_averages_over_every_subset() -> None:
    t = _trainings([(1.3, 0.2), (1.1, 0.4), (1.2, 0.6)])
    loss, f1, sd = best_of(t, 1)
    assert loss == pytest.approx(1.2) and f1 == pytest.approx(0.4) and sd == pytest.approx(math.sqrt(0.08 / 3))
    # pairs (0,1) -> 1, (0,2) -> 2, (1,2) -> 1: kept F1 0.4, 0.6, 0.4
    loss, f1, sd = best_of(t, 2)
    assert loss == pytest.approx((1.1 + 1.2 + 1.1) / 3) and f1 == pytest.approx(1.4 / 3)
    assert best_of(t, 3)[:2] == (1.1, 0.4) and best_of(t, 3)[2] == 0.0


def test_reach_share_counts_ordered_pairs_of_disjoint_subsets() -> None:
    t = _trainings([(1.0, 0.50), (1.1, 0.45), (1.2, 0.40)])
    # ordered pairs of single trainings: 6; a >= 0.95 b fails for (0.45, 0.50)? 0.45 < 0.475: yes fails,
    # (0.40, 0.50) fails, (0.40, 0.45) fails (0.40 < 0.4275); the other three hold
    assert reach_share(t, 1, 0.95) == pytest.approx(3 / 6)
    assert reach_share(t, 1, 0.5) == 1.0
    assert math.isnan(reach_share(t, 2, 0.95))  # three trainings hold no two disjoint pairs
    four = _trainings([(1.0, 0.5), (1.1, 0.1), (1.2, 0.5), (1.3, 0.1)])
    # disjoint pairs: each kept training is the lower-loss one of its pair; {0,x} keeps 0.5, {1,3} keeps 0.1,
    # {1,2}/{2,3} keep 0.1/0.5: ordered pairs where the first keeps 0.1 and the second 0.5 fail
    share = reach_share(four, 2, 0.95)
    assert 0 < share < 1


def test_summarise_lines_per_size_and_restarts() -> None:
    rows = [{"seed": s, "size": 0, "k": 32, "training": r, "val_loss": 1.0 + 0.01 * r, "val_f1": 0.5 - 0.01 * r,
             "steps": 10, "seconds": 2.0} for s in (3, 4) for r in range(4)]
    lines = summarise(rows, 0.95)
    assert len(lines) == 1 + 4
    first, second = lines[1].split(), lines[2].split()
    assert first[:2] == ["32", "1"] and second[:2] == ["32", "2"]
    assert float(second[2]) < float(first[2])  # the best of two has the lower validation loss
    assert first[5] != "-" and lines[3].split()[5] == "-"  # best of 3 from 4 trainings: no disjoint pair
    assert float(second[6]) == 4.0  # two trainings of 2 s


def test_first_training_is_restart_zero_of_train_with_restarts(tmp_path: Path, tiny_params, capsys) -> None:
    """Best of the first k trainings is what active.restarts_full: k keeps (same seeds)."""
    from alseg_utils.active import _full_set, prepare_run_data
    from alseg_utils.config import load_config
    from alseg_utils.train import train_with_restarts
    from benchmarks.power_study import images_for
    from benchmarks.restarts import main

    params = tiny_params(tmp_path)
    out = tmp_path / "rows.json"
    assert main([str(params), "--sizes", "0", "--seeds", "1", "--trainings", "2", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["training"] for r in rows] == [0, 1] and rows[0]["k"] == 11  # 14 images less 3 validation
    cfg = load_config(params, {"active.seed": 1})
    data = prepare_run_data(cfg)
    assert images_for(data, 0, 1) == list(range(11))
    both = train_with_restarts(_full_set(data.train), _full_set(data.val), cfg.model, cfg.train, 2, 1000 * 1 + 0)
    assert both.val_loss == min(r["val_loss"] for r in rows)
    assert "best of" in capsys.readouterr().out
