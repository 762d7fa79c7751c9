"""The console log handler: no message text can crash logging (TensorRT layer names contain
``[/...]``, rich's closing-tag syntax), and output that is not a terminal is not wrapped."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import kedro.logging
import pytest
from rich.console import Console

from power_modelling import logging_handlers
from power_modelling.logging_handlers import (
    UNWRAPPED_WIDTH,
    RichHandler,
    console_for_logging,
    make_console_logging_safe,
)
from tests.helpers import make_project
from tests.standins import install_standin_models

KEDRO = str(Path(sys.executable).parent / "kedro")
# The first layer of the bundled Orin engine, as TensorRT names it
LAYER = (
    "[CONVOLUTION]-[aten_ops.convolution.default]-[/conv1/convolution] + "
    "[SCALE]-[aten_ops._native_batch_norm_legit_no_training.default]-"
    "[/bn1/_native_batch_norm_legit_no_training] + [RELU]-[aten_ops.relu.default]-[/relu/relu]"
)
ANSI = re.compile(r"\x1b\[[0-9;]*m|\x1b\]8;[^\x1b]*\x1b\\")


def _record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord(
        "power_modelling.x", logging.WARNING, "/src/engines.py", 73, msg, args, None
    )
    record.__dict__.update(extra)
    return record


def _terminal() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=True, width=400), buffer  # no wrap in tests


def _plain() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=UNWRAPPED_WIDTH), buffer


def _text(buffer: io.StringIO) -> str:
    """What a reader sees: colour codes and hyperlinks removed."""
    return ANSI.sub("", buffer.getvalue())


@pytest.mark.parametrize("console_kind", [_terminal, _plain])
@pytest.mark.parametrize(
    "record",
    [
        _record("Skipping %s: layer '%s': Kernel must be a list", "orin", LAYER),
        _record(f"layer '{LAYER}' unreadable"),
        # a record that asks for markup but is not valid markup is printed as text
        _record("layer '%s'", LAYER, markup=True),
    ],
    ids=["argument", "message", "markup-requested"],
)
def test_layer_names_with_closing_tags_are_logged_as_they_are(console_kind, record) -> None:
    console, buffer = console_kind()
    RichHandler(console=console).handle(record)
    assert f"WARNING  {record.getMessage()}" in _text(buffer)


def test_kedros_coloured_dataset_names_keep_their_colour_and_text() -> None:
    console, buffer = _terminal()
    record = _record("Loading data from %s (%s)...", "engines-[/x]", "[bold]Dataset")
    record.rich_format = ["dark_orange"]
    RichHandler(console=console).handle(record)
    assert "Loading data from engines-[/x] ([bold]Dataset)..." in _text(buffer)
    assert "\x1b[" in buffer.getvalue()  # coloured on a terminal
    assert record.args == ("engines-[/x]", "[bold]Dataset")  # shared record left unchanged


def test_kedros_handler_from_logging_yml_is_made_safe() -> None:
    console, buffer = _plain()
    logger = logging.getLogger("tests.logging.kedro_handler")
    logger.propagate = False
    handler = kedro.logging.RichHandler(console=console)  # markup on, as Kedro configures it
    logger.addHandler(handler)
    try:
        make_console_logging_safe()
        assert type(handler) is RichHandler
        assert handler.markup is False
        logger.warning("Skipping %s", LAYER)
        assert f"WARNING  Skipping {LAYER}" in _text(buffer)
    finally:
        logger.removeHandler(handler)


def test_output_that_is_not_a_terminal_is_one_unwrapped_line_per_record() -> None:
    console, buffer = _plain()
    handler = RichHandler(console=console, rich_tracebacks=True)
    long_message = "layers: " + ", ".join(f"conv{i}" for i in range(100))
    handler.handle(_record(long_message))
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].endswith(f"WARNING  {long_message}  engines.py:73")
    assert re.match(r"\[\d\d/\d\d/\d\d \d\d:\d\d:\d\d\] WARNING  layers: conv0,", lines[0])

    try:
        raise ValueError("bad [/x]")
    except ValueError:
        record = _record("failed")
        record.exc_info = sys.exc_info()
    buffer.truncate(0)
    buffer.seek(0)
    handler.handle(record)
    lines = buffer.getvalue().splitlines()
    assert lines[0].endswith("WARNING  failed  engines.py:73")
    assert "ValueError: bad [/x]" in lines[-1]
    assert max(len(line) for line in lines) <= 100  # traceback box at a readable width


def test_console_width_when_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    piped = Console(file=io.StringIO())
    monkeypatch.setattr(logging_handlers, "get_console", lambda: piped)
    monkeypatch.delenv("COLUMNS", raising=False)
    assert console_for_logging().width == UNWRAPPED_WIDTH
    monkeypatch.setenv("COLUMNS", "132")  # an explicit width is honoured
    assert console_for_logging().width == 132

    terminal = Console(file=io.StringIO(), force_terminal=True)
    monkeypatch.setattr(logging_handlers, "get_console", lambda: terminal)
    assert console_for_logging() is terminal


@pytest.mark.integration
def test_prediction_run_reports_a_bad_engine_whose_layer_names_contain_closing_tags(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path, models=())
    folder = project / "data" / "01_raw" / "predict"
    engine = json.loads((folder / "jetson_orin_resnet18.json").read_text())
    assert engine["Layers"][1]["Name"] == LAYER
    engine["Layers"][1]["Kernel"] = "3x3"
    (folder / "orin_bad_kernel.json").write_text(json.dumps(engine))
    install_standin_models(project)

    env = {
        **os.environ,
        "DO_NOT_TRACK": "true",
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
    }
    env.pop("COLUMNS", None)
    done = subprocess.run(
        [KEDRO, "run", "--pipelines", "prediction"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "MarkupError" not in output
    expected = (
        f"ERROR    Skipping orin_bad_kernel: data/01_raw/predict/orin_bad_kernel.json: "
        f"layer '{LAYER}': Kernel must be a list of integers, got '3x3'  networks.py:"
    )
    assert expected in output  # on one line: piped output is not wrapped
    written = project / "data" / "07_model_output" / "predictions"
    assert sorted(p.name for p in written.iterdir()) == ["jetson_orin_resnet18.csv"]
    quality = json.loads((project / "data/08_reporting/data_quality.json").read_text())
    report = quality["prediction"]
    assert (report["networks_predicted"], report["networks_failed"]) == (1, 1)
    assert LAYER in report["errors"]["orin_bad_kernel"]
