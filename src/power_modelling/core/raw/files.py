"""The files of a raw measurement folder: their names per role, grouped per measured model."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import PurePosixPath

logger = logging.getLogger(__name__)

IDLE_POWER_FILE = "idling_power.json"
#: Optional: the measured device ({"name": "NVIDIA H200", "kind": "nvml", ...}).
DEVICE_FILE = "device.json"
ENGINE_INFO_FILE = "trt_profiling/trt_engine_info.json"
LATENCY_FILE = "trt_profiling/trt_layer_latency.json"
LAYER_ENERGY_FILE = "layer_energy.json"
METADATA_SUFFIXES = {"jetson": "_tensorrt.json", "nvml": "_benchmark.json"}

Loader = Callable[[], bytes]


def group_by_model(partitions: dict[str, Loader]) -> dict[str, dict[str, Loader]]:
    """``{"<model>/<path>": loader}`` → ``{model: {"<path>": loader}}``; top-level files other
    than ``idling_power.json`` are ignored with a notice."""
    models: dict[str, dict[str, Loader]] = {}
    for partition_id, loader in sorted(partitions.items()):
        parts = PurePosixPath(partition_id.replace("\\", "/")).parts
        if len(parts) == 1:
            if parts[0] not in (IDLE_POWER_FILE, DEVICE_FILE):
                logger.info("Ignoring %s at the top of the raw folder", partition_id)
            continue
        models.setdefault(parts[0], {})[str(PurePosixPath(*parts[1:]))] = loader
    return models


def required_files(model: str, files: dict[str, Loader]) -> tuple[dict[str, str], list[str]]:
    """The files a model run needs → (role → path inside the model folder, missing files)."""
    found = {
        "power_log": f"{model}_power_log.log",
        "engine_info": ENGINE_INFO_FILE,
        "latency": LATENCY_FILE,
    }
    missing = [path for path in found.values() if path not in files]
    metadata = [model + suffix for suffix in METADATA_SUFFIXES.values() if model + suffix in files]
    if metadata:
        found["metadata"] = metadata[0]
    else:
        missing.append(" or ".join(model + suffix for suffix in METADATA_SUFFIXES.values()))
    return found, missing
