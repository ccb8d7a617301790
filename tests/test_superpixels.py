"""SLIC superpixels, segment scores against brute force, budgeted greedy selection and its masks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from alseg_utils import superpixels as sp
from alseg_utils.superpixels import (SuperpixelPick, cached_superpixels, compute_superpixels, load_superpixels,
                                     save_superpixels, segment_pixels, select_segment_count, select_segments,
                                     select_superpixels, superpixel_mask, superpixel_scores)
from alseg_utils.synthetic import render_glas_image


def _quadrants(height: int = 32, width: int = 48) -> np.ndarray:
    """One image of four flat colour quadrants, ``[1, H, W, 3]`` uint8."""
    img = np.zeros((1, height, width, 3), dtype=np.uint8)
    h, w = height // 2, width // 2
    img[0, :h, :w], img[0, :h, w:] = (200, 30, 30), (30, 200, 30)
    img[0, h:, :w], img[0, h:, w:] = (30, 30, 200), (220, 220, 220)
    return img


def _brute_scores(scores: np.ndarray, segments: np.ndarray, labelled: np.ndarray | None,
                  reduce: str) -> np.ndarray:
    """Segment scores by looping over every (image, segment)."""
    s_max = int(segments.max(initial=-1)) + 1
    out = np.zeros((segments.shape[0], s_max))
    for i, s in itertools.product(range(segments.shape[0]), range(s_max)):
        inside = segments[i] == s
        if labelled is not None:
            inside &= ~labelled[i]
        total = float(scores[i][inside].sum(dtype=np.float64))
        out[i, s] = total if reduce == "sum" else (total / inside.sum() if inside.any() else 0.0)
    return out


def _chebyshev_gap(a: np.ndarray, b: np.ndarray) -> int:
    """Smallest Chebyshev distance between the True pixels of two ``[H, W]`` masks."""
    pa, pb = np.argwhere(a), np.argwhere(b)
    return int(np.abs(pa[:, None, :] - pb[None, :, :]).max(-1).min())


def _brute_select(scores: np.ndarray, segments: np.ndarray, budget: int, labelled: np.ndarray | None,
                  reduce: str, max_per_image: int | None, min_distance: int) -> list[tuple[int, int, int]]:
    """Greedy by brute force: every segment sorted best-first, each checked against all picks."""
    value = _brute_scores(scores, segments, labelled, reduce)
    lab = np.zeros(segments.shape, bool) if labelled is None else labelled
    cands = []
    for i, s in itertools.product(range(segments.shape[0]), range(value.shape[1])):
        cost = int(((segments[i] == s) & ~lab[i]).sum())
        if cost > 0:
            cands.append((-value[i, s], i, s, cost))
    chosen: list[tuple[int, int, int]] = []
    for _, i, s, cost in sorted(cands):
        if cost > budget or (max_per_image is not None and sum(c[0] == i for c in chosen) >= max_per_image):
            continue
        near = [min_distance > 0 and _chebyshev_gap(segments[i] == s, segments[i] == t) <= min_distance
                for j, t, _ in chosen if j == i]
        if not any(near):
            chosen.append((i, s, cost))
            budget -= cost
    return chosen


@st.composite
def _segmented_pool(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Integer scores, block-and-noise segment ids with padding, optional labelled mask."""
    n, h, w = draw(st.integers(1, 3)), draw(st.integers(2, 9)), draw(st.integers(2, 9))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    segments = rng.integers(-1, draw(st.integers(1, 6)), (n, h, w)).astype(np.int32)
    scores = rng.integers(0, 4, (n, h, w)).astype(np.float32)  # integers: exact sums, exact ties
    labelled = rng.random((n, h, w)) < draw(st.sampled_from([0.0, 0.3, 0.8])) if draw(st.booleans()) else None
    return scores, segments, labelled


# --------------------------------------------------------------------------- segmentation


def test_flat_quadrants_become_four_segments() -> None:
    seg = compute_superpixels(_quadrants(), n_pixels=16 * 24)
    assert seg.dtype == np.int32 and seg.shape == (1, 32, 48)
    for rows, cols in itertools.product((slice(0, 16), slice(16, 32)), (slice(0, 24), slice(24, 48))):
        assert np.unique(seg[0, rows, cols]).size == 1  # each quadrant is one segment
    assert sorted(np.unique(seg)) == [0, 1, 2, 3]


