"""ResNet encoder with MC dropout and a DCAN-style two-head decoder (paper, Appendix D).

Encoders (``ModelConfig.encoder``):

- ``resnet18/34/50/101/152``: torchvision's ResNet (v1.5: post-activation, stride on the 3x3 conv);
  ``resnet10``: the same class with one BasicBlock per stage (the light quick-setting encoder; random
  initialisation or a weights file only, as torchvision ships no ImageNet weights for it).
- ``model.width`` (BasicBlock ResNets, random initialisation): channels of the first stage, doubled
  at each later one; 64 is torchvision's network, 32 a quarter of its convolution cost.
- ``resnetv2_18/34/50/101``: timm's pre-activation ResNet (He et al. 2016b, "v2"), the family of
  the authors' TF-slim ``resnet_v2_50``. Its stages output the un-normalised residual stream, so
  the final batch-norm + ReLU of the network (``final_norm``) is applied to the last stage before
  its side output, as TF-slim's ``postnorm``. Images are normalised with timm's statistics for
  these weights (mean = std = 0.5, i.e. scaled to [-1, 1], as TF-slim's Inception preprocessing).

Weights (``ModelConfig.pretrained``): ``False`` = random initialisation; ``True`` = ImageNet
weights (torchvision's ``DEFAULT`` weights, or timm's default tag from the Hugging Face hub;
downloaded once into the torch-hub / Hugging Face cache); a path = a local weights file (offline
machines): a ``torch.save`` file or ``.safetensors`` holding the state dict of the torchvision /
timm model of that encoder (with or without its classifier ``fc.*`` / ``head.*``, possibly under a
``state_dict`` / ``model`` key, possibly with a DataParallel ``module.`` prefix). A file that does
not fit the encoder (missing or unexpected keys, other shapes) is one :class:`ConfigError`.

A dropout layer sits before *every* residual unit of the configured stages
(``ModelConfig.dropout_stages``; 1..4 are torchvision's ``layer1..layer4`` = timm's
``stages[0..3]``), so each MC forward pass draws a new mask in front of each unit (Gal &
Ghahramani 2016).

Dropout choice: element-wise ``nn.Dropout`` (each activation dropped independently), as in the
authors' TensorFlow code. Channel dropout (``nn.Dropout2d``) with p = 0.5 would remove half of the
feature maps of a block at once, a much stronger and coarser perturbation than the paper used.

Output stride: strides beyond ``ModelConfig.output_stride`` are replaced by dilation (the first
unit of a dilated stage keeps the previous dilation). Bottleneck ResNets (50/101/152) use
torchvision's ``replace_stride_with_dilation``; torchvision's BasicBlock (ResNet-18/34) refuses
dilation, so :func:`_dilate_basic_layer` sets the same strides, dilations and paddings on the built
convolutions; timm's ResNetV2 takes ``output_stride`` itself, with the same scheme.

Decoder (DCAN, Chen et al. 2016): each head (object = gland/lesion, contour) has one side branch
per encoder level ``layer2, layer3, layer4``: a 3x3 conv + batch-norm + ReLU with
``decoder_channels`` channels, then a learned transposed convolution (kernel 2s, stride s) that
upsamples straight to the input resolution and classifies into 2 classes. The fused output of a
head is the sum of its side outputs (as in the authors' code); the side outputs are returned as
auxiliary logits for the loss of Eq. 9.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from alseg_utils.config import ENCODERS, TIMM_ENCODERS, ModelConfig
from alseg_utils.errors import ConfigError
from alseg_utils.mc_dropout import MCSplit, enable_mc_dropout

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SIDE_LEVELS = (2, 3, 4)  # encoder stages (layerK) that feed the side outputs
N_CLASSES = 2
HEAD_PREFIXES = ("fc.", "head.")  # classifier of torchvision / timm models: never used, never loaded
WRAPPER_KEYS = ("state_dict", "model", "model_state_dict")  # checkpoints that nest the state dict


class DCANOutput(NamedTuple):
    """What :class:`DCAN` returns; every tensor is ``[B, 2, H, W]`` logits at input resolution."""

    object: Tensor  # fused object (gland / lesion) logits
    contour: Tensor  # fused contour logits
    aux_object: list[Tensor]  # side outputs of the object head (summed into ``object``)
    aux_contour: list[Tensor]  # side outputs of the contour head


class DCANPrefix(NamedTuple):
    """The deterministic front of a :class:`DCAN` pass, where :meth:`DCAN.forward_suffix` resumes."""

    features: Tensor  # residual stream entering unit ``start``, [B, C, h, w]
    aux_object: list[Tensor]  # object side outputs of the levels already passed, [B, 2, H, W] each
    aux_contour: list[Tensor]  # contour side outputs of those levels, [B, 2, H, W] each
    start: int  # index in DCAN.units() of the first residual unit still to run
    size: tuple[int, int]  # (H, W) of the network input

    def repeat(self, k: int) -> DCANPrefix:
        """``k`` stacked copies along the batch axis: the prefix of ``x.repeat(k, 1, 1, 1)``.

        Args:
            k: copies, >= 1.

        Returns:
            The prefix of ``k * B`` images (this one when ``k == 1``).
        """
        if k == 1:
            return self

        def stacked(t: Tensor) -> Tensor:
            return t.repeat(k, *([1] * (t.ndim - 1)))  # [k*B, ...]

        return self._replace(features=stacked(self.features), aux_object=[stacked(t) for t in self.aux_object],
                             aux_contour=[stacked(t) for t in self.aux_contour])


class Encoder(NamedTuple):
    """The parts of a backbone that :class:`DCAN` uses, and the input statistics of its weights."""

    stem: nn.Module  # [B, 3, H, W] -> [B, 64, H/4, W/4]
    layers: list[nn.Sequential]  # layer1..layer4, each a sequence of residual units
    final_norm: nn.Module  # applied to layer4's output (pre-activation nets), else identity
    mean: tuple[float, ...]  # per-channel input mean the weights expect, images in [0, 1]
    std: tuple[float, ...]


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
    block: Any  # a torchvision BasicBlock (torchvision ships no types)
    for i, block in enumerate(layer):
        first = previous_dilation if i == 0 else dilation
        _set_conv(block.conv1, first)
        _set_conv(block.conv2, first)
        block.stride = 1
        if block.downsample is not None:
            block.downsample[0].stride = (1, 1)


def _narrow_basic_resnet(blocks: list[int], width: int) -> torchvision.models.ResNet:
    """torchvision's BasicBlock ResNet with ``width, 2 width, 4 width, 8 width`` channels (64 = the standard one).

    The stem and the four stages are rebuilt with torchvision's own layer builder and initialised as
    torchvision initialises them (Kaiming-normal convolutions, unit batch-norm scales); ``fc`` is unused.
    """
    basic = torchvision.models.resnet.BasicBlock
    net = torchvision.models.ResNet(basic, blocks)
    net.inplanes = width
    net.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
    net.bn1 = nn.BatchNorm2d(width)
    for stage, count in enumerate(blocks, start=1):
        layer = net._make_layer(basic, width * 2 ** (stage - 1), count, stride=1 if stage == 1 else 2)
        setattr(net, f"layer{stage}", layer)
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    return net


def _torchvision_resnet(cfg: ModelConfig) -> torchvision.models.ResNet:
    """The randomly initialised torchvision ResNet of ``cfg.encoder``, strides beyond ``output_stride`` dilated."""
    dilate = [stride > cfg.output_stride for stride in (8, 16, 32)]  # layer2..4: dilate instead?
    if cfg.encoder == "resnet10":  # torchvision's ResNet class with one BasicBlock per stage (no weights shipped)
        builder = functools.partial(torchvision.models.ResNet, torchvision.models.resnet.BasicBlock, [1, 1, 1, 1])
    else:
        builder = getattr(torchvision.models, cfg.encoder)
    if cfg.encoder in ("resnet10", "resnet18", "resnet34"):  # BasicBlock: dilate by hand
        if cfg.width != 64:
            net = _narrow_basic_resnet({"resnet10": [1, 1, 1, 1], "resnet18": [2, 2, 2, 2],
                                        "resnet34": [3, 4, 6, 3]}[cfg.encoder], cfg.width)
        else:
            net = builder() if cfg.encoder == "resnet10" else builder(weights=None)
        dilation = 1
        for stage, flag in zip((2, 3, 4), dilate, strict=True):
            if flag:
                _dilate_basic_layer(getattr(net, f"layer{stage}"), dilation * 2, dilation)
                dilation *= 2
        return net
    return builder(weights=None, replace_stride_with_dilation=dilate)


def _timm_resnetv2(cfg: ModelConfig) -> nn.Module:
    """The randomly initialised timm pre-activation ResNet of ``cfg.encoder`` at ``output_stride``."""
    import timm  # imported here: a few seconds, only paid by the resnetv2 encoders

    return timm.create_model(cfg.encoder, pretrained=False, num_classes=0, output_stride=cfg.output_stride)


def _first_line(err: BaseException, limit: int = 160) -> str:
    """``Type: first line of the message``, cut to ``limit`` characters (for one-line errors)."""
    lines = str(err).strip().splitlines()
    text = f"{type(err).__name__}: {lines[0] if lines else ''}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _download_imagenet_state(encoder: str) -> dict[str, Tensor]:
    """The ImageNet state dict of ``encoder`` from torchvision's or timm's (Hugging Face) store.

    Raises:
        ConfigError: the weights cannot be fetched (offline, hub down, corrupt cache); the one-line
            message names the offline options.
    """
    if encoder in TIMM_ENCODERS:
        import timm

        pretrained_cfg = timm.models.get_pretrained_cfg(encoder)
        assert pretrained_cfg is not None  # every name of TIMM_ENCODERS has one
        hub_id = pretrained_cfg.hf_hub_id
        try:
            return timm.create_model(encoder, pretrained=True).state_dict()
        except Exception as err:  # noqa: BLE001 - whatever the hub raises (network, cache, auth) means "not fetched"
            raise ConfigError(
                f"model.pretrained: could not fetch the ImageNet weights of {encoder} from the Hugging Face hub "
                f"({_first_line(err)}); offline, download model.safetensors of https://huggingface.co/{hub_id} "
                "elsewhere and set model.pretrained to its path, or set model.pretrained: false") from None
    weights = torchvision.models.get_model_weights(encoder).DEFAULT
    try:
        return weights.get_state_dict(progress=False, check_hash=True, weights_only=True)
    except Exception as err:  # noqa: BLE001 - URLError, timeout, SSL, hash mismatch: all mean "not fetched"
        cache = Path(torch.hub.get_dir()) / "checkpoints"
        raise ConfigError(
            f"model.pretrained: could not fetch the ImageNet weights of {encoder} ({_first_line(err)}); "
            f"offline, copy {weights.url} into {cache}/, or set model.pretrained to the path of a weights "
            "file, or to false") from None


def read_weights_file(path: str | Path) -> dict[str, Tensor]:
    """The state dict in a weights file (``torch.save`` output or ``.safetensors``).

    Args:
        path: the file; it may hold the state dict itself or nest it under ``state_dict``, ``model``
            or ``model_state_dict``; a ``module.`` prefix on every key (DataParallel) is removed.

    Returns:
        Parameter / buffer name -> tensor, on the CPU.

    Raises:
        ConfigError: the file is missing, unreadable, or holds no state dict of tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"model.pretrained: weights file {path} not found; give an existing file "
                          "(relative paths are relative to the params file), true (ImageNet weights) or false")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file  # installed with timm

            obj: Any = load_file(str(path), device="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - not a torch / safetensors file, or objects weights_only refuses
        raise ConfigError(f"model.pretrained: cannot read {path} as weights ({_first_line(err)}); write one with "
                          "torch.save(model.state_dict(), path)") from None
    return _state_dict_in(obj, path)


def _state_dict_in(obj: Any, path: Path) -> dict[str, Tensor]:
    """Unwrap a checkpoint into a flat ``name -> tensor`` mapping (see :func:`read_weights_file`)."""
    if isinstance(obj, dict):
        nested = [obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), dict)]
        obj = nested[0] if nested else obj
    if not (isinstance(obj, dict) and obj and all(isinstance(k, str) and isinstance(v, Tensor)
                                                  for k, v in obj.items())):
        what = f"keys {sorted(map(str, obj))[:4]}" if isinstance(obj, dict) else type(obj).__name__
        raise ConfigError(f"model.pretrained: {path} holds no state dict of tensors ({what}); write one with "
                          "torch.save(model.state_dict(), path)")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return dict(obj)


