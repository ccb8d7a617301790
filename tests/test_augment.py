"""Tests of alseg_utils.augment: images and label maps stay aligned; crops, rotation, brightness."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from alseg_utils.augment import _random_crop, augment_batch, augment_crops, rotate_batch
from alseg_utils.config import UNLABELLED, TrainConfig


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    h=st.integers(6, 20),
    w=st.integers(6, 20),
    crop=st.booleans(),
    rotation=st.sampled_from([0.0, 30.0, 180.0]),
)
def test_augmentation_keeps_images_and_labels_aligned(seed, h, w, crop, rotation):
    rng = np.random.default_rng(seed)
    labels = torch.from_numpy(rng.choice([0, 1, 255], size=(3, 2, h, w)).astype(np.uint8))
    # channels 0 and 1 encode the two label maps, channel 2 marks "inside the original image"
    images = torch.cat([labels.float() / 255.0, torch.ones(3, 1, h, w)], 1)
    crop_size = [int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))] if crop else []
    cfg = TrainConfig(crop_size=crop_size, flips=True, rotation=rotation, brightness=0.0)
    gen = torch.Generator().manual_seed(seed)
    aug_images, aug_labels = augment_batch(images, labels, cfg, gen, image_mode="nearest")
    assert aug_labels.dtype == torch.uint8 and aug_images.shape[-2:] == aug_labels.shape[-2:]
    if crop_size:
        assert list(aug_labels.shape[-2:]) == crop_size
    inside = aug_images[:, 2:] == 1  # [B, 1, h, w]
    decoded = (aug_images[:, :2] * 255).round().to(torch.uint8)
    assert torch.equal(torch.where(inside, decoded, 255), aug_labels)
    assert torch.all(aug_images[:, :2][~inside.expand(-1, 2, -1, -1)] == 0)  # rotated-in area is zero


def test_rotation_marks_outside_as_ignored_and_bilinear_mostly_agrees():
    labels = torch.zeros(1, 1, 40, 60, dtype=torch.uint8)
    labels[..., 10:30, 20:45] = 1
    images = labels.float().expand(1, 3, 40, 60).contiguous()
    rot_images, rot_labels = rotate_batch(images, labels, torch.tensor([25.0]))
    assert (rot_labels == 255).sum() > 0 and rot_labels[0, 0, 20, 30] == 1  # centre stays labelled
    valid = rot_labels != 255
    agree = (rot_images[:, :1].round() == rot_labels.float())[valid].float().mean()
    assert agree > 0.97
    same_images, same_labels = rotate_batch(images, labels, torch.tensor([0.0]))
    assert torch.equal(same_labels, labels) and torch.allclose(same_images, images, atol=1e-5)


def test_brightness_shifts_each_image_by_a_constant():
    images = torch.full((4, 3, 5, 5), 0.5)
    labels = torch.zeros(4, 2, 5, 5, dtype=torch.uint8)
    cfg = TrainConfig(crop_size=[], flips=False, rotation=0.0, brightness=0.2)
    out, out_labels = augment_batch(images, labels, cfg, torch.Generator().manual_seed(1))
    shift = out - 0.5
    assert torch.allclose(shift, shift[:, :1, :1, :1].expand_as(shift))
    assert shift.abs().max() <= 0.2 and shift.abs().max() > 0 and torch.equal(out_labels, labels)


def test_crop_larger_than_image_raises():
    cfg = TrainConfig(crop_size=[10, 10])
    with pytest.raises(ValueError, match="crop_size"):
        augment_batch(torch.rand(1, 3, 8, 12), torch.zeros(1, 2, 8, 12, dtype=torch.uint8), cfg, torch.Generator())


def test_crop_of_a_partly_labelled_image_keeps_a_labelled_pixel() -> None:
    targets = torch.full((6, 2, 20, 30), 255, dtype=torch.uint8)
    targets[:, :, 19, 29] = 1  # one labelled pixel in the corner
    images = torch.zeros(6, 3, 20, 30)
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        _, cropped = _random_crop(images, targets, [8, 10], gen)
        assert ((cropped[:, 0] != 255).flatten(1).sum(1) == 1).all()


def test_flips_mirror_each_sample_and_its_labels_together():
    images = torch.rand(8, 3, 2, 3, generator=torch.Generator().manual_seed(0))  # [B, 3, 2, 3]
    labels = torch.arange(6, dtype=torch.uint8).view(1, 1, 2, 3).repeat(8, 2, 1, 1)  # [B, K, 2, 3], all distinct
    cfg = TrainConfig(crop_size=[], flips=True, rotation=0.0, brightness=0.0)
    out, out_labels = augment_crops(images, labels, cfg, torch.Generator().manual_seed(0))
    mirrors = (lambda x: x, lambda x: x.flip(-1), lambda x: x.flip(-2), lambda x: x.flip(-1).flip(-2))
    chosen = []
    for b in range(8):
        kinds = [k for k, mirror in enumerate(mirrors) if torch.equal(out[b], mirror(images[b]))]
        assert kinds and torch.equal(out_labels[b], mirrors[kinds[0]](labels[b]))
        chosen.append(kinds[0])
    assert len(set(chosen)) > 1  # flips really happen, and not to every sample alike


def test_rotated_in_pixels_are_unlabelled():
    labels = torch.ones(1, 1, 10, 10, dtype=torch.uint8)
    _, rotated = rotate_batch(torch.ones(1, 3, 10, 10), labels, torch.tensor([45.0]))
    assert rotated[0, 0, 0, 0] == UNLABELLED and rotated[0, 0, 5, 5] == 1
