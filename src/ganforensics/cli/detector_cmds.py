"""`detector train`, `detector import`, `detector export`, `predict` (local or on Ray) and
`evaluate` (the bare group command)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from ganforensics.cli.apps import EXIT_CODES_HELP, app, detector_app, evaluate_app
from ganforensics.console import info, out, warn
from ganforensics.data.manifest import read_manifest
from ganforensics.detectors import load_detector, spectral
from ganforensics.detectors.cnn import (
    ARCHS,
    DEFAULT_ARCH,
    DEFAULT_RECIPE,
    RECIPES,
    CNNDetector,
    load_cnndetection_checkpoint,
    train_cnn_detector,
)
from ganforensics.detectors.cnn.heads import DEFAULT_TASK
from ganforensics.detectors.doping import DEFAULT_EDGE_QUANTILE, METHODS
from ganforensics.detectors.loading import BACKENDS
from ganforensics.detectors.one_class import (
    DEFAULT_FEATURES,
    DEFAULT_MODEL,
    DEFAULT_TARGET_FPR,
    FEATURES,
    MODELS,
    train_one_class_detector,
)
from ganforensics.detectors.one_class import KIND as ONE_CLASS
from ganforensics.detectors.onnx import FORMATS, export_detector
from ganforensics.devices import check_device
from ganforensics.errors import ConfigError, InputError, RunExistsError
from ganforensics.evaluate import bulk, detection
from ganforensics.evaluate.predict import DEFAULT_BATCH_SIZE, predict_inputs
from ganforensics.io.atomic import atomic_path, to_json
from ganforensics.io.loading import DEFAULT_WORKERS, warn_bad_files
from ganforensics.metrics.bootstrap import DEFAULT_RESAMPLES
from ganforensics.metrics.threshold import DEFAULT_THRESHOLD
from ganforensics.seeding import DEFAULT_SEED

KINDS = (CNNDetector.kind, *spectral.KINDS, ONE_CLASS)
_RECIPE = RECIPES[DEFAULT_RECIPE]
ENGINES = ("local", "ray")
_BACKEND_HELP = (f"How a CNN runs: {' or '.join(BACKENDS)} (default: what the model folder "
                 "holds; onnxruntime exports a torch model in memory).")


@detector_app.command(
    "train",
    epilog="Example: ganforensics detector train --arch small --recipe wang2020 "
    "--train data/train.csv --val data/val.csv --out models/small-wang\n\n" + EXIT_CODES_HELP,
)
def train_cmd(
    train: Path = typer.Option(None, "--train", help="Training manifest (CSV). Required."),
    out_dir: Path = typer.Option(None, "--out", help="Model folder to write. Required."),
    kind: str = typer.Option(CNNDetector.kind, "--kind",
                             help=f"Detector kind: {', '.join(KINDS)}."),
    val: Path = typer.Option(
        None, "--val", help="Validation manifest (threshold calibration, early stopping). "
        f"Default: {_RECIPE.val_fraction:.0%} of the training sources are held out (CNN)."
    ),
    arch: str = typer.Option(None, "--arch", help="CNN backbone (see docs/detectors.md): "
                             f"{', '.join(ARCHS)}. Default: {DEFAULT_ARCH}.", show_default=False),
    recipe: str = typer.Option(None, "--recipe", help=f"{' or '.join(RECIPES)} "
                               f"(docs/detectors.md). Default: {DEFAULT_RECIPE}.",
                               show_default=False),
    color_robust: bool = typer.Option(False, "--color-robust",
                                      help="Add RandomGrayscale(p=0.5) after crop/flip."),
    epochs: int = typer.Option(None, "--epochs", min=1, help=f"Max epochs (default "
                               f"{_RECIPE.max_epochs}; early stopping usually ends sooner)."),
    batch_size: int = typer.Option(None, "--batch-size", min=1,
                                   help=f"Batch size (recipe: {_RECIPE.batch_size})."),
    aug_prob: float = typer.Option(None, "--aug-prob",
                                   help="wang2020 blur/JPEG probability p (0.5 or 0.1)."),
    crop_size: int = typer.Option(None, "--crop-size", help="Training crop side (default: the "
                                  "architecture's input size, capped by the smallest image)."),
    weights: Path = typer.Option(None, "--weights", help="Initial weights (.safetensors or "
                                 ".pth state dict, loaded safely); default random init."),
    classifier: str = typer.Option(None, "--classifier",
                                   help="Spectral kinds: logreg, svm, knn, mlp, ..."),
    features: str = typer.Option(None, "--features", help=f"one-class: {', '.join(FEATURES)} "
                                 f"(default {DEFAULT_FEATURES}).", show_default=False),
    oc_model: str = typer.Option(None, "--model", help=f"one-class: {', '.join(MODELS)} "
                                 f"(default {DEFAULT_MODEL}).", show_default=False),
    embedding_model: Path = typer.Option(None, "--embedding-model", help="one-class with "
                                         "--features cnn-embedding: a saved CNN detector."),
    target_fpr: float = typer.Option(DEFAULT_TARGET_FPR, "--target-fpr", min=0.0, max=0.99,
                                     help="one-class: false-positive rate on the held-out "
                                     "reals that sets the threshold."),
    doping: float = typer.Option(0.0, "--doping", min=0.0, help="one-class: add RATIO x N "
                                 "synthetic training vectors (0 = off; docs/detectors.md)."),
    edge_quantile: float = typer.Option(DEFAULT_EDGE_QUANTILE, "--edge-quantile",
                                        help="one-class DOPING: the top-q latent codes by "
                                        "norm are the edge."),
    oversample: str = typer.Option("doping", "--oversample", help="one-class with --doping: "
                                   f"{', '.join(m for m in METHODS if m != 'none')} "
                                   "(the baselines: whole prior, input-space SMOTE)."),
    seed: int = typer.Option(DEFAULT_SEED, "--seed", help="Seed of every random choice."),
    device: str = typer.Option("cpu", "--device", help="torch device, e.g. cpu or cuda."),
    resume: bool = typer.Option(True, "--resume/--no-resume",
                                help="Continue an interrupted run with the same config."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing model folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the model summary as JSON."),
    task: str = typer.Option(DEFAULT_TASK, "--task", help="CNN: detect (one logit, P(fake)) "
                             "or attribute (real + each fake `generator`; docs/detectors.md)."),
    label_smoothing: float = typer.Option(0.0, "--label-smoothing", min=0.0, max=0.99,
                                          help="CNN: label smoothing alpha (e.g. 0.1)."),
) -> None:
    """Train a detector on a manifest and save it (model.safetensors/.npz + model.json).

    CNN kinds follow the wang2020 or khan2019 recipe exactly (docs/detectors.md), checkpoint every
    epoch (resumable) and calibrate the decision threshold on the validation split only.

    CNN kinds also train data-parallel under torchrun (DDP; gloo on CPU, NCCL on GPU), e.g.
    `torchrun --standalone --nproc-per-node 2 -m ganforensics --threads 1 detector train ...`;
    --batch-size is then the global batch; rank 0 validates and writes the model folder.
    GANFORENSICS_SYNC_BN=1 asks for SyncBatchNorm (GPU only; docs/scale.md).
    """
    if train is None or out_dir is None:
        raise ConfigError("detector train needs --train MANIFEST and --out MODEL")
    if kind not in KINDS:
        raise ConfigError(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}")
    _warn_unused_options(kind, {
        "--arch": arch is not None, "--recipe": recipe is not None,
        "--color-robust": color_robust, "--epochs": epochs is not None,
        "--batch-size": batch_size is not None, "--aug-prob": aug_prob is not None,
        "--crop-size": crop_size is not None, "--weights": weights is not None,
        "--device": device != "cpu", "--classifier": classifier is not None,
        "--task": task != DEFAULT_TASK, "--label-smoothing": bool(label_smoothing),
        "--features": features is not None, "--model": oc_model is not None,
        "--embedding-model": embedding_model is not None, "--doping": doping > 0,
    })
    if kind == CNNDetector.kind:
        check_device(device)
        det = train_cnn_detector(
            arch or DEFAULT_ARCH, recipe or DEFAULT_RECIPE, train, val, out_dir,
            color_robust=color_robust, seed=seed, epochs=epochs, batch_size=batch_size,
            device=device, aug_prob=aug_prob, crop_size=crop_size, weights=weights, resume=resume,
            force=force, task=task, label_smoothing=label_smoothing,
        )
    elif kind == ONE_CLASS:
        if out_dir.exists() and any(out_dir.iterdir()) and not force:
            raise RunExistsError(f"{out_dir}: already exists and is not empty; pass --force")
        det = train_one_class_detector(
            read_manifest(train), read_manifest(val) if val else None,
            features=features or DEFAULT_FEATURES, model=oc_model or DEFAULT_MODEL,
            target_fpr=target_fpr, oversample=oversample, ratio=doping,
            edge_quantile=edge_quantile, embedding_model=embedding_model, seed=seed,
            train_name=str(train),
        )
        det.save(out_dir)
    else:
        if out_dir.exists() and any(out_dir.iterdir()) and not force:
            raise RunExistsError(f"{out_dir}: already exists and is not empty; pass --force")
        det = spectral.train_spectral_detector(
            kind, read_manifest(train), read_manifest(val) if val else None,
            classifier=classifier, seed=seed,
        )
        det.save(out_dir)
    summary = {"out": str(out_dir), "kind": det.kind, "threshold": det.threshold,
               "arch": det.meta.get("arch"), "metrics": det.meta.get("metrics")}
    if as_json:
        out(json.dumps(json.loads(to_json(summary))))
    else:
        out(f"saved {det.kind} detector to {out_dir} (threshold {det.threshold:.4f})")
    skipped = int(det.meta.get("train_skipped") or 0)
    if skipped:
        warn(f"{skipped} unreadable training/validation image(s) were skipped (listed above)")
        raise typer.Exit(1)


def _warn_unused_options(kind: str, given: dict[str, bool]) -> None:
    """Warn about options given that the chosen --kind ignores."""
    spectral_only = {"--classifier"}
    one_class_only = {"--features", "--model", "--embedding-model", "--doping"}
    cnn = kind == CNNDetector.kind
    unused = [o for o, on in given.items() if on and (
        (o in one_class_only) != (kind == ONE_CLASS)
        or (o not in one_class_only and (o in spectral_only) == cnn))]
    if unused:
        warn(f"--kind {kind} ignores {', '.join(unused)}")


@detector_app.command(
    "import",
    epilog="Example: ganforensics detector import blur_jpg_prob0.5.pth --out models/wang-0.5\n\n"
    + EXIT_CODES_HELP,
)
def import_cmd(
    checkpoint: Path = typer.Argument(..., help="CNNDetection checkpoint (.pth)."),
    out_dir: Path = typer.Option(None, "--out", help="Model folder to write. Required."),
    crop: bool = typer.Option(False, "--crop/--no-crop",
                              help="Centre-crop 224 before scoring (default: whole image)."),
    threshold: float = typer.Option(DEFAULT_THRESHOLD, "--threshold", min=0.0, max=1.0,
                                    help="Decision threshold to store."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing model folder."),
) -> None:
    """Convert a published CNNDetection (Wang et al. 2020) checkpoint to a model folder.

    The file is read with torch.load(weights_only=True); a pickle that would run code is
    refused. `predict --model FILE.pth` also accepts the checkpoint directly.
    """
    if out_dir is None:
        raise ConfigError("detector import needs --out MODEL")
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        raise RunExistsError(f"{out_dir}: already exists and is not empty; pass --force")
    det = load_cnndetection_checkpoint(checkpoint, crop=crop, threshold=threshold)
    det.save(out_dir)
    out(f"imported {checkpoint} -> {out_dir} ({det.arch}, crop {det.crop})")


@detector_app.command(
    "export",
    epilog="Example: ganforensics detector export models/small-wang --format onnx "
    "--out models/small-wang-onnx\n\n" + EXIT_CODES_HELP,
)
def export_cmd(
    model: Path = typer.Argument(..., help="Model folder, model.json or CNNDetection .pth."),
    fmt: str = typer.Option("onnx", "--format", help=f"Export format: {', '.join(FORMATS)}."),
    out_dir: Path = typer.Option(None, "--out", help="Folder to write. Required."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing folder."),
) -> None:
    """Export a CNN detector to ONNX: model.onnx (dynamic batch, height and width) and the
    same model.json (threshold, preprocessing). `predict --model DIR` reads the folder
    directly and runs it in ONNX Runtime. Spectral detectors have no ONNX export."""
    if out_dir is None:
        raise ConfigError("detector export needs --out DIR")
    written = export_detector(load_detector(model), out_dir, fmt=fmt, force=force)
    out(f"exported {model} -> {written / 'model.onnx'}")


@app.command(
    "predict",
    epilog="Example: ganforensics predict --model models/small-wang photos/ extra.png "
    "--out scores.csv\n\nRay: ganforensics predict --model models/small-wang photos/ "
    "--engine ray --out scores/\n\n" + EXIT_CODES_HELP,
)
def predict_cmd(
    inputs: list[str] = typer.Argument(..., help="Image files, folders or manifests (CSV); "
                                       "with --engine ray also URIs (s3://...) and .txt lists "
                                       "of paths or URIs."),
    model: Path = typer.Option(None, "--model", help="Model folder, model.json, or a "
                               "CNNDetection .pth checkpoint. Required."),
    out_file: Path = typer.Option(None, "--out", help="Write rows to FILE.csv or FILE.jsonl "
                                  "(default: CSV on stdout); an existing FILE needs --force. "
                                  "--engine ray: a folder of Parquet partitions (required)."),
    threshold: float = typer.Option(None, "--threshold", min=0.0, max=1.0,
                                    help="Decision threshold on P(fake) "
                                    "(default: the model's calibrated one)."),
    batch_size: int = typer.Option(DEFAULT_BATCH_SIZE, "--batch-size", min=1,
                                   help="Images per forward pass."),
    workers: int = typer.Option(DEFAULT_WORKERS, "--workers", min=1, help="Decoding threads."),
    device: str = typer.Option("cpu", "--device", help="torch device for CNN models."),
    backend: str = typer.Option(None, "--backend", help=_BACKEND_HELP, show_default=False),
    engine: str = typer.Option("local", "--engine", help=f"{' or '.join(ENGINES)}: ray scores "
                               "on a Ray cluster (pip install 'ganforensics[ray]')."),
    address: str = typer.Option(None, "--address", help="Ray cluster: auto or "
                                "ray://HOST:PORT (default: start a local one)."),
    actors: int = typer.Option(None, "--actors", min=1, help="Ray actors holding the model "
                               "(default: as many as fit, one CPU left for reading)."),
    cpus_per_actor: float = typer.Option(bulk.DEFAULT_CPUS_PER_ACTOR, "--cpus-per-actor",
                                         help="CPUs (and threads) per Ray actor."),
    gpus_per_actor: float = typer.Option(0.0, "--gpus-per-actor", min=0.0,
                                         help="GPUs per Ray actor (torch backend)."),
    partition_rows: int = typer.Option(bulk.DEFAULT_PARTITION_ROWS, "--partition-rows", min=1,
                                       help="Rows per Parquet partition (--engine ray)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing --out file "
                               "(--engine ray: start the folder over)."),
) -> None:
    """Score images with a detector: one row per file with path, prob_fake, logit, decision
    (fake/real at the threshold) and error. Unreadable files become error rows, the rest are
    scored, and the exit code is 1 at the end if any file was bad. `--engine ray` writes the
    same rows as Parquet partitions (docs/scale.md); a rerun skips finished partitions."""
    if model is None:
        raise ConfigError("predict needs --model MODEL")
    if engine not in ENGINES:
        raise ConfigError(f"--engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if engine == "ray":
        if device != "cpu":
            warn("--device is for --engine local; on Ray use --gpus-per-actor")
        _predict_ray(model, inputs, out_file, backend=backend, threshold=threshold,
                     batch_size=batch_size, address=address, actors=actors,
                     cpus_per_actor=cpus_per_actor, gpus_per_actor=gpus_per_actor,
                     partition_rows=partition_rows, force=force)
        return
    if address is not None:
        warn("--address is for --engine ray; ignored")
    if out_file is not None and out_file.suffix.lower() not in (".csv", ".jsonl"):
        raise ConfigError(f"--out {out_file}: use a .csv or .jsonl file name")
    if out_file is not None and out_file.exists() and not force:
        raise RunExistsError(f"{out_file}: already exists; pass --force to overwrite it")
    det = load_detector(model, backend)
    if device != "cpu" and hasattr(det, "to"):
        det.to(check_device(device))
    table = predict_inputs(det, inputs, threshold=threshold, batch_size=batch_size,
                           workers=workers)
    if out_file is None:
        table.to_csv(sys.stdout, index=False)
    else:
        with atomic_path(out_file) as tmp:
            if out_file.suffix.lower() == ".csv":
                table.to_csv(tmp, index=False)
            else:
                table.to_json(tmp, orient="records", lines=True)
    bad = table[table["error"] != ""]
    n_fake = int((table["decision"] == "fake").sum())
    info(f"{len(table)} file(s): {n_fake} fake, {len(table) - n_fake - len(bad)} real, "
         f"{len(bad)} unreadable" + (f"; wrote {out_file}" if out_file else ""))
    warn_bad_files(list(zip(bad["path"], bad["error"], strict=True)), "predict")
    if len(bad):
        raise typer.Exit(1)


def _predict_ray(model: Path, inputs: list[str], out_dir: Path | None, **kwargs: object) -> None:
    """`predict --engine ray`: score on Ray Data, summarise, exit 1 when files were bad."""
    if out_dir is None:
        raise ConfigError("--engine ray needs --out DIR (a folder of Parquet partitions)")
    res = bulk.predict_ray(model, inputs, out_dir, **kwargs)  # type: ignore[arg-type]
    info(f"{res.n_rows} file(s): {res.n_fake} fake, {res.n_rows - res.n_fake - res.n_errors} "
         f"real, {res.n_errors} unreadable; {len(res.computed)} partition(s) scored, "
         f"{len(res.skipped)} already done, in {out_dir}")
    if res.n_errors:
        raise typer.Exit(1)


@evaluate_app.callback(
    invoke_without_command=True,
    epilog="Example: ganforensics evaluate --model models/small-wang --test data/test.csv "
    "--grid standard --out runs/eval\n\n" + EXIT_CODES_HELP,
)
def evaluate_cmd(
    ctx: typer.Context,
    model: Path = typer.Option(None, "--model", help="Model folder or CNNDetection .pth."),
    test: Path = typer.Option(None, "--test", help="Labelled test manifest (CSV)."),
    perturb: list[str] = typer.Option(None, "--perturb", help="Extra condition, repeatable: "
                                      "jpeg:75, blur:1.5, resize:0.5, grayscale, or a chain "
                                      "'resize:0.5,jpeg:75'."),
    grid: str = typer.Option(None, "--grid", help="; ".join(
        f"'{name}' = {', '.join(ops)}" for name, ops in detection.GRIDS.items()) + "."),
    out_dir: Path = typer.Option(None, "--out", help="Run folder for metrics.csv, "
                                 "metrics.json, curves, plots."),
    threshold: float = typer.Option(None, "--threshold", min=0.0, max=1.0,
                                    help="Override the calibrated "
                                    "threshold (reported as given)."),
    oracle: bool = typer.Option(False, "--oracle", help="Also report a threshold chosen on "
                                "the test labels (named 'oracle'; optimistic)."),
    jpeg_control: str = typer.Option(None, "--jpeg-control", help="Add the JPEG-96 control: "
                                     "'fakes' re-encodes the fakes (condition fakes:jpeg:96), "
                                     "'both' every image (jpeg:96), before scoring."),
    batch_size: int = typer.Option(detection.DEFAULT_BATCH_SIZE, "--batch-size", min=1,
                                   help="Images per forward pass."),
    workers: int = typer.Option(DEFAULT_WORKERS, "--workers", min=1, help="Decoding threads."),
    device: str = typer.Option("cpu", "--device", help="torch device for CNN models."),
    backend: str = typer.Option(None, "--backend", help=_BACKEND_HELP, show_default=False),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing run folder."),
    resamples: int = typer.Option(DEFAULT_RESAMPLES, "--resamples", min=0,
                                  help="Bootstrap resamples of the test images for 95 % "
                                  "intervals of AP, AUC and calibrated accuracy (0 = none)."),
    seed: int = typer.Option(DEFAULT_SEED, help="Seed of the bootstrap resamples."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
) -> None:
    """Evaluate a detector per generator (each fake generator vs all reals, and the mean over
    generators): AP, ROC-AUC, accuracies at 0.5 and at the validation-calibrated threshold,
    EER, TPR at 1 %/5 % FPR; optionally under perturbations (`--perturb`, `--grid standard`,
    `--jpeg-control`). The `mean` row also names the worst generator (lowest calibrated
    accuracy) with min_acc_05 / min_acc_cal. Subcommand: `evaluate bypass`."""
    if ctx.invoked_subcommand:
        return
    if model is None or test is None:
        missing = [n for n, v in (("--model", model), ("--test", test)) if v is None]
        raise ConfigError(
            f"evaluate needs {' and '.join(missing)} (or a subcommand: evaluate bypass); "
            "see ganforensics evaluate --help"
        )
    if not test.is_file():
        what = "is a folder, not a manifest CSV" if test.is_dir() else "test manifest not found"
        raise InputError(f"{test}: {what} (make one with `ganforensics data scan`)")
    det = load_detector(model, backend)
    if device != "cpu" and hasattr(det, "to"):
        det.to(check_device(device))
    res = detection.evaluate_detector(det, test, perturb=perturb or None, grid=grid, out=out_dir,
                            threshold=threshold, oracle=oracle, jpeg_control=jpeg_control,
                            batch_size=batch_size,
                            workers=workers, force=force, resamples=resamples, seed=seed)
    table = res.metrics
    if as_json:
        out(table.to_json(orient="records"))
    else:
        cols = [c for c in ("condition", "generator", "n_real", "n_fake", "ap", "ap_lo",
                            "ap_hi", "auc", "auc_lo", "auc_hi", "acc_05", "acc_cal",
                            "acc_cal_lo", "acc_cal_hi", "real_acc_cal", "fake_acc_cal",
                            "bacc_cal", "eer", "tpr_at_fpr_5", "min_acc_cal",
                            "worst_generator")
                if c in table.columns]
        out(table[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        info(f"threshold {res.threshold:.4f} ({res.threshold_source})"
             + (f"; results in {res.out}" if res.out else ""))
    if res.n_errors:
        raise typer.Exit(1)
