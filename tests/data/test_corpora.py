import json
import socket
import sysconfig
import time
from pathlib import Path

import pytest

from workbench.data import CorpusError, CorpusUnavailableError, corpus_fingerprint, describe_corpus, load_corpus
from workbench.data.corpora import check_corpus_options, hub_reachable, read_chunks, split_paths, stdlib_files


@pytest.fixture(scope="module")
def stdlib20(tmp_path_factory):
    return load_corpus("stdlib", max_files=20, cache_dir=str(tmp_path_factory.mktemp("cache")))


# ---------------------------------------------------------------- bad input


def test_unknown_corpus_names_the_valid_ones():
    with pytest.raises(CorpusError, match=r"'wiki'.*stdlib, text, hf"):
        load_corpus("wiki")


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5, "0.1"])
def test_validation_fraction_must_lie_strictly_between_0_and_1(fraction):
    with pytest.raises(CorpusError, match="validation_fraction"):
        load_corpus("stdlib", validation_fraction=fraction)


def test_options_that_do_not_fit_the_corpus_are_refused():
    with pytest.raises(CorpusError, match="paths do not apply to the 'stdlib' corpus"):
        load_corpus("stdlib", paths="*.txt")
    with pytest.raises(CorpusError, match="needs paths"):
        load_corpus("text")
    with pytest.raises(CorpusError, match="needs hf_name"):
        load_corpus("hf")
    with pytest.raises(CorpusError, match="max_files"):
        load_corpus("stdlib", max_files=1)


def test_unknown_option_names_the_valid_ones():
    with pytest.raises(CorpusError, match=r"'max_file'.*valid options are: validation_fraction, max_files"):
        check_corpus_options("stdlib", {"max_file": 3})
    check_corpus_options("text", {"paths": "x.txt", "validation_fraction": 0.1})  # fine: no I/O yet


# ---------------------------------------------------------------- stdlib


def test_stdlib_file_list_leaves_out_tests_and_site_packages():
    root = Path(sysconfig.get_paths()["stdlib"])
    relative = [f.relative_to(root).as_posix() for f in stdlib_files(root)]
    assert len(relative) > 500
    assert "os.py" in relative and "json/decoder.py" in relative
    assert not [p for p in relative if Path(p).name.startswith("test_")]
    parts = {part for p in relative for part in Path(p).parts[:-1]}
    assert not parts & {"test", "tests", "idle_test", "site-packages"}


def test_stdlib_splits_are_disjoint_nonempty_and_capped(stdlib20):
    assert set(stdlib20) == {"train", "validation"}
    assert stdlib20["train"].column_names == ["text", "source"]
    train, validation = list(stdlib20["train"]["source"]), list(stdlib20["validation"]["source"])
    assert len(train) + len(validation) == 20
    assert len(validation) == 1  # ceil(20 * 0.05)
    assert not set(train) & set(validation)
    assert train == sorted(train)
    assert all(isinstance(t, str) and t for t in stdlib20["train"]["text"])


def test_full_stdlib_split_is_about_the_requested_fraction():
    root = Path(sysconfig.get_paths()["stdlib"])
    relative = [f.relative_to(root).as_posix() for f in stdlib_files(root)]
    train, validation = split_paths(relative, 0.05)
    assert sorted(train + validation) == sorted(relative)
    assert 0.02 < len(validation) / len(relative) < 0.09


@pytest.mark.slow
def test_stdlib_split_and_fingerprint_are_the_same_in_a_fresh_process(stdlib20, run_fresh, tmp_path):
    code = f"""
        import json, sysconfig
        from pathlib import Path
        from workbench.data import corpus_fingerprint, load_corpus
        from workbench.data.corpora import split_paths, stdlib_files
        root = Path(sysconfig.get_paths()["stdlib"])
        train, validation = split_paths([f.relative_to(root).as_posix() for f in stdlib_files(root)], 0.05)
        corpus = load_corpus("stdlib", max_files=20, cache_dir={str(tmp_path / "other")!r})
        print(json.dumps({{"validation": validation, "small": list(corpus["validation"]["source"]),
                          "fingerprint": corpus_fingerprint(corpus)}}))
    """
    fresh = run_fresh(code, PYTHONHASHSEED="12345")
    root = Path(sysconfig.get_paths()["stdlib"])
    _, validation = split_paths([f.relative_to(root).as_posix() for f in stdlib_files(root)], 0.05)
    assert fresh["validation"] == validation
    assert fresh["small"] == list(stdlib20["validation"]["source"])
    assert fresh["fingerprint"] == corpus_fingerprint(stdlib20)


