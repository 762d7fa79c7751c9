"""Jetson board power from the INA3221 monitors in sysfs, across JetPack 4, 5 and 6.

Two kernel drivers expose the same three-channel monitor in different places:

- JetPack 4.x (L4T R32: Nano, TX2, Xavier NX, AGX Xavier), driver ``ina3221x`` (IIO):
  ``/sys/bus/i2c/drivers/ina3221x/<bus-addr>/iio:device<n>/`` with ``rail_name_<i>``,
  ``in_voltage<i>_input`` (mV), ``in_current<i>_input`` (mA) per channel *i*.
- JetPack 5.x (R35) and 6.x (R36: Orin, Xavier on 5.x), driver ``ina3221`` (hwmon):
  ``/sys/bus/i2c/drivers/ina3221/<bus-addr>/hwmon/hwmon<n>/`` with ``in<i>_label``,
  ``in<i>_input`` (mV), ``curr<i>_input`` (mA).

The same hwmon folders are also reached as ``/sys/class/hwmon/hwmon<n>`` (``name`` is
``ina3221``); both are scanned and de-duplicated, since some kernels bind the driver under a
different I2C path. Channels labelled ``NC`` (not connected) are left out.

Which rail: the board's input rail when it has one (``VDD_IN`` on Orin Nano/NX, Xavier NX and
TX2, ``POM_5V_IN`` on the Nano): the power of the whole module, as the reference study read.
AGX Xavier and AGX Orin have no input rail on their INA3221s; there the default is the sum of
every connected rail, written as one ``mV,mA`` line whose current is the equivalent current at
the first rail's voltage (so that ``mV * mA`` is the summed power). ``--rail`` overrides:
``VDD_GPU_SOC``, ``GPU+CPU+SOC``, or ``1-0041:VDDQ_VDD2_1V8AO`` where a label repeats.
The rail read goes to ``device.json``.

Every file is opened, read and closed at each reading (no cached descriptor), so a rail that
disappears (a driver unbound, a board reset) raises ``SensorError`` naming the file instead of
returning its last value forever.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from glob import glob
from typing import Any, Sequence

from edge_collector.sampler import Fields, PowerSource, SensorError

#: Rails that measure the whole module's input, most preferred first.
INPUT_RAILS = ("VDD_IN", "POM_5V_IN")
NOT_CONNECTED = ("NC", "")
IIO_GLOB = "sys/bus/i2c/drivers/ina3221x/*/iio:device*"
HWMON_GLOBS = ("sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*", "sys/class/hwmon/hwmon*")
#: L4T major release → JetPack major version
JETPACK_OF_L4T = {32: "4", 34: "5", 35: "5", 36: "6"}


@dataclass(frozen=True)
class Rail:
    """One INA3221 channel."""

    label: str
    voltage_path: str
    current_path: str
    device: str  # the I2C device, e.g. ``1-0040``
    channel: int
    layout: str  # ``iio`` (JetPack 4) or ``hwmon`` (JetPack 5/6)

    @property
    def qualified(self) -> str:
        return self.device + ":" + self.label

    def read(self) -> tuple[int, int]:
        """(millivolts, milliamperes) now."""
        return read_int(self.voltage_path, "millivolts"), read_int(self.current_path, "milliamps")


def read_int(path: str, unit: str) -> int:
    """An integer sysfs value; ``SensorError`` naming the file when missing or unreadable."""
    try:
        with open(path, "rb") as handle:
            text = handle.read(64)
    except OSError as exc:
        reason = exc.strerror or exc
        raise SensorError(f"{path}: cannot be read ({reason}); the rail vanished?") from None
    try:
        return int(text.strip())
    except ValueError:
        raise SensorError(f"{path}: expected an integer ({unit}), got {text[:20]!r}") from None


def find_rails(root: str = "/") -> list[Rail]:
    """Every connected INA3221 channel under ``root`` (``/`` on a board; a fake tree in
    tests), JetPack 4 layout first, sorted by device and channel."""
    rails: dict[tuple[str, str], Rail] = {}
    for folder in sorted(glob(os.path.join(root, IIO_GLOB))):
        device = os.path.basename(os.path.dirname(folder))
        for name_file in sorted(glob(os.path.join(folder, "rail_name_*"))):
            channel = int(name_file.rsplit("_", 1)[1])
            rail = Rail(
                _read_label(name_file),
                os.path.join(folder, f"in_voltage{channel}_input"),
                os.path.join(folder, f"in_current{channel}_input"),
                device,
                channel,
                "iio",
            )
            _add(rails, rail, folder)
    for pattern in HWMON_GLOBS:
        for folder in sorted(glob(os.path.join(root, pattern))):
            if not _is_ina3221_hwmon(folder):
                continue
            device = _hwmon_device(folder)
            for label_file in sorted(glob(os.path.join(folder, "in*_label"))):
                match = re.fullmatch(r"in(\d+)_label", os.path.basename(label_file))
                if not match:
                    continue
                channel = int(match.group(1))
                rail = Rail(
                    _read_label(label_file),
                    os.path.join(folder, f"in{channel}_input"),
                    os.path.join(folder, f"curr{channel}_input"),
                    device,
                    channel,
                    "hwmon",
                )
                _add(rails, rail, folder)
    return sorted(rails.values(), key=lambda r: (r.device, r.channel))


def choose_rails(rails: Sequence[Rail], wanted: str | None = None) -> list[Rail]:
    """The rails to read: ``wanted`` (``LABEL``, ``DEVICE:LABEL``, joined with ``+``), else the
    input rail, else all of them (summed). ``ValueError`` lists what exists."""
    if not rails:
        raise ValueError(
            "no INA3221 rail found (searched "
            + ", ".join(["/" + IIO_GLOB, *("/" + g for g in HWMON_GLOBS)])
            + "); is this a Jetson board? Pass --sysfs-root if sysfs is mounted elsewhere"
        )
    available = ", ".join(r.qualified for r in rails)
    if wanted:
        chosen = []
        for token in (t.strip() for t in wanted.split("+")):
            matches = [r for r in rails if token.upper() in (r.label.upper(), r.qualified.upper())]
            if not matches:
                raise ValueError(f"rail {token!r} not found; available: {available}")
            if len(matches) > 1:
                raise ValueError(
                    f"rail {token!r} is ambiguous ({', '.join(r.qualified for r in matches)}); "
                    "write it as DEVICE:LABEL"
                )
            chosen.append(matches[0])
        return chosen
    for label in INPUT_RAILS:
        inputs = [r for r in rails if r.label.upper() == label]
        if inputs:
            return inputs[:1]
    return list(rails)


def rails_name(rails: Sequence[Rail]) -> str:
    """``VDD_IN`` or ``GPU+CPU+SOC`` (what device.json records as the power source)."""
    return "+".join(r.label for r in rails)


class Ina3221Source(PowerSource):
    """``(mV, mA)`` of one rail, or of the sum of several (equivalent current, see module)."""

    dialect = "jetson"
    reader = "ina3221"

    def __init__(self, rails: Sequence[Rail]) -> None:
        if not rails:
            raise ValueError("Ina3221Source needs at least one rail")
        self.rails = list(rails)
        self.name = rails_name(self.rails)

    def open(self) -> None:
        self.read()  # fail at start, naming the file, rather than at the first sample

    def read(self) -> Fields:
        if len(self.rails) == 1:
            millivolts, milliamps = self.rails[0].read()
            return float(millivolts), float(milliamps)
        readings = [rail.read() for rail in self.rails]
        reference_mv = float(readings[0][0])
        if reference_mv <= 0:
            raise SensorError(f"{self.rails[0].voltage_path}: voltage {reference_mv} mV")
        total_uw = sum(float(mv) * float(ma) for mv, ma in readings)
        return reference_mv, total_uw / reference_mv

    def describe(self) -> dict[str, Any]:
        return {
            "rails": [
                {
                    "label": r.label,
                    "device": r.device,
                    "channel": r.channel,
                    "layout": r.layout,
                    "voltage": r.voltage_path,
                    "current": r.current_path,
                }
                for r in self.rails
            ],
            "combined": "sum (mA = total power / first rail's mV)" if len(self.rails) > 1 else None,
        }


def board_info(root: str = "/", query_power_mode: bool = True) -> dict[str, Any]:
    """Board model (device tree), L4T release and JetPack major version, nvpmodel power mode;
    keys whose source is missing are left out."""
    info: dict[str, Any] = {}
    model = _read_text(os.path.join(root, "proc/device-tree/model"))
    if model:
        info["board"] = model.strip("\0 \n")
    release = _read_text(os.path.join(root, "etc/nv_tegra_release"))
    match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", release or "")
    if match:
        major = int(match.group(1))
        info["l4t"] = f"{major}.{match.group(2)}"
        if major in JETPACK_OF_L4T:
            info["jetpack"] = JETPACK_OF_L4T[major] + ".x"
    if query_power_mode:
        mode = power_mode()
        if mode:
            info["power_mode"] = mode
    return info


def power_mode() -> str | None:
    """``nvpmodel -q`` → the mode name (``MAXN``, ``15W``), or None without nvpmodel."""
    try:
        done = subprocess.run(
            ["nvpmodel", "-q"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"NV Power Mode:\s*(\S+)", done.stdout)
    return match.group(1) if match else None


def _add(rails: dict[tuple[str, str], Rail], rail: Rail, folder: str) -> None:
    if rail.label.upper() in NOT_CONNECTED:
        return
    key = (os.path.realpath(folder), str(rail.channel))
    rails.setdefault(key, rail)


def _is_ina3221_hwmon(folder: str) -> bool:
    name = _read_text(os.path.join(folder, "name"))
    if name is not None:
        return name.strip() == "ina3221"
    return "/drivers/ina3221/" in folder.replace(os.sep, "/")


def _hwmon_device(folder: str) -> str:
    """``1-0040`` for ``.../ina3221/1-0040/hwmon/hwmon3`` (or its /sys/class alias)."""
    real = os.path.realpath(folder)
    parent = os.path.dirname(os.path.dirname(real))
    if os.path.basename(os.path.dirname(real)) == "hwmon":
        return os.path.basename(parent)
    return os.path.basename(real)


def _read_label(path: str) -> str:
    return (_read_text(path) or "").strip()


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None
