"""`ganforensics data ...`: scan folders into manifests, cut photo patches, audit, perturb."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import typer

from ganforensics.cli.apps import EXIT_CODES_HELP, data_app
from ganforensics.console import info, out, warn
from ganforensics.data import photos as photos_mod
from ganforensics.data.audit import audit
from ganforensics.data.importers import collect_inputs, scan_folder, scan_pairs, scan_summary
from ganforensics.data.manifest import error_mask, write_manifest
from ganforensics.data.perturb import parse_ops
from ganforensics.data.perturb_dataset import perturb_manifest
from ganforensics.errors import ConfigError, RunExistsError
from ganforensics.io.atomic import to_json
from ganforensics.io.loading import DEFAULT_WORKERS, warn_bad_files
from ganforensics.io.runs import RunFolder
from ganforensics.seeding import DEFAULT_SEED


def _bad_rows(df: pd.DataFrame, path_col: str = "abspath") -> list[tuple[str, str]]:
    """`(path, reason)` of the rows that carry a decode error, in row order."""
    if "error" not in df.columns:
        return []
    bad = df[error_mask(df)]
    return [(str(p), str(e)) for p, e in zip(bad[path_col], bad["error"], strict=True)]


def _fmt_counts(d: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items()) or "none"


@data_app.command(
    "scan",
    epilog=EXIT_CODES_HELP + " Here 1 means the manifest was written but some files are bad.",
)
def scan_cmd(
    root: Path = typer.Argument(..., help="Folder to import.", show_default=False),
    out_path: Path = typer.Option(
        ..., "--out", "-o", help="Manifest CSV to write (paths inside are relative to it)."
    ),
    workers: int = typer.Option(DEFAULT_WORKERS, min=1, help="Decoding threads."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing manifest."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Import a folder of real/fake images into a manifest CSV, decoding every file.

    Recognised layouts (folder names case-insensitive): CNNDetection
    `root/<generator>[/<class>]/{0_real,1_fake}`; plain real/ + fake/ (also one level down,
    generator = that folder); GenImage `root/<generator>/{train,val}/{nature,ai}`. Images
    outside class folders get an empty (unknown) label. Every file gets one row; a file that
    cannot be decoded gets its one-line reason in the `error` column. A summary goes to stderr.

    Example: ganforensics data scan ~/data/CNN_synth_testset --out test.csv
    """
    if out_path.exists() and not force:
        raise RunExistsError(f"{out_path}: already exists; pass --force to overwrite")
    if out_path.suffix.lower() != ".csv":
        raise ConfigError(f"--out {out_path}: the manifest must be a .csv file")
    df = scan_folder(root, workers=workers)
    _write_scan(df, out_path, str(root), as_json)


