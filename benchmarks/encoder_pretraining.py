"""Does a self-supervised encoder help? Pretrain on a seed's unlabelled AL images, compare step-0 validation loss.

For each seed the encoder of the params file (random initialisation, its ``model.width``) is pretrained on
the AL training images of that seed (initial set + pool, images only: no label, validation or test image
is seen) with one of two pretext tasks, written as a weights file, and the seed's step-0 labelled set is
trained ``--trainings`` times from random weights and from the pretrained encoder (``model.pretrained:
<file>``; the decoder starts random in both). Only the validation loss chooses; test F1 is printed as
reported only. Deterministic on the CPU with one compute thread (``OMP_NUM_THREADS=1``).

Pretext tasks:

* ``inpainting``: half of the 8x8 patches of each image are blanked (set to the normalised mean, 0) and
  the network reconstructs the normalised image there, from light side branches on layers 2-4 (3x3 conv +
  batch norm + ReLU, 1x1 conv to RGB, bilinear upsampling, summed): masked-image modelling for a CNN.
* ``contrastive``: SimCLR (Chen et al. 2020): two random views of each image (resized crop of 40-100% of
  the side, flips, brightness and contrast +-20%), the pooled layer-4 features through a 2-layer projection,
  NT-Xent loss at temperature 0.2 over a batch of 16 images.

Both train with AdamW (lr 1e-3, weight decay 1e-4, cosine schedule) for ``--epochs`` epochs.

    OMP_NUM_THREADS=1 python -m benchmarks.encoder_pretraining params/quick.yaml --pretext inpainting \\
        contrastive --seeds 0 1 --epochs 400 300 --trainings 6
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import alseg_utils.active as active
from alseg_utils.config import RunConfig
from alseg_utils.model import Encoder, build_encoder
from alseg_utils.run_folder import atomic_open
from benchmarks.training_options import constant_val_loss, job_config, labelled_sets, retrain

PATCH = 8  # side of an inpainting patch, pixels
MASK_RATIO = 0.5  # share of the patches blanked
TEMPERATURE = 0.2  # NT-Xent
CONTRASTIVE_BATCH = 16
INPAINTING_BATCH = 8


def encoder_state(enc: Encoder) -> dict[str, Tensor]:
    """The torchvision state dict (``conv1``, ``bn1``, ``layer1..4``) of a BasicBlock / Bottleneck :class:`Encoder`.

    What ``model.pretrained: <file>`` loads back (``alseg_utils.model.load_encoder_state``).
    """
    state: dict[str, Tensor] = {}
    stem = list(enc.stem.children())  # conv1, bn1, relu, maxpool
    for prefix, module in [("conv1", stem[0]), ("bn1", stem[1])] + [
            (f"layer{k}", layer) for k, layer in enumerate(enc.layers, start=1)]:
        state.update({f"{prefix}.{name}": t.detach().clone() for name, t in module.state_dict().items()})
    return state


def _normalise(x: Tensor, enc: Encoder) -> Tensor:
    """[B, 3, H, W] in [0, 1] -> normalised with the encoder's statistics, as DCAN.forward does."""
    return (x - torch.tensor(enc.mean).view(1, 3, 1, 1)) / torch.tensor(enc.std).view(1, 3, 1, 1)


def _features(enc: Encoder, x: Tensor) -> list[Tensor]:
    """Outputs of layers 1..4, each [B, C_k, H / s_k, W / s_k]."""
    h, out = enc.stem(x), []
    for layer in enc.layers:
        h = layer(h)
        out.append(h)
    return out


def _channels(layer: nn.Sequential) -> int:
    """Output channels of a ResNet stage: the last batch norm of its last unit."""
    norms = [m for m in layer[-1].modules() if isinstance(m, nn.BatchNorm2d)]
    return norms[-1].num_features


def _flips(x: Tensor, generator: torch.Generator) -> Tensor:
    if torch.rand(1, generator=generator) < 0.5:
        x = x.flip(3)
    if torch.rand(1, generator=generator) < 0.5:
        x = x.flip(2)
    return x


