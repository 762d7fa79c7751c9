"""The command line as a user meets it: ``python -m edge_collector`` with nothing but the
standard library and NumPy importable, valid Python 3.8, ``kedro collect``, ``rails``."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from power_modelling.cli import cli
from tests.collector import fakes
from tests.helpers import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "src" / "edge_collector"

# Runs the collector in an interpreter where importing anything but the standard library,
# NumPy and edge_collector itself fails: what a freshly flashed board offers.
ONLY_NUMPY = """
import sys, runpy
ALLOWED = set(sys.stdlib_module_names) | {"numpy", "edge_collector"}
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] not in ALLOWED:
            raise ImportError(f"{name} is not installed on this device")
sys.meta_path.insert(0, Block())
sys.argv = ["edge_collector", *sys.argv[1:]]
runpy.run_module("edge_collector", run_name="__main__", alter_sys=True)
"""


def _collector(*args: str, only_numpy: bool = False) -> subprocess.CompletedProcess:
    command = (
        [sys.executable, "-c", ONLY_NUMPY]
        if only_numpy
        else [sys.executable, "-m", "edge_collector"]
    )
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_help_in_a_subprocess() -> None:
    done = _collector("--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: python -m edge_collector")
    for command in ("rails", "jetson", "nvml", "cpu", "sweep"):
        assert f"\n    {command} " in done.stdout
    assert "docs/collector.md" in done.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["sweep", "--help"],
        ["jetson", "--help"],
        ["sweep", "nvml", "--conv", "5", "--dry-run", "--out", "{tmp}/nvml"],
        [
            "sweep",
            "jetson",
            "--pool",
            "3",
            "--dry-run",
            "--out",
            "{tmp}/j",
            "--sysfs-root",
            "{tmp}/fake",
        ],
        [
            "jetson",
            "--onnx",
            "net.onnx",
            "--dry-run",
            "--out",
            "{tmp}/j",
            "--sysfs-root",
            "{tmp}/fake",
        ],
        ["cpu", "--out", "{tmp}/cpu", "--idle-s", "0.1", "--record-ms", "20", "--settle-ms", "5"],
    ],
    ids=[
        "help",
        "sweep-help",
        "jetson-help",
        "nvml-dry-run",
        "jetson-sweep-dry-run",
        "jetson-dry-run",
        "cpu-run",
    ],
)
def test_works_with_only_numpy_installed(tmp_path: Path, args: list[str]) -> None:
    fakes.orin_nano_jp5(tmp_path / "fake")
    done = _collector(*(a.replace("{tmp}", str(tmp_path)) for a in args), only_numpy=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "not installed on this device" not in done.stdout + done.stderr


def test_a_missing_backend_dependency_is_one_line(tmp_path: Path) -> None:
    fakes.orin_nano_jp5(tmp_path / "fake")
    done = _collector(
        "jetson", "--onnx", "net.onnx", "--out", str(tmp_path / "x"), "--sysfs-root",
        str(tmp_path / "fake"), only_numpy=True,
    )  # fmt: skip
    assert done.returncode == 1
    assert "tensorrt is not installed on this device" in done.stderr
    assert "python3-libnvinfer" in done.stderr
    assert "Traceback" not in done.stderr


def test_valid_python_3_8() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "vermin"), "--target=3.8", "--no-tips", str(PACKAGE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Minimum required versions: 3.8" in done.stdout


def test_annotations_stay_strings_on_python_3_8() -> None:
    """vermin does not evaluate annotations: ``list[int]`` or ``X | None`` in an annotation is
    valid on 3.8 only under ``from __future__ import annotations``, which every annotated
    module must therefore have."""
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        annotated = any(
            isinstance(node, ast.AnnAssign)
            or (isinstance(node, ast.arg) and node.annotation is not None)
            or (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns)
            for node in ast.walk(tree)
        )
        future = any(
            isinstance(node, ast.ImportFrom)
            and node.module == "__future__"
            and any(alias.name == "annotations" for alias in node.names)
            for node in tree.body
        )
        if annotated and not future:
            missing.append(str(path.relative_to(PACKAGE)))
    assert missing == []


def test_rails_command_on_a_fake_board(tmp_path: Path) -> None:
    fakes.agx_orin_jp6(tmp_path)
    done = _collector("rails", "--sysfs-root", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "board: NVIDIA Jetson AGX Orin Developer Kit" in done.stdout
    assert "jetpack: 6.x" in done.stdout
    assert re.search(r"\n\*1-0040:VDD_GPU_SOC +4992 +1500 +7488  hwmon  ", done.stdout)
    assert (
        "* read by default (--rail overrides): VDD_GPU_SOC+VDD_CPU_CV+VIN_SYS_5V0+" in done.stdout
    )
    chosen = _collector("rails", "--sysfs-root", str(tmp_path), "--rail", "VIN_SYS_5V0")
    assert " 1-0040:VDD_GPU_SOC" in chosen.stdout and "*1-0040:VIN_SYS_5V0" in chosen.stdout
    missing = _collector("rails", "--sysfs-root", str(tmp_path / "none"))
    assert missing.returncode == 1 and "no INA3221 rail found" in missing.stderr


def test_kedro_collect_forwards_to_the_collector(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["collect", "--version"])
    assert result.exit_code == 0
    assert capfd.readouterr().out.strip() == "edge_collector 0.1.0"
    result = runner.invoke(cli, ["collect", "--help"])
    assert result.exit_code == 0
    assert "usage: python -m edge_collector" in capfd.readouterr().out
    result = runner.invoke(
        cli, ["collect", "sweep", "cpu", "--conv", "2", "--dry-run", "--out", str(tmp_path / "s")]
    )
    assert result.exit_code == 0
    assert "conv       2 configurations, 0 done, 2 to measure" in capfd.readouterr().out
    result = runner.invoke(cli, ["collect", "frobnicate"])
    assert result.exit_code == 2  # argparse's usage error, passed through
    assert "invalid choice: 'frobnicate'" in capfd.readouterr().err
