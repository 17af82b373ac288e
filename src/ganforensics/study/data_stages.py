"""Study stages that make the data: real patches, one GAN per setup, and its fakes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ganforensics import console
from ganforensics.console import progress_enabled
from ganforensics.data.manifest import split_of, usable, write_manifest
from ganforensics.data.photos import make_patches
from ganforensics.errors import InputError
from ganforensics.gan.config import GanConfig, preset
from ganforensics.gan.data import load_training_images
from ganforensics.gan.generate import generate
from ganforensics.gan.reconstruct import reconstruct
from ganforensics.gan.shipped import (
    PROVENANCE,
    find_shipped,
    generator_recipe,
    install_shipped,
    shipped_unfit,
)
from ganforensics.gan.simulate import train_simulator
from ganforensics.gan.simulator import SimulatorConfig
from ganforensics.gan.train import train_gan
from ganforensics.seeding import derive_seed
from ganforensics.study.context import SPLITS, StudyContext, subsample
from ganforensics.study.setups import may_ship_gan, sim_name, simulator_overrides, uses_shipped
from ganforensics.study.stages import Stage

REAL_MANIFEST = "data/real.csv"


def fake_manifest_file(setup: str) -> str:
    """Run-folder path of a setup's fake manifest."""
    return f"fakes/{setup}/manifest.csv"


def stage_patches(ctx: StudyContext) -> dict[str, Any]:
    """Real patches cut from the source photos, split by photo (`data/real.csv`)."""
    dcfg = ctx.cfg["data"]
    # force: the patch folder belongs to this stage (a rerun after an interruption redoes it)
    df = make_patches(ctx.path / "data" / "patches", size=dcfg["size"],
                      sources=dcfg["sources"], seed=ctx.seed, force=True)
    df = usable(df)
    df = subsample(df, dcfg["max_patches"], derive_seed(ctx.seed, "max_patches"))
    for split in SPLITS:
        if (df["split"].astype(str) == split).sum() == 0:
            raise InputError(f"real patches: split {split!r} is empty (too few source photos?)")
    write_manifest(df, ctx.path / REAL_MANIFEST)
    counts = df["split"].astype(str).value_counts().to_dict()
    sources = {s: int(df.loc[df["split"].astype(str) == s, "source"].nunique()) for s in SPLITS}
    return {"n_real": {s: int(counts.get(s, 0)) for s in SPLITS}, "sources": sources,
            "file": REAL_MANIFEST}


def gan_config(ctx: StudyContext, setup: Mapping[str, Any]) -> GanConfig:
    """The GanConfig of one setup: its preset with the study's size, steps and seed."""
    g = ctx.cfg["gan"]
    return preset(
        setup["preset"],
        last_block=setup["last_block"],
        size=ctx.cfg["data"]["size"],
        steps=int(setup.get("steps", g["steps"])),
        batch=g["batch_size"],
        checkpoint_every=g["checkpoint_every"],
        sample_every=g["checkpoint_every"],
        seed=derive_seed(ctx.seed, "gan", setup["name"]) % 2**31,
        objectives=tuple(setup.get("objectives", ())),
        objective_params=setup.get("objective_params", {}),
        augment=tuple(g["augment"] or ()),
        ema=float(g["ema"]),
        d_depth=int(g["d_depth"]),
        n_d=g["n_d"],  # None keeps the preset's
    )


def make_gan_stage(setup: Mapping[str, Any]) -> Stage:
    """Train (or resume) the GAN of one setup on the train split of the real patches."""
    name = setup["name"]

    def _run(ctx: StudyContext) -> dict[str, Any]:
        config = gan_config(ctx, setup)
        real = ctx.real_manifest()
        data = split_of(real, "train")
        out = ctx.path / "gans" / name
        if may_ship_gan(ctx.cfg, setup):
            shipped, why_not = _fitting_shipped(config.last_block, config.size, data, real,
                                                kind="gen")
            if shipped is not None:
                install_shipped(shipped, out)
                prov = json.loads((shipped / PROVENANCE).read_text())
                recipe = generator_recipe(json.loads((out / "generator.json").read_text()))
                console.info(f"GAN {name}: the shipped generator {shipped.name} ({recipe}; "
                             "--train-gans trains one instead)")
                return {"run_dir": f"gans/{name}", "setup": dict(setup),
                        "shipped": shipped.name, "steps": prov["steps"], "recipe": recipe}
            console.info(f"GAN {name}: not using a shipped generator ({why_not}); training one")
        run_dir = train_gan(config, data, out, resume=True, progress=progress_enabled())
        return {"run_dir": str(Path(run_dir).relative_to(ctx.path)), "setup": dict(setup)}

    return Stage(f"gan-{name}", _run, needs=("patches",), title=f"train GAN {name}")


def fake_counts(ctx: StudyContext, setup_name: str) -> dict[str, int]:
    """How many fakes a setup needs per split (train/val only for the setups that use them:
    the detectors' training setups, every setup with `detectors.lskd` on)."""
    f = ctx.cfg["fakes"]
    counts = {"test": f["n_test"]}
    if setup_name in ctx.fake_train_setups():
        counts.update(train=f["n_train"], val=f["n_val"])
    return counts


