"""Copies of the notebooks at quick sizes, for nbval: `python -m workbench.runs.quick_notebooks`.

A notebook's defaults are a real run; `make test` validates each notebook at the sizes listed in
`notebooks/quick.yaml` instead. papermill's --prepare-only writes each copy with those values
injected after its parameters cell (the executed notebook of a `workbench run -p` has the same
shape), and every notebook that writes artifacts gets an `output_dir` inside the copies' folder,
so validating never adds runs to experiments/runs.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import yaml

from workbench.runs.parameters import RESERVED, notebook_parameters, papermill_inference_quiet, validate_parameters
from workbench.runs.spec import SpecError


def prepare_quick_notebooks(quick_file: Path, out_dir: Path) -> list[Path]:
    """Write every notebook beside `quick_file` into `out_dir`, parameterized with its quick values."""
    import papermill

    sizes = yaml.safe_load(quick_file.read_text(encoding="utf-8")) or {}
    notebooks = sorted(quick_file.parent.glob("*.ipynb"))
    unknown = sorted(set(sizes) - {n.name for n in notebooks})
    if unknown:
        raise SpecError(f"{quick_file}: no notebook named {', '.join(unknown)} beside it")
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    written = []
    for notebook in notebooks:
        params = dict(sizes.get(notebook.name) or {})
        validate_parameters(notebook, params)  # a stale quick.yaml fails here, naming the parameter
        if RESERVED in notebook_parameters(notebook):
            params[RESERVED] = str((out_dir / "runs" / notebook.stem).resolve())
        target = out_dir / notebook.name
        with papermill_inference_quiet():
            papermill.execute_notebook(str(notebook), str(target), parameters=params, prepare_only=True,
                                       log_output=False, progress_bar=False)
        written.append(target)
    return written


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
