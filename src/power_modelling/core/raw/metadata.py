"""Run metadata (``<model>_tensorrt.json`` / ``<model>_benchmark.json``) and idle power."""

from __future__ import annotations

import math
from typing import Any

_JETSON_WHOLE_MODEL_KEYS = ("avg_latency",)


def run_metadata(
    model: str,
    dialect: str,
    has_power_windows: bool,
    metadata: dict,
    layer_energy: dict | None,
) -> dict[str, Any]:
    """The ``run_metadata`` record (docs/data-contracts.md). ``whole_model.energy_mj`` is the
    energy of ONE inference: the counter energy over the burst divided by its iterations
    (else latency x power)."""
    config = metadata.get("config")
    if not isinstance(config, dict):
        config = {k: v for k, v in metadata.items() if k not in _JETSON_WHOLE_MODEL_KEYS}
    return {
        "model": model,
        "dialect": dialect,
        "has_power_windows": has_power_windows,
        "config": config,
        "whole_model": _whole_model(metadata),
        "layer_energy": _layer_energy(layer_energy),
    }


def _whole_model(metadata: dict) -> dict[str, float | None] | None:
    whole = metadata.get("whole_model")
    if isinstance(whole, dict):  # NVML burst
        latency_ms = _number(whole.get("latency_ms"))
        power_mw = _number(whole.get("avg_power_mw_counter"))
        power_w = None if power_mw is None else power_mw / 1000.0
        energy, iterations = _number(whole.get("energy_mj")), _number(whole.get("iterations"))
        if energy is not None and iterations:
            energy_mj = energy / iterations
        elif latency_ms is not None and power_w is not None:
            energy_mj = latency_ms * power_w
        else:
            energy_mj = None
    else:  # Jetson: avg_latency in seconds
        latency_s = _number(metadata.get("avg_latency"))
        latency_ms, power_w, energy_mj = (
            None if latency_s is None else latency_s * 1000.0,
            None,
            None,
        )
    if latency_ms is None and power_w is None and energy_mj is None:
        return None
    return {"latency_ms": latency_ms, "avg_power_w": power_w, "energy_mj": energy_mj}


def _layer_energy(layer_energy: dict | None) -> dict[str, dict[str, float | None]] | None:
    if not isinstance(layer_energy, dict):
        return None
    out = {}
    for layer, figures in layer_energy.items():
        if isinstance(figures, dict):
            power_mw = _number(figures.get("avg_power_mw_counter"))
            out[layer] = {
                "avg_power_w": None if power_mw is None else power_mw / 1000.0,
                "latency_ms": _number(figures.get("latency_ms")),
            }
    return out


#: ``unit`` values of ``idling_power.json`` that mean microwatts (the only unit accepted).
MICROWATT_UNITS = frozenset({"microwatt", "microwatts", "uw", "µw", "μw"})
#: Factors to microwatts of the units an idle power is most often given in by mistake.
_OTHER_UNITS = (("W", 1e6), ("mW", 1e3), ("nW", 1e-3))


def idle_power(
    record: Any, source: str, plausible_uw: tuple[float, float] | None = None
) -> dict[str, Any]:
    """``idling_power.json`` → ``{"avg_idle_power_uw", "source", ...other keys}``.

    Raises ``ValueError`` naming the file when ``avg_idle_power`` is not a positive number,
    when a ``unit`` other than microwatts is declared, or when the value lies outside
    ``plausible_uw`` (then the message says which unit the value would be plausible in: an
    idle power of 120.95 is 120.95 W, not µW, and would add 121 W to every layer)."""
    value = _number(record.get("avg_idle_power")) if isinstance(record, dict) else None
    if value is None or value <= 0:
        raise ValueError(
            f"{source}: expected an object with a positive number 'avg_idle_power' (microwatts)"
        )
    unit = record.get("unit")
    if unit is not None and str(unit).strip().lower() not in MICROWATT_UNITS:
        raise ValueError(
            f"{source}: 'unit' is {unit!r}, but 'avg_idle_power' must be in microwatts "
            f'(write it in µW and set "unit": "microwatt")'
        )
    if plausible_uw is not None and not plausible_uw[0] <= value <= plausible_uw[1]:
        raise ValueError(_implausible_idle_power(value, source, plausible_uw))
    extra = {k: v for k, v in record.items() if k != "avg_idle_power"}
    return {"avg_idle_power_uw": value, "source": source, **extra}


def _implausible_idle_power(value: float, source: str, plausible_uw: tuple[float, float]) -> str:
    """The message for an idle power outside the plausible range, with the unit it fits."""
    low, high = plausible_uw
    message = (
        f"{source}: avg_idle_power {value:g} µW ({value / 1e6:g} W) is outside the plausible "
        f"idle power {low:g} .. {high:g} µW (ingestion.plausible_idle_power_uw)"
    )
    fits = [
        f"{value:g} {unit} = {value * factor:.12g} µW"
        for unit, factor in _OTHER_UNITS
        if low <= value * factor <= high
    ]
    if fits:
        message += f"; was it given in another unit? {' or '.join(fits)}: write it in microwatts"
    return message


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None
