"""`ganforensics spectrum compute|plot` and `ganforensics evaluate bypass`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from ganforensics.cli.apps import EXIT_CODES_HELP, evaluate_app, spectrum_app
from ganforensics.console import info, out
from ganforensics.detectors.spectral import KINDS, load_spectral_detector
from ganforensics.errors import ConfigError, RunExistsError
from ganforensics.evaluate.bypass import DEFAULT_DRAWS, DEFAULT_KIND, DEFAULT_N, bypass_files
from ganforensics.io.atomic import to_json, write_csv_atomic
from ganforensics.io.loading import warn_bad_files
from ganforensics.seeding import DEFAULT_SEED
from ganforensics.spectral.collection import (
    collect_named,
    compute_group_spectra,
    load_spectra,
    save_spectra,
)
from ganforensics.spectral.plots import PLOT_DPI, plot_spectra
from ganforensics.spectral.spectra import VARIANTS


def _check_out(path: Path, force: bool, suffix: str) -> None:
    if path.suffix.lower() != suffix:
        raise ConfigError(f"--out {path}: expected a {suffix} file name")
    if path.exists() and not force:
        raise RunExistsError(f"{path}: already exists; pass --force to overwrite")


@spectrum_app.command("compute", epilog=EXIT_CODES_HELP)
def compute_cmd(
    inputs: list[Path] = typer.Argument(
        ..., help="Folders, manifest CSVs or image files.", show_default=False
    ),
    out_path: Path = typer.Option(..., "--out", "-o", help="The .npz file to write."),
    variant: str = typer.Option(
        VARIANTS[0], help="durall (reference azimuthal average of 20 ln|F|), clean (power "
        "spectrum, DC centre, up to Nyquist) or both."
    ),
    dtype: str = typer.Option("float64", help="float64 (parity with the reference) or float32."),
    decay: bool = typer.Option(False, "--decay", help="Also store Dzanic decay features."),
    max_per_group: int | None = typer.Option(
        None, "--max-per-group", help="Use at most this many images per group (random, seeded)."
    ),
    seed: int = typer.Option(DEFAULT_SEED, help="Seed of the --max-per-group subsample."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing --out file."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Compute Fourier spectra of image sets, grouped by generator (reals form group "real").

    Groups: manifest rows by their `generator` (label 0 = "real"); recognised folder layouts
    as in `data scan`; a folder of unlabelled images is one group named after the folder.
    Stores per group the per-image profiles of the chosen variant(s) with their frequency axis
    (fraction of Nyquist), the mean 2-D log spectrum, the image paths and (with --decay) the
    `[b, y_i, y_f]` decay features, plus the settings. Read it with `spectrum plot`.

    Example: ganforensics spectrum compute data/real data/fake.csv --out spectra.npz
    """
    variants = VARIANTS if variant == "both" else (variant,)
    if any(v not in VARIANTS for v in variants):
        raise ConfigError(f"--variant must be {', '.join(VARIANTS)} or both, not {variant!r}")
    if dtype not in ("float64", "float32"):
        raise ConfigError(f"--dtype must be float64 or float32, not {dtype!r}")
    if max_per_group is not None and max_per_group < 1:
        raise ConfigError("--max-per-group must be >= 1")
    _check_out(out_path, force, ".npz")
    df = collect_named(inputs)
    spectra, errors = compute_group_spectra(
        df, variants=variants, dtype=np.dtype(dtype).type, decay=decay,
        max_per_group=max_per_group, seed=seed,
    )
    spectra.meta["inputs"] = [str(p) for p in inputs]
    save_spectra(spectra, out_path)
    warn_bad_files(errors, "spectrum compute")
    rows = []
    for g in spectra.groups:
        prof = g.profiles[variants[0]]
        rows.append({
            "group": g.name, "n": int(prof.shape[0]), "size": g.info.get("main_size"),
            "profile_length": int(prof.shape[1]),
            "top_quarter_mean": float(prof[:, -max(1, prof.shape[1] // 4):].mean()),
        })
    summary = {"out": str(out_path), "variants": list(variants), "dtype": dtype,
               "groups": rows, "skipped": len(errors)}
    if as_json:
        out(to_json(summary))
    else:
        out(f"{'group':<24} {'n':>6} {'size':>9} {'length':>7} {'top-quarter mean':>17}")
        for r in rows:
            out(f"{r['group']:<24} {r['n']:>6} {r['size']:>9} {r['profile_length']:>7} "
                f"{r['top_quarter_mean']:>17.4g}")
        info(f"wrote {out_path} ({variants[0]} variant first; {len(errors)} file(s) skipped)")
    if errors:
        raise typer.Exit(1)


@spectrum_app.command("plot", epilog=EXIT_CODES_HELP)
def plot_cmd(
    spectra_path: Path = typer.Argument(
        ..., help="A .npz written by `spectrum compute`.", show_default=False
    ),
    out_path: Path = typer.Option(..., "--out", "-o", help="The PNG to write."),
    variant: str | None = typer.Option(
        None, help="Which stored variant to plot (default: the first stored)."
    ),
    groups: str | None = typer.Option(
        None, help="Comma-separated groups to plot, in this order (default: all)."
    ),
    dpi: int = typer.Option(PLOT_DPI, help="Resolution of the PNG."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing --out file."),
) -> None:
    """Plot spectra: mean ± std profile per group against frequency as a fraction of Nyquist,
    a zoom on the top quarter of frequencies, and each group's mean 2-D log spectrum.

    Example: ganforensics spectrum plot spectra.npz --out spectra.png
    """
    _check_out(out_path, force, ".png")
    spectra = load_spectra(spectra_path)
    chosen = [g.strip() for g in groups.split(",") if g.strip()] if groups else None
    plot_spectra(spectra, out_path, variant=variant, groups=chosen, dpi=dpi)
    out(str(out_path))


@evaluate_app.command("bypass", epilog=EXIT_CODES_HELP)
def bypass_cmd(
    train: list[Path] = typer.Option(
        ..., "--train", help="Manifest(s) or folder(s) with the reals (label 0) and the "
        "BASELINE fakes (label 1) the detector is trained on.", show_default=False,
    ),
    fakes: list[Path] = typer.Option(
        ..., "--fakes", help="Folder(s) or manifest(s) of modified generators' fakes; grouped "
        "by generator (an unlabelled folder is one generator named after it). Repeatable.",
        show_default=False,
    ),
    baseline: str | None = typer.Option(
        None, help="Generator name of the BASELINE fakes in --train (needed only when --train "
        "holds fakes of several generators)."
    ),
    model: Path | None = typer.Option(
        None, "--model", help="A saved spectral detector: its kind, classifier and feature "
        "settings are reused (its weights are not: each draw trains anew)."
    ),
    kind: str = typer.Option(DEFAULT_KIND, help=f"{' or '.join(reversed(KINDS))}."),
    classifier: str | None = typer.Option(
        None, help="knn (default for decay), logreg (default for profile), linear-svm, "
        "rbf-svm or mlp."
    ),
    n: int = typer.Option(DEFAULT_N, "--n", min=1, help="Training images per class and draw."),
    draws: int = typer.Option(DEFAULT_DRAWS, min=1, help="Random draws of the training set."),
    seed: int = typer.Option(DEFAULT_SEED, help="Seed of the draws."),
    n_bins: int | None = typer.Option(
        None, "--n-bins", help="Decay radial bins (default: about one per unit of radius)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON on stdout."),
    out_csv: Path | None = typer.Option(None, "--out", help="Also write the table as CSV."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing --out file."),
) -> None:
    """Detection rates of modified generators against a spectral detector trained on BASELINE
    fakes (the bypass protocol of Chandrasegaran et al. 2021).

    Each draw trains the detector on --n random reals + --n random BASELINE fakes from --train
    (a seed per draw) and reports the fraction of each generator's fakes classified fake
    (P(fake) >= 0.5). The table gives the mean ± std over --draws draws, plus the rate on the
    held-out reals (false positives) and held-out BASELINE fakes.

    Example: ganforensics evaluate bypass --train train.csv --fakes gens/N.1.3 --fakes
    gens/Z.1.3 --kind spectral-decay --draws 10 --out bypass.csv
    """
    det = load_spectral_detector(model) if model is not None else None
    if out_csv is not None:
        _check_out(out_csv, force, ".csv")
    run = bypass_files(train, fakes, detector=det, kind=kind, classifier=classifier,
                       baseline=baseline, n=n, draws=draws, seed=seed, n_bins=n_bins)
    table = run.table
    warn_bad_files(run.errors, "evaluate bypass")
    if out_csv is not None:
        write_csv_atomic(out_csv, table.assign(rates=table["rates"].map(to_json_list)))
    if as_json:
        out(to_json(table.to_dict(orient="records")))
    else:
        out(f"{run.kind} / {table['classifier'].iloc[0]}: {n} real + {n} {run.baseline} per draw, "
            f"{draws} draws, seed {seed}")
        out(f"{'generator':<28} {'images':>7} {'detection rate':>20}")
        for r in table.itertuples(index=False):
            out(f"{r.generator:<28} {r.n_images:>7} "
                f"{100 * r.rate_mean:>10.1f} % ± {100 * r.rate_std:4.1f}")
    if run.errors:
        raise typer.Exit(1)


def to_json_list(values: list[float]) -> str:
    """A per-draw list as compact text for CSV cells."""
    return " ".join(f"{v:.6g}" for v in values)
