"""Label smoothing, the distillation loss, attribution heads and their calibration, the
attribution metrics, and `detector distill` / `train --task attribute` / `evaluate attribution`
end to end on tiny data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from sklearn.metrics import confusion_matrix as sk_confusion
from sklearn.metrics import f1_score
from torch.nn import functional as F
from typer.testing import CliRunner

from ganforensics.cli.main import app
from ganforensics.detectors.cnn import build_model, load_cnn_detector, train_cnn_detector
from ganforensics.detectors.cnn.attribution import AttributionDetector, fit_class_calibration
from ganforensics.detectors.cnn.heads import Head, kd_loss, smoothed_bce, smoothed_ce
from ganforensics.evaluate.attribution import evaluate_attribution
from ganforensics.metrics.attribution import (
    attribution_report,
    cluster_tightness,
    confusion_matrix,
)
from test_cnn_train import make_split


def _logits(*shape: int, seed: int = 0) -> torch.Tensor:
    return 2 * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ---- losses ---------------------------------------------------------------------------------
def test_label_smoothing_zero_is_the_plain_loss_and_matches_torch() -> None:
    z, y = _logits(64), torch.randint(0, 2, (64,), generator=torch.Generator().manual_seed(1))
    assert torch.equal(smoothed_bce(z, y, 0.0),
                       F.binary_cross_entropy_with_logits(z, y.float(), reduction="none"))
    zc, yc = _logits(64, 6), torch.randint(0, 6, (64,), generator=torch.Generator().manual_seed(2))
    assert torch.equal(smoothed_ce(zc, yc, 0.0), F.cross_entropy(zc, yc, reduction="none"))
    # NVIDIA form = torch's label_smoothing; binary targets y (1 - a) + a / 2
    assert torch.allclose(smoothed_ce(zc, yc, 0.1),
                          F.cross_entropy(zc, yc, reduction="none", label_smoothing=0.1))
    assert torch.allclose(smoothed_bce(z, y, 0.1), F.binary_cross_entropy_with_logits(
        z, y.float() * 0.9 + 0.05, reduction="none"))
    assert not torch.allclose(smoothed_bce(z, y, 0.1), smoothed_bce(z, y, 0.0))


def test_binary_and_two_class_softmax_forms_agree() -> None:
    z, zt = _logits(50, seed=3).double(), _logits(50, seed=4).double()
    y = (zt > 0).long()
    two = lambda v: torch.stack([torch.zeros_like(v), v], dim=1)  # noqa: E731
    for a in (0.0, 0.1):
        assert torch.allclose(smoothed_bce(z, y, a), smoothed_ce(two(z), y, a), atol=1e-9)
    for t in (1.0, 2.0, 16.0):
        assert torch.allclose(kd_loss(z, zt, t), kd_loss(two(z), two(zt), t), atol=1e-9)


def test_kd_loss_is_zero_for_equal_logits_and_positive_otherwise() -> None:
    for shape in ((40,), (40, 6)):
        z = _logits(*shape, seed=5)
        for t in (1.0, 4.0):
            assert float(kd_loss(z, z.clone(), t).abs().max()) < 1e-6
            assert float(kd_loss(z, _logits(*shape, seed=6), t).mean()) > 1e-3


def test_t_squared_keeps_gradient_scale_across_temperatures() -> None:
    for shape in ((256,), (256, 6)):
        zs0, zt = _logits(*shape, seed=7), _logits(*shape, seed=8)
        norms = {}
        for t in (1.0, 2.0, 4.0, 16.0):
            zs = zs0.clone().requires_grad_(True)
            kd_loss(zs, zt, t).mean().backward()
            norms[t] = float(zs.grad.norm())
        with_t2 = max(norms.values()) / min(norms.values())
        without = (norms[1.0]) / (norms[16.0] / 16.0**2)
        assert with_t2 < 2.0 < 100.0 < without


# ---- heads and calibration ------------------------------------------------------------------
def test_attribution_head_builds_on_registered_archs_and_maps_targets() -> None:
    model = build_model("small", n_outputs=4)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 4)
    assert build_model("resnet18", n_outputs=3).fc.out_features == 3
    head = Head(("real", "a", "b"))
    assert head.targets(np.array([0, 1, 1, 0]), ["real", "b", "a", "x"]).tolist() == [0, 2, 1, 0]
    with pytest.raises(Exception, match="does not know"):
        head.targets(np.array([1]), ["zzz"])


def test_class_calibration_is_fitted_on_validation_only(tmp_path) -> None:
    """The saved calibration is the fit on the validation logits; evaluation never refits, so
    scrambled test labels change the metrics but not one predicted probability."""
    im, lab = make_split(("astronaut", "coffee"), 12, 0)
    gens = ["real" if v == 0 else ("up" if i % 4 < 2 else "up2") for i, v in enumerate(lab)]
    vim, vlab = make_split(("rocket",), 12, 1)
    vgens = ["real" if v == 0 else ("up" if i % 4 < 2 else "up2") for i, v in enumerate(vlab)]
    det = train_cnn_detector("small", "khan2019", (im, lab, gens), (vim, vlab, vgens),
                             tmp_path / "m", epochs=1, progress=False, task="attribute")
    assert isinstance(det, AttributionDetector) and det.classes == ("real", "up", "up2")
    raw = det.map_batches(vim, det.network_outputs, (3,))  # khan2019: val views = the images
    targets = Head(det.classes).targets(vlab, vgens)
    scale, bias = fit_class_calibration(raw, targets)
    assert det.scale == pytest.approx(scale, rel=1e-6)
    assert np.allclose(det.bias, bias, atol=1e-6)
    before = json.loads((tmp_path / "m" / "model.json").read_text())["calibration"]
    timg, tlab = make_split(("chelsea",), 10, 2)
    tg = ["real" if v == 0 else "up" for v in tlab]
    tg_scrambled = ["real" if v == 0 else "up2" for v in tlab]
    loaded = load_cnn_detector(tmp_path / "m")
    a = evaluate_attribution(loaded, (timg, tlab, tg), resamples=20)
    b = evaluate_attribution(loaded, (timg, tlab, tg_scrambled), resamples=20)
    assert np.array_equal(a.scores.filter(like="p_").to_numpy(),
                          b.scores.filter(like="p_").to_numpy())
    assert json.loads((tmp_path / "m" / "model.json").read_text())["calibration"] == before
    assert before["fitted_on"] == "validation split"


# ---- metrics --------------------------------------------------------------------------------
def test_attribution_metrics_match_sklearn_and_intervals_bracket() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 300)
    pred = np.where(rng.random(300) < 0.7, y, rng.integers(0, 4, 300))
    table, cm, s = attribution_report(y, pred, ["real", "a", "b", "c"], resamples=200, seed=1)
    assert np.array_equal(cm, sk_confusion(y, pred, labels=range(4)))
    assert s["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert table["support"].tolist() == np.bincount(y, minlength=4).tolist()
    assert s["macro_f1_lo"] < s["macro_f1"] < s["macro_f1_hi"]
    assert s["accuracy_lo"] < s["accuracy"] < s["accuracy_hi"]
    w = np.ones((1, 300))
    assert np.array_equal(confusion_matrix(y, pred, 4, w)[0], cm)


def test_cluster_tightness_orders_tight_below_diffuse() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 8)) * 5
    y = np.repeat(np.arange(4), 50)
    tight = cluster_tightness(centres[y] + rng.normal(size=(200, 8)) * 0.3, y)
    diffuse = cluster_tightness(centres[y] + rng.normal(size=(200, 8)) * 3.0, y)
    assert tight["ratio"] < 0.5 * diffuse["ratio"]
    scaled = cluster_tightness(10 * (centres[y] + rng.normal(size=(200, 8)) * 0.3), y)
    assert scaled["ratio"] == pytest.approx(tight["ratio"], rel=0.2)


# ---- command line ---------------------------------------------------------------------------
def _manifest(tmp_path, name, images, labels, gens) -> str:
    folder = tmp_path / name
    folder.mkdir()
    rows = []
    for i, (im, lab, g) in enumerate(zip(images, labels, gens, strict=True)):
        Image.fromarray(im).save(folder / f"{i}.png")
        rows.append({"path": f"{name}/{i}.png", "label": int(lab), "generator": g,
                     "source": f"{name}-{i // 4}"})
    path = tmp_path / f"{name}.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def test_cli_attribute_train_predict_evaluate_and_distill(tmp_path) -> None:
    runner = CliRunner()
    im, lab = make_split(("astronaut", "coffee"), 8, 0)
    gens = ["real" if v == 0 else ("up" if i % 4 < 2 else "up2") for i, v in enumerate(lab)]
    vim, vlab = make_split(("rocket",), 8, 1)
    vgens = ["real" if v == 0 else ("up" if i % 4 < 2 else "up2") for i, v in enumerate(vlab)]
    tr = _manifest(tmp_path, "tr", im, lab, gens)
    va = _manifest(tmp_path, "va", vim, vlab, vgens)
    common = ["--train", tr, "--val", va, "--epochs", "1", "--batch-size", "16"]
    r = runner.invoke(app, ["--threads", "1", "detector", "train", "--arch", "small",
                            "--task", "attribute", "--label-smoothing", "0.1",
                            "--out", str(tmp_path / "t"), *common])
    assert r.exit_code == 0, r.output
    meta = json.loads((tmp_path / "t" / "model.json").read_text())
    assert meta["classes"] == ["real", "up", "up2"] and meta["label_smoothing"] == 0.1
    r = runner.invoke(app, ["predict", "--model", str(tmp_path / "t"), va])
    assert r.exit_code == 0, r.output
    rows = pd.read_csv(pd.io.common.StringIO(r.stdout))
    probs = rows[["p_real", "p_up", "p_up2"]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert np.allclose(rows["prob_fake"], 1 - rows["p_real"], atol=1e-9)
    assert set(rows["top_class"]) <= {"real", "up", "up2"}
    r = runner.invoke(app, ["evaluate", "attribution", "--model", str(tmp_path / "t"),
                            "--test", va, "--out", str(tmp_path / "ev"), "--resamples", "50"])
    assert r.exit_code == 0, r.output
    for f in ("metrics.csv", "confusion.csv", "confusion.png", "metrics.json"):
        assert (tmp_path / "ev" / f).is_file()
    # distil the attribution teacher (T = 2) and a binary teacher (defaults) into students
    r = runner.invoke(app, ["detector", "distill", "--teacher", str(tmp_path / "t"),
                            "--student", "small", "--temperature", "2",
                            "--out", str(tmp_path / "s"), *common])
    assert r.exit_code == 0, r.output
    student = load_cnn_detector(tmp_path / "s")
    assert isinstance(student, AttributionDetector)
    assert student.meta["distillation"]["temperature"] == 2.0
    r = runner.invoke(app, ["detector", "train", "--arch", "small", "--out",
                            str(tmp_path / "b"), *common])
    assert r.exit_code == 0, r.output
    cfg = (tmp_path / "b" / "config.yaml").read_text()
    assert "task" not in cfg and "label_smoothing" not in cfg  # binary runs as before
    r = runner.invoke(app, ["detector", "distill", "--teacher", str(tmp_path / "b"),
                            "--student", "small", "--out", str(tmp_path / "bs"), *common])
    assert r.exit_code == 0, r.output
    bs = load_cnn_detector(tmp_path / "bs")
    assert type(bs).__name__ == "CNNDetector" and 0 < bs.threshold < 1
    assert bs.meta["distillation"]["temperature"] == 1.0
    r = runner.invoke(app, ["predict", "--model", str(tmp_path / "bs"), va])
    assert r.exit_code == 0 and "top_class" not in r.stdout
