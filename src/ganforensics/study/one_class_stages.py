"""Study stages of the one-class detector (`detectors.one_class`, docs/detectors.md): its
training for the detection table, and the `one-class` stage comparing no oversampling, DOPING,
whole-prior sampling and input-space SMOTE on every setup and on perturbed / grayscale reals.

Everything is fitted on the train reals; each threshold is set on the val reals alone (target
FPR), never on test images. Features are computed once per image and shared by the methods; the
AAE is fitted once and shared by ``doping`` and ``prior``, so the methods differ only by their
synthetic vectors.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ganforensics.data.manifest import split_of
from ganforensics.data.perturb import image_id_of, parse_ops
from ganforensics.detectors.base import sigmoid
from ganforensics.detectors.doping import METHODS, fit_aae
from ganforensics.detectors.one_class import (
    OneClassDetector,
    oversample_seed,
    train_one_class_detector,
)
from ganforensics.evaluate.detection import CLEAN, GRIDS
from ganforensics.metrics.bootstrap import CONFIDENCE, interval_columns
from ganforensics.metrics.detection import per_generator
from ganforensics.seeding import derive_seed
from ganforensics.study.context import (
    ONE_CLASS,
    StudyContext,
    checked,
    decode,
    study_test_set,
)

ONE_CLASS_TABLE = "tables/one_class.csv"
ONE_CLASS_COLUMNS = ("method", "generator", "n_real", "n_fake", "auc", "auc_lo", "auc_hi",
                     "tpr_at_threshold", "test_fpr", "threshold", "val_fpr", "n_synthetic")
"""Per oversampling method and setup: AUC [95 % bootstrap interval], TPR at the threshold set
for `target_fpr` on the val reals, and the FPR that threshold gives on the clean test reals."""
ONE_CLASS_FP_TABLE = "tables/one_class_fp.csv"
ONE_CLASS_FP_COLUMNS = ("method", "condition", "n", "fpr", "fpr_lo", "fpr_hi", "diff_vs_none",
                        "diff_lo", "diff_hi")
"""False positives on the test reals, clean and under each robustness-grid perturbation
(grayscale included): FPR with a bootstrap 95 % interval over the reals, and the paired
difference to no oversampling (the same resampled reals for both)."""


def _cfg(ctx: StudyContext) -> dict[str, Any]:
    return ctx.cfg["detectors"]["one_class"]


def one_class_needs(cfg: dict[str, Any], kind: str) -> tuple[str, ...]:
    """Extra stages a one-class stage needs: the study's CNN for ``cnn-embedding``."""
    if kind == ONE_CLASS and cfg["detectors"]["one_class"]["features"] == "cnn-embedding":
        return ("detector-cnn",)
    return ()


def _embedding(ctx: StudyContext) -> str | None:
    return str(ctx.detector_dir("cnn")) if _cfg(ctx)["features"] == "cnn-embedding" else None


def train_study_one_class(ctx: StudyContext, train: pd.DataFrame, val: pd.DataFrame,
                          seed: int) -> OneClassDetector:
    """The one-class detector of the detection table: the train reals of `train` (its fakes
    are dropped here, never seen), threshold on the reals of `val`."""
    c = _cfg(ctx)
    reals = train[train["label"].astype(int) == 0]
    return train_one_class_detector(
        reals, val, features=c["features"], model=c["model"], target_fpr=c["target_fpr"],
        oversample="doping", ratio=c["doping"], edge_quantile=c["edge_quantile"],
        embedding_model=_embedding(ctx), seed=seed, train_name="study train reals")


def _bootstrap_rate(flags: dict[str, np.ndarray], resamples: int, seed: int
                    ) -> dict[str, tuple[float, float, float, float]]:
    """Per method: (lo, hi) of the mean of `flags` and (lo, hi) of its difference to
    ``none``, resampling the same images for every method."""
    n = len(next(iter(flags.values())))
    tail = (1.0 - CONFIDENCE) / 2.0
    out = {}
    if resamples < 1 or n == 0:
        return {m: (np.nan,) * 4 for m in flags}
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    base = flags["none"][idx].mean(axis=1) if "none" in flags else None
    for m, f in flags.items():
        rates = f[idx].mean(axis=1)
        lo, hi = np.quantile(rates, [tail, 1 - tail])
        dlo = dhi = np.nan
        if base is not None:
            dlo, dhi = np.quantile(rates - base, [tail, 1 - tail])
        out[m] = (float(lo), float(hi), float(dlo), float(dhi))
    return out


