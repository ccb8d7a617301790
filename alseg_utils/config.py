"""Typed run configuration, loaded strictly from ``params/*.yaml``.

A params file has one section per dataclass below (``data``, ``model``, ``train``, ``active``,
``eval``, ``sweep``) plus a ``name``. Unknown keys, wrong types and impossible values raise one
:class:`~alseg_utils.errors.ConfigError` that names the file and the key. Relative paths in a params
file are resolved against the folder that holds the file.

A file may start from another one: ``base: quick.yaml`` (relative to the file) reads that file first
and lays this file's sections over it key by key (a list or a value replaces the base's; a file with
a ``base`` names itself). A relative path the base sets stays relative to the base's folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from alseg_utils.errors import ConfigError

TORCHVISION_ENCODERS = ("resnet10", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152")  # ResNet v1.5
NO_IMAGENET_WEIGHTS = ("resnet10",)  # built from torchvision's ResNet class; no ImageNet weights ship for it
LOSS_NORMALISERS = ("batch", "training")  # train.loss_normaliser
NARROW_ENCODERS = ("resnet10", "resnet18", "resnet34")  # BasicBlock ResNets: model.width may be below 64
TIMM_ENCODERS = ("resnetv2_18", "resnetv2_34", "resnetv2_50", "resnetv2_101")  # pre-activation (timm)
ENCODERS = TORCHVISION_ENCODERS + TIMM_ENCODERS
DATASETS = ("glas", "isic", "folder")
OBJECT_AGGREGATES = ("pooled", "image_mean")  # GlaS object metrics over a test set (see metrics.py)

# The names the whole package spells, defined once here (this module imports no torch, so any
# module, notebook or test can import them cheaply). Tuples are in the paper's order, the order of
# every table, legend and figure panel.
STRATEGIES = ("full", "region", "superpixel")
"""Acquisition strategies: full images (Alg. 1), square regions (Alg. 2), SLIC superpixels."""
ACQUISITIONS = ("random", "varratio", "entropy", "bald")
"""Acquisition functions: the keys of :data:`alseg_utils.uncertainty.ACQUISITION_FUNCTIONS`."""
SUPERPIXEL_REDUCTIONS = ("sum", "mean")
"""How a superpixel's score is reduced from its unlabelled pixels' scores."""
SUPERPIXEL_LABELS = ("mask", "dominant")
"""What the oracle answers for a superpixel: every pixel's label, or one (dominant) class for all of it."""
SUPERPIXEL_DOMINANT = "superpixel_dominant"
"""Strategy name meaning strategy ``superpixel`` with ``superpixel_label: dominant``: accepted by
``active.strategy``, ``sweep.strategies`` and ``alseg run --strategy`` (all take :data:`METHODS`)."""
SEGMENTATION_METRICS = ("f1", "object_dice", "object_hausdorff", "dice", "jaccard")
"""Test-set segmentation metrics of a step record (object-level GlaS metrics, then pixel metrics)."""
CALIBRATION_METRICS = ("nll", "ece", "brier", "reliability", "resolution", "uncertainty")
"""Test-set calibration metrics of a step record (Brier decomposition last)."""
METRICS = SEGMENTATION_METRICS + CALIBRATION_METRICS
"""Every scalar test metric of a step record: the metric columns of every results table."""
METHODS = (*STRATEGIES, SUPERPIXEL_DOMINANT)
"""What the results group runs by: the strategies, and superpixels labelled by one class click each
(strategy ``superpixel`` with ``superpixel_label: dominant``); see :func:`alseg_utils.results.method_of`."""
COST_MODELS = ("pixels", "polygon_clicks", "dominant_clicks")
"""Annotation cost models (:mod:`alseg_utils.costs`): labelled pixels, polygon vertices, one click per unit."""
EFFORT_AXES = (*COST_MODELS, "clicks")
"""Effort axes of Table 1 and the figures: a cost model, or ``clicks``, the cost as the run was annotated
(polygon clicks for mask-labelled units, dominant clicks for dominant-labelled superpixels)."""
UNLABELLED = 255
"""Label-map value of a pixel nobody labelled (uint8 maps); every loss and metric ignores it."""


