"""The paired metric of content-aligned fakes: how often a fake scores above its own source.

When every fake is made from a real image (a simulator's reconstruction, `gan.reconstruct`),
a detector's P(fake) can be compared within each pair. `pair_win` is the fraction of pairs in
which the fake's score is above its source's; a tie counts one half (so a detector that gives
both the same score sits at 0.5, chance). It is the AUC restricted to the matched pairs: 1 means
the detector ranks every fake above the very photo it came from, 0.5 that it cannot tell them
apart, below 0.5 that it prefers the fake. The interval is the percentile interval over
bootstrap resamples of the pairs (pairs resampled whole, with replacement, from a seeded
generator).
"""

from __future__ import annotations

import numpy as np

from ganforensics.metrics.bootstrap import CONFIDENCE, DEFAULT_RESAMPLES
from ganforensics.seeding import DEFAULT_SEED

PAIR_COLUMNS = ("pair_win", "pair_win_lo", "pair_win_hi")
_CHUNK = 256  # resamples drawn at once (memory stays at _CHUNK x n pairs)


def pair_wins(fake_scores: np.ndarray, real_scores: np.ndarray) -> np.ndarray:
    """Per pair: 1 where the fake scores above its source, 0.5 on a tie, 0 below."""
    f = np.asarray(fake_scores, dtype=np.float64)
    r = np.asarray(real_scores, dtype=np.float64)
    if f.shape != r.shape or f.ndim != 1:
        raise ValueError(f"pair scores must be two 1-D arrays of one length, got {f.shape} "
                         f"and {r.shape}")
    return (f > r) + 0.5 * (f == r)


def pair_win(
    fake_scores: np.ndarray,
    real_scores: np.ndarray,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = DEFAULT_SEED,
) -> dict[str, float]:
    """`{pair_win, pair_win_lo, pair_win_hi}` of aligned fake / source scores (fake i made
    from real i); NaN with no pairs, the interval NaN when `resamples` is 0."""
    wins = pair_wins(fake_scores, real_scores)
    nan = float("nan")
    if len(wins) == 0:
        return dict.fromkeys(PAIR_COLUMNS, nan)
    out = {"pair_win": float(wins.mean()), "pair_win_lo": nan, "pair_win_hi": nan}
    if resamples < 1:
        return out
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), not {confidence}")
    rng = np.random.default_rng(seed)
    means = []
    for start in range(0, int(resamples), _CHUNK):
        size = min(_CHUNK, int(resamples) - start)
        means.append(wins[rng.integers(0, len(wins), size=(size, len(wins)))].mean(axis=1))
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(np.concatenate(means), [tail, 1.0 - tail])
    out["pair_win_lo"], out["pair_win_hi"] = float(lo), float(hi)
    return out