def test_segments_are_contiguous_connected_and_minus_one_on_padding() -> None:
    rng = np.random.default_rng(0)
    images = np.stack([render_glas_image(rng, (48, 72), malignant=bool(i))[0] for i in range(2)])
    valid = np.ones(images.shape[:3], dtype=bool)
    valid[0, 40:, :] = valid[0, :, 64:] = False  # pad band of resize="pad"
    yy, xx = np.mgrid[:48, :72]
    valid[1] = (yy - 24) ** 2 + (xx - 36) ** 2 < 22**2  # not a rectangle: masked SLIC
    seg = compute_superpixels(images, n_pixels=256, valid=valid)
    assert ((seg >= 0) == valid).all()
    for i in range(2):
        ids = np.unique(seg[i][valid[i]])
        assert (ids == np.arange(ids.size)).all() and ids.size >= 3
        assert all(ndimage.label(seg[i] == s)[1] == 1 for s in ids)  # every segment connected


def test_segment_area_follows_n_pixels() -> None:
    images = np.stack([render_glas_image(np.random.default_rng(s), (96, 144), False)[0] for s in range(3)])
    counts = [np.bincount(s.ravel()) for s in compute_superpixels(images, n_pixels=32 * 32)]
    mean_area = np.mean([c.mean() for c in counts])
    assert 0.6 * 1024 < mean_area < 1.8 * 1024  # SLIC returns about the asked-for number


def test_segmentation_is_deterministic_and_per_image() -> None:
    rng = np.random.default_rng(1)
    images = np.stack([render_glas_image(rng, (40, 56), False)[0] for _ in range(3)])
    a = compute_superpixels(images, 200)
    np.testing.assert_array_equal(a, compute_superpixels(images, 200))
    np.testing.assert_array_equal(a[1:2], compute_superpixels(images[1:2], 200))  # pool-independent


def test_image_without_valid_pixels_has_no_segments() -> None:
    images = np.concatenate([_quadrants(), _quadrants()])
    valid = np.ones(images.shape[:3], dtype=bool)
    valid[1] = False
    seg = compute_superpixels(images, 16 * 24, valid=valid)
    assert (seg[1] == -1).all() and seg[0].max() == 3


@pytest.mark.parametrize("kwargs,match", [
    ({"n_pixels": 0}, "n_pixels .* >= 1"),
    ({"n_pixels": -5}, "n_pixels"),
    ({"n_pixels": 2.5}, "n_pixels"),
    ({"n_pixels": 32 * 48 + 1}, r"larger than the images \(32x48"),
    ({"compactness": 0.0}, "compactness"),
    ({"compactness": float("nan")}, "compactness"),
    ({"images": np.zeros((32, 48, 3), np.uint8)}, r"\[N, H, W, 3\]"),
    ({"images": np.zeros((1, 32, 48), np.uint8)}, r"\[N, H, W, 3\]"),
    ({"valid": np.ones((1, 32, 47), bool)}, "valid"),
    ({"valid": np.ones((1, 32, 48), np.uint8)}, "valid"),
])
def test_compute_superpixels_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    args = {"images": _quadrants(), "n_pixels": 100, **kwargs}
    with pytest.raises(ValueError, match=match):
        compute_superpixels(**args)


# --------------------------------------------------------------------------- cache


def test_save_and_load_round_trip(tmp_path) -> None:
    seg = np.array([[[0, 1], [-1, 2]]], dtype=np.int32)
    save_superpixels(tmp_path / "sp" / "s.npz", seg, fingerprint="abc")
    loaded, key = load_superpixels(tmp_path / "sp" / "s.npz")
    np.testing.assert_array_equal(loaded, seg)
    assert loaded.dtype == np.int32 and key == "abc"
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(ValueError, match="no superpixels"):
        load_superpixels(tmp_path / "other.npz")


def test_damaged_cache_is_recomputed_and_loading_it_names_the_file(tmp_path) -> None:
    images = _quadrants()
    expected = compute_superpixels(images, 64)
    path = tmp_path / "sp.npz"
    cached_superpixels(path, images, 64)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"sp.npz cannot be read \(BadZipFile\); delete it"):
        load_superpixels(path)
    np.testing.assert_array_equal(cached_superpixels(path, images, 64), expected)  # SLIC is deterministic
    np.testing.assert_array_equal(load_superpixels(path)[0], expected)  # and the file is whole again


