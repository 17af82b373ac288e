"""`ganforensics dga data|train-ae|train-gan|generate|train-classifier|evaluate|harden|demo`:
DomainGAN, GAN-generated domain names against DGA classifiers (docs/text.md)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer

from ganforensics.cli.apps import EXIT_CODES_HELP, _app, app
from ganforensics.console import info, out, warn
from ganforensics.io.atomic import to_json
from ganforensics.text.classifiers import KINDS, ClassifierConfig
from ganforensics.text.encoding import DEFAULT_MAX_LEN
from ganforensics.text.train import VARIANTS, AEConfig, GanConfig

dga_app = _app(
    "DomainGAN (Corley et al. 2019): train GANs that generate domain names, measure how often "
    "character-level DGA classifiers call them benign, harden the classifiers. Offline; "
    "needs the text extra (pip install 'ganforensics[text]'). Start with **ganforensics dga "
    "demo**.")
app.add_typer(dga_app, name="dga")

_AE = AEConfig()
_GAN = GanConfig()
_CLF = ClassifierConfig()
_JSON = typer.Option(False, "--json", help="Print the result as JSON.")
_FORCE = typer.Option(False, "--force", help="Overwrite an existing run folder.")
_DATA = typer.Option(..., "--data", help="Data folder (from `dga data`).", show_default=False)


@dga_app.command("data", epilog=EXIT_CODES_HELP)
def data_cmd(
    out_dir: Path = typer.Option(..., "--out", "-o", help="Data folder to write.",
                                 show_default=False),
    benign: list[Path] = typer.Option([], "--benign", help="Benign names, one per line "
                                      "(repeatable). Default: the HSTS preload list shipped by "
                                      "hstspreload.", show_default=False),
    dga: list[Path] = typer.Option([], "--dga", help="DGA names, one per line (repeatable). "
                                   "Default: the synthetic DGA-like generators.",
                                   show_default=False),
    limit: int | None = typer.Option(None, "--limit", min=3, help="Keep a seeded random subset "
                                     "of this many benign names.", show_default=False),
    n_dga: int | None = typer.Option(None, "--n-dga", min=3, help="Synthetic DGA names "
                                     "(default: as many as benign).", show_default=False),
    max_len: int = typer.Option(DEFAULT_MAX_LEN, "--max-len", min=4, max=63,
                                help="Positions per name (longer names are skipped)."),
    seed: int = typer.Option(0, help="Seed of the subset, the splits and the synthetic names."),
    force: bool = _FORCE,
    as_json: bool = _JSON,
) -> None:
    """Build a data folder: benign and DGA names split train / held-out by name (75/25).

    Lines of --benign / --dga files that are not valid hostname labels are skipped and each
    is reported with its line number (exit code 1). Full hosts (www.example.co.uk) are reduced
    to their second-level label offline.

    Example: ganforensics dga data --limit 20000 --out runs/dga-data
    """
    from ganforensics.text.pipeline import build_data

    folder, bad = build_data(out_dir, benign=benign, dga=dga, limit=limit, n_dga=n_dga,
                             max_len=max_len, seed=seed, force=force, progress=info)
    for b in bad:
        warn(f"skipped {b}")
    if as_json:
        import json

        out(to_json({"folder": str(folder),
                     **json.loads((folder / "data.json").read_text())["counts"],
                     "bad_lines": [asdict(b) for b in bad]}))
    else:
        out(str(folder))
    if bad:
        raise typer.Exit(1)


@dga_app.command("train-ae", epilog=EXIT_CODES_HELP)
def train_ae_cmd(
    data: Path = _DATA,
    out_dir: Path = typer.Option(..., "--out", "-o", help="Run folder.", show_default=False),
    epochs: int = typer.Option(_AE.epochs, min=1, help="Most epochs."),
    target: float = typer.Option(_AE.target, help="Stop at this held-out character accuracy."),
    batch: int = typer.Option(_AE.batch, min=1, help="Batch size."),
    lr: float = typer.Option(_AE.lr, help="Adam learning rate."),
    filters: int = typer.Option(_AE.filters, min=1, help="Filters per conv bank (paper 256)."),
    seed: int = typer.Option(_AE.seed, help="Seed."),
    force: bool = _FORCE,
    as_json: bool = _JSON,
) -> None:
    """Train the text-CNN autoencoder on the benign train names (per-position cross-entropy).

    Example: ganforensics dga train-ae --data runs/dga-data --out runs/dga-ae
    """
    from ganforensics.text.pipeline import train_ae_run

    run, metrics = train_ae_run(data, out_dir, AEConfig(epochs=epochs, batch=batch, lr=lr,
                                                        target=target, filters=filters,
                                                        seed=seed), force=force, progress=info)
    out(to_json({"run": str(run), **metrics}) if as_json else str(run))


@dga_app.command("train-gan", epilog=EXIT_CODES_HELP)
def train_gan_cmd(
    autoencoder: Path = typer.Option(..., "--autoencoder", help="Autoencoder run folder.",
                                     show_default=False),
    data: Path = _DATA,
    out_dir: Path = typer.Option(..., "--out", "-o", help="Run folder.", show_default=False),
    variant: str = typer.Option(_GAN.variant, help=f"Objective: {', '.join(VARIANTS)}."),
    steps: int = typer.Option(_GAN.steps, min=1, help="Generator steps."),
    batch: int = typer.Option(_GAN.batch, min=1, help="Batch size (real and generated)."),
    lr: float = typer.Option(_GAN.lr, help="Adam learning rate (G and D)."),
    n_critic: int | None = typer.Option(None, "--n-critic", min=1, help="Critic steps per G "
                                        "step (default: 5 for wgan-gp, else 1).",
                                        show_default=False),
    z_dim: int = typer.Option(_GAN.z_dim, "--z-dim", min=1, help="Noise dimension."),
    train_bodies: bool = typer.Option(False, "--train-bodies", help="Ablation: also train the "
                                      "pre-trained decoder and encoder."),
    seed: int = typer.Option(_GAN.seed, help="Seed."),
    force: bool = _FORCE,
    as_json: bool = _JSON,
) -> None:
    """Train one DomainGAN variant: G = dense -> frozen decoder, D = frozen encoder -> linear.

    Example: ganforensics dga train-gan --autoencoder runs/dga-ae --data runs/dga-data
    --variant wgan-gp --out runs/dga-wgan-gp
    """
    from ganforensics.text.pipeline import train_gan_run

    cfg = GanConfig(variant=variant, steps=steps, batch=batch, lr=lr, n_critic=n_critic,
                    z_dim=z_dim, train_bodies=train_bodies, seed=seed)
    run, samples = train_gan_run(autoencoder, data, out_dir, cfg, force=force, progress=info)
    if as_json:
        out(to_json({"run": str(run), "samples": samples}))
    else:
        info("samples: " + " ".join(samples))
        out(str(run))


@dga_app.command("generate", epilog=EXIT_CODES_HELP)
def generate_cmd(
    generator: Path = typer.Option(..., "--generator", help="GAN run folder.",
                                   show_default=False),
    n: int = typer.Option(1000, "-n", min=1, help="Names to generate."),
    seed: int = typer.Option(0, help="Seed of the noise."),
    out_file: Path | None = typer.Option(None, "--out", "-o", help="Write the names here "
                                         "(one per line) instead of stdout.",
                                         show_default=False),
    force: bool = typer.Option(False, "--force", help="Overwrite --out."),
    as_json: bool = _JSON,
) -> None:
    """Generate names (argmax per position, up to the first pad; empty names stay, as empty
    lines).

    Example: ganforensics dga generate --generator runs/dga-wgan-gp -n 5000 --out wgan.txt
    """
    from ganforensics.text.pipeline import generate_names

    names = generate_names(generator, n, seed, out_file, force)
    if as_json:
        out(to_json({"names": names} if out_file is None else {"file": str(out_file),
                                                                "n": len(names)}))
    elif out_file is None:
        out("\n".join(names))
    else:
        out(str(out_file))


@dga_app.command("train-classifier", epilog=EXIT_CODES_HELP)
def train_classifier_cmd(
    data: Path = _DATA,
    model: str = typer.Option(..., "--model", help=f"Classifier: {', '.join(KINDS)}.",
                              show_default=False),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Run folder.", show_default=False),
    epochs: int = typer.Option(_CLF.epochs, min=1, help="Most epochs."),
    patience: int = typer.Option(_CLF.patience, min=1, help="Early stopping: epochs without a "
                                 "lower validation loss."),
    batch: int = typer.Option(_CLF.batch, min=1, help="Batch size."),
    lr: float = typer.Option(_CLF.lr, help="Adam learning rate."),
    seed: int = typer.Option(_CLF.seed, help="Seed (validation split, weights)."),
    force: bool = _FORCE,
    as_json: bool = _JSON,
) -> None:
    """Train a DGA classifier on benign (0) vs DGA (1) train names with early stopping;
    test metrics on the held-out names.

    Example: ganforensics dga train-classifier --data runs/dga-data --model lstm
    --out runs/dga-lstm
    """
    from ganforensics.text.pipeline import train_classifier_run

    cfg = ClassifierConfig(epochs=epochs, patience=patience, batch=batch, lr=lr, seed=seed)
    run, res = train_classifier_run(data, model, out_dir, cfg, force=force, progress=info)
    out(to_json({"run": str(run), **res}) if as_json else str(run))


@dga_app.command("evaluate", epilog=EXIT_CODES_HELP)
def evaluate_cmd(
    names: list[Path] = typer.Argument(..., help="Generated names files (one name per line).",
                                       show_default=False),
    classifier: list[Path] = typer.Option([], "--classifier", help="Classifier folder "
                                          "(repeatable).", show_default=False),
    data: Path = _DATA,
    out_file: Path | None = typer.Option(None, "--out", "-o", help="Also write the table as "
                                         "CSV.", show_default=False),
    as_json: bool = _JSON,
) -> None:
    """Metrics of generated names: length KS, unigram/bigram JS divergence, repeats, benign
    collisions, valid rate, and per classifier evasion and usable rates.

    Example: ganforensics dga evaluate wgan.txt --classifier runs/dga-lstm --data runs/dga-data
    """
    from ganforensics.text.pipeline import evaluate_names

    table = evaluate_names(names, classifier, data)
    if out_file is not None:
        from ganforensics.io.atomic import write_csv_atomic

        write_csv_atomic(out_file, table)
    if as_json:
        out(to_json(table.to_dict(orient="records")))
    else:
        out(table.set_index("names").T.to_string(float_format=lambda x: f"{x:.4f}"))


@dga_app.command("harden", epilog=EXIT_CODES_HELP)
def harden_cmd(
    data: Path = _DATA,
    classifier: list[Path] = typer.Option(..., "--classifier", help="Classifier folder "
                                          "(repeatable).", show_default=False),
    generator: list[Path] = typer.Option(..., "--generator", help="GAN run folder "
                                         "(repeatable).", show_default=False),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Run folder.", show_default=False),
    n_names: int = typer.Option(2000, "--n-names", min=1, help="Names per variant, for the "
                                "fine-tune mix and (fresh) for the evaluation."),
    cap: int | None = typer.Option(None, "--cap", min=2, help="Most benign names in the "
                                   "fine-tune mix.", show_default=False),
    epochs: int | None = typer.Option(None, "--epochs", min=1, help="Most fine-tuning epochs "
                                      "(default: each classifier's training setting).",
                                      show_default=False),
    seed: int = typer.Option(0, help="Seed."),
    force: bool = _FORCE,
    as_json: bool = _JSON,
) -> None:
    """Fine-tune each classifier with each variant's names (benign : DGA : GAN = 2 : 1 : 1)
    and measure evasion by fresh names of every variant (the cross-variant table).

    Example: ganforensics dga harden --data runs/dga-data --classifier runs/dga-lstm
    --generator runs/dga-gan --generator runs/dga-wgan-gp --out runs/dga-harden
    """
    from ganforensics.text.pipeline import harden_run

    run, table = harden_run(data, classifier, generator, out_dir, n_names=n_names, seed=seed,
                            cap=cap, epochs=epochs, force=force, progress=info)
    if as_json:
        out(to_json({"run": str(run), "rows": table.to_dict(orient="records")}))
    else:
        piv = table.pivot_table(index=["classifier", "hardened_with"], columns="eval_variant",
                                values="evasion", dropna=False)
        info(piv.to_string(float_format=lambda x: f"{x:.3f}"))
        out(str(run))


@dga_app.command("demo", epilog=EXIT_CODES_HELP)
def demo_cmd(
    out_dir: Path = typer.Option(Path("runs/dga-demo"), "--out", "-o", help="Run folder."),
    benign: int | None = typer.Option(None, "--benign", min=20, help="Benign names used "
                                      "(default: the demo's).", show_default=False),
    gan_steps: int | None = typer.Option(None, "--gan-steps", min=1, help="Generator steps "
                                         "per variant (default: the demo's).",
                                         show_default=False),
    n_names: int | None = typer.Option(None, "--n-names", min=10, help="Names per variant "
                                       "(default: the demo's).", show_default=False),
    seed: int = typer.Option(0, help="Seed."),
    force: bool = _FORCE,
    as_json: bool = _JSON,
) -> None:
    """The whole DomainGAN protocol on the embedded data, with an HTML report.

    Benign names from the HSTS preload list, synthetic DGA-like names; trains the
    autoencoder, the three GAN variants (gan, lsgan, wgan-gp) and the four classifiers,
    measures fresh names of each variant, fine-tunes every classifier with every variant's
    names and writes the cross-variant table, results.json and report.html. About 10 minutes
    with --threads 1 on a busy 2-core machine (docs/text.md). The last line on stdout is the
    report's path.

    Example: ganforensics dga demo --out runs/dga-demo
    """
    from ganforensics.study.dga_demo import DemoConfig, run_demo

    cfg = DemoConfig(seed=seed)
    if benign is not None:
        cfg.benign = benign
    if gan_steps is not None:
        cfg.gan.steps = gan_steps
    if n_names is not None:
        cfg.n_names = n_names
    report, results = run_demo(out_dir, cfg, force=force, progress=info)
    if as_json:
        out(to_json({"report": str(report), "metrics": results["metrics"],
                     "seconds": results["seconds"]}))
    else:
        out(str(report))
