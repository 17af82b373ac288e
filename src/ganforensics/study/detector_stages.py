"""Study stages of the detectors: training, detection on every setup, bypass rates, the CNN's
robustness grid and its grayscale (colour-ablation) check."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ganforensics.console import progress_enabled
from ganforensics.data.manifest import split_of
from ganforensics.data.perturb import grayscale
from ganforensics.detectors.base import Detector, sigmoid
from ganforensics.detectors.cnn import train_cnn_detector
from ganforensics.detectors.cnn.recipes import get_recipe
from ganforensics.detectors.loading import load_detector
from ganforensics.detectors.spectral import train_spectral_detector
from ganforensics.errors import InputError
from ganforensics.evaluate.bypass import bypass_rates
from ganforensics.evaluate.detection import evaluate_detector
from ganforensics.metrics.bootstrap import interval_columns
from ganforensics.metrics.detection import per_generator
from ganforensics.seeding import derive_seed, seed_everything
from ganforensics.study.context import (
    DETECTOR_KEYS,
    SPECTRAL_KINDS,
    StudyContext,
    checked,
    decode,
    study_test_set,
    train_val_sets,
)
from ganforensics.study.stages import Stage

# the tables these stages write, and their columns (`checked` before writing; the report and
# its tests use the same names)
_METRICS = ("n", "n_real", "n_fake", "ap", "auc", "eer", "tpr_at_fpr_1", "tpr_at_fpr_5",
            "acc_05", "real_acc_05", "fake_acc_05", "bacc_05", "threshold_cal", "acc_cal",
            "real_acc_cal", "fake_acc_cal", "bacc_cal")
"""Columns of `metrics.detection.per_generator` after `generator`."""
DETECTION_TABLE = "tables/detection.csv"
DETECTION_COLUMNS = ("detector", "generator", *_METRICS, *interval_columns())
"""With `ap_lo, ap_hi, auc_lo, auc_hi, acc_cal_lo, acc_cal_hi`: bootstrap 95 % intervals
(`evaluate.resamples` resamples; NaN in the `mean` row and when resamples is 0)."""
BYPASS_TABLE = "tables/bypass.csv"
BYPASS_COLUMNS = ("generator", "role", "n_images", "rate_mean", "rate_std", "rates", "draws",
                  "n_train", "kind", "classifier", "seed")
ROBUSTNESS_TABLE = "tables/robustness.csv"
ROBUSTNESS_COLUMNS = ("condition", "generator", *_METRICS)
ROBUSTNESS_FIGURE = "figures/robustness_ap.png"
GRAYSCALE_TABLE = "tables/grayscale.csv"
GRAYSCALE_COLUMNS = ("generator", "input", *_METRICS)
SCORE_COLUMNS = ("path", "label", "generator", "prob_fake")


def scores_file(kind: str) -> str:
    """Run-folder path of one detector's test-set scores."""
    return f"eval/{kind}/scores.csv"


def make_detector_stage(kind: str, needs: tuple[str, ...] = ()) -> Stage:
    """Train one detector kind on real vs the training setup's fakes (`detectors/<kind>/`)."""

    def _run(ctx: StudyContext) -> dict[str, Any]:
        train, val = train_val_sets(ctx)
        dcfg = ctx.cfg["detectors"][DETECTOR_KEYS[kind]]
        seed = derive_seed(ctx.seed, "detector", kind) % 2**31
        out = ctx.detector_dir(kind)
        if kind == "cnn":
            recipe = get_recipe(dcfg["recipe"], monitor=dcfg["monitor"])
            seed_everything(seed)
            # resumes from its per-epoch checkpoint in `out` after an interruption
            det = train_cnn_detector(dcfg["arch"], recipe, train, val, out, seed=seed,
                                     epochs=dcfg["epochs"], batch_size=dcfg["batch_size"],
                                     aug_prob=dcfg["aug_prob"], progress=progress_enabled())
        else:
            det = train_spectral_detector(kind, train, val, classifier=dcfg["classifier"],
                                          seed=seed)
        det.save(out)
        return {"dir": str(out.relative_to(ctx.path)), "threshold": float(det.threshold),
                "n_train": len(train), "n_val": len(val)}

    return Stage(f"detector-{kind}", _run, needs=needs, title=f"train the {kind} detector")


def load_study_detector(ctx: StudyContext, kind: str) -> Detector:
    return load_detector(ctx.detector_dir(kind))


def detector_scores(det: Detector, images: list[np.ndarray], rows: pd.DataFrame) -> pd.DataFrame:
    """P(fake) of each test image with its file name, label and generator."""
    probs = sigmoid(np.asarray(det.logits(images), dtype=np.float64))
    return pd.DataFrame({"path": rows["abspath"].map(lambda a: Path(a).name),
                         "label": rows["label"].astype(int).to_numpy(),
                         "generator": rows["generator"].astype(str).to_numpy(),
                         "prob_fake": probs})


