"""Physics features and device constants: values on hand-checked layers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from power_modelling.core.physics_features import (
    MIN_MARGINAL_FACTOR,
    add_physics_features,
    add_roofline_terms,
    device_trend,
    fit_device_constants,
)
from tests.core.conftest import conv_layer, features_of, linear_layer, pool_layer


@pytest.fixture(scope="module")
def layers() -> pd.DataFrame:
    frame = features_of(
        [
            conv_layer("conv", c=64, h=56, k=128, kernel=3, batch=4),
            conv_layer("dw", c=96, h=28, k=96, kernel=3, groups=96),
            conv_layer("grouped", c=128, h=14, k=128, kernel=3, groups=32),
            pool_layer("maxpool", c=64, h=112, window=3, stride=2),
            pool_layer("avg2x2", c=128, h=56, window=2, stride=2, kind="AVERAGE"),
            pool_layer("gap", c=512, h=7, window=7, stride=7, kind="AVERAGE", adaptive=True),
            linear_layer("fc", k=2048, n=1000, batch=8),
        ]
    )
    return frame.set_index("layer_name")


def test_convolution_traffic_gemm_view_and_per_item_sizes(layers: pd.DataFrame) -> None:
    conv = layers.loc["conv"]
    # [4, 64, 56, 56] -> [4, 128, 56, 56], FP16, 3x3
    assert conv["input_bytes"] == 4 * 64 * 56 * 56 * 2
    assert conv["weight_bytes"] == 128 * 64 * 9 * 2
    assert conv["bytes_read"] == conv["input_bytes"] + conv["weight_bytes"]
    assert conv["bytes_written"] == 4 * 128 * 56 * 56 * 2
    assert conv["bytes_total"] == conv["bytes_read"] + conv["bytes_written"]
    assert (conv["gemm_rows"], conv["out_channels"], conv["reduction_size"]) == (
        4 * 56 * 56,
        128,
        64 * 9,
    )
    assert conv["flops_per_item"] == conv["flops"] / 4 == 2 * 128 * 56 * 56 * 64 * 9
    assert conv["element_bytes"] == 2
    assert conv["activation_intensity"] == pytest.approx(
        conv["flops_per_item"] / ((64 + 128) * 56 * 56 * 2)
    )
    assert conv["conv_kind"] == "3x3"
    assert (conv["depthwise"], conv["grouped"]) == (0.0, 0.0)


def test_depthwise_and_grouped_flags(layers: pd.DataFrame) -> None:
    assert layers.loc["dw", ["depthwise", "grouped"]].tolist() == [1.0, 0.0]
    assert layers.loc["dw", "reduction_size"] == 9  # one input channel per group
    assert layers.loc["dw", "conv_kind"] == "3x3 depthwise"
    assert layers.loc["grouped", ["depthwise", "grouped"]].tolist() == [0.0, 1.0]
    assert layers.loc["grouped", "conv_kind"] == "3x3 grouped"


def test_pooling_kinds_and_windows(layers: pd.DataFrame) -> None:
    kinds = layers.loc[["maxpool", "avg2x2", "gap"], "pooling_kind"].tolist()
    assert kinds == ["MAX 3x3", "AVG 2x2", "AVG global"]
    flags = layers.loc[["maxpool", "avg2x2", "gap"], ["pool_max", "pool_avg", "pool_global"]]
    assert flags.to_numpy().tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    assert layers.loc["gap", "pool_adaptive"] == 1.0
    assert layers.loc["avg2x2", "kernel_area"] == 4
    assert layers.loc["maxpool", "gemm_rows"] == 55 * 55  # (112 - 3) // 2 + 1
    assert layers.loc["conv", "pool_max"] == 0.0 and layers.loc["conv", "pooling_kind"] is None


def test_dense_gemm_view(layers: pd.DataFrame) -> None:
    fc = layers.loc["fc"]
    assert (fc["gemm_rows"], fc["out_channels"], fc["reduction_size"]) == (8, 1000, 2048)
    assert fc["rows_per_item"] == 1
    assert fc["kernel_area"] == 1
    assert fc["bytes_read"] == (8 * 2048 + 2048 * 1000) * 2


def test_replaces_existing_physics_columns(layers: pd.DataFrame) -> None:
    again = add_physics_features(layers.reset_index().assign(bytes_total=-1.0))
    assert (again["bytes_total"] > 0).all()
    assert list(again.columns) == list(layers.reset_index().columns)


def test_missing_column_is_named() -> None:
    with pytest.raises(KeyError, match="flops"):
        add_physics_features(pd.DataFrame({"layer_class": ["dense"], "batch_size": [1.0]}))


def test_device_constants_recover_a_known_device() -> None:
    rng = np.random.default_rng(1)
    flops = 10 ** rng.uniform(4, 10, 400)
    traffic = 10 ** rng.uniform(3, 7.5, 400)
    # floor 3 us, 200 GFLOP/ms and 3 GB/ms at half efficiency
    runtime = 0.003 + 2 * flops / 2e11 + 2 * traffic / 3e9
    table = pd.DataFrame(
        {"flops": flops, "bytes_total": traffic, "runtime": runtime, "layer_class": "dense"}
    )
    constants = fit_device_constants(table)
    assert constants["peak_flops_per_ms"] == pytest.approx(np.max(flops / runtime))
    assert constants["bandwidth_bytes_per_ms"] == pytest.approx(np.max(traffic / runtime))
    assert constants["launch_floor_ms"] == pytest.approx(np.quantile(runtime, 0.01))
    assert constants["trend_floor_ms"] == pytest.approx(0.003, rel=1e-3)
    _, trend = device_trend(flops, traffic, constants)
    np.testing.assert_allclose(trend, runtime, rtol=1e-3)
    roofline = add_roofline_terms(table, constants)
    # the envelope: no layer computed or moved data faster than the peak / bandwidth
    assert (roofline["t_compute_ms"] <= runtime * (1 + 1e-12)).all()
    assert (roofline["t_memory_ms"] <= runtime * (1 + 1e-12)).all()
    assert (roofline["roofline_ms"] >= constants["launch_floor_ms"]).all()


def test_small_layers_alone_never_make_work_free() -> None:
    """Layers that all run near the launch floor say nothing about the cost of compute: the
    trend keeps extra work at least :data:`MIN_MARGINAL_FACTOR` of the envelope's cost (the
    unbounded fit left compute nearly free, and a family of far larger layers, VGG, was
    predicted 37 % too fast)."""
    rng = np.random.default_rng(2)
    flops = 10 ** rng.uniform(4, 7, 300)
    traffic = 10 ** rng.uniform(3, 6, 300)
    runtime = 0.003 * 10 ** rng.normal(0, 0.02, 300) + traffic / 3e9  # compute costs nothing
    table = pd.DataFrame(
        {"flops": flops, "bytes_total": traffic, "runtime": runtime, "layer_class": "dense"}
    )
    unbounded = fit_device_constants(table, min_marginal_factor=1e-9)
    assert unbounded["trend_compute_factor"] < 0.05
    constants = fit_device_constants(table)
    assert constants["trend_compute_factor"] == pytest.approx(MIN_MARGINAL_FACTOR)
    assert constants["trend_memory_factor"] >= MIN_MARGINAL_FACTOR
    # a layer 1000x beyond the trained work costs at least half its envelope compute time
    big = np.array([1e10])
    work, _ = device_trend(big, np.array([1e6]), constants)
    assert work[0] >= MIN_MARGINAL_FACTOR * big[0] / constants["peak_flops_per_ms"]


def test_device_constants_need_runtimes() -> None:
    table = pd.DataFrame({"flops": [1.0] * 3, "bytes_total": [1.0] * 3, "runtime": np.nan})
    with pytest.raises(ValueError, match="positive 'runtime'"):
        fit_device_constants(table)


def test_channel_alignment_is_the_largest_power_of_two_dividing_the_channels() -> None:
    """What picks a GPU kernel: 576 channels are aligned to 64, 672 only to 32."""
    table = features_of(
        [
            conv_layer("dw576", 576, 14, 576, kernel=3, groups=576),
            conv_layer("dw672", 672, 14, 672, kernel=3, groups=672),
            conv_layer("stem", 3, 224, 64, kernel=7, stride=2),
            linear_layer("fc", k=2048, n=1000),
            pool_layer("pool", 96, 56, 3, 2),
        ]
    )
    frame = add_physics_features(table).set_index("layer_name")
    assert frame["out_alignment"].to_dict() == {
        "dw576": 64.0, "dw672": 32.0, "stem": 64.0, "fc": 8.0, "pool": 32.0,
    }  # fmt: skip
    assert frame["in_alignment"].to_dict() == {
        "dw576": 64.0, "dw672": 32.0, "stem": 1.0, "fc": 128.0, "pool": 32.0,
    }  # fmt: skip
