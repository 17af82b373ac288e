"""The study pipeline: real patches -> GANs -> fakes -> FID/KID -> spectra -> detectors ->
evaluation (AP/accuracy, bypass, robustness, grayscale) -> explanations -> report.

Each stage writes its results as files in the run folder and a marker `stages/<name>.done`;
rerunning the same command skips finished stages (GAN training resumes from its checkpoints).
A stage that fails is reported as failed; nothing is faked. The stages live by area in
`data_stages`, `measure_stages`, `detector_stages` and `explain_stages`.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ganforensics.errors import RunExistsError
from ganforensics.io import lock
from ganforensics.io.runs import RunFolder
from ganforensics.seeding import seed_everything
from ganforensics.study.config import defaults
from ganforensics.study.context import (
    ONE_CLASS,
    StudyContext,
    detector_id,
    detector_runs,
    enabled_detectors,
    lskd_enabled,
)
from ganforensics.study.data_stages import (
    make_fakes_stage,
    make_gan_stage,
    make_sim_fakes_stage,
    make_simulator_stage,
    stage_patches,
)
from ganforensics.study.detector_stages import (
    make_detector_stage,
    make_robustness_stage,
    stage_bypass,
    stage_detection,
    stage_grayscale,
    stage_jpeg96,
)
from ganforensics.study.explain_stages import stage_explain
from ganforensics.study.lskd_stages import stage_lskd
from ganforensics.study.measure_stages import stage_quality, stage_spectra
from ganforensics.study.one_class_stages import one_class_needs, stage_one_class
from ganforensics.study.report import write_report
from ganforensics.study.setups import study_setups
from ganforensics.study.stages import Stage, StageResult, run_stages

# folders the pipeline writes; --force removes exactly these (never anything else)
OWNED_DIRS = ("stages", "logs", "data", "gans", "simulators", "fakes", "figures", "detectors",
              "tables", "eval")
OWNED_FILES = ("report.html", "results.json")
SEED_DIR = re.compile(r"seed-\d+")
"""Sub-folders of a multi-seed run (`study.seeds`), also removed by --force."""


def build_stages(cfg: Mapping[str, Any]) -> list[Stage]:
    """The ordered stage list for a resolved config."""
    stages = [Stage("patches", stage_patches, title="cut real patches")]
    setups = cfg["gan"]["setups"]
    if "sampled" in cfg["fakes"]["arms"]:
        stages += [make_gan_stage(s) for s in setups]
        stages += [make_fakes_stage(s) for s in setups]
    if "simulated" in cfg["fakes"]["arms"]:
        stages += [make_simulator_stage(s) for s in setups]
        stages += [make_sim_fakes_stage(s) for s in setups]
    all_fakes = tuple(f"fakes-{s['name']}" for s in study_setups(cfg))
    stages.append(Stage("quality", stage_quality, needs=all_fakes, title="FID / KID per setup"))
    stages.append(Stage("spectra", stage_spectra, needs=all_fakes, title="spectra per setup"))
    kinds = enabled_detectors(cfg)
    runs = detector_runs(cfg)
    stages += [make_detector_stage(kind, ts, detector_id(kind, ts, cfg),
                                   needs=(f"fakes-{ts}",) + one_class_needs(cfg, kind))
               for ts, kind in runs]
    det_stages = tuple(f"detector-{detector_id(k, ts, cfg)}" for ts, k in runs)
    if kinds:
        stages.append(Stage("detection", stage_detection, needs=all_fakes + det_stages,
                            title="evaluate every detector on every setup"))
    if ONE_CLASS in kinds:
        stages.append(Stage("one-class", stage_one_class,
                            needs=all_fakes + one_class_needs(cfg, ONE_CLASS),
                            title="one-class detector: DOPING vs baselines, false positives"))
    if lskd_enabled(cfg):
        stages.append(Stage("lskd", stage_lskd, needs=all_fakes,
                            title="LS-KD: label-smoothed teachers, students at each T"))
    if cfg["bypass"]["enabled"]:
        stages.append(Stage("bypass", stage_bypass, needs=all_fakes,
                            title="bypass detection rates"))
    if cfg["evaluate"]["jpeg96"] and kinds:
        first = tuple(f"detector-{k}" for k in kinds)  # the first training setup's detectors
        stages.append(Stage("jpeg96", stage_jpeg96, needs=all_fakes + first,
                            title="JPEG-96 control of every detector"))
    if "npr" in kinds and cfg["evaluate"]["robustness"]:
        stages.append(make_robustness_stage("npr", all_fakes + ("detector-npr",)))
    if "cnn" in kinds:
        cnn_needs = all_fakes + ("detector-cnn",)  # the first training setup's CNN
        if cfg["evaluate"]["robustness"]:
            stages.append(make_robustness_stage("cnn", cnn_needs))
        if cfg["evaluate"]["grayscale"]:
            stages.append(Stage("grayscale", stage_grayscale, needs=cnn_needs,
                                title="CNN grayscale (colour-ablation) check"))
        if cfg["explain"]["enabled"]:
            stages.append(Stage("explain", stage_explain, needs=cnn_needs,
                                title="FF-RS and feature-map masking"))
    return stages


def is_study_run(path: Path) -> bool:
    """True when `path/config.yaml` is a resolved study config (by its top-level keys)."""
    try:
        saved = yaml.safe_load((path / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return False
    # a subset: a run saved before a top-level key (e.g. `simulator`) was added still counts
    return (isinstance(saved, dict) and set(saved) <= set(defaults())
            and {"seed", "data", "gan", "detectors"} <= set(saved))


def clear_owned(path: Path) -> None:
    """Remove the folders and files a previous study wrote (used with --force).

    Only in a folder that holds a study run; anything else there is left alone.
    """
    if not is_study_run(path):
        if any(p.name != lock.LOCK_NAME for p in path.iterdir()):
            raise RunExistsError(
                f"{path}: not empty and not a study run folder; --force only replaces study "
                "runs, choose another --out"
            )
        return
    for name in OWNED_DIRS:
        p = path / name
        if p.is_dir():
            shutil.rmtree(p)
    for name in OWNED_FILES:
        (path / name).unlink(missing_ok=True)
    for p in path.iterdir():
        if p.is_dir() and SEED_DIR.fullmatch(p.name) and is_study_run(p):
            lock.acquire(p)  # never remove a seed's study another process is running
            try:
                shutil.rmtree(p)
            finally:
                lock.release(p)


def open_run(out: str | Path, cfg: dict[str, Any], *, force: bool = False) -> RunFolder:
    """The locked run folder of a study: resumed when its config is `cfg`, refused when it
    differs unless `force` (which first clears the study's own folders and files)."""
    out = Path(out)
    if force and out.is_dir():
        lock.acquire(out)  # before clearing: never clear what another running study writes
        try:
            clear_owned(out)
            return RunFolder.create(out, cfg, seed=int(cfg["seed"]), device="cpu", force=force,
                                    resume=True)
        finally:
            lock.release(out)  # the run folder holds its own count of the lock
    return RunFolder.create(out, cfg, seed=int(cfg["seed"]), device="cpu", force=force,
                            resume=True)


def run_study(
    cfg: dict[str, Any],
    out: str | Path,
    *,
    force: bool = False,
    stop_after: str | None = None,
    stages: list[Stage] | None = None,
) -> tuple[Path, list[StageResult]]:
    """Run (or resume) the study into `out`; returns the report path and the stage results.

    Rerunning with the same config resumes; a different config is refused unless `force`
    (which clears the study's own folders first).
    """
    run = open_run(out, cfg, force=force)
    with run:
        ctx = StudyContext(run, cfg)
        seed_everything(int(cfg["seed"]))
        stage_list = stages if stages is not None else build_stages(cfg)
        results = run_stages(run, stage_list, ctx, stop_after=stop_after)
        report = write_report(run, cfg, stage_results=results)
    return report, results

