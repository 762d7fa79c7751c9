"""Synthetic model-input tables and small, fast modelling parameters."""

from __future__ import annotations

import numpy as np
import pandas as pd

IDLE_W = 120.0
CONV_FEATURES = [
    "batch_size",
    "input_size_0",
    "input_size_1",
    "input_size_2",
    "output_size_0",
    "output_size_1",
    "output_size_2",
    "kernel_0",
    "kernel_1",
    "padding_0",
    "padding_1",
    "stride_0",
    "stride_1",
]


def synthetic_conv_table(n_models: int = 6, layers: int = 12, seed: int = 0) -> pd.DataFrame:
    """Convolution-like rows: runtime and power grow with the FLOPs, a few NaN powers."""
    rng = np.random.default_rng(seed)
    n = n_models * layers
    channels_in = rng.choice([16, 32, 64, 128], n)
    channels_out = rng.choice([16, 32, 64, 128], n)
    size = rng.choice([7, 14, 28, 56], n)
    kernel = rng.choice([1, 3], n)
    frame = pd.DataFrame(
        {
            "model": np.repeat([f"net{i}" for i in range(n_models)], layers),
            "layer_name": [f"conv{i}" for i in range(n)],
            "count": 1,
            "batch_size": 1,
            "input_size_0": channels_in,
            "input_size_1": size,
            "input_size_2": size,
            "output_size_0": channels_out,
            "output_size_1": size,
            "output_size_2": size,
            "kernel_0": kernel,
            "kernel_1": kernel,
            "padding_0": kernel // 2,
            "padding_1": kernel // 2,
            "stride_0": 1,
            "stride_1": 1,
            "groups": 1,
        }
    )
    frame["flops"] = 2.0 * channels_in * channels_out * size * size * kernel * kernel
    frame["input_bytes"] = 2.0 * channels_in * size * size
    frame["output_bytes"] = 2.0 * channels_out * size * size
    frame["weight_bytes"] = 2.0 * channels_in * channels_out * kernel * kernel
    frame["arithmetic_intensity"] = frame["flops"] / (
        frame["input_bytes"] + frame["output_bytes"] + frame["weight_bytes"]
    )
    frame["runtime"] = 1e-3 + 2e-11 * frame["flops"] * rng.lognormal(0, 0.05, n)
    frame["power"] = 80.0 * np.log10(frame["flops"]) / 10 + rng.normal(0, 1.0, n) - 20
    frame["power_total"] = frame["power"] + IDLE_W
    frame.loc[[3, 17], ["power", "power_total"]] = np.nan  # too few power samples
    frame[["power_std", "runtime_std", "n_power_samples", "n_cycles"]] = [0.5, 1e-5, 300, 10]
    return frame


def small_target_params(target: str) -> dict:
    """One target's parameters with a tiny baseline and one tree candidate."""
    return {
        "target": target,
        "model_total_power": target == "power",
        "log_floor": 1e-3,
        "selection": {"target": "power_total" if target == "power" else target, "metric": "rmspe"},
        "baseline": {
            "features": CONV_FEATURES,
            "special_terms": {
                "ops_per_input": [
                    "input_size_0",
                    "input_size_1",
                    "input_size_2",
                    "kernel_0",
                    "kernel_1",
                    "output_size_0",
                ]
            },
            "log_inputs": True,
            "polynomial_degree": 2,
            "scaler": "standard",
            "regressor": {"type": "lasso_cv", "cv": 3, "alphas": 5, "max_iter": 2000},
        },
        "candidates": {
            "extra_trees": {
                "features": ["flops", "input_bytes", "output_bytes", "weight_bytes"],
                "regressor": {"type": "extra_trees", "n_estimators": 20},
                "log_target": True,
            }
        },
    }


EVALUATION = {
    "group_column": "model",
    "cv_folds": 3,
    "random_state": 7,
    "percentage_floor": {"power": 0.5, "power_total": 0.0, "runtime": 0.0},
}


def small_modelling_parameters(conf, physics: bool = True) -> dict:
    """The project's modelling parameters (``conf``: a conf folder) with tiny searches
    (seconds instead of a minute): the blocks to write to ``conf/local``, whole (Kedro replaces
    a top-level parameter key, it does not merge into it). ``physics``: keep the physics
    estimators (the chosen ones), else drop them and choose among the others."""
    from kedro.config import OmegaConfigLoader  # noqa: PLC0415
    from omegaconf.resolvers import oc  # noqa: PLC0415

    from power_modelling.core.layers import LAYER_CLASSES, TARGETS  # noqa: PLC0415

    loader = OmegaConfigLoader(
        str(conf), base_env="base", default_run_env="local", custom_resolvers={"oc.env": oc.env}
    )
    parameters = loader["parameters"]
    parameters["evaluation"]["cv_folds"] = 3
    for layer_class in LAYER_CLASSES:
        for target in TARGETS:
            block = parameters[layer_class][target]
            block["baseline"]["regressor"].update(alphas=5, cv=3)
            block["baseline"]["polynomial_degree"] = 2
            candidates = block["candidates"]
            block["candidates"] = {
                "extra_trees": candidates["extra_trees"],
                "log_lasso": candidates["log_lasso"],
            }
            if physics:  # the chosen estimators, smaller
                block["candidates"]["physics"] = {
                    **candidates["physics"],
                    "settings": {"n_estimators": 20},
                }
            else:  # tables without the geometry of every class: the others only
                block["selection"].pop("eligible", None)
            block["candidates"]["extra_trees"]["regressor"]["n_estimators"] = 10
            block["candidates"]["log_lasso"]["regressor"].update(alphas=5, cv=3)
    return {key: parameters[key] for key in ("evaluation", *LAYER_CLASSES)}
