"""Benchmark: ``select_regions`` against a straightforward NumPy region search on a GlaS-sized pool.

    python -m benchmarks.region_search [--images 65] [--height 528] [--width 784] [--size 150]
                                       [--stride 30] [--m 20] [--labelled 0.1] [--repeats 3]

Pool: random per-pixel scores (float32, seeded) for 65 images of 528x784 (the paper's GlaS pool),
150x150 windows every 30 pixels, 20 regions per step, with a fraction of the images already
labelled. The reference is what one writes first: a loop over every window summing its pixels
by slicing (float64), then a greedy pass over the windows sorted best-first (ties: lowest image,
top, left) that skips windows overlapping one already taken and windows made only of labelled
pixels. Both must pick the same windows; the headline (last line) is the time ratio.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from alseg_utils.regions import Region, region_origins, select_regions

_T = TypeVar("_T")


def reference_select(scores: np.ndarray, size: int, stride: int, m: int,
                     labelled: np.ndarray) -> list[Region]:
    """Loop-over-windows region search with greedy non-overlapping selection."""
    n, height, width = scores.shape
    tops, lefts = region_origins(height, width, size, stride)
    candidates = []
    for i, top, left in itertools.product(range(n), tops, lefts):
        window = (i, slice(top, top + size), slice(left, left + size))
        if labelled[window].all():
            continue
        value = np.where(labelled[window], 0.0, scores[window]).sum(dtype=np.float64)
        candidates.append((-value, i, top, left))
    candidates.sort()
    chosen: list[Region] = []
    for _, i, top, left in candidates:
        region = Region(i, top, left, size, size)
        if not any(region.overlaps(c) for c in chosen):
            chosen.append(region)
            if len(chosen) == m:
                break
    return chosen


def _pool(images: int, height: int, width: int, labelled_fraction: float,
          seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scores = rng.random((images, height, width), dtype=np.float32)
    labelled = np.zeros(scores.shape, dtype=bool)
    labelled[: int(round(labelled_fraction * images))] = True  # fully labelled images
    labelled[-1, : height // 2] = True  # and half of the last one
    return scores, labelled


def _best_time(fn: Callable[[], _T], repeats: int) -> tuple[float, _T]:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main(argv: list[str] | None = None) -> None:
    """Time both searches, check they agree, print the ratio last."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=65)
    p.add_argument("--height", type=int, default=528)
    p.add_argument("--width", type=int, default=784)
    p.add_argument("--size", type=int, default=150)
    p.add_argument("--stride", type=int, default=30)
    p.add_argument("--m", type=int, default=20)
    p.add_argument("--labelled", type=float, default=0.1, help="fraction of images already labelled")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    scores, labelled = _pool(a.images, a.height, a.width, a.labelled, a.seed)
    ours_s, ours = _best_time(lambda: select_regions(scores, a.size, a.stride, a.m, labelled=labelled),
                              a.repeats)
    ref_s, ref = _best_time(lambda: reference_select(scores, a.size, a.stride, a.m, labelled), 1)
    tops, lefts = region_origins(a.height, a.width, a.size, a.stride)
    print(f"pool {a.images} x {a.height}x{a.width}, windows {a.size}x{a.size} stride {a.stride} "
          f"({a.images * len(tops) * len(lefts)} windows), m = {a.m}")
    print(f"select_regions (best of {a.repeats}): {ours_s:.3f} s; NumPy loop reference: {ref_s:.3f} s")
    print(f"same windows: {ours == ref} ({len(ours)} chosen; first {ours[0] if ours else None})")
    print(f"region_search: select_regions {ref_s / ours_s:.0f}x faster than the loop reference "
          f"({ours_s:.3f} s vs {ref_s:.2f} s), same windows: {ours == ref}")


if __name__ == "__main__":
    main()
