"""The Jetson backend: TensorRT engines profiled per layer, INA3221 board power.

Written against TensorRT's documented Python API (8.x as on JetPack 5, 10.x as on JetPack 6):

- **Build** (``--onnx``, or a one-layer network for sweeps through ``INetworkDefinition``'s
  ``add_convolution_nd`` / ``add_pooling_nd`` / ``add_matrix_multiply``): a ``Builder``
  config with ``profiling_verbosity = ProfilingVerbosity.DETAILED`` (required for the engine
  inspector to print layer parameters), FP16 when asked and supported, the workspace limit;
  ``build_serialized_network``. ``--engine`` takes a serialized engine instead (it must have
  been built with detailed verbosity).
- **Engine description**: ``engine.create_engine_inspector().get_engine_information(
  LayerInformationFormat.JSON)`` → ``trt_engine_info.json``.
- **Whole-model latency** (``avg_latency``): a second execution context without a profiler
  (a profiler synchronises after every layer and inflates the total).
- **Per-layer timings**: an ``IProfiler`` subclass on the profiled context;
  ``report_layer_time(layer_name, ms)`` is called once per layer for each execution. TensorRT
  calls it after the execution, so the call time is not the layer's end: the end timestamps are
  reconstructed from the cycle's wall-clock end (after the stream synchronises) and the
  reported times, layers running back to back on one stream: the last layer ends at the cycle
  end, each earlier one where the next one starts. ``[latency_ms, end]`` per layer and cycle.
- **Execution**: ``execute_async_v3`` with ``set_tensor_address`` (TensorRT >= 8.5), else
  ``execute_v2`` with a bindings list; buffers and the stream from ``libcudart`` via ctypes
  (``_cudart``), so nothing beyond TensorRT's own bindings is needed on the board.

Cycles: at least ``--cycles``, more until every layer has run ``--min-layer-ms`` in total
(power samples, milliseconds apart, land in microsecond windows in proportion to the layer's
total time), at most ``--max-cycles``.

Not run in this repository's CI (no Jetson): see docs/collector.md for what was checked where.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from typing import Any

import numpy as np

from edge_collector.backends import Backend, ModelRun
from edge_collector.backends.cpu import cycles_needed
from edge_collector.distributions import Limits
from edge_collector.ina3221 import (
    Ina3221Source,
    board_info,
    choose_rails,
    find_rails,
    rails_name,
)
from edge_collector.layers import Conv, Dense, LayerSpec, Network, Pool, layer_bytes, to_dict
from edge_collector.rawdata import latency_entry

logger = logging.getLogger("edge_collector")
#: planning figures for dry runs (an Orin-class GPU at FP16; a Nano is ~10x slower)
NOMINAL_FLOPS = 2e12
NOMINAL_BYTES_PER_S = 50e9
BUILD_S = 30.0


class JetsonBackend(Backend):
    kind = "jetson"
    dialect = "jetson"
    default_limits = Limits(max_gflops=25.0, max_mb=512.0, element_bytes=2)

    def __init__(
        self,
        *,
        sysfs_root: str = "/",
        rail: str | None = None,
        precision: str = "fp16",
        period_s: float = 0.001,
        cycles: int = 1000,
        warmup: int = 50,
        min_layer_ms: float = 50.0,
        max_cycles: int = 20000,
        workspace_mb: int = 1024,
        engine_dir: str | None = None,
        input_shape: str | None = None,
        require_rails: bool = True,
    ) -> None:
        self.precision = precision.upper()
        self.period_s = period_s
        self.cycles, self.warmup = cycles, warmup
        self.min_layer_ms, self.max_cycles = min_layer_ms, max_cycles
        self.workspace_mb = workspace_mb
        self.engine_dir = engine_dir
        self.input_shape = input_shape
        rails = find_rails(sysfs_root)
        if rails or require_rails:
            self.rails = choose_rails(rails, rail)
        else:  # a dry run away from the board: plan without a sensor
            logger.warning("No INA3221 rail under %s (fine for a dry run)", sysfs_root)
            self.rails = []
        self.board = board_info(sysfs_root, query_power_mode=require_rails)
        self._source = Ina3221Source(self.rails) if self.rails else None
        self._trt: Any = None

    # ---- Backend interface
    def device_info(self) -> dict[str, Any]:
        trt = self._tensorrt()
        info = {
            "name": self.board.get("board", "NVIDIA Jetson (board model unknown)"),
            "kind": self.kind,
            "power_source": rails_name(self.rails),
            "precision": self.precision,
            "tensorrt": trt.__version__,
            **{k: v for k, v in self.board.items() if k != "board"},
        }
        if self._source is not None:
            info.update(self._source.describe())
        return info

    def power_source(self) -> Ina3221Source:
        if self._source is None:
            raise ValueError("no INA3221 rail to read")
        return self._source

    def estimate_s(self, network: Network) -> float:
        layer_ms = {
            name: 1000.0
            * max(layer.flops / NOMINAL_FLOPS, layer_bytes(layer, 2) / NOMINAL_BYTES_PER_S)
            + 0.01
            for name, layer in network.layers
        }
        cycles = cycles_needed(layer_ms, self.cycles, self.min_layer_ms, self.max_cycles)
        cycle_s = sum(layer_ms.values()) / 1000.0 + 1e-4
        return BUILD_S + (cycles + self.warmup) * 2 * cycle_s  # profiled + benchmark passes

    def duration_note(self) -> str:
        return (
            f"the engine build (~{BUILD_S:.0f} s to minutes), a benchmark pass, then at least "
            f"{self.cycles} profiled cycles (more while a layer has run < {self.min_layer_ms:g} ms)"
        )

    def run(self, model: Any) -> ModelRun:
        trt = self._tensorrt()
        if isinstance(model, Network):
            name, source = model.name, {"network": model.description or model.name}
            key = json.dumps([[n, to_dict(layer)] for n, layer in model.layers], sort_keys=True)
            serialized = self._cached(name, key.encode(), lambda: self._build_layers(model))
        elif model.get("engine"):
            name, source = model["name"], {"engine": os.path.abspath(model["engine"])}
            with open(model["engine"], "rb") as handle:
                serialized = handle.read()
        else:
            name, source = model["name"], {"onnx": os.path.abspath(model["onnx"])}
            with open(model["onnx"], "rb") as handle:
                key = handle.read() + str(self.input_shape).encode()
            serialized = self._cached(name, key, lambda: self._build_onnx(model["onnx"]))
        runtime = trt.Runtime(_logger(trt))
        engine = runtime.deserialize_cuda_engine(serialized)
        if engine is None:
            raise RuntimeError(f"{name}: TensorRT could not deserialize the engine")
        engine_info = inspect_engine(trt, engine, name)
        session = _Session(trt, engine, self.input_shape)
        try:
            avg_latency_s = session.benchmark(self.warmup, max(50, self.cycles // 10))
            latency, cycles = session.profile(
                self.warmup, self.cycles, self.min_layer_ms, self.max_cycles
            )
        finally:
            session.close()
        metadata = {
            "config": {
                "model": name,
                **source,
                "input_shape": session.input_shapes,
                "dtype": self.precision.lower(),
                "precision": self.precision,
                "tensorrt": trt.__version__,
                "cycles": cycles,
                "warmup": self.warmup,
                "min_layer_ms": self.min_layer_ms,
                "workspace_mb": self.workspace_mb,
                "power_source": rails_name(self.rails),
                **self.board,
                "end_timestamps": "reconstructed: cycle end after sync minus the later layers",
            },
            "avg_latency": avg_latency_s,
        }
        return ModelRun(latency, engine_info, metadata)

    # ---- building
    def _tensorrt(self) -> Any:
        if self._trt is None:
            import tensorrt

            self._trt = tensorrt
        return self._trt

    def _cached(self, name: str, key: bytes, build: Any) -> bytes:
        """Build, or reuse the engine built from the same input (``key``: the ONNX bytes or
        the layer configurations) with the same precision and TensorRT version."""
        if not self.engine_dir:
            return build()
        trt = self._tensorrt()
        digest = hashlib.sha1(key + f"{self.precision} {trt.__version__}".encode()).hexdigest()
        path = os.path.join(self.engine_dir, f"{name}.{digest[:12]}.engine")
        if os.path.isfile(path):
            logger.info("Reusing %s", path)
            with open(path, "rb") as handle:
                return handle.read()
        serialized = build()
        os.makedirs(self.engine_dir, exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(serialized)
        return serialized

    def _builder(self) -> tuple[Any, Any, Any]:
        trt = self._tensorrt()
        builder = trt.Builder(_logger(trt))
        flags = 0
        explicit = getattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH", None)
        if explicit is not None and int(trt.__version__.split(".")[0]) < 10:
            flags = 1 << int(explicit)  # TensorRT 8: required for ONNX; 10: the only mode
        network = builder.create_network(flags)
        config = builder.create_builder_config()
        config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
        workspace = self.workspace_mb << 20
        if hasattr(config, "set_memory_pool_limit"):
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)
        else:  # TensorRT < 8.4
            config.max_workspace_size = workspace
        if self.precision == "FP16":
            config.set_flag(trt.BuilderFlag.FP16)
        return builder, network, config

    def _serialize(self, builder: Any, network: Any, config: Any, what: str) -> bytes:
        started = time.monotonic()
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise RuntimeError(f"TensorRT could not build an engine for {what} (see its log)")
        logger.info("Built %s in %.0f s", what, time.monotonic() - started)
        return bytes(serialized)

    def _build_onnx(self, path: str) -> bytes:
        trt = self._tensorrt()
        builder, network, config = self._builder()
        parser = trt.OnnxParser(network, _logger(trt))
        with open(path, "rb") as handle:
            if not parser.parse(handle.read()):
                errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
                raise RuntimeError(f"{path}: TensorRT's ONNX parser failed: {errors}")
        shape = _shape(self.input_shape)
        dynamic = [
            network.get_input(i)
            for i in range(network.num_inputs)
            if any(d < 0 for d in network.get_input(i).shape)
        ]
        if dynamic:
            if shape is None:
                raise ValueError(
                    f"{path} has dynamic input dimensions "
                    f"{[tuple(t.shape) for t in dynamic]}: pass --input-shape"
                )
            profile = builder.create_optimization_profile()
            for tensor in dynamic:
                profile.set_shape(tensor.name, shape, shape, shape)
            config.add_optimization_profile(profile)
        return self._serialize(builder, network, config, path)

    def _build_layers(self, network_spec: Network) -> bytes:
        trt = self._tensorrt()
        builder, network, config = self._builder()
        keep: list[Any] = []  # weights must outlive the build
        rng = np.random.default_rng(0)
        tensor = network.add_input("input", trt.float32, tuple(network_spec.input_dims))
        for name, layer in network_spec.layers:
            tensor = add_layer(trt, network, tensor, name, layer, rng=rng, keep=keep)
        tensor.name = "output"
        network.mark_output(tensor)
        return self._serialize(builder, network, config, network_spec.name)


def add_layer(
    trt: Any, network: Any, tensor: Any, name: str, layer: LayerSpec, *, rng: Any, keep: list
) -> Any:
    """Append ``layer`` to a TensorRT network definition; returns its output tensor."""
    if isinstance(layer, Conv):
        fan_in = layer.in_channels // layer.groups * layer.kernel**2
        weights = (
            rng.standard_normal(
                (layer.out_channels, layer.in_channels // layer.groups, layer.kernel, layer.kernel)
            )
            / np.sqrt(fan_in)
        ).astype(np.float32)
        bias = np.zeros(layer.out_channels, dtype=np.float32)
        keep += [weights, bias]
        added = network.add_convolution_nd(
            tensor, layer.out_channels, (layer.kernel, layer.kernel), weights, bias
        )
        added.stride_nd = (layer.stride, layer.stride)
        added.padding_nd = (layer.padding, layer.padding)
        added.dilation_nd = (layer.dilation, layer.dilation)
        added.num_groups = layer.groups
    elif isinstance(layer, Pool):
        kind = trt.PoolingType.MAX if layer.kind == "max" else trt.PoolingType.AVERAGE
        added = network.add_pooling_nd(tensor, kind, (layer.window, layer.window))
        added.stride_nd = (layer.stride, layer.stride)
        added.padding_nd = (layer.padding, layer.padding)
        if layer.kind != "max":
            added.average_count_excludes_padding = False  # PyTorch's count_include_pad=True
    elif isinstance(layer, Dense):
        if len(tensor.shape) != 2:  # flatten [N, C, H, W] → [N, C*H*W]
            shuffle = network.add_shuffle(tensor)
            shuffle.reshape_dims = (layer.batch, layer.in_features)
            tensor = shuffle.get_output(0)
        weights = (rng.standard_normal((layer.in_features, layer.out_features)) * 0.05).astype(
            np.float32
        )
        bias = np.zeros((1, layer.out_features), dtype=np.float32)
        keep += [weights, bias]
        constant = network.add_constant(weights.shape, weights)
        product = network.add_matrix_multiply(
            tensor, trt.MatrixOperation.NONE, constant.get_output(0), trt.MatrixOperation.NONE
        )
        product.name = name + ".matmul"
        bias_constant = network.add_constant(bias.shape, bias)
        added = network.add_elementwise(
            product.get_output(0), bias_constant.get_output(0), trt.ElementWiseOperation.SUM
        )
    else:
        raise TypeError(f"no TensorRT layer for {type(layer).__name__}")
    added.name = name
    return added.get_output(0)


def inspect_engine(trt: Any, engine: Any, name: str) -> dict[str, Any]:
    """The engine inspector's JSON (detailed verbosity), checked to describe every layer."""
    inspector = engine.create_engine_inspector()
    text = inspector.get_engine_information(trt.LayerInformationFormat.JSON)
    info = json.loads(text)
    layers = info.get("Layers") if isinstance(info, dict) else None
    if not layers or not all(isinstance(layer, dict) for layer in layers):
        raise RuntimeError(
            f"{name}: the engine inspector lists layer names only; rebuild the engine with "
            "detailed profiling verbosity (trtexec --profilingVerbosity=detailed, or let this "
            "collector build it from ONNX)"
        )
    return info


