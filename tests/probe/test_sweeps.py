import json

import pytest
import yaml

from workbench.probe.sweeps import base_label, collect_runs, label_efficiency_figure, summarise


def fake_run(root, name, status="completed", **values):
    folder = root / name
    folder.mkdir()
    (folder / "status.json").write_text(json.dumps({"status": status}))
    params = {k: values[k] for k in ("base", "strategy", "label_fraction", "seed")}
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    (folder / "metrics.json").write_text(json.dumps({"test_macro_f1": values["f1"], "confusion": [[1]]}))
    return folder


@pytest.fixture
def sweep(tmp_path):
    pretrained = tmp_path / "pretrain"
    (pretrained / "checkpoint").mkdir(parents=True)
    (pretrained / "checkpoint" / "model.safetensors").write_bytes(b"")  # a pretraining run folder's weights
    folders = []
    for i, (base, fraction, seed, f1) in enumerate([
        (str(pretrained), 0.1, 0, 0.5), (str(pretrained), 0.1, 1, 0.7), (str(pretrained), 1.0, 0, 0.9),
        (f"scratch:{pretrained}", 0.1, 0, 0.2), (f"scratch:{pretrained}", 0.1, 1, 0.3),
        ("minilm", 0.1, 0, 0.6),
    ]):
        folders.append(fake_run(tmp_path, f"run-{i}", base=base, strategy="full", label_fraction=fraction,
                                seed=seed, f1=f1))
    folders.append(fake_run(tmp_path, "failed", status="failed", base="minilm", strategy="full",
                            label_fraction=1.0, seed=0, f1=0.0))
    return folders


def test_collect_keeps_completed_runs_with_their_parameters_and_scalar_metrics(sweep):
    rows = collect_runs(sweep)
    assert len(rows) == 6 and all("confusion" not in row for row in rows)
    assert rows[0]["test_macro_f1"] == 0.5 and rows[0]["seed"] == 0


def test_summary_groups_seeds_into_mean_and_spread(sweep):
    summary = {(s["base"], s["label_fraction"]): s for s in summarise(collect_runs(sweep), "test_macro_f1")}
    assert summary[("pretrained", 0.1)]["mean"] == pytest.approx(0.6)
    assert summary[("pretrained", 0.1)]["std"] == pytest.approx(0.1414, abs=1e-4)
    assert summary[("scratch", 0.1)]["n"] == 2 and summary[("minilm", 0.1)]["std"] == 0.0


def test_the_figure_draws_the_summarised_numbers(sweep):
    figure = label_efficiency_figure(collect_runs(sweep))
    traces = {trace.name: trace for trace in figure.data}
    assert set(traces) == {"pretrained · full", "scratch · full", "minilm · full"}
    assert list(traces["pretrained · full"].x) == [0.1, 1.0]
    assert list(traces["pretrained · full"].y) == pytest.approx([0.6, 0.9])
    assert figure.layout.xaxis.type == "log"


def test_unknown_metric_names_the_available_ones(sweep):
    with pytest.raises(KeyError, match="no metric 'accuracy'.*test_macro_f1"):
        summarise(collect_runs(sweep), "accuracy")


def test_base_labels():
    assert base_label("scratch:/x/run") == "scratch" and base_label("minilm") == "minilm"


def test_bases_of_two_architectures_are_summarised_apart_not_pooled(tmp_path):
    folders = []
    for architecture in ("decoder", "encoder"):
        checkpoint = tmp_path / architecture / "checkpoint"
        checkpoint.mkdir(parents=True)
        (checkpoint / "model.safetensors").write_bytes(b"")
        (checkpoint / "config.json").write_text(json.dumps({"architecture": architecture, "config": {}}))
        for seed, f1 in enumerate((0.5, 0.7) if architecture == "decoder" else (0.8, 0.9)):
            for base in (str(checkpoint.parent), f"scratch:{checkpoint.parent}"):
                folders.append(fake_run(tmp_path, f"{architecture}-{seed}-{len(folders)}", base=base,
                                        strategy="full", label_fraction=0.1, seed=seed, f1=f1))
    assert base_label(str(tmp_path / "encoder" / "checkpoint")) == "pretrained encoder"  # the checkpoint itself
    summary = {s["base"]: s for s in summarise(collect_runs(folders), "test_macro_f1")}
    assert set(summary) == {"pretrained decoder", "scratch decoder", "pretrained encoder", "scratch encoder"}
    assert summary["pretrained encoder"]["mean"] == pytest.approx(0.85) and summary["scratch decoder"]["n"] == 2


def test_confusion_matrix_figure_shows_row_shares_and_counts():
    from workbench.probe.confusion import confusion_matrix_figure

    figure = confusion_matrix_figure([[3, 1], [0, 4]], ["a", "b"])
    heatmap = figure.data[0]
    assert [list(row) for row in heatmap.z] == [[0.75, 0.25], [0.0, 1.0]]
    assert [list(row) for row in heatmap.customdata] == [[3, 1], [0, 4]]
    with pytest.raises(ValueError, match="2 x 2"):
        confusion_matrix_figure([[1, 2, 3]], ["a", "b"])
