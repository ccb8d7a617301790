"""Training from scratch on (partially) labelled images: loss of Eq. 9, optimiser, restarts.

Label maps are uint8 with :data:`~alseg_utils.config.UNLABELLED` (255) where nobody labelled; those
pixels are ignored by every loss, so only human-labelled pixels are back-propagated (region
acquisition leaves most of an image unlabelled). Each batch is augmented by
:func:`alseg_utils.augment.augment_crops` (flips, brightness, rotation).

Eq. 9 is ``L = lambda * psi(theta) + w * L_aux + L_e``. :func:`dcan_loss` returns ``w * L_aux + L_e``
(cross-entropy of the fused object and contour outputs, plus ``w`` times the cross-entropy of every
side output). The L2 term is left to the optimiser: Adam's ``weight_decay=lambda`` adds
``lambda * theta`` to each gradient, which is exactly the gradient of ``lambda * ||theta||^2 / 2``
(TensorFlow's ``l2_loss``, what the authors used). As in TF-slim, it applies to convolution weights
only, not to biases or batch-norm parameters.

Budget: a fixed number of optimizer steps (``train.iterations``), or, with ``train.epochs > 0``, a
number that follows the labelled data as the authors' code did: ``epochs`` epochs of
:func:`alseg_utils.crops.crops_per_epoch` crops each (an epoch puts every labelled pixel in view
once, in expectation), at least ``train.min_iterations`` and at most ``train.iterations``
(:func:`training_budget`). The decay schedules are in epochs too, so they stretch with the budget. Which crops are drawn
is :mod:`alseg_utils.crops`: every labelled pixel is seen equally often in expectation, whether it
sits in a full image, a window or a superpixel.

Optimiser: Adam with ``lr * lr_decay_rate ** (iteration / decay_steps)`` (exponential decay), where
``decay_steps`` is ``lr_decay_steps`` or ``lr_decay_epochs`` epochs. The auxiliary weight follows
``w = aux_weight * aux_decay ** floor(iteration / every)`` with ``every`` = ``aux_decay_every`` or
``aux_decay_epochs`` epochs (:func:`aux_weight_at`; the authors used 0.1 ** floor(epoch / 300)).
With ``ema_decay > 0`` the model returned (validated, predicted with) is the exponential moving
average of the weights and batch-norm statistics (:class:`WeightAverage`).

Each cross-entropy is a mean over the batch's labelled pixels (the authors' choice), or, with
``train.loss_normaliser: training``, the sum divided by one constant per training (the mean labelled
pixels of a batch, :func:`alseg_utils.crops.labelled_in_crops`), so that a window pixel in a batch of
windows weighs no more than a pixel of a fully labelled image. With ``train.lr_by_labels`` the
learning rate of each step is scaled by its batch's labelled share (labelled pixels / (batch size x crop
pixels)): Adam's step does not depend on the scale of the loss, so this is what makes a batch of small
windows move the weights less than a batch of fully labelled crops.

Convergence (``train.patience_epochs > 0``, the paper's "retrain until it converges"): every
``train.val_every`` steps the weights that would be returned are scored on the validation set;
training stops once that loss has not improved for ``patience_epochs`` epochs (at least one check),
but not before ``plateau_start_epochs`` epochs, or at the budget, which is then the ceiling. The
weights of the lowest validation loss are returned (:class:`PlateauStop`). Every labelled set, small
or large, thus trains until its own validation loss stops falling, instead of for a number of epochs
chosen on one set.
"""

from __future__ import annotations

import copy
import math
import sys
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from alseg_utils.augment import augment_crops
from alseg_utils.config import UNLABELLED, ModelConfig, TrainConfig
from alseg_utils.crops import crop_batch, crops_per_epoch, labelled_in_crops, plan_crops
from alseg_utils.devices import amp_dtype, model_device, resolve_device
from alseg_utils.model import DCAN, DCANOutput, build_model
from alseg_utils.run_folder import load_checkpoint, save_checkpoint  # noqa: F401 - moved there, re-exported


