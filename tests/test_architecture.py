"""The layering of docs/architecture.md, checked: core imports no Kedro, no pipeline imports
another, and no node module reads or writes files behind the catalog's back."""

from __future__ import annotations

import ast
import inspect
import sys
from pathlib import Path

import pytest

from tests.helpers import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "src" / "power_modelling"
#: Calls that open, read or write files, or load models, outside a catalog dataset.
FILE_IO_CALLS = {
    "open",
    "read_text",
    "read_bytes",
    "write_text",
    "write_bytes",
    "load_model",
    "read_parquet",
    "read_csv",
    "to_parquet",
    "to_csv",
}
FILE_IO_MODULES = {"joblib", "pickle", "skops", "mlflow"}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_core_imports_no_kedro() -> None:
    for path in (PACKAGE / "core").rglob("*.py"):
        kedro = sorted(n for n in _imports(path) if n.split(".")[0].startswith("kedro"))
        assert not kedro, f"{path.relative_to(PROJECT_ROOT)} imports {kedro}"


def test_no_pipeline_imports_another_pipeline() -> None:
    pipelines = sorted(p.name for p in (PACKAGE / "pipelines").iterdir() if p.is_dir())
    assert {"ingestion", "prediction", "inference"} <= set(pipelines)
    for name in pipelines:
        for path in (PACKAGE / "pipelines" / name).rglob("*.py"):
            for imported in _imports(path):
                parts = imported.split(".")
                if parts[:2] == ["power_modelling", "pipelines"] and len(parts) > 2:
                    assert parts[2] == name, (
                        f"{path.relative_to(PROJECT_ROOT)} imports {imported}: pipelines meet "
                        "only through the catalog (shared code goes in power_modelling.core)"
                    )


def _node_modules() -> set[Path]:
    from kedro.framework.project import configure_project

    from power_modelling.pipeline_registry import register_pipelines

    configure_project("power_modelling")
    modules = set()
    for pipeline in register_pipelines().values():
        for node in pipeline.nodes:
            module = sys.modules[inspect.unwrap(node.func).__module__]
            if module.__name__.startswith("power_modelling."):
                modules.add(Path(module.__file__))
    return modules


def test_no_node_function_does_file_io_or_loads_models_itself() -> None:
    modules = _node_modules()
    assert len(modules) >= 7, modules  # every pipeline's nodes.py
    for path in modules:
        tree = ast.parse(path.read_text())
        where = path.relative_to(PROJECT_ROOT)
        for imported in _imports(path):
            assert imported.split(".")[0] not in FILE_IO_MODULES, f"{where} imports {imported}"
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                assert name not in FILE_IO_CALLS, f"{where}:{node.lineno} calls {name}()"


@pytest.mark.parametrize("pipeline", ["prediction", "network_evaluation", "__default__"])
def test_one_inference_node_serves_prediction_evaluation_and_the_served_model(
    pipeline: str,
) -> None:
    from kedro.framework.project import configure_project

    from power_modelling.pipeline_registry import register_pipelines
    from power_modelling.pipelines.inference import nodes as inference

    configure_project("power_modelling")
    pipelines = register_pipelines()
    inference_nodes = [
        n for n in pipelines[pipeline].nodes if inspect.unwrap(n.func) is inference.predict_layers
    ]
    assert len(inference_nodes) == 1
    if pipeline == "__default__":  # the served model (serving.py) is the same template
        from power_modelling.serving import served_model

        served = served_model([]).pipeline.nodes
        assert [inspect.unwrap(n.func) for n in served] == [inference.predict_layers]
