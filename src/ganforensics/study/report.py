"""The study report: `results.json` (every number, with the file it came from) and a
self-contained `report.html` (CSS inline, figures inlined as base64 PNG, no external links).

`collect_results` reads the run folder's tables; `check_results` lists values outside their
valid range; `build_html` lays out the fixed sections (overview, settings, data, caveats, files)
and one section per entry of `report_sections.SECTIONS`; `write_report` does all three.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ganforensics.detectors.cnn.archs import ARCHS
from ganforensics.detectors.cnn.recipes import get_recipe
from ganforensics.gan.shipped import generator_recipe
from ganforensics.io.runs import RunFolder, dump_yaml
from ganforensics.study.context import SPLITS
from ganforensics.study.data_stages import REAL_MANIFEST, fake_manifest_file
from ganforensics.study.explain_stages import RANKING_TABLE
from ganforensics.study.measure_stages import QUALITY_TABLE, REAL_GRID, grid_file
from ganforensics.study.report_html import HtmlReport, Section
from ganforensics.study.report_sections import (
    GENERIC_VIEW_NOTE,
    OPTIONAL_SECTIONS,
    SectionData,
    all_sections,
)
from ganforensics.study.setups import SIM_PREFIX, study_setups, train_setups
from ganforensics.study.stages import NOT_APPLICABLE, StageResult, stage_info

_UNIT = re.compile(
    r"(^|_)(ap|auc|acc|accuracy|bacc|balanced|real_acc|fake_acc|rate|tpr|fpr|eer|"
    r"detection_rate|fraction)(_|@|$)"
)
FAILED = ("failed", "skipped")


# ---------------------------------------------------------------- results


def _read_table(run: RunFolder, name: str) -> pd.DataFrame | None:
    p = run.path / name
    if not p.is_file():
        return None
    return pd.read_csv(p)


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for rec in df.to_dict(orient="records"):
        out.append({k: (None if isinstance(v, float) and math.isnan(v) else v)
                    for k, v in rec.items()})
    return out


def _stage_status(run: RunFolder, stage_results: Sequence[StageResult] | None
                  ) -> list[dict[str, Any]]:
    """One row per stage: of this invocation, else of the markers in the run folder."""
    if stage_results is not None:
        return [{"stage": r.name, "status": r.status, "seconds": round(float(r.seconds), 2),
                 "error": r.error} for r in stage_results]
    names = [p.name[:-5] for p in sorted((run.path / "stages").glob("*.done"))]
    return [{"stage": n, "status": "cached", "seconds": stage_info(run, n).get("seconds"),
             "error": None} for n in names]


def _data_counts(run: RunFolder, cfg: Mapping[str, Any]) -> tuple[dict | None, dict]:
    """Real patches per split (and source photos), fakes per setup and split."""
    data = None
    real = run.path / REAL_MANIFEST
    if real.is_file():
        df = pd.read_csv(real)
        data = {
            "file": REAL_MANIFEST,
            "n_real": {str(k): int(v) for k, v in df["split"].value_counts().items()},
            "sources": {str(k): int(v) for k, v in df.groupby("split")["source"].nunique().items()},
        }
    fakes = {}
    for s in study_setups(cfg):
        p = run.path / fake_manifest_file(s["name"])
        if p.is_file():
            df = pd.read_csv(p)
            fakes[s["name"]] = {str(k): int(v) for k, v in df["split"].value_counts().items()}
            if "psnr_db" in df.columns:  # a simulated setup: mean PSNR to the sources per split
                fakes[s["name"]]["psnr_db"] = {
                    str(k): round(float(v), 3)
                    for k, v in df.groupby("split")["psnr_db"].mean().items()}
    return data, fakes


def _section_entry(run: RunFolder, sec_id: str, status: Mapping[str, Any]) -> dict[str, Any]:
    spec = all_sections()[sec_id]
    entry: dict[str, Any] = {"title": spec.title}
    failed = [status[n] for n in spec.stages if status.get(n, {}).get("status") in FAILED]
    missing = [n for n in spec.stages if n not in status]
    tables = {}
    for f in spec.files:
        df = _read_table(run, f)
        if df is not None:
            tables[f] = _records(df)
    if tables and not failed:
        entry["status"] = "ok"
        entry["tables"] = tables
    elif failed:
        entry["status"] = failed[0]["status"]
        entry["error"] = failed[0]["error"]
    elif reasons := [r for n in spec.stages if (r := stage_info(run, n).get(NOT_APPLICABLE))]:
        entry["status"] = "not applicable"
        entry["error"] = reasons[0]
    elif missing:
        entry["status"] = "not run"
        entry["error"] = "disabled in the config or not reached"
    else:
        entry["status"] = "no output"
        entry["error"] = "the stage finished but its table file is missing"
    return entry


def _shipped_gans(run: RunFolder, cfg: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The setups whose GAN is a generator shipped in the package: its steps, FID ratio and
    training recipe (`gan.shipped.generator_recipe`)."""
    out = {}
    for s in cfg["gan"]["setups"]:
        folder = run.path / "gans" / s["name"]
        if (folder / "shipped.json").is_file():
            prov = json.loads((folder / "shipped.json").read_text())
            meta = folder / "generator.json"
            recipe = (generator_recipe(json.loads(meta.read_text())) if meta.is_file()
                      else f"{int(prov.get('steps') or 0):,} steps")
            out[s["name"]] = {"steps": prov.get("steps"), "ratio": prov.get("ratio"),
                              "recipe": recipe}
    return out


