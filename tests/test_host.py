"""host: the CPU named so that two kinds with one model name and one bf16 flag are told apart."""

from __future__ import annotations

from workbench.host import cpu_description, cpu_facts

ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512vl
processor\t: 1
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512vl
"""


def test_family_model_and_the_bf16_flags_are_read_from_the_first_processor(tmp_path):
    (tmp_path / "cpuinfo").write_text(ZEN4)
    facts = cpu_facts(tmp_path / "cpuinfo")
    assert facts == {"model": "AMD EPYC", "family": 25, "model_number": 17, "flags": ["avx512_bf16", "avx512f",
                                                                                      "avx512vl"]}
    zen5 = ZEN4.replace(": 25", ": 26").replace(": 17", ": 2")
    (tmp_path / "cpuinfo").write_text(zen5)
    assert cpu_facts(tmp_path / "cpuinfo")["family"] == 26  # same name, same flags: the family tells them apart


def test_without_cpuinfo_the_platform_names_the_cpu(tmp_path):
    facts = cpu_facts(tmp_path / "missing")
    assert facts["model"] and facts["family"] is None and facts["flags"] == []


def test_the_one_line_description_names_the_kind():
    facts = cpu_facts()
    line = cpu_description()
    assert line.startswith(facts["model"]) and all(flag in line for flag in facts["flags"])
    if facts["family"] is not None:
        assert f"(family {facts['family']}, model {facts['model_number']})" in line
