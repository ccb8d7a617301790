"""Do restarts pay? Best of ``k`` trainings of one labelled set against one, on validation only.

Trains, per seed and size, ``--trainings`` independent trainings of the size-``k`` set of
:mod:`benchmarks.power_study` (the seed's initial images, then pool images in a seeded order; ``0`` =
every AL training image, the set of the full-data reference and of the last full-image step). Training
``r`` uses the seed of restart ``r`` of ``train_with_restarts(..., seed=1000 * seed + k)``, so the best of
the first ``k`` trainings is exactly what ``active.restarts_full: k`` would keep. For every ``k`` up to
half the trainings (so that two draws of ``k`` can be disjoint) it prints, over seeds and over every
``k``-subset of a seed's trainings:

- per size: the validation loss and validation object F1 of the kept training (lowest validation
  loss), and the spread of the kept F1 within a seed (the training noise restarts could cut); and how
  well the loss that ranks restarts ranks their F1: Spearman's rank correlation of validation loss and
  validation F1 over a seed's trainings, mean over seeds (-1: the lowest loss is always the best F1);
- with size ``0`` among ``--sizes``, the *curve reach*: how often the best kept F1 over the sizes (the
  steps of a full-image curve, the last of them on the reference's set) is at least ``--relative`` x the
  kept F1 of a reference drawn from the other trainings of the same set, and what that rate makes of
  "2 of 3 seeds reach it" for one function and for four (:func:`benchmarks.curve_checks.at_least`).

The kept training's validation F1 is measured on the images that chose it, so it is optimistic; the
reference is chosen the same way. The test set is never looked at.

    python -m benchmarks.restarts params/quick.yaml --sizes 25 0 --seeds 3 4 5 --trainings 6 [--json FILE]
    python -m benchmarks.restarts --records FILE [FILE ...]    # the table again, from saved trainings

Deterministic on the CPU for a CPU type and thread count.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy import stats

from alseg_utils.active import _full_set, prepare_run_data
from alseg_utils.config import load_config
from alseg_utils.evaluate import evaluate_model
from alseg_utils.run_folder import atomic_write_json
from alseg_utils.train import restart_seed, train_model
from benchmarks.curve_checks import at_least
from benchmarks.power_study import size_seed, size_set

Training = dict[str, Any]


def kept(trainings: list[Training], subset: tuple[int, ...]) -> Training:
    """The training of ``subset`` (indices into ``trainings``) with the lowest validation loss (ties: the first)."""
    return min((trainings[i] for i in subset), key=lambda t: t["val_loss"])


def best_of(trainings: list[Training], k: int) -> tuple[float, float, float]:
    """(mean validation loss, mean validation F1, std of validation F1) of the kept training of every ``k``-subset."""
    picks = [kept(trainings, s) for s in itertools.combinations(range(len(trainings)), k)]
    f1 = np.array([p["val_f1"] for p in picks])
    return float(np.mean([p["val_loss"] for p in picks])), float(f1.mean()), float(f1.std())


def curve_reach(steps: list[list[Training]], reference: list[Training], k: int, relative: float) -> float:
    """Share of draws where a curve's best kept F1 is at least ``relative`` x a reference's kept F1.

    One draw takes a ``k``-subset of ``reference`` for the reference and a ``k``-subset of each step's
    trainings; ``reference`` itself may be the last step (the pool-exhausted full-image step), whose subset
    is then disjoint from the reference's. NaN when ``reference`` holds fewer than ``2 k`` trainings.

    Args:
        steps: each step's trainings (dicts with ``val_loss``, ``val_f1``), in curve order.
        reference: the trainings of the full-data set.
        k: trainings per step and per reference (restarts), >= 1.
        relative: the reach line as a share of the reference's kept F1.
    """
    n = len(reference)
    if n < 2 * k:
        return float("nan")
    hits = draws = 0
    for ref in itertools.combinations(range(n), k):
        line = relative * kept(reference, ref)["val_f1"]
        choices = []
        for trainings in steps:
            left = [i for i in range(len(trainings)) if trainings is not reference or i not in ref]
            choices.append([kept(trainings, s)["val_f1"] for s in itertools.combinations(left, k)])
        for picks in itertools.product(*choices):
            draws += 1
            hits += max(picks) >= line
    return hits / draws


def rank_correlation(trainings: list[Training]) -> float:
    """Spearman's rank correlation of validation loss and F1 over ``trainings``; NaN if either is constant."""
    loss, f1 = [t["val_loss"] for t in trainings], [t["val_f1"] for t in trainings]
    if len(set(loss)) < 2 or len(set(f1)) < 2:
        return float("nan")
    return float(stats.spearmanr(loss, f1).statistic)


