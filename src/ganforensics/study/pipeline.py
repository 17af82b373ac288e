"""The study pipeline: real patches -> GANs -> fakes -> FID/KID -> spectra -> detectors ->
evaluation (AP/accuracy, bypass, robustness, grayscale) -> explanations -> report.

Each stage writes its results as files in the run folder and a marker `stages/<name>.done`;
rerunning the same command skips finished stages (GAN training resumes from its checkpoints).
A stage whose library function is missing or fails is reported as failed; nothing is faked.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ganforensics.console import info, progress_enabled
from ganforensics.data.manifest import read_manifest, usable, write_manifest
from ganforensics.errors import InputError
from ganforensics.io.atomic import save_png_atomic
from ganforensics.io.images import iter_images
from ganforensics.io.runs import RunFolder
from ganforensics.seeding import derive_seed, seed_everything
from ganforensics.study.stages import Stage, StageResult, require, run_stages

SPLITS = ("train", "val", "test")
# folders the pipeline writes; --force removes exactly these (never anything else)
OWNED_DIRS = ("stages", "logs", "data", "gans", "fakes", "figures", "detectors", "tables", "eval")
DETECTOR_KEYS = {"spectral-decay": "spectral_decay", "spectral-profile": "spectral_profile",
                 "cnn": "cnn"}


@dataclass
class StudyContext:
    """What every stage gets: the run folder and the resolved config."""

    run: RunFolder
    cfg: dict[str, Any]

    @property
    def path(self) -> Path:
        return self.run.path

    @property
    def seed(self) -> int:
        return int(self.cfg["seed"])

    def setups(self) -> list[dict[str, Any]]:
        return list(self.cfg["gan"]["setups"])

    def real_manifest(self) -> pd.DataFrame:
        return read_manifest(self.path / "data" / "real.csv")

    def fake_manifest(self, setup: str) -> pd.DataFrame:
        return read_manifest(self.path / "fakes" / setup / "manifest.csv")

    def detector_dir(self, name: str) -> Path:
        return self.path / "detectors" / name

    def enabled_detectors(self) -> list[str]:
        det = self.cfg["detectors"]
        return [name for name, key in DETECTOR_KEYS.items() if det[key]["enabled"]]


# ---------------------------------------------------------------- helpers


def load_stack(df: pd.DataFrame, what: str) -> np.ndarray:
    """Decode the images of a manifest into an (N, H, W, 3) uint8 stack (bad files skipped)."""
    arrays: list[np.ndarray] = []
    bad = 0
    for _, arr, _err in iter_images(list(df["abspath"]), workers=2):
        if arr is None:
            bad += 1
            continue
        arrays.append(arr)
    if bad:
        info(f"{what}: {bad} unreadable image(s) skipped")
    if not arrays:
        raise InputError(f"{what}: no readable images")
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise InputError(f"{what}: images differ in size ({sorted(shapes)[:3]} ...)")
    return np.stack(arrays)


def image_grid(stack: np.ndarray, n: int, scale: int = 2) -> np.ndarray:
    """An n x n grid (1 px gaps) of the first n*n images, enlarged `scale` x (nearest)."""
    k = min(len(stack), n * n)
    cols = min(n, k)
    rows = int(np.ceil(k / cols))
    h, w = stack.shape[1:3]
    grid = np.full((rows * (h + 1) + 1, cols * (w + 1) + 1, 3), 255, np.uint8)
    for i in range(k):
        r, c = divmod(i, cols)
        grid[1 + r * (h + 1): 1 + r * (h + 1) + h, 1 + c * (w + 1): 1 + c * (w + 1) + w] = stack[i]
    return np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)


def _split(df: pd.DataFrame, split: str) -> pd.DataFrame:
    return df[df["split"].astype(str) == split]


def _subsample(df: pd.DataFrame, cap: int | None, seed: int) -> pd.DataFrame:
    """At most `cap` rows, keeping each split's share (deterministic)."""
    if cap is None or len(df) <= cap:
        return df
    parts = []
    for split, part in df.groupby("split", sort=True):
        k = max(1, round(cap * len(part) / len(df)))
        state = derive_seed(seed, split) % 2**32
        parts.append(part.sample(n=min(k, len(part)), random_state=state))
    return pd.concat(parts).sort_index()


