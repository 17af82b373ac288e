"""`ganforensics demo` and `ganforensics study CONFIG.yaml`: the whole study with a report."""

from __future__ import annotations

from pathlib import Path

import typer

from ganforensics.cli.apps import app
from ganforensics.console import out
from ganforensics.io.runs import dump_yaml
from ganforensics.study.config import PRESETS, load_config, parse_seeds
from ganforensics.study.seeds import run_studies

DEMO_OUT = Path("ganforensics-demo")
_PRESET_HELP = (f"A packaged preset ({', '.join(p for p in PRESETS if p != 'default')}), "
                "applied after --quick and before the config file; seeds3 = three seeds "
                "(2021, 2022, 2023). Repeatable.")
_SEEDS_HELP = ("Comma-separated seeds (e.g. 2021,2022,2023): each runs as its own study in "
               "OUT/seed-N/, then OUT/report.html shows mean ± sd across seeds.")


def _presets(quick: bool, presets: list[str] | None) -> list[str]:
    return (["quick"] if quick else []) + list(presets or [])


def _seeds(text: str | None) -> list[int] | None:
    return None if text is None else parse_seeds(text)


def _run(cfg: dict, out_dir: Path, force: bool, stop_after: str | None) -> None:
    report, results = run_studies(cfg, out_dir, force=force, stop_after=stop_after)
    failed = [r.name for r in results if r.status == "failed"]
    skipped = [r.name for r in results if r.status == "skipped"]
    if failed or skipped:
        out(f"report (incomplete: failed {', '.join(failed) or '-'}; {len(skipped)} stage(s) "
            f"skipped; see its Overview): {report.resolve()}")
        raise typer.Exit(1)
    out(f"report: {report.resolve()}")


@app.command("demo")
def demo(
    out_dir: Path = typer.Option(DEMO_OUT, "--out", "-o",
                                 help="Run folder (created; rerun the same command to resume)."),
    quick: bool = typer.Option(False, "--quick",
                               help="The quick preset (CI smoke test, about 1.5 minutes)."),
    preset: list[str] = typer.Option(None, "--preset", help=_PRESET_HELP),
    seeds: str = typer.Option(None, "--seeds", help=_SEEDS_HELP),
    force: bool = typer.Option(False, "--force",
                               help="Start over in a folder that holds a run (clears its "
                                    "study folders first)."),
    train_simulators: bool = typer.Option(
        False, "--train-simulators",
        help="Train the simulated arm's simulators instead of using the shipped ones "
             "(simulator.source: train; about 9 more minutes on 2 cores)."),
    train_gans: bool = typer.Option(
        False, "--train-gans",
        help="Train every setup's GAN instead of using the generators the package ships for "
             "the setups they fit (gan.source: train)."),
    stop_after: str = typer.Option(None, "--stop-after", hidden=True,
                                   help="Stop after this stage (testing resume)."),
) -> None:
    """Run the whole study on the embedded photos and write an HTML report.

    Cuts real patches from the photos scikit-image and scikit-learn ship, trains DCGANs at
    32x32 whose last up-sampling block differs (BASELINE, N.1.5, B.1.5, Z.1.5, N.3.5) and
    samples their fakes (the sampled arm); reconstructs every real patch with an up-sampling
    simulator ending in each of those blocks (the simulated arm, setups sim-S: content-aligned
    fakes, by the simulators shipped in the package); measures the fakes (FID against the
    real-vs-real floor, spectra), trains spectral and CNN detectors on real vs BASELINE and on
    real vs sim-BASELINE and tests them on every setup of both arms (AP, accuracy, the paired
    pair_win, bypass rates, robustness, grayscale), then writes report.html, results.json and
    CSV tables. About 9-11 minutes on 2 idle CPU cores (--quick: 2; --preset sampled: the
    sampled arm alone, 7-8).

    Interrupted? Rerun the same command: finished stages are skipped and GAN training resumes
    from its last checkpoint. The last line on stdout says where the report is.

    Several seeds: --preset seeds3 (or --seeds 2021,2022,2023) runs each seed as its own
    study in OUT/seed-N/ and writes OUT/report.html with mean ± sd across seeds. Every seed
    then trains its GANs and simulators (the shipped ones fit one seed's photo split only).

    LS-KD (label-smoothed teachers x distillation temperature, on attribution): --preset
    lskd, with --preset seeds3 for three seeds (docs/study.md).

    The shipped simulators are used only where that is honest (the study's train patches
    are the ones they learnt from, and no held-out photo is); otherwise, or with
    --train-simulators, each is trained (1,000 steps; docs/gan.md, "Simulators"). The same
    holds for the GANs: a setup uses the generator the package ships for its preset and last
    block where one ships and fits (docs/gan.md, "Fake quality"); the others, or all with
    --train-gans, are trained (gan.steps).

    Example: ganforensics demo --out runs/demo

    Example: ganforensics demo --quick --preset seeds3 --out runs/demo-3seeds
    """
    overrides: dict = {}
    if train_simulators:
        overrides["simulator"] = {"source": "train"}
    if train_gans:
        overrides["gan"] = {"source": "train"}
    cfg = load_config(overrides or None, preset=_presets(quick, preset), seeds=_seeds(seeds))
    _run(cfg, out_dir, force, stop_after)


@app.command("study")
def study(
    config: Path = typer.Argument(..., help="YAML file of overrides of the study defaults."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Run folder (rerun to resume)."),
    quick: bool = typer.Option(False, "--quick",
                               help="Apply the overrides on top of the quick preset."),
    preset: list[str] = typer.Option(None, "--preset", help=_PRESET_HELP),
    seeds: str = typer.Option(None, "--seeds", help=_SEEDS_HELP + " Overrides `seeds`."),
    force: bool = typer.Option(False, "--force",
                               help="Start over in a folder that holds a run with another "
                                    "config."),
    stop_after: str = typer.Option(None, "--stop-after", hidden=True,
                                   help="Stop after this stage (testing resume)."),
) -> None:
    """Run the study pipeline with a config file that overrides the defaults.

    The file holds only the keys to change (deep-merged into the defaults, see
    docs/study.md or `ganforensics study-defaults`); an unknown key is an error naming it.
    The resolved config is saved as `OUT/config.yaml`. Rerunning with the same config
    resumes; a different config in the same folder is refused unless --force.

    Example config (adds an LSGAN setup and trains longer):

    ```yaml
    gan:
      steps: 1500
      setups: [BASELINE, N.1.5, {name: LS-BASELINE, last_block: BASELINE, preset: lsgan}]
    ```

    Example: ganforensics study my.yaml --out runs/my-study
    """
    cfg = load_config(config, preset=_presets(quick, preset), seeds=_seeds(seeds))
    _run(cfg, out_dir, force, stop_after)


@app.command("study-defaults")
def study_defaults(
    quick: bool = typer.Option(False, "--quick", help="Show the quick preset resolved."),
    preset: list[str] = typer.Option(None, "--preset", help=_PRESET_HELP),
) -> None:
    """Print the resolved default study config (YAML) to start an override file from.

    Example: ganforensics study-defaults > my.yaml  (then delete the keys you keep)
    """
    out(dump_yaml(load_config(preset=_presets(quick, preset))))
