"""corpus="hf" with streaming=True: local folders of data files exercise the real streaming path offline."""

import json

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workbench.data import CorpusError, CorpusUnavailableError, PretrainDataModule, corpus_fingerprint, load_corpus
from workbench.data.corpora import check_corpus_options
from workbench.data.hub_stream import _check_streamed_column
from workbench.modules.pretrain_settings import PretrainSettings
from workbench.settings import SettingsError


@pytest.fixture(autouse=True)
def datasets_cache(tmp_path, monkeypatch):
    """Whatever `datasets` caches without a cache_dir goes under this test's tmp_path, not the user's cache."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))


def write_jsonl(folder, split, n_rows, make_text):
    folder.mkdir(exist_ok=True)
    rows = [json.dumps({"content": f"{split} row {i} ü\n{make_text(i, 24)}", "label": i}) for i in range(n_rows)]
    (folder / f"{split}.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")


@pytest.fixture
def hub_folders(tmp_path, make_text):
    """Folders laid out like hub datasets: train only, train and validation, and a short validation."""
    write_jsonl(tmp_path / "train_only", "train", 40, make_text)
    for split in ("train", "validation"):
        write_jsonl(tmp_path / "with_validation", split, 40, make_text)
    write_jsonl(tmp_path / "short_validation", "train", 40, make_text)
    write_jsonl(tmp_path / "short_validation", "validation", 1, make_text)
    return tmp_path


def rows(split):
    return list(zip(split["source"], split["text"], strict=True))


# ---------------------------------------------------------------- the same rows as the download


def test_a_validation_split_streams_to_the_same_corpus_as_the_download(hub_folders, cache_dir):
    name = str(hub_folders / "with_validation")
    downloaded = load_corpus("hf", hf_name=name, text_column="content", cache_dir=cache_dir)
    streamed = load_corpus("hf", hf_name=name, text_column="content", streaming=True, cache_dir=cache_dir)
    assert streamed["train"].column_names == ["text", "source"]
    for split in ("train", "validation"):
        assert rows(streamed[split]) == rows(downloaded[split])
    assert streamed["validation"][0]["source"] == f"hf:{name}#0"
    assert corpus_fingerprint(streamed) == corpus_fingerprint(downloaded)  # same rows, same hash


def test_without_validation_every_kth_row_is_held_out(hub_folders, cache_dir):
    name = str(hub_folders / "train_only")
    options = dict(hf_name=name, text_column="content", validation_fraction=0.25, cache_dir=cache_dir)
    downloaded = load_corpus("hf", **options)
    streamed = load_corpus("hf", **options, streaming=True)
    assert sorted(rows(streamed["train"]) + rows(streamed["validation"])) == sorted(
        rows(downloaded["train"]) + rows(downloaded["validation"]))
    assert list(streamed["validation"]["source"]) == [f"hf:{name}#{i}" for i in range(3, 40, 4)]
    assert (len(streamed["train"]), len(streamed["validation"])) == (len(downloaded["train"]), 10)


def test_a_fraction_over_one_half_holds_out_every_second_row(hub_folders, cache_dir):
    name = str(hub_folders / "train_only")
    corpus = load_corpus("hf", hf_name=name, text_column="content", validation_fraction=0.8, streaming=True,
                         cache_dir=cache_dir)
    assert list(corpus["validation"]["source"]) == [f"hf:{name}#{i}" for i in range(1, 40, 2)]
    assert len(corpus["train"]) == 20


def test_a_second_streamed_load_reuses_the_arrow_cache(hub_folders, cache_dir):
    options = dict(hf_name=str(hub_folders / "with_validation"), text_column="content", streaming=True,
                   cache_dir=cache_dir)
    first, second = load_corpus("hf", **options), load_corpus("hf", **options)
    assert first["train"].cache_files == second["train"].cache_files
    assert first["train"].cache_files[0]["filename"].startswith(cache_dir)


# ---------------------------------------------------------------- max_files


@pytest.mark.parametrize("folder, fraction, train, validation", [
    ("with_validation", 0.25, range(6), range(2)),
    ("train_only", 0.25, (0, 1, 2, 4, 5, 6), (3, 7)),
    ("short_validation", 0.5, range(7), range(1)),  # validation has 1 row, not 4: train takes the rest
])
def test_max_files_caps_rows_as_the_download_does(hub_folders, cache_dir, folder, fraction, train, validation):
    name = str(hub_folders / folder)
    options = dict(hf_name=name, text_column="content", validation_fraction=fraction, max_files=8,
                   cache_dir=cache_dir)
    streamed = load_corpus("hf", **options, streaming=True)
    assert list(streamed["train"]["source"]) == [f"hf:{name}#{i}" for i in train]
    assert list(streamed["validation"]["source"]) == [f"hf:{name}#{i}" for i in validation]
    downloaded = load_corpus("hf", **options)
    assert (len(streamed["train"]), len(streamed["validation"])) == (
        len(downloaded["train"]), len(downloaded["validation"]))


# ---------------------------------------------------------------- bad columns


@pytest.fixture(params=["jsonl", "parquet"])
def one_format_folder(request, hub_folders, make_text):
    """train_only as JSON lines or as parquet: two readers, each declaring its features to the stream."""
    if request.param == "jsonl":
        return hub_folders / "train_only"
    folder = hub_folders / "parquet"
    folder.mkdir()
    table = pa.table({"content": [make_text(i, 24) for i in range(10)], "label": list(range(10))})
    pq.write_table(table, folder / "train.parquet")
    return folder


def test_a_missing_text_column_is_named_with_the_columns_there_are(one_format_folder, cache_dir):
    with pytest.raises(CorpusError, match="no column 'text'; its columns are: content, label"):
        load_corpus("hf", hf_name=str(one_format_folder), streaming=True, cache_dir=cache_dir)


def test_a_column_of_numbers_is_not_text(one_format_folder, cache_dir):
    with pytest.raises(CorpusError, match="column 'label' of .* holds .*int.*, not strings"):
        load_corpus("hf", hf_name=str(one_format_folder), text_column="label", streaming=True, cache_dir=cache_dir)


def test_a_stream_without_features_is_checked_on_its_first_row():
    def generate():
        yield {"content": "a row", "label": 1}

    stream = datasets.IterableDataset.from_generator(generate)
    assert stream.features is None
    with pytest.raises(CorpusError, match="no column 'text'; its columns are: content, label"):
        _check_streamed_column(stream, "someone/some-dataset", "text")
    with pytest.raises(CorpusError, match="column 'label' of 'someone/some-dataset' holds int, not strings"):
        _check_streamed_column(stream, "someone/some-dataset", "label")
    _check_streamed_column(stream, "someone/some-dataset", "content")


# ---------------------------------------------------------------- offline


@pytest.fixture
def no_loading(monkeypatch):
    """Fail any test that reaches load_dataset: an offline stream must be refused before it."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"load_dataset was called with {args}")

    monkeypatch.setattr(datasets, "load_dataset", refuse)


