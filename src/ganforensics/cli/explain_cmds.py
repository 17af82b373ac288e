"""`explain ffrs | mask | color | cam`: explain CNN detectors (DESIGN B6)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import typer

from ganforensics.cli.apps import EXIT_CODES_HELP, explain_app
from ganforensics.console import info, out, warn
from ganforensics.detectors import load_detector
from ganforensics.detectors.base import sigmoid
from ganforensics.errors import ConfigError, InputError
from ganforensics.explain import (
    as_explainable,
    check_lrp_supported,
    color_report,
    compute_ffrs,
    default_k,
    gradcam,
    masking_report,
    overlay,
    read_ranking,
)
from ganforensics.explain.cam import OVERLAY_ALPHA, resolve_layer
from ganforensics.explain.ffrs import DEFAULT_MAX_SAMPLES, TOPK_RATIO
from ganforensics.explain.inputs import load_inputs
from ganforensics.explain.masking import POSITIONS, RANDOM_DRAWS
from ganforensics.io.atomic import save_png_atomic, to_json
from ganforensics.io.runs import RunFolder
from ganforensics.seeding import DEFAULT_SEED

_TOPK_HELP = f"{TOPK_RATIO[0]}/{TOPK_RATIO[1]} of all maps, at least 1"

_MODEL_HELP = "Detector folder (or model.json / CNNDetection .pth) of a CNN detector. Required."


def _load_detector(model: Path | None) -> Any:
    if model is None:
        raise ConfigError("--model MODEL is required")
    det = load_detector(model)
    as_explainable(det)  # UnsupportedModelError (exit 2) for spectral / conv-free detectors
    return det


def _finish(n_bad: int) -> None:
    if n_bad:
        warn(f"{n_bad} input(s) could not be used (reported above)")
        raise typer.Exit(1)


def _table(df: pd.DataFrame, cols: list[str]) -> str:
    return df[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}")


@explain_app.command(
    "ffrs",
    epilog="Example: ganforensics explain ffrs --model models/small --data data/val.csv "
    "--out runs/ffrs\n\n" + EXIT_CODES_HELP,
)
def ffrs_cmd(
    model: Path = typer.Option(None, "--model", help=_MODEL_HELP),
    data: list[Path] = typer.Option(
        None, "--data", help="Manifest CSV or labelled folder with fakes (label 1); repeatable. "
        "Required."
    ),
    out_dir: Path = typer.Option(None, "--out", help="Run folder to write. Required."),
    k: int = typer.Option(
        None, "--k", min=1, help=f"Top-k size (default: {_TOPK_HELP})."
    ),
    max_samples: int = typer.Option(
        DEFAULT_MAX_SAMPLES, "--max-samples",
        help="At most this many confident fakes (seeded subset)."
    ),
    split: str = typer.Option(None, "--split", help="Use only rows of this split."),
    seed: int = typer.Option(DEFAULT_SEED, "--seed", help="Seed of the sample subset."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing run folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Rank every conv feature map by FF-RS (LRP beta = 0 relevance on confident fakes).

    Uses the fakes (label 1) the detector scores P(fake) >= 0.9, runs LRP (ZBox first conv,
    ZPlus convs, epsilon 1e-6 linear/sum/pool, BatchNorm folded) and reads relevance at the
    output of every conv, shortcut convs included. Writes ffrs.csv (rank, key `layer.#channel`,
    layer, channel, ffrs), topk.csv and summary.json into --out; prints the top-k.
    """
    if not data or out_dir is None:
        raise ConfigError("explain ffrs needs --model MODEL --data MANIFEST --out DIR")
    det = _load_detector(model)
    check_lrp_supported(as_explainable(det).model, str(model))
    config = {"command": "explain ffrs", "model": str(model), "data": [str(d) for d in data],
              "k": k, "max_samples": max_samples, "split": split, "seed": seed}
    run = RunFolder.create(out_dir, config, seed=seed, force=force)
    d = load_inputs(data, split, "--data")
    fakes = [im for im, lab in zip(d.images, d.labels, strict=True) if lab == 1]
    if not fakes:
        raise InputError("--data: no fake images (label 1)")
    res = compute_ffrs(det, fakes, k=k, max_samples=max_samples, seed=seed)
    run.write_csv("ffrs.csv", res.ranking)
    run.write_csv("topk.csv", res.ranking.iloc[: res.k])
    summary = {**res.summary(), "out": str(out_dir)}
    run.write_json("summary.json", summary)
    if as_json:
        out(to_json(summary))
    else:
        out(
            f"FF-RS of {summary['n_maps']} maps in {summary['n_layers']} conv layers from "
            f"{res.n_samples} confident fakes ({res.n_confident} of {res.n_fakes} had "
            f"P(fake) >= 0.9); top-{res.k}:"
        )
        out(_table(res.ranking.iloc[: res.k], ["rank", "key", "ffrs"]))
        out(f"ranking: {run.path / 'ffrs.csv'}")
    _finish(d.n_bad)