def load_encoder_state(net: nn.Module, state: dict[str, Tensor], source: str, encoder: str) -> None:
    """Load ``state`` into a torchvision / timm backbone, every encoder tensor exactly once.

    The classifier (``fc.*``, ``head.*``) is ignored on both sides; anything else that is missing,
    unexpected or of another shape is an error.

    Args:
        net: the backbone, as built by torchvision / timm (before dropout is inserted).
        state: parameter / buffer name -> tensor.
        source: where ``state`` came from (a path or "ImageNet weights"), for the message.
        encoder: the encoder name, for the message.

    Raises:
        ConfigError: the state dict does not fit the encoder (one line: counts and first examples).
    """
    own = net.state_dict()
    state = {k: v for k, v in state.items() if not k.startswith(HEAD_PREFIXES)}
    shapes = [f"{k} {list(v.shape)} vs {list(own[k].shape)}"
              for k, v in state.items() if k in own and v.shape != own[k].shape]
    problems = [f"{len(shapes)} tensors of another shape (e.g. {shapes[0]})"] if shapes else []
    if not shapes:
        result = net.load_state_dict(state, strict=False)
        missing = [k for k in result.missing_keys if not k.startswith(HEAD_PREFIXES)]
        problems += [f"{len(missing)} missing keys (e.g. {missing[0]})"] if missing else []
        unexpected = result.unexpected_keys
        problems += [f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})"] if unexpected else []
    if problems:
        library = "timm" if encoder in TIMM_ENCODERS else "torchvision"
        raise ConfigError(f"model.pretrained: {source} does not fit encoder {encoder}: {', '.join(problems)}; "
                          f"give the state_dict of {library}'s {encoder}")


