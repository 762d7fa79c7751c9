"""Per-layer predictions, count weighting, ``other`` layers, the summary, bad engine files."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from power_modelling.core.engines import describe_layers
from power_modelling.core.predictor import predict_layers, summarise, summarise_networks
from tests.helpers import PROJECT_ROOT
from tests.standins import (
    TINY_ENERGY_MJ,
    TINY_RUNTIME_MS,
    expected_columns,
    standin_models,
    tiny_engine,
)

SHIPPED_ENGINE = PROJECT_ROOT / "data" / "01_raw" / "predict" / "jetson_orin_resnet18.json"


@pytest.fixture
def tiny_layers() -> pd.DataFrame:
    return describe_layers(tiny_engine(), "tiny.json")


def test_every_layer_is_listed_and_other_layers_have_empty_predictions(
    tiny_layers: pd.DataFrame,
) -> None:
    table = predict_layers(tiny_layers, standin_models())
    assert list(table.columns) == expected_columns(with_idle=False)
    assert list(table["layer_name"]) == ["conv1", "pool", "relu", "fc"]
    assert list(table["layer_class"]) == ["convolutional", "pooling", "other", "dense"]
    assert list(table["count"]) == [2, 1, 3, 1]
    assert table["power_prediction"].tolist()[:2] == [10.0, 2.0]
    assert table["runtime_prediction"].tolist()[:2] == [0.5, 0.1]
    assert table.loc[3, ["power_prediction", "runtime_prediction"]].tolist() == [5.0, 0.2]
    assert table.loc[2, ["power_prediction", "runtime_prediction"]].isna().all()


def test_summary_weights_every_layer_by_its_count(tiny_layers: pd.DataFrame) -> None:
    row = summarise(predict_layers(tiny_layers, standin_models()), "tiny")
    assert row["network"] == "tiny"
    assert row["layers_predicted"] == 4  # 2 conv + pool + fc
    assert row["layers_other"] == 3  # ReLU × 3
    assert row["total_runtime_ms"] == pytest.approx(TINY_RUNTIME_MS)
    assert row["energy_mj"] == pytest.approx(TINY_ENERGY_MJ)
    assert row["avg_power_w"] == pytest.approx(TINY_ENERGY_MJ / TINY_RUNTIME_MS)


def test_idle_power_adds_the_total_power_column(tiny_layers: pd.DataFrame) -> None:
    table = predict_layers(tiny_layers, standin_models(), idle_power_w=3.0)
    assert list(table.columns) == expected_columns(with_idle=True)
    assert table["power_total_prediction"].tolist()[:2] == [13.0, 5.0]
    assert np.isnan(table.loc[2, "power_total_prediction"])


def test_negative_model_outputs_are_clipped_and_logged(
    tiny_layers: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    models = standin_models()
    models["pooling_power"].constant_ = np.array([[-1.0]])
    with caplog.at_level(logging.WARNING):
        table = predict_layers(tiny_layers, models)
    assert table.loc[1, "power_prediction"] == 0.0
    assert "pooling_power: 1 negative predictions clipped" in caplog.text


def test_a_missing_model_is_named(tiny_layers: pd.DataFrame) -> None:
    models = standin_models()
    del models["dense_runtime"]
    with pytest.raises(KeyError, match="dense_runtime"):
        predict_layers(tiny_layers, models)


def test_shipped_tensorrt_engine_is_predicted_layer_by_layer() -> None:
    layers = describe_layers(json.loads(SHIPPED_ENGINE.read_text()), str(SHIPPED_ENGINE))
    table = predict_layers(layers, standin_models())
    assert len(table) == 26
    classes = table["layer_class"].value_counts().to_dict()
    assert classes == {"convolutional": 20, "pooling": 2, "dense": 1, "other": 3}
    assert table["runtime_prediction"].notna().sum() == 23


def test_many_networks_are_predicted_in_one_call_and_summarised_per_network(
    tiny_layers: pd.DataFrame,
) -> None:
    layers = pd.concat([tiny_layers.assign(network=f"net{i}") for i in range(3)], ignore_index=True)
    table = predict_layers(layers, standin_models())
    assert list(table.columns[:2]) == ["network", "layer_name"]
    assert table["network"].tolist() == [f"net{i}" for i in range(3) for _ in range(4)]
    summary = summarise_networks(table)
    assert summary["network"].tolist() == ["net0", "net1", "net2"]
    assert summary["total_runtime_ms"].tolist() == pytest.approx([TINY_RUNTIME_MS] * 3)
    assert summary["energy_mj"].tolist() == pytest.approx([TINY_ENERGY_MJ] * 3)
    assert summary["layers_other"].tolist() == [3, 3, 3]
