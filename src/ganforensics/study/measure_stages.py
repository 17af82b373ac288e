"""Study stages that measure the fakes: FID / KID per setup and spectra per setup."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ganforensics.data.manifest import split_of
from ganforensics.io.atomic import save_png_atomic
from ganforensics.io.images import image_grid
from ganforensics.metrics.features import get_extractor
from ganforensics.metrics.fid import fid_bootstrap, frechet_distance, stats_for_images
from ganforensics.metrics.kid import kid
from ganforensics.seeding import derive_seed
from ganforensics.spectral.collection import GroupSpectra, SpectraSet
from ganforensics.spectral.discrepancy import spectral_discrepancy
from ganforensics.spectral.plots import plot_spectra
from ganforensics.spectral.spectra import durall_plan, durall_profiles, mean_log_spectrum
from ganforensics.study.context import StudyContext, checked, decode_stack

QUALITY_TABLE = "tables/quality.csv"
QUALITY_COLUMNS = ("setup", "fid", "fid_sd", "kid_mean", "kid_std", "n_real", "n_fake",
                   "feature_dim", "extractor", "standard_extractor")
"""`fid_sd`: standard deviation of FID over `quality.fid_resamples` bootstrap resamples of the
feature rows (`metrics.fid.fid_bootstrap`), the sampling spread of the estimate at these set
sizes; `kid_std`: over the KID subsets."""
SPECTRA_TABLE = "tables/spectra.csv"
SPECTRA_COLUMNS = ("setup", "discrepancy", "signed_difference", "top_fraction", "n_real",
                   "n_fake", "profile")
PROFILES_TABLE = "tables/spectra_profiles.csv"
PROFILES_COLUMNS = ("group", "bin", "freq", "mean", "std")
SPECTRA_FIGURE = "figures/spectra.png"
REAL_GRID = "figures/grid_real.png"


def grid_file(setup: str) -> str:
    """Run-folder path of a setup's sample grid."""
    return f"figures/grid_{setup}.png"


def _save_grid(ctx: StudyContext, stack: np.ndarray, name: str) -> None:
    n = ctx.cfg["quality"]["grid"]
    save_png_atomic(ctx.run.file(name), image_grid(stack[: n * n], n, pad=1, fill=255, scale=2))


