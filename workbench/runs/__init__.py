"""Run notebooks as experiments: specs, parameter checks, run folders, the run registry.

The only part of the workbench that calls papermill or writes run folders.
Importing this package is cheap (papermill and torch load when a run starts),
because every notebook imports `workbench.runs.outputs`.
"""

from workbench.runs.environment import environment_record, git_state
from workbench.runs.outputs import (
    OutputError,
    output_folder,
    read_json,
    save_compute_record,
    save_data_record,
    save_history,
    save_metrics,
    write_json,
)
from workbench.runs.parameters import NotebookParameter, ParameterError, notebook_parameters, validate_parameters
from workbench.runs.registry import RunRecord, format_runs_table, headline_metrics, list_runs
from workbench.runs.runner import KernelNotFoundError, RunResult, check_kernel, run_spec
from workbench.runs.spec import Spec, SpecError, find_project_root, load_spec

__all__ = [
    "KernelNotFoundError",
    "NotebookParameter",
    "OutputError",
    "ParameterError",
    "RunRecord",
    "RunResult",
    "Spec",
    "SpecError",
    "check_kernel",
    "environment_record",
    "find_project_root",
    "format_runs_table",
    "git_state",
    "headline_metrics",
    "list_runs",
    "load_spec",
    "notebook_parameters",
    "output_folder",
    "read_json",
    "run_spec",
    "save_compute_record",
    "save_data_record",
    "save_history",
    "save_metrics",
    "validate_parameters",
    "write_json",
]
