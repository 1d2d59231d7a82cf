import time
from pathlib import Path

import pytest

from workbench.runs import ParameterError, notebook_parameters, run_spec, validate_parameters


@pytest.fixture
def ok_notebook(project: Path) -> Path:
    return project / "notebooks" / "ok.ipynb"


def test_notebook_parameters_reads_the_tagged_cell(ok_notebook: Path):
    params = notebook_parameters(ok_notebook)
    assert list(params) == ["output_dir", "alpha", "rate", "name", "flag", "seed"]
    assert params["alpha"].inferred_type_name == "int"
    assert params["rate"].inferred_type_name == "float"
    assert params["name"].default == '"x"' and params["name"].value == "x"
    assert params["flag"].inferred_type_name == "bool"


def test_defaults_resolved_and_overridden(ok_notebook: Path):
    resolved = validate_parameters(ok_notebook, {"alpha": 3, "name": "y"})
    assert resolved == {"output_dir": ".", "alpha": 3, "rate": 0.5, "name": "y", "flag": False, "seed": 0}


def test_int_is_accepted_for_float_and_widened(ok_notebook: Path):
    resolved = validate_parameters(ok_notebook, {"rate": 2})
    assert resolved["rate"] == 2.0 and isinstance(resolved["rate"], float)


def test_unknown_name_suggests_and_lists_valid_parameters(ok_notebook: Path):
    with pytest.raises(ParameterError) as e:
        validate_parameters(ok_notebook, {"alpah": 2})
    message = str(e.value)
    assert "unknown parameter 'alpah'" in message
    assert "did you mean 'alpha'" in message
    for line in ["alpha: int = 1", "rate: float = 0.5", 'name: str = "x"', "flag: bool = False", "seed: int = 0"]:
        assert line in message
    assert str(ok_notebook) in message


@pytest.mark.parametrize(
    "name, value",
    [
        ("alpha", "three"),
        ("alpha", 1.5),
        ("alpha", True),  # bool is not int
        ("flag", 1),
        ("rate", "fast"),
        ("name", 3),
        ("seed", None),
    ],
)
def test_wrong_types_are_rejected(ok_notebook: Path, name: str, value):
    with pytest.raises(ParameterError) as e:
        validate_parameters(ok_notebook, {name: value})
    assert f"{name!r} expects" in str(e.value)


def test_output_dir_is_reserved(ok_notebook: Path):
    with pytest.raises(ParameterError, match="'output_dir' is reserved"):
        validate_parameters(ok_notebook, {"output_dir": "/tmp/elsewhere"})


def test_all_problems_reported_at_once(ok_notebook: Path):
    with pytest.raises(ParameterError) as e:
        validate_parameters(ok_notebook, {"alpah": 1, "flag": 0, "rate": "x", "output_dir": "."})
    message = str(e.value)
    assert "4 problems" in message
    assert "'alpah'" in message and "'flag' expects bool" in message
    assert "'rate' expects float" in message and "'output_dir' is reserved" in message


def test_annotations_none_defaults_and_expressions(make_notebook):
    path = make_notebook(
        "typed.ipynb",
        "from typing import Optional\n"
        "steps: Optional[int] = None\n"
        "ratio: float | None = None  # papermill's regex misses this one\n"
        "anything = None\n"
        "device = str(3)\n"
        "shape = (1, 2)\n"
        "sizes: list[int] = [1, 2]  # layer sizes\n",
    )
    params = notebook_parameters(path)
    assert list(params) == ["steps", "ratio", "anything", "device", "shape", "sizes"]  # cell order
    assert params["steps"].inferred_type_name == "Optional[int]"
    assert params["ratio"].inferred_type_name == "float | None"
    assert params["sizes"].help == "layer sizes"
    ok = {"steps": None, "ratio": 2, "anything": [1, {"a": 2}], "device": "cuda", "shape": [3, 4], "sizes": []}
    resolved = validate_parameters(path, ok)
    assert resolved["ratio"] == 2.0 and resolved["shape"] == [3, 4]
    assert validate_parameters(path, {}) == {"steps": None, "ratio": None, "anything": None, "sizes": [1, 2]}
    with pytest.raises(ParameterError) as e:
        validate_parameters(path, {"steps": 1.5, "ratio": "x", "sizes": {"a": 1}, "shape": 5})
    assert "4 problems" in str(e.value)


def test_values_papermill_cannot_inject_are_rejected(ok_notebook: Path):
    import datetime

    with pytest.raises(ParameterError, match="quote dates"):
        validate_parameters(ok_notebook, {"name": datetime.date(2024, 1, 1)})


def test_notebook_without_parameters_cell(project: Path):
    with pytest.raises(ParameterError, match="no cell is tagged 'parameters'"):
        notebook_parameters(project / "notebooks" / "untagged.ipynb")


def test_not_a_notebook(tmp_path: Path):
    path = tmp_path / "broken.ipynb"
    path.write_text("{ not json")
    with pytest.raises(ParameterError, match="not a readable notebook"):
        notebook_parameters(path)


def test_misspelled_parameter_fails_before_any_kernel_or_folder(project: Path, make_spec, no_kernel):
    spec = make_spec("typo.yaml", "notebook: notebooks/ok.ipynb\nparameters:\n  max_step: 10\n  alpha: 2\n")
    started = time.perf_counter()
    with pytest.raises(ParameterError, match="unknown parameter 'max_step'"):
        run_spec(spec)
    assert time.perf_counter() - started < 15
    assert not (project / "experiments" / "runs").exists()


def test_override_is_validated_too(project: Path, no_kernel):
    with pytest.raises(ParameterError, match="'seed' expects int"):
        run_spec(project / "experiments" / "ok.yaml", overrides={"seed": "zero"})
    assert not (project / "experiments" / "runs").exists()


def test_equals_signs_in_comments_are_read_quietly(make_notebook, caplog):
    cell = 'limit = 120  # None = every file\nmode = "a=b"\ncap: int | None = 3  # x = y'
    path = make_notebook("commented.ipynb", cell)
    with caplog.at_level("INFO"):
        params = notebook_parameters(path)
    assert params["limit"].help == "None = every file" and params["limit"].inferred_type_name == "int"
    assert params["mode"].value == "a=b"
    assert params["cap"].inferred_type_name == "int | None" and params["cap"].help == "x = y"
    assert validate_parameters(path, {"cap": None})["cap"] is None
    assert not [r for r in caplog.records if r.name.startswith("papermill")]  # no "Unable to parse line"
