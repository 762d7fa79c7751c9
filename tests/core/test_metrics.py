"""Metrics on hand-computed values."""

import math

import numpy as np
import pytest

from power_modelling.core.metrics import regression_metrics


def test_known_values():
    metrics = regression_metrics([100.0, 200.0, 400.0, 50.0], [110.0, 180.0, 400.0, 60.0])
    # errors 10, -20, 0, 10; relative 0.1, -0.1, 0, 0.2
    assert metrics["n"] == 4
    assert metrics["rmse"] == pytest.approx(math.sqrt((100 + 400 + 0 + 100) / 4))
    assert metrics["mae"] == pytest.approx(10.0)
    assert metrics["rmspe"] == pytest.approx(100 * math.sqrt((0.01 + 0.01 + 0 + 0.04) / 4))
    assert metrics["mape"] == pytest.approx(100 * 0.4 / 4)
    assert metrics["within_10pct"] == pytest.approx(0.75)  # 0.2 is out
    mean = 187.5
    total = (100 - mean) ** 2 + (200 - mean) ** 2 + (400 - mean) ** 2 + (50 - mean) ** 2
    assert metrics["r2"] == pytest.approx(1 - 600 / total)


def test_perfect_prediction():
    metrics = regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert metrics["rmse"] == 0 and metrics["rmspe"] == 0 and metrics["r2"] == 1
    assert metrics["within_10pct"] == 1


def test_floor_and_missing_values_are_left_out_and_counted():
    metrics = regression_metrics(
        [0.01, -0.2, 10.0, np.nan], [5.0, 5.0, 11.0, 3.0], percentage_floor=0.5
    )
    assert metrics["n"] == 3  # the NaN measurement is left out
    assert metrics["n_percentage"] == 1  # |0.01| and |-0.2| are below the floor
    assert metrics["rmspe"] == pytest.approx(10.0)
    assert metrics["mae"] == pytest.approx((4.99 + 5.2 + 1.0) / 3)


def test_no_usable_rows_gives_nan_not_an_error():
    metrics = regression_metrics([0.0], [1.0])
    assert math.isnan(metrics["rmspe"]) and math.isnan(metrics["r2"])
    assert metrics["n_percentage"] == 0


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        regression_metrics([1.0, 2.0], [1.0])


def test_selection_loss_orders_every_metric_as_smaller_is_better():
    from power_modelling.core.metrics import selection_loss

    assert selection_loss("rmspe", 5.0) < selection_loss("rmspe", 6.0)
    assert selection_loss("r2", 0.9) < selection_loss("r2", 0.5)
    assert selection_loss("within_10pct", 0.8) < selection_loss("within_10pct", 0.2)
    assert selection_loss("r2", float("nan")) == float("inf")
    with pytest.raises(ValueError, match="not one of"):
        selection_loss("accuracy", 1.0)
