"""The study report: `results.json` (every number, with the file it came from) and a
self-contained `report.html` (CSS inline, figures inlined as base64 PNG, no external links).

`HtmlReport` is a small builder (sections, paragraphs, tables, figures) on plain string templates
with `html.escape`; `collect_results` reads the run folder's tables; `check_results` lists values
outside their valid range; `write_report` does all three.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ganforensics.io.runs import RunFolder, dump_yaml

# section id -> (title, the table files it reads, the stages it reports)
SECTIONS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "quality": ("Image quality: FID and KID per setup", ("tables/quality.csv",), ("quality",)),
    "spectra": ("Spectra per setup against real", ("tables/spectra.csv",), ("spectra",)),
    "detection": ("Detectors trained on real vs the training setup, tested on every setup",
                  ("tables/detection.csv",), ("detection",)),
    "bypass": ("Bypass: detection rates of modified generators (protocol: docs/spectral.md)",
               ("tables/bypass.csv",), ("bypass",)),
    "robustness": ("CNN robustness grid", ("tables/robustness.csv",), ("robustness",)),
    "grayscale": ("CNN colour ablation (grayscale inputs)", ("tables/grayscale.csv",),
                  ("grayscale",)),
    "explain": ("Explanations: FF-RS feature maps and masking",
                ("tables/masking.csv", "tables/ffrs_ranking.csv", "tables/colour_maps.csv"),
                ("explain",)),
}

_UNIT = re.compile(
    r"(^|_)(ap|auc|acc|accuracy|bacc|balanced|real_acc|fake_acc|rate|tpr|fpr|eer|"
    r"detection_rate|fraction)(_|@|$)"
)

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#1d1d1f;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.2em}h2{border-bottom:2px solid #d0d7de;padding-bottom:.2em;
margin-top:2em}table{border-collapse:collapse;margin:.6em 0;font-size:.88em}
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:right}
th{background:#f3f5f7}td.t,th.t{text-align:left}caption{caption-side:bottom;text-align:left;
font-size:.85em;color:#57606a;padding-top:.3em}
.src{font-size:.82em;color:#57606a}.fail{background:#fff1f0;border-left:4px solid #cf222e;
padding:.5em .8em}.note{background:#f6f8fa;border-left:4px solid #8c959f;padding:.5em .8em}
.warn{background:#fff8c5;border-left:4px solid #bf8700;padding:.5em .8em}
pre{background:#f6f8fa;padding:.8em;overflow-x:auto;font-size:.82em}
figure{margin:1em 0}figcaption{font-size:.88em;color:#57606a}
img{max-width:100%;image-rendering:pixelated}.grids{display:flex;flex-wrap:wrap;gap:14px}
.grids figure{margin:0}nav a{margin-right:.8em}
"""


def fmt(value: Any) -> str:
    """A table cell: floats with sensible precision, NaN as an en dash."""
    if isinstance(value, bool) or value is None:
        return "–" if value is None else str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if value != 0 and abs(value) < 0.01:
            return f"{value:.2e}"
        return f"{value:.1f}" if abs(value) >= 100 else f"{value:.3f}"
    return str(value)


