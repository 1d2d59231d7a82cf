"""What CPU this is, in the terms that decide speed here: its model name, family and bf16-relevant flags.

Two kinds of machine this project runs on call themselves "AMD EPYC" and both list AVX512_BF16:
a Zen 4 (family 25) and a Zen 5 (family 26). A large bf16 matmul runs 2.2x fp32's speed on the
one and 4.5x on the other, and a third kind has no native bf16 at all. So the run record, precision
auto's remembered choices and the benchmark results all describe the CPU with `cpu_facts()`.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

BF16_FLAG_PREFIXES = ("avx512", "amx")  # the flags that say which bf16 (and wide-vector) kernels exist


def cpu_facts(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, Any]:
    """{"model": name, "family": int | None, "model_number": int | None, "flags": [avx512*/amx* flags]}."""
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:  # not Linux: the platform's word is all there is
        return {"model": platform.processor() or platform.machine(), "family": None, "model_number": None,
                "flags": []}
    fields: dict[str, str] = {}
    for line in lines:  # the first processor's block: every core of one machine is the same kind
        name, _, value = line.partition(":")
        fields.setdefault(name.strip(), value.strip())
    return {
        "model": fields.get("model name", platform.machine()),
        "family": _integer(fields.get("cpu family")),
        "model_number": _integer(fields.get("model")),
        "flags": sorted(f for f in fields.get("flags", "").split() if f.startswith(BF16_FLAG_PREFIXES)),
    }


def cpu_description() -> str:
    """One line: 'AMD EPYC (family 25, model 17) avx512_bf16 avx512f ...'."""
    facts = cpu_facts()
    kind = f" (family {facts['family']}, model {facts['model_number']})" if facts["family"] is not None else ""
    return " ".join([facts["model"] + kind, *facts["flags"]])


def _integer(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
