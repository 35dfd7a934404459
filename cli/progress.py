"""Progress of long work on the operator's screen: a Rich bar on a terminal, plain lines elsewhere.

The bar is drawn on stderr, so stdout keeps only the command's result. When stderr is not a
terminal (a pipe, a log file, the tests), nothing is drawn and ``note`` writes the same plain lines
the command always printed: scripts that read them see no change.
"""
from __future__ import annotations

import sys
from types import TracebackType

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskProgressColumn,
                           TextColumn, TimeElapsedColumn, TimeRemainingColumn)


def stderr_console() -> Console:
    """A console on this moment's sys.stderr (Rich decides if it is a terminal: isatty, TTY_*, FORCE_*)."""
    return Console(file=sys.stderr, highlight=False)


def progress_bar(console: Console) -> Progress:
    """The look of ``sohoa``'s bars: what, bar, done/total, %, elapsed, remaining; gone when done."""
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TaskProgressColumn(), TimeElapsedColumn(), TimeRemainingColumn(), console=console,
                    transient=True, redirect_stdout=False)  # stdout stays the result, even piped to a file


class Bar:
    """``with Bar(total, "Ký số (signing)") as bar: … bar.note(line); bar.advance()``.

    ``live`` is True when a bar is drawn; with one item or fewer nothing is drawn (nothing to follow).
    """

    def __init__(self, total: int | None, description: str, *, console: Console | None = None) -> None:
        self.console = console or stderr_console()
        self.live = self.console.is_terminal and (total is None or total > 1)
        self._progress = progress_bar(self.console) if self.live else None
        self._task = self._progress.add_task(description, total=total) if self._progress else None

    def __enter__(self) -> Bar:
        if self._progress:
            self._progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress:
            self._progress.stop()

    def advance(self, steps: int = 1) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, steps)

    def note(self, line: str) -> None:
        """One line for the operator on stderr: above the bar on a terminal, as a plain line elsewhere."""
        if self._progress:
            self._progress.console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            print(line, file=sys.stderr, flush=True)
