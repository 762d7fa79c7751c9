"""Generate Jetson-dialect raw measurements with a known per-layer power (ground truth).

A run is ``n_cycles`` inferences of ``n_layers`` layers executed back to back (a few µs apart,
an idle gap between inferences). The INA3221-style power log samples the board at
``sample_rate_hz``: a sample inside a layer's execution reads that layer's power, any other
sample reads the idle power, both with Gaussian sensor noise. Everything lies on a 1 µs grid,
so windows written with µs timestamps are exact.

``write_raw_model`` writes the files of ``docs/raw-data-format.md`` (Jetson dialect):
``<model>_power_log.log`` (``timestamp,mV,mA`` lines, ending with a truncated line),
``trt_profiling/trt_layer_latency.json`` (``[latency_ms, end_ts]`` entries),
``trt_profiling/trt_engine_info.json`` and ``<model>_tensorrt.json``; ``write_idle_power``
writes ``idling_power.json``.

Usage: ``python -m benchmarks.generate_jetson OUT_DIR [--cycles N] [--layers N]``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

START_US = int(pd.Timestamp("2024-11-21 05:20:00").value // 1000)
IDLE_POWER_UW = 4_200_000.0
VOLTAGE_MV = 5000.0
_LAYER_KINDS = (  # (LayerType, ParameterType) cycled over the layers
    ("CaskConvolution", "Convolution"),
    ("CaskConvolution", "Convolution"),
    ("CaskPooling", "Pooling"),
    ("CaskGemmConvolution", "Convolution"),
    ("Reformat", "Reformat"),
)


@dataclass
class GeneratedRun:
    """One generated model run, in memory, in the intermediate schemas."""

    samples: pd.DataFrame  # timestamp datetime64[ns], power_uw (as the log lines give it)
    windows: pd.DataFrame  # layer_windows schema
    descriptions: pd.DataFrame  # layer_name, layer_type
    layer_power_uw: dict[str, float]  # the true power of every layer
    idle_power_uw: float
    voltage_mv: np.ndarray  # the log's fields, to write the file
    current_ma: np.ndarray


def generate_run(
    n_cycles: int = 30_000,
    n_layers: int = 150,
    *,
    sample_rate_hz: float = 750.0,
    median_latency_us: float = 40.0,
    inter_cycle_gap_us: int = 1_000,
    noise_fraction: float = 0.02,
    seed: int = 0,
) -> GeneratedRun:
    """Generate a run: windows in execution order, samples sorted by time."""
    rng = np.random.default_rng(seed)
    names = np.array([f"layer_{i:03d}" for i in range(n_layers)], dtype=object)
    base_latency_us = np.maximum(1.0, rng.lognormal(np.log(median_latency_us), 0.6, n_layers))
    layer_power = IDLE_POWER_UW + rng.uniform(500_000.0, 6_000_000.0, n_layers)

    latency_us = np.maximum(
        1, np.rint(base_latency_us * rng.uniform(0.95, 1.05, (n_cycles, n_layers)))
    ).astype(np.int64)
    gap_us = rng.integers(2, 7, (n_cycles, n_layers))
    gap_us[:, -1] += inter_cycle_gap_us
    span = latency_us + gap_us
    end_us = START_US + 5_000 + np.cumsum(span.ravel()) - gap_us.ravel()
    start_us = end_us - latency_us.ravel()

    period_us = 1e6 / sample_rate_hz
    t_stop = int(end_us[-1]) + 5_000
    n_samples = int((t_stop - START_US) / period_us)
    jitter = rng.integers(-int(period_us / 4), int(period_us / 4) + 1, n_samples)
    sample_us = START_US + np.rint(np.arange(n_samples) * period_us).astype(np.int64) + jitter
    inside_idx = np.minimum(np.searchsorted(end_us, sample_us, side="left"), end_us.size - 1)
    inside = start_us[inside_idx] <= sample_us
    true_power = np.where(
        inside, np.tile(layer_power, n_cycles)[inside_idx], IDLE_POWER_UW
    ) * rng.normal(1.0, noise_fraction, n_samples)
    voltage_mv = np.rint(VOLTAGE_MV + rng.normal(0.0, 4.0, n_samples))
    current_ma = np.round(true_power / voltage_mv, 1)

    kinds = [_LAYER_KINDS[i % len(_LAYER_KINDS)][0] for i in range(n_layers)]
    windows = pd.DataFrame(
        {
            "layer_name": np.tile(names, n_cycles),
            "cycle": np.repeat(np.arange(1, n_cycles + 1, dtype=np.int64), n_layers),
            "start": (start_us * 1000).astype("datetime64[ns]"),
            "end": (end_us * 1000).astype("datetime64[ns]"),
            "latency_ms": latency_us.ravel() / 1000.0,
            "repeats": np.ones(end_us.size, dtype=np.int64),
        }
    )
    return GeneratedRun(
        samples=pd.DataFrame(
            {
                "timestamp": (sample_us * 1000).astype("datetime64[ns]"),
                "power_uw": voltage_mv * current_ma,
            }
        ),
        windows=windows,
        descriptions=pd.DataFrame({"layer_name": names, "layer_type": kinds}),
        layer_power_uw=dict(zip(names, layer_power.tolist(), strict=True)),
        idle_power_uw=IDLE_POWER_UW,
        voltage_mv=voltage_mv,
        current_ma=current_ma,
    )


def format_timestamps(ns: np.ndarray) -> np.ndarray:
    """int64 ns -> ``%Y%m%d-%H:%M:%S.%f`` byte strings (S24), by integer arithmetic on digits."""
    us = np.asarray(ns, dtype=np.int64) // 1000
    day_us = 86_400 * 10**6
    days, in_day = np.divmod(us, day_us)
    unique_days, day_index = np.unique(days, return_inverse=True)
    dates = np.array(
        [np.datetime_as_string(np.datetime64(int(d), "D")).replace("-", "") for d in unique_days],
        dtype="S8",
    )
    out = np.empty((us.size, 24), dtype=np.uint8)
    out[:, :8] = dates.view(np.uint8).reshape(-1, 8)[day_index.ravel()]
    out[:, 8], out[:, 11], out[:, 14], out[:, 17] = ord("-"), ord(":"), ord(":"), ord(".")
    seconds, micros = np.divmod(in_day, 10**6)
    fields = ((9, seconds // 3600, 2), (12, seconds // 60 % 60, 2), (15, seconds % 60, 2))
    for position, value, width in (*fields, (18, micros, 6)):
        for digit in range(width):
            place = 10 ** (width - 1 - digit)
            out[:, position + digit] = ord("0") + value // place % 10
    return out.view("S24").ravel()


def _fixed_width_text(values: np.ndarray, fmt: str) -> np.ndarray:
    """``fmt`` applied to each distinct value only, right-aligned to one width (bytes)."""
    unique, index = np.unique(values, return_inverse=True)
    texts = [fmt.format(v) for v in unique.tolist()]
    width = max((len(t) for t in texts), default=1)
    return np.array([t.rjust(width) for t in texts], dtype=f"S{width}")[index.ravel()]


def _json_entries(latency_text: np.ndarray, end_text: np.ndarray) -> np.ndarray:
    """Rows of ``[ latency, "end"], `` as a fixed-width uint8 matrix (spaces are valid JSON)."""
    parts = [b"[", latency_text, b', "', end_text, b'"], ']
    widths = [len(p) if isinstance(p, bytes) else p.itemsize for p in parts]
    out = np.empty((latency_text.size, sum(widths)), dtype=np.uint8)
    column = 0
    for part, width in zip(parts, widths, strict=True):
        if isinstance(part, bytes):
            out[:, column : column + width] = np.frombuffer(part, dtype=np.uint8)
        else:
            out[:, column : column + width] = part.view(np.uint8).reshape(-1, width)
        column += width
    return out


def _engine_info(names: np.ndarray) -> dict:
    """A TensorRT-inspector-style engine description of the generated layers."""
    layers = []
    for i, name in enumerate(names):
        layer_type, parameter_type = _LAYER_KINDS[i % len(_LAYER_KINDS)]
        channels = 16 * (1 + i % 8)
        tensor = {"Dimensions": [1, channels, 28, 28], "Format/Datatype": "Half"}
        layer = {
            "Name": str(name),
            "LayerType": layer_type,
            "Inputs": [dict(tensor, Name=f"{name}.in")],
            "Outputs": [dict(tensor, Name=f"{name}.out")],
            "ParameterType": parameter_type,
        }
        if parameter_type == "Convolution":
            layer |= {
                "Kernel": [3, 3] if layer_type == "CaskConvolution" else [1, 1],
                "PaddingMode": "kEXPLICIT_ROUND_DOWN",
                "PrePadding": [1, 1],
                "PostPadding": [1, 1],
                "Stride": [1, 1],
                "Dilation": [1, 1],
                "OutMaps": channels,
                "Groups": 1,
                "Weights": {"Type": "Half", "Count": channels * channels * 9},
            }
        elif parameter_type == "Pooling":
            layer |= {
                "PoolingType": "MAX",
                "WindowSize": [2, 2],
                "PrePadding": [0, 0],
                "PostPadding": [0, 0],
                "Stride": [1, 1],
            }
        layers.append(layer)
    return {"Layers": layers, "Bindings": ["input", "output"]}


def write_raw_model(run: GeneratedRun, raw_dir: Path, model: str) -> Path:
    """Write ``run`` as the Jetson-dialect files of ``raw_dir/model``; returns that folder."""
    folder = Path(raw_dir) / model
    (folder / "trt_profiling").mkdir(parents=True, exist_ok=True)

    stamps = format_timestamps(run.samples["timestamp"].to_numpy().view(np.int64))
    lines = [
        f"{ts.decode()},{mv:.1f},{ma:.1f}"
        for ts, mv, ma in zip(stamps, run.voltage_mv, run.current_ma, strict=True)
    ]
    lines.append(lines[-1][:15])  # the logger was killed mid-line
    (folder / f"{model}_power_log.log").write_text("\n".join(lines))

    windows = run.windows
    codes, names = windows["layer_name"].factorize()
    order = np.lexsort((windows["cycle"].to_numpy(), codes))  # layer by layer, cycle order
    entries = _json_entries(
        _fixed_width_text(windows["latency_ms"].to_numpy()[order], "{:.3f}"),
        format_timestamps(windows["end"].to_numpy().view(np.int64)[order]),
    )
    boundaries = np.searchsorted(codes[order], np.arange(len(names) + 1))
    with (folder / "trt_profiling" / "trt_layer_latency.json").open("wb") as out:
        for i, name in enumerate(names):
            out.write(b"{" if i == 0 else b", ")
            out.write(json.dumps(str(name)).encode() + b": [")
            out.write(entries[boundaries[i] : boundaries[i + 1]].tobytes()[:-2] + b"]")
        out.write(b"}")

    engine = _engine_info(run.descriptions["layer_name"].to_numpy())
    (folder / "trt_profiling" / "trt_engine_info.json").write_text(json.dumps(engine, indent=1))
    cycle_ms = windows.groupby("cycle")["latency_ms"].sum().mean()
    config = {
        "config": {"model": model, "input_shape": [1, 3, 224, 224], "dtype": "fp16"},
        "avg_latency": float(cycle_ms) / 1000.0,
    }
    (folder / f"{model}_tensorrt.json").write_text(json.dumps(config, indent=1))
    return folder


def write_idle_power(raw_dir: Path, idle_power_uw: float = IDLE_POWER_UW) -> None:
    """Write ``raw_dir/idling_power.json``."""
    Path(raw_dir).mkdir(parents=True, exist_ok=True)
    payload = {"timestamp": "20241121-051743", "avg_idle_power": idle_power_uw}
    (Path(raw_dir) / "idling_power.json").write_text(json.dumps(payload))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--cycles", type=int, default=30_000)
    parser.add_argument("--layers", type=int, default=150)
    parser.add_argument("--model", default="generated_net")
    args = parser.parse_args()
    run = generate_run(args.cycles, args.layers)
    write_idle_power(args.out_dir, run.idle_power_uw)
    print(write_raw_model(run, args.out_dir, args.model))


if __name__ == "__main__":
    main()
