"""The `workbench` command: parse arguments, call `workbench.runs`, turn the outcome into an exit code.

Exit codes: 0 the run completed, 1 the notebook failed (its executed copy,
traceback included, is in the run folder) or a file it needs is missing or
broken (the message names it), 2 the spec, parameters or command line are
wrong (nothing was run), 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import yaml

from workbench.errors import RequestError, ResourceError
from workbench.runs import find_project_root, format_runs_table, headline_metrics, list_runs, run_spec
from workbench.runs.plan import format_plan
from workbench.runs.registry import compute_phrase, format_number, read_run
from workbench.runs.resume import unfinished_note
from workbench.runs.runner import DEFAULT_RUNS_SUBDIR, PipelineResult, dry_run, scale_overrides

EXIT_COMPLETED, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

EXAMPLES = """examples:
  workbench run experiments/pretrain-quick.yaml            a seconds-long run into experiments/runs/<run-id>/
  workbench run experiments/pretrain.yaml -p max_steps=200 override a parameter (checked before anything runs)
  workbench run experiments/finetune-quick.yaml --jobs 2   a pipeline, two runs at a time
  workbench run SPEC --dry-run                             print the expanded runs, execute nothing
  workbench run SPEC --resume                              continue the spec's newest folder after a kill
  workbench run experiments/pretrain.yaml --devices 2      train on 2 processes (DDP; gloo on CPU)
  workbench runs --spec finetune-quick --status completed  list runs, filtered
  workbench sync-notebooks                                 re-render parameters cells from the settings
  workbench export experiments/runs/<run-id> OUT           the run's model as a Hugging Face folder
  workbench export <lora fine-tune run> OUT --adapter      a LoRA fine-tune as a peft adapter
