"""`ganforensics explain ffrs|mask|color|cam` against a saved small CNN detector."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import yaml
from PIL import Image
from typer.testing import CliRunner

from explain_toy import toy_dataset
from ganforensics.cli.main import app
from ganforensics.data.manifest import new_manifest, read_manifest, write_manifest
from ganforensics.errors import InputError
from ganforensics.explain import default_k
from ganforensics.explain.inputs import UNLABELLED, load_inputs
from ganforensics.io.images import file_sha256

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_thread")


def _write_set(folder: Path, n: int, seed: int) -> Path:
    images, labels = toy_dataset(n, 16, seed=seed)
    rows = []
    folder.mkdir(parents=True, exist_ok=True)
    for i, (im, lab) in enumerate(zip(images, labels, strict=True)):
        p = folder / f"{'fake' if lab else 'real'}_{i:03d}.png"
        Image.fromarray(im).save(p)
        rows.append({"abspath": str(p), "label": int(lab), "generator": "tconv" if lab else "real",
                     "source": f"s{i}", "split": "test", "sha256": file_sha256(p)})
    return write_manifest(new_manifest(rows), folder / "manifest.csv")


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    """A SmallCNN detector (arch "small", 352 maps) trained briefly and saved, + test data."""
    from ganforensics.detectors.cnn import CNNDetector, SmallCNN
    from ganforensics.explain import imagenet_preprocess

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("explain_cli")
    torch.manual_seed(0)
    images, labels = toy_dataset(96, 16, seed=0)
    x, y = imagenet_preprocess(images), torch.tensor(labels, dtype=torch.float32)
    model = SmallCNN()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(60):
        idx = torch.randint(0, len(y), (32,), generator=g)
        loss = F.binary_cross_entropy_with_logits(model(x[idx])[:, 0], y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    det = CNNDetector(model.eval(), "small", input_size=16, threshold=0.5)
    det.save(root / "model")
    return {"model": root / "model", "test": _write_set(root / "test", 40, seed=5),
            "root": root}


def _run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_ffrs_mask_color_cli(setup, tmp_path):
    model, test = setup["model"], setup["test"]
    res = _run("explain", "ffrs", "--model", model, "--data", test, "--out", tmp_path / "ffrs")
    assert res.exit_code == 0, res.output
    ranking = pd.read_csv(tmp_path / "ffrs" / "ffrs.csv")
    assert len(ranking) == 32 + 64 + 128 + 128
    assert ranking["key"].iloc[0] == f"{ranking['layer'].iloc[0]}.#{ranking['channel'].iloc[0]}"
    top = pd.read_csv(tmp_path / "ffrs" / "topk.csv")
    assert len(top) == default_k(352) == 2
    summary = json.loads((tmp_path / "ffrs" / "summary.json").read_text())
    assert summary["n_samples"] > 0 and summary["topk"] == list(top["key"])
    assert "top-2" in res.stdout

    # the same --out again: refused with exit 3
    again = _run("explain", "ffrs", "--model", model, "--data", test, "--out", tmp_path / "ffrs")
    assert again.exit_code == 3

    res = _run("explain", "mask", "--model", model, "--ranking", tmp_path / "ffrs" / "ffrs.csv",
               "--k", 8, "--test", test, "--json", "--draws", 2, "--out", tmp_path / "mask")
    assert res.exit_code == 0, res.output
    rows = pd.DataFrame(json.loads(res.stdout))
    assert set(rows["condition"]) == {"none", "top-k", "low-k", "random-k"}
    assert (rows["k"] == 8).all()
    assert (tmp_path / "mask" / "masking.csv").is_file()

    res = _run("explain", "color", "--model", model, "--test", test, "--ranking",
               tmp_path / "ffrs" / "ffrs.csv", "--k", 6, "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["summary"]["k"] == 6 and len(data["maps"]) == 6
    assert {"ap_rgb", "ap_gray"} <= set(data["detection"][0])


def test_cam_cli_writes_overlays_and_continues_past_bad_files(setup, tmp_path):
    test_dir = read_manifest(setup["test"])
    good = list(test_dir["abspath"][:2])
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    res = _run("explain", "cam", "--model", setup["model"], *good, bad, "--out", tmp_path / "cam")
    assert res.exit_code == 1, res.output  # bad file reported, others done
    assert "broken.png" in res.stderr
    table = pd.read_csv(tmp_path / "cam" / "cam.csv")
    assert len(table) == 2 and table["prob_fake"].between(0, 1).all()
    for name in table["overlay"]:
        img = np.asarray(Image.open(tmp_path / "cam" / name))
        assert img.shape == (256, 256, 3)
    config = yaml.safe_load((tmp_path / "cam" / "config.yaml").read_text())
    assert config["layer"] == "features.relu4"  # the detector's declared feature_layer


def test_unexplainable_detector_exit_2(setup, tmp_path):
    from ganforensics.detectors.spectral import train_spectral_detector

    df = read_manifest(setup["test"])
    det = train_spectral_detector("spectral-profile", df)
    det.save(tmp_path / "spec")
    for cmd in (["ffrs", "--data", setup["test"], "--out", tmp_path / "o1"],
                ["mask", "--ranking", tmp_path / "none.csv", "--test", setup["test"]],
                ["color", "--test", setup["test"]],
                ["cam", setup["test"], "--out", tmp_path / "o2"]):
        res = _run("explain", cmd[0], "--model", tmp_path / "spec", *cmd[1:])
        assert res.exit_code == 2, (cmd[0], res.output)
        assert "cannot be explained" in res.stderr
    assert not (tmp_path / "o1").exists()


def test_missing_options_exit_2(setup, tmp_path):
    res = _run("explain", "ffrs", "--model", setup["model"])
    assert res.exit_code == 2 and "--data" in res.stderr
    res = _run("explain", "mask", "--model", setup["model"], "--ranking", tmp_path / "x.csv",
               "--test", setup["test"])
    assert res.exit_code == 2 and "x.csv" in res.stderr


def test_load_inputs_reports_bad_rows_once_and_keeps_row_order(tmp_path, capsys):
    rows = []
    for i, split in enumerate(["train", "test", "test", "test"]):
        p = tmp_path / f"{i}.png"
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(p)
        rows.append({"abspath": str(p), "label": i % 2, "generator": f"g{i}", "split": split})
    rows[2]["error"] = "known bad"  # a manifest error row: not decoded again
    (tmp_path / "3.png").write_bytes(b"")  # undecodable
    manifest = write_manifest(new_manifest(rows), tmp_path / "m.csv")
    got = load_inputs([manifest], "test", "--test")
    assert [Path(p).name for p in got.paths] == ["1.png"] and got.n_bad == 2
    assert got.labels.tolist() == [1] and got.generators.tolist() == ["g1"]
    assert int(got.images[0][0, 0, 0]) == 40
    warning = [ln for ln in capsys.readouterr().err.splitlines() if "unreadable" in ln]
    assert len(warning) == 1 and "--test: 2 unreadable image(s)" in warning[0]
    assert "known bad" in warning[0]
    with pytest.raises(InputError, match="no rows with split 'val'"):
        load_inputs([manifest], "val", "--test")
    # a folder of unlabelled images: refused where labels are needed, label -1 otherwise
    folder = tmp_path / "loose"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "a.png")
    with pytest.raises(InputError, match="have no label"):
        load_inputs([folder], None, "IMAGES")
    assert load_inputs([folder], None, "IMAGES", need_labels=False).labels.tolist() == [UNLABELLED]
