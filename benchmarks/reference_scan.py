"""A pure-Python power mapping like the reference tool's: the benchmark's yardstick.

What the upstream scripts do for one model, written plainly: every power-log line and every
latency timestamp through ``datetime.strptime``, the latency JSON through ``json.load``, the
windows sorted by start and matched to the samples by one forward scan (a window's samples are
those with ``start <= t <= end``), one CSV row written per window. The same inputs and rules as
the project's ingestion + power mapping (docs/power_mapping.md), without NumPy.

``python -m benchmarks.reference_scan RAW_DIR MODEL OUT_CSV``.
"""

from __future__ import annotations

import csv
import json
import sys
from datetime import datetime, timedelta
from pathlib import Path

TIME_FORMAT = "%Y%m%d-%H:%M:%S.%f"


def read_power_log(path: Path) -> list[tuple[datetime, float]]:
    """``timestamp,mV,mA`` (or ``timestamp,mW``) lines → (time, µW), bad lines skipped."""
    samples = []
    with path.open() as log:
        for line in log:
            fields = line.strip().split(",")
            try:
                time = datetime.strptime(fields[0], TIME_FORMAT)
                if len(fields) == 3:
                    power = float(fields[1]) * float(fields[2])
                elif len(fields) == 2:
                    power = float(fields[1]) * 1000.0
                else:
                    continue
            except ValueError:
                continue
            samples.append((time, power))
    samples.sort(key=lambda sample: sample[0])
    return samples


def read_windows(path: Path) -> list[tuple[datetime, datetime, str, int, float]]:
    """``{layer: [[latency_ms, end_ts(, repeats)], ...]}`` → (start, end, layer, cycle,
    latency) per entry."""
    with path.open() as file:
        latency = json.load(file)
    windows = []
    for layer, entries in latency.items():
        for cycle, entry in enumerate(entries, start=1):
            latency_ms, end = float(entry[0]), datetime.strptime(entry[1], TIME_FORMAT)
            repeats = float(entry[2]) if len(entry) > 2 else 1.0
            start = end - timedelta(milliseconds=latency_ms * repeats)
            windows.append((start, end, layer, cycle, latency_ms))
    windows.sort(key=lambda window: window[0])
    return windows


def map_power(raw_dir: Path, model: str, out_csv: Path) -> int:
    """Map one model's samples onto its windows and write the layer-wise CSV; returns the
    number of windows."""
    folder = raw_dir / model
    idle = json.loads((raw_dir / "idling_power.json").read_text())["avg_idle_power"]
    samples = read_power_log(folder / f"{model}_power_log.log")
    windows = read_windows(folder / "trt_profiling" / "trt_layer_latency.json")
    engine = json.loads((folder / "trt_profiling" / "trt_engine_info.json").read_text())
    layer_types = {layer["Name"]: layer.get("LayerType", "Unknown") for layer in engine["Layers"]}
    first = 0
    with out_csv.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(
            [
                "cycle",
                "layer_name",
                "layer_type",
                "layer_power_including_idle_power_micro_watt",
                "layer_power_excluding_idle_power_micro_watt",
                "layer_run_time",
            ]
        )
        for start, end, layer, cycle, latency_ms in windows:
            while first < len(samples) and samples[first][0] < start:
                first += 1
            total, count, index = 0.0, 0, first
            while index < len(samples) and samples[index][0] <= end:
                total += samples[index][1]
                count += 1
                index += 1
            power = total / count if count else None
            writer.writerow(
                [
                    cycle,
                    layer,
                    layer_types.get(layer, "Unknown"),
                    power,
                    None if power is None else power - idle,
                    latency_ms,
                ]
            )
    return len(windows)


if __name__ == "__main__":
    raw, model, out = sys.argv[1:4]
    print(map_power(Path(raw), model, Path(out)))
