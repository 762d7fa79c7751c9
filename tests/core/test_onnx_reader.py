"""Tests of ``describe_onnx``: the 20 bundled CNNs against their engine files, hand-made graphs
(dynamic batch, auto padding, other ops) and bad input."""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from power_modelling.core.engines import DESCRIPTION_COLUMNS, describe_layers
from power_modelling.core.features import (
    ALL_FEATURE_COLUMNS,
    FEATURE_COLUMNS,
    build_features,
    dtype_bytes,
)
from power_modelling.core.layers import LAYER_CLASSES, model_key
from power_modelling.core.onnx_reader import (
    MAX_OPSET,
    MIN_OPSET,
    describe_onnx,
    module_path,
    onnx_engine,
)
from power_modelling.core.predictor import predict_layers
from tests.helpers import BUNDLED_RAW, ENGINES_DIR, PROJECT_ROOT

ONNX_DIR = Path(__file__).resolve().parents[1] / "data" / "onnx_models"
# The original exports (mobilenet_v3_small with its weights inline), outside the repository.
SHARED_ONNX_DIR = PROJECT_ROOT.parent / "shared" / "datasets" / "onnx_models"
BUNDLED_CNNS = sorted(p.parent.parent.name for p in BUNDLED_RAW.glob("*/trt_profiling/*_info.json"))
# Pooling written as a function call in the PyTorch source: a node of the ONNX graph, absent
# from the engine files (recorded per module). Every other predicted layer is in both.
FUNCTIONAL_POOLING = {"mobilenet_v2": {"/GlobalAveragePool"}}
# adaptive_avg_pool2d to the input's own size is exported as a plain AveragePool (1x1 window):
# same window, stride and features, but ONNX no longer says it was adaptive.
ADAPTIVE_AS_AVERAGEPOOL = {"alexnet", "vgg11", "vgg13", "vgg16", "vgg19"}
# What the engine files and the ONNX path must agree on, per predicted layer.
COMPARED = [
    "parameter_type",
    "input_dims",
    "output_dims",
    "input_dtype",
    "output_dtype",
    "kernel",
    "pre_padding",
    "post_padding",
    "stride",
    "dilation",
    "groups",
    "out_maps",
    "in_features",
    "pooling_type",
    "count",
    "layer_class",
]


@cache
def _onnx_features(model: str, precision: str = "FP16") -> pd.DataFrame:
    path = ONNX_DIR / f"{model}.onnx"
    descriptions, _ = describe_onnx(path, path.name, precision=precision)
    return build_features(descriptions).set_index("layer_name")


@cache
def _engine_features(model: str) -> pd.DataFrame:
    path = BUNDLED_RAW / model / "trt_profiling" / "trt_engine_info.json"
    return build_features(describe_layers(json.loads(path.read_text()), str(path))).set_index(
        "layer_name"
    )


def _predicted(features: pd.DataFrame) -> pd.DataFrame:
    return features[features["layer_class"] != "other"]


def _records(frame: pd.DataFrame, columns: list[str]) -> dict[str, tuple]:
    """``{layer: values}`` with missing values as ``None`` (``pd.NA`` never compares)."""
    return {
        name: tuple(None if not isinstance(v, list) and pd.isna(v) else v for v in row)
        for name, row in zip(frame.index, frame[columns].itertuples(index=False), strict=True)
    }


# ----------------------------------------------------------------------------- the bundled CNNs
def test_every_bundled_cnn_has_an_onnx_file() -> None:
    assert len(BUNDLED_CNNS) == 20
    assert sorted(p.stem for p in ONNX_DIR.glob("*.onnx")) == BUNDLED_CNNS


