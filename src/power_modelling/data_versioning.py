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
import re
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from urllib.parse import quote, urlsplit

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
    """Turn the dagshub client's and httpx's exceptions into one line naming the repository
    and host (401/403: the token)."""
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
        raise DataCommandError(
            f"{action} {repo} failed: {host} answered {status}{_status_hint(status)}"
        ) from error
    except httpx.TransportError as error:
        raise DataCommandError(f"{action} {repo} failed: cannot reach {host} ({error})") from error
    except OSError as error:
        raise DataCommandError(f"{action} {repo} failed: {error}") from error
    except RepoNotFoundError as error:
        raise _repo_not_found(action, repo, host) from error
    except (BranchNotFoundError, PathNotFoundError) as error:
        raise DataCommandError(f"{action} {repo} failed: {error}") from error
    except RuntimeError as error:  # the dagshub client's "Got status code 401 when ..."
        status = re.search(r"status code (\d{3})", str(error))
        hint = _status_hint(int(status.group(1))) if status else ""
        raise DataCommandError(f"{action} {repo} failed: {error}{hint}") from error


def _status_hint(status: int) -> str:
    return f" (check {TOKEN_VARIABLE})" if status in (401, 403) else ""


def _repo_not_found(action: str, repo: str, host: str) -> DataCommandError:
    return DataCommandError(
        f"{action} failed: repository {repo} not found on {host} (or the token cannot see it)"
    )


def checked_host(host: str, allow_http: bool = False) -> str:
    """``host`` without a trailing slash, refused unless it is an https URL (or plain http with
    ``allow_http``): the token is sent to it."""
    parts = urlsplit(host)
    if parts.hostname and (parts.scheme == "https" or (parts.scheme == "http" and allow_http)):
        return host.rstrip("/")
    if parts.scheme == "http":
        raise DataCommandError(
            f"refusing to send {TOKEN_VARIABLE} over plain http to {host}: use an https:// "
            "host, or --allow-http for a trusted local server"
        )
    raise DataCommandError(
        f"--host must be an https:// URL such as {DEFAULT_DAGSHUB_HOST}, not {host!r}"
    )


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
    allow_http: bool = False,
) -> str:
    """Upload a local folder to ``<owner>/<name>`` on DagsHub; returns the remote path."""
    local_dir_path = Path(local_dir_path)
    if not local_dir_path.is_dir():
        raise DataCommandError(f"local folder {local_dir_path} does not exist")
    if versioning not in VERSIONING_CHOICES:
        raise DataCommandError(f"versioning must be one of {VERSIONING_CHOICES}, not {versioning}")
    host = checked_host(host, allow_http)
    token = token or dagshub_token()
    remote = remote_dir_path or local_dir_path.as_posix()
    repo = f"{owner}/{name}"
    action = "upload to"
    with _dagshub_errors(action, repo, host), _DagsHubApi(host, repo, token, allow_http) as api:
        api.default_branch(action)  # a bad token or repository: one line, before uploading
    from dagshub.common import config  # noqa: PLC0415 (network client, only when asked)

    config.set_host(host)  # dagshub.upload.Repo reads the host from its global config
    from dagshub.upload import Repo  # noqa: PLC0415

    with _dagshub_errors(action, repo, host):
        Repo(owner, name, token=token, branch=branch).upload(
            local_path=str(local_dir_path),
            remote_path=remote,
            commit_message=commit_message,
            versioning=versioning,
        )
    logger.info("Uploaded %s to %s:%s (%s)", local_dir_path, repo, remote, versioning)
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
    allow_http: bool = False,
) -> str:
    """Download ``remote_dir_path`` (default: ``local_dir_path``) of ``<owner>/<name>`` (at
    ``branch`` or a commit) into ``local_dir_path``; returns the remote path.

    The listing is DagsHub's content API (what ``dagshub``'s ``RepoAPI.download`` reads), walked
    here so that what the server names is checked before anything is written: every file
    lands inside ``local_dir_path`` (a ``..``, an absolute path, or a symbolic link out of the
    folder and nothing is downloaded), and the token goes only to ``host``, never to another
    host named in a download URL or a redirect."""
    host = checked_host(host, allow_http)
    token = token or dagshub_token()
    remote = (remote_dir_path or Path(local_dir_path).as_posix()).strip("/")
    repo = f"{owner}/{name}"
    root = Path(local_dir_path)
    action = "download from"
    with _dagshub_errors(action, repo, host), _DagsHubApi(host, repo, token, allow_http) as api:
        revision = branch or api.default_branch(action)
        # every path checked before the first file is written
        files = [
            (_inside(root, relative, path), url)
            for path, relative, url in api.files(remote, revision)
        ]
        for target, url in files:
            api.download(url, target)
    logger.info("Downloaded %s file(s) of %s:%s into %s", len(files), repo, remote, root)
    return remote


# --- DagsHub's repository API, with the paths and hosts it names checked ----------------------

MAX_REDIRECTS = 5
_DEFAULT_PORTS = {"https": 443, "http": 80}


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return (
        parts.scheme,
        (parts.hostname or "").lower(),
        parts.port or _DEFAULT_PORTS.get(parts.scheme),
    )


def _inside(root: Path, relative: str, named: str | None = None) -> Path:
    """``root / relative``, refused unless it stays inside ``root`` once resolved (``..``,
    absolute paths, and symbolic links that lead out of the folder); ``named``: the path as
    the server named it, for the message."""
    named = relative if named is None else named
    parts = relative.split("/")
    if relative.startswith("/") or any(
        part in ("", ".", "..") or "\\" in part or "\x00" in part for part in parts
    ):
        raise DataCommandError(
            f"refusing to download {named!r}: the server named a path outside {root} "
            "(nothing was downloaded)"
        )
    target = root.joinpath(*parts)
    if not target.resolve().is_relative_to(root.resolve()):
        raise DataCommandError(
            f"refusing to download {named!r}: {target} leads outside {root} through a "
            "symbolic link (nothing was downloaded)"
        )
    return target


