"""One-class detectors (kind ``one-class``): fitted on real images only, fakes are anomalies.

Features (`FEATURES`):

- ``spectral-profile``: the durall azimuthal profile of the ``spectral-profile`` detector
  (same extractor, same settings; `ganforensics.detectors.spectral`);
- ``decay``: the ``[b, y_i, y_f]`` decay-fit features of the ``spectral-decay`` detector;
- ``cnn-embedding``: the penultimate activations (the input of the one-logit head, i.e. the
  global-average-pooled last feature maps) of a saved CNN detector given as
  ``embedding_model``; its ``model.safetensors`` + ``model.json`` are copied into the
  detector's ``embedding/`` folder so the saved detector is self-contained.

Models (`MODELS`), fitted with scikit-learn on standardised features and kept as arrays that
NumPy code here scores (a reload gives the same scores; no pickle):

- ``knn``: anomaly score = mean Euclidean distance to the k nearest training vectors (k = 5);
  saved: the standardised reference vectors.
- ``ocsvm``: OneClassSVM (RBF, nu = 0.1, gamma = "scale"); anomaly score = minus the decision
  function; saved: support vectors, dual coefficients, intercept and the numeric gamma.
- ``isolation-forest``: IsolationForest (100 trees, 256 samples each); anomaly score =
  ``2 ** (-E[h(x)] / c(256))`` as in sklearn; saved: every tree's node arrays.

The logit is ``asinh`` of the anomaly score standardised by the median and inter-quartile range
of the training vectors' scores, so P(fake) = sigmoid(logit) grows with anomaly and does not
saturate to 1.0 in float64 for far-out images. The threshold is set
on held-out reals only (`fpr_threshold`): the smallest P(fake) above all but
``floor(target_fpr * n)`` of them. Optional oversampling of the training vectors (DOPING and
its baselines) is `ganforensics.detectors.doping`.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ganforensics import __version__
from ganforensics.detectors.base import open_array_folder, sigmoid
from ganforensics.detectors.doping import (
    AAE,
    DEFAULT_EDGE_QUANTILE,
    AAEConfig,
    augment,
    check_options,
)
from ganforensics.detectors.spectral import (
    SpectralDetector,
    _manifest_hash,
    load_manifest_images,
)
from ganforensics.errors import ConfigError, InputError, UnsupportedModelError
from ganforensics.io.atomic import atomic_path, write_json_atomic
from ganforensics.io.images import shape_batches
from ganforensics.seeding import DEFAULT_SEED, derive_seed

KIND = "one-class"
FEATURES = ("spectral-profile", "decay", "cnn-embedding")
MODELS = ("isolation-forest", "ocsvm", "knn")
DEFAULT_FEATURES = "spectral-profile"
DEFAULT_MODEL = "knn"
DEFAULT_TARGET_FPR = 0.05
DEFAULT_VAL_FRACTION = 0.2
"""Share of the training reals' sources held out for the threshold when no --val is given."""
DEFAULT_K = 5
DEFAULT_NU = 0.1
DEFAULT_TREES = 100
DEFAULT_MAX_SAMPLES = 256
EMBEDDING_DIR = "embedding"
FORMAT_VERSION = 1
_SPECTRAL_KIND = {"spectral-profile": "spectral-profile", "decay": "spectral-decay"}