@dataclass
class Section:
    """One section of the report; methods append HTML parts."""

    id: str
    title: str
    parts: list[str] = field(default_factory=list)

    def p(self, text: str) -> Section:
        self.parts.append(f"<p>{html.escape(text)}</p>")
        return self

    def box(self, text: str, kind: str = "note") -> Section:
        self.parts.append(f'<div class="{kind}">{html.escape(text)}</div>')
        return self

    def pre(self, text: str) -> Section:
        self.parts.append(f"<pre>{html.escape(text)}</pre>")
        return self

    def items(self, lines: Iterable[str]) -> Section:
        lis = "".join(f"<li>{html.escape(x)}</li>" for x in lines)
        self.parts.append(f"<ul>{lis}</ul>")
        return self

    def table(self, df: pd.DataFrame, caption: str, source: str | None = None) -> Section:
        """A table with a caption saying what it shows and the file its numbers come from."""
        head = "".join(
            f'<th class="{"t" if not pd.api.types.is_numeric_dtype(df[c]) else ""}">'
            f"{html.escape(str(c))}</th>"
            for c in df.columns
        )
        rows = []
        for rec in df.itertuples(index=False):
            cells = "".join(
                f'<td class="{"t" if isinstance(v, str) else ""}">{html.escape(fmt(v))}</td>'
                for v in rec
            )
            rows.append(f"<tr>{cells}</tr>")
        cap = html.escape(caption)
        if source:
            cap += f' <span class="src">Source: <code>{html.escape(source)}</code></span>'
        self.parts.append(
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
            f"<caption>{cap}</caption></table>"
        )
        return self

    def figure(self, png: bytes | Path, caption: str, source: str | None = None,
               width: int | None = None) -> Section:
        """An inlined PNG figure with a caption."""
        self.parts.append(figure_html(png, caption, source, width))
        return self

    def grids(self, figures: Sequence[tuple[bytes | Path, str]], source: str | None) -> Section:
        """Several small figures side by side."""
        inner = "".join(figure_html(png, cap, None, None) for png, cap in figures)
        src = f'<p class="src">Files: <code>{html.escape(source)}</code></p>' if source else ""
        self.parts.append(f'<div class="grids">{inner}</div>{src}')
        return self

    def html(self) -> str:
        return (f'<section id="{html.escape(self.id)}"><h2>{html.escape(self.title)}</h2>'
                + "".join(self.parts) + "</section>")


def figure_html(png: bytes | Path, caption: str, source: str | None, width: int | None) -> str:
    data = Path(png).read_bytes() if isinstance(png, Path) else png
    b64 = base64.b64encode(data).decode("ascii")
    w = f' width="{int(width)}"' if width else ""
    cap = html.escape(caption)
    if source:
        cap += f' <span class="src">File: <code>{html.escape(source)}</code></span>'
    return (f'<figure><img alt="{html.escape(caption)}"{w} src="data:image/png;base64,{b64}">'
            f"<figcaption>{cap}</figcaption></figure>")


class HtmlReport:
    """A self-contained HTML page built from sections."""

    def __init__(self, title: str, subtitle: str = ""):
        self.title = title
        self.subtitle = subtitle
        self.sections: list[Section] = []

    def section(self, id: str, title: str) -> Section:
        sec = Section(id, title)
        self.sections.append(sec)
        return sec

    def to_html(self) -> str:
        nav = " ".join(f'<a href="#{html.escape(s.id)}">{html.escape(s.title.split(":")[0])}</a>'
                       for s in self.sections)
        body = "\n".join(s.html() for s in self.sections)
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(self.title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{html.escape(self.title)}</h1><p>{html.escape(self.subtitle)}</p>"
            f"<nav>{nav}</nav>\n{body}\n</body></html>\n"
        )


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


def _stage_status(run: RunFolder, stage_results: Sequence[Any] | None) -> list[dict[str, Any]]:
    if stage_results is not None:
        return [{"stage": r.name, "status": r.status, "seconds": round(float(r.seconds), 2),
                 "error": r.error} for r in stage_results]
    rows = []
    for p in sorted((run.path / "stages").glob("*.done")):
        try:
            info = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            info = {}
        rows.append({"stage": p.name[:-5], "status": "cached",
                     "seconds": info.get("seconds"), "error": None})
    return rows


