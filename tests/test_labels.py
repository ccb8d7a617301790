"""LabelStore on hand-made 3 x 4 x 5 pools: what is stored, what is counted, and the file round trip."""

from __future__ import annotations

import numpy as np
import pytest

from alseg_utils.config import UNLABELLED
from alseg_utils.errors import RunStateError
from alseg_utils.labels import LabelStore
from alseg_utils.regions import Region

U = UNLABELLED  # 255


def _valid() -> np.ndarray:
    """Three 4 x 5 images; image 2 is zero-padded on its last two columns: 20 + 20 + 12 = 52 real pixels."""
    valid = np.ones((3, 4, 5), bool)
    valid[2, :, 3:] = False
    return valid


def _truth() -> tuple[np.ndarray, np.ndarray]:
    """Object labels alternating 0/1 along the flat index (0, 1, 0, ...), contours their complement."""
    labels = (np.arange(60).reshape(3, 4, 5) % 2).astype(np.uint8)  # [N, H, W]
    return labels, 1 - labels


def _patches(regions: list[Region], truth: np.ndarray) -> list[np.ndarray]:
    return [truth[(r.image, *r.slices)] for r in regions]


def test_empty_store_has_nothing_labelled() -> None:
    store = LabelStore.empty(_valid().astype(np.uint8))  # any 0/1 array is taken as the valid mask
    assert store.labels.shape == store.contours.shape == (3, 4, 5)
    assert store.labels.dtype == store.contours.dtype == np.uint8 and store.valid.dtype == bool
    assert (store.labels == U).all() and (store.contours == U).all()
    assert store.valid.sum() == 52 and not store.valid[2, :, 3:].any()
    assert (store.labelled_pixels(), store.labelled_fraction()) == (0, 0.0)
    assert store.labelled_images() == [] and store.unlabelled_images() == [0, 1, 2]
    assert not store.labelled().any()


def test_all_padding_counts_as_fraction_zero_not_a_division_by_zero() -> None:
    store = LabelStore.empty(np.zeros((2, 3, 3), bool))
    store.add_images([0], np.ones((1, 3, 3), np.uint8), np.ones((1, 3, 3), np.uint8))
    assert (store.labels[0] == U).all()  # padding is never labelled
    assert (store.labelled_pixels(), store.labelled_fraction()) == (0, 0.0)


def test_add_images_stores_whole_ground_truth_except_padding() -> None:
    labels, contours = _truth()
    store = LabelStore.empty(_valid())
    store.add_images([2, 0], labels[[2, 0]], contours[[2, 0]])
    np.testing.assert_array_equal(store.labels[0], labels[0])
    np.testing.assert_array_equal(store.contours[0], contours[0])
    np.testing.assert_array_equal(store.labels[2, :, :3], labels[2, :, :3])
    assert (store.labels[2, :, 3:] == U).all() and (store.contours[2, :, 3:] == U).all()
    assert (store.labels[1] == U).all() and (store.contours[1] == U).all()  # not asked for: untouched
    assert store.labelled_pixels() == 20 + 12
    assert store.labelled_fraction() == pytest.approx(32 / 52, abs=1e-12)
    assert store.labelled_images() == [0, 2] and store.unlabelled_images() == [1]


def test_add_images_needs_one_label_map_per_index() -> None:
    labels, contours = _truth()
    store = LabelStore.empty(_valid())
    with pytest.raises(ValueError):
        store.add_images([0, 1], labels[:1], contours[:1])


def test_add_regions_labels_windows_and_counts_overlap_once() -> None:
    labels, contours = _truth()
    store = LabelStore.empty(_valid())
    regions = [Region(0, 0, 0, 2, 3),  # rows 0-1, columns 0-2: 6 pixels
               Region(0, 1, 2, 2, 3),  # rows 1-2, columns 2-4: 6 pixels, (1, 2) shared with the first
               Region(2, 2, 2, 2, 3)]  # rows 2-3, columns 2-4 of the padded image: 2 real pixels
    store.add_regions(regions, _patches(regions, labels), _patches(regions, contours))
    expected = np.zeros((3, 4, 5), bool)
    expected[0, 0:2, 0:3] = expected[0, 1:3, 2:5] = expected[2, 2:4, 2] = True
    np.testing.assert_array_equal(store.labelled(), expected)
    np.testing.assert_array_equal(store.labels[expected], labels[expected])
    np.testing.assert_array_equal(store.contours[expected], contours[expected])
    assert (store.labels[~expected] == U).all() and (store.contours[~expected] == U).all()
    assert store.labelled_pixels() == 11 + 2  # 6 + 6 - 1 shared, plus 2 real pixels of image 2
    assert store.labelled_fraction() == pytest.approx(13 / 52, abs=1e-12)
    assert store.labelled_images() == [0, 2] and store.unlabelled_images() == [1]


def test_add_regions_with_masks_keeps_only_the_masked_pixels() -> None:
    store = LabelStore.empty(_valid())
    window = Region(1, 0, 0, 2, 2)
    diagonal = np.array([[True, False], [False, True]])
    ones, zeros = np.ones((2, 2), np.uint8), np.zeros((2, 2), np.uint8)
    store.add_regions([window], [ones], [zeros], masks=[diagonal])
    assert store.labels[1, :2, :2].tolist() == [[1, U], [U, 1]]
    assert store.contours[1, :2, :2].tolist() == [[0, U], [U, 0]]
    assert store.labelled_pixels() == 2
    # the other half of the window: its pixels are written, the diagonal labelled before is kept
    store.add_regions([window], [zeros], [ones], masks=[~diagonal])
    assert store.labels[1, :2, :2].tolist() == [[1, 0], [0, 1]]
    assert store.contours[1, :2, :2].tolist() == [[0, 1], [1, 0]]
    assert store.labelled_pixels() == 4 and (store.labels[1, 2:] == U).all() and (store.labels[1, :, 2:] == U).all()