def _gan_budget(results: Mapping[str, Any], cfg: Mapping[str, Any]) -> str:
    """'GANs of N generator steps', saying which generators the package shipped instead and
    how they were trained."""
    shipped = results.get("shipped_gans") or {}
    trained = f"GANs of {cfg['gan']['steps']} generator steps"
    if not shipped:
        return trained
    recipes = dict.fromkeys(str(v["recipe"]) for v in shipped.values())  # once each, in order
    what = f"shipped with the package (trained once: {'; '.join(recipes)})"
    if len(shipped) == len(cfg["gan"]["setups"]):
        return f"GANs {what}"
    return f"{trained} ({', '.join(shipped)}: generators {what})"


def collect_results(run: RunFolder, cfg: Mapping[str, Any],
                    stage_results: Sequence[StageResult] | None = None) -> dict[str, Any]:
    """Everything the report shows, as one JSON-able dict (each table with its source file)."""
    stages = _stage_status(run, stage_results)
    status = {s["stage"]: s for s in stages}
    env: dict[str, Any] = {}
    if (run.path / "env.json").is_file():
        env = json.loads((run.path / "env.json").read_text())
    results: dict[str, Any] = {"config": cfg, "env": env, "stages": stages, "sections": {}}
    data, fakes = _data_counts(run, cfg)
    if data is not None:
        results["data"] = data
    results["fakes"] = fakes
    results["shipped_gans"] = _shipped_gans(run, cfg)
    for sec_id in all_sections():
        if sec_id in OPTIONAL_SECTIONS and not any(s in status for s in
                                                   OPTIONAL_SECTIONS[sec_id].stages):
            continue  # off in this config: no "not run" box
        results["sections"][sec_id] = _section_entry(run, sec_id, status)
    return results


def check_results(results: Mapping[str, Any]) -> list[str]:
    """Problems with the numbers: non-finite values, rates outside [0, 1], negative FID."""
    problems = []
    for sec_id, sec in results.get("sections", {}).items():
        for fname, rows in (sec.get("tables") or {}).items():
            for i, row in enumerate(rows):
                for key, val in row.items():
                    if isinstance(val, bool) or not isinstance(val, (int, float)):
                        continue
                    where = f"{sec_id}: {fname} row {i} column {key!r} = {val!r}"
                    if not math.isfinite(val):
                        problems.append(f"{where} is not finite")
                    elif _UNIT.search(str(key).lower()) and not -1e-9 <= val <= 1 + 1e-9:
                        problems.append(f"{where} is outside [0, 1]")
                    elif str(key).lower().startswith("fid") and val < 0:
                        problems.append(f"{where} is negative")
    return problems



