"""Where the project is, whichever folder Kedro runs in (a notebook kernel runs in notebooks/)."""

from __future__ import annotations

from pathlib import Path

from kedro.utils import find_kedro_project


def project_root() -> Path:
    """The absolute project folder above the working directory (the working directory itself
    when none is found)."""
    return (find_kedro_project(Path.cwd()) or Path.cwd()).resolve()


def from_project_root(path: str | Path) -> Path:
    """``path`` as is when absolute, else read from the project root like catalog paths are."""
    path = Path(path)
    return path if path.is_absolute() else project_root() / path


#: Where every raw dataset lives: a dataset name is one folder directly in here.
RAW_DATA_DIR = "data/01_raw"


def checked_dataset_name(name: object, kind: str = "raw_dataset") -> str:
    """``name`` (the ``raw_dataset`` or ``predict_dataset`` parameter, named by ``kind``) as the
    name of a folder directly under ``data/01_raw``.

    Catalog paths are ``data/01_raw/<name>``, so ``../../x`` or ``/abs/x`` would read (and
    write beside) data outside the project's raw folder.

    Raises:
        ValueError: a path (``/``, ``\\``, ``..``, ``.``), an empty name, or not a name at all.
    """
    if isinstance(name, int) and not isinstance(name, bool):
        name = str(name)  # --params raw_dataset=2024 arrives as an integer
    if (
        not isinstance(name, str)
        or name in ("", ".", "..")
        or any(character in name for character in "/\\\x00")
    ):
        raise ValueError(
            f"{kind}={name!r} is not a dataset name: give the name of a folder directly under "
            f"{RAW_DATA_DIR}/ (for example --params {kind}=h200_isolated_v1), not a path; "
            f"put or link the dataset folder into {RAW_DATA_DIR}/ first"
        )
    return name
