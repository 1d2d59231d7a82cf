"""A compressor's bits per byte: the yardstick a language model's loss should beat.

A model that codes the validation text in fewer bits per byte than zlib at
its strongest setting has learned more than repeated substrings.
"""

from __future__ import annotations

import zlib
from typing import Iterable

from workbench.errors import RequestError


def zlib_bits_per_byte(texts: Iterable[str], level: int = 9) -> float:
    """Compressed size in bits over raw UTF-8 size, for the texts joined as one stream."""
    raw = "".join(texts).encode("utf-8")
    if not raw:
        raise RequestError("no text to compress")
    return 8 * len(zlib.compress(raw, level)) / len(raw)
