"""Nodes of the ``prediction`` pipeline: network files in, per-network results out.

The predicting itself is the shared inference node (``pipelines/inference``); these nodes
read the networks to predict and turn its per-layer predictions into the per-network tables,
the summary and the data-quality section.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
from kedro.io import DatasetError

from power_modelling.core.engines import load_engines
from power_modelling.core.layers import RAW_ROOT
from power_modelling.core.predictor import (
    SUMMARY_COLUMNS,
    idle_power_watts,
    log_summary,
    summarise_networks,
)

logger = logging.getLogger(__name__)


def _readable(loader: Callable[[], str], source: str) -> Callable[[], str]:
    """``loader`` whose read errors are a ``ValueError`` naming the file (a bad file is then
    reported like any other bad input, and the other networks are still predicted)."""

    def read() -> str:
        try:
            return loader()
        except DatasetError as exc:
            raise ValueError(f"{source}: cannot be read as text ({exc.__cause__ or exc})") from exc

    return read


def read_networks(
    engines: Mapping[str, Callable[[], str]], predict_dataset: str
) -> tuple[pd.DataFrame, dict[str, str]]:
    """The network files of ``data/01_raw/<predict_dataset>`` → the layer descriptions of all
    readable networks in one table (``network`` column first), and the unreadable ones with
    their error."""
    folder = f"{RAW_ROOT}/{predict_dataset}"
    loaders = {pid: _readable(loader, f"{folder}/{pid}.json") for pid, loader in engines.items()}
    descriptions, errors = load_engines(loaders, folder)
    if not descriptions:
        raise ValueError(
            f"no network in {folder} could be read:\n"
            + "\n".join(f"- {error}" for error in errors.values())
        )
    layers = pd.concat(
        [frame.assign(network=network) for network, frame in descriptions.items()],
        ignore_index=True,
    )
    return layers[["network", *[c for c in layers.columns if c != "network"]]], errors


def report_predictions(
    layer_predictions: pd.DataFrame,
    input_errors: Mapping[str, str],
    idle_power: Mapping[str, Any] | None,
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, dict[str, Any]]:
    """Per-network prediction tables, the summary (one row per network) and the ``prediction``
    data-quality section; every network is logged like the reference tool does."""
    idle_power_w = idle_power_watts(idle_power)
    summary = summarise_networks(layer_predictions)
    for row in summary.to_dict("records"):
        log_summary(row, idle_power_w)
    if input_errors:
        logger.error(
            "%d of %d network file(s) not predicted: %s",
            len(input_errors),
            len(input_errors) + len(summary),
            "; ".join(input_errors.values()),
        )
    tables = {
        str(network): rows.drop(columns="network").reset_index(drop=True)
        for network, rows in layer_predictions.groupby("network", sort=False)
    }
    quality = {
        "networks_predicted": len(summary),
        "networks_failed": len(input_errors),
        "errors": dict(input_errors),
        "idle_power_w": idle_power_w,
    }
    return tables, summary[list(SUMMARY_COLUMNS)], quality
