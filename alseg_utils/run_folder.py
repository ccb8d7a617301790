"""The run folder: every file of one active-learning run, where it lives and how it is written and read.

One run = one folder (``alseg run --out``). :class:`RunFolder` names every path in it and is the
only code that reads or writes these files; the loop (:class:`~alseg_utils.active.ActiveRun`), the
annotation round trip and the sweep reports go through it::

    config.json                the config, its fingerprint, the git commit
    state.json                 last finished step, all records, the files below (written last)
    labels_step_KKK.npz        label store after step K (only the last finished step's is kept)
    model_step_KKK.pt          model trained at step K (state_dict; likewise)
    selections/step_KKK.npz    what step K acquired: regions/images, scores of acquired pixels,
                               uncertainty maps and pseudo-labels of the selected images
    steps.jsonl                one record per finished step (a view of state.json)
    superpixels.npz            SLIC segments of the pool (superpixel strategy), a cache
    annotations/step_KKK/      request.json, request.npz, answers.npz of a person's labels
                               (``--oracle files``, :mod:`alseg_utils.annotation`)
    to_annotate/step_KKK/      the default export folder of step K (``alseg export --to``)
    ../.initial_models/<key>/  model.pt, metrics.json: the step-0 model shared by the runs of a seed

Every file is written atomically (:func:`atomic_write_bytes`: a temporary file in the same folder,
fsync, rename), and ``state.json`` is written last: a run killed at any point resumes from its last
finished step and produces the same records as an uninterrupted run (CPU).

Files alseg wrote are read back through :func:`read_json_file`, :func:`read_npz_file`,
:func:`load_checkpoint` and :func:`read_records`: a file that is truncated, overwritten or not what
it should hold raises one :class:`~alseg_utils.errors.RunStateError` line naming the file and what
the user can do, never a raw ``JSONDecodeError`` or ``BadZipFile``; nothing is changed on the way.
Two cases can be repaired, and only when asked (``recover=True`` of :meth:`RunFolder.read_state`,
``alseg run --recover``): a damaged ``state.json`` is rebuilt from ``steps.jsonl`` when the label
store and the model of the last recorded step are intact, and a damaged ``steps.jsonl`` is written
again from an intact ``state.json``; the damaged file is kept beside it as ``<name>.damaged``
(``.damaged-2``, ...). Damaged labels or model of the last step cannot be repaired (earlier steps'
files are not kept): the run is continued in a new folder. A damaged cached initial model is
refused, not retrained: other runs already started from it, and a retraining may differ on a GPU.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
import torch
from torch import nn

from alseg_utils.config import RunConfig, config_from_dict
from alseg_utils.errors import RunStateError

if TYPE_CHECKING:  # labels.py imports this module's writers; the class is imported where it is used
    from alseg_utils.labels import LabelStore

CONFIG_FILE = "config.json"
STATE_FILE = "state.json"
RECORDS_FILE = "steps.jsonl"
SELECTIONS_DIR = "selections"
SUPERPIXELS_FILE = "superpixels.npz"
ANNOTATIONS_DIR = "annotations"
EXPORTS_DIR = "to_annotate"
INITIAL_MODELS_DIR = ".initial_models"
REQUEST_JSON = "request.json"  # file names inside annotations/step_KKK/
REQUEST_NPZ = "request.npz"
ANSWERS_NPZ = "answers.npz"

NEW_FOLDER = "start a new --out folder (nothing in this one was changed)"
RECORDS_ADVICE = ("its records are also in the run's state.json: rerun the run's `alseg run` command with "
                  "--recover to write it again, or move the run folder out of the results")
CONFIG_ADVICE = "restore it from a copy, or move the run folder out of the results (its records stay as they are)"
LABELS_ADVICE = ("answers are checked against the labels of the last finished step: rerun the run's `alseg run "
                 "... --oracle files` command first (with --recover when it says so)")


def step_name(step: int) -> str:
    """``step_KKK``: the name of a step's files and folders (``selections/step_001.npz``, ...)."""
    return f"step_{step:03d}"


def selection_name(step: int) -> str:
    """Path of a step's selection file inside a run folder: ``selections/step_KKK.npz``."""
    return f"{SELECTIONS_DIR}/{step_name(step)}.npz"


# ----------------------------------------------------------------------------- atomic writes


