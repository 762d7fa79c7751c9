"""Helpers shared by the tests: the project's paths and small real copies of the project.

A module of its own (not conftest.py, which pytest owns): tests import these names from here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

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
    for name in ("idling_power.json", "device.json"):
        shutil.copy(BUNDLED_RAW / name, raw / name)
    for model in models:
        shutil.copytree(BUNDLED_RAW / model, raw / model)
    predict = PROJECT_ROOT / "data" / "01_raw" / "predict"
    if predict.exists():
        shutil.copytree(predict, project / "data" / "01_raw" / "predict")
    return project


def run_kedro(
    project: Path, pipeline: str | None = None, env: str | None = None, **runtime_params: object
) -> dict:
    """Run a pipeline of ``project`` in a real KedroSession (configuration environment
    ``env``, default ``local``); returns the run's outputs."""
    import mlflow
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    try:
        with KedroSession.create(
            project_path=project, env=env, runtime_params=runtime_params or None
        ) as session:
            return session.run(pipeline_names=[pipeline] if pipeline else None)
    finally:  # a failed run leaves its MLflow run open; the next session must start fresh
        while mlflow.active_run() is not None:
            mlflow.end_run()
