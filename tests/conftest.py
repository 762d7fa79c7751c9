"""Shared fixtures: real Kedro sessions on small copies of the project."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

# Offline: no telemetry or analytics calls from kedro, DVC or MLflow during tests.
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BUNDLED_RAW = PROJECT_ROOT / "data" / "01_raw" / "h200_isolated_v1"
# Real TensorRT engine-inspector files (Jetson Orin, desktop GPU; Apache-2.0, see LICENSE there)
ENGINES_DIR = Path(__file__).resolve().parent / "data" / "tensorrt_engines"

# A small but real subset of the bundled H200 data: both test models of the default split that
# are cheap (lenet, resnet18) and a few training models covering every layer type.
SMALL_MODELS = ("alexnet", "lenet", "mobilenet_v3_small", "resnet18", "resnet34", "vgg11")


def make_project(
    tmp_path: Path, models: tuple[str, ...] = SMALL_MODELS, dataset: str = "h200_isolated_v1"
) -> Path:
    """Copy the project's conf and a subset of the bundled raw data into ``tmp_path``."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(PROJECT_ROOT / "pyproject.toml", project / "pyproject.toml")
    shutil.copytree(PROJECT_ROOT / "conf", project / "conf")
    (project / "conf" / "local").mkdir(exist_ok=True)
    (project / "src").mkdir()  # bootstrap_project wants a source dir; the package is installed
    raw = project / "data" / "01_raw" / dataset
    raw.mkdir(parents=True)
    shutil.copy(BUNDLED_RAW / "idling_power.json", raw / "idling_power.json")
    for model in models:
        shutil.copytree(BUNDLED_RAW / model, raw / model)
    predict = PROJECT_ROOT / "data" / "01_raw" / "predict"
    if predict.exists():
        shutil.copytree(predict, project / "data" / "01_raw" / "predict")
    return project


@pytest.fixture
def kedro_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Factory: a throw-away copy of the project (cwd), with its own sqlite MLflow store."""

    def factory(models: tuple[str, ...] = SMALL_MODELS) -> Path:
        project = make_project(tmp_path, models)
        monkeypatch.chdir(project)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'mlflow.db'}")
        monkeypatch.setenv("DO_NOT_TRACK", "true")
        return project

    return factory


def run_kedro(project: Path, pipeline: str | None = None, **runtime_params: object) -> dict:
    """Run a pipeline of ``project`` in a real KedroSession; returns the run's outputs."""
    import mlflow
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    try:
        with KedroSession.create(
            project_path=project, runtime_params=runtime_params or None
        ) as session:
            return session.run(pipeline_names=[pipeline] if pipeline else None)
    finally:  # a failed run leaves its MLflow run open; the next session must start fresh
        while mlflow.active_run() is not None:
            mlflow.end_run()
