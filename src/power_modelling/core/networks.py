"""The networks of a folder to predict: TensorRT engine descriptions (``*.json``) and ONNX
models (``*.onnx``), each turned into ``layer_descriptions`` rows by the reader of its format
(``engines.parse_engine``, ``onnx_reader.describe_onnx``); everything after that is shared.

A bad file is reported (returned in the errors, named in the log) and the other networks are
still read. A ``<network>.meta.json`` beside a file describes the device it will run on
(``{"device": {"name": "Jetson AGX Orin", "kind": "jetson"}}``): engine files carry none.
"""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from power_modelling.core.engines import (
    DESCRIPTION_COLUMNS,
    description_frame,
    object_array,
    parse_engine,
    parse_engine_rows,
)
from power_modelling.core.features import PRECISION_OF_BYTES, dtype_bytes, precision_of

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


def _device(
    files: Mapping[str, Callable[[], bytes]], path: str, source_of: Callable[[str], str]
) -> Any:
    """The ``device`` of ``<network>.meta.json`` beside ``path``, if there is one."""
    meta = str(PurePosixPath(path).with_suffix("")) + META_SUFFIX
    if meta not in files:
        return None
    try:
        device = json.loads(files[meta]()).get("device")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
        raise ValueError(
            f"{source_of(meta)}: expected {{'device': {{'name': ...}}}} ({exc})"
        ) from exc
    if not isinstance(device, Mapping) or not device.get("name"):
        raise ValueError(f"{source_of(meta)}: expected {{'device': {{'name': ..., 'kind': ...}}}}")
    return dict(device)


def read_networks(
    files: Mapping[str, Callable[[], bytes]], folder: str, options: NetworkOptions
) -> tuple[dict[str, pd.DataFrame], dict[str, dict[str, Any]], dict[str, str]]:
    """Read every network of ``folder``: ``({network: descriptions}, {network: info},
    {network: error})``; a loader that cannot read its file raises ``ValueError`` naming it.
    ``info`` holds the format, batch size, precision, device and ``source`` (the file).

    One frame per network: for a few networks. Many (an architecture search) are read as one
    table by ``read_network_table``, which this splits.
    """
    table, infos, errors = read_network_table(files, folder, options)
    frames = {
        str(network): rows.drop(columns="network").reset_index(drop=True)
        for network, rows in table.groupby("network", sort=False)
    }
    return {network: frames[network] for network in infos if network in frames}, infos, errors


#: Networks named one by one in the log (errors, device warnings, summaries); beyond, a count.
LOGGED_NETWORKS = 10


def read_network_table(
    files: Mapping[str, Callable[[], bytes]],
    folder: str,
    options: NetworkOptions,
    sources: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]], dict[str, str]]:
    """Read every network of ``folder`` into one ``layer_descriptions`` table with a
    ``network`` column (first; networks in name order, layers in file order): ``(table,
    {network: info}, {network: error})``.

    Batch-first, for thousands of networks: each engine file is parsed into plain rows and
    the table, its dtypes, batch sizes and precisions are built once for all of them. A bad
    file is an error of its network (the first ``LOGGED_NETWORKS`` are logged by name); a
    loader that cannot read its file raises ``ValueError`` naming it. Messages name a file
    ``<folder>/<path>``, or ``sources[path]`` when given.
    """
    selected = select_networks(list(files))
    if not selected:
        raise ValueError(
            f"{folder}: nothing to predict; expected TensorRT engine descriptions (*.json) or "
            "ONNX models (*.onnx) there"
        )

    def source_of(path: str) -> str:
        return sources[path] if sources else f"{folder.rstrip('/')}/{path}"

    parts = _TableParts()
    infos: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    # parsed JSON and rows are hundreds of thousands of objects that live until the table is
    # built: the garbage collector would scan them again and again while they pile up
    with _garbage_collection_paused():
        for network, path in selected.items():
            source = source_of(path)
            try:
                data = files[path]()
                device = _device(files, path, source_of) or options.device
                if path.endswith(".onnx"):
                    layers, info = read_network(data, path, source, options)
                    parts.add_frame(network, layers)
                else:
                    parts.add_rows(network, parse_engine_rows(data, source))
                    info = {"format": "tensorrt", "batch_source": "engine"}
                infos[network] = {**info, "device": device, "source": source}
            except ValueError as exc:
                errors[network] = str(exc)
                if len(errors) <= LOGGED_NETWORKS:
                    logger.error("Skipping %s: %s", network, exc)
        table = parts.table()
    _engine_batch_and_precision(table, infos)
    if len(errors) > LOGGED_NETWORKS:
        logger.error("... and %d more unreadable network(s)", len(errors) - LOGGED_NETWORKS)
    logger.info("%d network(s) to predict in %s, %d unreadable", len(infos), folder, len(errors))
    return table, infos, errors


