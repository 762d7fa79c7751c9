"""Estimators built from parameters: a hand-checkable polynomial, transforms, pickling."""

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io
import yaml
from sklearn.compose import TransformedTargetRegressor

from power_modelling.core.estimators import (
    build_estimator,
    build_inputs,
    required_columns,
    shifted_log,
)
from power_modelling.datasets import SkopsModelDataset

SPEC = {
    "features": ["a"],
    "special_terms": {"ab": ["a", "b"]},
    "polynomial_degree": 3,
    "scaler": "standard",
    "regressor": {
        "type": "lasso_cv",
        "cv": 5,
        "alphas": [1e-6, 1e-4, 1e-2],
        "max_iter": 100000,
        "tol": 1e-10,
    },
}


def _frame(a, b) -> pd.DataFrame:
    return pd.DataFrame({"a": a, "b": b, "unused": "text"})


def test_inputs_are_polynomial_terms_and_special_products():
    inputs = build_inputs(SPEC).fit_transform(_frame([2.0, 3.0], [5.0, 7.0]))
    np.testing.assert_allclose(inputs, [[2, 4, 8, 10], [3, 9, 27, 21]])


def test_log_inputs_apply_to_features_and_special_terms():
    spec = {**SPEC, "log_inputs": True, "polynomial_degree": 1}
    inputs = build_inputs(spec).fit_transform(_frame([1.0], [3.0]))
    np.testing.assert_allclose(inputs, [[np.log(2.0), np.log(4.0)]])


def test_baseline_recovers_a_hand_checkable_polynomial():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(1, 4, 60), rng.uniform(0, 2, 60)
    y = 1 + 2 * a + 0.5 * a**3 + 3 * a * b
    model = build_estimator(SPEC).fit(_frame(a, b), y)
    # y(a=2, b=1) = 1 + 4 + 4 + 6 = 15; y(a=3, b=0.5) = 1 + 6 + 13.5 + 4.5 = 25
    np.testing.assert_allclose(model.predict(_frame([2.0, 3.0], [1.0, 0.5])), [15, 25], rtol=1e-3)
    restored = pickle.loads(pickle.dumps(model))  # the data/06_models contract
    np.testing.assert_allclose(restored.predict(_frame([2.0], [1.0])), [15], rtol=1e-3)


def test_shifted_log_round_trip():
    transform = shifted_log(100.0).fit(np.zeros((1, 1)))
    y = np.array([[-5.0], [0.0], [20.0]])
    np.testing.assert_allclose(transform.transform(y), np.log([[95.0], [100.0], [120.0]]))
    np.testing.assert_allclose(transform.inverse_transform(transform.transform(y)), y, atol=1e-9)


def test_log_target_estimator_predicts_natural_units_and_pickles():
    spec = {
        "features": ["a"],
        "log_target": True,
        "regressor": {"type": "extra_trees", "n_estimators": 5},
    }
    a = np.arange(1.0, 21.0)
    y = a - 3.0  # negative and zero "dynamic power" values are fine with a shift
    model = build_estimator(spec, random_state=1, target_shift=50.0).fit(_frame(a, a), y)
    assert isinstance(model, TransformedTargetRegressor)
    np.testing.assert_allclose(model.predict(_frame(a, a)), y, atol=1e-9)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(restored.predict(_frame([4.0], [0.0])), [1.0], atol=1e-9)


CATALOG = Path(__file__).resolve().parents[2] / "conf" / "base" / "catalog_modelling.yml"
LASSO = {"type": "lasso_cv", "cv": 5, "max_iter": 10000, "alphas": 50, "tol": 1e-6}
TREES = {"type": "extra_trees", "n_estimators": 50, "max_features": 1.0}
TREND_SPEC = {
    "features": ["a"],
    "log_inputs": True,
    "trend": {"scaler": "standard", "regressor": LASSO},
    "regressor": TREES,
    "log_target": True,
}


def test_trend_with_trees_on_residuals_extrapolates_a_power_law():
    """y = 3 x^0.7 learned on x in [1e3, 1e6]: the trend carries the law outside the range,
    where plain extra trees predict the value of the nearest training leaf."""
    x = np.geomspace(1e3, 1e6, 80)
    y = 3.0 * x**0.7
    trend = build_estimator(TREND_SPEC, random_state=0).fit(_frame(x, x), y)
    plain = build_estimator({**TREND_SPEC, "trend": None}, random_state=0).fit(_frame(x, x), y)
    far = np.array([1e1, 1e2, 1e8])
    relative = trend.predict(_frame(far, far)) / (3.0 * far**0.7) - 1
    # the inputs are log1p(x): at x = 10, log1p(10) = log(11) costs 1.1^0.7 - 1 = 7 %
    assert abs(relative[0]) < 0.08
    assert np.all(np.abs(relative[1:]) < 0.02)
    assert plain.predict(_frame([1e1], [1e1]))[0] > 10 * 3.0 * 10**0.7  # stuck at x = 1e3
    # inside the range the trees still correct the trend
    np.testing.assert_allclose(trend.predict(_frame(x, x)), y, rtol=1e-6)


def test_trend_estimator_loads_with_the_catalogs_skops_trusted_types(tmp_path):
    """Local model files and ``mlflow.sklearn`` both use skops; loading trusts only the
    catalog's types (one list for both)."""
    x = np.geomspace(1e3, 1e6, 40)
    model = build_estimator(TREND_SPEC, random_state=0).fit(_frame(x, x), 3.0 * x**0.7)
    catalog = yaml.safe_load(CATALOG.read_text())
    trusted = catalog["{layer_class}.{target}_model"]["trusted_types"]
    mlflow_trusted = catalog["{layer_class}.{target}_model_mlflow"]["save_args"]
    assert mlflow_trusted["skops_trusted_types"] == trusted
    dataset = SkopsModelDataset(str(tmp_path / "model.skops"), trusted_types=trusted)
    dataset.save(model)
    untrusted = set(skops.io.get_untrusted_types(file=tmp_path / "model.skops"))
    assert untrusted <= set(trusted), untrusted - set(trusted)
    restored = dataset.load()
    np.testing.assert_allclose(
        restored.predict(_frame([10.0], [0.0])), model.predict(_frame([10.0], [0.0]))
    )


def test_required_columns_and_unknown_settings():
    assert required_columns(SPEC) == ["a", "b"]
    with pytest.raises(ValueError, match="regressor type"):
        build_estimator({**SPEC, "regressor": {"type": "svm"}})
    with pytest.raises(ValueError, match="scaler"):
        build_estimator({**SPEC, "scaler": "quantile"})