def average_path_length(n: np.ndarray) -> np.ndarray:
    """c(n) of Liu et al.: the mean path length of an unsuccessful BST search among n points."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    two = n == 2
    big = n > 2
    out[two] = 1.0
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


def fpr_threshold(real_probs: np.ndarray, target_fpr: float) -> float:
    """Threshold on P(fake) (decision: fake when P >= threshold) that flags at most
    ``floor(target_fpr * n)`` of the held-out reals `real_probs` and no fewer than needed."""
    p = np.sort(np.asarray(real_probs, dtype=np.float64))
    if p.ndim != 1 or len(p) == 0:
        raise InputError("the FPR threshold needs at least one held-out real image")
    if not 0.0 <= target_fpr < 1.0:
        raise ConfigError(f"target FPR must be in [0, 1), got {target_fpr}")
    k = int(math.floor(target_fpr * len(p) + 1e-9))
    return float(np.nextafter(p[len(p) - k - 1], np.inf))


def oversample_seed(seed: int) -> int:
    """The seed of the oversampling (and its AAE) of a detector fitted with `seed`."""
    return derive_seed(seed, "oversample")


class OneClassDetector:
    """Features of real images + a one-class model (implements `Detector`)."""

    kind = KIND

    def __init__(self, features: str = DEFAULT_FEATURES, model: str = DEFAULT_MODEL, *,
                 k: int = DEFAULT_K, nu: float = DEFAULT_NU, n_trees: int = DEFAULT_TREES,
                 embedding: Any = None, embedding_source: str | None = None,
                 profile_length: int | None = None, normalize: str = "first",
                 n_bins: int | None = None, fit_start: float | None = None) -> None:
        if features not in FEATURES:
            raise ConfigError(f"unknown features {features!r} (choose from {', '.join(FEATURES)})")
        if model not in MODELS:
            raise ConfigError(f"unknown one-class model {model!r} (choose from "
                              f"{', '.join(MODELS)})")
        if features == "cnn-embedding" and embedding is None:
            raise ConfigError("--features cnn-embedding needs a saved CNN detector "
                              "(--embedding-model DIR)")
        if int(k) < 1 or not 0.0 < float(nu) <= 1.0 or int(n_trees) < 1:
            raise ConfigError(f"need k >= 1, 0 < nu <= 1, trees >= 1 (got {k}, {nu}, {n_trees})")
        self.features_name = features
        self.model = model
        self.k, self.nu, self.n_trees = int(k), float(nu), int(n_trees)
        self.embedding = embedding
        self.embedding_source = embedding_source
        spectral_opts: dict[str, Any] = {"profile_length": profile_length,
                                         "normalize": normalize, "n_bins": n_bins}
        if fit_start is not None:
            spectral_opts["fit_start"] = float(fit_start)
        self._spectral = (SpectralDetector(_SPECTRAL_KIND[features], **spectral_opts)
                          if features in _SPECTRAL_KIND else None)
        self.threshold = 0.5
        self.params: dict[str, np.ndarray] = {}
        self.meta: dict[str, Any] = {}
        self._refresh_meta()

    # ------------------------------------------------------------------ features
    def feature_settings(self) -> dict[str, Any]:
        if self._spectral is not None:
            return {"extractor": self.features_name, **self._spectral.feature_settings()}
        emb = self.embedding
        return {"extractor": self.features_name, "net": emb.arch,
                "layer": "input of the one-logit head (penultimate, pooled)",
                "folder": EMBEDDING_DIR, "embedding_source": self.embedding_source}

    def features(self, images: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """Feature vectors ``(N, F)`` of RGB uint8 images."""
        if self._spectral is not None:
            return self._spectral.features(images)
        return cnn_embeddings(self.embedding, images)

    # ------------------------------------------------------------------ fitting
    def fit_features(self, x: np.ndarray, *, seed: int = DEFAULT_SEED,
                     oversample: str = "none", ratio: float = 0.0,
                     edge_quantile: float = DEFAULT_EDGE_QUANTILE,
                     aae: AAEConfig | None = None, fitted_aae: AAE | None = None,
                     ) -> OneClassDetector:
        """Fit on the feature vectors of reals `x` (optionally oversampled; the scaler and
        the logit's scale come from `x` itself). `fitted_aae`: an AAE already fitted on `x`
        (`oversample_seed(seed)`), shared by several oversampling runs."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or len(x) < 2 or not np.isfinite(x).all():
            raise InputError(f"one-class training needs >= 2 finite feature vectors, "
                             f"got {x.shape}")
        check_options(oversample, ratio, edge_quantile)
        mean, scale = x.mean(axis=0), x.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        x_all, aug = augment(x, oversample, ratio, edge_quantile=edge_quantile, cfg=aae,
                             seed=oversample_seed(seed), fitted=fitted_aae)
        z = (x_all - mean) / scale
        params: dict[str, np.ndarray] = {"scaler_mean": mean, "scaler_scale": scale}
        params |= _fit_model(self.model, z, k=self.k, nu=self.nu, n_trees=self.n_trees,
                             seed=seed)
        self.params = params
        s = self.anomaly_scores(x)
        q1, med, q3 = np.percentile(s, [25, 50, 75])
        self.params["score_center"] = np.array([med])
        self.params["score_scale"] = np.array([q3 - q1 if q3 > q1 else (np.std(s) or 1.0)])
        self.meta["seed"] = int(seed)
        self.meta["n_train"] = {"real": len(x), "fake": 0, "synthetic": len(x_all) - len(x)}
        self.meta["oversampling"] = aug
        self._refresh_meta()
        return self

    def calibrate_fpr(self, real_features: np.ndarray, target_fpr: float) -> float:
        """Set `threshold` for `target_fpr` on held-out reals' feature vectors only."""
        probs = sigmoid(self.logits_from_features(real_features))
        self.threshold = fpr_threshold(probs, target_fpr)
        self.meta["threshold_source"] = f"held-out reals, target FPR {target_fpr:g}"
        self.meta["target_fpr"] = float(target_fpr)
        self.meta["n_val_real"] = len(probs)
        self.meta["val_fpr"] = float(np.mean(probs >= self.threshold))
        self._refresh_meta()
        return self.threshold

    # ------------------------------------------------------------------ scoring
    def _check_fitted(self) -> None:
        if not self.params:
            raise UnsupportedModelError("one-class detector is not fitted")

    def anomaly_scores(self, x: np.ndarray) -> np.ndarray:
        """Anomaly scores (higher = less like the training reals) of raw feature vectors."""
        self._check_fitted()
        x = np.asarray(x, dtype=np.float64)
        mean = self.params["scaler_mean"]
        if x.ndim != 2 or x.shape[1] != mean.shape[0]:
            raise InputError(f"expected features (N, {mean.shape[0]}), got {x.shape}")
        return _model_scores(self.model, self.params, (x - mean) / self.params["scaler_scale"])

    def logits_from_features(self, x: np.ndarray) -> np.ndarray:
        s = self.anomaly_scores(x)
        # asinh: monotone, linear near the median, and no float64 saturation of the sigmoid
        # for far-out fakes (which would tie their ranks and the threshold)
        return np.arcsinh((s - self.params["score_center"][0]) / self.params["score_scale"][0])

    def logits(self, images: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """Logits (float64, (N,)) for RGB uint8 images."""
        self._check_fitted()
        return self.logits_from_features(self.features(images))

    def probs(self, images: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        return sigmoid(self.logits(images))

    # ------------------------------------------------------------------ persistence
    def _refresh_meta(self) -> None:
        model: dict[str, Any] = {"name": self.model, "standardise": True}
        if self.model == "knn":
            model |= {"k": self.k, "score": "mean distance to the k nearest training vectors"}
        elif self.model == "ocsvm":
            model |= {"nu": self.nu, "kernel": "rbf", "gamma": "scale",
                      "score": "minus the decision function"}
        else:
            model |= {"n_trees": self.n_trees, "max_samples": DEFAULT_MAX_SAMPLES,
                      "score": "2 ** (-mean path length / c(max_samples))"}
        self.meta.update(kind=self.kind, format_version=FORMAT_VERSION, model=model,
                         feature_settings=self.feature_settings(), threshold=self.threshold,
                         labels={"real": 0, "fake": 1},
                         score="logit = asinh((anomaly score - median) / IQR over the "
                               "training reals); P(fake) = sigmoid(logit)")
        self.meta.setdefault("threshold_source", "default 0.5 (no held-out reals)")

    def save(self, out_dir: str | os.PathLike[str]) -> Path:
        """Write ``model.json``, ``model.npz`` (and ``embedding/`` for CNN features)."""
        self._check_fitted()
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self._refresh_meta()
        self.meta.setdefault("created",
                             _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
        self.meta["ganforensics_version"] = __version__
        if self.embedding is not None:
            self.embedding.save(out / EMBEDDING_DIR)
        with atomic_path(out / "model.npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **self.params)
        write_json_atomic(out / "model.json", self.meta)
        return out


# ---------------------------------------------------------------------- models


def _fit_model(model: str, z: np.ndarray, *, k: int, nu: float, n_trees: int,
               seed: int) -> dict[str, np.ndarray]:
    rs = int(seed) % (2**32)
    if model == "knn":
        if len(z) < k:
            raise InputError(f"kNN with k = {k} needs at least {k} training reals, got {len(z)}")
        return {"train_x": z, "k": np.array([k])}
    if model == "ocsvm":
        from sklearn.svm import OneClassSVM

        m = OneClassSVM(kernel="rbf", nu=nu, gamma="scale").fit(z)
        return {"support_vectors": m.support_vectors_, "dual_coef": m.dual_coef_.ravel(),
                "intercept": m.intercept_.ravel(), "gamma": np.array([float(m._gamma)])}
    from sklearn.ensemble import IsolationForest

    m = IsolationForest(n_estimators=n_trees, max_samples=min(DEFAULT_MAX_SAMPLES, len(z)),
                        random_state=rs).fit(z)
    trees = [e.tree_ for e in m.estimators_]
    sizes = np.array([t.node_count for t in trees])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    cat = np.concatenate
    left = cat([np.where(t.children_left >= 0, t.children_left + o, -1)
                for t, o in zip(trees, offsets, strict=True)])
    right = cat([np.where(t.children_right >= 0, t.children_right + o, -1)
                 for t, o in zip(trees, offsets, strict=True)])
    feats = np.stack([np.asarray(f) for f in m.estimators_features_])
    return {"tree_offsets": offsets.astype(np.int64), "left": left.astype(np.int64),
            "right": right.astype(np.int64),
            "feature": cat([t.feature for t in trees]).astype(np.int64),
            "threshold": cat([t.threshold for t in trees]).astype(np.float64),
            "n_node_samples": cat([t.n_node_samples for t in trees]).astype(np.int64),
            "tree_features": feats.astype(np.int64),
            "max_samples": np.array([int(m.max_samples_)])}


def _model_scores(model: str, p: dict[str, np.ndarray], z: np.ndarray) -> np.ndarray:
    if model == "knn":
        tx, k = p["train_x"], int(p["k"][0])
        d2 = np.sum(z * z, axis=1)[:, None] - 2.0 * z @ tx.T + np.sum(tx * tx, axis=1)[None, :]
        d = np.sqrt(np.maximum(np.sort(d2, axis=1)[:, :k], 0.0))
        return d.mean(axis=1)
    if model == "ocsvm":
        sv, dc = p["support_vectors"], p["dual_coef"]
        d2 = np.sum(z * z, axis=1)[:, None] - 2.0 * z @ sv.T + np.sum(sv * sv, axis=1)[None, :]
        return -(np.exp(-float(p["gamma"][0]) * np.maximum(d2, 0.0)) @ dc + p["intercept"][0])
    # isolation forest: walk every tree
    left, right, feat, thr = p["left"], p["right"], p["feature"], p["threshold"]
    n_samp = p["n_node_samples"]
    tree_feats = p["tree_features"]
    depth = np.zeros(len(z))
    rows = np.arange(len(z))
    for t, start in enumerate(p["tree_offsets"]):
        # sklearn subsets the columns only when a tree saw fewer than all features
        zt = z[:, tree_feats[t]] if tree_feats.shape[1] < z.shape[1] else z
        node = np.full(len(z), int(start))
        d = np.zeros(len(z))
        inner = left[node] >= 0
        while inner.any():
            i = rows[inner]
            nd = node[i]
            go_left = zt[i, feat[nd]] <= thr[nd]
            node[i] = np.where(go_left, left[nd], right[nd])
            d[i] += 1.0
            inner = left[node] >= 0
        depth += d + average_path_length(n_samp[node])
    c = average_path_length(np.array([float(p["max_samples"][0])]))[0]
    return 2.0 ** (-depth / (len(p["tree_offsets"]) * c))


# ---------------------------------------------------------------------- CNN embeddings


def cnn_embeddings(det: Any, images: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """Penultimate activations (the one-logit head's input) of a `CNNDetector`, float64."""
    import torch

    from ganforensics.detectors.cnn.archs import head_module

    items = list(images)
    if not items:
        raise InputError("no images given")
    head = head_module(det.model, det.arch)
    grabbed: list[torch.Tensor] = []
    hook = head.register_forward_pre_hook(
        lambda _m, inp: grabbed.append(inp[0].detach().flatten(1).double().cpu()))
    out: np.ndarray | None = None
    det.model.eval()
    try:
        for idx in shape_batches(items, det.batch_size, key=det._size_after_crop):
            grabbed.clear()
            det.forward_tensor(det.preprocess([items[i] for i in idx]))
            feats = torch.cat(grabbed).numpy()
            if out is None:
                out = np.empty((len(items), feats.shape[1]), dtype=np.float64)
            out[idx] = feats
    finally:
        hook.remove()
    assert out is not None
    return out


# ---------------------------------------------------------------------- loading


def load_one_class_detector(path: str | os.PathLike[str]) -> OneClassDetector:
    """Load a saved one-class detector folder (or its model.json)."""
    folder, meta = open_array_folder(path, "detector")
    meta_path, arr_path = folder / "model.json", folder / "model.npz"
    if meta.get("kind") != KIND:
        raise UnsupportedModelError(f"{meta_path}: kind {meta.get('kind')!r} is not {KIND!r}")
    fs, mdl = meta.get("feature_settings", {}), meta.get("model", {})
    embedding = None
    if fs.get("extractor") == "cnn-embedding":
        from ganforensics.detectors.cnn.model import load_cnn_detector

        embedding = load_cnn_detector(folder / EMBEDDING_DIR)
    try:
        det = OneClassDetector(
            str(fs.get("extractor")), str(mdl.get("name")), k=int(mdl.get("k", DEFAULT_K)),
            nu=float(mdl.get("nu", DEFAULT_NU)), n_trees=int(mdl.get("n_trees", DEFAULT_TREES)),
            embedding=embedding, embedding_source=fs.get("embedding_source"),
            profile_length=fs.get("profile_length"), normalize=fs.get("normalize", "first"),
            n_bins=None if fs.get("n_bins", "auto") == "auto" else int(fs["n_bins"]),
            fit_start=fs.get("fit_start"),
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


def reals_only(df: pd.DataFrame, what: str) -> pd.DataFrame:
    """The rows of a training manifest, refused (`InputError` naming `what`) when any row is
    a fake (label 1) or has no label."""
    if "label" not in df.columns:
        raise InputError(f"{what}: no 'label' column (one-class training needs label 0 rows)")
    lab = pd.to_numeric(df["label"], errors="coerce")
    n_fake = int((lab == 1).sum())
    n_bad = int((~lab.isin([0, 1])).sum())
    if n_fake or n_bad:
        raise InputError(
            f"{what}: {n_fake} fake row(s) (label 1) and {n_bad} row(s) without a 0/1 label "
            f"among {len(df)}; a one-class detector trains on real photos only (label 0)")
    return df


def hold_out_sources(df: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame,
                                                                            pd.DataFrame]:
    """Split rows into (fit, held-out) by source (one photo's patches stay on one side);
    by row when there is a single source."""
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"hold-out fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(derive_seed(seed, "one-class-holdout"))
    src = df["source"].astype(str).to_numpy() if "source" in df.columns else None
    if src is not None and len(set(src)) > 1:
        uniq = sorted(set(src))
        n_val = max(1, int(round(fraction * len(uniq))))
        held = set(np.array(uniq)[rng.permutation(len(uniq))[:n_val]].tolist())
        mask = np.array([s in held for s in src])
    else:
        mask = np.zeros(len(df), bool)
        mask[rng.permutation(len(df))[:max(1, int(round(fraction * len(df))))]] = True
    if mask.all() or not mask.any():
        raise InputError("cannot hold out reals for the threshold; pass --val")
    return df[~mask], df[mask]


def train_one_class_detector(
    train_df: pd.DataFrame, val_df: pd.DataFrame | None = None, *,
    features: str = DEFAULT_FEATURES, model: str = DEFAULT_MODEL,
    target_fpr: float = DEFAULT_TARGET_FPR, oversample: str = "doping", ratio: float = 0.0,
    edge_quantile: float = DEFAULT_EDGE_QUANTILE, aae: AAEConfig | None = None,
    embedding_model: str | os.PathLike[str] | None = None, seed: int = DEFAULT_SEED,
    train_name: str = "training manifest", val_fraction: float = DEFAULT_VAL_FRACTION,
    **options: Any,
) -> OneClassDetector:
    """Train a one-class detector on the reals of `train_df` (fakes refused); threshold at
    `target_fpr` on the reals of `val_df` (its fakes are not used), or on
    `val_fraction` of the training sources held out. `ratio` > 0 oversamples the training
    vectors with `oversample` (doping, prior, smote). `options`: k, nu, n_trees."""
    if not 0.0 <= target_fpr < 1.0:
        raise ConfigError(f"--target-fpr must be in [0, 1), got {target_fpr}")
    check_options(oversample, ratio, edge_quantile)
    reals_only(train_df, train_name)
    embedding = None
    if features == "cnn-embedding":
        if embedding_model is None:
            raise ConfigError("--features cnn-embedding needs --embedding-model DIR "
                              "(a saved CNN detector)")
        from ganforensics.detectors.cnn.model import load_cnn_detector

        embedding = load_cnn_detector(embedding_model)
    det = OneClassDetector(features, model, embedding=embedding,
                           embedding_source=None if embedding_model is None
                           else str(embedding_model), **options)
    val_note = "validation manifest"
    if val_df is None or not len(val_df):
        train_df, val_df = hold_out_sources(train_df, val_fraction, seed)
        val_note = f"held out {val_fraction:.0%} of the training sources"
    if "label" not in val_df.columns:
        raise InputError("validation manifest: no 'label' column (the threshold uses its "
                         "label-0 rows)")
    is_real = pd.to_numeric(val_df["label"], errors="coerce") == 0
    n_val_fakes = int((~is_real).sum())
    val_reals = val_df[is_real]
    images, _, errors = load_manifest_images(train_df, what="training reals")
    if len(images) < 2:
        raise InputError(f"{train_name}: fewer than 2 decodable real images")
    det.fit_features(det.features(images), seed=seed, oversample=oversample, ratio=ratio,
                     edge_quantile=edge_quantile, aae=aae)
    v_images, _, v_err = load_manifest_images(val_reals, what="held-out reals")
    if not v_images:
        raise InputError("no decodable held-out real image for the FPR threshold")
    det.calibrate_fpr(det.features(v_images), target_fpr)
    det.meta |= {"train_manifest_sha256": _manifest_hash(train_df),
                 "val_manifest_sha256": _manifest_hash(val_reals), "val_source": val_note,
                 "val_fakes_ignored": n_val_fakes,
                 "train_skipped": len(errors) + len(v_err)}
    return det
