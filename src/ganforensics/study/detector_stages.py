"""Study stages of the detectors: training, detection on every setup, bypass rates, the CNN's
(and NPR's) robustness grid, the CNN's grayscale (colour-ablation) check, and the JPEG-96
control of every detector."""

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
from ganforensics.evaluate.detection import evaluate_detector, jpeg_control_condition
from ganforensics.metrics.bootstrap import interval_columns
from ganforensics.metrics.detection import WORST_COLUMNS, per_generator
from ganforensics.metrics.paired import PAIR_COLUMNS, pair_win
from ganforensics.seeding import derive_seed, seed_everything
from ganforensics.study.context import (
    CNN_KINDS,
    DETECTOR_KEYS,
    ONE_CLASS,
    SPECTRAL_KINDS,
    StudyContext,
    checked,
    decode,
    detector_id,
    detector_runs,
    study_test_set,
    train_val_sets,
)
from ganforensics.study.one_class_stages import train_study_one_class
from ganforensics.study.stages import Stage

# the tables these stages write, and their columns (`checked` before writing; the report and
# its tests use the same names)
_METRICS = ("n", "n_real", "n_fake", "ap", "auc", "eer", "tpr_at_fpr_1", "tpr_at_fpr_5",
            "acc_05", "real_acc_05", "fake_acc_05", "bacc_05", "threshold_cal", "acc_cal",
            "real_acc_cal", "fake_acc_cal", "bacc_cal")
"""Columns of `metrics.detection.per_generator` after `generator`."""
DETECTION_TABLE = "tables/detection.csv"
DETECTION_COLUMNS = ("train_setup", "detector", "generator", *_METRICS, *interval_columns(),
                     *PAIR_COLUMNS)
"""`train_setup`: the setup whose fakes the detector trained on. With `ap_lo, ap_hi, auc_lo,
auc_hi, acc_cal_lo, acc_cal_hi`: bootstrap 95 % intervals (`evaluate.resamples` resamples; NaN
in the `mean` row and when resamples is 0). `pair_win` (`metrics.paired`): the share of test
pairs in which a simulated fake scores above its own source real, with its bootstrap interval
over pairs; NaN for sampled setups and the `mean` / `all` rows."""
BYPASS_TABLE = "tables/bypass.csv"
BYPASS_COLUMNS = ("generator", "role", "n_images", "rate_mean", "rate_std", "rates", "draws",
                  "n_train", "kind", "classifier", "seed")
ROBUSTNESS_TABLE = "tables/robustness.csv"
ROBUSTNESS_COLUMNS = ("condition", "generator", *_METRICS)
ROBUSTNESS_FIGURE = "figures/robustness_ap.png"
JPEG96_TABLE = "tables/jpeg96.csv"
JPEG96_COLUMNS = ("detector", "condition", "generator", *_METRICS, *interval_columns(),
                  *WORST_COLUMNS)
"""Every detector (trained on the first training setup) on the clean test set, with the fakes
re-encoded at JPEG 96 (`fakes:jpeg:96`) and with every image re-encoded (`jpeg:96`)."""
GRAYSCALE_TABLE = "tables/grayscale.csv"
GRAYSCALE_COLUMNS = ("generator", "input", *_METRICS)
SCORE_COLUMNS = ("path", "label", "generator", "prob_fake")


def scores_file(det_id: str) -> str:
    """Run-folder path of one detector's test-set scores (`context.detector_id`)."""
    return f"eval/{det_id}/scores.csv"


def _seed_parts(kind: str, train_setup: str, det_id: str) -> tuple[str, ...]:
    """Seed path of a detector: the kind alone for the first training setup (as before there
    were several), kind and setup for the others."""
    return (kind,) if det_id == kind else (kind, train_setup)