@dataclass
class DataConfig:
    """Where the images come from and how they are shaped."""

    dataset: str = "glas"  # glas | isic | folder (a user's own images + masks)
    root: str = "../data/glas_like"  # relative to the params file
    synthetic: bool = True  # generate a synthetic set at `root` when it does not exist
    synthetic_n_train: int = 85
    synthetic_n_test: int = 80
    synthetic_size: list[int] = field(default_factory=lambda: [528, 784])  # [H, W] generated
    image_size: list[int] = field(default_factory=lambda: [528, 784])  # [H, W] the model sees
    resize: str = "pad"  # pad (zero-pad, GlaS as the authors did) | resize (bilinear, ISIC)
    n_initial: int = 10  # initially labelled images, drawn at random
    n_val: int = 10  # validation images (fully labelled, never acquired)
    max_test: int = 0  # 0 = every test image; >0 keeps the first max_test (quick runs)
    contour_radius: int = 3  # disk radius dilating the Sobel contour target


@dataclass
class ModelConfig:
    """ResNet encoder with MC dropout + DCAN decoder."""

    encoder: str = "resnet50"
    # true = ImageNet weights (downloaded once, then cached) | false = random | path of a weights file
    # (relative to the params file; a torchvision / timm state_dict of `encoder`)
    pretrained: bool | str = False
    dropout: float = 0.5  # rate of the dropout placed before residual blocks
    dropout_stages: list[int] = field(default_factory=lambda: [3, 4])  # ResNet layers 1..4
    output_stride: int = 16  # 8 | 16 | 32 (dilation replaces stride beyond it)
    decoder_channels: int = 64  # width of each side-output branch
    # channels of the first stage of a BasicBlock ResNet (resnet10/18/34; doubled at each later stage):
    # torchvision's 64, or fewer for a lighter encoder (random initialisation only)
    width: int = 64


@dataclass
class TrainConfig:
    """One training from scratch (Eq. 9)."""

    iterations: int = 6000  # optimizer steps per training when epochs = 0; the ceiling when epochs > 0
    # > 0: the budget follows the labels, epochs x crops_per_epoch / batch_size steps (alseg_utils.crops)
    epochs: float = 0.0
    min_iterations: int = 0  # with epochs > 0: the floor, so the smallest labelled sets are not starved
    batch_size: int = 5
    crop_size: list[int] = field(default_factory=lambda: [480, 480])  # [H, W]; [] = no crop
    learning_rate: float = 1e-3
    lr_decay_rate: float = 0.1  # lr * rate ** (iteration / lr_decay_steps)
    lr_decay_steps: int = 6000  # iterations (epochs = 0)
    lr_decay_epochs: float = 0.0  # with epochs > 0: lr * rate ** (epoch / lr_decay_epochs); 0 = no decay
    weight_decay: float = 1e-3  # L2 on the weights, lambda of Eq. 9
    aux_weight: float = 1.0  # w of Eq. 9 at iteration 0
    aux_decay: float = 0.1  # w = aux_weight * aux_decay ** floor(iteration / aux_decay_every)
    aux_decay_every: int = 2000  # iterations (epochs = 0)
    # with epochs > 0: w = aux_weight * aux_decay ** floor(epoch / aux_decay_epochs); 0 = constant
    aux_decay_epochs: float = 0.0
    ema_decay: float = 0.0  # > 0: predict with an exponential moving average of the weights (authors: 0.999)
    # > 0 (needs epochs > 0 and a validation set): stop once the validation loss has not improved for this many
    # epochs and keep the weights of its lowest point ("retrain until it converges"); the budget is the ceiling
    patience_epochs: float = 0.0
    # with patience_epochs > 0: no plateau stop before this many epochs; the lowest validation loss of the whole
    # training is still the one kept (docs/quick_settings.md: it changed no kept loss of the quick setting, so 0 there)
    plateau_start_epochs: float = 0.0
    val_every: int = 10  # optimizer steps between two validation checks when patience_epochs > 0
    # each cross-entropy is summed over labelled pixels and divided by: "batch" = the batch's labelled pixels
    # (the authors' mean); "training" = the mean labelled pixels of a batch over the whole training (one constant,
    # so a window pixel in a batch of windows weighs no more than a pixel of a fully labelled image)
    loss_normaliser: str = "batch"
    # true: each step's learning rate x the batch's labelled pixels / (batch_size x crop pixels). Adam is blind to
    # the scale of a loss, so without it a batch of four 16x16 windows moves the weights as far as a batch of four
    # fully labelled images; fully labelled sets train exactly as without it
    lr_by_labels: bool = False
    flips: bool = True
    rotation: float = 20.0  # max degrees of random rotation
    brightness: float = 0.1  # max additive brightness jitter, images in [0, 1]
    amp: bool = True  # mixed precision on CUDA (ignored on CPU)
    device: str = "auto"  # auto | cpu | cuda
    progress: bool = True  # tqdm bars (also off when not a terminal)


