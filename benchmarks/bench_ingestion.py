"""Ingestion parsers on generated Jetson-style data (``make bench`` / ``python -m benchmarks
ingestion``): a 1 M-line power log and a 30 000 cycles x 150 layers latency file (4.5 M
entries, ~165 MB)."""

from __future__ import annotations

import time

import numpy as np

from power_modelling.core.raw.latency import parse_layer_latency
from power_modelling.core.raw.plausibility import DEFAULT_RANGES
from power_modelling.core.raw.power_log import parse_power_log

POWER_LINES = 1_000_000
CYCLES, LAYERS = 30_000, 150
_EPOCH_2024_11_21 = np.datetime64("2024-11-21T05:20:04", "us")


def jetson_timestamps(count: int, step_us: int, seed: int = 0) -> np.ndarray:
    """``count`` increasing ``%Y%m%d-%H:%M:%S.%f`` timestamps as an ``S24`` array."""
    rng = np.random.default_rng(seed)
    offsets = np.cumsum(rng.integers(step_us // 2, step_us * 3 // 2 + 1, count))
    stamps = (_EPOCH_2024_11_21 + offsets.astype("timedelta64[us]")).astype("S26")
    # "2024-11-21T05:20:04.261448" -> "20241121-05:20:04.261448"
    chars = stamps.view(np.uint8).reshape(count, 26)
    out = np.concatenate([chars[:, 0:4], chars[:, 5:7], chars[:, 8:10], chars[:, 10:]], axis=1)
    out[:, 8] = ord("-")
    return out.copy().view("S24").ravel()


def jetson_power_log(lines: int = POWER_LINES) -> bytes:
    """A Jetson INA3221 log: ``timestamp,mV,mA`` lines, 1 ms apart."""
    rng = np.random.default_rng(1)
    stamps = jetson_timestamps(lines, 1000)
    current = rng.integers(800, 3000, lines).astype("S5")
    body = b"\n".join(s + b",5000.0," + c + b".0" for s, c in zip(stamps, current, strict=True))
    return body + b"\n"


def jetson_latency_file(cycles: int = CYCLES, layers: int = LAYERS) -> bytes:
    """``{layer: [[latency_ms, end_ts], ...]}`` as ``json.dumps`` writes it (~180 MB in full)."""
    rng = np.random.default_rng(2)
    stamps = jetson_timestamps(cycles * layers, 40).reshape(cycles, layers)
    latency = np.round(rng.random((cycles, layers)) * 2, 6).astype("S8")  # like 0.123456
    parts = [b"{"]
    for layer in range(layers):
        entries = b"], [".join(
            latency[:, layer][i] + b', "' + stamps[i, layer] + b'"' for i in range(cycles)
        )
        separator = b", " if layer else b""
        parts.append(b'%s"layer_%03d": [[%s]]' % (separator, layer, entries))
    parts.append(b"}")
    return b"".join(parts)


def _best_of(repeats: int, func, *args) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = func(*args)
        best = min(best, time.perf_counter() - start)
    return best, result


def main(argv: list[str] | None = None) -> dict:
    parse_power_log(b"20241121-05:20:04.261448,5000.0,1096.0\n", "warm-up")  # Arrow kernels
    log = jetson_power_log()
    jetson = DEFAULT_RANGES["jetson"]  # the range checks run as in the pipeline
    seconds, (frame, _) = _best_of(3, parse_power_log, log, "generated", 5, jetson.power_uw)
    print(
        f"parse_power_log: {len(frame):,} lines ({len(log) / 1e6:.0f} MB) in {seconds:.3f} s"
        f" ({len(frame) / seconds / 1e6:.1f} M lines/s)"
    )
    latency = jetson_latency_file()
    seconds, (windows, report) = _best_of(2, parse_layer_latency, latency, "generated", 5, jetson)
    print(
        f"parse_layer_latency: {len(windows):,} entries ({len(latency) / 1e6:.0f} MB,"
        f" {report['parser']} path) in {seconds:.3f} s"
    )
    return {}


if __name__ == "__main__":
    main()
