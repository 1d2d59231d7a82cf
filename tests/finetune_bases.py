"""Small real inputs for fine-tuning tests: a saved tiny decoder standing in for a pretraining run
folder, and a CSV task a model can learn from the first letter of each text."""

from __future__ import annotations

import csv
from pathlib import Path

import torch

from workbench.data import build_tokenizer
from workbench.models import Decoder, DecoderConfig
from workbench.modules import save_pretrained

ALPHABET = "abcdefghijklmnopqrstuvwxyz .,0123456789"


def save_tiny_decoder(folder: Path, *, seed: int) -> Path:
    """A tiny decoder with a char tokenizer, saved as a run folder's checkpoint/; its weights drawn under `seed`."""
    tokenizer = build_tokenizer("char", [ALPHABET])
    torch.manual_seed(seed)
    decoder = Decoder(DecoderConfig.from_preset("tiny", vocab_size=tokenizer.vocab_size, block_size=64))
    save_pretrained(folder / "checkpoint", decoder, tokenizer)
    return folder


def write_letter_task(path: Path, *, rows: int, labels: list[str]) -> str:
    """Row i is labelled labels[i % len(labels)] and starts with "z" for the first label, "a" for the others."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label", "group"])
        for i in range(rows):
            label = labels[i % len(labels)]
            writer.writerow([("z" if label == labels[0] else "a") + f" item {i}", label, f"g{i % 30}"])
    return str(path)
