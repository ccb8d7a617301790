"""Do restarts pay? Best of ``k`` trainings of one labelled set against one training, on validation only.

Trains, per seed and size, ``--trainings`` independent trainings of the size-``k`` set of
:mod:`benchmarks.power_study` (the seed's initial images, then pool images in a seeded order; ``0`` =
every AL training image, the set of the full-data reference and of the last full-image step). Training
``r`` uses the seed of restart ``r`` of ``train_with_restarts(..., seed=1000 * seed + k)``, so the best of
the first ``k`` trainings is exactly what ``active.restarts_full: k`` would keep. For every ``k`` up to
``--trainings`` it prints, over seeds and over every ``k``-subset of the trainings:

- the validation loss and validation object F1 of the kept training (lowest validation loss);
- the spread of the kept training's validation F1 within a seed (the training noise restarts can cut);
- the *reach share*: over ordered pairs of disjoint ``k``-subsets of one seed, how often the first
  one's kept F1 is at least ``--relative`` x the second one's -- a retraining of the same set reaching
  95% of a reference trained the same way, the noise that decides whether the last full-image step of
  an AL curve reaches the 95% line.

The kept training's validation F1 is measured on the images that chose it, so it is optimistic; both
sides of a reach pair are chosen the same way. The test set is never looked at.

    python -m benchmarks.restarts params/quick.yaml --sizes 0 --seeds 3 4 5 --trainings 6 [--json FILE]

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

from alseg_utils.active import _full_set, prepare_run_data
from alseg_utils.config import load_config
from alseg_utils.evaluate import evaluate_model
from alseg_utils.train import LabelledSet, restart_seed, train_model
from benchmarks.power_study import images_for


def kept(trainings: list[dict[str, Any]], subset: tuple[int, ...]) -> dict[str, Any]:
    """The training of ``subset`` (indices into ``trainings``) with the lowest validation loss (ties: the first)."""
    return min((trainings[i] for i in subset), key=lambda t: t["val_loss"])


def best_of(trainings: list[dict[str, Any]], k: int) -> tuple[float, float, float]:
    """(mean validation loss, mean validation F1, std of validation F1) of the kept training of every ``k``-subset."""
    picks = [kept(trainings, s) for s in itertools.combinations(range(len(trainings)), k)]
    f1 = np.array([p["val_f1"] for p in picks])
    return float(np.mean([p["val_loss"] for p in picks])), float(f1.mean()), float(f1.std())


def reach_share(trainings: list[dict[str, Any]], k: int, relative: float) -> float:
    """Share of ordered pairs (A, B) of disjoint ``k``-subsets where kept(A)'s F1 >= ``relative`` x kept(B)'s.

    NaN when the trainings hold fewer than two disjoint ``k``-subsets.
    """
    n = len(trainings)
    hits = pairs = 0
    for a in itertools.combinations(range(n), k):
        rest = [i for i in range(n) if i not in a]
        for b in itertools.combinations(rest, k):
            pairs += 1
            hits += kept(trainings, a)["val_f1"] >= relative * kept(trainings, b)["val_f1"]
    return hits / pairs if pairs else float("nan")


def summarise(rows: list[dict[str, Any]], relative: float) -> list[str]:
    """One line per size and ``k``: kept validation loss and F1 (means over seeds), F1 spread, reach share."""
    lines = [f"{'images':>6}  {'best of':>7}  {'val loss':>8}  {'val F1':>6}  {'F1 sd':>6}  {'reach':>5}  {'s':>5}"]
    for size in sorted({r["size"] for r in rows}):
        by_seed = [[r for r in rows if r["size"] == size and r["seed"] == s]
                   for s in sorted({r["seed"] for r in rows if r["size"] == size})]
        n = min(len(t) for t in by_seed)
        images = by_seed[0][0]["k"]
        seconds = np.mean([r["seconds"] for t in by_seed for r in t])
        for k in range(1, n + 1):
            stats = np.array([best_of(t, k) for t in by_seed])
            reach = np.array([reach_share(t, k, relative) for t in by_seed])
            share = f"{np.mean(reach):>5.0%}" if np.isfinite(reach).all() else f"{'-':>5}"
            lines.append(f"{images:>6}  {k:>7}  {stats[:, 0].mean():.4f}  {stats[:, 1].mean():.4f}  "
                         f"{stats[:, 2].mean():.4f}  {share}  {k * seconds:>5.1f}")
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
    p.add_argument("--json", type=Path, default=None, help="also write every training's numbers here")
    args = p.parse_args(argv)
    if args.trainings < 2:
        p.error(f"--trainings must be at least 2 to compare restarts, got {args.trainings}")
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    base = load_config(args.params, overrides)
    rows = []
    for seed in args.seeds:
        cfg = copy.deepcopy(base)
        cfg.active.seed = seed
        data = prepare_run_data(cfg)
        full, val = _full_set(data.train), _full_set(data.val)
        for size in args.sizes:
            idx = images_for(data, size, seed)
            train = LabelledSet(images=full.images[idx], labels=full.labels[idx], contours=full.contours[idx])
            for r in range(args.trainings):
                start = time.perf_counter()
                result = train_model(train, val, cfg.model, cfg.train, restart_seed(1000 * seed + size, r))
                seconds = time.perf_counter() - start
                metrics = evaluate_model(result.model, data.val, cfg, seed=1000 * seed + size)
                rows.append({"seed": seed, "size": size, "k": len(idx), "training": r, "val_loss": result.val_loss,
                             "val_f1": float(metrics["f1"]), "steps": result.iterations,
                             "seconds": round(seconds, 1)})
                print(json.dumps(rows[-1]), flush=True)
    print("\n".join(summarise(rows, args.relative)))
    if args.json is not None:
        args.json.write_text(json.dumps({"params": args.params, "set": args.set, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