@pytest.mark.parametrize("model", BUNDLED_CNNS)
def test_layers_equal_those_of_the_engine(model: str) -> None:
    onnx_layers, engine = _predicted(_onnx_features(model)), _engine_features(model)
    assert (engine["layer_class"] != "other").all()  # the engine files list modelled layers only
    assert set(onnx_layers.index) - set(engine.index) == FUNCTIONAL_POOLING.get(model, set())
    assert set(engine.index) <= set(onnx_layers.index)
    common = onnx_layers.loc[engine.index]
    assert _records(common, COMPARED) == _records(engine, COMPARED)
    adaptive_differs = set(engine.index[common["adaptive"].to_numpy() != engine["adaptive"]])
    assert adaptive_differs == ({"avgpool"} if model in ADAPTIVE_AS_AVERAGEPOOL else set())


@pytest.mark.parametrize("model", BUNDLED_CNNS)
def test_features_equal_those_of_the_engine(model: str) -> None:
    engine = _engine_features(model)
    columns = ["layer_class", *ALL_FEATURE_COLUMNS]
    onnx_rows = _onnx_features(model).loc[engine.index, columns]
    pd.testing.assert_frame_equal(onnx_rows, engine[columns], check_dtype=False)


class _StandIn:
    """A fixed linear function of one class's feature columns, in place of a fitted model."""

    def __init__(self, columns: list[str], seed: int) -> None:
        self.columns = columns
        self.weights = np.random.default_rng(seed).uniform(0.1, 1.0, len(columns))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        values = X[self.columns].astype("float64").fillna(0.0).to_numpy()
        return np.log1p(np.abs(values)) @ self.weights


STAND_INS = {
    model_key(layer_class, target): _StandIn(FEATURE_COLUMNS[layer_class], seed)
    for seed, (layer_class, target) in enumerate(
        (c, t) for c in LAYER_CLASSES for t in ("power", "runtime")
    )
}


@pytest.mark.parametrize("model", BUNDLED_CNNS)
def test_predictions_equal_those_of_the_engine(model: str) -> None:
    path = BUNDLED_RAW / model / "trt_profiling" / "trt_engine_info.json"
    engine = predict_layers(describe_layers(json.loads(path.read_text()), str(path)), STAND_INS)
    descriptions, _ = describe_onnx(ONNX_DIR / f"{model}.onnx", f"{model}.onnx")
    from_onnx = predict_layers(descriptions, STAND_INS).set_index("layer_name")
    columns = ["count", "power_prediction", "runtime_prediction"]
    pd.testing.assert_frame_equal(
        from_onnx.loc[engine["layer_name"], columns], engine.set_index("layer_name")[columns]
    )
    predicted = from_onnx[from_onnx["runtime_prediction"].notna()]
    assert set(predicted.index) == set(engine["layer_name"]) | FUNCTIONAL_POOLING.get(model, set())


@pytest.mark.parametrize("model", ["alexnet", "resnet18"])
def test_features_equal_those_of_a_real_tensorrt_engine(model: str) -> None:
    """The desktop engines in tests/data were built by TensorRT from ONNX exports of the same
    networks (FP32, fused activations, named after the ONNX nodes, nothing merged): each
    convolution / pooling / GEMM-convolution has the features of its ONNX layer. Known
    difference: TensorRT writes stride 1 for a global pooling, the bundled engine files (the
    training data) and the ONNX path stride = window."""
    path = ENGINES_DIR / f"desktop_onnx_{model}_trt_engine_info.json"
    engine = build_features(describe_layers(json.loads(path.read_text()), str(path)))
    engine = engine[engine["layer_class"] != "other"]
    layers, _ = onnx_engine(ONNX_DIR / f"{model}.onnx", f"{model}.onnx", precision="FP32")
    instance_of = {
        name: layer["Name"] for layer in layers["Layers"] for name in layer["InstanceNames"]
    }
    from_onnx = _onnx_features(model, "FP32")
    columns = ["layer_class", *ALL_FEATURE_COLUMNS]
    differences = {}
    for _, layer in engine.iterrows():
        module = module_path(layer["layer_name"].split(" + ")[0])  # the first fused node
        ours = from_onnx.loc[instance_of[module], columns]
        differs = [
            c
            for c in columns
            if not (ours[c] == layer[c] or pd.isna(ours[c]) and pd.isna(layer[c]))
        ]
        if differs:
            differences[module] = differs
    assert len(engine) == {"alexnet": 11, "resnet18": 23}[model]
    assert differences == ({"avgpool": ["stride_0", "stride_1"]} if model == "resnet18" else {})