def stage_detection(ctx: StudyContext) -> dict[str, Any]:
    """AP / AUC / accuracies of every detector on every setup's test fakes vs the test reals.

    Scores are P(fake) from each detector; metrics per generator use the detector's threshold
    calibrated on the validation split (`metrics.detection.per_generator`), with bootstrap 95 %
    intervals of AP, AUC and calibrated accuracy (`evaluate.resamples`, seeded per detector).
    """
    images, rows = decode(study_test_set(ctx), "test set")
    resamples = int(ctx.cfg["evaluate"]["resamples"])
    frames = []
    for kind in ctx.enabled_detectors():
        det = load_study_detector(ctx, kind)
        scores = detector_scores(det, images, rows)
        ctx.run.write_csv(scores_file(kind), scores)
        table = per_generator(scores, float(det.threshold), resamples=resamples,
                              seed=derive_seed(ctx.seed, "detection", kind))
        for col in interval_columns():  # absent when resamples is 0
            if col not in table.columns:
                table[col] = np.nan
        table.insert(0, "detector", kind)
        frames.append(table)
    table = checked(pd.concat(frames, ignore_index=True), DETECTION_COLUMNS, DETECTION_TABLE)
    ctx.run.write_csv(DETECTION_TABLE, table)
    return {"file": DETECTION_TABLE, "n_test": len(rows), "resamples": resamples,
            "scores": [scores_file(k) for k in ctx.enabled_detectors()]}


def stage_bypass(ctx: StudyContext) -> dict[str, Any]:
    """DESIGN B2: train on n real + n training-setup fakes (random draws), detection rate on
    each other setup's test fakes; for each enabled spectral detector kind."""
    b = ctx.cfg["bypass"]
    train_setup = ctx.cfg["detectors"]["train_setup"]
    real, _ = decode(split_of(ctx.real_manifest(), "train"), "train reals")
    base, _ = decode(split_of(ctx.fake_manifest(train_setup), "train"), train_setup)
    others = {s["name"]: decode(split_of(ctx.fake_manifest(s["name"]), "test"), s["name"])[0]
              for s in ctx.setups() if s["name"] != train_setup}
    if not others:
        raise InputError("bypass needs at least one setup besides the training setup")
    frames = []
    for kind in SPECTRAL_KINDS:
        dcfg = ctx.cfg["detectors"][DETECTOR_KEYS[kind]]
        if not dcfg["enabled"]:
            continue
        frames.append(bypass_rates(
            kind, np.stack(real), np.stack(base), {k: np.stack(v) for k, v in others.items()},
            n=b["n_train"], draws=b["draws"], classifier=dcfg["classifier"],
            seed=derive_seed(ctx.seed, "bypass", kind) % 2**31, baseline_name=train_setup,
        ))
    if not frames:
        raise InputError("bypass needs a spectral detector kind enabled")
    table = checked(pd.concat(frames, ignore_index=True), BYPASS_COLUMNS, BYPASS_TABLE)
    ctx.run.write_csv(BYPASS_TABLE, table)
    return {"file": BYPASS_TABLE}


def stage_robustness(ctx: StudyContext) -> dict[str, Any]:
    """The CNN's robustness grid (perturbed test sets, threshold from clean validation data)."""
    det = load_study_detector(ctx, "cnn")
    test = study_test_set(ctx)
    # force: this folder belongs to the stage (a rerun after an interruption redoes it)
    res = evaluate_detector(det, test, grid=ctx.cfg["evaluate"]["grid"],
                            out=ctx.path / "eval" / "cnn-robustness", force=True,
                            progress=progress_enabled(),
                            # no intervals: ~1 s CPU per condition at the default sizes, and
                            # the report shows only the `mean` rows, which have none
                            resamples=0)
    table = checked(res.metrics, ROBUSTNESS_COLUMNS, ROBUSTNESS_TABLE)
    ctx.run.write_csv(ROBUSTNESS_TABLE, table)
    plot = ctx.path / "eval" / "cnn-robustness" / "robustness_ap.png"
    if plot.is_file():
        shutil.copyfile(plot, ctx.run.file(ROBUSTNESS_FIGURE))
    return {"file": ROBUSTNESS_TABLE, "conditions": list(res.conditions)}


def stage_grayscale(ctx: StudyContext) -> dict[str, Any]:
    """Colour ablation: the CNN on grayscale test images with its RGB-calibrated threshold."""
    det = load_study_detector(ctx, "cnn")
    images, rows = decode(study_test_set(ctx), "test set")
    frames = []
    for mode, imgs in (("rgb", images), ("gray", [grayscale(im) for im in images])):
        table = per_generator(detector_scores(det, imgs, rows), float(det.threshold))
        table.insert(1, "input", mode)
        frames.append(table)
    table = checked(pd.concat(frames, ignore_index=True), GRAYSCALE_COLUMNS, GRAYSCALE_TABLE)
    ctx.run.write_csv(GRAYSCALE_TABLE, table)
    return {"file": GRAYSCALE_TABLE}