def collect_results(run: RunFolder, cfg: Mapping[str, Any],
                    stage_results: Sequence[Any] | None = None) -> dict[str, Any]:
    """Everything the report shows, as one JSON-able dict (each table with its source file)."""
    stages = _stage_status(run, stage_results)
    status = {s["stage"]: s for s in stages}
    env: dict[str, Any] = {}
    if (run.path / "env.json").is_file():
        env = json.loads((run.path / "env.json").read_text())
    results: dict[str, Any] = {
        "config": cfg, "env": env, "stages": stages, "sections": {},
    }
    real = run.path / "data" / "real.csv"
    if real.is_file():
        df = pd.read_csv(real)
        results["data"] = {
            "file": "data/real.csv",
            "n_real": {str(k): int(v) for k, v in df["split"].value_counts().items()},
            "sources": {str(k): int(v) for k, v in df.groupby("split")["source"].nunique().items()},
        }
    fakes = {}
    for s in cfg["gan"]["setups"]:
        p = run.path / "fakes" / s["name"] / "manifest.csv"
        if p.is_file():
            df = pd.read_csv(p)
            fakes[s["name"]] = {str(k): int(v) for k, v in df["split"].value_counts().items()}
    results["fakes"] = fakes
    for sec_id, (title, files, needs) in SECTIONS.items():
        entry: dict[str, Any] = {"title": title}
        failed = [status[n] for n in needs if status.get(n, {}).get("status") in
                  ("failed", "skipped")]
        missing = [n for n in needs if n not in status]
        tables = {}
        for f in files:
            df = _read_table(run, f)
            if df is not None:
                tables[f] = _records(df)
        if tables and not failed:
            entry["status"] = "ok"
            entry["tables"] = tables
        elif failed:
            entry["status"] = failed[0]["status"]
            entry["error"] = failed[0]["error"]
        elif missing:
            entry["status"] = "not run"
            entry["error"] = "disabled in the config or not reached"
        else:
            entry["status"] = "no output"
            entry["error"] = "the stage finished but its table file is missing"
        results["sections"][sec_id] = entry
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

CAPTIONS = {
    "quality": "Fréchet distance (FID) and kernel distance (KID, mean ± std over subsets) "
               "between each setup's test fakes and the held-out real patches (val + test "
               "splits, never seen by the GANs). Lower is closer to the real distribution.",
    "spectra": "Spectral discrepancy: the mean absolute difference between the mean durall "
               "profile of each setup's fakes and that of the real test patches, over the top "
               "quarter of frequencies (units of 20 ln|F|). Larger means the fakes' high "
               "frequencies depart more from real ones; signed_difference > 0 is excess energy "
               "(e.g. transposed-conv or zero-insertion checkerboards), < 0 a deficit (smoothing "
               "up-samplers).",
    "detection": "Each detector scored on the test reals plus the test fakes of one setup "
                 "(rows), threshold calibrated on the validation split. AP and AUC are "
                 "threshold-free; accuracies use the calibrated threshold.",
    "bypass": "Fraction of each setup's fakes that a detector trained on 100 real + 100 "
              "training-setup fakes classifies as fake, mean over random training draws. A low "
              "rate means the modified last block bypasses the detector.",
    "robustness": "The CNN detector on perturbed copies of the test set (each perturbation "
                  "applied to real and fake alike), with the threshold calibrated on clean "
                  "validation data.",
    "grayscale": "The CNN on grayscale copies of the test images (L = 0.299R+0.587G+0.114B "
                 "replicated), with the RGB-calibrated threshold: a drop means the detector "
                 "uses colour.",
    "explain": "Masking the feature maps ranked highest by FF-RS relevance versus the same number "
               "of random maps: if the top-k maps carry the forensic signal, masking them lowers "
               "AP much more than random-k masking.",
}


def _order(df: pd.DataFrame, col: str, first: Sequence[str]) -> pd.DataFrame:
    """Rows in the order of `first` (the setups), then the rest (mean, held-out rows ...)."""
    rank = {name: i for i, name in enumerate(first)}
    key = df[col].astype(str).map(lambda v: rank.get(v, len(rank)))
    return df.assign(_k=key).sort_values("_k", kind="stable").drop(columns="_k")


