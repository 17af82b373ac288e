"""End to end: the `--quick` preset through the CLI (CI), and GAN training that resumes from
its checkpoint after an interruption. Both are slow (minutes / tens of seconds)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ganforensics.cli.main import app
from ganforensics.explain.ffrs import RANKING_COLUMNS
from ganforensics.study import detector_stages as ds
from ganforensics.study import explain_stages as es
from ganforensics.study import measure_stages as ms
from ganforensics.study.config import load_config
from ganforensics.study.pipeline import build_stages, run_study
from ganforensics.study.report_sections import GENERIC_VIEW_NOTE, SECTIONS
from ganforensics.study.setups import study_setups

PROFILES_TABLE = ms.PROFILES_TABLE
TABLE_COLUMNS = {
    ms.QUALITY_TABLE: ms.QUALITY_COLUMNS, ms.SPECTRA_TABLE: ms.SPECTRA_COLUMNS,
    ms.PROFILES_TABLE: ms.PROFILES_COLUMNS, ds.DETECTION_TABLE: ds.DETECTION_COLUMNS,
    ds.BYPASS_TABLE: ds.BYPASS_COLUMNS, ds.ROBUSTNESS_TABLE: ds.ROBUSTNESS_COLUMNS,
    ds.GRAYSCALE_TABLE: ds.GRAYSCALE_COLUMNS, es.MASKING_TABLE: es.MASKING_COLUMNS,
    es.RANKING_TABLE: RANKING_COLUMNS, es.COLOUR_MAPS_TABLE: es.COLOUR_MAPS_COLUMNS,
}


@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path) -> None:
    out = tmp_path / "demo"
    res = CliRunner().invoke(app, ["demo", "--quick", "--out", str(out)])
    assert res.exit_code == 0, res.output
    last = res.stdout.strip().splitlines()[-1]
    assert last == f"report: {(out / 'report.html').resolve()}"
    page = (out / "report.html").read_text()
    for sec_id in ["overview", "settings", "data", *SECTIONS, "caveats"]:
        assert f'<section id="{sec_id}">' in page
    assert 'class="fail"' not in page  # no failed section
    assert "http://" not in page and "https://" not in page
    results = json.loads((out / "results.json").read_text())
    assert results["problems"] == []
    assert {s["status"] for s in results["stages"]} == {"done"}
    assert len(results["stages"]) == len(build_stages(load_config(preset="quick")))
    setups = [s["name"] for s in study_setups(results["config"])]
    gan_setups = [s["name"] for s in results["config"]["gan"]["setups"]]
    assert setups == [n for g in gan_setups for n in (g, f"sim-{g}")]  # both arms by default
    for g in gan_setups:  # the shipped simulators stand in (the quick patches are theirs)
        assert (out / "simulators" / g / "shipped.json").is_file(), g
        assert not (out / "simulators" / g / "checkpoints").exists(), g
        assert not (out / "gans" / g / "shipped.json").exists(), g  # quick trains its GANs
    for sec_id, sec in results["sections"].items():
        assert sec["status"] == "ok", (sec_id, sec)
        for fname, rows in sec["tables"].items():
            assert rows, fname
            assert (out / fname).is_file()  # traceable to a file in the run folder
    for fname, columns in TABLE_COLUMNS.items():
        assert tuple(pd.read_csv(out / fname).columns) == columns, fname
    assert GENERIC_VIEW_NOTE not in page
    # intervals: detection cells "0.960 [0.930, 0.980]", FID "123.4 ± 5.6", claims worded
    det_sec = page.split('<section id="detection">')[1].split("</section>")[0]
    assert re.search(r">[01]\.\d{3} \[[01]\.\d{3}, [01]\.\d{3}\]</td>", det_sec)
    assert re.search(r">(catches|partly|misses|uncertain)</td>", det_sec)
    qual_sec = page.split('<section id="quality">')[1].split("</section>")[0]
    assert re.search(r">\d+\.\d+ ± \d", qual_sec)
    quality = results["sections"]["quality"]["tables"]["tables/quality.csv"]
    assert [r["setup"] for r in quality] == setups
    assert len({r["floor"] for r in quality}) == 1 and quality[0]["floor"] > 0
    # the discrepancy restated from the per-bin mean profiles of tables/spectra_profiles.csv
    prof = pd.read_csv(out / PROFILES_TABLE)
    real = prof[prof["group"] == "real"]["mean"].to_numpy()
    frac = results["config"]["spectra"]["top_fraction"]
    k = max(1, round(len(real) * frac))
    spectra = results["sections"]["spectra"]["tables"]["tables/spectra.csv"]
    assert [r["setup"] for r in spectra] == setups
    for r in spectra:
        diff = (prof[prof["group"] == r["setup"]]["mean"].to_numpy() - real)[-k:]
        assert r["discrepancy"] == pytest.approx(np.abs(diff).mean(), rel=1e-9)
        assert r["signed_difference"] == pytest.approx(diff.mean(), rel=1e-9, abs=1e-12)
    det = results["sections"]["detection"]["tables"]["tables/detection.csv"]
    assert {r["detector"] for r in det} == {"spectral-decay", "spectral-profile", "cnn"}
    assert set(setups) <= {r["generator"] for r in det}
    bypass = results["sections"]["bypass"]["tables"]["tables/bypass.csv"]
    assert set(setups) - {"BASELINE"} <= {r["generator"] for r in bypass}
    # rerunning the same command resumes: every stage is skipped
    res2 = CliRunner().invoke(app, ["demo", "--quick", "--out", str(out)])
    assert res2.exit_code == 0, res2.output
    again = json.loads((out / "results.json").read_text())
    assert {s["status"] for s in again["stages"]} == {"cached"}
    # another config in the same folder is refused (exit 3)
    res3 = CliRunner().invoke(app, ["demo", "--out", str(out)])
    assert res3.exit_code == 3


@pytest.mark.slow
def test_interrupted_gan_training_resumes_from_its_checkpoint(tmp_path, monkeypatch) -> None:
    import ganforensics.gan.train as gtrain
    import ganforensics.study.data_stages as data_stages

    cfg = load_config({"data": {"max_patches": 300},
                       "gan": {"setups": ["BASELINE", "N.1.5"], "steps": 12,
                               "checkpoint_every": 6, "source": "train"}}, preset="quick")
    real_train = gtrain.train_gan

    def interrupted(config, data, out_dir, **kw):
        real_train(config, data, out_dir, stop_at_step=6, **kw)
        raise KeyboardInterrupt  # as if killed after the step-6 checkpoint

    monkeypatch.setattr(data_stages, "train_gan", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_study(cfg, tmp_path / "run", stop_after="gan-BASELINE")
    assert (tmp_path / "run" / "stages" / "patches.done").exists()
    assert not (tmp_path / "run" / "stages" / "gan-BASELINE.done").exists()

    resumed_from = []
    real_load = gtrain.load_checkpoint

    def spy(*args, **kw):
        state = real_load(*args, **kw)
        resumed_from.append(int(state["step"]))
        return state

    monkeypatch.setattr(data_stages, "train_gan", real_train)
    monkeypatch.setattr(gtrain, "load_checkpoint", spy)
    _, results = run_study(cfg, tmp_path / "run", stop_after="gan-BASELINE")
    assert [(r.name, r.status) for r in results] == [("patches", "cached"),
                                                     ("gan-BASELINE", "done")]
    assert resumed_from == [6]  # continued from the checkpoint, did not restart
    losses = (tmp_path / "run" / "gans" / "BASELINE" / "losses.csv").read_text().splitlines()
    assert len(losses) == 1 + 12  # header + one row per step, none repeated
