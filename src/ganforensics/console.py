"""Progress and messages go to stderr; results go to stdout."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

T = TypeVar("T")

err_console = Console(stderr=True, highlight=False)


def progress_enabled() -> bool:
    """Progress bars are off when GANFORENSICS_PROGRESS=0 (tests, CI logs)."""
    return os.environ.get("GANFORENSICS_PROGRESS", "1") != "0"


def make_progress() -> Progress:
    """A rich Progress drawing on stderr."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}", markup=False),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=not progress_enabled(),
        transient=False,
    )


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a progress bar on stderr."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with make_progress() as prog:
        task = prog.add_task(description, total=total, info="")
        for item in items:
            yield item
            prog.advance(task)


def info(message: str) -> None:
    """A status line on stderr (printed as is: brackets in paths are not markup)."""
    err_console.print(message, markup=False, soft_wrap=True)


def warn(message: str) -> None:
    """A warning line on stderr (the message is printed as is)."""
    err_console.print(Text("warning: ", style="yellow") + Text(message), soft_wrap=True)


def error(message: str) -> None:
    """An error line on stderr (the message is printed as is)."""
    err_console.print(Text("error: ", style="red") + Text(message), soft_wrap=True)


def out(text: str) -> None:
    """A result line on stdout."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()
