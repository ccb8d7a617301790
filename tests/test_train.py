"""Tests of alseg_utils.train: masked loss, optimiser, training, restarts, validation, checkpoints."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

import alseg_utils.train as train_mod
from alseg_utils.config import UNLABELLED, ModelConfig, TrainConfig
from alseg_utils.errors import RunStateError
from alseg_utils.model import DCANOutput, build_model
from alseg_utils.train import (
    LabelledSet,
    TrainResult,
    aux_weight_at,
    dcan_loss,
    load_checkpoint,
    make_optimizer,
    masked_cross_entropy,
    predict_probs,
    restart_seed,
    save_checkpoint,
    train_model,
    train_with_restarts,
    validation_loss,
)

MODEL = ModelConfig(encoder="resnet18", decoder_channels=8, dropout=0.5, dropout_stages=[3, 4], output_stride=16)


def fast_train_cfg(**kw) -> TrainConfig:
    base = dict(iterations=3, batch_size=4, crop_size=[], learning_rate=1e-3, lr_decay_steps=100,
                aux_decay_every=20, rotation=10.0, brightness=0.05, device="cpu", amp=False, progress=False)
    base.update(kw)
    return TrainConfig(**base)


def blob_set(n: int, size: tuple[int, int] = (32, 32), seed: int = 0) -> LabelledSet:
    """Pink discs on dark noise; contour = inner boundary of the discs."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[:h, :w]
    images = rng.integers(0, 80, (n, h, w, 3)).astype(np.uint8)
    labels = np.zeros((n, h, w), np.uint8)
    for i in range(n):
        for _ in range(2):
            cy, cx, r = rng.integers(6, h - 6), rng.integers(6, w - 6), rng.integers(4, 8)
            labels[i][(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1
        images[i][labels[i] == 1] += np.array([150, 60, 120], np.uint8)
    contours = np.stack([lab ^ ndimage.binary_erosion(lab, iterations=2) for lab in labels]).astype(np.uint8)
    return LabelledSet(images, labels, contours)


# ---------------------------------------------------------------- loss


def test_aux_weight_schedule():
    cfg = TrainConfig(aux_weight=1.0, aux_decay=0.1, aux_decay_every=300)
    assert [aux_weight_at(i, cfg) for i in (0, 299, 300, 899, 900)] == pytest.approx([1, 1, 0.1, 0.01, 0.001])


def test_masked_cross_entropy_known_value_and_ignores_255():
    logits = torch.zeros(1, 2, 2, 2)
    logits[0, 1, 0, 0] = math.log(3.0)  # p(class 1) = 3/4 at pixel (0, 0)
    target = torch.tensor([[[1, 0], [255, 255]]])
    expected = (-math.log(0.75) + math.log(2.0)) / 2  # two labelled pixels
    assert masked_cross_entropy(logits, target).item() == pytest.approx(expected, abs=1e-6)
    logits2 = logits.clone()
    logits2[:, :, 1, :] = torch.randn(2, 2) * 10  # change only ignored pixels
    assert masked_cross_entropy(logits2, target).item() == pytest.approx(expected, abs=1e-6)


def test_gradient_is_zero_from_ignored_pixels():
    logits = torch.randn(2, 2, 5, 6, requires_grad=True)
    target = torch.randint(0, 2, (2, 5, 6))
    target[0, :2] = 255
    target[1, :, 3:] = 255
    masked_cross_entropy(logits, target).backward()
    ignored = (target == 255)[:, None].expand_as(logits)
    assert torch.all(logits.grad[ignored] == 0)
    assert torch.all(logits.grad[~ignored].abs() > 0)


def test_all_ignored_batch_gives_zero_not_nan():
    logits = torch.randn(1, 2, 3, 3, requires_grad=True)
    out = DCANOutput(logits, logits, [logits], [logits])
    target = torch.full((1, 3, 3), 255)
    loss = dcan_loss(out, target, target, aux_weight=1.0)
    loss.backward()
    assert loss.item() == 0.0 and torch.all(logits.grad == 0)


def test_dcan_loss_is_final_plus_weighted_aux():
    g = torch.Generator().manual_seed(0)
    t = lambda: torch.randn(2, 2, 4, 4, generator=g)  # noqa: E731
    out = DCANOutput(t(), t(), [t(), t()], [t(), t()])
    lab = torch.randint(0, 2, (2, 4, 4), generator=g)
    con = torch.randint(0, 2, (2, 4, 4), generator=g)
    ce = F.cross_entropy
    final = ce(out.object, lab) + ce(out.contour, con)
    aux = sum(ce(a, lab) for a in out.aux_object) + sum(ce(a, con) for a in out.aux_contour)
    assert dcan_loss(out, lab, con, 0.3).item() == pytest.approx((final + 0.3 * aux).item(), rel=1e-6)


def test_optimizer_decays_lr_and_weights_only():
    model = build_model(MODEL)
    cfg = TrainConfig(learning_rate=1e-2, lr_decay_rate=0.1, lr_decay_steps=4, weight_decay=1e-3)
    optimizer, scheduler = make_optimizer(model, cfg)
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 1e-3 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in decay["params"]) and all(p.ndim == 1 for p in no_decay["params"])
    for _ in range(4):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)


