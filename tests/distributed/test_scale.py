"""What a run on several processes is refused before any data is read, and how it is described."""

import pytest

from workbench.errors import RequestError
from workbench.modules import PretrainSettings
from workbench.modules.distributed import Scale
from workbench.settings import SettingsError


def test_the_scale_settings_are_checked_with_the_others():
    with pytest.raises(SettingsError) as raised:
        PretrainSettings(devices=0, num_nodes=0, distributed_strategy="deepspeed")
    text = str(raised.value)
    assert "devices=0 must be at least 1" in text and "num_nodes=0 must be at least 1" in text
    assert "distributed_strategy='deepspeed'" in text and "auto, ddp, fsdp" in text


def test_fsdp_without_cuda_is_refused_naming_ddp(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with pytest.raises(RequestError, match="fsdp.*needs CUDA.*use 'ddp'"):
        Scale(2, 1, "fsdp").check()


def test_several_nodes_without_a_launcher_are_refused_naming_torchrun(monkeypatch):
    for variable in ("LOCAL_RANK", "RANK", "WORLD_SIZE", "SLURM_NTASKS", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(RequestError, match="num_nodes=2 needs a launcher.*torchrun"):
        Scale(1, 2).check()


def test_a_launcher_with_another_number_of_processes_is_refused(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "4")
    with pytest.raises(RequestError, match=r"started 4 processes, but devices=1 x num_nodes=2 = 2"):
        Scale(1, 2).check()


def test_the_record_gives_the_global_batch():
    record = Scale(2, 3).record(batch_size=8, accumulate_grad_batches=4)
    assert record["world_size"] == 6 and record["global_batch_size"] == 8 * 4 * 6 and record["strategy"] == "ddp"
    assert Scale().record(8, 1)["strategy"] == "none"
    assert Scale(2).describe_batch(8, 1, 64) == (
        "global batch: 2 process(es) x 8 x 1 accumulation = 16 sequences (1,024 tokens) per optimizer step")
