"""A real ``kedro viz run`` server on a throw-away copy of the project, read through its API.

Viz is started in the copy because it writes there (``info.log``, from ``conf/logging.yml``,
which would truncate the project's own). It runs on 127.0.0.1 only: any outbound HTTP(S)
request (kedro-viz asks PyPI for its latest version) is pointed at a closed local port.
The server is a ``multiprocessing`` child of the ``kedro`` process, so the whole process
group is stopped at the end, and the port must be closed afterwards.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from power_modelling.core.layers import LAYER_CLASSES
from tests.helpers import PROJECT_ROOT, make_project

pytestmark = pytest.mark.integration

HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0
LAYERS = [
    "raw",
    "intermediate",
    "primary",
    "feature",
    "model_input",
    "models",
    "model_output",
    "reporting",
]
#: A named node (``name=`` given) is an identifier; Kedro's generated names look like
#: ``func([inputs]) -> [outputs]``.
READABLE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
#: A chart written into the copy, so that the preview has a file to show.
PREVIEWED_CHART = "convolutional.power_bars_chart"
PREVIEWED_CHART_PATH = Path("data/08_reporting/convolutional/power_bars.png")

# Urllib without any proxy from the environment: the server is on 127.0.0.1.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Viz:
    url: str
    port: int
    project: Path
    startup_s: float

    def get(self, path: str) -> Any:
        with _DIRECT.open(f"{self.url}{path}", timeout=30) as response:
            assert response.status == 200, path
            return json.loads(response.read())


def _free_port() -> int:
    """A free port below the kernel's ephemeral range (kedro-viz refuses ports > 49151, and a
    port the kernel may hand out to outgoing connections could be taken meanwhile)."""
    for _ in range(100):
        port = random.randrange(20000, 32000)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port found between 20000 and 32000")


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((HOST, port)) == 0


def _png(width: int = 2, height: int = 2) -> bytes:
    """A tiny valid grey PNG (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(pixels))
        + chunk(b"IEND", b"")
    )


def _offline_env(project: Path) -> dict[str, str]:
    closed = f"http://{HOST}:9"  # nothing listens there: outbound requests fail at once
    return {
        **os.environ,
        "DO_NOT_TRACK": "true",
        "KEDRO_DISABLE_TELEMETRY": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
        "HTTP_PROXY": closed,
        "HTTPS_PROXY": closed,
        "http_proxy": closed,
        "https_proxy": closed,
        "NO_PROXY": f"{HOST},localhost",
        "no_proxy": f"{HOST},localhost",
    }


