"""The study's LS-KD stage (`--preset lskd`): config, train/val fakes of every setup, the
stage end to end (tiny) with resume, the verdict sentence and the report sections."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ganforensics.errors import ConfigError
from ganforensics.evaluate.lskd import LSKD_COLUMNS, RESULT_FILE, student_label
from ganforensics.io.runs import RunFolder
from ganforensics.study.claims import lskd_verdict
from ganforensics.study.config import load_config
from ganforensics.study.context import StudyContext
from ganforensics.study.data_stages import fake_counts
from ganforensics.study.lskd_stages import LSKD_DIR, LSKD_TABLE
from ganforensics.study.pipeline import build_stages, run_study
from ganforensics.study.report import collect_results, write_report
from ganforensics.study.report_sections import GENERIC_VIEW_NOTE
from ganforensics.study.report_seeds import lskd_seed_cells, write_seeds_report
from ganforensics.study.seeds import aggregate_table
from ganforensics.study.stages import StageResult
from test_study_report import _synthetic_run

SETUPS = ["BASELINE", "N.1.5", "Z.1.5"]
TINY = {
    "fakes": {"arms": ["sampled"], "n_train": 12, "n_val": 6, "n_test": 8},
    "data": {"max_patches": 90},
    "gan": {"setups": SETUPS, "steps": 2, "batch_size": 8, "checkpoint_every": 2,
            "source": "train"},
    "quality": {"extractor": "fallback"},
    "detectors": {"lskd": {"enabled": True, "alphas": [0, 0.1], "temperatures": [1, 4],
                           "epochs": 1, "batch_size": 16,
                           "n_per_class": {"train": 12, "val": 6, "test": 8}}},
    "evaluate": {"resamples": 20},
    "bypass": {"enabled": False},
}


def test_off_by_default_on_in_its_preset_and_errors_name_the_key() -> None:
    cfg = load_config({}, preset="quick")
    assert cfg["detectors"]["lskd"]["enabled"] is False
    assert "lskd" not in [s.name for s in build_stages(cfg)]
    on = load_config({}, preset=["quick", "lskd"])
    c = on["detectors"]["lskd"]
    assert c["enabled"] and c["alphas"] == [0.0, 0.1] and c["temperatures"] == [1, 2, 4, 16]
    assert on["fakes"]["arms"] == ["sampled"] and not on["explain"]["enabled"]
    assert not on["detectors"]["one_class"]["enabled"] and not on["detectors"]["npr"]["enabled"]
    names = [s.name for s in build_stages(on)]
    lskd = next(s for s in build_stages(on) if s.name == "lskd")
    assert {f"fakes-{s['name']}" for s in on["gan"]["setups"]} <= set(lskd.needs)
    assert names.index("lskd") > max(names.index(n) for n in lskd.needs)
    for bad, key in [({"alphas": [1.0]}, "'detectors.lskd.alphas[0]'"),
                     ({"alphas": []}, "'detectors.lskd.alphas'"),
                     ({"temperatures": [2, 0]}, "'detectors.lskd.temperatures[1]'"),
                     ({"temperatures": [2, 2]}, "'detectors.lskd.temperatures'"),
                     ({"n_per_class": {"val": 0}}, "'detectors.lskd.n_per_class.val'"),
                     ({"arch": "vgg"}, "'detectors.lskd.arch'"),
                     ({"epoch": 3}, "'detectors.lskd.epoch'"),
                     ({"aug_prob": 2.0}, "'detectors.lskd.aug_prob'")]:
        with pytest.raises(ConfigError, match=key.replace(".", r"\.").replace("[", r"\[")):
            load_config({"detectors": {"lskd": bad}})


@pytest.mark.parametrize("lskd", [False, True])
def test_every_setup_gets_train_val_fakes_only_with_lskd_on(lskd: bool) -> None:
    for arms in (["sampled"], ["sampled", "simulated"]):
        cfg = load_config({"fakes": {"arms": arms}, "detectors": {"lskd": {"enabled": lskd}}})
        ctx = StudyContext(run=None, cfg=cfg)  # type: ignore[arg-type]  # no files read
        f = cfg["fakes"]
        for s in cfg["gan"]["setups"]:
            counts = fake_counts(ctx, s["name"])
            if lskd or s["name"] == "BASELINE":
                assert counts == {"test": f["n_test"], "train": f["n_train"], "val": f["n_val"]}
            else:
                assert counts == {"test": f["n_test"]}


def _cells(values: dict[tuple[float, str], tuple[float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"alpha": a, "model": m, "value": v, "lo": lo, "hi": hi,
                          "text": f"{v:.3f}"} for (a, m), (v, lo, hi) in values.items()])


def test_verdict_is_worded_from_the_spreads() -> None:
    wins = _cells({(0.1, "T=1"): (0.99, 0.98, 1.0), (0.0, "T=1"): (0.9, 0.88, 0.92),
                   (0.1, "T=4"): (0.8, 0.75, 0.85)})
    assert lskd_verdict(wins, "95 % interval").startswith("'LS teacher + T = 1' wins here")
    close = _cells({(0.1, "T=1"): (0.99, 0.97, 1.0), (0.0, "T=1"): (0.98, 0.96, 0.99),
                    (0.1, "T=4"): (0.8, 0.75, 0.85)})
    text = lskd_verdict(close, "95 % interval")
    assert "overlaps those of 1 of the 2 other cells" in text and "α = 0, T=1" in text
    assert "does not show that" in text
    loses = _cells({(0.1, "T=1"): (0.8, 0.78, 0.82), (0.0, "T=2"): (0.95, 0.9, 0.97)})
    text = lskd_verdict(loses, "mean ± sd range")
    assert text.startswith("'LS teacher + T = 1' does not win here: α = 0, T=2")
    assert "do not overlap" in text
    nan = _cells({(0.1, "T=1"): (0.99, np.nan, np.nan), (0.0, "T=1"): (0.5, np.nan, np.nan)})
    assert "cannot tell it apart" in lskd_verdict(nan, "mean ± sd range")
    no_ls = _cells({(0.0, "T=1"): (0.9, 0.8, 1.0), (0.0, "T=4"): (0.8, 0.7, 0.9)})
    assert "cannot say" in lskd_verdict(no_ls, "95 % interval")


def _lskd_table(rng: np.random.Generator, alphas=(0.0, 0.1), temps=(1.0, 4.0)) -> pd.DataFrame:
    rows = []
    for a in alphas:
        for model, t in [("teacher", np.nan), *((student_label(t), t) for t in temps)]:
            acc = float(rng.uniform(0.6, 0.9))
            rows.append({"alpha": a, "model": model, "temperature": t, "arch": "small",
                         "n_test": 40, "accuracy": acc, "accuracy_lo": acc - 0.05,
                         "accuracy_hi": acc + 0.05, "macro_f1": acc - 0.01,
                         "macro_f1_lo": acc - 0.06, "macro_f1_hi": acc + 0.04,
                         "within": 0.5, "between": 1.0, "cluster_ratio": 0.5,
                         "epochs": 1, "train_seconds": 1.0})
    return pd.DataFrame(rows, columns=list(LSKD_COLUMNS))


def test_report_section_renders_only_when_the_stage_ran(tmp_path) -> None:
    rng = np.random.default_rng(0)
    run, cfg, stages = _synthetic_run(tmp_path / "off", rng)
    assert '<section id="lskd">' not in write_report(run, cfg, stages).read_text()
    run, cfg, stages = _synthetic_run(tmp_path / "on", rng)
    table = _lskd_table(rng)
    # the LS student at T = 1 is best by a margin: the page must say it wins
    ls = (table["alpha"] == 0.1) & (table["model"] == "T=1")
    table.loc[ls, ["accuracy", "accuracy_lo", "accuracy_hi"]] = [0.99, 0.97, 1.0]
    run.write_csv(LSKD_TABLE, table)
    stages = [*stages, StageResult("lskd", "done", 1.0)]
    results = collect_results(run, cfg, stages)
    assert results["sections"]["lskd"]["status"] == "ok"
    page = write_report(run, cfg, stages).read_text()
    assert '<section id="lskd">' in page and "Source: <code>tables/lskd.csv</code>" in page
    assert "&#x27;LS teacher + T = 1&#x27; wins here" in page or \
        "'LS teacher + T = 1' wins here" in page
    assert "0.990 [0.970, 1.000]" in page and "teacher α" in page
    assert GENERIC_VIEW_NOTE not in page


def test_seed_aggregate_gives_mean_sd_cells(tmp_path) -> None:
    rng = np.random.default_rng(1)
    tables = {s: _lskd_table(rng) for s in (1, 2, 3)}
    agg = aggregate_table(tables, ("alpha", "model"), ("accuracy", "macro_f1", "cluster_ratio"))
    cells = lskd_seed_cells(agg)
    assert len(cells) == 4 and set(cells["model"]) == {"T=1", "T=4"}
    want = np.mean([t.loc[(t["alpha"] == 0.1) & (t["model"] == "T=4"), "accuracy"].iloc[0]
                    for t in tables.values()])
    got = cells[(cells["alpha"] == 0.1) & (cells["model"] == "T=4")]
    assert float(got["value"].iloc[0]) == pytest.approx(want)
    assert (cells["lo"] < cells["value"]).all() and "±" in got["text"].iloc[0]
    cfg = load_config({"seeds": [1, 2, 3]}, preset=["quick", "lskd"])
    run = RunFolder.create(tmp_path / "top", cfg, seed=cfg["seed"])
    page = write_seeds_report(run, cfg, {LSKD_TABLE: agg}, []).read_text()
    assert '<section id="lskd">' in page and "Ranges: mean ± sd across 3 seeds" in page
    assert page.count("Source: <code>tables/lskd.csv</code>") == 4


@pytest.mark.slow
def test_tiny_stage_rows_classes_and_resume(tmp_path, one_thread) -> None:
    cfg = load_config(TINY)
    keep = {"patches", "lskd"} | {f"{k}-{s}" for k in ("gan", "fakes") for s in SETUPS}
    stages = [s for s in build_stages(cfg) if s.name in keep]
    out = tmp_path / "run"
    _, results = run_study(cfg, out, stages=stages)
    assert {r.name: r.status for r in results} == dict.fromkeys(
        [s.name for s in stages], "done")
    for s in SETUPS:  # every setup has train/val fakes, not only the detectors' BASELINE
        fakes = pd.read_csv(out / "fakes" / s / "manifest.csv")
        assert set(fakes["split"]) == {"train", "val", "test"}
    table = pd.read_csv(out / LSKD_TABLE)
    assert tuple(table.columns) == LSKD_COLUMNS
    assert list(zip(table["alpha"], table["model"], strict=True)) == [
        (a, m) for a in (0.0, 0.1) for m in ("teacher", "T=1", "T=4")]
    assert table["accuracy"].between(0, 1).all() and (table["cluster_ratio"] > 0).all()
    assert (table["accuracy_lo"] <= table["accuracy"] + 1e-9).all()
    assert (table["n_test"] == 8 * (1 + len(SETUPS))).all()
    models = sorted(p.name for p in (out / LSKD_DIR).iterdir() if p.name != "manifests")
    assert models == ["student-a0-T1", "student-a0-T4", "student-a0.1-T1", "student-a0.1-T4",
                      "teacher-a0", "teacher-a0.1"]
    for name in models:  # real + every setup are the attribution classes
        meta = json.loads((out / LSKD_DIR / name / "model.json").read_text())
        assert meta["classes"] == ["real", *sorted(SETUPS)]
    smoothing = [json.loads((out / LSKD_DIR / f"teacher-a{a}" / RESULT_FILE).read_text())
                 ["settings"]["alpha"] for a in ("0", "0.1")]
    assert smoothing == [0.0, 0.1]
    # resume: the stage reruns, every finished model is skipped (weights untouched)
    stamps = {n: (out / LSKD_DIR / n / "model.safetensors").stat().st_mtime_ns for n in models}
    (out / "stages" / "lskd.done").unlink()
    _, again = run_study(cfg, out, stages=stages)
    assert {r.name: r.status for r in again}["lskd"] == "done"
    assert stamps == {n: (out / LSKD_DIR / n / "model.safetensors").stat().st_mtime_ns
                      for n in models}
    pd.testing.assert_frame_equal(pd.read_csv(out / LSKD_TABLE), table)
    page = (out / "report.html").read_text()
    assert '<section id="lskd">' in page and GENERIC_VIEW_NOTE not in page
