"""The CPU backend: real NumPy convolution, pooling and dense kernels, synthetic known power.

What is real: the kernels run and are timed with ``perf_counter`` (so runtimes, windows and
timestamps are genuine), the sampler is the same child process as on a device, the files are
the same. What is synthetic: the power, declared per layer by ``synthetic_power_uw`` and
read by the sampler from shared memory (``edge_collector.synthetic``). That makes a raw
dataset with a *known* answer, in either dialect:

- ``nvml`` (burst): each unique layer alone, ``repeats`` executions per burst, bursts for
  ``settle_ms`` (not recorded) then ``record_ms`` (one ``[ms, end, repeats]`` entry each),
  the energy counter integrated per layer (``layer_energy.json``), then the whole network.
- ``jetson`` (per cycle): every layer once per cycle, in order, one ``[ms, end]`` entry per
  layer and cycle, ``cycles`` times (the shape of a TensorRT ``IProfiler`` run).

Use it to try the collector and the project end to end on any machine, and as the closed-loop
test of the whole chain.
"""

from __future__ import annotations

import math
import platform
import time
from typing import Any, Callable

import numpy as np

from edge_collector.backends import Backend, ModelRun
from edge_collector.distributions import Limits
from edge_collector.layers import Conv, Dense, LayerSpec, Network, Pool, layer_bytes
from edge_collector.rawdata import format_timestamp, latency_entry
from edge_collector.synthetic import SyntheticSource

DTYPE_LABEL = "FP32"
ELEMENT_BYTES = 4


def synthetic_power_uw(layer: LayerSpec, idle_uw: float) -> float:
    """The declared total power of a layer: idle + 0.5 W + up to 4.5 W growing with the
    arithmetic intensity (FLOPs per byte moved), the shape real accelerators show (memory-bound
    layers draw little, compute-bound ones a lot). Smooth in the configuration, so models
    trained on it have something to learn."""
    intensity = layer.flops / max(1, layer_bytes(layer, ELEMENT_BYTES))
    return idle_uw + 1e6 * (0.5 + 4.5 * intensity / (intensity + 8.0))


