"""Training plumbing both recipes share: precision choices, the Lightning Trainer, quiet banners."""

from __future__ import annotations

import logging
import warnings

PRECISIONS = ("32-true", "bf16-mixed")


def quiet_lightning() -> None:
    """Keep Lightning's banners (accelerator lines, tips) out of notebook outputs; warnings still show."""
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    # The datamodule restores the data stream's position itself (its state_dict), so mid-epoch resume is exact.
    warnings.filterwarnings("ignore", message=r"You're resuming from a checkpoint that ended before the epoch ended")
