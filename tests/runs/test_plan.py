"""Expanding specs into runs: sweeps, seeds, stages and references, checked before anything runs."""

from pathlib import Path

import pytest

from workbench.runs import ParameterError, SpecError, load_spec
from workbench.runs.plan import format_plan, make_plan, variants

PIPELINE = """\
name: pipe
seeds: [0, 1]
stages:
  - name: first
    notebook: notebooks/ok.ipynb
    parameters: {alpha: 2}
  - name: second
    notebook: notebooks/consumer.ipynb
    parameters: {upstream: "${first}", label: "from ${first}"}
    sweep:
      grid: {alpha: [1, 2, 3]}
  - name: summary
    notebook: notebooks/consumer.ipynb
    seeds: [0]
    parameters: {runs: "${second.runs}", upstream: "${first}"}
"""


@pytest.fixture
def consumer(make_notebook):
    make_notebook(
        "consumer.ipynb",
        'output_dir = "."\nupstream = ""\nlabel = ""\nruns = []\nalpha = 1\nseed = 0',
        "from workbench.runs.outputs import read_json, save_metrics\n"
        "up = read_json(upstream + '/metrics.json')\n"
        "save_metrics(output_dir, {'val_loss': up['val_loss'] + alpha, 'inputs': len(runs)})",
    )


def test_grid_list_and_seeds_multiply(make_spec):
    spec = load_spec(make_spec("s.yaml", (
        "notebook: notebooks/ok.ipynb\nseeds: 2\n"
        "sweep:\n  grid: {alpha: [1, 2], rate: [0.1, 0.2]}\n  list: [{name: a}, {name: b, flag: true}]\n"
    )))
    runs = variants(spec.stages[0])
    assert len(runs) == 2 * 2 * 2 * 2
    assert runs[0] == {"alpha": 1, "rate": 0.1, "name": "a", "seed": 0}
    assert runs[-1] == {"alpha": 2, "rate": 0.2, "name": "b", "flag": True, "seed": 1}


def test_references_resolve_to_run_folders_matching_seeds(make_spec, consumer, tmp_path):
    plan = make_plan(load_spec(make_spec("pipe.yaml", PIPELINE)), tmp_path / "exp")
    first = {run.parameters["seed"]: run.folder for run in plan.of_stage("first")}
    assert [run.folder.name for run in plan.of_stage("first")] == ["first-000", "first-001"]
    second = plan.of_stage("second")
    assert len(second) == 6
    for run in second:
        assert run.parameters["upstream"] == str(first[run.parameters["seed"]])
        assert run.parameters["label"] == f"from {first[run.parameters['seed']]}"
        assert run.depends_on == (first[run.parameters["seed"]],) * 2
    (summary,) = plan.of_stage("summary")
    assert summary.folder == tmp_path / "exp" / "summary"
    assert summary.parameters["runs"] == [str(run.folder) for run in second]
    assert summary.parameters["upstream"] == str(first[0])


def test_a_plain_spec_is_one_run_in_the_run_folder_itself(make_spec, tmp_path):
    spec = load_spec(make_spec("one.yaml", "notebook: notebooks/ok.ipynb\nparameters: {alpha: 4}\n"))
    plan = make_plan(spec, tmp_path / "run")
    assert spec.single_run and [run.folder for run in plan.runs] == [tmp_path / "run"]


def test_every_problem_is_listed_at_once_and_nothing_runs(make_spec, consumer, no_kernel, tmp_path):
    text = PIPELINE.replace("{alpha: 2}", "{alpah: 2}").replace('"${first}", label', '"${frist}", label')
    text = text.replace("grid: {alpha: [1, 2, 3]}", "grid: {alpha: [1, oops, 3]}")
    with pytest.raises(ParameterError) as error:
        make_plan(load_spec(make_spec("bad.yaml", text)), tmp_path / "exp")
    message = str(error.value)
    assert "'alpah'" in message and "did you mean 'alpha'" in message
    assert "${frist} names no stage; stages are: first, second, summary" in message
    assert "'alpha' expects int" in message and "'oops'" in message
    assert not (tmp_path / "exp").exists()