def study_test_set(ctx: StudyContext) -> pd.DataFrame:
    """Test reals + the test fakes of every setup (the evaluation set of every detector)."""
    frames = [_split(ctx.real_manifest(), "test")]
    frames += [_split(ctx.fake_manifest(s["name"]), "test") for s in ctx.setups()]
    return pd.concat(frames, ignore_index=True)


def train_val_sets(ctx: StudyContext) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train / val sets of the detectors: reals + the training setup's fakes of that split."""
    real = ctx.real_manifest()
    fake = ctx.fake_manifest(ctx.cfg["detectors"]["train_setup"])
    train = pd.concat([_split(real, "train"), _split(fake, "train")], ignore_index=True)
    val = pd.concat([_split(real, "val"), _split(fake, "val")], ignore_index=True)
    return train, val


# ---------------------------------------------------------------- stages: data and GANs


def stage_patches(ctx: StudyContext) -> dict[str, Any]:
    make_patches = require("ganforensics.data.photos", "make_patches")
    dcfg = ctx.cfg["data"]
    df = make_patches(ctx.path / "data" / "patches", size=dcfg["size"],
                      sources=dcfg["sources"], seed=ctx.seed)
    df = usable(df)
    df = _subsample(df, dcfg["max_patches"], derive_seed(ctx.seed, "max_patches"))
    for split in SPLITS:
        if (df["split"].astype(str) == split).sum() == 0:
            raise InputError(f"real patches: split {split!r} is empty (too few source photos?)")
    write_manifest(df, ctx.path / "data" / "real.csv")
    counts = df["split"].astype(str).value_counts().to_dict()
    sources = {s: int(df.loc[df["split"].astype(str) == s, "source"].nunique()) for s in SPLITS}
    return {"n_real": {s: int(counts.get(s, 0)) for s in SPLITS}, "sources": sources,
            "file": "data/real.csv"}


def gan_config(ctx: StudyContext, setup: Mapping[str, Any]) -> Any:
    """The GanConfig of one setup: its preset with the study's size, steps and seed."""
    import dataclasses

    preset = require("ganforensics.gan.config", "preset")
    base = preset(setup["preset"])
    g = ctx.cfg["gan"]
    wanted = {
        "last_block": setup["last_block"],
        "size": ctx.cfg["data"]["size"],
        "steps": int(setup.get("steps", g["steps"])),
        "batch_size": g["batch_size"],
        "checkpoint_every": g["checkpoint_every"],
        "seed": derive_seed(ctx.seed, "gan", setup["name"]) % 2**31,
    }
    names = {f.name for f in dataclasses.fields(base)}
    missing = [k for k in wanted if k not in names]
    if missing:
        raise TypeError(f"GanConfig has no field(s) {missing}; the study cannot set them")
    return dataclasses.replace(base, **wanted)


def make_gan_stage(setup: Mapping[str, Any]) -> Stage:
    name = setup["name"]

    def _run(ctx: StudyContext) -> dict[str, Any]:
        train_gan = require("ganforensics.gan.train", "train_gan")
        config = gan_config(ctx, setup)
        data = _split(ctx.real_manifest(), "train")
        out = ctx.path / "gans" / name
        run_dir = train_gan(config, data, out, resume=True, progress=progress_enabled())
        return {"run_dir": str(Path(run_dir).relative_to(ctx.path)), "setup": dict(setup)}

    return Stage(f"gan-{name}", _run, needs=("patches",), title=f"train GAN {name}")


