"""Study stages that measure the fakes: FID / KID per setup (against the real-vs-real floor)
and spectra per setup."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ganforensics import console
from ganforensics.data.manifest import split_of
from ganforensics.io.atomic import save_png_atomic
from ganforensics.io.images import image_grid
from ganforensics.metrics.features import get_extractor
from ganforensics.metrics.fid import fid_bootstrap, frechet_distance, stats_for_images
from ganforensics.metrics.kid import kid
from ganforensics.seeding import derive_seed
from ganforensics.spectral.collection import GroupSpectra, SpectraSet
from ganforensics.spectral.discrepancy import spectral_discrepancy
from ganforensics.spectral.plots import plot_profile_panels, plot_spectra
from ganforensics.spectral.spectra import durall_plan, durall_profiles, mean_log_spectrum
from ganforensics.study.context import StudyContext, checked, decode_stack

QUALITY_TABLE = "tables/quality.csv"
QUALITY_COLUMNS = ("setup", "arm", "fid", "fid_sd", "floor", "ratio", "kid_mean", "kid_std",
                   "psnr_db", "n_real", "n_fake", "feature_dim", "extractor",
                   "standard_extractor")
"""FID and KID of each setup's fakes against `reference`, n train reals (in-distribution: the
photos the GANs and simulators learnt from); `floor`: FID between the reference and a disjoint
sample of n train reals, the distance two samples of the same photos keep at this n; `ratio` =
fid / floor. `fid_sd`: standard deviation of FID over `quality.fid_resamples` bootstrap
resamples of the feature rows (`metrics.fid.fid_bootstrap`); `kid_std`: over the KID subsets;
`psnr_db`: a simulated setup's mean PSNR against its sources (test split)."""
SPECTRA_TABLE = "tables/spectra.csv"
SPECTRA_COLUMNS = ("setup", "discrepancy", "signed_difference", "top_fraction", "n_real",
                   "n_fake", "profile")
PROFILES_TABLE = "tables/spectra_profiles.csv"
PROFILES_COLUMNS = ("group", "bin", "freq", "mean", "std")
SPECTRA_FIGURE = "figures/spectra.png"
ARMS_FIGURE = "figures/spectra_arms.png"
"""One panel per GAN setup S with both arms: the real test patches, S's samples and sim-S's
reconstructions (top half of the frequencies)."""
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


