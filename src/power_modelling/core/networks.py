"""The networks of a folder to predict: TensorRT engine descriptions (``*.json``) and ONNX
models (``*.onnx``), each turned into ``layer_descriptions`` rows by the reader of its format
(``engines.parse_engine``, ``onnx_reader.describe_onnx``); everything after that is shared.

A bad file is reported (returned in the errors, named in the log) and the other networks are
still read. A ``<network>.meta.json`` beside a file describes the device it will run on
(``{"device": {"name": "Jetson AGX Orin", "kind": "jetson"}}``): engine files carry none.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import pandas as pd

from power_modelling.core.engines import parse_engine
from power_modelling.core.features import precision_of

logger = logging.getLogger(__name__)

#: In a raw measurement dataset, each model folder holds its engine here.
RAW_ENGINE_FILE = "trt_profiling/trt_engine_info.json"
META_SUFFIX = ".meta.json"
FORMATS = {".json": "tensorrt", ".onnx": "onnx"}


@dataclass(frozen=True)
class NetworkOptions:
    """How to read files that leave something open: the batch size of an ONNX graph whose
    batch dimension is symbolic, the precision an ONNX model is assumed to be deployed in, and
    the device of networks that have no ``.meta.json``."""

    batch_size: int = 1
    onnx_precision: str = "FP16"
    device: Mapping[str, Any] | None = None


def select_networks(paths: list[str]) -> dict[str, str]:
    """``{network: path}`` of the networks among a folder's files.

    A raw measurement dataset (model folders with ``trt_profiling/trt_engine_info.json``): one
    network per model folder, every other file there is measurement data. Otherwise every
    ``*.json`` (except ``*.meta.json``) and ``*.onnx`` is a network, named by its path without
    the suffix (``/`` → ``_``); an ONNX file whose name an engine already has gets ``_onnx``.
    """
    paths = [p.replace("\\", "/") for p in paths]
    raw = {p: p[: -len(RAW_ENGINE_FILE)].strip("/") for p in paths if p.endswith(RAW_ENGINE_FILE)}
    if any(raw.values()):
        return {net.replace("/", "_"): p for p, net in sorted(raw.items()) if net}
    selected: dict[str, str] = {}
    for path in sorted(paths, key=lambda p: (PurePosixPath(p).suffix != ".json", p)):
        suffix = PurePosixPath(path).suffix
        if suffix not in FORMATS or path.endswith(META_SUFFIX):
            continue
        network = path[: -len(suffix)].replace("/", "_")
        if network in selected:
            network += f"_{FORMATS[suffix]}"
        selected[network] = path
    return selected


def read_network(
    data: bytes, path: str, source: str, options: NetworkOptions
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One network file → its layer descriptions and what was assumed reading it (format,
    batch size and where it came from, precision)."""
    if path.endswith(".onnx"):
        from power_modelling.core.onnx_reader import describe_onnx  # noqa: PLC0415 (onnx: heavy)

        layers, info = describe_onnx(
            data, source, batch_size=options.batch_size, precision=options.onnx_precision
        )
        return layers, {
            "format": "onnx",
            "batch_size": info["batch_size"],
            "batch_source": info["batch_source"],
            "precision": info["precision"],
        }
    layers = parse_engine(data, source)
    dims = layers["input_dims"].dropna()
    return layers, {
        "format": "tensorrt",
        "batch_size": int(dims.iloc[0][0]) if len(dims) and len(dims.iloc[0]) else None,
        "batch_source": "engine",
        "precision": precision_of(layers),
    }


def _device(files: Mapping[str, Callable[[], bytes]], path: str, folder: str) -> Any:
    """The ``device`` of ``<network>.meta.json`` beside ``path``, if there is one."""
    meta = str(PurePosixPath(path).with_suffix("")) + META_SUFFIX
    if meta not in files:
        return None
    try:
        device = json.loads(files[meta]()).get("device")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
        raise ValueError(
            f"{folder}/{meta}: expected {{'device': {{'name': ...}}}} ({exc})"
        ) from exc
    if not isinstance(device, Mapping) or not device.get("name"):
        raise ValueError(f"{folder}/{meta}: expected {{'device': {{'name': ..., 'kind': ...}}}}")
    return dict(device)


def read_networks(
    files: Mapping[str, Callable[[], bytes]], folder: str, options: NetworkOptions
) -> tuple[dict[str, pd.DataFrame], dict[str, dict[str, Any]], dict[str, str]]:
    """Read every network of ``folder``: ``({network: descriptions}, {network: info},
    {network: error})``; a loader that cannot read its file raises ``ValueError`` naming it.
    ``info`` holds the format, batch size, precision, device and ``source`` (the file)."""
    selected = select_networks(list(files))
    if not selected:
        raise ValueError(
            f"{folder}: nothing to predict; expected TensorRT engine descriptions (*.json) or "
            "ONNX models (*.onnx) there"
        )
    descriptions, infos, errors = {}, {}, {}
    for network, path in selected.items():
        source = f"{folder.rstrip('/')}/{path}"
        try:
            descriptions[network], info = read_network(files[path](), path, source, options)
            device = _device(files, path, folder) or options.device
            infos[network] = {**info, "device": device, "source": source}
        except ValueError as exc:
            errors[network] = str(exc)
            logger.error("Skipping %s: %s", network, exc)
    logger.info(
        "%d network(s) to predict in %s, %d unreadable", len(descriptions), folder, len(errors)
    )
    return descriptions, infos, errors