def test_cache_is_reused_only_for_the_same_inputs(tmp_path, monkeypatch) -> None:
    path, images = tmp_path / "superpixels.npz", _quadrants()
    first = cached_superpixels(path, images, 16 * 24)
    np.testing.assert_array_equal(first, compute_superpixels(images, 16 * 24))
    np.testing.assert_array_equal(load_superpixels(path)[0], first)  # written to the cache

    def fail(*args, **kwargs):
        raise AssertionError("recomputed although the cache matches")

    with monkeypatch.context() as m:
        m.setattr(sp, "compute_superpixels", fail)
        np.testing.assert_array_equal(cached_superpixels(path, images, 16 * 24), first)
    coarser = cached_superpixels(path, images, 32 * 48)  # other size: recomputed and rewritten
    assert coarser.max() == 0 and load_superpixels(path)[0].max() == 0
    images[0, 0, 0] = 0  # other pixels: recomputed
    with monkeypatch.context() as m, pytest.raises(AssertionError, match="recomputed"):
        m.setattr(sp, "compute_superpixels", fail)
        cached_superpixels(path, images, 32 * 48)


# --------------------------------------------------------------------------- scores


def test_superpixel_scores_hand_worked() -> None:
    segments = np.array([[[0, 0, 1], [2, 1, -1]]])
    scores = np.array([[[1.0, 2.0, 3.0], [4.0, 5.0, 100.0]]])  # the padding pixel is ignored
    labelled = np.array([[[False, True, False], [False, False, False]]])
    np.testing.assert_allclose(superpixel_scores(scores, segments), [[3.0, 8.0, 4.0]])
    np.testing.assert_allclose(superpixel_scores(scores, segments, labelled), [[1.0, 8.0, 4.0]])
    np.testing.assert_allclose(superpixel_scores(scores, segments, labelled, "mean"), [[1.0, 4.0, 4.0]])
    np.testing.assert_array_equal(segment_pixels(segments, labelled), [[1, 2, 1]])
    all_labelled = np.ones_like(labelled)
    np.testing.assert_array_equal(superpixel_scores(scores, segments, all_labelled, "mean"), [[0.0, 0.0, 0.0]])


@settings(max_examples=60, deadline=None)
@given(_segmented_pool(), st.sampled_from(["sum", "mean"]))
def test_superpixel_scores_equal_brute_force(pool: tuple, reduce: str) -> None:
    scores, segments, labelled = pool
    ours = superpixel_scores(torch.from_numpy(scores), segments, labelled, reduce)
    assert ours.dtype == np.float64
    np.testing.assert_allclose(ours, _brute_scores(scores, segments, labelled, reduce), rtol=1e-12, atol=1e-12)
    lab = np.zeros(segments.shape, bool) if labelled is None else labelled
    expected = [[int(((segments[i] == s) & ~lab[i]).sum()) for s in range(ours.shape[1])]
                for i in range(len(segments))]
    np.testing.assert_array_equal(segment_pixels(segments, labelled), np.array(expected).reshape(ours.shape))


def test_superpixel_scores_reject_bad_arguments() -> None:
    seg = np.zeros((1, 2, 2), dtype=np.int32)
    with pytest.raises(ValueError, match="reduce"):
        superpixel_scores(np.ones((1, 2, 2)), seg, reduce="max")
    with pytest.raises(ValueError, match="shape of scores"):
        superpixel_scores(np.ones((1, 2, 3)), seg)
    with pytest.raises(ValueError, match="integer ids"):
        superpixel_scores(np.ones((1, 2, 2)), seg.astype(float))
    with pytest.raises(ValueError, match=">= 0 \\(or -1"):
        superpixel_scores(np.ones((1, 2, 2)), seg - 2)
    with pytest.raises(ValueError, match="NaN"):
        superpixel_scores(np.full((1, 2, 2), np.inf), seg)
    with pytest.raises(ValueError, match="bool"):
        superpixel_scores(np.ones((1, 2, 2)), seg, labelled=np.zeros((1, 2, 2), np.uint8))


# --------------------------------------------------------------------------- selection


