"""Run notebooks as experiments: specs, parameter checks, run folders and their one reader, the registry.

The only part of the workbench that calls papermill or writes run folders.
Importing this package is cheap (papermill and torch load when a run starts),
because every notebook imports `workbench.runs.outputs`.
"""

from workbench.runs.environment import environment_record, git_state
from workbench.runs.interactive import finish_run, open_run
from workbench.runs.model_card import write_model_card
from workbench.runs.outputs import (
    OutputError,
    output_folder,
    read_json,
    save_compute_record,
    save_data_record,
    save_details,
    save_history,
    save_metrics,
    write_json,
)
from workbench.runs.parameters import NotebookParameter, ParameterError, notebook_parameters, validate_parameters
from workbench.runs.registry import (
    RunRecord,
    filter_runs,
    format_runs_table,
    headline_metrics,
    list_runs,
    runs_table,
    varied_parameters,
)
from workbench.runs.run_folder import RunFolder, runs_in
from workbench.runs.runner import KernelNotFoundError, PipelineResult, RunResult, check_kernel, run_spec
from workbench.runs.spec import Spec, SpecError, find_project_root, load_spec

__all__ = [
    "KernelNotFoundError",
    "NotebookParameter",
    "OutputError",
    "PipelineResult",
    "ParameterError",
    "RunFolder",
    "RunRecord",
    "RunResult",
    "Spec",
    "SpecError",
    "check_kernel",
    "environment_record",
    "filter_runs",
    "find_project_root",
    "finish_run",
    "format_runs_table",
    "git_state",
    "headline_metrics",
    "list_runs",
    "load_spec",
    "notebook_parameters",
    "open_run",
    "output_folder",
    "read_json",
    "run_spec",
    "runs_in",
    "runs_table",
    "save_compute_record",
    "save_data_record",
    "save_details",
    "save_history",
    "save_metrics",
    "validate_parameters",
    "varied_parameters",
    "write_json",
    "write_model_card",
]