def build_encoder(cfg: ModelConfig) -> Encoder:
    """The backbone of ``cfg``: architecture, output stride and (pretrained) weights, no dropout yet.

    Args:
        cfg: ``encoder``, ``output_stride`` and ``pretrained`` are read.

    Returns:
        The :class:`Encoder` parts.

    Raises:
        ConfigError: unknown encoder, output stride not in {8, 16, 32}, weights that cannot be
            fetched or read, or that do not fit the encoder.
    """
    if cfg.encoder not in ENCODERS:
        raise ConfigError(f"model.encoder: {cfg.encoder!r} is not one of {', '.join(ENCODERS)}")
    if cfg.output_stride not in (8, 16, 32):
        raise ConfigError(f"model.output_stride: must be 8, 16 or 32, got {cfg.output_stride}")
    timm_net = cfg.encoder in TIMM_ENCODERS
    net: Any = _timm_resnetv2(cfg) if timm_net else _torchvision_resnet(cfg)  # the two have different parts
    if cfg.pretrained is True:
        load_encoder_state(net, _download_imagenet_state(cfg.encoder), "ImageNet weights", cfg.encoder)
    elif isinstance(cfg.pretrained, str):
        load_encoder_state(net, read_weights_file(Path(cfg.pretrained).expanduser()), cfg.pretrained, cfg.encoder)
    if timm_net:
        return Encoder(net.stem, [stage.blocks for stage in net.stages], net.norm,
                       tuple(net.pretrained_cfg["mean"]), tuple(net.pretrained_cfg["std"]))
    stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
    return Encoder(stem, [getattr(net, f"layer{k}") for k in range(1, 5)], nn.Identity(), IMAGENET_MEAN, IMAGENET_STD)