def test_offline_a_hub_name_is_refused_before_loading(monkeypatch, cache_dir, no_loading):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CorpusUnavailableError) as error:
        load_corpus("hf", hf_name="someone/some-dataset", streaming=True, cache_dir=cache_dir)
    message = str(error.value)
    for needed in ("HF_HUB_OFFLINE", "'someone/some-dataset'", "needs the hub", "streaming=False"):
        assert needed in message


def test_an_unreachable_hub_is_named_before_loading(monkeypatch, cache_dir, no_loading):
    import huggingface_hub.constants

    # Online as far as every reader of HF_HUB_OFFLINE knows: an earlier test of the session may have imported
    # datasets or huggingface_hub with it set, and both read it once, at import.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr("workbench.data.corpora.hub_reachable", lambda *args, **kwargs: False)
    with pytest.raises(CorpusUnavailableError,
                       match=r"hub \(http://127\.0\.0\.1:9\) is unreachable.*'someone/some-dataset' \(config 'x'\)"):
        load_corpus("hf", hf_name="someone/some-dataset", hf_config="x", streaming=True, cache_dir=cache_dir)


def test_a_local_folder_streams_offline(monkeypatch, hub_folders, cache_dir):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("workbench.data.corpora.hub_reachable",
                        lambda *args, **kwargs: pytest.fail("a local folder probed the hub"))
    corpus = load_corpus("hf", hf_name=str(hub_folders / "with_validation"), text_column="content", streaming=True,
                         cache_dir=cache_dir)
    assert (len(corpus["train"]), len(corpus["validation"])) == (40, 40)


# ---------------------------------------------------------------- settings and options


def test_streaming_applies_only_to_the_hf_corpus(tmp_path):
    with pytest.raises(SettingsError, match=r"hf_streaming=True does not apply to corpus='text': only corpus=\"hf\""):
        PretrainSettings(corpus="text", corpus_paths=[str(tmp_path / "*.txt")], hf_streaming=True)
    with pytest.raises(CorpusError, match="option\\(s\\) streaming do not apply to the 'stdlib' corpus"):
        check_corpus_options("stdlib", {"streaming": True})
    with pytest.raises(CorpusError, match="streaming must be True or False, got 'yes'"):
        check_corpus_options("hf", {"hf_name": "x", "streaming": "yes"})
    check_corpus_options("stdlib", {"streaming": False})  # the default is fine anywhere


def test_the_setting_reaches_the_corpus_options():
    settings = PretrainSettings(corpus="hf", hf_name="someone/some-dataset", hf_streaming=True)
    assert settings.corpus_options()["streaming"] is True
    assert "streaming" not in PretrainSettings().corpus_options()


# ---------------------------------------------------------------- the DataModule


def test_a_datamodule_trains_on_a_streamed_corpus(hub_folders, cache_dir):
    options = {"hf_name": str(hub_folders / "train_only"), "text_column": "content", "streaming": True,
               "validation_fraction": 0.25, "cache_dir": cache_dir}
    module = PretrainDataModule("hf", options, "byte", block_size=16, batch_size=4)
    module.setup()
    assert len(module.train_blocks) >= 4 and len(module.val_blocks) >= 1
    x, y = next(iter(module.train_dataloader()))
    assert x.shape == y.shape == (4, 16)