def test_split_takes_both_splits_in_proportion_and_never_empties_one():
    paths = [f"pkg/module_{i:03d}.py" for i in range(200)]
    train, validation = split_paths(paths, 0.25, max_files=10)
    assert (len(train), len(validation)) == (7, 3)  # ceil(10 * 0.25) = 3 for validation
    full_train, full_validation = split_paths(paths, 0.25)
    assert train == full_train[:7] and validation == full_validation[:3]
    for fraction in (1e-9, 1 - 1e-9):
        train, validation = split_paths(["a.py", "b.py"], fraction)
        assert len(train) == len(validation) == 1


# ---------------------------------------------------------------- text


def test_single_text_file_splits_by_characters_like_nanogpt(tmp_path, cache_dir):
    text = "".join(chr(ord("a") + i % 26) for i in range(1000))
    (tmp_path / "input.txt").write_text(text)
    corpus = load_corpus("text", paths=str(tmp_path / "input.txt"), validation_fraction=0.1, cache_dir=cache_dir)
    assert corpus["train"]["text"][:] == [text[:900]]
    assert corpus["validation"]["text"][:] == [text[900:]]
    assert corpus["train"]["source"][:] == ["input.txt"]


@pytest.mark.parametrize("chunk_bytes", [1, 7, 64, 10_000])
def test_chunks_join_to_the_whole_decoded_file_and_end_at_line_ends(tmp_path, chunk_bytes):
    lines = [f"line {i}: h\u00e9llo \u65e5\u672c {'x' * (i % 9)}\n" for i in range(40)]
    raw = "".join(lines).encode("utf-8") + b"bad \xff\xfe bytes, no final newline"
    (tmp_path / "f.txt").write_bytes(raw)
    chunks = list(read_chunks(tmp_path / "f.txt", chunk_bytes))
    assert "".join(chunks) == raw.decode("utf-8", errors="replace")
    if chunk_bytes >= len(raw):
        assert len(chunks) == 1  # a file no longer than a read is one document, as it always was
    elif chunk_bytes == 64:
        assert len(chunks) > 1 and all(chunk.endswith("\n") for chunk in chunks[:-1])


def test_a_file_larger_than_a_chunk_is_stored_as_consecutive_rows_of_its_text(tmp_path, cache_dir, monkeypatch):
    monkeypatch.setattr("workbench.data.corpora.CHUNK_BYTES", 100)
    text = "".join(f"{i:04d} to be or not to be\n" for i in range(200))
    (tmp_path / "big.txt").write_text(text)
    corpus = load_corpus("text", paths=str(tmp_path / "big.txt"), validation_fraction=0.25, cache_dir=cache_dir)
    train, validation = corpus["train"]["text"][:], corpus["validation"]["text"][:]
    cut = int(len(text) * 0.75)
    assert len(train) > 10 and "".join(train) == text[:cut] and "".join(validation) == text[cut:]
    assert set(corpus["train"]["source"][:]) == {"big.txt"}


def test_glob_of_text_files_splits_by_file(text_files, cache_dir):
    corpus = load_corpus("text", paths=str(text_files / "*.txt"), validation_fraction=0.2, cache_dir=cache_dir)
    train, validation = list(corpus["train"]["source"]), list(corpus["validation"]["source"])
    assert sorted(train + validation) == [f"doc{i:02d}.txt" for i in range(12)]
    assert train and validation
    by_source = dict(zip(corpus["train"]["source"], corpus["train"]["text"], strict=True))
    assert by_source[train[0]] == (text_files / train[0]).read_text()


def test_a_list_of_paths_and_globs_is_merged(text_files, cache_dir):
    corpus = load_corpus(
        "text", paths=[str(text_files / "doc0*.txt"), str(text_files / "doc10.txt")], cache_dir=cache_dir
    )
    assert len(corpus["train"]) + len(corpus["validation"]) == 11


def test_a_pattern_that_matches_nothing_is_named(tmp_path):
    with pytest.raises(CorpusError, match=r"no files match '.*nothing\*\.txt'"):
        load_corpus("text", paths=str(tmp_path / "nothing*.txt"))


# ---------------------------------------------------------------- identity and summary


