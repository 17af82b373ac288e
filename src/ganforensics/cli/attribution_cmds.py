"""`detector distill` (knowledge distillation into a student) and `evaluate attribution`
(which generator made each image)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ganforensics.cli.apps import EXIT_CODES_HELP, detector_app, evaluate_app
from ganforensics.console import info, out
from ganforensics.detectors import load_detector
from ganforensics.detectors.cnn import ARCHS, DEFAULT_RECIPE, RECIPES
from ganforensics.detectors.cnn.distill import (
    DEFAULT_HARD_WEIGHT,
    DEFAULT_TEMPERATURE,
    distill_cnn_detector,
)
from ganforensics.devices import check_device
from ganforensics.errors import ConfigError
from ganforensics.evaluate.attribution import evaluate_attribution
from ganforensics.io.atomic import to_json
from ganforensics.io.loading import DEFAULT_WORKERS
from ganforensics.metrics.bootstrap import DEFAULT_RESAMPLES
from ganforensics.seeding import DEFAULT_SEED


@detector_app.command(
    "distill",
    epilog="Example: ganforensics detector distill --teacher models/r50 --student small "
    "--train data/train.csv --val data/val.csv --out models/small-kd\n\n" + EXIT_CODES_HELP,
)
def distill_cmd(
    teacher: Path = typer.Option(None, "--teacher", help="Trained CNN detector folder "
                                 "(binary or attribution). Required."),
    student: str = typer.Option(None, "--student", help=f"Student backbone: {', '.join(ARCHS)}."
                                " Required."),
    train: Path = typer.Option(None, "--train", help="Training manifest (CSV). Required."),
    val: Path = typer.Option(None, "--val", help="Validation manifest (early stopping, "
                             "calibration); default: a hold-out of the training sources."),
    out_dir: Path = typer.Option(None, "--out", help="Model folder to write. Required."),
    temperature: float = typer.Option(DEFAULT_TEMPERATURE, "--temperature",
                                      help="Distillation temperature T (LS-KD: 1)."),
    hard_weight: float = typer.Option(DEFAULT_HARD_WEIGHT, "--hard-weight", min=0.0, max=1.0,
                                      help="Weight w of the hard-label loss: (1-w) KD + w CE."),
    recipe: str = typer.Option(DEFAULT_RECIPE, "--recipe", help=f"{' or '.join(RECIPES)}: "
                               "optimizer, augmentation, early stopping."),
    epochs: int = typer.Option(None, "--epochs", min=1, help="Max epochs (recipe default)."),
    batch_size: int = typer.Option(None, "--batch-size", min=1, help="Batch size."),
    aug_prob: float = typer.Option(None, "--aug-prob", help="wang2020 blur/JPEG probability."),
    crop_size: int = typer.Option(None, "--crop-size", help="Training crop side."),
    seed: int = typer.Option(DEFAULT_SEED, "--seed", help="Seed of every random choice."),
    device: str = typer.Option("cpu", "--device", help="torch device, e.g. cpu or cuda."),
    resume: bool = typer.Option(True, "--resume/--no-resume",
                                help="Continue an interrupted run with the same config."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing model folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the model summary as JSON."),
) -> None:
    """Distil a trained detector into a student: loss T^2 KL(teacher || student) on the same
    augmented views (Bernoulli form for one-logit heads), teacher in eval mode; the student is
    an ordinary detector afterwards (calibrated on validation, predict/serve/export)."""
    missing = [o for o, v in (("--teacher", teacher), ("--student", student),
                              ("--train", train), ("--out", out_dir)) if v is None]
    if missing:
        raise ConfigError(f"detector distill needs {', '.join(missing)}")
    check_device(device)
    det = distill_cnn_detector(
        teacher, student, train, val, out_dir, temperature=temperature,
        hard_weight=hard_weight, recipe=recipe, seed=seed, epochs=epochs,
        batch_size=batch_size, device=device, aug_prob=aug_prob, crop_size=crop_size,
        resume=resume, force=force)
    summary = {"out": str(out_dir), "arch": det.arch, "threshold": det.threshold,
               "distillation": det.meta.get("distillation"), "metrics": det.meta.get("metrics")}
    if as_json:
        out(json.dumps(json.loads(to_json(summary))))
    else:
        out(f"saved distilled {det.arch} student to {out_dir} (threshold {det.threshold:.4f})")


@evaluate_app.command(
    "attribution",
    epilog="Example: ganforensics evaluate attribution --model models/attr --test "
    "data/test.csv --out runs/attr-eval\n\n" + EXIT_CODES_HELP,
)
def attribution_cmd(
    model: Path = typer.Option(None, "--model", help="Model trained with --task attribute."),
    test: Path = typer.Option(None, "--test", help="Labelled test manifest (CSV) with a "
                              "`generator` column."),
    out_dir: Path = typer.Option(None, "--out", help="Run folder: metrics.csv, confusion.csv, "
                                 "confusion.png, metrics.json, scores.csv."),
    resamples: int = typer.Option(DEFAULT_RESAMPLES, "--resamples", min=0,
                                  help="Bootstrap resamples for 95 % intervals (0 = none)."),
    seed: int = typer.Option(DEFAULT_SEED, "--seed", help="Seed of the bootstrap."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Images per forward pass."),
    workers: int = typer.Option(DEFAULT_WORKERS, "--workers", min=1, help="Decoding threads."),
    device: str = typer.Option("cpu", "--device", help="torch device."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing run folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Attribution metrics: per-class precision/recall/F1, confusion matrix, accuracy and
    macro-F1 with bootstrap intervals. Calibration is the model's (validation data only)."""
    if model is None or test is None:
        raise ConfigError("evaluate attribution needs --model and --test")
    det = load_detector(model, "torch")
    if device != "cpu":
        det.to(check_device(device))  # type: ignore[attr-defined]
    res = evaluate_attribution(det, test, out=out_dir, resamples=resamples, seed=seed,
                               batch_size=batch_size, workers=workers, force=force)
    if as_json:
        out(json.dumps(json.loads(to_json({"summary": res.summary, "per_class":
                                            res.per_class.to_dict(orient="records")}))))
        return
    out(res.per_class.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    s = res.summary
    out(f"accuracy {s['accuracy']:.4f} [{s['accuracy_lo']:.4f}, {s['accuracy_hi']:.4f}]  "
        f"macro-F1 {s['macro_f1']:.4f} [{s['macro_f1_lo']:.4f}, {s['macro_f1_hi']:.4f}]")
    if res.out:
        info(f"results in {res.out}")
