"""The shared inference node: what the prediction pipeline, the served model and the network
evaluation all run."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from power_modelling.core.engines import describe_layers
from power_modelling.core.predictor import as_layer_descriptions, predict_layers
from power_modelling.pipelines.inference.nodes import predict_layers as inference_node
from tests.standins import standin_models, tiny_engine


@pytest.fixture
def tiny_layers() -> pd.DataFrame:
    return describe_layers(tiny_engine(), "tiny.json")


def test_served_input_accepts_parquet_and_json_round_trips(
    tiny_layers: pd.DataFrame, tmp_path: Path
) -> None:
    tiny_layers.to_parquet(tmp_path / "layers.parquet")
    from_parquet = pd.read_parquet(tmp_path / "layers.parquet")  # lists → numpy arrays
    from_json = pd.DataFrame(json.loads(tiny_layers.to_json(orient="records")))
    minimal = tiny_layers[["layer_name", "layer_type", "parameter_type", "input_dims"]].assign(
        output_dims=tiny_layers["output_dims"], kernel=tiny_layers["kernel"]
    )
    expected = predict_layers(tiny_layers, standin_models())
    for layers in (from_parquet, from_json):
        served = inference_node(layers, None, **standin_models())
        pd.testing.assert_frame_equal(served, expected)
    served = inference_node(minimal, {"avg_idle_power_uw": 3e6}, **standin_models())
    assert served["power_total_prediction"].tolist()[0] == 13.0
    with pytest.raises(ValueError, match=r"lack column\(s\) \['output_dims'\]"):
        as_layer_descriptions(tiny_layers[["layer_name", "input_dims"]])
