"""Tests of alseg_utils.metrics: hand-worked images, edge cases, brute force, properties, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.metrics import hausdorff_distance

from alseg_utils import metrics as m
from alseg_utils.config import config_from_dict
from alseg_utils.errors import ConfigError


def two_glands() -> tuple[np.ndarray, np.ndarray]:
    """20x20 ground truth with glands 1 (36 px) and 5 (54 px); prediction 7 (36 px) and 2 (9 px)."""
    gt = np.zeros((20, 20), dtype=np.int64)
    gt[2:8, 2:8] = 1
    gt[12:18, 10:19] = 5
    pred = np.zeros_like(gt)
    pred[3:9, 2:8] = 7  # overlaps gland 1 on 30 px
    pred[0:3, 15:18] = 2  # a false positive touching nothing
    return pred, gt


def random_instances(rng: np.random.Generator, shape: tuple[int, int], n_boxes: int) -> np.ndarray:
    """Instance map of up to ``n_boxes`` random rectangles (later ones overwrite), ids 1..n."""
    out = np.zeros(shape, dtype=np.int64)
    for k in range(1, n_boxes + 1):
        r, c = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        h, w = rng.integers(1, shape[0] // 2 + 1), rng.integers(1, shape[1] // 2 + 1)
        out[r:r + h, c:c + w] = k
    return out


def relabel(instances: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The same objects under random, non-consecutive ids."""
    ids = np.unique(instances[instances > 0])
    new = rng.choice(np.arange(1, 10_000), size=len(ids), replace=False)
    out = np.zeros_like(instances)
    for old, n in zip(ids, new):
        out[instances == old] = n
    return out


# ---------------------------------------------------------------- hand-worked


def test_object_f1_hand_worked() -> None:
    pred, gt = two_glands()
    # gland 1 matched (30 >= 18 px), prediction 2 is a FP, gland 5 a FN: 2 * 1 / (2 + 2)
    assert m.object_f1(pred, gt) == pytest.approx(0.5)


def test_object_dice_hand_worked() -> None:
    pred, gt = two_glands()
    d = 2 * 30 / (36 + 36)
    expected = 0.5 * ((36 / 90) * d + (54 / 90) * 0 + (36 / 45) * d + (9 / 45) * 0)
    assert m.object_dice(pred, gt) == pytest.approx(expected, abs=1e-12)


def test_object_hausdorff_hand_worked() -> None:
    pred, gt = two_glands()
    h_17 = 1.0  # gland 1 vs prediction 7: shifted by one row
    h_5_nearest = np.hypot(9, 11)  # gland 5 touches nothing; nearest is prediction 7: (17,18)-(8,7)
    h_2_nearest = np.hypot(5, 13)  # prediction 2 touches nothing; nearest is gland 1: (7,2)-(2,15)
    expected = 0.5 * ((36 * h_17 + 54 * h_5_nearest) / 90 + (36 * h_17 + 9 * h_2_nearest) / 45)
    assert m.object_hausdorff(pred, gt) == pytest.approx(expected, abs=1e-9)


def test_pixel_jaccard_and_dice_hand_worked_average_over_images() -> None:
    pred, gt = two_glands()
    inter, p, g = 30, 45, 90
    j0, d0 = inter / (p + g - inter), 2 * inter / (p + g)
    # second image: perfect; the mean over images is not the pooled value
    batch_pred = np.stack([pred, gt]) > 0
    batch_gt = np.stack([gt, gt]) > 0
    assert m.jaccard(pred > 0, gt > 0) == pytest.approx(j0)
    assert m.dice(pred, gt) == pytest.approx(d0)
    assert m.jaccard(batch_pred, batch_gt) == pytest.approx((j0 + 1) / 2)
    assert m.dice(torch.from_numpy(batch_pred), torch.from_numpy(batch_gt)) == pytest.approx((d0 + 1) / 2)


