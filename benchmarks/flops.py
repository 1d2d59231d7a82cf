"""Model FLOPs per training token, the yardstick for utilisation (MFU).

    flops_per_token = 6 * N + 12 * L * H * Q * T

N is the parameter count (tied embeddings once), L layers, H heads, Q head size,
T the sequence length. 6N is the forward (2N) and backward (4N) matmuls; the
second term is attention's QK^T and AV products, which have no parameters
(PaLM, appendix B; nanoGPT's `estimate_mfu`). It counts the causal mask's
zeroed half too, as both sources do, and ignores norms, activations and the
optimiser. MFU = flops_per_token * tokens_per_second / measured matmul peak.
"""

from __future__ import annotations


def flops_per_token(n_params: int, n_layer: int, n_head: int, head_dim: int, seq_len: int) -> float:
    return 6.0 * n_params + 12.0 * n_layer * n_head * head_dim * seq_len


def decoder_flops_per_token(model, seq_len: int) -> float:
    """For a `workbench.models.Decoder` (its config names the shape)."""
    c = model.config
    return flops_per_token(model.num_parameters(), c.n_layer, c.n_head, c.head_dim, seq_len)
