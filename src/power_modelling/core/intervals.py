"""90 % prediction intervals from conformal prediction on grouped-CV residuals.

Why crepes, and how the grouped setting fits it: split conformal prediction needs
calibration residuals that are exchangeable with the errors on new layers. The errors that
matter are those on *unseen networks*, so the calibration residuals are the out-of-fold
residuals of a ``GroupKFold`` by architecture family (:func:`calibration_groups`; by CNN
where the training set has too few families; :func:`grouped_oof_predictions`: each layer
predicted by a model that never saw its network, nor its siblings).
``crepes.ConformalRegressor`` takes residuals (and optional difficulty estimates) directly,
so the grouping stays ours and the served model is the one fitted on all data: the
calibration is a few hundred numbers stored as JSON next to it. MAPIE was considered: its
``CrossConformalRegressor`` accepts ``GroupKFold`` groups, but predicts with the k fold
models (CV+), so serving would need those k models (and MAPIE types trusted by skops)
instead of our single model; its split mode wants a separate calibration set, which wastes
CNNs we need for training. Crepes fits the grouped setting without either cost.

Residuals are taken in log space (``log(y + shift) - log(ŷ + shift)``): runtimes span four
orders of magnitude and errors are relative. ``shift`` is the idle power for power (the
interval is calibrated on *total* power, whose relative error is meaningful where dynamic
power is ~0 W) and 0 for runtime. The intervals are normalised by a difficulty
``sigma = 1 + d``, ``d`` the nearest-neighbour distance ratio of the applicability domain
(``domain.nearest_distance``; out-of-fold distances for the calibration rows): layers far
from the training set, such as a batch size never trained on, get proportionally wider
intervals.

Network totals (:func:`network_intervals`): count-weighted sums of the per-layer bounds
(``runtime_lo = Σ count·runtime_lo``; energy ``Σ count·power_lo·runtime_lo``). This assumes
the layer errors of one network go the same way (comonotone), which leave-one-CNN-out shows
they largely do (a network's layers share its family's kernels); it is the conservative
combination. ``method="independent"`` adds half-widths in quadrature instead (narrower,
valid only for independent errors). The measured coverage of both is in the LOCO report.

Prediction needs no crepes: :func:`fit_conformal` stores crepes' half-width of the
normalised interval at :data:`CONFIDENCE` (``q``: crepes' bound at ``sigma = 1``) with the
residuals, and :func:`conformal_intervals` computes ``log ŷ ± q·sigma``, crepes' own formula,
from it (crepes imports scikit-learn and SciPy: a second of a one-network prediction run).
Another confidence, or a calibration stored without ``half_width``, asks crepes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from sklearn.base import RegressorMixin

CONFIDENCE = 0.9
#: What the calibration's grouped CV holds out: whole architecture families (CNN name prefix,
#: ``core.splits.family``: vgg11 and vgg19 are one) or single CNNs. A held-out CNN's siblings
#: stay in training, so CNN-grouped residuals describe a network *like* the training set:
#: holding out whole families of the bundled data, intervals calibrated that way covered 76 %
#: of runtimes and 72 % of powers; calibrated on held-out families, 93 % and 94 %.
CALIBRATION_GROUPS = ("family", "model")
#: Fewest families for family-grouped calibration (each fold trains on 2+ families);
#: fewer, and the CNNs are held out instead.
MIN_CALIBRATION_FAMILIES = 3


def grouped_oof_predictions(
    fit: Callable[[pd.DataFrame], RegressorMixin],
    features: pd.DataFrame,
    groups: np.ndarray,
    n_splits: int = 5,
    difficulty: Callable[[pd.DataFrame, pd.DataFrame], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold predictions by ``GroupKFold(n_splits)`` over ``groups`` (CNNs), and each
    row's out-of-fold difficulty ``sigma`` (1 without ``difficulty``).

    ``fit(train_rows)`` returns an estimator fitted on those rows (it knows its target);
    ``difficulty(train_rows, test_rows)``: per test row, the domain distance ratio to
    ``train_rows`` (e.g. ``nearest_distance(test, fit_domain(train, train.model))``).
    """
    from sklearn.model_selection import GroupKFold  # noqa: PLC0415 (fitting only)

    groups = np.asarray(groups)
    n_groups = len(set(groups.tolist()))
    if n_groups < 2:
        raise ValueError(f"grouped_oof_predictions: need 2+ groups (CNNs), got {n_groups}")
    predicted = np.full(len(features), np.nan)
    sigma = np.ones(len(features))
    splitter = GroupKFold(n_splits=min(n_splits, n_groups))
    for train, test in splitter.split(features, groups=groups):
        train_rows, test_rows = features.iloc[train], features.iloc[test]
        predicted[test] = fit(train_rows).predict(test_rows)
        if difficulty is not None:
            sigma[test] = difficulty_sigma(difficulty(train_rows, test_rows))
    return predicted, sigma