def boxes(shape: tuple[int, int], *specs: tuple[int, slice, slice]) -> np.ndarray:
    """Instance map with ``id`` painted on ``[rows, cols]`` for each ``(id, rows, cols)``."""
    out = np.zeros(shape, dtype=np.int64)
    for k, rows, cols in specs:
        out[rows, cols] = k
    return out


def test_f1_merged_glands_partner_is_the_larger_gland() -> None:
    gt = boxes((4, 8), (1, slice(0, 4), slice(0, 4)), (2, slice(0, 2), slice(6, 8)))  # 16 px, 4 px
    pred = boxes((4, 8), (9, slice(0, 4), slice(0, 8)))  # 32 px covering both glands
    # partner = gland 1 (16 px overlap > 4), fully covered: 1 TP, 0 FP; gland 2 is a FN
    assert m.object_stats(pred, gt)[0].tp == 1
    assert m.object_f1(pred, gt) == pytest.approx(2 * 1 / (1 + 2))
    d1, d2 = 2 * 16 / (16 + 32), 2 * 4 / (4 + 32)  # Dice(G1, S), Dice(G2, S)
    expected = 0.5 * ((16 * d1 + 4 * d2) / 20 + d1)  # the segment's partner is G1
    assert m.object_dice(pred, gt) == pytest.approx(expected, abs=1e-12)
    h1, h2 = 4.0, np.hypot(2, 6)  # S pixel (0, 7) to G1's (0, 3); S pixel (3, 0) to G2's (1, 6)
    assert m.object_hausdorff(pred, gt) == pytest.approx(0.5 * ((16 * h1 + 4 * h2) / 20 + h1), abs=1e-9)


def test_f1_split_gland_one_true_positive_one_false_positive() -> None:
    gt = boxes((2, 10), (1, slice(0, 2), slice(0, 10)))  # 20 px
    pred = boxes((2, 10), (3, slice(0, 2), slice(0, 6)), (4, slice(0, 2), slice(6, 10)))  # 60% and 40%
    stats = m.object_stats(pred, gt)[0]
    assert (stats.tp, stats.n_pred, stats.n_gt) == (1, 2, 1)  # FP = 1, FN = 0
    assert m.object_f1(pred, gt) == pytest.approx(2 * 1 / (2 + 1))
    d3, d4 = 2 * 12 / (20 + 12), 2 * 8 / (20 + 8)
    assert m.object_dice(pred, gt) == pytest.approx(0.5 * (d3 + (12 * d3 + 8 * d4) / 20), abs=1e-12)


@pytest.mark.parametrize(("covered", "tp"), [(4, 0), (5, 0), (6, 1), (10, 1)])
def test_f1_needs_strictly_more_than_half(covered: int, tp: int) -> None:
    gt = boxes((1, 10), (1, slice(0, 1), slice(0, 10)))  # 10 px
    pred = boxes((1, 10), (2, slice(0, 1), slice(0, covered)))
    assert m.object_f1(pred, gt) == pytest.approx(2 * tp / 2)  # exactly 50% is a miss (F1score.m: > 0.5)


def test_f1_two_exact_halves_are_two_false_positives() -> None:
    gt = boxes((2, 4), (1, slice(0, 2), slice(0, 4)))  # 8 px
    pred = boxes((2, 4), (3, slice(0, 2), slice(0, 2)), (4, slice(0, 2), slice(2, 4)))  # 4 px each
    assert m.object_stats(pred, gt)[0].tp == 0
    assert m.object_f1(pred, gt) == 0.0  # a ">= 50%" rule would count one TP (F1 = 2/3)


