"""Training-time augmentation, applied identically to images and their label maps.

:func:`augment_crops` draws, per sample and in this order, a left-right and an up-down flip (each
with probability 1/2), an additive brightness shift uniform in ``[-brightness, brightness]``
(clipped to [0, 1]) and a rotation uniform in ``[-rotation, rotation]`` degrees about the centre
(:func:`rotate_batch`: bilinear for images, nearest for labels; pixels rotated in from outside
the image are zero in the image and :data:`~alseg_utils.config.UNLABELLED` in the labels, so the
loss ignores them). :func:`augment_batch` first takes one random crop per sample that keeps a
labelled pixel in view. Training itself draws its crops with the fair sampler of
:mod:`alseg_utils.crops` and then calls :func:`augment_crops`. The only source of randomness is an
explicit CPU ``torch.Generator``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from alseg_utils.config import UNLABELLED, TrainConfig


def _random_crop(
    images: Tensor, targets: Tensor, size: list[int], generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Crop every sample at its own random offset (the same window for image and targets).

    A partly labelled sample (region acquisition) is cropped around one of its labelled pixels,
    drawn uniformly, so a crop never wastes an iteration on a sample with no label in view.

    Args:
        images: [B, 3, H, W], float.
        targets: [B, K, H, W], any dtype (label maps).
        size: [h, w] of the crop; empty list = no crop.
        generator: CPU generator for the offsets.

    Returns:
        Cropped images [B, 3, h, w] and targets [B, K, h, w].

    Raises:
        ValueError: the crop is larger than the images.
    """
    if not size:
        return images, targets
    (h, w), (H, W) = size, images.shape[-2:]
    if h > H or w > W:
        raise ValueError(
            f"train.crop_size {size} is larger than the training images ({H}x{W}); use a smaller crop"
        )
    tops = torch.randint(0, H - h + 1, (len(images),), generator=generator).tolist()
    lefts = torch.randint(0, W - w + 1, (len(images),), generator=generator).tolist()
    for b in range(len(images)):
        labelled = (targets[b, 0] != UNLABELLED).nonzero()  # [P, 2]
        if 0 < len(labelled) < H * W:  # partly labelled (regions): keep a labelled pixel in the crop
            y, x = labelled[int(torch.randint(len(labelled), (1,), generator=generator))].tolist()
            tops[b] = _offset_covering(y, h, H, generator)
            lefts[b] = _offset_covering(x, w, W, generator)
    images = torch.stack([im[:, top : top + h, left : left + w]
                          for im, top, left in zip(images, tops, lefts, strict=True)])
    targets = torch.stack([tg[:, top : top + h, left : left + w]
                           for tg, top, left in zip(targets, tops, lefts, strict=True)])
    return images, targets


def _offset_covering(pixel: int, crop: int, length: int, generator: torch.Generator) -> int:
    """A uniform crop offset among those whose window of ``crop`` pixels contains ``pixel``."""
    low, high = max(0, pixel - crop + 1), min(pixel, length - crop)
    return low + int(torch.randint(high - low + 1, (1,), generator=generator))


def _random_flips(images: Tensor, targets: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Flip each sample left-right and up-down, each with probability 1/2 (images and targets alike)."""
    for dim in (-1, -2):
        flip = (torch.rand(len(images), generator=generator) < 0.5).to(images.device)  # [B]
        images = torch.where(flip[:, None, None, None], images.flip(dim), images)
        targets = torch.where(flip[:, None, None, None], targets.flip(dim), targets)
    return images, targets


def rotate_batch(
    images: Tensor, targets: Tensor, degrees: Tensor, image_mode: str = "bilinear"
) -> tuple[Tensor, Tensor]:
    """Rotate every sample about its centre; pixels rotated in from outside become ignored.

    Args:
        images: [B, C, H, W], float; outside pixels become 0 (like the zero padding of GlaS).
        targets: [B, K, H, W], integer label maps; resampled with nearest neighbour.
        degrees: [B], angle of each sample, degrees.
        image_mode: ``"bilinear"`` (training) or ``"nearest"`` for the images.

    Returns:
        Rotated images [B, C, H, W] and targets [B, K, H, W] (same dtype, 255 outside the image).
    """
    B, _, H, W = images.shape
    a = degrees.to(images.device, torch.float32) * (math.pi / 180.0)  # [B]
    c, s, zero = torch.cos(a), torch.sin(a), torch.zeros_like(a)
    rows = [torch.stack([c, -s * H / W, zero], 1), torch.stack([s * W / H, c, zero], 1)]  # 2 x [B, 3]
    theta = torch.stack(rows, 1)  # [B, 2, 3], output -> input coordinates (aspect-corrected)
    grid = F.affine_grid(theta, [B, 1, H, W], align_corners=False)  # [B, H, W, 2]
    images = F.grid_sample(images, grid, mode=image_mode, padding_mode="zeros", align_corners=False)
    ones = torch.ones_like(targets[:, :1], dtype=torch.float32)  # [B, 1, H, W]
    warped = F.grid_sample(torch.cat([targets.float(), ones], 1), grid, mode="nearest", align_corners=False)
    inside = warped[:, -1:] > 0.5  # [B, 1, H, W]
    targets = torch.where(inside, warped[:, :-1], float(UNLABELLED)).round().to(targets.dtype)
    return images, targets


def augment_batch(
    images: Tensor, targets: Tensor, cfg: TrainConfig, generator: torch.Generator, image_mode: str = "bilinear"
) -> tuple[Tensor, Tensor]:
    """Random crop, flips, brightness and rotation, applied identically to images and label maps.

    Args:
        images: [B, 3, H, W], float in [0, 1].
        targets: [B, K, H, W], integer label maps (object, contour) in {0, 1, 255}.
        cfg: ``crop_size``, ``flips``, ``brightness`` (max additive shift), ``rotation`` (max degrees).
        generator: CPU generator; the only source of randomness here.
        image_mode: interpolation of the images under rotation (targets are always nearest).

    Returns:
        Augmented images [B, 3, h, w] in [0, 1] and targets [B, K, h, w] (255 where rotated in).
    """
    images, targets = _random_crop(images, targets, cfg.crop_size, generator)
    return augment_crops(images, targets, cfg, generator, image_mode)


def augment_crops(
    images: Tensor, targets: Tensor, cfg: TrainConfig, generator: torch.Generator, image_mode: str = "bilinear"
) -> tuple[Tensor, Tensor]:
    """Flips, brightness and rotation of crops, applied identically to images and label maps.

    Args:
        images: [B, 3, h, w], float in [0, 1].
        targets: [B, K, h, w], integer label maps (object, contour) in {0, 1, 255}.
        cfg: ``flips``, ``brightness`` (max additive shift), ``rotation`` (max degrees).
        generator: CPU generator; the only source of randomness here.
        image_mode: interpolation of the images under rotation (targets are always nearest).

    Returns:
        Augmented images [B, 3, h, w] in [0, 1] and targets [B, K, h, w] (255 where rotated in).
    """
    if cfg.flips:
        images, targets = _random_flips(images, targets, generator)
    if cfg.brightness > 0:
        shift = (torch.rand(len(images), generator=generator) * 2 - 1) * cfg.brightness  # [B]
        images = (images + shift.to(images.device)[:, None, None, None]).clamp(0, 1)
    if cfg.rotation > 0:
        degrees = (torch.rand(len(images), generator=generator) * 2 - 1) * cfg.rotation  # [B]
        images, targets = rotate_batch(images, targets, degrees, image_mode)
    return images, targets