# ---------------------------------------------------------------- training


def test_training_lowers_loss_and_beats_constant_predictor():
    train, val = blob_set(8, seed=0), blob_set(4, seed=1)
    cfg = fast_train_cfg(iterations=40, learning_rate=3e-3)
    result = train_model(train, val, MODEL, cfg, seed=0)
    assert len(result.losses) == 40
    assert np.mean(result.losses[-5:]) < 0.6 * np.mean(result.losses[:5])
    # constant predictor: the class frequencies of the training labels, everywhere
    trivial = 0.0
    for tr, va in ((train.labels, val.labels), (train.contours, val.contours)):
        p = tr.mean()
        trivial += -np.mean(np.where(va == 1, np.log(p), np.log(1 - p)))
    assert result.val_loss < trivial
    assert not any(m.training for m in result.model.modules())


def test_training_is_deterministic_on_cpu_for_a_seed():
    train, val = blob_set(4, seed=0), blob_set(2, seed=1)
    cfg = fast_train_cfg(crop_size=[24, 24])
    a = train_model(train, val, MODEL, cfg, seed=3)
    b = train_model(train, val, MODEL, cfg, seed=3)
    c = train_model(train, val, MODEL, cfg, seed=4)
    assert a.losses == b.losses and a.val_loss == b.val_loss and a.losses != c.losses
    for (ka, va), (kb, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_partially_labelled_and_empty_validation():
    train = blob_set(2, seed=0)
    train.labels[:, :, :16] = 255
    train.contours[:, :, :16] = 255
    result = train_model(train, LabelledSet(*(a[:0] for a in (train.images, train.labels, train.contours))),
                         MODEL, fast_train_cfg(batch_size=2), seed=0)
    assert result.val_loss == pytest.approx(np.mean(result.losses[-10:]))


def test_empty_training_set_raises():
    empty = blob_set(1)
    empty = LabelledSet(empty.images[:0], empty.labels[:0], empty.contours[:0])
    with pytest.raises(ValueError, match="empty"):
        train_model(empty, empty, MODEL, fast_train_cfg(), seed=0)


def test_restarts_keep_lowest_validation_loss(monkeypatch):
    losses = {restart_seed(7, r): v for r, v in enumerate([0.5, 0.2, float("nan"), 0.2, 0.9])}
    calls = []

    def fake_train(train, val, model_cfg, train_cfg, seed):
        calls.append(seed)
        return TrainResult(model=None, val_loss=losses[seed], seed=seed, losses=[])

    monkeypatch.setattr(train_mod, "train_model", fake_train)
    best = train_with_restarts(None, None, MODEL, fast_train_cfg(), restarts=5, seed=7)
    assert calls == [restart_seed(7, r) for r in range(5)] and len(set(calls)) == 5
    assert best.val_loss == 0.2 and best.seed == restart_seed(7, 1)
    with pytest.raises(ValueError, match="restarts"):
        train_with_restarts(None, None, MODEL, fast_train_cfg(), restarts=0, seed=7)


def test_validation_loss_matches_manual_ce_and_predict_probs():
    torch.manual_seed(0)
    model = build_model(MODEL).eval()
    val = blob_set(3, seed=2)
    val.labels[0, :10] = 255
    x = torch.from_numpy(val.images).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        out = model(x)
    lab, con = torch.from_numpy(val.labels).long(), torch.from_numpy(val.contours).long()
    expected = F.cross_entropy(out.object, lab, ignore_index=255) + F.cross_entropy(out.contour, con)
    assert validation_loss(model, val, batch_size=2, device="cpu") == pytest.approx(expected.item(), rel=1e-5)
    obj, cont = predict_probs(model, val.images, batch_size=2)
    assert obj.shape == (3, 2, 32, 32) and obj.dtype == torch.float32 and obj.device.type == "cpu"
    torch.testing.assert_close(obj, out.object.softmax(1))
    torch.testing.assert_close(cont.sum(1), torch.ones(3, 32, 32))
    with pytest.raises(ValueError, match="uint8"):
        predict_probs(model, val.images.astype(np.float32), batch_size=2)


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = build_model(MODEL)
    path = tmp_path / "run" / "model.pt"
    save_checkpoint(model, path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.pt"]  # no temp file left
    torch.manual_seed(1)
    other = build_model(MODEL)
    assert not torch.equal(other.stem[0].weight, model.stem[0].weight)
    load_checkpoint(other, path)
    for (ka, va), (kb, vb) in zip(model.state_dict().items(), other.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    with pytest.raises(RunStateError, match="not found"):
        load_checkpoint(other, tmp_path / "missing.pt")
    with pytest.raises(RunStateError, match="does not match"):
        load_checkpoint(build_model(ModelConfig(encoder="resnet34", decoder_channels=8)), path)


def test_labelled_set_validation():
    s = blob_set(2)
    with pytest.raises(ValueError, match="uint8"):
        LabelledSet(s.images, s.labels.astype(np.int64), s.contours)
    with pytest.raises(ValueError, match="contours"):
        LabelledSet(s.images, s.labels, s.contours[:1])
    with pytest.raises(ValueError, match="only 0, 1 or 255"):
        LabelledSet(s.images, s.labels * 2, s.contours)
    with pytest.raises(ValueError, match=r"\[N, H, W, 3\]"):
        LabelledSet(s.images[..., :1], s.labels, s.contours)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_amp_training_runs():
    train, val = blob_set(4, seed=0), blob_set(2, seed=1)
    result = train_model(train, val, MODEL, fast_train_cfg(device="cuda", amp=True, iterations=5), seed=0)
    assert all(math.isfinite(v) for v in result.losses) and math.isfinite(result.val_loss)
    obj, _ = predict_probs(result.model, val.images, batch_size=2)
    assert obj.device.type == "cpu" and obj.dtype == torch.float32


def test_epoch_budget_follows_the_labelled_set_and_caps() -> None:
    from alseg_utils.train import training_budget

    cfg = TrainConfig(iterations=1000, epochs=10, batch_size=4, lr_decay_epochs=5, aux_decay_epochs=2)
    small, large = training_budget(cfg, 8.0), training_budget(cfg, 80.0)
    assert (small.iterations, large.iterations) == (20, 200)  # 10 epochs of 8 / 80 crops, batch 4
    assert (large.lr_decay_steps, large.aux_decay_every, large.epoch) == (100.0, 40.0, 20.0)
    assert training_budget(cfg, 8000.0).iterations == 1000  # the ceiling
    floored = TrainConfig(iterations=1000, epochs=10, batch_size=4, min_iterations=50)
    assert training_budget(floored, 8.0).iterations == 50 and training_budget(floored, 80.0).iterations == 200
    fixed = training_budget(TrainConfig(iterations=7, lr_decay_steps=3, aux_decay_every=2), 1e6)
    assert (fixed.iterations, fixed.lr_decay_steps, fixed.aux_decay_every) == (7, 3.0, 2.0)
    constant = training_budget(TrainConfig(epochs=1, batch_size=1), 3.0)
    assert constant.lr_decay_steps == math.inf and aux_weight_at(10**6, TrainConfig(), constant.aux_decay_every) == 1.0


def test_weight_average_warms_up_and_averages_buffers() -> None:
    from alseg_utils.train import WeightAverage

    net = torch.nn.BatchNorm1d(1)
    avg = WeightAverage(net, decay=0.5)
    with torch.no_grad():
        net.weight.fill_(3.0)
        net.running_mean.fill_(2.0)
    avg.update(net)  # decay min(0.5, 1/10) = 0.1: 0.1 * old + 0.9 * new
    assert avg.state["weight"].item() == pytest.approx(0.1 * 1.0 + 0.9 * 3.0)
    assert avg.state["running_mean"].item() == pytest.approx(0.9 * 2.0)
    for _ in range(50):
        avg.update(net)
    assert avg.copy_to(torch.nn.BatchNorm1d(1)).weight.item() == pytest.approx(3.0, abs=1e-6)


def test_ema_training_is_deterministic_and_differs_from_the_last_weights() -> None:
    train, val = blob_set(3, seed=0), blob_set(2, seed=1)
    a = train_model(train, val, MODEL, fast_train_cfg(iterations=6, ema_decay=0.9), seed=3)
    b = train_model(train, val, MODEL, fast_train_cfg(iterations=6, ema_decay=0.9), seed=3)
    c = train_model(train, val, MODEL, fast_train_cfg(iterations=6), seed=3)
    assert a.val_loss == b.val_loss and a.losses == c.losses  # the average does not change the training
    assert a.val_loss != c.val_loss


def test_plateau_stop_keeps_the_lowest_validation_loss_and_stops_after_patience(monkeypatch) -> None:
    """A scripted validation curve: the stop comes ``patience`` steps after its minimum, whose weights are kept."""
    train, val = blob_set(4, seed=0), blob_set(2, seed=1)
    curve = iter([1.0, 0.8, 0.5, 0.6, 0.7, 0.9, 0.4, 0.3])  # one value per check (every 2 steps)
    seen: list[float] = []

    def scripted(model, val_set, batch_size, device=None):
        model.eval()
        value = next(curve)
        seen.append(value)
        with torch.no_grad():  # mark the weights with the value, to find out which were kept
            model.object_head[0].up.bias.fill_(value)
        return value

    monkeypatch.setattr(train_mod, "validation_loss", scripted)
    cfg = fast_train_cfg(iterations=100, epochs=100, batch_size=4, patience_epochs=3, val_every=2)
    result = train_model(train, val, MODEL, cfg, seed=0)  # 1 step per epoch: patience 3 epochs = 3 steps
    assert seen == [1.0, 0.8, 0.5, 0.6, 0.7]  # minimum at step 6; steps 8 and 10 do not improve; 10 - 6 >= 3
    assert (result.iterations, result.best_iteration, result.val_loss) == (10, 6, 0.5)
    assert len(result.losses) == 10
    assert float(result.model.object_head[0].up.bias[0].detach()) == 0.5  # the weights of the lowest loss
    assert not any(m.training for m in result.model.modules())


def test_no_plateau_stop_before_the_start_but_the_lowest_loss_of_the_whole_training_is_kept(monkeypatch) -> None:
    """An early, transient minimum does not end a training before ``plateau_start_epochs``."""
    train, val = blob_set(4, seed=0), blob_set(2, seed=1)
    curve = iter([0.5, 0.9, 0.8, 0.7, 0.6, 0.55, 0.52, 0.6, 0.7, 0.8])  # every 2 steps: a minimum at step 2
    seen: list[float] = []

    def scripted(model, val_set, batch_size, device=None):
        model.eval()
        seen.append(value := next(curve))
        with torch.no_grad():
            model.object_head[0].up.bias.fill_(value)
        return value

    monkeypatch.setattr(train_mod, "validation_loss", scripted)
    cfg = fast_train_cfg(iterations=100, epochs=100, batch_size=4, patience_epochs=3, val_every=2,
                         plateau_start_epochs=11)
    result = train_model(train, val, MODEL, cfg, seed=0)  # 1 step per epoch: start at step 11
    assert len(seen) == 6  # without the start it would stop at step 6 (6 - 2 >= 3); the first check >= 11 is 12
    assert (result.iterations, result.best_iteration, result.val_loss) == (12, 2, 0.5)
    assert float(result.model.object_head[0].up.bias[0].detach()) == 0.5


def test_plateau_stop_with_ema_is_deterministic_and_checks_the_averaged_weights() -> None:
    train, val = blob_set(4, seed=0), blob_set(2, seed=1)
    cfg = fast_train_cfg(iterations=40, epochs=40, batch_size=4, patience_epochs=4, val_every=2, ema_decay=0.9,
                         learning_rate=3e-3)
    a, b = (train_model(train, val, MODEL, cfg, seed=1) for _ in range(2))
    assert (a.iterations, a.best_iteration, a.val_loss) == (b.iterations, b.best_iteration, b.val_loss)
    assert a.best_iteration <= a.iterations <= 40 and a.best_iteration % 2 == 0
    assert a.iterations == 40 or a.iterations - a.best_iteration >= 4
    assert validation_loss(a.model, val, 4) == pytest.approx(a.val_loss)  # the kept weights give the kept loss
    # a run without stopping follows the same steps up to where the stopped one ended
    full = train_model(train, val, MODEL, fast_train_cfg(iterations=40, epochs=40, batch_size=4, ema_decay=0.9,
                                                         learning_rate=3e-3), seed=1)
    assert full.losses[: a.iterations] == a.losses and full.best_iteration == 40


def test_narrow_encoder_has_a_quarter_of_the_convolution_weights() -> None:
    wide = build_model(ModelConfig(encoder="resnet10", decoder_channels=8, output_stride=32))
    narrow = build_model(ModelConfig(encoder="resnet10", decoder_channels=8, output_stride=32, width=32))

    def encoder_weights(model):
        return sum(p.numel() for n, p in model.named_parameters() if n.startswith(("stem", "layer")))

    assert encoder_weights(narrow) / encoder_weights(wide) == pytest.approx(0.25, rel=0.02)
    out = narrow(torch.rand(2, 3, 64, 96))
    assert out.object.shape == (2, 2, 64, 96)
    assert [m.out_channels for m in narrow.modules() if isinstance(m, torch.nn.Conv2d)][0] == 32


def test_validation_curves_replay_matches_a_real_plateau_stop() -> None:
    """benchmarks.validation_curves replays PlateauStop's rule on a recorded curve: same stop, same kept loss."""
    from benchmarks.validation_curves import plateau_stop

    train, val = blob_set(4, seed=0), blob_set(2, seed=1)
    long_run = fast_train_cfg(iterations=30, epochs=30, batch_size=4, patience_epochs=300, val_every=2,
                              ema_decay=0.9, learning_rate=3e-3)
    curve = train_model(train, val, MODEL, long_run, seed=2).val_checks  # never stops early: the whole curve
    assert [s for s, _ in curve] == list(range(2, 31, 2))
    for patience in (2, 4):
        cfg = fast_train_cfg(iterations=30, epochs=30, batch_size=4, patience_epochs=patience, val_every=2,
                             ema_decay=0.9, learning_rate=3e-3)
        real = train_model(train, val, MODEL, cfg, seed=2)
        assert plateau_stop(curve, 1.0, patience, 30, 2) == (real.iterations, real.val_loss)
        late = train_model(train, val, MODEL, replace(cfg, plateau_start_epochs=13.0), seed=2)
        assert plateau_stop(curve, 1.0, patience, 30, 2, start=13.0) == (late.iterations, late.val_loss)
        assert late.iterations >= 14


def test_training_normaliser_weighs_every_labelled_pixel_alike() -> None:
    logits, target = torch.randn(2, 2, 4, 4), torch.randint(0, 2, (2, 4, 4))
    target[1] = 255  # the second crop holds no label
    total = F.cross_entropy(logits, target, ignore_index=255, reduction="sum")
    assert masked_cross_entropy(logits, target) == pytest.approx(float(total / 16))  # the batch's 16 labels
    assert masked_cross_entropy(logits, target, 32.0) == pytest.approx(float(total / 32))  # a fixed constant
    # fully labelled images of one size: the training's constant is every batch's count, so nothing changes
    train, val = blob_set(4, seed=0), blob_set(2, seed=1)
    batch = train_model(train, val, MODEL, fast_train_cfg(iterations=4, rotation=0.0), seed=0)  # no rotated corners
    constant = train_model(train, val, MODEL, fast_train_cfg(iterations=4, rotation=0.0, loss_normaliser="training"),
                           seed=0)
    assert batch.losses == constant.losses
    # windows only on some images: the two normalisers differ
    train.labels[2:, :, 8:] = 255
    train.contours[2:, :, 8:] = 255
    batch = train_model(train, val, MODEL, fast_train_cfg(iterations=4), seed=0)
    constant = train_model(train, val, MODEL, fast_train_cfg(iterations=4, loss_normaliser="training"), seed=0)
    assert batch.losses != constant.losses


def test_labelled_in_crops_counts_each_crop() -> None:
    from alseg_utils.crops import labelled_in_crops, plan_crops

    g = torch.Generator().manual_seed(0)
    labelled = torch.rand(5, 20, 30, generator=g) > 0.7
    plan = plan_crops(labelled, [8, 12], 7, 3, g)
    expected = torch.tensor([[int(labelled[plan.images[i, b], plan.tops[i, b]:plan.tops[i, b] + 8,
                                               plan.lefts[i, b]:plan.lefts[i, b] + 12].sum()) for b in range(3)]
                             for i in range(7)])
    assert torch.equal(labelled_in_crops(labelled, plan), expected)


def test_convergence_check_stretches_every_epoch_setting_of_a_training() -> None:
    """benchmarks.convergence's "twice the budget": ceiling, floor, patience, plateau start and schedules x2."""
    from alseg_utils.config import load_config
    from benchmarks.convergence import stretched

    cfg = load_config("params/quick.yaml", {
        "train.epochs": 60, "train.min_iterations": 100, "train.lr_decay_epochs": 40, "train.aux_decay_epochs": 10,
        "train.patience_epochs": 15, "train.plateau_start_epochs": 20})
    t = stretched(cfg, 2.0).train
    assert (t.epochs, t.min_iterations, t.lr_decay_epochs, t.aux_decay_epochs, t.patience_epochs,
            t.plateau_start_epochs) == (120, 200, 80, 20, 30, 40)
    assert cfg.train.epochs == 60  # the original is left as it was


def test_learning_rate_follows_the_labels_of_each_batch() -> None:
    """``lr_by_labels``: the rate of step t is the schedule's x step_scale[t]; fully labelled sets are unchanged."""
    model = build_model(MODEL)
    cfg = fast_train_cfg(learning_rate=0.01, lr_decay_rate=0.1, lr_decay_steps=10)
    scale = torch.tensor([1.0, 0.25, 0.5])
    optimizer, scheduler = make_optimizer(model, cfg, step_scale=scale)
    rates = []
    for _ in range(4):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx([0.01, 0.01 * 0.1 ** 0.1 * 0.25, 0.01 * 0.1 ** 0.2 * 0.5, 0.01 * 0.1 ** 0.3])
    train, val = blob_set(4, seed=0), blob_set(2, seed=1)
    plain = train_model(train, val, MODEL, fast_train_cfg(iterations=4, rotation=0.0), seed=0)
    scaled = train_model(train, val, MODEL, fast_train_cfg(iterations=4, rotation=0.0, lr_by_labels=True), seed=0)
    assert scaled.losses == plain.losses  # every batch fully labelled: scale 1
    half = LabelledSet(train.images, train.labels.copy(), train.contours.copy())
    half.labels[:, :16], half.contours[:, :16] = UNLABELLED, UNLABELLED  # the top half of every image unlabelled
    a = train_model(half, val, MODEL, fast_train_cfg(iterations=3, rotation=0.0), seed=0)
    b = train_model(half, val, MODEL, fast_train_cfg(iterations=3, rotation=0.0, lr_by_labels=True), seed=0)
    assert a.losses[0] == b.losses[0] and a.losses[1:] != b.losses[1:]  # same start, half-size steps after


def test_constant_prediction_floor_is_the_entropy_of_each_heads_class_frequencies() -> None:
    from benchmarks.training_options import constant_val_loss

    labels = np.zeros((2, 4, 4), np.uint8)
    labels[:, :2] = 1  # half object
    contours = np.full((2, 4, 4), UNLABELLED, np.uint8)
    contours[:, 0] = 1
    contours[:, 1:3] = 0  # a third of the labelled contour pixels are contour; the last row is unlabelled
    val = LabelledSet(np.zeros((2, 4, 4, 3), np.uint8), labels, contours)
    p = 1 / 3
    assert constant_val_loss(val) == pytest.approx(math.log(2) - (p * math.log(p) + (1 - p) * math.log(1 - p)))
