"""What a run imports before it needs it: heavy libraries stay out of the modules every
``kedro`` command loads, and a model loads without importing all of scikit-learn. (No timing
here: ``make bench`` measures start-up.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sklearn

from power_modelling.datasets import _sklearn_estimators as recorded
from tests.standins import install_standin_models

HEAVY = ("sklearn", "scipy", "matplotlib", "mlflow", "dvc", "dagshub", "onnx", "skops", "dask")
#: Imported by every `kedro` command in the project (settings, hooks, CLI) or by a run that
#: only lists pipelines (the registry imports every pipeline's definition and nodes).
LIGHT_MODULES = [
    # not power_modelling.settings: power_modelling.quiet imports kedro-mlflow's served-model
    # wrapper (MLflow) on purpose, to drop the type-hint warning it emits when defined
    "power_modelling.hooks",
    "power_modelling.run_guard",
    "power_modelling.cli",
    "power_modelling.pipeline_registry",
    *(
        f"power_modelling.pipelines.{name}.{part}"
        for name in (
            "ingestion",
            "power_mapping",
            "feature_engineering",
            "modelling",
            "network_evaluation",
            "inference",
            "prediction",
        )
        for part in ("pipeline", "nodes")
    ),
]


def _imported_after(code: str) -> dict[str, bool]:
    """Which of ``HEAVY`` a fresh interpreter has imported after running ``code``."""
    report = f"print(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    probe = f"{code}\nimport json, sys\n{report}"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", LIGHT_MODULES)
def test_project_modules_import_no_heavy_library(module: str) -> None:
    imported = _imported_after(f"import {module}")
    assert [name for name, present in imported.items() if present] == []


def test_a_model_loads_without_importing_all_of_scikit_learn(tmp_path: Path) -> None:
    install_standin_models(tmp_path)
    model = tmp_path / "data" / "06_models" / "h200_isolated_v1" / "dense_power.skops"
    code = (
        "from power_modelling.datasets import SkopsModelDataset\n"
        f"SkopsModelDataset({str(model)!r}).load()\n"
        "from skops.io import _trusted_types as t\n"
        "from power_modelling.datasets._sklearn_estimators import ESTIMATOR_TYPES\n"
        "assert sorted(t.SKLEARN_ESTIMATOR_TYPE_NAMES) == list(ESTIMATOR_TYPES)\n"
        "import sys\n"
        "assert 'pytest' not in sys.modules  # imported by skops' walk over scikit-learn\n"
    )
    imported = _imported_after(code)
    assert imported["skops"] and not imported["dask"]


def test_skops_trusts_exactly_the_recorded_scikit_learn_types() -> None:
    """The list the fast import hands skops is what skops' own walk finds."""
    assert sklearn.__version__ == recorded.SKLEARN_VERSION, (
        "scikit-learn changed: python -m power_modelling.datasets._sklearn_estimators"
    )
    assert recorded.recorded() == recorded.ESTIMATOR_TYPES
