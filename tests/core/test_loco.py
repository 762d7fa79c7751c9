"""Leave-one-CNN-out figures and the batch-size check."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from power_modelling.core.domain import fit_domain
from power_modelling.core.layers import LAYER_CLASSES
from power_modelling.core.loco import (
    batch_scaling,
    batch_scaling_summary,
    leave_one_cnn_out,
    loco_report,
    rewrite_batch,
    trainable,
)
from power_modelling.core.physics_estimators import (
    FixedCostRuntimeRegressor,
    ThroughputPowerRegressor,
)
from power_modelling.core.physics_features import add_physics_features, fit_device_constants
from tests.helpers import SMALL_MODELS, run_kedro


class _Scaled:
    """Predicts ``factor`` times the measured target (read from the rows themselves)."""

    def __init__(self, target: str, factor: float) -> None:
        self.target, self.factor = target, factor

    def predict(self, rows: pd.DataFrame) -> np.ndarray:
        return self.factor * rows[self.target].to_numpy(dtype="float64")


def _scaled_fitter(factor: float):
    return lambda train, layer_class, target: _Scaled(target, factor)


def test_rewrite_batch_sets_every_leading_dimension() -> None:
    layer = {"Name": "a", "Inputs": [{"Dimensions": [1, 3, 8, 8]}]}
    engine = {"Layers": [{**layer, "Outputs": [{"Dimensions": [1, 4]}]}, "not a layer"]}
    rewritten = rewrite_batch(engine, 8)
    assert rewritten["Layers"][0]["Inputs"][0]["Dimensions"] == [8, 3, 8, 8]
    assert rewritten["Layers"][0]["Outputs"][0]["Dimensions"] == [8, 4]
    assert engine["Layers"][0]["Inputs"][0]["Dimensions"][0] == 1  # the original is untouched


def test_exact_predictions_score_perfectly(synthetic_table: pd.DataFrame) -> None:
    predictions = leave_one_cnn_out(synthetic_table, _scaled_fitter(1.0), with_domain=False)
    assert len(predictions) == len(synthetic_table)
    report = loco_report(predictions)
    assert report["summary"]["n_cnns"] == 10
    cnn = report["per_cnn"]["cnn3"]
    assert cnn["runtime"]["rmspe"] == 0.0 and cnn["power_total"]["within_10pct"] == 1.0
    assert cnn["network"]["runtime_accuracy"] == cnn["network"]["energy_accuracy"] == 1.0


def test_a_20_percent_overestimate(synthetic_table: pd.DataFrame) -> None:
    predictions = leave_one_cnn_out(synthetic_table, _scaled_fitter(1.2), with_domain=False)
    report = loco_report(predictions)
    cnn = report["per_cnn"]["cnn0"]
    assert cnn["runtime"]["rmspe"] == pytest.approx(20.0)
    assert cnn["runtime"]["within_10pct"] == 0.0
    assert cnn["network"]["runtime_accuracy"] == pytest.approx(0.8)
    assert cnn["network"]["energy_accuracy"] == pytest.approx(1 - (1.2 * 1.2 - 1))
    assert report["summary"]["mean_over_cnns"]["runtime_rmspe"] == pytest.approx(20.0)


def _physics_fitter(train: pd.DataFrame, layer_class: str, target: str):
    constants = fit_device_constants(train)
    rows = trainable(train, layer_class, target)
    estimator = (
        FixedCostRuntimeRegressor(layer_class, device_constants=constants, n_estimators=20)
        if target == "runtime"
        else ThroughputPowerRegressor(
            layer_class, trend="throughput", device_constants=constants, n_estimators=20
        )
    )
    return estimator.fit(rows, rows[target])


def test_intervals_and_domain_of_held_out_cnns(synthetic_table: pd.DataFrame) -> None:
    predictions = leave_one_cnn_out(
        synthetic_table,
        _physics_fitter,
        with_intervals=True,
        inner_folds=3,
        held_out=["cnn0", "cnn1"],
    )
    assert set(predictions["model"]) == {"cnn0", "cnn1"}
    assert (predictions["runtime_lo"] <= predictions["runtime_pred"]).all()
    assert (predictions["runtime_pred"] <= predictions["runtime_hi"]).all()
    assert (predictions["power_lo"] <= predictions["power_hi"]).all()
    report = loco_report(predictions)
    pooled = report["summary"]["pooled"]
    # a known law with 5 % noise: the 90 % intervals cover most held-out layers
    assert pooled["coverage"]["runtime"] >= 0.75
    assert pooled["coverage"]["power_total"] >= 0.75
    assert set(report["summary"]["network_coverage"]) == {"comonotone", "independent"}
    assert predictions["in_domain"].dtype == bool


@pytest.mark.integration
def test_batch_check_on_bundled_data(kedro_project: Callable[..., Path]) -> None:
    """Train on the bundled batch-1 data; the same engines at batch 2/4/8 are never predicted
    faster or at lower power, and every batch > 1 layer is flagged out of domain."""
    project = kedro_project(SMALL_MODELS)
    for name in ("ingestion", "power_mapping", "feature_engineering"):
        run_kedro(project, name)
    tables = [
        pd.read_parquet(project / "data" / "04_feature" / f"{c}.parquet") for c in LAYER_CLASSES
    ]
    table = add_physics_features(pd.concat(tables, ignore_index=True))
    models = {
        (c, t): _physics_fitter(table, c, t) for c in LAYER_CLASSES for t in ("runtime", "power")
    }
    raw = project / "data" / "01_raw" / "h200_isolated_v1"
    engines = {
        m: json.loads((raw / m / "trt_profiling" / "trt_engine_info.json").read_text())
        for m in SMALL_MODELS
    }
    scaling = batch_scaling(engines, models, fit_domain(table, table["model"]))
    summary = batch_scaling_summary(scaling)
    assert summary["runtime_pred_decreases"] == 0
    assert summary["power_pred_decreases"] == 0
    assert summary["flagged_above_base"] == summary["layers_above_base"] > 0
    assert summary["flagged_at_base"] == 0
    assert (scaling.loc[scaling["batch_size"] == 8, "domain_note"].str.contains(
        "batch_size 8 outside trained [1, 1]", regex=False)).all()  # fmt: skip


def _predictions(rows: list[tuple]) -> pd.DataFrame:
    columns = ["model", "layer_name", "layer_class", "count", "runtime", "runtime_pred",
               "power", "power_pred"]  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    return frame.assign(power_total=frame["power"] + 100.0)  # idle 100 W


def test_report_per_cnn_and_class_on_a_known_answer() -> None:
    """Two CNNs, hand-computed figures: per class, per CNN, means over CNNs, network totals."""
    predictions = _predictions(
        [
            # CNN a: one convolution 20 % slow, the pooling's total power 20 % high (132 W)
            ("a", "c1", "convolutional", 1, 1.0, 1.2, 20.0, 20.0),
            ("a", "c2", "convolutional", 1, 1.0, 1.0, 20.0, 20.0),
            ("a", "p1", "pooling", 2, 0.5, 0.5, 10.0, 32.0),
            # CNN b: its one convolution predicted at half the runtime
            ("b", "c3", "convolutional", 1, 2.0, 1.0, 30.0, 30.0),
        ]
    )
    report = loco_report(predictions)
    a, b = report["per_cnn"]["a"], report["per_cnn"]["b"]
    assert a["per_class"]["convolutional"]["runtime"]["rmspe"] == pytest.approx(100 * 0.02**0.5)
    assert a["per_class"]["convolutional"]["runtime"]["within_10pct"] == 0.5
    assert a["per_class"]["convolutional"]["power_total"]["rmspe"] == 0.0
    assert a["per_class"]["pooling"]["runtime"]["rmspe"] == 0.0
    assert a["per_class"]["pooling"]["power_total"]["rmspe"] == pytest.approx(20.0)
    assert a["per_class"]["pooling"]["power_total"]["within_10pct"] == 0.0
    assert list(b["per_class"]) == ["convolutional"]
    assert b["per_class"]["convolutional"]["runtime"]["rmspe"] == pytest.approx(50.0)
    # network: count-weighted totals, runtime 3.2 vs 3.0 ms, dynamic energy 76 vs 50 mJ
    assert a["network"]["runtime_ms"] == pytest.approx(3.0)
    assert a["network"]["runtime_accuracy"] == pytest.approx(1 - 0.2 / 3.0)
    assert a["network"]["energy_accuracy"] == pytest.approx(1 - 26 / 50)
    assert b["network"]["runtime_accuracy"] == b["network"]["energy_accuracy"] == 0.5
    summary = report["summary"]
    assert summary["n_cnns"] == 2
    assert summary["n_cnns_per_class"] == {"convolutional": 2, "pooling": 1}
    conv = summary["mean_over_cnns_per_class"]["convolutional"]
    assert conv["runtime_rmspe"] == pytest.approx((100 * 0.02**0.5 + 50.0) / 2)
    assert conv["runtime_within_10pct"] == pytest.approx(0.25)
    assert summary["mean_over_cnns_per_class"]["pooling"]["power_total_rmspe"] == pytest.approx(
        20.0
    )
    assert summary["median_over_cnns_per_class"]["pooling"]["runtime_rmspe"] == 0.0
    assert summary["mean_over_cnns"]["network_runtime_accuracy"] == pytest.approx(
        (1 - 0.2 / 3.0 + 0.5) / 2
    )
    assert summary["worst_cnn"]["runtime_rmspe"] == "b"


def test_a_class_no_other_cnn_has_stays_unpredicted(synthetic_table: pd.DataFrame) -> None:
    only_in_cnn0 = (synthetic_table["layer_class"] != "pooling") | (
        synthetic_table["model"] == "cnn0"
    )
    table = synthetic_table[only_in_cnn0]
    predictions = leave_one_cnn_out(
        table, _scaled_fitter(1.0), with_domain=False, held_out=["cnn0", "cnn1"]
    )
    held_out = predictions[predictions["model"] == "cnn0"]
    pooling = held_out["layer_class"] == "pooling"
    assert pooling.any() and held_out.loc[pooling, "runtime_pred"].isna().all()
    assert held_out.loc[~pooling, "runtime_pred"].notna().all()


def test_parallel_held_out_cnns_give_the_same_predictions(synthetic_table: pd.DataFrame) -> None:
    held_out = ["cnn0", "cnn1", "cnn2"]
    options = {"with_domain": False, "held_out": held_out}
    sequential = leave_one_cnn_out(synthetic_table, _scaled_fitter(1.1), **options)
    parallel = leave_one_cnn_out(synthetic_table, _scaled_fitter(1.1), n_jobs=2, **options)
    pd.testing.assert_frame_equal(sequential, parallel)