def describe_networks(
    paths: Iterable[str | Path], options: NetworkOptions | None = None
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]], dict[str, str]]:
    """The Python API's reader: network files (engine JSONs, ONNX models) given by path →
    ``read_network_table``'s ``(table, infos, errors)``, each network named after its file
    (``resnet18.json`` → ``resnet18``). A ``<name>.meta.json`` beside a file gives its device.

    ``predictor.predict_layers(table, models)`` then predicts all of them in one call.
    """
    by_name: dict[str, Path] = {}
    for path in map(Path, paths):
        name = path.name
        if name in by_name:
            raise ValueError(f"{by_name[name]} and {path}: two networks would be named {name}")
        by_name[name] = path
        meta = path.with_name(path.name.removesuffix(path.suffix) + META_SUFFIX)
        if meta.is_file():
            by_name.setdefault(meta.name, meta)
    files = {name: path.read_bytes for name, path in by_name.items()}
    sources = {name: str(path) for name, path in by_name.items()}
    return read_network_table(files, "", options or NetworkOptions(), sources)


@contextmanager
def _garbage_collection_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector (what it frees is freed as soon as unused:
    parsed JSON and rows hold no reference cycles)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _TableParts:
    """The table being read, in network order: the rows of engine files (turned into a frame
    once per run of engines) and the frames of ONNX files."""

    def __init__(self) -> None:
        self.frames: list[pd.DataFrame] = []
        self.rows: list[tuple] = []
        self.networks: list[str] = []

    def add_rows(self, network: str, rows: list[tuple]) -> None:
        self.rows.extend(rows)
        self.networks.extend([network] * len(rows))

    def add_frame(self, network: str, frame: pd.DataFrame) -> None:
        self._flush()
        self.frames.append(frame.assign(network=network))

    def table(self) -> pd.DataFrame:
        """One table, ``network`` first (an empty one keeps the schema)."""
        self._flush()
        frames = self.frames or [description_frame([], network=object_array([]))]
        table = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        return table[["network", *DESCRIPTION_COLUMNS]]

    def _flush(self) -> None:
        if self.rows:
            self.frames.append(description_frame(self.rows, network=object_array(self.networks)))
            self.rows, self.networks = [], []


def _engine_batch_and_precision(table: pd.DataFrame, infos: dict[str, dict[str, Any]]) -> None:
    """Batch size (first layer's input) and precision (that of most layers' inputs, as
    ``precision_of``) of the engine networks, for all networks at once."""
    engines = [n for n, info in infos.items() if info["format"] == "tensorrt"]
    if not engines:
        return
    rows = table[table["network"].isin(engines)]
    first = rows.drop_duplicates("network")
    batch = dict(zip(first["network"], [int(dims[0]) for dims in first["input_dims"]], strict=True))
    sizes = pd.DataFrame({"network": rows["network"], "bytes": dtype_bytes(rows["input_dtype"])})
    counts = sizes.value_counts().reset_index(name="n")
    # the most frequent size; on a tie the smallest (what Series.mode().iloc[0] gives)
    counts = counts.sort_values(["network", "n", "bytes"], ascending=[True, False, True])
    modes = counts.drop_duplicates("network").set_index("network")["bytes"]
    for network in engines:
        size = modes.get(network)
        infos[network] = {
            "format": "tensorrt",
            "batch_size": batch.get(network),
            "batch_source": "engine",
            "precision": None if size is None else PRECISION_OF_BYTES.get(int(size)),
            "device": infos[network]["device"],
            "source": infos[network]["source"],
        }
