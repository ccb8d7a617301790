"""Window origins and sums against brute force; greedy non-overlapping region selection."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from alseg_utils.regions import Region, region_origins, region_scores, regions_mask, select_regions, select_windows


def _brute_sums(scores: np.ndarray, size: int, stride: int) -> np.ndarray:
    """Window sums by slicing every window (float64)."""
    n, height, width = scores.shape
    tops, lefts = region_origins(height, width, size, stride)
    out = np.zeros((n, len(tops), len(lefts)))
    for i, (a, t), (b, l) in itertools.product(range(n), enumerate(tops), enumerate(lefts)):
        out[i, a, b] = scores[i, t:t + size, l:l + size].sum(dtype=np.float64)
    return out


def _brute_select(scores: np.ndarray, size: int, stride: int, m: int,
                  labelled: np.ndarray | None = None) -> list[Region]:
    """Greedy by brute force: all windows sorted best-first, skip overlaps and fully labelled ones."""
    if labelled is not None:
        scores = np.where(labelled, 0, scores)
    n, height, width = scores.shape
    tops, lefts = region_origins(height, width, size, stride)
    cands = []
    for i, t, l in itertools.product(range(n), tops, lefts):
        if labelled is not None and labelled[i, t:t + size, l:l + size].all():
            continue
        cands.append((-scores[i, t:t + size, l:l + size].sum(dtype=np.float64), i, t, l))
    chosen: list[Region] = []
    for _, i, t, l in sorted(cands):
        r = Region(i, t, l, size, size)
        if len(chosen) < m and not any(r.overlaps(c) for c in chosen):
            chosen.append(r)
    return chosen


# --------------------------------------------------------------------------- origins


@pytest.mark.parametrize("length,size,stride,expected", [
    (10, 4, 3, [0, 3, 6]),  # 6 + 4 = 10: the last regular window touches the edge
    (11, 4, 3, [0, 3, 6, 7]),  # one more window flush with the edge
    (5, 5, 2, [0]),  # window as large as the image
    (7, 2, 10, [0, 5]),  # stride larger than the window: gaps, but the edge is still covered
    (528, 150, 30, [0, 30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 330, 360, 378]),  # GlaS rows
])
def test_region_origins_hand_worked(length: int, size: int, stride: int, expected: list[int]) -> None:
    tops, lefts = region_origins(length, length + 1, size, stride)
    assert tops == expected
    assert lefts[-1] == length + 1 - size


def test_region_origins_rectangular_windows() -> None:
    assert region_origins(6, 9, (2, 4), 3) == ([0, 3, 4], [0, 3, 5])


# --------------------------------------------------------------------------- window sums


def test_region_scores_hand_worked() -> None:
    scores = torch.arange(16, dtype=torch.float32).view(1, 4, 4)
    # windows 2x2, stride 2: [[0+1+4+5, 2+3+6+7], [8+9+12+13, 10+11+14+15]]
    expected = torch.tensor([[[10.0, 18.0], [42.0, 50.0]]], dtype=torch.float64)
    torch.testing.assert_close(region_scores(scores, 2, 2), expected)
    # windows 3x3, stride 2: origins 0 and 1 (flush with the edge)
    torch.testing.assert_close(region_scores(scores, 3, 2),
                               torch.tensor([[[45.0, 54.0], [81.0, 90.0]]], dtype=torch.float64))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3), height=st.integers(1, 12), width=st.integers(1, 12),
       size=st.integers(1, 12), stride=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_region_scores_equal_brute_force(n: int, height: int, width: int, size: int, stride: int,
                                         seed: int) -> None:
    size = min(size, height, width)
    scores = np.random.default_rng(seed).random((n, height, width), dtype=np.float32)
    ours = region_scores(scores, size, stride)
    assert ours.dtype == torch.float64
    np.testing.assert_allclose(ours.numpy(), _brute_sums(scores, size, stride), rtol=1e-12, atol=1e-9)


def test_every_pixel_is_covered_by_some_window() -> None:
    n, height, width, size, stride = 1, 23, 17, 6, 4
    tops, lefts = region_origins(height, width, size, stride)
    regions = [Region(0, t, l, size, size) for t in tops for l in lefts]
    assert regions_mask(regions, (n, height, width)).all()


def test_region_scores_accepts_tensors_and_bool_masks() -> None:
    mask = torch.zeros(2, 4, 4, dtype=torch.bool)
    mask[1, 2:, 2:] = True
    counts = region_scores(mask, 2, 2)
    assert counts[1, 1, 1] == 4 and counts.sum() == 4


# --------------------------------------------------------------------------- selection


def test_select_regions_hand_worked() -> None:
    scores = np.zeros((2, 4, 6), dtype=np.float32)
    scores[1, 0, 4] = 5.0
    scores[1, 1, 3] = 1.0  # the window at (0, 3) holds both: 6, the best of the pool
    scores[1, 3, 0] = 4.0  # image 1's best window away from it: 4
    scores[0, 3, 1] = 4.5  # image 0: windows (2, 0) and (2, 1) tie at 4.5
    chosen = select_regions(scores, 2, 1, m=3)
    assert chosen == [Region(1, 0, 3, 2, 2), Region(0, 2, 0, 2, 2), Region(1, 2, 0, 2, 2)]
    assert select_regions(scores, 2, 1, m=1) == chosen[:1]


def test_ties_go_to_lowest_image_top_left() -> None:
    chosen = select_regions(np.zeros((2, 4, 4)), 2, 2, m=3)
    assert chosen == [Region(0, 0, 0, 2, 2), Region(0, 0, 2, 2, 2), Region(0, 2, 0, 2, 2)]


def test_chosen_windows_never_overlap() -> None:
    scores = np.zeros((1, 10, 10))
    scores[0, 4:6, 4:6] = 1.0  # every window holding the centre scores the same
    chosen = select_regions(scores, 4, 1, m=10)
    mask = regions_mask(chosen, (1, 10, 10))
    assert mask.sum() == sum(r.area for r in chosen)  # no pixel counted twice
    assert not any(a.overlaps(b) for a, b in itertools.combinations(chosen, 2))
    assert chosen[0] == Region(0, 2, 2, 4, 4)  # first window of the tied best ones


def test_labelled_pixels_score_zero_and_full_labelled_windows_are_skipped() -> None:
    scores = np.ones((1, 4, 8), dtype=np.float32)
    scores[0, :, :4] = 10.0  # the left half is the most uncertain ...
    labelled = np.zeros((1, 4, 8), dtype=bool)
    labelled[0, :, :4] = True  # ... but it is already labelled
    chosen = select_regions(scores, 4, 2, m=5, labelled=labelled)
    assert chosen == [Region(0, 0, 4, 4, 4)]  # only the right window; the middle one overlaps it
    assert not regions_mask(chosen, scores.shape)[labelled].any()


def test_all_labelled_gives_nothing() -> None:
    labelled = np.ones((2, 5, 5), dtype=bool)
    assert select_regions(np.ones((2, 5, 5)), 3, 1, m=4, labelled=labelled) == []


def test_m_larger_than_available_returns_all_that_fit() -> None:
    chosen = select_regions(np.random.default_rng(0).random((2, 6, 6)), 3, 3, m=100)
    assert len(chosen) == 8  # 2 images x 4 disjoint 3x3 windows
    assert regions_mask(chosen, (2, 6, 6)).all()
    assert select_regions(np.ones((1, 6, 6)), 3, 3, m=0) == []


def test_selection_on_a_glas_sized_pool() -> None:  # speed: benchmarks/region_search.py
    scores = np.random.default_rng(0).random((65, 528, 784), dtype=np.float32)
    labelled = np.zeros(scores.shape, dtype=bool)
    labelled[:10] = True
    chosen = select_regions(scores, 150, 30, 20, labelled=labelled)
    assert len(chosen) == 20 and all(r.image >= 10 for r in chosen)


@st.composite
def _pool(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray | None, int, int, int]:
    n, h, w = draw(st.integers(1, 3)), draw(st.integers(2, 9)), draw(st.integers(2, 9))
    size = draw(st.integers(1, min(h, w)))
    stride, m = draw(st.integers(1, 4)), draw(st.integers(0, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    scores = rng.integers(0, 4, (n, h, w)).astype(np.float32)  # integers: exact sums, exact ties
    labelled = rng.random((n, h, w)) < draw(st.sampled_from([0.0, 0.5, 0.9])) if draw(st.booleans()) else None
    return scores, labelled, size, stride, m


@settings(max_examples=80, deadline=None)
@given(_pool())
def test_select_regions_equals_brute_force_greedy(pool: tuple) -> None:
    scores, labelled, size, stride, m = pool
    chosen = select_regions(scores, size, stride, m, labelled=labelled)
    assert chosen == _brute_select(scores, size, stride, m, labelled)
    assert len(chosen) <= m
    assert not any(a.overlaps(b) for a, b in itertools.combinations(chosen, 2))
    if labelled is not None:
        assert all(not labelled[(r.image, *r.slices)].all() for r in chosen)


def test_select_windows_takes_the_given_window_scores() -> None:
    values = np.zeros((1, 3, 3))  # 2x2 windows at stride 1 on a 4x4 image
    values[0, 1, 1] = 3.0  # best, but entirely labelled: never chosen
    values[0, 0, 2] = 2.0  # partly labelled: keeps its value
    values[0, 1, 0] = 1.0  # overlaps no earlier pick
    labelled = np.zeros((1, 4, 4), dtype=bool)
    labelled[0, 1:3, 1:3] = True
    chosen = select_windows(values, (4, 4), 2, 1, m=3, labelled=labelled)
    assert chosen == [Region(0, 0, 2, 2, 2), Region(0, 1, 0, 2, 2), Region(0, 2, 2, 2, 2)]
    assert select_windows(values, (4, 4), 2, 1, m=1) == [Region(0, 1, 1, 2, 2)]  # nothing labelled


def _brute_select_values(values: np.ndarray, image_size: tuple[int, int], size: int, stride: int, m: int,
                         labelled: np.ndarray | None) -> list[Region]:
    """Greedy by brute force on given window values: best first, skip overlaps and fully labelled ones."""
    tops, lefts = region_origins(*image_size, size, stride)
    cands = sorted((-values[i, a, b], i, t, l) for i, (a, t), (b, l)
                   in itertools.product(range(len(values)), enumerate(tops), enumerate(lefts))
                   if labelled is None or not labelled[i, t:t + size, l:l + size].all())
    chosen: list[Region] = []
    for _, i, t, l in cands:
        r = Region(i, t, l, size, size)
        if len(chosen) < m and not any(r.overlaps(c) for c in chosen):
            chosen.append(r)
    return chosen


@settings(max_examples=60, deadline=None)
@given(_pool(), st.integers(0, 2**16))
def test_select_windows_equals_brute_force_and_select_regions(pool: tuple, seed: int) -> None:
    scores, labelled, size, stride, m = pool
    tops, lefts = region_origins(scores.shape[1], scores.shape[2], size, stride)
    values = np.random.default_rng(seed).random((len(scores), len(tops), len(lefts)))  # Random's draws
    chosen = select_windows(values, scores.shape[1:], size, stride, m, labelled)
    assert chosen == _brute_select_values(values, scores.shape[1:], size, stride, m, labelled)
    masked = scores if labelled is None else np.where(labelled, 0, scores)
    sums = region_scores(masked, size, stride)
    assert select_windows(sums, scores.shape[1:], size, stride, m, labelled) == select_regions(
        scores, size, stride, m, labelled)


@pytest.mark.parametrize("values,match", [
    (np.zeros((1, 3, 2)), r"must be \[N, 3, 3\]"),
    (np.full((1, 3, 3), np.inf), "NaN or infinity"),
    (np.zeros((3, 3)), r"\[N, H, W\]"),
])
def test_select_windows_rejects_bad_values(values: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        select_windows(values, (4, 4), 2, 1, 1)


# --------------------------------------------------------------------------- Region and masks


def test_region_helpers() -> None:
    r = Region(image=1, top=2, left=3, height=4, width=5)
    assert r.slices == (slice(2, 6), slice(3, 8)) and r.area == 20
    assert r.overlaps(Region(1, 5, 7, 2, 2)) and not r.overlaps(Region(1, 6, 3, 2, 2))
    assert not r.overlaps(Region(0, 2, 3, 4, 5))  # another image
    mask = regions_mask([r], (2, 8, 8))
    assert mask.sum() == 20 and mask[1, 2:6, 3:8].all()


# --------------------------------------------------------------------------- bad inputs


def test_region_larger_than_the_image_names_both_sizes() -> None:
    with pytest.raises(ValueError, match=r"region 150x150 is larger than the images \(100x200\)"):
        select_regions(np.zeros((1, 100, 200)), 150, 30, 5)
    with pytest.raises(ValueError, match="larger than the images"):
        region_scores(np.zeros((1, 10, 10)), (4, 11), 1)


@pytest.mark.parametrize("kwargs,match", [
    ({"stride": 0}, "stride"),
    ({"size": 0}, "region size"),
    ({"size": (2, 2, 2)}, "region size"),
    ({"m": -1}, "m \\(regions"),
    ({"scores": np.zeros((4, 4))}, r"\[N, H, W\]"),
    ({"scores": np.full((1, 4, 4), np.nan)}, "NaN"),
    ({"labelled": np.zeros((1, 4, 4), dtype=np.uint8)}, "bool"),
    ({"labelled": np.zeros((1, 4, 5), dtype=bool)}, "shape"),
])
def test_select_regions_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    args = {"scores": np.zeros((1, 4, 4)), "size": 2, "stride": 1, "m": 1, "labelled": None, **kwargs}
    with pytest.raises(ValueError, match=match):
        select_regions(**args)


def test_regions_mask_rejects_regions_outside_the_pool() -> None:
    with pytest.raises(ValueError, match="outside"):
        regions_mask([Region(0, 3, 0, 2, 2)], (1, 4, 4))
    with pytest.raises(ValueError, match="outside"):
        regions_mask([Region(1, 0, 0, 2, 2)], (1, 4, 4))


# --------------------------------------------------------------------------- spatial diversity


def _window_gap(a: Region, b: Region) -> int:
    """Smallest Chebyshev distance between a pixel of ``a`` and a pixel of ``b`` (0 when they overlap)."""
    rows = max(a.top - (b.top + b.height - 1), b.top - (a.top + a.height - 1), 0)
    cols = max(a.left - (b.left + b.width - 1), b.left - (a.left + a.width - 1), 0)
    return max(rows, cols)


def _brute_select_diverse(scores: np.ndarray, size: int, stride: int, m: int, labelled: np.ndarray | None,
                          max_per_image: int | None, min_distance: int) -> list[Region]:
    """Greedy by brute force with the diversity rule checked against every earlier pick."""
    if labelled is not None:
        scores = np.where(labelled, 0, scores)
    n, height, width = scores.shape
    tops, lefts = region_origins(height, width, size, stride)
    cands = sorted((-scores[i, t:t + size, l:l + size].sum(dtype=np.float64), i, t, l)
                   for i, t, l in itertools.product(range(n), tops, lefts)
                   if labelled is None or not labelled[i, t:t + size, l:l + size].all())
    chosen: list[Region] = []
    for _, i, t, l in cands:
        r = Region(i, t, l, size, size)
        same = [c for c in chosen if c.image == i]
        full = max_per_image is not None and len(same) >= max_per_image
        if len(chosen) < m and not full and all(_window_gap(c, r) > min_distance for c in same):
            chosen.append(r)  # gap > 0 means disjoint, so min_distance = 0 is the plain rule
    return chosen


def test_max_per_image_caps_windows_per_image() -> None:
    scores = np.zeros((2, 4, 8))
    scores[0] = 3.0  # image 0 is the most uncertain everywhere ...
    scores[1] = 1.0
    assert [r.image for r in select_regions(scores, 2, 2, m=4)] == [0, 0, 0, 0]
    chosen = select_regions(scores, 2, 2, m=4, max_per_image=1)
    assert chosen == [Region(0, 0, 0, 2, 2), Region(1, 0, 0, 2, 2)]  # ... but gives one window each
    assert select_regions(scores, 2, 2, m=4, max_per_image=3) == select_regions(scores, 2, 2, m=4)[:3] + [
        Region(1, 0, 0, 2, 2)]


def test_min_distance_keeps_windows_apart() -> None:
    scores = np.ones((1, 2, 10))
    assert select_regions(scores, 2, 1, m=5) == [Region(0, 0, l, 2, 2) for l in (0, 2, 4, 6, 8)]
    # 1 free column between windows: lefts 0, 3, 6 (9 would not fit)
    assert select_regions(scores, 2, 1, m=5, min_distance=1) == [Region(0, 0, l, 2, 2) for l in (0, 3, 6)]
    assert select_regions(scores, 2, 1, m=5, min_distance=4) == [Region(0, 0, l, 2, 2) for l in (0, 6)]
    two = np.ones((2, 2, 10))  # the rule is per image: the other image may take the same place
    assert select_regions(two, 2, 1, m=4, min_distance=8) == [Region(0, 0, 0, 2, 2), Region(1, 0, 0, 2, 2)]


def test_min_distance_blocks_diagonal_neighbours() -> None:
    scores = np.zeros((1, 6, 6))
    scores[0, :2, :2] = 5.0
    scores[0, 3:5, 3:5] = 4.0  # one free row and column away from the best window (Chebyshev gap 2)
    assert select_regions(scores, 2, 1, m=2, min_distance=1)[1] == Region(0, 3, 3, 2, 2)
    assert Region(0, 3, 3, 2, 2) not in select_regions(scores, 2, 1, m=2, min_distance=2)


@settings(max_examples=60, deadline=None)
@given(_pool(), st.sampled_from([None, 1, 2]), st.sampled_from([0, 1, 3]))
def test_diverse_selection_equals_brute_force(pool: tuple, max_per_image: int | None, min_distance: int) -> None:
    scores, labelled, size, stride, m = pool
    chosen = select_regions(scores, size, stride, m, labelled=labelled, max_per_image=max_per_image,
                            min_distance=min_distance)
    assert chosen == _brute_select_diverse(scores, size, stride, m, labelled, max_per_image, min_distance)
    for a, b in itertools.combinations(chosen, 2):
        assert a.image != b.image or _window_gap(a, b) > min_distance


@pytest.mark.parametrize("kwargs,match", [
    ({"max_per_image": 0}, "max_per_image"),
    ({"max_per_image": 1.5}, "max_per_image"),
    ({"min_distance": -1}, "min_distance"),
    ({"min_distance": True}, "min_distance"),
])
def test_select_regions_rejects_bad_diversity_settings(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        select_regions(np.zeros((1, 4, 4)), 2, 1, 1, **kwargs)
