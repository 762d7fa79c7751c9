"""Physics estimators: monotone in work (hypothesis over shapes and batch sizes), bounded
extrapolation, model files (pickle, skops with an explicit trusted-type list)."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from hypothesis import given, settings
from hypothesis import strategies as st

from power_modelling.core.loco import trainable
from power_modelling.core.physics_estimators import (
    SKOPS_TRUSTED_TYPES,
    FixedCostRuntimeRegressor,
    ThroughputPowerRegressor,
)
from power_modelling.core.physics_features import device_trend, fit_device_constants
from tests.core.conftest import conv_layer, features_of, linear_layer, pool_layer

CLASSES = ("convolutional", "pooling", "dense")
WORK_COLUMNS = (
    "flops",
    "input_bytes",
    "output_bytes",
    "bytes_read",
    "bytes_written",
    "bytes_total",
)


@pytest.fixture(scope="module")
def models(synthetic_table: pd.DataFrame) -> dict[tuple[str, str], object]:
    constants = fit_device_constants(synthetic_table)
    fitted = {}
    for layer_class in CLASSES:
        rows = trainable(synthetic_table, layer_class, "runtime")
        fitted[(layer_class, "runtime")] = FixedCostRuntimeRegressor(
            layer_class, device_constants=constants, n_estimators=50
        ).fit(rows, rows["runtime"])
        fitted[(layer_class, "power")] = ThroughputPowerRegressor(
            layer_class, device_constants=constants, n_estimators=50
        ).fit(rows, rows["power"])
    return fitted


def _predict(models: dict, layer: dict, layer_class: str) -> tuple[float, float]:
    features = features_of([layer])
    assert features["layer_class"].iloc[0] == layer_class
    return (
        float(models[(layer_class, "runtime")].predict(features)[0]),
        float(models[(layer_class, "power")].predict(features)[0]),
    )


def _assert_non_decreasing(small: tuple[float, float], large: tuple[float, float]) -> None:
    for before, after in zip(small, large, strict=True):
        assert np.isfinite(before) and np.isfinite(after)
        assert after >= before * (1 - 1e-12)


batches = st.lists(st.integers(1, 64), min_size=2, max_size=2, unique=True).map(sorted)
channels = st.sampled_from([3, 8, 16, 24, 64, 96, 128, 256, 384, 512, 1024, 2048])


conv_shapes = st.fixed_dictionaries(
    {
        "c": channels,
        "h": st.integers(4, 128),
        "k": channels,
        "kernel": st.sampled_from([1, 3, 5, 7, 11]),
        "stride": st.sampled_from([1, 2]),
        "depthwise": st.booleans(),
    }
)
pool_shapes = st.fixed_dictionaries(
    {
        "c": channels,
        "h": st.integers(2, 112),
        "window": st.sampled_from([2, 3]),
        "kind": st.sampled_from(["MAX", "AVERAGE"]),
        "is_global": st.booleans(),
    }
)


@settings(max_examples=40, deadline=None)
@given(shape=conv_shapes, batch=batches)
def test_convolution_never_cheaper_with_a_larger_batch(models: dict, shape: dict, batch: list):
    c, h, k, kernel, stride = (shape[key] for key in ("c", "h", "k", "kernel", "stride"))
    groups, k = (c, c) if shape["depthwise"] else (1, k)
    layers = [
        conv_layer("x", c, h, k, kernel=kernel, stride=stride, groups=groups, batch=b)
        for b in batch
    ]
    _assert_non_decreasing(*(_predict(models, layer, "convolutional") for layer in layers))


@settings(max_examples=30, deadline=None)
@given(shape=pool_shapes, batch=batches)
def test_pooling_never_cheaper_with_a_larger_batch(models: dict, shape: dict, batch: list):
    c, h = shape["c"], shape["h"]
    window, stride = (h, h) if shape["is_global"] else (min(shape["window"], h), 2)
    layers = [pool_layer("x", c, h, window, stride, kind=shape["kind"], batch=b) for b in batch]
    _assert_non_decreasing(*(_predict(models, layer, "pooling") for layer in layers))


@settings(max_examples=30, deadline=None)
@given(k=st.integers(8, 30000), n=st.integers(1, 5000), batch=batches)
def test_dense_never_cheaper_with_a_larger_batch(models: dict, k: int, n: int, batch: list):
    layers = [linear_layer("x", k, n, batch=b) for b in batch]
    _assert_non_decreasing(*(_predict(models, layer, "dense") for layer in layers))


@settings(max_examples=25, deadline=None)
@given(
    factors=st.lists(st.floats(1.0, 1e4), min_size=len(WORK_COLUMNS), max_size=len(WORK_COLUMNS)),
    batch_factor=st.integers(1, 16),
)
def test_more_flops_or_bytes_at_a_fixed_shape_never_predicts_less(
    models: dict, synthetic_table: pd.DataFrame, factors: list, batch_factor: int
) -> None:
    grown = synthetic_table.copy()
    for column, factor in zip(WORK_COLUMNS, factors, strict=True):
        grown[column] = grown[column] * factor
    grown["batch_size"] = grown["batch_size"] * batch_factor
    for (layer_class, _), model in models.items():
        rows = (synthetic_table["layer_class"] == layer_class).to_numpy()
        before = model.predict(synthetic_table[rows])
        after = model.predict(grown[rows])
        assert (after >= before * (1 - 1e-12)).all()


def test_extrapolation_follows_the_trend(models: dict, synthetic_table: pd.DataFrame) -> None:
    """A convolution 1000x larger than any trained one: fixed cost within the trained range
    plus the work term (no jump), and the work term scales with the work."""
    runtime_model = models[("convolutional", "runtime")]
    huge = features_of([conv_layer("huge", 2048, 224, 2048, kernel=3, batch=64)])
    small = features_of([conv_layer("huge", 2048, 224, 2048, kernel=3, batch=32)])
    fixed_max = np.exp(runtime_model.log_fixed_range_[1])
    predicted, half = runtime_model.predict(huge)[0], runtime_model.predict(small)[0]
    fixed = runtime_model.fixed_cost(huge)[0]
    assert fixed <= fixed_max * (1 + 1e-9)
    assert predicted > 1000 * synthetic_table["runtime"].max()  # follows the work
    assert predicted / half == pytest.approx(2.0, rel=0.01)  # runtime ∝ work above the floor
    power = models[("convolutional", "power")].predict(huge)[0]
    assert power <= 2 * synthetic_table["power"].max()  # saturates, never explodes


def test_tiny_layer_runs_at_the_launch_floor(models: dict) -> None:
    """Far below the smallest trained layer the fixed cost decays to the launch floor."""
    model = models[("dense", "runtime")]
    tiny = features_of([linear_layer("tiny", 8, 1)])
    floor = model.device_constants_["launch_floor_ms"]
    assert model.predict(tiny)[0] == pytest.approx(floor, rel=0.05)


def test_missing_feature_is_named(synthetic_table: pd.DataFrame) -> None:
    rows = trainable(synthetic_table, "convolutional", "runtime")
    broken = rows.assign(groups=np.nan)
    with pytest.raises(ValueError, match="column 'groups'"):
        FixedCostRuntimeRegressor("convolutional", n_estimators=5).fit(broken, broken["runtime"])


@pytest.mark.parametrize(
    ("estimator", "target"),
    [
        (FixedCostRuntimeRegressor("pooling", n_estimators=20), "runtime"),
        (FixedCostRuntimeRegressor("pooling", trees="hist_gradient_boosting", max_iter=30),
         "runtime"),
        (ThroughputPowerRegressor("pooling", n_estimators=20), "power"),
        (ThroughputPowerRegressor("pooling", trend="throughput", trees="hist_gradient_boosting",
                                  max_iter=30), "power"),
    ],
)  # fmt: skip
def test_model_files_round_trip(synthetic_table: pd.DataFrame, estimator, target: str) -> None:
    rows = trainable(synthetic_table, "pooling", target)
    model = estimator.fit(rows, rows[target])  # device constants from the rows' runtimes
    expected = model.predict(rows)
    data = sio.dumps(model)
    untrusted = sio.get_untrusted_types(data=data)
    assert set(untrusted) <= set(SKOPS_TRUSTED_TYPES), untrusted
    np.testing.assert_array_equal(sio.loads(data, trusted=SKOPS_TRUSTED_TYPES).predict(rows),
                                  expected)  # fmt: skip
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict(rows), expected)


def test_the_catalog_trusts_every_type_the_physics_estimators_need() -> None:
    """``SKOPS_TRUSTED_TYPES`` documents what the physics estimators' skops files hold; the
    catalog's ``_skops_trusted_types`` (what model files are loaded with) must cover it."""
    from pathlib import Path

    import yaml

    catalog = Path(__file__).parents[2] / "conf" / "base" / "catalog_modelling.yml"
    trusted = yaml.safe_load(catalog.read_text())["_skops_trusted_types"]
    assert set(SKOPS_TRUSTED_TYPES) <= set(trusted), set(SKOPS_TRUSTED_TYPES) - set(trusted)


