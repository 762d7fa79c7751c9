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

from power_modelling.core.layers import RAW_ROOT
from power_modelling.core.networks import LOGGED_NETWORKS, NetworkOptions, read_network_table
from power_modelling.core.predictor import (
    NO_MODELLED_LAYER,
    PREDICTED,
    SUMMARY_COLUMNS,
    idle_power_watts,
    log_summary,
    summarise_networks,
)

logger = logging.getLogger(__name__)

#: What the summary says of each network beside its predicted totals.
NETWORK_COLUMNS = ("format", "batch_size", "precision", "models", "device", "device_match")
#: Default of ``prediction.max_network_csvs``: per-network CSVs written beside the parquet.
MAX_NETWORK_CSVS = 100


def _readable(loader: Callable[[], bytes], source: str) -> Callable[[], bytes]:
    """``loader`` whose read errors are a ``ValueError`` naming the file (a bad file is then
    reported like any other bad input, and the other networks are still predicted)."""

    def read() -> bytes:
        try:
            return loader()
        except DatasetError as exc:
            raise ValueError(f"{source}: cannot be read ({exc.__cause__ or exc})") from exc

    return read


def read_prediction_networks(
    files: Mapping[str, Callable[[], bytes]], predict_dataset: str, options: Mapping[str, Any]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The network files of ``data/01_raw/<predict_dataset>`` (TensorRT engine JSONs, ONNX
    models) → the layer descriptions of all readable networks in one table (``network``
    column first), and per network what was read (format, batch size, precision, device) or
    why it could not be."""
    folder = f"{RAW_ROOT}/{predict_dataset}"
    loaders = {path: _readable(loader, f"{folder}/{path}") for path, loader in files.items()}
    network_options = NetworkOptions(
        batch_size=int(options.get("batch_size", 1)),
        onnx_precision=str(options.get("onnx_precision", "FP16")),
        device=options.get("device"),
    )
    layers, infos, errors = read_network_table(loaders, folder, network_options)
    if not infos:
        raise ValueError(
            f"no network in {folder} could be read:\n"
            + "\n".join(f"- {error}" for error in errors.values())
        )
    return layers, {"networks": infos, "errors": errors}


def _device_match(device: Mapping[str, Any] | None, measured: Mapping[str, Any]) -> bool | None:
    """Whether a network's device is the models' (by name); ``None`` when it is not known."""
    trained = (measured.get("device") or {}).get("name")
    if not device or not trained:
        return None
    return str(device.get("name", "")).strip().lower() == str(trained).strip().lower()


def _network_rows(
    infos: Mapping[str, Mapping[str, Any]], trained: Mapping[str, Any], models: str
) -> pd.DataFrame:
    """Per network: format, batch size, precision, the models used, its device and whether it
    matches theirs; a mismatch in device or precision is warned about (the first
    ``LOGGED_NETWORKS`` by name, then how many more)."""
    trained_device = (trained.get("device") or {}).get("name")
    trained_precisions = set(trained.get("precisions") or [])
    devices = [info.get("device") for info in infos.values()]
    matches = [_device_match(device, trained) for device in devices]
    precisions = [info.get("precision") for info in infos.values()]
    other_device = [
        (network, device.get("name"))
        for network, device, match in zip(infos, devices, matches, strict=True)
        if match is False
    ]
    for network, device in other_device[:LOGGED_NETWORKS]:
        logger.warning(
            "%s runs on %s, but the models '%s' were trained on %s: its predictions are "
            "for %s, not for %s (train models on its device: docs/own-data.md)",
            network,
            device,
            models,
            trained_device,
            trained_device,
            device,
        )
    _log_more(other_device, f"run on another device than the models' ({trained_device})")
    other_precision = [
        (network, precision)
        for network, precision in zip(infos, precisions, strict=True)
        if precision and trained_precisions and precision not in trained_precisions
    ]
    for network, precision in other_precision[:LOGGED_NETWORKS]:
        logger.warning(
            "%s is %s, but the models '%s' were trained on %s layers",
            network,
            precision,
            models,
            "/".join(sorted(trained_precisions)),
        )
    _log_more(other_precision, "are in another precision than the models' training layers")
    return pd.DataFrame(
        {
            "network": list(infos),
            "format": [info.get("format") for info in infos.values()],
            "batch_size": [info.get("batch_size") for info in infos.values()],
            "precision": precisions,
            "models": models,
            "device": [device.get("name") if device else None for device in devices],
            "device_match": matches,
        },
        columns=["network", *NETWORK_COLUMNS],
    )


def _log_more(items: list, what: str) -> None:
    """One warning for the networks beyond the ``LOGGED_NETWORKS`` named one by one."""
    if len(items) > LOGGED_NETWORKS:
        logger.warning("... and %d more network(s) %s", len(items) - LOGGED_NETWORKS, what)


def _summary(
    layer_predictions: pd.DataFrame, infos: Mapping[str, Mapping[str, Any]], rows: pd.DataFrame
) -> pd.DataFrame:
    """``rows`` (one per network read) with each network's totals, ``status`` and ``note``;
    a network without a single layer (``Layers: []``) has no modelled layer. The note of a
    network without totals starts with its file."""
    totals = (
        summarise_networks(layer_predictions)
        if len(layer_predictions)
        else pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    )
    summary = rows.merge(totals, on="network", how="left")
    empty = summary["status"].isna()
    summary.loc[empty, "status"] = NO_MODELLED_LAYER
    summary.loc[empty, "note"] = "no layer at all (an empty 'Layers' list); no totals"
    for column in ("layers_predicted", "layers_other"):
        summary[column] = summary[column].fillna(0).astype("int64")
    unpredicted = summary["status"] != PREDICTED
    sources = summary["network"].map(lambda network: infos[network].get("source") or network)
    summary.loc[unpredicted, "note"] = sources[unpredicted] + ": " + summary["note"][unpredicted]
    return summary


def _warn_out_of_domain(layer_predictions: pd.DataFrame) -> dict[str, int]:
    """One warning per network with layers outside the models' applicability domain: how
    many and the most frequent reason (the first ``LOGGED_NETWORKS``, then how many more).
    Returns ``{network: layers}`` for data_quality."""
    if "in_domain" not in layer_predictions:
        return {}
    outside = layer_predictions[layer_predictions["in_domain"].eq(False).fillna(False)]
    counts = {}
    for network, rows in outside.groupby("network", sort=False):
        counts[str(network)] = len(rows)
        if len(counts) > LOGGED_NETWORKS:
            continue
        reason = rows["domain_note"].dropna().str.split("; ").explode().value_counts()
        logger.warning(
            "%s: %d of %d modelled layer(s) outside what the models were trained on (mostly: "
            "%s): their predictions are extrapolations, see in_domain / domain_note",
            network,
            len(rows),
            int(
                (
                    (layer_predictions["network"] == network)
                    & layer_predictions["in_domain"].notna()
                ).sum()
            ),
            reason.index[0] if len(reason) else "far from every training layer",
        )
    _log_more(list(counts), "with layers outside what the models were trained on")
    return counts


def report_predictions(
    layer_predictions: pd.DataFrame,
    networks: Mapping[str, Any],
    idle_power: Mapping[str, Any] | None,
    options: Mapping[str, Any],
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Per-network prediction tables (the first ``prediction.max_network_csvs`` networks),
    every layer of every network in one table (``network`` column), the summary (one row per
    network) and the ``prediction`` data-quality section. The first ``LOGGED_NETWORKS``
    predicted networks' figures are logged like the reference tool does; all are in the
    summary.

    A network with a bad layer or without any modelled layer keeps its row in the summary,
    with a ``status``, a ``note`` naming the file (and the layer) and no totals; it is counted
    apart in the data-quality section, never as predicted.
    """
    idle_power_w = idle_power_watts(idle_power)
    models = str(options.get("models"))
    device = ((idle_power or {}).get("device") or {}).get("name") or "an unknown device"
    logger.info("Predicting with the models of '%s' (%s)", models, device)
    infos = networks["networks"]
    summary = _summary(layer_predictions, infos, _network_rows(infos, idle_power or {}, models))
    predicted = summary["status"] == PREDICTED
    for row in summary[predicted].head(LOGGED_NETWORKS).to_dict("records"):
        log_summary(row, idle_power_w)
    if predicted.sum() > LOGGED_NETWORKS:
        logger.info(
            "... and %d more network(s): every network's figures are in prediction_summary",
            predicted.sum() - LOGGED_NETWORKS,
        )
    unpredicted_rows = summary[~predicted].to_dict("records")
    for row in unpredicted_rows[:LOGGED_NETWORKS]:
        logger.error("%s not predicted (%s): %s", row["network"], row["status"], row["note"])
    if len(unpredicted_rows) > LOGGED_NETWORKS:
        logger.error(
            "... and %d more network(s) not predicted: see prediction_summary",
            len(unpredicted_rows) - LOGGED_NETWORKS,
        )
    out_of_domain = _warn_out_of_domain(layer_predictions)
    errors = networks["errors"]
    if errors:
        shown = list(errors.values())[:LOGGED_NETWORKS]
        logger.error(
            "%d of %d network file(s) not predicted: %s%s",
            len(errors),
            len(errors) + len(summary),
            "; ".join(shown),
            f"; ... ({len(errors) - len(shown)} more in the data-quality report)"
            if len(errors) > len(shown)
            else "",
        )
    tables = _network_tables(layer_predictions, summary["network"], options)
    unpredicted = summary[~predicted].set_index("network")
    quality = {
        "networks_predicted": int(predicted.sum()),
        "networks_failed": len(errors),
        "errors": dict(errors),
        "networks_bad_input": unpredicted["note"][unpredicted["status"] != NO_MODELLED_LAYER]
        .astype(str)
        .to_dict(),
        "networks_without_modelled_layer": unpredicted["note"][
            unpredicted["status"] == NO_MODELLED_LAYER
        ]
        .astype(str)
        .to_dict(),
        "layers_bad_input": int(layer_predictions.get("problem", pd.Series()).notna().sum()),
        "models": models,
        "device_mismatches": int((summary["device_match"] == False).sum()),  # noqa: E712
        "layers_out_of_domain": out_of_domain,
        "idle_power_w": idle_power_w,
        "network_csvs": len(tables),
    }
    return tables, layer_predictions, summary, quality


def _network_tables(
    layer_predictions: pd.DataFrame, networks: pd.Series, options: Mapping[str, Any]
) -> dict[str, pd.DataFrame]:
    """One table per network for the first ``max_network_csvs`` of ``networks`` (``null``:
    all): ten thousand candidates of an architecture search are one parquet file, not ten
    thousand CSVs, unless asked for."""
    cap = options.get("max_network_csvs", MAX_NETWORK_CSVS)
    chosen = networks if cap is None else networks.head(max(int(cap), 0))
    if len(chosen) < len(networks):
        logger.info(
            "Per-network CSVs for the first %d of %d networks (prediction.max_network_csvs); "
            "every layer of every network is in predictions.parquet",
            len(chosen),
            len(networks),
        )
    rows = layer_predictions[layer_predictions["network"].isin(chosen)]
    return {
        str(network): table.drop(columns="network").reset_index(drop=True)
        for network, table in rows.groupby("network", sort=False)
    }
