"""Engine-description builders and a synthetic measured table for the core tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from power_modelling.core.loco import engine_features


def _tensor(name: str, dims: list[int]) -> list[dict]:
    return [{"Name": name, "Dimensions": dims, "Format/Datatype": "FP16"}]


def conv_layer(
    name: str, c: int, h: int, k: int, *, kernel: int = 3, stride: int = 1, groups: int = 1,
    batch: int = 1,
) -> dict:  # fmt: skip
    """A ``Conv2d`` engine layer ``[batch, c, h, h] -> [batch, k, p, p]`` ("same" padding)."""
    pad = kernel // 2
    p = (h + 2 * pad - kernel) // stride + 1
    return {
        "Name": name,
        "LayerType": "Conv2d",
        "ParameterType": "Convolution",
        "Inputs": _tensor(f"{name}.in", [batch, c, h, h]),
        "Outputs": _tensor(f"{name}.out", [batch, k, p, p]),
        "Kernel": [kernel, kernel],
        "PrePadding": [pad, pad],
        "PostPadding": [pad, pad],
        "Stride": [stride, stride],
        "Dilation": [1, 1],
        "Groups": groups,
        "OutMaps": k,
    }


def pool_layer(
    name: str, c: int, h: int, window: int, stride: int, *, kind: str = "MAX", batch: int = 1,
    adaptive: bool = False,
) -> dict:  # fmt: skip
    """A pooling engine layer (``kind`` MAX or AVERAGE); ``window == h`` is global."""
    p = (h - window) // stride + 1
    layer_type = ("Adaptive" if adaptive else "") + ("MaxPool2d" if kind == "MAX" else "AvgPool2d")
    return {
        "Name": name,
        "LayerType": layer_type,
        "ParameterType": "Pooling",
        "PoolingType": kind,
        "Adaptive": int(adaptive),
        "Inputs": _tensor(f"{name}.in", [batch, c, h, h]),
        "Outputs": _tensor(f"{name}.out", [batch, c, p, p]),
        "WindowSize": [window, window],
        "PrePadding": [0, 0],
        "PostPadding": [0, 0],
        "Stride": [stride, stride],
    }


def linear_layer(name: str, k: int, n: int, batch: int = 1) -> dict:
    """A PyTorch ``Linear`` ``[batch, k] -> [batch, n]``."""
    return {
        "Name": name,
        "LayerType": "Linear",
        "ParameterType": "MatrixMultiply",
        "Inputs": _tensor(f"{name}.in", [batch, k]),
        "Outputs": _tensor(f"{name}.out", [batch, n]),
        "InFeatures": k,
        "OutMaps": n,
    }


def features_of(layers: list[dict]) -> pd.DataFrame:
    return engine_features({"Layers": layers}, "test_engine.json")


def random_layers(rng: np.random.Generator, n: int, prefix: str) -> list[dict]:
    """``n`` random layers of every class at batch 1 (a made-up network)."""
    layers = []
    for i in range(n):
        c = int(rng.choice([16, 32, 64, 128, 256, 512]))
        h = int(rng.choice([7, 14, 28, 56]))
        kind = i % 4
        if kind in (0, 1):
            groups = c if rng.random() < 0.2 else 1
            k = c if groups > 1 else int(rng.choice([16, 64, 128, 256, 512]))
            layers.append(
                conv_layer(f"{prefix}c{i}", c, h, k, kernel=int(rng.choice([1, 3, 5])),
                           stride=int(rng.choice([1, 2])), groups=groups)
            )  # fmt: skip
        elif kind == 2:
            window = int(rng.choice([2, 3]))
            layers.append(pool_layer(f"{prefix}p{i}", c, h, window, 2, kind="MAX"))
            layers.append(pool_layer(f"{prefix}g{i}", c, h, h, h, kind="AVERAGE", adaptive=True))
        else:
            layers.append(linear_layer(f"{prefix}l{i}", c * 8, int(rng.choice([10, 100, 1000]))))
    return layers


def synthetic_measurements(features: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Targets of a made-up device: runtime = floor·shape factor + work, power from the work
    rate (known law + 5 % noise), idle 100 W."""
    work = (
        features["flops"] / 2e11
        + (features["input_bytes"] + features["output_bytes"] + features["weight_bytes"]) / 3e9
    )
    fixed = 0.003 * (1 + 0.2 * np.log(features["kernel_area"].fillna(1)))
    runtime = (fixed + work) * np.exp(rng.normal(0, 0.05, len(features)))
    power = 5 + 300 * work / (work + fixed) * np.exp(rng.normal(0, 0.05, len(features)))
    return features.assign(runtime=runtime, power=power, power_total=power + 100.0)


@pytest.fixture(scope="session")
def synthetic_table() -> pd.DataFrame:
    """Ten made-up CNNs of ~20 layers each, measured by :func:`synthetic_measurements`."""
    return make_synthetic_table()


def make_synthetic_table() -> pd.DataFrame:
    """The table of the ``synthetic_table`` fixture."""
    rng = np.random.default_rng(0)
    frames = []
    for model in range(10):
        features = features_of(random_layers(rng, 20, f"m{model}_"))
        frames.append(synthetic_measurements(features, rng).assign(model=f"cnn{model}"))
    table = pd.concat(frames, ignore_index=True)
    return table[table["layer_class"] != "other"].reset_index(drop=True)
