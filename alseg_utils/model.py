"""ResNet encoder with MC dropout and a DCAN-style two-head decoder (paper, Appendix D).

The encoder is a torchvision ResNet (18/34/50/101/152, random initialisation unless
``ModelConfig.pretrained``). A dropout layer sits before *every* residual block of the configured
stages (``ModelConfig.dropout_stages``; 1..4 are torchvision's ``layer1..layer4``), so each MC
forward pass draws a new mask in front of each block (Gal & Ghahramani 2016).

Dropout choice: element-wise ``nn.Dropout`` (each activation dropped independently), as in the
authors' TensorFlow code. Channel dropout (``nn.Dropout2d``) with p = 0.5 would remove half of the
feature maps of a block at once, a much stronger and coarser perturbation than the paper used.

Output stride: strides beyond ``ModelConfig.output_stride`` are replaced by dilation. Bottleneck
ResNets (50/101/152) use torchvision's ``replace_stride_with_dilation``; torchvision's BasicBlock
(ResNet-18/34) refuses dilation, so :func:`_dilate_basic_layer` sets the same strides, dilations
and paddings on the built convolutions (first block keeps the previous dilation, as torchvision
does for Bottleneck).

Decoder (DCAN, Chen et al. 2016): each head (object = gland/lesion, contour) has one side branch
per encoder level ``layer2, layer3, layer4``: a 3x3 conv + batch-norm + ReLU with
``decoder_channels`` channels, then a learned transposed convolution (kernel 2s, stride s) that
upsamples straight to the input resolution and classifies into 2 classes. The fused output of a
head is the sum of its side outputs (as in the authors' code); the side outputs are returned as
auxiliary logits for the loss of Eq. 9.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from alseg_utils.config import ENCODERS, ModelConfig
from alseg_utils.errors import ConfigError
from alseg_utils.uncertainty import enable_mc_dropout

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SIDE_LEVELS = (2, 3, 4)  # encoder stages (layerK) that feed the side outputs
N_CLASSES = 2


class DCANOutput(NamedTuple):
    """What :class:`DCAN` returns; every tensor is ``[B, 2, H, W]`` logits at input resolution."""

    object: Tensor  # fused object (gland / lesion) logits
    contour: Tensor  # fused contour logits
    aux_object: list[Tensor]  # side outputs of the object head (summed into ``object``)
    aux_contour: list[Tensor]  # side outputs of the contour head


def _stage_strides(output_stride: int) -> list[int]:
    """Cumulative stride after ``layer1..layer4`` for a given output stride (8, 16 or 32)."""
    strides, current = [], 4
    for stage in range(1, 5):
        if stage > 1 and current < output_stride:
            current *= 2
        strides.append(current)
    return strides  # e.g. 16 -> [4, 8, 16, 16]


def _set_conv(conv: nn.Conv2d, dilation: int) -> None:
    """Make a 3x3 convolution stride 1 with the given dilation (padding keeps the size)."""
    conv.stride = (1, 1)
    conv.dilation = (dilation, dilation)
    conv.padding = (dilation, dilation)


def _dilate_basic_layer(layer: nn.Sequential, dilation: int, previous_dilation: int) -> None:
    """Replace the stride of a BasicBlock stage by ``dilation`` (torchvision's scheme).

    Args:
        layer: a ``layerK`` of a ResNet-18/34, modified in place.
        dilation: dilation of every block after the first.
        previous_dilation: dilation of the first block (the one that had stride 2).
    """
    for i, block in enumerate(layer):
        first = previous_dilation if i == 0 else dilation
        _set_conv(block.conv1, first)
        _set_conv(block.conv2, first)
        block.stride = 1
        if block.downsample is not None:
            block.downsample[0].stride = (1, 1)


def _build_resnet(cfg: ModelConfig) -> torchvision.models.ResNet:
    """The torchvision ResNet of ``cfg.encoder`` with strides beyond ``output_stride`` dilated."""
    if cfg.encoder not in ENCODERS:
        raise ConfigError(f"model.encoder: {cfg.encoder!r} is not one of {', '.join(ENCODERS)}")
    if cfg.output_stride not in (8, 16, 32):
        raise ConfigError(f"model.output_stride: must be 8, 16 or 32, got {cfg.output_stride}")
    dilate = [stride > cfg.output_stride for stride in (8, 16, 32)]  # layer2..4: dilate instead?
    weights = torchvision.models.get_model_weights(cfg.encoder).DEFAULT if cfg.pretrained else None
    builder = getattr(torchvision.models, cfg.encoder)
    if cfg.encoder in ("resnet18", "resnet34"):  # BasicBlock: dilate by hand
        net = builder(weights=weights)
        dilation = 1
        for stage, flag in zip((2, 3, 4), dilate):
            if flag:
                _dilate_basic_layer(getattr(net, f"layer{stage}"), dilation * 2, dilation)
                dilation *= 2
        return net
    return builder(weights=weights, replace_stride_with_dilation=dilate)


def _with_dropout(layer: nn.Sequential, rate: float) -> nn.Sequential:
    """Put an element-wise dropout in front of every residual block of a stage."""
    units = []
    for block in layer:
        units.append(nn.Sequential(nn.Dropout(rate), block))
    return nn.Sequential(*units)


def _fit(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Crop (or, if smaller, bilinearly resize) ``x`` ``[B, C, h, w]`` to ``size`` = (H, W)."""
    if x.shape[-2] >= size[0] and x.shape[-1] >= size[1]:
        return x[..., : size[0], : size[1]]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class SideOutput(nn.Module):
    """One DCAN side branch: 3x3 conv + BN + ReLU, then a learned x``stride`` deconvolution."""

    def __init__(self, in_channels: int, channels: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        )
        self.up = nn.ConvTranspose2d(channels, N_CLASSES, 2 * stride, stride=stride, padding=stride // 2)

    def forward(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        """Logits at input resolution.

        Args:
            x: encoder features, [B, in_channels, h, w].
            size: (H, W) of the network input.

        Returns:
            Logits, [B, 2, H, W].
        """
        return _fit(self.up(self.conv(x)), size)  # [B, 2, H, W]


class DCAN(nn.Module):
    """ResNet encoder with dropout before residual blocks + DCAN object and contour heads.

    ``forward`` takes images in [0, 1] and normalises them with the ImageNet mean and std
    internally (the same statistics whether or not ImageNet weights are used).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        net = _build_resnet(cfg)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        for stage in range(1, 5):
            layer = getattr(net, f"layer{stage}")
            if stage in cfg.dropout_stages and cfg.dropout > 0:
                layer = _with_dropout(layer, cfg.dropout)
            self.add_module(f"layer{stage}", layer)
        widths = [getattr(net, f"layer{k}")[-1].conv1.in_channels for k in SIDE_LEVELS]
        strides = [_stage_strides(cfg.output_stride)[k - 1] for k in SIDE_LEVELS]
        self.object_head = nn.ModuleList(
            SideOutput(w, cfg.decoder_channels, s) for w, s in zip(widths, strides)
        )
        self.contour_head = nn.ModuleList(
            SideOutput(w, cfg.decoder_channels, s) for w, s in zip(widths, strides)
        )
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> DCANOutput:
        """Object and contour logits (fused and per side output).

        Args:
            x: RGB images, [B, 3, H, W], float in [0, 1].

        Returns:
            :class:`DCANOutput`; every tensor is [B, 2, H, W] logits.
        """
        size = (x.shape[-2], x.shape[-1])
        h = self.stem((x - self.mean) / self.std)  # [B, 64, H/4, W/4]
        feats = []
        for stage in range(1, 5):
            h = getattr(self, f"layer{stage}")(h)  # [B, C_k, H/s_k, W/s_k]
            if stage in SIDE_LEVELS:
                feats.append(h)
        aux_object = [side(f, size) for side, f in zip(self.object_head, feats)]
        aux_contour = [side(f, size) for side, f in zip(self.contour_head, feats)]
        fused_object = torch.stack(aux_object).sum(0)  # [B, 2, H, W]
        fused_contour = torch.stack(aux_contour).sum(0)  # [B, 2, H, W]
        return DCANOutput(fused_object, fused_contour, aux_object, aux_contour)


def build_model(cfg: ModelConfig) -> DCAN:
    """Build a :class:`DCAN` from its configuration (seed torch first for reproducible weights).

    Args:
        cfg: encoder depth, dropout rate and stages, output stride, decoder width, and whether to
            start from ImageNet weights (downloaded by torchvision; needs internet once).

    Returns:
        The model, in training mode, on the CPU.

    Raises:
        ConfigError: unknown encoder, output stride not in {8, 16, 32}, or bad dropout settings.
    """
    if not 0.0 <= cfg.dropout < 1.0:
        raise ConfigError(f"model.dropout: must be in [0, 1), got {cfg.dropout}")
    if any(not 1 <= s <= 4 for s in cfg.dropout_stages):
        raise ConfigError(f"model.dropout_stages: stages are ResNet layers 1..4, got {cfg.dropout_stages}")
    if cfg.decoder_channels < 1:
        raise ConfigError(f"model.decoder_channels: must be >= 1, got {cfg.decoder_channels}")
    return DCAN(cfg)


def set_mc_mode(model: nn.Module, enabled: bool) -> nn.Module:
    """Switch MC-dropout inference on (dropout sampled, batch-norm frozen) or off (plain eval).

    Args:
        model: the network.
        enabled: True -> ``eval()`` then every dropout back to ``train()``; False -> ``eval()``.

    Returns:
        The same module, for chaining.
    """
    if enabled:
        return enable_mc_dropout(model)
    return model.eval()
