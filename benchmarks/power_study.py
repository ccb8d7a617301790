"""How a params file's training learns with the labels it is given: the validation learning curve.

Trains, per seed, one model on ``k`` fully labelled images for each ``k`` of ``--sizes`` (the seed's
initial images first, then pool images in a seeded random order; ``k = 0`` means every AL training
image, the full-data reference) and prints the validation loss and the validation object F1 (the
seed's validation images, the sweep's MC evaluation) as mean ± std over seeds, with the share of
the full-data validation F1 each size reaches. The test set is never looked at.

It settles the experiment design of an AL setting on validation only:

- ``n_initial``: the smallest initial set whose validation F1 is at least half the full-data one;
- images per step and steps: full images must reach 95% of the full-data F1 within the curve;
- seeds: the std over seeds at each size is the noise every paired comparison has to beat.

    python -m benchmarks.power_study params/quick.yaml --sizes 4 8 12 16 24 32 0 [--seeds 0 1 2]
        [--set KEY=VALUE ...] [--json FILE]

Deterministic on the CPU for a CPU type and thread count (training seed ``1000 * seed + k``).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from alseg_utils.active import RunData, _full_set, prepare_run_data
from alseg_utils.config import RunConfig, load_config
from alseg_utils.evaluate import evaluate_model
from alseg_utils.train import LabelledSet, train_with_restarts


def images_for(data: RunData, k: int, seed: int) -> list[int]:
    """Indices into ``data.train`` of the ``k`` images a size-``k`` training labels (0 = all).

    The initial images come first (the first ``k`` of them when ``k`` < ``n_initial``), then pool
    images in a random order drawn from ``seed``, so that every size of one seed extends the last.
    """
    n = len(data.train)
    if k == 0 or k >= n:
        return list(range(n))
    if k <= data.n_initial:
        return list(range(k))
    pool = np.random.default_rng(seed).permutation(np.arange(data.n_initial, n))
    return list(range(data.n_initial)) + sorted(int(i) for i in pool[: k - data.n_initial])


def size_set(data: RunData, k: int, seed: int) -> LabelledSet:
    """The fully labelled training set of size ``k`` of ``seed`` (:func:`images_for`)."""
    idx = images_for(data, k, seed)
    full = _full_set(data.train)
    return LabelledSet(images=full.images[idx], labels=full.labels[idx], contours=full.contours[idx])


def size_seed(seed: int, k: int) -> int:
    """The training (restarts) and evaluation seed of the size-``k`` set of ``seed``."""
    return 1000 * seed + k


def train_size(cfg: RunConfig, data: RunData, k: int, seed: int) -> dict[str, Any]:
    """Train on the size-``k`` set of ``seed`` and measure it on the validation images."""
    train = size_set(data, k, seed)
    start = time.perf_counter()
    result = train_with_restarts(train, _full_set(data.val), cfg.model, cfg.train, cfg.active.restarts_full,
                                 size_seed(seed, k))
    seconds = time.perf_counter() - start
    metrics = evaluate_model(result.model, data.val, cfg, seed=size_seed(seed, k))
    return {"seed": seed, "k": len(train), "val_loss": result.val_loss, "val_f1": metrics["f1"],
            "val_dice": metrics["dice"], "steps": result.iterations, "seconds": round(seconds, 1)}


def summarise(rows: list[dict[str, Any]]) -> list[str]:
    """One line per size: validation loss and F1, mean ± std over seeds, share of the full-data F1."""
    sizes = sorted({r["k"] for r in rows})
    full_f1 = float(np.mean([r["val_f1"] for r in rows if r["k"] == sizes[-1]]))
    lines = [f"{'images':>6}  {'val loss':>15}  {'val F1':>15}  {'of full':>7}  {'steps':>5}  {'s':>5}"]
    for k in sizes:
        sub = [r for r in rows if r["k"] == k]
        loss, f1 = np.array([r["val_loss"] for r in sub]), np.array([r["val_f1"] for r in sub])
        lines.append(f"{k:>6}  {loss.mean():.4f} ± {loss.std():.4f}  {f1.mean():.4f} ± {f1.std():.4f}  "
                     f"{f1.mean() / full_f1:>6.0%}  {np.mean([r['steps'] for r in sub]):>5.0f}  "
                     f"{np.mean([r['seconds'] for r in sub]):>5.1f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Print the validation learning curve of a params file over seeds."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.power_study")
    p.add_argument("params", nargs="?", default="params/quick.yaml")
    p.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 12, 16, 24, 32, 0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override a params key")
    p.add_argument("--json", type=Path, default=None, help="also write every training's numbers here")
    args = p.parse_args(argv)
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    base = load_config(args.params, overrides)
    rows = []
    for seed in args.seeds:
        cfg = copy.deepcopy(base)
        cfg.active.seed = seed
        data = prepare_run_data(cfg)
        for k in args.sizes:
            rows.append(train_size(cfg, data, k, seed))
            print(json.dumps(rows[-1]), flush=True)
    print("\n".join(summarise(rows)))
    if args.json is not None:
        args.json.write_text(json.dumps({"params": args.params, "set": args.set, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
