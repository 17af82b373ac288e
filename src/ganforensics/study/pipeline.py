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
from ganforensics.data.manifest import MANIFEST_COLUMNS, read_manifest, usable, write_manifest
from ganforensics.errors import InputError, RunExistsError
from ganforensics.io.atomic import save_png_atomic
from ganforensics.io.images import image_grid, iter_images
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
    return _common(frames)


def _common(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Reals and fakes in one frame with the manifest columns only; missing text cells as ""."""
    cols = [*MANIFEST_COLUMNS, "abspath"]
    df = pd.concat([f.reindex(columns=cols) for f in frames], ignore_index=True)
    for c in cols:
        if c not in ("label", "width", "height"):
            df[c] = df[c].astype(object).where(df[c].notna(), "").astype(str)
    df["label"] = df["label"].astype(int)
    return df


def train_val_sets(ctx: StudyContext) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train / val sets of the detectors: reals + the training setup's fakes of that split."""
    real = ctx.real_manifest()
    fake = ctx.fake_manifest(ctx.cfg["detectors"]["train_setup"])
    train = _common([_split(real, "train"), _split(fake, "train")])
    val = _common([_split(real, "val"), _split(fake, "val")])
    return train, val


# ---------------------------------------------------------------- stages: data and GANs


def stage_patches(ctx: StudyContext) -> dict[str, Any]:
    make_patches = require("ganforensics.data.photos", "make_patches")
    dcfg = ctx.cfg["data"]
    # force: the patch folder belongs to this stage (a rerun after an interruption redoes it)
    df = make_patches(ctx.path / "data" / "patches", size=dcfg["size"],
                      sources=dcfg["sources"], seed=ctx.seed, force=True)
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
    preset = require("ganforensics.gan.config", "preset")
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
    )


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
    compute_features = require("ganforensics.metrics.features", "compute_features")
    q = ctx.cfg["quality"]
    extractor = get_extractor(q["extractor"])
    real = ctx.real_manifest()
    held = real[real["split"].astype(str).isin(["val", "test"])]
    real_stack = load_stack(held, "held-out reals")
    real_feat = np.asarray(compute_features(real_stack, extractor), dtype=np.float64)
    mu_r, s_r = real_feat.mean(0), np.cov(real_feat, rowvar=False)
    n = q["grid"]
    save_png_atomic(ctx.run.file("figures/grid_real.png"),
                    image_grid(real_stack[: n * n], n, pad=1, fill=255, scale=2))
    rows = []
    for s in ctx.setups():
        fake_stack = load_stack(_split(ctx.fake_manifest(s["name"]), "test"), s["name"])
        feat = np.asarray(compute_features(fake_stack, extractor), dtype=np.float64)
        fid = frechet_distance(mu_r, s_r, feat.mean(0), np.cov(feat, rowvar=False))
        size = min(q["kid_subset_size"], len(feat), len(real_feat))
        k_mean, k_std = kid(real_feat, feat, subsets=q["kid_subsets"], subset_size=size,
                            seed=derive_seed(ctx.seed, "kid", s["name"]) % 2**31)
        rows.append({"setup": s["name"], "fid": float(fid), "kid_mean": float(k_mean),
                     "kid_std": float(k_std), "n_real": len(real_feat), "n_fake": len(feat),
                     "feature_dim": int(feat.shape[1])})
        save_png_atomic(ctx.run.file(f"figures/grid_{s['name']}.png"),
                        image_grid(fake_stack[: n * n], n, pad=1, fill=255, scale=2))
    table = pd.DataFrame(rows)
    ext_name = str(getattr(extractor, "label", type(extractor).__name__))
    standard = bool(getattr(extractor, "standard", False))
    table["extractor"] = ext_name
    table["standard_extractor"] = standard
    ctx.run.write_csv("tables/quality.csv", table)
    return {"file": "tables/quality.csv", "extractor": ext_name, "standard": standard}


def spectral_discrepancy(real_profiles: np.ndarray, fake_profiles: np.ndarray,
                         top_fraction: float = 0.25, *, signed: bool = False) -> float:
    """Mean |mean fake profile - mean real profile| over the top `top_fraction` of the bins
    (`signed=True`: the mean of the signed difference, > 0 = excess high-frequency energy)."""
    diff = fake_profiles.mean(0) - real_profiles.mean(0)
    k = max(1, int(round(len(diff) * top_fraction)))
    top = diff[-k:]
    return float(top.mean() if signed else np.abs(top).mean())


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
                         "signed_difference": spectral_discrepancy(profiles["real"], p, frac,
                                                                   signed=True),
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
            get_recipe = require("ganforensics.detectors.cnn.train", "get_recipe")
            recipe = get_recipe(dcfg["recipe"], monitor=dcfg["monitor"])
            seed_everything(seed)
            # resumes from its per-epoch checkpoint in `out` after an interruption
            det = train_cnn(dcfg["arch"], recipe, train, val, out, seed=seed,
                            max_epochs=dcfg["epochs"], batch_size=dcfg["batch_size"],
                            aug_prob=dcfg["aug_prob"],
                            progress=progress_enabled())
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