@dataclass
class LabelledSet:
    """Images with (possibly partial) object and contour label maps.

    Attributes:
        images: RGB images, [N, H, W, 3], uint8.
        labels: object labels, [N, H, W], uint8 in {0, 1, 255}; 255 = not labelled (ignored).
        contours: contour labels, [N, H, W], uint8 in {0, 1, 255}.
    """

    images: np.ndarray
    labels: np.ndarray
    contours: np.ndarray

    def __post_init__(self) -> None:
        n, h, w = self.labels.shape[:3] if self.labels.ndim == 3 else (-1, -1, -1)
        if self.images.ndim != 4 or self.images.shape[3] != 3 or self.images.shape[:3] != (n, h, w):
            raise ValueError(
                f"LabelledSet: images {self.images.shape} must be [N, H, W, 3] and labels "
                f"{self.labels.shape} [N, H, W] with the same N, H, W"
            )
        if self.contours.shape != self.labels.shape:
            raise ValueError(f"LabelledSet: contours {self.contours.shape} must match labels {self.labels.shape}")
        for name in ("images", "labels", "contours"):
            if getattr(self, name).dtype != np.uint8:
                raise ValueError(f"LabelledSet: {name} must be uint8, got {getattr(self, name).dtype}")
        for name in ("labels", "contours"):
            values = getattr(self, name)
            if np.any((values > 1) & (values != UNLABELLED)):
                raise ValueError(f"LabelledSet: {name} must hold only 0, 1 or 255 (not labelled)")

    def __len__(self) -> int:
        """Number of images."""
        return len(self.images)


@dataclass
class TrainResult:
    """One trained model and how it got there."""

    model: DCAN
    val_loss: float
    seed: int
    losses: list[float] = field(default_factory=list)  # training loss (Eq. 9 without L2) per iteration
    iterations: int = 0  # optimizer steps taken
    best_iteration: int = 0  # step whose weights were kept (= iterations unless stopped on a plateau)
    val_checks: list[tuple[int, float]] = field(default_factory=list)  # (step, validation loss) of each check


@dataclass(frozen=True)
class TrainingBudget:
    """How long one training runs and when its rates decay, in optimizer steps.

    Attributes:
        iterations: optimizer steps.
        lr_decay_steps: steps per ``lr_decay_rate`` factor of the learning rate (``inf`` = constant).
        aux_decay_every: steps per ``aux_decay`` factor of the auxiliary weight (``inf`` = constant).
        epoch: steps per epoch (``crops_per_epoch / batch_size``; 0 when the budget is fixed).
    """

    iterations: int
    lr_decay_steps: float
    aux_decay_every: float
    epoch: float = 0.0


def training_budget(cfg: TrainConfig, crops: float) -> TrainingBudget:
    """The budget of one training on a labelled set of ``crops`` crops per epoch.

    Args:
        cfg: ``iterations`` (fixed, or the ceiling with ``epochs > 0``), ``epochs``, ``min_iterations``
            (the floor with ``epochs > 0``), and the decay
            settings (``lr_decay_steps`` / ``aux_decay_every`` in steps, or ``lr_decay_epochs`` /
            ``aux_decay_epochs`` in epochs when ``epochs > 0``; 0 epochs = no decay).
        crops: :func:`alseg_utils.crops.crops_per_epoch` of the labelled set, > 0.

    Returns:
        The :class:`TrainingBudget`.
    """
    if cfg.epochs <= 0:
        return TrainingBudget(cfg.iterations, float(cfg.lr_decay_steps), float(cfg.aux_decay_every))
    epoch = crops / cfg.batch_size  # optimizer steps per epoch
    iterations = max(1, cfg.min_iterations, min(cfg.iterations, math.ceil(cfg.epochs * epoch)))
    lr_steps = cfg.lr_decay_epochs * epoch if cfg.lr_decay_epochs > 0 else math.inf
    aux_steps = cfg.aux_decay_epochs * epoch if cfg.aux_decay_epochs > 0 else math.inf
    return TrainingBudget(iterations, lr_steps, aux_steps, epoch)


class WeightAverage:
    """Exponential moving average of a model's parameters and buffers (the authors' 0.999 EMA).

    The decay warms up as TensorFlow's ``ExponentialMovingAverage(num_updates=...)`` does,
    ``min(decay, (1 + t) / (10 + t))`` at update ``t``, so a short training is not dominated by its
    random initial weights. Batch-norm statistics are averaged the same way.

    Args:
        model: the network being trained (its weights are copied).
        decay: in (0, 1).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay, self.updates = decay, 0
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the model's current weights into the average."""
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for key, value in model.state_dict().items():
            avg = self.state[key]
            if avg.is_floating_point():
                avg.lerp_(value, 1.0 - d)
            else:
                avg.copy_(value)  # counters (num_batches_tracked)
        self.updates += 1

    def copy_to(self, model: nn.Module) -> nn.Module:
        """Load the averaged weights into ``model`` and return it."""
        model.load_state_dict(self.state)
        return model


