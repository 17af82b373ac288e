"""Evaluate a generator-attribution detector (real + K generators) on a labelled test set.

The detector's classes and calibration come from its model.json (fitted on validation data when
it was trained); the test labels are used only to compute the metrics. Test fakes of a
generator the model does not know are left out (with a warning): attribution over a closed set.
Outputs: per-class precision / recall / F1 (metrics.csv), confusion matrix (confusion.csv and
confusion.png, rows = true class), accuracy and macro-F1 with bootstrap intervals
(metrics.json), per-image class probabilities (scores.csv).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ganforensics.console import warn
from ganforensics.detectors.cnn.attribution import AttributionDetector, softmax_np
from ganforensics.detectors.cnn.data import as_image_set
from ganforensics.detectors.cnn.heads import REAL
from ganforensics.errors import InputError, UnsupportedModelError
from ganforensics.io.loading import DEFAULT_WORKERS, warn_bad_files
from ganforensics.io.runs import RunFolder
from ganforensics.metrics.attribution import attribution_report
from ganforensics.metrics.bootstrap import DEFAULT_RESAMPLES
from ganforensics.seeding import DEFAULT_SEED


@dataclass
class AttributionEvaluation:
    """What `evaluate_attribution` found."""

    per_class: pd.DataFrame
    confusion: pd.DataFrame
    """Counts, index = true class, columns = predicted class."""
    summary: dict[str, float]
    scores: pd.DataFrame
    n_errors: int
    n_unknown: int
    """Test fakes of generators outside the model's classes (left out)."""
    out: str | None = None


def true_classes(labels: np.ndarray, generators: list[str], classes: tuple[str, ...]
                 ) -> np.ndarray:
    """Class index per image (real 0, fakes by generator), -1 for unknown generators."""
    index = {c: i for i, c in enumerate(classes)}
    return np.array([0 if int(lab) == 0 else index.get(g, -1) if g != REAL else -1
                     for lab, g in zip(labels.tolist(), generators, strict=True)], dtype=int)


def _plot_confusion(run: RunFolder, cm: np.ndarray, classes: tuple[str, ...]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 * len(classes) + 2.5, 0.9 * len(classes) + 2))
    ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=8,
                    color="white" if rows[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set(xlabel="predicted", ylabel="true", title="attribution confusion (row-normalised)")
    fig.tight_layout()
    fig.savefig(run.file("confusion.png"), dpi=110)
    plt.close(fig)


def evaluate_attribution(
    detector: Any,
    test: Any,
    *,
    out: str | os.PathLike[str] | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    batch_size: int = 64,
    workers: int = DEFAULT_WORKERS,
    force: bool = False,
) -> AttributionEvaluation:
    """Attribution metrics of `detector` (an `AttributionDetector`) on `test` (manifest path,
    DataFrame or (images, labels, generators)); with `out`, a run folder."""
    if not isinstance(detector, AttributionDetector):
        raise UnsupportedModelError("evaluate attribution needs a model trained with "
                                    "--task attribute (its model.json lists `classes`)")
    classes = detector.classes
    run = None
    if out is not None:
        cfg = {"model": detector.meta.get("arch"), "classes": list(classes),
               "test": str(test) if isinstance(test, (str, os.PathLike)) else "<in memory>",
               "resamples": resamples, "seed": seed}
        run = RunFolder.create(out, cfg, force=force)
    data = as_image_set(test, "test data", workers=workers)
    warn_bad_files(data.errors, "test set")
    y = true_classes(data.labels, data.generators, classes)
    unknown = y < 0
    if unknown.any():
        gens = sorted({data.generators[i] for i in np.flatnonzero(unknown)})
        warn(f"{int(unknown.sum())} test fake(s) of generator(s) {gens} outside the model's "
             f"classes left out")
    keep = np.flatnonzero(~unknown)
    if not len(keep):
        raise InputError("no test images of the model's classes to evaluate")
    detector.batch_size = int(batch_size)
    logits = detector.class_logits([data.images[i] for i in keep])
    probs = softmax_np(logits)
    pred = np.argmax(logits, axis=1)
    table, cm, summary = attribution_report(y[keep], pred, classes, resamples=resamples,
                                            seed=seed)
    confusion = pd.DataFrame(cm.astype(int), index=pd.Index(classes, name="true"),
                             columns=list(classes))
    scores = pd.DataFrame({"source": [data.sources[i] for i in keep],
                           "generator": [data.generators[i] for i in keep],
                           "true_class": [classes[j] for j in y[keep]],
                           "top_class": [classes[j] for j in pred]})
    for j, c in enumerate(classes):
        scores[f"p_{c}"] = probs[:, j]
    res = AttributionEvaluation(table, confusion, summary, scores, len(data.errors),
                                int(unknown.sum()))
    if run is not None:
        run.write_csv("metrics.csv", table)
        run.write_csv("confusion.csv", confusion.reset_index())
        run.write_csv("scores.csv", scores)
        run.write_json("metrics.json", {**summary, "classes": list(classes),
                                        "n_errors": res.n_errors, "n_unknown": res.n_unknown,
                                        "calibration": detector.meta.get("calibration")})
        _plot_confusion(run, cm, classes)
        res.out = str(run.path)
    return res
