"""Shared fixtures: real Kedro sessions on small copies of the project."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

# Offline: no telemetry or analytics calls from kedro, DVC or MLflow during tests.
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import pandas as pd  # noqa: E402

from tests.helpers import SMALL_MODELS, make_project  # noqa: E402
from tests.synthetic import synthetic_conv_table  # noqa: E402


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


@pytest.fixture
def conv_table() -> pd.DataFrame:
    """A synthetic convolutional feature table with known generating formulas."""
    return synthetic_conv_table()