def make_detector_stage(kind: str, train_setup: str, det_id: str,
                        needs: tuple[str, ...] = ()) -> Stage:
    """Train one detector kind on real vs `train_setup`'s fakes (`detectors/<det_id>/`)."""

    def _run(ctx: StudyContext) -> dict[str, Any]:
        train, val = train_val_sets(ctx, train_setup)
        dcfg = ctx.cfg["detectors"][DETECTOR_KEYS[kind]]
        seed = derive_seed(ctx.seed, "detector", *_seed_parts(kind, train_setup, det_id)) % 2**31
        out = ctx.detector_dir(det_id)
        if kind in CNN_KINDS:
            recipe = get_recipe(dcfg["recipe"], monitor=dcfg.get("monitor"),
                                lr=dcfg.get("lr"))
            seed_everything(seed)
            # resumes from its per-epoch checkpoint in `out` after an interruption
            det = train_cnn_detector(dcfg["arch"], recipe, train, val, out, seed=seed,
                                     epochs=dcfg["epochs"], batch_size=dcfg["batch_size"],
                                     aug_prob=dcfg.get("aug_prob"), progress=progress_enabled())
        elif kind == ONE_CLASS:
            det = train_study_one_class(ctx, train, val, seed)
        else:
            det = train_spectral_detector(kind, train, val, classifier=dcfg["classifier"],
                                          seed=seed)
        det.save(out)
        return {"dir": str(out.relative_to(ctx.path)), "threshold": float(det.threshold),
                "n_train": len(train), "n_val": len(val), "train_setup": train_setup}

    return Stage(f"detector-{det_id}", _run, needs=needs,
                 title=f"train the {kind} detector on {train_setup}")


def load_study_detector(ctx: StudyContext, kind: str) -> Detector:
    return load_detector(ctx.detector_dir(kind))


def detector_scores(det: Detector, images: list[np.ndarray], rows: pd.DataFrame) -> pd.DataFrame:
    """P(fake) of each test image with its file name, label and generator."""
    probs = sigmoid(np.asarray(det.logits(images), dtype=np.float64))
    return pd.DataFrame({"path": rows["abspath"].map(lambda a: Path(a).name),
                         "label": rows["label"].astype(int).to_numpy(),
                         "generator": rows["generator"].astype(str).to_numpy(),
                         "prob_fake": probs})


def pair_columns(scores: pd.DataFrame, rows: pd.DataFrame, generators: pd.Series,
                 resamples: int, seed: int) -> pd.DataFrame:
    """`pair_win` and its interval per row of a `per_generator` table (`generators`): for a
    setup whose test fakes name their source real (`source_path`), each fake's P(fake) against
    its source's; NaN elsewhere (and for fakes whose source is not among the test reals)."""
    prob = scores["prob_fake"].to_numpy(dtype=np.float64)
    label = rows["label"].to_numpy(dtype=int)
    gen = rows["generator"].astype(str).to_numpy()
    path = [str(Path(a).resolve()) for a in rows["abspath"].astype(str)]
    real_prob = {p: prob[i] for i, p in enumerate(path) if label[i] == 0}
    src = [str(Path(a).resolve()) if a else "" for a in rows["source_path"].astype(str)]
    paired = np.array([label[i] == 1 and src[i] in real_prob for i in range(len(src))], bool)
    out = []
    for g in generators.astype(str):
        mask = paired & (gen == g)
        if g in ("mean", "all") or not mask.any():
            out.append(dict.fromkeys(PAIR_COLUMNS, np.nan))
            continue
        source = np.array([real_prob[src[i]] for i in np.flatnonzero(mask)])
        out.append(pair_win(prob[mask], source, resamples=resamples,
                            seed=derive_seed(seed, "pairs", g)))
    return pd.DataFrame(out, columns=list(PAIR_COLUMNS), index=generators.index)


def _detection_rows(ctx: StudyContext, kind: str, train_setup: str, images: list[np.ndarray],
                    rows: pd.DataFrame) -> pd.DataFrame:
    """One detector's rows of the detection table; its scores are written beside."""
    det_id = detector_id(kind, train_setup, ctx.cfg)
    det = load_detector(ctx.detector_dir(det_id))
    resamples = int(ctx.cfg["evaluate"]["resamples"])
    scores = detector_scores(det, images, rows)
    ctx.run.write_csv(scores_file(det_id), scores)
    seed = derive_seed(ctx.seed, "detection", *_seed_parts(kind, train_setup, det_id))
    table = per_generator(scores, float(det.threshold), resamples=resamples, seed=seed)
    for col in interval_columns():  # absent when resamples is 0
        if col not in table.columns:
            table[col] = np.nan
    pairs = pair_columns(scores, rows, table["generator"], resamples, seed)
    table = pd.concat([table, pairs], axis=1)
    table.insert(0, "detector", kind)
    table.insert(0, "train_setup", train_setup)
    return table


