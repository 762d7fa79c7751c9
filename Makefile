# One-command set-up: `make run` and `make test` create .venv with uv (installing uv with pip
# when missing) and need nothing else installed by hand. Bytecode is compiled at install: where
# Python may not write it (PYTHONDONTWRITEBYTECODE, read-only environments) every command would
# otherwise compile thousands of modules again (docs/performance.md).
PYTHON ?= python3
VENV := .venv
UV := $(shell command -v uv 2>/dev/null)
export DO_NOT_TRACK := true
export KEDRO_DISABLE_TELEMETRY := 1
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: install run test lint bench viz mlflow-ui data-add data-pull clean

$(VENV)/.installed: pyproject.toml uv.lock
ifeq ($(UV),)
	$(PYTHON) -m pip install --quiet --user uv || $(PYTHON) -m pip install --quiet uv
	$(PYTHON) -m uv sync --frozen --compile-bytecode --python $(PYTHON)
else
	uv sync --frozen --compile-bytecode --python $(PYTHON)
endif
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
