"""Version raw datasets with DVC (and optionally mirror them to DagsHub).

The bundled ``data/01_raw/h200_isolated_v1`` is committed to git so ``kedro run`` works out
of the box. New measurement campaigns are large: track them with DVC instead, push them to
the default remote (a local directory beside the checkout, ``../power-modelling-dvc-storage``)
or to any remote you add (``dvc remote add -d dagshub https://dagshub.com/<user>/<repo>.dvc``).

    python -m power_modelling.data_versioning add my_jetson_data   # dvc add + push
    python -m power_modelling.data_versioning pull                 # fetch all tracked data
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

RAW_DIR = Path("data") / "01_raw"


def _repo(project_path: Path):
    from dvc.repo import Repo  # noqa: PLC0415 (heavy import, only when used)

    return Repo(str(project_path))


def track_raw_dataset(dataset: str, project_path: Path = Path(), remote: str | None = None) -> Path:
    """``dvc add`` ``data/01_raw/<dataset>`` and push it; returns the ``.dvc`` file to commit."""
    target = project_path / RAW_DIR / dataset
    if not target.is_dir():
        raise FileNotFoundError(f"No raw dataset folder {target} (expected data/01_raw/<name>/)")
    repo = _repo(project_path)
    repo.add(str(target))
    pushed = repo.push(targets=[str(target)], remote=remote)
    logger.info("Tracked %s with DVC and pushed %s file(s)", target, pushed)
    return target.with_name(target.name + ".dvc")


def pull(project_path: Path = Path(), remote: str | None = None) -> None:
    """``dvc pull``: fetch every DVC-tracked dataset from the remote."""
    _repo(project_path).pull(remote=remote)


def upload_to_dagshub(dataset: str, repo: str, project_path: Path = Path()) -> None:
    """Upload ``data/01_raw/<dataset>`` to a DagsHub repository (``owner/name``) with the
    dagshub client; needs network access and ``DAGSHUB_USER_TOKEN`` (or a prior login)."""
    from dagshub.upload import Repo  # noqa: PLC0415 (network client, only when asked)

    owner, name = repo.split("/", 1)
    folder = project_path / RAW_DIR / dataset
    Repo(owner, name).upload(
        local_path=str(folder), remote_path=f"data/01_raw/{dataset}", versioning="dvc"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m power_modelling.data_versioning")
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="dvc add + push data/01_raw/<dataset>")
    add.add_argument("dataset")
    add.add_argument("--remote")
    pull_cmd = sub.add_parser("pull", help="dvc pull every tracked dataset")
    pull_cmd.add_argument("--remote")
    up = sub.add_parser("dagshub-upload", help="upload data/01_raw/<dataset> to DagsHub")
    up.add_argument("dataset")
    up.add_argument("repo", help="owner/name of the DagsHub repository")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if args.command == "add":
        dvc_file = track_raw_dataset(args.dataset, remote=args.remote)
        print(f"Now commit {dvc_file} and data/01_raw/.gitignore")
    elif args.command == "pull":
        pull(remote=args.remote)
    else:
        upload_to_dagshub(args.dataset, args.repo)


if __name__ == "__main__":
    main()
