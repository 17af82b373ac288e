"""The study's optional NPR detector and JPEG-96 control: off by default, on with --preset npr;
their stages, and their report sections only when they ran."""

from __future__ import annotations

import numpy as np

from ganforensics.study.config import load_config
from ganforensics.study.detector_stages import (
    JPEG96_COLUMNS,
    JPEG96_TABLE,
    ROBUSTNESS_COLUMNS,
    robustness_files,
)
from ganforensics.study.pipeline import build_stages
from ganforensics.study.report import collect_results, write_report
from ganforensics.study.report_html import fmt
from ganforensics.study.stages import StageResult
from test_study_report import ROWS, _synthetic_run, _table


def test_npr_is_off_by_default_and_on_in_its_preset():
    default = load_config({}, preset="quick")
    assert default["detectors"]["npr"]["enabled"] is False
    assert default["evaluate"]["jpeg96"] is False
    names = [s.name for s in build_stages(default)]
    assert not any("npr" in n or n == "jpeg96" for n in names)
    cfg = load_config({}, preset=["quick", "npr"])
    assert cfg["detectors"]["npr"] == {"enabled": True, "arch": "npr_small",
                                       "recipe": "npr_native", "epochs": 3, "batch_size": 32}
    names = [s.name for s in build_stages(cfg)]
    assert {"detector-npr", "detector-npr@sim-BASELINE", "jpeg96", "robustness-npr"} <= set(names)
    assert names.index("detection") > names.index("detector-npr")
    jpeg = next(s for s in build_stages(cfg) if s.name == "jpeg96")
    assert "detector-npr" in jpeg.needs and "detector-cnn" in jpeg.needs


def test_report_shows_the_optional_sections_only_when_they_ran(tmp_path):
    rng = np.random.default_rng(0)
    run, cfg, stages = _synthetic_run(tmp_path / "off", rng)
    page = write_report(run, cfg, stages).read_text()
    assert '<section id="jpeg96">' not in page and "Not available (not run)" not in page

    run, cfg, stages = _synthetic_run(tmp_path / "on", rng)
    kinds = ["spectral-decay", "cnn", "npr"]
    conds = ["none", "fakes:jpeg:96", "jpeg:96"]
    det = [k for k in kinds for _ in conds for _ in ROWS]
    cond = [c for _ in kinds for c in conds for _ in ROWS]
    gen = [g for _ in kinds for _ in conds for g in ROWS]
    table = _table(JPEG96_COLUMNS, {"detector": det, "condition": cond, "generator": gen}, rng)
    table["worst_generator"] = np.where(table["generator"] == "mean", "N.1.5", "")
    run.write_csv(JPEG96_TABLE, table)
    rob = _table(ROBUSTNESS_COLUMNS, {"condition": ["none"] * len(ROWS), "generator": ROWS},
                 rng)
    run.write_csv(robustness_files("npr")[0], rob)
    stages = [*stages, StageResult("jpeg96", "done", 1.0),
              StageResult("robustness-npr", "done", 1.0)]
    results = collect_results(run, cfg, stages)
    assert results["sections"]["jpeg96"]["status"] == "ok"
    page = write_report(run, cfg, stages).read_text()
    assert '<section id="jpeg96">' in page and '<section id="robustness-npr">' in page
    assert page.index('id="robustness"') < page.index('id="jpeg96"') < page.index('id="grayscale"')
    mean = table[(table["detector"] == "npr") & (table["generator"] == "mean")
                 & (table["condition"] == "none")]
    assert f"JPEG-96 control, npr: mean AP none {fmt(float(mean['ap'].iloc[0]))}" in page
    assert "Source: <code>tables/jpeg96.csv</code>" in page
