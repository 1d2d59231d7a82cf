"""One rank of a multi-process run that rank 0 started on this machine (distributed.local_ranks).

`python -m workbench.modules.rank_worker JOB.json`: the job names the recipe and its arguments.
The worker takes every training step rank 0 takes (data shard, forward, backward, gradient
all-reduce) and writes nothing: rank 0 keeps the records and the run folder.
"""

from __future__ import annotations

import json
import sys

import torch


def main(job_file: str) -> None:
    job = json.loads(open(job_file).read())
    torch.set_num_threads(int(job["threads"]))
    if job["recipe"] == "pretrain":
        from workbench.modules.pretrain_recipe import pretrain

        pretrain(job["settings"], printer=None, state_dir=job["state_dir"], decided_precision=job["decided_precision"])
    elif job["recipe"] == "finetune":
        from workbench.modules.finetune_recipe import finetune

        finetune(job["settings"], printer=None)
    else:
        raise SystemExit(f"unknown recipe {job['recipe']!r}; valid: pretrain, finetune")
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
