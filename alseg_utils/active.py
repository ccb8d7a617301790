"""The two active-learning loops (Alg. 1: full images; Alg. 2: regions) with resumable state.

One run = one (strategy, acquisition function, seed). Step 0 trains on the random initial set; each
later step scores the pool with MC dropout, asks the oracle for M images or M regions, retrains from
scratch (best of k restarts by validation loss), evaluates on the test set and appends one record.

:class:`ActiveRun` is the loop only. What it chooses comes from the strategy's labelling unit
(:mod:`alseg_utils.selection`: whole images, square windows or superpixels, behind one interface),
and every file it reads or writes goes through its :class:`~alseg_utils.run_folder.RunFolder`
(layout, atomic writes, damaged files and ``--recover``: see :mod:`alseg_utils.run_folder`). A run
killed at any point resumes from its last finished step and produces the same records as an
uninterrupted run (CPU).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from alseg_utils.config import ACQUISITIONS, METRICS, STRATEGIES, UNLABELLED, RunConfig
from alseg_utils.costs import annotated_cost, cost_fields, selection_costs
from alseg_utils.data import PoolSplit, SegmentationSet, load_dataset, split_pool
from alseg_utils.devices import resolve_device
from alseg_utils.errors import ConfigError
from alseg_utils.evaluate import evaluate_model
from alseg_utils.labels import LabelStore
from alseg_utils.mc_dropout import MCPrediction, mc_predict
from alseg_utils.model import build_model
from alseg_utils.oracle import AnnotationRequest, Oracle, SimulatedOracle
from alseg_utils.run_folder import NEW_FOLDER, RunFolder, RunState  # noqa: F401 - NEW_FOLDER re-exported
from alseg_utils.selection import (  # noqa: F401 - random_unit_scores, shown_superpixels re-exported
    Selection,
    UnitStrategy,
    random_unit_scores,
    shown_superpixels,
    unit_strategy,
)
from alseg_utils.superpixels import cached_superpixels
from alseg_utils.train import LabelledSet, train_with_restarts
from alseg_utils.uncertainty import score_prediction

SHOWN_PER_STEP = 4  # selected images whose maps are kept for the notebooks
_METRIC_KEYS = (*METRICS, "reliability_bins", "val_loss", "train_iterations",
                "train_best_iteration")  # what a step record keeps of evaluation


@dataclass
class RunData:
    """The images of one run, split as the paper does.

    Attributes:
        train: AL training images (initial set first, then the pool), with ground truth for the oracle.
        val: validation images (fully labelled, never acquired).
        test: test images.
        split: indices of initial / val / pool into the loaded training split.
        n_initial: the first ``n_initial`` images of ``train`` are labelled at step 0.
    """

    train: SegmentationSet
    val: SegmentationSet
    test: SegmentationSet
    split: PoolSplit
    n_initial: int


def prepare_run_data(cfg: RunConfig, require_masks: bool = True) -> RunData:
    """Load (or generate) the data and draw the seed's initial / validation / pool split.

    Args:
        cfg: the run configuration.
        require_masks: False accepts a ``folder`` dataset without masks and without a test set
            (its labels then come from a person, :class:`~alseg_utils.annotation.FilesOracle`).

    Raises:
        ConfigError: the pool is too small for the requested images per step, or validation
            images are asked for images without masks.
        DataError: the data folder is missing or malformed.
    """
    full = load_dataset(cfg, "train", require_masks=require_masks)
    test = load_dataset(cfg, "test", require_masks=require_masks)
    if not full.has_masks and cfg.data.n_val > 0:
        raise ConfigError(f"data.n_val = {cfg.data.n_val}, but the training images have no masks to validate "
                          "with; set data.n_val: 0 (restarts are then ranked by their training loss)")
    split = split_pool(len(full), cfg.data.n_initial, cfg.data.n_val, cfg.active.seed, full.grades)
    if cfg.active.strategy == "full" and cfg.active.images_per_step > len(split.pool):
        raise ConfigError(
            f"active.images_per_step (M) = {cfg.active.images_per_step} is larger than the pool "
            f"({len(split.pool)} images after {cfg.data.n_initial} initial and {cfg.data.n_val} "
            "validation images); lower M or use more data"
        )
    train = full.subset(list(split.initial) + list(split.pool))
    return RunData(train, full.subset(split.val), test, split, len(split.initial))


def _labelled_set(images: np.ndarray, store: LabelStore, idx: list[int]) -> LabelledSet:
    return LabelledSet(images=images[idx], labels=store.labels[idx], contours=store.contours[idx])


def _full_set(data: SegmentationSet) -> LabelledSet:
    lab = np.where(data.valid, data.masks, UNLABELLED).astype(np.uint8)
    con = np.where(data.valid, data.contours, UNLABELLED).astype(np.uint8)
    return LabelledSet(images=data.images, labels=lab, contours=con)


def reference_set(data: RunData) -> tuple[LabelledSet, LabelledSet]:
    """What the full-training-data reference trains and validates on: every AL training image fully
    labelled (padding ignored), and the validation images."""
    return _full_set(data.train), _full_set(data.val)


def _step_seed(cfg: RunConfig, step: int) -> int:
    """Seed of one step's training, MC dropout, evaluation and Random draws.

    Step 0 is shared by every run of a seed (one initial model, as in the paper). Later steps get a
    stream of their own per (seed, step, strategy, acquisition function), so the curves of different
    strategies and functions do not share training dips by construction.
    """
    a = cfg.active
    if step == 0:
        return int(a.seed) * 1000
    key = [int(a.seed), step, STRATEGIES.index(a.strategy), ACQUISITIONS.index(a.acquisition)]
    return int(np.random.SeedSequence(key).generate_state(1)[0] >> 1)


@dataclass(frozen=True)
class AcquiredStep:
    """What one step labelled, as the run stores it.

    Attributes:
        fields: the step record's fields about it: ``images`` (pool indices, what the step
            labelled); after step 0 also ``image_names``, ``regions``, ``acquired_pixels``,
            ``acquired_score_mean``, ``acquired_entropy_mean`` (and ``superpixels``). Its cost in
            clicks is counted by the record (:mod:`alseg_utils.costs`).
        arrays: the arrays of the step's selection file (see
            :meth:`~alseg_utils.run_folder.RunFolder.load_selection`); None at step 0.
        selection: what the labelling unit chose; None at step 0.
    """

    fields: dict[str, Any]
    arrays: dict[str, np.ndarray] | None = None
    selection: Selection | None = None


class ActiveRun:
    """One resumable active-learning run in ``out_dir``.

    Args:
        cfg: the run configuration (strategy, acquisition and seed are in ``cfg.active``).
        out_dir: the run folder; created, or resumed when it holds the same config.
        oracle: who answers annotation requests (default: ground truth, :class:`SimulatedOracle`).
        progress: show tqdm bars.
        reference: the full-training-data run (one training on every AL training image).
        recover: repair a damaged ``state.json`` or ``steps.jsonl`` from the other (see
            :mod:`alseg_utils.run_folder`); what was done is listed in :attr:`recovered`.

    Attributes:
        folder: the run folder (every file of the run).
        unit: the labelling unit of ``cfg.active.strategy`` (:mod:`alseg_utils.selection`).
        state: the last finished step, its records and files.
        recovered: one line per file that ``recover=True`` repaired (empty when none was).

    Raises:
        RunStateError: ``out_dir`` holds a run of a different configuration, or one of its files is
            damaged (named in the message, with what to do).
    """

    def __init__(self, cfg: RunConfig, out_dir: str | Path, oracle: Oracle | None = None,
                 progress: bool = True, reference: bool = False, recover: bool = False) -> None:
        self.cfg, self.progress, self.reference = cfg, progress, reference
        self.folder = RunFolder(out_dir)
        self.out = self.folder.path
        self.folder.claim(cfg.fingerprint(), reference, cfg.to_dict())
        self.data = prepare_run_data(cfg, require_masks=getattr(oracle, "needs_ground_truth", True))
        self.oracle = oracle or SimulatedOracle(
            np.where(self.data.train.valid, self.data.train.masks, 0),
            np.where(self.data.train.valid, self.data.train.contours, 0))
        self.device = resolve_device(cfg.train.device)
        self.unit: UnitStrategy = unit_strategy(cfg.active, self._superpixels)
        self.state: RunState
        self.state, self.recovered = self.folder.read_state(recover, self._new_model, self.data.train.valid.shape)

    # ----------------------------------------------------------------- the loop
    @property
    def records(self) -> list[dict[str, Any]]:
        """Records of the finished steps."""
        return list(self.state.records)

    def run(self) -> list[dict[str, Any]]:
        """Run (or resume) until the configured number of steps or an empty pool.

        Returns:
            The records of every finished step.
        """
        last = 0 if self.reference else self.cfg.active.steps
        bar = tqdm(total=last + 1, initial=self.state.step + 1, desc=self._name(),
                   disable=not self.progress, unit="step")
        store, model = self._restore()
        while self.state.step < last:
            step = self.state.step + 1
            if step == 0:
                store = self._initial_store()
                model, record = self._initial_model(store, AcquiredStep({"images": self._initial_images()}))
            else:
                assert store is not None and model is not None  # made at step 0, or restored
                acquired = self._acquire(step, store, model)
                if acquired is None:
                    break
                model, record = self._train_and_evaluate(step, store, acquired)
            self.state = self.folder.commit(self.state, step, store, model, record)
            bar.update(1)
        bar.close()
        return self.records

    def _name(self) -> str:
        a = self.cfg.active
        return "reference" if self.reference else f"{a.strategy}-{a.acquisition}-s{a.seed}"

    def _new_model(self) -> torch.nn.Module:
        return build_model(self.cfg.model)

    def _restore(self) -> tuple[LabelStore | None, torch.nn.Module | None]:
        if self.state.step < 0:
            return None, None
        store, model = self.folder.restore(self.state, self._new_model, self.data.train.valid.shape)
        return store, model.to(self.device)

    def _initial_images(self) -> list[int]:
        """The images labelled at step 0: the initial set (every AL training image for the reference)."""
        return list(range(len(self.data.train))) if self.reference else list(range(self.data.n_initial))

    def _initial_store(self) -> LabelStore:
        store = LabelStore.empty(self.data.train.valid)
        idx = self._initial_images()
        request = AnnotationRequest(step=0, images=idx, image_names=self._names(idx))
        labels, contours = self.oracle.label_images(idx, request)
        store.add_images(idx, labels, contours)
        return store

    def _names(self, images: list[int]) -> list[str]:
        return [self.data.train.names[i] for i in images]

    def _superpixels(self) -> np.ndarray:
        """SLIC segments of every AL training image, int32 [N, H, W] (-1 on padding), cached in the run folder."""
        a = self.cfg.active
        return cached_superpixels(self.folder.superpixels_file, self.data.train.images, a.superpixel_area(),
                                  a.superpixel_compactness, self.data.train.valid)

    def _restarts(self, step: int) -> int:
        """Trainings of ``step``: ``restarts_initial`` for the shared initial model when set, else the strategy's."""
        a = self.cfg.active
        if step == 0 and not self.reference and a.restarts_initial > 0:
            return a.restarts_initial
        return a.restarts_full if (self.reference or self.unit.whole_images) else a.restarts_region

    def _train_and_evaluate(self, step: int, store: LabelStore, acquired: AcquiredStep):
        t0 = time.perf_counter()
        trained = train_with_restarts(
            _labelled_set(self.data.train.images, store, store.labelled_images()), _full_set(self.data.val),
            self.cfg.model, self.cfg.train, restarts=self._restarts(step), seed=_step_seed(self.cfg, step))
        t1 = time.perf_counter()
        metrics = self._evaluate(trained.model, step)
        metrics["val_loss"] = float(trained.val_loss)
        metrics["train_iterations"] = int(trained.iterations)
        metrics["train_best_iteration"] = int(trained.best_iteration)
        timing = {"train_s": round(t1 - t0, 2), "eval_s": round(time.perf_counter() - t1, 2)}
        if acquired.arrays is not None:
            self.folder.save_selection(step, acquired.arrays)
        return trained.model, self._record(step, store, acquired, metrics, timing)

    def _evaluate(self, model: torch.nn.Module, step: int) -> dict[str, Any]:
        """Test-set metrics; none when the data has no labelled test set (a user's own images)."""
        if len(self.data.test) == 0:
            return {}
        return evaluate_model(model, self.data.test, self.cfg, seed=_step_seed(self.cfg, step), device=self.device)

    def _record(self, step: int, store: LabelStore, acquired: AcquiredStep, metrics: dict[str, Any],
                timing: dict[str, Any]) -> dict[str, Any]:
        a = self.cfg.active
        return {
            "name": self.cfg.name, "strategy": a.strategy, "superpixel_label": a.superpixel_label,
            "acquisition": a.acquisition, "seed": a.seed, "reference": self.reference, "step": step,
            "labelled_fraction": store.labelled_fraction(), "labelled_pixels": store.labelled_pixels(),
            "pool_pixels": int(store.valid.sum()), "labelled_images": len(store.labelled_images()),
            **self._costs(step, store, acquired), **metrics, **acquired.fields, "timing": timing,
        }

    def _costs(self, step: int, store: LabelStore, acquired: AcquiredStep) -> dict[str, Any]:
        """What the step's labels cost in every model, and the running totals (:func:`~alseg_utils.costs.cost_fields`).

        Step 0 acquires its images whole. The objects are the ground-truth instances when the data
        have masks, else the components of the labels the oracle answered (:mod:`alseg_utils.costs`).
        Totals add to the previous record (read back on resume), never to a cached initial model's.
        """
        selection = acquired.selection
        if selection is None:  # step 0: the initial (or, for the reference, every) image, whole
            idx = list(acquired.fields["images"])
            selection = Selection(idx, idx, store.labelled()[idx] & store.valid[idx])
        train = self.data.train
        objects = train.instances if train.has_masks else store.labels == 1  # [N, H, W]
        costs = selection_costs(selection, objects)
        previous = self.state.records[-1] if step > 0 and self.state.records else None
        a = self.cfg.active
        return cost_fields(costs, annotated_cost(a.strategy, a.superpixel_label, step), previous)

    # ----------------------------------------------------------------- the shared initial model
    def _initial_key(self, store: LabelStore) -> str:
        """Everything step 0 depends on (its labels included): not the strategy, function or later-step settings."""
        d = self.cfg.fingerprint_dict()  # a weights file enters by its content, not its path
        for key in ("source", "sweep", "name"):
            d.pop(key, None)
        d["train"].pop("progress", None)
        d["active"] = {k: d["active"][k] for k in ("seed", "mc_samples", "mc_batch_size", "object_threshold",
                                                   "contour_threshold")}
        d["restarts"], d["reference"] = self._restarts(0), self.reference
        d["labels"] = hashlib.sha256(store.labels.tobytes() + store.contours.tobytes()).hexdigest()
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def _initial_model(self, store: LabelStore, acquired: AcquiredStep):
        """Step 0, trained once per seed and shared by every run next to this one (same initial set).

        The cache lives in ``<out_dir>/../.initial_models/<key>/`` (model + metrics, written
        atomically, metrics last). Every strategy and acquisition function of a seed starts from the
        same initial model, as in the paper, and a sweep trains it once instead of once per job.
        """
        key = self._initial_key(store)
        cached = self.folder.load_initial_model(key, self._new_model)
        if cached is not None:
            model, metrics = cached
            return model.to(self.device), self._record(0, store, acquired, metrics, {"cached": True})
        model, record = self._train_and_evaluate(0, store, acquired)
        self.folder.save_initial_model(key, model, {k: v for k, v in record.items() if k in _METRIC_KEYS})
        return model, record

    # ----------------------------------------------------------------- acquisition
    def _acquire(self, step: int, store: LabelStore, model: torch.nn.Module) -> AcquiredStep | None:
        """Score the unit's candidates with MC dropout, choose, ask the oracle, store its labels."""
        a = self.cfg.active
        cand = self.unit.candidates(store)
        if not cand:
            return None
        pred = mc_predict(model, self.data.train.images[cand], T=a.mc_samples, batch_size=a.mc_batch_size,
                          device=self.device, seed=_step_seed(self.cfg, step))
        gen = torch.Generator().manual_seed(_step_seed(self.cfg, step))
        scores = score_prediction(a.acquisition, pred, generator=gen).double()  # [K, H, W]
        scores = scores * torch.from_numpy(store.valid[cand])  # [K, H, W]
        labelled = store.labelled()[cand] | ~store.valid[cand]  # [K, H, W]
        # Random ranks the units themselves (one uniform draw each, from the same generator): summing
        # pixel noise over a unit would favour the units with more real (unlabelled) pixels
        selection = self.unit.select(scores, cand, labelled, gen if a.acquisition == "random" else None)
        if selection is None:
            return None
        self._label(store, selection, self._request(step, selection, scores, pred))
        return self._acquired_step(selection, scores, pred)

    def _label(self, store: LabelStore, selection: Selection, request: AnnotationRequest) -> None:
        """Ask the oracle for the selection's labels and store them.

        Dominant-class superpixels get one class each, given to every pixel of the segment; their
        contour labels stay unlabelled (see :mod:`alseg_utils.labels`).
        """
        if selection.whole_images:
            labels, contours = self.oracle.label_images(selection.images, request)
            store.add_images(selection.images, labels, contours)
        elif selection.class_answers:
            classes = self.oracle.label_segments(selection.regions, selection.region_masks, request)
            store.add_segments(selection.regions, classes, selection.region_masks)
        else:
            patches, contour_patches = self.oracle.label_regions(selection.regions, request)
            store.add_regions(selection.regions, patches, contour_patches, selection.region_masks or None)

    def _request(self, step: int, selection: Selection, scores: torch.Tensor,
                 pred: MCPrediction) -> AnnotationRequest:
        """The oracle's view of a step: what to label, with score maps and pseudo-labels."""
        a = self.cfg.active
        local = selection.local(selection.images)
        contour = pred.contour if pred.contour is not None else torch.zeros_like(pred.mean[:, 1])
        return AnnotationRequest(
            step=step, images=list(selection.images), image_names=self._names(selection.images),
            regions=list(selection.regions), region_masks=list(selection.region_masks),
            scores=scores.numpy()[local].astype(np.float32),
            pseudo_object=(pred.mean[local, 1] >= a.object_threshold).numpy().astype(np.uint8),
            pseudo_contour=(contour[local] >= a.contour_threshold).numpy().astype(np.uint8),
            class_answers=selection.class_answers,
        )

    def _acquired_step(self, selection: Selection, scores: torch.Tensor, pred: MCPrediction) -> AcquiredStep:
        """Record what was acquired, with the uncertainty of the acquired pixels (paper Fig. 4)."""
        a = self.cfg.active
        mean = pred.mean  # [K, C, H, W]
        entropy = -(mean * torch.log(mean.clamp_min(1e-12))).sum(1)  # [K, H, W]
        values = scores.numpy()[selection.acquired]  # [P]
        ent_values = entropy.numpy()[selection.acquired]  # [P]
        shown = selection.images[:SHOWN_PER_STEP]
        local = selection.local(shown)
        contour = pred.contour if pred.contour is not None else torch.zeros_like(mean[:, 1])
        arrays = {
            "acquired_score": values.astype(np.float32), "acquired_entropy": ent_values.astype(np.float32),
            "shown_images": np.array(shown, dtype=np.int64),
            "shown_score": scores.numpy()[local].astype(np.float32),
            "shown_pseudo_object": (mean[local, 1] >= a.object_threshold).numpy().astype(np.uint8),
            "shown_pseudo_contour": (contour[local] >= a.contour_threshold).numpy().astype(np.uint8),
            **selection.arrays(SHOWN_PER_STEP),
        }
        fields = {
            **selection.fields(), "image_names": self._names(selection.images),
            "acquired_pixels": selection.pixels,
            "acquired_score_mean": float(values.mean()) if values.size else 0.0,
            "acquired_entropy_mean": float(ent_values.mean()) if ent_values.size else 0.0,
        }
        return AcquiredStep(fields, arrays, selection)


