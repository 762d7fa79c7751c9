"""Warnings a user can do nothing about, silenced before they reach the console.

``silence_known_noise`` runs twice: from the ``kedro.init`` entry point of this package, which
the ``kedro`` command calls before it loads any plugin (kedro-mlflow's CLI plugin imports MLflow
and triggers the first warning below, before the project's ``settings.py`` is read), and from
``settings.py``, for sessions created in Python (tests, notebooks, the kedro-viz server
process). It only drops these exact messages; nothing else is hidden.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys
import warnings
from collections.abc import Iterator

#: kedro-mlflow's served-model wrapper (an MLflow PythonModel).
KEDRO_PIPELINE_MODEL = "kedro_mlflow.mlflow.kedro_pipeline_model"
#: kedro-mlflow's logger for a PipelineML turned back into a plain Pipeline.
PIPELINE_ML_LOGGER = "kedro_mlflow.pipeline.pipeline_ml"
_DEMOTED = "BEWARE - This 'Pipeline' is no longer a 'PipelineML' object"


def silence_known_noise() -> None:
    """Filter the known, harmless warnings (idempotent)."""
    # kedro-mlflow's served-model wrapper has an untyped predict(); its input is checked by the
    # inference node itself, so MLflow's hint about type hints is noise in every command.
    # MLflow emits it when the class is defined, under `simplefilter("once")` of its own, which
    # outranks any filter set here: the module is imported now, that one warning dropped.
    _import_dropping(KEDRO_PIPELINE_MODEL, "Add type hints to the `predict` method")
    # `convolutional.power_model`, `pooling.model_input_test`, ...: the modelling namespaces'
    # datasets, read by name outside them on purpose (inference, network evaluation).
    warnings.filterwarnings("ignore", message=r".*dataset names contain '\.' characters")
    # kedro-viz's own use of a FastAPI class deprecated upstream (`kedro viz run|build`)
    warnings.filterwarnings(
        "ignore", message=r"ORJSONResponse is deprecated", module=r"kedro_viz(\.|$)"
    )
    pipeline_ml = logging.getLogger(PIPELINE_ML_LOGGER)
    if not any(isinstance(f, KedroVizDemotionFilter) for f in pipeline_ml.filters):
        pipeline_ml.addFilter(KedroVizDemotionFilter())


def _import_dropping(module: str, message: str) -> None:
    """Import ``module`` (once; nothing when it is not installed), dropping the warnings that
    contain ``message`` and passing every other one on."""
    if module in sys.modules:
        return
    # importing Kedro may route warnings to logging midway (its RichHandler turns on
    # logging.captureWarnings), past the recording: logger "py.warnings" drops it then
    captured = logging.getLogger("py.warnings")
    drop = _Dropping(message)
    captured.addFilter(drop)
    try:
        with warnings.catch_warnings(record=True) as caught:
            importlib.import_module(module)
    except ImportError:
        return
    finally:
        captured.removeFilter(drop)
    for warning in caught:
        if message not in str(warning.message):
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )


class _Dropping(logging.Filter):
    """Drops the log records that contain ``message``."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def filter(self, record: logging.LogRecord) -> bool:
        return self.message not in record.getMessage()


class KedroVizDemotionFilter(logging.Filter):
    """Drop kedro-mlflow's "no longer a 'PipelineML'" warning when kedro-viz triggers it.

    kedro-viz splits every pipeline by namespace to draw it (``only_nodes_with_namespaces``),
    which turns the training ``PipelineML`` into a plain pipeline: harmless there, it only
    draws the nodes. Raised from anywhere else (a pipeline combined in the registry, which
    would lose the MLflow model logging) the warning stays.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(_DEMOTED):
            return True
        return not _called_from("kedro_viz")


def _called_from(package: str) -> bool:
    """Whether a frame of ``package`` is on the current call stack."""
    frame = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module == package or module.startswith(f"{package}."):
            return True
        frame = frame.f_back
    return False


@contextlib.contextmanager
def dotted_dataset_names() -> Iterator[None]:
    """Build nodes that read the modelling namespaces' datasets by their full, dotted names
    (``convolutional.power_model``) outside a namespace, on purpose: Kedro's warning about
    dots is dropped here, where it is certain to be raised first (Kedro warns once per
    process, and the filter of :func:`silence_known_noise` may not be installed yet)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*dataset names contain '\.' characters")
        yield
