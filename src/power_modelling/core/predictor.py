"""Per-layer and whole-network predictions from the six fitted models.

One place turns ``layer_descriptions`` rows (of an engine, an ONNX file, ...) into
predictions: the inference pipeline calls ``predict_layers`` for the ``prediction`` pipeline,
the served MLflow model and the network-level evaluation alike. It is batch-first: the rows of
many networks (a ``network`` column) are featurised once and each model is called once per
layer class.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import pandas as pd

from power_modelling.core.engines import DESCRIPTION_COLUMNS
from power_modelling.core.features import (
    build_features,
    classify_layers,
    layer_problems,
    size_problems,
)
from power_modelling.core.layers import LAYER_CLASSES, TARGETS, model_key
from power_modelling.core.physics_features import with_physics_features

logger = logging.getLogger(__name__)

PREDICTION_COLUMNS = (
    "layer_name",
    "layer_type",
    "layer_class",
    "count",
    "power_prediction",
    "runtime_prediction",
    "problem",
)
SUMMARY_COLUMNS = (
    "network",
    "layers_predicted",
    "layers_other",
    "total_runtime_ms",
    "avg_power_w",
    "energy_mj",
    "status",
    "note",
)
#: ``status`` of a network in the summary; only ``predicted`` networks have totals.
PREDICTED, BAD_INPUT, NO_MODELLED_LAYER = "predicted", "bad input", "no modelled layer"
_MODELLED = ", ".join(LAYER_CLASSES)


class Estimator(Protocol):
    def predict(self, X: pd.DataFrame) -> Any: ...


def as_layer_descriptions(layers: pd.DataFrame) -> pd.DataFrame:
    """Layers to predict in the ``layer_descriptions`` schema: missing optional columns get
    their defaults, array cells (parquet, JSON, a served model's input) become lists."""
    missing = [c for c in ("layer_name", "input_dims", "output_dims") if c not in layers]
    if missing:
        raise ValueError(
            f"the layers to predict lack column(s) {missing}; expected layer_descriptions rows "
            "(power_modelling.core.engines.describe_layers)"
        )
    defaults = {"layer_type": "Unknown", "groups": 1, "count": 1, "adaptive": False}
    frame = layers.reset_index(drop=True).copy()
    for column in DESCRIPTION_COLUMNS:
        if column not in frame:
            frame[column] = defaults.get(column)
    for column in ("groups", "count"):
        frame[column] = _whole_numbers(frame[column].fillna(defaults[column]))
    for column in ("input_dims", "output_dims", "kernel", "pre_padding", "post_padding"):
        frame[column] = _as_lists(frame[column])
    return frame


def _whole_numbers(values: pd.Series) -> pd.Series:
    """``int64`` when every value is a whole number, else the values unchanged (the bad ones
    are then reported by ``layer_problems``, naming the layer, instead of failing here)."""
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.notna().all() and (numbers == np.floor(numbers)).all():
        return numbers.astype("int64")
    return values


def _as_lists(cells: pd.Series) -> pd.Series:
    """Sequence cells as lists, anything else ``None``; a column that is so already (what the
    engine reader gives) is kept as it is, without a pass per cell."""
    if set(map(type, cells.to_numpy(dtype=object))) <= {list, type(None)}:
        return cells.astype(object)
    return cells.map(lambda v: list(v) if isinstance(v, list | tuple | np.ndarray) else None)


def predict_targets(
    features: pd.DataFrame, models: Mapping[str, Estimator], layer_class: str
) -> pd.DataFrame:
    """``power_prediction`` (W, dynamic) and ``runtime_prediction`` (ms) of one layer class.

    Negative outputs (an extrapolating linear model) are not physical: they are clipped to 0
    and the number clipped is logged.
    """
    predictions = {}
    for target in TARGETS:
        key = model_key(layer_class, target)
        if key not in models:
            raise KeyError(f"no fitted model '{key}' (expected one per layer class and target)")
        values = np.asarray(models[key].predict(features), dtype=float).reshape(-1)
        if len(values) != len(features):
            raise ValueError(
                f"model '{key}' returned {len(values)} values for {len(features)} rows"
            )
        negative = int((values < 0).sum())
        if negative:
            logger.warning("%s: %d negative predictions clipped to 0", key, negative)
        predictions[f"{target}_prediction"] = np.clip(values, 0.0, None)
    return pd.DataFrame(predictions, index=features.index)


def predict_layers(
    descriptions: pd.DataFrame,
    models: Mapping[str, Estimator],
    idle_power_w: float | None = None,
    domain: Mapping[str, Any] | None = None,
    calibrations: Mapping[str, Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """Per-layer predictions, one row per description row, ``other`` included.

    Columns: ``network`` (when the descriptions have one: rows of many networks are predicted
    in one call), ``layer_name, layer_type`` (raw), ``layer_class``, ``count``,
    ``power_prediction`` (dynamic W), ``runtime_prediction`` (ms per execution), ``problem``
    and ``power_total_prediction`` (= dynamic + idle) when ``idle_power_w`` is known. Layers of
    class ``other`` keep empty (NaN) predictions.

    With the models' applicability ``domain`` (``core.domain.fit_domain``) every modelled layer
    gets ``in_domain`` and a ``domain_note`` (why not: ``batch_size 8 outside trained [1, 1]``);
    with the conformal ``calibrations`` (``{layer_class: {target: ...}}``,
    ``core.intervals.fit_conformal``) 90 % intervals ``runtime_lo/hi`` (ms) and
    ``power_lo/hi`` (dynamic W).

    Bad input is isolated, not fatal: a layer with impossible or absurd sizes
    (``features.layer_problems``, ``features.size_problems``) gets no prediction and its
    ``problem`` says why; the other layers, of every network, are featurised together once and
    predicted (``summarise_networks`` then reports its network as bad input).
    """
    frame = descriptions.reset_index(drop=True)
    problems = layer_problems(frame)
    fine = problems.isna().to_numpy()
    features = build_features(frame.loc[fine]).set_axis(np.flatnonzero(fine))
    too_big = size_problems(features)
    problems.loc[too_big.index] = problems.loc[too_big.index].fillna(too_big)
    features = with_physics_features(features.loc[too_big.isna()])
    identity = ["layer_name", "layer_type"]
    if "network" in frame.columns:
        identity.insert(0, "network")
    table = frame[identity].copy()
    table["layer_class"] = classify_layers(frame).to_numpy()
    table["count"] = _whole_numbers(frame["count"])
    table["power_prediction"] = np.nan
    table["runtime_prediction"] = np.nan
    for layer_class in LAYER_CLASSES:
        rows = features.index[features["layer_class"] == layer_class]
        if len(rows):
            predicted = predict_targets(features.loc[rows], models, layer_class)
            table.loc[rows, predicted.columns] = predicted
    table["problem"] = pd.Series(problems.to_numpy(), dtype=object).where(problems.notna(), None)
    _log_problems(table)
    ratio = None
    if domain is not None:
        ratio = _add_domain(table, features, domain)
        _note_kernel_fallback(table, features, models)
    if calibrations is not None:
        _add_intervals(table, features.index, calibrations, ratio)
    return with_idle_power(table, idle_power_w)


def _add_domain(
    table: pd.DataFrame, features: pd.DataFrame, domain: Mapping[str, Any]
) -> pd.Series:
    """``in_domain`` / ``domain_note`` of the modelled layers (empty for the others); returns
    their nearest-neighbour distance ratios (NaN elsewhere: the intervals' difficulty)."""
    from power_modelling.core.domain import assess, nearest_distance  # noqa: PLC0415

    table["in_domain"] = pd.Series(pd.NA, index=table.index, dtype="boolean")
    table["domain_note"] = pd.Series(None, index=table.index, dtype=object)
    ratio = pd.Series(np.nan, index=table.index)
    # the classes the domain describes (a model set without one leaves in_domain empty)
    covered = [c for c in LAYER_CLASSES if c in (domain.get("classes") or {})]
    modelled = features.index[features["layer_class"].isin(covered)]
    if len(modelled):
        ratio.loc[modelled] = nearest_distance(features.loc[modelled], dict(domain))
        in_domain, notes = assess(features.loc[modelled], dict(domain), ratio.loc[modelled])
        table.loc[modelled, "in_domain"] = in_domain
        table.loc[modelled, "domain_note"] = [note or None for note in notes]
    return ratio


#: Appended to the domain note of a layer its models predicted from the device trend.
KERNEL_FALLBACK_NOTE = "kernel never trained on: runtime and power from the device trend"


def _note_kernel_fallback(
    table: pd.DataFrame, features: pd.DataFrame, models: Mapping[str, Estimator]
) -> None:
    """Say so in ``domain_note`` where a runtime model fell back to the device trend (a
    pooling kernel no training layer ran; ``physics_estimators.KERNEL_FEATURES``)."""
    for layer_class in LAYER_CLASSES:
        model = models.get(model_key(layer_class, "runtime"))
        rows = features.index[features["layer_class"] == layer_class]
        if not len(rows) or not hasattr(model, "kernel_fallback"):
            continue
        fell_back = rows[np.asarray(model.kernel_fallback(features.loc[rows]), dtype=bool)]
        notes = table.loc[fell_back, "domain_note"]
        table.loc[fell_back, "domain_note"] = (notes + "; " + KERNEL_FALLBACK_NOTE).fillna(
            KERNEL_FALLBACK_NOTE
        )
        table.loc[fell_back, "in_domain"] = False


def _add_intervals(
    table: pd.DataFrame,
    predicted: pd.Index,
    calibrations: Mapping[str, Mapping[str, Any]],
    ratio: pd.Series | None = None,
) -> None:
    """90 % conformal intervals of every modelled layer's runtime and dynamic power, wider
    with the layer's distance from the training set (``ratio``) where calibrated so."""
    from power_modelling.core.intervals import (  # noqa: PLC0415
        conformal_intervals,
        min_calibration_rows,
        prediction_sigma,
    )

    for target in TARGETS:
        table[f"{target}_lo"] = np.nan
        table[f"{target}_hi"] = np.nan
    for layer_class in LAYER_CLASSES:
        rows = predicted[table.loc[predicted, "layer_class"].to_numpy() == layer_class]
        for target in TARGETS:
            calibration = (calibrations.get(layer_class) or {}).get(target)
            if len(rows) and calibration and calibration.get("n", 0) < min_calibration_rows():
                logger.info(
                    "%s %s: %d held-out residuals are too few for 90 %% intervals: unbounded",
                    layer_class,
                    target,
                    calibration.get("n", 0),
                )
            if len(rows) and calibration:
                distance = None if ratio is None else ratio.loc[rows].to_numpy()
                lo, hi = conformal_intervals(
                    table.loc[rows, f"{target}_prediction"].to_numpy(),
                    calibration,
                    prediction_sigma(calibration, distance),
                )
                table.loc[rows, f"{target}_lo"] = np.clip(lo, 0.0, None)
                table.loc[rows, f"{target}_hi"] = hi


def _log_problems(table: pd.DataFrame) -> None:
    """One warning naming the bad layers (their network first when there is one)."""
    bad = table[table["problem"].notna()]
    if bad.empty:
        return
    where = bad["network"].astype(str) + ": " if "network" in bad else ""
    named = (where + "layer '" + bad["layer_name"].astype(str) + "': " + bad["problem"]).tolist()
    logger.warning(
        "%d layer(s) not predicted, bad input: %s%s",
        len(named),
        "; ".join(named[:10]),
        f"; ... ({len(named) - 10} more)" if len(named) > 10 else "",
    )


def idle_power_watts(idle_power: Mapping[str, Any] | None) -> float | None:
    """Watts from the ``device_idle_power`` dataset (``avg_idle_power_uw``); ``None`` if
    unknown."""
    if not idle_power or idle_power.get("avg_idle_power_uw") is None:
        return None
    return float(idle_power["avg_idle_power_uw"]) / 1e6


def with_idle_power(predictions: pd.DataFrame, idle_power_w: float | None) -> pd.DataFrame:
    """Add (or replace) ``power_total_prediction`` when the device's idle power is known."""
    if idle_power_w is None:
        return predictions
    predictions = predictions.copy()
    predictions["power_total_prediction"] = predictions["power_prediction"] + float(idle_power_w)
    return predictions


def summarise_networks(predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per ``network``: count-weighted runtime and energy of its modelled layers.

    ``total_runtime_ms`` = Σ count·runtime, ``energy_mj`` = Σ count·power·runtime (W·ms = mJ),
    ``avg_power_w`` = energy / runtime; ``layers_*`` count layer instances (Σ count). One
    vectorised group-by, however many networks.

    ``status``: ``predicted``; ``bad input`` when a layer has a ``problem`` (``note`` names
    the first, the totals are empty: a network with a layer left out has no total); ``no
    modelled layer`` when none of its layers is of a modelled class (empty totals, not a
    network that costs nothing).
    """
    problem = (
        predictions["problem"]
        if "problem" in predictions
        else pd.Series(None, index=predictions.index, dtype=object)
    )
    bad = problem.notna()
    modelled = (
        predictions["runtime_prediction"].notna() & predictions["power_prediction"].notna() & ~bad
    )
    count = pd.to_numeric(predictions["count"], errors="coerce").where(~bad, 0.0).astype(float)
    parts = pd.DataFrame(
        {
            "network": predictions["network"].to_numpy(),
            "layers_predicted": count.where(modelled, 0.0),
            "layers_other": count.where(~modelled, 0.0),
            "total_runtime_ms": (count * predictions["runtime_prediction"]).where(modelled, 0.0),
            "energy_mj": (
                count * predictions["power_prediction"] * predictions["runtime_prediction"]
            ).where(modelled, 0.0),
            "bad_layers": bad.astype(int),
        }
    )
    extras = []
    if "in_domain" in predictions:  # count-weighted modelled layers outside the domain
        outside = modelled & predictions["in_domain"].eq(False).fillna(False).to_numpy()
        parts["layers_out_of_domain"] = count.where(outside, 0.0)
        extras.append("layers_out_of_domain")
    if {"runtime_lo", "runtime_hi", "power_lo", "power_hi"} <= set(predictions.columns):
        # network totals of the 90 % bounds: comonotone (every layer at its bound at once),
        # so the interval is conservative; runtime and energy are sums of layer terms
        for bound in ("lo", "hi"):
            runtime = count * predictions[f"runtime_{bound}"]
            parts[f"runtime_{bound}_ms"] = runtime.where(modelled, 0.0)
            parts[f"energy_{bound}_mj"] = (runtime * predictions[f"power_{bound}"]).where(
                modelled, 0.0
            )
        extras += ["runtime_lo_ms", "runtime_hi_ms", "energy_lo_mj", "energy_hi_mj"]
    summary = parts.groupby("network", sort=False).sum().reset_index()
    runtime = summary["total_runtime_ms"]
    summary["avg_power_w"] = (summary["energy_mj"] / runtime).where(runtime > 0)
    for column in ("layers_predicted", "layers_other", *extras[:1]):
        if column in summary:
            summary[column] = summary[column].astype("int64")
    first_bad = (
        ("layer '" + predictions["layer_name"].astype(str) + "': " + problem.astype(str))[bad]
        .groupby(predictions["network"][bad].to_numpy(), sort=False)
        .first()
    )
    other_types = (
        predictions["layer_type"]
        .astype(str)[~modelled]
        .groupby(predictions["network"][~modelled].to_numpy(), sort=False)
        .unique()
    )
    summary["status"] = np.select(
        [summary["bad_layers"] > 0, summary["layers_predicted"] == 0],
        [BAD_INPUT, NO_MODELLED_LAYER],
        default=PREDICTED,
    )
    summary["note"] = [
        _note(row.network, row.status, row.bad_layers, first_bad, other_types)
        for row in summary.itertuples()
    ]
    unpredicted = summary["status"] != PREDICTED
    totals = ["total_runtime_ms", "avg_power_w", "energy_mj", *extras[-4:]]
    totals = [column for column in totals if column in summary and column != "layers_out_of_domain"]
    summary.loc[unpredicted, totals] = np.nan
    return summary[[*SUMMARY_COLUMNS, *extras]]


def _note(
    network: Any, status: str, bad_layers: int, first_bad: pd.Series, other_types: pd.Series
) -> str | None:
    """The summary's ``note`` of one network (``None`` when it was predicted)."""
    if status == BAD_INPUT:
        more = f" (and {bad_layers - 1} more bad layer(s))" if bad_layers > 1 else ""
        return f"bad input: {first_bad[network]}{more}; no totals"
    if status == NO_MODELLED_LAYER:
        types = ", ".join(sorted(other_types.get(network, [])))
        return f"no layer of a modelled class ({_MODELLED}), only: {types}; no totals"
    return None


def summarise(predictions: pd.DataFrame, network: str) -> dict[str, Any]:
    """The whole-network row of one network's predictions (see ``summarise_networks``)."""
    return summarise_networks(predictions.assign(network=network)).iloc[0].to_dict()


def log_summary(row: Mapping[str, Any], idle_power_w: float | None = None) -> None:
    """Log one network's figures like the reference tool does."""
    total = (
        f" ({row['avg_power_w'] + idle_power_w:.3f} W with idle)"
        if idle_power_w is not None
        else ""
    )
    logger.info(
        "%s: Total runtime: %.4f ms | Average power consumed: %.3f W above idle%s | "
        "Total energy: %.4f mJ  (%d layers predicted, %d other)",
        row["network"],
        row["total_runtime_ms"],
        row["avg_power_w"],
        total,
        row["energy_mj"],
        row["layers_predicted"],
        row["layers_other"],
    )