def run_full_image(cfg: RunConfig, out_dir: str | Path, oracle: Oracle | None = None,
                   progress: bool = True) -> list[dict[str, Any]]:
    """Alg. 1: acquire M full images per step. Returns the step records."""
    if cfg.active.strategy != "full":
        raise ConfigError(f"run_full_image needs active.strategy 'full', got {cfg.active.strategy!r}")
    return ActiveRun(cfg, out_dir, oracle, progress).run()


def run_region(cfg: RunConfig, out_dir: str | Path, oracle: Oracle | None = None,
               progress: bool = True) -> list[dict[str, Any]]:
    """Alg. 2: acquire M square regions per step (strategy ``region``), or SLIC superpixels under the
    same pixel budget (strategy ``superpixel``); training uses human-labelled pixels only."""
    if cfg.active.strategy not in ("region", "superpixel"):
        raise ConfigError(f"run_region needs active.strategy 'region' or 'superpixel', got {cfg.active.strategy!r}")
    return ActiveRun(cfg, out_dir, oracle, progress).run()


def run_reference(cfg: RunConfig, out_dir: str | Path, progress: bool = True) -> list[dict[str, Any]]:
    """The "full training data" line: one training on every AL training image, fully labelled."""
    return ActiveRun(cfg, out_dir, None, progress, reference=True).run()


def run_active(cfg: RunConfig, out_dir: str | Path, oracle: Oracle | None = None, progress: bool = True,
               reference: bool = False, recover: bool = False) -> list[dict[str, Any]]:
    """Run the strategy named in ``cfg.active.strategy`` (or the full-data reference).

    ``recover`` repairs a damaged ``state.json`` or ``steps.jsonl`` first (see :class:`ActiveRun`).
    """
    if reference:
        return ActiveRun(cfg, out_dir, None, progress, reference=True, recover=recover).run()
    return ActiveRun(cfg, out_dir, oracle, progress, recover=recover).run()


def scratch_run_dir() -> Path:
    """A fresh run folder under the system temp folder (what notebooks use when given no ``out_dir``).

    All scratch runs share one parent, so they also share the cached initial models.
    """
    parent = Path(tempfile.gettempdir()) / "alseg-runs"
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="run-", dir=parent))


def load_selection(run_dir: str | Path, step: int) -> dict[str, np.ndarray]:
    """The arrays stored for what ``step`` acquired (:meth:`~alseg_utils.run_folder.RunFolder.load_selection`)."""
    return RunFolder(run_dir).load_selection(step)
