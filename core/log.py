"""The only way core code talks to people: a logger and progress bars, both on stderr so that
stdout stays clean for results (`--format jsonl | jq`)."""
from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

T = TypeVar("T")
console = Console(stderr=True, soft_wrap=True)
_logger = logging.getLogger("det")
if not _logger.handlers:
    _logger.addHandler(RichHandler(console=console, show_path=False, show_time=False, markup=False))
    _logger.setLevel(logging.INFO)
    _logger.propagate = False


def get_logger() -> logging.Logger:
    return _logger


def make_progress(transient: bool = False) -> Progress:
    """A rich progress bar with count, elapsed time and ETA, drawn on stderr."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        transient=transient,
        disable=not sys.stderr.isatty() and not _force_progress(),
    )


def make_download_progress() -> Progress:
    """A rich progress bar in bytes (size, speed, ETA) for downloads, drawn on stderr."""
    from rich.progress import DownloadColumn, TransferSpeedColumn

    return Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), DownloadColumn(),
                    TransferSpeedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console,
                    disable=not sys.stderr.isatty() and not _force_progress())


def _force_progress() -> bool:
    import os

    return os.environ.get("DET_PROGRESS") == "1"


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a progress bar (ETA included)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with make_progress() as progress:
        task = progress.add_task(description, total=total, info="")
        for item in items:
            yield item
            progress.advance(task)
