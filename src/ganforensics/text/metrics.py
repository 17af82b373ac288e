"""Metrics of generated names (DomainGAN §5, docs/text.md "Metrics").

- length: histogram and the two-sample KS distance to the benign names;
- `js_unigram` / `js_bigram`: Jensen-Shannon divergence (base 2, in [0, 1]) of character and
  bigram frequencies against the benign names;
- `repeat_rate`: share of the generated names removed by de-duplication (the paper's "repeated
  collisions");
- `benign_collision`: share of the unique generated names that are in the benign corpus (an
  offline stand-in for the paper's online existence check);
- `valid_rate`: share that are valid hostname labels;
- `evasion` per classifier: share of the valid generated names it scores benign (P(DGA) < 0.5);
- `usable` per classifier: share of all generated names that are valid, unique (first
  occurrence), not in the benign corpus and evade that classifier.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp

from ganforensics.text.encoding import is_valid_label

THRESHOLD = 0.5


def length_histogram(names: Sequence[str], max_len: int) -> np.ndarray:
    """Share of names per length 0..max_len."""
    counts = np.bincount([min(len(n), max_len) for n in names], minlength=max_len + 1)
    return counts / max(1, len(names))


def ks_length(names: Sequence[str], reference: Sequence[str]) -> float:
    if not names or not reference:
        return float("nan")
    return float(ks_2samp([len(n) for n in names], [len(n) for n in reference]).statistic)


def _ngrams(names: Sequence[str], n: int) -> Counter[str]:
    c: Counter[str] = Counter()
    for s in names:
        c.update(s[i:i + n] for i in range(len(s) - n + 1))
    return c


def js_divergence(names: Sequence[str], reference: Sequence[str], n: int) -> float:
    """JS divergence (base 2) of n-gram frequencies; 1.0 when one side has none."""
    a, b = _ngrams(names, n), _ngrams(reference, n)
    if not a or not b:
        return 1.0
    keys = sorted(set(a) | set(b))
    p = np.array([a[k] for k in keys], dtype=float)
    q = np.array([b[k] for k in keys], dtype=float)
    return float(jensenshannon(p / p.sum(), q / q.sum(), base=2) ** 2)


def repeat_rate(names: Sequence[str]) -> float:
    return 1 - len(set(names)) / len(names) if names else float("nan")


def benign_collision(names: Sequence[str], benign: set[str] | frozenset[str]) -> float:
    uniq = set(names)
    return len(uniq & benign) / len(uniq) if uniq else float("nan")


def name_metrics(names: Sequence[str], benign_ref: Sequence[str],
                 benign_all: set[str] | frozenset[str],
                 scores: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
    """All metrics of one set of generated names. `scores[classifier]` are P(DGA) of `names`
    (same order). Evasion counts valid names; usable counts all names."""
    valid = np.array([is_valid_label(n) for n in names], dtype=bool)
    first = np.zeros(len(names), dtype=bool)
    seen: set[str] = set()
    for i, n in enumerate(names):
        if n not in seen:
            first[i] = True
            seen.add(n)
    new = np.array([n not in benign_all for n in names], dtype=bool)
    good = [n for n, v in zip(names, valid, strict=True) if v]
    out: dict[str, Any] = {
        "n": len(names),
        "valid_rate": float(valid.mean()) if len(names) else float("nan"),
        "mean_length": float(np.mean([len(n) for n in names])) if names else float("nan"),
        "ks_length": ks_length(good, benign_ref),
        "js_unigram": js_divergence(good, benign_ref, 1),
        "js_bigram": js_divergence(good, benign_ref, 2),
        "repeat_rate": repeat_rate(list(names)),
        "benign_collision": benign_collision(good, benign_all),
    }
    for clf, s in (scores or {}).items():
        evade = np.asarray(s) < THRESHOLD
        out[f"evasion_{clf}"] = float(evade[valid].mean()) if valid.any() else float("nan")
        out[f"usable_{clf}"] = float((valid & first & new & evade).mean()) if len(names) \
            else float("nan")
    return out


def detection_metrics(scores: np.ndarray, labels: Sequence[int]) -> dict[str, float]:
    """Accuracy at 0.5 and ROC-AUC of P(DGA) against labels (DGA = 1)."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(labels)
    s = np.asarray(scores)
    acc = float(((s >= THRESHOLD) == (y == 1)).mean())
    auc = float(roc_auc_score(y, s)) if len(set(y.tolist())) == 2 else float("nan")
    return {"accuracy": acc, "auc": auc}