def _pivot(df: pd.DataFrame, index: str, columns: str, value: str, order: Sequence[str],
           suffix: str = "") -> pd.DataFrame:
    cols = list(dict.fromkeys(df[columns].astype(str)))
    wide = df.pivot_table(index=index, columns=columns, values=value, aggfunc="first",
                          sort=False)
    wide = wide.reindex(columns=cols)
    wide.columns = [f"{c}{suffix}" for c in wide.columns]
    return _order(wide.reset_index(), index, order)


def views(sec_id: str, df: pd.DataFrame, setups: Sequence[str]
          ) -> list[tuple[pd.DataFrame, str]]:
    """What the report shows of a section's full table: (table, caption) pairs."""
    has = set(df.columns)
    if sec_id == "quality":
        cols = [c for c in ("setup", "fid", "kid_mean", "kid_std", "n_real", "n_fake",
                            "feature_dim", "extractor") if c in has]
        return [(_order(df[cols], "setup", setups), CAPTIONS["quality"])]
    if sec_id == "spectra":
        cols = [c for c in ("setup", "discrepancy", "signed_difference", "n_real", "n_fake",
                            "profile") if c in has]
        return [(_order(df[cols], "setup", setups), CAPTIONS["spectra"])]
    if sec_id == "detection" and {"detector", "generator", "ap"} <= has:
        d = df[df["generator"].astype(str) != "all"]
        out = [(_pivot(d, "generator", "detector", "ap", setups),
                "Average precision (AP, threshold-free) of each detector (columns) on each "
                "setup's test fakes against the test reals (rows); `mean` is the mean over "
                "setups. " + CAPTIONS["detection"])]
        if "fake_acc_cal" in has:
            out.append((_pivot(d, "generator", "detector", "fake_acc_cal", setups),
                        "Share of each setup's test fakes classified fake at the detector's "
                        "validation-calibrated threshold (the accuracy on fakes)."))
        if "acc_cal" in has:
            out.append((_pivot(d, "generator", "detector", "acc_cal", setups),
                        "Accuracy on test reals + that setup's test fakes at the calibrated "
                        "threshold (the real accuracy is the same in every row)."))
        return out
    if sec_id == "bypass" and {"kind", "generator", "rate_mean"} <= has:
        a = _pivot(df, "generator", "kind", "rate_mean", setups, " rate")
        b = _pivot(df, "generator", "kind", "rate_std", setups, " std")
        wide = a.merge(b, on="generator")
        n = int(df["n_train"].iloc[0]) if "n_train" in has and len(df) else "n"
        cap = CAPTIONS["bypass"].replace("100 real + 100", f"{n} real + {n}")
        return [(wide[["generator", *sorted(wide.columns[1:])]], cap +
                 " `real (held-out)` is the false-positive rate on unused reals.")]
    if sec_id == "robustness" and {"condition", "generator"} <= has:
        m = df[df["generator"].astype(str) == "mean"]
        cols = [c for c in ("condition", "ap", "auc", "acc_cal", "real_acc_cal", "fake_acc_cal")
                if c in has]
        return [(m[cols], CAPTIONS["robustness"] + " Means over the setups.")]
    if sec_id == "grayscale" and {"input", "generator", "ap"} <= has:
        d = df[df["generator"].astype(str) != "all"]
        a = _pivot(d, "generator", "input", "ap", setups)
        a.columns = ["generator", *[f"AP {c}" for c in a.columns[1:]]]
        if "acc_cal" in has:
            b = _pivot(d, "generator", "input", "acc_cal", setups)
            b.columns = ["generator", *[f"acc {c}" for c in b.columns[1:]]]
            a = a.merge(b, on="generator")
        return [(a, CAPTIONS["grayscale"])]
    if sec_id == "explain" and {"condition", "generator", "ap"} <= has:
        d = df[df["generator"].astype(str) != "all"]
        a = _pivot(d, "generator", "condition", "ap", setups)
        a.columns = ["generator", *[f"AP {c}" for c in a.columns[1:]]]
        if "ap_std" in has:
            r = d[d["condition"] == "random-k"][["generator", "ap_std"]]
            a = a.merge(r.rename(columns={"ap_std": "AP random-k std"}), on="generator",
                        how="left")
        k = int(df["k"].iloc[0]) if "k" in has and len(df) else None
        return [(a, CAPTIONS["explain"] + (f" k = {k} maps." if k else ""))]
    return [(df, CAPTIONS.get(sec_id, ""))]


