"""The LS-KD experiment (Chandrasegaran et al., ICML 2022) on generator attribution.

Teachers are trained with label smoothing alpha (`train_cnn_detector(task="attribute",
label_smoothing=alpha)`), students are distilled from each at every temperature T
(`distill_cnn_detector`, KD loss only), and every model is scored on one test set: attribution
accuracy and macro-F1 with 95 % bootstrap intervals, and the tightness of its penultimate-layer
class clusters (`metrics.attribution.cluster_tightness`: mean distance to the class centroid
over mean distance between centroids; lower = tighter). The paper's finding to test: a
label-smoothed teacher distils well only at T = 1.

`lskd_sets` draws the balanced train / val / test manifests from real + fake manifests;
`lskd_grid` trains, distils and scores (resumable: a model folder with its `lskd.json` is not
trained or scored again). The study stage (`study.lskd_stages`, `--preset lskd`) and
`bench/ls_kd.py` both call these.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ganforensics.detectors.cnn.archs import head_module
from ganforensics.detectors.cnn.data import ImageSet, as_image_set
from ganforensics.detectors.cnn.distill import distill_cnn_detector
from ganforensics.detectors.cnn.model import CNNDetector, load_cnn_detector
from ganforensics.detectors.cnn.train import train_cnn_detector
from ganforensics.errors import InputError
from ganforensics.evaluate.attribution import evaluate_attribution, true_classes
from ganforensics.metrics.attribution import cluster_tightness
from ganforensics.seeding import derive_seed

SPLITS = ("train", "val", "test")
TEACHER = "teacher"
RESULT_FILE = "lskd.json"
"""Per model folder: its row of the results (written last, so its presence means finished)."""
LSKD_COLUMNS = ("alpha", "model", "temperature", "arch", "n_test", "accuracy", "accuracy_lo",
                "accuracy_hi", "macro_f1", "macro_f1_lo", "macro_f1_hi", "within", "between",
                "cluster_ratio", "epochs", "train_seconds")
"""One row per model: the teacher's label smoothing `alpha`; `model` is `teacher` or `T=<T>`
(a student distilled at that temperature, `temperature`; NaN for teachers); accuracy and
macro-F1 with their 95 % bootstrap interval; `within`, `between` and `cluster_ratio` =
within / between of the penultimate features on the test images (lower = tighter)."""


def student_label(temperature: float) -> str:
    """The `model` value of a student distilled at `temperature` (`T=1`, `T=16`, `T=0.5`)."""
    return f"T={temperature:g}"


def lskd_sets(frames: Sequence[pd.DataFrame], counts: Mapping[str, int], seed: int
              ) -> dict[str, pd.DataFrame]:
    """Per split, at most `counts[split]` rows of each frame (the reals, then one frame per
    generator), drawn with a seed derived from `seed`, the split and the frame's generator;
    `path` holds absolute paths where the manifests have `abspath`."""
    out = {}
    for split in SPLITS:
        parts = []
        for df in frames:
            part = df[df["split"].astype(str) == split].copy()
            if not len(part):
                continue
            col = "abspath" if "abspath" in part.columns else "path"
            part["path"] = part[col].astype(str)
            name = str(part["generator"].iloc[0]) if "generator" in part else "real"
            state = derive_seed(seed, "lskd-sample", split, name) % 2**32
            parts.append(part.sample(n=min(int(counts[split]), len(part)), random_state=state))
        if not parts:
            raise InputError(f"LS-KD data: no {split} images")
        table = pd.concat(parts, ignore_index=True)
        keep = [c for c in ("path", "label", "generator", "source", "split") if c in table]
        out[split] = table[keep].reset_index(drop=True)
    return out


def penultimate(det: CNNDetector, images: Sequence[np.ndarray]) -> np.ndarray:
    """The inputs of the final linear layer (the penultimate features) for `images`."""
    fc = head_module(det.model, det.arch)

    def features(x: torch.Tensor) -> torch.Tensor:
        feats: list[torch.Tensor] = []
        hook = fc.register_forward_pre_hook(
            lambda _m, args: feats.append(args[0].detach().cpu()))
        try:
            det.network_outputs(x)
        finally:
            hook.remove()
        return torch.cat(feats).reshape(len(x), -1)

    return det.map_batches(list(images), features, (fc.in_features,))


def score_model(folder: str | Path, test: ImageSet, *, resamples: int, seed: int
                ) -> dict[str, Any]:
    """Accuracy and macro-F1 (with intervals) and cluster tightness of one saved model."""
    det = load_cnn_detector(folder)
    res = evaluate_attribution(det, test, resamples=resamples, seed=seed)
    y = true_classes(test.labels, test.generators, det.classes)
    keep = np.flatnonzero(y >= 0)
    tight = cluster_tightness(penultimate(det, [test.images[i] for i in keep]), y[keep])
    s = res.summary
    return {"n_test": len(keep), **{k: float(s[k]) for k in (
        "accuracy", "accuracy_lo", "accuracy_hi", "macro_f1", "macro_f1_lo", "macro_f1_hi")},
        "within": tight["within"], "between": tight["between"],
        "cluster_ratio": tight["ratio"], "epochs": det.meta.get("epochs"),
        "train_seconds": det.meta.get("train_seconds"), "classes": list(det.classes)}


def _cached(folder: Path, settings: Mapping[str, Any]) -> dict[str, Any] | None:
    """The stored row of a finished model trained with `settings` (None otherwise)."""
    p = folder / RESULT_FILE
    if not (p.is_file() and (folder / "model.safetensors").is_file()):
        return None
    try:
        row = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return row if row.get("settings") == dict(settings) else None


def lskd_grid(
    train: Any,
    val: Any,
    test: Any,
    out: str | Path,
    *,
    alphas: Sequence[float],
    temperatures: Sequence[float],
    seed: int,
    arch: str = "small",
    student_arch: str | None = None,
    recipe: str = "wang2020",
    epochs: int = 6,
    student_epochs: int | None = None,
    batch_size: int = 64,
    aug_prob: float = 0.1,
    resamples: int = 1000,
    log: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Teachers at each alpha, students at each T from each teacher, all scored on `test`:
    one row per model (`LSKD_COLUMNS`), teachers first within each alpha.

    `train` / `val` / `test`: manifests (path or DataFrame) with a `generator` column. Models
    live in `out/teacher-a<alpha>/` and `out/student-a<alpha>-T<T>/`; a folder holding its
    `lskd.json` for the same settings is neither trained nor scored again."""
    out = Path(out)
    test_set = as_image_set(test, "LS-KD test data")
    student_arch = student_arch or arch
    common = {"recipe": recipe, "batch_size": batch_size, "aug_prob": aug_prob,
              "progress": False}
    rows = []

    def run(folder: Path, settings: dict[str, Any], fit: Callable[[], Any]) -> None:
        row = _cached(folder, settings)
        if row is None:
            fit()
            row = {"settings": settings, **score_model(
                folder, test_set, resamples=resamples,
                seed=derive_seed(seed, "lskd-eval", folder.name) % 2**31)}
            (folder / RESULT_FILE).write_text(json.dumps(row, indent=1))
        elif log is not None:
            log(f"LS-KD: {folder.name} finished earlier, skipped")
        rows.append({"alpha": settings["alpha"], "model": settings["model"],
                     "temperature": settings.get("temperature", math.nan),
                     "arch": settings["arch"], **row})

    for a in alphas:
        a = float(a)
        tdir = out / f"teacher-a{a:g}"
        tset = {"alpha": a, "model": TEACHER, "arch": arch, "recipe": recipe,
                "epochs": epochs, "batch_size": batch_size, "aug_prob": aug_prob,
                "seed": derive_seed(seed, "lskd-teacher", a) % 2**31}
        run(tdir, tset, lambda tdir=tdir, tset=tset: train_cnn_detector(
            arch, recipe, train, val, tdir, task="attribute", label_smoothing=tset["alpha"],
            seed=tset["seed"], epochs=epochs, batch_size=batch_size, aug_prob=aug_prob,
            progress=False))
        for temp in temperatures:
            temp = float(temp)
            sdir = out / f"student-a{a:g}-T{temp:g}"
            sset = {"alpha": a, "model": student_label(temp), "temperature": temp,
                    "arch": student_arch, "teacher": tdir.name, "recipe": recipe,
                    "epochs": student_epochs or epochs, "batch_size": batch_size,
                    "aug_prob": aug_prob,
                    "seed": derive_seed(seed, "lskd-student", a, temp) % 2**31}
            run(sdir, sset, lambda sdir=sdir, sset=sset, tdir=tdir: distill_cnn_detector(
                tdir, student_arch, train, val, sdir, temperature=sset["temperature"],
                seed=sset["seed"], epochs=sset["epochs"], **common))
    table = pd.DataFrame(rows)
    return table.reindex(columns=list(LSKD_COLUMNS)).reset_index(drop=True)


