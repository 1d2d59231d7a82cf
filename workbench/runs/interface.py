"""A notebook's interface: the settings dataclass its `parameters` cell is rendered from.

A notebook names its interface in its metadata, `{"workbench": {"interface": "module:Class"}}`.
From that class the runner checks every value of every run before a kernel starts, and
`workbench sync-notebooks` rewrites the parameters cell so it declares exactly the class's fields
with their defaults (a test fails when a cell and its class disagree). Notebooks without the key
are checked against their cell alone (names and literal types).
"""

from __future__ import annotations

import glob
import importlib
import json
import os
from functools import lru_cache
from pathlib import Path

from workbench.runs.parameters import PARAMETERS_TAG, ParameterError
from workbench.settings import parameters_cell

METADATA_KEY = "workbench"


def notebook_interface(notebook_path: str | Path) -> type | None:
    """The settings class named in the notebook's metadata, or None when it names none."""
    path = Path(notebook_path).resolve()
    return _interface(str(path), path.stat().st_mtime_ns if path.is_file() else 0)


@lru_cache(maxsize=32)
def _interface(path: str, _mtime: int) -> type | None:
    try:  # plain JSON, not nbformat: a spec check should not pay a second of jsonschema
        metadata = json.loads(Path(path).read_text(encoding="utf-8")).get("metadata", {})
    except (OSError, ValueError, AttributeError):
        return None  # parameters.py reports an unreadable notebook with the file's name
    name = metadata.get(METADATA_KEY, {}).get("interface")
    return import_interface(name, where=path) if name else None


def import_interface(name: str, *, where: str | Path = "") -> type:
    module_name, _, class_name = name.partition(":")
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as error:
        raise ParameterError(f"{where}: its metadata names interface {name!r}, which cannot be imported ({error})"
                             ) from None


def missing_paths(settings: object, project_root: Path, planned: tuple[Path, ...] = ()) -> list[str]:
    """Problems with the paths `settings.required_paths()` names: each must exist now (relative paths
    are read from the project root, where runs execute), unless a run of this plan will write it."""
    problems = []
    for name, patterns in settings.required_paths().items():
        for pattern in patterns:
            full = Path(os.path.expanduser(pattern))
            full = full if full.is_absolute() else project_root / full
            if any(full == folder or folder in full.parents for folder in planned):
                continue
            if not glob.glob(str(full), recursive=True):
                problems.append(f"{name}={pattern!r}: nothing there (relative paths are read from {project_root})")
    return problems


def parameters_doc(notebooks: list[Path]) -> str:
    """docs/parameters.md: every interface notebook's parameters as a table, rendered from its class."""
    from workbench.settings import markdown_table

    parts = ["# Notebook parameters", "",
             "Rendered from the settings dataclasses by `workbench sync-notebooks`; do not edit by hand. A spec's",
             "`parameters:` (and `workbench run -p`) take the same names; `output_dir` is set by the runner.", ""]
    for notebook in sorted(notebooks):
        interface = notebook_interface(notebook)
        if interface is not None:
            parts += [f"## `notebooks/{Path(notebook).name}` ({interface.__module__}.{interface.__name__})", "",
                      markdown_table(interface), ""]
    return "\n".join(parts)


def sync_parameters_cell(notebook_path: str | Path, *, write: bool = True) -> bool:
    """Render the notebook's parameters cell from its interface; True when it differed (and was rewritten)."""
    import nbformat

    interface = notebook_interface(notebook_path)
    if interface is None:
        return False
    nb = nbformat.read(notebook_path, as_version=4)
    cell = next(c for c in nb.cells if PARAMETERS_TAG in c.get("metadata", {}).get("tags", []))
    wanted = parameters_cell(interface)
    if cell.source == wanted:
        return False
    if write:
        cell.source = wanted
        nbformat.write(nb, notebook_path)
    return True