def stage_detection(ctx: StudyContext) -> dict[str, Any]:
    """AP / AUC / accuracies of every detector (each kind x training setup) on every setup's
    test fakes vs the test reals, and the paired `pair_win` of simulated setups.

    Scores are P(fake) from each detector; metrics per generator use the detector's threshold
    calibrated on the validation split (`metrics.detection.per_generator`), with bootstrap 95 %
    intervals of AP, AUC and calibrated accuracy (`evaluate.resamples`, seeded per detector).
    """
    images, rows = decode(study_test_set(ctx, with_source=True), "test set")
    frames = [_detection_rows(ctx, kind, ts, images, rows) for ts, kind in detector_runs(ctx.cfg)]
    table = checked(pd.concat(frames, ignore_index=True), DETECTION_COLUMNS, DETECTION_TABLE)
    ctx.run.write_csv(DETECTION_TABLE, table)
    return {"file": DETECTION_TABLE, "n_test": len(rows),
            "resamples": int(ctx.cfg["evaluate"]["resamples"]),
            "scores": [scores_file(detector_id(k, ts, ctx.cfg))
                       for ts, k in detector_runs(ctx.cfg)]}


def stage_bypass(ctx: StudyContext) -> dict[str, Any]:
    """DESIGN B2: train on n real + n training-setup fakes (random draws), detection rate on
    each other setup's test fakes; for each enabled spectral detector kind."""
    b = ctx.cfg["bypass"]
    train_setup = ctx.train_setups()[0]
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


def robustness_files(kind: str) -> tuple[str, str]:
    """(table, figure) of a CNN kind's robustness grid: the CNN's keep their old names."""
    if kind == "cnn":
        return ROBUSTNESS_TABLE, ROBUSTNESS_FIGURE
    return f"tables/robustness-{kind}.csv", f"figures/robustness_ap-{kind}.png"


def make_robustness_stage(kind: str, needs: tuple[str, ...]) -> Stage:
    """The robustness grid of one CNN kind (stage `robustness` for the CNN, `robustness-<kind>`
    for the others)."""

    def _run(ctx: StudyContext) -> dict[str, Any]:
        return _robustness(ctx, kind)

    name = "robustness" if kind == "cnn" else f"robustness-{kind}"
    return Stage(name, _run, needs=needs, title=f"{kind} robustness grid")


def stage_robustness(ctx: StudyContext) -> dict[str, Any]:
    """The CNN's robustness grid (perturbed test sets, threshold from clean validation data)."""
    return _robustness(ctx, "cnn")


def _robustness(ctx: StudyContext, kind: str) -> dict[str, Any]:
    det = load_study_detector(ctx, kind)
    test = study_test_set(ctx)
    table_file, figure = robustness_files(kind)
    # force: this folder belongs to the stage (a rerun after an interruption redoes it)
    res = evaluate_detector(det, test, grid=ctx.cfg["evaluate"]["grid"],
                            out=ctx.path / "eval" / f"{kind}-robustness", force=True,
                            progress=progress_enabled(),
                            # no intervals: ~1 s CPU per condition at the default sizes, and
                            # the report shows only the `mean` rows, which have none
                            resamples=0)
    table = checked(res.metrics[[*ROBUSTNESS_COLUMNS]], ROBUSTNESS_COLUMNS, table_file)
    ctx.run.write_csv(table_file, table)
    plot = ctx.path / "eval" / f"{kind}-robustness" / "robustness_ap.png"
    if plot.is_file():
        shutil.copyfile(plot, ctx.run.file(figure))
    return {"file": table_file, "conditions": list(res.conditions)}


def stage_jpeg96(ctx: StudyContext) -> dict[str, Any]:
    """The JPEG-96 control: every enabled detector (trained on the first training setup) on
    the clean test set, with its fakes re-encoded at quality 96, and with every image
    re-encoded; bootstrap intervals as in the detection table."""
    test = study_test_set(ctx)
    conds = [jpeg_control_condition("fakes"), jpeg_control_condition("both")]
    resamples = int(ctx.cfg["evaluate"]["resamples"])
    frames = []
    for kind in ctx.enabled_detectors():
        det = load_study_detector(ctx, kind)
        res = evaluate_detector(det, test, perturb=conds, progress=progress_enabled(),
                                resamples=resamples,
                                seed=derive_seed(ctx.seed, "jpeg96", kind) % 2**31)
        t = res.metrics.copy()
        for col in interval_columns():  # absent when resamples is 0
            if col not in t.columns:
                t[col] = np.nan
        t.insert(0, "detector", kind)
        frames.append(t[list(JPEG96_COLUMNS)])
    table = checked(pd.concat(frames, ignore_index=True), JPEG96_COLUMNS, JPEG96_TABLE)
    ctx.run.write_csv(JPEG96_TABLE, table)
    return {"file": JPEG96_TABLE, "conditions": ["none", *conds]}


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