def _group_gone(process: subprocess.Popen, timeout_s: float) -> bool:
    """Whether the process group of ``process`` has no process left (waits ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        process.poll()  # reap the kedro CLI process itself
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the whole process group (kedro CLI + the spawned server), then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        if _group_gone(process, STOP_TIMEOUT_S):
            return


@pytest.fixture(scope="module")
def viz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Viz]:
    project = make_project(tmp_path_factory.mktemp("viz"), models=("lenet",))
    chart = project / PREVIEWED_CHART_PATH
    chart.parent.mkdir(parents=True, exist_ok=True)
    chart.write_bytes(_png())
    port = _free_port()
    started = time.monotonic()
    with (project / "viz.log").open("wb") as log:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "kedro", "viz", "run", "--no-browser"]
            + ["--host", HOST, "--port", str(port)],
            cwd=project,
            env=_offline_env(project),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: kedro CLI + spawned server
        )
    server = Viz(url=f"http://{HOST}:{port}", port=port, project=project, startup_s=float("nan"))
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"kedro viz exited with {process.returncode}:\n{_tail(project)}")
            if time.monotonic() - started > STARTUP_TIMEOUT_S:
                pytest.fail(f"kedro viz not up after {STARTUP_TIMEOUT_S} s:\n{_tail(project)}")
            try:
                server.get("/api/main")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                time.sleep(0.5)
        server.startup_s = time.monotonic() - started
        print(f"\nkedro viz answered /api/main after {server.startup_s:.1f} s")
        yield server
    finally:
        stopping = time.monotonic()
        _stop(process)
        print(f"\nkedro viz stopped in {time.monotonic() - stopping:.1f} s")
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while _port_open(port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _port_open(port), f"port {port} still open after stopping kedro viz"


def _tail(project: Path, chars: int = 4000) -> str:
    path = project / "viz.log"
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


def _registered_pipelines() -> set[str]:
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(PROJECT_ROOT)  # also clears any pipeline filter a previous run left
    from power_modelling.pipeline_registry import register_pipelines

    return set(register_pipelines())


@pytest.fixture(scope="module")
def views(viz: Viz) -> dict[str, dict]:
    """``/api/pipelines/<id>`` of every pipeline the server lists."""
    return {
        p["id"]: viz.get(f"/api/pipelines/{p['id']}") for p in viz.get("/api/main")["pipelines"]
    }


# ----------------------------------------------------------------------------------- tests
def test_every_registered_pipeline_renders(
    viz: Viz, views: dict[str, dict], record_property
) -> None:
    record_property("viz_startup_s", round(viz.startup_s, 1))
    main = viz.get("/api/main")
    served = {p["id"] for p in main["pipelines"]}
    core = {"__default__", "ingestion", "power_mapping", "feature_engineering", "modelling"}
    assert core | {"prediction", "network_evaluation"} <= served
    assert served == _registered_pipelines()
    assert main["selected_pipeline"] == "__default__"
    for name, view in views.items():
        tasks = [n for n in view["nodes"] if n["type"] == "task"]
        assert tasks, f"pipeline {name} renders no node"
        assert {e["source"] for e in view["edges"]}, f"pipeline {name} renders no edge"


def test_node_names_are_readable(views: dict[str, dict]) -> None:
    for name, view in views.items():
        for node in (n for n in view["nodes"] if n["type"] == "task"):
            assert READABLE_NAME.match(node["name"]), (name, node["name"])
            namespace = ".".join(node["modular_pipelines"] or [])
            expected = f"{namespace}.{node['name']}" if namespace else node["name"]
            assert node["full_name"] == expected, (name, node)


@pytest.mark.parametrize("pipeline", ["__default__", "modelling"])
def test_modelling_namespaces_are_collapsible_modular_pipelines(viz: Viz, pipeline: str) -> None:
    view = viz.get(f"/api/pipelines/{pipeline}")
    tree = view["modular_pipelines"]
    assert set(LAYER_CLASSES) <= set(tree)
    # each namespace is one collapsible node in the flowchart, with the template inside
    collapsed = {n["id"] for n in view["nodes"] if n["type"] == "modularPipeline"}
    assert collapsed == set(LAYER_CLASSES)
    tasks = {n["id"]: n for n in view["nodes"] if n["type"] == "task"}
    template = {}
    for layer_type in LAYER_CLASSES:
        children = {c["id"] for c in tree[layer_type]["children"] if c["type"] == "task"}
        assert children, layer_type
        assert all(tasks[c]["modular_pipelines"] == [layer_type] for c in children)
        template[layer_type] = sorted(tasks[c]["name"] for c in children)
        assert tree[layer_type]["inputs"] and tree[layer_type]["outputs"], layer_type
    assert len({tuple(names) for names in template.values()}) == 1, template
    # nothing else is namespaced
    assert {ns for n in tasks.values() for ns in n["modular_pipelines"] or []} == set(LAYER_CLASSES)


def test_layers_are_the_data_layers_in_order(viz: Viz, views: dict[str, dict]) -> None:
    assert viz.get("/api/main")["layers"] == LAYERS
    data = {
        n["name"]: n["layer"]
        for view in views.values()
        for n in view["nodes"]
        if n["type"] == "data"
    }
    expected = {
        "raw_measurement_files": "raw",
        "prediction_files": "raw",
        "power_samples": "intermediate",
        "layer_descriptions": "intermediate",
        "idle_power": "intermediate",
        "layerwise": "primary",
        "convolutional.feature_table": "feature",
        "dense.model_input_train": "model_input",
        "pooling.model_input_test": "model_input",
        "convolutional.power_model": "models",
        "dense.runtime_model_mlflow": "models",
        "device_idle_power": "models",
        "pooling.test_predictions": "model_output",
        "predictions": "model_output",
        "prediction_summary": "model_output",
        "loco_predictions": "model_output",
        "ingestion_data_quality": "reporting",
        "prediction_data_quality": "reporting",
        "convolutional.metrics": "reporting",
        "network_metrics": "reporting",
        "loco_metrics": "reporting",
        PREVIEWED_CHART: "reporting",
    }
    assert {name: data.get(name) for name in expected} == expected


def test_every_persisted_dataset_has_a_layer(views: dict[str, dict]) -> None:
    unlayered = sorted(
        {
            n["name"]
            for view in views.values()
            for n in view["nodes"]
            if n["type"] == "data"
            and n["layer"] is None
            and not (n["dataset_type"] or "").endswith("MemoryDataset")
        }
    )
    assert unlayered == [], (
        f"no `metadata: {{kedro-viz: {{layer: ...}}}}` in the catalog: {unlayered}"
    )


def test_reporting_charts_are_previewable_images(viz: Viz) -> None:
    charts = {
        n["name"]: n
        for n in viz.get("/api/pipelines/modelling")["nodes"]
        if n["type"] == "data" and n["name"].endswith("_chart")
    }
    targets = ("power", "power_total", "runtime")
    assert set(charts) == {
        f"{layer_type}.{target}_{kind}_chart"
        for layer_type in LAYER_CLASSES
        for target in targets
        for kind in ("bars", "scatter")
    } | {"loco_chart"}
    for name, node in charts.items():
        assert node["dataset_type"].endswith("MatplotlibDataset"), name
        details = viz.get(f"/api/nodes/{node['id']}")
        assert details["preview_type"] == "ImagePreview", name
        assert details["filepath"].endswith(".png"), name
    shown = viz.get(f"/api/nodes/{charts[PREVIEWED_CHART]['id']}")
    assert base64.b64decode(shown["preview"]) == _png()
