"""The two active-learning loops (Alg. 1: full images; Alg. 2: regions) with resumable state.

One run = one (strategy, acquisition function, seed). Step 0 trains on the random initial set; each
later step scores the pool with MC dropout, asks the oracle for M images or M regions, retrains from
scratch (best of k restarts by validation loss), evaluates on the test set and appends one record.

Run folder (``out_dir``)::

    config.json                the config, its fingerprint, the git commit
    state.json                 last finished step, all records, the files below (atomic)
    labels_step_KKK.npz        label store after step K
    model_step_KKK.pt          model trained at step K (state_dict)
    selections/step_KKK.npz    what step K acquired: regions/images, scores of acquired pixels,
                               uncertainty maps and pseudo-labels of the selected images
    steps.jsonl                one record per finished step (a view of state.json)

Every file is written atomically, and ``state.json`` is written last: a run killed at any point
resumes from its last finished step and produces the same records as an uninterrupted run (CPU).

A damaged file (truncated, overwritten, not JSON) stops the run with one
:class:`~alseg_utils.errors.RunStateError` line naming it and saying what to do; nothing in the
folder is changed. Two cases can be repaired, and only when asked (``recover=True``, ``alseg run
--recover``): a damaged ``state.json`` is rebuilt from ``steps.jsonl`` when the label store and the
model of the last recorded step are intact, and a damaged ``steps.jsonl`` is written again from an
intact ``state.json``; the damaged file is kept beside it as ``<name>.damaged`` (``.damaged-2``, ...).
Damaged labels or model of the last step cannot be repaired (earlier steps' files are not kept):
the run is continued in a new folder. A damaged cached initial model (``.initial_models/``) is
refused, not retrained: other runs already started from it, and a retraining may differ on a GPU.
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from alseg_utils.config import ACQUISITIONS, STRATEGIES, RunConfig
from alseg_utils.data import PoolSplit, SegmentationSet, load_dataset, split_pool
from alseg_utils.errors import ConfigError, RunStateError
from alseg_utils.evaluate import evaluate_model
from alseg_utils.labels import LabelStore
from alseg_utils.model import build_model
from alseg_utils.oracle import AnnotationRequest, Oracle, SimulatedOracle
from alseg_utils.regions import Region, region_origins, select_regions, select_windows
from alseg_utils.results import (
    atomic_write_bytes,
    atomic_write_json,
    damaged_file_error,
    git_commit,
    one_line_reason,
    read_json_file,
    read_npz_file,
    read_records,
    read_run_config_file,
    write_records,
)
from alseg_utils.superpixels import cached_superpixels, select_segments, select_superpixels, superpixel_mask
from alseg_utils.train import LabelledSet, load_checkpoint, resolve_device, save_checkpoint, train_with_restarts
from alseg_utils.uncertainty import MCPrediction, image_scores, mc_predict, score_prediction

SHOWN_PER_STEP = 4  # selected images whose maps are kept for the notebooks
_METRIC_KEYS = ("f1", "object_dice", "object_hausdorff", "dice", "jaccard", "nll", "ece", "brier", "reliability",
                "resolution", "uncertainty", "reliability_bins", "val_loss", "train_iterations")


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
    lab = np.where(data.valid, data.masks, 255).astype(np.uint8)
    con = np.where(data.valid, data.contours, 255).astype(np.uint8)
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


NEW_FOLDER = "start a new --out folder (nothing in this one was changed)"


def _state_problem(state: Any) -> str:
    """What is wrong with a parsed ``state.json`` (``""`` when it has the shape :meth:`ActiveRun._commit` writes)."""
    if not isinstance(state, dict):
        return f"a JSON {type(state).__name__}, not the run state"
    step, records = state.get("step"), state.get("records")
    if not isinstance(step, int) or not isinstance(records, list) or len(records) != step + 1:
        return "its step and records do not agree"
    if [r.get("step") if isinstance(r, dict) else None for r in records] != list(range(step + 1)):
        return "its records are not those of steps 0, 1, 2, ..."
    if step >= 0 and not all(isinstance(state.get(k), str) for k in ("labels_file", "model_file")):
        return "it names no label store or model"
    return ""


def _parse_state(path: Path) -> tuple[dict[str, Any] | None, str]:
    """``(state, "")`` for an intact ``state.json``, ``(None, why)`` for a missing or damaged one."""
    if not path.is_file():
        return None, "missing"
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, one_line_reason(err)
    problem = _state_problem(state)
    return (None, problem) if problem else (state, "")


def _keep_damaged(path: Path) -> Path:
    """Copy a damaged file to ``<name>.damaged`` (or ``.damaged-2``, ...) before it is replaced."""
    backup, n = path.with_name(f"{path.name}.damaged"), 1
    while backup.exists():
        n += 1
        backup = path.with_name(f"{path.name}.damaged-{n}")
    atomic_write_bytes(backup, path.read_bytes())
    return backup


class ActiveRun:
    """One resumable active-learning run in ``out_dir``.

    Args:
        cfg: the run configuration (strategy, acquisition and seed are in ``cfg.active``).
        out_dir: the run folder; created, or resumed when it holds the same config.
        oracle: who answers annotation requests (default: ground truth, :class:`SimulatedOracle`).
        progress: show tqdm bars.
        reference: the full-training-data run (one training on every AL training image).
        recover: repair a damaged ``state.json`` or ``steps.jsonl`` from the other (see the module
            docstring); what was done is listed in :attr:`recovered`.

    Attributes:
        recovered: one line per file that ``recover=True`` repaired (empty when none was).

    Raises:
        RunStateError: ``out_dir`` holds a run of a different configuration, or one of its files is
            damaged (named in the message, with what to do).
    """

    def __init__(self, cfg: RunConfig, out_dir: str | Path, oracle: Oracle | None = None,
                 progress: bool = True, reference: bool = False, recover: bool = False) -> None:
        self.cfg, self.out, self.progress, self.reference = cfg, Path(out_dir), progress, reference
        self.recovered: list[str] = []
        self._claim_folder()
        self.data = prepare_run_data(cfg, require_masks=getattr(oracle, "needs_ground_truth", True))
        self.oracle = oracle or SimulatedOracle(
            np.where(self.data.train.valid, self.data.train.masks, 0),
            np.where(self.data.train.valid, self.data.train.contours, 0))
        self.device = resolve_device(cfg.train.device)
        self.state = self._read_state(recover)

    # ----------------------------------------------------------------- run folder and state
    def _identity(self) -> dict[str, Any]:
        return {"fingerprint": self.cfg.fingerprint(), "reference": self.reference}

    def _claim_folder(self) -> None:
        path = self.out / "config.json"
        if path.exists():
            stored = read_run_config_file(path, "it names the configuration this folder holds, so the run "
                                          f"cannot be checked or resumed; {NEW_FOLDER}")
            if {k: stored.get(k) for k in ("fingerprint", "reference")} != self._identity():
                raise RunStateError(
                    f"{self.out} holds a run of a different configuration "
                    f"(fingerprint {stored.get('fingerprint')}, this one {self.cfg.fingerprint()}); "
                    "choose another --out folder or delete that one"
                )
            return
        if (self.out / "state.json").exists() or (self.out / "steps.jsonl").exists():
            raise RunStateError(f"{path}: the run's configuration record is missing, so this run folder cannot "
                                f"be checked or resumed; {NEW_FOLDER}")
        if self.out.exists() and any(self.out.iterdir()):
            raise RunStateError(f"{self.out} is not empty and is not an alseg run folder; choose another --out")
        atomic_write_json(path, {**self._identity(), "config": self.cfg.to_dict(), "git_commit": git_commit()})

    def _read_state(self, recover: bool) -> dict[str, Any]:
        """The state of the last finished step; damaged state or records are refused (or repaired)."""
        path, steps = self.out / "state.json", self.out / "steps.jsonl"
        if not path.exists() and not steps.exists():
            return {"step": -1, "records": [], "labels_file": None, "model_file": None}
        state, why = _parse_state(path)
        if state is None:
            return self._rebuild_state(why, recover)
        try:
            read_records(self.out, advice=f"its records are intact in {path.name}: rerun with --recover to "
                         f"write it again from them (the damaged file is kept as {steps.name}.damaged)")
        except RunStateError:
            if not recover:
                raise
            backup = _keep_damaged(steps)
            write_records(self.out, state["records"])
            self.recovered.append(f"wrote {steps} again from {path.name}; the damaged file is kept as {backup}")
        return state

    def _rebuild_state(self, why: str, recover: bool) -> dict[str, Any]:
        """``state.json`` from ``steps.jsonl`` and the intact label store and model of its last step."""
        path = self.out / "state.json"
        records = read_records(self.out, advice=f"{path.name} is {'missing' if why == 'missing' else 'damaged'} "
                               f"too, so the run cannot be recovered; {NEW_FOLDER}")
        problem = self._unrecoverable(records)
        state = {"step": len(records) - 1, "records": records,
                 "labels_file": f"labels_step_{len(records) - 1:03d}.npz",
                 "model_file": f"model_step_{len(records) - 1:03d}.pt"}
        if problem:
            advice = f"it cannot be rebuilt ({problem}); {NEW_FOLDER}"
        elif not recover:
            kept = f" (the damaged file is kept as {path.name}.damaged)" if path.exists() else ""
            advice = (f"rerun with --recover to rebuild it from steps.jsonl and the intact files of step "
                      f"{state['step']}{kept}")
        if problem or not recover:
            if why == "missing":
                raise RunStateError(f"{path}: the run state is missing but steps.jsonl holds {len(records)} "
                                    f"records; {advice}")
            raise damaged_file_error(path, "the run state", why, advice)
        kept = f"; the damaged file is kept as {_keep_damaged(path)}" if path.exists() else ""
        atomic_write_json(path, state)
        self.recovered.append(f"rebuilt {path} from steps.jsonl and the files of step {state['step']}{kept}")
        return state

    def _unrecoverable(self, records: list[dict[str, Any]]) -> str:
        """Why ``records`` and the files of their last step cannot make a state (``""`` when they can)."""
        if not records:
            return "steps.jsonl holds no record"
        k = len(records) - 1
        labels_file, model_file = self.out / f"labels_step_{k:03d}.npz", self.out / f"model_step_{k:03d}.pt"
        missing = [f.name for f in (labels_file, model_file) if not f.is_file()]
        if missing:
            return f"{missing[0]} is missing"
        try:
            store = LabelStore.load(labels_file)
        except RunStateError:
            return f"{labels_file.name} cannot be read either"
        try:
            load_checkpoint(build_model(self.cfg.model), model_file)
        except RunStateError:
            return f"{model_file.name} cannot be read either"
        if store.valid.shape != self.data.train.valid.shape or \
                store.labelled_pixels() != records[-1].get("labelled_pixels"):
            return f"{labels_file.name} does not hold the labels recorded for step {k}"
        return ""

    def _commit(self, step: int, store: LabelStore, model: torch.nn.Module, record: dict[str, Any]) -> None:
        labels_file, model_file = f"labels_step_{step:03d}.npz", f"model_step_{step:03d}.pt"
        store.save(self.out / labels_file)
        save_checkpoint(model, self.out / model_file)
        old = (self.state["labels_file"], self.state["model_file"])
        self.state = {"step": step, "records": self.state["records"] + [record],
                      "labels_file": labels_file, "model_file": model_file}
        atomic_write_json(self.out / "state.json", self.state)
        write_records(self.out, self.state["records"])
        for name in old:
            if name and name not in (labels_file, model_file):
                (self.out / name).unlink(missing_ok=True)

    # ----------------------------------------------------------------- the loop
    @property
    def records(self) -> list[dict[str, Any]]:
        """Records of the finished steps."""
        return list(self.state["records"])

    def run(self) -> list[dict[str, Any]]:
        """Run (or resume) until the configured number of steps or an empty pool.

        Returns:
            The records of every finished step.
        """
        last = 0 if self.reference else self.cfg.active.steps
        bar = tqdm(total=last + 1, initial=self.state["step"] + 1, desc=self._name(),
                   disable=not self.progress, unit="step")
        store, model = self._restore()
        while self.state["step"] < last:
            step = self.state["step"] + 1
            if step == 0:
                store = self._initial_store()
                selection: dict[str, Any] = {"images": list(range(len(store.labels))) if self.reference
                                             else list(range(self.data.n_initial))}
                model, record = self._initial_model(store, selection)
            else:
                selection = self._acquire(step, store, model)
                if selection is None:
                    break
                model, record = self._train_and_evaluate(step, store, selection)
            self._commit(step, store, model, record)
            bar.update(1)
        bar.close()
        return self.records

    def _name(self) -> str:
        a = self.cfg.active
        return "reference" if self.reference else f"{a.strategy}-{a.acquisition}-s{a.seed}"

    def _restore(self) -> tuple[LabelStore | None, torch.nn.Module | None]:
        if self.state["step"] < 0:
            return None, None
        advice = (f"the run cannot resume from step {self.state['step']} (earlier steps' files are not kept): "
                  f"{NEW_FOLDER}")
        path = self.out / self.state["labels_file"]
        store = LabelStore.load(path, advice=advice)
        if store.valid.shape != self.data.train.valid.shape:
            raise damaged_file_error(path, "the label store", f"{store.valid.shape[0]} images of "
                                     f"{store.valid.shape[1]}x{store.valid.shape[2]}, not the run's "
                                     f"{self.data.train.valid.shape}", advice)
        model = build_model(self.cfg.model)
        load_checkpoint(model, self.out / self.state["model_file"], advice=advice)
        return store, model.to(self.device)

    def _initial_store(self) -> LabelStore:
        store = LabelStore.empty(self.data.train.valid)
        idx = list(range(len(store.labels))) if self.reference else list(range(self.data.n_initial))
        request = AnnotationRequest(step=0, images=idx, image_names=[self.data.train.names[i] for i in idx])
        labels, contours = self.oracle.label_images(idx, request)
        store.add_images(idx, labels, contours)
        return store

    def _restarts(self) -> int:
        a = self.cfg.active
        return a.restarts_region if (a.strategy != "full" and not self.reference) else a.restarts_full

    def _train_and_evaluate(self, step: int, store: LabelStore, selection: dict[str, Any]):
        t0 = time.perf_counter()
        trained = train_with_restarts(
            _labelled_set(self.data.train.images, store, store.labelled_images()), _full_set(self.data.val),
            self.cfg.model, self.cfg.train, restarts=self._restarts(), seed=_step_seed(self.cfg, step))
        t1 = time.perf_counter()
        metrics = self._evaluate(trained.model, step)
        metrics["val_loss"] = float(trained.val_loss)
        metrics["train_iterations"] = int(trained.iterations)
        timing = {"train_s": round(t1 - t0, 2), "eval_s": round(time.perf_counter() - t1, 2)}
        if "arrays" in selection:
            _save_npz(self.out / "selections" / f"step_{step:03d}.npz", selection["arrays"])
        return trained.model, self._record(step, store, selection, metrics, timing)

    def _evaluate(self, model: torch.nn.Module, step: int) -> dict[str, Any]:
        """Test-set metrics; none when the data has no labelled test set (a user's own images)."""
        if len(self.data.test) == 0:
            return {}
        return evaluate_model(model, self.data.test, self.cfg, seed=_step_seed(self.cfg, step), device=self.device)

    def _record(self, step: int, store: LabelStore, selection: dict[str, Any], metrics: dict[str, Any],
                timing: dict[str, Any]) -> dict[str, Any]:
        a = self.cfg.active
        return {
            "name": self.cfg.name, "strategy": a.strategy, "acquisition": a.acquisition, "seed": a.seed,
            "reference": self.reference, "step": step,
            "labelled_fraction": store.labelled_fraction(), "labelled_pixels": store.labelled_pixels(),
            "pool_pixels": int(store.valid.sum()), "labelled_images": len(store.labelled_images()),
            **metrics, **{k: v for k, v in selection.items() if k != "arrays"}, "timing": timing,
        }

    # ----------------------------------------------------------------- the shared initial model
    def _initial_key(self, store: LabelStore) -> str:
        """Everything step 0 depends on (its labels included): not the strategy, function or later-step settings."""
        d = self.cfg.fingerprint_dict()  # a weights file enters by its content, not its path
        for key in ("source", "sweep", "name"):
            d.pop(key, None)
        d["train"].pop("progress", None)
        d["active"] = {k: d["active"][k] for k in ("seed", "mc_samples", "mc_batch_size", "object_threshold",
                                                   "contour_threshold")}
        d["restarts"], d["reference"] = self._restarts(), self.reference
        d["labels"] = hashlib.sha256(store.labels.tobytes() + store.contours.tobytes()).hexdigest()
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def _initial_model(self, store: LabelStore, selection: dict[str, Any]):
        """Step 0, trained once per seed and shared by every run next to this one (same initial set).

        The cache lives in ``<out_dir>/../.initial_models/<key>/`` (model + metrics, written
        atomically, metrics last). Every strategy and acquisition function of a seed starts from the
        same initial model, as in the paper, and a sweep trains it once instead of once per job.
        """
        cache = self.out.parent / ".initial_models" / self._initial_key(store)
        if (cache / "metrics.json").exists():
            advice = (f"it is the cached step-0 model of the runs in {self.out.parent}; delete the folder {cache} "
                      "to train it again (the runs that used it keep their records)")
            metrics = read_json_file(cache / "metrics.json", "the cached initial model's metrics", advice)
            if not (cache / "model.pt").is_file():
                raise RunStateError(f"{cache / 'model.pt'}: the cached initial model is missing; {advice}")
            model = build_model(self.cfg.model)
            load_checkpoint(model, cache / "model.pt", advice=advice)
            return model.to(self.device), self._record(0, store, selection, metrics, {"cached": True})
        model, record = self._train_and_evaluate(0, store, selection)
        metrics = {k: v for k, v in record.items() if k in _METRIC_KEYS}
        save_checkpoint(model, cache / "model.pt")
        atomic_write_json(cache / "metrics.json", metrics)
        return model, record

    # ----------------------------------------------------------------- acquisition
    def _acquire(self, step: int, store: LabelStore, model: torch.nn.Module) -> dict[str, Any] | None:
        a = self.cfg.active
        if a.strategy == "full":
            cand = store.unlabelled_images()
        else:
            cand = [int(i) for i in np.flatnonzero(~(store.labelled() | ~store.valid).all(axis=(1, 2)))]
        if not cand:
            return None
        pred = mc_predict(model, self.data.train.images[cand], T=a.mc_samples, batch_size=a.mc_batch_size,
                          device=self.device, seed=_step_seed(self.cfg, step))
        gen = torch.Generator().manual_seed(_step_seed(self.cfg, step))
        scores = score_prediction(a.acquisition, pred, generator=gen).double()  # [K, H, W]
        valid = torch.from_numpy(store.valid[cand])  # [K, H, W]
        scores = scores * valid
        # Random ranks the units themselves (one uniform draw each, from the same generator): summing
        # pixel noise over a unit would favour the units with more real (unlabelled) pixels
        draw = gen if a.acquisition == "random" else None
        if a.strategy == "full":
            return self._acquire_images(cand, scores, pred, store, draw)
        if a.strategy == "superpixel":
            return self._acquire_superpixels(cand, scores, pred, store, draw)
        return self._acquire_regions(cand, scores, pred, store, draw)

    def _acquire_images(self, cand: list[int], scores: torch.Tensor, pred: MCPrediction,
                        store: LabelStore, draw: torch.Generator | None) -> dict[str, Any]:
        totals = image_scores(scores).numpy() if draw is None else random_unit_scores(len(cand), draw)  # [K]
        order = np.argsort(-totals, kind="stable")[: self.cfg.active.images_per_step]
        chosen = [cand[int(k)] for k in order]
        acquired = np.zeros(scores.shape, bool)
        acquired[order] = store.valid[chosen]
        labels, contours = self.oracle.label_images(chosen, self._request(cand, scores, pred, chosen, []))
        store.add_images(chosen, labels, contours)
        return self._selection(cand, scores, pred, acquired, chosen, [])

    def _acquire_regions(self, cand: list[int], scores: torch.Tensor, pred: MCPrediction,
                         store: LabelStore, draw: torch.Generator | None) -> dict[str, Any]:
        a = self.cfg.active
        already = store.labelled()[cand] | ~store.valid[cand]  # [K, H, W]
        diversity = {"max_per_image": a.max_per_image or None, "min_distance": a.min_distance}
        if draw is None:
            local = select_regions(scores, a.region_size, a.region_stride, a.regions_per_step, labelled=already,
                                   **diversity)
        else:
            tops, lefts = region_origins(*scores.shape[1:], a.region_size, a.region_stride)
            values = random_unit_scores((len(cand), len(tops), len(lefts)), draw)  # [K, nh, nw]
            local = select_windows(values, scores.shape[1:], a.region_size, a.region_stride, a.regions_per_step,
                                   labelled=already, **diversity)
        if not local:
            return None
        acquired = np.zeros(scores.shape, bool)
        for r in local:
            acquired[(r.image, *r.slices)] = True
        acquired &= ~already
        regions = [Region(cand[r.image], r.top, r.left, r.height, r.width) for r in local]
        chosen = sorted({r.image for r in regions})
        labels, contours = self.oracle.label_regions(regions, self._request(cand, scores, pred, chosen, regions))
        store.add_regions(regions, labels, contours)
        return self._selection(cand, scores, pred, acquired, chosen, regions)

    def _superpixels(self) -> np.ndarray:
        """SLIC segments of every AL training image, int32 [N, H, W] (-1 on padding), cached in the run folder."""
        a = self.cfg.active
        return cached_superpixels(self.out / "superpixels.npz", self.data.train.images, a.superpixel_area(),
                                  a.superpixel_compactness, self.data.train.valid)

    def _acquire_superpixels(self, cand: list[int], scores: torch.Tensor, pred: MCPrediction,
                             store: LabelStore, draw: torch.Generator | None) -> dict[str, Any] | None:
        """Regions that follow SLIC segments, chosen under the square strategy's pixel budget.

        The oracle is asked for each segment's bounding box with the segment's mask; only the
        segment's pixels are stored (and counted).
        """
        a = self.cfg.active
        segments = self._superpixels()[cand]  # [K, H, W]
        already = store.labelled()[cand] | ~store.valid[cand]  # [K, H, W]
        diversity = {"max_per_image": a.max_per_image or None, "min_distance": a.min_distance}
        if draw is None:
            picks = select_superpixels(scores, segments, a.pixel_budget(), labelled=already,
                                       reduce=a.superpixel_reduce, **diversity)
        else:
            values = random_unit_scores((len(cand), int(segments.max(initial=-1)) + 1), draw)  # [K, S_max]
            picks = select_segments(values, segments, a.pixel_budget(), labelled=already, **diversity)
        if not picks:
            return None
        acquired = superpixel_mask(picks, segments, labelled=already)  # [K, H, W]
        regions, masks = [], []
        for p in picks:
            inside = (segments[p.image] == p.segment) & ~already[p.image]  # [H, W]
            rows, cols = np.flatnonzero(inside.any(1)), np.flatnonzero(inside.any(0))
            box = Region(cand[p.image], int(rows[0]), int(cols[0]), int(rows[-1] - rows[0] + 1),
                         int(cols[-1] - cols[0] + 1))
            regions.append(box)
            masks.append(inside[box.slices])
        chosen = sorted({r.image for r in regions})
        request = self._request(cand, scores, pred, chosen, regions)
        request.region_masks = masks
        labels, contours = self.oracle.label_regions(regions, request)
        store.add_regions(regions, labels, contours, masks)
        selection = self._selection(cand, scores, pred, acquired, chosen, regions)
        selection["superpixels"] = [[cand[p.image], p.segment, p.pixels] for p in picks]
        shown = [cand.index(i) for i in chosen[:SHOWN_PER_STEP]]
        selection["arrays"]["shown_segments"] = segments[shown]
        selection["arrays"]["superpixels"] = np.array(selection["superpixels"], dtype=np.int64).reshape(-1, 3)
        return selection

    def _request(self, cand: list[int], scores: torch.Tensor, pred: MCPrediction, chosen: list[int],
                 regions: list[Region]) -> AnnotationRequest:
        """The oracle's view of a step: what to label, with score maps and pseudo-labels."""
        a = self.cfg.active
        local = [cand.index(i) for i in chosen]
        contour = pred.contour if pred.contour is not None else torch.zeros_like(pred.mean[:, 1])
        return AnnotationRequest(
            step=self.state["step"] + 1, images=list(chosen),
            image_names=[self.data.train.names[i] for i in chosen], regions=list(regions),
            scores=scores.numpy()[local].astype(np.float32),
            pseudo_object=(pred.mean[local, 1] >= a.object_threshold).numpy().astype(np.uint8),
            pseudo_contour=(contour[local] >= a.contour_threshold).numpy().astype(np.uint8),
        )

    def _selection(self, cand: list[int], scores: torch.Tensor, pred: MCPrediction, acquired: np.ndarray,
                   chosen: list[int], regions: list[Region]) -> dict[str, Any]:
        """Record what was acquired, with the uncertainty of the acquired pixels (paper Fig. 4)."""
        a = self.cfg.active
        mean = pred.mean  # [K, C, H, W]
        entropy = -(mean * torch.log(mean.clamp_min(1e-12))).sum(1)  # [K, H, W]
        values = scores.numpy()[acquired]
        ent_values = entropy.numpy()[acquired]
        local = [cand.index(i) for i in chosen[:SHOWN_PER_STEP]]
        contour = pred.contour if pred.contour is not None else torch.zeros_like(mean[:, 1])
        arrays = {
            "acquired_score": values.astype(np.float32), "acquired_entropy": ent_values.astype(np.float32),
            "shown_images": np.array(chosen[:SHOWN_PER_STEP], dtype=np.int64),
            "shown_score": scores.numpy()[local].astype(np.float32),
            "shown_pseudo_object": (mean[local, 1] >= a.object_threshold).numpy().astype(np.uint8),
            "shown_pseudo_contour": (contour[local] >= a.contour_threshold).numpy().astype(np.uint8),
            "regions": np.array([[r.image, r.top, r.left, r.height, r.width] for r in regions], dtype=np.int64
                                ).reshape(-1, 5),
        }
        return {
            "images": chosen, "image_names": [self.data.train.names[i] for i in chosen],
            "regions": [[r.image, r.top, r.left, r.height, r.width] for r in regions],
            "acquired_pixels": int(acquired.sum()),
            "acquired_score_mean": float(values.mean()) if values.size else 0.0,
            "acquired_entropy_mean": float(ent_values.mean()) if ent_values.size else 0.0,
            "arrays": arrays,
        }


def random_unit_scores(shape: int | tuple[int, ...], generator: torch.Generator) -> np.ndarray:
    """The Random baseline's scores of labelling units: one independent uniform draw per unit.

    Taking the best allowed unit, again and again, by these scores draws units uniformly without
    replacement among those a step may take: images (full), windows not made only of labelled or
    padding pixels (region), segments with unlabelled pixels that fit the budget left (superpixel).

    Args:
        shape: units, e.g. ``K`` images, ``(K, nh, nw)`` windows or ``(K, S_max)`` segments.
        generator: the step's CPU generator (reproducible by seed).

    Returns:
        Scores of ``shape``, float64 in [0, 1).
    """
    return torch.rand(shape, generator=generator, dtype=torch.float64).numpy()


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


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


def shown_superpixels(selection: dict[str, np.ndarray], k: int) -> np.ndarray | None:
    """The superpixels a step chose in its ``k``-th shown image, for :func:`alseg_utils.plots.show_selection`.

    Args:
        selection: what :func:`load_selection` returned.
        k: index into ``selection["shown_images"]``.

    Returns:
        Int [H, W]: the segment id on the chosen segments' pixels, -1 elsewhere; None when the step
        chose square regions or whole images.
    """
    if "shown_segments" not in selection:
        return None
    segments = selection["shown_segments"][k]  # [H, W]
    image = int(selection["shown_images"][k])
    chosen = [int(s) for i, s, _ in selection["superpixels"] if int(i) == image]
    return np.where(np.isin(segments, chosen), segments, -1)


def load_selection(run_dir: str | Path, step: int) -> dict[str, np.ndarray]:
    """The arrays stored for what ``step`` acquired (see the module docstring)."""
    path = Path(run_dir) / "selections" / f"step_{step:03d}.npz"
    if not path.exists():
        raise RunStateError(f"{path} not found: step {step} has not acquired anything in this run")
    return read_npz_file(path, f"the selection of step {step}", "restore it from a copy; the run's records "
                         "(steps.jsonl) still list what the step acquired")
