"""benchmarks.restarts: best of k trainings against one, on validation only."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks.restarts import best_of, curve_reach, kept, rank_correlation, summarise


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


def test_rank_correlation_is_undefined_for_a_constant_score() -> None:
    assert rank_correlation(_trainings([(1.0, 0.5), (1.1, 0.4), (1.2, 0.3)])) == pytest.approx(-1.0)
    assert rank_correlation(_trainings([(1.0, 0.3), (1.1, 0.5), (1.2, 0.4)])) == pytest.approx(0.5)
    assert math.isnan(rank_correlation(_trainings([(1.0, 0.0), (1.1, 0.0)])))  # an untrained model: F1 0 twice


def test_curve_reach_draws_the_last_step_apart_from_the_reference() -> None:
    full = _trainings([(1.0, 0.50), (1.1, 0.45), (1.2, 0.40)])
    # the pool-exhausted step alone: ordered pairs of distinct trainings, (step, reference); a step reaches when
    # its F1 >= 0.95 x the reference's: (0.45 vs 0.50), (0.40 vs 0.50), (0.40 vs 0.45) fail, the other 3 hold
    assert curve_reach([full], full, 1, 0.95) == pytest.approx(3 / 6)
    assert curve_reach([full], full, 1, 0.5) == 1.0
    assert math.isnan(curve_reach([full], full, 2, 0.95))  # three trainings hold no two disjoint pairs
    # an earlier step that always reaches makes every draw reach; one that never does changes nothing
    assert curve_reach([_trainings([(1.0, 0.9)]), full], full, 1, 0.95) == 1.0
    assert curve_reach([_trainings([(1.0, 0.0), (1.1, 0.1)]), full], full, 1, 0.95) == pytest.approx(3 / 6)
    # best of 2 from 4: the kept training of a pair is its lower loss; reference {0, 1} keeps 0.5 (loss 1.0)
    four = _trainings([(1.0, 0.5), (1.1, 0.1), (1.2, 0.5), (1.3, 0.1)])
    assert 0 < curve_reach([four], four, 2, 0.95) < 1


def test_summarise_lines_per_size_and_restarts_and_the_curve_reach() -> None:
    rows = [{"seed": s, "size": size, "k": 32 if size == 0 else size, "training": r, "val_loss": 1.0 + 0.01 * r,
             "val_f1": (0.5 if size == 0 else 0.4) - 0.01 * r, "steps": 10, "seconds": 2.0}
            for s in (3, 4) for size in (0, 25) for r in range(4)]
    lines = summarise(rows, 0.95)
    # header, sizes 25 and 32 at best of 1 and 2 (half of 4), a rank line per size, two reach lines
    assert len(lines) == 1 + 2 * 2 + 2 + 2
    first, second = lines[1].split(), lines[2].split()
    assert first[:2] == ["25", "1"] and second[:2] == ["25", "2"] and lines[3].split()[:2] == ["32", "1"]
    assert float(second[2]) < float(first[2])  # the best of two has the lower validation loss
    assert float(second[5]) == 4.0  # two trainings of 2 s
    assert lines[5].startswith("25 images:") and "Spearman -1.00 (mean of 2 seeds)" in lines[5]  # loss ranks F1
    assert lines[7].startswith("best of 1: curve 25 -> 32 reaches 95%") and "for four" in lines[7]
    assert len(summarise([r for r in rows if r["size"] == 25], 0.95)) == 4  # no full set: no reach lines


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
