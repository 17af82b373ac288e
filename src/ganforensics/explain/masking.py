"""Sensitivity of a detector to chosen feature maps: zero them and re-measure (DESIGN B6).

The chosen conv output channels are set to zero by forward hooks on the conv modules (the conv
output before any BatchNorm that follows; `position="folded"` zeroes the BatchNorm output
instead, i.e. the conv output of the BatchNorm-folded network that LRP ranked).
Conditions: `none` (no masking), `top-k` (the k highest FF-RS maps), `low-k` (the k lowest),
`random-k` (k maps drawn uniformly from all maps, metrics averaged over 5 seeded draws).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ganforensics.console import info
from ganforensics.errors import InputError
from ganforensics.explain.adapter import (
    Explainable,
    as_explainable,
    batched_logits,
    get_module,
    sigmoid,
)
from ganforensics.explain.ffrs import keys_to_maps, read_ranking
from ganforensics.explain.scores import METRIC_COLUMNS, per_generator_metrics
from ganforensics.seeding import DEFAULT_SEED, rng_for

RANDOM_DRAWS = 5
CONDITIONS = ("none", "top-k", "low-k", "random-k")
"""The masking conditions, in the order of the report's rows."""
POSITIONS = ("conv", "folded")


def _following_batchnorm(model: nn.Module, layer: str) -> nn.Module | None:
    """The BatchNorm2d leaf that directly follows conv `layer` in module order, if any."""
    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    for (name, _), (_, nxt) in zip(leaves, leaves[1:], strict=False):
        if name == layer and isinstance(nxt, nn.BatchNorm2d):
            return nxt
    return None


@contextmanager
def mask_channels(
    model: nn.Module, maps: Mapping[str, Sequence[int]], position: str = "conv"
) -> Iterator[None]:
    """Within the block, the output channels `maps[layer]` of each conv `layer` are zero.

    `position="conv"` zeroes the conv module's output (DESIGN B6, the default); `"folded"`
    zeroes the output of the BatchNorm directly after the conv instead (the conv output of the
    BatchNorm-folded network that LRP explains; same as "conv" where no BatchNorm follows).
    """
    if position not in POSITIONS:
        raise InputError(f"mask position must be one of {POSITIONS}, not {position!r}")
    handles = []
    try:
        for layer, chans in maps.items():
            mod = get_module(model, layer)
            n_out = getattr(mod, "out_channels", None)
            target = mod
            if position == "folded":
                target = _following_batchnorm(model, layer) or mod
            bad = [c for c in chans if n_out is not None and not 0 <= int(c) < n_out]
            if bad:
                raise InputError(f"layer {layer!r} has {n_out} channels; cannot mask {bad[:5]}")
            idx = torch.as_tensor(sorted({int(c) for c in chans}), dtype=torch.long)

            def hook(_m: nn.Module, _i: Any, out: torch.Tensor, idx: torch.Tensor = idx) -> Any:
                keep = torch.ones(out.shape[1], dtype=out.dtype, device=out.device)
                keep[idx.to(out.device)] = 0
                return out * keep.view(1, -1, *([1] * (out.ndim - 2)))

            handles.append(target.register_forward_hook(hook))
        yield
    finally:
        for h in handles:
            h.remove()


def masked_probs(
    ex: Explainable, images: Sequence[np.ndarray], keys: Sequence[str], position: str = "conv"
) -> np.ndarray:
    """P(fake) of `images` with the feature maps `keys` (`layer.#channel`) zeroed."""
    with mask_channels(ex.model, keys_to_maps(keys), position):
        return sigmoid(batched_logits(ex, images))


def as_ranking(ranking: pd.DataFrame | str | Any) -> pd.DataFrame:
    """An FF-RS ranking, highest first, from a DataFrame, an `FFRSResult` or a CSV path."""
    if isinstance(ranking, pd.DataFrame):
        df = ranking.sort_values("ffrs", ascending=False, kind="stable").reset_index(drop=True)
        return df
    if hasattr(ranking, "ranking"):
        return as_ranking(ranking.ranking)
    return read_ranking(ranking)


def _random_picks(keys: Sequence[str], k: int, draws: int, seed: int) -> list[list[str]]:
    """`draws` seeded choices of `k` of the `keys` (each in ranking order)."""
    picks = []
    for d in range(draws):
        pick = rng_for(seed, "random-k", k, d).choice(len(keys), size=k, replace=False)
        picks.append([keys[i] for i in sorted(pick)])
    return picks


def _mean_over_draws(tables: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Metrics averaged over the random draws per generator, with `ap_std` their AP spread."""
    stacked = pd.concat(tables)
    mean = stacked.groupby("generator", sort=False)[list(METRIC_COLUMNS)].mean()
    std = stacked.groupby("generator", sort=False)["ap"].std(ddof=0)
    df = tables[0].drop(columns=list(METRIC_COLUMNS)).set_index("generator")
    return df.join(mean).join(std.rename("ap_std")).reset_index()


def masking_report(
    detector: Any,
    ranking: pd.DataFrame | Any,
    k: int,
    images: Sequence[np.ndarray],
    labels: Sequence[int] | np.ndarray,
    generators: Sequence[str] | np.ndarray,
    *,
    draws: int = RANDOM_DRAWS,
    seed: int = DEFAULT_SEED,
    position: str = "conv",
) -> pd.DataFrame:
    """AP and accuracies at the detector's threshold per generator under each masking condition.

    `ranking` is an FF-RS ranking (DataFrame with `key` and `ffrs`, an `FFRSResult`, or a CSV
    path). Returns a long DataFrame: condition, generator, n_real, n_fake, ap, acc, real_acc,
    fake_acc, bacc, plus `ap_std` (spread over random draws; 0 otherwise), `k`, `draws`,
    `seed`, `position` (see `mask_channels`).
    """
    ex = as_explainable(detector)
    rk = as_ranking(ranking)
    n_maps = len(rk)
    if not 1 <= int(k) <= n_maps:
        raise InputError(f"k = {k} must lie in 1..{n_maps} (maps in the ranking)")
    k = int(k)
    keys = list(rk["key"])
    frames = []

    def run(condition: str, chosen: Sequence[str]) -> pd.DataFrame:
        probs = masked_probs(ex, images, chosen, position)
        df = per_generator_metrics(labels, probs, generators, ex.threshold)
        df.insert(0, "condition", condition)
        return df

    fixed = {"none": [], "top-k": keys[:k], "low-k": keys[-k:]}
    info(f"masking: baseline, top-{k}, low-{k}, random-{k} x {draws} draws")
    for cond in CONDITIONS:
        if cond in fixed:
            df = run(cond, fixed[cond])
            df["ap_std"] = 0.0
            frames.append(df)
        elif draws > 0:  # random-k
            rand = [run(cond, chosen) for chosen in _random_picks(keys, k, draws, seed)]
            frames.append(_mean_over_draws(rand)[frames[0].columns])
    out = pd.concat(frames, ignore_index=True)
    out["k"] = k
    out["draws"] = np.where(out["condition"] == "random-k", draws, 1)
    out["seed"] = seed
    out["position"] = position
    return out
