"""Small classifiers for spectral features: fitted with scikit-learn, kept as plain arrays.

Each classifier is fitted by sklearn, then reduced to named NumPy arrays (saved in an `.npz`
without pickle) and evaluated by NumPy code here, so a reloaded model gives exactly the same
scores. Scores are logits (P(fake) = sigmoid(logit)):

- ``logreg``: logistic regression (C = 1, lbfgs), logit = w.x + b.
- ``linear-svm``: linear SVM (LinearSVC, C = 1); logit = the SVM decision value (not a
  calibrated probability; its sign is the SVM decision).
- ``knn``: k nearest neighbours (Euclidean, k = 5 by default); P(fake) = fraction of fake
  neighbours, logit = ln(p / (1 - p)) with p clipped to [1e-6, 1 - 1e-6]. Ties in distance are
  broken by training-row order.
- ``rbf-svm``: SVC with an RBF kernel (C = 1, gamma = "scale"); logit = decision value.
- ``mlp``: MLPClassifier, one hidden layer of 32 ReLU units (Adam, L2 1e-4, up to 2000
  iterations); logit = the output unit before the logistic.

Features are standardised first (mean / std of the training set; a zero std becomes 1).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from ganforensics.errors import ConfigError, InputError
from ganforensics.seeding import DEFAULT_SEED

CLASSIFIERS = ("logreg", "linear-svm", "knn", "rbf-svm", "mlp")
DEFAULT_K = 5
DEFAULT_HIDDEN = (32,)
PROB_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), PROB_EPS, 1.0 - PROB_EPS)
    return np.log(p) - np.log1p(-p)


def standardise_fit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale of the columns (scale 1 where the std is 0)."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    return mean, scale


def fit_classifier(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int = DEFAULT_SEED,
    k: int = DEFAULT_K,
    hidden: tuple[int, ...] = DEFAULT_HIDDEN,
) -> dict[str, np.ndarray]:
    """Fit `name` on standardised features; return its parameters as arrays."""
    if name not in CLASSIFIERS:
        raise ConfigError(f"unknown classifier {name!r} (choose from {', '.join(CLASSIFIERS)})")
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y).astype(int)
    if x.ndim != 2 or len(x) != len(y):
        raise InputError(f"features must be (N, F) with N labels; got {x.shape} and {y.shape}")
    if not np.isfinite(x).all():
        raise InputError("features contain NaN or infinite values")
    if set(np.unique(y)) != {0, 1}:
        raise InputError("training needs both classes: real (label 0) and fake (label 1)")
    mean, scale = standardise_fit(x)
    z = (x - mean) / scale
    params: dict[str, np.ndarray] = {"scaler_mean": mean, "scaler_scale": scale}
    rs = int(seed) % (2**32)
    # each estimator's sklearn module is imported when that classifier is trained: sklearn's
    # estimators add seconds to start-up, and a saved detector scores without sklearn
    if name == "logreg":
        from sklearn.linear_model import LogisticRegression

        m = LogisticRegression(C=1.0, max_iter=5000, random_state=rs).fit(z, y)
        params |= {"coef": m.coef_.ravel(), "intercept": m.intercept_.ravel()}
    elif name == "linear-svm":
        from sklearn.svm import LinearSVC

        m = LinearSVC(C=1.0, max_iter=20000, random_state=rs).fit(z, y)
        params |= {"coef": m.coef_.ravel(), "intercept": m.intercept_.ravel()}
    elif name == "knn":
        if len(z) < k:
            raise InputError(f"kNN with k = {k} needs at least {k} training images, got {len(z)}")
        params |= {"train_x": z, "train_y": y.astype(np.int64), "k": np.array([int(k)])}
    elif name == "rbf-svm":
        from sklearn.svm import SVC

        m = SVC(kernel="rbf", C=1.0, gamma="scale", random_state=rs).fit(z, y)
        params |= {
            "support_vectors": m.support_vectors_,
            "dual_coef": m.dual_coef_.ravel(),
            "intercept": m.intercept_.ravel(),
            "gamma": np.array([float(m._gamma)]),
        }
    else:  # mlp
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        m = MLPClassifier(
            hidden_layer_sizes=tuple(hidden), activation="relu", alpha=1e-4, max_iter=2000,
            random_state=rs,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            m.fit(z, y)
        params["n_layers"] = np.array([len(m.coefs_)])
        for i, (wt, bs) in enumerate(zip(m.coefs_, m.intercepts_, strict=True)):
            params[f"w{i}"] = wt
            params[f"b{i}"] = bs
    return params


def classifier_logits(name: str, params: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Logits of fitted parameters for raw (unstandardised) features ``(N, F)``."""
    x = np.asarray(x, dtype=np.float64)
    mean = params["scaler_mean"]
    if x.ndim != 2 or x.shape[1] != mean.shape[0]:
        raise InputError(f"expected features (N, {mean.shape[0]}), got {x.shape}")
    z = (x - mean) / params["scaler_scale"]
    if name in ("logreg", "linear-svm"):
        return z @ params["coef"] + params["intercept"][0]
    if name == "knn":
        tx, ty, k = params["train_x"], params["train_y"], int(params["k"][0])
        d2 = (
            np.sum(z * z, axis=1)[:, None]
            - 2.0 * z @ tx.T
            + np.sum(tx * tx, axis=1)[None, :]
        )
        nn = np.argsort(d2, axis=1, kind="stable")[:, :k]
        p = ty[nn].mean(axis=1)
        return _logit(p)
    if name == "rbf-svm":
        sv, dc = params["support_vectors"], params["dual_coef"]
        gamma, b = float(params["gamma"][0]), float(params["intercept"][0])
        d2 = np.sum(z * z, axis=1)[:, None] - 2.0 * z @ sv.T + np.sum(sv * sv, axis=1)[None, :]
        return np.exp(-gamma * np.maximum(d2, 0.0)) @ dc + b
    if name == "mlp":
        a = z
        n_layers = int(params["n_layers"][0])
        for i in range(n_layers):
            a = a @ params[f"w{i}"] + params[f"b{i}"]
            if i < n_layers - 1:
                a = np.maximum(a, 0.0)
        return a[:, 0]
    raise ConfigError(f"unknown classifier {name!r} (choose from {', '.join(CLASSIFIERS)})")


def describe(name: str, **settings: Any) -> dict[str, Any]:
    """The settings recorded in model.json for a classifier."""
    info: dict[str, Any] = {"name": name, "standardise": True}
    if name == "knn":
        info["k"] = int(settings.get("k", DEFAULT_K))
    if name == "mlp":
        info["hidden"] = list(settings.get("hidden", DEFAULT_HIDDEN))
    if name in ("logreg", "linear-svm", "rbf-svm"):
        info["C"] = 1.0
    if name == "rbf-svm":
        info["gamma"] = "scale"
    return info