class PlateauStop:
    """Early stopping on the validation loss, keeping the weights of its lowest point.

    Args:
        val: the validation set (not empty).
        patience_steps: stop once this many steps passed since the lowest loss, >= 1.
        batch_size: images per validation forward pass.
        device: where the model runs.
        start_step: no stop before this many steps (the lowest loss is tracked from the first check).
    """

    def __init__(self, val: LabelledSet, patience_steps: int, batch_size: int, device: torch.device,
                 start_step: int = 0) -> None:
        self.val, self.patience, self.batch_size, self.device = val, patience_steps, batch_size, device
        self.start = start_step
        self.best_loss, self.best_iteration = math.inf, 0
        self.best_state: dict[str, Tensor] | None = None
        self.history: list[tuple[int, float]] = []  # (step, validation loss) of every check

    def check(self, iteration: int, model: DCAN) -> bool:
        """Score ``model`` (the weights that would be returned) after ``iteration`` steps; True = stop.

        ``model`` is left in eval mode; the caller puts a model it goes on training back in train mode.
        """
        loss = validation_loss(model, self.val, self.batch_size, self.device)
        self.history.append((iteration, loss))
        if math.isfinite(loss) and loss < self.best_loss:
            self.best_loss, self.best_iteration = loss, iteration
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return iteration >= self.start and iteration - self.best_iteration >= self.patience

    def restore(self, model: DCAN) -> DCAN:
        """Load the weights of the lowest validation loss into ``model`` (unchanged if none was finite)."""
        if self.best_state is not None:
            model.load_state_dict(self.best_state)
        return model


def aux_weight_at(iteration: int, cfg: TrainConfig, every: float | None = None) -> float:
    """Weight ``w`` of the auxiliary losses (Eq. 9) at an iteration.

    Args:
        iteration: optimizer step, starting at 0.
        cfg: ``aux_weight * aux_decay ** floor(iteration / every)``.
        every: steps per decay (:attr:`TrainingBudget.aux_decay_every`); default ``cfg.aux_decay_every``.

    Returns:
        The weight.
    """
    every = cfg.aux_decay_every if every is None else every
    return float(cfg.aux_weight * cfg.aux_decay ** math.floor(iteration / every))


def masked_cross_entropy(logits: Tensor, target: Tensor, normaliser: float | None = None) -> Tensor:
    """Cross-entropy summed over labelled pixels, divided by their number or by ``normaliser``.

    Args:
        logits: [B, C, H, W], any real values.
        target: [B, H, W], long, class index or 255 (ignored: contributes no loss, no gradient).
        normaliser: None = the batch's labelled pixels (the mean; 0, not NaN, when none is labelled);
            a number > 0 = a constant, so that every labelled pixel weighs the same in every batch.

    Returns:
        Scalar tensor (float32).
    """
    total = F.cross_entropy(logits.float(), target, ignore_index=UNLABELLED, reduction="sum")
    if normaliser is not None:
        return total / normaliser
    count = (target != UNLABELLED).sum().clamp_min(1)
    return total / count


def dcan_loss(out: DCANOutput, labels: Tensor, contours: Tensor, aux_weight: float,
              normaliser: float | None = None) -> Tensor:
    """Eq. 9 without the L2 term (handled by Adam's ``weight_decay``; see the module docstring).

    Args:
        out: model output; every tensor [B, 2, H, W] logits.
        labels: object targets, [B, H, W], long in {0, 1, 255}.
        contours: contour targets, [B, H, W], long in {0, 1, 255}.
        aux_weight: ``w``, weight of the summed side-output losses.
        normaliser: of every cross-entropy (:func:`masked_cross_entropy`).

    Returns:
        Scalar: CE(fused object) + CE(fused contour) + w * sum over side outputs of both CEs.
    """
    n = normaliser
    final = masked_cross_entropy(out.object, labels, n) + masked_cross_entropy(out.contour, contours, n)
    aux: Tensor | int = sum(masked_cross_entropy(o, labels, n) for o in out.aux_object)
    aux = aux + sum(masked_cross_entropy(c, contours, n) for c in out.aux_contour)
    return final + aux_weight * aux