def calibration_groups(cnns: np.ndarray | pd.Series, by: str = "family") -> tuple[np.ndarray, str]:
    """The groups the calibration CV holds out, and which they are (``"family"`` or
    ``"model"``): the CNNs' architecture families when ``by`` is ``"family"`` and they span
    :data:`MIN_CALIBRATION_FAMILIES` or more, else the CNNs themselves."""
    from power_modelling.core.splits import family  # noqa: PLC0415

    if by not in CALIBRATION_GROUPS:
        raise ValueError(f"calibration grouping '{by}' is not one of {CALIBRATION_GROUPS}")
    names = np.asarray(cnns).astype(str)
    if by == "family":
        families = np.array([family(name) for name in names], dtype=object)
        if len(set(families.tolist())) >= MIN_CALIBRATION_FAMILIES:
            return families, "family"
    return names.astype(object), "model"


def difficulty_sigma(distance_ratio: np.ndarray) -> np.ndarray:
    """``1 + d`` (``d`` the domain's nearest-neighbour distance ratio; NaN → 1 + the largest
    finite one, i.e. treated as far)."""
    ratio = np.asarray(distance_ratio, dtype="float64")
    finite = ratio[np.isfinite(ratio)]
    fallback = float(finite.max()) if finite.size else 1.0
    return 1.0 + np.clip(np.where(np.isfinite(ratio), ratio, fallback), 0.0, None)


def out_of_fold_sigma(
    features: pd.DataFrame, groups: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]]
) -> np.ndarray:
    """Each row's difficulty ``1 + d`` against the applicability domain fitted on the other
    folds' rows (``d``: ``domain.nearest_distance``, as prediction computes it against the
    domain of all training rows): a held-out CNN unlike the rest gets the larger sigma its
    residuals need, so the calibration learns how error grows with distance."""
    from power_modelling.core.domain import fit_domain, nearest_distance  # noqa: PLC0415

    groups = np.asarray(groups)
    sigma = np.ones(len(features))
    for train, test in folds:
        domain = fit_domain(features.iloc[train], groups[train])
        sigma[test] = difficulty_sigma(nearest_distance(features.iloc[test], domain))
    return sigma


def fit_conformal(
    y_true: np.ndarray,
    y_oof: np.ndarray,
    sigma: np.ndarray | None = None,
    shift: float = 0.0,
    difficulty: str | None = None,
) -> dict[str, Any]:
    """The JSON-able calibration of one (layer class, target): log residuals of the grouped
    out-of-fold predictions (rows without a usable value are left out) and their sigmas.
    ``difficulty``: what the sigmas are (``"domain_distance"``: :func:`out_of_fold_sigma`;
    prediction then scales by the same, see :func:`prediction_sigma`)."""
    true = np.asarray(y_true, dtype="float64") + shift
    predicted = np.asarray(y_oof, dtype="float64") + shift
    sigma = np.ones(len(true)) if sigma is None else np.asarray(sigma, dtype="float64")
    usable = (true > 0) & (predicted > 0) & np.isfinite(true) & np.isfinite(predicted)
    usable &= np.isfinite(sigma) & (sigma > 0)
    if usable.sum() < 1:
        raise ValueError("fit_conformal: no row with a positive measurement and prediction")
    residuals = (np.log(true[usable]) - np.log(predicted[usable])).round(6)
    sigmas = sigma[usable].round(6)
    calibration = {
        "method": "crepes ConformalRegressor, normalised, on grouped out-of-fold log residuals",
        "shift": float(shift),
        "residuals": residuals.tolist(),
        "sigmas": sigmas.tolist(),
        "n": int(usable.sum()),
    }
    if difficulty is not None:
        calibration["difficulty"] = difficulty
    if calibration["n"] >= min_calibration_rows(CONFIDENCE):
        calibration["half_width"] = {str(CONFIDENCE): _crepes_half_width(calibration, CONFIDENCE)}
    return calibration


def prediction_sigma(
    calibration: dict[str, Any], distance_ratio: np.ndarray | None
) -> np.ndarray | None:
    """The sigmas of new rows for ``calibration``: ``1 + d`` of their domain distance ratios
    when it was calibrated on those (``difficulty: domain_distance``), else ``None`` (1)."""
    if calibration.get("difficulty") != "domain_distance" or distance_ratio is None:
        return None
    return difficulty_sigma(distance_ratio)


def min_calibration_rows(confidence: float = CONFIDENCE) -> int:
    """Fewest residuals that bound an interval at ``confidence`` (as crepes computes it in
    floating point: 10 at 90 %, where ``(1 - 0.9) · 10`` falls just below 1)."""
    return math.ceil(1.0 / (1.0 - confidence)) - 1


def _crepes(calibration: dict[str, Any]) -> Any:
    from crepes import ConformalRegressor  # noqa: PLC0415 (scikit-learn, SciPy: fitting only)

    return ConformalRegressor().fit(
        np.asarray(calibration["residuals"]), sigmas=np.asarray(calibration["sigmas"])
    )


