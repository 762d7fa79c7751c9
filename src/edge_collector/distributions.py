"""Seeded sampling of layer configurations for sweeps: the documented distributions.

The models trained on measured CNNs are only as general as the configurations measured: 20
famous networks at batch 1 leave most of the layer space empty. Like nn-Meter, a sweep
measures *sampled* configurations. The distributions below cover the ranges of common CNNs
(LeNet … ConvNeXt, MobileNets, ResNeXt): categorical choices carry the weights of how often a
value occurs in those networks; sizes and widths are log-uniform, because layer cost scales
multiplicatively with them. Channels, feature-map size and batch are drawn independently (real
networks trade channels against size; independence also covers the off-diagonal corners a new
network may land in), then a configuration is rejected and redrawn when it is invalid (the
kernel does not fit) or exceeds the device limits (``Limits``: FLOPs per execution, bytes of
input + output + weights). Rejection trims the top of the ranges on small devices; the limits are
recorded in the sweep manifest.

Reproducible and stable: configuration *i* of class *c* is drawn from its own generator,
``numpy.random.default_rng([seed, class_id, i])``, so it depends on nothing else: a sweep
extended from 100 to 300 convolutions keeps its first 100, and a resumed sweep re-plans exactly
the same configurations.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from edge_collector.layers import Conv, Dense, LayerSpec, Pool, layer_bytes

#: Bump when a distribution changes: a manifest made with another version is not resumed.
DISTRIBUTIONS_VERSION = 1
CLASS_IDS = {"conv": 1, "pool": 2, "dense": 3}
MAX_DRAWS = 10_000


class Categorical:
    """A weighted choice among listed values."""

    def __init__(self, weights: dict[Any, float]) -> None:
        total = float(sum(weights.values()))
        self.values = list(weights)
        self.p = [w / total for w in weights.values()]

    def sample(self, rng: np.random.Generator) -> Any:
        return self.values[int(rng.choice(len(self.values), p=self.p))]

    def describe(self) -> str:
        return ", ".join(f"{v}: {p:.0%}" for v, p in zip(self.values, self.p))


class LogUniform:
    """An integer log-uniform in ``[low, high]``, rounded to a multiple of ``multiple``."""

    def __init__(self, low: int, high: int, multiple: int = 1) -> None:
        self.low, self.high, self.multiple = low, high, multiple

    def sample(self, rng: np.random.Generator) -> int:
        value = math.exp(rng.uniform(math.log(self.low), math.log(self.high + 1)))
        value = int(round(value / self.multiple)) * self.multiple
        return min(self.high, max(self.low, value))

    def describe(self) -> str:
        step = f", multiples of {self.multiple}" if self.multiple > 1 else ""
        return f"log-uniform {self.low}..{self.high}{step}"


class Ladder:
    """With probability ``p_ladder`` one of the canonical ``values`` (uniformly), else a
    log-uniform integer in ``[low, high]`` (the sizes between and beyond the ladder)."""

    def __init__(self, values: Sequence[int], p_ladder: float, low: int, high: int) -> None:
        self.values, self.p_ladder = list(values), p_ladder
        self.between = LogUniform(low, high)

    def sample(self, rng: np.random.Generator) -> int:
        if rng.uniform() < self.p_ladder:
            return self.values[int(rng.integers(len(self.values)))]
        return self.between.sample(rng)

    def describe(self) -> str:
        return f"{self.p_ladder:.0%} one of {self.values}, else {self.between.describe()}"


BATCH = Categorical({1: 0.4, 2: 0.1, 4: 0.15, 8: 0.15, 16: 0.1, 32: 0.1})
SIZE = Ladder([7, 14, 28, 56, 112, 224], 0.7, 4, 256)
CHANNELS = LogUniform(8, 2048, multiple=8)

CONV = {
    "batch": BATCH,
    "size": SIZE,
    "kernel": Categorical({1: 0.35, 3: 0.45, 5: 0.1, 7: 0.07, 11: 0.03}),
    "stride": Categorical({1: 0.72, 2: 0.25, 4: 0.03}),
    "padding": Categorical({"same": 0.8, "none": 0.2}),  # same: kernel // 2
    "structure": Categorical({"standard": 0.7, "depthwise": 0.2, "grouped": 0.1}),
    "in_channels": CHANNELS,  # standard and grouped; depthwise: out = in = groups
    "stem": Categorical({False: 0.95, True: 0.05}),  # standard only: 3 input channels (RGB)
    "out_channels": CHANNELS,
    "groups": Categorical({2: 0.2, 4: 0.2, 8: 0.2, 16: 0.1, 32: 0.2, 64: 0.1}),  # grouped only
}
POOL = {
    "batch": BATCH,
    "size": SIZE,
    "channels": CHANNELS,
    "kind": Categorical({"max": 0.6, "avg": 0.3, "global_avg": 0.1}),
    "window": Categorical({2: 0.55, 3: 0.45}),  # max / avg
    "stride": Categorical({"window": 0.6, 2: 0.3, 1: 0.1}),
    "padding": Categorical({0: 0.7, "half": 0.3}),  # half: window // 2
}
DENSE = {
    "batch": BATCH,
    "in_features": LogUniform(64, 25088),  # 25088 = VGG's 512x7x7 classifier input
    "out_features": LogUniform(10, 4096),
}
DISTRIBUTIONS = {"conv": CONV, "pool": POOL, "dense": DENSE}


@dataclass(frozen=True)
class Limits:
    """What one layer execution may cost on the device (rejection sampling)."""

    max_gflops: float = 25.0
    max_mb: float = 512.0  # input + output + weights, at ``element_bytes`` each
    element_bytes: int = 2  # FP16

    def admits(self, layer: LayerSpec) -> bool:
        return (
            layer.flops <= self.max_gflops * 1e9
            and layer_bytes(layer, self.element_bytes) <= self.max_mb * 2**20
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def sample_conv(rng: np.random.Generator) -> Conv:
    d = CONV
    kernel, stride = d["kernel"].sample(rng), d["stride"].sample(rng)
    padding = kernel // 2 if d["padding"].sample(rng) == "same" else 0
    batch, size = d["batch"].sample(rng), d["size"].sample(rng)
    structure = d["structure"].sample(rng)
    if structure == "depthwise":
        channels = d["in_channels"].sample(rng)
        return Conv(batch, channels, channels, size, kernel, stride, padding, groups=channels)
    if structure == "grouped":
        groups = d["groups"].sample(rng)
        c_in = _round_up(d["in_channels"].sample(rng), groups)
        c_out = _round_up(d["out_channels"].sample(rng), groups)
        return Conv(batch, c_in, c_out, size, kernel, stride, padding, groups=groups)
    stem = d["stem"].sample(rng)
    c_in = 3 if stem else d["in_channels"].sample(rng)
    return Conv(batch, c_in, d["out_channels"].sample(rng), size, kernel, stride, padding)


def sample_pool(rng: np.random.Generator) -> Pool:
    d = POOL
    batch, size, channels = d["batch"].sample(rng), d["size"].sample(rng), d["channels"].sample(rng)
    kind = d["kind"].sample(rng)
    if kind == "global_avg":
        return Pool.global_average(batch, channels, size)
    window = d["window"].sample(rng)
    stride = d["stride"].sample(rng)
    stride = window if stride == "window" else stride
    padding = window // 2 if d["padding"].sample(rng) == "half" else 0
    return Pool(batch, channels, size, kind, window, stride, padding)


def sample_dense(rng: np.random.Generator) -> Dense:
    d = DENSE
    return Dense(
        d["batch"].sample(rng), d["in_features"].sample(rng), d["out_features"].sample(rng)
    )


SAMPLERS = {"conv": sample_conv, "pool": sample_pool, "dense": sample_dense}


def sample_config(layer_class: str, index: int, seed: int, limits: Limits) -> LayerSpec:
    """Configuration ``index`` of ``layer_class`` (drawn again until valid and within
    ``limits``; deterministic in (seed, class, index))."""
    rng = np.random.default_rng([seed, CLASS_IDS[layer_class], index])
    for _ in range(MAX_DRAWS):
        try:
            layer = SAMPLERS[layer_class](rng)
        except ValueError:  # the kernel or window does not fit the input: draw again
            continue
        if limits.admits(layer):
            return layer
    raise ValueError(
        f"no {layer_class} configuration within {limits} after {MAX_DRAWS} draws: "
        "raise --max-gflops / --max-mb"
    )


@dataclass(frozen=True)
class PlannedConfig:
    name: str
    layer_class: str
    index: int
    layer: LayerSpec


def plan(
    counts: dict[str, int], seed: int, limits: Limits, prefix: str = "sweep"
) -> list[PlannedConfig]:
    """Every configuration of a sweep, interleaved across classes in proportion (a sweep
    stopped half-way has half of each class), named ``<prefix>_<class>_<index>``."""
    unknown = set(counts) - set(CLASS_IDS)
    if unknown:
        raise ValueError(f"unknown layer classes {sorted(unknown)}; use {sorted(CLASS_IDS)}")
    keyed: list[tuple[float, int, PlannedConfig]] = []
    for layer_class, count in counts.items():
        for index in range(count):
            config = PlannedConfig(
                f"{prefix}_{layer_class}_{index:04d}",
                layer_class,
                index,
                sample_config(layer_class, index, seed, limits),
            )
            keyed.append(((index + 0.5) / count, CLASS_IDS[layer_class], config))
    return [config for _, _, config in sorted(keyed, key=lambda k: (k[0], k[1]))]


def describe_distributions(limits: Limits | None = None) -> list[str]:
    lines = []
    for layer_class, fields in DISTRIBUTIONS.items():
        lines.append(f"{layer_class}:")
        lines.extend(f"  {name:<13} {dist.describe()}" for name, dist in fields.items())
    if limits is not None:
        lines.append(
            f"rejected when > {limits.max_gflops:g} GFLOP per execution or > "
            f"{limits.max_mb:g} MB of input+output+weights ({limits.element_bytes} B/element)"
        )
    return lines


def _round_up(value: int, multiple: int) -> int:
    return max(multiple, -(-value // multiple) * multiple)