def _stripes() -> tuple[np.ndarray, np.ndarray]:
    """Two 4x8 images of four 4x2 column stripes; image 1 scores higher, stripe by stripe."""
    segments = np.broadcast_to(np.repeat(np.arange(4), 2), (2, 4, 8)).astype(np.int32).copy()
    scores = np.zeros((2, 4, 8))
    scores[0] = np.repeat([1.0, 4.0, 3.0, 2.0], 2)
    scores[1] = np.repeat([5.0, 8.0, 7.0, 6.0], 2)
    return scores, segments


def test_select_superpixels_hand_worked() -> None:
    scores, segments = _stripes()
    picks = select_superpixels(scores, segments, budget_pixels=20)
    assert [(p.image, p.segment) for p in picks] == [(1, 1), (1, 2)]  # 8 + 8 px; a third would need 24
    assert picks[0] == SuperpixelPick(image=1, segment=1, pixels=8, score=64.0)
    assert select_superpixels(scores, segments, budget_pixels=7) == []  # no segment fits
    assert select_superpixels(scores, segments, budget_pixels=0) == []


def test_segment_too_large_is_skipped_and_a_smaller_one_taken() -> None:
    segments = np.array([[[0, 0, 0, 1], [0, 0, 2, 2]]], dtype=np.int32)  # sizes 5, 1, 2
    scores = np.array([[[9.0, 9.0, 9.0, 1.0], [9.0, 9.0, 3.0, 3.0]]])
    picks = select_superpixels(scores, segments, budget_pixels=4)
    assert [(p.segment, p.pixels) for p in picks] == [(2, 2), (1, 1)]  # 45 is best but costs 5 > 4
    assert superpixel_mask(picks, segments).sum() == 3


def test_labelled_pixels_are_never_repicked_and_do_not_cost() -> None:
    scores, segments = _stripes()
    labelled = np.zeros(scores.shape, dtype=bool)
    labelled[1, :, 2:4] = True  # the best stripe is labelled already
    labelled[1, :2, 4:6] = True  # the next one half
    picks = select_superpixels(scores, segments, budget_pixels=12, labelled=labelled)
    assert [(p.image, p.segment, p.pixels) for p in picks] == [(1, 3, 8), (1, 2, 4)]
    mask = superpixel_mask(picks, segments, labelled)
    assert not (mask & labelled).any() and mask.sum() == sum(p.pixels for p in picks) == 12
    full = superpixel_mask(picks, segments)  # without labelled: the whole chosen segments
    assert full.sum() == 16 and (full == np.isin(segments, [2, 3]) & (np.arange(2) == 1)[:, None, None]).all()


def test_all_labelled_gives_nothing() -> None:
    scores, segments = _stripes()
    assert select_superpixels(scores, segments, 100, labelled=np.ones(scores.shape, bool)) == []


def test_ties_go_to_the_lowest_image_and_segment() -> None:
    segments = np.broadcast_to(np.repeat(np.arange(4), 2), (2, 4, 8)).astype(np.int32)
    picks = select_superpixels(np.ones((2, 4, 8)), segments, budget_pixels=24)
    assert [(p.image, p.segment) for p in picks] == [(0, 0), (0, 1), (0, 2)]


def test_mean_prefers_dense_small_segments() -> None:
    segments = np.array([[[0, 0, 0, 1]]], dtype=np.int32)
    scores = np.array([[[1.0, 1.0, 1.0, 2.0]]])
    assert select_superpixels(scores, segments, 4)[0].segment == 0  # sum 3 > 2
    assert select_superpixels(scores, segments, 4, reduce="mean")[0].segment == 1  # mean 2 > 1


@settings(max_examples=80, deadline=None)
@given(_segmented_pool(), st.integers(0, 40), st.sampled_from(["sum", "mean"]),
       st.sampled_from([None, 1, 2]), st.sampled_from([0, 1, 2]))