# ---------------------------------------------------------------- the page


def _section_rows(results: Mapping[str, Any], sec_id: str) -> dict[str, list[dict[str, Any]]]:
    entry = results.get("sections", {}).get(sec_id, {})
    return dict(entry.get("tables", {})) if entry.get("status") == "ok" else {}


def key_numbers(results: Mapping[str, Any]) -> list[str]:
    """Plain sentences restating a few numbers of the tables (each names its file)."""
    out: list[str] = []
    for sec_id, spec in all_sections().items():
        if spec.numbers is not None:
            out += spec.numbers(_section_rows(results, sec_id), results["config"])
    return out


def _stopping_rule(cfg: Mapping[str, Any]) -> str:
    c = cfg["detectors"]["cnn"]
    recipe = get_recipe(c["recipe"], monitor=c["monitor"], lr=c.get("lr"))
    what = {"val_loss": "validation loss", "val_acc": "validation accuracy"}[recipe.monitor]
    rule = (f"The CNN stops early on {what} (patience {recipe.patience} epochs, at most "
            f"{c['epochs']} epochs)")
    if recipe.monitor == "val_loss":
        rule += (", not on accuracy as in Wang et al. 2020 (on a validation split of a few "
                 "hundred images accuracy saturates after one epoch)")
    return rule + (f"; Adam learning rate {recipe.lr:g}; blur/JPEG augmentation probability "
                   f"p = {c['aug_prob']}.")


def _caveats(results: Mapping[str, Any], cfg: Mapping[str, Any]) -> list[str]:
    """What limits the reading of the numbers, filled from the resolved config."""
    size, c = cfg["data"]["size"], cfg["detectors"]["cnn"]
    sources = cfg["data"]["sources"]
    photos = ("about a dozen embedded photographs" if sources is None
              else f"the photographs of {len(sources)} folder(s)")
    ranking = _section_rows(results, "explain").get(RANKING_TABLE)
    n_maps = f"of its {len(ranking)} " if ranking else "of its "
    arch = ARCHS[c["arch"]]
    out = [
        f"Small scale: {_gan_budget(results, cfg)} at {size}x{size} pixels "
        f"trained on patches of {photos}; the papers train for days on tens of thousands of "
        "images (Chandrasegaran et al. 2021 used CelebA/LSUN at 128x128, Wang et al. 2020 "
        "ResNet-50 on ProGAN fakes at 256x256). The numbers show the pipeline and the direction "
        "of effects, not the published values.",
        f"Sample sizes are small ({cfg['fakes']['n_test']} test fakes per setup; real counts in "
        "the data section). The brackets are 95 % bootstrap intervals over "
        f"{cfg['evaluate']['resamples']} resamples of the test images and the FID ± its "
        f"bootstrap sd over {cfg['quality']['fid_resamples']} resamples of the feature rows: "
        "they cover the sampling of the test set only, not the randomness of GAN and detector "
        "training (run several `seeds` for that). Claims such as 'catches' are worded from "
        "the AP interval, not the point value (rule in the detection section).",
        f"FF-RS masks the top {cfg['explain']['top_k']} {n_maps}feature maps of the "
        f"'{arch.name}' CNN (Chandrasegaran et al. 2022: 114 of ResNet-50's 26,560); at this "
        "scale, masking effects can go either way.",
        f"The CNN detector is the '{arch.name}' architecture of this toolkit ({arch.description}) "
        f"trained with the {c['recipe']} augmentation recipe on {size}x{size} patches, not "
        "Wang et al.'s ImageNet-pretrained ResNet-50 on 256x256 images.",
        "Real photographs may be JPEG files (the embedded ones are downscaled before patching so "
        "block artifacts fade), while fakes are lossless PNG straight from the generator; "
        "detectors could partly learn such differences (the robustness grid helps to judge it).",
        _stopping_rule(cfg),
    ]
    q = _section_rows(results, "quality").get(QUALITY_TABLE)
    if q and not all(bool(r.get("standard_extractor")) for r in q):
        out.insert(0, "FID/KID here use a NON-STANDARD feature extractor (the standard "
                      "Inception weights were not available offline): the values are only "
                      "comparable between setups of this run, not with published FIDs.")
    if q:
        n = min(min(int(r["n_real"]), int(r["n_fake"])) for r in q)
        dim = int(q[0]["feature_dim"])
        if n < dim:
            out.append(f"FID from {n} images, fewer than the feature dimension ({dim}), is "
                       "biased upwards (rank-deficient covariances), and so is the floor at "
                       "the same n: compare FID / floor, and setups within this run only.")
    return out


