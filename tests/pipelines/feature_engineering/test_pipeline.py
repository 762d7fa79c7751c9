"""The feature_engineering pipeline in a real Kedro session, after ingestion and power mapping."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from power_modelling.core.layers import LAYER_CLASSES
from tests.helpers import run_kedro


@pytest.mark.integration
def test_feature_tables_from_bundled_subset(kedro_project: Callable[..., Path]) -> None:
    project = kedro_project(("lenet", "mobilenet_v3_small", "resnet18"))
    for name in ("ingestion", "power_mapping", "feature_engineering"):
        run_kedro(project, name)
    tables = {
        name: pd.read_parquet(project / "data" / "04_feature" / f"{name}.parquet")
        for name in LAYER_CLASSES
    }
    counts = {name: table.groupby("model").size().to_dict() for name, table in tables.items()}
    # unique layer configurations of the bundled engine descriptions
    assert counts["convolutional"] == {"lenet": 2, "mobilenet_v3_small": 41, "resnet18": 11}
    assert counts["pooling"] == {"lenet": 2, "mobilenet_v3_small": 7, "resnet18": 2}
    assert counts["dense"] == {"lenet": 3, "mobilenet_v3_small": 2, "resnet18": 1}
    resnet_pool = tables["pooling"].set_index(["model", "layer_name"]).loc[("resnet18", "maxpool")]
    assert resnet_pool["kernel_0"] == 3  # WindowSize, not global
    assert 0 < resnet_pool["runtime"] < 1
    for name in LAYER_CLASSES:
        train = pd.read_parquet(project / "data" / "05_model_input" / f"{name}_train.parquet")
        test = pd.read_parquet(project / "data" / "05_model_input" / f"{name}_test.parquet")
        assert set(train["model"]) == {"mobilenet_v3_small"}
        assert set(test["model"]) == {"lenet", "resnet18"}
    report = json.loads((project / "data" / "08_reporting" / "data_quality.json").read_text())
    section = report["feature_engineering"]
    assert section["_tables"]["convolutional"]["rows"] == len(tables["convolutional"])
    assert section["resnet18"]["measured_not_described"] == 0