def lskd_markdown(results: pd.DataFrame, seed_column: str = "seed") -> str:
    """Markdown tables (accuracy, macro-F1, cluster ratio) of alpha x model, mean ± sd over
    the seeds in `seed_column` when there are several."""
    seeds = results[seed_column].nunique() if seed_column in results else 1

    def cell(g: pd.DataFrame, col: str) -> str:
        v = g[col].to_numpy(float)
        if not len(v):
            return "-"
        sd = f" ± {v.std(ddof=1):.3f}" if len(v) > 1 else ""
        n = f" (n={len(v)})" if len(v) != seeds else ""
        return f"{v.mean():.3f}{sd}{n}"

    models = list(dict.fromkeys(results["model"].astype(str)))
    lines = []
    for metric, name in (("accuracy", "accuracy"), ("macro_f1", "macro-F1"),
                         ("cluster_ratio", "within/between distance (lower = tighter)")):
        lines.append(f"\n**{name}** (mean ± sd over {seeds} seed(s))\n")
        lines.append("| teacher α | " + " | ".join(models) + " |")
        lines.append("|---|" + "---|" * len(models))
        for a, g in results.groupby("alpha"):
            lines.append("| " + " | ".join([f"{a:g}", *(cell(g[g["model"] == m], metric)
                                                         for m in models)]) + " |")
    return "\n".join(lines) + "\n"