def make_optimizer(
    model: nn.Module, cfg: TrainConfig, decay_steps: float | None = None, step_scale: Tensor | None = None
) -> tuple[torch.optim.Adam, torch.optim.lr_scheduler.LambdaLR]:
    """Adam with L2 on convolution weights and per-iteration exponential learning-rate decay.

    Args:
        model: the network.
        cfg: ``learning_rate``, ``weight_decay`` (lambda of Eq. 9), ``lr_decay_rate``, ``lr_decay_steps``.
        decay_steps: steps per ``lr_decay_rate`` factor (:attr:`TrainingBudget.lr_decay_steps`,
            ``inf`` = constant); default ``cfg.lr_decay_steps``.
        step_scale: [iterations], float, a factor on the rate of every step (``train.lr_by_labels``);
            None = 1.

    Returns:
        The optimizer and a scheduler to step once per iteration.
    """
    decay = [p for p in model.parameters() if p.ndim > 1]  # conv / deconv weights
    no_decay = [p for p in model.parameters() if p.ndim <= 1]  # biases, batch-norm
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    try:  # the fused kernel is ~3x faster on the CPU (torch >= 2.4); same update rule
        optimizer = torch.optim.Adam(groups, lr=cfg.learning_rate, fused=True)
    except (RuntimeError, ValueError):
        optimizer = torch.optim.Adam(groups, lr=cfg.learning_rate)
    rate, steps = cfg.lr_decay_rate, cfg.lr_decay_steps if decay_steps is None else decay_steps
    scale = [] if step_scale is None else step_scale.tolist()

    def factor(it: int) -> float:
        return rate ** (it / steps) * (scale[it] if it < len(scale) else 1.0)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return optimizer, scheduler


def _set_to_device(data: LabelledSet, device: torch.device) -> tuple[Tensor, Tensor]:
    """Images [N, 3, H, W] and stacked targets [N, 2, H, W] (object, contour), uint8 on ``device``."""
    images = torch.from_numpy(np.ascontiguousarray(data.images)).to(device).permute(0, 3, 1, 2)
    targets = torch.from_numpy(np.stack([data.labels, data.contours], 1)).to(device)
    return images, targets


def train_step(
    model: DCAN,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    images: Tensor,
    targets: Tensor,
    aux_weight: float,
    amp: torch.dtype | None = None,
    normaliser: float | None = None,
) -> Tensor:
    """One optimizer step on an (augmented) batch.

    Args:
        model: the network, in training mode.
        optimizer: its optimizer.
        scaler: gradient scaler (enabled only for float16 autocast).
        images: [B, 3, H, W], float in [0, 1], on the model's device.
        targets: [B, 2, H, W], integer (object, contour) in {0, 1, 255}.
        aux_weight: ``w`` of Eq. 9 at this iteration.
        amp: autocast dtype on CUDA, None for fp32.
        normaliser: of the cross-entropies (:func:`masked_cross_entropy`; None = the batch's labelled pixels).

    Returns:
        The loss (detached scalar tensor, still on the device).
    """
    with torch.autocast(images.device.type, dtype=amp, enabled=amp is not None):
        out = model(images)
    targets = targets.long()
    loss = dcan_loss(out, targets[:, 0], targets[:, 1], aux_weight, normaliser)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss.detach()


