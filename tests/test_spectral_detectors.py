"""Spectral detectors: the up-sampling physics, save/reload parity, manifests, calibration."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from skimage import data as skdata
from sklearn.metrics import roc_auc_score

from ganforensics.detectors import Detector, load_detector
from ganforensics.detectors.base import sigmoid
from ganforensics.detectors.spectral import (
    SpectralDetector,
    load_spectral_detector,
    train_spectral_detector,
)
from ganforensics.errors import ConfigError, InputError
from ganforensics.spectral.classifiers import CLASSIFIERS, classifier_logits, fit_classifier
from ganforensics.spectral.spectra import durall_profiles

PHOTOS = ("astronaut", "coffee", "rocket", "immunohistochemistry", "chelsea", "hubble_deep_field")


def _patches(img: np.ndarray, size: int, n: int, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    ys, xs = rng.integers(0, h - size, n), rng.integers(0, w - size, n)
    return np.stack([img[y : y + size, x : x + size, :3] for y, x in zip(ys, xs, strict=True)])


def _transposed_conv_x2(patches: np.ndarray) -> np.ndarray:
    """Down-sample by 2 (average), then up-sample x2 with a fixed random ConvTranspose kernel."""
    g = torch.Generator().manual_seed(2021)
    b1 = torch.tensor([0.25, 0.75, 0.75, 0.25], dtype=torch.float64)
    kern = torch.eye(3, dtype=torch.float64)[:, :, None, None] * torch.outer(b1, b1)
    kern = kern + 0.1 * torch.randn(3, 3, 4, 4, generator=g, dtype=torch.float64)
    x = torch.from_numpy(patches).permute(0, 3, 1, 2).double()
    y = torch.nn.functional.conv_transpose2d(
        torch.nn.functional.avg_pool2d(x, 2), kern, stride=2, padding=1
    )
    return y.clamp(0, 255).round().byte().permute(0, 2, 3, 1).numpy()


@pytest.fixture(scope="module")
def photo_sets() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(2021)
    out = {}
    for name in PHOTOS:
        img = getattr(skdata, name)()
        real = _patches(img, 32, 40, rng)
        fake = _transposed_conv_x2(_patches(img, 32, 40, rng))
        out[name] = (real, fake)
    return out


def _xy(sets: dict, names) -> tuple[np.ndarray, np.ndarray]:
    real = np.concatenate([sets[n][0] for n in names])
    fake = np.concatenate([sets[n][1] for n in names])
    return np.concatenate([real, fake]), np.r_[np.zeros(len(real)), np.ones(len(fake))]


def test_upsampling_physics_profile_detector(photo_sets) -> None:
    train, test = PHOTOS[:4], PHOTOS[4:]  # held out by source photo
    x_te, y_te = _xy(photo_sets, test)
    prof = durall_profiles(x_te)
    diff = prof[y_te == 1].mean(0) - prof[y_te == 0].mean(0)
    top = diff[-3:]  # the highest frequencies (towards the corners of the spectrum)
    low = diff[: len(diff) // 4]
    # the checkerboard of the transposed conv adds energy at the top frequencies (in dB)
    assert top.min() > 5.0
    assert top.mean() > 3 * np.abs(low).mean()
    x_tr, y_tr = _xy(photo_sets, train)
    det = SpectralDetector("spectral-profile").fit(x_tr, y_tr, seed=7)
    assert isinstance(det, Detector)
    p = det.probs(x_te)
    assert p.dtype == np.float64 and p.shape == (len(x_te),)
    np.testing.assert_array_equal(p, sigmoid(det.logits(x_te)))
    auc = roc_auc_score(y_te, det.logits(x_te))
    assert auc > 0.95
    # a detector trained with shuffled labels has no such skill
    shuffled = np.random.default_rng(0).permutation(y_tr)
    chance = SpectralDetector("spectral-profile").fit(x_tr, shuffled, seed=7)
    assert abs(roc_auc_score(y_te, chance.logits(x_te)) - 0.5) < 0.25


@pytest.mark.parametrize("clf", CLASSIFIERS)
def test_numpy_scores_match_sklearn(clf: str, rng: np.random.Generator) -> None:
    x = np.concatenate([rng.normal(0, 1, (30, 3)), rng.normal(1.5, 1, (30, 3))])
    y = np.r_[np.zeros(30), np.ones(30)].astype(int)
    params = fit_classifier(clf, x, y, seed=3)
    xt = rng.normal(0.7, 1.2, (25, 3))
    ours = classifier_logits(clf, params, xt)
    z = (xt - x.mean(0)) / x.std(0)
    zt = (x - x.mean(0)) / x.std(0)
    if clf == "logreg":
        from sklearn.linear_model import LogisticRegression

        ref = LogisticRegression(C=1.0, max_iter=5000, random_state=3).fit(zt, y)
        np.testing.assert_allclose(ours, ref.decision_function(z), rtol=1e-10)
    elif clf == "rbf-svm":
        from sklearn.svm import SVC

        ref = SVC(kernel="rbf", gamma="scale", random_state=3).fit(zt, y)
        np.testing.assert_allclose(ours, ref.decision_function(z), rtol=1e-8, atol=1e-10)
    elif clf == "knn":
        from sklearn.neighbors import KNeighborsClassifier

        p = KNeighborsClassifier(5).fit(zt, y).predict_proba(z)[:, 1]
        np.testing.assert_allclose(1 / (1 + np.exp(-ours)), np.clip(p, 1e-6, 1 - 1e-6))
    elif clf == "mlp":
        from sklearn.neural_network import MLPClassifier

        ref = MLPClassifier((32,), max_iter=2000, random_state=3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref.fit(zt, y)
        np.testing.assert_allclose(
            1 / (1 + np.exp(-ours)), ref.predict_proba(z)[:, 1], rtol=1e-7, atol=1e-12
        )
    else:
        from sklearn.svm import LinearSVC

        ref = LinearSVC(C=1.0, max_iter=20000, random_state=3).fit(zt, y)
        np.testing.assert_allclose(ours, ref.decision_function(z), rtol=1e-10)


@pytest.mark.parametrize(
    "kind,clf", [("spectral-profile", "logreg"), ("spectral-profile", "linear-svm"),
                 ("spectral-decay", "knn"), ("spectral-decay", "rbf-svm"),
                 ("spectral-decay", "mlp")],
)
def test_save_reload_identical(kind, clf, photo_sets, tmp_path) -> None:
    x, y = _xy(photo_sets, PHOTOS[:2])
    det = SpectralDetector(kind, clf).fit(x, y, seed=11)
    det.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["kind"] == kind and meta["classifier"]["name"] == clf
    assert not list((tmp_path / "m").glob("*.pkl"))
    again = load_detector(tmp_path / "m")  # dispatch through the registry
    # mixed sizes: 32 px patches and 40 px images go through one call
    extra = [np.asarray(photo_sets["chelsea"][0][0]), _patches(skdata.coffee(), 40, 1,
                                                             np.random.default_rng(1))[0]]
    probe = list(x[::7]) + extra
    np.testing.assert_array_equal(det.logits(probe), again.logits(probe))
    assert again.threshold == det.threshold
    if kind == "spectral-profile":
        assert meta["feature_settings"]["profile_length"] == 20


def test_train_from_manifest_and_calibrate(photo_sets, tmp_path, capsys) -> None:
    rows = []
    for split, names in (("train", PHOTOS[:3]), ("val", PHOTOS[3:4])):
        for name in names:
            for label, arr in enumerate(photo_sets[name]):
                for i, img in enumerate(arr[:15]):
                    p = tmp_path / f"{split}_{name}_{label}_{i}.png"
                    Image.fromarray(img).save(p)
                    rows.append({"abspath": str(p), "label": label, "split": split,
                                 "generator": "real" if label == 0 else "tconv"})
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    rows.append({"abspath": str(bad), "label": 1, "split": "train", "generator": "tconv"})
    # a row that already failed (e.g. at import) is left out, not decoded or counted again
    rows.append({"abspath": str(tmp_path / "gone.png"), "label": 0, "split": "train",
                 "generator": "real", "error": "file not found"})
    df = pd.DataFrame(rows)
    det = train_spectral_detector(
        "spectral-decay", df[df.split == "train"], df[df.split == "val"], classifier="knn",
        seed=5, n_bins=20,
    )
    err = capsys.readouterr().err
    assert err.count("unreadable image(s) skipped") == 1 and "broken.png" in err
    assert "gone.png" not in err
    assert det.meta["train_skipped"] == 1
    assert det.meta["threshold_source"] == "validation"
    assert det.meta["feature_settings"]["n_bins"] == 20
    assert det.meta["decay_bins_by_size"] == {"32x32": 20}
    assert 0.5 < det.meta["val_metrics"]["auc"] <= 1.0
    assert det.meta["n_train"] == {"real": 45, "fake": 45}
    assert 0.0 < det.threshold < 1.0
    det.save(tmp_path / "model")
    assert load_spectral_detector(tmp_path / "model").threshold == det.threshold
    with pytest.raises(InputError, match="label"):
        train_spectral_detector("spectral-profile", df.assign(label=pd.NA))
    with pytest.raises(InputError, match="real .* and fake"):
        train_spectral_detector("spectral-profile", df[df.label == 0].head(5))
    with pytest.raises(ConfigError, match="classifier"):
        SpectralDetector("spectral-decay", "forest")
    assert SpectralDetector("spectral-decay", "svm").classifier == "rbf-svm"
    assert SpectralDetector("spectral-profile", "SVM").classifier == "linear-svm"