def _fit(modules: list[nn.Module], n: int, batch: int, epochs: int, generator: torch.Generator,
         batch_loss: Callable[[Tensor], Tensor]) -> list[float]:
    """AdamW (lr 1e-3, weight decay 1e-4) with a cosine schedule over ``epochs`` shuffled passes of ``n`` images.

    ``batch_loss`` maps the indices of one batch [B] to its loss. Returns the mean loss of each epoch.
    """
    steps = max(1, n // batch)
    opt = torch.optim.AdamW([p for m in modules for p in m.parameters()], lr=1e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * steps)
    losses = []
    for _ in range(epochs):
        order, total = torch.randperm(n, generator=generator), 0.0
        for b in range(steps):
            loss = batch_loss(order[b * batch:(b + 1) * batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
            total += loss.item()
        losses.append(total / steps)
    return losses


def pretrain_inpainting(enc: Encoder, images: Tensor, epochs: int, seed: int) -> list[float]:
    """Masked-patch reconstruction; ``images`` [N, 3, H, W] in [0, 1]. Returns the loss of each epoch."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    widths = [_channels(layer) for layer in enc.layers[1:]]
    heads = nn.ModuleList(nn.Sequential(nn.Conv2d(c, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                                        nn.Conv2d(16, 3, 1)) for c in widths)
    n, _, h, w = images.shape

    def batch_loss(idx: Tensor) -> Tensor:
        x = _normalise(_flips(images[idx], g), enc)
        blank = (torch.rand(x.shape[0], 1, -(-h // PATCH), -(-w // PATCH), generator=g) < MASK_RATIO).float()
        blank = blank.repeat_interleave(PATCH, 2).repeat_interleave(PATCH, 3)[..., :h, :w]  # [B, 1, H, W]
        feats = _features(enc, x * (1 - blank))[1:]
        rebuilt = sum(F.interpolate(head(f), size=(h, w), mode="bilinear", align_corners=False)
                      for head, f in zip(heads, feats, strict=True))
        return (((rebuilt - x) ** 2).mean(1, keepdim=True) * blank).sum() / blank.sum().clamp(min=1)

    return _fit([enc.stem, *enc.layers, heads], n, INPAINTING_BATCH, epochs, g, batch_loss)


def _view(x: Tensor, generator: torch.Generator) -> Tensor:
    """One SimCLR view of each image of ``x`` [B, 3, H, W] in [0, 1], same size."""
    _, _, h, w = x.shape
    views = []
    for image in x:
        s = float(torch.empty(1).uniform_(0.4, 1.0, generator=generator))
        ch, cw = max(PATCH, int(h * s)), max(PATCH, int(w * s))
        y0 = int(torch.randint(0, h - ch + 1, (1,), generator=generator))
        x0 = int(torch.randint(0, w - cw + 1, (1,), generator=generator))
        v = F.interpolate(image[None, :, y0:y0 + ch, x0:x0 + cw], size=(h, w), mode="bilinear", align_corners=False)
        v = _flips(v, generator)
        brightness, contrast = 1 + 0.4 * (torch.rand(2, generator=generator) - 0.5)
        views.append((((v - v.mean()) * contrast + v.mean()) * brightness).clamp(0, 1))
    return torch.cat(views)


def pretrain_contrastive(enc: Encoder, images: Tensor, epochs: int, seed: int) -> list[float]:
    """SimCLR with NT-Xent; ``images`` [N, 3, H, W] in [0, 1]. Returns the loss of each epoch."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    projection = nn.Sequential(nn.Linear(_channels(enc.layers[-1]), 128), nn.ReLU(), nn.Linear(128, 64))
    n = images.shape[0]
    batch = min(CONTRASTIVE_BATCH, n)
    pairs = torch.cat([torch.arange(batch, 2 * batch), torch.arange(0, batch)])  # row i's positive

    def batch_loss(idx: Tensor) -> Tensor:
        x = images[idx]
        z = torch.cat([projection(_features(enc, _normalise(_view(x, g), enc))[-1].mean((2, 3)))
                       for _ in range(2)])  # [2B, 64]
        z = F.normalize(z, dim=1)
        similarity = (z @ z.t() / TEMPERATURE).fill_diagonal_(-1e9)
        return F.cross_entropy(similarity, pairs)

    return _fit([enc.stem, *enc.layers, projection], n, batch, epochs, g, batch_loss)


PRETEXTS = {"inpainting": pretrain_inpainting, "contrastive": pretrain_contrastive}


def pretrained_weights(cfg: RunConfig, data: active.RunData, pretext: str, epochs: int, path: Path) -> list[float]:
    """Pretrain ``cfg``'s encoder on its seed's AL training images, write its state dict to ``path``.

    Returns:
        The pretext loss of each epoch.
    """
    torch.manual_seed(cfg.active.seed)
    enc = build_encoder(cfg.model)
    images = torch.from_numpy(data.train.images).permute(0, 3, 1, 2).float() / 255  # [N, 3, H, W]
    losses = PRETEXTS[pretext](enc, images, epochs, 1000 + cfg.active.seed)
    with atomic_open(path) as fh:
        torch.save(encoder_state(enc), fh)
    return losses


def main(argv: list[str] | None = None) -> int:
    """Print, per pretext and seed, the step-0 validation loss from random and from pretrained encoders."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.encoder_pretraining")
    p.add_argument("params", nargs="?", default="params/quick.yaml")
    p.add_argument("--pretext", nargs="+", choices=sorted(PRETEXTS), default=sorted(PRETEXTS))
    p.add_argument("--epochs", nargs="+", type=int, default=[400], help="one per pretext, or one for all")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--trainings", type=int, default=6, help="step-0 trainings per setting and seed")
    p.add_argument("--keep", type=Path, default=None,
                   help="folder to keep the weights files in (<pretext>-s<seed>.pt, for model.pretrained)")
    args = p.parse_args(argv)
    epochs = args.epochs * len(args.pretext) if len(args.epochs) == 1 else args.epochs
    if len(epochs) != len(args.pretext):
        p.error("--epochs: give one number, or one per --pretext")
    changes: dict[str, list[float]] = {name: [] for name in args.pretext}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            base = job_config(args.params, f"full:random:{seed}", {})
            train, val = labelled_sets(base, 0)[0]
            data = active.prepare_run_data(base)
            random_init = retrain(base, data, train, val, args.trainings)
            for name, n_epochs in zip(args.pretext, epochs, strict=True):
                path = (args.keep or Path(tmp)) / f"{name}-s{seed}.pt"
                start = time.perf_counter()
                losses = pretrained_weights(base, data, name, n_epochs, path)
                cost = time.perf_counter() - start
                other = retrain(job_config(args.params, f"full:random:{seed}", {"model.pretrained": str(path)}),
                                data, train, val, args.trainings)
                loss = [float(np.mean(random_init[0])), float(np.mean(other[0]))]
                changes[name].append(loss[1] / loss[0] - 1)
                print(f"seed {seed}, {name} ({n_epochs} epochs on {len(data.train)} unlabelled images, {cost:.0f} s; "
                      f"pretext loss {losses[0]:.3f} -> {losses[-1]:.3f}): step-0 set ({len(train)} images), "
                      f"{args.trainings} trainings each: validation loss random {loss[0]:.4f} ± "
                      f"{np.std(random_init[0]):.4f}, pretrained {loss[1]:.4f} ± {np.std(other[0]):.4f}: "
                      f"{100 * changes[name][-1]:+.1f}% (class frequencies alone: {constant_val_loss(val):.4f}) | "
                      f"test F1, reported only: {np.mean(random_init[1]):.3f} vs {np.mean(other[1]):.3f}", flush=True)
    for name, c in changes.items():
        print(f"{name}: mean change of step-0 validation loss {100 * np.mean(c):+.1f}% over {len(c)} seed(s), "
              f"lower in {sum(x < 0 for x in c)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
