"""A compressor's bits per byte: the yardstick a language model's loss should beat.

A model that codes the validation text in fewer bits per byte than zlib at
its strongest setting has learned more than repeated substrings.
"""

from __future__ import annotations

import zlib
from typing import Iterable

from workbench.errors import RequestError

ZLIB_LEVEL = 9  # zlib at its strongest


def zlib_bits_per_byte(texts: Iterable[str], level: int = ZLIB_LEVEL) -> float:
    """Compressed size in bits over raw UTF-8 size, for the texts joined as one stream.

    The texts go through one compressor a piece at a time (the same bytes as compressing them
    joined), so a split of hundreds of MB is never held as one string.
    """
    compressor, raw_bytes, compressed_bytes = zlib.compressobj(level), 0, 0
    for text in texts:
        raw = text.encode("utf-8")
        raw_bytes += len(raw)
        compressed_bytes += len(compressor.compress(raw))
    if not raw_bytes:
        raise RequestError("no text to compress")
    return 8 * (compressed_bytes + len(compressor.flush())) / raw_bytes