def test_a_mask_over_padding_still_labels_only_real_pixels() -> None:
    store = LabelStore.empty(_valid())
    window = Region(2, 0, 2, 1, 2)  # row 0, columns 2 (real) and 3 (padding)
    store.add_regions([window], [np.ones((1, 2), np.uint8)], [np.ones((1, 2), np.uint8)],
                      masks=[np.ones((1, 2), bool)])
    assert store.labels[2, 0].tolist() == [U, U, 1, U, U]
    assert store.labelled_pixels() == 1


def test_add_regions_needs_one_patch_and_mask_per_region() -> None:
    store = LabelStore.empty(_valid())
    window, patch = Region(0, 0, 0, 2, 2), np.ones((2, 2), np.uint8)
    with pytest.raises(ValueError):
        store.add_regions([window, window], [patch], [patch])
    with pytest.raises(ValueError):
        store.add_regions([window], [patch], [patch], masks=[])


def test_add_segments_gives_every_pixel_its_class_and_leaves_contours_unlabelled() -> None:
    """Dominant-class superpixels: one class on the segment's real pixels, no contour target anywhere."""
    store = LabelStore.empty(_valid())
    store.add_images([0], _truth()[0][:1], _truth()[1][:1])
    l_shape = np.array([[True, False, False], [True, True, True]])  # rows 1-2, columns 1-3 of image 1
    over_padding = np.array([[True, True, True]])  # image 2, row 3, columns 2 (real), 3 and 4 (padding)
    store.add_segments([Region(1, 1, 1, 2, 3), Region(2, 3, 2, 1, 3)], np.array([1, 0]), [l_shape, over_padding])
    assert store.labels[1, 1:3, 1:4].tolist() == [[1, U, U], [1, 1, 1]]
    assert store.labels[2, 3].tolist() == [U, U, 0, U, U]  # padding stays unlabelled
    assert (store.contours[1:] == U).all()  # no contour label from a class click
    assert (store.contours[0] != U).all()  # the whole image's contours are untouched
    assert store.labelled_pixels() == 20 + 4 + 1 and store.labelled_images() == [0, 1, 2]
    with pytest.raises(ValueError, match="must be 0"):
        store.add_segments([Region(1, 0, 0, 1, 1)], [2], [np.ones((1, 1), bool)])
    with pytest.raises(ValueError, match="does not fit"):
        store.add_segments([Region(1, 0, 0, 1, 1)], [1], [np.ones((2, 1), bool)])
    with pytest.raises(ValueError):
        store.add_segments([Region(1, 0, 0, 1, 1)], [1, 0], [np.ones((1, 1), bool)])


def test_save_load_round_trip(tmp_path) -> None:
    labels, contours = _truth()
    store = LabelStore.empty(_valid())
    store.add_images([2], labels[2:], contours[2:])
    store.add_regions([Region(0, 1, 1, 2, 2)], [labels[0, 1:3, 1:3]], [contours[0, 1:3, 1:3]])
    path = tmp_path / "new" / "labels.npz"  # the folder is created
    store.save(path)
    back = LabelStore.load(path)
    for name in ("labels", "contours", "valid"):
        np.testing.assert_array_equal(getattr(back, name), getattr(store, name))
        assert getattr(back, name).dtype == getattr(store, name).dtype
    assert (back.labelled_pixels(), back.labelled_images()) == (12 + 4, [0, 2])
    assert sorted(p.name for p in path.parent.iterdir()) == ["labels.npz"]  # no temporary file left


def _one_line_error(path, advice: str = "restore it from a copy, or start a new run folder") -> str:
    with pytest.raises(RunStateError) as info:
        LabelStore.load(path, advice)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: the label store ") and message.endswith(advice)
    return message


def test_damaged_files_give_one_line_run_state_errors(tmp_path) -> None:
    store = LabelStore.empty(_valid())
    path = tmp_path / "labels.npz"
    store.save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert "is damaged or truncated" in _one_line_error(path)
    assert "is missing" in _one_line_error(tmp_path / "nowhere.npz")
    np.savez(path, labels=store.labels, valid=store.valid)
    assert "no 'contours' array" in _one_line_error(path, "start a new --out folder")


@pytest.mark.parametrize(("labels", "contours", "valid"), [
    (np.zeros((3, 4, 5), np.uint8), np.zeros((3, 4, 6), np.uint8), np.ones((3, 4, 5), bool)),  # shapes differ
    (np.zeros((3, 4, 5), np.float32), np.zeros((3, 4, 5), np.uint8), np.ones((3, 4, 5), bool)),  # float labels
    (np.zeros((3, 4, 5), np.uint8), np.zeros((3, 4, 5), np.uint8), np.ones((3, 4, 5), np.uint8)),  # valid not bool
    (np.zeros((4, 5), np.uint8), np.zeros((4, 5), np.uint8), np.ones((4, 5), bool)),  # not [N, H, W]
])
def test_arrays_that_do_not_fit_together_are_refused(tmp_path, labels, contours, valid) -> None:
    path = tmp_path / "labels.npz"
    np.savez(path, labels=labels, contours=contours, valid=valid)
    assert "do not form [N, H, W] uint8 labels and contours with a bool valid mask" in _one_line_error(path)
