"""A progress bar with an honest ETA, on stderr.

The ETA is the remaining count times the mean duration of the items done *in this session*
(each sweep configuration is measured the same way, so the mean is the right estimator; it
starts from the plan's estimate until the first item is done). On a terminal the bar redraws
in place; in a log (not a TTY) it prints one line per item.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, Callable, TextIO


def format_duration(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds) or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class Progress:
    def __init__(
        self,
        total: int,
        *,
        done: int = 0,
        estimate_s: float | None = None,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        width: int = 30,
    ) -> None:
        self.total, self.done = total, done
        self.estimate_s = estimate_s
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.width = width
        self.durations: list[float] = []
        self._started: float | None = None
        self._current = ""
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def start(self, name: str) -> None:
        self._current = name
        self._started = self.clock()
        if self.tty:
            self._draw()

    def finish(self, seconds: float | None = None) -> None:
        if seconds is None and self._started is not None:
            seconds = self.clock() - self._started
        if seconds is not None:
            self.durations.append(seconds)
        self.done += 1
        self._draw()

    def eta_s(self) -> float | None:
        per_item = sum(self.durations) / len(self.durations) if self.durations else self.estimate_s
        return None if per_item is None else per_item * (self.total - self.done)

    def line(self) -> str:
        fraction = self.done / self.total if self.total else 1.0
        filled = int(round(fraction * self.width))
        per_item = sum(self.durations) / len(self.durations) if self.durations else None
        rate = f"{per_item:.1f} s/config" if per_item is not None else "first config"
        return (
            f"[{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} "
            f"({fraction:.0%}) {self._current}  {rate}  ETA {format_duration(self.eta_s())}"
        )

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self) -> None:
        text = self.line()
        if self.tty:
            self.stream.write("\r\033[K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