def test_f1_largest_overlap_gland_half_missed_while_small_gland_covered() -> None:
    gt = boxes((6, 10), (1, slice(0, 6), slice(0, 6)), (2, slice(0, 2), slice(8, 10)))  # 36 px, 4 px
    pred = boxes((6, 10), (5, slice(0, 2), slice(3, 10)))  # 6 px of gland 1 (1/6), all 4 px of gland 2
    # partner = gland 1 (6 > 4 px), covered less than half: FP, although gland 2 is covered fully
    assert m.object_stats(pred, gt)[0].tp == 0
    assert m.object_f1(pred, gt) == 0.0
    # object Dice still pairs gland 2 with the segment (its largest overlap)
    d1, d2 = 2 * 6 / (36 + 14), 2 * 4 / (4 + 14)
    assert m.object_dice(pred, gt) == pytest.approx(0.5 * ((36 * d1 + 4 * d2) / 40 + d1), abs=1e-12)


def test_f1_each_gland_gives_at_most_one_true_positive() -> None:
    gt = boxes((3, 9), (1, slice(0, 3), slice(0, 9)))  # 27 px
    pred = boxes((3, 9), (2, slice(0, 3), slice(0, 5)), (3, slice(0, 3), slice(5, 9)))  # 15 px and 12 px
    stats = m.object_stats(pred, gt)[0]
    assert stats.tp == 1 and stats.n_gt - stats.tp == 0  # TP <= #G, FN = #G - TP >= 0


def matlab_style_tp(pred: np.ndarray, gt: np.ndarray) -> int:
    """F1score.m written as a loop: each segment's largest-overlap gland, covered > 50% (ties: any)."""
    tp = 0
    for s in np.unique(pred[pred > 0]):
        under = gt[(pred == s) & (gt > 0)]
        if under.size == 0:
            continue
        ids, counts = np.unique(under, return_counts=True)
        partners = ids[counts == counts.max()]
        tp += any(counts.max() > 0.5 * (gt == g).sum() for g in partners)
    return tp


@given(seed=st.integers(0, 2**32 - 1), n_g=st.integers(0, 6), n_s=st.integers(0, 6))
@settings(max_examples=60, deadline=None)
def test_true_positives_match_loop_version(seed: int, n_g: int, n_s: int) -> None:
    rng = np.random.default_rng(seed)
    gt, pred = random_instances(rng, (14, 11), n_g), random_instances(rng, (14, 11), n_s)
    stats = m.object_stats(pred, gt, hausdorff=False)[0]
    assert stats.tp == matlab_style_tp(pred, gt)
    assert stats.n_gt == len(np.unique(gt[gt > 0])) and stats.n_pred == len(np.unique(pred[pred > 0]))
    assert 0 <= stats.tp <= min(stats.n_gt, stats.n_pred)
    assert np.isnan(stats.hausdorff_gt) and np.isnan(stats.hausdorff_pred)


# ---------------------------------------------------------------- pooled vs image mean


def perfect_image() -> tuple[np.ndarray, np.ndarray]:
    """20x20 image with one 16 px gland segmented exactly."""
    gt = boxes((20, 20), (3, slice(4, 8), slice(4, 8)))
    return gt.copy(), gt


def test_pooled_and_image_mean_hand_worked() -> None:
    (pa, ga), (pb, gb) = two_glands(), perfect_image()
    pred, gt = np.stack([pa, pb]), np.stack([ga, gb])
    # image A: TP 1, #S 2, #G 2; image B: TP 1, #S 1, #G 1
    assert m.object_f1(pred, gt) == pytest.approx(2 * 2 / (3 + 3))  # pooled is the default
    assert m.object_f1(pred, gt, aggregate="image_mean") == pytest.approx((0.5 + 1.0) / 2)
    d = 2 * 30 / (36 + 36)
    pooled_dice = 0.5 * ((36 * d + 16) / (90 + 16) + (36 * d + 16) / (45 + 16))
    assert m.object_dice(pred, gt) == pytest.approx(pooled_dice, abs=1e-12)
    mean_dice = (m.object_dice(pa, ga) + 1.0) / 2
    assert m.object_dice(pred, gt, aggregate="image_mean") == pytest.approx(mean_dice, abs=1e-12)
    a = m.object_stats(pa, ga)[0]  # image B adds area 16 at distance 0 to both sides
    pooled_hd = 0.5 * (a.hausdorff_gt / (90 + 16) + a.hausdorff_pred / (45 + 16))
    assert m.object_hausdorff(pred, gt) == pytest.approx(pooled_hd, abs=1e-9)
    assert m.object_hausdorff(pred, gt, aggregate="image_mean") == pytest.approx(m.object_hausdorff(pa, ga) / 2)


