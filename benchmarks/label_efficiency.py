"""Label efficiency: effort needed by superpixels vs square regions vs full images to reach a target.

Reads a finished sweep (``runs/<name>`` or its ``results/`` folder; run ``alseg sweep`` first) and
prints, per acquisition function and metric, the mean (± std over seeds) effort each method
needed to reach ``relative_target`` x the full-training-data score, and the ratios: region / full
(the paper's claim; target <= 0.5), superpixel / region (issue 10's claim; target <= 0.8) and,
when the sweep ran them, superpixel_dominant / region. Effort is the % of labelled pixels
(``--cost pixels``, the paper), or clicks (``polygon_clicks``, ``dominant_clicks``, or ``clicks``
as each run was annotated; see alseg_utils.costs); a ratio in clicks is the ratio of the clicks
each method needs. A method that never reaches the target is reported as such, with its best
score, never silently dropped; methods absent from the sweep are left out.

    python -m benchmarks.label_efficiency runs/quick [runs/quick_dominant ...] [--metric f1] [--relative 0.95]
        [--cost clicks]

The last lines are the headlines: the mean of each ratio over the acquisition functions where both
methods of the ratio reached the target.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from alseg_utils.config import EFFORT_AXES
from alseg_utils.efficiency import headlines, label_efficiency
from alseg_utils.errors import AlsegError
from alseg_utils.results import load_records


def main(argv: list[str] | None = None) -> int:
    """Print the label-efficiency table of a sweep and the headline ratios."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.label_efficiency")
    p.add_argument("sweep", nargs="+",
                   help="sweep folders (runs/<name>) or their results folders; several are read as one (e.g. "
                        "runs/quick runs/quick_dominant)")
    p.add_argument("--metric", default="f1")
    p.add_argument("--relative", type=float, default=0.95)
    p.add_argument("--cost", choices=EFFORT_AXES, default="pixels",
                   help="effort axis: %% labelled pixels, polygon clicks, dominant-class clicks, clicks as annotated")
    args = p.parse_args(argv)
    frames = [f for f in (load_records(Path(folder)) for folder in args.sweep) if not f.empty]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if df.empty:
        raise SystemExit(f"no records under {' '.join(args.sweep)}; run `alseg sweep` first")
    try:
        table = label_efficiency(df, args.metric, args.relative, cost=args.cost)
    except AlsegError as err:  # e.g. clicks asked of records written before they were counted
        raise SystemExit(f"label_efficiency: error: {err}") from None
    with pd.option_context("display.width", 200, "display.max_columns", 40):
        print(table.round(3).to_string(index=False))
    for line in headlines(table, args.metric, args.relative, cost=args.cost):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
