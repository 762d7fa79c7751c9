"""The raw dataset on disk, exactly as ``docs/raw-data-format.md`` describes it.

```
<dataset>/
├── idling_power.json              avg_idle_power in microwatts (+ unit, samples, source, device)
├── device.json                    what was measured on (kind, name, power_source, precision)
├── sweep_manifest.json            (sweeps only) the plan and the completed configurations
└── <model>/
    ├── <model>_power_log.log      timestamp,mV,mA (Jetson) or timestamp,mW (NVML) per line
    ├── <model>_tensorrt.json      (Jetson dialect)  or  <model>_benchmark.json (NVML dialect)
    ├── layer_energy.json          (NVML dialect) energy-counter cross-check per layer
    └── trt_profiling/{trt_engine_info.json, trt_layer_latency.json}
```

A model folder is written in a staging folder beside the dataset (``.<dataset>.staging/``,
outside the dataset so that ingestion never sees half a model) and moved into place with one
``rename`` when complete: a killed collector leaves either a whole model folder or none.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import Any, Union

TIMESTAMP_FORMAT = "%Y%m%d-%H:%M:%S.%f"
IDLE_FILE = "idling_power.json"
DEVICE_FILE = "device.json"
METADATA_SUFFIX = {"jetson": "_tensorrt.json", "nvml": "_benchmark.json"}
LATENCY_FILE = "trt_profiling/trt_layer_latency.json"
ENGINE_INFO_FILE = "trt_profiling/trt_engine_info.json"
LAYER_ENERGY_FILE = "layer_energy.json"
#: device.json keys that must agree between runs written into one dataset
DEVICE_IDENTITY = ("kind", "name", "power_source", "precision")


def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read the umask is to set it
    os.umask(mask)
    return mask


#: files get the permissions open() would give them (mkstemp's are private)
_FILE_MODE = 0o666 & ~_umask()

PathLike = Union[str, Path]


class DatasetError(Exception):
    """The dataset folder cannot take this run; the message names the file and the fix."""


def format_timestamp(epoch_s: float) -> str:
    """Epoch seconds → local wall-clock ``%Y%m%d-%H:%M:%S.%f`` (the format of every raw file)."""
    return datetime.fromtimestamp(epoch_s).strftime(TIMESTAMP_FORMAT)


def parse_timestamp(text: str) -> float:
    """The inverse of ``format_timestamp`` (local time), for reading logs back."""
    return datetime.strptime(text, TIMESTAMP_FORMAT).timestamp()


def write_json_atomic(path: PathLike, payload: Any, indent: int | None = 1) -> None:
    """Write JSON so that a reader (or a killed writer) only ever sees the old or the new file:
    a temporary file in the same folder, fsync, then ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix="." + path.name + ".", dir=str(path.parent))
    try:
        os.chmod(temporary, _FILE_MODE)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(payload, out, indent=indent)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, str(path))
    except BaseException:
        with suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_dir(path.parent)


