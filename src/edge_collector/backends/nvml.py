"""The NVML backend: PyTorch layers in isolation as CUDA-graph bursts, NVML board power.

The method of the bundled H200 dataset (its README), for any NVIDIA GPU with PyTorch:

- NVML's instantaneous power refreshes about every 100 ms, far slower than a layer runs, so
  each *unique* layer configuration is measured alone: a CUDA graph of ``repeats`` back-to-back
  executions (``repeats`` so that one replay takes ``--burst-ms`` of GPU time) is replayed for
  ``--settle-ms`` (not recorded: the sensor settles), then for ``--record-ms`` while CUDA
  events time every replay. The events are anchored to the wall clock (``time.time()`` taken
  right before the first event is recorded on an idle GPU), so each replay becomes one
  ``[latency_ms, end, repeats]`` entry.
- The sampler child reads ``nvmlDeviceGetFieldValues(handle, [NVML_FI_DEV_POWER_INSTANT])``
  (falling back to ``nvmlDeviceGetPowerUsage`` where the field is not supported) at
  ``--period-ms`` (1 kHz by default), writing ``timestamp,mW`` lines.
- ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver loaded) is read before and after
  each recorded stretch: ``layer_energy.json``, a cross-check of the sampled power.
- The whole network is replayed the same way (``whole_model`` of ``<model>_benchmark.json``).
- Engine description: forward hooks collect every ``Conv2d`` / ``MaxPool2d`` / ``AvgPool2d`` /
  ``AdaptiveAvgPool2d`` / ``Linear`` with its input and output shapes; identical
  configurations are merged (``Count``, ``InstanceNames``).

Models: a torchvision model by name (``--model resnet18``), or the one-layer networks of a
sweep. Not run in this repository's CI (no GPU): see docs/collector.md.
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any, Callable

from edge_collector.backends import Backend, ModelRun
from edge_collector.distributions import Limits
from edge_collector.layers import Conv, Dense, Network, Pool
from edge_collector.rawdata import format_timestamp, latency_entry
from edge_collector.sampler import Fields, PowerSource, SensorError

logger = logging.getLogger("edge_collector")
DTYPES = {"fp16": ("float16", "FP16"), "bf16": ("bfloat16", "BF16"), "fp32": ("float32", "FP32")}
MEASURED_MODULES = ("Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Linear")
NVML_FI_DEV_POWER_INSTANT = 186  # nvml.h; pynvml exports it as NVML_FI_DEV_POWER_INSTANT


class NvmlSource(PowerSource):
    """Instantaneous board power of GPU ``index`` in mW (opened in the sampler child)."""

    dialect = "nvml"
    reader = "nvml"

    def __init__(self, index: int) -> None:
        self.index = index
        self.name = "NVML_FI_DEV_POWER_INSTANT"
        self._nvml: Any = None
        self._handle: Any = None
        self._field = True

    def __getstate__(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "_nvml": None,
            "_handle": None,
            "_field": True,
        }

    def open(self) -> None:
        import pynvml

        self._nvml = pynvml
        pynvml.nvmlInit()
        self._handle = pynvml.nvmlDeviceGetHandleByIndex(self.index)
        field = getattr(pynvml, "NVML_FI_DEV_POWER_INSTANT", NVML_FI_DEV_POWER_INSTANT)
        try:
            value = pynvml.nvmlDeviceGetFieldValues(self._handle, [field])[0]
            self._field = value.nvmlReturn == pynvml.NVML_SUCCESS
        except pynvml.NVMLError:
            self._field = False
        if not self._field:
            logger.warning("NVML_FI_DEV_POWER_INSTANT unsupported: nvmlDeviceGetPowerUsage")
        self.read()

    def read(self) -> Fields:
        nvml = self._nvml
        try:
            if self._field:
                field = getattr(nvml, "NVML_FI_DEV_POWER_INSTANT", NVML_FI_DEV_POWER_INSTANT)
                value = nvml.nvmlDeviceGetFieldValues(self._handle, [field])[0]
                if value.nvmlReturn != nvml.NVML_SUCCESS:
                    raise SensorError(f"NVML_FI_DEV_POWER_INSTANT: NVML error {value.nvmlReturn}")
                return (float(value.value.uiVal),)
            return (float(nvml.nvmlDeviceGetPowerUsage(self._handle)),)
        except nvml.NVMLError as exc:
            raise SensorError(f"NVML power of GPU {self.index}: {exc}") from None

    def close(self) -> None:
        if self._nvml is not None:
            self._nvml.nvmlShutdown()


class NvmlBackend(Backend):
    kind = "nvml"
    dialect = "nvml"
    default_limits = Limits(max_gflops=200.0, max_mb=4096.0, element_bytes=2)

    def __init__(
        self,
        *,
        gpu: int = 0,
        dtype: str = "fp16",
        period_s: float = 0.001,
        burst_ms: float = 2.0,
        settle_ms: float = 150.0,
        record_ms: float = 300.0,
        whole_ms: float = 1000.0,
        channels_last: bool = True,
    ) -> None:
        self.gpu, self.dtype = gpu, dtype
        self.precision = DTYPES[dtype][1]
        self.period_s = period_s
        self.burst_ms, self.settle_ms = burst_ms, settle_ms
        self.record_ms, self.whole_ms = record_ms, whole_ms
        self.channels_last = channels_last
        self._source = NvmlSource(gpu)
        self._torch: Any = None
        self._nvml: Any = None
        self._handle: Any = None

    # ---- Backend interface
    def device_info(self) -> dict[str, Any]:
        self._open()
        nvml, handle = self._nvml, self._handle
        name = nvml.nvmlDeviceGetName(handle)
        name = name.decode() if isinstance(name, bytes) else name
        driver = nvml.nvmlSystemGetDriverVersion()
        torch_name = self._torch.cuda.get_device_name(self.gpu)
        if torch_name != name:
            logger.warning(
                "CUDA device %d is %r but NVML device %d is %r: set CUDA_DEVICE_ORDER=PCI_BUS_ID",
                self.gpu,
                torch_name,
                self.gpu,
                name,
            )
        return {
            "name": name,
            "kind": self.kind,
            "power_source": self._source.name,
            "precision": self.precision,
            "driver": driver.decode() if isinstance(driver, bytes) else driver,
            "torch": self._torch.__version__,
        }

    def device_state(self) -> dict[str, Any]:
        """Temperature, clocks and power limit now (as the bundled dataset records them)."""
        nvml, handle = self._nvml, self._handle
        readings = {
            "temperature_c": lambda: nvml.nvmlDeviceGetTemperature(
                handle, nvml.NVML_TEMPERATURE_GPU
            ),
            "sm_clock_mhz": lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM),
            "mem_clock_mhz": lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_MEM),
            "power_limit_mw": lambda: nvml.nvmlDeviceGetPowerManagementLimit(handle),
            "power_usage_1s_mw": lambda: nvml.nvmlDeviceGetPowerUsage(handle),
        }
        state = {}
        for key, read in readings.items():
            try:
                state[key] = read()
            except nvml.NVMLError:  # not every GPU reports everything
                continue
        return state

    def power_source(self) -> NvmlSource:
        return self._source

    def prepare_idle(self) -> None:
        self._open()  # idle with the CUDA context loaded, as the bundled dataset
        self._torch.cuda.synchronize(self.gpu)

    def estimate_s(self, network: Network) -> float:
        per_layer = (self.settle_ms + self.record_ms) / 1000.0 + 0.3  # + calibration, capture
        return len(network.unique_layers()) * per_layer + (
            0.0 if len(network.layers) == 1 else (self.settle_ms + self.whole_ms) / 1000.0
        )

    def duration_note(self) -> str:
        per_layer = (self.settle_ms + self.record_ms) / 1000.0 + 0.3
        whole = (self.settle_ms + self.whole_ms) / 1000.0
        return f"~{per_layer:.1f} s per unique layer (resnet18: 14) + {whole:.1f} s whole model"

    def close(self) -> None:
        if self._nvml is not None:
            self._nvml.nvmlShutdown()
            self._nvml = None

    def run(self, model: Any) -> ModelRun:
        self._open()
        torch = self._torch
        module, example, name, config = self._model(model)
        started = time.time()
        layers = describe_modules(torch, module, example, DTYPES[self.dtype][1])
        latency: dict[str, list[list]] = {}
        energy: dict[str, Any] = {}
        with torch.no_grad():
            for entry, (layer_module, layer_input) in layers:
                entries: list[list] = []
                figures = self._measure(lambda m=layer_module, x=layer_input: m(x), entries)
                latency[entry["Name"]] = entries
                energy[entry["Name"]] = figures
            if len(layers) == 1 and isinstance(model, Network) and len(model.layers) == 1:
                whole = dict(next(iter(energy.values())))  # the network is that layer
            else:
                whole = self._measure(lambda: module(example), None, self.whole_ms)
        config.update(
            dtype=DTYPES[self.dtype][0],
            backend="pytorch-eager-cudagraph",
            torch=torch.__version__,
            memory_format="channels_last" if self.channels_last else "contiguous",
            layer_method="isolated layer, back-to-back CUDA-graph bursts",
            burst_ms=self.burst_ms,
            settle_ms=self.settle_ms,
            record_ms=self.record_ms,
        )
        metadata = {
            "config": config,
            "device": {**self.device_info(), **self.device_state()},
            "layers_total": sum(entry["Count"] for entry, _ in layers),
            "layers_unique": len(layers),
            "whole_model": whole,
            "start": format_timestamp(started),
            "end": format_timestamp(time.time()),
        }
        engine = {"Layers": [entry for entry, _ in layers], "Bindings": ["input", "output"]}
        return ModelRun(latency, engine, metadata, energy)

    # ---- internals
    def _open(self) -> None:
        if self._torch is None:
            import torch

            if not torch.cuda.is_available():
                raise RuntimeError("PyTorch sees no CUDA device")
            torch.cuda.set_device(self.gpu)
            torch.cuda.init()
            self._torch = torch
        if self._nvml is None:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(self.gpu)

    def _energy_mj(self) -> float | None:
        try:
            return float(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        except self._nvml.NVMLError:  # not supported before Volta
            return None

    def _model(self, model: Any) -> tuple[Any, Any, str, dict[str, Any]]:
        torch = self._torch
        dtype = getattr(torch, DTYPES[self.dtype][0])
        if isinstance(model, Network):
            module = network_module(torch, model)
            shape, name = model.input_dims, model.name
            config: dict[str, Any] = {"model": name, "input_shape": shape, **model.description}
        else:
            import torchvision

            module = getattr(torchvision.models, model["torchvision"])(weights=None)
            shape, name = model["input_shape"], model["name"]
            config = {"model": name, "input_shape": shape}
        module = module.to(device=f"cuda:{self.gpu}", dtype=dtype).eval()
        example = torch.randn(*shape, device=f"cuda:{self.gpu}", dtype=dtype)
        if self.channels_last and example.dim() == 4:
            module = module.to(memory_format=torch.channels_last)
            example = example.contiguous(memory_format=torch.channels_last)
        return module, example, name, config

    def _measure(
        self,
        step: Callable[[], Any],
        entries: list[list] | None,
        record_ms: float | None = None,
    ) -> dict[str, Any]:
        """Calibrate, capture a CUDA graph of ``repeats`` steps, settle, record (module doc)."""
        torch = self._torch
        record_ms = self.record_ms if record_ms is None else record_ms
        single_ms = _time_ms(torch, step, 20)
        repeats = max(1, int(round(self.burst_ms / max(single_ms, 1e-4))))
        graph = _capture(torch, step, repeats)
        burst_ms = _time_ms(torch, graph.replay, 3)
        for _ in range(max(1, int(math.ceil(self.settle_ms / max(burst_ms, 1e-3))))):
            graph.replay()
        replays = max(1, int(math.ceil(record_ms / max(burst_ms, 1e-3))))
        events = [torch.cuda.Event(enable_timing=True) for _ in range(replays + 1)]
        torch.cuda.synchronize()
        energy0 = self._energy_mj()
        wall0 = time.time()
        events[0].record()
        for i in range(replays):
            graph.replay()
            events[i + 1].record()
        torch.cuda.synchronize()
        wall1 = time.time()
        energy1 = self._energy_mj()
        gpu_ms = events[0].elapsed_time(events[-1])
        for i in range(replays):
            burst = events[i].elapsed_time(events[i + 1])
            end = wall0 + events[0].elapsed_time(events[i + 1]) / 1000.0
            if entries is not None:
                entries.append(latency_entry(burst / repeats, end, repeats))
        figures: dict[str, Any] = {
            "repeats_per_burst": repeats,
            "iterations": repeats * replays,
            "gpu_ms": gpu_ms,
            "wall_s": wall1 - wall0,
            "latency_ms": gpu_ms / (repeats * replays),
            "start": format_timestamp(wall0),
            "end": format_timestamp(wall1),
        }
        if energy0 is not None and energy1 is not None:
            figures["energy_mj"] = energy1 - energy0
            figures["avg_power_mw_counter"] = (energy1 - energy0) / (gpu_ms / 1000.0)
        return figures


def _time_ms(torch: Any, step: Callable[[], Any], iterations: int) -> float:
    step()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(iterations):
        step()
    stop.record()
    torch.cuda.synchronize()
    return start.elapsed_time(stop) / iterations


def _capture(torch: Any, step: Callable[[], Any], repeats: int) -> Any:
    """A CUDA graph of ``repeats`` back-to-back steps (warmed up on a side stream first, as
    ``torch.cuda.graph`` requires)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(repeats):
            step()
    return graph