def test_pooled_with_empty_prediction_and_empty_ground_truth_images() -> None:
    pb, gb = perfect_image()  # 16 px gland, found
    missed = boxes((20, 20), (1, slice(0, 2), slice(0, 6)))  # 12 px gland, nothing predicted
    pred = np.stack([pb, np.zeros_like(missed)])
    gt = np.stack([gb, missed])
    assert m.object_f1(pred, gt) == pytest.approx(2 * 1 / (1 + 2))
    assert m.object_f1(pred, gt, aggregate="image_mean") == pytest.approx(0.5)
    assert m.object_dice(pred, gt) == pytest.approx(0.5 * (16 / 28 + 1.0))
    diagonal = np.hypot(20, 20)
    assert m.object_hausdorff(pred, gt) == pytest.approx(0.5 * (12 * diagonal / 28))
    assert m.object_hausdorff(pred, gt, aggregate="image_mean") == pytest.approx(diagonal / 2)
    spurious = boxes((20, 20), (4, slice(10, 12), slice(10, 13)))  # 6 px segment, no ground truth
    pred2, gt2 = np.stack([pb, spurious]), np.stack([gb, np.zeros_like(gb)])
    assert m.object_f1(pred2, gt2) == pytest.approx(2 * 1 / (2 + 1))
    assert m.object_dice(pred2, gt2) == pytest.approx(0.5 * (1.0 + 16 / 22))


def test_pooled_when_a_whole_side_is_empty() -> None:
    _, gt = perfect_image()
    empty = np.zeros_like(gt)
    pred, gts = np.stack([empty, empty]), np.stack([gt, gt])
    for agg in ("pooled", "image_mean"):
        assert m.object_f1(pred, gts, aggregate=agg) == 0.0
        assert m.object_dice(pred, gts, aggregate=agg) == 0.0
        assert m.object_hausdorff(pred, gts, aggregate=agg) == pytest.approx(np.hypot(20, 20))
        assert m.object_f1(gts, pred, aggregate=agg) == 0.0  # no ground truth at all
        assert m.object_f1(pred, pred, aggregate=agg) == 1.0  # nothing anywhere
        assert m.object_hausdorff(pred, pred, aggregate=agg) == 0.0


def test_object_stats_add_and_aggregate() -> None:
    (pa, ga), (pb, gb) = two_glands(), perfect_image()
    a, b = m.object_stats(np.stack([pa, pb]), np.stack([ga, gb]))
    total = a + b
    assert (total.tp, total.n_pred, total.n_gt, total.gt_area) == (2, 3, 3, 106.0)
    assert sum([a, b], m.ObjectStats()) == total
    scores = m.aggregate_object_stats([a, b])
    assert scores == {"f1": total.f1(), "object_dice": total.dice(), "object_hausdorff": total.hausdorff()}
    assert m.aggregate_object_stats([a], "image_mean") == m.aggregate_object_stats([a], "pooled")
    with pytest.raises(ValueError, match="pooled, image_mean"):
        m.aggregate_object_stats([a], "mean")
    with pytest.raises(ValueError, match="no images"):
        m.aggregate_object_stats([])