class CpuBackend(Backend):
    kind = "cpu"
    precision = DTYPE_LABEL
    #: CPU kernels are slow: sweep configurations are kept small by default
    default_limits = Limits(max_gflops=0.2, max_mb=64.0, element_bytes=ELEMENT_BYTES)

    def __init__(
        self,
        *,
        dialect: str = "nvml",
        idle_w: float = 4.0,
        noise: float = 0.01,
        seed: int = 0,
        period_s: float = 0.001,
        cycles: int = 100,
        warmup: int = 3,
        min_layer_ms: float = 50.0,
        max_cycles: int = 20000,
        burst_ms: float = 5.0,
        settle_ms: float = 20.0,
        record_ms: float = 100.0,
        whole_ms: float = 100.0,
        cycle_gap_ms: float = 0.0,
    ) -> None:
        self.dialect = dialect
        self.period_s = period_s
        self.cycles, self.warmup = cycles, warmup
        self.min_layer_ms, self.max_cycles = min_layer_ms, max_cycles
        self.burst_ms, self.settle_ms = burst_ms, settle_ms
        self.record_ms, self.whole_ms = record_ms, whole_ms
        self.cycle_gap_ms = cycle_gap_ms
        self.seed = seed
        self.source = SyntheticSource(idle_w * 1e6, dialect, noise, seed)

    # ---- Backend interface
    def device_info(self) -> dict[str, Any]:
        return {
            "name": f"{platform.machine() or 'unknown'} CPU (NumPy kernels)",
            "kind": self.kind,
            "numpy": np.__version__,
            "power_source": "synthetic",
            "precision": self.precision,
            "synthetic": {
                "idle_w": self.source.idle_uw / 1e6,
                "noise": self.source.noise,
                "law": "idle + 0.5 W + 4.5 W * I / (I + 8), I = FLOPs per byte (FP32)",
            },
        }

    def power_source(self) -> SyntheticSource:
        return self.source

    def prepare_idle(self) -> None:
        self.source.idle()

    def estimate_s(self, network: Network) -> float:
        if self.dialect == "nvml":
            per_layer = (self.settle_ms + self.record_ms) / 1000.0 + 0.02
            return len(network.unique_layers()) * per_layer + self.whole_ms / 1000.0
        # ~1 GFLOP/s for small NumPy kernels (Python call overhead included)
        layer_ms = {n: 1000.0 * max(2e-5, layer.flops / 1e9) for n, layer in network.layers}
        cycles = cycles_needed(layer_ms, self.cycles, self.min_layer_ms, self.max_cycles)
        cycle_s = sum(layer_ms.values()) / 1000.0 + 2e-5 * len(layer_ms)
        return (cycles + self.warmup) * (cycle_s + self.cycle_gap_ms / 1000.0)

    def run(self, model: Any) -> ModelRun:
        if not isinstance(model, Network):
            raise TypeError(f"the cpu backend measures Network objects, got {type(model).__name__}")
        rng = np.random.default_rng(self.seed)
        kernels = {name: make_kernel(layer, rng) for name, layer in model.layers}
        truth = {
            name: synthetic_power_uw(layer, self.source.idle_uw) for name, layer in model.layers
        }
        started = time.time()
        if self.dialect == "nvml":
            latency, energy, whole = self._bursts(model, kernels, truth)
        else:
            latency, whole = self._cycles(model, kernels, truth)
            energy = None
        self.source.idle()
        config = {
            "model": model.name,
            "dtype": "float32",
            "input_shape": model.input_dims,
            "backend": "numpy-cpu",
            "numpy": np.__version__,
            "synthetic_power_w": {name: truth[name] / 1e6 for name in latency},
            **model.description,
        }
        if self.dialect == "nvml":
            config.update(
                layer_method="isolated layer, back-to-back bursts",
                burst_ms=self.burst_ms,
                settle_ms=self.settle_ms,
                record_ms=self.record_ms,
            )
            metadata = {
                "config": config,
                "device": self.device_info(),
                "layers_total": len(model.layers),
                "layers_unique": len(model.unique_layers()),
                "whole_model": whole,
                "start": format_timestamp(started),
                "end": format_timestamp(time.time()),
            }
            engine = model.engine_info(DTYPE_LABEL)
        else:
            config.update(
                cycles=whole["cycles"], warmup=self.warmup, min_layer_ms=self.min_layer_ms
            )
            metadata = {"config": config, "avg_latency": whole["latency_ms"] / 1000.0}
            engine = _every_instance(model)
        return ModelRun(latency, engine, metadata, energy, truth)

    # ---- NVML burst dialect
    def _bursts(
        self, model: Network, kernels: dict[str, Callable[[], Any]], truth: dict[str, float]
    ) -> tuple[dict[str, list[list]], dict[str, Any], dict[str, Any]]:
        latency: dict[str, list[list]] = {}
        energy: dict[str, Any] = {}
        for name, _ in model.unique_layers():
            kernel = kernels[name]
            repeats = _repeats(kernel, self.burst_ms)
            self.source.set_uw(truth[name])
            _burst_for(kernel, repeats, self.settle_ms, None)
            entries: list[list] = []
            figures = _burst_for(kernel, repeats, self.record_ms, entries, self.source)
            latency[name] = entries
            energy[name] = figures
            self.source.idle()
            time.sleep(2 * self.period_s)  # a few idle samples between layers, as on a GPU
        # the whole network: every layer in order, each at its own power
        sequence = [(kernels[name], truth[name]) for name, _ in model.layers]

        def forward() -> None:
            for kernel, power in sequence:
                self.source.set_uw(power)
                kernel()

        whole = _burst_for(forward, 1, self.whole_ms, None, self.source)
        return latency, energy, whole

    # ---- Jetson dialect
    def _cycles(
        self, model: Network, kernels: dict[str, Callable[[], Any]], truth: dict[str, float]
    ) -> tuple[dict[str, list[list]], dict[str, Any]]:
        latency: dict[str, list[list]] = {name: [] for name, _ in model.layers}
        order = [(name, kernels[name], truth[name]) for name, _ in model.layers]
        warm: dict[str, list[float]] = {name: [] for name, _ in model.layers}
        for _ in range(max(1, self.warmup)):
            for name, kernel, _ in order:
                t0 = time.perf_counter()
                kernel()
                warm[name].append((time.perf_counter() - t0) * 1000.0)
        cycles = cycles_needed(
            {name: min(times) for name, times in warm.items()},
            self.cycles,
            self.min_layer_ms,
            self.max_cycles,
        )
        cycle_ms = []
        for _ in range(cycles):
            total = 0.0
            for name, kernel, power in order:
                self.source.set_uw(power)
                t0 = time.perf_counter()
                kernel()
                t1 = time.perf_counter()
                end = time.time()
                latency[name].append(latency_entry((t1 - t0) * 1000.0, end))
                total += t1 - t0
            self.source.idle()
            cycle_ms.append(total * 1000.0)
            if self.cycle_gap_ms:
                time.sleep(self.cycle_gap_ms / 1000.0)
        return latency, {"latency_ms": sum(cycle_ms) / len(cycle_ms), "cycles": cycles}