def network_module(torch: Any, network: Network) -> Any:
    """A ``torch.nn.Sequential`` of a ``Network`` (Flatten before a dense after a 4-D layer)."""
    nn = torch.nn
    modules: list[tuple[str, Any]] = []
    previous_rank = len(network.input_dims)
    for name, layer in network.layers:
        if isinstance(layer, Conv):
            module = nn.Conv2d(
                layer.in_channels,
                layer.out_channels,
                layer.kernel,
                layer.stride,
                layer.padding,
                layer.dilation,
                layer.groups,
                bias=layer.bias,
            )
        elif isinstance(layer, Pool):
            if layer.kind == "global_avg":
                module = nn.AdaptiveAvgPool2d(1)
            elif layer.kind == "max":
                module = nn.MaxPool2d(layer.window, layer.stride, layer.padding)
            else:
                module = nn.AvgPool2d(layer.window, layer.stride, layer.padding)
        elif isinstance(layer, Dense):
            if previous_rank != 2:
                modules.append((name + "_flatten", nn.Flatten()))
            module = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias)
        else:
            raise TypeError(f"no PyTorch module for {type(layer).__name__}")
        modules.append((name, module))
        previous_rank = len(layer.output_dims)
    from collections import OrderedDict

    return nn.Sequential(OrderedDict(modules))