def test_functional_pooling_of_mobilenet_v2_is_a_global_average_pooling() -> None:
    pool = _onnx_features("mobilenet_v2").loc["/GlobalAveragePool"]
    assert pool["layer_type"] == "GlobalAveragePool"
    assert pool["layer_class"] == "pooling"
    assert pool["input_dims"] == [1, 1280, 7, 7]
    assert pool["output_dims"] == [1, 1280, 1, 1]
    assert (pool["kernel"], pool["stride"], pool["pre_padding"]) == ([7, 7], [7, 7], [0, 0])
    assert (pool["pooling_type"], bool(pool["adaptive"])) == ("AVERAGE", True)


def test_table_has_the_engine_schema() -> None:
    onnx_table, _ = describe_onnx(ONNX_DIR / "resnet18.onnx", "resnet18.onnx")
    path = BUNDLED_RAW / "resnet18" / "trt_profiling" / "trt_engine_info.json"
    engine_table = describe_layers(json.loads(path.read_text()), str(path))
    assert list(onnx_table.columns) == list(DESCRIPTION_COLUMNS)
    pd.testing.assert_series_equal(onnx_table.dtypes, engine_table.dtypes)


def test_resnet18_rows() -> None:
    table, info = describe_onnx(ONNX_DIR / "resnet18.onnx", "resnet18.onnx")
    assert info == {
        "batch_size": 1,
        "batch_source": "graph",
        "precision": "FP16",
        "opset": 17,
        "producer": "pytorch 2.15.0",
    }
    rows = table.set_index("layer_name")
    conv = rows.loc["layer1.0.conv1"]
    assert conv["layer_type"] == "Conv"
    assert conv["count"] == 4  # layer1.{0,1}.conv{1,2}: one configuration, as in the engine
    assert conv["weights_count"] == 64 * 64 * 3 * 3
    assert conv["weights_dtype"] == "FP16"
    fc = rows.loc["fc"]
    assert (fc["layer_type"], fc["in_features"], fc["out_maps"]) == ("Gemm", 512, 1000)
    assert fc["input_dims"] == [1, 512]
    # Functional ops keep their module (or node) name; residual Adds of equal shape merge.
    assert rows.loc["layer1.0", "layer_type"] == "Add"
    assert rows.loc["layer1.0", "count"] == 2
    assert rows.loc["/Flatten", "layer_type"] == "Flatten"
    # Weights reached through Identity nodes and the Identity nodes themselves are folded.
    assert "Identity" not in set(table["layer_type"])
    assert table["layer_name"].is_unique


def test_linear_on_4d_input_is_dense_and_its_bias_add_is_other() -> None:
    rows = _onnx_features("convnext_tiny")
    linear = rows.loc["features.1.0.block.3"]
    assert (linear["layer_type"], linear["layer_class"]) == ("MatMul", "dense")
    assert linear["input_dims"] == [1, 56, 56, 96]
    assert (linear["in_features"], linear["out_maps"], linear["count"]) == (96, 384, 3)
    bias = rows.loc["features.1.0.block.3/Add"]
    assert (bias["layer_type"], bias["layer_class"]) == ("Add", "other")
    assert rows.index.is_unique


def test_weights_inline_and_stripped_read_alike() -> None:
    inline = onnx.load(ONNX_DIR / "lenet.onnx", load_external_data=False).graph.initializer
    stripped = onnx.load(ONNX_DIR / "vgg11.onnx", load_external_data=False).graph.initializer
    assert {t.data_location for t in inline} == {TensorProto.DEFAULT}
    assert {t.data_location for t in stripped} == {TensorProto.EXTERNAL}
    assert not list(ONNX_DIR.glob("*.weights"))  # the external data really is absent
    from_path, _ = describe_onnx(ONNX_DIR / "lenet.onnx", "lenet.onnx")
    from_bytes, _ = describe_onnx((ONNX_DIR / "lenet.onnx").read_bytes(), "lenet.onnx")
    pd.testing.assert_frame_equal(from_path, from_bytes)


