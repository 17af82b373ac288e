"""Colour ablation (DESIGN B6): AP on RGB vs grayscale input, and colour-conditional maps.

Grayscale input: `data.perturb.grayscale`, L = 0.299 R + 0.587 G + 0.114 B in float32 (rounded
to uint8) replicated to three channels, the one the study's grayscale stage uses;
decisions use the detector's RGB-calibrated threshold. A top-k feature map is colour-conditional
when its response on fakes — the spatial max of the conv output per image — differs between the
RGB and the grayscale version of the same fakes by Mood's median test at p <= 0.05.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ganforensics.data.perturb import grayscale
from ganforensics.errors import InputError
from ganforensics.explain.adapter import (
    Explainable,
    as_explainable,
    batched_logits,
    get_module,
    model_device,
    sigmoid,
)
from ganforensics.explain.ffrs import compute_ffrs, default_k, parse_key
from ganforensics.explain.masking import as_ranking
from ganforensics.explain.scores import per_generator_metrics
from ganforensics.io.images import shape_batches

ALPHA = 0.05


@torch.no_grad()
def map_maxima(
    ex: Explainable, images: Sequence[np.ndarray], keys: Sequence[str], batch_size: int = 32
) -> np.ndarray:
    """(N, len(keys)) spatial max of each feature map (conv output) per image."""
    wanted: dict[str, list[int]] = {}
    for key in keys:
        layer, ch = parse_key(key)
        wanted.setdefault(layer, []).append(ch)
    col = {k: i for i, k in enumerate(keys)}
    out = np.zeros((len(images), len(keys)), dtype=np.float64)
    current: dict[str, torch.Tensor] = {}
    handles = []

    def make(layer: str) -> Any:
        def hook(_m: nn.Module, _i: Any, o: torch.Tensor) -> None:
            current[layer] = o.detach().flatten(2).amax(dim=2)

        return hook

    try:
        for layer in wanted:
            handles.append(get_module(ex.model, layer).register_forward_hook(make(layer)))
        ex.model.eval()
        for idx in shape_batches(images, batch_size):
            ex.model(ex.preprocess([images[i] for i in idx]).to(model_device(ex.model)))
            for layer, chans in wanted.items():
                vals = current[layer][:, chans].double().cpu().numpy()
                for j, ch in enumerate(chans):
                    out[idx, col[f"{layer}.#{ch}"]] = vals[:, j]
    finally:
        for h in handles:
            h.remove()
    return out


def mood_p(a: np.ndarray, b: np.ndarray) -> float:
    """p-value of Mood's median test; 1.0 when it is undefined (e.g. constant responses)."""
    try:
        # scipy.stats takes ~1 s to import; only the colour test needs it
        from scipy.stats import median_test

        return float(median_test(a, b)[1])
    except ValueError:
        return 1.0


@dataclass
class ColorResult:
    """RGB vs grayscale detection per generator, and the colour-conditional top-k maps."""

    detection: pd.DataFrame
    """generator, n_real, n_fake, then ap/acc/real_acc/fake_acc/bacc for `_rgb` and `_gray`."""
    maps: pd.DataFrame
    """key, layer, channel, rank, median_rgb, median_gray, p_value, colour_conditional."""
    k: int
    n_fakes: int
    alpha: float = ALPHA
    ranking_source: str = "given"

    @property
    def share_colour_conditional(self) -> float:
        """Fraction of the top-k maps that are colour-conditional."""
        return float(self.maps["colour_conditional"].mean()) if len(self.maps) else float("nan")

    def summary(self) -> dict[str, Any]:
        mean = self.detection[self.detection["generator"] == "mean"].iloc[0]
        return {
            "k": self.k,
            "n_fakes": self.n_fakes,
            "alpha": self.alpha,
            "ranking_source": self.ranking_source,
            "n_colour_conditional": int(self.maps["colour_conditional"].sum()),
            "share_colour_conditional": self.share_colour_conditional,
            "mean_ap_rgb": float(mean["ap_rgb"]),
            "mean_ap_gray": float(mean["ap_gray"]),
        }


def color_report(
    detector: Any,
    images: Sequence[np.ndarray],
    labels: Sequence[int] | np.ndarray,
    generators: Sequence[str] | np.ndarray,
    *,
    ranking: pd.DataFrame | Any | None = None,
    k: int | None = None,
    alpha: float = ALPHA,
) -> ColorResult:
    """Colour ablation on test images (reals and fakes with their generators).

    `ranking` (DataFrame / FFRSResult / CSV path) supplies the top-k maps; without it FF-RS is
    computed from the test fakes themselves. `k` defaults to the ranking's default top-k.
    """
    ex = as_explainable(detector)
    y = np.asarray(labels).astype(int)
    gray = [grayscale(im) for im in images]
    p_rgb = sigmoid(batched_logits(ex, images))
    p_gray = sigmoid(batched_logits(ex, gray))
    d_rgb = per_generator_metrics(y, p_rgb, generators, ex.threshold)
    d_gray = per_generator_metrics(y, p_gray, generators, ex.threshold)
    keycols = ["generator", "n_real", "n_fake"]
    det = d_rgb.merge(d_gray, on=keycols, suffixes=("_rgb", "_gray"))
    fakes = np.flatnonzero(y == 1)
    source = "given"
    if ranking is None:
        res = compute_ffrs(ex, [images[i] for i in fakes], k=k)
        rk, kk, source = res.ranking, res.k, "test fakes"
    else:
        rk = as_ranking(ranking)
        kk = default_k(len(rk)) if k is None else int(k)
    if not 1 <= kk <= len(rk):
        raise InputError(f"k = {kk} must lie in 1..{len(rk)} (maps in the ranking)")
    top = list(rk["key"].iloc[:kk])
    a_rgb = map_maxima(ex, [images[i] for i in fakes], top)
    a_gray = map_maxima(ex, [gray[i] for i in fakes], top)
    rows = []
    for j, key in enumerate(top):
        layer, ch = parse_key(key)
        p = mood_p(a_rgb[:, j], a_gray[:, j])
        rows.append(
            {
                "key": key,
                "layer": layer,
                "channel": ch,
                "rank": j + 1,
                "median_rgb": float(np.median(a_rgb[:, j])),
                "median_gray": float(np.median(a_gray[:, j])),
                "p_value": p,
                "colour_conditional": bool(p <= alpha),
            }
        )
    return ColorResult(
        detection=det,
        maps=pd.DataFrame(rows),
        k=kk,
        n_fakes=int(len(fakes)),
        alpha=alpha,
        ranking_source=source,
    )