def describe_modules(
    torch: Any, model: Any, example: Any, dtype_label: str
) -> list[tuple[dict[str, Any], tuple[Any, Any]]]:
    """One engine-description entry per unique measured module configuration (NVML burst
    dialect), with the module and an input tensor to run it on."""
    seen: dict[str, tuple[dict[str, Any], tuple[Any, Any]]] = {}
    hooks = []

    def hook(name: str) -> Callable[..., None]:
        def record(module: Any, inputs: tuple[Any, ...], output: Any) -> None:
            x = inputs[0]
            entry = module_entry(name, module, list(x.shape), list(output.shape), dtype_label)
            parameters = {k: v for k, v in entry.items() if k not in ("Name", "Inputs", "Outputs")}
            key = json.dumps(
                {**parameters, "in": list(x.shape), "out": list(output.shape)}, sort_keys=True
            )
            if key in seen:
                seen[key][0]["Count"] += 1
                seen[key][0]["InstanceNames"].append(name)
            else:
                entry["Count"], entry["InstanceNames"] = 1, [name]
                seen[key] = (entry, (module, x.detach().clone()))

        return record

    for name, module in model.named_modules():
        if type(module).__name__ in MEASURED_MODULES:
            hooks.append(module.register_forward_hook(hook(name)))
    try:
        with torch.no_grad():
            model(example)
    finally:
        for handle in hooks:
            handle.remove()
    return list(seen.values())