def _crepes_half_width(calibration: dict[str, Any], confidence: float) -> float:
    """crepes' normalised half-width ``q`` (its interval at ``sigma = 1`` around 0)."""
    bounds = _crepes(calibration).predict_int(np.zeros(1), sigmas=np.ones(1), confidence=confidence)
    return float(bounds[0, 1])


def conformal_intervals(
    y_pred: np.ndarray,
    calibration: dict[str, Any],
    sigma: np.ndarray | None = None,
    confidence: float = CONFIDENCE,
    shift: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)`` in natural units around ``y_pred`` (the same units as the calibration's
    targets, minus ``shift``: dynamic power when calibrated on total power with the idle
    power as shift). ``shift`` overrides the calibration's (another idle power).

    With fewer calibration rows than the confidence needs (``n < 1/(1-confidence) - 1``)
    crepes returns an unbounded interval: ``lo = -shift`` (zero total), ``hi = inf``.
    """
    shift = float(calibration["shift"] if shift is None else shift)
    predicted = np.asarray(y_pred, dtype="float64")
    if int(calibration["n"]) < min_calibration_rows(confidence):
        # too few held-out residuals for this confidence: unbounded, said by the caller
        # (crepes would warn on every call and return the same)
        return np.full(len(predicted), -shift), np.full(len(predicted), np.inf)
    sigma = np.ones(len(predicted)) if sigma is None else np.asarray(sigma, dtype="float64")
    lo, hi = np.full(len(predicted), np.nan), np.full(len(predicted), np.nan)
    usable = np.isfinite(predicted) & (predicted + shift > 0) & np.isfinite(sigma)
    if usable.any():
        centre = np.log(predicted[usable] + shift)
        stored = (calibration.get("half_width") or {}).get(str(confidence))
        if stored is not None:  # crepes' interval, computed once at calibration
            lower = centre - float(stored) * sigma[usable]
            upper = centre + float(stored) * sigma[usable]
        else:
            bounds = _crepes(calibration).predict_int(
                centre, sigmas=sigma[usable], confidence=confidence
            )
            lower, upper = bounds[:, 0], bounds[:, 1]
        lo[usable] = np.exp(lower) - shift
        hi[usable] = np.exp(upper) - shift
    return lo, hi


def coverage(y_true: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """Share of rows with a measurement inside ``[lo, hi]`` (rows without one left out)."""
    true = np.asarray(y_true, dtype="float64")
    usable = np.isfinite(true) & ~np.isnan(lo) & ~np.isnan(hi)
    if not usable.any():
        return float("nan")
    inside = (true[usable] >= lo[usable]) & (true[usable] <= hi[usable])
    return float(inside.mean())


def network_intervals(
    layers: pd.DataFrame, network_column: str = "model", method: str = "comonotone"
) -> pd.DataFrame:
    """Per network: predicted totals and their bounds from per-layer predictions.

    ``layers`` columns: ``count``, ``runtime_pred``, ``runtime_lo``, ``runtime_hi`` (ms),
    ``power_pred``, ``power_lo``, ``power_hi`` (W, the same power throughout: dynamic, or
    total if the energy including idle is wanted). Returns ``runtime_ms`` / ``energy_mj``
    with ``_lo`` / ``_hi``. ``method``: ``"comonotone"`` sums the bounds (errors of one
    network go the same way: conservative); ``"independent"`` adds half-widths in quadrature
    (below and above the total separately).
    """
    if method not in ("comonotone", "independent"):
        raise ValueError(f"method '{method}' is not 'comonotone' or 'independent'")
    count = layers["count"].astype("float64")
    parts = pd.DataFrame(
        {
            network_column: layers[network_column].to_numpy(),
            "runtime_ms": count * layers["runtime_pred"],
            "runtime_ms_lo": count * layers["runtime_lo"],
            "runtime_ms_hi": count * layers["runtime_hi"],
            "energy_mj": count * layers["power_pred"] * layers["runtime_pred"],
            "energy_mj_lo": count * layers["power_lo"].clip(lower=0) * layers["runtime_lo"],
            "energy_mj_hi": count * layers["power_hi"] * layers["runtime_hi"],
        }
    )
    if method == "independent":
        for total in ("runtime_ms", "energy_mj"):
            below = (parts[total] - parts[f"{total}_lo"]) ** 2
            above = (parts[f"{total}_hi"] - parts[total]) ** 2
            parts[f"{total}_lo"], parts[f"{total}_hi"] = below, above
        sums = parts.groupby(network_column, sort=True).sum()
        for total in ("runtime_ms", "energy_mj"):
            sums[f"{total}_lo"] = sums[total] - np.sqrt(sums[f"{total}_lo"])
            sums[f"{total}_hi"] = sums[total] + np.sqrt(sums[f"{total}_hi"])
        return sums
    return parts.groupby(network_column, sort=True).sum()
