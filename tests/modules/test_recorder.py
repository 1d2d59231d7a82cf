"""What the TrainingRecorder counts: packed pretraining blocks by the step, padded fine-tuning batches by their mask."""

import pytest
import torch
from torch.utils.data import DataLoader

from workbench.heads import SequenceClassificationHead
from workbench.models import Decoder, DecoderBackbone, DecoderConfig
from workbench.modules import FinetuneModule, OptimConfig, Strategy, TrainingRecorder
from workbench.modules.recorder import batch_examples, real_tokens
from workbench.modules.training import make_trainer

VOCAB, CLASSES, LENGTH = 40, 3, 12


def padded_batches() -> list[dict]:
    """Three batches right-padded to LENGTH: their real lengths are known, so are their real tokens."""
    lengths = [[12, 3, 5, 7], [2, 12, 4, 1], [6, 6]]
    batches = []
    for row_lengths in lengths:
        mask = (torch.arange(LENGTH) < torch.tensor(row_lengths)[:, None]).long()
        ids = torch.randint(1, VOCAB, (len(row_lengths), LENGTH)) * mask
        batches.append({"input_ids": ids, "attention_mask": mask, "labels": ids[:, 0] % CLASSES})
    return batches


def classifier() -> FinetuneModule:
    torch.manual_seed(0)
    backbone = DecoderBackbone(Decoder(DecoderConfig.from_preset("tiny", vocab_size=VOCAB, block_size=32)))
    head = SequenceClassificationHead(backbone.hidden_size, CLASSES, pooling="last", dropout=0.0)
    optim = OptimConfig(learning_rate=1e-2, warmup_steps=1, max_steps=6)
    return FinetuneModule(backbone, head, Strategy("full"), optim, "sequence_classification")


def test_real_tokens_are_the_attention_masks_ones():
    batch = padded_batches()[0]
    assert int(real_tokens(batch)) == 12 + 3 + 5 + 7
    assert int(real_tokens({"input_ids": torch.zeros(2, 5, dtype=torch.long)})) == 10  # no mask: every id is real
    pixels = {"pixels": torch.zeros(3, 1, 8, 8), "labels": torch.zeros(3, dtype=torch.long)}
    assert int(real_tokens(pixels, tokens_per_image=17)) == 3 * 17 and batch_examples(pixels) == 3
    with pytest.raises(ValueError, match="tokens_per_image"):
        real_tokens(pixels)


def test_fine_tuning_counts_examples_and_only_the_real_tokens_of_padded_batches():
    batches = padded_batches()
    recorder = TrainingRecorder(None, every_n_steps=2)
    trainer = make_trainer(precision="32-true", callbacks=[recorder], grad_clip=1.0, max_epochs=2, accelerator="cpu")
    trainer.fit(classifier(), train_dataloaders=DataLoader(batches, batch_size=None))

    real = 2 * sum(int(b["attention_mask"].sum()) for b in batches)  # two epochs over the same batches
    padded = 2 * sum(b["input_ids"].numel() for b in batches)
    assert real == 2 * (27 + 19 + 12) < padded
    record = recorder.compute_record(started=0.0, device="cpu", precision="32-true")
    assert record["train_steps"] == 6
    assert record["train_examples_seen"] == 2 * 10
    assert record["train_tokens"] == real
    seconds = record["train_time_s"]
    assert record["examples_per_s"] == round(20 / recorder.train_seconds, 1) and seconds > 0
    assert record["tokens_per_s"] == round(real / recorder.train_seconds, 1)
    # The curves' data axis counts the same way: each sampled row holds what was fed up to its step.
    rows = [row for row in recorder.history if "train_loss" in row]
    assert [(row["step"], row["examples"], row["tokens"]) for row in rows] == [
        (2, 8, 27 + 19), (4, 10 + 4, 27 + 19 + 12 + 27), (6, 20, real)
    ]


def test_the_counts_survive_a_saved_and_restored_state():
    recorder = TrainingRecorder(None)
    recorder.examples_seen, recorder._real_tokens = 7, torch.tensor(93)
    again = TrainingRecorder(None)
    again.load_state_dict(recorder.state_dict())
    assert (again.examples_seen, again.tokens_seen) == (7, 93)


def test_pretraining_keeps_its_packed_count_and_record():
    recorder = TrainingRecorder(tokens_per_step=8 * 32)
    recorder.train_steps, recorder.train_seconds = 10, 2.0
    record = recorder.compute_record(started=0.0, device="cpu", precision="32-true")
    assert list(record) == ["train_steps", "train_tokens", "train_time_s", "tokens_per_s", "ms_per_step",
                            "wall_time_s", "device", "precision", "torch_threads", "resumed_at_steps"]
    assert record["train_tokens"] == 10 * 8 * 32 and record["tokens_per_s"] == 10 * 8 * 32 / 2.0
    assert "examples_seen" not in recorder.state_dict() and "real_tokens" not in recorder.state_dict()
