"""Fair crop sampling: every labelled pixel in view equally often, whichever unit holds it."""

from __future__ import annotations

import pytest
import torch

from alseg_utils.crops import (
    anchor_weights,
    coverage_matrix,
    crop_batch,
    crops_per_epoch,
    labels_in_view,
    plan_crops,
)

H, W, CROP = 96, 144, [64, 96]


def test_coverage_matrix_by_brute_force() -> None:
    length, crop = 7, 3
    expected = torch.zeros(length, length, dtype=torch.float64)
    for p in range(length):
        offsets = [t for t in range(length - crop + 1) if t <= p <= t + crop - 1]
        for t in offsets:
            expected[p, t : t + crop] += 1.0 / len(offsets)
    assert torch.allclose(coverage_matrix(length, crop), expected)
    with pytest.raises(ValueError, match="smaller crop"):
        coverage_matrix(4, 5)


def test_labels_in_view_of_a_full_image_and_of_no_crop() -> None:
    labelled = torch.ones(1, 10, 12, dtype=torch.bool)
    assert torch.allclose(labels_in_view(labelled, [4, 6]), torch.full((1, 10, 12), 24.0, dtype=torch.float64))
    sparse = torch.zeros(2, 5, 5, dtype=torch.bool)
    sparse[0, :2, :2] = True
    sparse[1] = True
    no_crop = labels_in_view(sparse, [])
    assert no_crop[0, 0, 0] == 4 and no_crop[1, 0, 0] == 25
    # without cropping every image is drawn equally often: the weights of an image sum to 1
    assert torch.allclose(anchor_weights(sparse, []).sum((1, 2)), torch.ones(2, dtype=torch.float64))
    assert crops_per_epoch(sparse, []) == pytest.approx(2.0)


