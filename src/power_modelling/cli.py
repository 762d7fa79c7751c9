"""Project commands for the ``kedro`` CLI: ``kedro data add|pull|version|upload|download``,
``kedro collect ...`` (the on-device collector, ``edge_collector``), and ``kedro run``
reporting bad input in one line.

Kedro loads ``<package>.cli:cli`` and adds its commands to the built-in ones (a command of
the same name, ``run``, replaces Kedro's).
"""

from __future__ import annotations

import atexit
import copy
import gc
import logging
import re
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click
from kedro.framework.cli.project import run as _kedro_run
from kedro.framework.cli.utils import _split_params as _kedro_split_params
from omegaconf import OmegaConf

from power_modelling import data_versioning as dv
from power_modelling.errors import expected_error

_DAGSHUB_HOST = click.option(
    "--host",
    envvar="DAGSHUB_CLIENT_HOST",
    default=dv.DEFAULT_DAGSHUB_HOST,
    show_default=True,
    help="DagsHub server (env DAGSHUB_CLIENT_HOST).",
)
_ALLOW_HTTP = click.option(
    "--allow-http",
    is_flag=True,
    help="Accept a plain http:// --host (a trusted local server): the token travels unencrypted.",
)


def _repository_and_folders(local_help: str) -> list[Callable]:
    """The options of the reference tool's ``data_version.py`` shared by upload and download."""
    return [
        click.option("--owner", required=True, help="User or organisation owning the repo."),
        click.option("--name", required=True, help="Name of the DagsHub repository."),
        click.option(
            "--local-dir-path", required=True, type=click.Path(path_type=Path), help=local_help
        ),
        click.option("--remote-dir-path", help="Path in the repository (default: local path)."),
    ]


def _one_line_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Report :class:`DataCommandError` as ``Error: <message>`` (exit 1), not a traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        try:
            return command(*args, **kwargs)
        except dv.DataCommandError as error:
            raise click.ClickException(str(error)) from error

    return wrapper


def _with(options: list[Callable]) -> Callable:
    def decorate(command: Callable) -> Callable:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


@click.group(name="power_modelling")
def cli() -> None:
    """Project commands of power-modelling."""


#: A comma that starts the next ``key=value`` item of ``--params`` (not one inside a value).
_NEXT_PARAM = re.compile(r",(?=\s*[A-Za-z_][\w.-]*\s*=)")


