"""Progress while a long command runs: live on a terminal, a plain line now and then when piped.

rich draws the live display and is imported only here, only when there is a terminal
to draw on, so `storage get` never pays for it. rich itself honours ``NO_COLOR``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from storage_core.cli._output import note

PLAIN_EVERY = 5.0
"""Seconds between two progress lines when stderr is not a terminal (a log keeps a trace)."""


def on_terminal() -> bool:
    """Whether stderr is a terminal a person watches (so live displays and colour are welcome)."""
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


class Progress:
    """Counts *unit* done out of *total* (None: unknown) and shows the count and the rate."""

    def __init__(
        self,
        what: str,
        total: int | None = None,
        *,
        unit: str = "keys",
        live: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.total = total
        self.unit = unit
        self.done = 0
        self._live = on_terminal() if live is None else live
        self._clock = clock
        self._start = self._last_line = clock()
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Self:
        if self._live:
            # Here only, and only on a terminal: rich costs a start-up a plain command must not pay.
            from rich.console import Console  # noqa: PLC0415
            from rich.progress import (  # noqa: PLC0415
                BarColumn,
                MofNCompleteColumn,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as Bar  # noqa: PLC0415

            self._bar = Bar(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.what, total=self.total, rate="")
        self._start = self._last_line = self._clock()
        return self

    def advance(self, count: int) -> None:
        self.done += count
        if self._bar is not None:
            self._bar.update(self._task, advance=count, rate=f"{self.rate:,.0f} {self.unit}/s")
            return
        now = self._clock()
        if now - self._last_line >= PLAIN_EVERY:
            self._last_line = now
            note(self.line())

    def log(self, message: str) -> None:
        """An event worth a line of its own, above the live display or as a plain line."""
        if self._bar is not None:
            self._bar.console.print(message, markup=False, highlight=False)
        else:
            note(message)

    @property
    def elapsed(self) -> float:
        return self._clock() - self._start

    @property
    def rate(self) -> float:
        """Units per second so far."""
        elapsed = self.elapsed
        return self.done / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        of = "" if self.total is None else f" of {self.total}"
        return f"{self.what}: {self.done}{of} {self.unit} in {self.elapsed:.1f} s ({self.rate:,.0f} {self.unit}/s)"

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
