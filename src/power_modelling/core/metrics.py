"""Regression metrics of the project: NeuralPower's RMSPE and nn-Meter's ±10 % accuracy."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

ArrayLike = npt.ArrayLike

#: Metrics ``selection.metric`` may name; larger is better for the last two.
SELECTION_METRICS = ("rmspe", "mape", "rmse", "mae", "r2", "within_10pct")
HIGHER_IS_BETTER = frozenset({"r2", "within_10pct"})


def selection_loss(metric: str, value: float) -> float:
    """``value`` of ``metric`` as a loss (smaller is better; NaN is the worst)."""
    if metric not in SELECTION_METRICS:
        raise ValueError(f"selection.metric '{metric}' is not one of {SELECTION_METRICS}")
    if not np.isfinite(value):
        return np.inf
    return -value if metric in HIGHER_IS_BETTER else value


def regression_metrics(
    y_true: ArrayLike, y_pred: ArrayLike, percentage_floor: float = 0.0
) -> dict[str, float]:
    """RMSE, MAE, R², and the percentage metrics RMSPE, MAPE (in %) and ``within_10pct``.

    Rows with a missing measurement or prediction are left out (``n`` counts the rest).
    Percentage metrics divide by the measurement, so rows with ``|y_true| <= percentage_floor``
    are left out of them -- never silently: ``n_percentage`` counts the rows they use. With no
    such row they are NaN. ``within_10pct`` is the share (0-1) of predictions within ±10 %.
    """
    true = np.asarray(y_true, dtype=float)
    pred = np.asarray(y_pred, dtype=float)
    if true.shape != pred.shape:
        raise ValueError(f"y_true {true.shape} and y_pred {pred.shape} differ in shape")
    valid = np.isfinite(true) & np.isfinite(pred)
    true, pred = true[valid], pred[valid]
    error = pred - true
    result = {
        "n": float(true.size),
        "rmse": _safe(lambda: float(np.sqrt(np.mean(error**2))), true.size),
        "mae": _safe(lambda: float(np.mean(np.abs(error))), true.size),
        "r2": _r2(true, error),
    }
    usable = np.abs(true) > percentage_floor
    relative = error[usable] / true[usable]
    result.update(
        n_percentage=float(relative.size),
        rmspe=_safe(lambda: 100.0 * float(np.sqrt(np.mean(relative**2))), relative.size),
        mape=_safe(lambda: 100.0 * float(np.mean(np.abs(relative))), relative.size),
        within_10pct=_safe(lambda: float(np.mean(np.abs(relative) <= 0.10)), relative.size),
    )
    return result


def _safe(compute, size: int) -> float:
    return compute() if size else float("nan")


def _r2(true: np.ndarray, error: np.ndarray) -> float:
    """Coefficient of determination; NaN with fewer than two rows or a constant target."""
    if true.size < 2:
        return float("nan")
    total = float(np.sum((true - true.mean()) ** 2))
    return 1.0 - float(np.sum(error**2)) / total if total > 0 else float("nan")
