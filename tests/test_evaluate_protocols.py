"""The field's evaluation protocols in `evaluate`: worst generator (min-acc), fakes-only
conditions and the JPEG-96 control, on the CLI with --json."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from ganforensics.cli.main import app
from ganforensics.detectors.cnn import CNNDetector, build_model
from ganforensics.errors import ConfigError
from ganforensics.evaluate.detection import conditions_for, evaluate_detector
from ganforensics.metrics.detection import add_worst_generator, per_generator


class NoiseDetector:
    """A toy detector: pixel-to-pixel variation (high frequencies) looks fake."""

    kind = "toy"
    threshold = 0.5
    meta: dict = {}

    def logits(self, images):
        return np.array([(float(np.abs(np.diff(im.astype(float), axis=1)).mean()) - 20) / 4
                         for im in images])


def _images(rng, n, noise):
    base = rng.uniform(60, 190, (n, 1, 1, 3))
    return [np.clip(b + rng.normal(0, noise, (24, 24, 3)), 0, 255).astype(np.uint8)
            for b in base]


def test_worst_generator_row():
    rows = [{"label": 0, "generator": "real", "prob_fake": p} for p in (0.1, 0.2, 0.3, 0.6)]
    rows += [{"label": 1, "generator": "easy", "prob_fake": p} for p in (0.9, 0.8, 0.7, 0.95)]
    rows += [{"label": 1, "generator": "hard", "prob_fake": p} for p in (0.9, 0.4, 0.3, 0.2)]
    t = add_worst_generator(per_generator(pd.DataFrame(rows), 0.5)).set_index("generator")
    assert t.loc["easy", "acc_05"] == pytest.approx(7 / 8)
    assert t.loc["hard", "acc_05"] == pytest.approx(4 / 8)
    assert t.loc["mean", "worst_generator"] == "hard"
    assert t.loc["mean", "min_acc_05"] == pytest.approx(0.5)
    assert t.loc["mean", "min_acc_cal"] == pytest.approx(0.5)
    assert t.loc["mean", "real_acc_05"] == pytest.approx(0.75)
    assert t.loc["mean", "fake_acc_05"] == pytest.approx((1.0 + 0.25) / 2)
    assert np.isnan(t.loc["easy", "min_acc_cal"]) and t.loc["easy", "worst_generator"] == ""


def test_jpeg_control_conditions():
    assert conditions_for(None, None, "fakes") == ["none", "fakes:jpeg:96"]
    assert conditions_for(["jpeg:96"], None, "both") == ["none", "jpeg:96"]
    assert conditions_for(["fakes:blur:1"], None) == ["none", "fakes:blur:1"]
    with pytest.raises(ConfigError):
        conditions_for(None, None, "reals")


def test_fakes_only_condition_leaves_reals_untouched(rng):
    real, fake = _images(rng, 10, 2.0), _images(rng, 10, 25.0)
    res = evaluate_detector(NoiseDetector(), (real + fake, [0] * 10 + [1] * 10),
                            jpeg_control="fakes", resamples=50, progress=False)
    s = res.scores
    clean, ctrl = s[s["condition"] == "none"], s[s["condition"] == "fakes:jpeg:96"]
    np.testing.assert_array_equal(ctrl["logit"].to_numpy()[:10], clean["logit"].to_numpy()[:10])
    assert not np.allclose(ctrl["logit"].to_numpy()[10:], clean["logit"].to_numpy()[10:])
    both = evaluate_detector(NoiseDetector(), (real + fake, [0] * 10 + [1] * 10),
                             jpeg_control="both", resamples=0, progress=False).scores
    assert not np.allclose(both[both["condition"] == "jpeg:96"]["logit"].to_numpy()[:10],
                           clean["logit"].to_numpy()[:10])
    m = res.metrics.set_index(["condition", "generator"])
    lo, ap = m.loc[("fakes:jpeg:96", "fake"), ["ap_lo", "ap"]]
    assert np.isfinite(lo) and lo <= ap + 1e-9  # bootstrap interval present
    assert m.loc[("fakes:jpeg:96", "mean"), "worst_generator"] == "fake"


def test_evaluate_cli_jpeg_control_json(tmp_path, rng):
    rows = []
    for gen, noise in (("real", 2.0), ("ganA", 25.0), ("ganB", 8.0)):
        for i, im in enumerate(_images(rng, 5, noise)):
            p = tmp_path / "data" / gen / f"{i}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(im).save(p)
            rows.append({"path": f"{gen}/{i}.png", "label": int(gen != "real"),
                         "generator": gen, "split": "test"})
    pd.DataFrame(rows).to_csv(tmp_path / "data" / "test.csv", index=False)
    CNNDetector(build_model("small"), "small", input_size=24).save(tmp_path / "model")
    res = CliRunner().invoke(app, [
        "evaluate", "--model", str(tmp_path / "model"), "--test",
        str(tmp_path / "data" / "test.csv"), "--jpeg-control", "fakes", "--resamples", "20",
        "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert {r["condition"] for r in out} == {"none", "fakes:jpeg:96"}
    means = [r for r in out if r["generator"] == "mean"]
    assert len(means) == 2 and all(r["worst_generator"] in ("ganA", "ganB") for r in means)
    assert all(r["min_acc_cal"] <= r["acc_cal"] + 1e-12 for r in means)
    bad = CliRunner().invoke(app, [
        "evaluate", "--model", str(tmp_path / "model"), "--test",
        str(tmp_path / "data" / "test.csv"), "--jpeg-control", "reals"])
    assert bad.exit_code == 2 and "jpeg control" in bad.output