def _save_pair_grid(ctx: StudyContext, fakes: pd.DataFrame, name: str) -> None:
    """Grid of a simulated setup: rows of source reals, each above a row of their
    reconstructions (the first test pairs)."""
    n = ctx.cfg["quality"]["grid"]
    rows = fakes.head(n * max(1, n // 2))
    rec = decode_stack(rows, f"{name} reconstructions")
    src = decode_stack(rows.assign(abspath=rows["source_path"].astype(str)), f"{name} sources")
    if len(rec) != len(src):  # an unreadable file: a grid of the reconstructions alone
        _save_grid(ctx, rec, grid_file(name))
        return
    parts = [np.concatenate([src[i:i + n], rec[i:i + n]]) for i in range(0, len(rec), n)
             if len(rec[i:i + n]) == n]
    stack = np.concatenate(parts) if parts else np.concatenate([src, rec])
    save_png_atomic(ctx.run.file(grid_file(name)),
                    image_grid(stack, n, pad=1, fill=255, scale=2))


def _fid_sd(real: np.ndarray, fake: np.ndarray, resamples: int, seed: int) -> float:
    """Bootstrap standard deviation of FID (NaN with fewer than 2 resamples)."""
    if resamples < 2:
        return float("nan")
    return float(np.std(fid_bootstrap(real, fake, resamples, seed=seed), ddof=1))


def stage_quality(ctx: StudyContext) -> dict[str, Any]:
    """FID (with its bootstrap spread) and KID of each setup's test fakes against the held-out
    (val + test) reals.

    Feature statistics come from `metrics.fid.stats_for_images` (float64 mean, covariance with
    N - 1, and its warning when N is below the feature dimension).
    """
    q = ctx.cfg["quality"]
    extractor = get_extractor(q["extractor"])
    real = ctx.real_manifest()
    held = real[real["split"].astype(str).isin(["val", "test"])]
    real_stack = decode_stack(held, "held-out reals")
    real_stats = stats_for_images(real_stack, extractor, name="held-out reals")
    real_feat = real_stats.features
    _save_grid(ctx, real_stack, REAL_GRID)
    rows = []
    for s in ctx.setups():
        fake_df = split_of(ctx.fake_manifest(s["name"]), "test")
        fake_stack = decode_stack(fake_df, s["name"])
        stats = stats_for_images(fake_stack, extractor, name=f"{s['name']} test fakes")
        feat = stats.features
        fid = frechet_distance(real_stats.mu, real_stats.sigma, stats.mu, stats.sigma)
        size = min(q["kid_subset_size"], len(feat), len(real_feat))
        k_mean, k_std = kid(real_feat, feat, subsets=q["kid_subsets"], subset_size=size,
                            seed=derive_seed(ctx.seed, "kid", s["name"]) % 2**31)
        sd = _fid_sd(real_feat, feat, q["fid_resamples"],
                     derive_seed(ctx.seed, "fid-bootstrap", s["name"]))
        rows.append({"setup": s["name"], "fid": float(fid), "fid_sd": sd,
                     "kid_mean": float(k_mean),
                     "kid_std": float(k_std), "n_real": len(real_feat), "n_fake": len(feat),
                     "feature_dim": int(feat.shape[1])})
        if s["arm"] == "simulated":
            _save_pair_grid(ctx, fake_df, s["name"])
        else:
            _save_grid(ctx, fake_stack, grid_file(s["name"]))
    table = pd.DataFrame(rows)
    ext_name = str(getattr(extractor, "label", type(extractor).__name__))
    standard = bool(getattr(extractor, "standard", False))
    table["extractor"] = ext_name
    table["standard_extractor"] = standard
    ctx.run.write_csv(QUALITY_TABLE, checked(table, QUALITY_COLUMNS, QUALITY_TABLE))
    return {"file": QUALITY_TABLE, "extractor": ext_name, "standard": standard}


def _profile_rows(group: str, p: np.ndarray) -> list[dict[str, Any]]:
    """Per-bin mean and std of one group's profiles (`freq` = (bin + 1) / n_bins)."""
    n_bins = p.shape[1]
    return [{"group": group, "bin": j, "freq": (j + 1) / n_bins,
             "mean": float(p[:, j].mean()), "std": float(p[:, j].std())} for j in range(n_bins)]


def save_spectra_figure(stacks: dict[str, np.ndarray], profiles: dict[str, np.ndarray],
                        path: str | Path, top_fraction: float) -> None:
    """The spectral package's figure (profiles against fraction of Nyquist, a zoom on the top
    band, mean 2-D log spectra) of the study's groups."""
    groups = []
    for name, stack in stacks.items():
        h, w = stack.shape[1:3]
        groups.append(GroupSpectra(name=name, paths=[], profiles={"durall": profiles[name]},
                                   freq={"durall": durall_plan(h, w).freq},
                                   mean2d=np.asarray(mean_log_spectrum(stack))))
    spectra = SpectraSet(groups, {"variants": ["durall"], "dtype": "float64"})
    plot_spectra(spectra, path, variant="durall", zoom=1.0 - top_fraction,
                 title="Spectra of the real test patches and each setup's test fakes")


def stage_spectra(ctx: StudyContext) -> dict[str, Any]:
    """Durall profiles of the test reals and each setup's test fakes; the discrepancy of each
    setup over the top `spectra.top_fraction` of the bins (`spectral.discrepancy`)."""
    frac = ctx.cfg["spectra"]["top_fraction"]
    real = split_of(ctx.real_manifest(), "test")
    stacks = {"real": decode_stack(real, "test reals")}
    for s in ctx.setups():
        stacks[s["name"]] = decode_stack(split_of(ctx.fake_manifest(s["name"]), "test"),
                                         s["name"])
    profiles = {k: np.asarray(durall_profiles(v), dtype=np.float64) for k, v in stacks.items()}
    real_p = profiles["real"]
    rows, prof_rows = [], []
    for k, p in profiles.items():
        prof_rows += _profile_rows(k, p)
        if k != "real":
            rows.append({"setup": k, "discrepancy": spectral_discrepancy(real_p, p, frac),
                         "signed_difference": spectral_discrepancy(real_p, p, frac, signed=True),
                         "top_fraction": frac, "n_real": len(real_p), "n_fake": len(p),
                         "profile": "durall"})
    ctx.run.write_csv(SPECTRA_TABLE, pd.DataFrame(rows, columns=list(SPECTRA_COLUMNS)))
    ctx.run.write_csv(PROFILES_TABLE, pd.DataFrame(prof_rows, columns=list(PROFILES_COLUMNS)))
    save_spectra_figure(stacks, profiles, ctx.run.file(SPECTRA_FIGURE), frac)
    return {"file": SPECTRA_TABLE}