class _DagsHubApi:
    """The few calls of DagsHub's repository API that a download needs, over one httpx client
    that follows redirects itself: the bearer token is attached only to requests for ``host``,
    and only https URLs are fetched unless ``allow_http``."""

    def __init__(self, host: str, repo: str, token: str, allow_http: bool) -> None:
        import httpx  # noqa: PLC0415

        self.host, self.repo, self.allow_http = host, repo, allow_http
        self._token = token
        self.api = f"{host}/api/v1/repos/{repo}"
        self._client = httpx.Client(timeout=float(os.environ.get("DAGSHUB_HTTP_TIMEOUT", "30")))

    def __enter__(self) -> _DagsHubApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    @contextmanager
    def _get(self, url: str) -> Iterator:
        """A streamed GET of ``url``, following redirects."""
        for _ in range(MAX_REDIRECTS + 1):
            self._check_scheme(url)
            # the token only for the configured host: a listing or a redirect can name any URL
            same_host = _origin(url) == _origin(self.host)
            headers = {"Authorization": f"Bearer {self._token}"} if same_host else {}
            response = self._client.send(
                self._client.build_request("GET", url, headers=headers), stream=True
            )
            if not response.is_redirect:
                break
            response.close()
            url = str(response.next_request.url)
        else:
            raise DataCommandError(f"refusing to fetch {url}: more than {MAX_REDIRECTS} redirects")
        try:
            yield response
        finally:
            response.close()

    def _check_scheme(self, url: str) -> str:
        scheme = urlsplit(url).scheme
        if scheme != "https" and not (scheme == "http" and self.allow_http):
            raise DataCommandError(f"refusing to fetch {url}: not an https URL")
        return url

    def _json(self, url: str, action: str, not_found: DataCommandError) -> object:
        with self._get(url) as response:
            if response.status_code == 404:
                raise not_found
            _raise_for_status(response, action, self.repo)
            response.read()
            try:
                return response.json()
            except ValueError as error:
                raise DataCommandError(
                    f"{action} {self.repo} failed: {url} did not answer JSON"
                ) from error

    def default_branch(self, action: str) -> str:
        """The repository's default branch (also: does the repository exist, is the token
        accepted)."""
        info = self._json(self.api, action, _repo_not_found(action, self.repo, self.host))
        branch = info.get("default_branch") if isinstance(info, dict) else None
        if not isinstance(branch, str) or not branch:
            raise DataCommandError(f"{action} {self.repo} failed: no default_branch in {self.api}")
        return branch

    def files(self, remote: str, revision: str) -> list[tuple[str, str, str]]:
        """Every file under ``remote`` as (its path in the repository, that path relative to
        ``remote``, download URL), listed folder by folder (the file itself when ``remote`` is
        one)."""
        files, folders, listed = [], [remote], {remote}
        while folders:
            folder = folders.pop(0)
            url = f"{self.api}/content/{quote(revision, safe='')}/{quote(folder)}"
            not_found = DataCommandError(
                f"download from {self.repo} failed: no path {folder!r} at {revision!r}"
            )
            entries = self._json(url, "download from", not_found)
            for entry in entries if isinstance(entries, list) else [entries]:
                path, kind = _entry_fields(entry, url)
                if kind == "file" and path == remote:
                    relative = PurePosixPath(path).name
                elif not remote or path.startswith(f"{remote}/"):
                    relative = path[len(remote) + 1 :] if remote else path
                else:
                    raise DataCommandError(
                        f"refusing to download {path!r}: the listing of {folder!r} names a "
                        f"path outside {remote!r} (nothing was downloaded)"
                    )
                if kind == "file":
                    raw = f"{self.api}/raw/{quote(revision, safe='')}/{quote(path)}"
                    named = entry.get("download_url")
                    file_url = named if isinstance(named, str) and named else raw
                    files.append((path, relative, self._check_scheme(file_url)))
                elif kind == "dir" and entry.get("versioning") != "bucket" and path not in listed:
                    listed.add(path)
                    folders.append(path)
        return files

    def download(self, url: str, target: Path) -> None:
        """``url`` into ``target`` through a temporary file renamed over it: no half-written
        file, and a symbolic link at ``target`` is replaced, not written through."""
        target.parent.mkdir(parents=True, exist_ok=True)
        with self._get(url) as response:
            _raise_for_status(response, "download from", self.repo)
            handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
            try:
                with os.fdopen(handle, "wb") as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
                os.replace(temporary, target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise


def _entry_fields(entry: object, url: str) -> tuple[str, str]:
    """``path`` and ``type`` (file, dir, ...) of one content-API entry."""
    if not isinstance(entry, dict) or not all(
        isinstance(entry.get(key), str) for key in ("path", "type")
    ):
        raise DataCommandError(f"{url}: unexpected listing entry {str(entry)[:200]!r}")
    return entry["path"], entry["type"]


def _raise_for_status(response, action: str, repo: str) -> None:
    if response.status_code >= 400:
        scheme, host, port = _origin(str(response.url))
        raise DataCommandError(
            f"{action} {repo} failed: {scheme}://{host}:{port} answered {response.status_code} "
            f"for {response.url.path}{_status_hint(response.status_code)}"
        )
