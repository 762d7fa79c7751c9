"""A console log handler that no message can crash and that does not wrap redirected output.

Kedro's ``kedro.logging.RichHandler`` renders every message as rich markup. TensorRT layer
names contain closing-tag lookalikes (``Conv_0 + Relu_1-[/conv1/convolution]``), so a warning
that quotes one raised ``MarkupError`` inside ``logger.warning`` and ended the whole run.
Rich also lays a record out as an 80-column table when the output is not a terminal, wrapping
every long line of a CI log or a redirected ``kedro run > run.log``.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Sequence
from datetime import datetime

import kedro.logging
import rich.logging
from rich import get_console
from rich.console import Console, ConsoleRenderable, Group
from rich.errors import MarkupError
from rich.markup import escape
from rich.text import Text
from rich.traceback import Traceback

#: Console width when the output is a file or a pipe and COLUMNS is not set: effectively
#: no wrapping (a long layer name or file list stays one greppable line).
UNWRAPPED_WIDTH = 100_000
#: Traceback panels are drawn at this width when the output is not a terminal (a traceback
#: box as wide as UNWRAPPED_WIDTH would pad every line with thousands of spaces).
PLAIN_TRACEBACK_WIDTH = 100


def console_for_logging() -> Console:
    """The shared rich console on a terminal or in Jupyter; otherwise a console as wide as
    ``COLUMNS`` (an explicit choice) or :data:`UNWRAPPED_WIDTH`."""
    console = get_console()
    if _interactive(console):
        return console
    columns = os.environ.get("COLUMNS", "")
    return Console(width=int(columns) if columns.isdigit() else UNWRAPPED_WIDTH)


def _interactive(console: Console) -> bool:
    return console.is_terminal or console.is_jupyter


def make_console_logging_safe() -> None:
    """Turn every ``kedro.logging.RichHandler`` of the configured loggers into a
    :class:`RichHandler` (idempotent; ``settings.py`` calls it, after Kedro has applied
    ``conf/logging.yml``)."""
    loggers = [logging.getLogger()]
    loggers += [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if type(handler) is kedro.logging.RichHandler:
                RichHandler.adopt(handler)


class RichHandler(kedro.logging.RichHandler):
    """Kedro's rich handler, made safe for arbitrary message text.

    * Messages are plain text: ``markup`` defaults to ``False`` (Kedro's handler turns it on),
      so brackets in layer names, paths or exceptions print as they are. A record that asks
      for markup (``extra={"markup": True}``) and is not valid markup is printed as plain text.
    * Kedro's ``rich_format`` records (dataset names coloured) keep their colour; the values
      are escaped first.
    * When the output is not a terminal (file, pipe, CI), each record is one unpadded line
      ``[time] LEVEL message  file.py:line`` that is not wrapped (see
      :func:`console_for_logging`).

    Takes every option of ``kedro.logging.RichHandler``. Kedro only builds logging classes of
    ``logging`` and ``kedro.logging`` from ``conf/logging.yml`` (others need
    ``KEDRO_LOGGING_MODULE_ALLOWLIST``), so the project keeps Kedro's class there and
    :func:`make_console_logging_safe` converts its handlers when the project is configured.
    """

    def __init__(self, *args: object, markup: bool = False, **kwargs) -> None:
        super().__init__(*args, markup=markup, **kwargs)
        self._make_safe(keep_console="console" in kwargs)

    @classmethod
    def adopt(cls, handler: kedro.logging.RichHandler) -> RichHandler:
        """``handler`` itself turned into this class: same level, formatter, filters and
        options, markup off, console as :func:`console_for_logging` chooses."""
        handler.__class__ = cls
        handler.markup = False
        handler._make_safe(keep_console=handler.console is not get_console())
        return handler

    def _make_safe(self, keep_console: bool) -> None:
        if not keep_console:
            self.console = console_for_logging()
        self.plain = not _interactive(self.console)
        if self.plain and self.tracebacks_width is None:
            self.tracebacks_width = PLAIN_TRACEBACK_WIDTH

    def emit(self, record: logging.LogRecord) -> None:
        colours = getattr(record, "rich_format", None)
        if colours and isinstance(colours, Sequence) and isinstance(record.args, tuple):
            record = _coloured(record, list(colours))
        # Kedro's emit would colour the unescaped values; rich's does the rest
        rich.logging.RichHandler.emit(self, record)

    def render_message(self, record: logging.LogRecord, message: str) -> ConsoleRenderable:
        try:
            return super().render_message(record, message)
        except MarkupError:  # markup was asked for, but the text is not valid markup
            plain = copy.copy(record)
            plain.markup = False
            return super().render_message(plain, message)

    def render(
        self,
        *,
        record: logging.LogRecord,
        traceback: Traceback | None,
        message_renderable: ConsoleRenderable,
    ) -> ConsoleRenderable:
        if not self.plain:
            return super().render(
                record=record, traceback=traceback, message_renderable=message_renderable
            )
        line = Text.assemble(
            _time_text(record, self._log_render.time_format, self.formatter),
            " ",
            self.get_level_text(record),
            " ",
            message_renderable,  # render_message's Text
        )
        if self._log_render.show_path:
            line.append(f"  {os.path.basename(record.pathname)}:{record.lineno}", "log.path")
        return line if traceback is None else Group(line, traceback)


def _coloured(record: logging.LogRecord, colours: list[str]) -> logging.LogRecord:
    """A copy of a Kedro ``rich_format`` record: the first ``len(colours)`` arguments coloured,
    every text escaped (the record is shared with the other handlers, so it is not changed)."""
    coloured = copy.copy(record)
    args = list(record.args)
    for index, arg in enumerate(args):
        if index < len(colours):
            args[index] = f"[{colours[index]}]{escape(str(arg))}[/{colours[index]}]"
        elif isinstance(arg, str):
            args[index] = escape(arg)
    coloured.args = tuple(args)
    if isinstance(record.msg, str):
        coloured.msg = escape(record.msg)
    coloured.markup = True
    return coloured


def _time_text(record: logging.LogRecord, time_format, formatter: logging.Formatter | None) -> Text:
    """The record's time as the table layout shows it (every line, not only when it changes)."""
    created = datetime.fromtimestamp(record.created)
    if formatter is not None and formatter.datefmt:
        return Text(created.strftime(formatter.datefmt), "log.time")
    if callable(time_format):
        return time_format(created)
    return Text(created.strftime(time_format), "log.time")
