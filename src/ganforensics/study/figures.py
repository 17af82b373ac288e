"""Figures of the study report (matplotlib, Agg backend, PNG files)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from ganforensics.io.atomic import atomic_path


def _plt():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_profiles_plot(profiles: Mapping[str, np.ndarray], path: str | os.PathLike[str]) -> None:
    """Mean +- std azimuthal (durall) profile per group against normalised frequency."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=100)
    for name, p in profiles.items():
        p = np.asarray(p, dtype=np.float64)
        x = np.arange(1, p.shape[1] + 1) / p.shape[1]
        m, s = p.mean(0), p.std(0)
        kw = {"color": "black", "lw": 2.2} if name == "real" else {"lw": 1.4}
        (line,) = ax.plot(x, m, label=f"{name} (n={len(p)})", **kw)
        ax.fill_between(x, m - s, m + s, color=line.get_color(), alpha=0.08)
    ax.set_xlabel("spatial frequency (fraction of the largest radius)")
    ax.set_ylabel("20 ln|F| (azimuthal mean)")
    ax.set_title("Azimuthally averaged log spectra (durall variant), mean ± std")
    ax.legend(fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def save_heatmaps(spectra: Mapping[str, np.ndarray], path: str | os.PathLike[str]) -> None:
    """Mean 2-D log spectra as heatmaps, one panel per group (shared colour scale)."""
    plt = _plt()
    items = list(spectra.items())
    n = len(items)
    fig, axes = plt.subplots(1, n, figsize=(2.1 * n, 2.5), dpi=100, squeeze=False)
    vals = np.concatenate([np.asarray(v, dtype=np.float64).ravel() for _, v in items])
    lo, hi = np.percentile(vals, [1, 99])
    for ax, (name, spec) in zip(axes[0], items, strict=True):
        ax.imshow(np.asarray(spec), cmap="viridis", vmin=lo, vmax=hi)
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    fig.suptitle("Mean 2-D log spectrum (centre = lowest frequency)", fontsize=9)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def save_bar_plot(labels: list[str], values: list[float], path: str | os.PathLike[str], *,
                  title: str, ylabel: str) -> None:
    """A simple bar chart (e.g. spectral discrepancy per setup)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    ax.bar(labels, values, color="#4a7ab5")
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
