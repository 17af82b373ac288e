"""Figures of spectra: mean +- std profiles per group, a zoom on the top frequencies, and the
mean 2-D log spectra as heatmaps (DESIGN B1).

The frequency axis is the bin radius as a fraction of the Nyquist radius (``min(H, W) / 2``).
The clean variant spans 0..1; the durall variant also covers the corners of the spectrum, up
to about 1.41 for square images, and the plot marks Nyquist (1.0) with a dashed line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ganforensics.errors import InputError
from ganforensics.io.atomic import atomic_path
from ganforensics.spectral.collection import SpectraSet

MAX_HEATMAPS = 6
PLOT_DPI = 120
YLABEL = {
    "durall": "mean 20 ln|F| (reference azimuthal average)",
    "clean": "power |F|^2 / (HW), geometric mean",
}


def _save_figure(fig: Any, out: str | os.PathLike[str], dpi: int) -> Path:
    """Write `fig` as a PNG (temp, then rename) and close it."""
    import matplotlib.pyplot as plt

    target = Path(out)
    with atomic_path(target, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return target


def _band(prof: np.ndarray, log_y: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and mean -+ std; geometric (in log10) for power spectra."""
    if log_y:
        lp = np.log10(np.maximum(prof, np.finfo(np.float64).tiny))
        m, sd = lp.mean(axis=0), lp.std(axis=0)
        return 10.0**m, 10.0 ** (m - sd), 10.0 ** (m + sd)
    m, sd = prof.mean(axis=0), prof.std(axis=0)
    return m, m - sd, m + sd


def plot_spectra(
    spectra: SpectraSet,
    out: str | os.PathLike[str],
    *,
    variant: str | None = None,
    groups: list[str] | None = None,
    zoom: float = 0.75,
    dpi: int = PLOT_DPI,
    title: str | None = None,
) -> Path:
    """Write a PNG: profiles (full and zoomed to the top `1 - zoom` of frequencies) and 2-D
    mean spectra."""
    # matplotlib is imported only when a figure is drawn (it adds ~0.6 s to start-up)
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    variant = variant or spectra.meta["variants"][0]
    if variant not in spectra.meta["variants"]:
        raise InputError(
            f"variant {variant!r} not in this file (has: {', '.join(spectra.meta['variants'])})"
        )
    chosen = [spectra.group(g) for g in groups] if groups else spectra.groups
    n_maps = min(len(chosen), MAX_HEATMAPS)
    fig = plt.figure(figsize=(max(11.0, 3.0 * n_maps), 8.5), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.3, 1.0])
    ax_full, ax_zoom = top.subplots(1, 2)
    map_axes = np.atleast_1d(bottom.subplots(1, n_maps))
    colors = plt.get_cmap("tab10")
    log_y = variant == "clean"
    fmax = max(float(g.freq[variant][-1]) for g in chosen)
    fmin = min(float(g.freq[variant][0]) for g in chosen)
    lo_zoom = fmin + zoom * (fmax - fmin)
    zoom_lo, zoom_hi = np.inf, -np.inf
    for i, g in enumerate(chosen):
        mean, lo, hi = _band(g.profiles[variant], log_y)
        freq = g.freq[variant]
        color = colors(i % 10)
        for ax in (ax_full, ax_zoom):
            ax.fill_between(freq, lo, hi, color=color, alpha=0.18, linewidth=0)
            ax.plot(freq, mean, color=color, lw=1.6,
                    label=f"{g.name} (n={g.profiles[variant].shape[0]})")
        sel = freq >= lo_zoom
        if sel.any():
            zoom_lo, zoom_hi = min(zoom_lo, lo[sel].min()), max(zoom_hi, hi[sel].max())
    ax_zoom.set_xlim(lo_zoom, fmax)
    if np.isfinite(zoom_lo) and zoom_hi > zoom_lo:
        if log_y:
            ax_zoom.set_ylim(zoom_lo / 1.5, zoom_hi * 1.5)
        else:
            pad = 0.05 * (zoom_hi - zoom_lo)
            ax_zoom.set_ylim(zoom_lo - pad, zoom_hi + pad)
    for ax, name in ((ax_full, "all frequencies"), (ax_zoom, f"top {1 - zoom:.0%} of frequencies")):
        if log_y:
            ax.set_yscale("log")
        if fmax > 1.0:
            ax.axvline(1.0, color="0.4", ls="--", lw=0.8)
        ax.set_xlabel("spatial frequency (fraction of Nyquist)")
        ax.set_ylabel(YLABEL[variant])
        stat = "geometric mean ×/÷ std" if log_y else "mean ± std"
        ax.set_title(f"{variant} profile, {stat}: {name}")
        ax.grid(alpha=0.3)
    ax_full.legend(fontsize=8, loc="best")
    for j, g in enumerate(chosen[:n_maps]):
        ax = map_axes[j]
        im = ax.imshow(g.mean2d, cmap="inferno", interpolation="nearest")
        h, w = g.mean2d.shape
        ax.set_title(f"{g.name}: mean 20 ln|F| ({h}x{w})", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        bottom.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    fig.suptitle(title or f"Fourier spectra ({spectra.meta.get('dtype', 'float64')})")
    return _save_figure(fig, out, dpi)


def plot_profile_panels(
    panels: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]],
    out: str | os.PathLike[str],
    *,
    zoom: float = 0.5,
    dpi: int = PLOT_DPI,
    title: str | None = None,
) -> Path:
    """Write a PNG of small multiples: one panel per key of `panels`, holding the mean ± std
    durall profile of each of its groups (name -> (freq, profiles (N, bins))) over the top
    `1 - zoom` of frequencies; the same colour for the same group name in every panel."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    if not panels:
        raise InputError("no spectra to plot")
    names = list(dict.fromkeys(n for groups in panels.values() for n in groups))
    colors = plt.get_cmap("tab10")
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False,
                             layout="constrained")
    for ax, (panel, groups) in zip(axes.flat, panels.items(), strict=False):
        for name, (freq, prof) in groups.items():
            mean, lo, hi = _band(prof, False)
            sel = freq >= freq[0] + zoom * (freq[-1] - freq[0])
            color = colors(names.index(name) % 10)
            ax.fill_between(freq[sel], lo[sel], hi[sel], color=color, alpha=0.15, linewidth=0)
            ax.plot(freq[sel], mean[sel], color=color, lw=1.5, label=f"{name} (n={len(prof)})")
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel("spatial frequency (fraction of Nyquist)", fontsize=8)
        ax.set_ylabel(YLABEL["durall"], fontsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(title or f"durall profiles, mean ± std, top {1 - zoom:.0%} of frequencies")
    return _save_figure(fig, out, dpi)
