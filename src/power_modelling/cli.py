"""Project commands for the ``kedro`` CLI: ``kedro data add|pull|version|upload|download`` and
``kedro collect ...`` (the on-device collector, ``edge_collector``).

Kedro loads ``<package>.cli:cli`` and adds its commands to the built-in ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from power_modelling import data_versioning as dv

_DAGSHUB_HOST = click.option(
    "--host",
    envvar="DAGSHUB_CLIENT_HOST",
    default=dv.DEFAULT_DAGSHUB_HOST,
    show_default=True,
    help="DagsHub server (env DAGSHUB_CLIENT_HOST).",
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
    )
    click.echo(f"Uploaded {local_dir_path} to {host}/{owner}/{name} at {remote}")


@data.command("download")
@_with(_repository_and_folders("Where to put the files, e.g. data/01_raw/my_jetson_data."))
@click.option("--branch", help="Branch or commit to download (default: the default branch).")
@_DAGSHUB_HOST
@_one_line_errors
def download(
    *,
    owner: str,
    name: str,
    local_dir_path: Path,
    remote_dir_path: str | None,
    branch: str | None,
    host: str,
) -> None:
    """Download a folder of a DagsHub repository (token: DAGSHUB_USER_TOKEN)."""
    remote = dv.download_from_dagshub(
        owner, name, local_dir_path, remote_dir_path=remote_dir_path, branch=branch, host=host
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
