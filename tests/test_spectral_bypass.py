"""Bypass protocol: per-generator detection rates over random draws."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ganforensics.detectors.spectral import SpectralDetector
from ganforensics.errors import ConfigError
from ganforensics.evaluate.bypass import bypass_files, bypass_rates, detector_options


def _pools(rng: np.random.Generator):
    real = rng.normal(0.0, 1.0, (150, 3))
    base = rng.normal(3.0, 1.0, (150, 3))
    like_base = rng.normal(3.0, 1.0, (60, 3))
    like_real = rng.normal(0.0, 1.0, (60, 3))
    halfway = rng.normal(1.5, 1.0, (60, 3))
    return real, base, {"like-baseline": like_base, "like-real": like_real, "halfway": halfway}


@pytest.mark.parametrize("kind,clf", [("spectral-decay", "knn"), ("spectral-profile", "logreg")])
def test_rates_follow_the_feature_distributions(kind, clf, rng) -> None:
    real, base, gens = _pools(rng)
    t = bypass_rates(kind, real, base, gens, n=40, draws=6, seed=3, classifier=clf)
    rate = dict(zip(t["generator"], t["rate_mean"], strict=True))
    assert rate["like-baseline"] > 0.9  # detected
    assert rate["like-real"] < 0.1  # bypasses the detector
    assert 0.2 < rate["halfway"] < 0.8
    assert rate["real (held-out)"] < 0.1
    assert rate["BASELINE (held-out)"] > 0.9
    row = t.set_index("generator").loc["halfway"]
    assert len(row["rates"]) == 6 and row["n_images"] == 60
    assert row["rate_std"] == pytest.approx(np.std(row["rates"]), abs=1e-6)
    assert row["rate_std"] > 0  # the draws differ
    # reproducible for a seed, different for another
    again = bypass_rates(kind, real, base, gens, n=40, draws=6, seed=3, classifier=clf)
    assert again["rates"].tolist() == t["rates"].tolist()
    other = bypass_rates(kind, real, base, gens, n=40, draws=6, seed=4, classifier=clf)
    assert other["rates"].tolist() != t["rates"].tolist()


def test_draws_use_the_whole_pool(rng) -> None:
    # only reals beyond the first 17 look real; a sampler restricted to the first 17 files
    # (the reference code's bug) would learn the wrong class boundary
    real = np.concatenate([rng.normal(3.0, 0.3, (17, 2)), rng.normal(0.0, 0.3, (200, 2))])
    base = rng.normal(3.0, 0.3, (200, 2))
    t = bypass_rates("spectral-decay", real, base, {"g": rng.normal(0.0, 0.3, (30, 2))},
                     n=100, draws=3, seed=1)
    assert t.set_index("generator").loc["g", "rate_mean"] < 0.2


def test_too_few_images_is_a_clear_error(rng) -> None:
    real, base, gens = _pools(rng)
    with pytest.raises(ConfigError, match="n = 500"):
        bypass_rates("spectral-decay", real, base, gens, n=500)


@pytest.mark.parametrize("kind,settings", [
    ("spectral-decay", {"n_bins": 12, "fit_start": 0.8, "k": 3}),
    ("spectral-decay", {}),
    ("spectral-profile", {"profile_length": 40, "normalize": "minmax", "hidden": (8, 4)}),
])
def test_detector_options_rebuild_the_same_features(kind, settings) -> None:
    det = SpectralDetector(kind, "mlp", **settings)
    again = SpectralDetector(kind, "mlp", **detector_options(det))
    assert again.feature_settings() == det.feature_settings()
    assert (again.k, again.hidden) == (det.k, det.hidden)
    if kind == "spectral-decay" and "n_bins" not in settings:
        assert "n_bins" not in detector_options(det)  # "auto" stays auto


def _pngs(folder, arrays) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(arrays):
        Image.fromarray(a).save(folder / f"{i:03d}.png")


def test_bypass_files_groups_decodes_and_returns_bad_files(tmp_path, rng) -> None:
    def noise(n, amp):
        return [np.clip(128 + amp * rng.normal(size=(16, 16, 3)), 0, 255).astype(np.uint8)
                for _ in range(n)]

    _pngs(tmp_path / "train" / "real", noise(12, 10))
    _pngs(tmp_path / "train" / "fake", noise(12, 60))
    _pngs(tmp_path / "gens" / "noisy", noise(5, 60))
    (tmp_path / "gens" / "noisy" / "bad.png").write_bytes(b"nope")
    run = bypass_files([tmp_path / "train"], [tmp_path / "gens" / "noisy"],
                       kind="spectral-profile", n=8, draws=2, seed=1)
    assert run.kind == "spectral-profile" and run.baseline == "fake"
    assert [p.rsplit("/", 1)[-1] for p, _ in run.errors] == ["bad.png"]
    row = run.table.set_index("generator").loc["noisy"]
    assert row["n_images"] == 5 and row["draws"] == 2 and row["n_train"] == 8
    # a loaded detector's kind and classifier win over the arguments
    det = SpectralDetector("spectral-decay", "logreg", n_bins=6)
    run = bypass_files([tmp_path / "train"], [tmp_path / "gens" / "noisy"], detector=det,
                       kind="spectral-profile", n=8, draws=1)
    assert run.kind == "spectral-decay" and set(run.table["classifier"]) == {"logreg"}
    with pytest.raises(ConfigError, match="not among --train fakes"):
        bypass_files([tmp_path / "train"], [tmp_path / "gens"], baseline="nope", n=8)
