"""The result sections of the study report: ONE entry per section in `SECTIONS` (title, the
table files it reads, the stages it reports, its renderer and its key numbers).

A renderer lays out a section's tables (pivots, figures, captions filled from the resolved
config); it reads the columns the pipeline writes (the `*_COLUMNS` constants of the stage
modules), so a renamed column raises `KeyError`, and the page then shows the raw table under
`GENERIC_VIEW_NOTE` instead (a test asserts that no section of a pipeline-shaped run does).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ganforensics.data.perturb import GRAY_WEIGHTS
from ganforensics.explain.ffrs import RANKING_COLUMNS
from ganforensics.study.claims import (
    CLAIMS,
    claim,
    lskd_verdict,
    rule_text,
    with_interval,
    with_spread,
)
from ganforensics.study.detector_stages import (
    BYPASS_TABLE,
    DETECTION_TABLE,
    GRAYSCALE_TABLE,
    JPEG96_TABLE,
    ROBUSTNESS_FIGURE,
    ROBUSTNESS_TABLE,
    robustness_files,
)
from ganforensics.study.explain_stages import COLOUR_MAPS_TABLE, MASKING_TABLE, RANKING_TABLE
from ganforensics.study.lskd_stages import LSKD_TABLE
from ganforensics.study.measure_stages import (
    ARMS_FIGURE,
    QUALITY_TABLE,
    SPECTRA_FIGURE,
    SPECTRA_TABLE,
)
from ganforensics.study.one_class_stages import ONE_CLASS_FP_TABLE, ONE_CLASS_TABLE
from ganforensics.study.report_html import Section, fmt
from ganforensics.study.setups import SIM_PREFIX, train_setups

GENERIC_VIEW_NOTE = "The table of this section lacks a column its layout needs; shown as written"

Rows = Mapping[str, list[dict[str, Any]]]


@dataclass(frozen=True)
class SectionData:
    """What a renderer gets: the section's tables (file -> table), the config, the setups."""

    tables: Mapping[str, pd.DataFrame]
    cfg: Mapping[str, Any]
    setups: Sequence[str]
    run_path: Path


@dataclass(frozen=True)
class ReportSection:
    """One result section: title, table files (the first is the main one), stages, layout."""

    title: str
    files: tuple[str, ...]
    stages: tuple[str, ...]
    render: Callable[[Section, SectionData], None]
    numbers: Callable[[Rows, Mapping[str, Any]], list[str]] | None = None