def _rows(results: Mapping[str, Any], sec: str, fname: str) -> list[dict[str, Any]]:
    entry = results.get("sections", {}).get(sec, {})
    if entry.get("status") != "ok":
        return []
    return list(entry.get("tables", {}).get(fname, []))


def key_numbers(results: Mapping[str, Any]) -> list[str]:
    """Plain sentences restating a few numbers of the tables (each names its file)."""
    cfg = results["config"]
    train_setup = cfg["detectors"]["train_setup"]
    out = []
    q = _rows(results, "quality", "tables/quality.csv")
    if q:
        lo = min(q, key=lambda r: r["fid"])
        hi = max(q, key=lambda r: r["fid"])
        out.append(f"FID ranges from {fmt(lo['fid'])} ({lo['setup']}) to {fmt(hi['fid'])} "
                   f"({hi['setup']}) [tables/quality.csv].")
    s = _rows(results, "spectra", "tables/spectra.csv")
    if s:
        order = sorted(s, key=lambda r: r["discrepancy"])
        out.append("Spectral discrepancy from real, smallest to largest: "
                   + ", ".join(f"{r['setup']} {fmt(r['discrepancy'])}" for r in order)
                   + " [tables/spectra.csv].")
    d = _rows(results, "detection", "tables/detection.csv")
    for kind in dict.fromkeys(r.get("detector") for r in d):
        rows = {r.get("generator"): r for r in d if r.get("detector") == kind}
        others = [r["ap"] for g, r in rows.items()
                  if g not in (train_setup, "mean", "all") and r.get("ap") is not None]
        if train_setup in rows and others:
            out.append(f"{kind}: AP {fmt(rows[train_setup]['ap'])} on {train_setup} (the "
                       f"training setup), mean AP {fmt(sum(others) / len(others))} on the "
                       f"other setups [tables/detection.csv].")
    b = _rows(results, "bypass", "tables/bypass.csv")
    mods = [r for r in b if r.get("role") == "modified"]
    for kind in dict.fromkeys(r.get("kind") for r in mods):
        rates = ", ".join(f"{r['generator']} {fmt(r['rate_mean'])}" for r in mods
                          if r["kind"] == kind)
        out.append(f"Bypass ({kind}): detection rates {rates} [tables/bypass.csv].")
    g = _rows(results, "grayscale", "tables/grayscale.csv")
    mean = {r.get("input"): r.get("ap") for r in g if r.get("generator") == "mean"}
    if {"rgb", "gray"} <= set(mean):
        out.append(f"CNN mean AP on RGB {fmt(mean['rgb'])} vs grayscale {fmt(mean['gray'])} "
                   "[tables/grayscale.csv].")
    m = _rows(results, "explain", "tables/masking.csv")
    mm = {r.get("condition"): r.get("ap") for r in m if r.get("generator") == "mean"}
    if {"none", "top-k", "random-k"} <= set(mm):
        out.append(f"Masking the FF-RS top-k maps: mean AP {fmt(mm['none'])} -> "
                   f"{fmt(mm['top-k'])}; random-k: {fmt(mm['random-k'])} "
                   "[tables/masking.csv].")
    return out


