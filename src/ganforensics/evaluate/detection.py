"""Evaluate a detector on a labelled test set, clean and under perturbations (DESIGN B5).

Each image is decoded once; every condition ("none" = clean, or an op chain such as "jpeg:75"
or "resize:0.5,jpeg:75") is applied to it (deterministically per image) and scored. Metrics per
condition and generator (each fake generator against all reals) plus the mean over generators,
at 0.5 and at the detector's validation-calibrated threshold. The test labels are used only to
compute metrics, never to pick the threshold (an `oracle` threshold is added only when asked,
and named so).

A condition prefixed `fakes:` (e.g. "fakes:jpeg:96") perturbs the fakes only and leaves the
reals as they are. The field's protocols ride on the `mean` row of every condition: the means
over generators of the accuracies at 0.5 and at the calibrated threshold (overall, real, fake),
and the worst generator (`worst_generator`, the one with the lowest calibrated accuracy) with
`min_acc_05` / `min_acc_cal` (`metrics.detection.add_worst_generator`). The JPEG-96 control
(`jpeg_control="fakes"` or `"both"`) adds the condition `fakes:jpeg:96` or `jpeg:96`: lossless
fakes against JPEG reals reward a detector for spotting the format, and re-encoding at quality
96 before scoring shows how much of a score is that.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ganforensics.console import make_progress, warn
from ganforensics.data.manifest import error_mask, read_manifest
from ganforensics.data.perturb import image_id_of, parse_ops
from ganforensics.detectors.base import Detector, sigmoid
from ganforensics.errors import ConfigError, InputError
from ganforensics.evaluate.predict import known_errors
from ganforensics.io.loading import DEFAULT_WORKERS, iter_decoded, warn_bad_files
from ganforensics.io.runs import RunFolder
from ganforensics.metrics.bootstrap import DEFAULT_RESAMPLES
from ganforensics.metrics.detection import (
    add_worst_generator,
    per_generator,
    pr_points,
    roc_points,
)
from ganforensics.seeding import DEFAULT_SEED, derive_seed

CLEAN = "none"
STANDARD_GRID: tuple[str, ...] = (
    "jpeg:95", "jpeg:75", "jpeg:50", "jpeg:30", "blur:1", "blur:2", "blur:3",
    "resize:0.5", "resize:0.75", "grayscale",
)
GRIDS: dict[str, tuple[str, ...]] = {"standard": STANDARD_GRID}
DEFAULT_BATCH_SIZE = 64
FAKES_ONLY = "fakes:"
"""Prefix of a condition applied to the fakes only."""
JPEG_CONTROL_QUALITY = 96
JPEG_CONTROLS = ("fakes", "both")
THRESHOLD_GIVEN = "given"
THRESHOLD_FROM_MODEL = "model (validation split)"


@dataclass
class Evaluation:
    """What `evaluate_detector` found."""

    metrics: pd.DataFrame
    """Condition, generator and metric columns; rows per generator, `mean` over generators,
    `all` pooled."""
    scores: pd.DataFrame
    """Per image and condition (see `score_conditions`)."""
    threshold: float
    threshold_source: str
    """`THRESHOLD_GIVEN` or `THRESHOLD_FROM_MODEL`."""
    conditions: list[str]
    summary: dict[str, dict[str, Any]]
    """Per condition: the mean-over-generators metrics."""
    n_errors: int
    """Test images that could not be decoded (left out)."""
    n_unlabelled: int
    """Test images without a label (left out of the metrics)."""
    out: str | None = None
    """The run folder, when one was written."""
    plots: list[str] = field(default_factory=list)
    """Figures written into the run folder."""


def jpeg_control_condition(jpeg_control: str) -> str:
    """The condition of the JPEG-96 control: `fakes:jpeg:96` (fakes only) or `jpeg:96`."""
    if jpeg_control not in JPEG_CONTROLS:
        raise ConfigError(f"jpeg control must be one of {', '.join(JPEG_CONTROLS)}, not "
                          f"{jpeg_control!r}")
    op = f"jpeg:{JPEG_CONTROL_QUALITY}"
    return FAKES_ONLY + op if jpeg_control == "fakes" else op


def _canonical(cond: str) -> str:
    """A condition with its op chain validated and canonicalised (prefix kept)."""
    if cond == CLEAN:
        return cond
    if cond.startswith(FAKES_ONLY):
        return FAKES_ONLY + str(parse_ops(cond[len(FAKES_ONLY):]))
    return str(parse_ops(cond))


def conditions_for(perturb: Sequence[str] | str | None, grid: str | None,
                   jpeg_control: str | None = None) -> list[str]:
    """The evaluated conditions: clean first, then the grid, then the explicit ops, then the
    JPEG-96 control (deduped)."""
    conds = [CLEAN]
    if grid:
        if grid not in GRIDS:
            raise ConfigError(f"unknown grid {grid!r} (known: {', '.join(GRIDS)})")
        conds += list(GRIDS[grid])
    if isinstance(perturb, str):
        perturb = [perturb]
    conds += list(perturb or [])
    if jpeg_control:
        conds.append(jpeg_control_condition(jpeg_control))
    out: list[str] = []
    for c in conds:
        c = _canonical(c)  # validates
        if c not in out:
            out.append(c)
    return out


def _test_items(test: Any) -> tuple[pd.DataFrame, list[np.ndarray] | None]:
    """Rows (path, label, generator, image_id) and in-memory images when given."""
    if isinstance(test, tuple) and len(test) in (2, 3):
        images = [np.asarray(im) for im in test[0]]
        labels = np.asarray(test[1]).astype(int)
        gens = (list(map(str, test[2])) if len(test) == 3
                else ["real" if v == 0 else "fake" for v in labels])
        df = pd.DataFrame({
            "path": [f"<memory:{i}>" for i in range(len(images))], "label": labels,
            "generator": gens, "image_id": [f"memory-{i}" for i in range(len(images))],
        })
        return df, images
    if isinstance(test, (str, os.PathLike)):
        test = read_manifest(test)
    if not isinstance(test, pd.DataFrame):
        raise InputError(f"test data: expected a manifest or (images, labels), got "
                         f"{type(test).__name__}")
    df = test.copy()
    if "label" not in df.columns:
        raise InputError("test manifest has no 'label' column")
    col = "abspath" if "abspath" in df.columns else "path"
    out = pd.DataFrame({
        "path": df[col].astype(str).to_numpy(),
        "label": pd.to_numeric(df["label"], errors="coerce").to_numpy(),
        "generator": (df["generator"] if "generator" in df.columns
                      else pd.Series([None] * len(df))).to_numpy(),
        "image_id": [image_id_of(r) for r in df.to_dict("records")],
        "error": (df["error"] if "error" in df.columns else pd.Series([None] * len(df)))
        .to_numpy(),
    })
    out["generator"] = [
        g if isinstance(g, str) and g else ("real" if lab == 0 else "fake")
        for g, lab in zip(out["generator"], out["label"], strict=True)
    ]
    return out, None


def score_conditions(
    detector: Detector,
    test: Any,
    conditions: Sequence[str] = (CLEAN,),
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    workers: int = DEFAULT_WORKERS,
    progress: bool = True,
) -> pd.DataFrame:
    """Per image and condition: path, label, generator, condition, logit, prob_fake, error."""
    rows, images = _test_items(test)
    chains = {c: (None if c == CLEAN else parse_ops(c.removeprefix(FAKES_ONLY)))
              for c in conditions}
    fakes_only = {c: c.startswith(FAKES_ONLY) for c in conditions}
    n = len(rows)
    logits = {c: np.full(n, np.nan) for c in conditions}
    errors = known_errors(rows)

    def decoded():
        if images is not None:
            yield from ((i, im, None) for i, im in enumerate(images))
            return
        todo = [i for i in range(n) if errors[i] is None]
        paths = [rows["path"].iat[i] for i in todo]
        for j, arr, err in iter_decoded(paths, workers=workers):
            yield todo[j], arr, err

    def flush(idx: list[int], ims: list[np.ndarray]) -> None:
        for c, chain in chains.items():
            views = ims if chain is None else [
                im if fakes_only[c] and rows["label"].iat[i] != 1
                else chain(im, rows["image_id"].iat[i]) for i, im in zip(idx, ims, strict=True)
            ]
            logits[c][idx] = detector.logits(views)

    n_todo = sum(1 for e in errors if e is None)
    with make_progress() as prog:
        task = prog.add_task("evaluate", total=n_todo, info=f"{len(chains)} condition(s)",
                             visible=progress)
        buf_i: list[int] = []
        buf_im: list[np.ndarray] = []
        for i, arr, err in decoded():
            if arr is None:
                errors[i] = err or "unreadable"
                continue
            buf_i.append(i)
            buf_im.append(arr)
            if len(buf_i) >= batch_size:
                flush(buf_i, buf_im)
                prog.advance(task, len(buf_i))
                buf_i, buf_im = [], []
        if buf_i:
            flush(buf_i, buf_im)
            prog.advance(task, len(buf_i))
    frames = []
    for c in conditions:
        f = rows[["path", "label", "generator"]].copy()
        f.insert(0, "condition", c)
        f["logit"] = logits[c]
        f["prob_fake"] = sigmoid(np.nan_to_num(logits[c]))
        f.loc[np.isnan(logits[c]), "prob_fake"] = np.nan
        f["error"] = errors
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


def metrics_table(
    scores: pd.DataFrame,
    threshold: float,
    *,
    oracle: bool = False,
    resamples: int = 0,
    seed: int = DEFAULT_SEED,
) -> pd.DataFrame:
    """Per condition and generator metrics (rows `mean` and `all` included), with bootstrap
    intervals when `resamples` > 0 (`metrics.detection.per_generator`)."""
    tables = []
    for cond, g in scores.groupby("condition", sort=False):
        ok = g.dropna(subset=["label", "prob_fake"])
        if ok.empty:
            continue
        t = add_worst_generator(per_generator(ok, threshold, oracle=oracle,
                                              resamples=resamples, seed=derive_seed(seed, cond)))
        t.insert(0, "condition", cond)
        tables.append(t)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def _plots(run: RunFolder, scores: pd.DataFrame, table: pd.DataFrame) -> list[str]:
    # matplotlib is imported only when a figure is drawn (it adds ~0.6 s to start-up)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    clean = scores[(scores["condition"] == CLEAN)].dropna(subset=["label", "prob_fake"])
    real = clean[clean["label"] == 0]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for gen, fk in clean[clean["label"] == 1].groupby("generator"):
        sub = pd.concat([real, fk])
        if sub["label"].nunique() < 2:
            continue
        roc = roc_points(sub["label"].to_numpy(int), sub["prob_fake"].to_numpy())
        pr = pr_points(sub["label"].to_numpy(int), sub["prob_fake"].to_numpy())
        axes[0].plot(roc["fpr"], roc["tpr"], label=str(gen))
        axes[1].plot(pr["recall"], pr["precision"], label=str(gen))
    axes[0].plot([0, 1], [0, 1], ":", color="grey")
    axes[0].set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (clean)")
    axes[1].set(xlabel="recall", ylabel="precision", title="precision-recall (clean)")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(run.file("roc_pr.png"), dpi=110)
    plt.close(fig)
    written.append("roc_pr.png")
    conds = table["condition"].unique().tolist()
    if len(conds) > 1:
        fig, ax = plt.subplots(figsize=(max(5, 0.7 * len(conds) + 2), 4))
        for gen, g in table[~table["generator"].isin(["all"])].groupby("generator", sort=False):
            g = g.set_index("condition").reindex(conds)
            ax.plot(range(len(conds)), g["ap"], marker="o",
                    lw=2.5 if gen == "mean" else 1, label=str(gen))
        ax.set_xticks(range(len(conds)), conds, rotation=45, ha="right")
        ax.set(ylabel="AP", ylim=(0, 1.02), title="robustness: AP per condition")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(run.file("robustness_ap.png"), dpi=110)
        plt.close(fig)
        written.append("robustness_ap.png")
    return written


def _write_run(run: RunFolder, detector: Detector, res: Evaluation) -> None:
    """metrics.csv, metrics_long.csv, scores.csv, curves/roc.csv, curves/pr.csv, metrics.json."""
    table, scores = res.metrics, res.scores
    long = table.melt(id_vars=["condition", "generator"], var_name="metric", value_name="value")
    run.write_csv("metrics.csv", table)
    run.write_csv("metrics_long.csv", long)
    run.write_csv("scores.csv", scores)
    roc_rows, pr_rows = [], []
    for cond, g in scores.dropna(subset=["label", "prob_fake"]).groupby("condition", sort=False):
        real = g[g["label"] == 0]
        for gen, fk in g[g["label"] == 1].groupby("generator"):
            sub = pd.concat([real, fk])
            if sub["label"].nunique() < 2:
                continue
            y, p = sub["label"].to_numpy(int), sub["prob_fake"].to_numpy()
            roc_rows.append(roc_points(y, p).assign(condition=cond, generator=gen))
            pr_rows.append(pr_points(y, p).assign(condition=cond, generator=gen))
    if roc_rows:
        run.write_csv("curves/roc.csv", pd.concat(roc_rows, ignore_index=True))
        run.write_csv("curves/pr.csv", pd.concat(pr_rows, ignore_index=True))
    nested: dict[str, Any] = {}
    for rec in table.to_dict("records"):
        nested.setdefault(rec.pop("condition"), {})[rec.pop("generator")] = rec
    run.write_json("metrics.json", {
        "threshold": res.threshold, "threshold_source": res.threshold_source,
        "conditions": res.conditions, "metrics": nested,
        "n_errors": res.n_errors, "n_unlabelled": res.n_unlabelled,
        "detector": {k: detector.meta.get(k) for k in
                     ("kind", "arch", "recipe", "seed", "train_manifest_sha256")},
    })


def evaluate_detector(
    detector: Detector,
    test: Any,
    *,
    perturb: Sequence[str] | str | None = None,
    grid: str | None = None,
    out: str | os.PathLike[str] | None = None,
    threshold: float | None = None,
    oracle: bool = False,
    jpeg_control: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    workers: int = DEFAULT_WORKERS,
    force: bool = False,
    progress: bool = True,
    plots: bool = True,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> Evaluation:
    """Evaluate `detector` on `test` (manifest path / DataFrame / (images, labels[, gens])).

    With `out`, writes a run folder: metrics.csv, metrics_long.csv (tidy), metrics.json,
    scores.csv, curves/roc.csv, curves/pr.csv, roc_pr.png, robustness_ap.png. `resamples`
    bootstrap resamples of the test images give 95 % intervals of AP, AUC and calibrated
    accuracy (columns `*_lo`, `*_hi`; 0 = none), seeded by `seed`. `jpeg_control` ("fakes"
    or "both") adds the JPEG-96 control condition.
    """
    conds = conditions_for(perturb, grid, jpeg_control)
    thr = float(detector.threshold if threshold is None else threshold)
    run = None
    if out is not None:
        cfg = {"model": detector.meta.get("imported_from") or detector.meta.get("arch")
               or detector.kind, "kind": detector.kind, "conditions": conds, "threshold": thr,
               "test": str(test) if isinstance(test, (str, os.PathLike)) else "<in memory>",
               "oracle": oracle, "resamples": resamples, "seed": seed}
        run = RunFolder.create(out, cfg, force=force)
    scores = score_conditions(detector, test, conds, batch_size=batch_size, workers=workers,
                              progress=progress)
    first = scores[scores["condition"] == conds[0]]
    bad = first[error_mask(first)]
    warn_bad_files(list(zip(bad["path"], bad["error"], strict=True)), "test set")
    unl = first[first["label"].isna()]
    if len(unl):
        warn(f"{len(unl)} test image(s) without a label left out of the metrics")
    table = metrics_table(scores, thr, oracle=oracle, resamples=resamples, seed=seed)
    if table.empty:
        raise InputError("no labelled, readable test images to evaluate")
    present = set(first["label"].dropna().astype(int))
    if present != {0, 1}:
        warn("the test data hold only " + ("real" if present == {0} else "fake")
             + " images: AP, AUC and EER are undefined (NaN); accuracies are still reported")
    summary = {
        c: table[(table["condition"] == c) & (table["generator"] == "mean")]
        .drop(columns=["condition", "generator"]).iloc[0].to_dict()
        for c in conds if ((table["condition"] == c) & (table["generator"] == "mean")).any()
    }
    res = Evaluation(
        metrics=table, scores=scores, threshold=thr, conditions=conds, summary=summary,
        threshold_source=THRESHOLD_GIVEN if threshold is not None else THRESHOLD_FROM_MODEL,
        n_errors=int(len(bad)), n_unlabelled=int(len(unl)),
    )
    if run is not None:
        _write_run(run, detector, res)
        if plots:
            res.plots = _plots(run, scores, table)
        res.out = str(run.path)
    return res