def test_shared_inline_original_reads_as_its_stripped_copy() -> None:
    original = SHARED_ONNX_DIR / "mobilenet_v3_small.onnx"
    if not original.exists():
        pytest.skip(f"{original} (the shared ONNX exports, outside the repository) is absent")
    inline, _ = describe_onnx(original, str(original))
    stripped, _ = describe_onnx(ONNX_DIR / "mobilenet_v3_small.onnx", "stripped copy")
    pd.testing.assert_frame_equal(inline, stripped)


def test_engine_dialect_round_trips_through_json() -> None:
    engine, _ = onnx_engine(ONNX_DIR / "alexnet.onnx", "alexnet.onnx")
    again = describe_layers(json.loads(json.dumps(engine)), "alexnet.json")
    table, _ = describe_onnx(ONNX_DIR / "alexnet.onnx", "alexnet.onnx")
    pd.testing.assert_frame_equal(again, table)
    conv = engine["Layers"][0]
    assert conv["InstanceNames"] == ["features.0"]


# ----------------------------------------------------------------------------- hand-made graphs
def _model(
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    initializers: dict[str, tuple[int, ...]] | None = None,
    opset: int = 17,
) -> bytes:
    inits = [
        numpy_helper.from_array(np.zeros(shape, np.float32), name)
        for name, shape in (initializers or {}).items()
    ]
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model.SerializeToString()


def _value(name: str, dims: list[int | str], elem_type: int = TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem_type, dims)


def _conv_gemm(batch: int | str) -> bytes:
    """Conv 3→4 (3x3, pad 1) → Flatten → Gemm 256→10, on a [batch, 3, 8, 8] input."""
    return _model(
        [
            helper.make_node(
                "Conv", ["x", "w"], ["c"], "/conv/Conv", kernel_shape=[3, 3], pads=[1] * 4
            ),
            helper.make_node("Flatten", ["c"], ["f"], "/Flatten"),
            helper.make_node("Gemm", ["f", "fc.w"], ["y"], "/fc/Gemm", transB=1),
        ],
        [_value("x", [batch, 3, 8, 8])],
        [_value("y", [batch, 10])],
        {"w": (4, 3, 3, 3), "fc.w": (10, 256)},
    )


def test_symbolic_batch_takes_the_parameter_and_says_so() -> None:
    table, info = describe_onnx(_conv_gemm("N"), "dynamic.onnx")
    assert (info["batch_size"], info["batch_source"]) == (1, "parameter")  # the default
    table, info = describe_onnx(_conv_gemm("N"), "dynamic.onnx", batch_size=8)
    assert (info["batch_size"], info["batch_source"]) == (8, "parameter")
    rows = table.set_index("layer_name")
    assert rows.loc["conv", "input_dims"] == [8, 3, 8, 8]
    assert rows.loc["conv", "output_dims"] == [8, 4, 8, 8]
    assert rows.loc["fc", "input_dims"] == [8, 256]
    assert rows.loc["fc", "output_dims"] == [8, 10]  # the declared output's "N" too


def test_fixed_batch_comes_from_the_graph() -> None:
    table, info = describe_onnx(_conv_gemm(2), "fixed.onnx", batch_size=8)
    assert (info["batch_size"], info["batch_source"]) == (2, "graph")
    assert table.set_index("layer_name").loc["conv", "input_dims"] == [2, 3, 8, 8]


