"""Test doubles for the collector: an injectable clock and power sources (picklable, so that
the sampler's spawned child can use them), and fake sysfs trees of the INA3221 layouts."""

from __future__ import annotations

import os
from pathlib import Path

from edge_collector.sampler import PowerSource, SensorError


class StepClock:
    """A clock that only moves when told: ``sleep`` advances it exactly, every ``time()`` call
    costs ``tick`` seconds (the time a reading takes)."""

    def __init__(self, start: float, tick: float = 0.0) -> None:
        self.now, self.tick = start, tick

    def time(self) -> float:
        self.now += self.tick
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class CountingSource(PowerSource):
    """Reading *k* is ``(5000, 1000 + k)`` mV, mA; readings listed in ``fail_at`` raise."""

    name = "counting"
    dialect = "jetson"

    def __init__(self, fail_at: tuple[int, ...] = (), fail_from: int | None = None) -> None:
        self.fail_at, self.fail_from = set(fail_at), fail_from
        self.k = -1

    def read(self) -> tuple[float, float]:
        self.k += 1
        if self.k in self.fail_at or (self.fail_from is not None and self.k >= self.fail_from):
            raise SensorError(f"reading {self.k}: simulated failure")
        return 5000.0, 1000.0 + self.k


class BrokenSource(PowerSource):
    name = "broken"

    def open(self) -> None:
        raise SensorError("/sys/fake/in1_input: cannot be read (No such device)")


# ---------------------------------------------------------------------------- sysfs trees
def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def iio_device(root: Path, device: str, index: int, rails: dict[str, tuple[int, int]]) -> Path:
    """JetPack 4 (``ina3221x`` IIO driver): ``rail_name_<i>``, ``in_voltage<i>_input``,
    ``in_current<i>_input`` and ``in_power<i>_input``."""
    folder = root / "sys/bus/i2c/drivers/ina3221x" / device / f"iio:device{index}"
    for channel, (label, (mv, ma)) in enumerate(rails.items()):
        _write(folder / f"rail_name_{channel}", label + "\n")
        _write(folder / f"in_voltage{channel}_input", f"{mv}\n")
        _write(folder / f"in_current{channel}_input", f"{ma}\n")
        _write(folder / f"in_power{channel}_input", f"{mv * ma // 1000}\n")
    return folder


def hwmon_device(
    root: Path, device: str, index: int, rails: dict[str, tuple[int, int]], class_link: bool
) -> Path:
    """JetPack 5/6 (``ina3221`` hwmon driver): ``in<i>_label``, ``in<i>_input``,
    ``curr<i>_input`` (1-based), plus the shunt channels without labels, optionally also
    linked as ``/sys/class/hwmon/hwmon<n>`` like the real sysfs."""
    folder = root / "sys/bus/i2c/drivers/ina3221" / device / "hwmon" / f"hwmon{index}"
    _write(folder / "name", "ina3221\n")
    for channel, (label, (mv, ma)) in enumerate(rails.items(), start=1):
        _write(folder / f"in{channel}_label", label + "\n")
        _write(folder / f"in{channel}_input", f"{mv}\n")
        _write(folder / f"curr{channel}_input", f"{ma}\n")
        _write(folder / f"in{channel + 3}_input", "12\n")  # shunt voltage, no label
    if class_link:
        link = root / "sys/class/hwmon" / f"hwmon{index}"
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(folder, link)
    return folder


def board(root: Path, model: str, release: str) -> None:
    _write(root / "proc/device-tree/model", model + "\0")
    _write(root / "etc/nv_tegra_release", release + "\n")


def jetson_nano_jp4(root: Path) -> Path:
    board(root, "NVIDIA Jetson Nano Developer Kit", "# R32 (release), REVISION: 7.1, GCID: 1")
    return iio_device(
        root,
        "6-0040",
        0,
        {"POM_5V_IN": (5048, 880), "POM_5V_GPU": (5032, 120), "POM_5V_CPU": (5040, 320)},
    )


def xavier_nx_jp4(root: Path) -> Path:
    board(root, "NVIDIA Jetson Xavier NX Developer Kit", "# R32 (release), REVISION: 6.1")
    return iio_device(
        root,
        "7-0040",
        0,
        {"VDD_IN": (5072, 1200), "VDD_CPU_GPU_CV": (5064, 400), "VDD_SOC": (5056, 300)},
    )


def agx_xavier_jp4(root: Path) -> list[Path]:
    board(root, "Jetson-AGX", "# R32 (release), REVISION: 5.0")
    return [
        iio_device(
            root, "1-0040", 0, {"GPU": (19000, 100), "CPU": (19000, 200), "SOC": (19000, 300)}
        ),
        iio_device(
            root, "1-0041", 1, {"CV": (19000, 10), "VDDRQ": (19000, 50), "SYS5V": (4900, 600)}
        ),
    ]


def orin_nano_jp5(root: Path, class_link: bool = True) -> Path:
    board(
        root,
        "NVIDIA Orin Nano Developer Kit",
        "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64",
    )
    return hwmon_device(
        root,
        "1-0040",
        1,
        {"VDD_IN": (5016, 1496), "VDD_CPU_GPU_CV": (5008, 304), "VDD_SOC": (5000, 600)},
        class_link,
    )


def agx_orin_jp6(root: Path) -> list[Path]:
    board(root, "NVIDIA Jetson AGX Orin Developer Kit", "# R36 (release), REVISION: 3.0")
    return [
        hwmon_device(
            root,
            "1-0040",
            3,
            {"VDD_GPU_SOC": (4992, 1500), "VDD_CPU_CV": (4992, 500), "VIN_SYS_5V0": (5008, 800)},
            True,
        ),
        hwmon_device(
            root, "1-0041", 4, {"NC": (0, 0), "VDDQ_VDD2_1V8AO": (4992, 250), "NC ": (0, 0)}, True
        ),
    ]