def test_select_superpixels_equals_brute_force_greedy(pool: tuple, budget: int, reduce: str,
                                                      max_per_image: int | None, min_distance: int) -> None:
    scores, segments, labelled = pool
    picks = select_superpixels(scores, segments, budget, labelled, reduce, max_per_image, min_distance)
    assert [(p.image, p.segment, p.pixels) for p in picks] == _brute_select(
        scores, segments, budget, labelled, reduce, max_per_image, min_distance)
    mask = superpixel_mask(picks, segments, labelled)
    assert mask.sum() == sum(p.pixels for p in picks) <= budget  # exact accounting
    chosen = np.zeros(segments.shape, bool)
    for p in picks:
        chosen[p.image] |= segments[p.image] == p.segment
    lab = np.zeros(segments.shape, bool) if labelled is None else labelled
    np.testing.assert_array_equal(mask, chosen & ~lab)  # exactly the union of the chosen segments


def test_select_segments_takes_the_given_segment_scores() -> None:
    scores, segments = _stripes()
    values = np.array([[0.9, 0.1, 0.2, 0.3], [0.4, 0.5, 0.6, 0.0]])  # not the pixel sums
    picks = select_segments(values, segments, budget_pixels=20)
    assert [(p.image, p.segment, p.pixels, p.score) for p in picks] == [(0, 0, 8, 0.9), (1, 2, 8, 0.6)]
    labelled = np.zeros(scores.shape, dtype=bool)
    labelled[0, :, :2] = True  # the best is labelled already: never picked, whatever its value
    labelled[1, :2, 4:6] = True  # half of (1, 2) is: it costs 4
    picks = select_segments(values, segments, budget_pixels=12, labelled=labelled)
    assert [(p.image, p.segment, p.pixels) for p in picks] == [(1, 2, 4), (1, 1, 8)]


@settings(max_examples=60, deadline=None)
@given(_segmented_pool(), st.integers(0, 40), st.sampled_from([None, 1]), st.sampled_from([0, 1]))
def test_select_superpixels_is_select_segments_of_the_segment_scores(pool: tuple, budget: int,
                                                                     max_per_image: int | None,
                                                                     min_distance: int) -> None:
    scores, segments, labelled = pool
    value = superpixel_scores(scores, segments, labelled)
    assert select_segments(value, segments, budget, labelled, max_per_image, min_distance) == select_superpixels(
        scores, segments, budget, labelled, "sum", max_per_image, min_distance)


def test_select_segments_rejects_bad_values() -> None:
    _, segments = _stripes()
    with pytest.raises(ValueError, match=r"must be \[N, S_max\] = \(2, 4\)"):
        select_segments(np.zeros((2, 3)), segments, 10)
    with pytest.raises(ValueError, match="NaN or infinity"):
        select_segments(np.full((2, 4), np.nan), segments, 10)
    with pytest.raises(ValueError, match="budget_pixels"):
        select_segments(np.zeros((2, 4)), segments, -1)


# --------------------------------------------------------------------------- a count budget (dominant-class clicks)


def test_select_segment_count_takes_the_best_count_whatever_their_size() -> None:
    segments = np.array([[[0, 0, 0, 1], [0, 0, 2, 2]]], dtype=np.int32)  # sizes 5, 1, 2: one click each
    values = np.array([[0.9, 0.1, 0.5]])
    picks = select_segment_count(values, segments, 2)
    assert [(p.segment, p.pixels, p.score) for p in picks] == [(0, 5, 0.9), (2, 2, 0.5)]  # size never limits
    assert [p.segment for p in select_segment_count(values, segments, 9)] == [0, 2, 1]  # all there are
    assert select_segment_count(values, segments, 0) == []
    labelled = np.zeros(segments.shape, bool)
    labelled[0, 0, :3] = True  # 3 of segment 0's pixels: it still has 2 to add
    labelled[0, 1, 2:] = True  # all of segment 2: never picked
    picks = select_segment_count(values, segments, 2, labelled=labelled)
    assert [(p.segment, p.pixels) for p in picks] == [(0, 2), (1, 1)]


def test_select_segment_count_ties_and_diversity_as_the_pixel_budget() -> None:
    scores, segments = _stripes()
    picks = select_segment_count(np.ones((2, 4)), segments, 3)
    assert [(p.image, p.segment) for p in picks] == [(0, 0), (0, 1), (0, 2)]  # ties: lowest image, segment
    values = superpixel_scores(scores, segments)  # [2, 4]
    assert [(p.image, p.segment) for p in select_segment_count(values, segments, 3, max_per_image=2)] == [
        (1, 1), (1, 2), (0, 1)]
    assert [p.segment for p in select_segment_count(values[1:], segments[1:], 3, min_distance=1)] == [1, 3]
    # without a limit of its own, the count picks what an unlimited pixel budget picks, in the same order
    unlimited = select_segments(values, segments, budget_pixels=64, min_distance=1)
    assert select_segment_count(values, segments, len(unlimited), min_distance=1) == unlimited
    assert select_segment_count(values, segments, 2, min_distance=1) == unlimited[:2]


