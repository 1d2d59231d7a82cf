"""Masked-token prediction, the encoder's playground: the numbers drawn are the numbers the encoder gives at
the hidden positions, and the controls redraw it."""

import pytest
import torch

from workbench.data import build_tokenizer
from workbench.models import Encoder, EncoderConfig
from workbench.models.encoder import hidden_positions
from workbench.probe.fill_in import FillInPlayground, fill_in, fill_in_html, masked_guesses

TEXT = "def add(a, b):\n    return a + b\n"


@pytest.fixture(scope="module")
def tiny_encoder():
    tokenizer = build_tokenizer("char", ["abcdefghijklmnopqrstuvwxyz (),:.=+\n"])
    torch.manual_seed(0)
    model = Encoder(EncoderConfig.for_tokenizer("tiny", tokenizer.vocab_size, block_size=64)).eval()
    return model, tokenizer


def test_hidden_positions_are_the_seeds_and_the_shares():
    assert hidden_positions(40, 0.15, 0) == hidden_positions(40, 0.15, 0)
    assert hidden_positions(40, 0.15, 0) != hidden_positions(40, 0.15, 1)
    assert len(hidden_positions(40, 0.15, 0)) == 6 and len(hidden_positions(3, 0.01, 0)) == 1  # at least one
    with pytest.raises(ValueError, match="empty"):
        hidden_positions(0, 0.15, 0)
    with pytest.raises(ValueError, match=r"rate must be in \(0, 1\], got 0"):
        hidden_positions(10, 0, 0)


def test_the_guesses_are_the_encoders_own_at_the_masked_positions(tiny_encoder):
    model, tokenizer = tiny_encoder
    rows = masked_guesses(model, tokenizer, TEXT, rate=0.3, seed=2)
    ids = tokenizer.encode(TEXT)
    hidden = [row["position"] for row in rows if row["hidden"]]
    assert [row["id"] for row in rows] == ids and hidden == hidden_positions(len(ids), 0.3, 2)
    masked = torch.tensor([ids])
    masked[0, hidden] = model.config.mask_token_id
    with torch.no_grad():
        logits = model(masked).logits[0]
    logits[:, model.config.mask_token_id] = float("-inf")
    probabilities = logits.softmax(-1)
    for row in rows:
        if row["hidden"]:
            position = row["position"]
            assert row["guess"] == int(probabilities[position].argmax())
            assert row["prob"] == pytest.approx(float(probabilities[position, row["id"]]), rel=1e-5)
            assert len(row["alternatives"]) == 10 and row["alternatives"][0][1] >= row["alternatives"][-1][1]
    # The plain-text version hides the same tokens and fills in the same guesses.
    filled = fill_in(model, tokenizer, TEXT, rate=0.3, seed=2)
    assert filled.positions == hidden
    assert filled.right == sum(row["guess"] == row["id"] for row in rows if row["hidden"])


def test_the_html_shows_each_guess_coloured_and_strikes_the_wrong_ones(tiny_encoder):
    model, tokenizer = tiny_encoder
    rows = masked_guesses(model, tokenizer, TEXT, rate=0.5, seed=0)
    shown = fill_in_html(rows)
    hidden = [row for row in rows if row["hidden"]]
    assert shown.count("data-position=") == len(hidden)
    wrong = sum(row["guess"] != row["id"] for row in hidden)
    assert shown.count('data-wrong="1"') == wrong == shown.count("line-through")
    assert wrong > 0  # a random encoder guesses mostly wrong


def test_the_playground_redraws_when_its_controls_move(tiny_encoder, labelled_controls):
    model, tokenizer = tiny_encoder
    playground = FillInPlayground(model, tokenizer, text=TEXT)
    before = playground.output.value
    count = len(playground.hidden_rows)
    assert playground.hidden.max == count - 1 and f"of <b>{count}</b> hidden" in playground.summary.value
    title = playground.guesses.layout.title.text
    playground.hidden.value = 1
    assert playground.guesses.layout.title.text != title
    playground.seed.value = 3
    assert playground.output.value != before
    playground.rate.value = 0.5
    assert len(playground.hidden_rows) == round(0.5 * len(tokenizer.encode(TEXT)))
    playground.text.value = ""
    assert "empty" in playground.message.value
    assert all(control.style.description_width == "initial" for control in labelled_controls(playground)
               if hasattr(control, "style") and hasattr(control.style, "description_width"))


def test_a_decoder_is_refused_by_name(tiny_model):
    model, tokenizer = tiny_model
    with pytest.raises(TypeError, match="needs a workbench Encoder.*got Decoder"):
        masked_guesses(model, tokenizer, TEXT)
