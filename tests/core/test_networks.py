"""Networks to predict: engine JSONs and ONNX files side by side, device files, bad input."""

from __future__ import annotations

import json
import logging

import pytest

from power_modelling.core.networks import NetworkOptions, read_networks, select_networks
from tests.helpers import PROJECT_ROOT
from tests.standins import tiny_engine

ONNX_DIR = PROJECT_ROOT / "tests" / "data" / "onnx_models"


def _loaders(files: dict[str, bytes | str]) -> dict:
    return {
        path: (lambda data=data: data if isinstance(data, bytes) else data.encode())
        for path, data in files.items()
    }


def test_raw_dataset_folders_predict_their_engine_info_only() -> None:
    paths = [
        "idling_power.json",
        "resnet18/resnet18_benchmark.json",
        "resnet18/layer_energy.json",
        "resnet18/trt_profiling/trt_engine_info.json",
        "resnet18/trt_profiling/trt_layer_latency.json",
        "resnet18/resnet18_power_log.log",
        "lenet/trt_profiling/trt_engine_info.json",
    ]
    assert select_networks(paths) == {
        "lenet": "lenet/trt_profiling/trt_engine_info.json",
        "resnet18": "resnet18/trt_profiling/trt_engine_info.json",
    }


def test_engines_and_onnx_files_are_networks_meta_files_are_not() -> None:
    paths = ["b.json", "a.onnx", "sub/c.json", "b.onnx", "b.meta.json", "notes.txt"]
    assert select_networks(paths) == {
        "a": "a.onnx",
        "b": "b.json",
        "b_onnx": "b.onnx",  # an engine of the same name came first
        "sub_c": "sub/c.json",
    }


def test_bad_files_are_named_and_the_others_still_read(caplog: pytest.LogCaptureFixture) -> None:
    no_dims = tiny_engine()
    del no_dims["Layers"][1]["Outputs"]
    files = {
        "good.json": json.dumps(tiny_engine()),
        "not_json.json": "this is not JSON {",
        "no_layers.json": json.dumps({"Bindings": []}),
        "no_dims.json": json.dumps(no_dims),
        "truncated.onnx": (ONNX_DIR / "lenet.onnx").read_bytes()[:200],
        "lenet.onnx": (ONNX_DIR / "lenet.onnx").read_bytes(),
    }
    with caplog.at_level(logging.ERROR):
        descriptions, infos, errors = read_networks(
            _loaders(files), "data/01_raw/predict", NetworkOptions()
        )
    assert sorted(descriptions) == ["good", "lenet"]
    assert set(errors) == {"not_json", "no_layers", "no_dims", "truncated"}
    assert errors["not_json"].startswith("data/01_raw/predict/not_json.json: not valid JSON")
    assert "'Layers'" in errors["no_layers"]
    assert "layer 'pool'" in errors["no_dims"] and "Outputs" in errors["no_dims"]
    assert errors["truncated"].startswith("data/01_raw/predict/truncated.onnx")
    assert "not_json.json" in caplog.text
    assert infos["good"] == {
        "format": "tensorrt",
        "batch_size": 1,
        "batch_source": "engine",
        "precision": "FP16",
        "device": None,
        "source": "data/01_raw/predict/good.json",
    }
    assert infos["lenet"]["format"] == "onnx" and infos["lenet"]["precision"] == "FP16"


def test_the_device_comes_from_a_meta_file_or_the_option() -> None:
    orin = {"name": "Jetson AGX Orin", "kind": "jetson"}
    files = {
        "a.json": json.dumps(tiny_engine()),
        "a.meta.json": json.dumps({"device": orin}),
        "b.json": json.dumps(tiny_engine()),
        "c.json": json.dumps(tiny_engine()),
        "c.meta.json": json.dumps({"device": "Orin"}),
    }
    h200 = {"name": "NVIDIA H200", "kind": "nvml"}
    _, infos, errors = read_networks(_loaders(files), "f", NetworkOptions(device=h200))
    assert infos["a"]["device"] == orin
    assert infos["b"]["device"] == h200
    assert "f/c.meta.json: expected {'device': {'name': ..., 'kind': ...}}" in errors["c"]


def test_a_folder_with_nothing_to_predict_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"data/01_raw/empty: nothing to predict.*\*\.onnx"):
        read_networks({"x.txt": lambda: b""}, "data/01_raw/empty", NetworkOptions())
