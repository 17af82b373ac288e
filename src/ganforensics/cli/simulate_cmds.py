"""`ganforensics gan simulate` (train an up-sampling simulator) and `gan reconstruct`."""

from __future__ import annotations

from pathlib import Path

import typer

from ganforensics.cli.apps import EXIT_CODES_HELP, TRAINING_DATA_HELP, gan_app
from ganforensics.console import out
from ganforensics.data.manifest import error_mask
from ganforensics.devices import check_device
from ganforensics.gan.nets import LAST_BLOCKS
from ganforensics.gan.reconstruct import reconstruct
from ganforensics.gan.simulate import train_simulator
from ganforensics.gan.simulator import LOSSES, SimulatorConfig
from ganforensics.io.atomic import to_json

_S = SimulatorConfig()


@gan_app.command("simulate", epilog=EXIT_CODES_HELP)
def simulate_cmd(
    data: list[Path] = typer.Option(
        ..., "--data", help=TRAINING_DATA_HELP,
        show_default=False,
    ),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Run folder to write.",
                                 show_default=False),
    last_block: str = typer.Option(_S.last_block, help=f"Last up-sampling block of the "
                                   f"decoder: {', '.join(LAST_BLOCKS)}."),
    size: int = typer.Option(_S.size, help="Training image size: 32, 64 or 128."),
    steps: int = typer.Option(_S.steps, min=1, help="Optimiser steps."),
    batch: int = typer.Option(_S.batch, min=1, help="Batch size."),
    lr: float = typer.Option(_S.lr, help="Adam learning rate."),
    loss: str = typer.Option(_S.loss, help=f"Reconstruction loss: {' | '.join(LOSSES)}."),
    width: int = typer.Option(_S.width, min=1, help="Channels into the last block."),
    bottleneck: int = typer.Option(_S.bottleneck, min=1, help="Channels at half resolution."),
    seed: int = typer.Option(_S.seed, help="Seed of all random draws."),
    checkpoint_every: int = typer.Option(_S.checkpoint_every, min=1,
                                         help="Checkpoint every K steps."),
    sample_every: int = typer.Option(_S.sample_every, min=1, help="Sample grid every K steps."),
    device: str = typer.Option(_S.device, help="torch device."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue an interrupted "
                                "run with the same options from its last checkpoint."),
    force: bool = typer.Option(False, "--force", help="Start over in an existing run folder."),
) -> None:
    """Train an up-sampling simulator (AutoGAN-style autoencoder) for one last block.

    Its decoder ends in exactly the chosen last block (the GANs' registry), after an encoder
    that halves the resolution once, so its reconstructions of real photos differ from them by
    that block's up-sampling and keep their content (docs/gan.md, "Simulators"). The run folder
    is like `gan train`'s: config.yaml, env.json, losses.csv (loss, sample PSNR), samples/
    (reals above their reconstructions), checkpoints/ and, when done, simulator.safetensors +
    simulator.json. Rerunning after an interruption resumes and ends with the same weights.

    Example: ganforensics gan simulate --data patches/manifest.csv --last-block N.1.5
    --out runs/sim-N.1.5
    """
    check_device(device)
    cfg = SimulatorConfig(last_block=last_block, size=size, steps=steps, batch=batch, lr=lr,
                          loss=loss, width=width, bottleneck=bottleneck, seed=seed,
                          checkpoint_every=checkpoint_every, sample_every=sample_every,
                          device=device)
    run = train_simulator(cfg, [str(p) for p in data], out_dir, resume=resume, force=force)
    out(str(run))


@gan_app.command("reconstruct", epilog=EXIT_CODES_HELP)
def reconstruct_cmd(
    run: str = typer.Argument(..., help="A finished `gan simulate` run folder, or "
                              "shipped:BLOCK for the simulator the package ships for that "
                              "last block (32 px; trained on the embedded photos' train "
                              "patches, docs/gan.md).", show_default=False),
    data: list[Path] = typer.Option(..., "--data", help="Real images to reconstruct: "
                                    "manifest CSV(s), folder(s) or image files (label-0 or "
                                    "unlabelled rows).", show_default=False),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Folder for PNGs + manifest.csv.",
                                 show_default=False),
    force: bool = typer.Option(False, "--force", help="Replace an earlier `gan reconstruct` "
                               "output in --out."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Paired fakes: one reconstruction per real image, at the image's own size.

    Manifest rows: label 1, generator = sim-LASTBLOCK, source = the simulator's run id, the
    source image's split (no pair straddles train and test), `source_path`, `source_sha256`
    and the pair's `psnr_db`. Unreadable or odd-sized images become error rows (exit 1).

    Example: ganforensics gan reconstruct runs/sim-N.1.5 --data patches/manifest.csv
    --out fakes/sim-N.1.5

    Example: ganforensics gan reconstruct shipped:B.1.5 --data my-photos/ --out fakes/sim-B.1.5
    """
    df = reconstruct(run, [str(p) for p in data], out_dir, force=force)
    bad = int(error_mask(df).sum())
    ok = df.loc[~error_mask(df)]
    summary = {"out": str(out_dir), "manifest": str(Path(out_dir) / "manifest.csv"),
               "count": int(len(ok)), "errors": bad,
               "mean_psnr_db": round(float(ok["psnr_db"].mean()), 3) if len(ok) else None}
    out(to_json(summary) if as_json else
        f"{summary['count']} reconstructions (mean PSNR {summary['mean_psnr_db']} dB), "
        f"{bad} error row(s) -> {summary['manifest']}")
    if bad:
        raise typer.Exit(1)