@data_app.command(
    "scan-pairs",
    epilog=EXIT_CODES_HELP + " Here 1 means the manifest was written but some files are bad.",
)
def scan_pairs_cmd(
    pair: list[str] = typer.Option(..., "--pair", help="REAL_DIR,FAKE_DIR[,KEY], repeatable: "
                                   "everything under REAL_DIR is real, under FAKE_DIR fake "
                                   "(generator KEY, default FAKE_DIR's name)."),
    out_path: Path = typer.Option(
        ..., "--out", "-o", help="Manifest CSV to write (paths inside are relative to it)."
    ),
    workers: int = typer.Option(DEFAULT_WORKERS, min=1, help="Decoding threads."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing manifest."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Import paired real / fake folders (UniversalFakeDetect's real_path, fake_path, key) into
    one manifest: the pair, not the sub-folder names, gives the label; `group` = KEY.

    Example: ganforensics data scan-pairs --pair diffusion_datasets/laion,diffusion_datasets/guided
    --pair diffusion_datasets/laion,diffusion_datasets/ldm_200 --out ufd.csv
    """
    if out_path.exists() and not force:
        raise RunExistsError(f"{out_path}: already exists; pass --force to overwrite")
    if out_path.suffix.lower() != ".csv":
        raise ConfigError(f"--out {out_path}: the manifest must be a .csv file")
    pairs = []
    for item in pair:
        parts = item.split(",")
        if len(parts) not in (2, 3) or not all(p.strip() for p in parts):
            raise ConfigError(f"--pair {item!r}: expected REAL_DIR,FAKE_DIR or "
                              "REAL_DIR,FAKE_DIR,KEY")
        pairs.append((parts[0], parts[1], parts[2] if len(parts) == 3 else None))
    df = scan_pairs(pairs, workers=workers)
    _write_scan(df, out_path, f"{len(pairs)} pair(s)", as_json)


def _write_scan(df: Any, out_path: Path, what: str, as_json: bool) -> None:
    """Write a scanned manifest, print its summary; exit 1 when some files are bad."""
    write_manifest(df, out_path)
    s = scan_summary(df)
    warn_bad_files(_bad_rows(df), "data scan")
    info(
        f"scanned {s['files']} files under {what}: {s['ok']} usable, {s['errors']} bad; "
        f"classes: {_fmt_counts(s['by_class'])}"
    )
    info(f"generators: {_fmt_counts(s['by_generator'])}")
    info(f"layouts: {_fmt_counts(s['by_layout'])}; splits: {_fmt_counts(s['by_split'])}")
    if s["error_reasons"]:
        info(f"bad files by reason: {_fmt_counts(s['error_reasons'])}")
    if s["by_class"].get("unlabelled"):
        warn(f"{s['by_class']['unlabelled']} image(s) sit outside any class folder: label empty")
    info(f"wrote {out_path}")
    if as_json:
        out(to_json({**s, "manifest": str(out_path)}))
    if s["errors"]:
        raise typer.Exit(1)


def _audit_text(rep: dict[str, Any]) -> str:
    lines = [
        f"rows {rep['rows']}, usable {rep['usable']}, errors {rep['errors']}",
        "",
        f"{'group':<24} {'count':>6}  {'formats':<22} {'sizes (most common)':<26} "
        f"{'JPEG q (min/med/max)':<21} {'EXIF':>5}",
    ]

    def row(name: str, st: dict[str, Any]) -> str:
        fmts = ", ".join(f"{k} {v}" for k, v in st["formats"].items()) or "-"
        sizes = ", ".join(f"{k} {v}" for k, v in st["sizes"]["most_common"][:2]) or "-"
        if st["sizes"]["distinct"] > 2:
            sizes += f" (+{st['sizes']['distinct'] - 2})"
        jq = st["jpeg_quality"]
        jqs = f"{jq['min']}/{jq['median']:.0f}/{jq['max']}" if jq else "-"
        ex = st["exif"]["share"]
        exs = f"{100 * ex:.0f}%" if ex is not None else "-"
        return f"{name:<24} {st['count']:>6}  {fmts:<22} {sizes:<26} {jqs:<21} {exs:>5}"

    for name, st in rep["classes"].items():
        lines.append(row(f"class {name}", st))
    for name, st in rep["generators"].items():
        lines.append(row(f"generator {name}", st))
    lines.append("")
    if rep["warnings"]:
        lines.append(f"{len(rep['warnings'])} warning(s):")
        lines += [f"  - {w}" for w in rep["warnings"]]
    else:
        lines.append("no imbalance found between reals and fakes "
                     "(format, size, JPEG quality, EXIF)")
    return "\n".join(lines)


@data_app.command("audit", epilog=EXIT_CODES_HELP)
def audit_cmd(
    manifest: Path = typer.Argument(
        ..., help="Manifest CSV (or a folder, imported on the fly).", show_default=False
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the full report as JSON."),
    workers: int = typer.Option(DEFAULT_WORKERS, min=1,
                                help="Decoding threads (for facts missing from the CSV)."),
) -> None:
    """Compare reals and fakes on everything except the forensic signal.

    Per class and per generator: file formats, image sizes, estimated JPEG quality (from the
    quantisation tables, IJG scale) and EXIF presence. Warns about imbalances a detector could
    learn instead of generation artifacts: real JPEG vs fake PNG, different sizes, different
    JPEG quality, EXIF on one class only, very unequal class counts. Facts missing from the
    manifest are read from the files.

    Example: ganforensics data audit train.csv --json
    """
    rep = audit(collect_inputs([manifest]), workers=workers)
    if as_json:
        out(to_json(rep))
    else:
        out(_audit_text(rep))
    for w in rep["warnings"]:
        warn(w)
    if rep["errors"]:
        raise typer.Exit(1)


def _parse_scales(text: str) -> list[float]:
    try:
        vals = [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise ConfigError(f"--scales {text!r}: expected numbers separated by commas") from None
    if not vals:
        raise ConfigError("--scales needs at least one value")
    return vals


@data_app.command("photos", epilog=EXIT_CODES_HELP)
def photos_cmd(
    dirs: list[Path] = typer.Argument(
        None, help="Folders of your own photos (default: the photos bundled with "
        "scikit-image and scikit-learn).", show_default=False,
    ),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Output run folder."),
    size: int = typer.Option(photos_mod.DEFAULT_SIZE, help="Patch side in pixels."),
    scales: str = typer.Option(
        ",".join(str(s) for s in photos_mod.DEFAULT_SCALES),
        help="Comma-separated scales in (0, 1]; JPEG/WebP photos only use scales <= 0.5.",
    ),
    seed: int = typer.Option(DEFAULT_SEED, help="Seed of the split by photo."),
    min_std: float = typer.Option(
        photos_mod.DEFAULT_MIN_STD, help="Skip patches whose luma std (0..255) is below this."
    ),
    max_per_photo: int = typer.Option(
        0, help="Keep at most this many patches per photo and scale (seeded); 0 = all."
    ),
    force: bool = typer.Option(False, "--force", help="Reuse a non-empty --out folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Cut non-overlapping patches from photographs into a leak-free real dataset.

    Each photo is downscaled (antialiased) to every scale, tiled into size x size patches and
    flat patches are dropped. Photos stored as JPEG are only used after at least a 2x
    downscale, so block artifacts are not what a detector learns. Patches of one photo (and of
    the two views of the stereo pair) all go to one split (train/val/test, ~70/15/15 % of the
    patches, drawn with --seed). Writes PNGs, manifest.csv, summary.json, config.yaml, env.json
    and prints the count per photo and per split.

    Example: ganforensics data photos --size 32 --out data/real32
    """
    df = photos_mod.make_patches(
        out_dir,
        size=size,
        sources=list(dirs) if dirs else None,
        scales=_parse_scales(scales),
        seed=seed,
        min_std=min_std,
        max_per_photo=max_per_photo or None,
        force=force,
    )
    summ = photos_mod.patch_summary(df)
    problems = list(df.attrs.get("problems", []))
    for p in problems:
        warn(p)
    if as_json:
        out(to_json({**summ, "out": str(out_dir), "problems": problems}))
    else:
        out(f"{'photo':<32} {'format':<6} {'split':<6} {'patches':>7}")
        for name, r in summ["per_photo"].items():
            out(f"{name:<32} {r['format']:<6} {r['split']:<6} {r['patches']:>7}")
        out("")
        out("per split: " + ", ".join(f"{k} {v}" for k, v in summ["per_split"].items()))
        out(f"total {summ['patches']} patches of {size}x{size} in {out_dir}/manifest.csv")
    if problems:
        raise typer.Exit(1)


@data_app.command("perturb", epilog=EXIT_CODES_HELP)
def perturb_cmd(
    manifest: Path = typer.Argument(
        ..., help="Manifest CSV (or folder) of the images to perturb.", show_default=False
    ),
    ops: list[str] = typer.Option(
        ..., "--op", help="A perturbation, repeatable, applied in order: jpeg:Q, webp:Q, "
        "blur:SIGMA, resize:SCALE[:FILTER], crop:N, noise:STD, grayscale.",
    ),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Output run folder."),
    workers: int = typer.Option(DEFAULT_WORKERS, min=1, help="Decoding threads."),
    force: bool = typer.Option(False, "--force", help="Reuse a non-empty --out folder."),
) -> None:
    """Write perturbed copies of a dataset (PNG, so nothing is compressed again).

    Ops are applied in the order given; random ones (crop, noise) are seeded per image from
    its sha256 (or path) and the op, so a rerun gives identical files. The new manifest keeps
    label, generator, source and split, and records `ops`, `orig_path` and errors.

    Example: ganforensics data perturb test.csv --op jpeg:75 --op blur:1.5 --out test_jpeg75_blur
    """
    chain = parse_ops(ops)
    df = collect_inputs([manifest])
    RunFolder.create(
        out_dir,
        {"command": "data perturb", "input": str(manifest.resolve()),
         "ops": [str(o) for o in chain.ops]},
        force=force,
    )
    res = perturb_manifest(df, chain, out_dir, workers=workers)
    bad = _bad_rows(res, "orig_path")
    warn_bad_files(bad, "data perturb")
    n_bad = len(bad)
    info(f"wrote {len(res) - n_bad} perturbed image(s) ({chain}) and {out_dir}/manifest.csv; "
         f"{n_bad} bad")
    out(str(Path(out_dir) / "manifest.csv"))
    if n_bad:
        raise typer.Exit(1)
