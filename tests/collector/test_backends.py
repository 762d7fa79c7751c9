"""Backend pieces that run without a device: the NumPy kernels against a direct definition,
layer descriptions as the project reads them, the dataset writer's refusals, and the thin
TensorRT / NVML helpers against stand-ins of their documented APIs."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest

from edge_collector.backends.cpu import conv2d, pool2d
from edge_collector.backends.jetson import end_times
from edge_collector.distributions import Limits, plan
from edge_collector.layers import Conv, Pool, from_dict, single_layer_network, to_dict
from edge_collector.rawdata import Dataset, DatasetError, format_timestamp, parse_timestamp
from edge_collector.sampler import SensorError
from power_modelling.core.engines import describe_layers
from power_modelling.core.features import build_features


def _conv_reference(x: np.ndarray, w: np.ndarray, layer: Conv) -> np.ndarray:
    """Convolution straight from its definition (loops over outputs)."""
    g, k, s, d, p = layer.groups, layer.kernel, layer.stride, layer.dilation, layer.padding
    cg, og, o = layer.in_channels // g, layer.out_channels // g, layer.out_size
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    kernel = w.reshape(g, cg, k, k, og)  # the layout conv2d takes: [g, cg*k*k, og]
    out = np.zeros(layer.output_dims, dtype=np.float64)
    for group in range(g):
        for oc in range(og):
            for i in range(o):
                for j in range(o):
                    rows = slice(i * s, i * s + d * (k - 1) + 1, d)
                    columns = slice(j * s, j * s + d * (k - 1) + 1, d)
                    patch = xp[:, group * cg : (group + 1) * cg, rows, columns]
                    out[:, group * og + oc, i, j] = np.einsum(
                        "ncab,cab->n", patch, kernel[group, :, :, :, oc]
                    )
    return out


@pytest.mark.parametrize(
    "layer",
    [
        Conv(2, 4, 6, 9, 3, stride=1, padding=1),
        Conv(1, 6, 4, 11, 3, stride=2, padding=0, groups=2),
        Conv(2, 8, 8, 7, 3, stride=1, padding=1, groups=8),  # depthwise
        Conv(1, 3, 5, 10, 3, stride=2, padding=2, dilation=2),
        Conv(1, 4, 2, 5, 1),
    ],
    ids=["plain", "grouped-strided", "depthwise", "dilated", "pointwise"],
)
def test_convolution_kernel(layer: Conv) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(layer.input_dims).astype(np.float32)
    fan_in = layer.in_channels // layer.groups * layer.kernel**2
    w = rng.standard_normal((layer.groups, fan_in, layer.out_channels // layer.groups))
    got = conv2d(x, w.astype(np.float32), layer)
    assert got.shape == tuple(layer.output_dims)
    np.testing.assert_allclose(got, _conv_reference(x, w, layer), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "layer",
    [
        Pool(2, 3, 8, "max", 2, 2),
        Pool(1, 2, 7, "max", 3, 2, 1),
        Pool(1, 2, 6, "avg", 3, 1, 1),
        Pool.global_average(2, 3, 5),
    ],
    ids=["max", "max-padded", "avg-padded", "global"],
)
def test_pooling_kernel(layer: Pool) -> None:
    x = np.random.default_rng(1).standard_normal(layer.input_dims).astype(np.float32)
    got = pool2d(x, layer)
    assert got.shape == tuple(layer.output_dims)
    fill = -np.inf if layer.kind == "max" else 0.0
    p, k, s = layer.padding, layer.window, layer.stride
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=fill)
    reduce = np.max if layer.kind == "max" else np.mean
    expected = np.zeros(layer.output_dims)
    for i in range(layer.out_size):
        for j in range(layer.out_size):
            expected[:, :, i, j] = reduce(xp[:, :, i * s : i * s + k, j * s : j * s + k], (2, 3))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_descriptions_read_by_the_project_give_the_same_work() -> None:
    """Every sampled configuration, described in the NVML dialect, is classified into its
    class by the project and gets the FLOPs the collector planned with."""
    configs = plan({"conv": 60, "pool": 30, "dense": 30}, 11, Limits())
    layers = []
    for config in configs:
        network = single_layer_network(config.name, config.layer)
        layers += network.engine_info("FP16")["Layers"]
    features = build_features(describe_layers({"Layers": layers}, "sweep"))
    expected_class = {"conv": "convolutional", "pool": "pooling", "dense": "dense"}
    assert features["layer_class"].tolist() == [expected_class[c.layer_class] for c in configs]
    np.testing.assert_allclose(features["flops"], [c.layer.flops for c in configs], rtol=1e-12)
    assert [from_dict(to_dict(c.layer)) for c in configs] == [c.layer for c in configs]


def test_the_dataset_refuses_to_mix_devices_and_to_overwrite(tmp_path: Path) -> None:
    dataset = Dataset(tmp_path / "orin")
    device = {"kind": "jetson", "name": "Orin Nano", "power_source": "VDD_IN", "precision": "FP16"}
    dataset.write_device(device)
    dataset.write_device({**device, "power_mode": "15W"})  # details may change
    with pytest.raises(DatasetError, match=r"power_source: 'VDD_IN' there, 'VDD_SOC' now"):
        dataset.write_device({**device, "power_source": "VDD_SOC"})
    (tmp_path / "orin" / "resnet18").mkdir()
    with pytest.raises(DatasetError, match="resnet18 exists already"):
        dataset.new_model("resnet18")
    folder = dataset.new_model("mobilenet_v2")
    assert folder.path.parent == tmp_path / ".orin.staging"  # outside the dataset
    with pytest.raises(DatasetError, match="no power log"):
        folder.commit()
    with pytest.raises(DatasetError, match="cannot be a model folder name"):
        dataset.new_model("../x")


def test_timestamps_round_trip_in_local_time() -> None:
    stamp = 1_764_590_400.123456
    text = format_timestamp(stamp)
    assert len(text) == 24 and text[8] == "-" and text[17] == "."
    assert parse_timestamp(text) == pytest.approx(stamp, abs=1e-6)


def test_tensorrt_end_timestamps_are_rebuilt_from_the_cycle_end() -> None:
    reported = [("conv1", 2.0), ("pool1", 0.5), ("fc", 0.25)]
    assert end_times(reported, 100.0) == [
        ("conv1", 2.0, pytest.approx(100.0 - 0.00075)),
        ("pool1", 0.5, pytest.approx(100.0 - 0.00025)),
        ("fc", 0.25, 100.0),
    ]


class _FakeNvml(types.ModuleType):
    """The parts of nvidia-ml-py (pynvml) the sampler uses, as documented."""

    NVML_SUCCESS = 0
    NVML_FI_DEV_POWER_INSTANT = 186

    class NVMLError(Exception):
        pass

    def __init__(self, field_supported: bool) -> None:
        super().__init__("pynvml")
        self.field_supported, self.calls = field_supported, []

    def nvmlInit(self) -> None:  # noqa: N802 (the API's names)
        self.calls.append("init")

    def nvmlShutdown(self) -> None:  # noqa: N802
        self.calls.append("shutdown")

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:  # noqa: N802
        return f"gpu{index}"

    def nvmlDeviceGetFieldValues(self, handle: str, fields: list[int]) -> list:  # noqa: N802
        assert fields == [186]
        value = types.SimpleNamespace(uiVal=249580)
        status = 0 if self.field_supported else 3  # NVML_ERROR_NOT_SUPPORTED
        return [types.SimpleNamespace(nvmlReturn=status, value=value)]

    def nvmlDeviceGetPowerUsage(self, handle: str) -> int:  # noqa: N802
        if handle == "gone":
            raise self.NVMLError("GPU is lost")
        return 163583


@pytest.mark.parametrize(("supported", "milliwatts"), [(True, 249580.0), (False, 163583.0)])
def test_nvml_source(monkeypatch: pytest.MonkeyPatch, supported: bool, milliwatts: float) -> None:
    from edge_collector.backends.nvml import NvmlSource

    fake = _FakeNvml(supported)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    source = NvmlSource(0)
    source.open()
    assert source.read() == (milliwatts,)
    assert source.format(source.read()) == str(int(milliwatts))
    assert source.microwatts((milliwatts,)) == milliwatts * 1000
    if not supported:
        source._handle = "gone"
        with pytest.raises(SensorError, match="NVML power of GPU 0: GPU is lost"):
            source.read()
    source.close()
    assert fake.calls == ["init", "shutdown"]
