"""Generate many network descriptions (TensorRT-inspector JSON) from the bundled engines.

Each generated network is one of the bundled engines (the 20 CNNs of ``h200_isolated_v1``
and ``data/01_raw/predict/*.json``) with its channel widths scaled by a width multiplier and
its feature maps by an input-size multiplier, the two knobs an architecture search turns
(MobileNet's width and resolution multipliers): every 4-D tensor ``[N, C, H, W]`` becomes
``[N, round(w·C), round(r·H), round(r·W)]`` and a 2-D one ``[N, F]`` ``[N, round(w·F)]``,
except the image channels of the network input and the classes of its output; ``OutMaps``,
``InFeatures``, depthwise ``Groups`` and ``Weights.Count`` follow. The shapes stay those of a
plausible network (kernels, strides, padding and layer types are unchanged); they are not
re-derived layer by layer, which the predictor does not need.

``python -m benchmarks.generate_networks OUT_DIR [--count N]`` writes ``OUT_DIR/<name>.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "data" / "01_raw" / "h200_isolated_v1"
PREDICT = ROOT / "data" / "01_raw" / "predict"
WIDTHS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
RESOLUTIONS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)


def base_engines() -> dict[str, dict]:
    """The bundled engine descriptions by network name (sorted, so the output is stable)."""
    paths = {p.parent.parent.name: p for p in BUNDLED.glob("*/trt_profiling/trt_engine_info.json")}
    paths |= {p.stem: p for p in PREDICT.glob("*.json") if not p.name.endswith(".meta.json")}
    return {name: json.loads(paths[name].read_text()) for name in sorted(paths)}


def _scaled(value: int, factor: float) -> int:
    return max(1, round(value * factor))


def _scale_dims(dims: list[int], width: float, resolution: float, keep_channels: bool) -> list:
    if len(dims) == 4:
        n, c, h, w = dims
        channels = c if keep_channels else _scaled(c, width)
        return [n, channels, _scaled(h, resolution), _scaled(w, resolution)]
    if len(dims) == 2 and not keep_channels:
        return [dims[0], _scaled(dims[1], width)]
    return list(dims)


def scale_engine(engine: dict, width: float, resolution: float) -> dict:
    """``engine`` with widths scaled by ``width`` and feature maps by ``resolution``."""
    scaled = copy.deepcopy(engine)
    layers = scaled["Layers"]
    for index, layer in enumerate(layers):
        old_in = layer["Inputs"][0]["Dimensions"]
        old_channels = old_in[1] if len(old_in) > 1 else None
        for key in ("Inputs", "Outputs"):
            last = len(layers) - 1
            keep = (key == "Inputs" and index == 0) or (key == "Outputs" and index == last)
            for tensor in layer[key]:
                tensor["Dimensions"] = _scale_dims(tensor["Dimensions"], width, resolution, keep)
        new_in, new_out = layer["Inputs"][0]["Dimensions"], layer["Outputs"][0]["Dimensions"]
        if "OutMaps" in layer and len(new_out) > 1:
            layer["OutMaps"] = new_out[1]
        if "InFeatures" in layer and len(new_in) > 1:
            layer["InFeatures"] = new_in[-1]
        groups = layer.get("Groups")
        if groups and groups > 1 and groups == old_channels:  # depthwise stays depthwise
            layer["Groups"] = new_in[1]
        weights = layer.get("Weights")
        if isinstance(weights, dict) and weights.get("Count"):
            weights["Count"] = _scaled(weights["Count"], width * width)
    return scaled


def generate(count: int, seed: int = 0) -> Iterator[tuple[str, dict]]:
    """``count`` (name, engine) pairs: the bundled engines in turn, each with a random width
    and input-size multiplier (a fixed seed: the same networks every run)."""
    bases = base_engines()
    names = list(bases)
    rng = np.random.default_rng(seed)
    widths = rng.choice(WIDTHS, count)
    resolutions = rng.choice(RESOLUTIONS, count)
    for index in range(count):
        base = names[index % len(names)]
        width, resolution = float(widths[index]), float(resolutions[index])
        name = f"{base}_w{width:g}_r{resolution:g}_{index:05d}"
        yield name, scale_engine(bases[base], width, resolution)


def generate_files(count: int, seed: int = 0) -> dict[str, bytes]:
    """``{"<name>.json": bytes}``: ``count`` generated engine files, in memory."""
    return {f"{name}.json": json.dumps(engine).encode() for name, engine in generate(count, seed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for path, data in generate_files(args.count, args.seed).items():
        (args.out_dir / path).write_bytes(data)
    print(f"{args.count} networks in {args.out_dir}")


if __name__ == "__main__":
    main()
