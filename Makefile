# One-command set-up: `make run` and `make test` create .venv with uv and need nothing else
# installed by hand but python3 with its venv module (Debian/Ubuntu: python3-venv). uv is the
# one on PATH, else it is installed into .uv-bootstrap/ (a venv of its own: a distribution's
# "externally managed" system Python, PEP 668, refuses `pip install` outside one). Bytecode is
# compiled at install: where Python may not write it (PYTHONDONTWRITEBYTECODE, read-only
# environments) every command would otherwise compile thousands of modules again
# (docs/performance.md).
PYTHON ?= python3
VENV := .venv
BOOTSTRAP := .uv-bootstrap
UV ?= $(shell command -v uv 2>/dev/null)
# `make UV= install` forces the bootstrap (a variable given on the command line wins)
UV_BIN := $(if $(UV),$(UV),$(BOOTSTRAP)/bin/uv)
export DO_NOT_TRACK := true
export KEDRO_DISABLE_TELEMETRY := 1
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: install run test lint bench viz mlflow-ui data-add data-pull clean

$(BOOTSTRAP)/bin/uv:
	$(PYTHON) -m venv $(BOOTSTRAP) || { echo "make: '$(PYTHON) -m venv' failed; on Debian/Ubuntu: sudo apt install python3-venv" >&2; exit 1; }
	$(BOOTSTRAP)/bin/python -m pip install --quiet uv

$(VENV)/.installed: pyproject.toml uv.lock | $(UV_BIN)
	$(UV_BIN) sync --frozen --compile-bytecode --python $(PYTHON)
	touch $@

install: $(VENV)/.installed

run: install
	$(VENV)/bin/kedro run

test: install
	$(VENV)/bin/pytest

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

bench: install
	$(VENV)/bin/python -m benchmarks

viz: install
	$(VENV)/bin/kedro viz run

mlflow-ui: install
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db

data-add: install  # make data-add DATASET=my_jetson_data  (= kedro data add)
	$(VENV)/bin/kedro data add $(DATASET)

data-pull: install  # every DVC-tracked raw dataset (= kedro data pull)
	$(VENV)/bin/kedro data pull

clean:
	rm -rf data/0[2-8]_*/* mlflow.db mlruns
