"""Annotation cost models on hand-made masks with known answers, step accounting and the effort axes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alseg_utils.config import COST_MODELS, EFFORT_AXES
from alseg_utils.costs import (
    COST_FUNCTIONS,
    annotated_cost,
    clicks_per_window,
    cost_fields,
    dominant_clicks,
    effort_axis,
    pixel_count,
    polygon_clicks,
    require_effort,
    selection_costs,
    unit_costs,
)
from alseg_utils.errors import RunStateError
from alseg_utils.regions import Region
from alseg_utils.selection import Selection


def _square(shape: tuple[int, int], top: int, left: int, height: int, width: int) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[top:top + height, left:left + width] = True
    return mask


# ----------------------------------------------------------------------------- polygon clicks, known answers


def test_a_square_inside_a_window_is_four_clicks() -> None:
    assert polygon_clicks(_square((20, 20), 5, 6, 7, 8)) == 4
    assert polygon_clicks(_square((20, 20), 5, 6, 7, 8).astype(np.int32) * 3) == 4  # an instance map alike


def test_an_empty_unit_is_one_click() -> None:
    assert polygon_clicks(np.zeros((10, 12), np.int32)) == 1
    outside = _square((20, 20), 0, 0, 5, 5)  # the object lies outside the unit
    assert polygon_clicks(outside, unit=_square((20, 20), 10, 10, 6, 6)) == 1


def test_an_object_clipped_by_the_window_border_is_the_clipped_rectangle() -> None:
    window = _square((20, 20), 0, 0, 20, 20)[5:15, 5:15]  # what the window shows of ...
    objects = _square((20, 20), 2, 8, 10, 4)[5:15, 5:15]  # ... a 10 x 4 rectangle crossing its top edge
    assert objects[0].any() and objects.sum() == 7 * 4
    assert polygon_clicks(objects, window) == 4
    # the same clip by a unit mask inside a larger array
    assert polygon_clicks(_square((20, 20), 2, 8, 10, 4), unit=_square((20, 20), 5, 5, 10, 10)) == 4


def test_two_separate_squares_are_eight_clicks_and_an_l_shape_six() -> None:
    two = _square((20, 20), 2, 2, 4, 4) | _square((20, 20), 10, 10, 5, 6)
    assert polygon_clicks(two) == 8
    ell = _square((12, 12), 2, 2, 8, 3) | _square((12, 12), 7, 2, 3, 8)
    assert polygon_clicks(ell) == 6
    assert polygon_clicks(ell.T) == polygon_clicks(np.rot90(ell)) == polygon_clicks(ell[::-1]) == 6


def test_a_unit_of_one_object_is_one_click_and_two_objects_filling_it_are_traced() -> None:
    assert polygon_clicks(np.full((6, 6), 7, np.int32)) == 1  # nothing to trace: name the object
    halves = np.zeros((6, 8), np.int32)
    halves[:, :4], halves[:, 4:] = 1, 2  # two touching glands fill the unit: their outlines are clicked
    assert polygon_clicks(halves) == 8
    assert polygon_clicks(halves > 0) == 1  # as a mask they are one object filling the unit


def test_touching_instances_are_outlined_apart_holes_are_one_more_polygon() -> None:
    instances = np.zeros((10, 20), np.int32)
    instances[2:8, 2:10], instances[2:8, 10:18] = 1, 2
    assert polygon_clicks(instances) == 8 and polygon_clicks(instances > 0) == 4
    ring = _square((12, 12), 2, 2, 8, 8) & ~_square((12, 12), 4, 4, 4, 4)
    assert polygon_clicks(ring) == 8  # outer square + the hole's square


def test_small_objects_cost_a_triangle_and_tolerance_simplifies() -> None:
    assert polygon_clicks(_square((6, 6), 2, 2, 1, 1)) == 3
    assert polygon_clicks(_square((6, 9), 2, 2, 1, 5)) == 3
    staircase = np.pad(np.tril(np.ones((20, 20), bool)), 2)  # a right triangle drawn in pixels
    counts = [polygon_clicks(staircase, tolerance=t) for t in (0.0, 0.5, 1.0, 3.0)]
    assert counts[2] == 3 and counts[0] > 20  # every stair step vs the triangle
    assert counts == sorted(counts, reverse=True)


def test_superpixel_shaped_units() -> None:
    ell = _square((16, 16), 2, 2, 12, 5) | _square((16, 16), 9, 2, 5, 12)  # an L-shaped segment
    assert polygon_clicks(_square((16, 16), 3, 3, 3, 3), ell) == 4  # an object inside it
    assert polygon_clicks(_square((16, 16), 6, 0, 16, 16), ell) == 6  # the object covers its corner: an L
    assert polygon_clicks(np.ones((16, 16), bool), ell) == 1  # the segment is all object
    assert polygon_clicks(np.zeros((16, 16), bool), ell) == 1


def test_a_full_image_with_n_glands_and_padding() -> None:
    instances = np.zeros((40, 60), np.int32)
    for k, (top, left) in enumerate([(2, 2), (2, 20), (20, 5), (25, 40), (12, 50)], start=1):
        instances[top:top + 6, left:left + 7] = k
    assert polygon_clicks(instances) == 5 * 4
    valid = np.zeros((40, 60), bool)
    valid[:, :54] = True  # zero padding on the right cuts the last gland (cols 50-56) to a rectangle
    assert polygon_clicks(instances, valid) == 5 * 4
    valid[:, :48] = True
    valid[:, 48:] = False  # now the last gland lies in the padding: not part of the unit
    assert polygon_clicks(instances, valid) == 4 * 4


@settings(max_examples=60, deadline=None)
@given(top=st.integers(0, 12), left=st.integers(0, 12), height=st.integers(2, 10), width=st.integers(2, 10),
       unit_top=st.integers(0, 12), unit_left=st.integers(0, 12), unit_h=st.integers(2, 12),
       unit_w=st.integers(2, 12))
def test_any_rectangle_clipped_by_any_window_costs_four_or_one(top: int, left: int, height: int, width: int,
                                                               unit_top: int, unit_left: int, unit_h: int,
                                                               unit_w: int) -> None:
    objects, unit = _square((24, 24), top, left, height, width), _square((24, 24), unit_top, unit_left, unit_h, unit_w)
    inside = objects & unit
    rows, cols = np.flatnonzero(inside.any(1)), np.flatnonzero(inside.any(0))
    if not inside.any() or (inside == unit).all():
        expected = 1  # nothing, or nothing but the object
    elif len(rows) >= 2 and len(cols) >= 2:
        expected = 4  # the clipped rectangle
    else:
        expected = 3  # a one-pixel-thin sliver: a triangle
    assert polygon_clicks(objects, unit) == expected


def test_bad_polygon_input() -> None:
    with pytest.raises(ValueError, match=r"\[h, w\]"):
        polygon_clicks(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="same"):
        polygon_clicks(np.zeros((3, 4)), np.ones((4, 3), bool))
    with pytest.raises(ValueError, match="tolerance"):
        polygon_clicks(np.zeros((3, 4)), tolerance=-1.0)


def test_every_cost_model_has_its_function() -> None:
    assert tuple(COST_FUNCTIONS) == COST_MODELS
    assert EFFORT_AXES[: len(COST_MODELS)] == COST_MODELS and EFFORT_AXES[-1] == "clicks"
    unit = _square((10, 10), 0, 0, 10, 5)
    objects = _square((10, 10), 2, 2, 4, 6)
    assert pixel_count(objects, unit) == 50 and pixel_count(objects) == 100
    assert dominant_clicks(objects, unit) == 1
    assert unit_costs(objects, unit) == {"pixels": 50, "polygon_clicks": 4, "dominant_clicks": 1}


# ----------------------------------------------------------------------------- clicks per window


def test_clicks_per_window_on_a_hand_made_image() -> None:
    instances = np.zeros((2, 8, 8), np.int32)
    instances[0, 1:3, 1:3] = 1  # a square inside window (0, 0) of image 0: 4 clicks, 3 empty windows: 1 each
    valid = np.ones((2, 8, 8), bool)
    valid[1, :, 4:] = False  # image 1: its two right windows are padding only, not windows at all
    assert clicks_per_window(instances, valid, region_size=4, stride=4) == pytest.approx((4 + 1 + 1 + 1 + 1 + 1) / 6)
    assert clicks_per_window(instances[:1], valid[:1], 4, 4) == pytest.approx(7 / 4)
    instances[0, 4:8, 4:8] = 2  # window (1, 1) is all gland: one click
    assert clicks_per_window(instances[:1], valid[:1], 4, 4) == pytest.approx(7 / 4)
    with pytest.raises(ValueError, match="no window"):
        clicks_per_window(instances, np.zeros_like(valid), 4, 4)
    with pytest.raises(ValueError, match="same"):
        clicks_per_window(instances, valid[0], 4, 4)


# ----------------------------------------------------------------------------- one step's costs


def test_selection_costs_of_whole_images_windows_and_superpixels() -> None:
    objects = np.zeros((3, 20, 20), np.int32)
    objects[0, 2:6, 2:6] = 1
    objects[0, 10:14, 10:16] = 2
    objects[2, 0:10, 0:10] = 5
    valid = np.ones((3, 20, 20), bool)
    whole = Selection([0, 1, 2], [2, 0], valid[[0, 1, 2]])  # images 2 and 0 (best first), all their pixels
    assert selection_costs(whole, objects) == {"pixels": 800, "polygon_clicks": 4 + 8, "dominant_clicks": 2}
    # two windows of image 0; the second overlaps pixels labelled before (rows 8-9): they are not acquired
    acquired = np.zeros((1, 20, 20), bool)
    acquired[0, 0:8, 0:8] = True
    acquired[0, 10:18, 8:18] = True
    windows = Selection([0], [0], acquired, [Region(0, 0, 0, 8, 8), Region(0, 8, 8, 10, 10)])
    assert selection_costs(windows, objects) == {"pixels": 64 + 80, "polygon_clicks": 8, "dominant_clicks": 2}
    # a superpixel of image 2: an L inside its box, over the corner of the gland
    box = Region(2, 5, 5, 10, 10)
    mask = np.zeros((10, 10), bool)
    mask[:, :4] = True
    mask[6:, :] = True  # the L: 4 columns, then the bottom 4 rows
    acquired = np.zeros((1, 20, 20), bool)
    acquired[0, 5:15, 5:15] = mask
    superpixel = Selection([2], [2], acquired, [box], [mask])
    # the gland covers rows 5-9 x cols 5-9 of the L (its 5 x 4 top-left strip): a rectangle
    assert selection_costs(superpixel, objects) == {"pixels": int(mask.sum()), "polygon_clicks": 4,
                                                         "dominant_clicks": 1}
    with pytest.raises(ValueError, match=r"\[N, H, W\]"):
        selection_costs(superpixel, objects[0])


def test_cost_fields_add_to_the_previous_record() -> None:
    step0 = cost_fields({"pixels": 100, "polygon_clicks": 12, "dominant_clicks": 3}, "polygon_clicks", None)
    assert step0 == {"acquired_pixels": 100, "acquired_polygon_clicks": 12, "acquired_dominant_clicks": 3,
                     "labelled_polygon_clicks": 12, "labelled_dominant_clicks": 3, "labelled_clicks": 12}
    step1 = cost_fields({"pixels": 40, "polygon_clicks": 30, "dominant_clicks": 5}, "dominant_clicks", step0)
    assert (step1["labelled_polygon_clicks"], step1["labelled_dominant_clicks"], step1["labelled_clicks"]) == \
        (42, 8, 17)  # clicks: 12 polygon clicks at step 0, then 5 one-click superpixels
    old = {"step": 0, "labelled_pixels": 100}  # a record written before costs were counted
    resumed = cost_fields({"pixels": 40, "polygon_clicks": 30, "dominant_clicks": 5}, "polygon_clicks", old)
    assert resumed == {"acquired_pixels": 40, "acquired_polygon_clicks": 30, "acquired_dominant_clicks": 5}


def test_annotated_cost() -> None:
    assert annotated_cost("superpixel", "dominant", 1) == "dominant_clicks"
    assert annotated_cost("superpixel", "dominant", 0) == "polygon_clicks"  # the initial images are outlined
    assert annotated_cost("superpixel", "mask", 3) == annotated_cost("region", "mask", 3) == "polygon_clicks"


# ----------------------------------------------------------------------------- effort axes


def test_effort_axes_and_the_error_for_old_records() -> None:
    assert effort_axis("pixels").column == "labelled_fraction" and effort_axis("pixels").scale == 100.0
    clicks = effort_axis("polygon_clicks")
    assert (clicks.column, clicks.scale, clicks.unit) == ("labelled_polygon_clicks", 1.0, "clicks")
    assert "polygon clicks" in clicks.label
    with pytest.raises(ValueError, match="cost must be one of pixels, polygon_clicks, dominant_clicks, clicks"):
        effort_axis("seconds")
    old = pd.DataFrame({"strategy": ["full"], "step": [0], "labelled_fraction": [0.1], "reference": [False]})
    assert require_effort(old, "pixels").cost == "pixels"
    with pytest.raises(RunStateError) as err:
        require_effort(old, "clicks")
    assert "'labelled_clicks'" in str(err.value) and "\n" not in str(err.value) and "cost 'pixels'" in str(err.value)
    mixed = pd.concat([old.assign(labelled_clicks=5.0), old])  # one new run, one old
    with pytest.raises(RunStateError, match="labelled_clicks"):
        require_effort(mixed, "clicks")
    ref_only_old = pd.concat([old.assign(labelled_clicks=5.0), old.assign(reference=True)])
    assert require_effort(ref_only_old, "clicks").column == "labelled_clicks"  # reference rows are not read