def _caveats(results: Mapping[str, Any], cfg: Mapping[str, Any]) -> list[str]:
    out = [
        f"Small scale: GANs of {cfg['gan']['steps']} generator steps at "
        f"{cfg['data']['size']}x{cfg['data']['size']} pixels trained on patches of about a "
        "dozen photographs; the papers train for days on tens of thousands of images "
        "(Chandrasegaran et al. 2021 used CelebA/LSUN at 128x128, Wang et al. 2020 ResNet-50 on "
        "ProGAN fakes at 256x256). The numbers show the pipeline and the direction of effects, "
        "not the published values.",
        "Sample sizes are small (see the counts in the data section); differences of a few "
        "points in AP or accuracy are within sampling noise.",
        f"FF-RS masks the top {cfg['explain']['top_k']} maps of the small CNN's few hundred "
        "feature maps (Chandrasegaran et al. 2022: 114 of ResNet-50's 26,560); with a detector "
        "this small, masking effects can go either way.",
        "The CNN detector is the small architecture of this toolkit trained for a few epochs "
        "with the wang2020 augmentation recipe, not an ImageNet-pretrained ResNet-50.",
        "Some of the real photographs are JPEG files (downscaled before patching so block "
        "artifacts fade), while fakes are lossless PNG straight from the generator; detectors "
        "could partly learn such differences (the robustness grid helps to judge it).",
        "The CNN stops early on validation loss, not accuracy as in Wang et al. 2020 (with a "
        "~200-image validation split accuracy saturates after one epoch), and uses the "
        f"blur/JPEG probability p = {cfg['detectors']['cnn']['aug_prob']}.",
    ]
    q = results.get("sections", {}).get("quality", {}).get("tables", {}).get("tables/quality.csv")
    if q and not all(bool(r.get("standard_extractor")) for r in q):
        out.insert(0, "FID/KID here use a NON-STANDARD feature extractor (the standard "
                      "Inception weights were not available offline): the values are only "
                      "comparable between setups of this run, not with published FIDs.")
    elif q:
        out.append("FID with fewer samples than the feature dimension (2048) is biased upwards; "
                   "compare setups within this run only.")
    return out