def test_segmentation_scores_matches_individual_functions() -> None:
    (pa, ga), (pb, gb) = two_glands(), perfect_image()
    batch_p, batch_g = np.stack([pa, pb]), np.stack([ga, gb])
    for agg in ("pooled", "image_mean"):
        scores = m.segmentation_scores(batch_p, batch_g, object_aggregate=agg)
        assert set(scores) == {"f1", "object_dice", "object_hausdorff", "dice", "jaccard"}
        assert scores["f1"] == pytest.approx(m.object_f1(batch_p, batch_g, aggregate=agg))
        assert scores["object_dice"] == pytest.approx(m.object_dice(batch_p, batch_g, aggregate=agg))
        assert scores["object_hausdorff"] == pytest.approx(m.object_hausdorff(batch_p, batch_g, aggregate=agg))
        assert scores["jaccard"] == pytest.approx(m.jaccard(batch_p, batch_g))  # always a mean over images
        assert all(isinstance(v, float) for v in scores.values())
    with pytest.raises(ValueError, match="aggregate"):
        m.segmentation_scores(batch_p, batch_g, object_aggregate="sum")


def test_eval_object_aggregate_config_option() -> None:
    assert config_from_dict({}).eval.object_aggregate == "pooled"  # the challenge's aggregation
    assert config_from_dict({"eval": {"object_aggregate": "image_mean"}}).eval.object_aggregate == "image_mean"
    with pytest.raises(ConfigError, match="eval.object_aggregate"):
        config_from_dict({"eval": {"object_aggregate": "mean"}})


# ---------------------------------------------------------------- edge cases


@pytest.mark.parametrize("fn", [m.object_f1, m.object_dice, m.jaccard, m.dice])
def test_edge_cases_overlap_metrics(fn) -> None:  # noqa: ANN001
    empty = np.zeros((6, 8), dtype=np.int64)
    full = empty.copy()
    full[1:4, 2:5] = 3
    assert fn(empty, empty) == 1.0  # both empty: nothing to find, nothing found
    assert fn(empty, full) == 0.0  # empty prediction
    assert fn(full, empty) == 0.0  # empty ground truth


def test_edge_cases_hausdorff() -> None:
    empty = np.zeros((6, 8), dtype=np.int64)
    full = empty.copy()
    full[1:4, 2:5] = 3
    assert m.object_hausdorff(empty, empty) == 0.0
    assert m.object_hausdorff(empty, full) == pytest.approx(10.0)  # diagonal of 6 x 8
    assert m.object_hausdorff(full, empty) == pytest.approx(10.0)
    assert m.object_hausdorff(full, full) == 0.0


def test_label_objects_removes_small_components() -> None:
    mask = np.zeros((2, 8, 8), dtype=bool)
    mask[0, 0:3, 0:3] = True  # 9 px
    mask[0, 5:7, 5:7] = True  # 4 px
    mask[1, 0, 0] = True
    out = m.label_objects(mask, min_size=5)
    assert out.shape == mask.shape and out.dtype == np.int32
    assert set(np.unique(out[0])) == {0, 1} and (out[0] == 1).sum() == 9
    assert out[1].max() == 0
    assert m.label_objects(mask[0]).max() == 2  # [H, W] in, [H, W] out, no size filter


# ---------------------------------------------------------------- brute force and properties


@given(seed=st.integers(0, 2**32 - 1), n_g=st.integers(1, 4), n_s=st.integers(1, 4))
@settings(max_examples=40, deadline=None)
def test_object_hausdorff_pairs_match_skimage_brute_force(seed: int, n_g: int, n_s: int) -> None:
    rng = np.random.default_rng(seed)
    gt, pred = random_instances(rng, (12, 15), n_g), random_instances(rng, (12, 15), n_s)
    go, po = m._objects(gt), m._objects(pred)
    for i in range(len(go.area)):
        for j in range(len(po.area)):
            brute = hausdorff_distance(go.labels == i + 1, po.labels == j + 1)
            assert m._hausdorff_pair(go, po, i, j) == pytest.approx(brute, abs=1e-9)


