"""Views into models and runs: figures and widgets. Reads, never trains."""

from workbench.probe.attention import AttentionWidget, attention_maps
from workbench.probe.curves import loss_curve_figure
from workbench.probe.embeddings import EmbeddingWidget, pca_projection, pooled_hidden_states
from workbench.probe.fill_in import FilledIn, fill_in
from workbench.probe.generation import complete
from workbench.probe.head_views import (
    ConfusionExplorer,
    ExampleBrowser,
    TokenHeadBrowser,
    examples_in_cell,
    outcome_rows,
    token_predictions,
)
from workbench.probe.lens import LogitLensWidget, logit_lens, next_token_distribution
from workbench.probe.live import LiveCurves
from workbench.probe.picker import RunPicker, run_histories
from workbench.probe.playground import GenerationPlayground, sample_with_probabilities, token_probabilities

__all__ = [
    "AttentionWidget", "ConfusionExplorer", "EmbeddingWidget", "ExampleBrowser", "FilledIn", "GenerationPlayground",
    "LiveCurves", "LogitLensWidget", "RunPicker", "TokenHeadBrowser", "attention_maps", "complete", "examples_in_cell",
    "fill_in",
    "logit_lens", "loss_curve_figure", "next_token_distribution", "outcome_rows", "pca_projection",
    "pooled_hidden_states", "run_histories", "sample_with_probabilities", "token_predictions", "token_probabilities",
]