def _split_params(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Kedro's ``--params`` parsing, except that a comma inside a value stays there:
    ``feature_engineering.test_models=net_a,net_b,raw_dataset=mine`` sets two parameters, the
    first to ``"net_a,net_b"`` (Kedro would split at every comma and fail)."""
    if isinstance(value, dict) or not value:
        return _kedro_split_params(ctx, param, value)
    items = [item.strip() for item in _NEXT_PARAM.split(value) if item.strip()]
    bad = [item for item in items if "=" not in item or not item.partition("=")[0].strip()]
    if bad:
        ctx.fail(f"Invalid format of `--params`: `{bad[0]}` is not key=value")
    dot_list = [f"{key.strip()}={val}" for key, _, val in (i.partition("=") for i in items)]
    return OmegaConf.to_container(OmegaConf.from_dotlist(dot_list))


def _run_params() -> list[click.Parameter]:
    """Kedro's ``run`` options, ``--params`` parsed by :func:`_split_params`."""
    params = []
    for option in _kedro_run.params:
        ours = copy.copy(option)
        if ours.name == "params":
            ours.callback = _split_params
        params.append(ours)
    return params


@cli.command(
    name="run",
    params=_run_params(),
    help=_kedro_run.help,
    context_settings=getattr(_kedro_run, "context_settings", None),
)
def run(**kwargs: Any) -> Any:
    """Kedro's ``run``; a bad input or parameter ends it with ``Error: <what and how to fix
    it>`` and exit status 1 instead of a traceback (a bug still shows its traceback)."""
    # Python's last act is a full cyclic garbage collection over every object still alive:
    # with the libraries a run imports (MLflow, SQLAlchemy, pandas, Arrow, ...) that took
    # 0.5-1 s of a 3 s prediction run, to free memory the OS frees anyway. Frozen objects are
    # skipped (reference counting still frees the rest, and finalizers still run).
    atexit.register(gc.freeze)
    gc.freeze()  # what the CLI imported: no cyclic collection rescans it during the run either
    try:
        return _kedro_run.callback(**kwargs)
    except Exception as error:
        expected = expected_error(error)
        if expected is None:
            raise
        click.echo(f"Error: {expected}", err=True)
        raise SystemExit(1) from None


@cli.group()
def data() -> None:
    """Version raw datasets with DVC and exchange them with DagsHub (docs/own-data.md)."""


@data.command("add")
@click.argument("dataset")
@click.option("--remote", help="DVC remote to push to (default: the configured default).")
@_one_line_errors
def add(dataset: str, remote: str | None) -> None:
    """Track data/01_raw/DATASET with DVC and push it to the remote."""
    dvc_file = dv.track_raw_dataset(dataset, remote=remote)
    dvc_gitignore = dvc_file.parent / ".gitignore"
    extra = f" {dvc_gitignore}" if dvc_gitignore.exists() else ""
    click.echo(f"Tracked {dataset}. Commit the pointer: git add {dvc_file}{extra}")


@data.command("pull")
@click.argument("dataset", required=False)
@click.option("--remote", help="DVC remote to pull from (default: the configured default).")
@_one_line_errors
def pull(dataset: str | None, remote: str | None) -> None:
    """Fetch DATASET (or every DVC-tracked raw dataset) from the DVC remote."""
    dv.pull(dataset=dataset, remote=remote)
    click.echo(f"Pulled {dataset or 'all DVC-tracked data'}")


@data.command("version")
@click.argument("dataset")
def version(dataset: str) -> None:
    """Print how data/01_raw/DATASET is versioned (the tags MLflow runs get)."""
    for key, value in dv.dataset_version(dv.RAW_DIR / dataset).items():
        click.echo(f"{key}: {value}")


@data.command("upload")
@_with(_repository_and_folders("Local folder to upload, e.g. data/01_raw/my_jetson_data."))
@click.option("--branch", help="Branch to commit to (default: the repository's default).")
@click.option("--commit", "commit_message", default="Add raw data", show_default=True)
@click.option("--versioning", type=click.Choice(dv.VERSIONING_CHOICES), default="dvc")
@_DAGSHUB_HOST
@_ALLOW_HTTP
@_one_line_errors
def upload(
    *,
    owner: str,
    name: str,
    local_dir_path: Path,
    remote_dir_path: str | None,
    branch: str | None,
    commit_message: str,
    versioning: str,
    host: str,
    allow_http: bool,
) -> None:
    """Upload a local folder to a DagsHub repository (token: DAGSHUB_USER_TOKEN)."""
    remote = dv.upload_to_dagshub(
        owner,
        name,
        local_dir_path,
        remote_dir_path=remote_dir_path,
        branch=branch,
        commit_message=commit_message,
        versioning=versioning,
        host=host,
        allow_http=allow_http,
    )
    click.echo(f"Uploaded {local_dir_path} to {host}/{owner}/{name} at {remote}")


@data.command("download")
@_with(_repository_and_folders("Where to put the files, e.g. data/01_raw/my_jetson_data."))
@click.option("--branch", help="Branch or commit to download (default: the default branch).")
@_DAGSHUB_HOST
@_ALLOW_HTTP
@_one_line_errors
def download(
    *,
    owner: str,
    name: str,
    local_dir_path: Path,
    remote_dir_path: str | None,
    branch: str | None,
    host: str,
    allow_http: bool,
) -> None:
    """Download a folder of a DagsHub repository (token: DAGSHUB_USER_TOKEN). Every file is
    written inside --local-dir-path; the token is sent to --host only."""
    remote = dv.download_from_dagshub(
        owner,
        name,
        local_dir_path,
        remote_dir_path=remote_dir_path,
        branch=branch,
        host=host,
        allow_http=allow_http,
    )
    click.echo(f"Downloaded {host}/{owner}/{name} {remote} into {local_dir_path}")


@cli.command(
    "collect",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
    add_help_option=False,  # --help goes to the collector, which documents its own options
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def collect(args: tuple[str, ...]) -> None:
    """Measure layers on this machine's GPU into a raw dataset (docs/collector.md).

    Forwards ARGS to ``python -m edge_collector`` (the same package a Jetson runs after copying
    ``src/edge_collector``): ``kedro collect --help``, ``kedro collect sweep nvml --out
    data/01_raw/my_sweep --conv 200 --dry-run``.
    """
    from edge_collector.cli import forward  # noqa: PLC0415 (only this command needs it)

    code = forward(list(args))
    if code:
        raise SystemExit(code)
