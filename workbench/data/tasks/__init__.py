"""Fine-tuning tasks: labelled texts in grouped train/validation/test splits.

Three built-in tasks take exact labels from Python's own parsers on the
standard library (docstring-topic, token-type, function-size); "file" and "hf"
bring the researcher's own data. See `load_task`.
"""

from workbench.data.tasks.base import TaskData, TaskError, TaskUnavailableError
from workbench.data.tasks.load import TASKS, check_task_options, load_task
from workbench.heads.for_task import TASK_KINDS  # one table: task kind -> default head, kept with the heads

__all__ = ["TASKS", "TASK_KINDS", "TaskData", "TaskError", "TaskUnavailableError", "check_task_options", "load_task"]
