"""When did each training of a sweep reach its lowest validation loss, and how did those models score?

Reads the step records of a results folder (no training) and prints, per strategy, how many trainings of
steps 1.. kept weights from their first ``--epochs`` epochs (an early, often transient validation
minimum) and the mean test metric of those trainings against the others. A diagnosis of what the
plateau stop kept, not a way to choose settings (it reads test scores).

Epochs are counted as the trainings count them when a crop is the whole image (``train.crop_size`` equal
to ``data.image_size``): one step per ``train.batch_size`` labelled images; other runs are skipped.

    python -m benchmarks.stop_points notebooks/example_results/quick [--epochs 15] [--metric f1]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from alseg_utils.run_folder import CONFIG_FILE, RECORDS_FILE


def early_stops(results_dir: Path, epochs: float, metric: str) -> dict[str, tuple[int, int, float, float]]:
    """strategy -> (trainings, early ones, mean metric of the early ones, mean metric of the rest)."""
    rows: dict[str, list[tuple[bool, float]]] = {}
    for records in sorted(results_dir.glob(f"*/{RECORDS_FILE}")):
        cfg = json.loads((records.parent / CONFIG_FILE).read_text())["config"]
        if list(cfg["train"]["crop_size"]) not in ([], list(cfg["data"]["image_size"])):
            continue
        for line in records.read_text().splitlines():
            r = json.loads(line)
            if r["reference"] or r["step"] == 0:
                continue
            per_epoch = r["labelled_images"] / cfg["train"]["batch_size"]  # steps per epoch
            rows.setdefault(r["strategy"], []).append((r["train_best_iteration"] < epochs * per_epoch, r[metric]))
    out = {}
    for strategy, pairs in rows.items():
        early = [v for e, v in pairs if e]
        rest = [v for e, v in pairs if not e]
        out[strategy] = (len(pairs), len(early), float(np.mean(early)) if early else float("nan"),
                         float(np.mean(rest)) if rest else float("nan"))
    return out


def main(argv: list[str] | None = None) -> int:
    """Print one line per strategy."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.stop_points")
    p.add_argument("results", help="a results folder (one sub-folder per run)")
    p.add_argument("--epochs", type=float, default=15.0)
    p.add_argument("--metric", default="f1")
    args = p.parse_args(argv)
    for strategy, (n, k, early, rest) in sorted(early_stops(Path(args.results), args.epochs, args.metric).items()):
        print(f"{strategy}: {k} of {n} trainings (steps 1..) kept weights from their first {args.epochs:g} epochs; "
              f"mean {args.metric} {early:.3f} for those, {rest:.3f} for the others")
    return 0


if __name__ == "__main__":
    sys.exit(main())
