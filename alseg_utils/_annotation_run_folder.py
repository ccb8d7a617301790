"""The annotation modules' view of a run folder: thin functions over :class:`~alseg_utils.run_folder.RunFolder`.

Every path and file of a run folder is owned by :mod:`alseg_utils.run_folder`; the annotation
modules call these functions (which take the folder as a path, as their public functions do) and
never build a path or read ``config.json`` / ``state.json`` / the label store themselves.
"""

from __future__ import annotations

from pathlib import Path

from alseg_utils.config import RunConfig
from alseg_utils.labels import LabelStore
from alseg_utils.run_folder import ANSWERS_NPZ, REQUEST_JSON, REQUEST_NPZ, RunFolder

__all__ = ["ANSWERS_NPZ", "REQUEST_JSON", "REQUEST_NPZ", "last_finished_labels", "request_steps", "run_config",
           "step_dir", "to_annotate_dir"]


def step_dir(run_dir: str | Path, step: int) -> Path:
    """The folder holding the request and the answers of ``step`` (:meth:`RunFolder.annotation_dir`)."""
    return RunFolder(run_dir).annotation_dir(step)


def to_annotate_dir(run_dir: str | Path, step: int, root: str | Path | None = None) -> Path:
    """The export folder of ``step``: ``root/step_KKK``, ``root`` by default ``run_dir/to_annotate``.

    Args:
        run_dir: the run folder.
        step: the acquisition step.
        root: the folder holding one export per step; None for the run folder's ``to_annotate``.

    Returns:
        The folder to give ``alseg export --to`` (the answers go in its ``answers`` subfolder).
    """
    return RunFolder(run_dir).export_dir(step, root)


def request_steps(run_dir: str | Path) -> list[int]:
    """Steps of a run folder that have a stored request, ascending."""
    return RunFolder(run_dir).request_steps()


def run_config(run_dir: str | Path) -> RunConfig:
    """The configuration stored in a run folder's ``config.json`` (:meth:`RunFolder.run_config`).

    Raises:
        RunStateError: the folder is not an alseg run folder, or its ``config.json`` is damaged.
    """
    return RunFolder(run_dir).run_config()


def last_finished_labels(run_dir: str | Path) -> tuple[int, LabelStore | None]:
    """The last finished step of a run and its label store (:meth:`RunFolder.last_finished_labels`).

    Returns:
        ``(step, store)``: ``(-1, None)`` for a run folder without state, ``store`` None while
        step 0 has not finished.

    Raises:
        RunStateError: ``state.json`` or the label store it names is damaged (named, with what to do).
    """
    return RunFolder(run_dir).last_finished_labels()
