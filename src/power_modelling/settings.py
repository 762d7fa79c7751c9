"""Kedro project settings."""

from kedro.config import OmegaConfigLoader
from omegaconf.resolvers import oc

from power_modelling.hooks import DataQualityMlflowHook

HOOKS = (DataQualityMlflowHook(),)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "config_patterns": {
        "mlflow": ["mlflow*", "mlflow*/**"],
    },
    # ${oc.env:VAR,default} in conf/ (tracking URI and experiment from the environment)
    "custom_resolvers": {"oc.env": oc.env},
}
