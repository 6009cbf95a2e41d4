"""Stage timing for the experiments: one line per stage, or a bar on a terminal."""

from __future__ import annotations

import contextlib
import sys
import time


class Progress:
    """Stage timing with a progress bar per stage on an interactive stderr.

    Bars are drawn with ``rich`` (installed with PyMC) when stderr is a
    terminal; otherwise each stage only prints one line with its duration,
    so logs stay readable.
    """

    def __init__(self, stream=None, bars=None):
        self.stream = sys.stderr if stream is None else stream
        if bars is None:
            bars = bool(getattr(self.stream, "isatty", lambda: False)())
        self.bars = bars and self._rich_available()
        self.durations: dict[str, float] = {}

    @staticmethod
    def _rich_available() -> bool:
        try:
            import rich.progress  # noqa: F401
        except ImportError:
            return False
        return True

    def say(self, message: str) -> None:
        print(message, file=self.stream, flush=True)

    @contextlib.contextmanager
    def stage(self, key: str, description: str, total: int | None = None, own_bar=False):
        """Time a stage; yields ``advance()`` to move its bar by one step.

        ``own_bar``: the work draws its own bar (the sampler's), so none is
        drawn here, only the start line.
        """
        start = time.perf_counter()
        if not self.bars or own_bar:
            self.say(f"- {description} ...")
            yield lambda: None
        else:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import Progress as RichProgress

            columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn()]
            if total is not None:
                columns.append(MofNCompleteColumn())
            columns.append(TimeElapsedColumn())
            with RichProgress(
                *columns, console=Console(file=self.stream), transient=True
            ) as bar:
                task = bar.add_task(description, total=total)
                yield lambda: bar.advance(task)
        elapsed = time.perf_counter() - start
        self.durations[key] = elapsed
        self.say(f"  {description}: done in {fmt_seconds(elapsed)}")


def fmt_seconds(seconds: float) -> str:
    """``"12.3 s"``, or ``"2 min 05.0 s"`` from a minute on."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {seconds % 60:04.1f} s"
