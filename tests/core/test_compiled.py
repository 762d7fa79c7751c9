"""NumPy predictors of the physics estimators: the same numbers as the scikit-learn estimators
(extra trees and gradient boosting, every power trend, both tree walkers), through their
state and back."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.dummy import DummyRegressor

from power_modelling.core import compiled
from power_modelling.core.compiled import NotCompilable, TreeEnsemble, from_state, to_state
from power_modelling.core.loco import trainable
from power_modelling.core.physics_estimators import (
    FixedCostRuntimeRegressor,
    ThroughputPowerRegressor,
)
from power_modelling.core.physics_features import fit_device_constants

CLASSES = ("convolutional", "pooling", "dense")
VARIANTS = [
    ("runtime", "extra_trees", None),
    ("runtime", "hist_gradient_boosting", None),
    ("power", "extra_trees", "throughput"),
    ("power", "extra_trees", "shape"),
    ("power", "extra_trees", "blend"),
    ("power", "hist_gradient_boosting", "blend"),
]


def _fit(table: pd.DataFrame, layer_class: str, target: str, trees: str, trend: str | None):
    rows = trainable(table, layer_class, target)
    constants = fit_device_constants(table)
    settings = {"device_constants": constants, "trees": trees, "n_estimators": 30, "max_iter": 40}
    if target == "runtime":
        return FixedCostRuntimeRegressor(layer_class, **settings).fit(rows, rows["runtime"])
    return ThroughputPowerRegressor(layer_class, trend=trend, **settings).fit(rows, rows["power"])


@pytest.fixture(scope="module")
def fitted(synthetic_table: pd.DataFrame) -> dict[tuple, object]:
    return {
        (layer_class, *variant): _fit(synthetic_table, layer_class, *variant)
        for layer_class in CLASSES
        for variant in VARIANTS
    }


@pytest.mark.parametrize("layer_class", CLASSES)
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(filter(None, v)))
def test_the_numpy_predictor_predicts_what_the_estimator_does(
    fitted: dict, synthetic_table: pd.DataFrame, layer_class: str, variant: tuple, monkeypatch
) -> None:
    estimator = fitted[(layer_class, *variant)]
    rows = synthetic_table[synthetic_table["layer_class"] == layer_class]
    expected = estimator.predict(rows)
    header, arrays = to_state(estimator.predictor(compiled=True))
    restored = from_state(header, arrays)
    assert type(restored).__name__ in ("RuntimePredictor", "PowerPredictor")
    np.testing.assert_allclose(restored.predict(rows), expected, rtol=1e-12)
    # many rows take scikit-learn's walker over the same nodes: same numbers
    monkeypatch.setattr(compiled, "NUMPY_PAIRS_MAX", 0)
    again = from_state(header, arrays)
    np.testing.assert_allclose(again.predict(rows), expected, rtol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    rows=st.lists(
        st.lists(st.floats(-3, 3, allow_nan=False, width=32), min_size=3, max_size=3),
        min_size=1,
        max_size=40,
    )
)
def test_tree_walk_matches_scikit_learn_on_any_input(rows: list[list[float]]) -> None:
    """Split thresholds compared in float32 exactly as scikit-learn does (values at or near a
    threshold go the same way)."""
    forest, boosting = _small_ensembles()
    matrix = np.asarray(rows, dtype="float64")
    for model in (forest, boosting):
        ours = TreeEnsemble.from_sklearn(model).predict(matrix)
        np.testing.assert_allclose(ours, model.predict(matrix), rtol=1e-12, atol=1e-15)


_ENSEMBLES: list = []


def _small_ensembles():
    if not _ENSEMBLES:
        from sklearn.ensemble import ExtraTreesRegressor, HistGradientBoostingRegressor

        rng = np.random.default_rng(0)
        X = np.round(rng.normal(size=(300, 3)), 1)  # noqa: N806 (ties: values on thresholds)
        y = X[:, 0] ** 2 + np.sin(3 * X[:, 1]) + rng.normal(scale=0.1, size=300)
        _ENSEMBLES.extend(
            [
                ExtraTreesRegressor(n_estimators=20, random_state=0).fit(X, y),
                HistGradientBoostingRegressor(max_iter=30, random_state=0).fit(X, y),
            ]
        )
    return _ENSEMBLES


def test_other_estimators_have_no_numpy_predictor() -> None:
    dummy = DummyRegressor().fit(np.zeros((2, 1)), [0.0, 1.0])
    with pytest.raises(NotCompilable, match="DummyRegressor"):
        TreeEnsemble.from_sklearn(dummy)
    with pytest.raises(NotCompilable):
        to_state(dummy)


def test_a_state_of_another_version_is_refused(fitted: dict) -> None:
    header, arrays = to_state(fitted[("dense", "runtime", "extra_trees", None)].predictor(True))
    with pytest.raises(ValueError, match="version"):
        from_state({**header, "version": 0}, arrays)


def test_a_matrix_of_the_wrong_width_is_named(fitted: dict) -> None:
    trees = fitted[("dense", "runtime", "extra_trees", None)].predictor(True).trees
    with pytest.raises(ValueError, match=f"{trees.n_features} feature columns"):
        trees.predict(np.zeros((2, trees.n_features + 1)))


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(filter(None, v)))
def test_the_kernel_fallback_survives_the_state(fitted: dict, variant: tuple) -> None:
    """A pooling kernel never trained on (windowed average pooling) predicts the same through
    the state, and a version-1 state (written before the fallback) predicts as the trees do."""
    from tests.core.conftest import features_of, pool_layer

    estimator = fitted[("pooling", *variant)]
    unseen = features_of([pool_layer("t", 128, 56, 2, 2, kind="AVERAGE")])
    header, arrays = to_state(estimator.predictor(compiled=True))
    assert header["version"] == 2 and header["predictor"]["kernel_features"]
    assert from_state(header, arrays).predict(unseen)[0] == estimator.predict(unseen)[0]

    old = {k: v for k, v in arrays.items() if not k.endswith(("kernels_seen", "energy"))}
    old_header = {"version": 1, "predictor": {**header["predictor"], "kernel_features": []}}
    old_header["predictor"]["parts"] = {
        name: part
        for name, part in header["predictor"]["parts"].items()
        if name not in ("kernels_seen", "energy")
    }
    without = estimator.predictor()
    without.kernel_features = ()
    assert from_state(old_header, old).predict(unseen)[0] == pytest.approx(
        without.predict(unseen)[0], rel=1e-12
    )
    assert without.predict(unseen)[0] != pytest.approx(estimator.predict(unseen)[0], rel=1e-3)