@contextmanager
def atomic_open(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file handle whose content replaces ``path`` atomically when the block ends without error.

    The data goes to a temporary file in the same folder, is fsynced, made world-readable (0644) and
    renamed over ``path``; an exception inside the block deletes the temporary file and leaves
    ``path`` as it was.

    Args:
        path: destination; its folder is created when missing.

    Yields:
        The open temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`).

    Args:
        path: destination; its folder is created when missing.
        data: the bytes to write.
    """
    with atomic_open(path) as fh:
        fh.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically (see :func:`atomic_open`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON (sorted keys) to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=True, default=_jsonable) + "\n")


def save_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as a compressed ``.npz`` (in the order given), atomically."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]  # mypy matches **arrays against allow_pickle
    atomic_write_bytes(path, buf.getvalue())


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a JSON record")


# ----------------------------------------------------------------------------- reading what alseg wrote


def one_line_reason(err: BaseException, limit: int = 100) -> str:
    """``"Type: first sentence"`` of an exception's message, cut to ``limit`` characters."""
    first = (str(err).strip().splitlines() or [""])[0].split(". ")[0]
    text = f"{type(err).__name__}: {first}" if first else type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def damaged_file_error(path: str | Path, what: str, err: BaseException | str, advice: str) -> RunStateError:
    """The one-line error for a file alseg wrote that can no longer be read.

    Args:
        path: the file.
        what: what it holds, e.g. ``"the run state"``.
        err: the exception that reading it raised, or a short description of what is wrong.
        advice: what the user can do, e.g. ``"start a new --out folder"``.

    Returns:
        ``RunStateError("<path>: <what> is damaged or truncated (<reason>); <advice>")``, to raise.
    """
    reason = err if isinstance(err, str) else one_line_reason(err)
    return RunStateError(f"{path}: {what} is damaged or truncated ({reason}); {advice}")


def read_json_file(path: str | Path, what: str, advice: str, kind: type = dict) -> Any:
    """Parse a JSON file alseg wrote, checking that it holds a ``kind`` (dict or list).

    Args:
        path: the file; it must exist.
        what: what it holds (named in the error).
        advice: what the user can do when it is damaged.
        kind: the type the top level must have.

    Returns:
        The parsed value.

    Raises:
        RunStateError: the file is missing, unreadable, not JSON (e.g. truncated) or not a ``kind``.
    """
    path = Path(path)
    if not path.is_file():
        raise RunStateError(f"{path}: {what} is missing; {advice}")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise damaged_file_error(path, what, err, advice) from None
    if not isinstance(value, kind):
        raise damaged_file_error(path, what, f"a JSON {type(value).__name__}, not a {kind.__name__}", advice)
    return value


def read_npz_file(path: str | Path, what: str, advice: str, keys: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """Read every array of a ``.npz`` file alseg wrote (no pickles).

    Args:
        path: the file; it must exist.
        what: what it holds (named in the error).
        advice: what the user can do when it is damaged.
        keys: arrays the file must hold.

    Returns:
        Name -> array, all read into memory.

    Raises:
        RunStateError: the file is missing, truncated, corrupt, not an ``.npz`` or lacks one of ``keys``.
    """
    path = Path(path)
    if not path.is_file():
        raise RunStateError(f"{path}: {what} is missing; {advice}")
    try:
        with open(path, "rb") as fh, np.load(fh) as z:  # own handle: np.load leaks its own on a bad zip
            arrays = {k: z[k] for k in z.files}  # a plain .npy has no context manager: TypeError
    except Exception as err:  # noqa: BLE001 - zipfile, zlib, numpy and OS errors all mean "cannot be read"
        raise damaged_file_error(path, what, err, advice) from None
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise damaged_file_error(path, what, f"no {missing[0]!r} array", advice)
    return arrays


# ----------------------------------------------------------------------------- model checkpoints


def save_checkpoint(model: nn.Module, path: str | Path) -> None:
    """Write ``model.state_dict()`` atomically (see :func:`atomic_open`).

    Args:
        model: the network.
        path: destination file; its folder is created if needed.
    """
    with atomic_open(path) as fh:
        torch.save(model.state_dict(), fh)


def load_checkpoint(model: nn.Module, path: str | Path,
                    advice: str = "retrain, or restore the file from a copy") -> nn.Module:
    """Load weights saved by :func:`save_checkpoint` (``weights_only=True``, onto the model's device).

    Args:
        model: a network built with the same :class:`~alseg_utils.config.ModelConfig` as the saved one.
        path: the checkpoint file.
        advice: what the user can do when the file is damaged (part of the error).

    Returns:
        The same model with the weights loaded.

    Raises:
        RunStateError: the file is missing, damaged (truncated, not a checkpoint) or does not match
            the model's architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise RunStateError(f"checkpoint {path} not found; retrain or point to an existing run directory")
    device = next(model.parameters()).device
    try:
        with warnings.catch_warnings():  # torch warns about some foreign pickles before refusing them
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # noqa: BLE001 - zip, pickle, EOF and OS errors all mean "cannot be read"
        raise damaged_file_error(path, "the model checkpoint", err, advice) from None
    if not isinstance(state, dict):
        raise damaged_file_error(path, "the model checkpoint", f"holds a {type(state).__name__}, not a state_dict",
                                 advice)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).splitlines()[1].strip() if len(str(err).splitlines()) > 1 else str(err)
        raise RunStateError(
            f"checkpoint {path} does not match this model ({first}); check the model: section of the params"
        ) from None
    return model


# ----------------------------------------------------------------------------- records and config


def git_commit(repo: str | Path | None = None) -> str:
    """The current git commit of the project (``"unknown"`` outside a git checkout)."""
    where = Path(repo) if repo else Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def write_records(run_dir: str | Path, records: Sequence[dict[str, Any]]) -> Path:
    """Write all step records of a run as ``run_dir/steps.jsonl`` (atomic rewrite).

    Args:
        run_dir: the run's output folder.
        records: one mapping per finished step, in step order.

    Returns:
        The path written.
    """
    path = Path(run_dir) / RECORDS_FILE
    lines = [json.dumps(r, sort_keys=True, default=_jsonable) for r in records]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return path


def read_records(run_dir: str | Path, advice: str = RECORDS_ADVICE) -> list[dict[str, Any]]:
    """Read ``run_dir/steps.jsonl`` (empty list when the run has no finished step).

    Args:
        run_dir: the run folder.
        advice: what the user can do when the file is damaged (part of the error).

    Raises:
        RunStateError: a line is not a JSON record (a truncated or edited file), or the steps do
            not count 0, 1, 2, ...
    """
    path = Path(run_dir) / RECORDS_FILE
    if not path.exists():
        return []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise damaged_file_error(path, "the step record file", err, advice) from None
    records: list[dict[str, Any]] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            reason = f"line {n}: {one_line_reason(err)}"
            raise damaged_file_error(path, "the step record file", reason, advice) from None
        if not isinstance(rec, dict) or rec.get("step") != len(records):
            raise damaged_file_error(path, "the step record file", f"line {n} is not the record of step {len(records)}",
                                     advice)
        records.append(rec)
    return records


def read_run_config_file(path: str | Path, advice: str = CONFIG_ADVICE) -> dict[str, Any]:
    """A run folder's ``config.json``: ``fingerprint``, ``config`` (a mapping), ``git_commit``.

    Raises:
        RunStateError: the file is missing, not JSON, or lacks its ``fingerprint`` or ``config``.
    """
    stored = read_json_file(path, "the run's configuration record", advice)
    if not isinstance(stored.get("config"), dict) or not isinstance(stored.get("fingerprint"), str):
        raise damaged_file_error(path, "the run's configuration record", "no fingerprint or config", advice)
    return stored


# ----------------------------------------------------------------------------- the run state


@dataclass
class RunState:
    """What ``state.json`` holds.

    Attributes:
        step: the last finished step (-1 before step 0 finished).
        records: the records of steps 0 .. ``step``.
        labels_file: the label store of ``step``, a file name in the run folder (None before step 0).
        model_file: the model of ``step``, a file name in the run folder (None before step 0).
    """

    step: int = -1
    records: list[dict[str, Any]] = field(default_factory=list)
    labels_file: str | None = None
    model_file: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The mapping written to ``state.json``."""
        return {"step": self.step, "records": self.records, "labels_file": self.labels_file,
                "model_file": self.model_file}


def _state_problem(state: Any) -> str:
    """What is wrong with a parsed ``state.json`` (``""`` when it has the shape :meth:`RunFolder.commit` writes)."""
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


def _parse_state(path: Path) -> tuple[RunState | None, str]:
    """``(state, "")`` for an intact ``state.json``, ``(None, why)`` for a missing or damaged one."""
    if not path.is_file():
        return None, "missing"
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, one_line_reason(err)
    problem = _state_problem(state)
    if problem:
        return None, problem
    return RunState(state["step"], state["records"], state.get("labels_file"), state.get("model_file")), ""


def _load_store(path: Path, advice: str) -> LabelStore:
    from alseg_utils.labels import LabelStore  # labels.py imports this module's writers

    return LabelStore.load(path, advice=advice)


# ----------------------------------------------------------------------------- the folder


class RunFolder:
    """Every path and file of one run folder (see the module docstring for the layout).

    Args:
        path: the run folder (``alseg run --out``); nothing is created until something is written.

    Attributes:
        path: the run folder.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    # ------------------------------------------------------------------------- paths
    @property
    def config_file(self) -> Path:
        """``config.json``: the configuration, its fingerprint and the git commit."""
        return self.path / CONFIG_FILE

    @property
    def state_file(self) -> Path:
        """``state.json``: the last finished step, every record and the files of that step."""
        return self.path / STATE_FILE

    @property
    def records_file(self) -> Path:
        """``steps.jsonl``: one record per finished step."""
        return self.path / RECORDS_FILE

    @property
    def superpixels_file(self) -> Path:
        """``superpixels.npz``: the SLIC segments of the pool (a cache of the superpixel strategy)."""
        return self.path / SUPERPIXELS_FILE

    def labels_name(self, step: int) -> str:
        """File name of the label store after ``step`` (``labels_step_KKK.npz``)."""
        return f"labels_{step_name(step)}.npz"

    def model_name(self, step: int) -> str:
        """File name of the model trained at ``step`` (``model_step_KKK.pt``)."""
        return f"model_{step_name(step)}.pt"

    def selection_file(self, step: int) -> Path:
        """``selections/step_KKK.npz``: the arrays of what ``step`` acquired."""
        return self.path / selection_name(step)

    def initial_model_dir(self, key: str) -> Path:
        """``../.initial_models/<key>/``: the step-0 model shared by the runs next to this one."""
        return self.path.parent / INITIAL_MODELS_DIR / key

    def annotation_dir(self, step: int) -> Path:
        """``annotations/step_KKK/``: the annotation request of ``step`` and its ingested answers."""
        return self.path / ANNOTATIONS_DIR / step_name(step)

    def request_json(self, step: int) -> Path:
        """``annotations/step_KKK/request.json``: what ``step`` asks (ids, names, coordinates)."""
        return self.annotation_dir(step) / REQUEST_JSON

    def request_npz(self, step: int) -> Path:
        """``annotations/step_KKK/request.npz``: the requested images, score maps and pseudo-labels."""
        return self.annotation_dir(step) / REQUEST_NPZ

    def answers_file(self, step: int) -> Path:
        """``annotations/step_KKK/answers.npz``: the ingested answers of ``step``."""
        return self.annotation_dir(step) / ANSWERS_NPZ

    def export_dir(self, step: int, root: str | Path | None = None) -> Path:
        """The export folder of ``step``: ``root/step_KKK``, ``root`` by default ``<run>/to_annotate``."""
        return (self.path / EXPORTS_DIR if root is None else Path(root)) / step_name(step)

    def request_steps(self) -> list[int]:
        """Steps that have a stored annotation request, ascending."""
        root = self.path / ANNOTATIONS_DIR
        found = [int(p.parent.name[5:]) for p in root.glob(f"step_*/{REQUEST_JSON}")] if root.is_dir() else []
        return sorted(found)

    # ------------------------------------------------------------------------- config.json
    def claim(self, fingerprint: str, reference: bool, config: dict[str, Any]) -> None:
        """Start a run here (write ``config.json``), or check that the folder holds this very run.

        Args:
            fingerprint: :meth:`RunConfig.fingerprint` of the run.
            reference: whether it is the full-training-data reference.
            config: :meth:`RunConfig.to_dict` of the run.

        Raises:
            RunStateError: the folder holds a run of another configuration, files of a run without
                its ``config.json``, something else, or a damaged ``config.json``.
        """
        path, identity = self.config_file, {"fingerprint": fingerprint, "reference": reference}
        if path.exists():
            stored = read_run_config_file(path, "it names the configuration this folder holds, so the run "
                                          f"cannot be checked or resumed; {NEW_FOLDER}")
            if {k: stored.get(k) for k in identity} != identity:
                raise RunStateError(
                    f"{self.path} holds a run of a different configuration "
                    f"(fingerprint {stored.get('fingerprint')}, this one {fingerprint}); "
                    "choose another --out folder or delete that one"
                )
            return
        if self.state_file.exists() or self.records_file.exists():
            raise RunStateError(f"{path}: the run's configuration record is missing, so this run folder cannot "
                                f"be checked or resumed; {NEW_FOLDER}")
        if self.path.exists() and any(self.path.iterdir()):
            raise RunStateError(f"{self.path} is not empty and is not an alseg run folder; choose another --out")
        atomic_write_json(path, {**identity, "config": config, "git_commit": git_commit()})

    def read_config(self, advice: str = CONFIG_ADVICE) -> dict[str, Any]:
        """The stored ``config.json``: ``fingerprint``, ``reference``, ``config`` (a mapping), ``git_commit``.

        Raises:
            RunStateError: ``config.json`` is missing or damaged.
        """
        return read_run_config_file(self.config_file, advice)

    def run_config(self) -> RunConfig:
        """The run's configuration, rebuilt from ``config.json``.

        Raises:
            RunStateError: the folder is not an alseg run folder (no ``config.json``), or it is damaged.
        """
        if not self.config_file.is_file():
            raise RunStateError(f"{self.path}: not an alseg run folder (no config.json); give the --out folder "
                                "of a run")
        raw = dict(self.read_config("it names the run's configuration, so the run cannot go on; "
                                    "start a new --out folder")["config"])
        source = raw.pop("source", "")
        return config_from_dict(raw, source=source)

    # ------------------------------------------------------------------------- steps.jsonl
    def read_records(self, advice: str = RECORDS_ADVICE) -> list[dict[str, Any]]:
        """The records of ``steps.jsonl`` (see :func:`read_records`)."""
        return read_records(self.path, advice)

    def write_records(self, records: Sequence[dict[str, Any]]) -> Path:
        """Write ``steps.jsonl`` again from ``records`` (see :func:`write_records`)."""
        return write_records(self.path, records)

    # ------------------------------------------------------------------------- state.json
    def read_state(self, recover: bool, new_model: Callable[[], nn.Module],
                   pool_shape: tuple[int, ...]) -> tuple[RunState, list[str]]:
        """The state of the last finished step; damaged state or records are refused, or repaired.

        Args:
            recover: repair a damaged ``state.json`` or ``steps.jsonl`` from the other (module docstring).
            new_model: builds an untrained network of the run's architecture (to check a model file).
            pool_shape: ``(N, H, W)`` of the run's AL training images (to check a label store).

        Returns:
            ``(state, repaired)``: the state (step -1 in a new folder) and one line per repaired file.

        Raises:
            RunStateError: ``state.json`` or ``steps.jsonl`` is damaged and cannot (or was not asked
                to) be repaired; the message names the file and what to do.
        """
        path, steps = self.state_file, self.records_file
        if not path.exists() and not steps.exists():
            return RunState(), []
        state, why = _parse_state(path)
        if state is None:
            return self._rebuild_state(why, recover, new_model, pool_shape)
        try:
            self.read_records(advice=f"its records are intact in {path.name}: rerun with --recover to "
                              f"write it again from them (the damaged file is kept as {steps.name}.damaged)")
        except RunStateError:
            if not recover:
                raise
            backup = self.keep_damaged(steps)
            self.write_records(state.records)
            return state, [f"wrote {steps} again from {path.name}; the damaged file is kept as {backup}"]
        return state, []

    def _rebuild_state(self, why: str, recover: bool, new_model: Callable[[], nn.Module],
                       pool_shape: tuple[int, ...]) -> tuple[RunState, list[str]]:
        """``state.json`` from ``steps.jsonl`` and the intact label store and model of its last step."""
        path = self.state_file
        records = self.read_records(advice=f"{path.name} is {'missing' if why == 'missing' else 'damaged'} "
                                    f"too, so the run cannot be recovered; {NEW_FOLDER}")
        problem = self._unrecoverable(records, new_model, pool_shape)
        k = len(records) - 1
        state = RunState(k, records, self.labels_name(k), self.model_name(k))
        if problem:
            advice = f"it cannot be rebuilt ({problem}); {NEW_FOLDER}"
        elif not recover:
            kept = f" (the damaged file is kept as {path.name}.damaged)" if path.exists() else ""
            advice = (f"rerun with --recover to rebuild it from steps.jsonl and the intact files of step "
                      f"{state.step}{kept}")
        if problem or not recover:
            if why == "missing":
                raise RunStateError(f"{path}: the run state is missing but steps.jsonl holds {len(records)} "
                                    f"records; {advice}")
            raise damaged_file_error(path, "the run state", why, advice)
        kept = f"; the damaged file is kept as {self.keep_damaged(path)}" if path.exists() else ""
        atomic_write_json(path, state.as_dict())
        return state, [f"rebuilt {path} from steps.jsonl and the files of step {state.step}{kept}"]

    def _unrecoverable(self, records: list[dict[str, Any]], new_model: Callable[[], nn.Module],
                       pool_shape: tuple[int, ...]) -> str:
        """Why ``records`` and the files of their last step cannot make a state (``""`` when they can)."""
        if not records:
            return "steps.jsonl holds no record"
        k = len(records) - 1
        labels_file, model_file = self.path / self.labels_name(k), self.path / self.model_name(k)
        missing = [f.name for f in (labels_file, model_file) if not f.is_file()]
        if missing:
            return f"{missing[0]} is missing"
        try:
            store = _load_store(labels_file, "restore it from a copy, or start a new run folder")
        except RunStateError:
            return f"{labels_file.name} cannot be read either"
        try:
            load_checkpoint(new_model(), model_file)
        except RunStateError:
            return f"{model_file.name} cannot be read either"
        if store.valid.shape != tuple(pool_shape) or store.labelled_pixels() != records[-1].get("labelled_pixels"):
            return f"{labels_file.name} does not hold the labels recorded for step {k}"
        return ""

    def keep_damaged(self, path: Path) -> Path:
        """Copy a damaged file to ``<name>.damaged`` (or ``.damaged-2``, ...) before it is replaced.

        Returns:
            The copy.
        """
        backup, n = path.with_name(f"{path.name}.damaged"), 1
        while backup.exists():
            n += 1
            backup = path.with_name(f"{path.name}.damaged-{n}")
        atomic_write_bytes(backup, path.read_bytes())
        return backup

    def restore(self, state: RunState, new_model: Callable[[], nn.Module],
                pool_shape: tuple[int, ...]) -> tuple[LabelStore, nn.Module]:
        """The label store and the model of the last finished step (``state.step >= 0``).

        Args:
            state: what :meth:`read_state` returned.
            new_model: builds an untrained network of the run's architecture.
            pool_shape: ``(N, H, W)`` of the run's AL training images.

        Raises:
            RunStateError: one of the two files is missing, damaged or not of this run.
        """
        advice = f"the run cannot resume from step {state.step} (earlier steps' files are not kept): {NEW_FOLDER}"
        path = self.path / str(state.labels_file)
        store = _load_store(path, advice)
        if store.valid.shape != tuple(pool_shape):
            raise damaged_file_error(path, "the label store", f"{store.valid.shape[0]} images of "
                                     f"{store.valid.shape[1]}x{store.valid.shape[2]}, not the run's "
                                     f"{tuple(pool_shape)}", advice)
        model = new_model()
        load_checkpoint(model, self.path / str(state.model_file), advice=advice)
        return store, model

    def commit(self, state: RunState, step: int, store: LabelStore, model: nn.Module,
               record: dict[str, Any]) -> RunState:
        """Finish ``step``: its label store and model, then ``state.json``, then ``steps.jsonl``.

        The files of the previous step are deleted last (only the last finished step's are kept).

        Args:
            state: the state before the step.
            step: the step just finished.
            store: the labels after it.
            model: the model trained at it.
            record: its record.

        Returns:
            The new state.
        """
        labels_file, model_file = self.labels_name(step), self.model_name(step)
        store.save(self.path / labels_file)
        save_checkpoint(model, self.path / model_file)
        new = RunState(step, state.records + [record], labels_file, model_file)
        atomic_write_json(self.state_file, new.as_dict())
        self.write_records(new.records)
        for name in (state.labels_file, state.model_file):
            if name and name not in (labels_file, model_file):
                (self.path / name).unlink(missing_ok=True)
        return new

    def last_finished_labels(self, advice: str = LABELS_ADVICE) -> tuple[int, LabelStore | None]:
        """The last finished step (``state.json``) and its label store, read without repairing anything.

        Args:
            advice: what the user can do when ``state.json`` is damaged (part of the error).

        Returns:
            ``(step, store)``: ``(-1, None)`` for a folder without state, ``store`` None while step 0
            has not finished.

        Raises:
            RunStateError: ``state.json`` or the label store it names is damaged (named, with what to do).
        """
        path = self.state_file
        if not path.exists():
            return -1, None
        state = read_json_file(path, "the run state", advice)
        step, labels_file = state.get("step"), state.get("labels_file")
        if not isinstance(step, int) or (step >= 0 and not isinstance(labels_file, str)):
            raise damaged_file_error(path, "the run state", "it names no step or label store", advice)
        if step < 0:
            return step, None
        return step, _load_store(self.path / labels_file, f"the run cannot go on from step {step} (earlier "
                                 "steps' files are not kept): continue it in a new --out folder")

    # ------------------------------------------------------------------------- selections
    def save_selection(self, step: int, arrays: dict[str, np.ndarray]) -> None:
        """Write ``selections/step_KKK.npz`` (the arrays in the order given)."""
        save_npz(self.selection_file(step), arrays)

    def load_selection(self, step: int) -> dict[str, np.ndarray]:
        """The arrays stored for what ``step`` acquired.

        Returns:
            ``acquired_score`` and ``acquired_entropy`` [P] float32 (the acquired pixels),
            ``shown_images`` [S] int64, ``shown_score`` [S, H, W] float32, ``shown_pseudo_object`` and
            ``shown_pseudo_contour`` [S, H, W] uint8, ``regions`` [R, 5] int64 (image, top, left,
            height, width); superpixel runs add ``shown_segments`` [S, H, W] int32 and
            ``superpixels`` [P', 3] int64 (image, segment, pixels).

        Raises:
            RunStateError: the step acquired nothing in this run, or the file is damaged.
        """
        path = self.selection_file(step)
        if not path.exists():
            raise RunStateError(f"{path} not found: step {step} has not acquired anything in this run")
        return read_npz_file(path, f"the selection of step {step}", "restore it from a copy; the run's records "
                             "(steps.jsonl) still list what the step acquired")

    # ------------------------------------------------------------------------- the shared initial model
    def load_initial_model(self, key: str, new_model: Callable[[], nn.Module]
                           ) -> tuple[nn.Module, dict[str, Any]] | None:
        """The cached step-0 model and its metrics, or None when none is cached under ``key``.

        Args:
            key: what step 0 depends on, hashed (:meth:`ActiveRun._initial_key`).
            new_model: builds an untrained network of the run's architecture (called only on a hit).

        Raises:
            RunStateError: the cache is damaged (it is refused, not retrained).
        """
        cache = self.initial_model_dir(key)
        if not (cache / "metrics.json").exists():
            return None
        advice = (f"it is the cached step-0 model of the runs in {self.path.parent}; delete the folder {cache} "
                  "to train it again (the runs that used it keep their records)")
        metrics = read_json_file(cache / "metrics.json", "the cached initial model's metrics", advice)
        if not (cache / "model.pt").is_file():
            raise RunStateError(f"{cache / 'model.pt'}: the cached initial model is missing; {advice}")
        model = new_model()
        load_checkpoint(model, cache / "model.pt", advice=advice)
        return model, metrics

    def save_initial_model(self, key: str, model: nn.Module, metrics: dict[str, Any]) -> None:
        """Cache the step-0 model under ``key``: the model first, its metrics (the marker) last."""
        cache = self.initial_model_dir(key)
        save_checkpoint(model, cache / "model.pt")
        atomic_write_json(cache / "metrics.json", metrics)
