import pytest
import torch

from workbench.data import build_tokenizer
from workbench.models import Decoder, DecoderConfig


@pytest.fixture(scope="module")
def tiny_model():
    """A small random decoder and its char tokenizer: the views read any model the same way."""
    tokenizer = build_tokenizer("char", ["abcdefghijklmnopqrstuvwxyz (),:.=+\n"])
    torch.manual_seed(0)
    model = Decoder(DecoderConfig.from_preset("tiny", vocab_size=tokenizer.vocab_size, block_size=32)).eval()
    return model, tokenizer


@pytest.fixture
def labelled_controls():
    """A function: every control under a widget that shows a description label beside it."""

    def controls(widget) -> list:
        stack, found = [widget], []
        while stack:
            current = stack.pop()
            stack.extend(getattr(current, "children", ()))
            if getattr(current, "description", ""):
                found.append(current)
        return found

    return controls
