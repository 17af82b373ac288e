"""ONNX export of CNN detectors and the onnxruntime backend: logits within 1e-4 of torch for
every architecture, dynamic batch, threads from the toolkit's setting, the CLI round trip."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from ganforensics.cli.main import app
from ganforensics.detectors import load_detector
from ganforensics.detectors.cnn.archs import ARCHS, build_model, head_module
from ganforensics.detectors.cnn.model import CNNDetector
from ganforensics.detectors.onnx import OnnxCNNDetector, export_detector, to_onnx
from ganforensics.detectors.spectral import SpectralDetector
from ganforensics.errors import RunExistsError, UnsupportedModelError
from ganforensics.threads import apply_threads, current_threads

HEAVY = {"nasnet", "inception_resnet_v2", "xception", "resnet50", "densenet121"}


def _images(rng: np.random.Generator, side: int, n: int) -> list[np.ndarray]:
    """`n` images of `side` px plus one taller one (a second size group)."""
    ims = [rng.integers(0, 256, (side, side, 3), dtype=np.uint8) for _ in range(n)]
    return [*ims, rng.integers(0, 256, (side + 8, side, 3), dtype=np.uint8)]


@pytest.mark.parametrize(
    "arch", [pytest.param(a, marks=pytest.mark.slow) if a in HEAVY else a for a in ARCHS])
def test_exported_folder_matches_torch_logits(arch, tmp_path, one_thread):
    torch.manual_seed(0)
    det = CNNDetector(build_model(arch), arch, input_size=96, crop="none", threshold=0.37)
    ims = _images(np.random.default_rng(1), 96, 3)
    head = head_module(det.model, arch)
    with torch.no_grad():  # random heads give logits near 1e-4: scale them to O(1)
        head.bias.zero_()
        head.weight /= float(np.abs(det.logits(ims)).max())
    folder = export_detector(det, tmp_path / "onnx")
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "model.onnx"]
    meta = json.loads((folder / "model.json").read_text())
    assert meta["threshold"] == 0.37 and meta["preprocessing"] == det.preprocessing()
    assert meta["onnx"]["file"] == "model.onnx"
    loaded = load_detector(folder)
    assert isinstance(loaded, OnnxCNNDetector) and loaded.threshold == pytest.approx(0.37)
    ref = det.logits(ims)
    got = loaded.logits(ims)
    assert np.abs(ref).max() == pytest.approx(1.0, rel=1e-3)
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)


def test_batch_axis_is_dynamic_and_crop_policy_is_kept(tmp_path, one_thread):
    torch.manual_seed(1)
    det = CNNDetector(build_model("small"), "small", input_size=32, crop="center")
    onnx_det = load_detector(export_detector(det, tmp_path / "m"))
    rng = np.random.default_rng(2)
    for n in (1, 5, 9):  # one session, several batch sizes; 40 px images centre-cropped to 32
        ims = [rng.integers(0, 256, (40, 44, 3), dtype=np.uint8) for _ in range(n)]
        np.testing.assert_allclose(onnx_det.logits(ims), det.logits(ims), atol=1e-4, rtol=0)


def test_backend_option_of_load_detector(tmp_path):
    torch.manual_seed(2)
    det = CNNDetector(build_model("small"), "small", input_size=32)
    det.save(tmp_path / "torch")
    assert isinstance(load_detector(tmp_path / "torch", "onnxruntime"), OnnxCNNDetector)
    assert not isinstance(load_detector(tmp_path / "torch"), OnnxCNNDetector)
    export_detector(det, tmp_path / "onnx")
    with pytest.raises(UnsupportedModelError, match="onnxruntime"):
        load_detector(tmp_path / "onnx", "torch")
    with pytest.raises(RunExistsError):
        export_detector(det, tmp_path / "onnx")
    with pytest.raises(UnsupportedModelError, match="spectral-profile"):
        to_onnx(SpectralDetector("spectral-profile"))


def test_onnx_runtime_threads_follow_the_toolkit_setting():
    torch.manual_seed(3)
    onnx_det = to_onnx(CNNDetector(build_model("small"), "small", input_size=32))
    before = current_threads()
    try:
        apply_threads(1)
        assert onnx_det.model.session().get_session_options().intra_op_num_threads == 1
        apply_threads(2)
        assert onnx_det.model.session().get_session_options().intra_op_num_threads == 2
    finally:
        apply_threads(before or 1)


def test_cli_export_then_predict_with_either_backend(tmp_path):
    torch.manual_seed(4)
    CNNDetector(build_model("small"), "small", input_size=32).save(tmp_path / "model")
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    rng = np.random.default_rng(5)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
            imgs / f"{i}.png")
    run = CliRunner().invoke
    r = run(app, ["detector", "export", str(tmp_path / "model"), "--format", "onnx",
                  "--out", str(tmp_path / "onnx")])
    assert r.exit_code == 0, r.output
    r = run(app, ["detector", "export", str(tmp_path / "model"), "--format", "tflite",
                  "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "--format" in r.output
    tables = {}
    for name, extra in (("torch", ["--backend", "torch"]),
                        ("ort", ["--backend", "onnxruntime"]), ("exported", [])):
        model = tmp_path / ("onnx" if name == "exported" else "model")
        out = tmp_path / f"{name}.csv"
        r = run(app, ["predict", "--model", str(model), str(imgs), "--out", str(out), *extra])
        assert r.exit_code == 0, r.output
        tables[name] = pd.read_csv(out)
    for name in ("ort", "exported"):
        assert tables[name]["path"].tolist() == tables["torch"]["path"].tolist()
        np.testing.assert_allclose(tables[name]["logit"], tables["torch"]["logit"], atol=1e-4)
    r = run(app, ["predict", "--model", str(tmp_path / "onnx"), str(imgs), "--backend", "torch"])
    assert r.exit_code == 2 and "onnxruntime" in r.output


def test_cli_evaluate_with_onnxruntime_backend_gives_the_torch_metrics(tmp_path):
    torch.manual_seed(6)
    CNNDetector(build_model("small"), "small", input_size=32).save(tmp_path / "model")
    rng = np.random.default_rng(7)
    rows = []
    for i in range(6):
        for label, gen in ((0, "real"), (1, "toy")):
            name = f"{gen}{i}.png"
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                tmp_path / name)
            rows.append({"path": name, "label": label, "generator": gen})
    pd.DataFrame(rows).to_csv(tmp_path / "test.csv", index=False)
    metrics = {}
    for backend in ("torch", "onnxruntime"):
        r = CliRunner().invoke(app, ["evaluate", "--model", str(tmp_path / "model"), "--test",
                                     str(tmp_path / "test.csv"), "--backend", backend,
                                     "--resamples", "0", "--json"])
        assert r.exit_code == 0, r.output
        metrics[backend] = pd.read_json(io.StringIO(r.stdout))
    for col in ("ap", "auc", "acc_05"):
        np.testing.assert_allclose(metrics["onnxruntime"][col], metrics["torch"][col], atol=1e-6)
