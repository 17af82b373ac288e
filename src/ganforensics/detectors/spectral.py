"""Spectral detectors: `spectral-profile` (Durall) and `spectral-decay` (Dzanic).

- ``spectral-profile``: the durall azimuthal profile of ``20 ln|F|`` (DESIGN B1), linearly
  resampled to a fixed length (default: the profile length of the most common training size,
  e.g. 20 at 32 px), normalised per image (``first``: divided by its first value, the default;
  ``minmax``: scaled to [0, 1]; ``none``), standardised, then logistic regression (default) or
  a linear SVM.
- ``spectral-decay``: ``[b, y_i, y_f]`` of the high-frequency decay fit (DESIGN B2),
  standardised, then kNN with k = 5 (default), an RBF-SVM or a small MLP.

Any classifier of `ganforensics.spectral.classifiers.CLASSIFIERS` works with either kind. A
saved detector is a folder with ``model.json`` (kind, feature settings, classifier settings,
threshold, provenance) and ``model.npz`` (the fitted arrays; loaded with ``allow_pickle=False``).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ganforensics import __version__
from ganforensics.data.manifest import usable
from ganforensics.detectors.base import open_array_folder, sigmoid
from ganforensics.errors import ConfigError, InputError, UnsupportedModelError
from ganforensics.io.atomic import atomic_path, write_json_atomic
from ganforensics.io.images import shape_batches
from ganforensics.io.loading import load_images
from ganforensics.metrics.threshold import calibrate_threshold
from ganforensics.seeding import DEFAULT_SEED
from ganforensics.spectral.classifiers import (
    CLASSIFIERS,
    DEFAULT_HIDDEN,
    DEFAULT_K,
    classifier_logits,
    describe,
    fit_classifier,
)
from ganforensics.spectral.decay import (
    FEATURE_NAMES,
    FIT_START,
    SMOOTH_SPAN,
    decay_features,
    decay_plan,
)
from ganforensics.spectral.spectra import durall_length, durall_profiles, resample_profiles

KINDS = ("spectral-profile", "spectral-decay")
DEFAULT_CLASSIFIER = {"spectral-profile": "logreg", "spectral-decay": "knn"}
NORMALIZATIONS = ("first", "minmax", "none")
# short names: "svm" is the linear SVM of Durall for profiles, the RBF-SVM of Dzanic for decay
ALIASES = {
    "svm": {"spectral-profile": "linear-svm", "spectral-decay": "rbf-svm"},
    "logistic": "logreg", "lr": "logreg", "linear_svm": "linear-svm", "rbf_svm": "rbf-svm",
}
FORMAT_VERSION = 1


def _size_groups(images: Sequence[np.ndarray]) -> dict[tuple[int, int], list[int]]:
    """Image indices by (H, W), in order of first appearance; checks each image's shape."""
    for i, img in enumerate(images):
        a = np.asarray(img)
        if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] != 3):
            raise InputError(f"image {i}: expected (H, W, 3) RGB or (H, W) gray, got {a.shape}")
    batches = shape_batches(images, len(images), key=lambda shape: shape[:2])
    return {tuple(np.shape(images[idx[0]])[:2]): idx for idx in batches}


def _as_list(images: Sequence[np.ndarray] | np.ndarray) -> Sequence[np.ndarray]:
    if isinstance(images, np.ndarray):
        if images.ndim == 4 or (images.ndim == 3 and images.shape[-1] != 3):
            return images  # a stack: rows are images
        raise InputError(f"expected a stack (N, H, W, 3) or a list of images, got {images.shape}")
    items = list(images)
    if not items:
        raise InputError("no images given")
    return items


def _normalise(prof: np.ndarray, how: str) -> np.ndarray:
    if how == "first":
        first = prof[:, :1]
        return prof / np.where(first != 0, first, 1.0)
    if how == "minmax":
        lo, hi = prof.min(axis=1, keepdims=True), prof.max(axis=1, keepdims=True)
        return (prof - lo) / np.where(hi > lo, hi - lo, 1.0)
    if how == "none":
        return prof
    raise ConfigError(f"unknown normalize {how!r} (choose from {', '.join(NORMALIZATIONS)})")


