"""``build_features`` on hand-checked layers of real engine files and the NVML dialect."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from power_modelling.core.engines import describe_layers
from power_modelling.core.features import (
    FEATURE_COLUMNS,
    build_features,
    classify_layers,
    dtype_bytes,
)
from tests.helpers import BUNDLED_RAW, ENGINES_DIR


def _features(path: Path) -> pd.DataFrame:
    return build_features(describe_layers(json.loads(path.read_text()), str(path)))


def _row(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame.set_index("layer_name").loc[name]


def _assert_features(row: pd.Series, expected: dict[str, float]) -> None:
    actual = {key: row[key] for key in expected}
    assert actual == pytest.approx(expected)


def _nvml_layer(layer_type: str, parameter_type: str, inp: list, out: list, **extra) -> dict:
    return {
        "Name": layer_type.lower(),
        "LayerType": layer_type,
        "ParameterType": parameter_type,
        "Inputs": [{"Dimensions": inp, "Format/Datatype": "FP16"}],
        "Outputs": [{"Dimensions": out, "Format/Datatype": "FP16"}],
        **extra,
    }


def test_tensorrt_7x7_stride2_convolution() -> None:
    row = _row(
        _features(ENGINES_DIR / "desktop_onnx_resnet18_trt_engine_info.json"),
        "/conv1/Conv + /relu/Relu",
    )
    assert row["layer_class"] == "convolutional"
    flops = 2 * 64 * 112 * 112 * 3 * 7 * 7  # 236 027 904
    moved = 3 * 224 * 224 * 4 + 64 * 112 * 112 * 4 + 9408 * 4  # FP32 tensors, Float weights
    _assert_features(
        row,
        {
            "batch_size": 1,
            "input_size_0": 3,
            "input_size_1": 224,
            "input_size_2": 224,
            "output_size_0": 64,
            "output_size_1": 112,
            "output_size_2": 112,
            "kernel_0": 7,
            "kernel_1": 7,
            "padding_0": 6,
            "padding_1": 6,
            "stride_0": 2,
            "stride_1": 2,
            "groups": 1,
            "flops": flops,
            "input_bytes": 602_112,
            "output_bytes": 3_211_264,
            "weight_bytes": 37_632,
            "arithmetic_intensity": flops / moved,
        },
    )


def test_tensorrt_3x3_stride2_max_pool_uses_window_size() -> None:
    frame = _features(ENGINES_DIR / "jetson_orin_resnet18_trt_engine_info.json")
    row = frame[frame["pooling_type"] == "MAX"].iloc[0]
    assert row["layer_class"] == "pooling"
    _assert_features(
        row,
        {
            "batch_size": 1,
            "input_size_0": 64,
            "input_size_1": 112,
            "input_size_2": 112,
            "output_size_0": 64,
            "output_size_1": 56,
            "output_size_2": 56,
            "kernel_0": 3,  # WindowSize, not the input size
            "kernel_1": 3,
            "stride_0": 2,
            "stride_1": 2,
            "flops": 64 * 56 * 56 * 9,
            "input_bytes": 64 * 112 * 112 * 2,  # Channel major FP16
            "output_bytes": 64 * 56 * 56 * 2,
            "weight_bytes": 0,
        },
    )
    assert np.isnan(row["padding_0"])  # pooling has no padding feature


def test_tensorrt_final_fully_connected_is_dense() -> None:
    frame = _features(ENGINES_DIR / "jetson_orin_resnet18_trt_engine_info.json")
    row = frame[frame["layer_type"] == "CaskGemmConvolution"].iloc[0]
    assert row["layer_class"] == "dense"
    _assert_features(
        row,
        {
            "batch_size": 1,
            "input_size": 512,
            "output_size": 1000,
            "gemm_m": 1,
            "gemm_k": 512,
            "gemm_n": 1000,
            "flops": 2 * 512 * 1000,
            "input_bytes": 1024,
            "output_bytes": 2000,
            "weight_bytes": 512_000 * 2,  # Half
        },
    )
    assert np.isnan(row["kernel_0"])  # conv geometry is not a dense feature


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "desktop_onnx_alexnet_trt_engine_info.json",
            {"convolutional": 5, "pooling": 3, "dense": 3, "other": 6},
        ),
        (
            "desktop_onnx_resnet18_trt_engine_info.json",
            {"convolutional": 20, "pooling": 2, "dense": 1, "other": 6},
        ),
        (
            "jetson_orin_resnet18_trt_engine_info.json",
            {"convolutional": 20, "pooling": 2, "dense": 1, "other": 3},
        ),
    ],
)
def test_real_engines_classify(name: str, expected: dict[str, int]) -> None:
    frame = _features(ENGINES_DIR / name)
    assert frame["layer_class"].value_counts().to_dict() == expected
    other = frame[frame["layer_class"] == "other"]
    assert set(other["layer_type"]) <= {"Reformat", "NoOp"}
    specific = [c for c in FEATURE_COLUMNS["convolutional"] if c != "groups"]
    assert other[specific].isna().all().all()


def test_depthwise_convolution_does_c_times_less_work() -> None:
    frame = _features(BUNDLED_RAW / "mobilenet_v2" / "trt_profiling" / "trt_engine_info.json")
    row = _row(frame, "features.1.conv.0.0")  # 3x3 depthwise, 32 channels, 112x112
    _assert_features(
        row,
        {
            "groups": 32,
            "input_size_0": 32,
            "output_size_0": 32,
            "flops": 2 * 32 * 112 * 112 * 9,  # C = 32 times less than a dense 3x3
            "weight_bytes": 32 * 9 * 2,
            "input_bytes": 32 * 112 * 112 * 2,
        },
    )


def test_nvml_grouped_conv_linear_4d_and_adaptive_pool() -> None:
    engine = {
        "Layers": [
            _nvml_layer(
                "Conv2d",
                "Convolution",
                [1, 128, 56, 56],
                [1, 128, 56, 56],
                Kernel=[3, 3],
                PrePadding=[1, 1],
                PostPadding=[1, 1],
                Stride=[1, 1],
                OutMaps=128,
                Groups=32,
                Count=3,
            ),
            _nvml_layer(
                "Linear",
                "MatrixMultiply",
                [1, 56, 56, 96],
                [1, 56, 56, 384],
                InFeatures=96,
                OutMaps=384,
            ),
            _nvml_layer("AdaptiveAvgPool2d", "Pooling", [1, 512, 7, 7], [1, 512, 1, 1], Adaptive=1),
        ]
    }
    conv, linear, pool = (row for _, row in build_features(describe_layers(engine, "e")).iterrows())
    assert [conv["layer_class"], linear["layer_class"], pool["layer_class"]] == [
        "convolutional",
        "dense",
        "pooling",
    ]
    _assert_features(
        conv,
        {"groups": 32, "padding_0": 2, "flops": 2 * 128 * 56 * 56 * 4 * 9, "count": 3},
    )
    assert conv["weight_bytes"] == 128 * 4 * 9 * 2
    _assert_features(
        linear,
        {
            "batch_size": 1,
            "input_size": 56 * 56 * 96,
            "output_size": 56 * 56 * 384,
            "gemm_m": 3136,  # N*H*W
            "gemm_k": 96,
            "gemm_n": 384,
            "flops": 2 * 3136 * 96 * 384,
            "weight_bytes": 96 * 384 * 2,
        },
    )
    _assert_features(  # no WindowSize: global pooling over the 7x7 input
        pool, {"kernel_0": 7, "kernel_1": 7, "stride_0": 7, "stride_1": 7, "flops": 512 * 49}
    )


def test_classification_rules() -> None:
    frame = pd.DataFrame(
        {
            "layer_type": ["CaskConvolution", "CaskGemmConvolution", "Linear", "gemm", "kgen"]
            + ["Reformat", "MaxPool2d", "CaskConvolution", "Conv2d"],
            "parameter_type": ["Convolution", "Convolution", None, None, None]
            + ["Reformat", "Pooling", None, None],
            "kernel": [[3, 3], [1, 1], None, None, None, None, [2, 2], [3, 3], None],
        }
    )
    assert classify_layers(frame).tolist() == [
        "convolutional",
        "dense",
        "dense",
        "other",
        "other",
        "other",
        "pooling",
        "convolutional",  # no ParameterType: named a convolution and has a kernel
        "other",  # named a convolution but no geometry
    ]


def test_dtype_bytes(caplog: pytest.LogCaptureFixture) -> None:
    names = pd.Series(
        [
            "Row major linear FP16 format",
            "Channel major FP32 format where channel % 4 == 0",
            "FP16",
            "Half",
            "Float",
            "INT8",
            "Int8",
            "FP32",
            "BF16",
            "Row major linear FP32",
            None,
            "Mystery",
        ]
    )
    with caplog.at_level(logging.WARNING):
        sizes = dtype_bytes(names).tolist()
    assert sizes == [2, 4, 2, 2, 4, 1, 1, 4, 2, 4, 4, 4]
    assert caplog.text == ""  # build_features warns, naming the layers


def test_unknown_data_types_are_one_warning_naming_model_layer_and_tensor(
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = BUNDLED_RAW / "resnet18" / "trt_profiling" / "trt_engine_info.json"
    resnet = describe_layers(json.loads(path.read_text()), str(path))
    conv, pool, dense = (
        resnet.index[resnet["parameter_type"].str.lower() == kind][0]
        for kind in ("convolution", "pooling", "matrixmultiply")
    )
    lenet = resnet.assign(model="lenet")
    lenet.loc[[conv, pool, dense], "input_dtype"] = None  # weights default to the input's
    lenet.loc[dense, "output_dtype"] = "Mystery"
    descriptions = pd.concat([resnet.assign(model="resnet18"), lenet], ignore_index=True)
    with caplog.at_level(logging.WARNING, logger="power_modelling.core.features"):
        build_features(descriptions)
    names = resnet["layer_name"]
    assert caplog.messages == [
        "Data type ('Mystery', missing) missing or unrecognised in 3 layer(s), assuming 4 bytes "
        f"per element for their byte features: lenet: {names[conv]} (input, weights), "
        f"{names[pool]} (input, weights), {names[dense]} (input, output, weights)"
    ]


def test_features_survive_a_parquet_round_trip(tmp_path: Path) -> None:
    path = BUNDLED_RAW / "resnet18" / "trt_profiling" / "trt_engine_info.json"
    descriptions = describe_layers(json.loads(path.read_text()), str(path))
    descriptions.to_parquet(tmp_path / "d.parquet")
    reloaded = build_features(pd.read_parquet(tmp_path / "d.parquet"))
    direct = build_features(descriptions)
    columns = ["layer_class", *FEATURE_COLUMNS["convolutional"], "gemm_m"]
    pd.testing.assert_frame_equal(reloaded[columns], direct[columns], check_dtype=False)


@given(
    channels_per_group=st.integers(1, 16),
    groups=st.integers(1, 8),
    size=st.integers(1, 64),
    kernel=st.integers(1, 7),
    stride=st.integers(1, 3),
)
@settings(max_examples=40, deadline=None)
def test_grouped_convolution_work_scales_with_groups(
    channels_per_group: int, groups: int, size: int, kernel: int, stride: int
) -> None:
    channels = channels_per_group * groups
    out = (size - 1) // stride + 1
    layer = _nvml_layer(
        "Conv2d",
        "Convolution",
        [2, channels, size, size],
        [2, channels, out, out],
        Kernel=[kernel, kernel],
        Stride=[stride, stride],
    )
    grouped, dense = (
        build_features(describe_layers({"Layers": [{**layer, "Groups": g}]}, "p")).iloc[0]
        for g in (groups, 1)
    )
    assert grouped["flops"] * groups == pytest.approx(dense["flops"])
    assert grouped["weight_bytes"] * groups == pytest.approx(dense["weight_bytes"])
    moved = grouped["input_bytes"] + grouped["output_bytes"] + grouped["weight_bytes"]
    assert grouped["arithmetic_intensity"] == pytest.approx(grouped["flops"] / moved)