def _mixed_store(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """4 fully labelled images, 20 windows of 32x32 over 2 images, 10 elliptic 'superpixels' over 2 more.

    Returns (labelled [8, H, W] bool, kind [8, H, W] long: 1 full, 2 window, 3 superpixel, 0 none).
    """
    gen = torch.Generator().manual_seed(seed)
    labelled = torch.zeros(8, H, W, dtype=torch.bool)
    kind = torch.zeros(8, H, W, dtype=torch.long)
    labelled[:4], kind[:4] = True, 1
    for k in range(20):
        image = 4 + k % 2
        top, left = (int(torch.randint(0, n - 32, (1,), generator=gen)) for n in (H, W))
        labelled[image, top : top + 32, left : left + 32] = True
        kind[image, top : top + 32, left : left + 32] = 2
    yy, xx = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    for k in range(10):
        image = 6 + k % 2
        cy, cx = int(torch.randint(12, H - 12, (1,), generator=gen)), int(torch.randint(18, W - 18, (1,), generator=gen))
        blob = ((yy - cy) ** 2 / 150 + (xx - cx) ** 2 / 300) < 1
        labelled[image] |= blob
        kind[image][blob & (kind[image] == 0)] = 3
    return labelled, kind


def _views(plan, n: int) -> torch.Tensor:
    """Monte Carlo count of how often each pixel was inside a planned crop, [n, H, W]."""
    counts = torch.zeros(n, H, W)
    h, w = plan.size
    for i, t, l in zip(plan.images.flatten().tolist(), plan.tops.flatten().tolist(), plan.lefts.flatten().tolist()):
        counts[i, t : t + h, l : l + w] += 1
    return counts


def test_every_kind_of_labelled_pixel_is_seen_equally_often() -> None:
    """Monte Carlo of the real planning + cropping code: views per pixel within 15% across unit kinds."""
    labelled, kind = _mixed_store()
    plan = plan_crops(labelled, CROP, 1500, 4, torch.Generator().manual_seed(1))
    views = _views(plan, len(labelled))
    means = {k: float(views[(kind == k) & labelled].mean()) for k in (1, 2, 3)}
    overall = float(views[labelled].mean())
    assert all(abs(m / overall - 1) < 0.15 for m in means.values()), means
    # drawing images in proportion to labelled pixels, one anchor pixel uniform per image, fails it
    per_image = labelled.flatten(1).sum(1).double()
    gen = torch.Generator().manual_seed(1)
    images = torch.multinomial(per_image, 6000, replacement=True, generator=gen)
    old = torch.zeros(len(labelled), H, W)
    for i in images.tolist():
        ys, xs = labelled[i].nonzero(as_tuple=True)
        j = int(torch.randint(len(ys), (1,), generator=gen))
        top = min(max(0, int(ys[j]) - int(torch.randint(CROP[0], (1,), generator=gen))), H - CROP[0])
        left = min(max(0, int(xs[j]) - int(torch.randint(CROP[1], (1,), generator=gen))), W - CROP[1])
        old[i, top : top + CROP[0], left : left + CROP[1]] += 1
    old_full, old_window = float(old[kind == 1].mean()), float(old[(kind == 2) & labelled].mean())
    assert old_full / old_window > 1.3  # outside the 15% band: the test can tell the two rules apart


def test_crops_per_epoch_puts_each_pixel_in_view_once() -> None:
    labelled, _ = _mixed_store()
    z = crops_per_epoch(labelled, CROP)
    assert z == pytest.approx(float(anchor_weights(labelled, CROP).sum()))
    full = torch.ones(3, H, W, dtype=torch.bool)
    assert crops_per_epoch(full, CROP) == pytest.approx(3 * H * W / (CROP[0] * CROP[1]))
    plan = plan_crops(labelled, CROP, 2000, 4, torch.Generator().manual_seed(2))
    views = _views(plan, len(labelled))
    per_epoch = float(views[labelled].mean()) * z / (2000 * 4)
    assert per_epoch == pytest.approx(1.0, rel=0.05)


def test_plan_is_reproducible_inside_the_image_and_anchored_on_labels() -> None:
    labelled = torch.zeros(3, 20, 30, dtype=torch.bool)
    labelled[1, 19, 29] = True  # one labelled pixel in a corner
    labelled[2] = True
    a = plan_crops(labelled, [8, 10], 50, 3, torch.Generator().manual_seed(5))
    b = plan_crops(labelled, [8, 10], 50, 3, torch.Generator().manual_seed(5))
    assert torch.equal(a.images, b.images) and torch.equal(a.tops, b.tops) and torch.equal(a.lefts, b.lefts)
    assert not (a.images == 0).any()  # nothing labelled in image 0
    assert (a.tops >= 0).all() and (a.tops <= 12).all() and (a.lefts >= 0).all() and (a.lefts <= 20).all()
    corner = a.images == 1
    assert corner.any() and (a.tops[corner] == 12).all() and (a.lefts[corner] == 20).all()
    targets = labelled[:, None].expand(3, 2, 20, 30).to(torch.uint8)
    images = torch.zeros(3, 3, 20, 30)
    idx = a.images[0]
    x, y = crop_batch(images[idx], targets[idx], a.tops[0], a.lefts[0], a.size)
    assert x.shape == (3, 3, 8, 10) and y.shape == (3, 2, 8, 10)
    assert (y[:, 0].flatten(1).sum(1) >= 1).all()  # every crop holds its anchor


def test_plan_refuses_nothing_labelled_and_oversized_crops() -> None:
    with pytest.raises(ValueError, match="no pixel is labelled"):
        plan_crops(torch.zeros(2, 8, 8, dtype=torch.bool), [4, 4], 3, 2, torch.Generator())
    with pytest.raises(ValueError, match="smaller crop"):
        plan_crops(torch.ones(2, 8, 8, dtype=torch.bool), [9, 4], 3, 2, torch.Generator())


def test_no_crop_draws_images_uniformly() -> None:
    labelled = torch.zeros(3, 10, 10, dtype=torch.bool)
    labelled[0] = True
    labelled[1, :2, :2] = True
    labelled[2, 5, 5] = True
    plan = plan_crops(labelled, [], 3000, 1, torch.Generator().manual_seed(0))
    counts = torch.bincount(plan.images.flatten(), minlength=3).double()
    assert plan.size == [10, 10] and (abs(counts / 1000 - 1) < 0.1).all()
