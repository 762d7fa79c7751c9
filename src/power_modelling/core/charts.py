"""Charts of the test-set evaluation (measured vs predicted per layer, and on log axes) and of
the leave-one-CNN-out evaluation.

Figures are built without pyplot (no global backend or state), so they work in a pipeline,
in a notebook and in a headless test alike.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

UNITS = {"power": "dynamic power (W)", "power_total": "total power (W)", "runtime": "runtime (ms)"}


def bars_per_test_model(rows: pd.DataFrame, target: str) -> Figure:
    """One panel per test model: measured, chosen model and baseline per layer."""
    models = list(dict.fromkeys(rows["model"])) or ["(no test rows)"]
    fig = Figure(figsize=(12, 2.8 * len(models)))
    axes = fig.subplots(len(models), 1, squeeze=False)
    for ax, model in zip(axes[:, 0], models, strict=True):
        layers = rows[rows["model"] == model]
        x = np.arange(len(layers))
        for offset, column, label in (
            (-0.27, "measured", "measured"),
            (0.0, "predicted", "chosen model"),
            (0.27, "baseline", "NeuralPower baseline"),
        ):
            ax.bar(x + offset, layers[column], width=0.27, label=label)
        ax.set_xticks(x, layers["layer_name"], rotation=90, fontsize=6)
        ax.set_title(model, fontsize=9)
        ax.set_ylabel(UNITS[target], fontsize=8)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def predicted_vs_measured(rows: pd.DataFrame, target: str) -> Figure:
    """Predicted vs measured on log axes, one colour per test model."""
    fig = Figure(figsize=(5.5, 5.5))
    ax = fig.subplots()
    positive = rows[(rows["measured"] > 0) & (rows["predicted"] > 0)]
    for model, group in positive.groupby("model"):
        ax.scatter(group["measured"], group["predicted"], s=14, label=str(model), alpha=0.8)
    if len(positive):
        low = positive[["measured", "predicted"]].min().min()
        high = positive[["measured", "predicted"]].max().max()
        ax.plot([low, high], [low, high], color="grey", linewidth=1)
        ax.legend(fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"measured {UNITS[target]}")
    ax.set_ylabel(f"predicted {UNITS[target]}")
    left_out = len(rows) - len(positive)
    note = f"; {left_out} non-positive left out" if left_out else ""
    ax.set_title(f"{target} (test models){note}", fontsize=9)
    fig.tight_layout()
    return fig


def leave_one_cnn_out(report: dict) -> Figure:
    """The ``loco`` report (``core.loco.loco_report``) per held-out CNN: per-layer runtime and
    total-power RMSPE per layer class, and network-level runtime and energy accuracy."""
    per_cnn = report.get("per_cnn") or {}
    if not per_cnn:
        fig = Figure(figsize=(6, 1.5))
        note = report.get("note", "no figures")
        fig.text(0.5, 0.5, f"leave-one-CNN-out: {note}", ha="center", va="center")
        return fig
    cnns = sorted(per_cnn)
    classes = list(dict.fromkeys(c for cnn in cnns for c in per_cnn[cnn].get("per_class", {})))
    mean = report.get("summary", {}).get("mean_over_cnns_per_class", {})
    x = np.arange(len(cnns))
    fig = Figure(figsize=(max(9.0, 0.55 * len(cnns) + 4), 9))
    axes = fig.subplots(3, 1, sharex=True)
    width = 0.8 / max(len(classes), 1)
    for ax, target in zip(axes[:2], ("runtime", "power_total"), strict=True):
        for i, layer_class in enumerate(classes):
            values = [
                per_cnn[cnn].get("per_class", {}).get(layer_class, {}).get(target, {}).get("rmspe")
                for cnn in cnns
            ]
            average = mean.get(layer_class, {}).get(f"{target}_rmspe")
            label = layer_class + (f" (mean {average:.1f} %)" if average is not None else "")
            ax.bar(
                x + (i - (len(classes) - 1) / 2) * width,
                [np.nan if v is None else v for v in values],
                width,
                label=label,
            )
        name = UNITS[target].split(" (")[0]
        ax.set_ylabel(f"{name} RMSPE (%)", fontsize=8)
        ax.set_title(f"per-layer {name} RMSPE of each held-out CNN", fontsize=9)
    networks = (
        ("runtime_accuracy", "runtime"),
        ("energy_accuracy", "dynamic energy"),
        ("energy_total_accuracy", "energy with idle"),
    )
    for i, (key, label) in enumerate(networks):
        values = [per_cnn[cnn]["network"].get(key) for cnn in cnns]
        ax = axes[2]
        ax.bar(
            x + (i - 1) * 0.27,
            [np.nan if v is None else 100 * v for v in values],
            0.27,
            label=label,
        )
    axes[2].axhline(100, color="grey", linewidth=0.8)
    axes[2].set_ylabel("network accuracy (%)", fontsize=8)
    axes[2].set_title("network-level accuracy (count-weighted totals)", fontsize=9)
    for ax in axes:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axes[2].set_xticks(x, cnns, rotation=60, ha="right", fontsize=7)
    n = report.get("summary", {}).get("n_cnns", len(cnns))
    fig.suptitle(f"leave-one-CNN-out over {n} CNNs (each predicted by models of the others)")
    fig.tight_layout()
    return fig
