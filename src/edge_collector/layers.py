"""Layer configurations (convolution, pooling, dense) and the networks built from them.

A configuration is everything that decides a layer's work: shapes, kernel, stride, padding,
groups, batch. From it come the output shape, the FLOPs and bytes a backend needs for
planning, and the engine-description entry the project's ingestion reads (the "NVML burst"
dialect of ``docs/raw-data-format.md``: PyTorch module names as ``LayerType``). Feature maps
are square (``size`` = height = width), as in the CNNs the sweep imitates.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence, Union

POOL_KINDS = ("max", "avg", "global_avg")


def _positive(name: str, value: int, minimum: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


@dataclass(frozen=True)
class Conv:
    """``Conv2d``: ``[batch, in_channels, size, size] → [batch, out_channels, out, out]``."""

    batch: int
    in_channels: int
    out_channels: int
    size: int
    kernel: int
    stride: int = 1
    padding: int = 0
    groups: int = 1
    dilation: int = 1
    bias: bool = True

    layer_class = "conv"

    def __post_init__(self) -> None:
        for name in ("batch", "in_channels", "out_channels", "size", "kernel", "stride"):
            _positive(name, getattr(self, name))
        _positive("padding", self.padding, 0)
        _positive("groups", self.groups)
        _positive("dilation", self.dilation)
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(
                f"groups={self.groups} must divide in_channels={self.in_channels} and "
                f"out_channels={self.out_channels}"
            )
        if self.out_size < 1:
            raise ValueError(f"{self}: the kernel does not fit the padded input")

    @property
    def out_size(self) -> int:
        span = self.dilation * (self.kernel - 1) + 1
        return (self.size + 2 * self.padding - span) // self.stride + 1

    @property
    def input_dims(self) -> list[int]:
        return [self.batch, self.in_channels, self.size, self.size]

    @property
    def output_dims(self) -> list[int]:
        return [self.batch, self.out_channels, self.out_size, self.out_size]

    @property
    def weight_count(self) -> int:
        return self.out_channels * (self.in_channels // self.groups) * self.kernel**2

    @property
    def flops(self) -> int:
        macs = self.in_channels // self.groups * self.kernel**2
        return 2 * _product(self.output_dims) * macs

    def engine_layer(self, name: str, dtype: str) -> dict[str, Any]:
        return {
            "Name": name,
            "LayerType": "Conv2d",
            **_tensors(name, self.input_dims, self.output_dims, dtype),
            "ParameterType": "Convolution",
            "Kernel": [self.kernel, self.kernel],
            "PrePadding": [self.padding, self.padding],
            "PostPadding": [self.padding, self.padding],
            "Stride": [self.stride, self.stride],
            "Dilation": [self.dilation, self.dilation],
            "OutMaps": self.out_channels,
            "Groups": self.groups,
            "HasBias": int(self.bias),
        }


@dataclass(frozen=True)
class Pool:
    """``MaxPool2d`` / ``AvgPool2d`` (window, stride, padding) or a global average
    (``AdaptiveAvgPool2d(1)``: the window is the whole feature map)."""

    batch: int
    channels: int
    size: int
    kind: str = "max"
    window: int = 2
    stride: int = 2
    padding: int = 0

    layer_class = "pool"

    def __post_init__(self) -> None:
        if self.kind not in POOL_KINDS:
            raise ValueError(f"kind must be one of {POOL_KINDS}, got {self.kind!r}")
        for name in ("batch", "channels", "size", "window", "stride"):
            _positive(name, getattr(self, name))
        _positive("padding", self.padding, 0)
        if self.kind == "global_avg" and (self.window, self.stride, self.padding) != (
            self.size,
            self.size,
            0,
        ):
            raise ValueError("a global average has window = stride = size and no padding")
        if 2 * self.padding > self.window:  # PyTorch: padding at most half the window
            raise ValueError(f"padding {self.padding} is more than half the window {self.window}")
        if self.out_size < 1:
            raise ValueError(f"{self}: the window does not fit the padded input")

    @classmethod
    def global_average(cls, batch: int, channels: int, size: int) -> Pool:
        return cls(batch, channels, size, "global_avg", size, size, 0)

    @property
    def out_size(self) -> int:
        return (self.size + 2 * self.padding - self.window) // self.stride + 1

    @property
    def input_dims(self) -> list[int]:
        return [self.batch, self.channels, self.size, self.size]

    @property
    def output_dims(self) -> list[int]:
        return [self.batch, self.channels, self.out_size, self.out_size]

    @property
    def weight_count(self) -> int:
        return 0

    @property
    def flops(self) -> int:
        return _product(self.output_dims) * self.window**2

    def engine_layer(self, name: str, dtype: str) -> dict[str, Any]:
        layer_type = {"max": "MaxPool2d", "avg": "AvgPool2d", "global_avg": "AdaptiveAvgPool2d"}
        entry = {
            "Name": name,
            "LayerType": layer_type[self.kind],
            **_tensors(name, self.input_dims, self.output_dims, dtype),
            "ParameterType": "Pooling",
            "PoolingType": "MAX" if self.kind == "max" else "AVERAGE",
            "WindowSize": [self.window, self.window],
            "PrePadding": [self.padding, self.padding],
            "PostPadding": [self.padding, self.padding],
            "Stride": [self.stride, self.stride],
        }
        if self.kind == "global_avg":
            entry["Adaptive"] = 1
        return entry


@dataclass(frozen=True)
class Dense:
    """``Linear``: ``[batch, in_features] → [batch, out_features]``."""

    batch: int
    in_features: int
    out_features: int
    bias: bool = True

    layer_class = "dense"

    def __post_init__(self) -> None:
        for name in ("batch", "in_features", "out_features"):
            _positive(name, getattr(self, name))

    @property
    def input_dims(self) -> list[int]:
        return [self.batch, self.in_features]

    @property
    def output_dims(self) -> list[int]:
        return [self.batch, self.out_features]

    @property
    def weight_count(self) -> int:
        return self.in_features * self.out_features

    @property
    def flops(self) -> int:
        return 2 * self.batch * self.in_features * self.out_features

    def engine_layer(self, name: str, dtype: str) -> dict[str, Any]:
        return {
            "Name": name,
            "LayerType": "Linear",
            **_tensors(name, self.input_dims, self.output_dims, dtype),
            "ParameterType": "MatrixMultiply",
            "OutMaps": self.out_features,
            "InFeatures": self.in_features,
            "HasBias": int(self.bias),
        }


LayerSpec = Union[Conv, Pool, Dense]
LAYER_TYPES = {"conv": Conv, "pool": Pool, "dense": Dense}


def layer_bytes(layer: LayerSpec, element_bytes: int) -> int:
    """Bytes a layer moves at least once: its input, output and weights."""
    elements = _product(layer.input_dims) + _product(layer.output_dims) + layer.weight_count
    return elements * element_bytes


def to_dict(layer: LayerSpec) -> dict[str, Any]:
    """``{"class": "conv", ...fields}``, the form the sweep manifest stores."""
    return {"class": layer.layer_class, **asdict(layer)}


def from_dict(record: dict[str, Any]) -> LayerSpec:
    """The inverse of ``to_dict``; raises ``ValueError`` naming what is wrong."""
    fields = dict(record)
    kind = fields.pop("class", None)
    if kind not in LAYER_TYPES:
        raise ValueError(f"unknown layer class {kind!r} in {record!r}")
    try:
        return LAYER_TYPES[kind](**fields)
    except TypeError as exc:
        raise ValueError(f"bad {kind} configuration {record!r}: {exc}") from exc


def describe(layer: LayerSpec) -> str:
    """A short human-readable summary, e.g. ``conv 64→128 k3 s2 g1 56² b1``."""
    if isinstance(layer, Conv):
        return (
            f"conv {layer.in_channels}→{layer.out_channels} k{layer.kernel} s{layer.stride} "
            f"p{layer.padding} g{layer.groups} {layer.size}² b{layer.batch}"
        )
    if isinstance(layer, Pool):
        return (
            f"{layer.kind}pool {layer.channels}ch w{layer.window} s{layer.stride} "
            f"p{layer.padding} {layer.size}² b{layer.batch}"
        )
    return f"dense {layer.in_features}→{layer.out_features} b{layer.batch}"


@dataclass
class Network:
    """A sequence of layers executed one after another (a dense layer after a 4-D tensor
    flattens it). ``name`` becomes the model folder's name."""

    name: str
    layers: list[tuple[str, LayerSpec]]
    description: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.layers:
            raise ValueError(f"network {self.name!r} has no layers")
        names = [name for name, _ in self.layers]
        if len(set(names)) != len(names):
            raise ValueError(f"network {self.name!r} repeats a layer name: {names}")
        for (before_name, before), (name, layer) in zip(self.layers, self.layers[1:]):
            produced = _product(before.output_dims)
            if _product(layer.input_dims) != produced:
                raise ValueError(
                    f"network {self.name!r}: {name} expects {layer.input_dims}, but "
                    f"{before_name} produces {before.output_dims}"
                )

    @property
    def input_dims(self) -> list[int]:
        return self.layers[0][1].input_dims

    def engine_info(self, dtype: str) -> dict[str, Any]:
        """The engine description (``trt_engine_info.json``) in the NVML burst dialect: one
        entry per unique configuration, ``Count`` and ``InstanceNames`` for repeats."""
        unique: dict[str, dict[str, Any]] = {}
        for name, layer in self.layers:
            key = json.dumps(to_dict(layer), sort_keys=True)
            if key in unique:
                unique[key]["Count"] += 1
                unique[key]["InstanceNames"].append(name)
            else:
                unique[key] = {**layer.engine_layer(name, dtype), "Count": 1}
                unique[key]["InstanceNames"] = [name]
        return {"Layers": list(unique.values()), "Bindings": ["input", "output"]}

    def unique_layers(self) -> list[tuple[str, LayerSpec]]:
        """First instance of every distinct configuration, in execution order."""
        seen = set()
        out = []
        for name, layer in self.layers:
            key = json.dumps(to_dict(layer), sort_keys=True)
            if key not in seen:
                seen.add(key)
                out.append((name, layer))
        return out