def cycles_needed(
    layer_ms: dict[str, float], minimum: int, min_layer_ms: float, maximum: int
) -> int:
    """Cycles so that every layer runs ``min_layer_ms`` in total (its windows then hold about
    ``min_layer_ms / period`` power samples), at least ``minimum``, at most ``maximum``."""
    needed = max((min_layer_ms / max(ms, 1e-6) for ms in layer_ms.values()), default=0.0)
    return int(min(maximum, max(minimum, math.ceil(needed))))


def _repeats(kernel: Callable[[], Any], burst_ms: float) -> int:
    """Executions per burst so that a burst lasts about ``burst_ms``."""
    kernel()
    t0 = time.perf_counter()
    calls = 0
    while calls < 3 or time.perf_counter() - t0 < 0.002:
        kernel()
        calls += 1
    single_ms = (time.perf_counter() - t0) * 1000.0 / calls
    return max(1, int(round(burst_ms / single_ms)))


def _burst_for(
    kernel: Callable[[], Any],
    repeats: int,
    duration_ms: float,
    entries: Any,
    source: Any = None,
) -> dict[str, Any]:
    """Bursts of ``repeats`` executions for ``duration_ms``; appends ``[ms, end, repeats]`` to
    ``entries`` (if given); returns the burst figures in the H200 dataset's form."""
    energy0 = source.energy_mj() if source is not None else None
    wall0 = time.time()
    start = time.perf_counter()
    busy, bursts = 0.0, 0
    while True:
        b0 = time.perf_counter()
        for _ in range(repeats):
            kernel()
        b1 = time.perf_counter()
        end = time.time()
        busy += b1 - b0
        bursts += 1
        if entries is not None:
            entries.append(latency_entry((b1 - b0) * 1000.0 / repeats, end, repeats))
        if (b1 - start) * 1000.0 >= duration_ms:
            break
    wall1 = time.time()
    figures: dict[str, Any] = {
        "repeats_per_burst": repeats,
        "iterations": bursts * repeats,
        "gpu_ms": busy * 1000.0,  # compute time (the name the NVML dialect uses)
        "wall_s": wall1 - wall0,
        "latency_ms": busy * 1000.0 / (bursts * repeats),
        "start": format_timestamp(wall0),
        "end": format_timestamp(wall1),
    }
    if source is not None:
        energy = source.energy_mj() - energy0
        figures["energy_mj"] = energy
        figures["avg_power_mw_counter"] = energy / max(1e-9, wall1 - wall0)  # mJ/s = mW
    return figures


