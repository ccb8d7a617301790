"""Is the full-data reference converged? Validation loss at the params file's budget and at k times it.

Trains the full-training-data reference of a params file (every AL training image fully labelled, the
seed's validation images) at its training budget and again at ``--factor`` times the budget (epochs, patience,
floor and ceiling and the epoch-based decay schedules stretched alike), and prints both validation
losses (object + contour cross-entropy, dropout off) and their relative gap (budget - 2x) / 2x. The
test set is never looked at. Converged = twice the budget does not lower the validation loss by 2% or
more (gap < +2%); a negative gap means the longer training over-fits the validation images.

    python -m benchmarks.convergence params/quick.yaml [--seeds 0 1 2] [--factor 2] [--set KEY=VALUE ...]

``--set train.learning_rate=0.003`` (YAML values, dotted keys, any number of them) trains a variant
of the params file: how the quick settings were compared (docs/quick_settings.md). ``--factor 1`` trains the budget
only.

Deterministic on the CPU (same seeds as the sweep's reference job: ``active.seed * 1000``).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time

import numpy as np
import yaml

from alseg_utils.active import prepare_run_data, reference_set
from alseg_utils.config import RunConfig, load_config
from alseg_utils.train import train_with_restarts


def stretched(cfg: RunConfig, factor: float) -> RunConfig:
    """``cfg`` with its training budget and decay schedules ``factor`` times longer."""
    out = copy.deepcopy(cfg)
    t = out.train
    if t.epochs > 0:
        t.epochs, t.lr_decay_epochs, t.aux_decay_epochs, t.patience_epochs, t.plateau_start_epochs = (
            v * factor for v in (t.epochs, t.lr_decay_epochs, t.aux_decay_epochs, t.patience_epochs,
                                 t.plateau_start_epochs))
        t.min_iterations = int(round(t.min_iterations * factor))
        t.iterations = max(t.iterations, t.min_iterations)
    else:
        t.iterations, t.lr_decay_steps, t.aux_decay_every = (int(round(v * factor)) for v in (
            t.iterations, t.lr_decay_steps, t.aux_decay_every))
    return out


def reference_val_loss(cfg: RunConfig, seed: int) -> tuple[float, int, float]:
    """(validation loss, optimizer steps trained, seconds) of the full-data reference of ``seed``.

    With ``train.patience_epochs`` the loss is that of the kept (lowest-loss) weights.
    """
    cfg = copy.deepcopy(cfg)
    cfg.active.seed = seed
    data = prepare_run_data(cfg)
    start = time.perf_counter()
    train, val = reference_set(data)
    result = train_with_restarts(train, val, cfg.model, cfg.train, cfg.active.restarts_full, seed * 1000)
    return result.val_loss, result.iterations, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    """Print the reference's validation loss at the budget and at ``factor`` times it, per seed."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.convergence")
    p.add_argument("params", nargs="?", default="params/quick.yaml")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--factor", type=float, default=2.0)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override a params key")
    args = p.parse_args(argv)
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    cfg = load_config(args.params, overrides)
    longer = stretched(cfg, args.factor)
    gaps = []
    for seed in args.seeds:
        base, base_steps, base_s = reference_val_loss(cfg, seed)
        if args.factor == 1:
            print(f"seed {seed}: validation loss {base:.4f} ({base_steps} steps, {base_s:.0f} s)", flush=True)
            continue
        more, more_steps, more_s = reference_val_loss(longer, seed)
        gaps.append((base - more) / more)
        print(f"seed {seed}: validation loss {base:.4f} at the budget ({base_steps} steps, {base_s:.0f} s), "
              f"{more:.4f} at {args.factor:g}x ({more_steps} steps, {more_s:.0f} s): gap {100 * gaps[-1]:+.1f}%",
              flush=True)
    if not gaps:
        return 0
    gap = float(np.mean(gaps))
    if gap >= 0.02:
        verdict = "NOT converged: twice the budget lowers the validation loss by 2% or more"
    elif gap <= -0.02:
        verdict = "converged: twice the budget raises the validation loss (over-fitting), more training does not help"
    else:
        verdict = "converged: twice the budget changes the validation loss by less than 2%"
    print(f"{cfg.name}: mean gap {100 * gap:+.1f}% over {len(gaps)} seed(s): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
