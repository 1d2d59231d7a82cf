"""The three settings that spread a run over processes, written once for every recipe that has them.

Each is a function returning a fresh `setting(...)`, so pretraining and fine-tuning declare the
same name, type, default and help without sharing one dataclass field between two classes.
"""

from __future__ import annotations

import os

from workbench.modules.choices import DISTRIBUTED_STRATEGIES
from workbench.settings import setting


def devices_setting():
    return setting(1, "processes per node (GPUs, or CPU processes on a CPU machine); batch_size is per device, "
                   "and the global batch is batch_size x devices x num_nodes (x accumulate_grad_batches, in "
                   "pretraining)",
                   minimum=1, section="scale (the global batch, not the per-device one, shapes training)")


def num_nodes_setting():
    return setting(1, "machines; under torchrun or SLURM, which start the processes (see the README)", minimum=1)


def distributed_strategy_setting():
    return setting("auto", "auto | ddp | fsdp: Lightning's strategy across processes; auto = ddp when there are "
                   "several (gloo on CPU), nothing when one; fsdp shards weights and optimizer state (CUDA only)",
                   choices=DISTRIBUTED_STRATEGIES)


def launched_rank() -> int:
    """This process's global rank as torchrun or SLURM set it (0 when no launcher did).

    Here, beside the settings, because `workbench run` reads it without loading torch.
    """
    for variable in ("RANK", "SLURM_PROCID"):
        if variable in os.environ:
            return int(os.environ[variable])
    return 0
