"""nanoGPT's model and CPU training loop, reduced to what its Shakespeare-char recipe uses.

The yardstick runs in the same process as the workbench, so "faster than nanoGPT"
is a ratio taken side by side rather than against figures from another day.
Follows karpathy/nanoGPT `model.py` and `train.py` (MIT licence): LayerNorm
without bias, fused QKV projection, causal SDPA, GELU MLP of width 4*n_embd,
learned positions, tied embeddings, AdamW (not fused: nanoGPT fuses on CUDA
only), warmup then cosine to min_lr, clipping at 1.0, a `.item()` each step
(log_interval 1), random windows sampled from the uint16 token array.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class GPTConfig:
    block_size: int = 64
    vocab_size: int = 65
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False


class LayerNorm(nn.Module):
    def __init__(self, ndim: int, bias: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head, self.n_embd, self.dropout = config.n_head, config.n_embd, config.dropout

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        dropout = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=dropout, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),
                wpe=nn.Embedding(config.block_size, config.n_embd),
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
                ln_f=LayerNorm(config.n_embd, bias=config.bias),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight
        self.apply(self._init_weights)
        for name, param in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def num_parameters(self) -> int:
        """nanoGPT's count: position embeddings excluded."""
        return sum(p.numel() for p in self.parameters()) - self.transformer.wpe.weight.numel()

    @staticmethod
    def _init_weights(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets=None):
        t = idx.size(1)
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
        return logits, loss

    def configure_optimizers(self, weight_decay, learning_rate, betas):
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas)  # fused only on CUDA in nanoGPT


def prepare_chars(text: str) -> tuple[np.ndarray, np.ndarray, int]:
    """data/shakespeare_char/prepare.py: sorted characters of the whole text, 90/10 split, uint16."""
    chars = sorted(set(text))
    stoi = {ch: i for i, ch in enumerate(chars)}
    ids = np.array([stoi[c] for c in text], dtype=np.uint16)
    cut = int(len(text) * 0.9)
    return ids[:cut], ids[cut:], len(chars)


def get_batch(data: np.ndarray, block_size: int, batch_size: int, generator: torch.Generator | None = None):
    ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    x = torch.stack([torch.from_numpy(data[i : i + block_size].astype(np.int64)) for i in ix])
    y = torch.stack([torch.from_numpy(data[i + 1 : i + 1 + block_size].astype(np.int64)) for i in ix])
    return x, y


def get_lr(it: int, learning_rate=1e-3, warmup_iters=100, lr_decay_iters=2000, min_lr=1e-4) -> float:
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it > lr_decay_iters:
        return min_lr
    ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (learning_rate - min_lr)


class TrainLoop:
    """train.py's loop, one optimizer step per `step()`: `train` runs it to the end, and part c steps it
    between the workbench's steps so the two share each moment of this VM's drifting speed."""

    def __init__(self, train_data, config: GPTConfig, *, batch_size: int = 12, seed: int = 1337,
                 lr_decay_iters: int = 2000) -> None:
        torch.manual_seed(seed)
        self.model = GPT(config)
        self.optimizer = self.model.configure_optimizers(0.1, 1e-3, (0.9, 0.99))
        self.data, self.config, self.batch_size, self.lr_decay_iters = train_data, config, batch_size, lr_decay_iters
        self.batch = get_batch(train_data, config.block_size, batch_size)
        self.iter_num = 0
        self.step_seconds: list[float] = []

    def step(self) -> None:
        started = time.perf_counter()
        lr = get_lr(self.iter_num, lr_decay_iters=self.lr_decay_iters)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        _, loss = self.model(*self.batch)
        self.batch = get_batch(self.data, self.config.block_size, self.batch_size)  # prefetch, as train.py does
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        loss.item()  # log_interval 1: train.py reads the loss every iteration
        self.iter_num += 1
        self.step_seconds.append(time.perf_counter() - started)


def train(train_data, config: GPTConfig, *, max_iters: int, batch_size: int = 12, seed: int = 1337,
          on_step=None, lr_decay_iters: int = 2000) -> GPT:
    """train.py's loop to max_iters. `on_step(iter_num, model)` runs after each optimizer step (the benchmark's
    clock and evaluator); nanoGPT's own evaluation is replaced by the benchmark's, the same for every run."""
    loop = TrainLoop(train_data, config, batch_size=batch_size, seed=seed, lr_decay_iters=lr_decay_iters)
    for _ in range(max_iters):
        loop.step()
        if on_step is not None:
            on_step(loop.iter_num, loop.model)
    return loop.model