def quality_size(ctx: StudyContext, n_train: int) -> int:
    """Images a side of every FID: `quality.n`, capped at half the train reals and, with a
    sampled arm, at the test fakes per setup."""
    asked = int(ctx.cfg["quality"]["n"])
    sampled = any(s["arm"] == "sampled" for s in ctx.setups())
    n_fakes = int(ctx.cfg["fakes"]["n_test"]) if sampled else asked
    n = min(asked, n_train // 2, n_fakes)
    if n < asked:  # say so: a ratio to the floor is comparable only at equal n
        cap = ("fakes.n_test; set it too for a larger n" if n == n_fakes
               else f"half the {n_train} train reals")
        console.info(f"quality: {n} images a side, not quality.n {asked} (capped at {cap})")
    return n


def reference_samples(train: pd.DataFrame, n: int, seed: int
                      ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two disjoint seeded samples of n rows of the train reals: the FID reference and the
    second sample of the floor (whose reconstructions are a simulated setup's fakes)."""
    order = np.random.default_rng(seed).permutation(len(train))
    return train.iloc[order[:n]], train.iloc[order[n:2 * n]]


def quality_fakes(ctx: StudyContext, setup: Mapping[str, Any], second: pd.DataFrame,
                  n: int) -> pd.DataFrame:
    """The fakes whose FID a setup reports: the first n test fakes of a sampled setup; for a
    simulated one the reconstructions of `second` (train reals of the same photos as the
    reference, disjoint from it), the same images the floor compares."""
    fakes = ctx.fake_manifest(setup["name"])
    if setup["arm"] != "simulated":
        return split_of(fakes, "test").head(n)
    by_source = fakes.drop_duplicates("source_sha256").set_index("source_sha256")
    wanted = second["sha256"].astype(str)
    return by_source.loc[wanted[wanted.isin(by_source.index)]].reset_index()


def _psnr(fakes: pd.DataFrame) -> float:
    test = split_of(fakes, "test")
    if "psnr_db" not in test.columns or test.empty:
        return float("nan")
    return float(pd.to_numeric(test["psnr_db"], errors="coerce").clip(upper=99).mean())


def stage_quality(ctx: StudyContext) -> dict[str, Any]:
    """FID (with its bootstrap spread) and KID of each setup's fakes against n train reals,
    beside the real-vs-real floor at the same n (`QUALITY_COLUMNS`); sample grids.

    Feature statistics come from `metrics.fid.stats_for_images` (float64 mean, covariance with
    N - 1, and its warning when N is below the feature dimension).
    """
    q = ctx.cfg["quality"]
    extractor = get_extractor(q["extractor"])
    train = split_of(ctx.real_manifest(), "train").reset_index(drop=True)
    n = quality_size(ctx, len(train))
    ref_rows, second = reference_samples(train, n, derive_seed(ctx.seed, "quality-reference"))
    ref_stack = decode_stack(ref_rows, "reference train reals")
    ref = stats_for_images(ref_stack, extractor, name="reference train reals")
    floor_stats = stats_for_images(decode_stack(second, "second train reals"), extractor,
                                   name="second train reals")
    floor = frechet_distance(ref.mu, ref.sigma, floor_stats.mu, floor_stats.sigma)
    _save_grid(ctx, ref_stack, REAL_GRID)
    rows = []
    for s in ctx.setups():
        fake_df = quality_fakes(ctx, s, second, n)
        stats = stats_for_images(decode_stack(fake_df, s["name"]), extractor,
                                 name=f"{s['name']} fakes")
        fid = frechet_distance(ref.mu, ref.sigma, stats.mu, stats.sigma)
        size = min(q["kid_subset_size"], len(stats.features), len(ref.features))
        k_mean, k_std = kid(ref.features, stats.features, subsets=q["kid_subsets"],
                            subset_size=size,
                            seed=derive_seed(ctx.seed, "kid", s["name"]) % 2**31)
        sd = _fid_sd(ref.features, stats.features, q["fid_resamples"],
                     derive_seed(ctx.seed, "fid-bootstrap", s["name"]))
        all_fakes = ctx.fake_manifest(s["name"])
        rows.append({"setup": s["name"], "arm": s["arm"], "fid": float(fid), "fid_sd": sd,
                     "floor": float(floor), "ratio": float(fid / floor),
                     "kid_mean": float(k_mean), "kid_std": float(k_std),
                     "psnr_db": _psnr(all_fakes) if s["arm"] == "simulated" else float("nan"),
                     "n_real": len(ref.features), "n_fake": len(stats.features),
                     "feature_dim": int(stats.features.shape[1])})
        test_fakes = split_of(all_fakes, "test")
        if s["arm"] == "simulated":
            _save_pair_grid(ctx, test_fakes, s["name"])
        else:
            _save_grid(ctx, decode_stack(test_fakes.head(q["grid"] ** 2), s["name"]),
                       grid_file(s["name"]))
    table = pd.DataFrame(rows)
    ext_name = str(getattr(extractor, "label", type(extractor).__name__))
    standard = bool(getattr(extractor, "standard", False))
    table["extractor"] = ext_name
    table["standard_extractor"] = standard
    ctx.run.write_csv(QUALITY_TABLE, checked(table, QUALITY_COLUMNS, QUALITY_TABLE))
    return {"file": QUALITY_TABLE, "extractor": ext_name, "standard": standard, "n": n,
            "floor": float(floor)}


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
    _save_arms_figure(ctx, stacks, profiles)
    return {"file": SPECTRA_TABLE}


def _save_arms_figure(ctx: StudyContext, stacks: dict[str, np.ndarray],
                      profiles: dict[str, np.ndarray]) -> None:
    """`ARMS_FIGURE` when some setup has both arms (else nothing)."""
    bases = [s for s in ctx.setups() if s["arm"] == "sampled"]
    pairs = {s["name"]: [g for g in ctx.setups() if g["arm"] == "simulated"
                         and g["base"] == s["name"]] for s in bases}
    pairs = {k: v for k, v in pairs.items() if v}
    if not pairs:
        return
    h, w = stacks["real"].shape[1:3]
    freq = np.asarray(durall_plan(h, w).freq)
    panels = {base: {"real": (freq, profiles["real"]), "sampled (GAN)": (freq, profiles[base]),
                     "simulated": (freq, profiles[sims[0]["name"]])}
              for base, sims in pairs.items()}
    plot_profile_panels(panels, ctx.run.file(ARMS_FIGURE),
                        title="Spectra per setup: real test patches, GAN samples and simulator "
                              "reconstructions (top half of the frequencies)")