@settings(max_examples=20, deadline=None)
@given(k=st.sampled_from([1, 2, 8, 10**5, 10**6]), n=st.sampled_from([1, 3, 10**5]))
def test_power_far_outside_the_trained_sizes_stays_bounded(
    shape_power_model: ThroughputPowerRegressor, k: int, n: int
) -> None:
    """The ``shape`` trend is a linear model in log features: a layer far smaller or larger
    than any trained one must not take it (and the power) beyond its trained values (a
    LeNet dense layer beside ResNets' was predicted at 1e14 W before)."""
    model = shape_power_model
    power = model.predict(features_of([linear_layer("far", k, n)]))[0]
    bound = np.exp(model.trend_range_[1] + model.residual_range_[1])
    assert 0 < power <= bound * (1 + 1e-9)


@pytest.fixture(scope="module")
def shape_power_model(synthetic_table: pd.DataFrame) -> ThroughputPowerRegressor:
    rows = trainable(synthetic_table, "dense", "power")
    rows = rows[rows["model"].isin(["cnn3", "cnn4"])]  # a narrow training set
    return ThroughputPowerRegressor("dense", trend="shape", n_estimators=20).fit(
        rows, rows["power"]
    )


def test_a_pooling_kernel_never_trained_on_follows_the_device_trend(models: dict) -> None:
    """DenseNet's transitions: 2x2 / stride-2 *average* pooling, where the synthetic CNNs (as
    the bundled ones) only have max pools and global average pools. Its runtime is the device
    trend, not the trees' cost of another kernel, and its power the class's energy per FLOP
    and per byte at the trend's rates; a max pool of the same size keeps the trees."""
    runtime_model, power_model = models[("pooling", "runtime")], models[("pooling", "power")]
    avg = features_of([pool_layer("t", 256, 56, 2, 2, kind="AVERAGE")])
    same_size_max = features_of([pool_layer("t", 256, 56, 2, 2, kind="MAX")])
    constants = runtime_model.device_constants_
    flops, traffic = avg["flops"].to_numpy(), avg["bytes_total"].to_numpy()
    _, trend = device_trend(flops, traffic, constants)
    assert runtime_model.predict(avg)[0] == pytest.approx(trend[0], rel=1e-12)
    without_fallback = runtime_model.predictor()
    without_fallback.kernel_features = ()
    assert without_fallback.predict(avg)[0] != pytest.approx(trend[0], rel=1e-3)
    assert runtime_model.predict(same_size_max)[0] == without_fallback.predict(same_size_max)[0]

    e_flop, e_byte = power_model.energy_
    assert e_flop >= 0 and e_byte > 0  # the synthetic CNNs' pools draw power with traffic
    _, compute_time = device_trend(flops, 0 * traffic, constants)
    _, memory_time = device_trend(0 * flops, traffic, constants)
    expected = e_flop * flops / compute_time + e_byte * traffic / memory_time
    assert power_model.predict(avg)[0] == pytest.approx(expected[0], rel=1e-12)
    assert power_model.predict(same_size_max)[0] != pytest.approx(expected[0], rel=1e-3)


def test_no_kernel_fallback_for_convolutions_and_when_disabled(
    models: dict, synthetic_table: pd.DataFrame
) -> None:
    """Convolutions and dense layers have no kernel features (their trees' neighbours beat
    the trend on held-out families); ``kernel_features=()`` turns pooling's off."""
    assert models[("convolutional", "runtime")].kernel_features_ == ()
    assert models[("dense", "power")].energy_ is None
    rows = trainable(synthetic_table, "pooling", "runtime")
    plain = FixedCostRuntimeRegressor("pooling", kernel_features=(), n_estimators=20)
    plain.fit(rows, rows["runtime"])
    avg = features_of([pool_layer("t", 256, 56, 2, 2, kind="AVERAGE")])
    assert plain.kernels_seen_ is None
    _, trend = device_trend(avg["flops"].to_numpy(), avg["bytes_total"].to_numpy(),
                            plain.device_constants_)  # fmt: skip
    assert plain.predict(avg)[0] != pytest.approx(trend[0], rel=1e-3)  # the trees' guess
