"""Views into models and runs: figures and widgets. Reads, never trains."""

from workbench.probe.curves import loss_curve_figure
from workbench.probe.generation import complete

__all__ = ["complete", "loss_curve_figure"]
