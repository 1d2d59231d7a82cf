import json

import lightning as L
import pytest
import torch

from workbench.data import CorpusError, PretrainDataModule, TokenizerError, build_tokenizer
from workbench.data.datamodule import ShuffledBatches


@pytest.fixture
def options(text_files, cache_dir):
    return {"paths": str(text_files / "*.txt"), "validation_fraction": 0.2, "cache_dir": cache_dir}


def text_module(options, **overrides):
    settings = dict(corpus="text", corpus_options=options, tokenizer="byte", block_size=16, batch_size=4)
    module = PretrainDataModule(**{**settings, **overrides})
    module.setup()
    return module


def batches(loader):
    return [(x.clone(), y.clone()) for x, y in loader]


# ---------------------------------------------------------------- bad input, before any loading


@pytest.mark.parametrize(
    "arguments, error, message",
    [
        ({"corpus": "wiki"}, CorpusError, r"'wiki'.*stdlib, text, hf"),
        ({"corpus_options": {"max_file": 3}}, CorpusError, r"'max_file'.*valid options are: .*max_files"),
        ({"corpus": "text"}, CorpusError, "needs paths"),
        ({"tokenizer": "sentencepiece"}, TokenizerError, r"'sentencepiece'.*byte, char, bpe"),
        ({"tokenizer": "bpe"}, TokenizerError, "vocab_size >= 257"),
        ({"tokenizer": 3}, TokenizerError, "kind name or a Tokenizer"),
        ({"block_size": 0}, ValueError, "block_size must be an int >= 1"),
        ({"batch_size": 2.5}, ValueError, "batch_size must be an int >= 1"),
        ({"num_proc": 0}, ValueError, "num_proc"),
    ],
)
def test_bad_arguments_fail_in_init(arguments, error, message, tmp_path):
    arguments.setdefault("corpus_options", {})
    arguments["corpus_options"].setdefault("cache_dir", str(tmp_path / "never"))
    with pytest.raises(error, match=message):
        PretrainDataModule(**arguments)
    assert not (tmp_path / "never").exists()


def test_dataloader_before_setup_is_an_error(options):
    with pytest.raises(RuntimeError, match="setup"):
        PretrainDataModule("text", options).train_dataloader()


# ---------------------------------------------------------------- batches


def test_batches_are_shifted_blocks(options):
    module = text_module(options)
    x, y = next(iter(module.train_dataloader()))
    assert x.shape == y.shape == (4, 16) and x.dtype == y.dtype == torch.long
    assert torch.equal(x[:, 1:], y[:, :-1])
    rows = torch.cat([x[:, :1], y], dim=1)
    stored = {tuple(r) for r in module.train_blocks[:].tolist()}
    assert all(tuple(r) in stored for r in rows.tolist())
    assert module.train_blocks.shape[1] == 17 and module.val_blocks.shape[1] == 17


def test_an_epoch_visits_each_block_at_most_once_and_drops_the_ragged_batch(options):
    module = text_module(options)
    loader = module.train_dataloader()
    indices = torch.cat(list(loader.batch_sampler))
    n = len(module.train_blocks)
    assert len(loader) == n // 4 and len(indices) == n - n % 4
    assert len(set(indices.tolist())) == len(indices) and indices.max() < n


def test_batch_order_follows_the_seed(options):
    first = batches(text_module(options, seed=1).train_dataloader())
    same = batches(text_module(options, seed=1).train_dataloader())
    other = batches(text_module(options, seed=2).train_dataloader())
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, same, strict=True))
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(first, other, strict=True))


def test_each_epoch_reshuffles(options):
    loader = text_module(options).train_dataloader()
    epoch_one, epoch_two = batches(loader), batches(loader)
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(epoch_one, epoch_two, strict=True))


@pytest.mark.slow
def test_batch_order_is_the_same_in_a_fresh_process(options, run_fresh):
    module = text_module(options, seed=5)
    expected = [x[:, 0].tolist() for x, _ in module.train_dataloader()][:5]
    fresh = run_fresh(
        f"""
        import json
        from workbench.data import PretrainDataModule
        module = PretrainDataModule("text", {options!r}, "byte", block_size=16, batch_size=4, seed=5)
        module.setup()
        print(json.dumps([x[:, 0].tolist() for x, _ in module.train_dataloader()][:5]))
        """,
        PYTHONHASHSEED="3",
    )
    assert fresh == expected


