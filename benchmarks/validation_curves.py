"""Where does each training of an AL run reach its lowest validation loss? How to choose the patience.

Runs one AL job (or the full-data reference) of a params file with every training taken to a long
ceiling (``--ceiling`` epochs, patience so large that nothing stops early) and the validation loss
checked every ``train.val_every`` steps, then prints per training: labelled images, steps per epoch,
the step of the lowest validation loss and that loss, the loss at 20 / 40 / 60 / 80 epochs, and what a
plateau stop with each ``--patience`` (epochs) and ``--ceilings`` would have kept and cost (steps).
Only the validation set is looked at: this is how the quick setting's patience and ceiling were
chosen (docs/quick_settings.md). Later steps of the run train on what the long trainings selected.

    python -m benchmarks.validation_curves params/quick.yaml --strategy region --acquisition random --seed 0
    python -m benchmarks.validation_curves params/quick.yaml --reference --seed 0 [--set model.width=64]

Deterministic on the CPU; one compute thread (``OMP_NUM_THREADS=1``) as a sweep worker has.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from typing import Any

import torch
import yaml

import alseg_utils.active as active
from alseg_utils.config import UNLABELLED, load_config
from alseg_utils.crops import crops_per_epoch
from alseg_utils.train import TrainResult

EPOCHS_SHOWN = (20, 40, 60, 80)


def plateau_stop(checks: list[tuple[int, float]], epoch: float, patience: float, ceiling: int,
                 val_every: int, start: float = 0.0) -> tuple[int, float]:
    """(steps trained, kept validation loss) of a plateau stop replayed on a recorded curve.

    The same rule as :class:`alseg_utils.train.PlateauStop`: stop once ``max(val_every,
    ceil(patience x epoch))`` steps have passed since the lowest loss, but not before ``ceil(start x
    epoch)`` steps, or at ``ceiling`` steps.
    """
    wait = max(val_every, math.ceil(patience * epoch))
    first = math.ceil(start * epoch)
    best, best_step, step = math.inf, 0, 0
    for step, loss in checks:
        if step > ceiling:
            return ceiling, best
        if loss < best:
            best, best_step = loss, step
        if step >= first and step - best_step >= wait:
            return step, best
    return step, best


def main(argv: list[str] | None = None) -> int:
    """Run the job with long trainings and print each training's validation curve summary."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.validation_curves")
    p.add_argument("params", nargs="?", default="params/quick.yaml")
    p.add_argument("--strategy", default="region")
    p.add_argument("--acquisition", default="random")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reference", action="store_true", help="the full-data reference instead of an AL job")
    p.add_argument("--ceiling", type=float, default=80.0, help="epochs every training runs")
    p.add_argument("--patience", type=float, nargs="+", default=[10.0, 15.0, 20.0])
    p.add_argument("--ceilings", type=float, nargs="+", default=[60.0, 80.0], help="epochs, replayed")
    p.add_argument("--starts", type=float, nargs="+", default=[0.0],
                   help="epochs before which no plateau stop happens (train.plateau_start_epochs), replayed")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override a params key")
    args = p.parse_args(argv)
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    cfg = load_config(args.params, {
        **overrides, "active.strategy": args.strategy, "active.acquisition": args.acquisition,
        "active.seed": args.seed, "train.epochs": args.ceiling, "train.patience_epochs": 10.0 * args.ceiling})
    t = cfg.train
    trainings: list[tuple[Any, TrainResult]] = []
    real = active.train_with_restarts

    def recording(train, val, model_cfg, train_cfg, restarts, seed):
        result = real(train, val, model_cfg, train_cfg, restarts, seed)
        trainings.append((train, result))
        return result

    active.train_with_restarts = recording  # the job's own trainings, observed
    try:
        with tempfile.TemporaryDirectory() as tmp:
            active.run_active(cfg, f"{tmp}/run", progress=False, reference=args.reference)
    finally:
        active.train_with_restarts = real
    totals: dict[tuple[float, float, float], list[float]] = {}
    for k, (train, result) in enumerate(trainings):
        labelled = torch.from_numpy(train.labels != UNLABELLED)
        epoch = crops_per_epoch(labelled, t.crop_size) / t.batch_size
        curve = dict(result.val_checks)
        shown = []
        for e in EPOCHS_SHOWN:
            step = max(t.val_every, int(round(e * epoch / t.val_every)) * t.val_every)
            shown.append(f"{curve[step]:.3f}" if step in curve else "-")
        print(f"training {k}: {len(train)} images, {int(labelled.sum())} labelled px, {epoch:.2f} steps/epoch; "
              f"lowest {result.val_loss:.4f} at step {result.best_iteration} "
              f"({result.best_iteration / epoch:.0f} epochs); at {'/'.join(map(str, EPOCHS_SHOWN))} epochs: "
              f"{' / '.join(shown)}")
        for ceiling_epochs in args.ceilings:
            ceiling = max(t.min_iterations, math.ceil(ceiling_epochs * epoch))
            for patience in args.patience:
                for start in args.starts:
                    steps, kept = plateau_stop(result.val_checks, epoch, patience, ceiling, t.val_every, start)
                    totals.setdefault((ceiling_epochs, patience, start), [0.0, 0.0])
                    totals[(ceiling_epochs, patience, start)][0] += steps
                    totals[(ceiling_epochs, patience, start)][1] += kept
                    print(f"    ceiling {ceiling_epochs:g} epochs, patience {patience:g}, start {start:g}: "
                          f"stops at step {steps}, keeps {kept:.4f}")
    for (ceiling_epochs, patience, start), (all_steps, all_kept) in sorted(totals.items()):
        print(f"ceiling {ceiling_epochs:g} epochs, patience {patience:g}, start {start:g}: {all_steps:.0f} steps "
              f"in all, mean kept validation loss {all_kept / len(trainings):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
