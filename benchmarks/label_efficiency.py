"""Label efficiency: pixels needed by superpixels vs square regions vs full images to reach a target.

Reads a finished sweep (``runs/<name>`` or its ``results/`` folder; run ``alseg sweep`` first) and
prints, per acquisition function and metric, the mean (± std over seeds) % of labelled pixels each
strategy needed to reach ``relative_target`` x the full-training-data score, and two ratios:
region / full (the paper's claim; target <= 0.5) and superpixel / region (issue 10's claim; target
<= 0.8). A strategy that never reaches the target is reported as such, with its best score, never
silently dropped; strategies absent from the sweep are left out.

    python -m benchmarks.label_efficiency runs/quick [--metric f1] [--relative 0.95]

The last lines are the headlines: the mean of each ratio over the acquisition functions where both
strategies of the ratio reached the target.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from alseg_utils.efficiency import headlines, label_efficiency
from alseg_utils.results import load_records


def main(argv: list[str] | None = None) -> int:
    """Print the label-efficiency table of a sweep and the headline ratios."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.label_efficiency")
    p.add_argument("sweep", help="a sweep folder (runs/<name>) or its results folder")
    p.add_argument("--metric", default="f1")
    p.add_argument("--relative", type=float, default=0.95)
    args = p.parse_args(argv)
    df = load_records(Path(args.sweep))
    if df.empty:
        raise SystemExit(f"no records under {args.sweep}; run `alseg sweep` first")
    table = label_efficiency(df, args.metric, args.relative)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table.round(3).to_string(index=False))
    for line in headlines(table, args.metric, args.relative):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
