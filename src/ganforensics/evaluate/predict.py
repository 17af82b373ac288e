"""Score many image files with any detector: batched inference, decoding overlapped with it.

Decoding runs in a thread pool a bounded number of images ahead of the model (so memory stays
flat on large folders); bad files become rows with an `error` and the batch goes on.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pandas as pd

from ganforensics.console import make_progress
from ganforensics.detectors.base import Detector, sigmoid
from ganforensics.errors import ImageDecodeError
from ganforensics.io.images import load_rgb

PREDICT_COLUMNS = ("path", "prob_fake", "logit", "decision", "error")


def _decode(path: str) -> tuple[np.ndarray | None, str | None]:
    try:
        return load_rgb(path), None
    except ImageDecodeError as exc:
        return None, exc.reason
    except Exception as exc:  # noqa: BLE001 - a batch never stops on one file
        return None, f"cannot decode: {type(exc).__name__}: {str(exc).splitlines()[0]}"


def prefetch_images(
    paths: Sequence[str], *, workers: int = 2, ahead: int = 128
) -> Iterator[tuple[int, np.ndarray | None, str | None]]:
    """Decode `paths` in order with `workers` threads, at most `ahead` images in flight."""
    if workers <= 1:
        for i, p in enumerate(paths):
            yield (i, *_decode(p))
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future] = deque()
        it = iter(enumerate(paths))
        for _i, p in it:
            pending.append(pool.submit(_decode, p))
            if len(pending) >= ahead:
                break
        done = 0
        while pending:
            arr, err = pending.popleft().result()
            yield done, arr, err
            done += 1
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.submit(_decode, nxt[1]))


def predict_paths(
    detector: Detector,
    paths: Sequence[str | os.PathLike[str]],
    *,
    threshold: float | None = None,
    batch_size: int = 32,
    workers: int = 2,
    progress: bool = True,
    errors: Sequence[str | None] | None = None,
) -> pd.DataFrame:
    """One row per path: path, prob_fake, logit, decision ("fake"/"real" at `threshold`,
    default the detector's calibrated one), error (empty when scored).

    `errors` may carry known errors per path (e.g. from a manifest); those files are skipped.
    """
    thr = float(detector.threshold if threshold is None else threshold)
    if hasattr(detector, "fused"):
        detector = detector.fused()  # BatchNorm folded into convs: same logits, less work
    if hasattr(detector, "batch_size"):
        detector.batch_size = int(batch_size)  # CNNDetector sub-batches by this
    paths = [os.fspath(p) for p in paths]
    n = len(paths)
    logits = np.full(n, np.nan)
    errs: list[str | None] = list(errors) if errors is not None else [None] * n
    todo = [i for i in range(n) if not errs[i]]
    with make_progress() as prog:
        task = prog.add_task("predict", total=len(todo), info="", visible=progress)
        buf_i: list[int] = []
        buf_im: list[np.ndarray] = []

        def flush() -> None:
            logits[buf_i] = detector.logits(buf_im)
            prog.advance(task, len(buf_i))
            buf_i.clear()
            buf_im.clear()

        for j, arr, err in prefetch_images([paths[i] for i in todo], workers=workers,
                                           ahead=max(2 * batch_size, 8)):
            i = todo[j]
            if arr is None:
                errs[i] = err or "unreadable"
                prog.advance(task)
                continue
            buf_i.append(i)
            buf_im.append(arr)
            if len(buf_i) >= batch_size:
                flush()
        if buf_i:
            flush()
    ok = ~np.isnan(logits)
    probs = np.full(n, np.nan)
    probs[ok] = sigmoid(logits[ok])
    decision = np.where(ok, np.where(probs >= thr, "fake", "real"), "")
    return pd.DataFrame({
        "path": paths, "prob_fake": probs, "logit": logits, "decision": decision,
        "error": [e or "" for e in errs],
    })
