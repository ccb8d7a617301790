"""Labelling units on hand-worked score maps: reductions, choices, Random draws, the stored fields, and the
click budget of dominant-class superpixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alseg_utils import costs, selection
from alseg_utils.config import STRATEGIES, ActiveConfig
from alseg_utils.labels import LabelStore
from alseg_utils.regions import Region, select_regions
from alseg_utils.selection import (
    UNIT_STRATEGIES,
    DominantSuperpixels,
    FullImages,
    Selection,
    SuperpixelSelection,
    Superpixels,
    UnitStrategy,
    Windows,
    initial_images,
    random_unit_scores,
    segments_per_step,
    shown_superpixels,
    unit_strategy,
)
from alseg_utils.superpixels import select_superpixels

QUADRANTS = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]], dtype=np.int32)  # [4, 4]


def _none(shape: tuple[int, ...]) -> np.ndarray:
    return np.zeros(shape, bool)


def test_candidates_whole_images_need_an_unlabelled_image_regions_a_pixel_left() -> None:
    valid = np.ones((3, 2, 2), bool)
    valid[2, 1] = False  # image 2: bottom row is padding
    store = LabelStore.empty(valid)
    store.labels[0, 0, 0] = 1  # image 0 partly labelled
    store.labels[2, 0] = 0  # image 2: every real pixel labelled
    assert FullImages(1).candidates(store) == [1]
    assert Windows(1, 1, 1).candidates(store) == [0, 1]


def test_full_images_take_the_largest_sums_ties_to_the_lowest_index() -> None:
    scores = torch.tensor([[[0.25, 0.25], [0.25, 0.25]], [[1.0, 2.0], [0.0, 0.0]], [[3.0, 0.0], [0.0, 0.0]]],
                          dtype=torch.float64)  # [3, 2, 2]: sums 1, 3, 3
    labelled = _none((3, 2, 2))
    labelled[1, 1, 1] = True  # padding of image 1
    unit = FullImages(2)
    assert unit.reduce(scores, [4, 7, 9], labelled).tolist() == [1.0, 3.0, 3.0]
    sel = unit.select(scores, [4, 7, 9], labelled)
    assert sel.images == [7, 9] and sel.whole_images and sel.regions == []
    assert (sel.acquired[1] == ~labelled[1]).all() and sel.acquired[2].all() and not sel.acquired[0].any()
    assert sel.pixels == 7 and sel.local([9, 4]) == [2, 0]
    assert sel.fields() == {"images": [7, 9], "regions": []}
    assert sel.arrays(4)["regions"].shape == (0, 5) and sel.arrays(4)["regions"].dtype == np.int64


def test_windows_take_disjoint_windows_and_skip_labelled_ones() -> None:
    scores = np.array([[4, 4, 3, 3], [4, 4, 3, 3], [2, 2, 1, 1], [2, 2, 1, 1]], dtype=np.float64) / 4
    scores = torch.from_numpy(scores[None])  # [1, 4, 4]: window sums 4, 3, 2, 1
    unit = Windows(size=2, stride=2, m=2)
    assert unit.unit_shape([3], _none((1, 4, 4))) == (1, 2, 2)
    assert unit.reduce(scores, [3], _none((1, 4, 4))).tolist() == [[[4.0, 3.0], [2.0, 1.0]]]
    sel = unit.select(scores, [3], _none((1, 4, 4)))
    assert sel.regions == [Region(3, 0, 0, 2, 2), Region(3, 0, 2, 2, 2)] and sel.images == [3]
    labelled = _none((1, 4, 4))
    labelled[0, :2, :2] = True  # the best window is labelled already
    labelled[0, 0, 2] = True  # and one pixel of the second
    sel = unit.select(scores, [3], labelled)
    assert sel.regions == [Region(3, 0, 2, 2, 2), Region(3, 2, 0, 2, 2)] and not sel.whole_images
    assert sel.pixels == 7 and not (sel.acquired & labelled).any()
    assert sel.fields()["regions"] == [[3, 0, 2, 2, 2], [3, 2, 0, 2, 2]]
    assert sel.arrays(4)["regions"].tolist() == [[3, 0, 2, 2, 2], [3, 2, 0, 2, 2]]
    assert unit.select(scores, [3], np.ones((1, 4, 4), bool)) is None  # nothing left to label


def test_windows_choose_what_select_regions_chooses() -> None:
    rng = np.random.default_rng(0)
    scores = torch.from_numpy(rng.random((3, 11, 13)))  # [K, H, W]
    labelled = rng.random((3, 11, 13)) < 0.3
    unit = Windows(size=3, stride=2, m=6, max_per_image=3, min_distance=1)
    local = select_regions(scores, 3, 2, 6, labelled, max_per_image=3, min_distance=1)
    sel = unit.select(scores, [10, 20, 30], labelled)
    assert sel.regions == [Region([10, 20, 30][r.image], r.top, r.left, r.height, r.width) for r in local]


def test_superpixels_fit_the_budget_and_keep_only_unlabelled_pixels() -> None:
    pool = np.full((6, 4, 4), -1, np.int32)
    pool[5] = QUADRANTS
    scores = torch.from_numpy(np.choose(QUADRANTS, [0.1, 0.5, 0.3, 0.2])[None].astype(np.float64))  # [1, 4, 4]
    labelled = _none((1, 4, 4))
    labelled[0, 0, 3] = True  # one pixel of segment 1: it costs 3 and sums 1.5
    unit = Superpixels(lambda: pool, budget=8)
    assert unit.unit_shape([5], labelled) == (1, 4)
    assert unit.reduce(scores, [5], labelled) == pytest.approx(np.array([[0.4, 1.5, 1.2, 0.8]]))
    sel = unit.select(scores, [5], labelled)
    assert isinstance(sel, SuperpixelSelection) and sel.images == [5]
    assert [(p.image, p.segment, p.pixels) for p in sel.picks] == [(5, 1, 3), (5, 2, 4)]  # segment 3 does not fit
    assert sel.regions == [Region(5, 0, 2, 2, 2), Region(5, 2, 0, 2, 2)]
    assert sel.region_masks[0].tolist() == [[True, False], [True, True]] and sel.region_masks[1].all()
    assert sel.pixels == 7 and not (sel.acquired & labelled).any()
    assert sel.fields()["superpixels"] == [[5, 1, 3], [5, 2, 4]]
    arrays = sel.arrays(4)
    assert list(arrays) == ["regions", "shown_segments", "superpixels"]
    assert (arrays["shown_segments"] == pool[[5]]).all() and arrays["shown_segments"].dtype == np.int32
    assert arrays["superpixels"].tolist() == [[5, 1, 3], [5, 2, 4]] and arrays["superpixels"].dtype == np.int64
    mean = Superpixels(lambda: pool, budget=8, reduce="mean")
    assert mean.reduce(scores, [5], labelled) == pytest.approx(np.array([[0.1, 0.5, 0.3, 0.2]]))


def test_superpixels_choose_what_select_superpixels_chooses_and_load_segments_once() -> None:
    rng = np.random.default_rng(1)
    rows, cols = np.indices((8, 9))
    pool = np.stack([(rows // 3) * 3 + cols // 3, (rows // 2) * 5 + cols // 2]).astype(np.int32)  # [2, 8, 9]
    scores = torch.from_numpy(rng.random((2, 8, 9)))
    labelled = rng.random((2, 8, 9)) < 0.2
    loads = []
    unit = Superpixels(lambda: loads.append(1) or pool, budget=30, reduce="mean", max_per_image=3)
    picks = select_superpixels(scores, pool, 30, labelled, reduce="mean", max_per_image=3)
    sel = unit.select(scores, [0, 1], labelled)
    assert [(p.image, p.segment, p.pixels) for p in sel.picks] == [(p.image, p.segment, p.pixels) for p in picks]
    unit.select(scores, [0, 1], labelled, torch.Generator().manual_seed(0))
    assert loads == [1]


@pytest.mark.parametrize("unit", [FullImages(1), Windows(2, 2, 1), Superpixels(lambda: QUADRANTS[None], 4),
                                  DominantSuperpixels(lambda: QUADRANTS[None], count=2)])
def test_random_draws_one_score_per_unit_from_the_generator(unit: UnitStrategy) -> None:
    scores = torch.from_numpy(np.arange(16, dtype=np.float64).reshape(1, 4, 4))
    labelled = _none((1, 4, 4))
    drawn = unit.select(scores, [0], labelled, torch.Generator().manual_seed(3))
    values = random_unit_scores(unit.unit_shape([0], labelled), torch.Generator().manual_seed(3))
    expected = unit.choose(values, [0], labelled)
    assert drawn.images == expected.images and drawn.regions == expected.regions
    assert (drawn.acquired == expected.acquired).all()
    flipped = unit.select(scores.flip(2), [0], labelled, torch.Generator().manual_seed(3))
    assert flipped.regions == drawn.regions  # the pixel scores play no part


def test_random_unit_scores_are_uniform_draws_of_the_shape() -> None:
    values = random_unit_scores((2, 3), torch.Generator().manual_seed(0))
    assert values.shape == (2, 3) and values.dtype == np.float64 and ((0 <= values) & (values < 1)).all()
    assert (values == torch.rand((2, 3), generator=torch.Generator().manual_seed(0), dtype=torch.float64).numpy()).all()


def test_every_strategy_has_a_unit_built_from_the_config() -> None:
    assert set(UNIT_STRATEGIES) == set(STRATEGIES)
    active = ActiveConfig(images_per_step=3, regions_per_step=2, region_size=8, region_stride=4, max_per_image=0,
                          min_distance=2, superpixel_reduce="mean")
    assert unit_strategy(ActiveConfig(strategy="full", images_per_step=3), lambda: QUADRANTS) == FullImages(3)
    assert unit_strategy(ActiveConfig(**{**vars(active), "strategy": "region"}), lambda: QUADRANTS) == \
        Windows(8, 4, 2, None, 2)
    sp = unit_strategy(ActiveConfig(**{**vars(active), "strategy": "superpixel"}), lambda: QUADRANTS)
    assert isinstance(sp, Superpixels) and (sp.budget, sp.reduction, sp.max_per_image) == (128, "mean", None)
    assert FullImages.whole_images and not Windows.whole_images and not Superpixels.whole_images
    with pytest.raises(ValueError, match="strategy must be one of full, region, superpixel"):
        unit_strategy(ActiveConfig(strategy="hexagons"), lambda: QUADRANTS)
    with pytest.raises(TypeError):
        UnitStrategy()  # abstract


def test_dominant_superpixels_take_a_count_of_segments_and_ask_one_class_each() -> None:
    pool = np.full((6, 4, 4), -1, np.int32)
    pool[5] = QUADRANTS
    pool[5, 2:, 2:] = 2  # segments 0, 1 (4 px each) and 2 (8 px: an L of quadrants 2 and 3)
    scores = torch.from_numpy(np.choose(pool[5], [0.1, 0.5, 0.3])[None].astype(np.float64))  # [1, 4, 4]
    labelled = _none((1, 4, 4))
    labelled[0, 0, 3] = True  # one pixel of segment 1
    unit = DominantSuperpixels(lambda: pool, count=2)
    sel = unit.select(scores, [5], labelled)
    assert isinstance(sel, SuperpixelSelection) and sel.class_answers and unit.class_answers
    assert [(p.image, p.segment, p.pixels) for p in sel.picks] == [(5, 2, 8), (5, 1, 3)]  # sums 2.4, 1.5: no size cap
    assert sel.regions == [Region(5, 2, 0, 2, 4), Region(5, 0, 2, 2, 2)]
    assert sel.region_masks[1].tolist() == [[True, False], [True, True]] and sel.pixels == 11
    assert not Superpixels(lambda: pool, budget=8).select(scores, [5], labelled).class_answers
    assert DominantSuperpixels(lambda: pool, count=5).select(scores, [5], labelled).pixels == 15  # every segment


def _store_with_initial_images() -> LabelStore:
    """Three 6 x 8 images: 0 and 1 labelled whole at step 0 (1 padded below row 4), 2 labelled by segments only."""
    valid = np.ones((3, 6, 8), bool)
    valid[1, 4:] = False
    store = LabelStore.empty(valid)
    objects = np.zeros((2, 6, 8), np.uint8)
    objects[0, 1:3, 1:3] = objects[0, 2:4, 3:5] = 1  # two squares touching at a corner: one 8-connected object
    objects[1, 0:2, 5:8] = 1
    objects[1, 5, :] = 1  # under the padding: not an object of the store
    store.add_images([0, 1], objects, np.zeros_like(objects))
    store.add_segments([Region(2, 0, 0, 6, 8)], [1], [np.ones((6, 8), bool)])  # every pixel, but no contours
    return store


def test_initial_images_are_those_with_every_contour_labelled() -> None:
    store = _store_with_initial_images()
    assert initial_images(store) == [0, 1] and store.labelled_images() == [0, 1, 2]
    store.contours[1, 0, 0] = 255
    assert initial_images(store) == [0]
    assert initial_images(LabelStore.empty(np.zeros((2, 3, 3), bool))) == []  # all padding: not labelled


def test_segments_per_step_is_regions_per_step_times_clicks_per_window(monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store_with_initial_images()
    seen = {}

    def fake_clicks(instances, valid, region_size, stride, tolerance=1.0):
        seen.update(instances=instances, valid=valid, size=region_size, stride=stride)
        return 0.5

    monkeypatch.setattr(selection, "clicks_per_window", fake_clicks)
    active = ActiveConfig(strategy="superpixel", superpixel_label="dominant", regions_per_step=5, region_size=4,
                          region_stride=2)
    assert segments_per_step(store, active) == 3  # 5 x 0.5 = 2.5, halves up
    assert (seen["size"], seen["stride"]) == (4, 2)
    np.testing.assert_array_equal(seen["valid"], store.valid[:2])  # the initial images only
    assert seen["instances"].shape == (2, 6, 8) and seen["instances"].max() == 1  # 8-connected: one object each
    np.testing.assert_array_equal(seen["instances"] > 0, (store.labels[:2] == 1) & store.valid[:2])
    monkeypatch.setattr(selection, "clicks_per_window", lambda *a, **k: 0.2)
    assert segments_per_step(store, ActiveConfig(regions_per_step=2, region_size=4)) == 1  # 0.4 -> 0 -> at least 1
    monkeypatch.setattr(selection, "clicks_per_window", lambda *a, **k: 4.3)
    assert segments_per_step(store, ActiveConfig(regions_per_step=3, region_size=4)) == 13  # 12.9 -> 13
    with pytest.raises(ValueError, match="no fully labelled image"):
        segments_per_step(LabelStore.empty(np.ones((1, 6, 8), bool)), active)


def test_segments_per_step_uses_the_real_click_cost_of_the_initial_images() -> None:
    store = _store_with_initial_images()
    active = ActiveConfig(regions_per_step=7, region_size=4, region_stride=2)
    objects = ((store.labels[:2] == 1) & store.valid[:2]).astype(np.int32)  # [2, 6, 8]
    clicks = costs.clicks_per_window(objects, store.valid[:2], 4, 2)
    assert clicks > 1  # windows cut the objects: more than one click on average
    assert segments_per_step(store, active) == int(np.floor(7 * clicks + 0.5))


def test_dominant_unit_fixes_its_count_from_the_first_store_it_sees(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(selection, "clicks_per_window", lambda *a, **k: calls.append(1) or 1.5)
    active = ActiveConfig(strategy="superpixel", superpixel_label="dominant", regions_per_step=2, region_size=4,
                          superpixel_reduce="mean", min_distance=1)
    unit = unit_strategy(active, lambda: np.zeros((3, 6, 8), np.int32))
    assert isinstance(unit, DominantSuperpixels) and unit.count is None
    assert (unit.reduction, unit.min_distance, unit.max_per_image) == ("mean", 1, None)
    with pytest.raises(ValueError, match="call candidates"):
        unit.pick(np.zeros((1, 1)), np.zeros((1, 6, 8), np.int32), _none((1, 6, 8)))
    store = _store_with_initial_images()
    store.labels[2, 0, 0] = 255  # image 2 has a pixel left
    assert unit.candidates(store) == [2] and unit.count == 3
    unit.candidates(store)
    assert calls == [1]  # computed once per run (it depends on the initial set only)
    with pytest.raises(ValueError, match="needs a count"):
        DominantSuperpixels(lambda: QUADRANTS[None])


def test_select_refuses_maps_of_other_images() -> None:
    with pytest.raises(ValueError, match="same .K, H, W. images"):
        FullImages(1).select(torch.zeros(2, 3, 3), [0], _none((2, 3, 3)))
    with pytest.raises(ValueError, match="same .K, H, W. images"):
        FullImages(1).select(torch.zeros(2, 3, 3), [0, 1], _none((2, 3, 4)))


def test_shown_superpixels_outlines_the_chosen_segments_of_a_shown_image() -> None:
    stored = {"shown_images": np.array([5]), "shown_segments": np.array([[[0, 1], [2, 1]]]),
              "superpixels": np.array([[5, 1, 3], [4, 0, 2]])}
    assert shown_superpixels(stored, 0).tolist() == [[-1, 1], [-1, 1]]
    assert shown_superpixels({"shown_images": np.array([5])}, 0) is None
    sel = Selection([1], [1], np.ones((1, 2, 2), bool))
    assert "shown_segments" not in sel.arrays(4)


def test_shown_windows_of_one_image_and_none_for_superpixels() -> None:
    import numpy as np

    from alseg_utils.selection import UNIT_STRATEGIES, shown_windows
    from alseg_utils.config import STRATEGIES

    sel = {"shown_images": np.array([3, 7]), "regions": np.array([[3, 0, 4, 8, 8], [7, 1, 2, 8, 8], [3, 9, 9, 8, 8]])}
    assert shown_windows(sel, 0) == [(0, 4, 8, 8), (9, 9, 8, 8)]
    assert shown_windows(sel, 1) == [(1, 2, 8, 8)]
    assert shown_windows({**sel, "superpixels": np.zeros((1, 3))}, 0) == []
    assert tuple(UNIT_STRATEGIES) == STRATEGIES
