"""CNNDetection checkpoints: same logits as torchvision, safe loading, import command,
save/load round trip of our format."""

from __future__ import annotations

import builtins
import json

import numpy as np
import pytest
import torch
import torchvision
from typer.testing import CliRunner

from ganforensics.cli.main import app
from ganforensics.detectors import Detector, load_detector
from ganforensics.detectors.cnn import CNNDetector, build_model, load_cnndetection_checkpoint
from ganforensics.errors import UnsupportedModelError

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    torch.manual_seed(7)
    ref = torchvision.models.resnet50(num_classes=1)
    # Random BatchNorm statistics so a wrong name mapping would show. The residual-branch
    # scales (bn3) are damped: with plain random init the activations grow through the 16
    # blocks until float32 rounding alone (torchvision batch 1 vs batch 3) differs by > 1e-5;
    # damped, the logits are O(0.1-1) as in a trained network.
    with torch.no_grad():
        for name, m in ref.named_modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                if name.endswith("bn3"):
                    m.weight.uniform_(0.3, 0.6)
        ref.fc.weight.mul_(5)
    ref.eval()
    path = tmp_path_factory.mktemp("ck") / "blur_jpg_prob0.5.pth"
    torch.save({"model": ref.state_dict(), "total_steps": 123}, path)
    return ref, path


def _torchvision_logits(ref, images, crop):
    outs = []
    for im in images:
        x = torch.from_numpy(im).permute(2, 0, 1)[None].float() / 255
        if crop:
            x = torchvision.transforms.CenterCrop(224)(x)
        with torch.no_grad():
            outs.append(float(ref((x - MEAN) / STD)))
    return np.array(outs)


@pytest.mark.slow
def test_logits_match_torchvision_without_crop(reference, rng):
    ref, path = reference
    det = load_cnndetection_checkpoint(path)
    images = [rng.integers(0, 256, (64, 80, 3), dtype=np.uint8) for _ in range(2)]
    images.append(rng.integers(0, 256, (72, 72, 3), dtype=np.uint8))  # other size: own batch
    got = det.logits(images)
    want = _torchvision_logits(ref, images, crop=False)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    assert np.ptp(want) > 1e-3  # images really differ in score


@pytest.mark.slow
def test_logits_match_torchvision_with_centre_crop(reference, rng):
    ref, path = reference
    det = load_cnndetection_checkpoint(path, crop=True)
    images = [rng.integers(0, 256, (231, 240, 3), dtype=np.uint8) for _ in range(2)]
    got = det.logits(images)
    np.testing.assert_allclose(got, _torchvision_logits(ref, images, crop=True), atol=1e-5,
                               rtol=0)
    assert det.preprocess(images).shape == (2, 3, 224, 224)


def test_load_detector_dispatches_pth(reference):
    _, path = reference
    det = load_detector(path)
    assert isinstance(det, CNNDetector) and det.kind == "cnn" and det.arch == "resnet50"
    assert isinstance(det, Detector)  # logits, probs, save, kind, threshold, meta


class _Evil:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def test_pickle_needing_code_execution_is_refused(tmp_path):
    marker = tmp_path / "executed.txt"
    evil = tmp_path / "evil.pth"
    torch.save({"model": _Evil(marker)}, evil)
    with pytest.raises(UnsupportedModelError, match="refused to load") as ei:
        load_cnndetection_checkpoint(evil)
    assert "evil.pth" in str(ei.value) and "\n" not in str(ei.value)
    assert not marker.exists()
    res = CliRunner().invoke(app, ["predict", "--model", str(evil), str(tmp_path)])
    assert res.exit_code == 2 and "refused" in res.output
    assert not marker.exists()


def test_wrong_head_shape_is_refused(tmp_path):
    bad = torchvision.models.resnet50(num_classes=2)
    p = tmp_path / "two.pth"
    torch.save({"model": bad.state_dict()}, p)
    with pytest.raises(UnsupportedModelError, match=r"\(1, 2048\)"):
        load_cnndetection_checkpoint(p)


def test_import_cli_writes_our_format_with_same_logits(reference, tmp_path, rng):
    _, path = reference
    out = tmp_path / "model"
    res = CliRunner().invoke(app, ["detector", "import", str(path), "--out", str(out)])
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "model.json").read_text())
    assert meta["kind"] == "cnn" and meta["arch"] == "resnet50"
    assert meta["preprocessing"]["crop"] == "none"
    assert meta["preprocessing"]["norm_mean"] == [0.485, 0.456, 0.406]
    images = [rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)]
    a = load_cnndetection_checkpoint(path).logits(images)
    b = load_detector(out).logits(images)
    np.testing.assert_allclose(a, b, atol=1e-6)
    again = CliRunner().invoke(app, ["detector", "import", str(path), "--out", str(out)])
    assert again.exit_code == 3


def test_save_load_roundtrip_keeps_preprocessing_and_threshold(tmp_path, rng):
    torch.manual_seed(1)
    det = CNNDetector(build_model("small"), "small", input_size=32, crop="center",
                      threshold=0.37, meta={"recipe": "wang2020", "seed": 5})
    det.save(tmp_path / "m")
    back = load_detector(tmp_path / "m")
    assert back.threshold == pytest.approx(0.37) and back.input_size == 32
    assert back.feature_layer == "features.relu4" and back.meta["seed"] == 5
    images = [rng.integers(0, 256, (40, 36, 3), dtype=np.uint8) for _ in range(3)]
    np.testing.assert_allclose(det.logits(images), back.logits(images), atol=1e-6)
    x = back.preprocess(images)
    assert x.shape == (3, 3, 32, 32) and back.model(x).shape == (3, 1)
