"""Bypass protocol: per-generator detection rates over random draws."""

from __future__ import annotations

import numpy as np
import pytest

from ganforensics.errors import ConfigError
from ganforensics.evaluate.bypass import bypass_rates


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
