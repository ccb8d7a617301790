"""Tests of alseg_utils.metrics: hand-worked images, edge cases, brute force, properties, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.metrics import hausdorff_distance

from alseg_utils import metrics as m


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


def test_f1_half_overlap_and_maximum_matching() -> None:
    gt = np.zeros((4, 6), dtype=np.int64)
    gt[0, 0:4] = 1  # 4 px
    gt[2, 0:2] = 2  # 2 px
    pred = np.zeros_like(gt)
    pred[0, 0:2] = 3  # exactly 50% of gland 1
    pred[0, 2:4] = 4  # the other 50% of gland 1
    assert m.object_f1(pred, gt) == pytest.approx(2 * 1 / (2 + 2))  # gland 1 matched once, gland 2 missed
    pred2 = np.zeros_like(gt)
    pred2[0, 0:2] = 3  # half of gland 1
    pred2[0, 2:4] = 4  # other half of gland 1 ...
    pred2[2, 0:2] = 4  # ... and all of gland 2 (object 4 is split but one id)
    # a greedy match could give 4 -> gland 1 and leave 3 unmatched; the maximum matching finds 2 TP
    assert m.object_f1(pred2, gt) == pytest.approx(1.0)


def test_segmentation_scores_matches_individual_functions() -> None:
    pred, gt = two_glands()
    batch_p, batch_g = np.stack([pred, gt]), np.stack([gt, gt])
    scores = m.segmentation_scores(batch_p, batch_g)
    assert set(scores) == {"f1", "object_dice", "object_hausdorff", "dice", "jaccard"}
    assert scores["f1"] == pytest.approx((0.5 + 1.0) / 2)  # per image, then mean over images
    assert scores["object_dice"] == pytest.approx(m.object_dice(batch_p, batch_g))
    assert scores["object_hausdorff"] == pytest.approx(m.object_hausdorff(pred, gt) / 2)
    assert scores["jaccard"] == pytest.approx(m.jaccard(batch_p, batch_g))
    assert all(isinstance(v, float) for v in scores.values())


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
    gt = random_instances(rng, (132, 196), 25).repeat(4, 0).repeat(4, 1)  # [528, 784]
    pred = random_instances(rng, (132, 196), 30).repeat(4, 0).repeat(4, 1)
    scores = m.segmentation_scores(pred, gt)
    assert 0 <= scores["f1"] <= 1 and scores["object_hausdorff"] > 0


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