# captions: format strings filled from the resolved config (`caption_values`)
CAPTIONS = {
    "quality": "Fréchet distance (FID ± its standard deviation over {fid_resamples} bootstrap "
               "resamples of the feature rows: the sampling spread of the estimate at these "
               "set sizes) and kernel distance (KID, mean ± std over {kid_subsets} subsets) "
               "between each setup's fakes and a reference sample of the train reals, the "
               "photos the GANs and simulators learnt from. The floor is the FID between that "
               "reference and a disjoint sample of train reals of the same size: what two "
               "samples of the same photos keep apart, so FID / floor = 1 is as close as this "
               "n can tell. FID and the floor both rise as n falls, so compare ratios only "
               "at equal n. A sampled setup's fakes are its first test fakes; a simulated "
               "setup's are the reconstructions of that second sample of reals. PSNR: a "
               "simulated setup's reconstructions of the test reals against their sources.",
    "spectra": "Spectral discrepancy: the mean absolute difference between the mean durall "
               "profile of each setup's fakes and that of the real test patches, over the top "
               "{top_percent} of frequency bins (units of 20 ln|F|). Larger means the fakes' "
               "high frequencies depart more from real ones; signed_difference > 0 is excess "
               "energy (e.g. transposed-conv or zero-insertion checkerboards), < 0 a deficit "
               "(smoothing up-samplers).",
    "spectra_figure": "Mean ± std durall profile per group against spatial frequency as a "
                      "fraction of Nyquist, a zoom on the highest frequencies, and the mean 2-D "
                      "log spectra: GAN artifacts show as deviations at high frequencies and as "
                      "bright off-centre peaks.",
    "spectra_arms": "One panel per setup: the mean ± std durall profile of the real test "
                    "patches, of the GAN's samples and of the simulator's reconstructions of "
                    "the test reals, over the top half of the frequencies. Where the simulated "
                    "curve follows the sampled one, the simulator reproduces the GAN's "
                    "spectral discrepancy; where it follows the real one, it does not.",
    "detection": "Each detector scored on the test reals plus the test fakes of one setup "
                 "(rows), threshold calibrated on the validation split. AP and AUC are "
                 "threshold-free; accuracies use the calibrated threshold. Brackets: 95 % "
                 "bootstrap intervals over {resamples} resamples of the test images (reals and "
                 "fakes resampled separately); they cover the sampling of the test set, not the "
                 "randomness of training (for that, run several seeds). They are percentile "
                 "intervals: where a detector's scores are tied or rank the fakes below the "
                 "reals, one can sit beside the point value.",
    "claims": "How each detector fares on each setup, worded from the AP interval only: "
              "{claim_rule}.",
    "bypass": "Fraction of each setup's fakes that a detector trained on {bypass_n} real + "
              "{bypass_n} {train_setup} fakes classifies as fake, mean over {bypass_draws} random "
              "training draws. A low rate means the modified last block bypasses the detector. "
              "`real (held-out)` is the false-positive rate on unused reals.",
    "robustness": "The CNN detector on perturbed copies of the test set (each perturbation "
                  "applied to real and fake alike), with the threshold calibrated on clean "
                  "validation data. Means over the setups.",
    "jpeg96": "JPEG-96 control: each detector (trained on {train_setup}) on the clean test set "
              "(`none`), with only the fakes re-encoded at JPEG quality 96 (`fakes:jpeg:96`) "
              "and with every image re-encoded (`jpeg:96`); threshold calibrated on clean "
              "validation data. A detector that keys on the lossless format of the fakes "
              "loses its AP under `fakes:jpeg:96`. Brackets: 95 % bootstrap intervals over "
              "{resamples} resamples of the test images; `mean` rows have none.",
    "grayscale": "The CNN on grayscale copies of the test images (L = {gray_weights} "
                 "replicated), with the RGB-calibrated threshold: a drop means the detector "
                 "uses colour.",
    "explain": "Masking the {top_k} feature maps ranked highest by FF-RS relevance versus "
               "{top_k} random maps ({random_draws} draws): if the top-k maps carry the forensic "
               "signal, masking them lowers AP much more than random-k masking.",
}


