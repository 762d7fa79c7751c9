"""Measurement backends: what runs the layers and what reads the power.

- ``jetson``: TensorRT engines (from ONNX, or one-layer networks for sweeps); INA3221 sysfs
  power; Jetson dialect; imports ``tensorrt``.
- ``nvml``: PyTorch modules as CUDA-graph bursts; NVML instant power and energy counter;
  NVML burst dialect; imports ``torch``, ``torchvision``, ``pynvml`` (nvidia-ml-py).
- ``cpu``: NumPy kernels timed for real; synthetic power of known value per layer; either
  dialect; NumPy only.

Each backend module imports its heavy dependencies inside its functions, so importing this
package (and ``--help``) needs only numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edge_collector.distributions import Limits
from edge_collector.layers import Network
from edge_collector.sampler import PowerSource


@dataclass
class ModelRun:
    """The files of one measured model, but the power log (the sampler writes that)."""

    latency: dict[str, list[list]]
    engine_info: dict[str, Any]
    metadata: dict[str, Any]
    layer_energy: dict[str, Any] | None = None
    #: known per-layer power (synthetic backends only), for the summary
    truth_uw: dict[str, float] = field(default_factory=dict)


class Backend:
    """The interface ``measure`` and ``sweep`` drive."""

    kind = ""  # device.json kind: jetson | nvml | cpu
    dialect = ""  # raw-data dialect written: jetson | nvml
    precision = ""  # FP16, FP32 ...
    period_s = 0.001  # power sampling period
    #: sweep limits when none are given on the command line (sized for the device class)
    default_limits = Limits()

    def device_info(self) -> dict[str, Any]:
        raise NotImplementedError

    def power_source(self) -> PowerSource:
        raise NotImplementedError

    def prepare_idle(self) -> None:
        """Put the device in the state idle power is measured in (nothing running)."""

    def run(self, model: Any) -> ModelRun:
        """Measure ``model`` (a ``Network``, or what the backend's command line names) while
        the power sampler runs."""
        raise NotImplementedError

    def estimate_s(self, network: Network) -> float:
        """Rough seconds to measure ``network`` (dry runs); excludes sampler start-up."""
        raise NotImplementedError

    def duration_note(self) -> str:
        """What a dry run can say about a model it cannot look into (ONNX, torchvision)."""
        return "unknown until the model is loaded"

    def close(self) -> None:
        """Release devices."""