def test_ambiguous_and_forward_references_are_explained(make_spec, consumer, tmp_path):
    ambiguous = PIPELINE.replace("    seeds: [0]\n", "")
    ambiguous = ambiguous.replace('upstream: "${first}"}', 'upstream: "${second}"}')
    with pytest.raises(ParameterError, match=r"\$\{second\} is ambiguous: stage 'second' has 6 runs"):
        make_plan(load_spec(make_spec("amb.yaml", ambiguous)), tmp_path / "exp")
    forward = PIPELINE.replace('parameters: {alpha: 2}', 'parameters: {alpha: 2, name: "${second}"}')
    with pytest.raises(ParameterError, match="must name an earlier stage"):
        make_plan(load_spec(make_spec("fwd.yaml", forward)), tmp_path / "exp")


@pytest.mark.parametrize(
    "text, message",
    [
        ("notebook: notebooks/ok.ipynb\nsweep: {grid: {alpha: []}}\n", "non-empty list"),
        ("notebook: notebooks/ok.ipynb\nsweep: {grid: {alpha: [1]}, list: [{alpha: 2}]}\n", "both grid and list"),
        ("notebook: notebooks/ok.ipynb\nsweep: {product: {alpha: [1]}}\n", "unknown key.*'product'"),
        ("notebook: notebooks/ok.ipynb\nseeds: [1, 1]\n", "repeats a seed"),
        ("notebook: notebooks/ok.ipynb\nseeds: -2\n", "a count"),
        ("stages:\n  - notebook: notebooks/ok.ipynb\n", "needs a `name:`"),
        ("notebook: notebooks/ok.ipynb\nstages:\n  - {name: a, notebook: notebooks/ok.ipynb}\n", "inside each stage"),
        ("stages:\n  - {name: a, notebook: notebooks/ok.ipynb}\n  - {name: a, notebook: notebooks/ok.ipynb}\n",
         "two stages are named 'a'"),
    ],
)
def test_malformed_sweeps_and_stages(make_spec, text, message):
    with pytest.raises(SpecError, match=message):
        load_spec(make_spec("bad.yaml", text))


def test_overrides_target_one_stage_or_all(make_spec, consumer):
    spec = load_spec(make_spec("pipe.yaml", PIPELINE)).with_parameters({"second.label": "x", "alpha": 7})
    assert spec.stage("second").parameters["label"] == "x" and spec.stage("first").parameters["alpha"] == 7
    with pytest.raises(SpecError, match="unknown stage"):
        load_spec(make_spec("pipe.yaml", PIPELINE)).with_parameters({"third.alpha": 1})


def test_dry_run_text_lists_every_run_with_its_parameters(make_spec, consumer, tmp_path):
    plan = make_plan(load_spec(make_spec("pipe.yaml", PIPELINE)), tmp_path / "exp")
    text = format_plan(plan)
    assert text.startswith("pipe: 9 run(s) in 3 stage(s)")
    assert "stage second: 6 run(s) of notebooks/consumer.ipynb" in text
    line = next(line for line in text.splitlines() if line.startswith("  second-005:"))
    assert "alpha=3" in line and "seed=1" in line
    second = text.split("stage second")[1].split("stage summary")[0]
    assert "    upstream:" not in second and "upstream=first-001" in line  # differs per seed: on run lines


def test_the_recorded_spec_of_a_pipeline_loads_back_the_same(make_spec, consumer, tmp_path):
    spec = load_spec(make_spec("pipe.yaml", PIPELINE))
    again = load_spec(make_spec("again.yaml", spec.to_yaml()))
    assert again.stages == spec.stages and again.pipeline
    assert Path(make_spec("x.yaml", "notebook: notebooks/ok.ipynb\n")).exists()