def fake_counts(ctx: StudyContext, setup_name: str) -> dict[str, int]:
    """How many fakes a setup needs per split (train/val only for the detectors' setup)."""
    f = ctx.cfg["fakes"]
    counts = {"test": f["n_test"]}
    if setup_name == ctx.cfg["detectors"]["train_setup"]:
        counts.update(train=f["n_train"], val=f["n_val"])
    return counts


def make_fakes_stage(setup: Mapping[str, Any]) -> Stage:
    name = setup["name"]

    def _run(ctx: StudyContext) -> dict[str, Any]:
        generate = require("ganforensics.gan.generate", "generate")
        run_dir = ctx.path / "gans" / name
        frames = []
        for split, n in fake_counts(ctx, name).items():
            # disjoint seed streams per setup and split
            seed = derive_seed(ctx.seed, "fakes", name, split) % 2**31
            df = generate(run_dir, n, ctx.path / "fakes" / name / split, seed=seed)
            df = df.copy()
            df["split"] = split
            df["generator"] = name
            df["label"] = 1
            df["source"] = f"{name}:{split}:seed={seed}"
            frames.append(df)
        out = pd.concat(frames, ignore_index=True)
        write_manifest(out, ctx.path / "fakes" / name / "manifest.csv")
        return {"n_fake": out["split"].value_counts().to_dict(),
                "file": f"fakes/{name}/manifest.csv"}

    return Stage(f"fakes-{name}", _run, needs=(f"gan-{name}",), title=f"generate {name} fakes")


# ---------------------------------------------------------------- stages: quality and spectra


def stage_quality(ctx: StudyContext) -> dict[str, Any]:
    """FID and KID of each setup's test fakes against the held-out (val + test) reals."""
    frechet_distance = require("ganforensics.metrics.fid", "frechet_distance")
    kid = require("ganforensics.metrics.kid", "kid")
    get_extractor = require("ganforensics.metrics.features", "get_extractor")
    q = ctx.cfg["quality"]
    extractor = get_extractor(q["extractor"])
    real = ctx.real_manifest()
    held = real[real["split"].astype(str).isin(["val", "test"])]
    real_stack = load_stack(held, "held-out reals")
    real_feat = np.asarray(extractor(real_stack), dtype=np.float64)
    mu_r, s_r = real_feat.mean(0), np.cov(real_feat, rowvar=False)
    save_png_atomic(ctx.run.file("figures/grid_real.png"), image_grid(real_stack, q["grid"]))
    rows = []
    for s in ctx.setups():
        fake_stack = load_stack(_split(ctx.fake_manifest(s["name"]), "test"), s["name"])
        feat = np.asarray(extractor(fake_stack), dtype=np.float64)
        fid = frechet_distance(mu_r, s_r, feat.mean(0), np.cov(feat, rowvar=False))
        size = min(q["kid_subset_size"], len(feat), len(real_feat))
        k_mean, k_std = kid(real_feat, feat, subsets=q["kid_subsets"], subset_size=size,
                            seed=derive_seed(ctx.seed, "kid", s["name"]) % 2**31)
        rows.append({"setup": s["name"], "fid": float(fid), "kid_mean": float(k_mean),
                     "kid_std": float(k_std), "n_real": len(real_feat), "n_fake": len(feat),
                     "feature_dim": int(feat.shape[1])})
        save_png_atomic(ctx.run.file(f"figures/grid_{s['name']}.png"),
                        image_grid(fake_stack, q["grid"]))
    table = pd.DataFrame(rows)
    ext_name = str(getattr(extractor, "name", type(extractor).__name__))
    standard = bool(getattr(extractor, "standard", False))
    table["extractor"] = ext_name
    table["standard_extractor"] = standard
    ctx.run.write_csv("tables/quality.csv", table)
    return {"file": "tables/quality.csv", "extractor": ext_name, "standard": standard}