def test_dynamic_batch_export_with_shape_arithmetic() -> None:
    """torch.onnx with dynamic axes writes Shape → Gather → Concat → Reshape for a view():
    with the batch fixed, those are folded (not layers) and the Gemm gets static shapes."""
    index = helper.make_tensor("zero", TensorProto.INT64, [1], [0])
    minus_one = helper.make_tensor("minus_one", TensorProto.INT64, [1], [-1])
    model = _model(
        [
            helper.make_node("Shape", ["x"], ["s"], "/Shape"),
            helper.make_node("Constant", [], ["i"], "/Constant", value=index),
            helper.make_node("Constant", [], ["m"], "/Constant_1", value=minus_one),
            helper.make_node("Gather", ["s", "i"], ["n"], "/Gather", axis=0),
            helper.make_node("Concat", ["n", "m"], ["shape"], "/Concat", axis=0),
            helper.make_node("Reshape", ["x", "shape"], ["f"], "/Reshape"),
            helper.make_node("Gemm", ["f", "fc.w"], ["y"], "/fc/Gemm", transB=1),
        ],
        [_value("x", ["batch", 3, 4, 4])],
        [_value("y", ["batch", 5])],
        {"fc.w": (5, 48)},
    )
    table, info = describe_onnx(model, "view.onnx", batch_size=4)
    assert list(table["layer_type"]) == ["Reshape", "Gemm"]
    fc = table.set_index("layer_name").loc["fc"]
    assert (fc["input_dims"], fc["output_dims"], fc["in_features"]) == ([4, 48], [4, 5], 48)


@pytest.mark.parametrize(
    ("precision", "written", "size"),
    [("FP16", "FP16", 2), ("fp32", "FP32", 4), ("INT8", "INT8", 1)],
)
def test_precision_is_the_data_type_of_floating_tensors(
    precision: str, written: str, size: float
) -> None:
    table, info = describe_onnx(_conv_gemm(1), "m.onnx", precision=precision)
    assert info["precision"] == written
    assert set(table["input_dtype"]) == {written}
    assert set(table["weights_dtype"].dropna()) == {written}
    assert set(dtype_bytes(table["output_dtype"])) == {size}


def test_integer_tensors_keep_their_type() -> None:
    model = _model(
        [helper.make_node("Cast", ["x"], ["y"], "/Cast", to=TensorProto.FLOAT)],
        [_value("x", [1, 4], TensorProto.INT64)],
        [_value("y", [1, 4])],
    )
    row = describe_onnx(model, "cast.onnx")[0].iloc[0]
    assert (row["input_dtype"], row["output_dtype"]) == ("INT64", "FP16")


def test_other_ops_classify_as_other() -> None:
    """Ops outside the mapping are ``other`` even when their name looks like a conv or pool."""
    model = _model(
        [
            helper.make_node(
                "ConvTranspose", ["x", "wt"], ["a"], "/up/ConvTranspose", kernel_shape=[2, 2]
            ),
            helper.make_node("LpPool", ["a"], ["b"], "/lp/LpPool", kernel_shape=[2, 2]),
            helper.make_node("GlobalLpPool", ["b"], ["c"], "/glp/GlobalLpPool"),
            helper.make_node("Flatten", ["c"], ["d"], "/Flatten"),
            helper.make_node("MatMul", ["d", "d2"], ["y"], "/bmm/MatMul"),  # two activations
        ],
        [_value("x", [1, 3, 4, 4]), _value("d2", [3, 3])],
        [_value("y", [1, 3])],
        {"wt": (3, 3, 2, 2)},
    )
    table, _ = describe_onnx(model, "other.onnx")
    features = build_features(table)
    assert list(features["layer_type"]) == [
        "ConvTranspose",
        "LpPool",
        "GlobalLpPool",
        "Flatten",
        "MatMul",
    ]
    assert set(features["layer_class"]) == {"other"}
    assert features["kernel"].isna().all()


