"""Experiment specs: a YAML file that names a notebook and the parameters to run it with.

A spec is the unit `workbench run` executes. Everything in it is checked here,
before any folder is made or kernel started, so a typo costs a second, not a
kernel start-up. A spec is either one notebook (`notebook:` at the top) or a
pipeline (`stages:`); either can sweep parameters and repeat over seeds.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from workbench.config import ConfigError

SPEC_KEYS = ("name", "description", "notebook", "parameters", "sweep", "seeds", "stages")
STAGE_KEYS = ("name", "notebook", "parameters", "sweep", "seeds")
SWEEP_KEYS = ("grid", "list")
NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]+")
PROJECT_MARKERS = ("notebooks", "pyproject.toml")


class SpecError(ConfigError):
    """An experiment spec is malformed or points at something that does not exist."""


@dataclass(frozen=True)
class Stage:
    """One notebook of a spec, with its parameters and how to repeat it.

    `grid` is swept as a Cartesian product, `cases` (the spec's `sweep: list:`)
    one entry at a time, and `seeds` repeats every combination once per seed.
    """

    name: str
    notebook: Path
    parameters: dict[str, Any]
    grid: dict[str, list[Any]] = dataclasses.field(default_factory=dict)
    cases: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    seeds: list[int] | None = None

    @property
    def repeats(self) -> bool:
        return bool(self.grid or self.cases or self.seeds)


@dataclass(frozen=True)
class Spec:
    """A loaded, checked experiment spec; paths are absolute.

    A plain spec (`notebook:` at the top) is a pipeline of one stage named
    after the spec; `stages:` lists several, run in order.
    """

    name: str
    description: str | None
    stages: tuple[Stage, ...]
    path: Path
    project_root: Path
    pipeline: bool = False  # written with `stages:`

    @property
    def single_run(self) -> bool:
        return len(self.stages) == 1 and not self.stages[0].repeats

    @property
    def notebook(self) -> Path:
        return self._only_stage("notebook").notebook

    @property
    def parameters(self) -> dict[str, Any]:
        return self._only_stage("parameters").parameters

    def _only_stage(self, what: str) -> Stage:
        if len(self.stages) != 1:
            raise SpecError(f"{self.path}: `{what}` is per stage in a spec with {len(self.stages)} stages")
        return self.stages[0]

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise SpecError(f"{self.path}: no stage {name!r}; stages are: {', '.join(s.name for s in self.stages)}")

    def with_parameters(self, overrides: dict[str, Any] | None) -> Spec:
        """This spec with `overrides` (e.g. from `workbench run -p`) laid over its parameters.

        In a pipeline, `stage.name=value` targets one stage; a plain name goes to every stage.
        """
        if not overrides:
            return self
        stages = []
        for stage in self.stages:
            mine = {k.split(".", 1)[1]: v for k, v in overrides.items() if k.startswith(f"{stage.name}.")}
            common = {k: v for k, v in overrides.items() if "." not in k}
            stages.append(dataclasses.replace(stage, parameters={**stage.parameters, **common, **mine}))
        unknown = [k.split(".", 1)[0] for k in overrides if "." in k]
        missing = sorted(set(unknown) - {s.name for s in self.stages})
        if missing:
            raise SpecError(f"override for unknown stage(s) {', '.join(missing)}; stages are: "
                            f"{', '.join(s.name for s in self.stages)}")
        return dataclasses.replace(self, stages=tuple(stages))

    def shown(self, notebook: Path, absolute: bool = False) -> str:
        """A notebook path as a spec writes it: relative to the project, or absolute when asked or
        when it lies outside the project (a symlinked notebooks/ folder resolves elsewhere)."""
        try:
            return str(notebook) if absolute else notebook.relative_to(self.project_root).as_posix()
        except ValueError:
            return str(notebook)

    def to_yaml(self, absolute: bool = False) -> str:
        """The spec as it ran (overrides included); `workbench run` on this text repeats the run.

        `absolute` writes notebook paths in full, for a copy stored outside the project (--runs-dir).
        """
        def stage_record(stage: Stage) -> dict[str, Any]:
            sweep = {k: v for k, v in (("grid", stage.grid), ("list", stage.cases)) if v}
            record = {"notebook": self.shown(stage.notebook, absolute),
                      "parameters": stage.parameters, "sweep": sweep or None, "seeds": stage.seeds}
            return {k: v for k, v in record.items() if v is not None}

        record: dict[str, Any] = {"name": self.name}
        if self.description:
            record["description"] = self.description
        if self.pipeline:
            record["stages"] = [{"name": s.name, **stage_record(s)} for s in self.stages]
        else:
            record.update(stage_record(self.stages[0]))
        return yaml.safe_dump(record, sort_keys=False)


def load_spec(path: str | Path, project_root: Path | None = None) -> Spec:
    """Read and check the spec at `path`; raises SpecError naming the file and the problem.

    Notebook paths are relative to `project_root`, by default the nearest
    marked ancestor of the spec (a spec stored in a run folder outside the
    project, under --runs-dir, needs it given).
    """
    path = Path(path).expanduser().resolve()
    raw = _read_yaml(path)
    _check_keys(raw, SPEC_KEYS, str(path))
    root = Path(project_root).resolve() if project_root else find_project_root(path.parent)
    if root is None and _absolute_notebook(raw):  # a spec stored in a run folder outside the project
        root = find_project_root(_absolute_notebook(raw).parent)
    if root is None:
        raise SpecError(
            f"{path}: no project root found (no ancestor directory holds "
            f"{' or '.join(PROJECT_MARKERS)}); the spec's notebook path is relative to it"
        )
    name = _read_name(raw, path)
    default_seeds = _read_seeds(raw, str(path))
    if "stages" in raw:
        clash = [k for k in ("notebook", "parameters", "sweep") if k in raw]
        if clash:
            raise SpecError(f"{path}: with `stages:`, put {', '.join(clash)} inside each stage, not at the top")
        stages = _read_stages(raw["stages"], path, root, default_seeds)
    else:
        stages = (_read_stage({**raw, "name": name}, path, root, default_seeds, where=str(path)),)
    return Spec(
        name=name,
        description=_read_description(raw, path),
        stages=stages,
        path=path,
        project_root=root,
        pipeline="stages" in raw,
    )


def _absolute_notebook(raw: dict) -> Path | None:
    stages = raw.get("stages")
    first = stages[0] if isinstance(stages, list) and stages and isinstance(stages[0], dict) else raw
    notebook = first.get("notebook")
    return Path(notebook) if isinstance(notebook, str) and Path(notebook).is_absolute() else None


def _read_stages(raw_stages: Any, path: Path, root: Path, default_seeds: list[int] | None) -> tuple[Stage, ...]:
    if not isinstance(raw_stages, list) or not raw_stages:
        raise SpecError(f"{path}: `stages:` must be a non-empty list of stages (each with name and notebook)")
    stages, seen = [], set()
    for i, raw in enumerate(raw_stages):
        where = f"{path}: stage {i + 1}"
        if not isinstance(raw, dict):
            raise SpecError(f"{where}: a stage is a mapping of {', '.join(STAGE_KEYS)}")
        _check_keys(raw, STAGE_KEYS, where)
        if "name" not in raw:
            raise SpecError(f"{where}: every stage needs a `name:` (later stages refer to it as ${{name}})")
        stage = _read_stage(raw, path, root, default_seeds, where=f"{path}: stage {raw['name']!r}")
        if stage.name in seen:
            raise SpecError(f"{where}: two stages are named {stage.name!r}")
        seen.add(stage.name)
        stages.append(stage)
    return tuple(stages)


def _read_stage(raw: dict, path: Path, root: Path, default_seeds: list[int] | None, where: str) -> Stage:
    name = raw["name"]
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or set(name) == {"."}:
        raise SpecError(f"{where}: stage name {name!r} may use only letters, digits, '.', '_' and '-'")
    grid, cases = _read_sweep(raw, where)
    seeds = _read_seeds(raw, where) if "seeds" in raw else default_seeds
    return Stage(
        name=name,
        notebook=_read_notebook(raw, path, root),
        parameters=_read_parameters(raw, path),
        grid=grid,
        cases=cases,
        seeds=seeds,
    )


def _read_sweep(raw: dict, where: str) -> tuple[dict[str, list[Any]], list[dict[str, Any]]]:
    sweep = raw.get("sweep")
    if sweep is None:
        return {}, []
    if not isinstance(sweep, dict):
        raise SpecError(f"{where}: `sweep:` is a mapping with `grid:` (name: [values]) and/or `list:` ([{{...}}])")
    _check_keys(sweep, SWEEP_KEYS, f"{where}: sweep")
    grid = sweep.get("grid") or {}
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise SpecError(f"{where}: `sweep: grid:` maps each parameter to a non-empty list of values")
    cases = sweep.get("list") or []
    if not isinstance(cases, list) or not all(isinstance(c, dict) and c for c in cases):
        raise SpecError(f"{where}: `sweep: list:` is a list of parameter mappings, one per run")
    overlap = sorted(set(grid) & {k for c in cases for k in c})
    if overlap:
        raise SpecError(f"{where}: {', '.join(overlap)} is swept by both grid and list; choose one")
    return {k: list(v) for k, v in grid.items()}, [dict(c) for c in cases]


def _read_seeds(raw: dict, where: str) -> list[int] | None:
    seeds = raw.get("seeds")
    if seeds is None:
        return None
    if isinstance(seeds, int) and not isinstance(seeds, bool) and seeds >= 1:
        return list(range(seeds))
    if isinstance(seeds, list) and seeds and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        if len(set(seeds)) != len(seeds):
            raise SpecError(f"{where}: `seeds:` repeats a seed: {seeds}")
        return list(seeds)
    raise SpecError(f"{where}: `seeds:` is a count (3 = seeds 0, 1, 2) or a list of distinct ints, got {seeds!r}")


def _check_keys(raw: dict, valid: tuple[str, ...], where: str) -> None:
    unknown = [k for k in raw if k not in valid]
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; valid keys are: {', '.join(valid)}")


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
