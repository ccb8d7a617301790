"""SimulatedOracle answers with ground truth, exactly where it is asked (pixels, or one dominant class per
segment); AnnotationRequest's fields."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from alseg_utils.config import UNLABELLED
from alseg_utils.labels import LabelStore
from alseg_utils.oracle import AnnotationRequest, SimulatedOracle, dominant_classes
from alseg_utils.regions import Region


def _ground_truth() -> tuple[np.ndarray, np.ndarray]:
    """Three 4 x 6 images: pixel (n, i, j) is object when (n + i + j) is odd; contour on column 0 only."""
    n, i, j = np.indices((3, 4, 6))
    masks = ((n + i + j) % 2).astype(bool)  # [N, H, W]
    contours = j == 0  # [N, H, W]
    return masks, contours


def test_whole_images_are_the_ground_truth_in_the_order_asked() -> None:
    masks, contours = _ground_truth()
    oracle = SimulatedOracle(masks, contours)
    labels, cons = oracle.label_images([2, 0])
    assert labels.dtype == cons.dtype == np.uint8 and labels.shape == cons.shape == (2, 4, 6)
    np.testing.assert_array_equal(labels, masks[[2, 0]].astype(np.uint8))
    np.testing.assert_array_equal(cons, contours[[2, 0]].astype(np.uint8))
    assert labels[0, 0].tolist() == [0, 1, 0, 1, 0, 1] and labels[1, 0].tolist() == [0, 1, 0, 1, 0, 1]
    assert labels[0, 1].tolist() == [1, 0, 1, 0, 1, 0] and cons[0, :, 0].tolist() == [1, 1, 1, 1]
    empty, _ = oracle.label_images([])
    assert empty.shape == (0, 4, 6)


def test_region_answers_are_the_ground_truth_inside_each_window() -> None:
    masks, contours = _ground_truth()
    oracle = SimulatedOracle(masks, contours)
    regions = [Region(1, 0, 0, 2, 3), Region(2, 1, 3, 3, 3), Region(1, 3, 5, 1, 1)]
    labels, cons = oracle.label_regions(regions)
    assert [p.shape for p in labels] == [p.shape for p in cons] == [(2, 3), (3, 3), (1, 1)]
    assert labels[0].tolist() == [[1, 0, 1], [0, 1, 0]] and cons[0].tolist() == [[1, 0, 0], [1, 0, 0]]
    assert labels[1].tolist() == [[0, 1, 0], [1, 0, 1], [0, 1, 0]] and not cons[1].any()  # no column 0 in it
    assert labels[2].tolist() == [[1]] and cons[2].tolist() == [[0]]  # (1 + 3 + 5) is odd
    assert oracle.label_regions([]) == ([], [])


def test_masked_regions_store_ground_truth_inside_the_mask_only() -> None:
    """A superpixel: the oracle answers its bounding box, the store keeps the segment's pixels."""
    masks, contours = _ground_truth()
    oracle = SimulatedOracle(masks, contours)
    box = Region(0, 1, 1, 2, 3)
    segment = np.array([[True, True, False], [False, True, True]])
    request = AnnotationRequest(step=1, images=[0], image_names=["a"], regions=[box], region_masks=[segment])
    labels, cons = oracle.label_regions(request.regions, request)
    store = LabelStore.empty(np.ones(masks.shape, bool))
    store.add_regions(request.regions, labels, cons, masks=request.region_masks)
    inside = np.zeros(masks.shape, bool)
    inside[0, 1, 1:3] = inside[0, 2, 2:4] = True
    np.testing.assert_array_equal(store.labelled(), inside)
    np.testing.assert_array_equal(store.labels[inside], masks[inside])
    np.testing.assert_array_equal(store.contours[inside], contours[inside])
    assert store.labels[0, 1:3, 1:4].tolist() == [[0, 1, UNLABELLED], [UNLABELLED, 0, 1]]


def test_the_request_does_not_change_the_answer() -> None:
    masks, contours = _ground_truth()
    oracle = SimulatedOracle(masks, contours)
    request = AnnotationRequest(step=3, images=[1], image_names=["b"], scores=np.zeros((1, 4, 6), np.float32),
                                pseudo_object=1 - masks[1:].astype(np.uint8))  # a wrong guess is not copied
    for with_request, without in zip(oracle.label_images([1], request), oracle.label_images([1]), strict=True):
        np.testing.assert_array_equal(with_request, without)
    np.testing.assert_array_equal(oracle.label_images([1], request)[0][0], masks[1])


def test_the_oracle_keeps_its_own_copy_of_the_ground_truth() -> None:
    masks, contours = _ground_truth()
    oracle = SimulatedOracle(masks, contours)
    masks[:] = False  # the caller's arrays change later
    contours[:] = True
    labels, cons = oracle.label_images([0])
    np.testing.assert_array_equal(labels[0], _ground_truth()[0][0])
    np.testing.assert_array_equal(cons[0], _ground_truth()[1][0])


def test_masks_and_contours_of_different_shapes_are_refused() -> None:
    masks, contours = _ground_truth()
    with pytest.raises(ValueError, match=r"masks \(3, 4, 6\) and contours \(3, 4, 5\) differ in shape"):
        SimulatedOracle(masks, contours[..., :5])