def _by_seed(rows: list[Training], size: int) -> list[list[Training]]:
    """The trainings of ``size``, one list per seed (in seed order)."""
    return [[r for r in rows if r["size"] == size and r["seed"] == s]
            for s in sorted({r["seed"] for r in rows if r["size"] == size})]


def summarise(rows: list[Training], relative: float) -> list[str]:
    """Per size and ``k``: kept validation loss and F1 (means over seeds), F1 spread; then the curve reach."""
    sizes = sorted({r["size"] for r in rows}, key=lambda k: (k == 0, k))  # the full set (0) last
    n = min(len(t) for size in sizes for t in _by_seed(rows, size))
    restarts = range(1, max(1, n // 2) + 1)
    lines = [f"{'images':>6}  {'best of':>7}  {'val loss':>8}  {'val F1':>6}  {'F1 sd':>6}  {'s':>5}"]
    ranks = []
    for size in sizes:
        by_seed = _by_seed(rows, size)
        seconds = np.mean([r["seconds"] for t in by_seed for r in t])
        rhos = [x for x in map(rank_correlation, by_seed) if not np.isnan(x)]
        rho = f"{np.mean(rhos):+.2f} (mean of {len(rhos)} seeds)" if rhos else "undefined (constant loss or F1)"
        ranks.append(f"{by_seed[0][0]['k']} images: validation loss vs F1 over a seed's trainings, Spearman {rho}")
        for k in restarts:
            means = np.array([best_of(t, k) for t in by_seed])
            lines.append(f"{by_seed[0][0]['k']:>6}  {k:>7}  {means[:, 0].mean():.4f}  {means[:, 1].mean():.4f}  "
                         f"{means[:, 2].mean():.4f}  {k * seconds:>5.1f}")
    lines += ranks
    if 0 not in sizes:
        return lines
    seeds = sorted({r["seed"] for r in rows})
    steps = [{s: t for s, t in zip(seeds, _by_seed(rows, size), strict=True)} for size in sizes]
    for k in restarts:
        rates = [curve_reach([step[s] for step in steps], steps[-1][s], k, relative) for s in seeds]
        rate = float(np.mean(rates))
        one = at_least(3, 2, rate)
        lines.append(f"best of {k}: curve {' -> '.join(str(steps[i][seeds[0]][0]['k']) for i in range(len(sizes)))}"
                     f" reaches {relative:.0%} of a reference trained the same way in {rate:.0%} of draws "
                     f"(seeds {' '.join(f'{x:.2f}' for x in rates)}); 2 of 3 seeds reach it with probability "
                     f"{one:.2f} for one function, {one ** 4:.2f} for four")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Train, print every training as a JSON line, then the table of :func:`summarise`."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.restarts")
    p.add_argument("params", nargs="?", default="params/quick.yaml")
    p.add_argument("--sizes", type=int, nargs="+", default=[0], help="labelled images (0 = all AL images)")
    p.add_argument("--seeds", type=int, nargs="+", default=[3, 4, 5])
    p.add_argument("--trainings", type=int, default=6, help="independent trainings per seed and size, >= 2")
    p.add_argument("--relative", type=float, default=0.95, help="the reach line as a share of the reference")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override a params key")
    p.add_argument("--json", type=Path, default=None, help="also write every training's numbers here (atomically)")
    p.add_argument("--records", type=Path, nargs="+", default=None, metavar="JSON",
                   help="train nothing: summarise the trainings of these --json files")
    args = p.parse_args(argv)
    if args.records is not None:
        rows = [r for path in args.records for r in json.loads(path.read_text())["rows"]]
        print("\n".join(summarise(rows, args.relative)))
        return 0
    if args.trainings < 2:
        p.error(f"--trainings must be at least 2 to compare restarts, got {args.trainings}")
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    base = load_config(args.params, overrides)
    rows = []
    for seed in args.seeds:
        cfg = copy.deepcopy(base)
        cfg.active.seed = seed
        data = prepare_run_data(cfg)
        val = _full_set(data.val)
        for size in args.sizes:
            train = size_set(data, size, seed)
            for r in range(args.trainings):
                start = time.perf_counter()
                result = train_model(train, val, cfg.model, cfg.train, restart_seed(size_seed(seed, size), r))
                seconds = time.perf_counter() - start
                metrics = evaluate_model(result.model, data.val, cfg, seed=size_seed(seed, size))
                rows.append({"seed": seed, "size": size, "k": len(train), "training": r, "val_loss": result.val_loss,
                             "val_f1": float(metrics["f1"]), "steps": result.iterations,
                             "seconds": round(seconds, 1)})
                print(json.dumps(rows[-1]), flush=True)
    print("\n".join(summarise(rows, args.relative)))
    if args.json is not None:
        atomic_write_json(args.json, {"params": args.params, "set": args.set, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