def test_matmul_with_a_constant_weight_behind_identity_is_dense() -> None:
    model = _model(
        [
            helper.make_node("Identity", ["w"], ["w_shared"], "/Identity"),
            helper.make_node("MatMul", ["x", "w_shared"], ["m"], "/proj/MatMul"),
            helper.make_node("Add", ["proj.bias", "m"], ["y"], "/proj/Add"),
        ],
        [_value("x", [2, 7, 16])],
        [_value("y", [2, 7, 32])],
        {"w": (16, 32), "proj.bias": (32,)},
    )
    features = build_features(describe_onnx(model, "proj.onnx")[0]).set_index("layer_name")
    assert list(features.index) == ["proj", "proj/Add"]
    dense = features.loc["proj"]
    assert (dense["layer_class"], dense["in_features"], dense["out_maps"]) == ("dense", 16, 32)
    assert (dense["gemm_m"], dense["gemm_k"], dense["gemm_n"]) == (14, 16, 32)
    add = features.loc["proj/Add"]
    assert add["input_dims"] == [2, 7, 32]  # the activation, not the bias
    assert add["layer_class"] == "other"


def test_identical_layers_are_merged_with_a_count() -> None:
    convs = [
        helper.make_node("Conv", [src, "w"], [dst], f"/blocks/blocks.{i}/Conv", kernel_shape=[1, 1])
        for i, (src, dst) in enumerate([("x", "a"), ("a", "b"), ("b", "y")])
    ]
    model = _model(
        [*convs[:2], helper.make_node("Relu", ["b"], ["r"], "/act/Relu"), convs[2]],
        [_value("x", [1, 4, 5, 5])],
        [_value("y", [1, 4, 5, 5])],
        {"w": (4, 4, 1, 1)},
    )
    engine, _ = onnx_engine(model, "m.onnx")
    conv, relu = engine["Layers"]
    assert (conv["Name"], conv["Count"]) == ("blocks.0", 3)
    assert conv["InstanceNames"] == ["blocks.0", "blocks.1", "blocks.2"]
    assert (relu["Name"], relu["Count"]) == ("act", 1)


def test_grouped_and_global_max_pooling_fields() -> None:
    model = _model(
        [
            helper.make_node(
                "Conv", ["x", "w"], ["c"], "/dw/Conv", kernel_shape=[3, 3], group=8, strides=[2, 2]
            ),
            helper.make_node("GlobalMaxPool", ["c"], ["y"], "/pool/GlobalMaxPool"),
        ],
        [_value("x", [1, 8, 9, 9])],
        [_value("y", [1, 8, 1, 1])],
        {"w": (8, 1, 3, 3)},
    )
    features = build_features(describe_onnx(model, "dw.onnx")[0]).set_index("layer_name")
    conv, pool = features.loc["dw"], features.loc["pool"]
    assert (conv["groups"], conv["out_maps"], conv["weights_count"]) == (8, 8, 72)
    assert conv["output_dims"] == [1, 8, 4, 4]
    assert conv["pre_padding"] == conv["post_padding"] == [0, 0]
    assert (pool["layer_class"], pool["pooling_type"], pool["kernel"]) == ("pooling", "MAX", [4, 4])


CONVOLUTIONS = st.fixed_dictionaries(
    {
        "size": st.integers(3, 20),
        "channels": st.sampled_from([(4, 4, 1), (4, 8, 2), (6, 6, 6), (3, 5, 1)]),  # C, K, g
        "kernel": st.integers(1, 4),
        "stride": st.integers(1, 3),
        "dilation": st.integers(1, 2),
        # (pre, post) on both axes, or ONNX's automatic padding
        "padding": st.one_of(
            st.tuples(st.integers(0, 2), st.integers(0, 2)),
            st.sampled_from(["SAME_UPPER", "SAME_LOWER", "VALID"]),
        ),
    }
)