def _overview(rep: HtmlReport, results: Mapping[str, Any]) -> None:
    cfg = results["config"]
    stages = results.get("stages", [])
    bad = [s for s in stages if s["status"] in FAILED]
    sec = rep.section("overview", "Overview: what was run")
    arms = cfg["fakes"]["arms"]
    sims = ("" if arms == ["sampled"] else
            " Setups sim-<S> are the simulated arm: every real patch reconstructed by an "
            "autoencoder whose decoder ends in S's last block (AutoGAN-style), so each fake "
            "has the content of its source photo and keeps its split."
            + (" No GAN was trained (fakes.arms: [simulated])." if "sampled" not in arms
               else ""))
    sec.p("A small-scale reproduction of the GAN-forensics line of work: GANs whose last "
          "up-sampling block differs are trained on real photo patches; their fakes are "
          "measured (FID/KID, spectra); spectral and CNN detectors are trained on real vs "
          f"{' and on '.join(train_setups(cfg))} fakes and tested on every setup." + sims)
    if bad:
        sec.box(f"{len(bad)} stage(s) did not complete; their sections say why and show no "
                "numbers.", "fail")
    try:
        numbers = key_numbers(results)
    except (KeyError, TypeError, ValueError):  # a table without the expected columns
        numbers = []
    if numbers:
        sec.p("Key numbers (restated from the tables below; small-scale run, see the caveats):")
        sec.items(numbers)
    sec.table(pd.DataFrame(stages if stages else [{"stage": "-", "status": "-"}]),
              "Stages of this run: done = ran in this invocation, cached = finished in an "
              "earlier invocation (resumed), failed / skipped = no results.",
              "stages/*.done, logs/*.log")


def _settings(rep: HtmlReport, results: Mapping[str, Any]) -> None:
    env = results.get("env", {})
    sec = rep.section("settings", "Settings: resolved configuration and versions")
    sec.p("The resolved configuration (defaults + preset + overrides) exactly as saved in the "
          "run folder; rerunning with it resumes this run.")
    sec.pre(dump_yaml(results["config"]))
    versions = env.get("versions", {})
    if versions:
        vdf = pd.DataFrame([{"package": k, "version": v or "not installed"}
                            for k, v in versions.items()])
        sec.table(vdf, f"Package versions (Python {env.get('python', '?')}, "
                       f"{env.get('platform', '?')}, {env.get('cpu_count', '?')} CPUs).",
                  "env.json")