def caption_values(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The config values (and library constants) the captions name."""
    return {
        "kid_subsets": cfg["quality"]["kid_subsets"], "n_test": cfg["fakes"]["n_test"],
        "fid_resamples": cfg["quality"]["fid_resamples"],
        "resamples": cfg["evaluate"]["resamples"], "claim_rule": rule_text(),
        "top_percent": f"{cfg['spectra']['top_fraction']:.0%}",
        "bypass_n": cfg["bypass"]["n_train"], "bypass_draws": cfg["bypass"]["draws"],
        "train_setup": train_setups(cfg)[0], "top_k": cfg["explain"]["top_k"],
        "random_draws": cfg["explain"]["random_draws"],
        "gray_weights": "+".join(f"{w}{c}" for w, c in zip(GRAY_WEIGHTS, "RGB", strict=True)),
    }


def caption(key: str, cfg: Mapping[str, Any]) -> str:
    return CAPTIONS[key].format(**caption_values(cfg))


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


def _figure(sec: Section, d: SectionData, name: str, cap: str, source: str,
            width: int | None = None) -> None:
    p = d.run_path / name
    if p.is_file():
        sec.figure(p, cap, source, width=width)


# ---------------------------------------------------------------- renderers


def _with_arm(df: pd.DataFrame, col: str, d: SectionData) -> pd.DataFrame:
    """`df` with an `arm` column after `col` when the run has simulated setups (sim-<S>)."""
    if not any(s.startswith(SIM_PREFIX) for s in d.setups):
        return df
    arm = df[col].astype(str).map(lambda v: "simulated" if v.startswith(SIM_PREFIX)
                                  else "sampled")
    return df.assign(arm=arm)[[col, "arm", *[c for c in df.columns if c != col]]]


def render_quality(sec: Section, d: SectionData) -> None:
    df = d.tables[QUALITY_TABLE]
    if not df["standard_extractor"].all():
        sec.box("Features from a non-standard (fallback) extractor: compare setups within "
                "this run only.", "warn")
    shown = df.assign(**{
        "FID ± sd": [with_spread(v, e) for v, e in zip(df["fid"], df["fid_sd"], strict=True)],
        "floor": df["floor"].round(1),
        "FID / floor": df["ratio"].round(2),
        "KID ± std": [with_spread(v, e)
                      for v, e in zip(df["kid_mean"], df["kid_std"], strict=True)]})
    cols = ["setup", "arm", "FID ± sd", "floor", "FID / floor", "KID ± std"]
    if "simulated" in set(df["arm"]):
        shown["PSNR (dB)"] = df["psnr_db"].round(2)
        cols.append("PSNR (dB)")
    cols += ["n_real", "n_fake", "extractor"]
    sec.table(_order(shown[cols], "setup", d.setups), caption("quality", d.cfg),
              QUALITY_TABLE)


def render_spectra(sec: Section, d: SectionData) -> None:
    _figure(sec, d, SPECTRA_FIGURE, caption("spectra_figure", d.cfg), SPECTRA_FIGURE)
    _figure(sec, d, ARMS_FIGURE, caption("spectra_arms", d.cfg), ARMS_FIGURE)
    df = d.tables[SPECTRA_TABLE]
    cols = ["setup", "discrepancy", "signed_difference", "n_real", "n_fake", "profile"]
    sec.table(_with_arm(_order(df[cols], "setup", d.setups), "setup", d),
              caption("spectra", d.cfg), SPECTRA_TABLE)


def _intervals(df: pd.DataFrame, metric: str) -> list[str]:
    """`value [lo, hi]` cells of one metric of the detection table."""
    return [with_interval(v, lo, hi) for v, lo, hi in
            zip(df[metric], df[f"{metric}_lo"], df[f"{metric}_hi"], strict=True)]


def _detection_tables(sec: Section, df: pd.DataFrame, d: SectionData, trained: str) -> None:
    """The tables of the detectors trained on one setup (`trained`: words for the captions)."""
    df = df.assign(ap_ci=_intervals(df, "ap"), acc_ci=_intervals(df, "acc_cal"),
                   claim=[claim(lo, hi) for lo, hi in zip(df["ap_lo"], df["ap_hi"],
                                                          strict=True)])
    sec.table(_pivot(df, "generator", "detector", "ap_ci", d.setups),
              f"Average precision (AP, threshold-free) of each detector{trained} (columns) on "
              "each setup's test fakes against the test reals (rows); `mean` is the mean over "
              "setups (no interval). " + caption("detection", d.cfg), DETECTION_TABLE)
    setups = df[df["generator"].astype(str).isin(d.setups)]
    sec.table(_pivot(setups, "generator", "detector", "claim", d.setups),
              caption("claims", d.cfg), DETECTION_TABLE)
    paired = setups[setups["pair_win"].notna()]
    if len(paired):
        paired = paired.assign(pw_ci=_intervals(paired, "pair_win"))
        sec.table(_pivot(paired, "generator", "detector", "pw_ci", d.setups),
                  f"Paired: the share of test pairs in which a simulated fake's P(fake) is "
                  f"above its own source real's (ties count one half; 0.5 = chance), with a "
                  f"95 % bootstrap interval over {d.cfg['evaluate']['resamples']} resamples "
                  f"of the pairs (metrics.paired); detectors{trained}.", DETECTION_TABLE)
    sec.table(_pivot(df, "generator", "detector", "fake_acc_cal", d.setups),
              "Share of each setup's test fakes classified fake at the detector's "
              f"validation-calibrated threshold (the accuracy on fakes){trained}.",
              DETECTION_TABLE)
    sec.table(_pivot(df, "generator", "detector", "acc_ci", d.setups),
              "Accuracy on test reals + that setup's test fakes at the calibrated "
              "threshold, with its 95 % bootstrap interval (the real accuracy is the same "
              f"in every row){trained}.", DETECTION_TABLE)


def render_detection(sec: Section, d: SectionData) -> None:
    df = d.tables[DETECTION_TABLE]
    df = df[df["generator"].astype(str) != "all"]
    trains = list(dict.fromkeys(df["train_setup"].astype(str)))
    if len(trains) == 1:
        _detection_tables(sec, df, d, "")
        return
    grid = df.assign(column=df["detector"].astype(str) + " on " + df["train_setup"].astype(str),
                     ap_ci=_intervals(df, "ap"))
    sec.table(_pivot(grid, "generator", "column", "ap_ci", d.setups),
              "Transfer: AP [95 % interval] of each detector kind trained on each training "
              "setup (columns `<kind> on <setup>`) on each setup's test fakes (rows), the "
              "two arms side by side (AutoGAN's claim: trained on simulated fakes, it "
              "detects sampled GAN fakes).", DETECTION_TABLE)
    for line in autogan_lines(df.to_dict("records")):
        sec.p(line)
    for ts in trains:
        sec.p(f"Detectors trained on real vs {ts} fakes:")
        _detection_tables(sec, df[df["train_setup"].astype(str) == ts], d,
                          f" (trained on {ts})")


AUTOGAN_CLAIM = ("AutoGAN's claim (Zhang, Karaman and Chang, WIFS 2019): a spectrum classifier "
                 "trained only on simulated fakes (real images passed through the generator's "
                 "up-sampling pipeline) detects the targeted GAN's own fakes without seeing "
                 "any of them.")


def _verb(row: Mapping[str, Any]) -> str:
    word = claim(row.get("ap_lo"), row.get("ap_hi"))
    return {"partly": "partly catches", "uncertain": "is uncertain on"}.get(word, word)


def autogan_lines(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The published claim, then per detector kind trained on a simulated setup sim-S how it
    fares on S's GAN samples (and the reverse), worded by the claim rule; [] when the run
    trains on no simulated setup or lacks S's samples."""
    by_key = {(r.get("train_setup"), r.get("detector"), r.get("generator")): r for r in rows}
    trains = list(dict.fromkeys(str(r.get("train_setup")) for r in rows))
    out = []
    for ts in (t for t in trains if t.startswith(SIM_PREFIX)):
        base = ts[len(SIM_PREFIX):]
        for kind in dict.fromkeys(r.get("detector") for r in rows if r.get("train_setup") == ts):
            there = by_key.get((ts, kind, base))
            back = by_key.get((base, kind, ts))
            if there is None:
                continue
            text = (f"{kind} trained on {ts} {_verb(there)} "
                    f"{base}'s GAN samples (AP "
                    f"{with_interval(there['ap'], there.get('ap_lo'), there.get('ap_hi'))})")
            if back is not None:
                text += (f"; trained on {base}, it {_verb(back)} {ts} (AP "
                         f"{with_interval(back['ap'], back.get('ap_lo'), back.get('ap_hi'))})")
            out.append(text + ".")
    return [AUTOGAN_CLAIM + " Measured here:", *out] if out else []


def render_bypass(sec: Section, d: SectionData) -> None:
    df = d.tables[BYPASS_TABLE]
    a = _pivot(df, "generator", "kind", "rate_mean", d.setups, " rate")
    b = _pivot(df, "generator", "kind", "rate_std", d.setups, " std")
    wide = a.merge(b, on="generator")
    sec.table(wide[["generator", *sorted(wide.columns[1:])]], caption("bypass", d.cfg),
              BYPASS_TABLE)


def render_robustness(sec: Section, d: SectionData) -> None:
    _figure(sec, d, ROBUSTNESS_FIGURE, "AP per perturbation and setup (from the evaluation run).",
            f"{ROBUSTNESS_FIGURE} (eval/cnn-robustness/)", width=700)
    df = d.tables[ROBUSTNESS_TABLE]
    m = df[df["generator"].astype(str) == "mean"]
    cols = ["condition", "ap", "auc", "acc_cal", "real_acc_cal", "fake_acc_cal"]
    sec.table(m[cols], caption("robustness", d.cfg), ROBUSTNESS_TABLE)


def render_npr_robustness(sec: Section, d: SectionData) -> None:
    table, figure = robustness_files("npr")
    _figure(sec, d, figure, "NPR: AP per perturbation and setup (from the evaluation run).",
            f"{figure} (eval/npr-robustness/)", width=700)
    df = d.tables[table]
    m = df[df["generator"].astype(str) == "mean"]
    cols = ["condition", "ap", "auc", "acc_cal", "real_acc_cal", "fake_acc_cal"]
    sec.table(m[cols], caption("robustness", d.cfg).replace("The CNN", "NPR"), table)


def render_jpeg96(sec: Section, d: SectionData) -> None:
    df = d.tables[JPEG96_TABLE]
    df = df[df["generator"].astype(str) != "all"]
    df = df.assign(ap_ci=_intervals(df, "ap"), acc_ci=_intervals(df, "acc_cal"))
    for kind in dict.fromkeys(df["detector"].astype(str)):
        part = df[df["detector"].astype(str) == kind]
        wide = _pivot(part, "generator", "condition", "ap_ci", d.setups, " AP")
        acc = _pivot(part, "generator", "condition", "acc_ci", d.setups, " acc")
        sec.table(wide.merge(acc, on="generator"), f"{kind}: " + caption("jpeg96", d.cfg),
                  JPEG96_TABLE)


def render_one_class(sec: Section, d: SectionData) -> None:
    df = d.tables[ONE_CLASS_TABLE]
    df = df.assign(auc_ci=[with_interval(v, lo, hi) for v, lo, hi in
                           zip(df["auc"], df["auc_lo"], df["auc_hi"], strict=True)])
    sec.table(_pivot(df, "generator", "method", "auc_ci", d.setups, " AUC"),
              "One-class detector fitted on the train reals alone (fakes are anomalies), with "
              "no oversampling (`none`), DOPING, whole-prior sampling and SMOTE at the same "
              "ratio: AUC on each setup's test fakes against the test reals, 95 % bootstrap "
              "intervals.", ONE_CLASS_TABLE)
    sec.table(_pivot(df, "generator", "method", "tpr_at_threshold", d.setups, " TPR"),
              "Fraction of each setup's fakes flagged at the threshold set for the target "
              "false-positive rate on the held-out (validation) reals.", ONE_CLASS_TABLE)
    fp = d.tables.get(ONE_CLASS_FP_TABLE)
    if fp is not None and len(fp):
        fp = fp.assign(fpr_ci=[with_interval(v, lo, hi) for v, lo, hi in
                               zip(fp["fpr"], fp["fpr_lo"], fp["fpr_hi"], strict=True)],
                       vs_none=[with_interval(v, lo, hi) for v, lo, hi in
                                zip(fp["diff_vs_none"], fp["diff_lo"], fp["diff_hi"],
                                    strict=True)])
        sec.table(fp[["method", "condition", "n", "fpr_ci", "vs_none"]],
                  "False positives on the test reals, clean and perturbed (the rare-but-genuine "
                  "photos DOPING is meant to protect), and the paired difference to no "
                  "oversampling with its 95 % bootstrap interval: DOPING helped where that "
                  "interval lies below 0.", ONE_CLASS_FP_TABLE)


def one_class_numbers(rows: Rows, cfg: Mapping[str, Any]) -> list[str]:
    fp = [r for r in rows.get(ONE_CLASS_FP_TABLE, []) if r.get("method") == "doping"]
    out = []
    for r in fp:
        lo, hi = r.get("diff_lo"), r.get("diff_hi")
        if lo is None or hi is None:
            continue
        verdict = ("cut" if hi < 0 else "raised" if lo > 0 else "did not clearly change")
        diff = with_interval(r.get("diff_vs_none"), lo, hi)
        cond = "clean" if r.get("condition") == "none" else r.get("condition")
        out.append(f"DOPING {verdict} the one-class detector's false positives on "
                   f"{cond} test reals: {diff} against no oversampling "
                   f"[{ONE_CLASS_FP_TABLE}].")
    return out[:3]


LSKD_CAPTION = ("Generator attribution (real + each setup): teachers trained with label "
                "smoothing α (rows; 0 = plain cross-entropy), `{arch}` students distilled from "
                "each at temperature T (columns, KD loss only), {epochs} epochs each, all "
                "scored on the same test draw (at most {n_test} images per class). {what}")
LSKD_INTERVALS = ("Brackets: 95 % bootstrap intervals over {resamples} resamples of the test "
                  "images (the test sampling only; run seeds for the training randomness).")
LSKD_ONE_SEED = ("The intervals cover the sampling of the {n} test images only, not the "
                 "randomness of training: one seed cannot say whether a cell wins across "
                 "training runs (run --preset seeds3 for that).")
LSKD_RATIO = ("Cluster ratio: mean distance of a test image's penultimate features to its "
              "class centroid over the mean distance between class centroids (lower = "
              "tighter clusters; the paper's 'diffusion' of a student shows as a higher ratio).")


def lskd_caption(cfg: Mapping[str, Any], what: str) -> str:
    c = cfg["detectors"]["lskd"]
    return LSKD_CAPTION.format(arch=c["arch"], epochs=c["epochs"],
                               n_test=c["n_per_class"]["test"], what=what)


def lskd_cells(df: pd.DataFrame) -> pd.DataFrame:
    """The students of one seed's `tables/lskd.csv` as `claims.lskd_verdict` cells
    (accuracy with its interval)."""
    st = df[df["model"].astype(str) != "teacher"]
    return pd.DataFrame({"alpha": st["alpha"], "model": st["model"].astype(str),
                         "value": st["accuracy"], "lo": st["accuracy_lo"],
                         "hi": st["accuracy_hi"],
                         "text": [with_interval(v, lo, hi) for v, lo, hi in
                                  zip(st["accuracy"], st["accuracy_lo"], st["accuracy_hi"],
                                      strict=True)]})


def lskd_grid_table(df: pd.DataFrame, value: str) -> pd.DataFrame:
    """alpha (rows) x model (teacher, T=1, ...) of the text column `value`."""
    models = list(dict.fromkeys(df["model"].astype(str)))
    wide = df.assign(model=df["model"].astype(str)).pivot_table(
        index="alpha", columns="model", values=value, aggfunc="first", sort=False)
    wide = wide.reindex(columns=models).reset_index()
    wide.columns.name = None
    wide["alpha"] = [f"{float(a):g}" for a in wide["alpha"]]
    return wide.rename(columns={"alpha": "teacher α"})


def render_lskd(sec: Section, d: SectionData) -> None:
    df = d.tables[LSKD_TABLE]
    sec.p(lskd_verdict(lskd_cells(df), "95 % interval") + " " + LSKD_ONE_SEED.format(
        n=int(df["n_test"].max())))
    for metric, name in (("accuracy", "Accuracy"), ("macro_f1", "Macro-F1")):
        shown = df.assign(_v=[with_interval(v, lo, hi) for v, lo, hi in zip(
            df[metric], df[f"{metric}_lo"], df[f"{metric}_hi"], strict=True)])
        sec.table(lskd_grid_table(shown, "_v"), f"{name}. " + lskd_caption(
            d.cfg, LSKD_INTERVALS.format(resamples=d.cfg["evaluate"]["resamples"])),
            LSKD_TABLE)
    shown = df.assign(_v=[fmt(v) for v in df["cluster_ratio"]])
    sec.table(lskd_grid_table(shown, "_v"), LSKD_RATIO, LSKD_TABLE)


def lskd_numbers(rows: Rows, cfg: Mapping[str, Any]) -> list[str]:
    table = rows.get(LSKD_TABLE)
    if not table:
        return []
    return [f"{lskd_verdict(lskd_cells(pd.DataFrame(table)), '95 % interval')} "
            f"[{LSKD_TABLE}]"]


def jpeg96_numbers(rows: Rows, cfg: Mapping[str, Any]) -> list[str]:
    mean = {(r.get("detector"), r.get("condition")): r for r in rows.get(JPEG96_TABLE, [])
            if r.get("generator") == "mean"}
    out = []
    for kind in dict.fromkeys(k for k, _ in mean):
        parts = [f"{c} {fmt(mean[(kind, c)]['ap'])}" for c in
                 ("none", "fakes:jpeg:96", "jpeg:96") if (kind, c) in mean]
        worst = mean.get((kind, "fakes:jpeg:96"), {}).get("worst_generator")
        out.append(f"JPEG-96 control, {kind}: mean AP " + ", ".join(parts)
                   + (f" (worst setup with JPEG-96 fakes: {worst})" if worst else "")
                   + f" [{JPEG96_TABLE}].")
    return out


def render_grayscale(sec: Section, d: SectionData) -> None:
    df = d.tables[GRAYSCALE_TABLE]
    df = df[df["generator"].astype(str) != "all"]
    a = _pivot(df, "generator", "input", "ap", d.setups)
    a.columns = ["generator", *[f"AP {c}" for c in a.columns[1:]]]
    b = _pivot(df, "generator", "input", "acc_cal", d.setups)
    b.columns = ["generator", *[f"acc {c}" for c in b.columns[1:]]]
    sec.table(a.merge(b, on="generator"), caption("grayscale", d.cfg), GRAYSCALE_TABLE)


def render_explain(sec: Section, d: SectionData) -> None:
    df = d.tables[MASKING_TABLE]
    df = df[df["generator"].astype(str) != "all"]
    a = _pivot(df, "generator", "condition", "ap", d.setups)
    a.columns = ["generator", *[f"AP {c}" for c in a.columns[1:]]]
    r = df[df["condition"] == "random-k"][["generator", "ap_std"]]
    a = a.merge(r.rename(columns={"ap_std": "AP random-k std"}), on="generator", how="left")
    sec.table(a, caption("explain", d.cfg), MASKING_TABLE)
    if COLOUR_MAPS_TABLE in d.tables:
        sec.table(d.tables[COLOUR_MAPS_TABLE], "Colour-conditional top-k maps: spatial-max "
                  "response of each top-k map on RGB vs grayscale fakes, Mood's median test "
                  "(p <= 0.05 = colour-conditional).", COLOUR_MAPS_TABLE)
    if RANKING_TABLE in d.tables:
        top = d.tables[RANKING_TABLE][list(RANKING_COLUMNS)].head(10)
        sec.table(top, "The ten feature maps with the highest FF-RS relevance.", RANKING_TABLE)


# ---------------------------------------------------------------- key numbers


def quality_numbers(rows: Rows, cfg: Mapping[str, Any]) -> list[str]:
    q = rows.get(QUALITY_TABLE, [])
    if not q:
        return []
    out = [f"Real-vs-real FID floor at n = {int(q[0]['n_real'])}: {q[0]['floor']:.1f} "
           f"[{QUALITY_TABLE}]."]
    for arm in ("sampled", "simulated"):
        part = [r for r in q if r.get("arm", "sampled") == arm]
        if part:
            lo = min(part, key=lambda r: r["fid"])
            hi = max(part, key=lambda r: r["fid"])
            out.append(f"{arm.capitalize()} fakes: FID from "
                       f"{with_spread(lo['fid'], lo.get('fid_sd'))} ({lo['setup']}, "
                       f"{lo['ratio']:.2f}x the floor) to "
                       f"{with_spread(hi['fid'], hi.get('fid_sd'))} ({hi['setup']}, "
                       f"{hi['ratio']:.2f}x); ± is the bootstrap sd at these set sizes.")
    return out


def spectra_numbers(rows: Rows, cfg: Mapping[str, Any]) -> list[str]:
    s = rows.get(SPECTRA_TABLE, [])
    if not s:
        return []
    order = sorted(s, key=lambda r: r["discrepancy"])
    return ["Spectral discrepancy from real, smallest to largest: "
            + ", ".join(f"{r['setup']} {fmt(r['discrepancy'])}" for r in order)
            + f" [{SPECTRA_TABLE}]."]


def detection_numbers(rows: Rows, cfg: Mapping[str, Any]) -> list[str]:
    """Per training setup and detector, the setups it catches / partly catches / misses / is
    uncertain on, each with its AP interval (`claims.claim`; the training setup marked)."""
    first = train_setups(cfg)[0]  # rows of a table written before `train_setup` existed
    d = [{**r, "train_setup": r.get("train_setup", first)} for r in rows.get(DETECTION_TABLE, [])]
    setups = list(dict.fromkeys(r.get("generator") for r in d))
    trains = list(dict.fromkeys(r.get("train_setup") for r in d))
    out = []
    for ts in trains:
        for kind in dict.fromkeys(r.get("detector") for r in d if r.get("train_setup") == ts):
            by_gen = {r.get("generator"): r for r in d
                      if r.get("detector") == kind and r.get("train_setup") == ts}
            groups: dict[str, list[str]] = {c: [] for c in CLAIMS}
            for g in (g for g in setups if g in by_gen and g not in ("mean", "all")):
                r = by_gen[g]
                mark = " (training setup)" if g == ts else ""
                groups[claim(r.get("ap_lo"), r.get("ap_hi"))].append(
                    f"{g}{mark} AP {with_interval(r['ap'], r.get('ap_lo'), r.get('ap_hi'))}")
            parts = [f"{c} {', '.join(v)}" if c != "uncertain"
                     else f"uncertain on {', '.join(v)}" for c, v in groups.items() if v]
            name = kind if len(trains) == 1 else f"{kind} trained on {ts}"
            if parts:
                out.append(f"{name}: " + "; ".join(parts) + f" [{DETECTION_TABLE}].")
    return out


def bypass_numbers(rows: Rows, cfg: Mapping[str, Any]) -> list[str]:
    mods = [r for r in rows.get(BYPASS_TABLE, []) if r.get("role") == "modified"]
    out = []
    for kind in dict.fromkeys(r.get("kind") for r in mods):
        rates = ", ".join(f"{r['generator']} {with_spread(r['rate_mean'], r.get('rate_std'))}"
                          for r in mods if r["kind"] == kind)
        out.append(f"Bypass ({kind}): detection rates (± std over training draws) {rates} "
                   f"[{BYPASS_TABLE}].")
    return out


def grayscale_numbers(rows: Rows, cfg: Mapping[str, Any]) -> list[str]:
    mean = {r.get("input"): r.get("ap") for r in rows.get(GRAYSCALE_TABLE, [])
            if r.get("generator") == "mean"}
    if not {"rgb", "gray"} <= set(mean):
        return []
    return [f"CNN mean AP on RGB {fmt(mean['rgb'])} vs grayscale {fmt(mean['gray'])} "
            f"[{GRAYSCALE_TABLE}]."]


def explain_numbers(rows: Rows, cfg: Mapping[str, Any]) -> list[str]:
    mm = {r.get("condition"): r.get("ap") for r in rows.get(MASKING_TABLE, [])
          if r.get("generator") == "mean"}
    if not {"none", "top-k", "random-k"} <= set(mm):
        return []
    return [f"Masking the FF-RS top-k maps: mean AP {fmt(mm['none'])} -> {fmt(mm['top-k'])}; "
            f"random-k: {fmt(mm['random-k'])} [{MASKING_TABLE}]."]


SECTIONS: dict[str, ReportSection] = {
    "quality": ReportSection("Image quality: FID and KID per setup, against the floor",
                             (QUALITY_TABLE,), ("quality",), render_quality, quality_numbers),
    "spectra": ReportSection("Spectra per setup against real", (SPECTRA_TABLE,), ("spectra",),
                             render_spectra, spectra_numbers),
    "detection": ReportSection(
        "Detectors trained on real vs each training setup, tested on every setup",
        (DETECTION_TABLE,), ("detection",), render_detection, detection_numbers),
    "bypass": ReportSection(
        "Bypass: detection rates of modified generators (protocol: docs/spectral.md)",
        (BYPASS_TABLE,), ("bypass",), render_bypass, bypass_numbers),
    "robustness": ReportSection("CNN robustness grid", (ROBUSTNESS_TABLE,), ("robustness",),
                                render_robustness),
    "grayscale": ReportSection("CNN colour ablation (grayscale inputs)", (GRAYSCALE_TABLE,),
                               ("grayscale",), render_grayscale, grayscale_numbers),
    "explain": ReportSection("Explanations: FF-RS feature maps and masking",
                             (MASKING_TABLE, RANKING_TABLE, COLOUR_MAPS_TABLE), ("explain",),
                             render_explain, explain_numbers),
}

OPTIONAL_SECTIONS: dict[str, ReportSection] = {
    "robustness-npr": ReportSection("NPR robustness grid", (robustness_files("npr")[0],),
                                    ("robustness-npr",), render_npr_robustness),
    "jpeg96": ReportSection("JPEG-96 control (format bias)", (JPEG96_TABLE,), ("jpeg96",),
                            render_jpeg96, jpeg96_numbers),
    "one-class": ReportSection("One-class detection on reals only, with DOPING",
                               (ONE_CLASS_TABLE, ONE_CLASS_FP_TABLE), ("one-class",),
                               render_one_class, one_class_numbers),
    "lskd": ReportSection("LS-KD: label-smoothed teachers and distillation temperature "
                          "(attribution)", (LSKD_TABLE,), ("lskd",), render_lskd, lskd_numbers),
}
"""Sections of stages that are off by default (`--preset npr`): in the report only when their
stage ran (or failed), never as a "not run" box."""


def all_sections() -> dict[str, ReportSection]:
    """`SECTIONS` with the optional ones after the robustness grid, in page order."""
    out: dict[str, ReportSection] = {}
    for sec_id, spec in SECTIONS.items():
        out[sec_id] = spec
        if sec_id == "robustness":
            out.update(OPTIONAL_SECTIONS)
    return out