def test_object_hausdorff_interior_point_farthest() -> None:
    # prediction is a ring; ground truth fills it: the farthest gt pixel from the ring is the centre
    pred = np.zeros((9, 9), dtype=np.int64)
    pred[1:8, 1:8] = 1
    pred[2:7, 2:7] = 0
    gt = np.zeros_like(pred)
    gt[2:7, 2:7] = 1
    brute = hausdorff_distance(gt > 0, pred > 0)
    assert brute == pytest.approx(3.0)
    assert m.object_hausdorff(pred, gt) == pytest.approx(3.0)  # disjoint: partners are the nearest objects


@given(seed=st.integers(0, 2**32 - 1), n_g=st.integers(0, 5), n_s=st.integers(0, 5))
@settings(max_examples=40, deadline=None)
def test_properties_ranges_identity_and_relabelling(seed: int, n_g: int, n_s: int) -> None:
    rng = np.random.default_rng(seed)
    gt, pred = random_instances(rng, (16, 12), n_g), random_instances(rng, (16, 12), n_s)
    scores = m.segmentation_scores(pred, gt)
    for key in ("f1", "object_dice", "dice", "jaccard"):
        assert 0.0 <= scores[key] <= 1.0
    assert 0.0 <= scores["object_hausdorff"] <= np.hypot(16, 12) + 1e-9
    assert m.object_f1(gt, gt) == 1.0 and m.object_dice(gt, gt) == pytest.approx(1.0)
    assert m.object_hausdorff(gt, gt) == 0.0
    again = m.segmentation_scores(relabel(pred, rng), relabel(gt, rng))
    for key, value in scores.items():
        assert again[key] == pytest.approx(value, abs=1e-12)
    swapped = m.segmentation_scores(gt, pred)  # Dice and Hausdorff are symmetric
    assert swapped["object_dice"] == pytest.approx(scores["object_dice"], abs=1e-12)
    assert swapped["object_hausdorff"] == pytest.approx(scores["object_hausdorff"], abs=1e-12)


def test_glas_sized_image_is_fast_enough() -> None:
    rng = np.random.default_rng(0)
    gt_small, pred_small = random_instances(rng, (132, 196), 25), random_instances(rng, (132, 196), 30)
    gt = gt_small.repeat(4, 0).repeat(4, 1)  # [528, 784]
    pred = pred_small.repeat(4, 0).repeat(4, 1)
    scores = m.segmentation_scores(pred, gt)
    small = m.segmentation_scores(pred_small, gt_small)
    # every area grows 16-fold: overlaps, partners, F1 and object Dice do not change
    assert scores["f1"] == pytest.approx(small["f1"], abs=1e-12) and 0 < scores["f1"] < 1
    assert scores["object_dice"] == pytest.approx(small["object_dice"], abs=1e-12)
    assert scores["object_hausdorff"] > small["object_hausdorff"] > 0


# ---------------------------------------------------------------- bad input


def test_bad_input_raises() -> None:
    a = np.zeros((4, 4), dtype=np.int64)
    with pytest.raises(ValueError, match="does not match"):
        m.object_f1(a, np.zeros((4, 5), dtype=np.int64))
    with pytest.raises(ValueError, match="threshold"):
        m.dice(np.full((4, 4), 0.3), a)
    with pytest.raises(ValueError, match="threshold"):
        m.jaccard(np.full((4, 4), np.nan), a)
    with pytest.raises(ValueError, match="negative"):
        m.object_dice(a - 1, a)
    with pytest.raises(ValueError, match=r"\[H, W\]"):
        m.object_hausdorff(np.zeros(4, dtype=np.int64), np.zeros(4, dtype=np.int64))
    with pytest.raises(ValueError, match="min_size"):
        m.label_objects(a, min_size=-1)
    with pytest.raises(ValueError, match="ndarray"):
        m.dice([[0, 1]], [[0, 1]])
