"""Labelling units on hand-worked score maps: reductions, choices, Random draws, the stored fields."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alseg_utils.config import STRATEGIES, ActiveConfig
from alseg_utils.labels import LabelStore
from alseg_utils.regions import Region, select_regions
from alseg_utils.selection import (
    UNIT_STRATEGIES,
    FullImages,
    Selection,
    SuperpixelSelection,
    Superpixels,
    UnitStrategy,
    Windows,
    random_unit_scores,
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


@pytest.mark.parametrize("unit", [FullImages(1), Windows(2, 2, 1), Superpixels(lambda: QUADRANTS[None], 4)])
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
