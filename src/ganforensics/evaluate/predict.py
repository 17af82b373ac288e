"""Score many image files with any detector: batched inference, decoding overlapped with it.

Decoding (`io.loading.iter_decoded`) runs in a thread pool a bounded number of images ahead of
the model (so memory stays flat on large folders); bad files become rows with an `error` and the
batch goes on.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ganforensics.console import make_progress
from ganforensics.data.importers import collect_inputs
from ganforensics.data.manifest import error_mask
from ganforensics.detectors.base import Detector, sigmoid
from ganforensics.detectors.cnn.attribution import softmax_np
from ganforensics.io.loading import DEFAULT_WORKERS, iter_decoded

PREDICT_COLUMNS = ("path", "prob_fake", "logit", "decision", "error")
"""The columns of a predict table, in order."""
DEFAULT_BATCH_SIZE = 32


def predict_paths(
    detector: Detector,
    paths: Sequence[str | os.PathLike[str]],
    *,
    threshold: float | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    workers: int = DEFAULT_WORKERS,
    progress: bool = True,
    errors: Sequence[str | None] | None = None,
) -> pd.DataFrame:
    """One row per path (`PREDICT_COLUMNS`): path, prob_fake, logit, decision ("fake"/"real"
    at `threshold`, default the detector's calibrated one), error (empty when scored).
    An attribution detector (with `classes`) adds `top_class` and `p_<class>` per class
    (calibrated probabilities; prob_fake = 1 - p_real).

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
    classes = tuple(getattr(detector, "classes", ()) or ())
    class_probs = np.full((n, len(classes)), np.nan)
    with make_progress() as prog:
        task = prog.add_task("predict", total=len(todo), info="", visible=progress)
        buf_i: list[int] = []
        buf_im: list[np.ndarray] = []

        def flush() -> None:
            if classes:  # one forward pass for both the classes and the binary logit
                zc = detector.class_logits(buf_im)  # type: ignore[attr-defined]
                p = softmax_np(zc)
                class_probs[buf_i] = p
                logits[buf_i] = np.logaddexp.reduce(zc[:, 1:], axis=1) - zc[:, 0]
            else:
                logits[buf_i] = detector.logits(buf_im)
            prog.advance(task, len(buf_i))
            buf_i.clear()
            buf_im.clear()

        for j, arr, err in iter_decoded([paths[i] for i in todo], workers=workers,
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
    columns = (paths, probs, logits, decision, [e or "" for e in errs])
    table = pd.DataFrame(dict(zip(PREDICT_COLUMNS, columns, strict=True)))
    if classes:
        top = np.argmax(np.nan_to_num(class_probs, nan=-1.0), axis=1)
        table.insert(4, "top_class", np.where(ok, np.array(classes, dtype=object)[top], ""))
        for j, c in enumerate(classes):
            table.insert(5 + j, f"p_{c}", class_probs[:, j])
    return table


def known_errors(rows: pd.DataFrame) -> list[str | None]:
    """Per row: the manifest's error, or None for a usable row (`data.manifest.usable`)."""
    bad = error_mask(rows).to_numpy()
    return [str(rows["error"].iat[i]) if b else None for i, b in enumerate(bad)]


def input_paths(
    inputs: Sequence[str | os.PathLike[str]],
) -> tuple[list[str], list[str | None]]:
    """The files to score and their known errors: folders and manifests (.csv) are expanded by
    `data.importers.collect_inputs` (their error rows kept); any other input is a file named
    explicitly (scored, or an error row when it is missing or not an image)."""
    paths: list[str] = []
    errs: list[str | None] = []
    for item in map(Path, inputs):
        if item.is_dir() or (item.is_file() and item.suffix.lower() == ".csv"):
            rows = collect_inputs([str(item)])
            col = "abspath" if "abspath" in rows.columns else "path"
            paths += rows[col].astype(str).tolist()
            errs += known_errors(rows)
        else:
            paths.append(str(item))
            errs.append(None)
    return paths, errs


def predict_inputs(
    detector: Detector,
    inputs: Sequence[str | os.PathLike[str]],
    *,
    threshold: float | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    workers: int = DEFAULT_WORKERS,
    progress: bool = True,
) -> pd.DataFrame:
    """`predict_paths` on image files, folders and manifests (see `input_paths`)."""
    paths, errs = input_paths(inputs)
    return predict_paths(detector, paths, threshold=threshold, batch_size=batch_size,
                         workers=workers, progress=progress, errors=errs)
