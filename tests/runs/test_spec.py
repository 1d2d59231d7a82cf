from pathlib import Path

import pytest

from workbench.config import ConfigError
from workbench.runs.spec import SpecError, find_project_root, load_spec


def test_load_spec_resolves_paths_and_defaults(project: Path):
    spec = load_spec(project / "experiments" / "ok.yaml")
    assert spec.name == "ok"  # from the file stem
    assert spec.description == "tiny"
    assert spec.notebook == project / "notebooks" / "ok.ipynb"
    assert spec.notebook.is_absolute() and spec.path.is_absolute()
    assert spec.parameters == {"alpha": 2, "seed": 3}
    assert spec.project_root == project


def test_explicit_name_and_no_parameters(make_spec):
    path = make_spec("other.yaml", "name: quick-1.0_b\nnotebook: notebooks/ok.ipynb\n")
    spec = load_spec(path)
    assert spec.name == "quick-1.0_b"
    assert spec.parameters == {}
    assert spec.description is None


def test_overrides_lay_over_parameters(project: Path):
    spec = load_spec(project / "experiments" / "ok.yaml").with_parameters({"alpha": 5, "rate": 1.5})
    assert spec.parameters == {"alpha": 5, "seed": 3, "rate": 1.5}


def test_unknown_key_names_it_and_the_valid_keys(make_spec):
    path = make_spec("bad.yaml", "notebook: notebooks/ok.ipynb\nparams:\n  alpha: 1\nseed: [1]\n")
    with pytest.raises(SpecError) as e:
        load_spec(path)
    message = str(e.value)
    assert "'params'" in message and "'seed'" in message
    assert "name, description, notebook, parameters, sweep, seeds, stages" in message
    assert isinstance(e.value, ConfigError)


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", "with space", ""])
def test_bad_name_is_rejected(make_spec, name: str):
    path = make_spec("bad.yaml", f"name: '{name}'\nnotebook: notebooks/ok.ipynb\n")
    with pytest.raises(SpecError, match="not a valid run name"):
        load_spec(path)


def test_bad_file_stem_is_rejected_with_a_hint(make_spec):
    path = make_spec("my spec.yaml", "notebook: notebooks/ok.ipynb\n")
    with pytest.raises(SpecError, match="from the file name"):
        load_spec(path)


def test_missing_notebook_names_the_path(project: Path, make_spec):
    path = make_spec("bad.yaml", "notebook: notebooks/nope.ipynb\n")
    with pytest.raises(SpecError) as e:
        load_spec(path)
    assert str(project / "notebooks" / "nope.ipynb") in str(e.value)


def test_notebook_is_required(make_spec):
    path = make_spec("bad.yaml", "name: x\n")
    with pytest.raises(SpecError, match="`notebook:` is required"):
        load_spec(path)


def test_malformed_yaml_names_file_and_line(make_spec):
    path = make_spec("bad.yaml", "notebook: notebooks/ok.ipynb\nparameters:\n  alpha: [1, 2\n  seed: 0\n")
    with pytest.raises(SpecError) as e:
        load_spec(path)
    assert str(path) in str(e.value)
    assert "line " in str(e.value) and "invalid YAML" in str(e.value)


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "empty"),
        ("- a\n- b\n", "mapping"),
        ("notebook: notebooks/ok.ipynb\nparameters: [1]\n", "parameters must be a mapping"),
        ("notebook: notebooks/ok.ipynb\nparameters:\n  1: a\n", "identifiers"),
    ],
)
def test_malformed_structure(make_spec, text: str, match: str):
    with pytest.raises(SpecError, match=match):
        load_spec(make_spec("bad.yaml", text))


def test_missing_spec_file(project: Path):
    with pytest.raises(SpecError, match="spec not found"):
        load_spec(project / "experiments" / "nope.yaml")


def test_project_root_is_nearest_marked_ancestor(tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text("")
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    assert find_project_root(nested) == tmp_path
    (tmp_path / "a" / "notebooks").mkdir()
    assert find_project_root(nested) == tmp_path / "a"


def test_spec_outside_any_project(tmp_path: Path):
    path = tmp_path / "lonely.yaml"
    path.write_text("notebook: notebooks/ok.ipynb\n")
    if find_project_root(tmp_path) is not None:
        pytest.skip("the temporary directory sits inside a project")
    with pytest.raises(SpecError, match="no project root"):
        load_spec(path)