@pytest.mark.parametrize("count", [-1, 2.0, True])
def test_select_segment_count_rejects_a_bad_count(count: object) -> None:
    _, segments = _stripes()
    with pytest.raises(ValueError, match="count"):
        select_segment_count(np.zeros((2, 4)), segments, count)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- diversity


def test_max_per_image_spreads_picks_over_images() -> None:
    scores, segments = _stripes()
    plain = select_superpixels(scores, segments, budget_pixels=24)
    assert [p.image for p in plain] == [1, 1, 1]
    spread = select_superpixels(scores, segments, budget_pixels=24, max_per_image=2)
    assert [(p.image, p.segment) for p in spread] == [(1, 1), (1, 2), (0, 1)]


def test_min_distance_keeps_picks_of_one_image_apart() -> None:
    scores, segments = _stripes()  # stripes 2 px wide: 2 columns lie between stripes 1 and 3
    assert [p.segment for p in select_superpixels(scores[1:], segments[1:], 16)] == [1, 2]
    assert [p.segment for p in select_superpixels(scores[1:], segments[1:], 16, min_distance=1)] == [1, 3]
    assert [p.segment for p in select_superpixels(scores[1:], segments[1:], 16, min_distance=2)] == [1, 3]
    assert [p.segment for p in select_superpixels(scores[1:], segments[1:], 16, min_distance=3)] == [1]
    picks = select_superpixels(scores, segments, 16, min_distance=3)  # another image is not constrained
    assert [(p.image, p.segment) for p in picks] == [(1, 1), (0, 1)]


@pytest.mark.parametrize("kwargs,match", [
    ({"budget_pixels": -1}, "budget_pixels"),
    ({"budget_pixels": 2.0}, "budget_pixels"),
    ({"max_per_image": 0}, "max_per_image"),
    ({"min_distance": -1}, "min_distance"),
    ({"reduce": "median"}, "reduce"),
])
def test_select_superpixels_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    scores, segments = _stripes()
    with pytest.raises(ValueError, match=match):
        select_superpixels(**{"scores": scores, "segments": segments, "budget_pixels": 8, **kwargs})


def test_superpixel_mask_rejects_unknown_segments() -> None:
    _, segments = _stripes()
    with pytest.raises(ValueError, match="not a segment"):
        superpixel_mask([SuperpixelPick(0, 4, 8, 1.0)], segments)
    with pytest.raises(ValueError, match="not a segment"):
        superpixel_mask([SuperpixelPick(2, 0, 8, 1.0)], segments)


# --------------------------------------------------------------------------- GlaS-sized inputs (speed: benchmarks/superpixel_search.py)


def test_selection_on_a_glas_sized_pool() -> None:
    rng = np.random.default_rng(0)
    n, height, width = 65, 528, 784
    scores = rng.random((n, height, width), dtype=np.float32)
    tiles = (np.arange(height)[:, None] // 150) * 6 + np.arange(width)[None, :] // 150  # [H, W] 4 x 6 tiles
    segments = np.broadcast_to(tiles.astype(np.int32), (n, height, width))
    labelled = np.zeros(scores.shape, dtype=bool)
    labelled[:10] = True
    picks = select_superpixels(scores, segments, 20 * 150**2, labelled=labelled, min_distance=30)
    assert picks and all(p.image >= 10 for p in picks)
    assert sum(p.pixels for p in picks) <= 20 * 150**2


@pytest.mark.slow
def test_slic_on_a_glas_sized_image_gives_square_sized_segments() -> None:
    image = render_glas_image(np.random.default_rng(0), (522, 775), False)[0]
    images = np.pad(image, ((0, 6), (0, 9), (0, 0)))[None]  # [1, 528, 784, 3]
    valid = np.zeros(images.shape[:3], dtype=bool)
    valid[0, :522, :775] = True
    seg = compute_superpixels(images, 150**2, valid=valid)
    assert 8 <= seg.max() + 1 <= 30