def spectral_discrepancy(real_profiles: np.ndarray, fake_profiles: np.ndarray,
                         top_fraction: float = 0.25) -> float:
    """Mean |mean fake profile - mean real profile| over the top `top_fraction` of the bins."""
    diff = np.abs(fake_profiles.mean(0) - real_profiles.mean(0))
    k = max(1, int(round(len(diff) * top_fraction)))
    return float(diff[-k:].mean())


def stage_spectra(ctx: StudyContext) -> dict[str, Any]:
    durall_profiles = require("ganforensics.spectral.spectra", "durall_profiles")
    mean_log_spectrum = require("ganforensics.spectral.spectra", "mean_log_spectrum")
    from ganforensics.study import figures

    frac = ctx.cfg["spectra"]["top_fraction"]
    real = _split(ctx.real_manifest(), "test")
    stacks = {"real": load_stack(real, "test reals")}
    for s in ctx.setups():
        stacks[s["name"]] = load_stack(_split(ctx.fake_manifest(s["name"]), "test"), s["name"])
    profiles = {k: np.asarray(durall_profiles(v), dtype=np.float64) for k, v in stacks.items()}
    rows, prof_rows = [], []
    for k, p in profiles.items():
        n_bins = p.shape[1]
        for j in range(n_bins):
            prof_rows.append({"group": k, "bin": j, "freq": (j + 1) / n_bins,
                              "mean": float(p[:, j].mean()), "std": float(p[:, j].std())})
        if k != "real":
            rows.append({"setup": k, "discrepancy": spectral_discrepancy(profiles["real"], p, frac),
                         "top_fraction": frac, "n_real": len(profiles["real"]), "n_fake": len(p),
                         "profile": "durall"})
    ctx.run.write_csv("tables/spectra.csv", pd.DataFrame(rows))
    ctx.run.write_csv("tables/spectra_profiles.csv", pd.DataFrame(prof_rows))
    figures.save_profiles_plot(profiles, ctx.run.file("figures/spectra.png"))
    heat = {k: np.asarray(mean_log_spectrum(v)) for k, v in stacks.items()}
    figures.save_heatmaps(heat, ctx.run.file("figures/spectra_2d.png"))
    return {"file": "tables/spectra.csv"}


# ---------------------------------------------------------------- stages: detectors


def make_detector_stage(kind: str) -> Stage:
    def _run(ctx: StudyContext) -> dict[str, Any]:
        train, val = train_val_sets(ctx)
        dcfg = ctx.cfg["detectors"][DETECTOR_KEYS[kind]]
        seed = derive_seed(ctx.seed, "detector", kind) % 2**31
        out = ctx.detector_dir(kind)
        if kind == "cnn":
            train_cnn = require("ganforensics.detectors.cnn", "train_cnn_detector")
            seed_everything(seed)
            det = train_cnn(dcfg["arch"], dcfg["recipe"], train, val, out, seed=seed,
                            epochs=dcfg["epochs"], batch_size=dcfg["batch_size"])
        else:
            train_spec = require("ganforensics.detectors.spectral", "train_spectral_detector")
            det = train_spec(kind, train, val, classifier=dcfg["classifier"], seed=seed)
        det.save(out)
        return {"dir": str(out.relative_to(ctx.path)), "threshold": float(det.threshold),
                "n_train": len(train), "n_val": len(val)}

    return Stage(f"detector-{kind}", _run, title=f"train the {kind} detector")


def load_study_detector(ctx: StudyContext, kind: str) -> Any:
    load_detector = require("ganforensics.detectors.base", "load_detector")
    return load_detector(ctx.detector_dir(kind))


