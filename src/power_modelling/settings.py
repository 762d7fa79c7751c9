"""Kedro project settings."""

import os

# Offline-first: no usage telemetry from MLflow or DVC (kedro's own is off via .telemetry).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
# no download progress bars in the log when the served model is logged and checked
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

# Known harmless warnings filtered before kedro or its plugins import MLflow (the `kedro`
# command has filtered them already, through this package's `kedro.init` entry point).
from power_modelling.quiet import silence_known_noise  # noqa: E402

silence_known_noise()

import pyarrow  # noqa: E402
from kedro.config import OmegaConfigLoader  # noqa: E402
from omegaconf.resolvers import oc  # noqa: E402

from power_modelling.hooks import (  # noqa: E402
    DataQualityMlflowHook,
    DatasetNameHook,
    DataVersionMlflowHook,
    MlflowStoreLockHook,
    ParameterCheckHook,
    RunNameMlflowHook,
    ServedModelHook,
)
from power_modelling.logging_handlers import make_console_logging_safe  # noqa: E402
from power_modelling.project import project_root  # noqa: E402
from power_modelling.run_guard import RunGuardHook  # noqa: E402
from power_modelling.run_summary import RunSummaryHook  # noqa: E402

# Arrow's default allocator (jemalloc) gives the memory of freed tables back to the kernel and
# faults it in again for the next: ingesting and mapping one 4.5 M-window model spent about 1 s
# more in the kernel than with the system allocator (docs/performance.md).
pyarrow.set_memory_pool(pyarrow.system_memory_pool())

# Kedro built conf/logging.yml's console handler before the project was known: make it print any
# message as plain text (layer names contain "[/...]", which rich would read as markup).
make_console_logging_safe()

HOOKS = (
    MlflowStoreLockHook(),
    RunGuardHook(),
    # after RunGuardHook: pluggy calls the last registered first, so parameters and dataset
    # names are checked before the run takes the lock or moves any output aside
    ParameterCheckHook(),
    DatasetNameHook(),
    ServedModelHook(),
    DataQualityMlflowHook(),
    DataVersionMlflowHook(),
    RunNameMlflowHook(),
    RunSummaryHook(),
)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "config_patterns": {
        "mlflow": ["mlflow*", "mlflow*/**"],
    },
    # ${oc.env:VAR,default} in conf/ (tracking URI and experiment from the environment);
    # ${project_root:} is the absolute project folder, also when kedro runs in a sub-folder
    # (a notebook kernel in notebooks/), so the default MLflow store is always the same file
    "custom_resolvers": {"oc.env": oc.env, "project_root": lambda: project_root().as_posix()},
}