@dataclass
class ActiveConfig:
    """The active-learning loop (Alg. 1 and 2)."""

    # full (Alg. 1) | region (Alg. 2, square windows) | superpixel (Alg. 2, SLIC units) | superpixel_dominant
    # (read as superpixel with superpixel_label: dominant)
    strategy: str = "region"
    acquisition: str = "bald"  # random | varratio | entropy | bald
    seed: int = 0
    steps: int = 10  # acquisition steps after the initial training
    images_per_step: int = 5  # M of Alg. 1
    regions_per_step: int = 20  # M of Alg. 2
    region_size: int = 150  # square window side, pixels
    region_stride: int = 30
    mc_samples: int = 30  # T stochastic forward passes
    mc_batch_size: int = 4
    object_threshold: float = 0.5  # pseudo-label: mean p(object) >= threshold
    contour_threshold: float = 0.2  # pseudo-label: mean p(contour) >= threshold
    restarts_full: int = 3  # trainings per step, best validation loss kept
    restarts_region: int = 4  # also for superpixel
    # trainings of the initial model (step 0, shared by every run of a seed), best validation loss kept
    # (Alg. 1, line 1); 0 = as the run's strategy (restarts_full or restarts_region)
    restarts_initial: int = 0
    # superpixel strategy: SLIC units under the square strategy's pixel budget (regions_per_step * region_size**2)
    superpixel_pixels: int = 0  # wanted segment area, pixels; 0 = region_size ** 2
    superpixel_compactness: float = 40.0  # SLIC colour/space trade-off (higher = more square-like)
    superpixel_reduce: str = "sum"  # segment score: sum | mean of its unlabelled pixels' scores
    # mask: the oracle labels every pixel of a segment | dominant: one class click per segment, given to all
    # its pixels (Cai et al. 2021), round(regions_per_step * clicks per square window) segments per step
    superpixel_label: str = "mask"
    # superpixel_label dominant: wanted segment area, pixels; 0 = as superpixel_pixels. Every pixel of a segment
    # gets its majority class, so smaller segments carry less label noise (and a step, of a fixed number of
    # clicks, labels fewer pixels)
    dominant_superpixel_pixels: int = 0
    # spatial diversity of one step's picks (region and superpixel), off = the paper's setting
    max_per_image: int = 0  # at most this many regions/superpixels per image and step; 0 = no cap
    min_distance: int = 0  # pixels between two picks of one image; 0 = adjacent allowed

    def superpixel_area(self) -> int:
        """Wanted SLIC segment area in pixels (``superpixel_pixels``, or the square's area when 0;
        ``dominant_superpixel_pixels`` first when the superpixels are labelled by their dominant class)."""
        dominant = self.superpixel_label == "dominant" and self.dominant_superpixel_pixels
        return dominant or self.superpixel_pixels or self.region_size ** 2

    def pixel_budget(self) -> int:
        """Most pixels one region or superpixel step may add: ``regions_per_step * region_size ** 2``."""
        return self.regions_per_step * self.region_size ** 2

    def method_name(self) -> str:
        """The strategy as sweeps and run folders name it: ``superpixel_dominant`` for dominant-class
        superpixels, else ``strategy``."""
        dominant = self.strategy == "superpixel" and self.superpixel_label == "dominant"
        return SUPERPIXEL_DOMINANT if dominant else self.strategy


@dataclass
class EvalConfig:
    """Test-set evaluation and Table 1."""

    n_bins: int = 15  # ECE / reliability bins
    min_object_size: int = 100  # pixels; smaller predicted objects are removed
    eval_batch_size: int = 4
    # GlaS object F1 / Dice / Hausdorff over the test set: pooled (the challenge: TP/FP/FN summed,
    # objects weighted over the whole set) | image_mean (the per-image value averaged over images)
    object_aggregate: str = "pooled"
    # Table 1: metric -> target scores (absolute, in [0, 1]) whose reach is reported
    targets: dict[str, list[float]] = field(default_factory=lambda: {"f1": [0.75, 0.8, 0.85]})
    relative_target: float = 0.95  # also report reaching this fraction of the full-data score


