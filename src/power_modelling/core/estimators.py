"""Build scikit-learn estimators from parameter dictionaries (``parameters_modelling.yml``).

Every estimator is scikit-learn + NumPy, plus one small project class,
:class:`TrendResidualRegressor` (a log-linear trend with trees on its residuals; listed in
``skops_trusted_types`` in ``catalog_modelling.yml``). Each one starts with a
``ColumnTransformer`` that picks its own columns from the full feature table, and any target
transform lives inside a ``TransformedTargetRegressor``: ``.predict`` returns natural units.

An estimator specification (``spec``) has the keys:

- ``features``: feature columns used as they are (after the optional ``log_inputs``);
- ``special_terms``: ``{name: [column, ...]}`` -- one extra input per term, the product of the
  named columns (NeuralPower's "special terms", e.g. convolution operations per input);
- ``log_inputs``: ``log1p`` of every input (features and special terms);
- ``polynomial_degree``: polynomial expansion of ``features`` (1: none);
- ``scaler``: ``standard`` / ``robust`` / ``minmax`` / ``null``;
- ``regressor``: ``{type: lasso_cv | random_forest | extra_trees | gradient_boosting, ...}``,
  the remaining keys are passed to the scikit-learn class;
- ``trend``: optional ``{scaler, regressor}``: a (log-)linear trend fitted first on the same
  inputs; ``regressor`` is then fitted on its residuals. Trees cannot extrapolate; with a trend
  the prediction outside the training range follows the trend (a power law in log space) and
  the trees only correct it inside;
- ``log_target``: fit ``log(y + shift)`` and predict ``exp(.) - shift`` (``shift`` is given by
  the caller: the idle power for dynamic power, i.e. the model learns total power);
- ``model_total_power``: overrides the target's setting for this estimator (read by the caller,
  ``nodes.fit_spec``): ``false`` learns ``log(dynamic power)``, whose power law extrapolates,
  where ``log(idle + dynamic)`` flattens at the idle power.

A spec ``{physics: <layer_class>, settings: {...}}`` is instead one of the physics estimators
of :mod:`power_modelling.core.physics_estimators`, chosen by the target: runtime = fixed cost of
the shape + the device's marginal cost of the work, dynamic power = a saturating utilisation
trend; both are non-decreasing in work (batch size, FLOPs, bytes) at a fixed layer shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.polynomial.polynomial import polyval
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import ExtraTreesRegressor, GradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import LassoCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MinMaxScaler,
    PolynomialFeatures,
    RobustScaler,
    StandardScaler,
)

SCALERS = {"standard": StandardScaler, "robust": RobustScaler, "minmax": MinMaxScaler}
REGRESSORS = {
    "lasso_cv": LassoCV,
    "random_forest": RandomForestRegressor,
    "extra_trees": ExtraTreesRegressor,
    "gradient_boosting": GradientBoostingRegressor,
}
SEEDED = {"random_forest", "extra_trees", "gradient_boosting"}


class TrendResidualRegressor(RegressorMixin, BaseEstimator):
    """``trend`` fitted on ``y``, then ``residual`` fitted on ``y - trend.predict(X)``;
    predicts their sum. With a linear trend on log features and a log target, the prediction
    outside the training range follows the fitted power law, and the residual model (trees)
    adds at most the correction of the nearest training leaf."""

    def __init__(self, trend: RegressorMixin, residual: RegressorMixin) -> None:
        self.trend = trend
        self.residual = residual

    def fit(self, X: Any, y: Any) -> TrendResidualRegressor:  # noqa: N803 (sklearn API)
        y = np.asarray(y, dtype=float)
        self.trend_ = clone(self.trend).fit(X, y)
        self.residual_ = clone(self.residual).fit(X, y - self.trend_.predict(X))
        return self

    def predict(self, X: Any) -> np.ndarray:  # noqa: N803 (sklearn API)
        return self.trend_.predict(X) + self.residual_.predict(X)


def required_columns(spec: dict[str, Any]) -> list[str]:
    """Every input column an estimator built from ``spec`` reads, in order, without repeats."""
    if spec.get("physics"):
        from power_modelling.core.physics_features import REQUIRED_COLUMNS  # noqa: PLC0415

        return list(REQUIRED_COLUMNS)
    columns = list(spec["features"])
    for term_columns in (spec.get("special_terms") or {}).values():
        columns += list(term_columns)
    return list(dict.fromkeys(columns))


def _log1p_step() -> tuple[str, FunctionTransformer]:
    return "log1p", FunctionTransformer(np.log1p, feature_names_out="one-to-one")


def _product_of_columns() -> FunctionTransformer:
    """One column: the row-wise product of the selected columns (a special term)."""
    return FunctionTransformer(
        np.prod,
        kw_args={"axis": 1, "keepdims": True},
        validate=True,
    )


def build_inputs(spec: dict[str, Any]) -> ColumnTransformer:
    """Column selection, optional ``log1p``, polynomial expansion and special terms."""
    log = [_log1p_step()] if spec.get("log_inputs", False) else []
    degree = int(spec.get("polynomial_degree", 1))
    expand = [("polynomial", PolynomialFeatures(degree, include_bias=False))] if degree > 1 else []
    transformers: list[tuple[str, Any, list[str]]] = [
        (
            "features",
            Pipeline([*log, *expand]) if log or expand else "passthrough",
            list(spec["features"]),
        ),
    ]
    for name, columns in (spec.get("special_terms") or {}).items():
        transformers.append(
            (name, Pipeline([("product", _product_of_columns()), *log]), list(columns))
        )
    return ColumnTransformer(transformers, remainder="drop")


def build_regressor(regressor: dict[str, Any], random_state: int) -> RegressorMixin:
    """The final regressor, seeded where it is random."""
    settings = dict(regressor)
    kind = settings.pop("type")
    if kind not in REGRESSORS:
        raise ValueError(f"Unknown regressor type '{kind}'; expected one of {sorted(REGRESSORS)}")
    if kind in SEEDED or (kind == "lasso_cv" and settings.get("selection") == "random"):
        settings.setdefault("random_state", random_state)
    return REGRESSORS[kind](**settings)


def shifted_log(shift: float) -> Pipeline:
    """``y -> log(y + shift)`` and back, from NumPy functions only (picklable anywhere)."""
    return Pipeline(
        [
            (
                "shift",
                FunctionTransformer(
                    polyval,  # polyval(y, [shift, 1]) == shift + y
                    inverse_func=polyval,
                    kw_args={"c": [float(shift), 1.0]},
                    inv_kw_args={"c": [-float(shift), 1.0]},
                    check_inverse=False,
                ),
            ),
            ("log", FunctionTransformer(np.log, inverse_func=np.exp, check_inverse=False)),
        ]
    )


def _scaler_step(scaler: str | None) -> list[tuple[str, Any]]:
    if not scaler:
        return []
    if scaler not in SCALERS:
        raise ValueError(f"Unknown scaler '{scaler}'; expected one of {sorted(SCALERS)}")
    return [("scaler", SCALERS[scaler]())]


def _scaled(trend: dict[str, Any], random_state: int) -> Pipeline:
    """The trend of a ``trend`` spec: optional scaler, then its regressor."""
    return Pipeline(
        [
            *_scaler_step(trend.get("scaler")),
            ("regressor", build_regressor(trend["regressor"], random_state)),
        ]
    )


def build_estimator(
    spec: dict[str, Any],
    random_state: int = 42,
    target_shift: float = 0.0,
    *,
    target: str = "runtime",
    device_constants: dict[str, float] | None = None,
) -> RegressorMixin:
    """A fresh, unfitted estimator for ``spec`` (see the module docstring); ``target`` and
    ``device_constants`` (``fit_device_constants`` of all classes' training rows) are what a
    physics estimator needs."""
    if spec.get("physics"):
        return _physics_estimator(spec, target, random_state, device_constants)
    steps: list[tuple[str, Any]] = [
        ("inputs", build_inputs(spec)),
        *_scaler_step(spec.get("scaler")),
    ]
    regressor = build_regressor(spec["regressor"], random_state)
    if spec.get("trend"):
        regressor = TrendResidualRegressor(
            trend=_scaled(spec["trend"], random_state), residual=regressor
        )
    steps.append(("regressor", regressor))
    model = Pipeline(steps)
    if spec.get("log_target", False):
        return TransformedTargetRegressor(
            regressor=model, transformer=shifted_log(target_shift), check_inverse=False
        )
    return model


def _physics_estimator(
    spec: dict[str, Any],
    target: str,
    random_state: int,
    device_constants: dict[str, float] | None,
) -> RegressorMixin:
    """The physics estimator of ``target`` (``runtime`` or dynamic ``power``) for the layer
    class ``spec["physics"]``."""
    from power_modelling.core import physics_estimators as physics  # noqa: PLC0415

    kinds = {
        "runtime": physics.FixedCostRuntimeRegressor,
        "power": physics.ThroughputPowerRegressor,
    }
    if target not in kinds:
        raise ValueError(f"physics estimators model {list(kinds)}, not {target!r}")
    return kinds[target](
        spec["physics"],
        device_constants=device_constants,
        random_state=random_state,
        **(spec.get("settings") or {}),
    )