def _data(rep: HtmlReport, results: Mapping[str, Any], run_path: Path,
          setups: Sequence[str]) -> None:
    sec = rep.section("data", "Data: real patches and fakes")
    data = results.get("data")
    if data:
        rows = [{"split": k, "real patches": data["n_real"].get(k, 0),
                 "source photos": data["sources"].get(k, 0)} for k in SPLITS]
        sec.table(pd.DataFrame(rows), "Real patches per split; patches of one photo stay in one "
                  "split, so no photo is both trained and tested on.", data["file"])
    else:
        sec.box("The real-patch stage did not complete.", "fail")
    if results.get("fakes"):
        frows = [{"setup": k, **{s: int(v.get(s, 0)) for s in SPLITS}}
                 for k, v in results["fakes"].items()]
        sec.table(pd.DataFrame(frows), "Fakes per setup and split (disjoint seed "
                  "streams per setup and split; only the detectors' training setups need "
                  "train/val fakes; a simulated setup has one reconstruction per real patch, "
                  "in its source's split).", fake_manifest_file("<setup>"))
        prow = [{"setup": k, **{s: v["psnr_db"].get(s) for s in SPLITS}}
                for k, v in results["fakes"].items() if "psnr_db" in v]
        if prow:
            sec.table(pd.DataFrame(prow), "Simulated setups: mean PSNR (dB) of each "
                      "reconstruction to its own source patch, per split (the train split "
                      "was the simulator's training data; val and test were never seen).",
                      fake_manifest_file("sim-<setup>"))
    grids = [(run_path / REAL_GRID, "real (held-out)")]
    grids += [(run_path / grid_file(s), s) for s in setups]
    grids = [(p, c) for p, c in grids if p.is_file()]
    if grids:
        sec.p("Sample grids: real held-out patches and the first test fakes of each setup "
              "(enlarged 2x, nearest neighbour)."
              + (" In a sim-<S> grid each row of source reals is followed by the row of "
                 "their reconstructions." if any(s.startswith(SIM_PREFIX) for s in setups)
                 else ""))
        sec.grids(grids, grid_file("*"))


def _result_section(sec: Section, sec_id: str, entry: Mapping[str, Any],
                    data: SectionData) -> None:
    """The section's renderer; a table without a column it needs is shown as written."""
    if entry.get("status") == "not applicable":
        sec.box(f"Not applicable: {entry.get('error')}", "warn")
        return
    if entry.get("status") != "ok":
        sec.box(f"Not available ({entry.get('status')}): {entry.get('error')}", "fail")
        return
    start = len(sec.parts)
    try:
        all_sections()[sec_id].render(sec, data)
    except KeyError as exc:
        del sec.parts[start:]
        sec.box(f"{GENERIC_VIEW_NOTE} (missing: {exc}).", "warn")
        for name, df in data.tables.items():
            sec.table(df, "", name)


def build_html(results: Mapping[str, Any], run_path: Path) -> str:
    """The report page from `collect_results` output and the run folder's figures."""
    cfg = results["config"]
    env = results.get("env", {})
    setups = [s["name"] for s in study_setups(cfg)]
    rep = HtmlReport(
        "ganforensics study report",
        f"Run folder: {run_path}. Created {env.get('created', '?')}. Setups: {', '.join(setups)}."
        " Every number below comes from a file in the run folder, named under its table.",
    )
    _overview(rep, results)
    _settings(rep, results)
    _data(rep, results, run_path, setups)
    for sec_id, spec in all_sections().items():
        if sec_id not in results["sections"]:
            continue  # an optional section whose stage did not run
        entry = results["sections"][sec_id]
        tables = {f: pd.DataFrame(rows) for f, rows in entry.get("tables", {}).items()}
        _result_section(rep.section(sec_id, spec.title), sec_id, entry,
                        SectionData(tables, cfg, setups, run_path))
    sec = rep.section("caveats", "Caveats")
    sec.items(_caveats(results, cfg))
    problems = results.get("problems") or []
    if problems:
        sec.box("Values outside their valid range: " + "; ".join(problems), "fail")
    sec = rep.section("files", "Files")
    sec.p("results.json holds every table above with its source file; tables/*.csv the tables; "
          "figures/*.png the figures; detectors/<kind>/ the trained detectors (model.json + "
          "arrays; <kind>@<setup>/ for a further training setup); gans/<setup>/ the GAN runs "
          "and checkpoints; simulators/<setup>/ the simulator runs of the simulated arm; logs/ "
          "tracebacks of failed stages.")
    return rep.to_html()


def write_report(run: RunFolder, cfg: Mapping[str, Any],
                 stage_results: Sequence[StageResult] | None = None) -> Path:
    """Write results.json and report.html into the run folder; return the report's path."""
    results = collect_results(run, cfg, stage_results)
    results["problems"] = check_results(results)
    run.write_json("results.json", results)
    page = build_html(results, run.path)
    return run.write_text("report.html", page)