def stage_detection(ctx: StudyContext) -> dict[str, Any]:
    """AP / AUC / accuracies of every detector on every setup's test fakes vs the test reals."""
    evaluate_detector = require("ganforensics.evaluate.detection", "evaluate_detector")
    test = study_test_set(ctx)
    frames = []
    for kind in ctx.enabled_detectors():
        det = load_study_detector(ctx, kind)
        res = evaluate_detector(det, test, out=ctx.path / "eval" / kind)
        table = _per_generator_table(res)
        table.insert(0, "detector", kind)
        frames.append(table)
    table = pd.concat(frames, ignore_index=True)
    ctx.run.write_csv("tables/detection.csv", table)
    return {"file": "tables/detection.csv", "n_test": len(test)}


def _per_generator_table(res: Any) -> pd.DataFrame:
    """The per-generator table out of what `evaluate_detector` returns."""
    if isinstance(res, pd.DataFrame):
        return res.reset_index(drop=True)
    for attr in ("per_generator", "table"):
        val = getattr(res, attr, None)
        if isinstance(val, pd.DataFrame):
            return val.reset_index(drop=True)
        if isinstance(res, Mapping) and isinstance(res.get(attr), pd.DataFrame):
            return res[attr].reset_index(drop=True)
    raise TypeError(f"evaluate_detector returned {type(res).__name__}; no per-generator table")


def stage_bypass(ctx: StudyContext) -> dict[str, Any]:
    """DESIGN B2: train on n real + n BASELINE fakes, detection rate on each setup's fakes."""
    bypass_rates = require("ganforensics.evaluate.bypass", "bypass_rates")
    b = ctx.cfg["bypass"]
    train_setup = ctx.cfg["detectors"]["train_setup"]
    real = ctx.real_manifest()
    fakes = {s["name"]: ctx.fake_manifest(s["name"]) for s in ctx.setups()}
    table = bypass_rates(
        real_train=_split(real, "train"),
        fake_train=_split(fakes[train_setup], "train"),
        test_fakes={k: _split(v, "test") for k, v in fakes.items()},
        n_train=b["n_train"], draws=b["draws"], seed=derive_seed(ctx.seed, "bypass") % 2**31,
    )
    table = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)
    ctx.run.write_csv("tables/bypass.csv", table)
    return {"file": "tables/bypass.csv"}


def stage_robustness(ctx: StudyContext) -> dict[str, Any]:
    """The CNN's robustness grid (perturbed test sets, threshold from clean validation data)."""
    evaluate_detector = require("ganforensics.evaluate.detection", "evaluate_detector")
    det = load_study_detector(ctx, "cnn")
    test = study_test_set(ctx)
    res = evaluate_detector(det, test, grid=ctx.cfg["evaluate"]["grid"],
                            out=ctx.path / "eval" / "cnn-robustness")
    table = _robustness_table(res)
    ctx.run.write_csv("tables/robustness.csv", table)
    return {"file": "tables/robustness.csv"}


def _robustness_table(res: Any) -> pd.DataFrame:
    for attr in ("robustness", "grid"):
        val = res.get(attr) if isinstance(res, Mapping) else getattr(res, attr, None)
        if isinstance(val, pd.DataFrame):
            return val.reset_index(drop=True)
    if isinstance(res, pd.DataFrame) and "perturbation" in res.columns:
        return res.reset_index(drop=True)
    raise TypeError(f"evaluate_detector returned {type(res).__name__}; no robustness table")


def stage_grayscale(ctx: StudyContext) -> dict[str, Any]:
    """Colour ablation: the CNN on grayscale test images with its RGB-calibrated threshold."""
    color_ablation = require("ganforensics.explain.color", "grayscale_ablation")
    det = load_study_detector(ctx, "cnn")
    table = color_ablation(det, study_test_set(ctx))
    table = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)
    ctx.run.write_csv("tables/grayscale.csv", table)
    return {"file": "tables/grayscale.csv"}


