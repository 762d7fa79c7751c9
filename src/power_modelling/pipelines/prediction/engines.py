"""Engine description files to predict: selection, parsing, clear errors for bad input."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping

import pandas as pd
from kedro.io import DatasetError

from power_modelling.pipelines.ingestion.engine_info import describe_layers

logger = logging.getLogger(__name__)

# In a raw measurement dataset, each model folder holds its engine here.
RAW_ENGINE_PARTITION = "trt_profiling/trt_engine_info"


def select_engines(partition_ids: list[str]) -> dict[str, str]:
    """``{network: partition id}`` of the engine descriptions among a folder's ``*.json``.

    A raw measurement dataset (model folders with ``trt_profiling/trt_engine_info.json``):
    one network per model folder, every other JSON there (latency, benchmark, idle power) is
    measurement data and is ignored. Otherwise every ``*.json`` is an engine description,
    named by its path without the suffix.
    """
    raw = {pid: pid[: -len(RAW_ENGINE_PARTITION)].strip("/") for pid in partition_ids}
    raw = {pid: net for pid, net in raw.items() if pid.endswith(RAW_ENGINE_PARTITION) and net}
    if raw:
        return {network.replace("/", "_"): pid for pid, network in sorted(raw.items())}
    return {pid.replace("/", "_"): pid for pid in sorted(partition_ids)}


def parse_engine(text: str | bytes, source: str) -> pd.DataFrame:
    """``layer_descriptions`` rows of one engine file; ``ValueError`` naming the file (and the
    layer) when it is not JSON, has no ``Layers`` or a layer lacks dimensions."""
    try:
        engine = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(
            f"{source}: not valid JSON ({exc}); expected a TensorRT engine-inspector JSON "
            "or the NVML/PyTorch dialect, {'Layers': [...]}"
        ) from exc
    return describe_layers(engine, source)


def _read_text(loader: Callable[[], str], source: str) -> str:
    """The file's text; ``ValueError`` naming the file when it cannot be read as text."""
    try:
        return loader()
    except DatasetError as exc:
        raise ValueError(f"{source}: cannot be read as text ({exc.__cause__ or exc})") from exc


def load_engines(
    partitions: Mapping[str, Callable[[], str]], folder: str
) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Parse every engine of ``folder``: ``({network: descriptions}, {network: error})``.

    A bad file is reported (logged, returned in the errors) and the others still load.
    """
    selected = select_engines(list(partitions))
    if not selected:
        raise ValueError(f"{folder}: no *.json engine description to predict")
    descriptions, errors = {}, {}
    for network, pid in selected.items():
        source = f"{folder.rstrip('/')}/{pid}.json"
        try:
            descriptions[network] = parse_engine(_read_text(partitions[pid], source), source)
        except ValueError as exc:
            errors[network] = str(exc)
            logger.error("Skipping %s: %s", network, exc)
    logger.info(
        "%d engine description(s) to predict in %s, %d unreadable",
        len(descriptions),
        folder,
        len(errors),
    )
    return descriptions, errors