def test_annotation_request_fields_and_defaults() -> None:
    assert [f.name for f in dataclasses.fields(AnnotationRequest)] == [
        "step", "images", "image_names", "regions", "region_masks", "scores", "pseudo_object", "pseudo_contour",
        "class_answers"]
    assert AnnotationRequest(step=0, images=[], image_names=[]).class_answers is False  # masks unless asked
    first = AnnotationRequest(step=0, images=[4, 7], image_names=["x", "y"])
    assert (first.step, first.images, first.image_names) == (0, [4, 7], ["x", "y"])
    assert (first.regions, first.region_masks) == ([], [])  # whole images: no windows, no masks
    assert (first.scores, first.pseudo_object, first.pseudo_contour) == (None, None, None)  # nothing at step 0
    second = AnnotationRequest(step=1, images=[7], image_names=["y"], regions=[Region(7, 0, 0, 2, 2)])
    first.regions.append(Region(4, 1, 1, 1, 1))
    assert second.regions == [Region(7, 0, 0, 2, 2)]  # no list shared between requests
    assert AnnotationRequest(step=2, images=[], image_names=[]).regions == []


# ----------------------------------------------------------------------------- dominant classes


def _segment_map() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One 4 x 6 image, three segments, padding (-1) on the last column, and its object mask.

    segments          mask               segment 0: 4 of 8 real pixels object -> a tie
    0 0 1 1 1 -1      1 1 0 0 1 1        segment 1: 2 of 6 object            -> background
    0 0 1 1 1 -1      1 1 0 1 0 1        segment 2: 6 of 9 object            -> object
    0 0 2 2 2 -1      0 0 1 1 1 1        (the mask's object pixels under the padding never vote)
    0 0 2 2 2 -1      0 0 1 0 1 1
    """
    segments = np.array([[0, 0, 1, 1, 1, -1], [0, 0, 1, 1, 1, -1], [0, 0, 2, 2, 2, -1], [0, 0, 2, 2, 2, -1]])
    mask = np.array([[1, 1, 0, 0, 1, 1], [1, 1, 0, 1, 0, 1], [0, 0, 1, 1, 1, 1], [0, 0, 1, 0, 1, 1]], np.uint8)
    return segments[None], mask[None], (segments >= 0)[None]


def _boxes(segments: np.ndarray) -> tuple[list[Region], list[np.ndarray]]:
    """Each segment of image 0 as its bounding box and its mask in the box (padding included when asked)."""
    regions, areas = [], []
    for s in range(int(segments.max()) + 1):
        rows, cols = np.nonzero(segments[0] == s)
        box = Region(0, int(rows.min()), int(cols.min()), int(np.ptp(rows)) + 1, int(np.ptp(cols)) + 1)
        regions.append(box)
        areas.append(segments[(0, *box.slices)] == s)
    return regions, areas


def test_dominant_class_is_the_strict_majority_of_real_pixels() -> None:
    segments, mask, valid = _segment_map()
    regions, areas = _boxes(segments)
    classes = dominant_classes(mask, regions, areas, valid)
    assert classes.dtype == np.int64 and classes.tolist() == [0, 0, 1]  # tie -> background, 2/6 -> 0, 6/9 -> 1
    flipped = dominant_classes(1 - mask, regions, areas, valid)
    assert flipped.tolist() == [0, 1, 0]  # the tie stays background whichever class is object


def test_padding_never_votes_for_a_segments_class() -> None:
    segments, mask, valid = _segment_map()
    mask[0, :2, 2:5] = [[1, 1, 0], [1, 0, 0]]  # segment 1: 3 of its 6 real pixels object, a tie
    box = Region(0, 0, 2, 2, 4)  # its window, grown over the padding column (object there)
    area = np.ones((2, 4), bool)
    assert dominant_classes(mask, [box], [area], valid).tolist() == [0]  # 3 of 6 real pixels: tie, background
    assert dominant_classes(mask, [box], [area]).tolist() == [1]  # padding counted as real: 5 of 8
    assert SimulatedOracle(mask, mask, valid).label_segments([box], [area]).tolist() == [0]
    with pytest.raises(ValueError, match="no real pixel"):
        dominant_classes(mask, [Region(0, 0, 5, 4, 1)], [np.ones((4, 1), bool)], valid)
    with pytest.raises(ValueError, match="does not fit its window"):
        dominant_classes(mask, [box], [np.ones((3, 4), bool)], valid)


def test_simulated_oracle_answers_the_dominant_class_of_each_segment() -> None:
    segments, mask, valid = _segment_map()
    regions, areas = _boxes(segments)
    oracle = SimulatedOracle(mask, np.zeros_like(mask), valid)
    request = AnnotationRequest(step=1, images=[0], image_names=["a"], regions=regions, region_masks=areas,
                                class_answers=True)
    assert oracle.label_segments(regions, areas, request).tolist() == [0, 0, 1]
    assert oracle.label_segments(regions[2:], areas[2:]).tolist() == [1]  # the request is not needed
    assert oracle.label_segments([], []).tolist() == []
    with pytest.raises(ValueError, match="valid"):
        SimulatedOracle(mask, mask, valid[..., :5])
