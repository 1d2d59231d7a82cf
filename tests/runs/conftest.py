"""A throwaway project (notebooks/ + experiments/) built in tmp_path, with tiny notebooks.

Helpers reach tests as fixtures only: `from conftest import ...` breaks as soon
as a second conftest.py joins the tree.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

OK_PARAMETERS = 'output_dir = "."\nalpha = 1\nrate = 0.5\nname = "x"\nflag = False\nseed = 0'
OK_BODY = """\
import random
from workbench.runs.outputs import save_data_record, save_metrics

random.seed(seed)
save_data_record(output_dir, {"dataset": "synthetic", "name": name})
save_metrics(output_dir, {
    "val_loss": alpha * rate + random.random(),
    "train_loss": alpha * rate,
    "steps": alpha,
    "flag": flag,
    "name": name,
})
print(f"trained alpha={alpha}")
"""


def write_notebook(path: Path, parameters: str | None, *body: str) -> Path:
    """A Python notebook for the `workbench` kernel; `parameters` becomes the tagged cell (None: no tag)."""
    cells = []
    if parameters is not None:
        cell = nbformat.v4.new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        cells.append(cell)
    cells += [nbformat.v4.new_code_cell(source) for source in body]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "workbench", "display_name": "Python (workbench)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def write_spec(root: Path, filename: str, text: str) -> Path:
    path = root / "experiments" / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def build_project(root: Path) -> Path:
    """notebooks/{ok,fails,untagged}.ipynb and a spec for each of the first two."""
    write_notebook(root / "notebooks" / "ok.ipynb", OK_PARAMETERS, OK_BODY)
    write_notebook(
        root / "notebooks" / "fails.ipynb",
        'output_dir = "."\nseed = 0',
        'raise ValueError("boom from the notebook")',
        'print("never reached")',
    )
    write_notebook(root / "notebooks" / "untagged.ipynb", None, "x = 1")
    ok_spec = "description: tiny\nnotebook: notebooks/ok.ipynb\nparameters:\n  alpha: 2\n  seed: 3\n"
    write_spec(root, "ok.yaml", ok_spec)
    write_spec(root, "fails.yaml", "notebook: notebooks/fails.ipynb\n")
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return build_project(tmp_path / "project")


@pytest.fixture(scope="module")
def module_project(tmp_path_factory) -> Path:
    """One project per test module, so several tests can inspect the same (slow) runs."""
    return build_project(tmp_path_factory.mktemp("project"))


@pytest.fixture
def make_spec(project: Path):
    """make_spec(filename, text) -> path of a spec under the project's experiments/."""
    return lambda filename, text: write_spec(project, filename, text)


@pytest.fixture
def make_notebook(project: Path):
    """make_notebook(name, parameters_source, *body_sources) -> path under the project's notebooks/."""
    return lambda name, parameters, *body: write_notebook(project / "notebooks" / name, parameters, *body)


@pytest.fixture
def no_kernel(monkeypatch):
    """Fail the test if anything tries to execute a notebook."""
    import papermill

    def refuse(*args, **kwargs):
        raise AssertionError("papermill.execute_notebook was called; validation should have failed first")

    monkeypatch.setattr(papermill, "execute_notebook", refuse)
