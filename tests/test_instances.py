"""Tests of alseg_utils.instances: DCAN post-processing of object and contour probabilities."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from alseg_utils.instances import predict_instances, predict_instances_batch, remove_small


def two_touching_squares() -> tuple[np.ndarray, np.ndarray]:
    """Two 10x10 squares side by side (one 20-wide object) with a contour line between them."""
    obj = np.zeros((20, 30))
    obj[5:15, 5:25] = 0.9
    con = np.zeros((20, 30))
    con[5:15, 14:16] = 0.8  # the boundary between the two glands
    return obj, con


def test_touching_glands_are_split_and_contour_pixels_grown_back():
    obj, con = two_touching_squares()
    inst = predict_instances(obj, con, min_size=10)
    assert inst.dtype == np.int32
    assert set(np.unique(inst)) == {0, 1, 2}
    assert np.array_equal(inst > 0, obj >= 0.5)  # every object pixel, contour included, is assigned
    assert len(np.unique(inst[5:15, 5:14])) == 1 and len(np.unique(inst[5:15, 16:25])) == 1
    assert inst[10, 7] != inst[10, 22]
    assert {(inst == k).sum() for k in (1, 2)} == {100}  # the 2-px contour is shared 1 + 1


def test_without_contour_the_object_is_one_instance():
    obj, _ = two_touching_squares()
    inst = predict_instances(obj, np.zeros_like(obj), min_size=10)
    assert set(np.unique(inst)) == {0, 1} and (inst == 1).sum() == 200


def test_small_objects_are_removed_and_labels_are_consecutive():
    obj = np.zeros((30, 30))
    obj[2:4, 2:4] = 1.0  # 4 px, removed
    obj[10:20, 10:20] = 1.0  # 100 px, kept
    obj[25:28, 2:5] = 1.0  # 9 px, removed
    inst = predict_instances(obj, np.zeros_like(obj), min_size=10)
    assert set(np.unique(inst)) == {0, 1} and (inst == 1).sum() == 100
    inst_all = predict_instances(obj, np.zeros_like(obj), min_size=0)
    assert set(np.unique(inst_all)) == {0, 1, 2, 3}


def test_thresholds_are_inclusive():
    obj = np.full((12, 12), 0.5)
    assert predict_instances(obj, np.zeros((12, 12)), object_threshold=0.5, min_size=1).max() == 1
    assert predict_instances(obj, np.zeros((12, 12)), object_threshold=0.51, min_size=1).max() == 0
    con = np.full((12, 12), 0.3)
    assert predict_instances(np.ones((12, 12)), con, contour_threshold=0.3, min_size=1).max() == 0


def test_empty_prediction_is_all_background():
    inst = predict_instances(np.zeros((8, 9)), np.zeros((8, 9)))
    assert inst.shape == (8, 9) and inst.dtype == np.int32 and inst.max() == 0


def test_remove_small_brute_force():
    rng = np.random.default_rng(0)
    labels = ndimage.label(rng.random((40, 40)) > 0.6)[0]
    out = remove_small(labels, 5)
    for k in range(1, labels.max() + 1):
        size = (labels == k).sum()
        assert np.array_equal(out == k, (labels == k) if size >= 5 else np.zeros_like(labels, bool))


def test_batch_matches_single_images_and_accepts_torch():
    rng = np.random.default_rng(1)
    obj = ndimage.gaussian_filter(rng.random((3, 32, 32)), (0, 2, 2))
    obj = (obj - obj.min()) / (obj.max() - obj.min())
    con = rng.random((3, 32, 32)) * 0.6
    batch = predict_instances_batch(torch.from_numpy(obj), torch.from_numpy(con), min_size=5)
    assert batch.shape == (3, 32, 32) and batch.dtype == np.int32
    for i in range(3):
        assert np.array_equal(batch[i], predict_instances(obj[i], con[i], min_size=5))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), min_size=st.integers(0, 20))
def test_instances_are_connected_inside_object_mask_and_contain_their_seeds(seed, min_size):
    rng = np.random.default_rng(seed)
    obj = ndimage.gaussian_filter(rng.random((24, 24)), 1.5)
    obj = (obj - obj.min()) / (obj.max() - obj.min() + 1e-12)
    con = ndimage.gaussian_filter(rng.random((24, 24)), 1.0)
    con = (con - con.min()) / (con.max() - con.min() + 1e-12)
    inst = predict_instances(obj, con, 0.5, 0.5, min_size)
    mask = obj >= 0.5
    assert np.all(mask[inst > 0])
    k = inst.max()
    assert set(np.unique(inst)) == set(range(k + 1))
    for lab in range(1, k + 1):
        assert ndimage.label(inst == lab)[1] == 1  # grown instances stay connected
    seeds = ndimage.label(mask & (con < 0.5))[0]
    sizes = np.bincount(seeds.ravel())
    kept = [s for s in range(1, seeds.max() + 1) if sizes[s] >= min_size]
    assert k == len(kept)
    for s in kept:
        assert len(np.unique(inst[seeds == s])) == 1 and inst[seeds == s][0] > 0


@pytest.mark.parametrize(
    ("obj", "con", "kw", "match"),
    [
        (np.zeros((4, 4)), np.zeros((4, 5)), {}, "same"),
        (np.zeros((2, 4, 4)), np.zeros((2, 4, 4)), {}, "same"),
        (np.zeros((4, 4)), np.zeros((4, 4)), {"object_threshold": 1.5}, "thresholds"),
        (np.zeros((4, 4)), np.zeros((4, 4)), {"min_size": -1}, "min_size"),
    ],
)
def test_bad_inputs_raise(obj, con, kw, match):
    with pytest.raises(ValueError, match=match):
        predict_instances(obj, con, **kw)


def test_batch_rejects_2d():
    with pytest.raises(ValueError, match=r"\[N, H, W\]"):
        predict_instances_batch(np.zeros((4, 4)), np.zeros((4, 4)))
