# Two entry points do all their own set-up: `make demo` and `make test`.
# Set-up is a virtual environment in .venv with the pinned packages and a
# Jupyter kernel named "workbench" registered inside it, so JupyterLab and
# papermill run this interpreter, not whatever python3 is first on PATH.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SPEC   ?= experiments/pretrain.yaml

.PHONY: install demo test test-unit test-notebooks bench lab runs clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "workbench needs Python 3.11, found " + sys.version.split()[0] + "; run make PYTHON=python3.11 ...")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,minilm]'
	$(BIN)/python -m ipykernel install --sys-prefix --name workbench --display-name "Python (workbench)"
	touch $(STAMP)

demo: install
	$(BIN)/workbench run $(SPEC)

test: install
	$(BIN)/pytest tests notebooks --nbval-lax --nbval-kernel-name workbench

test-unit: install
	$(BIN)/pytest tests -m "not slow"

test-notebooks: install
	$(BIN)/pytest notebooks --nbval-lax --nbval-kernel-name workbench

bench: install
	$(BIN)/python -m benchmarks

lab: install
	$(BIN)/jupyter lab notebooks/

runs: install
	$(BIN)/workbench runs

clean:
	rm -rf $(VENV) .pytest_cache