@settings(max_examples=60, deadline=None)
@given(conv=CONVOLUTIONS)
def test_convolution_geometry_is_consistent(conv: dict) -> None:
    """Whatever the padding mode, the row's output size is the convolution arithmetic of its
    own input, kernel, padding, stride and dilation, and the FLOPs follow."""
    size, kernel, stride, dilation, padding = (
        conv[k] for k in ("size", "kernel", "stride", "dilation", "padding")
    )
    in_c, out_c, groups = conv["channels"]
    pads = (
        {"pads": [padding[0], padding[0], padding[1], padding[1]]}
        if isinstance(padding, tuple)
        else {"auto_pad": padding}
    )
    model = _model(
        [
            helper.make_node(
                "Conv",
                ["x", "w"],
                ["y"],
                "/conv/Conv",
                kernel_shape=[kernel, kernel],
                strides=[stride, stride],
                dilations=[dilation, dilation],
                group=groups,
                **pads,
            )
        ],
        [_value("x", [1, in_c, size, size + 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        {"w": (out_c, in_c // groups, kernel, kernel)},
    )
    extent = dilation * (kernel - 1) + 1
    explicit = sum(padding) if isinstance(padding, tuple) else 0
    if padding not in ("SAME_UPPER", "SAME_LOWER") and size + explicit < extent:
        with pytest.raises(ValueError, match="conv.onnx"):
            describe_onnx(model, "conv.onnx")
        return
    row = build_features(describe_onnx(model, "conv.onnx")[0]).iloc[0]
    for axis, length in enumerate([size, size + 1]):
        span = length + row["pre_padding"][axis] + row["post_padding"][axis] - extent
        assert row["output_dims"][2 + axis] == span // stride + 1
    if padding in ("SAME_UPPER", "SAME_LOWER"):
        assert row["output_dims"][2:] == [math.ceil(size / stride), math.ceil((size + 1) / stride)]
        larger = "post_padding" if padding == "SAME_UPPER" else "pre_padding"  # the odd pixel
        assert max(row["pre_padding"][0], row["post_padding"][0]) == row[larger][0]
    out_h, out_w = row["output_dims"][2:]
    assert row["flops"] == 2 * out_c * out_h * out_w * in_c / groups * kernel * kernel
    assert row["weights_count"] == out_c * in_c // groups * kernel * kernel
    assert (row["layer_class"], row["groups"], row["kernel"]) == (
        "convolutional",
        groups,
        [kernel] * 2,
    )


# ----------------------------------------------------------------------------- layer names
@pytest.mark.parametrize(
    ("node", "module"),
    [
        ("/layer1/layer1.0/conv1/Conv", "layer1.0.conv1"),
        ("/layer2/layer2.0/downsample/downsample.0/Conv", "layer2.0.downsample.0"),
        ("/features/features.1/features.1.0/block/block.3/MatMul", "features.1.0.block.3"),
        ("/features/features.18/features.18.2/Clip", "features.18.2"),
        ("/conv1/Conv", "conv1"),
        ("/GlobalAveragePool", None),  # a function call at the top: no module
        ("Conv_12", None),  # another exporter's name
        ("model/conv/Conv2D", None),
        ("/a/b.3/Conv", None),  # not torch.onnx's scheme: b.3's parent is not b
    ],
)
def test_module_path(node: str, module: str | None) -> None:
    assert module_path(node) == module


def _torch_scope(qualified: str) -> str:
    """torch.onnx's scope name of a module: its qualified name from the last non-numeric atom
    (``torch.onnx.utils._unqualified_variable_name``)."""
    atoms = qualified.split(".")
    for index in range(len(atoms) - 1, -1, -1):
        if not atoms[index].isnumeric():
            return ".".join(atoms[index:])
    return qualified


@given(
    st.lists(
        st.one_of(st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True), st.integers(0, 30)),
        min_size=1,
        max_size=8,
    )
)
def test_module_path_inverts_torch_scope_names(atoms: list[str | int]) -> None:
    names = [str(atom) for atom in atoms]
    scopes = [_torch_scope(".".join(names[: i + 1])) for i in range(len(names))]
    assert module_path("/" + "/".join(scopes) + "/Conv") == ".".join(names)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "data",
    [b"", b'{"Layers": []}', b"\x89PNG\r\n\x1a\n0000", b"hello world"],
    ids=["empty", "json", "png", "text"],
)
def test_not_an_onnx_file(data: bytes) -> None:
    with pytest.raises(ValueError, match=r"^model\.onnx: not an ONNX model"):
        describe_onnx(data, "model.onnx")


@pytest.mark.parametrize("model", ["alexnet", "vgg11", "resnet18"])
def test_every_truncation_of_a_real_file_is_refused(model: str) -> None:
    data = (ONNX_DIR / f"{model}.onnx").read_bytes()
    for cut in range(len(data)):
        with pytest.raises(ValueError, match=rf"^{model}\.onnx: (not an ONNX|no default-domain)"):
            describe_onnx(data[:cut], f"{model}.onnx")


@settings(max_examples=40, deadline=None)
@given(fraction=st.floats(0.0, 1.0, exclude_max=True))
def test_truncated_inline_weights_are_refused(fraction: float) -> None:
    data = (ONNX_DIR / "lenet.onnx").read_bytes()
    with pytest.raises(ValueError, match=r"^lenet\.onnx: "):
        describe_onnx(data[: int(fraction * len(data))], "lenet.onnx")


@pytest.mark.parametrize("opset", [MIN_OPSET, 11, 13, MAX_OPSET])
def test_supported_opsets(opset: int) -> None:
    table, info = describe_onnx(_conv_gemm_at(opset), "m.onnx")
    assert info["opset"] == opset
    assert list(build_features(table)["layer_class"]) == ["convolutional", "other", "dense"]


@pytest.mark.parametrize("opset", [MIN_OPSET - 1, MAX_OPSET + 1])
def test_unsupported_opset(opset: int) -> None:
    with pytest.raises(ValueError, match=rf"^old\.onnx: opset {opset} is not supported"):
        describe_onnx(_conv_gemm_at(opset), "old.onnx")


def _conv_gemm_at(opset: int) -> bytes:
    model = onnx.load_model_from_string(_conv_gemm(1))
    model.opset_import[0].version = opset
    return model.SerializeToString()


def test_shape_inference_error_names_the_node() -> None:
    model = _model(
        [helper.make_node("MatMul", ["x", "w"], ["y"], "/fc/MatMul")],
        [_value("x", [1, 5])],
        [_value("y", [1, 3])],
        {"w": (4, 3)},
    )
    with pytest.raises(ValueError, match=r"^bad\.onnx: shape inference failed: .*/fc/MatMul"):
        describe_onnx(model, "bad.onnx")


def test_shape_that_cannot_be_inferred_names_the_node() -> None:
    model = _model(
        [
            helper.make_node("Reshape", ["x", "shape"], ["r"], "/Reshape"),
            helper.make_node("Conv", ["r", "w"], ["y"], "/conv/Conv", kernel_shape=[3, 3]),
        ],
        [_value("x", [1, 3, 8, 8]), _value("shape", [4], TensorProto.INT64)],
        [_value("y", [1, 4, 6, 6])],
        {"w": (4, 3, 3, 3)},
    )
    with pytest.raises(ValueError, match=r"^r\.onnx: node '/conv/Conv' \(Conv\): the shape of 'r'"):
        describe_onnx(model, "r.onnx")


def test_symbolic_spatial_dimension_is_refused() -> None:
    model = _model(
        [helper.make_node("Relu", ["x"], ["y"], "/Relu")],
        [_value("x", ["N", 3, "height", 8])],
        [_value("y", ["N", 3, "height", 8])],
    )
    with pytest.raises(ValueError, match=r"input 'x' dimension 2 is symbolic \('height'\)"):
        describe_onnx(model, "hw.onnx")


def test_bad_arguments_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^m\.onnx: unknown precision 'fp64'"):
        describe_onnx(_conv_gemm(1), "m.onnx", precision="fp64")
    with pytest.raises(ValueError, match=r"^m\.onnx: batch_size must be a positive integer"):
        describe_onnx(_conv_gemm("N"), "m.onnx", batch_size=0)
    missing = tmp_path / "absent.onnx"
    with pytest.raises(ValueError, match=r"absent\.onnx: cannot be read"):
        describe_onnx(missing, str(missing))
