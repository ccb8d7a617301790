"""Does a training option help? Compared on the validation loss of real AL trainings, with and without it.

Two comparisons, each for ``--jobs`` (``strategy:acquisition:seed``) of a params file and ``--set KEY=VALUE``
overrides (the variant) against the params file as it is (the baseline):

* ``jobs`` (default): each job is run whole, once per setting, and the mean validation loss of its
  steps 1.. is printed (the trainings that the option can change; step 0 is shared). Later steps see
  the sets that each setting's own models selected, as a user would.
* ``retrain``: the labelled set of step ``--step`` (selected by the baseline's models) is trained
  ``--trainings`` times with independent seeds in each setting, so the difference between settings can
  be told from the spread of single trainings.

Only the validation loss chooses; the test F1 is printed beside it, marked as reported only, because it
is what the README's curves show. Deterministic on the CPU with one compute thread (``OMP_NUM_THREADS=1``).

    python -m benchmarks.training_options params/quick.yaml --set train.lr_by_labels=true \\
        --jobs region:random:0 region:bald:1
    python -m benchmarks.training_options params/quick.yaml --set train.lr_by_labels=true \\
        --compare retrain --step 1 --trainings 8 --jobs region:random:1
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from typing import Any

import numpy as np
import torch
import yaml

import alseg_utils.active as active
from alseg_utils.config import UNLABELLED, RunConfig, load_config
from alseg_utils.evaluate import evaluate_model
from alseg_utils.train import LabelledSet, restart_seed, train_model


def job_config(params: str, job: str, overrides: dict[str, Any]) -> RunConfig:
    """The config of ``strategy:acquisition:seed`` with ``overrides`` (dotted keys)."""
    strategy, acquisition, seed = job.split(":")
    return load_config(params, {**overrides, "active.strategy": strategy, "active.acquisition": acquisition,
                                "active.seed": int(seed)})


def run_job(cfg: RunConfig) -> list[dict[str, Any]]:
    """The step records of one whole AL run in a scratch folder."""
    with tempfile.TemporaryDirectory() as tmp:
        return active.run_active(cfg, f"{tmp}/run", progress=False)


def labelled_sets(cfg: RunConfig, step: int) -> list[tuple[LabelledSet, LabelledSet]]:
    """(training set, validation set) of steps 0..``step`` of a run, as its trainings saw them."""
    seen: list[tuple[LabelledSet, LabelledSet]] = []
    real = active.train_with_restarts

    def recording(train, val, model_cfg, train_cfg, restarts, seed):
        seen.append((train, val))
        return real(train, val, model_cfg, train_cfg, restarts=restarts, seed=seed)

    cfg = dataclasses.replace(cfg, active=dataclasses.replace(cfg.active, steps=step))
    active.train_with_restarts = recording  # the job's own sets, observed
    try:
        run_job(cfg)
    finally:
        active.train_with_restarts = real
    return seen


def retrain(cfg: RunConfig, data: active.RunData, train: LabelledSet, val: LabelledSet,
            trainings: int) -> tuple[list[float], list[float]]:
    """(validation losses, test F1s) of ``trainings`` trainings of one set, seeds ``restart_seed(2000 + seed, r)``."""
    losses, f1s = [], []
    for r in range(trainings):
        result = train_model(train, val, cfg.model, cfg.train, restart_seed(2000 + cfg.active.seed, r))
        metrics = evaluate_model(result.model, data.test, cfg, seed=0, device=torch.device("cpu"))
        losses.append(result.val_loss)
        f1s.append(float(metrics["f1"]))
    return losses, f1s


def constant_val_loss(val: LabelledSet) -> float:
    """Validation loss of the best constant prediction: each head's class frequencies on ``val`` itself (nats).

    The loss of a network that has learnt nothing but the class balance, a floor for "has it learnt anything".
    """
    total = 0.0
    for labels in (val.labels, val.contours):
        p = float(np.mean(labels[labels != UNLABELLED] == 1))
        total += -(p * np.log(p) + (1 - p) * np.log(1 - p)) if 0 < p < 1 else 0.0
    return total


def main(argv: list[str] | None = None) -> int:
    """Print the baseline and the variant, job by job, and the mean relative change of validation loss."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.training_options")
    p.add_argument("params", nargs="?", default="params/quick.yaml")
    p.add_argument("--set", nargs="+", required=True, metavar="KEY=VALUE", help="the variant's overrides")
    p.add_argument("--jobs", nargs="+", default=["region:random:0"], metavar="STRATEGY:ACQUISITION:SEED")
    p.add_argument("--compare", choices=("jobs", "retrain"), default="jobs")
    p.add_argument("--step", type=int, default=1, help="retrain: the step whose labelled set is retrained")
    p.add_argument("--trainings", type=int, default=8, help="retrain: trainings per setting")
    args = p.parse_args(argv)
    variant = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    changes = []
    for job in args.jobs:
        base, other = job_config(args.params, job, {}), job_config(args.params, job, variant)
        if args.compare == "jobs":
            rows = [run_job(cfg)[1:] for cfg in (base, other)]
            loss = [float(np.mean([r["val_loss"] for r in recs])) for recs in rows]
            shown = [" ".join(f"{r['val_loss']:.3f}" for r in recs) for recs in rows]
            f1 = [" ".join(f"{r['f1']:.2f}" for r in recs) for recs in rows]
            print(f"{job}: steps 1-{len(rows[0])} validation loss baseline {shown[0]} (mean {loss[0]:.4f}); "
                  f"variant {shown[1]} (mean {loss[1]:.4f}): {100 * (loss[1] / loss[0] - 1):+.1f}% | "
                  f"test F1, reported only: {f1[0]} vs {f1[1]}", flush=True)
        else:
            train, val = labelled_sets(base, args.step)[args.step]
            data = active.prepare_run_data(base)  # the test images, loaded once for both settings
            results = [retrain(cfg, data, train, val, args.trainings) for cfg in (base, other)]
            loss = [float(np.mean(r[0])) for r in results]
            print(f"{job}: step-{args.step} set ({len(train)} images), {args.trainings} trainings each: validation "
                  f"loss baseline {loss[0]:.4f} ± {np.std(results[0][0]):.4f}, variant {loss[1]:.4f} ± "
                  f"{np.std(results[1][0]):.4f}: {100 * (loss[1] / loss[0] - 1):+.1f}% (class frequencies alone: "
                  f"{constant_val_loss(val):.4f}) | test F1, reported only: {np.mean(results[0][1]):.3f} ± "
                  f"{np.std(results[0][1]):.3f} vs {np.mean(results[1][1]):.3f} ± {np.std(results[1][1]):.3f}",
                  flush=True)
        changes.append(loss[1] / loss[0] - 1)
    print(f"variant {' '.join(args.set)}: mean change of validation loss {100 * np.mean(changes):+.1f}% over "
          f"{len(changes)} job(s), lower in {sum(c < 0 for c in changes)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
