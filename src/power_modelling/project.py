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
