"""`predict`: one row per file over hostile folders, error rows, threshold, output formats."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from ganforensics.cli.main import app
from ganforensics.detectors.base import sigmoid
from ganforensics.detectors.cnn import CNNDetector, build_model
from ganforensics.evaluate.predict import (
    PREDICT_COLUMNS,
    input_paths,
    predict_inputs,
    predict_paths,
)
from hostile import write_undecodable


@pytest.fixture
def model_dir(tmp_path):
    torch.manual_seed(0)
    det = CNNDetector(build_model("small"), "small", input_size=32, threshold=0.5)
    return det.save(tmp_path / "model"), det


def _hostile_folder(root, rng):
    root.mkdir()
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(root / "good1.png")
    Image.fromarray(rng.integers(0, 256, (20, 28, 3), dtype=np.uint8)).save(root / "good2.jpg")
    write_undecodable(root)
    Image.new("RGB", (4, 4)).save(root / "x.ico", format="ICO")
    return root


def test_predict_over_hostile_folder_gives_one_row_per_file(tmp_path, rng, model_dir):
    folder = _hostile_folder(tmp_path / "in", rng)
    out = tmp_path / "scores.csv"
    res = CliRunner().invoke(app, ["predict", "--model", str(model_dir[0]), str(folder),
                                   "--out", str(out), "--batch-size", "2"])
    assert res.exit_code == 1, res.output  # finished, but some inputs were bad
    df = pd.read_csv(out, keep_default_na=False)
    assert list(df.columns) == ["path", "prob_fake", "logit", "decision", "error"]
    names = sorted(p.split("/")[-1] for p in df["path"])
    # a folder yields every file with an image suffix (x.ico is not one)
    assert names == sorted(p.name for p in folder.iterdir() if p.suffix != ".ico")
    by = df.set_index(df["path"].str.split("/").str[-1])
    for bad, needle in (("empty.png", "empty"), ("truncated.jpg", "truncated"),
                        ("text.png", "not a recognised"), ("bomb.png", "too large")):
        assert needle in by.loc[bad, "error"] and by.loc[bad, "decision"] == ""
    det = model_dir[1]
    for good in ("good1.png", "good2.jpg"):
        assert by.loc[good, "error"] == ""
        img = np.asarray(Image.open(folder / good).convert("RGB"))
        logit = det.logits([img])[0]
        assert float(by.loc[good, "logit"]) == pytest.approx(logit, abs=1e-5)
        assert float(by.loc[good, "prob_fake"]) == pytest.approx(sigmoid(logit), abs=1e-6)
        assert by.loc[good, "decision"] == ("fake" if sigmoid(logit) >= 0.5 else "real")
    # one summary warning: the count and the first bad files by name
    summary = [ln for ln in res.output.splitlines() if "unreadable image(s) skipped" in ln]
    n_bad = int((df["error"] != "").sum())
    assert len(summary) == 1 and f"predict: {n_bad} unreadable image(s) skipped" in summary[0]
    assert by.index[(df["error"] != "").to_numpy()][0] in summary[0]
    # files named explicitly always get a row, even when missing or not an image
    out2 = tmp_path / "named.csv"
    res = CliRunner().invoke(app, ["predict", "--model", str(model_dir[0]), str(folder / "x.ico"),
                                   str(folder / "good1.png"), str(tmp_path / "missing.png"),
                                   "--out", str(out2)])
    assert res.exit_code == 1, res.output
    named = pd.read_csv(out2, keep_default_na=False)
    assert len(named) == 3 and "unsupported" in named.loc[0, "error"]
    assert named.loc[1, "error"] == "" and "not found" in named.loc[2, "error"]


def test_threshold_override_and_jsonl(tmp_path, rng, model_dir):
    folder = tmp_path / "ok"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
            folder / f"{i}.png")
    for thr, want in (("0", "fake"), ("1", "real")):
        out = tmp_path / f"t{thr}.jsonl"
        res = CliRunner().invoke(app, ["predict", "--model", str(model_dir[0]), str(folder),
                                       "--threshold", thr, "--out", str(out)])
        assert res.exit_code == 0, res.output
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(rows) == 3 and all(r["decision"] == want for r in rows)
    # default: CSV on stdout
    res = CliRunner().invoke(app, ["predict", "--model", str(model_dir[0]), str(folder / "0.png")])
    assert res.exit_code == 0 and res.stdout.startswith("path,prob_fake,logit,decision,error")
    res = CliRunner().invoke(app, ["predict", "--model", str(model_dir[0]), str(folder),
                                   "--out", str(tmp_path / "x.txt")])
    assert res.exit_code == 2 and ".jsonl" in res.output
    res = CliRunner().invoke(app, ["predict", str(folder)])
    assert res.exit_code == 2 and "--model" in res.output


def test_predict_paths_batches_match_single_images(tmp_path, rng, model_dir):
    det = model_dir[1]
    paths = []
    for i, shape in enumerate([(32, 32), (40, 36), (32, 32), (16, 20), (32, 32)]):
        p = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    paths.insert(2, tmp_path / "missing.png")
    table = predict_paths(det, paths, batch_size=2, workers=2, progress=False)
    assert len(table) == 6 and "not found" in table.loc[2, "error"]
    for i, p in enumerate(paths):
        if i == 2:
            continue
        single = det.logits([np.asarray(Image.open(p).convert("RGB"))])[0]
        assert table.loc[i, "logit"] == pytest.approx(single, abs=1e-5)


def test_predict_inputs_expands_folders_and_manifests_in_order(tmp_path, rng, model_dir):
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / name)
    folder = tmp_path / "dir"
    folder.mkdir()
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / "c.png")
    manifest = tmp_path / "m.csv"
    # a manifest row that carries an error keeps it: the file is not decoded again
    pd.DataFrame({"path": ["a.png", "b.png"], "label": [0, 1],
                  "error": ["known bad", ""]}).to_csv(manifest, index=False)
    inputs = [manifest, folder, tmp_path / "a.png"]
    paths, errs = input_paths(inputs)
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["a.png", "b.png", "c.png", "a.png"]
    assert errs == ["known bad", None, None, None]
    table = predict_inputs(model_dir[1], inputs, progress=False)
    assert list(table.columns) == list(PREDICT_COLUMNS)
    assert table["error"].tolist() == ["known bad", "", "", ""]
    assert table["decision"].iloc[0] == "" and np.isnan(table["logit"].iloc[0])
    assert table["logit"].iloc[3] == pytest.approx(
        model_dir[1].logits([np.asarray(Image.open(tmp_path / "a.png").convert("RGB"))])[0],
        abs=1e-5)


def test_spectral_detector_train_and_predict_through_the_shared_verbs(tmp_path, rng):
    rows = []
    for split in ("train", "val"):
        for i in range(16):
            lab = i % 2
            im = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            if lab:  # fakes: smooth (low-pass) images
                im = np.asarray(Image.fromarray(im).resize((8, 8)).resize((32, 32),
                                Image.Resampling.BILINEAR))
            p = tmp_path / split / f"{i}.png"
            p.parent.mkdir(exist_ok=True)
            Image.fromarray(im).save(p)
            rows.append({"path": f"{split}/{i}.png", "label": lab, "split": split})
    df = pd.DataFrame(rows)
    df[df.split == "train"].to_csv(tmp_path / "train.csv", index=False)
    df[df.split == "val"].to_csv(tmp_path / "val.csv", index=False)
    res = CliRunner().invoke(app, ["detector", "train", "--kind", "spectral-profile",
                                   "--train", str(tmp_path / "train.csv"), "--val",
                                   str(tmp_path / "val.csv"), "--out", str(tmp_path / "spec")])
    assert res.exit_code == 0, res.output
    out = tmp_path / "s.csv"
    res = CliRunner().invoke(app, ["predict", "--model", str(tmp_path / "spec"),
                                   str(tmp_path / "val.csv"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out, keep_default_na=False)
    assert len(table) == 16
    labels = df[df.split == "val"]["label"].to_numpy()
    assert ((table["decision"] == "fake").to_numpy() == (labels == 1)).mean() >= 0.9


def _randomise_batchnorm(model: torch.nn.Module) -> None:
    """Non-trivial BatchNorm statistics, so folding them into the convs changes the weights."""
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) - 0.5)


@pytest.mark.parametrize("arch,size", [("small", 32), ("resnet18", 64)])
def test_fused_copy_gives_same_logits_and_leaves_the_original_alone(rng, arch, size):
    torch.manual_seed(0)
    model = build_model(arch)
    _randomise_batchnorm(model)
    det = CNNDetector(model, arch, input_size=size)
    images = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(5)]
    fused = det.fused()
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in det.model.modules())
    assert n_bn > 0
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in fused.model.modules()) < n_bn
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in det.model.modules()) == n_bn
    np.testing.assert_allclose(fused.logits(images), det.logits(images), rtol=1e-4, atol=1e-4)
    assert fused.threshold == det.threshold and fused.arch == det.arch


def test_cpu_chunking_matches_one_pass(rng, monkeypatch):
    import ganforensics.detectors.cnn.model as model_mod

    torch.manual_seed(0)
    det = CNNDetector(build_model("small"), "small", input_size=32, batch_size=16)
    images = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(7)]
    whole = det.logits(images)
    calls = []
    forward = det.model.forward
    monkeypatch.setattr(det.model, "forward", lambda x: calls.append(len(x)) or forward(x))
    monkeypatch.setattr(model_mod, "CPU_CHUNK_PIXELS", 3 * 32 * 32)
    chunked = det.logits(images)
    assert calls == [3, 3, 1]
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-6)
