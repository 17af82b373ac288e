"""Forensic feature relevance statistic (FF-RS) of every conv feature map (DESIGN B6).

For each confidently detected fake (P(fake) >= 0.9) LRP relevance of the logit is read at the
output of every conv layer. Per sample and layer: R^ = max(0, R) / sum |R| (the sum over the
whole layer output, all channels and positions). FF-RS of a feature map = spatial sum of the mean
over samples of R^. All maps of all layers are ranked jointly; the top k are the transferable
forensic features (T-FF), k = 114 of 26,560 maps for ResNet-50, scaled to other networks.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ganforensics.console import track
from ganforensics.errors import InputError
from ganforensics.explain.adapter import as_explainable, batched_logits, conv_layers, sigmoid
from ganforensics.explain.lrp import check_lrp_supported, conv_relevance
from ganforensics.io.images import shape_batches
from ganforensics.seeding import DEFAULT_SEED, rng_for

CONFIDENCE = 0.9
"""Only fakes with P(fake) >= CONFIDENCE are explained."""
TOPK_RATIO = (114, 26560)
"""Published top-k of ResNet-50 (114 of 26,560 maps); other networks scale it."""
DEFAULT_MAX_SAMPLES = 1000
"""At most this many confident fakes are used (a seeded random subset beyond it)."""
LRP_BATCH_SIZE = 16
RANKING_COLUMNS = ("rank", "key", "layer", "channel", "ffrs")


class NoConfidentFakesError(InputError):
    """No fake reaches P(fake) >= CONFIDENCE: the detector gives FF-RS nothing to explain."""


def default_k(n_maps: int) -> int:
    """Top-k size scaled from ResNet-50's 114 of 26,560 maps; at least 1."""
    return max(1, int(round(n_maps * TOPK_RATIO[0] / TOPK_RATIO[1])))


def map_key(layer: str, channel: int) -> str:
    """The `layer.#channel` key of a feature map, e.g. `layer1.0.conv2.#17`."""
    return f"{layer}.#{int(channel)}"


def parse_key(key: str) -> tuple[str, int]:
    """Inverse of `map_key`."""
    layer, sep, ch = str(key).rpartition(".#")
    if not sep or not layer or not ch.isdigit():
        raise InputError(f"feature-map key {key!r} is not of the form 'layer.#channel'")
    return layer, int(ch)


def normalised_channel_relevance(r: torch.Tensor) -> torch.Tensor:
    """Per sample: spatial sums per channel of R^ = max(0, R) / sum |R|, shape (N, C).

    The sum over the whole layer (channels and positions) of |R| normalises; a sample whose
    layer relevance is all zero gives zeros. Each row sums to <= 1, with equality exactly when
    the layer's relevance has no negative entry (and some positive one).
    """
    r = r.double()
    n = r.shape[0]
    flat = r.reshape(n, r.shape[1], -1)
    pos = flat.clamp(min=0).sum(dim=2)
    total = flat.abs().sum(dim=(1, 2))
    safe = torch.where(total > 0, total, torch.ones_like(total))
    return torch.where(total[:, None] > 0, pos / safe[:, None], torch.zeros_like(pos))


@dataclass
class FFRSResult:
    """Ranking of all conv feature maps by FF-RS and the top-k selection."""

    ranking: pd.DataFrame
    """Columns rank (1 = most relevant), key (`layer.#channel`), layer, channel, ffrs."""
    k: int
    n_fakes: int
    """Fakes scored."""
    n_confident: int
    """Fakes with P(fake) >= 0.9."""
    n_samples: int
    """Confident fakes actually explained."""
    seed: int = DEFAULT_SEED
    per_layer: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    """Per layer: the (N, C) normalised channel relevance of every sample (for checks)."""

    @property
    def topk(self) -> list[str]:
        """Keys of the top-k maps."""
        return list(self.ranking["key"].iloc[: self.k])

    def summary(self) -> dict[str, Any]:
        """Counts and the top-k keys (JSON-ready)."""
        return {
            "n_maps": int(len(self.ranking)),
            "n_layers": int(self.ranking["layer"].nunique()),
            "k": self.k,
            "n_fakes": self.n_fakes,
            "n_confident": self.n_confident,
            "n_samples": self.n_samples,
            "confidence": CONFIDENCE,
            "seed": self.seed,
            "topk": self.topk,
        }


def ranking_frame(stats: dict[str, np.ndarray]) -> pd.DataFrame:
    """Joint ranking of all maps from per-layer FF-RS vectors (ties keep network order)."""
    rows = [
        (map_key(layer, c), layer, c, float(v))
        for layer, vec in stats.items()
        for c, v in enumerate(np.asarray(vec, dtype=np.float64))
    ]
    df = pd.DataFrame(rows, columns=["key", "layer", "channel", "ffrs"])
    df = df.sort_values("ffrs", ascending=False, kind="stable").reset_index(drop=True)
    df.insert(0, "rank", np.arange(1, len(df) + 1))
    return df