def build_html(results: Mapping[str, Any], run_path: Path) -> str:
    """The report page from `collect_results` output and the run folder's figures."""
    cfg = results["config"]
    env = results.get("env", {})
    setups = [s["name"] for s in cfg["gan"]["setups"]]
    rep = HtmlReport(
        "ganforensics study report",
        f"Run folder: {run_path}. Created {env.get('created', '?')}. Setups: {', '.join(setups)}."
        " Every number below comes from a file in the run folder, named under its table.",
    )
    stages = results.get("stages", [])
    bad = [s for s in stages if s["status"] in ("failed", "skipped")]
    sec = rep.section("overview", "Overview: what was run")
    sec.p("A small-scale reproduction of the GAN-forensics line of work: DCGANs whose last "
          "up-sampling block differs are trained on real photo patches; their fakes are "
          "measured (FID/KID, spectra); spectral and CNN detectors are trained on real vs "
          f"{cfg['detectors']['train_setup']} fakes and tested on every setup.")
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

    sec = rep.section("settings", "Settings: resolved configuration and versions")
    sec.p("The resolved configuration (defaults + preset + overrides) exactly as saved in the "
          "run folder; rerunning with it resumes this run.")
    sec.pre(dump_yaml(cfg))
    versions = env.get("versions", {})
    if versions:
        vdf = pd.DataFrame([{"package": k, "version": v or "not installed"}
                            for k, v in versions.items()])
        sec.table(vdf, f"Package versions (Python {env.get('python', '?')}, "
                       f"{env.get('platform', '?')}, {env.get('cpu_count', '?')} CPUs).",
                  "env.json")

    sec = rep.section("data", "Data: real patches and fakes")
    data = results.get("data")
    if data:
        rows = [{"split": k, "real patches": data["n_real"].get(k, 0),
                 "source photos": data["sources"].get(k, 0)} for k in ("train", "val", "test")]
        sec.table(pd.DataFrame(rows), "Real patches per split; patches of one photo stay in one "
                  "split, so no photo is both trained and tested on.", data["file"])
    else:
        sec.box("The real-patch stage did not complete.", "fail")
    if results.get("fakes"):
        frows = [{"setup": k, **{s: int(v.get(s, 0)) for s in ("train", "val", "test")}}
                 for k, v in results["fakes"].items()]
        sec.table(pd.DataFrame(frows), "Fakes per setup and split (disjoint seed "
                  "streams per setup and split; only the detectors' training setup needs "
                  "train/val fakes).", "fakes/<setup>/manifest.csv")
    grids = [(run_path / "figures" / "grid_real.png", "real (held-out)")]
    grids += [(run_path / "figures" / f"grid_{s}.png", s) for s in setups]
    grids = [(p, c) for p, c in grids if p.is_file()]
    if grids:
        sec.p("Sample grids: real held-out patches and the first test fakes of each setup "
              "(enlarged 2x, nearest neighbour).")
        sec.grids(grids, "figures/grid_*.png")

    for sec_id, (title, files, _needs) in SECTIONS.items():
        entry = results["sections"][sec_id]
        sec = rep.section(sec_id, title)
        if entry.get("status") != "ok":
            sec.box(f"Not available ({entry.get('status')}): {entry.get('error')}", "fail")
            continue
        main = files[0]
        df = pd.DataFrame(entry["tables"][main])
        if sec_id == "robustness":
            p = run_path / "figures" / "robustness_ap.png"
            if p.is_file():
                sec.figure(p, "AP per perturbation and setup (from the evaluation run).",
                           "figures/robustness_ap.png (eval/cnn-robustness/)", width=700)
        if sec_id == "spectra":
            for name, cap in (("spectra.png", "Mean ± std azimuthal log-spectrum profile per "
                               "group; GAN artifacts show as deviations at high frequencies."),
                              ("spectra_2d.png", "Mean 2-D log spectra; periodic up-sampling "
                               "artifacts appear as bright off-centre peaks.")):
                p = run_path / "figures" / name
                if p.is_file():
                    sec.figure(p, cap, f"figures/{name}")
        if sec_id == "quality" and "standard_extractor" in df.columns and not df[
                "standard_extractor"].all():
            sec.box("Features from a non-standard (fallback) extractor: compare setups within "
                    "this run only.", "warn")
        for view, caption in views(sec_id, df, setups):
            sec.table(view, caption, main)
        if sec_id == "explain" and "tables/colour_maps.csv" in entry["tables"]:
            cm = pd.DataFrame(entry["tables"]["tables/colour_maps.csv"])
            sec.table(cm, "Colour-conditional top-k maps: spatial-max response of each top-k "
                      "map on RGB vs grayscale fakes, Mood's median test (p <= 0.05 = colour-"
                      "conditional).", "tables/colour_maps.csv")
        if sec_id == "explain" and "tables/ffrs_ranking.csv" in entry["tables"]:
            top = pd.DataFrame(entry["tables"]["tables/ffrs_ranking.csv"]).head(10)
            sec.table(top, "The ten feature maps with the highest FF-RS relevance.",
                      "tables/ffrs_ranking.csv")

    sec = rep.section("caveats", "Caveats")
    sec.items(_caveats(results, cfg))
    problems = results.get("problems") or []
    if problems:
        sec.box("Values outside their valid range: " + "; ".join(problems), "fail")
    sec = rep.section("files", "Files")
    sec.p("results.json holds every table above with its source file; tables/*.csv the tables; "
          "figures/*.png the figures; detectors/<kind>/ the trained detectors (model.json + "
          "arrays); gans/<setup>/ the GAN runs and checkpoints; logs/ tracebacks of failed "
          "stages.")
    return rep.to_html()


def write_report(run: RunFolder, cfg: Mapping[str, Any],
                 stage_results: Sequence[Any] | None = None) -> Path:
    """Write results.json and report.html into the run folder; return the report's path."""
    results = collect_results(run, cfg, stage_results)
    results["problems"] = check_results(results)
    run.write_json("results.json", results)
    page = build_html(results, run.path)
    return run.write_text("report.html", page)