@dataclass
class SweepConfig:
    """What `alseg sweep` expands."""

    strategies: list[str] = field(default_factory=lambda: list(STRATEGIES))
    acquisitions: list[str] = field(default_factory=lambda: list(ACQUISITIONS))
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3])
    full_data_reference: bool = True  # also train once on all labels (the "full data" line)
    gpus_per_job: float = 0.0  # Ray executor: GPUs each job asks for


@dataclass
class RunConfig:
    """Everything one run (or one sweep) needs."""

    name: str = "run"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    active: ActiveConfig = field(default_factory=ActiveConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    source: str = ""  # the params file it came from (set by load_config, not read from YAML)

    def data_root(self) -> Path:
        """The data folder, resolved against the params file's folder when relative."""
        root = Path(self.data.root).expanduser()
        if root.is_absolute() or not self.source:
            return root
        return (Path(self.source).parent / root).resolve()

    def weights_file(self) -> Path | None:
        """The weights file of ``model.pretrained`` (None for true / false), resolved like ``data_root``."""
        if isinstance(self.model.pretrained, bool):
            return None
        path = Path(self.model.pretrained).expanduser()
        if path.is_absolute() or not self.source:
            return path
        return (Path(self.source).parent / path).resolve()

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (what is stored with each run)."""
        return dataclasses.asdict(self)

    def fingerprint_dict(self) -> dict[str, Any]:
        """What results depend on: ``to_dict()`` less the source, sweep and progress switch.

        A weights file (``model.pretrained: <path>``) enters as ``"sha256:<digest>"`` of its content,
        so moving the file keeps the fingerprint and changing its content changes it.

        Raises:
            ConfigError: the weights file does not exist.
        """
        d = self.to_dict()
        d.pop("source", None)
        d.pop("sweep", None)
        d["train"].pop("progress", None)
        weights = self.weights_file()
        if weights is not None:
            d["model"]["pretrained"] = f"sha256:{file_sha256(weights)}"
        return d

    def fingerprint(self) -> str:
        """Hash of everything that changes results (not the source path or progress switches)."""
        blob = json.dumps(self.fingerprint_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


_SHA256_CACHE: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | Path) -> str:
    """SHA-256 hex digest of a file's bytes (remembered per path, size and modification time).

    Raises:
        ConfigError: the file does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"model.pretrained: weights file {path} not found; give an existing file "
                          "(relative paths are relative to the params file), true (ImageNet weights) or false")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA256_CACHE:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        _SHA256_CACHE[key] = digest.hexdigest()
    return _SHA256_CACHE[key]


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and return it (ints accepted for floats)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        for option in inner:  # the first type that accepts the value (bool | str: True, "w.pt")
            try:
                return _coerce(value, option, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: expected {' or '.join(_type_name(a) for a in inner)}, got {value!r}")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(tp)
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        kt, vt = typing.get_args(tp)
        return {_coerce(k, kt, where): _coerce(v, vt, f"{where}.{k}") for k, v in value.items()}
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float) and isinstance(value, bool):
        raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}")
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    return value


def _build(cls: type, raw: Any, where: str) -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping of keys, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.name != "source"}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r} (known keys: {', '.join(sorted(names))})"
        )
    kwargs = {}
    for key, value in raw.items():
        tp = hints[key]
        sub = f"{where}.{key}" if where else key
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            kwargs[key] = _build(tp, value, sub)
        else:
            kwargs[key] = _coerce(value, tp, sub)
    return cls(**kwargs)


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")


def _check_choice(value: str, choices: tuple[str, ...], key: str) -> None:
    _check(value in choices, key, f"{value!r} is not one of {', '.join(choices)}")


def _check_size(size: list[int], key: str, allow_empty: bool = False) -> None:
    if allow_empty and not size:
        return
    _check(len(size) == 2 and all(s > 0 for s in size), key, f"expected [height, width] > 0, got {size}")


