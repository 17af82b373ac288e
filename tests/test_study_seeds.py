"""Multi-seed studies (`study.seeds`): the `seeds` key and --seeds, per-seed sub-folders that
resume, the aggregate tables (mean / sd across seeds) and the top-level report."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ganforensics.cli.main import app
from ganforensics.errors import ConfigError, RunInUseError
from ganforensics.study.config import load_config, parse_seeds
from ganforensics.study.seeds import (
    AGGREGATES,
    CLAIMS_TABLE,
    aggregate_table,
    run_seeds,
    run_studies,
    seed_config,
    seed_dir,
)
from ganforensics.study.stages import Stage
from test_study_resume import _HOLD, _SRC  # the helper process that holds a folder's lock

TINY = {"data": {"max_patches": 240},
        "gan": {"setups": ["BASELINE", "N.1.5"], "steps": 8, "checkpoint_every": 4,
                "batch_size": 16},
        "fakes": {"arms": ["sampled"], "n_train": 40, "n_val": 20, "n_test": 30},
        "quality": {"extractor": "fallback", "kid_subsets": 5, "grid": 2, "fid_resamples": 10},
        "detectors": {"cnn": {"epochs": 1}},
        "evaluate": {"resamples": 100, "robustness": False},
        "bypass": {"n_train": 20, "draws": 2},
        "explain": {"enabled": False}}


@pytest.mark.parametrize(("seeds", "needle"), [
    ([], "config key 'seeds' must list at least one seed"),
    ([2021, "x"], "config key 'seeds[1]' must be a non-negative integer"),
    ([2021, True], "config key 'seeds[1]'"),
    ([2021, 2.5], "config key 'seeds[1]'"),
    ([2021, 2022, 2021], "config key 'seeds' must not repeat a seed (repeated: 2021)"),
    (2021, "config key 'seeds' must be list or null"),
])
def test_bad_seeds_are_config_errors_naming_the_key(seeds, needle) -> None:
    with pytest.raises(ConfigError) as err:
        load_config({"seeds": seeds}, preset="quick")
    assert needle in str(err.value)


def test_seeds_default_preset_and_cli_override() -> None:
    assert load_config()["seeds"] is None
    assert load_config(preset=["quick", "seeds3"])["seeds"] == [2021, 2022, 2023]
    assert load_config(preset="seeds3")["gan"] == load_config()["gan"]  # only the seeds
    cfg = load_config({"seeds": [1, 2]}, preset="quick", seeds=parse_seeds("7, 8"))
    assert cfg["seeds"] == [7, 8]
    with pytest.raises(ConfigError, match="--seeds"):
        parse_seeds("2021,two")
    res = CliRunner().invoke(app, ["demo", "--seeds", "1,1", "--out", "x"])
    assert res.exit_code == 2 and "'seeds'" in res.output


def test_aggregate_is_numpy_mean_and_sd_beside_each_seed() -> None:
    a = pd.DataFrame({"detector": ["cnn", "cnn"], "generator": ["B", "N"], "ap": [0.9, 0.6],
                      "auc": [0.95, 0.7]})
    b = a.assign(ap=[0.8, 0.5], auc=[0.9, 0.65])
    c = a.iloc[:1].assign(ap=[0.7], auc=[0.85])  # seed 3 lacks row N
    agg = aggregate_table({1: a, 2: b, 3: c, 4: None}, ("detector", "generator"), ("ap", "auc"))
    assert list(agg.columns) == ["detector", "generator", "metric", "mean", "sd", "n_seeds",
                                 "seed-1", "seed-2", "seed-3", "seed-4"]
    assert list(agg["metric"]) == ["ap", "ap", "auc", "auc"]
    row = agg[(agg["generator"] == "B") & (agg["metric"] == "ap")].iloc[0]
    assert row["mean"] == pytest.approx(np.mean([0.9, 0.8, 0.7]))
    assert row["sd"] == pytest.approx(np.std([0.9, 0.8, 0.7], ddof=1))
    row = agg[(agg["generator"] == "N") & (agg["metric"] == "auc")].iloc[0]
    assert row["n_seeds"] == 2 and np.isnan(row["seed-3"]) and np.isnan(row["seed-4"])
    assert row["sd"] == pytest.approx(np.std([0.7, 0.65], ddof=1))


def test_aggregate_skips_absent_metrics_and_all_nan_rows() -> None:
    a = pd.DataFrame({"generator": ["B", "sim-B"], "ap": [0.9, 0.8],
                      "pair_win": [np.nan, 0.75]})
    b = a.assign(ap=[0.7, 0.6], pair_win=[np.nan, 0.95])
    old = a[["generator", "ap"]].assign(ap=[0.5, 0.4])  # an older seed table: no pair_win
    agg = aggregate_table({1: a, 2: b, 3: old}, ("generator",), ("ap", "pair_win"))
    pw = agg[agg["metric"] == "pair_win"]
    assert list(pw["generator"]) == ["sim-B"]  # the sampled row has no pair_win in any seed
    assert pw.iloc[0]["n_seeds"] == 2
    assert pw.iloc[0]["mean"] == pytest.approx(0.85)
    assert np.isnan(pw.iloc[0]["seed-3"])
    assert list(agg[agg["metric"] == "ap"]["n_seeds"]) == [3, 3]


def _counting_stages(calls: dict, interrupt: set) -> list[Stage]:
    def make(name: str) -> Stage:
        def _run(ctx):
            if (ctx.seed, name) in interrupt:
                raise KeyboardInterrupt
            calls[(ctx.seed, name)] = calls.get((ctx.seed, name), 0) + 1
            return {}
        return Stage(name, _run)
    return [make("a"), make("b")]


def test_an_interrupted_seed_resumes_and_finished_seeds_are_skipped(tmp_path) -> None:
    cfg = load_config({"seeds": [5, 6]}, preset="quick")
    calls: dict = {}
    with pytest.raises(KeyboardInterrupt):
        run_seeds(cfg, tmp_path / "run", stages=_counting_stages(calls, {(6, "b")}))
    assert calls == {(5, "a"): 1, (5, "b"): 1, (6, "a"): 1}
    report, results = run_seeds(cfg, tmp_path / "run", stages=_counting_stages(calls, set()))
    assert calls == {(5, "a"): 1, (5, "b"): 1, (6, "a"): 1, (6, "b"): 1}
    assert [(r.name, r.status) for r in results] == [
        ("seed-5/a", "cached"), ("seed-5/b", "cached"), ("seed-6/a", "cached"),
        ("seed-6/b", "done")]
    assert report == tmp_path / "run" / "report.html" and report.is_file()
    # each seed folder is a study of its own seed; the top one holds the seed list
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["seeds"] == [5, 6]
    sub = load_config(tmp_path / "run" / "seed-6" / "config.yaml")
    assert sub["seed"] == 6 and sub["seeds"] is None
    # another seed list in the same folder is refused unless --force, which clears the seeds
    other = load_config({"seeds": [7]}, preset="quick")
    with pytest.raises(Exception, match="config"):
        run_seeds(other, tmp_path / "run", stages=_counting_stages(calls, set()))
    run_seeds(other, tmp_path / "run", force=True, stages=_counting_stages(calls, set()))
    assert sorted(p.name for p in (tmp_path / "run").glob("seed-*")) == ["seed-7"]


@pytest.mark.slow
def test_two_seed_study_end_to_end(tmp_path) -> None:
    cfg = load_config(TINY, preset="quick", seeds=[2021, 2022])
    out = tmp_path / "run"
    report, results = run_studies(cfg, out)
    assert {r.status for r in results} == {"done"}
    per_seed = {}
    for seed in (2021, 2022):
        d = out / seed_dir(seed)
        assert (d / "report.html").is_file() and (d / "stages" / "detection.done").is_file()
        per_seed[seed] = {name: pd.read_csv(d / name) for name in AGGREGATES
                          if (d / name).is_file()}
    assert set(per_seed[2021]) == set(per_seed[2022]) and len(per_seed[2021]) >= 5
    a, b = per_seed[2021]["tables/quality.csv"], per_seed[2022]["tables/quality.csv"]
    assert not np.allclose(a["fid"], b["fid"])  # different seeds, different numbers
    for name, (keys, metrics) in AGGREGATES.items():
        if name not in per_seed[2021]:
            continue
        agg = pd.read_csv(out / name)
        for m in metrics:
            rows = agg[agg["metric"] == m].reset_index(drop=True)
            vals = np.stack([per_seed[s][name][m].to_numpy(float) for s in (2021, 2022)])
            kept = ~np.isnan(vals).all(axis=0)  # rows without a value in any seed are dropped
            vals = vals[:, kept]
            assert list(rows[list(keys)].itertuples(index=False)) == list(
                per_seed[2021][name][list(keys)][kept].itertuples(index=False)), (name, m)
            np.testing.assert_allclose(rows["mean"], vals.mean(axis=0), rtol=1e-12)
            np.testing.assert_allclose(rows["sd"], vals.std(axis=0, ddof=1), rtol=1e-9,
                                       atol=1e-15)
            np.testing.assert_array_equal(rows["seed-2022"], vals[1])
    assert (out / CLAIMS_TABLE).is_file()
    page = report.read_text()
    assert 'href="seed-2021/report.html"' in page and 'href="seed-2022/report.html"' in page
    assert " ± " in page
    # rerun: every stage of every seed is cached, the aggregate is rebuilt identically
    before = (out / "tables" / "detection.csv").read_bytes()
    _, again = run_studies(cfg, out)
    assert {r.status for r in again} == {"cached"} and len(again) == len(results)
    assert (out / "tables" / "detection.csv").read_bytes() == before


def test_force_never_removes_a_seed_folder_another_process_is_running(tmp_path) -> None:
    cfg = load_config({"seeds": [5]}, preset="quick")
    run_seeds(cfg, tmp_path / "run", stages=_counting_stages({}, set()))
    seed = tmp_path / "run" / seed_dir(5)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(seed)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": _SRC + os.pathsep + os.environ.get("PYTHONPATH", "")})
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunInUseError):
            run_seeds(load_config({"seeds": [6]}, preset="quick"), tmp_path / "run",
                      force=True, stages=_counting_stages({}, set()))
        assert (seed / "stages" / "a.done").exists()
    finally:
        holder.communicate("", timeout=30)


def test_several_seeds_train_every_model_and_one_seed_keeps_the_shipped_ones() -> None:
    cfg = load_config({"seeds": [2021, 2022]})
    assert cfg["gan"]["source"] == cfg["simulator"]["source"] == "shipped"
    for seed in (2021, 2022):
        one = seed_config(cfg, seed)
        assert (one["seed"], one["seeds"]) == (seed, None)
        assert one["gan"]["source"] == one["simulator"]["source"] == "train"
        assert one["gan"]["setups"] == cfg["gan"]["setups"]  # the rest of the section is kept
    assert cfg["gan"]["source"] == "shipped"  # the study's own config is not changed
    alone = seed_config(load_config({"seeds": [2022]}), 2022)
    assert alone["gan"]["source"] == alone["simulator"]["source"] == "shipped"