def test_validation_covers_every_block_once_in_one_fixed_spread_order(options):
    module = text_module(options, batch_size=5)
    loader = module.val_dataloader()
    x = torch.cat([x for x, _ in loader])
    y = torch.cat([y for _, y in loader])
    assert len(loader) == -(-len(module.val_blocks) // 5)
    order = loader.batch_sampler.order
    assert sorted(order.tolist()) == list(range(len(module.val_blocks)))
    assert order.tolist() != sorted(order.tolist())  # a prefix samples the whole split, not its first files
    assert torch.equal(x, module.val_blocks[order][:, :-1]) and torch.equal(y, module.val_blocks[order][:, 1:])
    other_seed = text_module(options, batch_size=5, seed=9).val_dataloader()
    assert torch.equal(other_seed.batch_sampler.order, order)  # same evaluation sample for every run


# ---------------------------------------------------------------- what setup records


def test_bytes_per_token_is_one_for_bytes_of_ascii(options):
    assert text_module(options).bytes_per_token == 1.0


def test_setup_is_idempotent(options):
    module = text_module(options)
    blocks = module.train_blocks
    module.setup("fit")
    assert module.train_blocks is blocks


def test_describe_is_json_and_complete(options):
    module = text_module(options, tokenizer="bpe", vocab_size=300)
    record = json.loads(json.dumps(module.describe()))
    assert record["corpus"] == "text" and record["corpus_options"] == options
    assert len(record["corpus_summary"]["fingerprint"]) == 16
    assert record["tokenizer"] == {
        "kind": "bpe",
        "vocab_size": module.tokenizer.vocab_size,
        "fingerprint": module.tokenizer.fingerprint(),
    }
    assert record["blocks"] == {"train": len(module.train_blocks), "validation": len(module.val_blocks)}
    assert record["tokens"]["train"] >= 16 * record["blocks"]["train"]
    assert 1.0 < record["bytes_per_token"] == module.bytes_per_token


def test_a_given_tokenizer_is_used_as_is(options):
    tokenizer = build_tokenizer("char", ["the quick brown fox"])  # no 'j', 'y', ... -> <unk>
    module = text_module(options, tokenizer=tokenizer)
    assert module.tokenizer is tokenizer
    assert module.train_blocks[:].max() == tokenizer.unk_id
    with pytest.raises(TokenizerError, match="disagrees"):
        PretrainDataModule("text", options, tokenizer=tokenizer, vocab_size=99)


def test_too_little_data_is_explained(options):
    with pytest.raises(ValueError, match="fewer than one batch of 4096"):
        text_module(options, batch_size=4096).train_dataloader()
    tokens = text_module(options).token_counts
    assert tokens["validation"] < tokens["train"]
    with pytest.raises(ValueError, match=rf"validation split: only {tokens['validation']} tokens"):
        text_module(options, block_size=tokens["validation"])


def test_default_stdlib_corpus(cache_dir):
    module = PretrainDataModule(corpus_options={"max_files": 10, "cache_dir": cache_dir}, block_size=32, batch_size=8)
    module.setup()
    x, y = next(iter(module.train_dataloader()))
    assert x.shape == (8, 32)
    assert module.describe()["corpus_summary"]["validation"]["documents"] == 1


class TinyLM(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.logits = torch.nn.Embedding(256, 256)

    def loss(self, batch):
        x, y = batch
        return torch.nn.functional.cross_entropy(self.logits(x).flatten(0, 1), y.flatten())

    def training_step(self, batch, _):
        return self.loss(batch)

    def validation_step(self, batch, _):
        self.log("val_loss", self.loss(batch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_lightning_trainer_runs_on_it(options):
    module = PretrainDataModule("text", options, block_size=16, batch_size=4)
    trainer = L.Trainer(
        max_steps=3, val_check_interval=2, limit_val_batches=2, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, deterministic=True,
    )
    trainer.fit(TinyLM(), datamodule=module)
    assert trainer.global_step == 3
    assert "val_loss" in trainer.callback_metrics


def test_shuffled_batches_started_mid_stream_serve_the_same_batches_as_an_uninterrupted_stream():
    # 10 blocks, batch 3: 3 batches an epoch. Resume after 5 batches (1 epoch + 2 batches).
    whole = ShuffledBatches(10, 3, seed=7)
    stream = [b.tolist() for _ in range(3) for b in whole]
    resumed = ShuffledBatches(10, 3, seed=7, start=5)
    first_epoch_rest = [b.tolist() for b in resumed]
    later_epoch = [b.tolist() for b in resumed]
    assert first_epoch_rest == stream[5:6]
    assert later_epoch == stream[6:9]
    assert len(resumed) == 3  # Lightning counts a resumed epoch at full length


def test_datamodule_state_round_trip_sets_the_samplers_start(options):
    resumed = text_module(options)
    resumed.load_state_dict({"batches_served": 3})
    expected = batches(text_module(options).train_dataloader())[3]
    first = next(iter(resumed.train_dataloader()))
    assert torch.equal(first[0], expected[0]) and torch.equal(first[1], expected[1])