def read_json(path: PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DatasetError(f"{path}: unreadable JSON ({exc})") from exc


class Dataset:
    """One raw dataset folder (``data/01_raw/<name>``) being written."""

    def __init__(self, root: PathLike) -> None:
        self.root = Path(root).absolute()
        self.name = self.root.name
        self.staging = self.root.parent / ("." + self.name + ".staging")

    @property
    def idle_path(self) -> Path:
        return self.root / IDLE_FILE

    @property
    def device_path(self) -> Path:
        return self.root / DEVICE_FILE

    def has_idle(self) -> bool:
        return self.idle_path.is_file()

    def models(self) -> list[str]:
        """Model folders present (complete ones: staging is elsewhere)."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())

    def check_device(self, device: dict[str, Any]) -> None:
        """Refuse to mix devices in one dataset (one idle power and one device per dataset)."""
        if not self.device_path.is_file():
            return
        existing = read_json(self.device_path)
        differs = {
            key: (existing.get(key), device.get(key))
            for key in DEVICE_IDENTITY
            if existing.get(key) != device.get(key)
        }
        if differs:
            detail = ", ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in differs.items())
            raise DatasetError(
                f"{self.device_path}: this dataset was measured on another device or setup "
                f"({detail}); write to a new --out folder"
            )

    def write_device(self, device: dict[str, Any]) -> None:
        self.check_device(device)
        write_json_atomic(self.device_path, device)

    def write_idle(
        self,
        avg_idle_power_uw: float,
        *,
        samples: int,
        power_source: str,
        device: dict[str, Any],
        started: float,
        seconds: float,
    ) -> None:
        if not avg_idle_power_uw > 0:
            raise DatasetError(
                f"idle power measured as {avg_idle_power_uw} µW from {samples} samples: "
                "the power source read nothing usable"
            )
        write_json_atomic(
            self.idle_path,
            {
                "timestamp": datetime.fromtimestamp(started).strftime("%Y%m%d-%H%M%S"),
                "avg_idle_power": avg_idle_power_uw,
                "unit": "microwatt",
                "samples": samples,
                "seconds": seconds,
                "power_source": power_source,
                "device": device,
            },
        )

    def new_model(self, model: str, overwrite: bool = False) -> ModelFolder:
        """A fresh staging folder for ``model``; refuses to replace a measured model unless
        ``overwrite``."""
        _check_model_name(model)
        final = self.root / model
        if final.exists() and not overwrite:
            raise DatasetError(
                f"{final} exists already: measured models are never replaced silently "
                "(choose another --model name, or pass --overwrite)"
            )
        staging = self.staging / model
        if staging.exists():  # left by a killed run: it was never completed
            shutil.rmtree(str(staging))
        (staging / "trt_profiling").mkdir(parents=True)
        return ModelFolder(model, staging, final)

    def discard_staging(self) -> list[str]:
        """Remove what a killed run left half-written; returns the model names removed."""
        if not self.staging.is_dir():
            return []
        removed = sorted(p.name for p in self.staging.iterdir())
        shutil.rmtree(str(self.staging))
        return removed

    def finish(self) -> None:
        """Remove the (empty) staging folder."""
        with suppress(OSError):
            self.staging.rmdir()


class ModelFolder:
    """One model run's files, written in staging and moved into the dataset by ``commit``."""

    def __init__(self, model: str, staging: Path, final: Path) -> None:
        self.model = model
        self.path = staging
        self.final = final

    @property
    def power_log(self) -> Path:
        return self.path / (self.model + "_power_log.log")

    def write(
        self,
        dialect: str,
        *,
        latency: dict[str, list[list]],
        engine_info: dict[str, Any],
        metadata: dict[str, Any],
        layer_energy: dict[str, Any] | None = None,
    ) -> None:
        """Write every file but the power log (the sampler writes that one)."""
        if dialect not in METADATA_SUFFIX:
            raise ValueError(f"dialect must be one of {sorted(METADATA_SUFFIX)}, got {dialect!r}")
        missing = [name for name, entries in latency.items() if not entries]
        if missing:
            raise DatasetError(f"{self.model}: layers timed zero times: {missing}")
        write_latency(self.path / LATENCY_FILE, latency)
        write_json_atomic(self.path / ENGINE_INFO_FILE, engine_info)
        write_json_atomic(self.path / (self.model + METADATA_SUFFIX[dialect]), metadata)
        if layer_energy is not None:
            write_json_atomic(self.path / LAYER_ENERGY_FILE, layer_energy)

    def commit(self) -> Path:
        """Move the complete folder into the dataset (one rename; replaces with --overwrite)."""
        if not self.power_log.is_file():
            raise DatasetError(f"{self.power_log}: no power log was written")
        self.final.parent.mkdir(parents=True, exist_ok=True)
        if self.final.exists():
            shutil.rmtree(str(self.final))
        os.replace(str(self.path), str(self.final))
        _fsync_dir(self.final.parent)
        return self.final


def write_latency(path: Path, latency: dict[str, list[list]]) -> None:
    """``{layer: [[latency_ms, "end_ts"(, repeats)], ...]}``, one layer per line (compact,
    so that a 30 000-cycle file stays small, and readable with ``head``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps(name) + ": " + json.dumps(entries, separators=(", ", ": "))
        for name, entries in latency.items()
    ]
    temporary = path.with_name("." + path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as out:
        out.write("{" + ",\n ".join(lines) + "}\n")
    os.replace(str(temporary), str(path))


def latency_entry(latency_ms: float, end_s: float, repeats: int | None = None) -> list:
    """One ``trt_layer_latency.json`` entry: Jetson ``[ms, end]``, NVML ``[ms, end, repeats]``."""
    entry: list = [float(latency_ms), format_timestamp(end_s)]
    if repeats is not None:
        entry.append(int(repeats))
    return entry


def _check_model_name(model: str) -> None:
    if not model or model.startswith(".") or any(c in model for c in "/\\\0") or model == "..":
        raise DatasetError(f"{model!r} cannot be a model folder name")


def _fsync_dir(path: Path) -> None:
    """Make a rename durable (POSIX); harmless where directories cannot be opened."""
    with suppress(OSError):
        handle = os.open(str(path), os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)
