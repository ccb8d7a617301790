"""Execute the numbered notebooks headlessly (papermill) and scrub what they store.

``python -m alseg_utils.notebooks execute notebooks`` re-executes every notebook in place with its
default (quick) parameters, the way they are committed: outputs kept, execution metadata and
timestamps removed, so that ``pytest --nbval`` compares only what the notebooks print.

:func:`run_papermill` is the package's one call of papermill: :func:`execute_notebook` (here) and
the sweep's jobs and report (:mod:`alseg_utils.sweep`) go through it.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nbformat

from alseg_utils.results import atomic_write_text

NOTEBOOK_ORDER = (
    "00_data_prep.ipynb", "01_full_image_al.ipynb", "02_region_al.ipynb", "03_calibration.ipynb",
    "04_uncertainty_histograms.ipynb", "05_results.ipynb", "06_annotate_your_data.ipynb",
)
# kernels log only critical errors: ipykernel's start-up warning (local TCP) and the 'KeyboardInterrupt caught
# in kernel' line of every shutdown (jupyter_client interrupts a kernel before stopping it) would otherwise
# break progress bars; a failing cell is reported by papermill, not by the kernel's log
KERNEL_LOG_LEVEL = "--IPKernelApp.log_level=CRITICAL"


@functools.cache  # one class per process, not one per executed notebook
def _kernel_manager_class() -> type:
    """The kernel manager papermill starts kernels with: local sockets on POSIX, TCP elsewhere.

    Over TCP, jupyter_client picks five free ports, releases them and lets the kernel bind them;
    a parallel sweep (or Ray's own workers) can take a port in between and the kernel dies with
    "Address already in use". Unix-domain sockets under a fresh name cannot collide. Windows has
    no ZeroMQ ``ipc`` transport and keeps TCP.
    """
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    if os.name == "nt":
        return AsyncKernelManager

    class LocalSocketKernelManager(AsyncKernelManager):
        """An ``AsyncKernelManager`` on ZeroMQ ``ipc`` sockets named uniquely in the temp folder."""

        @default("transport")
        def _default_transport(self) -> str:
            return "ipc"

        @default("ip")
        def _default_ip(self) -> str:
            # the sockets are <ip>-1 ... <ip>-5; short, so that the path fits a socket address
            return os.path.join(tempfile.gettempdir(), f"alseg-kernel-{uuid.uuid4().hex[:12]}")

    return LocalSocketKernelManager


def scrub_notebook(nb: Any) -> Any:
    """Remove execution metadata (timestamps, durations, papermill bookkeeping) in place.

    Args:
        nb: an ``nbformat.NotebookNode``.

    Returns:
        The same notebook.
    """
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        cell.metadata.pop("ExecuteTime", None)
        if cell.cell_type == "code":
            for out in cell.get("outputs", []):
                out.get("metadata", {}).pop("execution", None)
    return nb


def run_papermill(notebook: str | Path, output: str | Path, parameters: dict[str, Any] | None = None,
                  cwd: str | Path | None = None, kernel_name: str | None = None) -> None:
    """Execute ``notebook`` into ``output`` with papermill, headless and with a quiet kernel.

    Papermill writes ``output`` as cells run, so a notebook that fails keeps its error in place.

    Args:
        notebook: the notebook to run.
        output: where the executed copy goes (overwritten).
        parameters: values for the ``parameters`` cell (none: the committed defaults).
        cwd: the kernel's working directory (default: the notebook's folder).
        kernel_name: Jupyter kernel (default: the notebook's own).

    Raises:
        papermill.PapermillExecutionError: a cell raised (the executed copy shows where).
    """
    import papermill

    cwd = Path(notebook).parent if cwd is None else cwd
    papermill.execute_notebook(str(notebook), str(output), parameters=dict(parameters or {}), cwd=str(cwd),
                               kernel_name=kernel_name, progress_bar=False, extra_arguments=[KERNEL_LOG_LEVEL],
                               kernel_manager_class=_kernel_manager_class())


def execute_notebook(path: str | Path, output: str | Path | None = None,
                     parameters: dict[str, Any] | None = None, kernel_name: str | None = None) -> Path:
    """Execute a notebook with papermill (cwd = its folder), then scrub and save it atomically.

    Args:
        path: the notebook to run.
        output: where the executed copy goes (default: in place).
        parameters: values for the ``parameters`` cell (none: the committed defaults).
        kernel_name: Jupyter kernel (default: the notebook's own).

    Returns:
        The path written.
    """
    path = Path(path).resolve()
    output = Path(output).resolve() if output else path
    tmp = output.with_name(f".{output.stem}.running.ipynb")
    run_papermill(path, tmp, parameters, cwd=path.parent, kernel_name=kernel_name)
    nb = scrub_notebook(nbformat.read(tmp, as_version=4))
    atomic_write_text(output, nbformat.writes(nb) + "\n")
    tmp.unlink(missing_ok=True)
    return output


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m alseg_utils.notebooks execute FOLDER [NAMES...]``: re-execute in place, in order."""
    p = argparse.ArgumentParser(prog="python -m alseg_utils.notebooks")
    p.add_argument("command", choices=("execute", "scrub"))
    p.add_argument("folder")
    p.add_argument("names", nargs="*", help="notebook file names (default: all, in order)")
    args = p.parse_args(argv)
    folder = Path(args.folder)
    names = args.names or [n for n in NOTEBOOK_ORDER if (folder / n).exists()]
    for name in names:
        if args.command == "execute":
            print(f"executing {name}", flush=True)
            execute_notebook(folder / name)
        else:
            nb = scrub_notebook(nbformat.read(folder / name, as_version=4))
            atomic_write_text(folder / name, nbformat.writes(nb) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
