"""Version raw datasets with DVC and exchange them with DagsHub.

The bundled ``data/01_raw/h200_isolated_v1`` is plain git so ``kedro run`` works out of the
box; new measurement campaigns are tracked with DVC (``kedro data add <name>``) and pushed to
the default remote (a local directory beside the checkout) or to any remote you add, such as
DagsHub's (``https://dagshub.com/<owner>/<repo>.dvc``). ``kedro data upload|download`` mirror
the reference tool's ``data_version.py`` with the ``dagshub`` client. The command line is in
``power_modelling.cli``; everything here raises :class:`DataCommandError` with one clear line.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

logger = logging.getLogger(__name__)

RAW_DIR = Path("data") / "01_raw"
DEFAULT_DAGSHUB_HOST = "https://dagshub.com"
TOKEN_VARIABLE = "DAGSHUB_USER_TOKEN"
VERSIONING_CHOICES = ("dvc", "git", "auto")


class DataCommandError(Exception):
    """A data command failed for a reason the user can act on (one line, no traceback)."""


# --- DVC --------------------------------------------------------------------------------------


def _line(error: Exception) -> str:
    """DVC's multi-line messages (error plus indented hints) as one line."""
    return " ".join(str(error).split())


def _dvc_repo(project_path: Path):
    from dvc.repo import Repo  # noqa: PLC0415 (heavy import, only when used)

    return Repo(str(project_path))


def track_raw_dataset(dataset: str, project_path: Path = Path(), remote: str | None = None) -> Path:
    """``dvc add`` ``data/01_raw/<dataset>`` and push it; returns the ``.dvc`` file to commit."""
    target = project_path / RAW_DIR / dataset
    if not target.is_dir():
        raise DataCommandError(
            f"no raw dataset folder {target} (expected data/01_raw/<name>/ with one folder per "
            "model, see docs/raw-data-format.md)"
        )
    from dvc.exceptions import DvcException  # noqa: PLC0415

    dvc_file = target.with_name(target.name + ".dvc")
    try:
        repo = _dvc_repo(project_path)
        repo.add(str(target))
        # push exactly the pointer just written (not every tracked dataset)
        pushed = repo.push(targets=[str(dvc_file)], remote=remote)
    except DvcException as error:
        raise DataCommandError(f"DVC could not track or push {target}: {_line(error)}") from error
    logger.info("Tracked %s with DVC and pushed %s file(s)", target, pushed)
    return dvc_file


def pull(
    project_path: Path = Path(), dataset: str | None = None, remote: str | None = None
) -> None:
    """``dvc pull`` one tracked raw dataset, or every tracked dataset when ``dataset`` is None."""
    from dvc.exceptions import DvcException  # noqa: PLC0415

    targets = [str(project_path / RAW_DIR / f"{dataset}.dvc")] if dataset else None
    if targets and not Path(targets[0]).is_file():
        raise DataCommandError(f"{targets[0]} does not exist: {dataset} is not tracked by DVC")
    try:
        _dvc_repo(project_path).pull(targets=targets, remote=remote)
    except DvcException as error:
        raise DataCommandError(f"DVC pull failed: {_line(error)}") from error


# --- which version of a raw dataset a run used -------------------------------------------------


