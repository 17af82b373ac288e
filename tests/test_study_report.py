"""Report building from a synthetic run folder: sections, inlined figures, traceability,
range checks of the numbers."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd

from ganforensics.io.atomic import save_png_atomic
from ganforensics.io.runs import RunFolder
from ganforensics.study.config import load_config
from ganforensics.study.report import (
    SECTIONS,
    HtmlReport,
    check_results,
    collect_results,
    write_report,
)
from ganforensics.study.stages import StageResult

SETUPS = ["BASELINE", "N.1.5", "B.1.5", "Z.1.5", "N.3.5"]


def _synthetic_run(tmp_path, rng, *, standard=False, bad_ap=None):
    cfg = load_config(preset="quick")
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
    run.write_csv("tables/quality.csv", pd.DataFrame(
        {"setup": SETUPS, "fid": rng.uniform(10, 90, 5), "kid_mean": rng.uniform(0, .1, 5),
         "kid_std": rng.uniform(0, .01, 5), "n_real": 30, "n_fake": 40,
         "extractor": "fallback", "standard_extractor": standard}))
    run.write_csv("tables/spectra.csv", pd.DataFrame(
        {"setup": SETUPS, "discrepancy": rng.uniform(0, 5, 5)}))
    ap = rng.uniform(.5, 1, 15)
    if bad_ap is not None:
        ap[3] = bad_ap
    run.write_csv("tables/detection.csv", pd.DataFrame(
        {"detector": np.repeat(["spectral-decay", "spectral-profile", "cnn"], 5),
         "generator": SETUPS * 3, "ap": ap, "acc": rng.uniform(.4, 1, 15)}))
    run.write_csv("tables/bypass.csv", pd.DataFrame(
        {"setup": SETUPS, "detection_rate": rng.uniform(0, 1, 5)}))
    run.write_csv("tables/robustness.csv", pd.DataFrame(
        {"perturbation": ["none", "jpeg:75"], "ap": [.9, .7], "acc": [.8, .6]}))
    run.write_csv("tables/grayscale.csv", pd.DataFrame(
        {"generator": SETUPS, "ap_rgb": rng.uniform(.5, 1, 5), "ap_gray": rng.uniform(.5, 1, 5)}))
    run.write_csv("tables/masking.csv", pd.DataFrame(
        {"masking": ["none", "top-k", "random-k"], "ap": [.9, .6, .88]}))
    run.write_csv("tables/ffrs_ranking.csv", pd.DataFrame(
        {"layer": ["conv1", "conv2"], "channel": [3, 1], "relevance": [.5, .2]}))
    names = ["patches", *[f"gan-{s}" for s in SETUPS], "quality", "spectra", "detection",
             "bypass", "robustness", "grayscale", "explain"]
    stages = [StageResult(n, "done", 1.0) for n in names]
    return run, cfg, stages


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
    assert f"FID ranges from {lo['fid']:.3f} ({lo['setup']})" in page
    results = json.loads((run.path / "results.json").read_text())
    assert results["problems"] == []
    assert all(results["sections"][s]["status"] == "ok" for s in SECTIONS)
    det = results["sections"]["detection"]["tables"]["tables/detection.csv"]
    assert len(det) == 15 and {"detector", "generator", "ap", "acc"} <= set(det[0])


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
                                                       error="StageUnavailableError: missing")
              for s in stages]
    write_report(run, cfg, stages)
    results = json.loads((run.path / "results.json").read_text())
    assert results["sections"]["bypass"]["status"] == "failed"
    assert "tables" not in results["sections"]["bypass"]
    page = (run.path / "report.html").read_text()
    bypass = page.split('<section id="bypass">')[1].split("</section>")[0]
    assert "StageUnavailableError: missing" in bypass and "<table>" not in bypass


def test_html_escapes_text() -> None:
    rep = HtmlReport("t<1>")
    rep.section("s", "a & b").p("<script>x</script>").table(
        pd.DataFrame({"c<": ["<b>"], "v": [0.123456]}), "cap <i>", "f.csv")
    page = rep.to_html()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "&lt;b&gt;" in page and "0.123" in page


def test_spectral_discrepancy_uses_the_top_band_only() -> None:
    from ganforensics.study.pipeline import spectral_discrepancy

    real = np.zeros((3, 8))
    fake = np.zeros((4, 8))
    fake[:, :6] = 50.0  # differences below the top quarter do not count
    fake[:, 6:] = [-2.0, 4.0]
    assert spectral_discrepancy(real, fake, 0.25) == 3.0
    assert spectral_discrepancy(real, fake, 0.25, signed=True) == 1.0
    assert spectral_discrepancy(real, fake, 1.0) == (6 * 50 + 6) / 8