def _seed_everything(seed: int) -> torch.Generator:
    """Seed torch (weights, dropout) and NumPy; return the augmentation / batching generator."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    return torch.Generator().manual_seed(seed)


def train_model(
    train: LabelledSet, val: LabelledSet, model_cfg: ModelConfig, train_cfg: TrainConfig, seed: int
) -> TrainResult:
    """Train a new model from scratch (Eq. 9) for the budget of :func:`training_budget`.

    Crops come from :func:`alseg_utils.crops.plan_crops` (every labelled pixel in view equally
    often). Deterministic on the CPU for a given seed (weights, crops, augmentation, dropout masks).

    Args:
        train: labelled images; label value 255 marks pixels that are not labelled (ignored).
        val: fully or partly labelled validation images (may be empty; see Returns).
        model_cfg: the architecture.
        train_cfg: iterations, batch size, optimizer, augmentation, device, AMP, progress bar.
        seed: seeds torch, NumPy and the augmentation generator.

    Returns:
        :class:`TrainResult` with the trained model (eval mode), its validation loss and the
        training loss of every iteration. With an empty ``val`` the validation loss is the mean
        training loss of the last 10 iterations.

    Raises:
        ValueError: empty training set or a crop larger than the images.
    """
    if len(train) == 0:
        raise ValueError("train_model: the labelled training set is empty; label at least one image")
    device = resolve_device(train_cfg.device)
    generator = _seed_everything(seed)
    model = build_model(model_cfg).to(device).train()
    labelled = torch.from_numpy(train.labels != UNLABELLED)  # [N, H, W]
    if not bool(labelled.any()):
        raise ValueError("train_model: no pixel of the training set is labelled; label at least one image")
    budget = training_budget(train_cfg, crops_per_epoch(labelled, train_cfg.crop_size))
    plan = plan_crops(labelled, train_cfg.crop_size, budget.iterations, train_cfg.batch_size, generator)
    normaliser = None  # "batch": each batch's labelled pixels
    in_view = None  # [iterations]: labelled pixels of each batch, counted only when an option needs them
    if train_cfg.loss_normaliser == "training" or train_cfg.lr_by_labels:
        in_view = labelled_in_crops(labelled, plan).sum(1).double()
    if train_cfg.loss_normaliser == "training":  # one constant: a labelled pixel weighs the same in every batch
        assert in_view is not None
        normaliser = max(1.0, float(in_view.mean()))
    step_scale = None
    if train_cfg.lr_by_labels:  # a step moves the weights in proportion to the labels it shows
        assert in_view is not None
        step_scale = in_view / (train_cfg.batch_size * plan.size[0] * plan.size[1])
    optimizer, scheduler = make_optimizer(model, train_cfg, budget.lr_decay_steps, step_scale)
    average = WeightAverage(model, train_cfg.ema_decay) if train_cfg.ema_decay > 0 else None
    amp = amp_dtype(device, train_cfg.amp)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
    images, targets = _set_to_device(train, device)
    stop = None
    if train_cfg.patience_epochs > 0 and len(val):
        patience = max(train_cfg.val_every, math.ceil(train_cfg.patience_epochs * budget.epoch))
        start = math.ceil(train_cfg.plateau_start_epochs * budget.epoch)
        stop = PlateauStop(val, patience, train_cfg.batch_size, device, start_step=start)
        probe = copy.deepcopy(model) if average is not None else model  # deepcopy: no random draws
    step_losses: list[Tensor] = []
    quiet = not train_cfg.progress or not sys.stderr.isatty()
    for it in tqdm(range(len(plan)), desc=f"train (seed {seed})", leave=False, disable=quiet):
        idx = plan.images[it].to(device)
        x, y = crop_batch(images[idx], targets[idx], plan.tops[it], plan.lefts[it], plan.size)
        x, y = augment_crops(x.float() / 255.0, y, train_cfg, generator)
        step_losses.append(train_step(model, optimizer, scaler, x, y,
                                      aux_weight_at(it, train_cfg, budget.aux_decay_every), amp, normaliser))
        scheduler.step()
        if average is not None:
            average.update(model)
        done = it + 1
        if stop is not None and (done % train_cfg.val_every == 0 or done == len(plan)):
            if average is not None:
                average.copy_to(probe)
            halt = stop.check(done, probe)
            model.train()
            if halt:
                break
    losses: list[float] = torch.stack(step_losses).float().cpu().tolist()
    if stop is not None and stop.best_state is not None:
        model = stop.restore(model)
        return TrainResult(model=model.eval(), val_loss=stop.best_loss, seed=seed, losses=losses,
                           iterations=len(losses), best_iteration=stop.best_iteration, val_checks=stop.history)
    if average is not None:
        average.copy_to(model)
    if len(val):
        val_loss = validation_loss(model, val, train_cfg.batch_size, device)
    else:
        val_loss = float(np.mean(losses[-10:]))
    return TrainResult(model=model.eval(), val_loss=val_loss, seed=seed, losses=losses, iterations=len(plan),
                       best_iteration=len(plan))


def restart_seed(seed: int, restart: int) -> int:
    """Seed of training restart ``restart`` derived from the run seed (independent streams).

    Args:
        seed: the run's seed, >= 0.
        restart: restart index, >= 0.

    Returns:
        A 31-bit seed.
    """
    return int(np.random.SeedSequence([seed, restart]).generate_state(1)[0] >> 1)


def train_with_restarts(
    train: LabelledSet, val: LabelledSet, model_cfg: ModelConfig, train_cfg: TrainConfig, restarts: int, seed: int
) -> TrainResult:
    """Train ``restarts`` models with seeds derived from (seed, r) and keep the best on validation.

    The paper's guard against bad local minima: only the model with the lowest validation loss is
    kept (ties: the earliest); the others are discarded as soon as they lose.

    Args:
        train: labelled training images (255 = not labelled).
        val: validation images.
        model_cfg: the architecture.
        train_cfg: the training settings.
        restarts: number of trainings, >= 1.
        seed: run seed, >= 0; restart r uses :func:`restart_seed` (seed, r).

    Returns:
        The :class:`TrainResult` with the lowest ``val_loss`` (its ``seed`` is the restart's seed).

    Raises:
        ValueError: ``restarts`` < 1 or a negative seed.
    """
    if restarts < 1:
        raise ValueError(f"restarts must be >= 1, got {restarts}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    best: tuple[float, TrainResult] | None = None
    for r in range(restarts):
        result = train_model(train, val, model_cfg, train_cfg, restart_seed(seed, r))
        score = result.val_loss if math.isfinite(result.val_loss) else math.inf
        if best is None or score < best[0]:
            best = (score, result)
    assert best is not None  # restarts >= 1
    return best[1]


def _image_batches(images: np.ndarray, batch_size: int, device: torch.device):
    """Yield float batches [b, 3, H, W] in [0, 1] on ``device`` and their slices, from uint8 [N, H, W, 3]."""
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 [N, H, W, 3], got {images.dtype} {images.shape}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for start in range(0, len(images), batch_size):
        sl = slice(start, start + batch_size)
        x = torch.from_numpy(np.ascontiguousarray(images[sl])).to(device)  # [b, H, W, 3]
        yield sl, x.permute(0, 3, 1, 2).float() / 255.0  # [b, 3, H, W]


@torch.no_grad()
def validation_loss(
    model: DCAN, val: LabelledSet, batch_size: int, device: str | torch.device | None = None
) -> float:
    """Cross-entropy of the fused outputs on a labelled set, in eval mode (dropout off).

    Args:
        model: the network (left in eval mode).
        val: images and label maps; pixels labelled 255 are ignored.
        batch_size: images per forward pass.
        device: where to run; None = the model's device.

    Returns:
        Mean object CE + mean contour CE over all labelled pixels of the set (0.0 if none).

    Raises:
        ValueError: empty set.
    """
    if len(val) == 0:
        raise ValueError("validation_loss: the validation set is empty")
    device = model_device(model, device)
    model.eval()
    totals = torch.zeros(4, dtype=torch.float64)  # object CE sum, object count, contour CE sum, contour count
    for sl, x in _image_batches(val.images, batch_size, device):
        out = model(x)
        for k, (logits, target) in enumerate(((out.object, val.labels[sl]), (out.contour, val.contours[sl]))):
            t = torch.from_numpy(target).to(device).long()  # [b, H, W]
            ce = F.cross_entropy(logits.float(), t, ignore_index=UNLABELLED, reduction="sum")
            totals[2 * k] += ce.item()
            totals[2 * k + 1] += (t != UNLABELLED).sum().item()
    return float(totals[0] / totals[1].clamp(min=1) + totals[2] / totals[3].clamp(min=1))


@torch.no_grad()
def predict_probs(
    model: DCAN, images: np.ndarray, batch_size: int, device: str | torch.device | None = None
) -> tuple[Tensor, Tensor]:
    """Deterministic (eval mode, dropout off) object and contour probabilities.

    Args:
        model: the network (left in eval mode).
        images: RGB images, [N, H, W, 3], uint8.
        batch_size: images per forward pass.
        device: where to run; None = the model's device.

    Returns:
        Softmax object probabilities [N, 2, H, W] and contour probabilities [N, 2, H, W], float32
        on the CPU, in [0, 1].

    Raises:
        ValueError: images not uint8 [N, H, W, 3] or batch_size < 1.
    """
    device = model_device(model, device)
    model.eval()
    n, h, w = images.shape[:3] if images.ndim == 4 else (0, 0, 0)
    obj = torch.empty(n, 2, h, w)
    con = torch.empty(n, 2, h, w)
    for sl, x in _image_batches(images, batch_size, device):
        out = model(x)
        obj[sl] = out.object.float().softmax(1).cpu()  # [b, 2, H, W]
        con[sl] = out.contour.float().softmax(1).cpu()  # [b, 2, H, W]
    return obj, con
