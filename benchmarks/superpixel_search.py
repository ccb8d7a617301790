"""Benchmark: superpixel scoring + selection against a loop over segments, and SLIC time per image.

    python -m benchmarks.superpixel_search [--images 65] [--height 528] [--width 784] [--area 22500]
                                           [--m 20] [--labelled 0.1] [--repeats 3]

Pool: random per-pixel scores (float32, seeded) for 65 images of 528x784 (the paper's GlaS pool),
cut into SLIC superpixels of about 150x150 pixels (computed once on synthetic GlaS-like images, the
time per image is printed), with a fraction of the images already labelled; the budget is the square
strategy's, 20 x 150^2 pixels. The reference is what one writes first: for every image and segment, a
boolean mask, the sum of its unlabelled pixels' scores and their count, then the same greedy pass
under the budget. Both must pick the same segments; the headline (last line) is the time ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from alseg_utils.superpixels import SuperpixelPick, compute_superpixels, select_superpixels
from alseg_utils.synthetic import render_glas_image
from benchmarks.region_search import _best_time


def reference_select(scores: np.ndarray, segments: np.ndarray, budget: int,
                     labelled: np.ndarray) -> list[SuperpixelPick]:
    """Loop-over-segments scoring, then greedy selection under the pixel budget."""
    candidates = []
    for i in range(len(scores)):
        for s in np.unique(segments[i][segments[i] >= 0]):
            inside = (segments[i] == s) & ~labelled[i]  # [H, W]
            cost = int(inside.sum())
            if cost:
                candidates.append((-float(scores[i][inside].sum(dtype=np.float64)), i, int(s), cost))
    candidates.sort()
    picks = []
    for neg, i, s, cost in candidates:
        if cost <= budget:
            picks.append(SuperpixelPick(i, s, cost, -neg))
            budget -= cost
    return picks


def _segments(images: int, height: int, width: int, area: int, seed: int) -> tuple[np.ndarray, float]:
    """SLIC of a few synthetic GlaS-like images tiled over the pool, and the seconds per image."""
    rng = np.random.default_rng(seed)
    distinct = min(images, 4)
    rendered = np.stack([render_glas_image(rng, (height, width), False)[0] for _ in range(distinct)])
    start = time.perf_counter()
    segs = compute_superpixels(rendered, area)  # [distinct, H, W]
    per_image = (time.perf_counter() - start) / distinct
    return segs[np.arange(images) % distinct], per_image


def main(argv: list[str] | None = None) -> None:
    """Time both selections, check they agree, print the ratio last."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=65)
    p.add_argument("--height", type=int, default=528)
    p.add_argument("--width", type=int, default=784)
    p.add_argument("--area", type=int, default=150**2, help="superpixel area, pixels")
    p.add_argument("--m", type=int, default=20, help="budget = m x area pixels")
    p.add_argument("--labelled", type=float, default=0.1, help="fraction of images already labelled")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    segments, slic_s = _segments(a.images, a.height, a.width, a.area, a.seed)
    rng = np.random.default_rng(a.seed)
    scores = rng.random(segments.shape, dtype=np.float32)  # [N, H, W]
    labelled = np.zeros(segments.shape, dtype=bool)
    labelled[: int(round(a.labelled * a.images))] = True
    budget = a.m * a.area
    ours_s, ours = _best_time(lambda: select_superpixels(scores, segments, budget, labelled=labelled), a.repeats)
    ref_s, ref = _best_time(lambda: reference_select(scores, segments, budget, labelled), 1)
    same = [(q.image, q.segment, q.pixels) for q in ours] == [(q.image, q.segment, q.pixels) for q in ref]
    print(f"pool {a.images} x {a.height}x{a.width}, {int(segments.max()) + 1} segment ids per image at most, "
          f"budget {budget} px")
    print(f"SLIC: {slic_s:.2f} s per {a.height}x{a.width} image (once per run, cached)")
    print(f"select_superpixels: {ours_s:.3f} s, {len(ours)} picks; loop over segments: {ref_s:.3f} s; "
          f"same picks: {same}")
    print(f"superpixel search: {ref_s / ours_s:.1f}x faster than the loop over segments")
    if not same:
        raise SystemExit("the two selections differ")


if __name__ == "__main__":
    main()