def single_layer_network(name: str, layer: LayerSpec) -> Network:
    """The one-layer network a sweep measures for each configuration."""
    short = {"conv": "conv", "pool": "pool", "dense": "fc"}[layer.layer_class]
    return Network(name, [(short, layer)], {"sweep_config": to_dict(layer)})


def lenet(batch: int = 1) -> Network:
    """LeNet-5 as in the bundled dataset (1x32x32 input)."""
    return Network(
        "lenet",
        [
            ("conv1", Conv(batch, 1, 6, 32, 5)),
            ("pool1", Pool(batch, 6, 28, "max", 2, 2)),
            ("conv2", Conv(batch, 6, 16, 14, 5)),
            ("pool2", Pool(batch, 16, 10, "max", 2, 2)),
            ("fc1", Dense(batch, 400, 120)),
            ("fc2", Dense(batch, 120, 84)),
            ("fc3", Dense(batch, 84, 10)),
        ],
    )


def small_cnn(batch: int = 1) -> Network:
    """A small VGG-like CNN with a depthwise stage and a repeated block (exercises ``Count``),
    sized so that every layer takes tens of microseconds or more on a CPU."""
    return Network(
        "small_cnn",
        [
            ("stem", Conv(batch, 3, 16, 64, 3, 1, 1)),
            ("pool1", Pool(batch, 16, 64, "max", 2, 2)),
            ("block1", Conv(batch, 16, 32, 32, 3, 1, 1)),
            ("dw", Conv(batch, 32, 32, 32, 3, 1, 1, groups=32)),
            ("pw", Conv(batch, 32, 32, 32, 1)),
            ("block2", Conv(batch, 32, 32, 32, 3, 1, 1)),
            ("block3", Conv(batch, 32, 32, 32, 3, 1, 1)),
            ("pool2", Pool(batch, 32, 32, "avg", 2, 2)),
            ("gap", Pool.global_average(batch, 32, 16)),
            ("fc", Dense(batch, 32, 10)),
        ],
    )