def _git(folder: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:  # no git on this machine
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def dataset_version(folder: Path) -> dict[str, str]:
    """Identify a raw dataset folder (``data/01_raw/<name>``): its DVC hash when it is
    DVC-tracked (``<name>.dvc`` beside it), else the last git commit that changed it (and
    whether the working copy differs), else ``unversioned``."""
    folder = Path(folder)
    info = {"raw_dataset": folder.name}
    dvc_file = folder.with_name(folder.name + ".dvc")
    if dvc_file.is_file():
        outs = (yaml.safe_load(dvc_file.read_text()) or {}).get("outs") or [{}]
        info["raw_dataset.versioning"] = "dvc"
        info["raw_dataset.dvc_md5"] = str(outs[0].get("md5", "unknown"))
        return info
    commit = _git(folder.parent, "log", "-1", "--format=%H", "--", folder.name)
    if commit:
        changes = _git(folder.parent, "status", "--porcelain", "--", folder.name)
        info["raw_dataset.versioning"] = "git"
        info["raw_dataset.git_commit"] = commit
        info["raw_dataset.git_dirty"] = str(bool(changes)).lower()
    else:
        info["raw_dataset.versioning"] = "unversioned"
    return info


# --- DagsHub ------------------------------------------------------------------------------------


def dagshub_token() -> str:
    """The DagsHub token from ``DAGSHUB_USER_TOKEN`` (never an interactive OAuth login)."""
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if not token:
        raise DataCommandError(
            f"{TOKEN_VARIABLE} is not set: create a token in your DagsHub user settings "
            f"(Tokens) and `export {TOKEN_VARIABLE}=<token>`"
        )
    return token


@contextmanager
def _dagshub_errors(action: str, repo: str, host: str) -> Iterator[None]:
    """Turn the dagshub client's exceptions into one line naming the repository and host."""
    import httpx  # noqa: PLC0415
    from dagshub.common.api.repo import (  # noqa: PLC0415
        BranchNotFoundError,
        PathNotFoundError,
        RepoNotFoundError,
    )

    try:
        yield
    except httpx.HTTPStatusError as error:
        status = error.response.status_code
        hint = " (check DAGSHUB_USER_TOKEN)" if status in (401, 403) else ""
        raise DataCommandError(f"{action} {repo} failed: {host} answered {status}{hint}") from error
    except httpx.TransportError as error:
        raise DataCommandError(f"{action} {repo} failed: cannot reach {host} ({error})") from error
    except OSError as error:
        raise DataCommandError(f"{action} {repo} failed: {error}") from error
    except RepoNotFoundError as error:
        raise DataCommandError(
            f"{action} failed: repository {repo} not found on {host} (or the token cannot see it)"
        ) from error
    except (BranchNotFoundError, PathNotFoundError) as error:
        raise DataCommandError(f"{action} {repo} failed: {error}") from error


def upload_to_dagshub(
    owner: str,
    name: str,
    local_dir_path: Path,
    *,
    remote_dir_path: str | None = None,
    branch: str | None = None,
    commit_message: str = "Add raw data",
    versioning: str = "dvc",
    host: str = DEFAULT_DAGSHUB_HOST,
    token: str | None = None,
) -> str:
    """Upload a local folder to ``<owner>/<name>`` on DagsHub; returns the remote path."""
    local_dir_path = Path(local_dir_path)
    if not local_dir_path.is_dir():
        raise DataCommandError(f"local folder {local_dir_path} does not exist")
    if versioning not in VERSIONING_CHOICES:
        raise DataCommandError(f"versioning must be one of {VERSIONING_CHOICES}, not {versioning}")
    token = token or dagshub_token()
    remote = remote_dir_path or local_dir_path.as_posix()
    from dagshub.common import config  # noqa: PLC0415 (network client, only when asked)

    config.set_host(host)  # dagshub.upload.Repo reads the host from its global config
    from dagshub.upload import Repo  # noqa: PLC0415

    with _dagshub_errors("upload to", f"{owner}/{name}", host):
        Repo(owner, name, token=token, branch=branch).upload(
            local_path=str(local_dir_path),
            remote_path=remote,
            commit_message=commit_message,
            versioning=versioning,
        )
    logger.info("Uploaded %s to %s/%s:%s (%s)", local_dir_path, owner, name, remote, versioning)
    return remote


def download_from_dagshub(
    owner: str,
    name: str,
    local_dir_path: Path,
    *,
    remote_dir_path: str | None = None,
    branch: str | None = None,
    host: str = DEFAULT_DAGSHUB_HOST,
    token: str | None = None,
) -> str:
    """Download ``remote_dir_path`` (default: ``local_dir_path``) of ``<owner>/<name>`` (at
    ``branch`` or a commit) into ``local_dir_path``; returns the remote path."""
    token = token or dagshub_token()
    remote = remote_dir_path or Path(local_dir_path).as_posix()
    from dagshub.auth.token_auth import EnvVarDagshubToken  # noqa: PLC0415
    from dagshub.common.api.repo import RepoAPI  # noqa: PLC0415

    with _dagshub_errors("download from", f"{owner}/{name}", host):
        api = RepoAPI(f"{owner}/{name}", host=host, auth=EnvVarDagshubToken(token, host))
        api.download(remote, str(local_dir_path), revision=branch, redownload=True)
    logger.info("Downloaded %s/%s:%s into %s", owner, name, remote, local_dir_path)
    return remote
