"""The one way to turn many image files (paths or manifest rows) into decoded images.

Every command and stage that decodes a batch goes through `load_images` (all at once) or
`iter_decoded` (streaming, bounded look-ahead). The bad-file policy is the same everywhere:

- each bad file gets an error row `(path, reason)` with `read_image`'s one-line reason
  (a manifest row that already carries an `error` keeps it and is not decoded again);
- one summary warning names the first `NAMED_BAD_FILES` bad files and counts the rest;
- the count is returned (`LoadedImages.n_bad`) so that a command can exit 1.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ganforensics.console import track, warn
from ganforensics.errors import ImageDecodeError
from ganforensics.io.images import load_rgb

DEFAULT_WORKERS = 2
"""Decoding threads (Pillow releases the GIL while decoding)."""
NAMED_BAD_FILES = 3
"""How many bad files the summary warning names."""

ImageSource = Sequence[str | os.PathLike[str]] | pd.DataFrame
"""Paths, or manifest rows with an `abspath` column (and optionally `error`)."""


def decode_or_reason(path: str | os.PathLike[str]) -> tuple[np.ndarray | None, str | None]:
    """`(array, None)` for a good file, `(None, one-line reason)` for a bad one; never raises."""
    try:
        return load_rgb(path), None
    except ImageDecodeError as exc:
        return None, exc.reason
    except Exception as exc:  # noqa: BLE001 - one strange file never stops a batch
        first = str(exc).splitlines()[0] if str(exc) else ""
        return None, f"cannot decode: {type(exc).__name__}: {first}".rstrip(": ")


def iter_decoded(
    paths: Sequence[str | os.PathLike[str]],
    *,
    workers: int = DEFAULT_WORKERS,
    ahead: int = 128,
) -> Iterator[tuple[int, np.ndarray | None, str | None]]:
    """Decode `paths` in order; yields `(index, array or None, reason or None)`.

    `workers` threads decode at most `ahead` images ahead of the consumer, so memory stays flat
    on large folders.
    """
    paths = list(paths)
    if workers <= 1:
        for i, p in enumerate(paths):
            yield (i, *decode_or_reason(p))
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future] = deque()
        nxt = 0
        while nxt < len(paths) and len(pending) < max(1, ahead):
            pending.append(pool.submit(decode_or_reason, paths[nxt]))
            nxt += 1
        done = 0
        while pending:
            arr, err = pending.popleft().result()
            yield done, arr, err
            done += 1
            if nxt < len(paths):
                pending.append(pool.submit(decode_or_reason, paths[nxt]))
                nxt += 1


@dataclass
class LoadedImages:
    """Decoded images in input order, with the error rows of the inputs that failed."""

    images: list[np.ndarray]
    keep: list[int]
    """Input positions of `images` (the rows of a manifest that decoded)."""
    errors: list[tuple[str, str]] = field(default_factory=list)
    """`(path, reason)` for every input that is not in `images`, in input order."""

    @property
    def n_bad(self) -> int:
        return len(self.errors)

    def rows(self, df: pd.DataFrame) -> pd.DataFrame:
        """The rows of `df` (the manifest that was loaded) whose images decoded, reindexed."""
        return df.iloc[self.keep].reset_index(drop=True)

    def stack(self) -> np.ndarray:
        """The images as one (N, H, W, 3) uint8 array (they must share one size)."""
        return np.stack(self.images) if self.images else np.zeros((0, 0, 0, 3), np.uint8)


def warn_bad_files(errors: Sequence[tuple[str, str]], what: str) -> None:
    """The one summary warning for a batch: how many were skipped, naming the first few."""
    if not errors:
        return
    named = "; ".join(f"{p}: {r}" for p, r in errors[:NAMED_BAD_FILES])
    more = len(errors) - NAMED_BAD_FILES
    tail = f"; and {more} more" if more > 0 else ""
    warn(f"{what}: {len(errors)} unreadable image(s) skipped: {named}{tail}")


def _paths_and_known_errors(source: ImageSource) -> tuple[list[str], list[str | None]]:
    if isinstance(source, pd.DataFrame):
        col = "abspath" if "abspath" in source.columns else "path"
        if col not in source.columns:
            raise ValueError("manifest rows need an 'abspath' or 'path' column")
        paths = [str(p) for p in source[col]]
        known: list[str | None] = [None] * len(paths)
        if "error" in source.columns:
            known = [e if isinstance(e, str) and e else None for e in source["error"]]
        return paths, known
    paths = [os.fspath(p) for p in source]
    return paths, [None] * len(paths)


def load_images(
    source: ImageSource,
    *,
    what: str = "images",
    workers: int = DEFAULT_WORKERS,
    progress: bool = False,
    quiet: bool = False,
) -> LoadedImages:
    """Decode every input; bad files become error rows and one summary warning.

    `source` is a list of paths or manifest rows (`abspath`, optional `error`). `what` names the
    batch in the progress bar and the warning; `quiet=True` leaves the warning to the caller.
    """
    paths, known = _paths_and_known_errors(source)
    todo = [i for i, e in enumerate(known) if e is None]
    reasons: dict[int, str] = {i: e for i, e in enumerate(known) if e is not None}
    images: list[np.ndarray] = []
    keep: list[int] = []
    decoded = iter_decoded([paths[i] for i in todo], workers=workers)
    if progress:
        decoded = track(decoded, f"decoding {what}", total=len(todo))
    for j, arr, err in decoded:
        i = todo[j]
        if arr is None:
            reasons[i] = err or "unreadable"
            continue
        images.append(arr)
        keep.append(i)
    order = sorted(reasons)
    result = LoadedImages(images, keep, [(paths[i], reasons[i]) for i in order])
    if not quiet:
        warn_bad_files(result.errors, what)
    return result