class SpectralDetector:
    """A spectral feature extractor plus a small classifier (implements `Detector`)."""

    def __init__(
        self,
        kind: str,
        classifier: str | None = None,
        *,
        profile_length: int | None = None,
        normalize: str = "first",
        n_bins: int | None = None,
        fit_start: float = FIT_START,
        k: int = DEFAULT_K,
        hidden: Sequence[int] = DEFAULT_HIDDEN,
    ) -> None:
        if kind not in KINDS:
            raise ConfigError(f"unknown spectral detector kind {kind!r} (choose from {KINDS})")
        classifier = (classifier or DEFAULT_CLASSIFIER[kind]).strip().lower()
        alias = ALIASES.get(classifier)
        if alias is not None:
            classifier = alias[kind] if isinstance(alias, dict) else alias
        if classifier not in CLASSIFIERS:
            raise ConfigError(
                f"unknown classifier {classifier!r} (choose from {', '.join(CLASSIFIERS)})"
            )
        if normalize not in NORMALIZATIONS:
            raise ConfigError(
                f"unknown normalize {normalize!r} (choose from {', '.join(NORMALIZATIONS)})"
            )
        if not 0.0 < float(fit_start) < 1.0:
            raise ConfigError(f"fit_start must be in (0, 1), got {fit_start}")
        if int(k) < 1:
            raise ConfigError(f"k must be >= 1, got {k}")
        self.kind = kind
        self.classifier = classifier
        self.profile_length = None if profile_length is None else int(profile_length)
        self.normalize = normalize
        self.n_bins = None if n_bins is None else int(n_bins)
        self.fit_start = float(fit_start)
        self.k = int(k)
        self.hidden = tuple(int(h) for h in hidden)
        self.threshold = 0.5
        self.params: dict[str, np.ndarray] = {}
        self.meta: dict[str, Any] = {}
        self._refresh_meta()

    # ------------------------------------------------------------------ features
    def feature_settings(self) -> dict[str, Any]:
        """What model.json records about the features."""
        if self.kind == "spectral-profile":
            return {
                "spectrum": "durall",
                "profile_length": self.profile_length,
                "resample": "linear over first..last bin",
                "normalize": self.normalize,
                "dtype": "float64",
            }
        return {
            "features": list(FEATURE_NAMES),
            "n_bins": self.n_bins if self.n_bins is not None else "auto",
            "fit_start": self.fit_start,
            "smooth_span": SMOOTH_SPAN,
            "empty_bins": "dropped",
            "dtype": "float64",
        }

    def features(self, images: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """Feature vectors ``(N, F)`` of RGB uint8 images (any mix of sizes)."""
        items = _as_list(images)
        groups = _size_groups(items)
        if self.kind == "spectral-profile" and self.profile_length is None:
            (h, w), _ = max(groups.items(), key=lambda kv: len(kv[1]))
            self.profile_length = durall_length(h, w)
        if self.kind == "spectral-decay" and not self.params:  # record bins while fitting
            self.meta["decay_bins_by_size"] = {
                f"{h}x{w}": decay_plan(h, w, self.n_bins).n_bins for h, w in groups
            }
        out: np.ndarray | None = None
        for idx in groups.values():
            stack = np.stack([np.asarray(items[i]) for i in idx])
            if self.kind == "spectral-profile":
                prof = resample_profiles(durall_profiles(stack), int(self.profile_length or 0))
                feats = _normalise(prof, self.normalize)
            else:
                feats = decay_features(stack, n_bins=self.n_bins, fit_start=self.fit_start)
            if out is None:
                out = np.empty((len(items), feats.shape[1]), dtype=np.float64)
            out[idx] = feats
        assert out is not None
        return out

    # ------------------------------------------------------------------ fitting
    def fit_features(
        self, x: np.ndarray, labels: Sequence[int] | np.ndarray, *, seed: int = DEFAULT_SEED
    ) -> SpectralDetector:
        """Fit the classifier on feature vectors (from `features`)."""
        self.params = fit_classifier(
            self.classifier, x, np.asarray(labels), seed=seed, k=self.k, hidden=self.hidden
        )
        y = np.asarray(labels).astype(int)
        self.meta["seed"] = int(seed)
        self.meta["n_train"] = {"real": int((y == 0).sum()), "fake": int((y == 1).sum())}
        self._refresh_meta()
        return self

    def fit(
        self,
        images: Sequence[np.ndarray] | np.ndarray,
        labels: Sequence[int] | np.ndarray,
        *,
        seed: int = DEFAULT_SEED,
    ) -> SpectralDetector:
        """Compute features of in-memory images and fit the classifier."""
        if len(labels) != len(images):
            raise InputError(f"{len(images)} images but {len(labels)} labels")
        return self.fit_features(self.features(images), labels, seed=seed)

    def calibrate(self, images: Sequence[np.ndarray] | np.ndarray, labels: Sequence[int]) -> float:
        """Set `threshold` from validation images (balanced accuracy); returns it."""
        probs = self.probs(images)
        y = np.asarray(labels).astype(int)
        self.threshold = float(calibrate_threshold(probs, y))
        self.meta["threshold_source"] = "validation"
        self.meta["n_val"] = int(len(y))
        if len(np.unique(y)) == 2:
            # sklearn.metrics adds ~2 s to the import (python -X importtime); only needed here
            from sklearn.metrics import roc_auc_score

            pred = probs >= self.threshold
            self.meta["val_metrics"] = {
                "auc": float(roc_auc_score(y, probs)),
                "balanced_acc_at_threshold": float(
                    (np.mean(pred[y == 1]) + np.mean(~pred[y == 0])) / 2
                ),
            }
        self._refresh_meta()
        return self.threshold

    # ------------------------------------------------------------------ scoring
    def _check_fitted(self) -> None:
        if not self.params:
            raise UnsupportedModelError(f"{self.kind} detector is not fitted")

    def logits_from_features(self, x: np.ndarray) -> np.ndarray:
        """Logits for feature vectors ``(N, F)``."""
        self._check_fitted()
        return np.asarray(classifier_logits(self.classifier, self.params, x), dtype=np.float64)

    def logits(self, images: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """Logits (float64, shape (N,)) for RGB uint8 images (H, W, 3)."""
        self._check_fitted()
        return self.logits_from_features(self.features(images))

    def probs(self, images: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """P(fake) = sigmoid(logit) (float64, shape (N,)) per image."""
        return sigmoid(self.logits(images))

    # ------------------------------------------------------------------ persistence
    def _refresh_meta(self) -> None:
        self.meta.update(
            {
                "kind": self.kind,
                "format_version": FORMAT_VERSION,
                "classifier": describe(self.classifier, k=self.k, hidden=self.hidden),
                "feature_settings": self.feature_settings(),
                "threshold": float(self.threshold),
                "labels": {"real": 0, "fake": 1},
                "score": "logit; P(fake) = sigmoid(logit)",
            }
        )
        self.meta.setdefault("threshold_source", "default 0.5 (no validation data)")

    def save(self, out_dir: str | os.PathLike[str]) -> Path:
        """Write ``model.json`` and ``model.npz`` into `out_dir`."""
        self._check_fitted()
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self._refresh_meta()
        self.meta.setdefault(
            "created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        )
        self.meta["ganforensics_version"] = __version__
        with atomic_path(out / "model.npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **self.params)
        write_json_atomic(out / "model.json", self.meta)
        return out


def load_spectral_detector(path: str | os.PathLike[str]) -> SpectralDetector:
    """Load a saved spectral detector folder (or its model.json)."""
    folder, meta = open_array_folder(path, "spectral detector")
    meta_path, arr_path = folder / "model.json", folder / "model.npz"
    kind = meta.get("kind")
    if kind not in KINDS:
        raise UnsupportedModelError(f"{meta_path}: kind {kind!r} is not a spectral detector")
    fs = meta.get("feature_settings", {})
    clf = meta.get("classifier", {})
    try:
        det = SpectralDetector(
            kind,
            clf.get("name"),
            profile_length=fs.get("profile_length"),
            normalize=fs.get("normalize", "first"),
            n_bins=None if fs.get("n_bins", "auto") == "auto" else int(fs["n_bins"]),
            fit_start=float(fs.get("fit_start", FIT_START)),
            k=int(clf.get("k", DEFAULT_K)),
            hidden=tuple(clf.get("hidden", DEFAULT_HIDDEN)),
        )
    except ConfigError as exc:
        raise InputError(f"{meta_path}: {exc}") from None
    try:
        with np.load(arr_path, allow_pickle=False) as data:
            det.params = {k: np.array(data[k]) for k in data.files}
    except (OSError, ValueError) as exc:
        raise InputError(f"{arr_path}: unreadable arrays ({exc})") from None
    det.meta = dict(meta)
    det.threshold = float(meta.get("threshold", 0.5))
    return det


# ---------------------------------------------------------------------- manifests


def load_manifest_images(
    df: pd.DataFrame, *, what: str = "images", need_labels: bool = True
) -> tuple[list[np.ndarray], np.ndarray, list[tuple[str, str]]]:
    """Decode the rows of a manifest (``abspath``, ``label``); bad files are skipped.

    Rows that already carry an ``error`` are left out. Returns (images, labels, errors) where
    errors are the (path, reason) pairs of the files that did not decode (one summary warning).
    """
    if "abspath" not in df.columns:
        raise InputError(f"{what}: manifest rows need an 'abspath' column")
    if need_labels and ("label" not in df.columns or df["label"].isna().any()):
        n = int(df["label"].isna().sum()) if "label" in df.columns else len(df)
        raise InputError(f"{what}: {n} row(s) without a label (0 real / 1 fake)")
    df = usable(df)
    labels_all = (
        df["label"].astype(int).to_numpy() if need_labels else np.full(len(df), -1, dtype=int)
    )
    loaded = load_images(df, what=what, progress=True)
    return loaded.images, labels_all[loaded.keep], loaded.errors


def _manifest_hash(df: pd.DataFrame) -> str:
    h = hashlib.sha256()
    cols = [c for c in ("sha256", "abspath", "label") if c in df.columns]
    for row in df[cols].itertuples(index=False):
        h.update("\x1f".join("" if pd.isna(v) else str(v) for v in row).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def train_spectral_detector(
    kind: str,
    train_df: pd.DataFrame,
    val_df: pd.DataFrame | None = None,
    *,
    classifier: str | None = None,
    seed: int = DEFAULT_SEED,
    **options: Any,
) -> SpectralDetector:
    """Train a spectral detector on manifest rows; calibrate its threshold on `val_df`.

    `options`: ``profile_length``, ``normalize`` (profile kind); ``n_bins``, ``fit_start``
    (decay kind); ``k``, ``hidden`` (classifiers). Undecodable files are skipped (warned).
    """
    det = SpectralDetector(kind, classifier, **options)
    images, labels, errors = load_manifest_images(train_df, what="training images")
    if not images:
        raise InputError("no decodable training images")
    counts = Counter(labels.tolist())
    if counts.get(0, 0) == 0 or counts.get(1, 0) == 0:
        raise InputError(
            f"training needs real (label 0) and fake (label 1) images; got {counts.get(0, 0)} "
            f"real and {counts.get(1, 0)} fake"
        )
    det.fit(images, labels, seed=seed)
    det.meta["train_manifest_sha256"] = _manifest_hash(train_df)
    det.meta["train_skipped"] = len(errors)
    if "generator" in train_df.columns:
        det.meta["train_generators"] = sorted(
            {str(g) for g in train_df["generator"].dropna().unique()}
        )
    if val_df is not None and len(val_df):
        v_images, v_labels, v_err = load_manifest_images(val_df, what="validation images")
        if v_images:
            det.calibrate(v_images, v_labels)
            det.meta["val_manifest_sha256"] = _manifest_hash(val_df)
            det.meta["val_skipped"] = len(v_err)
    return det