def _out_channels(block: nn.Module) -> int:
    """Channels a residual block outputs (the widest of its convolutions: conv2, conv3 or the shortcut)."""
    return max(m.out_channels for m in block.modules() if isinstance(m, nn.Conv2d))


def _with_dropout(layer: nn.Sequential, rate: float) -> nn.Sequential:
    """Put an element-wise dropout in front of every residual block of a stage."""
    units = []
    for block in layer:
        units.append(nn.Sequential(nn.Dropout(rate), block))
    return nn.Sequential(*units)


def _has_dropout(module: nn.Module) -> bool:
    """Whether ``module`` holds a dropout layer (the modules MC mode keeps stochastic)."""
    return any(isinstance(m, nn.modules.dropout._DropoutNd) for m in module.modules())


def _fit(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Crop (or, if smaller, bilinearly resize) ``x`` ``[B, C, h, w]`` to ``size`` = (H, W)."""
    if x.shape[-2] >= size[0] and x.shape[-1] >= size[1]:
        return x[..., : size[0], : size[1]]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def upsample_transposed(x: Tensor, weight: Tensor, bias: Tensor | None, stride: int) -> Tensor:
    """``F.conv_transpose2d(x, weight, bias, stride=s, padding=s // 2)`` for a 2s x 2s kernel, faster.

    Each input pixel paints a 2s x 2s patch (``x @ weight``, one matrix product over the pixels)
    and neighbouring patches overlap by half, so the output is the sum of four shifted copies of
    the painted patches. The same sums as PyTorch's transposed convolution, in another order (they
    agree to float rounding); on the CPU, where PyTorch runs this kernel shape without oneDNN, it
    is 1.7-9x faster forward and 0.9-2.1x forward + backward (``benchmarks.upsampling``). :class:`SideOutput`
    uses it on the CPU only.

    Args:
        x: features, [B, C, h, w].
        weight: the deconvolution's weight, [C, O, 2s, 2s] (``nn.ConvTranspose2d`` layout).
        bias: [O], or None.
        stride: s, even.

    Returns:
        [B, O, h*s, w*s], float32 or wider (half-precision inputs under autocast are summed in float32).

    Raises:
        ValueError: an odd stride, or a kernel that is not 2s x 2s.
    """
    b, c, h, w = x.shape
    o, s = weight.shape[1], stride
    if weight.shape[2:] != (2 * s, 2 * s) or s % 2:
        raise ValueError(f"upsample_transposed needs an even stride and a {2 * s}x{2 * s} kernel, "
                         f"got stride {s} and kernel {tuple(weight.shape[2:])}")
    patches = x.permute(0, 2, 3, 1).reshape(b * h * w, c) @ weight.reshape(c, -1)  # [B*h*w, O*4s^2]
    patches = patches.view(b, h, w, o, 2, s, 2, s).permute(0, 3, 4, 6, 1, 5, 2, 7)  # [B,O,2,2,h,s,w,s]
    # patch (i, j), quarter (di, dj) -> block (i+di, j+dj); summed in float32 at least (autocast: bf16 patches)
    canvas = patches.new_zeros(b, o, h + 1, s, w + 1, s, dtype=torch.promote_types(patches.dtype, torch.float32))
    canvas[:, :, :h, :, :w] += patches[:, :, 0, 0]
    canvas[:, :, 1:, :, :w] += patches[:, :, 1, 0]
    canvas[:, :, :h, :, 1:] += patches[:, :, 0, 1]
    canvas[:, :, 1:, :, 1:] += patches[:, :, 1, 1]
    out = canvas.view(b, o, (h + 1) * s, (w + 1) * s)[..., s // 2: s // 2 + h * s, s // 2: s // 2 + w * s]
    return out if bias is None else out + bias.view(1, -1, 1, 1)  # [B, O, h*s, w*s]


class SideOutput(nn.Module):
    """One DCAN side branch: 3x3 conv + BN + ReLU, then a learned x``stride`` deconvolution.

    The deconvolution's parameters live in ``up`` (an ``nn.ConvTranspose2d``: kernel 2s, stride s,
    padding s/2). On the CPU it is computed by :func:`upsample_transposed`, the same operation,
    faster there; on CUDA by ``up`` itself (cuDNN's kernel is 3-4x faster than the overlap-add on an
    H200, docs/performance.md).
    """

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
        h = self.conv(x)  # [B, channels, h, w]
        if h.device.type == "cpu":  # PyTorch's CPU kernel for this shape is slow; cuDNN's is not
            return _fit(upsample_transposed(h, self.up.weight, self.up.bias, self.up.stride[0]), size)
        return _fit(self.up(h), size)  # [B, 2, H, W]


class DCAN(nn.Module):
    """ResNet encoder with dropout before residual units + DCAN object and contour heads.

    ``forward`` takes images in [0, 1] and normalises them with the statistics of the encoder's
    weights internally (torchvision: ImageNet mean and std; timm's resnetv2: 0.5 and 0.5), the
    same whether or not pretrained weights are loaded.
    """

    mean: Tensor  # buffers (register_buffer), [1, 3, 1, 1]
    std: Tensor

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        enc = build_encoder(cfg)
        self.stem = enc.stem
        for stage, layer in enumerate(enc.layers, start=1):
            if stage in cfg.dropout_stages and cfg.dropout > 0:
                layer = _with_dropout(layer, cfg.dropout)
            self.add_module(f"layer{stage}", layer)
        self.final_norm = enc.final_norm
        widths = [_out_channels(enc.layers[k - 1][-1]) for k in SIDE_LEVELS]
        strides = [_stage_strides(cfg.output_stride)[k - 1] for k in SIDE_LEVELS]
        self.object_head = nn.ModuleList(
            SideOutput(w, cfg.decoder_channels, s) for w, s in zip(widths, strides, strict=True)
        )
        self.contour_head = nn.ModuleList(
            SideOutput(w, cfg.decoder_channels, s) for w, s in zip(widths, strides, strict=True)
        )
        self.register_buffer("mean", torch.tensor(enc.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(enc.std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> DCANOutput:
        """Object and contour logits (fused and per side output).

        Args:
            x: RGB images, [B, 3, H, W], float in [0, 1].

        Returns:
            :class:`DCANOutput`; every tensor is [B, 2, H, W] logits.
        """
        return self.forward_suffix(self.forward_prefix(x))

    def units(self) -> list[tuple[int, nn.Module]]:
        """The encoder's residual units (with their dropout) in forward order, each with its stage 1..4."""
        return [(stage, unit) for stage in range(1, 5) for unit in getattr(self, f"layer{stage}")]

    def forward_prefix(self, x: Tensor, stop: int = 0) -> DCANPrefix:
        """The stem, the first ``stop`` residual units and the side outputs of the stages they finish.

        Args:
            x: RGB images, [B, 3, H, W], float in [0, 1].
            stop: residual units to run, 0..len(units()).

        Returns:
            :class:`DCANPrefix`; ``forward_suffix`` of it gives ``forward(x)``.
        """
        size = (x.shape[-2], x.shape[-1])
        h = self.stem((x - self.mean) / self.std)  # [B, 64, H/4, W/4]
        h, feats = self._encode(h, 0, stop)
        return DCANPrefix(h, *self._side_outputs(feats, size), start=stop, size=size)

    def forward_suffix(self, prefix: DCANPrefix) -> DCANOutput:
        """The residual units from ``prefix.start`` on, the remaining side outputs and the fusion.

        Args:
            prefix: what :meth:`forward_prefix` returned (or its :meth:`DCANPrefix.repeat`).

        Returns:
            :class:`DCANOutput`; every tensor is [B, 2, H, W] logits (B of the prefix).
        """
        _, feats = self._encode(prefix.features, prefix.start, len(self.units()))
        aux_object, aux_contour = self._side_outputs(feats, prefix.size)
        aux_object, aux_contour = prefix.aux_object + aux_object, prefix.aux_contour + aux_contour
        fused_object = torch.stack(aux_object).sum(0)  # [B, 2, H, W]
        fused_contour = torch.stack(aux_contour).sum(0)  # [B, 2, H, W]
        return DCANOutput(fused_object, fused_contour, aux_object, aux_contour)

    def mc_split(self) -> MCSplit | None:
        """This network cut in front of its first dropout layer, for MC inference (``mc_predict``).

        The prefix is the stem and every residual unit before the first one that holds a dropout
        layer (just the stem when stage 1 has dropout; the whole encoder and decoder when there is
        no dropout), with the side outputs of the stages it finishes.

        Returns:
            The :class:`~alseg_utils.mc_dropout.MCSplit`, or ``None`` when a dropout layer sits
            outside the residual units (stem, final norm, heads: nothing can be cached safely).
        """
        outside = (self.stem, self.final_norm, self.object_head, self.contour_head)
        if any(_has_dropout(m) for m in outside):
            return None
        units = self.units()
        stop = next((i for i, (_, unit) in enumerate(units) if _has_dropout(unit)), len(units))
        return MCSplit(functools.partial(self.forward_prefix, stop=stop), self.forward_suffix)

    def _encode(self, h: Tensor, start: int, stop: int) -> tuple[Tensor, list[tuple[int, Tensor]]]:
        """Residual units ``start..stop-1`` on ``h``, and (stage, side feature) of each stage they finish."""
        units, feats = self.units(), []
        for i in range(start, stop):
            stage, unit = units[i]
            h = unit(h)  # [B, C_k, H/s_k, W/s_k]
            if stage in SIDE_LEVELS and (i + 1 == len(units) or units[i + 1][0] != stage):
                feats.append((stage, self.final_norm(h) if stage == 4 else h))
        return h, feats

    def _side_outputs(self, feats: list[tuple[int, Tensor]],
                      size: tuple[int, int]) -> tuple[list[Tensor], list[Tensor]]:
        """Object and contour side outputs [B, 2, H, W] of (stage, feature) pairs, in that order."""
        heads = [SIDE_LEVELS.index(stage) for stage, _ in feats]
        aux_object = [self.object_head[j](f, size) for j, (_, f) in zip(heads, feats, strict=True)]
        aux_contour = [self.contour_head[j](f, size) for j, (_, f) in zip(heads, feats, strict=True)]
        return aux_object, aux_contour


def build_model(cfg: ModelConfig) -> DCAN:
    """Build a :class:`DCAN` from its configuration (seed torch first for reproducible weights).

    Args:
        cfg: encoder, dropout rate and stages, output stride, decoder width, and the encoder's
            starting weights (``pretrained``: false, true = ImageNet, downloaded once and cached,
            or a weights file; a relative path here is relative to the working directory, while
            :func:`~alseg_utils.config.load_config` resolves it against the params file).

    Returns:
        The model, in training mode, on the CPU.

    Raises:
        ConfigError: unknown encoder, output stride not in {8, 16, 32}, bad dropout settings, or
            weights that cannot be fetched, cannot be read or do not fit the encoder.
    """
    if not 0.0 <= cfg.dropout < 1.0:
        raise ConfigError(f"model.dropout: must be in [0, 1), got {cfg.dropout}")
    if any(not 1 <= s <= 4 for s in cfg.dropout_stages):
        raise ConfigError(f"model.dropout_stages: stages are ResNet layers 1..4, got {cfg.dropout_stages}")
    if cfg.decoder_channels < 1:
        raise ConfigError(f"model.decoder_channels: must be >= 1, got {cfg.decoder_channels}")
    if not isinstance(cfg.pretrained, (bool, str)) or cfg.pretrained == "":
        raise ConfigError(f"model.pretrained: give true, false or the path of a weights file, got {cfg.pretrained!r}")
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
