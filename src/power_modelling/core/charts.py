"""Charts of the test-set evaluation: measured vs predicted per layer, and on log axes.

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
