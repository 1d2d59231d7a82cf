"""Experiment specs: a YAML file that names a notebook and the parameters to run it with.

A spec is the unit `workbench run` executes. Everything in it is checked here,
before any folder is made or kernel started, so a typo costs a second, not a
kernel start-up. New sections (stages, sweeps, seeds) become new keys in
`SPEC_KEYS`, new fields on `Spec` and one `_read_*` function each.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from workbench.config import ConfigError

SPEC_KEYS = ("name", "description", "notebook", "parameters")
NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]+")
PROJECT_MARKERS = ("notebooks", "pyproject.toml")


class SpecError(ConfigError):
    """An experiment spec is malformed or points at something that does not exist."""


@dataclass(frozen=True)
class Spec:
    """A loaded, checked experiment spec; paths are absolute."""

    name: str
    description: str | None
    notebook: Path
    parameters: dict[str, Any]
    path: Path
    project_root: Path

    def with_parameters(self, overrides: dict[str, Any] | None) -> Spec:
        """This spec with `overrides` (e.g. from `workbench run -p`) laid over its parameters."""
        if not overrides:
            return self
        return dataclasses.replace(self, parameters={**self.parameters, **overrides})

    def to_yaml(self) -> str:
        """The spec as it ran (overrides included); `workbench run` on this text repeats the run."""
        record = {"name": self.name, "description": self.description,
                  "notebook": self.notebook.relative_to(self.project_root).as_posix(), "parameters": self.parameters}
        return yaml.safe_dump({k: v for k, v in record.items() if v is not None}, sort_keys=False)


def load_spec(path: str | Path) -> Spec:
    """Read and check the spec at `path`; raises SpecError naming the file and the problem."""
    path = Path(path).expanduser().resolve()
    raw = _read_yaml(path)
    unknown = [k for k in raw if k not in SPEC_KEYS]
    if unknown:
        raise SpecError(
            f"{path}: unknown key(s) {', '.join(map(repr, unknown))}; valid keys are: {', '.join(SPEC_KEYS)}"
        )
    root = find_project_root(path.parent)
    if root is None:
        raise SpecError(
            f"{path}: no project root found (no ancestor directory holds "
            f"{' or '.join(PROJECT_MARKERS)}); the spec's notebook path is relative to it"
        )
    return Spec(
        name=_read_name(raw, path),
        description=_read_description(raw, path),
        notebook=_read_notebook(raw, path, root),
        parameters=_read_parameters(raw, path),
        path=path,
        project_root=root,
    )


def find_project_root(start: Path) -> Path | None:
    """The nearest directory at or above `start` holding `notebooks/` or `pyproject.toml`."""
    start = Path(start).resolve()
    for directory in (start, *start.parents):
        if (directory / "notebooks").is_dir() or (directory / "pyproject.toml").is_file():
            return directory
    return None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"spec not found: {path}") from None
    except IsADirectoryError:
        raise SpecError(f"spec is a directory, not a YAML file: {path}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}" if mark is not None else str(path)
        problem = getattr(e, "problem", None) or str(e)
        raise SpecError(f"{where}: invalid YAML: {problem}") from None
    if raw is None:
        raise SpecError(f"{path}: the spec is empty; it needs at least `notebook: notebooks/<name>.ipynb`")
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a spec is a mapping of {', '.join(SPEC_KEYS)}; got {type(raw).__name__}")
    return raw


def _read_name(raw: dict, path: Path) -> str:
    name = raw.get("name", path.stem)
    origin = "name" if "name" in raw else f"name (from the file name {path.name!r})"
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or set(name) == {"."}:
        raise SpecError(
            f"{path}: {origin} {name!r} is not a valid run name; use letters, digits, '.', '_' and '-' "
            "only (it becomes part of a folder name)"
        )
    return name


def _read_description(raw: dict, path: Path) -> str | None:
    description = raw.get("description")
    if description is not None and not isinstance(description, str):
        raise SpecError(f"{path}: description must be text, got {description!r}")
    return description


def _read_notebook(raw: dict, path: Path, root: Path) -> Path:
    notebook = raw.get("notebook")
    if not notebook or not isinstance(notebook, str):
        raise SpecError(
            f"{path}: `notebook:` is required: the path of a notebook relative to the project root {root}"
        )
    resolved = (root / notebook).resolve()
    if not resolved.is_file():
        raise SpecError(f"{path}: notebook not found: {resolved} (`notebook: {notebook}` is relative to {root})")
    return resolved


def _read_parameters(raw: dict, path: Path) -> dict[str, Any]:
    parameters = raw.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise SpecError(f"{path}: parameters must be a mapping of name: value, got {type(parameters).__name__}")
    bad = [k for k in parameters if not isinstance(k, str) or not k.isidentifier()]
    if bad:
        raise SpecError(f"{path}: parameter names must be Python identifiers; got {', '.join(map(repr, bad))}")
    return dict(parameters)
