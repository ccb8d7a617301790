"""The ``alseg`` command: run, sweep, report, data, reproduce, check-reproduction, export, ingest.

User errors (bad params, missing data, foreign run folders, damaged files in a run folder) print
one line ``alseg: error: ...`` and exit with status 2; no traceback, and nothing in the folder
changed. A run with ``--oracle files`` that waits for annotations prints one line saying what to
annotate and the commands that continue, and exits with status 3.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from alseg_utils.config import ACQUISITIONS, EFFORT_AXES, METHODS, load_config
from alseg_utils.errors import AlsegError

MAIN_JOB = "quick"  # the name of the Makefile's default params file: its figures are the README's, in figures/


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="alseg", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="one active-learning run (resumes when its folder exists)")
    run.add_argument("params", help="params YAML file, e.g. params/quick.yaml")
    run.add_argument("--strategy", choices=METHODS, help="full images (Alg. 1), square regions (Alg. 2), "
                     "SLIC superpixels under the same pixel budget, or superpixels labelled with one class "
                     "each under the same click budget (superpixel_dominant)")
    run.add_argument("--acquisition", choices=ACQUISITIONS, help="acquisition function")
    run.add_argument("--seed", type=int, help="seed of the initial set, training and MC dropout")
    run.add_argument("--reference", action="store_true", help="train once on all labels (full-data line)")
    run.add_argument("--out", help="run folder (default: results/<name>/<strategy>-<acquisition>-s<seed>)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument("--oracle", choices=("simulated", "files"), default="simulated",
                     help="who labels: ground truth (simulated) or a person through export / ingest (files)")
    run.add_argument("--recover", action="store_true",
                     help="rebuild a damaged state.json from steps.jsonl and the last step's intact files (or "
                     "steps.jsonl from state.json); the damaged file is kept as <name>.damaged")

    sweep = sub.add_parser("sweep", help="every strategy x acquisition x seed through papermill")
    sweep.add_argument("params")
    sweep.add_argument("--out", help="sweep folder (default: runs/<name>)")
    sweep.add_argument("--workers", type=int, default=1, help="local processes running jobs at once")
    sweep.add_argument("--executor", choices=("local", "ray"), default="local")
    sweep.add_argument("--address", help="Ray cluster address (with --executor ray)")

    report = sub.add_parser("report", help="figures and Table 1 from a sweep or results folder")
    report.add_argument("results", help="a sweep folder (runs/<name>) or a results folder")
    report.add_argument("--figures", help="where figures go (default: figures/)")
    report.add_argument("--cost", choices=EFFORT_AXES, default="pixels",
                        help="effort axis of Fig. 1, Fig. 3 and Table 1: %% labelled pixels (default), polygon "
                        "clicks, dominant-class clicks, or clicks as each run was annotated (written with a "
                        "_<cost> suffix beside the pixel ones)")

    data = sub.add_parser("data", help="load (and generate, if synthetic) the data of a params file")
    data.add_argument("params")

    repro = sub.add_parser("reproduce", help="sweep + report for one or more params files")
    repro.add_argument("params", nargs="+")
    repro.add_argument("--workers", type=int, default=2)
    repro.add_argument("--figures", help="where figures go (default: figures/ for the main job "
                       f"{MAIN_JOB!r}, figures/<name>/ for any other params file; with --figures DIR: DIR for "
                       "one params file, DIR/<name>/ each for several)")

    check = sub.add_parser("check-reproduction", help="compare a fresh sweep with committed records, statistically "
                           "(exit 0: reproduced, 1: not)")
    check.add_argument("fresh", help="the fresh sweep folder (runs/<name>) or its results folder")
    check.add_argument("committed", help="the committed records, e.g. notebooks/example_results/quick")
    check.add_argument("--metric", help="the score compared (default: the committed config's primary metric, "
                       "F1 for GlaS, Jaccard for ISIC)")

    export = sub.add_parser("export", help="write what a --oracle files run waits for, for annotation")
    export.add_argument("run_dir", help="the run folder (--out of alseg run)")
    export.add_argument("--to", required=True, help="export folder (created)")
    export.add_argument("--step", type=int, help="the step to export (default: the latest request)")

    ingest = sub.add_parser("ingest", help="check the corrected masks and store them in the run folder")
    ingest.add_argument("run_dir", help="the run folder (--out of alseg run)")
    ingest.add_argument("--from", dest="source", required=True, help="folder holding the corrected masks")
    return p


def _cmd_run(args: argparse.Namespace) -> int:
    from alseg_utils.active import ActiveRun

    overrides = {f"active.{k}": getattr(args, k) for k in ("strategy", "acquisition", "seed")
                 if getattr(args, k) is not None}
    cfg = load_config(args.params, overrides)
    a = cfg.active
    name = "reference" if args.reference else f"{a.method_name()}-{a.acquisition}"
    out = Path(args.out) if args.out else Path("results") / cfg.name / f"{name}-s{a.seed}"
    oracle = None
    if args.oracle == "files":
        from alseg_utils.files_oracle import FilesOracle

        if args.reference:
            raise AlsegError("--reference trains on the ground truth of every image; run it with --oracle simulated")
        oracle = FilesOracle(out)
    run = ActiveRun(cfg, out, oracle, progress=not args.no_progress, reference=args.reference,
                    recover=args.recover)
    for note in run.recovered:
        print(f"alseg: {note}")
    records = run.run()
    if records:
        last = records[-1]
        scores = (f"F1 {last['f1']:.3f}, Dice {last['dice']:.3f}, ECE {last['ece']:.4f}" if "f1" in last
                  else "no labelled test set, not evaluated")
        print(f"{out}: {len(records)} steps, labelled {100 * last['labelled_fraction']:.1f}% of pixels, {scores}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from alseg_utils.annotation_export import export_request

    manifest = export_request(args.run_dir, args.to, args.step)
    print(f"{manifest}: see {manifest.parent / 'HOWTO.txt'}; put the answers in {manifest.parent / 'answers'}")
    return 0


def _cmd_ingest(args: argparse.Namespace) -> int:
    from alseg_utils.annotation_ingest import ingest_answers

    result = ingest_answers(args.run_dir, args.source)
    done = "stored" if result.written else "already stored (nothing changed)"
    print(f"step {result.step}: {result.regions} answers {done} in {result.path}; rerun the `alseg run` command")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from alseg_utils.sweep import run_sweep

    outcomes = run_sweep(args.params, sweep_dir=args.out, workers=args.workers,
                         executor=args.executor, address=args.address)
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def _cmd_report(args: argparse.Namespace) -> int:
    from alseg_utils.results import check_results
    from alseg_utils.sweep import run_report

    results = Path(args.results)
    if not results.exists():
        raise AlsegError(f"{results}: no such folder; give a sweep folder such as runs/quick")
    check_results(results)  # a damaged record stops the report here, before anything is written
    if args.cost != "pixels":  # clicks of records written before they were counted: one line, before any notebook
        from alseg_utils.costs import require_effort
        from alseg_utils.results import load_records

        require_effort(load_records(results), args.cost)
    paths = run_report(results, Path(args.figures) if args.figures else None, cost=args.cost)
    for path in paths:
        print(path)
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    from alseg_utils.data import load_dataset

    cfg = load_config(args.params)
    for split in ("train", "test"):
        ds = load_dataset(cfg, split, require_masks=False)
        masks = (f"{100 * ds.masks.mean():.1f}% object pixels" if ds.has_masks and len(ds)
                 else "no masks (label them with alseg run --oracle files)" if len(ds) else "none: not evaluated")
        print(f"{cfg.data_root()} {split}: {len(ds)} images of {ds.images.shape[1]}x{ds.images.shape[2]}, {masks}")
    return 0


def figures_folder(name: str, given: str | None, several: bool) -> Path:
    """Where ``alseg reproduce`` writes the report of the params file called ``name``.

    No figure of one params file may overwrite another's: without ``--figures`` the main job
    (:data:`MAIN_JOB`) writes to ``figures/`` and every other params file to ``figures/<name>/``; a
    given folder is used as is for one params file and gets a ``<name>/`` folder per file for several.

    Args:
        name: the params file's ``name``.
        given: the ``--figures`` argument, or ``None``.
        several: whether more than one params file is reproduced.
    """
    if given is None:
        return Path("figures") if name == MAIN_JOB else Path("figures") / name
    return Path(given) / name if several else Path(given)


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from alseg_utils.sweep import reproduction_summary, run_report, run_sweep

    failed = False
    configs = [load_config(params) for params in args.params]  # every file checked before any sweep starts
    summaries = []
    for params, cfg in zip(args.params, configs, strict=True):
        start = time.perf_counter()
        outcomes = run_sweep(params, workers=args.workers)
        failed |= any(o.status == "failed" for o in outcomes)
        where = figures_folder(cfg.name, args.figures, several=len(configs) > 1)
        run_report(Path("runs") / cfg.name, where)
        summaries.append(reproduction_summary(Path("runs") / cfg.name, where.resolve(), time.perf_counter() - start))
    print("\n".join(summaries))
    return 1 if failed else 0


def _cmd_check_reproduction(args: argparse.Namespace) -> int:
    from alseg_utils.reproduction import BAND_FLOOR, BAND_SDS, INTERVAL_GAP, check_reproduction

    check = check_reproduction(args.fresh, args.committed, args.metric)
    print(f"{args.fresh} against {args.committed} on {check.metric}: bands committed mean \N{PLUS-MINUS SIGN} "
          f"max({BAND_SDS:g} x SE of the two means (committed seed std pooled per method), {BAND_FLOOR:g}); "
          f"paired AULC t intervals at most {INTERVAL_GAP:g} apart")
    print("\n".join(check.lines()))
    return 0 if check.passed else 1


COMMANDS = {"run": _cmd_run, "sweep": _cmd_sweep, "report": _cmd_report, "data": _cmd_data,
            "reproduce": _cmd_reproduce, "check-reproduction": _cmd_check_reproduction, "export": _cmd_export,
            "ingest": _cmd_ingest}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``alseg`` console script.

    Args:
        argv: arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 1 when a sweep job failed or a reproduction check did not
        pass, 2 on a user error, 3 when a ``--oracle files`` run waits for annotations.
    """
    from alseg_utils.files_oracle import AnnotationPending

    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except AnnotationPending as pending:
        print(f"alseg: {pending}", file=sys.stderr)
        return 3
    except AlsegError as err:
        print(f"alseg: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("alseg: interrupted; rerun the same command to resume from the last finished step",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
