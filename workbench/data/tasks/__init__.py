"""Fine-tuning tasks: labelled texts in grouped train/validation/test splits.

Three built-in tasks take exact labels from Python's own parsers on the
standard library (docstring-topic, token-type, function-size); "file" and "hf"
bring the researcher's own data. See `load_task`.
"""

from workbench.lazy import exports_of, lazy_exports

_EXPORTS = exports_of({
    "workbench.data.tasks.base": ["TaskData", "TaskError", "TaskUnavailableError"],
    "workbench.data.tasks.load": ["TASKS", "check_task_options", "load_task"],
    "workbench.heads.for_task": ["TASK_KINDS"],
})
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