BUILTIN_NETWORKS = {"lenet": lenet, "small_cnn": small_cnn}


def builtin_network(name: str, batch: int = 1) -> Network:
    if name not in BUILTIN_NETWORKS:
        raise ValueError(
            f"unknown built-in network {name!r}; choose from {sorted(BUILTIN_NETWORKS)}"
        )
    return BUILTIN_NETWORKS[name](batch)


def _tensors(
    name: str, input_dims: Sequence[int], output_dims: Sequence[int], dtype: str
) -> dict[str, Any]:
    return {
        "Inputs": [
            {"Name": name + ".input", "Dimensions": list(input_dims), "Format/Datatype": dtype}
        ],
        "Outputs": [
            {"Name": name + ".output", "Dimensions": list(output_dims), "Format/Datatype": dtype}
        ],
    }


def _product(values: Sequence[int]) -> int:
    out = 1
    for value in values:
        out *= int(value)
    return out


def parse_shape(text: str | None) -> list[int] | None:
    """``"1,3,224,224"`` → ``[1, 3, 224, 224]`` (command-line shapes)."""
    if text is None:
        return None
    try:
        shape = [int(part) for part in text.replace("x", ",").split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"expected a shape like 1,3,224,224, got {text!r}") from None
    if not shape or any(dim < 1 for dim in shape):
        raise ValueError(f"expected positive dimensions like 1,3,224,224, got {text!r}")
    return shape
