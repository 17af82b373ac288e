"""`ganforensics spectrum compute|plot` and `ganforensics evaluate bypass`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import typer

from ganforensics.cli.apps import EXIT_CODES_HELP, evaluate_app, spectrum_app
from ganforensics.console import err_console, out
from ganforensics.errors import ConfigError, InputError, RunExistsError
from ganforensics.io.atomic import to_json, write_csv_atomic
from ganforensics.seeding import DEFAULT_SEED

MAX_ERROR_LINES = 20


def _warn(message: str) -> None:
    err_console.print("warning: " + message, soft_wrap=True, markup=False, highlight=False)


def _info(message: str) -> None:
    err_console.print(message, soft_wrap=True, markup=False, highlight=False)


def _report(errors: list[tuple[str, str]]) -> None:
    for path, reason in errors[:MAX_ERROR_LINES]:
        _warn(f"skipped {path}: {reason}")
    if len(errors) > MAX_ERROR_LINES:
        _warn(f"... and {len(errors) - MAX_ERROR_LINES} more undecodable file(s)")


def collect_named(inputs: list[Path]) -> pd.DataFrame:
    """Rows of all inputs (`data.importers.collect_inputs`); unlabelled rows without a known
    generator take the input's name (folder name, or the file stem) as their generator."""
    from ganforensics.data.importers import collect_inputs

    frames = []
    for inp in inputs:
        df = collect_inputs([inp]).copy()
        gen = df["generator"].astype("object") if "generator" in df.columns else None
        unknown = (
            pd.Series(True, index=df.index) if gen is None
            else (gen.isna() | (gen.astype(str) == "unknown"))
        )
        lab = pd.to_numeric(df["label"], errors="coerce").astype("float64")
        name = inp.name if inp.is_dir() else inp.stem
        df["generator"] = (gen if gen is not None else pd.Series("unknown", index=df.index))
        df.loc[(unknown & lab.isna()).to_numpy(), "generator"] = name
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


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
        "durall", help="durall (reference azimuthal average of 20 ln|F|), clean (power "
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
    from ganforensics.spectral.collection import compute_group_spectra, save_spectra

    variants = ("durall", "clean") if variant == "both" else (variant,)
    if any(v not in ("durall", "clean") for v in variants):
        raise ConfigError(f"--variant must be durall, clean or both, not {variant!r}")
    if dtype not in ("float64", "float32"):
        raise ConfigError(f"--dtype must be float64 or float32, not {dtype!r}")
    if max_per_group is not None and max_per_group < 1:
        raise ConfigError("--max-per-group must be >= 1")
    _check_out(out_path, force, ".npz")
    df = collect_named(list(inputs))
    spectra, errors = compute_group_spectra(
        df, variants=variants, dtype=np.dtype(dtype).type, decay=decay,
        max_per_group=max_per_group, seed=seed,
    )
    spectra.meta["inputs"] = [str(p) for p in inputs]
    save_spectra(spectra, out_path)
    _report(errors)
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
        _info(f"wrote {out_path} ({variants[0]} variant first; {len(errors)} file(s) skipped)")
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
    dpi: int = typer.Option(120, help="Resolution of the PNG."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing --out file."),
) -> None:
    """Plot spectra: mean ± std profile per group against frequency as a fraction of Nyquist,
    a zoom on the top quarter of frequencies, and each group's mean 2-D log spectrum.

    Example: ganforensics spectrum plot spectra.npz --out spectra.png
    """
    from ganforensics.spectral.collection import load_spectra
    from ganforensics.spectral.plots import plot_spectra

    _check_out(out_path, force, ".png")
    spectra = load_spectra(spectra_path)
    chosen = [g.strip() for g in groups.split(",") if g.strip()] if groups else None
    plot_spectra(spectra, out_path, variant=variant, groups=chosen, dpi=dpi)
    out(str(out_path))


def _group_fakes(inputs: list[Path]) -> dict[str, list[str]]:
    df = collect_named(inputs)
    lab = pd.to_numeric(df["label"], errors="coerce").astype("float64")
    reals = int((lab == 0).sum())
    if reals:
        _warn(f"--fakes: ignoring {reals} row(s) labelled real")
    df = df[~(lab == 0).to_numpy()]
    groups: dict[str, list[str]] = {}
    for gen, path, err in zip(
        df["generator"].fillna("unknown").astype(str), df["abspath"].astype(str),
        df["error"] if "error" in df.columns else [None] * len(df), strict=True,
    ):
        if isinstance(err, str) and err:
            continue
        groups.setdefault(gen, []).append(path)
    if not groups:
        raise InputError("--fakes: no fake images found")
    return groups