def test_fingerprint_follows_content_not_cache_location(text_files, tmp_path):
    pattern = str(text_files / "*.txt")
    first = load_corpus("text", paths=pattern, cache_dir=str(tmp_path / "a"))
    second = load_corpus("text", paths=pattern, cache_dir=str(tmp_path / "b"))
    assert corpus_fingerprint(first) == corpus_fingerprint(second)
    assert len(corpus_fingerprint(first)) == 16
    (text_files / "doc03.txt").write_text("changed\n")
    changed = load_corpus("text", paths=pattern, cache_dir=str(tmp_path / "a"))
    assert corpus_fingerprint(changed) != corpus_fingerprint(first)
    assert "changed\n" in list(changed["train"]["text"]) + list(changed["validation"]["text"])


def test_describe_counts_documents_characters_and_bytes(tmp_path, cache_dir):
    (tmp_path / "one.txt").write_text("héllo " * 100, encoding="utf-8")
    corpus = load_corpus("text", paths=str(tmp_path / "one.txt"), validation_fraction=0.5, cache_dir=cache_dir)
    summary = json.loads(json.dumps(describe_corpus(corpus)))
    assert summary["fingerprint"] == corpus_fingerprint(corpus)
    assert summary["train"] == {"documents": 1, "characters": 300, "bytes": 350}
    assert summary["validation"]["characters"] == 300


# ---------------------------------------------------------------- Hugging Face


def test_hub_dataset_offline_fails_fast_with_a_clear_message(cache_dir):
    if hub_reachable():
        pytest.skip("the Hugging Face hub is reachable from here")
    started = time.perf_counter()
    with pytest.raises(CorpusUnavailableError) as error:
        load_corpus("hf", hf_name="karpathy/tiny_shakespeare", cache_dir=cache_dir)
    assert time.perf_counter() - started < 10
    message = str(error.value)
    for needed in ("unreachable", "karpathy/tiny_shakespeare", "local cache", "'text' corpus"):
        assert needed in message


def test_unreachable_hub_endpoint_is_reported_on_any_machine(monkeypatch, cache_dir):
    with socket.socket() as probe:  # a port that nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    started = time.perf_counter()
    with pytest.raises(CorpusUnavailableError, match=rf"127\.0\.0\.1:{port}.*someone/not-a-cached-dataset"):
        load_corpus("hf", hf_name="someone/not-a-cached-dataset", cache_dir=cache_dir)
    assert time.perf_counter() - started < 10


@pytest.fixture
def local_hub_dataset(tmp_path):
    """Folders laid out like hub datasets (jsonl per split); load_dataset reads them offline."""
    for name, splits in (("with_validation", ("train", "validation")), ("train_only", ("train",))):
        folder = tmp_path / name
        folder.mkdir()
        for split in splits:
            rows = [json.dumps({"content": f"{split} row {i} ü", "label": i}) for i in range(40)]
            (folder / f"{split}.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return tmp_path


def test_hub_dataset_gets_text_and_source_columns(local_hub_dataset, cache_dir):
    name = str(local_hub_dataset / "with_validation")
    corpus = load_corpus("hf", hf_name=name, text_column="content", cache_dir=cache_dir)
    assert corpus["train"].column_names == ["text", "source"]
    assert corpus["validation"][0] == {"text": "validation row 0 ü", "source": f"hf:{name}#0"}
    assert len(corpus["train"]) == 40
    with pytest.raises(CorpusError, match="no column 'text'; its columns are: content, label"):
        load_corpus("hf", hf_name=name, cache_dir=cache_dir)


def test_hub_dataset_without_validation_is_carved_deterministically(local_hub_dataset, tmp_path):
    name = str(local_hub_dataset / "train_only")
    options = dict(hf_name=name, text_column="content", validation_fraction=0.25)
    first = load_corpus("hf", **options, cache_dir=str(tmp_path / "a"))
    second = load_corpus("hf", **options, cache_dir=str(tmp_path / "b"))
    assert len(first["validation"]) == 10 and len(first["train"]) == 30
    assert list(first["validation"]["source"]) == list(second["validation"]["source"])
    assert not set(first["train"]["source"]) & set(first["validation"]["source"])
    capped = load_corpus("hf", **options, max_files=8, cache_dir=str(tmp_path / "a"))
    assert (len(capped["train"]), len(capped["validation"])) == (6, 2)


def test_stdlib_validation_is_code_not_one_generated_document():
    corpus = load_corpus("stdlib")
    sources = list(corpus["train"]["source"]) + list(corpus["validation"]["source"])
    assert not any(source.startswith("pydoc_data/") for source in sources)
    sizes = [len(text) for text in corpus["validation"]["text"]]
    assert max(sizes) < 0.2 * sum(sizes)  # no file dominates what validation measures