def validate_config(cfg: RunConfig) -> None:
    """Raise :class:`ConfigError` naming the key when a value is impossible."""
    d, m, t, a, e, s = cfg.data, cfg.model, cfg.train, cfg.active, cfg.eval, cfg.sweep
    _check_choice(d.dataset, DATASETS, "data.dataset")
    _check_choice(d.resize, ("pad", "resize"), "data.resize")
    _check_size(d.image_size, "data.image_size")
    _check_size(d.synthetic_size, "data.synthetic_size")
    for key in ("synthetic_n_train", "synthetic_n_test", "n_initial", "contour_radius"):
        _check(getattr(d, key) >= 1, f"data.{key}", f"must be >= 1, got {getattr(d, key)}")
    for key in ("n_val", "max_test"):
        _check(getattr(d, key) >= 0, f"data.{key}", f"must be >= 0, got {getattr(d, key)}")
    _check_choice(m.encoder, ENCODERS, "model.encoder")
    _check(0.0 <= m.dropout < 1.0, "model.dropout", f"must be in [0, 1), got {m.dropout}")
    _check(all(1 <= st <= 4 for st in m.dropout_stages), "model.dropout_stages",
           f"stages are ResNet layers 1..4, got {m.dropout_stages}")
    _check(m.output_stride in (8, 16, 32), "model.output_stride", f"must be 8, 16 or 32, got {m.output_stride}")
    _check(m.decoder_channels >= 1, "model.decoder_channels", "must be >= 1")
    _check(m.width >= 1, "model.width", f"must be >= 1, got {m.width}")
    _check(m.width == 64 or m.encoder in NARROW_ENCODERS, "model.width",
           f"only {', '.join(NARROW_ENCODERS)} can be narrowed; set 64 for {m.encoder}")
    _check(m.width == 64 or m.pretrained is not True, "model.width",
           f"ImageNet weights exist for width 64 only; set model.pretrained: false, the path of a weights file of "
           f"this width, or model.width: 64 (got {m.width})")
    _check(not (m.pretrained is True and m.encoder in NO_IMAGENET_WEIGHTS), "model.pretrained",
           f"no ImageNet weights ship for {m.encoder}; set false, give a weights file, or choose resnet18")
    _check(not isinstance(m.pretrained, str) or bool(m.pretrained.strip()), "model.pretrained",
           "give true (ImageNet weights), false (random) or the path of a weights file")
    for key in ("iterations", "batch_size", "lr_decay_steps", "aux_decay_every"):
        _check(getattr(t, key) >= 1, f"train.{key}", f"must be >= 1, got {getattr(t, key)}")
    _check_size(t.crop_size, "train.crop_size", allow_empty=True)
    for key in ("epochs", "lr_decay_epochs", "aux_decay_epochs"):
        value = getattr(t, key)
        _check(math.isfinite(value) and value >= 0, f"train.{key}", f"must be a number >= 0, got {value}")
    _check(math.isfinite(t.patience_epochs) and t.patience_epochs >= 0, "train.patience_epochs",
           f"must be a number >= 0 (0 = train the whole budget), got {t.patience_epochs}")
    _check(t.patience_epochs == 0 or t.epochs > 0, "train.patience_epochs",
           "needs train.epochs > 0 (patience is counted in epochs); set train.epochs or patience_epochs: 0")
    _check_choice(t.loss_normaliser, LOSS_NORMALISERS, "train.loss_normaliser")
    _check(math.isfinite(t.plateau_start_epochs) and t.plateau_start_epochs >= 0, "train.plateau_start_epochs",
           f"must be a number >= 0 (0 = a plateau may stop a training at any step), got {t.plateau_start_epochs}")
    _check(t.val_every >= 1, "train.val_every", f"must be >= 1, got {t.val_every}")
    _check(0.0 <= t.ema_decay < 1.0, "train.ema_decay", f"must be in [0, 1) (0 = off), got {t.ema_decay}")
    _check(0 <= t.min_iterations <= t.iterations, "train.min_iterations",
           f"must be in [0, train.iterations = {t.iterations}], got {t.min_iterations}")
    _check(t.learning_rate > 0, "train.learning_rate", "must be > 0")
    for key in ("lr_decay_rate", "aux_decay"):
        _check(0.0 < getattr(t, key) <= 1.0, f"train.{key}", f"must be in (0, 1], got {getattr(t, key)}")
    for key in ("weight_decay", "aux_weight", "rotation", "brightness"):
        _check(getattr(t, key) >= 0, f"train.{key}", f"must be >= 0, got {getattr(t, key)}")
    _check_choice(t.device, ("auto", "cpu", "cuda"), "train.device")
    _check_choice(a.strategy, METHODS, "active.strategy")
    _check_choice(a.acquisition, ACQUISITIONS, "active.acquisition")
    for key in ("steps",):
        _check(getattr(a, key) >= 0, f"active.{key}", f"must be >= 0, got {getattr(a, key)}")
    for key in ("images_per_step", "regions_per_step", "region_size", "region_stride",
                "mc_samples", "mc_batch_size", "restarts_full", "restarts_region"):
        name = {"mc_samples": "mc_samples (T)", "images_per_step": "images_per_step (M)",
                "regions_per_step": "regions_per_step (M)"}.get(key, key)
        _check(getattr(a, key) >= 1, f"active.{name}", f"must be >= 1, got {getattr(a, key)}")
    for key in ("object_threshold", "contour_threshold"):
        _check(0.0 <= getattr(a, key) <= 1.0, f"active.{key}", f"must be in [0, 1], got {getattr(a, key)}")
    h, w = d.image_size
    _check(a.region_size <= min(h, w), "active.region_size",
           f"{a.region_size} px does not fit in images of {h}x{w} (data.image_size); use at most {min(h, w)}")
    for key in ("superpixel_pixels", "dominant_superpixel_pixels", "max_per_image", "min_distance",
                "restarts_initial"):
        _check(getattr(a, key) >= 0, f"active.{key}", f"must be >= 0 (0 = off / default), got {getattr(a, key)}")
    area_key = "dominant_superpixel_pixels" if a.superpixel_label == "dominant" and a.dominant_superpixel_pixels \
        else "superpixel_pixels"
    _check(a.superpixel_area() <= h * w, f"active.{area_key}",
           f"superpixels of {a.superpixel_area()} px are larger than the images ({h}x{w} = {h * w} px, "
           f"data.image_size); use at most {h * w}")
    _check(math.isfinite(a.superpixel_compactness) and a.superpixel_compactness > 0,
           "active.superpixel_compactness", f"must be a number > 0, got {a.superpixel_compactness}")
    _check_choice(a.superpixel_reduce, SUPERPIXEL_REDUCTIONS, "active.superpixel_reduce")
    _check_choice(a.superpixel_label, SUPERPIXEL_LABELS, "active.superpixel_label")
    _check(a.superpixel_label == "mask" or a.strategy == "superpixel", "active.superpixel_label",
           f"'dominant' labels superpixels, but active.strategy is {a.strategy!r}; set active.strategy: superpixel "
           f"(or {SUPERPIXEL_DOMINANT}, which sets both), or superpixel_label: mask")
    if t.crop_size:
        _check(t.crop_size[0] <= h and t.crop_size[1] <= w, "train.crop_size",
               f"{t.crop_size} is larger than data.image_size {d.image_size}")
    _check(e.n_bins >= 1, "eval.n_bins", "must be >= 1")
    _check(e.min_object_size >= 0, "eval.min_object_size", "must be >= 0")
    _check(e.eval_batch_size >= 1, "eval.eval_batch_size", "must be >= 1")
    _check_choice(e.object_aggregate, OBJECT_AGGREGATES, "eval.object_aggregate")
    _check(0.0 < e.relative_target <= 1.0, "eval.relative_target", "must be in (0, 1]")
    for metric, values in e.targets.items():
        _check(all(0.0 <= v <= 1.0 for v in values), f"eval.targets.{metric}",
               f"targets are fractions in [0, 1], got {values}")
    for st in s.strategies:
        _check_choice(st, METHODS, "sweep.strategies")
    for ac in s.acquisitions:
        _check_choice(ac, ACQUISITIONS, "sweep.acquisitions")
    _check(len(s.seeds) >= 1, "sweep.seeds", "needs at least one seed")
    _check(s.gpus_per_job >= 0, "sweep.gpus_per_job", "must be >= 0")