"""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse already printed the usage error (or --help)
        return e.code if isinstance(e.code, int) else EXIT_COMPLETED
    try:
        return args.command(args)
    except RequestError as e:  # what was asked is wrong: one line, nothing was run
        print(f"workbench {args.verb}: {e}", file=sys.stderr)
        return EXIT_USAGE
    except ResourceError as e:  # something it needs is missing or broken: the message names it
        where = f" ({e.path})" if getattr(e, "path", None) and str(e.path) not in str(e) else ""
        print(f"workbench {args.verb}: {e}{where}", file=sys.stderr)
        return EXIT_FAILED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench", description="Run, resume and list workbench experiments (specs under experiments/).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    verbs = parser.add_subparsers(title="commands", required=True, metavar="COMMAND", dest="verb")

    run = verbs.add_parser("run", help="execute an experiment spec into a new run folder", epilog=EXAMPLES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("spec", type=Path, help="experiment spec, e.g. experiments/pretrain-quick.yaml")
    run.add_argument("--runs-dir", type=Path, help="where run folders go (default: <project>/experiments/runs)")
    run.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        type=_key_value,
        metavar="KEY=VALUE",
        help="override a spec parameter; VALUE is read as YAML, so max_steps=10 is an int (repeatable)",
    )
    run.add_argument("--devices", type=int, metavar="N",
                     help="train on N processes per node (GPUs, or CPU processes): -p devices=N")
    run.add_argument("--num-nodes", type=int, metavar="N",
                     help="machines, each running this command under torchrun or srun: -p num_nodes=N")
    shown = run.add_mutually_exclusive_group()
    shown.add_argument("--quiet", action="store_true", help="show neither progress nor the notebook's output")
    shown.add_argument("-v", "--verbose", action="store_true",
                       help="stream the notebook's output, papermill's cell banners included (default: a progress "
                       "line per run)")
    run.add_argument("--dry-run", action="store_true", help="print the expanded runs; execute nothing")
    run.add_argument("-j", "--jobs", type=int, default=1, help="runs to execute at once in a sweep (default 1)")
    run.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="FOLDER",
        help="continue the spec's newest run folder (or FOLDER): keep completed runs, rerun killed, interrupted "
        "and failed ones from their saved training state",
    )
    run.set_defaults(command=_run)

    from workbench.runs.registry import STATUSES

    runs = verbs.add_parser("runs", help="list run folders with status, wall time and headline metrics")
    runs.add_argument("--runs-dir", type=Path, help="default: <project>/experiments/runs")
    runs.add_argument("--spec", metavar="NAME", help="only runs of this spec (its name, e.g. pretrain-quick)")
    runs.add_argument("--stage", metavar="NAME", help="only runs of this stage of a pipeline")
    runs.add_argument("--status", choices=STATUSES, help="only runs with this status")
    runs.add_argument(
        "--param",
        action="append",
        default=[],
        type=_key_value,
        metavar="KEY=VALUE",
        help="only runs whose params.yaml has KEY=VALUE (VALUE read as YAML; numbers by value; repeatable)",
    )
    made = runs.add_mutually_exclusive_group()
    made.add_argument("--interactive", dest="interactive", action="store_const", const=True,
                      help="only runs started by hand in JupyterLab (a notebook with output_dir \"\")")
    made.add_argument("--unattended", dest="interactive", action="store_const", const=False,
                      help="only runs made by `workbench run`")
    runs.add_argument("--json", action="store_true", help="print the matching runs as JSON, one object each")
    runs.add_argument("--tracking-uri", nargs="?", const="", default=None, metavar="URI",
                      help="also list the runs an MLflow tracking server holds (tracking=mlflow); URI defaults to "
                      "the local store beside the runs folder, experiments/mlflow.db")
    runs.set_defaults(command=_runs)

    sync = verbs.add_parser("sync-notebooks", help="render each notebook's parameters cell (and "
                            "docs/parameters.md) from its settings dataclass")
    sync.add_argument("--check", action="store_true", help="change nothing; exit 1 when a cell is out of date")
    sync.set_defaults(command=_sync_notebooks)

    export = verbs.add_parser("export", help="write a run's model as a Hugging Face folder that transformers "
                              "(or peft) loads with no workbench code")
    export.add_argument("run", type=Path, help="a pretraining run, a causal-LM fine-tuning run, or a checkpoint folder")
    export.add_argument("out", type=Path, help="the new folder (must not hold anything yet)")
    export.add_argument("--adapter", action="store_true", help="a LoRA fine-tune's adapter alone, for "
                        "peft.PeftModel.from_pretrained(<its base, exported on its own>, OUT)")
    export.add_argument("--overwrite", action="store_true", help="replace what OUT holds")
    export.set_defaults(command=_export)
    return parser


def _export(args: argparse.Namespace) -> int:
    import time

    from workbench.interop.export import export

    started = time.perf_counter()
    out = export(args.run, args.out, adapter=args.adapter, overwrite=args.overwrite)
    files = ", ".join(sorted(p.name for p in out.iterdir()))
    print(f"exported {args.run} -> {out} in {time.perf_counter() - started:.1f} s: {files}")
    return EXIT_COMPLETED


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("workbench")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _sync_notebooks(args: argparse.Namespace) -> int:
    from workbench.runs.interface import parameters_doc, sync_parameters_cell

    root = find_project_root(Path.cwd())
    if root is None:
        raise RequestError("not inside a project (no notebooks/ or pyproject.toml here or above)")
    notebooks = sorted((root / "notebooks").glob("*.ipynb"))
    stale = [n for n in notebooks if sync_parameters_cell(n, write=not args.check)]
    doc = root / "docs" / "parameters.md"
    text = parameters_doc(notebooks) + "\n"
    if not doc.is_file() or doc.read_text(encoding="utf-8") != text:
        stale.append(doc)
        if not args.check:
            doc.parent.mkdir(exist_ok=True)
            doc.write_text(text, encoding="utf-8")
    for path in stale:
        print(f"{'out of date' if args.check else 'rewrote'}: {path.relative_to(root)}")
    return EXIT_FAILED if args.check and stale else EXIT_COMPLETED


def _run(args: argparse.Namespace) -> int:
    scale = {k: v for k, v in (("devices", args.devices), ("num_nodes", args.num_nodes)) if v is not None}
    try:
        args.param = [*args.param, *scale_overrides(args.spec, scale).items()]
        if args.dry_run:
            print(format_plan(dry_run(args.spec, runs_dir=args.runs_dir, overrides=dict(args.param))))
            return EXIT_COMPLETED
        note = None if args.resume else unfinished_note(args.spec, args.runs_dir)
        if note:
            print(note, file=sys.stderr)
        with _notebook_output_on_stdout(enabled=args.verbose):
            result = run_spec(
                args.spec, runs_dir=args.runs_dir, overrides=dict(args.param), log_output=args.verbose,
                jobs=args.jobs, resume=args.resume, progress=not (args.quiet or args.verbose),
            )
    except KeyboardInterrupt as e:
        print("workbench run: interrupted", *getattr(e, "__notes__", []), sep="\n", file=sys.stderr)
        return EXIT_INTERRUPTED
    if isinstance(result, PipelineResult):
        return _report_pipeline(result)
    print(f"{result.status}: {result.run_id}")
    print(f"run folder: {result.run_dir}")
    if result.status != "completed":
        cell = f" (cell In [{result.failed_cell}])" if result.failed_cell is not None else ""
        print(f"error{cell}: {result.error}")
        print(f"traceback: in the executed notebook {result.notebook}")
        return EXIT_FAILED
    headline = headline_metrics(result.metrics)
    if headline:
        print("metrics: " + "  ".join(f"{k}={format_number(v)}" for k, v in headline.items()))
    phrase = compute_phrase(read_run(result.run_dir))
    if phrase:
        print(f"compute: {phrase}")
    return EXIT_COMPLETED


def _report_pipeline(result: PipelineResult) -> int:
    print(format_runs_table(list_runs(result.run_dir)))
    failed = [r for r in result.results if r.status != "completed"]
    print(f"{result.status}: {len(result.results) - len(failed)} of {len(result.results)} runs completed")
    print(f"run folder: {result.run_dir}")
    for r in failed:
        where = f"traceback in {r.notebook}" if r.status == "failed" else r.error
        print(f"  {r.status} {r.run_dir.name}: {where}")
    return EXIT_COMPLETED if not failed else EXIT_FAILED


def _runs(args: argparse.Namespace) -> int:
    runs_dir = args.runs_dir
    if runs_dir is None:
        root = find_project_root(Path.cwd())
        if root is None:
            hint = "no notebooks/ or pyproject.toml here or above; pass --runs-dir"
            print(f"workbench runs: not inside a project ({hint})", file=sys.stderr)
            return EXIT_USAGE
        runs_dir = root / DEFAULT_RUNS_SUBDIR
    from workbench.runs.registry import filter_runs

    records = list_runs(runs_dir)
    tracked = _tracked(args.tracking_uri, runs_dir)
    if not records and tracked is None:
        hint = ("; make one with `workbench run experiments/pretrain-quick.yaml` (seconds), `make demo`, "
                "or by running a notebook in JupyterLab (`make lab`)")
        print("[]" if args.json else f"no runs in {runs_dir}{hint}")
        return EXIT_COMPLETED
    records = filter_runs(records, spec=args.spec, stage=args.stage, status=args.status, params=dict(args.param),
                          interactive=args.interactive)
    if args.json:
        import json

        rows = [
            {"source": "local", "id": r.run_id, "spec": r.spec, "stage": r.stage, "status": r.status,
             "started": r.started, "wall_time_s": r.wall_time_s, "path": str(r.run_dir), "varied": r.varied,
             "params": r.params, "metrics": r.metrics, "compute": r.compute, "kind": r.kind,
             "interactive": r.interactive, "throughput": str(r.throughput) if r.throughput else None}
            for r in records
        ]
        print(json.dumps(rows + (tracked[1] if tracked else []), indent=2, default=str))
    else:
        print(format_runs_table(records) if records else f"no runs in {runs_dir} match the filters")
        if tracked:
            from workbench.runs.tracking import format_tracked_runs

            print(f"\n{format_tracked_runs(tracked[1], tracked[0])}")
    return EXIT_COMPLETED


def _tracked(tracking_uri: str | None, runs_dir: Path) -> tuple[str, list[dict]] | None:
    """(the URI, its runs) for `workbench runs --tracking-uri`; None when not asked."""
    if tracking_uri is None:
        return None
    from workbench.runs.tracking import default_tracking_uri, tracked_runs

    uri = tracking_uri or default_tracking_uri(runs_dir)
    return uri, tracked_runs(uri)


def _key_value(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError:
        raise argparse.ArgumentTypeError(f"{text!r}: the value is not valid YAML (quote it)") from None


class _MessageOnly(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage().rstrip("\n")


@contextmanager
def _notebook_output_on_stdout(enabled: bool) -> Iterator[None]:
    """papermill streams a notebook's output through its logger; show it as plain lines."""
    if not enabled:
        yield
        return
    logger = logging.getLogger("papermill")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_MessageOnly())
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


if __name__ == "__main__":
    sys.exit(main())