@explain_app.command(
    "mask",
    epilog="Example: ganforensics explain mask --model models/small --ranking runs/ffrs/ffrs.csv "
    "--k 4 --test data/test.csv --out runs/mask\n\n" + EXIT_CODES_HELP,
)
def mask_cmd(
    model: Path = typer.Option(None, "--model", help=_MODEL_HELP),
    ranking: Path = typer.Option(None, "--ranking", help="ffrs.csv from `explain ffrs`. Required."),
    k: int = typer.Option(None, "--k", min=1,
                          help="Maps to zero (default: the ranking's top-k size)."),
    test: list[Path] = typer.Option(
        None, "--test", help="Test manifest / labelled folder (reals and fakes); repeatable. "
        "Required."
    ),
    draws: int = typer.Option(RANDOM_DRAWS, "--draws", min=1, help="Random-k draws averaged."),
    position: str = typer.Option(
        POSITIONS[0], "--position", help="Where to zero: `conv` (the conv module's output) or "
        "`folded` (the output of the BatchNorm right after it, as LRP sees the conv)."
    ),
    split: str = typer.Option(None, "--split", help="Use only rows of this split."),
    seed: int = typer.Option(DEFAULT_SEED, "--seed", help="Seed of the random-k draws."),
    out_dir: Path = typer.Option(None, "--out", help="Also write a run folder here."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing run folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the table as JSON records."),
) -> None:
    """AP and calibrated accuracies with top-k / low-k / random-k feature maps zeroed.

    Zeroes the chosen conv output channels with forward hooks (random-k = mean of --draws
    seeded draws of k maps from all maps) and reports each test generator against all reals.

    Accuracies use the detector's validation-calibrated threshold. Masking the top-k FF-RS maps
    should cost far more AP than random-k or low-k if FF-RS found the forensic features.
    """
    if ranking is None or not test:
        raise ConfigError("explain mask needs --model MODEL --ranking FFRS.csv --test MANIFEST")
    det = _load_detector(model)
    rk = read_ranking(ranking)
    kk = default_k(len(rk)) if k is None else k
    config = {"command": "explain mask", "model": str(model), "ranking": str(ranking), "k": kk,
              "test": [str(t) for t in test], "draws": draws, "split": split, "seed": seed,
              "position": position}
    run = RunFolder.create(out_dir, config, seed=seed, force=force) if out_dir else None
    d = load_inputs(test, split, "--test")
    table = masking_report(det, rk, kk, d.images, d.labels, d.generators, draws=draws, seed=seed,
                           position=position)
    if run:
        run.write_csv("masking.csv", table)
    if as_json:
        out(to_json(table.to_dict(orient="records")))
    else:
        out(f"masking k = {kk} of {len(rk)} maps (random-k: mean of {draws} draws, seed {seed})")
        out(_table(table, ["condition", "generator", "ap", "ap_std", "acc", "real_acc",
                           "fake_acc"]))
    _finish(d.n_bad)


@explain_app.command(
    "color",
    epilog="Example: ganforensics explain color --model models/small --test data/test.csv "
    "--ranking runs/ffrs/ffrs.csv --out runs/color\n\n" + EXIT_CODES_HELP,
)
def color_cmd(
    model: Path = typer.Option(None, "--model", help=_MODEL_HELP),
    test: list[Path] = typer.Option(
        None, "--test", help="Test manifest / labelled folder; repeatable. Required."
    ),
    ranking: Path = typer.Option(
        None, "--ranking", help="ffrs.csv giving the top-k maps (default: FF-RS computed from "
        "the test fakes)."
    ),
    k: int = typer.Option(None, "--k", min=1,
                          help=f"Top-k maps tested (default: {_TOPK_HELP})."),
    split: str = typer.Option(None, "--split", help="Use only rows of this split."),
    out_dir: Path = typer.Option(None, "--out", help="Also write a run folder here."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing run folder."),
    as_json: bool = typer.Option(False, "--json", help="Print results as JSON."),
) -> None:
    """Colour ablation: AP on RGB vs grayscale input, and colour-conditional top-k maps.

    Grayscale: L = 0.299R+0.587G+0.114B in all 3 channels, decided at the RGB-calibrated
    threshold; per generator AP and accuracies. A top-k map is colour-conditional when its
    per-image spatial max differs between RGB and grayscale fakes (Mood's median test,
    p <= 0.05); prints the share of such maps.
    """
    if not test:
        raise ConfigError("explain color needs --model MODEL --test MANIFEST")
    det = _load_detector(model)
    rk = read_ranking(ranking) if ranking else None
    config = {"command": "explain color", "model": str(model), "test": [str(t) for t in test],
              "ranking": str(ranking) if ranking else None, "k": k, "split": split}
    run = RunFolder.create(out_dir, config, force=force) if out_dir else None
    d = load_inputs(test, split, "--test")
    res = color_report(det, d.images, d.labels, d.generators, ranking=rk, k=k)
    summary = res.summary()
    if run:
        run.write_csv("color_detection.csv", res.detection)
        run.write_csv("color_maps.csv", res.maps)
        run.write_json("summary.json", summary)
    if as_json:
        out(to_json({"summary": summary, "detection": res.detection.to_dict(orient="records"),
                     "maps": res.maps.to_dict(orient="records")}))
    else:
        out(_table(res.detection, ["generator", "ap_rgb", "ap_gray", "acc_rgb", "acc_gray"]))
        out(
            f"colour-conditional: {summary['n_colour_conditional']} of {res.k} top-k maps "
            f"({summary['share_colour_conditional']:.1%}; Mood's median test p <= {res.alpha}, "
            f"{res.n_fakes} fakes; ranking from {res.ranking_source})"
        )
    _finish(d.n_bad)


@explain_app.command(
    "cam",
    epilog="Example: ganforensics explain cam --model models/small fakes/*.png --out runs/cam\n\n"
    + EXIT_CODES_HELP,
)
def cam_cmd(
    images: list[Path] = typer.Argument(..., help="Image files, folders or manifests."),
    model: Path = typer.Option(None, "--model", help=_MODEL_HELP),
    out_dir: Path = typer.Option(None, "--out", help="Folder for overlays + cam.csv. Required."),
    layer: str = typer.Option(
        None, "--layer", help="Module name (default: the detector's feature_layer)."
    ),
    alpha: float = typer.Option(OVERLAY_ALPHA, "--alpha", help="Heatmap opacity in the overlay."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing run folder."),
) -> None:
    """Grad-CAM heatmaps of the fake logit at the detector's feature layer, as overlays.

    Writes `<n>_<name>.png` (jet heatmap over the image, enlarged to >= 256 px) per image and
    cam.csv with path, prob_fake, decision at the calibrated threshold and the overlay file.
    """
    if out_dir is None:
        raise ConfigError("explain cam needs --model MODEL IMAGES... --out DIR")
    det = _load_detector(model)
    ex = as_explainable(det)
    name = resolve_layer(ex.model, layer or ex.feature_layer)
    config = {"command": "explain cam", "model": str(model), "images": [str(p) for p in images],
              "layer": name, "alpha": alpha}
    run = RunFolder.create(out_dir, config, force=force)
    d = load_inputs(images, None, "IMAGES", need_labels=False)
    heat, logits = gradcam(ex, d.images, layer=name)
    probs = sigmoid(logits)
    rows = []
    for i, (path, im, hm) in enumerate(zip(d.paths, d.images, heat, strict=True)):
        fname = f"{i:04d}_{Path(path).stem}.png"
        save_png_atomic(run.file(fname), overlay(im, hm, alpha=alpha))
        rows.append({"path": path, "prob_fake": float(probs[i]),
                     "decision": "fake" if probs[i] >= ex.threshold else "real",
                     "overlay": fname})
    table = pd.DataFrame(rows)
    run.write_csv("cam.csv", table)
    info(f"Grad-CAM at layer {name!r}: {len(rows)} overlays in {run.path}")
    out(table.to_csv(index=False).rstrip("\n"))
    _finish(d.n_bad)