def _every_instance(model: Network) -> dict[str, Any]:
    """A TensorRT engine lists every layer, repeats included: one entry per instance."""
    layers = []
    for name, layer in model.layers:
        layers.append({**layer.engine_layer(name, DTYPE_LABEL), "Count": 1})
    return {"Layers": layers, "Bindings": ["input", "output"]}


# ---------------------------------------------------------------------------- kernels
def make_kernel(layer: LayerSpec, rng: np.random.Generator) -> Callable[[], Any]:
    """A zero-argument callable running ``layer`` on a fixed random input (FP32)."""
    x = rng.standard_normal(layer.input_dims).astype(np.float32)
    if isinstance(layer, Conv):
        return _conv(layer, x, rng)
    if isinstance(layer, Pool):
        return _pool(layer, x)
    if isinstance(layer, Dense):
        w = (rng.standard_normal((layer.in_features, layer.out_features)) * 0.05).astype(np.float32)
        b = np.zeros(layer.out_features, dtype=np.float32)
        return lambda: x @ w + b
    raise TypeError(f"no CPU kernel for {type(layer).__name__}")


def conv2d(x: np.ndarray, w: np.ndarray, layer: Conv) -> np.ndarray:
    """Grouped, strided, dilated convolution as im2col + batched matmul.

    ``w``: ``[groups, in/groups * k * k, out/groups]``. Returns ``[N, out, P, P]``."""
    g, k, s, d, p = layer.groups, layer.kernel, layer.stride, layer.dilation, layer.padding
    n, c = x.shape[:2]
    cg, o = c // g, layer.out_size
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x
    sn, sc, sh, sw = xp.strides
    windows = np.lib.stride_tricks.as_strided(
        xp,
        shape=(n, g, cg, o, o, k, k),
        strides=(sn, cg * sc, sc, s * sh, s * sw, d * sh, d * sw),
        writeable=False,
    )
    cols = windows.transpose(1, 0, 3, 4, 2, 5, 6).reshape(g, n * o * o, cg * k * k)
    out = np.matmul(cols, w)  # [g, n*o*o, out/g]
    og = out.shape[-1]
    return out.reshape(g, n, o, o, og).transpose(1, 0, 4, 2, 3).reshape(n, g * og, o, o)


def _conv(layer: Conv, x: np.ndarray, rng: np.random.Generator) -> Callable[[], Any]:
    g, k = layer.groups, layer.kernel
    fan_in = layer.in_channels // g * k * k
    w = (rng.standard_normal((g, fan_in, layer.out_channels // g)) / np.sqrt(fan_in)).astype(
        np.float32
    )
    b = np.zeros((1, layer.out_channels, 1, 1), dtype=np.float32)
    return lambda: conv2d(x, w, layer) + b


def pool2d(x: np.ndarray, layer: Pool) -> np.ndarray:
    """Max / average pooling (average counts the zero padding, as PyTorch's default)."""
    if layer.kind == "global_avg":
        return x.mean(axis=(2, 3), keepdims=True)
    p, k, s, o = layer.padding, layer.window, layer.stride, layer.out_size
    if p:
        fill = -np.inf if layer.kind == "max" else 0.0
        x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=fill)
    sn, sc, sh, sw = x.strides
    windows = np.lib.stride_tricks.as_strided(
        x,
        shape=(x.shape[0], x.shape[1], o, o, k, k),
        strides=(sn, sc, s * sh, s * sw, sh, sw),
        writeable=False,
    )
    return windows.max(axis=(4, 5)) if layer.kind == "max" else windows.mean(axis=(4, 5))


def _pool(layer: Pool, x: np.ndarray) -> Callable[[], Any]:
    return lambda: pool2d(x, layer)