def _decode(paths: list[str], what: str, errors: list[tuple[str, str]]) -> list[np.ndarray]:
    from ganforensics.console import track
    from ganforensics.io.images import iter_images

    images = []
    for i, arr, err in track(iter_images(paths), f"decoding {what}", total=len(paths)):
        if arr is None:
            errors.append((paths[i], str(err)))
        else:
            images.append(arr)
    return images


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
    kind: str = typer.Option("spectral-decay", help="spectral-decay or spectral-profile."),
    classifier: str | None = typer.Option(
        None, help="knn (default for decay), logreg (default for profile), linear-svm, "
        "rbf-svm or mlp."
    ),
    n: int = typer.Option(100, "--n", min=1, help="Training images per class and draw."),
    draws: int = typer.Option(10, min=1, help="Random draws of the training set."),
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
    from ganforensics.evaluate.bypass import bypass_rates

    options: dict[str, Any] = {}
    if model is not None:
        from ganforensics.detectors.spectral import load_spectral_detector

        det = load_spectral_detector(model)
        kind, classifier = det.kind, det.classifier
        fs = det.meta.get("feature_settings", {})
        if kind == "spectral-profile":
            options |= {"profile_length": fs.get("profile_length"),
                        "normalize": fs.get("normalize", "first")}
        else:
            if fs.get("n_bins", "auto") != "auto":
                options["n_bins"] = int(fs["n_bins"])
            options["fit_start"] = float(fs.get("fit_start", 0.85))
        options["k"] = det.k
        options["hidden"] = det.hidden
    if n_bins is not None:
        options["n_bins"] = n_bins
    if out_csv is not None:
        _check_out(out_csv, force, ".csv")
    tdf = collect_named(list(train))
    lab = pd.to_numeric(tdf["label"], errors="coerce").astype("float64")
    if "error" in tdf.columns:
        ok = (tdf["error"].isna() | (tdf["error"].astype(str) == "")).to_numpy()
    else:
        ok = np.ones(len(tdf), dtype=bool)
    real_paths = tdf.loc[(lab == 0).to_numpy() & ok, "abspath"].astype(str).tolist()
    fake_df = tdf[(lab == 1).to_numpy() & ok]
    gens = sorted(fake_df["generator"].astype(str).unique())
    if baseline is None:
        if len(gens) != 1:
            raise ConfigError(
                f"--train holds fakes of {len(gens)} generators ({', '.join(gens) or 'none'}); "
                "name the BASELINE one with --baseline"
            )
        baseline = gens[0]
    elif baseline not in gens:
        raise ConfigError(f"--baseline {baseline!r} not among --train fakes ({', '.join(gens)})")
    base_paths = fake_df.loc[fake_df["generator"].astype(str) == baseline, "abspath"]
    errors: list[tuple[str, str]] = []
    real = _decode(real_paths, "reals", errors)
    base = _decode(base_paths.astype(str).tolist(), baseline, errors)
    fake_groups = {g: _decode(p, g, errors) for g, p in _group_fakes(list(fakes)).items()}
    fake_groups = {g: v for g, v in fake_groups.items() if v}
    table = bypass_rates(
        kind, real, base, fake_groups, n=n, draws=draws, seed=seed, classifier=classifier,
        baseline_name=baseline, **options,
    )
    _report(errors)
    if out_csv is not None:
        write_csv_atomic(out_csv, table.assign(rates=table["rates"].map(to_json_list)))
    if as_json:
        out(to_json(table.to_dict(orient="records")))
    else:
        out(f"{kind} / {table['classifier'].iloc[0]}: {n} real + {n} {baseline} per draw, "
            f"{draws} draws, seed {seed}")
        out(f"{'generator':<28} {'images':>7} {'detection rate':>20}")
        for r in table.itertuples(index=False):
            out(f"{r.generator:<28} {r.n_images:>7} "
                f"{100 * r.rate_mean:>10.1f} % ± {100 * r.rate_std:4.1f}")
    if errors:
        raise typer.Exit(1)


def to_json_list(values: list[float]) -> str:
    """A per-draw list as compact text for CSV cells."""
    return " ".join(f"{v:.6g}" for v in values)