def make_fakes_stage(setup: Mapping[str, Any]) -> Stage:
    """Generate one setup's fakes per split (`fakes/<setup>/manifest.csv`)."""
    name = setup["name"]

    def _run(ctx: StudyContext) -> dict[str, Any]:
        run_dir = ctx.path / "gans" / name
        frames = []
        for split, n in fake_counts(ctx, name).items():
            # disjoint seed streams per setup and split
            seed = derive_seed(ctx.seed, "fakes", name, split) % 2**31
            # force: a rerun replaces what an interrupted run of this stage left behind
            df = generate(run_dir, n, ctx.path / "fakes" / name / split, seed=seed, split=split,
                          progress=progress_enabled(), force=True)
            df = df.copy()
            df["split"] = split
            df["generator"] = name
            df["label"] = 1
            df["source"] = f"{name}:{split}:seed={seed}"
            frames.append(df)
        out = pd.concat(frames, ignore_index=True)
        write_manifest(out, ctx.path / fake_manifest_file(name))
        return {"n_fake": out["split"].value_counts().to_dict(),
                "file": fake_manifest_file(name)}

    return Stage(f"fakes-{name}", _run, needs=(f"gan-{name}",), title=f"generate {name} fakes")


def simulator_config(ctx: StudyContext, setup: Mapping[str, Any]) -> SimulatorConfig:
    """The simulator of one setup's last block: the library defaults, the study's size, seed
    and the non-null `simulator:` keys."""
    return SimulatorConfig(last_block=setup["last_block"], size=ctx.cfg["data"]["size"],
                           seed=derive_seed(ctx.seed, "simulator", setup["name"]) % 2**31,
                           **simulator_overrides(ctx.cfg))


def _fitting_shipped(last_block: str, size: int, train: pd.DataFrame, real: pd.DataFrame,
                     kind: str = "sim") -> tuple[Path | None, str]:
    """The shipped model of `kind` (`sim`: a simulator, `gen`: a generator) that may stand in
    for one trained on `train`, or None and why not."""
    shipped = find_shipped(last_block, size, kind=kind)
    if shipped is None:
        return None, f"none ships for {last_block} at {size} px"
    held_out = real[real["split"].astype(str).isin(["val", "test"])]
    stack, _ = load_training_images(train, size)  # what training would learn from
    why_not = shipped_unfit(shipped, list(stack), held_out)
    return (None, why_not) if why_not else (shipped, "")


def simulator_dir(setup: str) -> str:
    """Run-folder path of the simulator run of GAN setup `setup`."""
    return f"simulators/{setup}"


def make_simulator_stage(setup: Mapping[str, Any]) -> Stage:
    """Train (or resume) the up-sampling simulator of one setup's last block on the train
    split of the real patches (`simulators/<setup>/`)."""
    name = setup["name"]

    def _run(ctx: StudyContext) -> dict[str, Any]:
        config = simulator_config(ctx, setup)
        real = ctx.real_manifest()
        data = split_of(real, "train")
        run_path = ctx.path / simulator_dir(name)
        if uses_shipped(ctx.cfg):
            shipped, why_not = _fitting_shipped(config.last_block, config.size, data, real)
            if shipped is not None:
                install_shipped(shipped, run_path)
                prov = json.loads((shipped / PROVENANCE).read_text())
                console.info(f"simulator of {name}: the shipped one ({shipped.name}, "
                             f"{prov['steps']} steps; --train-simulators trains one instead)")
                return {"run_dir": simulator_dir(name), "shipped": shipped.name,
                        "steps": prov["steps"], "last_block": config.last_block}
            console.info(f"simulator of {name}: not using the shipped one ({why_not}); "
                         "training one")
        run_dir = train_simulator(config, data, run_path, resume=True,
                                  progress=progress_enabled())
        return {"run_dir": str(Path(run_dir).relative_to(ctx.path)), "steps": config.steps,
                "last_block": config.last_block}

    return Stage(f"simulator-{name}", _run, needs=("patches",),
                 title=f"train the up-sampling simulator of {name} (last block "
                       f"{setup['last_block']})")


def make_sim_fakes_stage(setup: Mapping[str, Any]) -> Stage:
    """Reconstruct every real patch (train, val and test) with one setup's simulator into
    `fakes/sim-<setup>/`: each fake keeps its source's split and names it (`source_path`)."""
    name, fake_name = setup["name"], sim_name(setup["name"])

    def _run(ctx: StudyContext) -> dict[str, Any]:
        out_dir = ctx.path / "fakes" / fake_name
        # force: a rerun replaces what an interrupted run of this stage left behind
        df = reconstruct(ctx.path / simulator_dir(name), ctx.real_manifest(), out_dir,
                         force=True, progress=progress_enabled())
        df = usable(df).copy()  # an error row's path is its source's: never a fake
        df["generator"] = fake_name  # the study's setup name (the library's is sim-<BLOCK>)
        write_manifest(df, ctx.path / fake_manifest_file(fake_name))
        return {"n_fake": df["split"].astype(str).value_counts().to_dict(),
                "psnr_db": round(float(df["psnr_db"].mean()), 3),
                "file": fake_manifest_file(fake_name)}

    return Stage(f"fakes-{fake_name}", _run, needs=(f"simulator-{name}",),
                 title=f"reconstruct the real patches with the {name} simulator")
