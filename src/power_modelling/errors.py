"""Errors that are the user's input, not the program's: reported in one line, no traceback."""

from __future__ import annotations

import traceback


class InputError(ValueError):
    """Bad or missing input data or parameters; the message names what and how to fix it."""


def expected_error(error: BaseException) -> BaseException | None:
    """The error (or the one it was raised from) that is an expected input error: an
    ``InputError``, or a ``ValueError`` raised by the project's own code, which reports bad
    input that way (naming the file, line or layer); ``None`` for anything else (a bug)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, InputError):
            return current
        if isinstance(current, ValueError):
            frames = traceback.extract_tb(current.__traceback__)
            if frames and "power_modelling" in frames[-1].filename.replace("\\", "/"):
                return current
        current = current.__cause__ or current.__context__
    return None
