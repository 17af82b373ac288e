"""Report building from a synthetic run folder whose tables have exactly the columns the
pipeline writes (the stage modules' constants): sections, pivots, key numbers, captions from the
config, inlined figures, traceability, range checks of the numbers."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from ganforensics.explain.ffrs import RANKING_COLUMNS
from ganforensics.io.atomic import save_png_atomic
from ganforensics.io.runs import RunFolder
from ganforensics.study.config import load_config
from ganforensics.study.detector_stages import (
    BYPASS_COLUMNS,
    BYPASS_TABLE,
    DETECTION_COLUMNS,
    DETECTION_TABLE,
    GRAYSCALE_COLUMNS,
    GRAYSCALE_TABLE,
    ROBUSTNESS_COLUMNS,
    ROBUSTNESS_TABLE,
)
from ganforensics.study.explain_stages import (
    COLOUR_MAPS_COLUMNS,
    COLOUR_MAPS_TABLE,
    EXPLAIN_SUMMARY,
    MASKING_COLUMNS,
    MASKING_TABLE,
    RANKING_TABLE,
)
from ganforensics.study.measure_stages import (
    QUALITY_COLUMNS,
    QUALITY_TABLE,
    SPECTRA_COLUMNS,
    SPECTRA_TABLE,
)
from ganforensics.study.pipeline import build_stages
from ganforensics.study.report import check_results, collect_results, write_report
from ganforensics.study.report_html import HtmlReport
from ganforensics.study.report_sections import GENERIC_VIEW_NOTE, SECTIONS
from ganforensics.study.stages import NOT_APPLICABLE, StageResult

SETUPS = ["BASELINE", "N.1.5", "B.1.5", "Z.1.5", "N.3.5"]
ROWS = [*SETUPS, "mean", "all"]  # per_generator's rows
KINDS = ["spectral-decay", "spectral-profile", "cnn"]


def _table(columns, keys, rng, **fixed):
    """A table with exactly `columns`: `keys` / `fixed` columns as given, the rest uniform
    numbers in (0, 1) (valid for every rate and count column)."""
    assert set(keys) | set(fixed) <= set(columns)
    n = len(next(iter(keys.values())))
    data = {c: keys.get(c, fixed.get(c)) for c in columns}
    for c, v in data.items():
        if v is None:
            data[c] = rng.uniform(0.05, 0.95, n)
    return pd.DataFrame(data)[list(columns)]


def _grid(a, b):
    return [x for x in a for _ in b], [y for _ in a for y in b]


def _write_tables(run, rng, *, standard, bad_ap):
    fid = rng.uniform(10, 90, 5)
    run.write_csv(QUALITY_TABLE, _table(
        QUALITY_COLUMNS, {"setup": SETUPS, "fid": fid, "ratio": fid / 8.0}, rng, arm="sampled",
        floor=8.0, psnr_db=np.nan, n_real=30, n_fake=30, feature_dim=64, extractor="fallback",
        standard_extractor=standard))
    run.write_csv(SPECTRA_TABLE, _table(
        SPECTRA_COLUMNS, {"setup": SETUPS, "signed_difference": rng.uniform(-3, 3, 5)}, rng,
        top_fraction=0.25, profile="durall"))
    det, gen = _grid(KINDS, ROWS)
    detection = _table(DETECTION_COLUMNS, {"detector": det, "generator": gen}, rng,
                       train_setup="BASELINE")
    if bad_ap is not None:
        detection.loc[3, "ap"] = bad_ap
    run.write_csv(DETECTION_TABLE, detection)
    others = [*SETUPS[1:], "real (held-out)", "BASELINE (held-out)"]
    roles = ["modified"] * 4 + ["heldout-real", "heldout-baseline"]
    kind, gen = _grid(KINDS[:2], others)
    run.write_csv(BYPASS_TABLE, _table(
        BYPASS_COLUMNS, {"kind": kind, "generator": gen, "role": roles * 2}, rng,
        rates="[0.1, 0.2]", classifier="knn"))
    cond, gen = _grid(["clean", "jpeg:75"], ROWS)
    run.write_csv(ROBUSTNESS_TABLE, _table(ROBUSTNESS_COLUMNS,
                                           {"condition": cond, "generator": gen}, rng))
    gen, inp = _grid(ROWS, ["rgb", "gray"])
    run.write_csv(GRAYSCALE_TABLE, _table(GRAYSCALE_COLUMNS, {"generator": gen, "input": inp},
                                          rng))
    cond, gen = _grid(["none", "top-k", "low-k", "random-k"], ROWS)
    run.write_csv(MASKING_TABLE, _table(MASKING_COLUMNS, {"condition": cond, "generator": gen},
                                        rng, k=8, draws=2, seed=7, position="post-relu"))
    keys = [f"conv{1 + i % 4}:{i}" for i in range(20)]
    run.write_csv(RANKING_TABLE, _table(
        RANKING_COLUMNS, {"rank": list(range(1, 21)), "key": keys}, rng,
        layer=[k.split(":")[0] for k in keys], channel=list(range(20))))
    run.write_csv(COLOUR_MAPS_TABLE, _table(
        COLOUR_MAPS_COLUMNS, {"key": keys[:8]}, rng, layer="conv1", channel=list(range(8)),
        rank=list(range(1, 9)), colour_conditional=[True, False] * 4))


def _synthetic_run(tmp_path, rng, *, standard=False, bad_ap=None, overrides=None):
    cfg = load_config(overrides or {}, preset="quick")
    run = RunFolder.create(tmp_path / "run", cfg, seed=cfg["seed"])
    real = pd.DataFrame({"path": [f"p{i}.png" for i in range(12)], "label": 0,
                         "generator": "real", "source": [f"photo{i % 4}" for i in range(12)],
                         "split": ["train"] * 6 + ["val"] * 3 + ["test"] * 3})
    run.write_csv("data/real.csv", real)
    for s in SETUPS:
        run.write_csv(f"fakes/{s}/manifest.csv", pd.DataFrame(
            {"path": ["f.png"] * 3, "label": 1, "generator": s, "split": "test"}))
        save_png_atomic(run.file(f"figures/grid_{s}.png"),
                        rng.integers(0, 256, (20, 20, 3), dtype=np.uint8))
    save_png_atomic(run.file("figures/grid_real.png"), np.zeros((8, 8, 3), np.uint8))
    save_png_atomic(run.file("figures/spectra.png"), np.full((8, 8, 3), 200, np.uint8))
    _write_tables(run, rng, standard=standard, bad_ap=bad_ap)
    stages = [StageResult(s.name, "done", 1.0) for s in build_stages(cfg)]
    return run, cfg, stages


def _section(page: str, sec_id: str) -> str:
    return page.split(f'<section id="{sec_id}">')[1].split("</section>")[0]


def test_report_has_every_section_inlined_and_traceable(tmp_path, rng) -> None:
    run, cfg, stages = _synthetic_run(tmp_path, rng)
    path = write_report(run, cfg, stages)
    page = path.read_text()
    for sec_id in ["overview", "settings", "data", *SECTIONS, "caveats", "files"]:
        assert f'<section id="{sec_id}">' in page
    # self-contained: figures inlined, no external references
    assert page.count('src="data:image/png;base64,') == 1 + 5 + 1  # real, 5 setups, spectra
    assert not re.search(r'(src|href)="(?!data:|#)', page)
    assert "http://" not in page and "https://" not in page
    # every table names its source file
    assert page.count("<table>") == page.count("Source: <code>")
    for f in ("tables/quality.csv", "tables/detection.csv", "tables/bypass.csv"):
        assert f"Source: <code>{f}</code>" in page
    assert "NON-STANDARD feature extractor" in page
    # the key numbers restate table values, naming their file
    q = pd.read_csv(run.path / "tables/quality.csv")
    lo = q.loc[q["fid"].idxmin()]
    assert "Real-vs-real FID floor at n = 30: 8.0 [tables/quality.csv]" in page
    assert (f"Sampled fakes: FID from {lo['fid']:.3f} ± {lo['fid_sd']:.3f} ({lo['setup']}, "
            f"{lo['ratio']:.2f}x the floor)") in page
    results = json.loads((run.path / "results.json").read_text())
    assert results["problems"] == []
    assert all(results["sections"][s]["status"] == "ok" for s in SECTIONS)
    det = results["sections"]["detection"]["tables"]["tables/detection.csv"]
    assert len(det) == 21 and tuple(det[0]) == DETECTION_COLUMNS


def test_standard_extractor_has_no_fallback_warning(tmp_path, rng) -> None:
    run, cfg, stages = _synthetic_run(tmp_path, rng, standard=True)
    page = write_report(run, cfg, stages).read_text()
    assert "NON-STANDARD" not in page


def test_out_of_range_and_nan_values_are_flagged(tmp_path, rng) -> None:
    run, cfg, stages = _synthetic_run(tmp_path, rng, bad_ap=1.2)
    results = collect_results(run, cfg, stages)
    problems = check_results(results)
    assert len(problems) == 1 and "'ap'" in problems[0] and "outside [0, 1]" in problems[0]
    results["sections"]["quality"]["tables"]["tables/quality.csv"][0]["fid"] = float("inf")
    results["sections"]["quality"]["tables"]["tables/quality.csv"][1]["fid"] = -3.0
    problems = check_results(results)
    assert any("not finite" in p for p in problems)
    assert any("negative" in p for p in problems)


def test_failed_stage_section_shows_reason_and_no_numbers(tmp_path, rng) -> None:
    run, cfg, stages = _synthetic_run(tmp_path, rng)
    stages = [s if s.name != "bypass" else StageResult("bypass", "failed", 0.1,
                                                       error="RuntimeError: missing")
              for s in stages]
    write_report(run, cfg, stages)
    results = json.loads((run.path / "results.json").read_text())
    assert results["sections"]["bypass"]["status"] == "failed"
    assert "tables" not in results["sections"]["bypass"]
    page = (run.path / "report.html").read_text()
    bypass = page.split('<section id="bypass">')[1].split("</section>")[0]
    assert "RuntimeError: missing" in bypass and "<table>" not in bypass


def test_explain_without_confident_fakes_is_not_applicable_with_its_reason(tmp_path,
                                                                         rng) -> None:
    run, cfg, stages = _synthetic_run(tmp_path, rng)
    for f in (MASKING_TABLE, RANKING_TABLE, COLOUR_MAPS_TABLE):
        (run.path / f).unlink()
    reason = "none of the 300 fakes is detected with P(fake) >= 0.9 (max 0.5756)"
    run.mark_stage_done("explain", {NOT_APPLICABLE: reason})
    write_report(run, cfg, stages)
    results = json.loads((run.path / "results.json").read_text())
    assert results["sections"]["explain"] == {
        "title": results["sections"]["explain"]["title"], "status": "not applicable",
        "error": reason}
    section = _section((run.path / "report.html").read_text(), "explain")
    assert "Not applicable: " + reason.replace(">", "&gt;") in section
    assert "<table>" not in section
    # without the marker's reason the same missing tables are reported as missing output
    run.mark_stage_done("explain", {})
    results = collect_results(run, cfg, stages)
    assert results["sections"]["explain"]["status"] == "no output"


def test_the_explain_stage_ends_not_applicable_when_no_fake_is_confident(tmp_path,
                                                                        monkeypatch) -> None:
    from types import SimpleNamespace

    import ganforensics.study.explain_stages as es
    from ganforensics.explain.ffrs import NoConfidentFakesError

    def no_confident(*_a, **_k):
        raise NoConfidentFakesError("none of the 3 fakes is detected with P(fake) >= 0.9")

    val = pd.DataFrame({"path": ["a.png", "b.png"], "label": [0, 1]})
    monkeypatch.setattr(es, "load_study_detector", lambda ctx, kind: object())
    monkeypatch.setattr(es, "train_val_sets", lambda ctx: (val, val))
    monkeypatch.setattr(es, "decode", lambda rows, what: ([np.zeros((8, 8, 3), np.uint8)], rows))
    monkeypatch.setattr(es, "compute_ffrs", no_confident)
    cfg = load_config({}, preset="quick")
    run = RunFolder.create(tmp_path / "run", cfg, seed=cfg["seed"])
    out = es.stage_explain(SimpleNamespace(cfg=cfg, run=run, seed=cfg["seed"]))
    assert out[NOT_APPLICABLE].endswith("none of the 3 fakes is detected with P(fake) >= 0.9")
    assert json.loads((run.path / EXPLAIN_SUMMARY).read_text()) == out
    assert not (run.path / MASKING_TABLE).exists() and not (run.path / RANKING_TABLE).exists()


def test_html_escapes_text() -> None:
    rep = HtmlReport("t<1>")
    rep.section("s", "a & b").p("<script>x</script>").table(
        pd.DataFrame({"c<": ["<b>"], "v": [0.123456]}), "cap <i>", "f.csv")
    page = rep.to_html()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "&lt;b&gt;" in page and "0.123" in page


def test_every_section_uses_its_own_layout_and_states_its_key_numbers(tmp_path, rng) -> None:
    run, cfg, stages = _synthetic_run(tmp_path, rng)
    page = write_report(run, cfg, stages).read_text()
    for sec_id in SECTIONS:
        assert GENERIC_VIEW_NOTE not in _section(page, sec_id), sec_id
    # the pivots of each section (columns named after detectors, inputs, conditions)
    assert all(f">{k}</th>" in _section(page, "detection") for k in KINDS)
    assert ">spectral-decay rate</th>" in _section(page, "bypass")
    assert ">AP gray</th>" in _section(page, "grayscale")
    assert ">acc rgb</th>" in _section(page, "grayscale")
    assert ">AP random-k std</th>" in _section(page, "explain")
    assert ">jpeg:75</td>" in _section(page, "robustness")
    # one key number per section that has any, each naming its file
    overview = _section(page, "overview")
    for text in ("Real-vs-real FID floor at n = ",
                 "Spectral discrepancy from real, smallest to largest", "spectral-decay: ",
                 "cnn: ", "Bypass (spectral-profile): detection rates",
                 "CNN mean AP on RGB", "Masking the FF-RS top-k maps"):
        assert text in overview, text
    det = pd.read_csv(run.path / DETECTION_TABLE)
    base = det[(det["detector"] == "cnn") & (det["generator"] == "BASELINE")].iloc[0]
    assert (f"BASELINE (training setup) AP {base['ap']:.3f} [{base['ap_lo']:.3f}, "
            f"{base['ap_hi']:.3f}]") in overview
    # the detection and quality tables show intervals / spreads
    assert re.search(r">0\.\d{3} \[0\.\d{3}, 0\.\d{3}\]</td>", _section(page, "detection"))
    assert re.search(r">\d+\.\d+ ± \d\.\d{3}</td>", _section(page, "quality"))


def test_a_renamed_column_falls_back_to_the_generic_view(tmp_path, rng) -> None:
    run, cfg, stages = _synthetic_run(tmp_path, rng)
    det = pd.read_csv(run.path / DETECTION_TABLE).rename(columns={"fake_acc_cal": "fake_acc"})
    run.write_csv(DETECTION_TABLE, det)
    page = write_report(run, cfg, stages).read_text()
    assert GENERIC_VIEW_NOTE in _section(page, "detection")
    assert GENERIC_VIEW_NOTE not in _section(page, "bypass")


@pytest.mark.parametrize("monitor", ["val_loss", "val_acc"])
def test_captions_and_caveats_read_the_config(tmp_path, rng, monitor) -> None:
    over = {"spectra": {"top_fraction": 0.1}, "bypass": {"n_train": 37, "draws": 4},
            "explain": {"top_k": 5}, "detectors": {"cnn": {"monitor": monitor}}}
    if monitor == "val_loss":  # a learning rate of its own (null: the recipe's)
        over["detectors"]["cnn"]["lr"] = 0.002
    run, cfg, stages = _synthetic_run(tmp_path, rng, overrides=over)
    page = write_report(run, cfg, stages).read_text()
    assert "top 10% of frequency bins" in _section(page, "spectra")
    assert "37 real + 37 BASELINE fakes" in _section(page, "bypass")
    assert "mean over 4 random training draws" in _section(page, "bypass")
    assert "100 real" not in page and "top quarter" not in page
    caveats = _section(page, "caveats")
    assert "masks the top 5 of its 20 feature maps of the &#x27;small_npr&#x27; CNN" in caveats
    assert f"at most {cfg['detectors']['cnn']['epochs']} epochs" in caveats
    assert "FID from 30 images, fewer than the feature dimension (64)" in caveats
    if monitor == "val_loss":
        assert "stops early on validation loss" in caveats
        assert "Adam learning rate 0.002;" in caveats
    else:
        assert "Adam learning rate 0.0001;" in caveats  # wang2020's
        assert "stops early on validation accuracy" in caveats
        assert "validation loss" not in caveats


def test_caveats_name_the_recipe_of_shipped_generators(tmp_path, rng) -> None:
    run, cfg, stages = _synthetic_run(tmp_path, rng)
    meta = {"arch": "sngan", "steps": 20000,
            "config": {"arch": "sngan", "d_depth": 2, "augment": ["color", "cutout"],
                       "ema": 0.999, "steps": 20000}}
    run.write_json("gans/BASELINE/generator.json", meta)
    run.write_json("gans/BASELINE/shipped.json", {"steps": 20000, "ratio": 1.9})
    caveats = _section(write_report(run, cfg, stages).read_text(), "caveats")
    assert (f"GANs of {cfg['gan']['steps']} generator steps (BASELINE: generators shipped with "
            "the package (trained once: sngan, D of 2 convs per resolution, D&#x27;s inputs "
            "augmented (color, cutout), moving average of G (decay 0.999), 20,000 steps))"
            ) in caveats
