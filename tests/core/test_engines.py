"""Tests of ``describe_layers`` on real engine files and hand-made layers."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from power_modelling.core.engines import DESCRIPTION_COLUMNS, describe_layers
from tests.helpers import BUNDLED_RAW, ENGINES_DIR

ENGINE_FILES = sorted(ENGINES_DIR.glob("*.json"))
NVML_FILES = sorted(BUNDLED_RAW.glob("*/trt_profiling/trt_engine_info.json"))


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _layer(**extra: object) -> dict:
    layer = {
        "Name": "conv",
        "LayerType": "Conv2d",
        "Inputs": [{"Dimensions": [1, 3, 8, 8], "Format/Datatype": "FP16"}],
        "Outputs": [{"Dimensions": [1, 4, 8, 8], "Format/Datatype": "FP16"}],
    }
    layer.update(extra)
    return layer


@pytest.mark.parametrize("path", ENGINE_FILES + NVML_FILES, ids=lambda p: p.parent.parent.name)
def test_every_real_engine_is_described(path: Path) -> None:
    engine = _load(path)
    frame = describe_layers(engine, str(path))
    assert list(frame.columns) == list(DESCRIPTION_COLUMNS)
    assert len(frame) == len(engine["Layers"])
    assert frame["input_dims"].map(len).ge(2).all()


def test_tensorrt_convolution_and_pooling_fields() -> None:
    path = ENGINES_DIR / "desktop_onnx_resnet18_trt_engine_info.json"
    frame = describe_layers(_load(path), str(path)).set_index("layer_name")
    conv = frame.loc["/conv1/Conv + /relu/Relu"]
    assert conv["layer_type"] == "CaskConvolution"
    assert conv["parameter_type"] == "Convolution"
    assert conv["input_dims"] == [1, 3, 224, 224]
    assert conv["output_dims"] == [1, 64, 112, 112]
    assert conv["kernel"] == [7, 7]
    assert conv["stride"] == [2, 2]
    assert conv["pre_padding"] == [3, 3]
    assert conv["weights_dtype"] == "Float"
    assert conv["weights_count"] == 9408
    assert conv["input_dtype"] == "Channel major FP32 format where channel % 4 == 0"
    assert conv["count"] == 1
    pool = frame.loc["/maxpool/MaxPool"]
    assert pool["kernel"] == [3, 3]  # from WindowSize
    assert pool["pooling_type"] == "MAX"
    noop = frame[frame["layer_type"] == "NoOp"].iloc[0]
    assert pd.isna(noop["parameter_type"])


def test_nvml_dialect_fields() -> None:
    path = BUNDLED_RAW / "convnext_tiny" / "trt_profiling" / "trt_engine_info.json"
    frame = describe_layers(_load(path), str(path)).set_index("layer_name")
    linear = frame.loc["features.1.0.block.3"]
    assert linear["input_dims"] == [1, 56, 56, 96]
    assert linear["in_features"] == 96
    assert linear["out_maps"] == 384
    assert linear["count"] == 3
    depthwise = frame.loc["features.1.0.block.0"]
    assert depthwise["groups"] == 96
    pool = describe_layers(
        {"Layers": [_layer(LayerType="AdaptiveAvgPool2d", ParameterType="Pooling", Adaptive=1)]},
        "x.json",
    ).iloc[0]
    assert bool(pool["adaptive"]) is True
    assert pool["kernel"] is None


def test_defaults_for_missing_fields() -> None:
    row = describe_layers({"Layers": [_layer(LayerType=None)]}, "x.json").iloc[0]
    assert row["layer_type"] == "Unknown"
    assert row["groups"] == 1
    assert row["count"] == 1
    assert pd.isna(row["weights_count"])


def test_empty_engine_gives_empty_frame_with_schema() -> None:
    frame = describe_layers({"Layers": []}, "x.json")
    assert frame.empty
    assert list(frame.columns) == list(DESCRIPTION_COLUMNS)


@pytest.mark.parametrize("engine", [{}, {"Bindings": []}, {"Layers": "nope"}, []])
def test_engine_without_layers_names_the_source(engine: object) -> None:
    with pytest.raises(ValueError, match=r"models/a\.json.*Layers"):
        describe_layers(engine, "models/a.json")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("layer", "where"),
    [
        (_layer(Inputs=[]), "Inputs"),
        (_layer(Outputs=[{"Name": "y"}]), "Outputs"),
        ({"Name": "conv", "LayerType": "Conv2d"}, "Inputs"),
    ],
)
def test_layer_without_dimensions_names_source_and_layer(layer: dict, where: str) -> None:
    with pytest.raises(ValueError, match=rf"b\.json: layer 'conv' has no {where}"):
        describe_layers({"Layers": [layer]}, "b.json")


def test_layer_summary_string_is_rejected_with_hint() -> None:
    with pytest.raises(ValueError, match=r"c\.json: layer #0 .*detailed"):
        describe_layers({"Layers": ["conv1 + relu"]}, "c.json")


def test_non_integer_geometry_names_the_layer() -> None:
    with pytest.raises(ValueError, match=r"d\.json: layer 'conv': Stride"):
        describe_layers({"Layers": [_layer(Stride=["a", 1])]}, "d.json")