def _logger(trt: Any) -> Any:
    return trt.Logger(trt.Logger.WARNING)


def _shape(text: str | None) -> tuple[int, ...] | None:
    from edge_collector.layers import parse_shape

    shape = parse_shape(text)
    return tuple(shape) if shape else None


class _Session:
    """IO buffers, a stream and two execution contexts of one engine."""

    def __init__(self, trt: Any, engine: Any, input_shape: str | None) -> None:
        from edge_collector.backends._cudart import CudaRuntime

        self.trt, self.engine = trt, engine
        self.cuda = CudaRuntime()
        self.stream = self.cuda.stream()
        self.v3 = hasattr(engine, "num_io_tensors")
        self.shape = _shape(input_shape)
        self.input_shapes: dict[str, list[int]] = {}
        self.addresses: dict[str, int] = {}
        self.bindings: list[int] = []
        self._allocate()

    def _tensors(self) -> list[tuple[str, bool, Any, Any]]:
        trt, engine = self.trt, self.engine
        if self.v3:
            out = []
            for i in range(engine.num_io_tensors):
                name = engine.get_tensor_name(i)
                is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
                out.append(
                    (name, is_input, engine.get_tensor_shape(name), engine.get_tensor_dtype(name))
                )
            return out
        return [
            (
                engine.get_binding_name(i),
                engine.binding_is_input(i),
                engine.get_binding_shape(i),
                engine.get_binding_dtype(i),
            )
            for i in range(engine.num_bindings)
        ]

    def _allocate(self) -> None:
        rng = np.random.default_rng(0)
        tensors = self._tensors()
        for name, is_input, shape, _ in tensors:  # inputs first: they decide dynamic outputs
            if is_input:
                dims = tuple(shape)
                if any(d < 0 for d in dims):
                    if self.shape is None:
                        raise ValueError(
                            f"input {name} has dynamic shape {dims}: pass --input-shape"
                        )
                    dims = self.shape
                self.input_shapes[name] = [int(d) for d in dims]
        resolved = self.context() if self.v3 else None
        for name, is_input, shape, dtype in tensors:
            dims = tuple(self.input_shapes[name]) if is_input else tuple(shape)
            if any(d < 0 for d in dims):
                if resolved is None:
                    raise ValueError(f"output {name} has dynamic shape {dims} (TensorRT < 8.5)")
                dims = tuple(resolved.get_tensor_shape(name))
            nptype = np.dtype(self.trt.nptype(dtype))
            size = int(np.prod(dims)) * nptype.itemsize if dims else nptype.itemsize
            pointer = self.cuda.malloc(size)
            if is_input:
                data = rng.standard_normal(dims).astype(nptype) if dims else np.zeros(1, nptype)
                self.cuda.upload(pointer, np.ascontiguousarray(data))
            self.addresses[name] = pointer
            self.bindings.append(pointer)

    def context(self, profiler: Any = None) -> Any:
        """An execution context with the input shapes (and, once allocated, the buffers) set."""
        context = self.engine.create_execution_context()
        for name, dims in self.input_shapes.items():
            if self.v3 and hasattr(context, "set_input_shape"):
                context.set_input_shape(name, dims)
            elif not self.v3 and self.shape is not None:
                context.set_binding_shape(self.engine.get_binding_index(name), dims)
        if self.v3:
            for name, pointer in self.addresses.items():
                context.set_tensor_address(name, pointer)
        if profiler is not None:
            context.profiler = profiler
        return context

    def execute(self, context: Any) -> None:
        if self.v3:
            if not context.execute_async_v3(self.stream):
                raise RuntimeError("execute_async_v3 failed")
            self.cuda.synchronize(self.stream)
        elif not context.execute_v2(self.bindings):
            raise RuntimeError("execute_v2 failed")

    def benchmark(self, warmup: int, iterations: int) -> float:
        """Mean seconds per inference, without a profiler."""
        context = self.context()
        for _ in range(warmup):
            self.execute(context)
        started = time.perf_counter()
        for _ in range(iterations):
            self.execute(context)
        return (time.perf_counter() - started) / iterations

    def profile(
        self, warmup: int, minimum: int, min_layer_ms: float, maximum: int
    ) -> tuple[dict[str, list[list]], int]:
        recorder = _recorder_class(self.trt)()
        context = self.context(recorder)
        warm: dict[str, list[float]] = {}
        for _ in range(max(1, warmup)):
            recorder.pending = []
            self.execute(context)
            for name, ms in recorder.pending:
                warm.setdefault(name, []).append(ms)
        cycles = cycles_needed(
            {name: min(times) for name, times in warm.items()}, minimum, min_layer_ms, maximum
        )
        expected = len(recorder.pending)
        latency: dict[str, list[list]] = {}
        for cycle in range(cycles):
            recorder.pending = []
            self.execute(context)
            cycle_end = time.time()
            if len(recorder.pending) != expected:  # reports must belong to this execution
                raise RuntimeError(
                    f"the profiler reported {len(recorder.pending)} layer times in cycle "
                    f"{cycle + 1}, {expected} in the last warm-up cycle: per-cycle timestamps "
                    "cannot be attributed"
                )
            for name, ms, end in end_times(recorder.pending, cycle_end):
                latency.setdefault(name, []).append(latency_entry(ms, end))
        return latency, cycles

    def close(self) -> None:
        self.cuda.free_all()


def end_times(
    reported: list[tuple[str, float]], cycle_end: float
) -> list[tuple[str, float, float]]:
    """(layer, ms, end epoch s) per reported layer: the last one ends at ``cycle_end``, each
    earlier one where the next one starts (layers run back to back on one stream)."""
    out = []
    end = cycle_end
    for name, ms in reversed(reported):
        out.append((name, ms, end))
        end -= ms / 1000.0
    return out[::-1]


def _recorder_class(trt: Any) -> Any:
    class LayerTimeRecorder(trt.IProfiler):
        """Collects ``(layer_name, ms)`` of one execution, in report order."""

        def __init__(self) -> None:
            trt.IProfiler.__init__(self)
            self.pending: list[tuple[str, float]] = []

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            self.pending.append((layer_name, float(ms)))

    return LayerTimeRecorder
