"""Copies of the notebooks at quick sizes, for nbval: `python -m workbench.runs.quick_notebooks`.

A notebook's defaults are a real run; `make test` validates each notebook at the sizes listed in
`notebooks/quick.yaml` instead. papermill's --prepare-only writes each copy with those values
injected after its parameters cell (the executed notebook of a `workbench run -p` has the same
shape), and every notebook that writes artifacts gets an `output_dir` inside the copies' folder,
so validating never adds runs to experiments/runs. What a `# NBVAL_CHECK_OUTPUT` cell must print
at those sizes is written in quick.yaml too and stored into the copy's cell for nbval to compare:
it belongs to the sizes, not to the committed notebook, which carries no outputs.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import yaml

from workbench.runs.parameters import RESERVED, notebook_parameters, papermill_inference_quiet, validate_parameters
from workbench.runs.spec import SpecError

CHECK_MARKER = "# NBVAL_CHECK_OUTPUT"  # nbval compares a cell's output only when this is a line of its own


def prepare_quick_notebooks(quick_file: Path, out_dir: Path) -> list[Path]:
    """Write every notebook beside `quick_file` into `out_dir`, parameterized with its quick values."""
    import papermill

    entries = yaml.safe_load(quick_file.read_text(encoding="utf-8")) or {}
    notebooks = sorted(quick_file.parent.glob("*.ipynb"))
    unknown = sorted(set(entries) - {n.name for n in notebooks})
    if unknown:
        raise SpecError(f"{quick_file}: no notebook named {', '.join(unknown)} beside it")
    bad = sorted(n for n, e in entries.items() if not isinstance(e, dict) or set(e) - {"parameters", "check_output"})
    if bad:
        raise SpecError(f"{quick_file}: each entry holds `parameters` and/or `check_output`; {', '.join(bad)} do not")
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    written = []
    for notebook in notebooks:
        entry = entries.get(notebook.name) or {}
        params = dict(entry.get("parameters") or {})
        validate_parameters(notebook, params)  # a stale quick.yaml fails here, naming the parameter
        if RESERVED in notebook_parameters(notebook):
            params[RESERVED] = str((out_dir / "runs" / notebook.stem).resolve())
        target = out_dir / notebook.name
        with papermill_inference_quiet():
            papermill.execute_notebook(str(notebook), str(target), parameters=params, prepare_only=True,
                                       log_output=False, progress_bar=False)
        _store_check_output(target, entry.get("check_output"), quick_file)
        written.append(target)
    return written


def _store_check_output(notebook: Path, text: str | None, quick_file: Path) -> None:
    """Give the copy's checked cell the output quick.yaml says it prints; a mismatch either way is an error."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    checked = [c for c in nb.cells if c.cell_type == "code" and CHECK_MARKER in c.source.splitlines()]
    if len(checked) != (1 if text is not None else 0):
        raise SpecError(f"{quick_file}: {notebook.name} has {len(checked)} `{CHECK_MARKER}` cell(s) but "
                        f"{'a' if text is not None else 'no'} check_output: give one per checked cell")
    if checked:
        checked[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
        checked[0].execution_count = 1  # nbval refuses a reference output from a cell that never ran
        nbformat.write(nb, notebook)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("quick_file", type=Path, nargs="?", default=Path("notebooks/quick.yaml"))
    parser.add_argument("out_dir", type=Path, nargs="?", default=Path("build/nbval"))
    args = parser.parse_args(argv)
    written = prepare_quick_notebooks(args.quick_file, args.out_dir)
    print(f"{len(written)} notebooks at quick sizes in {args.out_dir}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
