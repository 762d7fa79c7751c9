"""INA3221 rail detection and reading against fake sysfs trees of each JetPack/board layout."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edge_collector.ina3221 import (
    Ina3221Source,
    board_info,
    choose_rails,
    find_rails,
    rails_name,
)
from edge_collector.sampler import SensorError
from tests.collector import fakes


def _labels(root: Path) -> list[str]:
    return [rail.qualified for rail in find_rails(str(root))]


@pytest.mark.parametrize(
    ("layout", "expected", "default"),
    [
        (
            fakes.jetson_nano_jp4,
            ["6-0040:POM_5V_IN", "6-0040:POM_5V_GPU", "6-0040:POM_5V_CPU"],
            "POM_5V_IN",
        ),
        (
            fakes.xavier_nx_jp4,
            ["7-0040:VDD_IN", "7-0040:VDD_CPU_GPU_CV", "7-0040:VDD_SOC"],
            "VDD_IN",
        ),
        (
            fakes.agx_xavier_jp4,
            ["1-0040:GPU", "1-0040:CPU", "1-0040:SOC", "1-0041:CV", "1-0041:VDDRQ", "1-0041:SYS5V"],
            "GPU+CPU+SOC+CV+VDDRQ+SYS5V",  # no input rail: the sum of all
        ),
        (
            fakes.orin_nano_jp5,
            ["1-0040:VDD_IN", "1-0040:VDD_CPU_GPU_CV", "1-0040:VDD_SOC"],
            "VDD_IN",
        ),
        (
            fakes.agx_orin_jp6,  # NC channels left out; /sys/class/hwmon aliases de-duplicated
            [
                "1-0040:VDD_GPU_SOC",
                "1-0040:VDD_CPU_CV",
                "1-0040:VIN_SYS_5V0",
                "1-0041:VDDQ_VDD2_1V8AO",
            ],
            "VDD_GPU_SOC+VDD_CPU_CV+VIN_SYS_5V0+VDDQ_VDD2_1V8AO",
        ),
    ],
    ids=["nano-jp4", "xavier-nx-jp4", "agx-xavier-jp4", "orin-nano-jp5", "agx-orin-jp6"],
)
def test_rails_of_each_layout(tmp_path: Path, layout, expected: list[str], default: str) -> None:
    layout(tmp_path)
    rails = find_rails(str(tmp_path))
    assert [r.qualified for r in rails] == expected
    assert rails_name(choose_rails(rails)) == default


def test_hwmon_found_through_sys_class_alone(tmp_path: Path) -> None:
    """Some kernels bind the driver under another I2C path: /sys/class/hwmon still finds it."""
    folder = fakes.orin_nano_jp5(tmp_path, class_link=False)
    alias = tmp_path / "sys/class/hwmon/hwmon1"
    shutil.copytree(folder, alias)
    shutil.rmtree(tmp_path / "sys/bus")
    rails = find_rails(str(tmp_path))
    assert [r.label for r in rails] == ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"]
    assert rails[0].voltage_path == str(alias / "in1_input")
    assert rails[0].current_path == str(alias / "curr1_input")


def test_values_and_sum_of_rails(tmp_path: Path) -> None:
    fakes.orin_nano_jp5(tmp_path)
    rails = find_rails(str(tmp_path))
    assert Ina3221Source(choose_rails(rails)).read() == (5016.0, 1496.0)
    summed = Ina3221Source(choose_rails(rails, "VDD_CPU_GPU_CV+VDD_SOC"))
    millivolts, milliamps = summed.read()
    # one mV,mA line whose product is the summed power, at the first rail's voltage
    assert millivolts == 5008.0
    assert millivolts * milliamps == pytest.approx(5008 * 304 + 5000 * 600)
    assert summed.name == "VDD_CPU_GPU_CV+VDD_SOC"


def test_override_by_label_or_device(tmp_path: Path) -> None:
    fakes.agx_xavier_jp4(tmp_path)
    rails = find_rails(str(tmp_path))
    assert [r.qualified for r in choose_rails(rails, "gpu")] == ["1-0040:GPU"]
    assert [r.qualified for r in choose_rails(rails, "1-0041:SYS5V")] == ["1-0041:SYS5V"]
    with pytest.raises(ValueError, match=r"rail 'VDD_IN' not found; available: 1-0040:GPU"):
        choose_rails(rails, "VDD_IN")


def test_no_rails_names_the_searched_paths(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no INA3221 rail found \(searched .*ina3221x.*hwmon"):
        choose_rails(find_rails(str(tmp_path)))


def test_rail_vanishing_mid_run(tmp_path: Path) -> None:
    folder = fakes.xavier_nx_jp4(tmp_path)
    source = Ina3221Source(choose_rails(find_rails(str(tmp_path))))
    source.open()
    assert source.read() == (5072.0, 1200.0)
    (folder / "in_current0_input").write_text("1300\n")
    assert source.read() == (5072.0, 1300.0)  # read afresh each time, never cached
    backup = tmp_path / "backup"
    shutil.move(str(folder), backup)  # the driver unbound: the whole device folder is gone
    with pytest.raises(SensorError, match=r"in_voltage0_input: cannot be read .*vanished"):
        source.read()
    shutil.move(str(backup), folder)
    assert source.read() == (5072.0, 1300.0)


@pytest.mark.parametrize(
    ("content", "shown"), [("", "b''"), ("abc\n", "b'abc\\n'"), ("12.5", "b'12.5'")]
)
def test_unreadable_values(tmp_path: Path, content: str, shown: str) -> None:
    folder = fakes.orin_nano_jp5(tmp_path)
    (folder / "curr1_input").write_text(content)
    source = Ina3221Source(choose_rails(find_rails(str(tmp_path))))
    with pytest.raises(SensorError) as error:
        source.read()
    assert str(error.value) == (
        f"{folder / 'curr1_input'}: expected an integer (milliamps), got {shown}"
    )


def test_a_file_that_is_a_folder_is_unreadable_not_fatal(tmp_path: Path) -> None:
    folder = fakes.orin_nano_jp5(tmp_path)
    (folder / "in1_input").unlink()
    (folder / "in1_input").mkdir()
    source = Ina3221Source(choose_rails(find_rails(str(tmp_path))))
    with pytest.raises(SensorError, match="in1_input: cannot be read"):
        source.read()
    with pytest.raises(SensorError):  # open() fails at start, naming the file
        source.open()


def test_board_info(tmp_path: Path) -> None:
    fakes.orin_nano_jp5(tmp_path)
    assert board_info(str(tmp_path), query_power_mode=False) == {
        "board": "NVIDIA Orin Nano Developer Kit",
        "l4t": "35.4.1",
        "jetpack": "5.x",
    }
    fakes.jetson_nano_jp4(tmp_path / "nano")
    assert board_info(str(tmp_path / "nano"), query_power_mode=False)["jetpack"] == "4.x"
    assert board_info(str(tmp_path / "nothing"), query_power_mode=False) == {}
