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
from tests.helpers import PROJECT_ROOT
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


def test_a_prediction_with_physics_models_imports_no_scikit_learn(tmp_path: Path) -> None:
    """The whole inference of a network (model files, features, domain, intervals) runs on
    NumPy and pandas: what keeps a one-network prediction run near a bare `kedro` command."""
    from power_modelling.core.domain import fit_domain
    from power_modelling.core.intervals import fit_conformal
    from power_modelling.core.loco import trainable
    from power_modelling.core.physics_estimators import (
        FixedCostRuntimeRegressor,
        ThroughputPowerRegressor,
    )
    from power_modelling.datasets import SkopsModelDataset
    from tests.core.conftest import make_synthetic_table
    from tests.standins import tiny_engine

    table = make_synthetic_table()
    calibrations: dict = {}
    for layer_class in ("convolutional", "pooling", "dense"):
        rows = trainable(table, layer_class, "runtime")
        for target, kind in (
            ("runtime", FixedCostRuntimeRegressor),
            ("power", ThroughputPowerRegressor),
        ):
            model = kind(layer_class, n_estimators=10).fit(rows, rows[target])
            SkopsModelDataset(str(tmp_path / f"{layer_class}_{target}.skops")).save(model)
            calibrations.setdefault(layer_class, {})[target] = fit_conformal(
                rows[target].to_numpy(), model.predict(rows) * 1.05
            )
    (tmp_path / "domain.json").write_text(json.dumps(fit_domain(table, table["model"])))
    (tmp_path / "intervals.json").write_text(json.dumps(calibrations))
    (tmp_path / "engine.json").write_text(json.dumps(tiny_engine()))
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from power_modelling.core.networks import describe_networks\n"
        "from power_modelling.core.predictor import predict_layers\n"
        "from power_modelling.datasets import SkopsModelDataset\n"
        f"root = Path({str(tmp_path)!r})\n"
        "models = {p.stem: SkopsModelDataset(str(p)).load() for p in root.glob('*.skops')}\n"
        "layers, _, _ = describe_networks([root / 'engine.json'])\n"
        "domain = json.loads((root / 'domain.json').read_text())\n"
        "intervals = json.loads((root / 'intervals.json').read_text())\n"
        "out = predict_layers(layers, models, 100.0, domain, intervals)\n"
        "assert out['runtime_hi'].notna().sum() == 3, out\n"
        "heavy = ('sklearn', 'scipy', 'skops', 'crepes')\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_building_every_explicit_dataset_imports_no_plotting_or_fitting_library() -> None:
    """kedro-mlflow builds every explicit (non-factory) dataset of the catalog at the start of
    every run (``catalog.items()``): a chart declared explicitly imported matplotlib into each
    one-network prediction run. Heavy dataset types belong behind factory patterns."""
    code = (
        "from pathlib import Path\n"
        "from kedro.framework.session import KedroSession\n"
        "from kedro.framework.startup import bootstrap_project\n"
        f"bootstrap_project(Path({str(PROJECT_ROOT)!r}))\n"
        f"with KedroSession.create(project_path=Path({str(PROJECT_ROOT)!r})) as session:\n"
        "    catalog = session.load_context().catalog\n"
        "    names = [name for name, _ in catalog.items()]\n"
    )
    imported = _imported_after(code)
    assert not imported["matplotlib"] and not imported["sklearn"], imported