def _expand_strategy_name(raw: Any) -> Any:
    """``active.strategy: superpixel_dominant`` as ``strategy: superpixel`` + ``superpixel_label: dominant``.

    The name wins over a ``superpixel_label`` of the same mapping (an override of the strategy, as a
    sweep job makes, then says what the job runs). Anything else is returned unchanged.
    """
    active = raw.get("active") if isinstance(raw, dict) else None
    if not isinstance(active, dict) or active.get("strategy") != SUPERPIXEL_DOMINANT:
        return raw
    return {**raw, "active": {**active, "strategy": "superpixel", "superpixel_label": "dominant"}}


def config_from_dict(raw: dict[str, Any], source: str = "<dict>") -> RunConfig:
    """Build and validate a :class:`RunConfig` from a plain mapping.

    Args:
        raw: mapping with the sections of a params file.
        source: where it came from, used in error messages and to resolve relative paths.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: unknown key, wrong type or impossible value (the message names file and key).
    """
    try:
        cfg = _build(RunConfig, _expand_strategy_name(raw), "")
        cfg.source = source
        validate_config(cfg)
        if cfg.weights_file() is not None:  # a relative weights path is relative to the params file
            cfg.model.pretrained = str(cfg.weights_file())
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    return cfg


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Read a params YAML file into a validated :class:`RunConfig`.

    Args:
        path: the params file.
        overrides: dotted keys to replace after reading, e.g. ``{"active.seed": 1}``.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: the file is missing, empty (or only comments), not YAML, or holds an invalid value.
    """
    p = Path(path)
    raw = read_params(p)
    for dotted, value in (overrides or {}).items():
        _set_dotted(raw, dotted, value, str(p))
    return config_from_dict(raw, source=str(p.resolve()))


BASE_KEY = "base"  # top-level key of a params file: the file it starts from
PATH_KEYS = (("data", "root"), ("model", "pretrained"))  # values relative to the file that sets them


def _read_yaml_mapping(p: Path) -> dict[str, Any]:
    if not p.is_file():
        raise ConfigError(f"{p}: params file not found (see params/quick.yaml for an example)")
    try:
        raw = yaml.safe_load(p.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"{p}: not valid YAML ({str(err).splitlines()[0]})") from None
    if raw is None:  # an empty file, or only comments: almost surely a mistake, not "all defaults"
        raise ConfigError(f"{p}: params file is empty; copy params/quick.yaml as a start "
                          "(or write {} to run with every default)")
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: expected a mapping of sections at the top level")
    return raw


def read_params(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The mapping a params file stands for, its ``base`` file (and that one's) laid under it.

    Args:
        path: the params file.

    Returns:
        The sections of the file over those of its base, without the ``base`` key. A relative
        ``data.root`` or ``model.pretrained`` the base sets is rewritten relative to ``path``'s folder
        (unchanged when both files share a folder).

    Raises:
        ConfigError: a file is missing, empty or not YAML; ``base`` is not a file name, names a file
            that does not exist, or the bases form a cycle; a file with a ``base`` sets no ``name``.
    """
    p = Path(path)
    raw = _read_yaml_mapping(p)
    if BASE_KEY not in raw:
        return raw
    base_name = raw.pop(BASE_KEY)
    if not isinstance(base_name, str) or not base_name.strip():
        raise ConfigError(f"{p}: base: expected the file name of a params file (e.g. base: quick.yaml), "
                          f"got {base_name!r}")
    base_path = (p.parent / Path(base_name).expanduser()).resolve()
    chain = (*_chain, p.resolve())
    if base_path in chain:
        raise ConfigError(f"{p}: base: {base_name} leads back to {base_path.name} (the bases form a cycle); "
                          "let one file stand on its own")
    if not base_path.is_file():
        raise ConfigError(f"{p}: base: {base_path} not found (relative to {p.parent}); fix the file name")
    if "name" not in raw:
        raise ConfigError(f"{p}: a params file with a base must set its own name "
                          f"(or its runs would share runs/<{base_path.name}'s name>)")
    merged = _rebase_paths(read_params(base_path, chain), base_path.parent, p.parent)
    for key, value in raw.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _rebase_paths(raw: dict[str, Any], base_dir: Path, file_dir: Path) -> dict[str, Any]:
    """``raw`` with its relative path values re-expressed from ``base_dir`` to ``file_dir``."""
    if base_dir.resolve() == file_dir.resolve():
        return raw
    out = {key: dict(value) if isinstance(value, dict) else value for key, value in raw.items()}
    for section, key in PATH_KEYS:
        value = out.get(section, {}).get(key) if isinstance(out.get(section), dict) else None
        if isinstance(value, str) and not Path(value).expanduser().is_absolute():
            out[section][key] = os.path.relpath(base_dir / value, file_dir)
    return out


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any, source: str) -> None:
    parts = dotted.split(".")
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{source}: cannot override {dotted!r}: {part!r} is not a section")
    node[parts[-1]] = value