def stage_explain(ctx: StudyContext) -> dict[str, Any]:
    """FF-RS ranking on confidently detected fakes, then top-k vs random-k masking."""
    ffrs = require("ganforensics.explain.ffrs", "ffrs_ranking")
    masking = require("ganforensics.explain.mask", "masking_sensitivity")
    e = ctx.cfg["explain"]
    det = load_study_detector(ctx, "cnn")
    real, fake = train_val_sets(ctx)
    del real
    fakes = _split(fake, "val")
    fakes = fakes[fakes["label"] == 1].head(e["n_samples"])
    ranking = ffrs(det, fakes, seed=derive_seed(ctx.seed, "ffrs") % 2**31)
    ranking = ranking if isinstance(ranking, pd.DataFrame) else pd.DataFrame(ranking)
    ctx.run.write_csv("tables/ffrs_ranking.csv", ranking)
    table = masking(det, study_test_set(ctx), ranking, k=e["top_k"], draws=e["random_draws"],
                    seed=derive_seed(ctx.seed, "mask") % 2**31)
    table = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)
    ctx.run.write_csv("tables/masking.csv", table)
    return {"file": "tables/masking.csv", "ranking": "tables/ffrs_ranking.csv"}


# ---------------------------------------------------------------- assembly


def build_stages(cfg: Mapping[str, Any]) -> list[Stage]:
    """The ordered stage list for a resolved config."""
    stages = [Stage("patches", stage_patches, title="cut real patches")]
    setups = cfg["gan"]["setups"]
    stages += [make_gan_stage(s) for s in setups]
    stages += [make_fakes_stage(s) for s in setups]
    all_fakes = tuple(f"fakes-{s['name']}" for s in setups)
    train_fakes = (f"fakes-{cfg['detectors']['train_setup']}",)
    stages.append(Stage("quality", stage_quality, needs=all_fakes, title="FID / KID per setup"))
    stages.append(Stage("spectra", stage_spectra, needs=all_fakes, title="spectra per setup"))
    kinds = [k for k, key in DETECTOR_KEYS.items() if cfg["detectors"][key]["enabled"]]
    for kind in kinds:
        st = make_detector_stage(kind)
        st.needs = train_fakes
        stages.append(st)
    det_stages = tuple(f"detector-{k}" for k in kinds)
    if kinds:
        stages.append(Stage("detection", stage_detection, needs=all_fakes + det_stages,
                            title="evaluate every detector on every setup"))
    if cfg["bypass"]["enabled"]:
        stages.append(Stage("bypass", stage_bypass, needs=all_fakes,
                            title="bypass detection rates (DESIGN B2)"))
    if "cnn" in kinds:
        cnn_needs = all_fakes + ("detector-cnn",)
        if cfg["evaluate"]["robustness"]:
            stages.append(Stage("robustness", stage_robustness, needs=cnn_needs,
                                title="CNN robustness grid"))
        if cfg["evaluate"]["grayscale"]:
            stages.append(Stage("grayscale", stage_grayscale, needs=cnn_needs,
                                title="CNN grayscale check"))
        if cfg["explain"]["enabled"]:
            stages.append(Stage("explain", stage_explain, needs=cnn_needs,
                                title="FF-RS and feature-map masking"))
    return stages


def clear_owned(path: Path) -> None:
    """Remove the folders and files a previous study wrote (used with --force)."""
    for name in OWNED_DIRS:
        p = path / name
        if p.is_dir():
            shutil.rmtree(p)
    for name in ("report.html", "results.json"):
        (path / name).unlink(missing_ok=True)


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
    from ganforensics.study.report import write_report

    out = Path(out)
    if force and out.is_dir():
        clear_owned(out)
    run = RunFolder.create(out, cfg, seed=int(cfg["seed"]), device="cpu", force=force,
                           resume=True)
    ctx = StudyContext(run, cfg)
    seed_everything(int(cfg["seed"]))
    stage_list = stages if stages is not None else build_stages(cfg)
    results = run_stages(run, stage_list, ctx, stop_after=stop_after)
    report = write_report(run, cfg, stage_results=results)
    return report, results

