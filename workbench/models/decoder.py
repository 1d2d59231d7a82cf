"""A Llama-style decoder-only transformer in one readable file.

RMSNorm before each sublayer, rotary position embeddings on queries and keys,
causal attention through `scaled_dot_product_attention` (flash kernels where
the device has them), a SwiGLU MLP, and optionally tied input/output
embeddings. The base maps token ids to hidden states; the LM head on top is a
separate step so fine-tuning heads and the logit lens can reuse the trunk.

Generation keeps a key/value cache (`KVCache`): each new token then costs one
position's work instead of re-running the whole context.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from workbench.errors import RequestError
from workbench.models.config import DecoderConfig
from workbench.models.parameters import unique_parameter_count


@dataclass
class DecoderOutput:
    """What a forward pass returns; the optional parts feed the probes."""

    logits: torch.Tensor | None  # (B, T, vocab)
    last_hidden: torch.Tensor  # (B, T, d_model), after the final norm
    hidden_states: tuple[torch.Tensor, ...] | None = None  # embeddings + each block's output
    attentions: tuple[torch.Tensor, ...] | None = None  # per layer, (B, n_head, T, cached + T)
    past: Any = None  # the key/value cache after this pass (use_cache=True): feed it back with the next tokens


@dataclass(frozen=True)
class KVCache:
    """The keys and values of every layer for the positions seen so far: what `past` holds.

    Keys are kept after their rotary rotation (a key's position never changes) and
    before grouped-query attention repeats them (n_kv_head heads: the cache is
    n_head / n_kv_head times smaller). A pass never changes the cache it is given; it
    returns a longer one, so one prefix can be continued in two different ways.
    """

    layers: tuple[tuple[torch.Tensor, torch.Tensor], ...]  # per layer (keys, values), (B, n_kv_head, length, head_dim)

    @property
    def length(self) -> int:
        """Positions cached: the rotary position of the next token."""
        return self.layers[0][0].shape[2]


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalise in fp32 so bf16 training keeps a stable scale. Not F.rms_norm: on CPU its fused kernel
        # is forward-only, and under autograd it measured no faster than these five ops (torch 2.13).
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return (normed * self.weight.float()).type_as(x)


def rotary_tables(head_dim: int, length: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of position * frequency, shape (length, head_dim), halves repeated."""
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = torch.outer(torch.arange(length, dtype=torch.float32), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def sign_folded_sin(sin: torch.Tensor) -> torch.Tensor:
    """The sin table with rotate-half's sign folded in (its first half negated), the form `apply_rotary` takes.

    Rotate-half is (-x2, x1); folding its sign into the table turns it into a plain
    swap of halves. Negation is exact, so the result is bitwise the same, with one
    elementwise op (and its backward) fewer per call, eight calls a step in nano.
    """
    half = sin.shape[-1] // 2
    return torch.cat([-sin[..., :half], sin[..., half:]], dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, folded_sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (i, i + d/2) of x's last dimension by position-dependent angles (`sign_folded_sin` table).

    cos and folded_sin broadcast against x: (T, d) for x of shape (B, H, T, d), (T, 1, d) for (B, T, H, d).
    """
    first, second = x.chunk(2, dim=-1)  # split, not slices: its backward is one cat, not a zero-fill per slice
    swapped = torch.cat([second, first], dim=-1)
    cos, folded_sin = cos.to(x.dtype), folded_sin.to(x.dtype)  # bf16 q, k: rotate in bf16, as Hugging Face's Llama
    return x * cos + swapped * folded_sin


FUSE_MIN_ROWS = 32  # tokens in a batch from which fused_linear concatenates the weights


def fused_linear(x: torch.Tensor, *projections: nn.Module) -> torch.Tensor:
    """The outputs of several bias-free projections of x side by side, from one matmul when they are plain Linears.

    At small widths a step is many small matmuls, and each launch costs about as much as its work:
    q, k and v (and gate and up) as one matmul over their concatenated weights cut a block's seven
    to four. The weights stay separate parameters (q_proj, k_proj, ...), so checkpoints, the Hugging
    Face mapping and LoRA see the same names; a projection LoRA has wrapped is called as itself.
    The concatenation copies the weights on every call, so it is done only when x holds at least
    FUSE_MIN_ROWS rows: then the copy is a small share of the matmul, where in one-token decoding
    with the KV cache it would move as many bytes as the matmul itself.
    """
    if x[..., 0].numel() >= FUSE_MIN_ROWS and all(type(p) is nn.Linear for p in projections):
        return F.linear(x, torch.cat([p.weight for p in projections]))
    return torch.cat([p(x) for p in projections], dim=-1)


BF16_ATTENTION_MIN_HEAD_DIM = 64  # on CPU, narrower heads attend in fp32 under bf16 autocast


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    """`F.scaled_dot_product_attention`, in fp32 where the CPU's bf16 kernel is the slower one.

    torch 2.13's CPU flash attention, forward + backward on Zen 5 (AVX512_BF16), bf16 / fp32 time:
    3.5x at head_dim 32 and 64 positions (nanoGPT's recipe: there it cost a bf16 step 40%), 1.2x at
    head_dim 32 and 256 positions, but 0.95x to 0.66x at head_dim 64 from 256 to 1024 positions.
    So under CPU autocast heads narrower than BF16_ATTENTION_MIN_HEAD_DIM attend in fp32, and the
    output goes back to bf16 for the projection after it.
    """
    if q.dtype == torch.bfloat16 and q.device.type == "cpu" and q.shape[-1] < BF16_ATTENTION_MIN_HEAD_DIM:
        with torch.autocast("cpu", enabled=False):
            return F.scaled_dot_product_attention(q.float(), k.float(), v.float(), **kwargs).to(q.dtype)
    return F.scaled_dot_product_attention(q, k, v, **kwargs)


class SelfAttention(nn.Module):
    """Multi-head attention over rotary positions: causal in the decoder, bidirectional in encoders.

    `config` is any config with the decoder's attention fields (d_model, n_head, kv_heads, head_dim,
    dropout): the masked-LM encoder and the ViT build their blocks from this one class.
    """

    def __init__(self, config: DecoderConfig, *, causal: bool = True) -> None:
        super().__init__()
        self.causal = causal
        self.n_head, self.n_kv_head, self.head_dim = config.n_head, config.kv_heads, config.head_dim
        self.q_proj = nn.Linear(config.d_model, config.n_head * config.head_dim, bias=False)
        self.k_proj = nn.Linear(config.d_model, config.kv_heads * config.head_dim, bias=False)
        self.v_proj = nn.Linear(config.d_model, config.kv_heads * config.head_dim, bias=False)
        self.o_proj = nn.Linear(config.n_head * config.head_dim, config.d_model, bias=False)
        self.dropout = config.dropout

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        folded_sin: torch.Tensor,
        output_attentions: bool = False,
        past_kv: tuple[torch.Tensor, torch.Tensor] | None = None,
        use_cache: bool = False,
        key_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, tuple[torch.Tensor, torch.Tensor] | None]:
        """Attention of x's T positions (after `past_kv`'s, if given) -> (output, weights, this layer's cache).

        `cos` None: no rotary (the ViT adds learned positions to its patches instead). `key_mask`
        (B, S), True at real tokens: padding is never attended to, which bidirectional attention needs.
        """
        B, T, _ = x.shape
        H, Hkv = self.n_head, self.n_kv_head
        qkv = fused_linear(x, self.q_proj, self.k_proj, self.v_proj).view(B, T, H + 2 * Hkv, self.head_dim)
        # Queries and keys rotate together: one rotary pass over both, on the (B, T, heads, d) layout.
        qk, v = qkv.split([H + Hkv, Hkv], dim=2)
        if cos is not None:
            qk = apply_rotary(qk, cos.unsqueeze(1), folded_sin.unsqueeze(1))
        q, k = qk.split([H, Hkv], dim=2)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        if past_kv is not None:
            k, v = torch.cat([past_kv[0], k], dim=2), torch.cat([past_kv[1], v], dim=2)
        kv = (k, v) if use_cache else None  # un-repeated: GQA's cache stays n_kv_head wide
        if self.n_kv_head != self.n_head:
            repeat = self.n_head // self.n_kv_head
            k, v = k.repeat_interleave(repeat, dim=1), v.repeat_interleave(repeat, dim=1)

        # The T queries are the last T of S positions: query i sees keys up to S - T + i.
        S = k.shape[2]
        if output_attentions:
            # The fused kernel never materialises the weights, so probes take the explicit path.
            weights = self._weights(q, k, self._mask(T, S, key_mask, x.device))
            return self._project(weights @ v), weights, kv
        dropout = self.dropout if self.training else 0.0
        if self.causal and key_mask is None and S == T:  # no cache, no padding: the training path
            y = attention(q, k, v, is_causal=True, dropout_p=dropout)
        elif self.causal and key_mask is None and T == 1:  # one new token sees everything cached
            y = attention(q, k, v, dropout_p=dropout)
        else:  # is_causal aligns its mask top-left, so a chunk after a cache needs the offset mask
            y = attention(q, k, v, attn_mask=self._mask(T, S, key_mask, x.device), dropout_p=dropout)
        return self._project(y), None, kv

    def _project(self, y: torch.Tensor) -> torch.Tensor:
        """(B, H, T, d) per-head outputs -> (B, T, d_model)."""
        B, _, T, _ = y.shape
        return self.o_proj(y.transpose(1, 2).reshape(B, T, self.n_head * self.head_dim))

    def _mask(self, T: int, S: int, key_mask: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
        """Which keys each query may see, (T, S) or (B, 1, T, S); None: all of them."""
        mask = torch.ones(T, S, dtype=torch.bool, device=device).tril(diagonal=S - T) if self.causal else None
        if key_mask is not None:
            keys = key_mask.bool()[:, None, None, :]
            mask = keys if mask is None else mask & keys
        return mask

    def _weights(self, q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)
        return (scores if mask is None else scores.masked_fill(~mask, float("-inf"))).softmax(dim=-1)


class SwiGLU(nn.Module):
    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(config.d_model, config.hidden_dim, bias=False)
        self.up_proj = nn.Linear(config.d_model, config.hidden_dim, bias=False)
        self.down_proj = nn.Linear(config.hidden_dim, config.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = fused_linear(x, self.gate_proj, self.up_proj).chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * up)


class Block(nn.Module):
    """Pre-norm attention and SwiGLU MLP, each a residual branch; `causal=False` for encoders."""

    def __init__(self, config: DecoderConfig, *, causal: bool = True) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(config.d_model, config.norm_eps)
        self.attn = SelfAttention(config, causal=causal)
        self.mlp_norm = RMSNorm(config.d_model, config.norm_eps)
        self.mlp = SwiGLU(config)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        folded_sin: torch.Tensor,
        output_attentions: bool = False,
        past_kv: tuple[torch.Tensor, torch.Tensor] | None = None,
        use_cache: bool = False,
        key_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, tuple[torch.Tensor, torch.Tensor] | None]:
        attended, weights, kv = self.attn(self.attn_norm(x), cos, folded_sin, output_attentions, past_kv, use_cache,
                                          key_mask)
        x = x + self.resid_dropout(attended)
        x = x + self.resid_dropout(self.mlp(self.mlp_norm(x)))
        return x, weights, kv


class Decoder(nn.Module):
    """Token ids -> hidden states -> next-token logits."""

    # `generate` may prefill once and then feed one token at a time with `past` (forward's use_cache/past).
    supports_kv_cache = True
    causal = True  # the masked-LM Encoder (encoder.py) is this model with causal = False

    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config, causal=self.causal) for _ in range(config.n_layer))
        self.norm = RMSNorm(config.d_model, config.norm_eps)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.embed.weight
        cos, sin = rotary_tables(config.head_dim, config.block_size, config.rope_base)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_folded_sin", sign_folded_sin(sin), persistent=False)  # see sign_folded_sin
        # Recompute each block in the backward pass instead of keeping its activations (training only).
        self.activation_checkpointing = False
        self.apply(self._init_weights)
        # GPT-2's scaled init: each residual branch adds variance, so shrink its output projection.
        for name, param in self.named_parameters():
            if name.endswith(("o_proj.weight", "down_proj.weight")):
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @classmethod
    def from_state(cls, config: DecoderConfig, state: dict[str, torch.Tensor]) -> "Decoder":
        """A Decoder holding `state`'s tensors (in eval mode), built without the random init a load overwrites.

        Drawing the initial weights is most of what loading a large model costs (gpt2-small: ~1.7 of
        1.9 s), so the modules are made on the meta device and take the saved tensors as they are.
        A tied LM head may be stored under the embedding's name alone. Missing or unexpected tensors
        are a RequestError naming them.
        """
        with torch.device("meta"):
            model = cls(config)
        missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
        if config.tie_embeddings:
            if "embed.weight" not in state and "lm_head.weight" in state:
                model.embed.weight = model.lm_head.weight
            model.lm_head.weight = model.embed.weight
            missing = [name for name in missing if name not in ("lm_head.weight", "embed.weight")]
        if missing or unexpected:
            raise RequestError(f"the tensors do not fit the Decoder: missing {missing}, unexpected {unexpected}")
        cos, sin = rotary_tables(config.head_dim, config.block_size, config.rope_base)
        model.rope_cos, model.rope_folded_sin = cos, sign_folded_sin(sin)
        return model.eval()

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_parameters(self, *, trainable_only: bool = False) -> int:
        """Unique parameters (tied weights counted once)."""
        return unique_parameter_count(self, trainable_only=trainable_only)

    def forward(
        self,
        idx: torch.Tensor,
        *,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        compute_logits: bool = True,
        use_cache: bool = False,
        past: KVCache | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> DecoderOutput:
        """Run `idx` (B, T) through the model.

        With `past` (an earlier pass's `out.past`), `idx` holds only the new tokens: their
        positions continue after the cached ones. With `use_cache`, `out.past` holds every
        layer's keys and values for all positions so far, to feed back with the next tokens.
        Outputs (logits, hidden states, attention rows) cover the new positions only.
        `attention_mask` (B, T), 1 at real tokens: keys at 0 are never attended to (padding, which
        bidirectional attention would otherwise see; causal attention with right padding never does).
        """
        start = past.length if past is not None else 0
        T = idx.shape[1]
        if start + T > self.config.block_size:
            cached = f" ({start} cached + {T} new)" if start else ""
            raise RequestError(
                f"sequence length {start + T}{cached} exceeds the model's block_size {self.config.block_size}"
            )
        cos, folded_sin = self.rope_cos[start : start + T], self.rope_folded_sin[start : start + T]
        x = self.dropout(self.embed(idx))
        hidden = [x] if output_hidden_states else None
        attentions = [] if output_attentions else None
        layers = [] if use_cache else None
        # A cache pass is inference: it has no backward pass to save memory for.
        checkpointed = self.activation_checkpointing and self.training and torch.is_grad_enabled()
        checkpointed = checkpointed and layers is None and past is None
        for i, block in enumerate(self.blocks):
            if checkpointed:
                x, weights, _ = torch.utils.checkpoint.checkpoint(
                    block, x, cos, folded_sin, output_attentions, None, False, attention_mask, use_reentrant=False
                )
            else:
                past_kv = past.layers[i] if past is not None else None
                x, weights, kv = block(x, cos, folded_sin, output_attentions, past_kv, use_cache, attention_mask)
                if layers is not None:
                    layers.append(kv)
            if hidden is not None:
                hidden.append(x)
            if attentions is not None:
                attentions.append(weights)
        x = self.norm(x)
        return DecoderOutput(
            logits=self.lm_head(x) if compute_logits else None,
            last_hidden=x,
            hidden_states=tuple(hidden) if hidden is not None else None,
            attentions=tuple(attentions) if attentions is not None else None,
            past=KVCache(tuple(layers)) if layers is not None else None,
        )

    def logits_from_hidden(self, hidden: torch.Tensor) -> torch.Tensor:
        """Read any intermediate hidden state through the final norm and LM head (the logit lens)."""
        return self.lm_head(self.norm(hidden))

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, *, use_cache: bool = True, **sampling) -> torch.Tensor:
        from workbench.models.generate import generate

        return generate(self, idx, max_new_tokens, use_cache=use_cache, **sampling)
