"""Part g: the GPT-2-small preset (124M) on a GPU, bf16-mixed and torch.compile.

Measures the GPU's own bf16 matmul peak, then trains the preset under the
Lightning Trainer on random token ids (throughput does not depend on the text)
and reports tokens/s and MFU against that peak. Without CUDA it says so and
returns; nothing here runs on a CPU.
"""

from __future__ import annotations

import time

import torch

from benchmarks.flops import decoder_flops_per_token
from benchmarks.peak import matmul_peak


def gpu_available() -> bool:
    return torch.cuda.is_available()


def gpu_benchmark(*, steps: int = 60, warmup: int = 15, batch_size: int = 16, block_size: int = 1024,
                  compile: bool = True, preset: str = "gpt2-small") -> dict:
    if not gpu_available():
        return {"skipped": "skipped: no GPU"}
    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    from workbench.models import DecoderConfig
    from workbench.modules.optim import OptimConfig
    from workbench.modules.pretrain import PretrainModule

    torch.backends.cuda.matmul.allow_tf32 = True
    peak = matmul_peak(torch.bfloat16, sizes=(4096, 8192), seconds=1.0, device="cuda")
    config = DecoderConfig.from_preset(preset, block_size=block_size)
    module = PretrainModule(config, OptimConfig(learning_rate=6e-4, warmup_steps=10, max_steps=steps), compile=compile)
    ids = torch.randint(config.vocab_size, ((steps + 1) * batch_size, block_size + 1))
    loader = DataLoader(TensorDataset(ids[:, :-1], ids[:, 1:]), batch_size=batch_size, pin_memory=True)

    class Clock(L.Callback):
        def __init__(self) -> None:
            self.ends: list[float] = []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            torch.cuda.synchronize()
            self.ends.append(time.perf_counter())

    clock = Clock()
    trainer = L.Trainer(accelerator="cuda", devices=1, precision="bf16-mixed", max_steps=steps, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        gradient_clip_val=1.0, callbacks=[clock], limit_val_batches=0)
    torch.cuda.reset_peak_memory_stats()
    trainer.fit(module, train_dataloaders=loader)
    seconds = (clock.ends[-1] - clock.ends[warmup]) / (len(clock.ends) - 1 - warmup)
    tokens_per_s = batch_size * block_size / seconds
    fpt = decoder_flops_per_token(module.model, block_size)
    return {
        "device": torch.cuda.get_device_name(),
        "bf16_peak_tflops": round(peak["gflops"] / 1e3, 1),
        "parameters": module.model.num_parameters(),
        "ms_per_step": round(1000 * seconds, 2),
        "tokens_per_s": round(tokens_per_s, 1),
        "mfu": round(fpt * tokens_per_s / (peak["gflops"] * 1e9), 4),
        "peak_gpu_memory_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2),
        "compile": compile,
    }
