"""One Rich progress bar per long step (decoding, explaining), quiet when nobody watches.

Lightning's RichProgressBar keeps its live display open until teardown, and Rich allows one live
display at a time: a step that runs inside it (the post-fit explanations) adds its task to that
display; a step outside it (decoding the cache) opens a transient display of its own. Outside a
terminal Rich draws nothing until the end, so logs get no line per update.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

Advance = Callable[[int], None]


def _ignore(count: int = 1) -> None:
    """Advance of a disabled bar."""


def _columns() -> tuple:
    return (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn())


@contextmanager
def progress_bar(total: int, description: str, enabled: bool = True, host: Progress | None = None) -> Iterator[Advance]:
    """Yields `advance(count)`. With a live `host` (e.g. Lightning's `RichProgressBar.progress`) the bar
    is a task of that display, removed at the end; otherwise a transient display of its own."""
    if not enabled or total <= 0:
        yield _ignore
        return
    if host is not None and host.live.is_started:
        task = host.add_task(description, total=total)
        try:
            yield lambda count=1: host.advance(task, count)
        finally:
            host.remove_task(task)
        return
    with Progress(*_columns(), console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda count=1: progress.advance(task, count)
