"""The notebooks in ``notebooks/``: committed without outputs, and executed headless (as a user
would run them, through ``%load_ext kedro.ipython``) on a small copy of the project."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import PROJECT_ROOT, make_project

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
# In the order a new user runs them: exploration first (it runs the data pipelines when their
# outputs are missing), then training and prediction.
NOTEBOOKS = ("data_exploration.ipynb", "train_and_predict.ipynb")
# Cells (by id) that draw a figure
FIGURE_CELLS = {
    "data_exploration.ipynb": {"trace-plot", "coverage", "types", "counter"},
    "train_and_predict.ipynb": {"charts", "layers"},
}
NETWORK = "jetson_orin_resnet18"  # the engine shipped in data/01_raw/predict


def _code_cells(notebook: dict) -> list[dict]:
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def _source(cell: dict) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def _text(cell: dict) -> str:
    """Everything a cell printed (stdout/stderr) or displayed as plain text."""
    parts = []
    for output in cell["outputs"]:
        if output["output_type"] == "stream":
            parts.append(_source({"source": output["text"]}))
        elif "text/plain" in output.get("data", {}):
            parts.append(_source({"source": output["data"]["text/plain"]}))
    return "".join(parts)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_is_clean(name: str) -> None:
    notebook = json.loads((NOTEBOOKS_DIR / name).read_text())
    cells = _code_cells(notebook)
    assert _source(cells[0]).strip() == "%load_ext kedro.ipython"
    for cell in cells:
        assert cell["outputs"] == [], f"{name}: cell {cell.get('id')} has outputs"
        assert cell["execution_count"] is None, f"{name}: cell {cell.get('id')} was executed"
    for cell in notebook["cells"]:
        assert not cell.get("attachments"), f"{name}: cell {cell.get('id')} has attachments"
    # data only through the catalog, pipelines only through the session
    code = "\n".join(_source(cell) for cell in cells)
    for forbidden in ("read_parquet", "read_csv", "read_json", "open(", "data/0", "KedroSession"):
        assert forbidden not in code, f"{name} uses {forbidden!r}"
    assert "catalog.load(" in code
    assert "session.run(pipeline_names=" in code


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict]]:
    """A fresh project copy (raw data only), both notebooks executed in it with nbconvert."""
    project = make_project(tmp_path_factory.mktemp("notebooks"))
    notebooks = project / "notebooks"
    notebooks.mkdir()
    for name in NOTEBOOKS:
        shutil.copy(NOTEBOOKS_DIR / name, notebooks / name)
    out_dir = project / "executed"
    env = {  # no MLFLOW_TRACKING_URI: the default store must be the project's own mlflow.db
        **{k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
        "DO_NOT_TRACK": "true",
        "KEDRO_DISABLE_TELEMETRY": "1",
    }
    results = {}
    for name in NOTEBOOKS:
        command = [
            sys.executable,
            "-m",
            "jupyter",
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            "--ExecutePreprocessor.timeout=600",
            "--output-dir",
            str(out_dir),
            name,
        ]
        done = subprocess.run(
            command,
            check=False,
            cwd=notebooks,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, f"{name} failed:\n{done.stderr[-5000:]}"
        results[name] = json.loads((out_dir / name).read_text())
    return project, results


@pytest.mark.integration
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_without_errors_and_draws_its_figures(
    executed: tuple[Path, dict[str, dict]], name: str
) -> None:
    cells = _code_cells(executed[1][name])
    errors = [
        f"{cell.get('id')}: {output['ename']}: {output['evalue']}"
        for cell in cells
        for output in cell["outputs"]
        if output["output_type"] == "error"
    ]
    assert not errors
    assert all(cell["execution_count"] is not None for cell in cells)
    with_figure = {
        cell.get("id")
        for cell in cells
        if any("image/png" in output.get("data", {}) for output in cell["outputs"])
    }
    assert with_figure == FIGURE_CELLS[name]


@pytest.mark.integration
def test_exploration_ran_the_data_pipelines_and_checks_the_counter(
    executed: tuple[Path, dict[str, dict]],
) -> None:
    project, results = executed
    cells = {cell.get("id"): cell for cell in _code_cells(results["data_exploration.ipynb"])}
    # a fresh copy has only raw data: the notebook ran ingestion -> feature_engineering itself
    assert "Not written yet: power_samples" in _text(cells["check-inputs"])
    assert sorted(p.stem for p in (project / "data/03_primary/layerwise").glob("*.parquet"))
    match = re.search(
        r"(\d+) layers: median \|mapped / counter - 1\| = ([\d.]+)%", _text(cells["counter"])
    )
    assert match, _text(cells["counter"])
    assert int(match[1]) > 50
    assert float(match[2]) < 2.0  # docs/power_mapping.md: 0.67 % on the full dataset


@pytest.mark.integration
def test_training_notebook_predicts_the_shipped_engine(
    executed: tuple[Path, dict[str, dict]],
) -> None:
    project, results = executed
    cells = {cell.get("id"): cell for cell in _code_cells(results["train_and_predict.ipynb"])}
    # the exploration notebook already wrote the training tables
    assert "nothing to run" in _text(cells["check-inputs"])
    assert "rmspe" in _text(cells["metrics"])
    match = re.search(
        rf"{NETWORK}: runtime ([\d.]+) ms, energy ([\d.]+) mJ, average dynamic power ([\d.]+) W",
        _text(cells["summary"]),
    )
    assert match, _text(cells["summary"])
    runtime_ms, energy_mj, power_w = (float(value) for value in match.groups())
    assert runtime_ms > 0
    assert energy_mj > 0
    assert power_w == pytest.approx(energy_mj / runtime_ms, rel=1e-2)
    # what the notebook printed is what the prediction pipeline wrote
    summary = pd.read_csv(project / "data/07_model_output/prediction_summary.csv")
    row = summary.set_index("network").loc[NETWORK]
    assert row["total_runtime_ms"] == pytest.approx(runtime_ms, abs=1e-4)
    assert row["energy_mj"] == pytest.approx(energy_mj, abs=1e-4)
    assert f"23 of 26 layers modelled; their energy sums to {energy_mj:.4f} mJ" in _text(
        cells["layers"]
    )


@pytest.mark.integration
def test_kernels_in_notebooks_track_to_the_project_store(
    executed: tuple[Path, dict[str, dict]],
) -> None:
    """The kernel runs in notebooks/, yet models, idle power and the default MLflow store are
    the project root's (no stray notebooks/mlflow.db or notebooks/data/)."""
    project, _ = executed
    assert not (project / "notebooks" / "mlflow.db").exists()
    assert not (project / "notebooks" / "data").exists()
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    try:
        runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    finally:
        mlflow.set_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db"))
    # run names say what ran on what: "modelling · h200_isolated_v1", "prediction · predict"
    assert {"modelling", "prediction"} <= {run.info.run_name.split(" · ")[0] for run in runs}