def load_images(df: pd.DataFrame, what: str) -> tuple[list[np.ndarray], pd.DataFrame]:
    """Decoded images and the manifest rows they belong to (unreadable rows dropped)."""
    images, keep = [], []
    for i, arr, _err in iter_images(list(df["abspath"]), workers=2):
        if arr is not None:
            images.append(arr)
            keep.append(i)
    if len(keep) < len(df):
        info(f"{what}: {len(df) - len(keep)} unreadable image(s) skipped")
    if not images:
        raise InputError(f"{what}: no readable images")
    return images, df.iloc[keep].reset_index(drop=True)


def _scores(det: Any, images: list[np.ndarray], rows: pd.DataFrame) -> pd.DataFrame:
    from ganforensics.detectors.base import sigmoid

    probs = sigmoid(np.asarray(det.logits(images), dtype=np.float64))
    return pd.DataFrame({"path": rows["abspath"].map(lambda a: Path(a).name),
                         "label": rows["label"].astype(int).to_numpy(),
                         "generator": rows["generator"].astype(str).to_numpy(),
                         "prob_fake": probs})


def stage_detection(ctx: StudyContext) -> dict[str, Any]:
    """AP / AUC / accuracies of every detector on every setup's test fakes vs the test reals.

    Scores are P(fake) from each detector; metrics per generator use the detector's threshold
    calibrated on the validation split (`metrics.detection.per_generator`).
    """
    per_generator = require("ganforensics.metrics.detection", "per_generator")
    images, rows = load_images(study_test_set(ctx), "test set")
    frames = []
    for kind in ctx.enabled_detectors():
        det = load_study_detector(ctx, kind)
        scores = _scores(det, images, rows)
        ctx.run.write_csv(f"eval/{kind}/scores.csv", scores)
        table = per_generator(scores, float(det.threshold))
        table.insert(0, "detector", kind)
        frames.append(table)
    table = pd.concat(frames, ignore_index=True)
    ctx.run.write_csv("tables/detection.csv", table)
    return {"file": "tables/detection.csv", "n_test": len(rows),
            "scores": [f"eval/{k}/scores.csv" for k in ctx.enabled_detectors()]}


def stage_bypass(ctx: StudyContext) -> dict[str, Any]:
    """DESIGN B2: train on n real + n training-setup fakes (random draws), detection rate on
    each other setup's test fakes; for each enabled spectral detector kind."""
    bypass_rates = require("ganforensics.evaluate.bypass", "bypass_rates")
    b = ctx.cfg["bypass"]
    train_setup = ctx.cfg["detectors"]["train_setup"]
    real, _ = load_images(_split(ctx.real_manifest(), "train"), "train reals")
    base, _ = load_images(_split(ctx.fake_manifest(train_setup), "train"), train_setup)
    others = {s["name"]: load_images(_split(ctx.fake_manifest(s["name"]), "test"),
                                      s["name"])[0]
              for s in ctx.setups() if s["name"] != train_setup}
    if not others:
        raise InputError("bypass needs at least one setup besides the training setup")
    frames = []
    for kind in ("spectral-decay", "spectral-profile"):
        dcfg = ctx.cfg["detectors"][DETECTOR_KEYS[kind]]
        if not dcfg["enabled"]:
            continue
        frames.append(bypass_rates(
            kind, np.stack(real), np.stack(base), {k: np.stack(v) for k, v in others.items()},
            n=b["n_train"], draws=b["draws"], classifier=dcfg["classifier"],
            seed=derive_seed(ctx.seed, "bypass", kind) % 2**31, baseline_name=train_setup,
        ))
    if not frames:
        raise InputError("bypass needs a spectral detector kind enabled")
    table = pd.concat(frames, ignore_index=True)
    ctx.run.write_csv("tables/bypass.csv", table)
    return {"file": "tables/bypass.csv"}


