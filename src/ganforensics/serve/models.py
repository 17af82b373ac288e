"""What `--models PATH` names, and loading those detectors once for the service.

A PATH is a detector folder (`model.json`), a CNNDetection `.pth`, or a study / demo run folder
(all of `detectors/*/`; a multi-seed run serves each seed's detectors as `seed-N/<id>`). Loading
goes through `detectors.loading.load_detector`, the one loading path. A run folder also gives
the reference spectrum: the mean and spread of its real test patches' durall profiles
(`tables/spectra_profiles.csv`, written by the study's spectra stage).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ganforensics.detectors.base import Detector, logit, sigmoid
from ganforensics.detectors.loading import load_detector
from ganforensics.errors import InputError
from ganforensics.study.measure_stages import PROFILES_TABLE

PROVENANCE_KEYS = ("arch", "source", "recipe", "created", "ganforensics_version", "seed",
                   "n_train", "n_val", "threshold_source", "val_metrics", "classifier",
                   "training_data", "train_manifest_sha256")
"""The `model.json` keys `/v1/models` shows as provenance (those a detector has)."""


@dataclass(frozen=True)
class ModelSpec:
    """One detector to serve: its display name, where it lives, its run folder (if any)."""

    name: str
    path: Path
    run: Path | None = None


@dataclass
class Reference:
    """The real images' durall profile of a run: frequency (fraction of Nyquist), mean, std."""

    source: str
    freq: list[float]
    mean: list[float]
    std: list[float]


@dataclass
class ServedDetector:
    """A loaded detector: `scorer` computes P(fake) (BatchNorm folded where possible);
    `detector` is the original, which Grad-CAM needs (under `lock`: its hooks are not
    thread-safe)."""

    spec: ModelSpec
    detector: Detector
    scorer: Detector
    reference: Reference | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def kind(self) -> str:
        return str(self.detector.kind)

    @property
    def threshold(self) -> float:
        return float(self.detector.threshold)

    @property
    def explainable(self) -> bool:
        """True for CNN detectors (Grad-CAM needs a torch network)."""
        return self.kind == "cnn"

    def provenance(self) -> dict[str, Any]:
        """The provenance fields of model.json (see `PROVENANCE_KEYS`)."""
        meta = dict(getattr(self.detector, "meta", {}) or {})
        return {k: meta[k] for k in PROVENANCE_KEYS if k in meta}


def _is_detector(p: Path) -> bool:
    return (p.is_file() and p.suffix.lower() in (".pth", ".pt")) or (p / "model.json").is_file()


def _run_detectors(run: Path, prefix: str = "") -> list[ModelSpec]:
    folder = run / "detectors"
    subs = sorted(d for d in folder.iterdir() if (d / "model.json").is_file())
    return [ModelSpec(prefix + d.name, d, run) for d in subs]


def _seed_runs(p: Path) -> list[Path]:
    return sorted(d for d in p.glob("seed-*") if (d / "detectors").is_dir())


def resolve_models(paths: Sequence[str | os.PathLike[str]]) -> list[ModelSpec]:
    """The detectors that `paths` name, with unique display names; InputError naming a PATH
    that holds none."""
    specs: list[ModelSpec] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise InputError(f"{p}: no such file or folder")
        if _is_detector(p):
            found = [ModelSpec(p.stem if p.is_file() else p.resolve().name, p)]
        elif (p / "detectors").is_dir():
            found = _run_detectors(p)
        elif seeds := _seed_runs(p):
            found = [s for run in seeds for s in _run_detectors(run, f"{run.name}/")]
        else:
            found = []
        if not found:
            raise InputError(f"{p}: no detector here (expected a detector folder with "
                             "model.json, a CNNDetection .pth, or a study/demo run folder)")
        specs += found
    seen: dict[str, int] = {}
    unique = []
    for s in specs:
        n = seen.get(s.name, 0)
        seen[s.name] = n + 1
        unique.append(s if n == 0 else ModelSpec(f"{s.name}~{n + 1}", s.path, s.run))
    return unique


def demo_models(demo_dir: Path) -> list[ModelSpec]:
    """The detectors of the demo run in `demo_dir`, or InputError saying how to make one."""
    if not demo_dir.exists():
        raise InputError(f"no --models given and no demo run in {demo_dir}/: make one with "
                         "`ganforensics demo --quick` (about 1.5 minutes), or pass --models PATH")
    return resolve_models([demo_dir])


def load_reference(run: Path | None) -> Reference | None:
    """The run's real-image profile (`tables/spectra_profiles.csv`, group "real"), or None."""
    if run is None:
        return None
    table = run / PROFILES_TABLE
    if not table.is_file():
        return None
    try:
        df = pd.read_csv(table)
        real = df[df["group"] == "real"].sort_values("bin")
    except (OSError, ValueError, KeyError):
        return None
    if real.empty:
        return None
    return Reference(str(table), *(real[c].astype(float).tolist() for c in ("freq", "mean", "std")))


def load_served(specs: Sequence[ModelSpec]) -> list[ServedDetector]:
    """Load each detector once (plus its inference copy and its run's reference spectrum)."""
    refs: dict[Path | None, Reference | None] = {}
    served = []
    for spec in specs:
        det = load_detector(spec.path)
        scorer = det.fused() if hasattr(det, "fused") else det
        if spec.run not in refs:
            refs[spec.run] = load_reference(spec.run)
        served.append(ServedDetector(spec, det, scorer, refs[spec.run]))
    return served


def ensemble_score(probs: Sequence[float], thresholds: Sequence[float]) -> float:
    """One P(fake) from several detectors, each centred on its own calibrated threshold:
    sigmoid(mean(logit(p_i) - logit(t_i))); it is >= 0.5 exactly when the detectors' mean
    margin says fake, so its threshold is 0.5."""
    margin = np.mean(logit(np.asarray(probs)) - logit(np.asarray(thresholds)))
    return float(sigmoid(np.asarray(margin)))
