# Two entry points do all their own set-up: `make demo` and `make test`.
# Set-up is a virtual environment in .venv with the pinned packages and a
# Jupyter kernel named "workbench" registered inside it, so JupyterLab and
# papermill run this interpreter, not whatever python3 is first on PATH.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SPEC   ?= experiments/pretrain.yaml
# make lab: the address to bind (LAB_IP=0.0.0.0 to serve other machines), its port, and its token
# (LAB_TOKEN; a fresh random one when empty).
LAB_IP    ?= 127.0.0.1
LAB_PORT  ?= 8888
LAB_TOKEN ?=
define LAB_OVERRIDES
import json, pathlib, sys
path = pathlib.Path(sys.prefix, "share", "jupyter", "lab", "settings", "overrides.json")
path.parent.mkdir(parents=True, exist_ok=True)
settings = json.loads(path.read_text()) if path.exists() else {}
settings.setdefault("@jupyterlab/apputils-extension:kernels-settings", {})["commsOverSubshells"] = "disabled"
path.write_text(json.dumps(settings, indent=2) + "\n")
endef
export LAB_OVERRIDES
# Notebook metadata that changes with the machine or the JupyterLab that saved it (language_info.name stays).
NBSTRIPOUT_EXTRA_KEYS := metadata.language_info.version metadata.language_info.codemirror_mode \
  metadata.language_info.file_extension metadata.language_info.mimetype metadata.language_info.nbconvert_exporter \
  metadata.language_info.pygments_lexer metadata.papermill cell.metadata.papermill cell.metadata.trusted

.PHONY: install demo test test-unit test-notebooks bench lab runs clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "workbench needs Python 3.11, found " + sys.version.split()[0] + "; run make PYTHON=python3.11 ...")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,minilm]'
	$(BIN)/python -m ipykernel install --sys-prefix --name workbench --display-name "Python (workbench)"
	@# Notebook outputs and volatile metadata never reach git: nbstripout as the clean filter named in
	@# .gitattributes (cell ids kept; every output stripped: nbval's expected outputs live in notebooks/quick.yaml).
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
	  $(BIN)/python -m nbstripout --install --attributes .gitattributes && \
	  git config filter.nbstripout.clean '"$(abspath $(BIN))/python" -m nbstripout --keep-id' && \
	  git config diff.ipynb.textconv '"$(abspath $(BIN))/python" -m nbstripout --keep-id -t' && \
	  git config filter.nbstripout.extrakeys '$(NBSTRIPOUT_EXTRA_KEYS)'; \
	fi
	@# JupyterLab would send widget messages to a kernel subshell, whose busy/idle status the status bar takes
	@# for the kernel's: it read "Idle" through every training cell. Widget messages wait for the cell instead.
	$(BIN)/python -c "$$LAB_OVERRIDES"
	touch $(STAMP)

demo: install
	$(BIN)/workbench run $(SPEC)

# Lint first (a lint failure fails the tests), then the unit tests and every notebook under nbval, each
# notebook as a copy parameterized at the quick sizes of notebooks/quick.yaml (their defaults are real runs).
test: install
	$(BIN)/ruff check .
	$(BIN)/python -m workbench.runs.quick_notebooks notebooks/quick.yaml build/nbval
	WORKBENCH_RUNS_DIR=$(CURDIR)/build/test-runs WORKBENCH_CACHE_DIR=$(CURDIR)/build/test-cache $(BIN)/pytest tests build/nbval --nbval-lax --nbval-kernel-name workbench

test-unit: install
	$(BIN)/pytest tests -m "not slow"

test-notebooks: install
	$(BIN)/python -m workbench.runs.quick_notebooks notebooks/quick.yaml build/nbval
	$(BIN)/pytest build/nbval --nbval-lax --nbval-kernel-name workbench

bench: install
	$(BIN)/python -m benchmarks

# As root (containers, cloud VMs) JupyterLab refuses to start without --allow-root; the URL it prints first
# carries the token, for a browser on this machine or through an SSH tunnel.
lab: install
	@token="$(LAB_TOKEN)"; [ -n "$$token" ] || token=$$($(BIN)/python -c 'import secrets; print(secrets.token_hex(24))'); \
	root=""; [ "$$(id -u)" -ne 0 ] || root="--allow-root"; \
	host="$(LAB_IP)"; case "$$host" in 0.0.0.0|"::") host=127.0.0.1;; esac; \
	echo "JupyterLab: http://$$host:$(LAB_PORT)/lab?token=$$token"; \
	exec $(BIN)/jupyter lab --ServerApp.root_dir=notebooks --ServerApp.ip=$(LAB_IP) --ServerApp.port=$(LAB_PORT) \
	  --ServerApp.port_retries=0 --IdentityProvider.token=$$token --ServerApp.open_browser=False $$root

runs: install
	$(BIN)/workbench runs

clean:
	rm -rf $(VENV) .pytest_cache
