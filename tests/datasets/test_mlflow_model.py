"""kedro-mlflow's model-logging dataset, answering exists() instead of warning."""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from power_modelling.datasets import MlflowLoggedModelDataset


def test_exists_once_a_model_is_logged_or_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("logged-model")
    dataset = MlflowLoggedModelDataset(
        flavor="mlflow.sklearn",
        save_args={
            "name": "m",
            "pip_requirements": ["scikit-learn"],
            "serialization_format": "cloudpickle",
        },
    )
    with caplog.at_level(logging.WARNING):
        assert not dataset.exists()
        with mlflow.start_run():
            dataset.save(LinearRegression().fit(np.arange(4.0).reshape(2, 2), [1.0, 2.0]))
        assert dataset.exists()
    assert "not implemented" not in caplog.text
    assert dataset.load().predict(np.zeros((1, 2))).shape == (1,)
    named = MlflowLoggedModelDataset(
        flavor="mlflow.sklearn", load_args={"model_uri": dataset.model_info.model_uri}
    )
    assert named.exists()