def one_class_features(ctx: StudyContext) -> dict[str, Any]:
    """The feature vectors the `one-class` stage compares methods on: train / val reals,
    the test set (with its rows) and the test reals under each robustness-grid condition."""
    c = _cfg(ctx)
    real = ctx.real_manifest()
    train_imgs, _ = decode(split_of(real, "train"), "train reals")
    val_imgs, _ = decode(split_of(real, "val"), "val reals")
    test_imgs, rows = decode(study_test_set(ctx), "test set")
    emb = None
    if c["features"] == "cnn-embedding":
        from ganforensics.detectors.cnn.model import load_cnn_detector

        emb = load_cnn_detector(ctx.detector_dir("cnn"))
    proto = OneClassDetector(c["features"], c["model"], embedding=emb)
    x_train, x_val = proto.features(train_imgs), proto.features(val_imgs)
    x_test = proto.features(test_imgs)
    real_idx = np.flatnonzero(rows["label"].astype(int).to_numpy() == 0)
    conditions = [CLEAN, *GRIDS[ctx.cfg["evaluate"]["grid"]]]
    x_cond = {CLEAN: x_test[real_idx]}
    for cond in conditions[1:]:
        chain = parse_ops(cond)
        imgs = [chain(test_imgs[i], image_id_of(rows.iloc[i])) for i in real_idx]
        x_cond[cond] = proto.features(imgs)
    return {"train": x_train, "val": x_val, "test": x_test, "rows": rows,
            "conditions": x_cond, "proto": proto}


def compare_oversampling(feats: dict[str, Any], c: dict[str, Any], seed: int, resamples: int
                         ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Fit one detector per method of `METHODS` on `feats["train"]` (threshold: target FPR on
    `feats["val"]`); the `ONE_CLASS_TABLE` and `ONE_CLASS_FP_TABLE` frames and a summary."""
    x_train, x_val, x_test, rows = feats["train"], feats["val"], feats["test"], feats["rows"]
    proto, x_cond = feats["proto"], feats["conditions"]
    conditions = list(x_cond)
    ratio = float(c["compare_ratio"])
    fitted = fit_aae(x_train, seed=oversample_seed(seed))
    frames: list[pd.DataFrame] = []
    flags: dict[str, dict[str, np.ndarray]] = {cond: {} for cond in conditions}
    info: dict[str, Any] = {}
    for method in METHODS:
        det = OneClassDetector(c["features"], c["model"], embedding=proto.embedding)
        det._spectral = proto._spectral  # the profile length fixed by the training features
        det.fit_features(x_train, seed=seed, oversample=method,
                         ratio=0.0 if method == "none" else ratio,
                         edge_quantile=c["edge_quantile"], fitted_aae=fitted)
        t = det.calibrate_fpr(x_val, c["target_fpr"])
        scores = rows[["label", "generator"]].assign(
            prob_fake=sigmoid(det.logits_from_features(x_test)))
        table = per_generator(scores, t, resamples=resamples,
                              seed=derive_seed(seed, "auc", method))
        for col in interval_columns():
            if col not in table.columns:
                table[col] = np.nan
        frames.append(pd.DataFrame({
            "method": method, "generator": table["generator"], "n_real": table["n_real"],
            "n_fake": table["n_fake"], "auc": table["auc"], "auc_lo": table["auc_lo"],
            "auc_hi": table["auc_hi"], "tpr_at_threshold": table["fake_acc_cal"],
            "test_fpr": 1.0 - table["real_acc_cal"], "threshold": t,
            "val_fpr": det.meta["val_fpr"], "n_synthetic": det.meta["n_train"]["synthetic"]}))
        for cond in conditions:
            flags[cond][method] = sigmoid(det.logits_from_features(x_cond[cond])) >= t
        info[method] = {"threshold": t, "n_synthetic": det.meta["n_train"]["synthetic"]}
    table = checked(pd.concat(frames, ignore_index=True), ONE_CLASS_COLUMNS, ONE_CLASS_TABLE)
    fp_rows = []
    for cond in conditions:
        ci = _bootstrap_rate(flags[cond], resamples, derive_seed(seed, "fp", cond))
        for method, f in flags[cond].items():
            lo, hi, dlo, dhi = ci[method]
            fp_rows.append({"method": method, "condition": cond, "n": len(f),
                            "fpr": float(f.mean()), "fpr_lo": lo, "fpr_hi": hi,
                            "diff_vs_none": float(f.mean() - flags[cond]["none"].mean()),
                            "diff_lo": dlo, "diff_hi": dhi})
    fp = checked(pd.DataFrame(fp_rows), ONE_CLASS_FP_COLUMNS, ONE_CLASS_FP_TABLE)
    return table, fp, info


def stage_one_class(ctx: StudyContext) -> dict[str, Any]:
    """Fit one detector per oversampling method on the train reals (threshold: target FPR on
    the val reals), then AUC / TPR on every setup and FPR on clean and perturbed test reals."""
    c = _cfg(ctx)
    feats = one_class_features(ctx)
    seed = derive_seed(ctx.seed, "one-class-stage") % 2**31
    table, fp, info = compare_oversampling(feats, c, seed, int(ctx.cfg["evaluate"]["resamples"]))
    ctx.run.write_csv(ONE_CLASS_TABLE, table)
    ctx.run.write_csv(ONE_CLASS_FP_TABLE, fp)
    return {"files": [ONE_CLASS_TABLE, ONE_CLASS_FP_TABLE], "methods": info,
            "features": c["features"], "model": c["model"], "ratio": float(c["compare_ratio"]),
            "n_train_reals": len(feats["train"]), "n_val_reals": len(feats["val"])}