def stage_robustness(ctx: StudyContext) -> dict[str, Any]:
    """The CNN's robustness grid (perturbed test sets, threshold from clean validation data)."""
    evaluate_detector = require("ganforensics.evaluate.detection", "evaluate_detector")
    det = load_study_detector(ctx, "cnn")
    test = study_test_set(ctx)
    # force: this folder belongs to the stage (a rerun after an interruption redoes it)
    res = evaluate_detector(det, test, grid=ctx.cfg["evaluate"]["grid"],
                            out=ctx.path / "eval" / "cnn-robustness", force=True,
                            progress=progress_enabled())
    table = res["metrics"]
    ctx.run.write_csv("tables/robustness.csv", table)
    plot = ctx.path / "eval" / "cnn-robustness" / "robustness_ap.png"
    if plot.is_file():
        shutil.copyfile(plot, ctx.run.file("figures/robustness_ap.png"))
    return {"file": "tables/robustness.csv", "conditions": list(res["conditions"])}


def stage_grayscale(ctx: StudyContext) -> dict[str, Any]:
    """Colour ablation: the CNN on grayscale test images with its RGB-calibrated threshold."""
    per_generator = require("ganforensics.metrics.detection", "per_generator")
    grayscale = require("ganforensics.data.perturb", "grayscale")
    det = load_study_detector(ctx, "cnn")
    images, rows = load_images(study_test_set(ctx), "test set")
    frames = []
    for mode, imgs in (("rgb", images), ("gray", [grayscale(im) for im in images])):
        table = per_generator(_scores(det, imgs, rows), float(det.threshold))
        table.insert(1, "input", mode)
        frames.append(table)
    table = pd.concat(frames, ignore_index=True)
    ctx.run.write_csv("tables/grayscale.csv", table)
    return {"file": "tables/grayscale.csv"}


def stage_explain(ctx: StudyContext) -> dict[str, Any]:
    """FF-RS ranking on confidently detected validation fakes, then top-k / low-k / random-k
    masking on the test set, and the colour-conditional share of the top-k maps."""
    compute_ffrs = require("ganforensics.explain.ffrs", "compute_ffrs")
    masking_report = require("ganforensics.explain.masking", "masking_report")
    color_report = require("ganforensics.explain.color", "color_report")
    e = ctx.cfg["explain"]
    det = load_study_detector(ctx, "cnn")
    _, val = train_val_sets(ctx)
    fakes, _ = load_images(val[val["label"] == 1], "validation fakes")
    res = compute_ffrs(det, fakes, k=e["top_k"], max_samples=e["n_samples"],
                       seed=derive_seed(ctx.seed, "ffrs") % 2**31)
    ctx.run.write_csv("tables/ffrs_ranking.csv", res.ranking)
    images, rows = load_images(study_test_set(ctx), "test set")
    labels = rows["label"].astype(int).to_numpy()
    gens = rows["generator"].astype(str).to_numpy()
    table = masking_report(det, res.ranking, res.k, images, labels, gens,
                           draws=e["random_draws"], seed=derive_seed(ctx.seed, "mask") % 2**31)
    ctx.run.write_csv("tables/masking.csv", table)
    col = color_report(det, images, labels, gens, ranking=res.ranking, k=res.k)
    ctx.run.write_csv("tables/colour_maps.csv", col.maps)
    summary = {"ffrs": res.summary(), "colour": col.summary()}
    ctx.run.write_json("tables/explain_summary.json", summary)
    return {"file": "tables/masking.csv", "k": res.k, "n_samples": res.n_samples,
            "share_colour_conditional": col.share_colour_conditional}


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
                            title="bypass detection rates"))
    if "cnn" in kinds:
        cnn_needs = all_fakes + ("detector-cnn",)
        if cfg["evaluate"]["robustness"]:
            stages.append(Stage("robustness", stage_robustness, needs=cnn_needs,
                                title="CNN robustness grid"))
        if cfg["evaluate"]["grayscale"]:
            stages.append(Stage("grayscale", stage_grayscale, needs=cnn_needs,
                                title="CNN grayscale (colour-ablation) check"))
        if cfg["explain"]["enabled"]:
            stages.append(Stage("explain", stage_explain, needs=cnn_needs,
                                title="FF-RS and feature-map masking"))
    return stages


def is_study_run(path: Path) -> bool:
    """True when `path/config.yaml` is a resolved study config (its top-level keys)."""
    import yaml

    from ganforensics.study.config import defaults

    try:
        saved = yaml.safe_load((path / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(saved, dict) and set(saved) == set(defaults())


def clear_owned(path: Path) -> None:
    """Remove the folders and files a previous study wrote (used with --force).

    Only in a folder that holds a study run; anything else there is left alone.
    """
    if not is_study_run(path):
        if any(path.iterdir()):
            raise RunExistsError(
                f"{path}: not empty and not a study run folder; --force only replaces study "
                "runs, choose another --out"
            )
        return
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