def pair(value: Any) -> list[int]:
    """PyTorch's ``int or (int, int)`` arguments as a two-element list."""
    return [int(v) for v in value] if isinstance(value, (tuple, list)) else [int(value)] * 2


def module_entry(
    name: str, module: Any, in_shape: list[int], out_shape: list[int], dtype_label: str
) -> dict[str, Any]:
    kind = type(module).__name__
    tensors = {
        "Inputs": [
            {"Name": name + ".input", "Dimensions": in_shape, "Format/Datatype": dtype_label}
        ],
        "Outputs": [
            {"Name": name + ".output", "Dimensions": out_shape, "Format/Datatype": dtype_label}
        ],
    }
    entry: dict[str, Any] = {"Name": name, "LayerType": kind, **tensors}
    if kind == "Conv2d":
        padding = module.padding if not isinstance(module.padding, str) else [0, 0]
        entry.update(
            ParameterType="Convolution",
            Kernel=pair(module.kernel_size),
            PrePadding=pair(padding),
            PostPadding=pair(padding),
            Stride=pair(module.stride),
            Dilation=pair(module.dilation),
            OutMaps=module.out_channels,
            Groups=module.groups,
            HasBias=int(module.bias is not None),
        )
    elif kind in ("MaxPool2d", "AvgPool2d"):
        entry.update(
            ParameterType="Pooling",
            PoolingType="MAX" if kind == "MaxPool2d" else "AVERAGE",
            WindowSize=pair(module.kernel_size),
            PrePadding=pair(module.padding),
            PostPadding=pair(module.padding),
            Stride=pair(module.stride if module.stride is not None else module.kernel_size),
        )
    elif kind == "AdaptiveAvgPool2d":
        window = [max(1, i // max(1, o)) for i, o in zip(in_shape[-2:], out_shape[-2:])]
        entry.update(
            ParameterType="Pooling",
            PoolingType="AVERAGE",
            WindowSize=window,
            PrePadding=[0, 0],
            PostPadding=[0, 0],
            Stride=window,
            Adaptive=1,
        )
    elif kind == "Linear":
        entry.update(
            ParameterType="MatrixMultiply",
            OutMaps=module.out_features,
            InFeatures=module.in_features,
            HasBias=int(module.bias is not None),
        )
    return entry
