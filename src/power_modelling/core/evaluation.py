"""Network-level accuracy on the held-out test CNNs (the ``network`` section of metrics.json).

For each test CNN the predicted totals of its modelled layers are compared with the measured
totals of the same layers, count-weighted: runtime Σ count·runtime, energy
Σ count·power·runtime (dynamic, above idle) and, when the idle power is known, the energy
including idle. Accuracy = 1 − |predicted − measured| / measured, as NeuralPower reports it.
The measured whole-model figures (which also include layers that are not modelled: batch-norm,
activations, additions, ...) are shown beside.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

ACCURACY_DEFINITION = (
    "accuracy = 1 - |predicted - measured| / measured of count-weighted totals over the "
    "modelled layers of each held-out test CNN; energy = sum(count * power * runtime), dynamic "
    "power above idle unless named *_total"
)


def layer_totals(
    test_tables: Mapping[str, pd.DataFrame],
    predictions: pd.DataFrame,
    idle_power_w: float | None,
) -> pd.DataFrame:
    """Per test CNN: measured and predicted count-weighted runtime and energy of its layers.

    ``predictions`` are the inference's per-layer predictions of the test CNNs (``network``,
    ``layer_name``, ``power_prediction``, ``runtime_prediction``), joined to the measured
    layers of ``test_tables`` on (model, layer name). Layers without a measured power or
    runtime are left out of both sides (counted in ``layers_unmeasured``).
    """
    measured_layers = [
        table[["model", "layer_name", "count", "power", "runtime"]]
        for table in test_tables.values()
        if not table.empty
    ]
    if not measured_layers:
        raise ValueError("no test layers to evaluate the networks on")
    predicted = predictions[["network", "layer_name", "power_prediction", "runtime_prediction"]]
    layers = pd.concat(measured_layers, ignore_index=True).merge(
        predicted.rename(columns={"network": "model"}),
        on=["model", "layer_name"],
        how="left",
        validate="one_to_one",
    )
    unpredicted = layers["runtime_prediction"].isna() | layers["power_prediction"].isna()
    if unpredicted.any():
        raise ValueError(
            f"{int(unpredicted.sum())} measured test layer(s) have no prediction, e.g. "
            f"{layers.loc[unpredicted, ['model', 'layer_name']].head(3).values.tolist()}: the "
            "layer descriptions and the feature tables come from different ingestions"
        )
    measured = layers["power"].notna() & layers["runtime"].notna()
    count = layers["count"].astype(float)
    idle = 0.0 if idle_power_w is None else float(idle_power_w)
    parts = pd.DataFrame(
        {
            "model": layers["model"],
            "layers": count.where(measured, 0.0),
            "layers_unmeasured": count.where(~measured, 0.0),
            "runtime_measured": count * layers["runtime"],
            "runtime_predicted": count * layers["runtime_prediction"],
            "energy_measured": count * layers["power"] * layers["runtime"],
            "energy_predicted": count * layers["power_prediction"] * layers["runtime_prediction"],
            "energy_total_measured": count * (layers["power"] + idle) * layers["runtime"],
            "energy_total_predicted": (
                count * (layers["power_prediction"] + idle) * layers["runtime_prediction"]
            ),
        }
    )
    value_columns = [c for c in parts.columns if c.endswith(("_measured", "_predicted"))]
    parts.loc[~measured, value_columns] = 0.0
    totals = parts.groupby("model", sort=True).sum()
    if idle_power_w is None:
        totals = totals.drop(columns=["energy_total_measured", "energy_total_predicted"])
    return totals


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator > 0 else float("nan")


def _accuracy(predicted: float, measured: float) -> float:
    return float(1.0 - abs(predicted - measured) / measured) if measured > 0 else float("nan")


def _whole_model(
    metadata_loader: Callable[[], dict] | None, idle_power_w: float | None
) -> dict[str, float] | None:
    """The measured whole-model figures of ``run_metadata`` (plus the dynamic energy per
    inference when the idle power is known)."""
    whole = (metadata_loader() or {}).get("whole_model") if metadata_loader else None
    if not whole:
        return None
    figures = {k: float(v) for k, v in whole.items() if isinstance(v, int | float)}
    if idle_power_w is not None and {"avg_power_w", "latency_ms"} <= figures.keys():
        figures["dynamic_energy_per_inference_mj"] = (
            figures["avg_power_w"] - idle_power_w
        ) * figures["latency_ms"]
    return figures


def network_accuracy(
    test_tables: Mapping[str, pd.DataFrame],
    predictions: pd.DataFrame,
    run_metadata: Mapping[str, Callable[[], dict]],
    idle_power_w: float | None,
) -> dict[str, Any]:
    """The ``network`` section of metrics.json: per test CNN and the mean over them."""
    totals = layer_totals(test_tables, predictions, idle_power_w)
    networks: dict[str, Any] = {}
    for model, row in totals.iterrows():
        measured_power = _ratio(row["energy_measured"], row["runtime_measured"])
        predicted_power = _ratio(row["energy_predicted"], row["runtime_predicted"])
        entry: dict[str, Any] = {
            "layers": int(row["layers"]),
            "layers_unmeasured": int(row["layers_unmeasured"]),
            "runtime_ms": {
                "measured": row["runtime_measured"],
                "predicted": row["runtime_predicted"],
            },
            "energy_mj": {"measured": row["energy_measured"], "predicted": row["energy_predicted"]},
            "avg_power_w": {"measured": measured_power, "predicted": predicted_power},
            "runtime_accuracy": _accuracy(row["runtime_predicted"], row["runtime_measured"]),
            "energy_accuracy": _accuracy(row["energy_predicted"], row["energy_measured"]),
            "avg_power_accuracy": _accuracy(predicted_power, measured_power),
        }
        if "energy_total_measured" in row:
            entry["energy_total_mj"] = {
                "measured": row["energy_total_measured"],
                "predicted": row["energy_total_predicted"],
            }
            entry["energy_total_accuracy"] = _accuracy(
                row["energy_total_predicted"], row["energy_total_measured"]
            )
        whole = _whole_model(run_metadata.get(str(model)), idle_power_w)
        if whole:
            entry["whole_model_measured"] = whole
            if whole.get("latency_ms"):
                entry["modelled_share_of_latency"] = row["runtime_measured"] / whole["latency_ms"]
        networks[str(model)] = entry
    accuracy_keys = [k for k in next(iter(networks.values())) if k.endswith("_accuracy")]
    mean = {k: float(np.nanmean([n[k] for n in networks.values()])) for k in accuracy_keys}
    _log_table(networks, mean)
    return {
        "definition": ACCURACY_DEFINITION,
        "n_networks": len(networks),
        "mean": mean,
        "networks": networks,
    }


def _log_table(networks: Mapping[str, dict], mean: Mapping[str, float]) -> None:
    """Log the network-level accuracy table."""
    lines = [
        f"{'network':<22}{'runtime ms meas/pred':>24}{'acc':>7}"
        f"{'energy mJ meas/pred':>24}{'acc':>7}{'whole-model ms':>16}"
    ]
    for name, n in networks.items():
        whole = n.get("whole_model_measured", {}).get("latency_ms", float("nan"))
        lines.append(
            f"{name:<22}{n['runtime_ms']['measured']:>11.4f} /{n['runtime_ms']['predicted']:>10.4f}"
            f"{n['runtime_accuracy']:>8.1%}"
            f"{n['energy_mj']['measured']:>11.4f} /{n['energy_mj']['predicted']:>10.4f}"
            f"{n['energy_accuracy']:>8.1%}{whole:>14.4f}"
        )
    lines.append("mean accuracy: " + ", ".join(f"{k} {v:.1%}" for k, v in mean.items()))
    logger.info("Network-level accuracy on the test CNNs:\n%s", "\n".join(lines))


def interval_coverage(
    test_tables: Mapping[str, pd.DataFrame], predictions: pd.DataFrame
) -> dict[str, dict[str, Any]]:
    """Share of the held-out test layers whose measured runtime / dynamic power lies inside
    its 90 % interval, per layer class and target (``n``: layers with a measurement and an
    interval). Empty without intervals."""
    if not {"runtime_lo", "runtime_hi", "power_lo", "power_hi"} <= set(predictions.columns):
        return {}
    bounds = predictions[
        ["network", "layer_name", "runtime_lo", "runtime_hi", "power_lo", "power_hi"]
    ].rename(columns={"network": "model"})
    coverage: dict[str, dict[str, Any]] = {}
    for layer_class, table in test_tables.items():
        if table.empty:
            continue
        rows = table[["model", "layer_name", "power", "runtime"]].merge(
            bounds, on=["model", "layer_name"], how="inner"
        )
        coverage[layer_class] = {}
        for target in ("runtime", "power"):
            usable = rows[[target, f"{target}_lo", f"{target}_hi"]].dropna()
            inside = usable[target].between(usable[f"{target}_lo"], usable[f"{target}_hi"])
            coverage[layer_class][target] = {
                "coverage": float(inside.mean()) if len(usable) else float("nan"),
                "n": len(usable),
            }
    return coverage