def compute_ffrs(
    detector: Any,
    images: Sequence[np.ndarray],
    *,
    k: int | None = None,
    max_samples: int | None = DEFAULT_MAX_SAMPLES,
    seed: int = DEFAULT_SEED,
    batch_size: int = LRP_BATCH_SIZE,
    keep_per_sample: bool = False,
) -> FFRSResult:
    """FF-RS ranking of all conv feature maps from fake `images` (RGB uint8).

    Only fakes the detector scores P(fake) >= 0.9 are used; at most `max_samples` of them
    (seeded random subset). `k` defaults to `default_k(number of maps)`.
    Raises `UnsupportedModelError` for detectors LRP cannot handle, `NoConfidentFakesError`
    (an `InputError`) when no image is confidently detected.
    """
    ex = as_explainable(detector)
    check_lrp_supported(ex.model, ex.name)
    if len(images) == 0:
        raise InputError("no fake images given for FF-RS")
    probs = sigmoid(batched_logits(ex, images))
    confident = np.flatnonzero(probs >= CONFIDENCE)
    if len(confident) == 0:
        raise NoConfidentFakesError(
            f"none of the {len(images)} fakes is detected with P(fake) >= {CONFIDENCE} "
            f"(max {probs.max():.4g}); FF-RS needs confidently detected fakes"
        )
    chosen = confident
    if max_samples is not None and len(confident) > max_samples:
        chosen = np.sort(rng_for(seed, "ffrs-samples").choice(confident, max_samples, False))
    layers = conv_layers(ex.model)
    model = copy.deepcopy(ex.model).eval()
    sums: dict[str, torch.Tensor] = {}
    per_sample: dict[str, list[np.ndarray]] = {layer: [] for layer in layers}
    sel = [images[i] for i in chosen]
    batches = list(shape_batches(sel, batch_size))
    for idx in track(batches, "FF-RS (LRP)"):
        x = ex.preprocess([sel[i] for i in idx])
        _, rel = conv_relevance(
            ex, x, layers, reduce=normalised_channel_relevance, model_copy=model
        )
        for layer, v in rel.items():
            sums[layer] = sums.get(layer, 0) + v.sum(dim=0)
            if keep_per_sample:
                per_sample[layer].append(v.cpu().numpy())
    n = len(chosen)
    stats = {layer: (sums[layer] / n).cpu().numpy() for layer in layers}
    ranking = ranking_frame(stats)
    kk = default_k(len(ranking)) if k is None else int(k)
    if not 1 <= kk <= len(ranking):
        raise InputError(f"k = {kk} must lie in 1..{len(ranking)} (number of feature maps)")
    per_layer = (
        {layer: np.concatenate(v) for layer, v in per_sample.items()} if keep_per_sample else {}
    )
    return FFRSResult(
        ranking=ranking,
        k=kk,
        n_fakes=len(images),
        n_confident=int(len(confident)),
        n_samples=int(n),
        seed=seed,
        per_layer=per_layer,
    )


def read_ranking(path: str | Path) -> pd.DataFrame:
    """Read an FF-RS ranking CSV (as written by `explain ffrs`): sorted by FF-RS (descending),
    ties in the stored rank order; `rank` renumbered 1..n."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: ranking CSV not found")
    try:
        df = pd.read_csv(p)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    missing = [c for c in ("key", "ffrs") if c not in df.columns]
    if missing:
        raise InputError(f"{p}: ranking lacks column(s) {', '.join(missing)}")
    for key in df["key"]:
        parse_key(key)
    df["layer"] = [parse_key(k)[0] for k in df["key"]]
    df["channel"] = [parse_key(k)[1] for k in df["key"]]
    # by the stored rank when present (keeps the order of tied maps), else by FF-RS
    order = ["rank"] if "rank" in df.columns else []
    df = df.sort_values(["ffrs", *order], ascending=[False, *[True] * len(order)], kind="stable")
    df = df.reset_index(drop=True)
    df["rank"] = np.arange(1, len(df) + 1)
    return df[list(RANKING_COLUMNS)]


def keys_to_maps(keys: Sequence[str]) -> dict[str, list[int]]:
    """`layer.#channel` keys grouped as {layer: [channels]}."""
    out: dict[str, list[int]] = {}
    for key in keys:
        layer, ch = parse_key(key)
        out.setdefault(layer, []).append(ch)
    return out
