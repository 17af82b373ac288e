"""Importers on tiny trees shaped like today's benchmark sets: ForenSynths / CNNDetection,
AIGIBench, WildRF, GenImage and UniversalFakeDetect's paired folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganforensics.data.importers import scan_folder, scan_pairs
from ganforensics.errors import InputError


def _img(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return path


def test_forensynths_layout(tmp_path):
    root = tmp_path / "CNN_synth_testset"
    _img(root / "progan" / "airplane" / "0_real" / "a.png")
    _img(root / "progan" / "airplane" / "1_fake" / "b.png")
    _img(root / "stylegan" / "car" / "1_fake" / "c.png")
    _img(root / "deepfake" / "0_real" / "d.png")
    _img(root / "deepfake" / "1_fake" / "e.png")
    df = scan_folder(root).set_index("path")
    assert df.loc["stylegan/car/1_fake/c.png", ["label", "generator", "category"]].tolist() == \
        [1, "stylegan", "car"]
    assert df.loc["deepfake/0_real/d.png", ["label", "generator", "group"]].tolist() == \
        [0, "real", "deepfake"]
    assert (df["layout"] == "cnndetection").all()


def test_aigibench_layout(tmp_path):
    root = tmp_path / "AIGIBench"
    _img(root / "train" / "SDv14" / "0_real" / "a.png")
    _img(root / "train" / "SDv14" / "1_fake" / "b.png")
    _img(root / "test" / "FLUX" / "1_fake" / "c.png")
    _img(root / "test" / "FLUX" / "0_real" / "d.png")
    df = scan_folder(root).set_index("path")
    assert df.loc["test/FLUX/1_fake/c.png", ["label", "generator", "split"]].tolist() == \
        [1, "FLUX", "test"]
    assert df.loc["train/SDv14/0_real/a.png", ["label", "generator", "split", "group"]] \
        .tolist() == [0, "real", "train", "SDv14"]


def test_wildrf_layout(tmp_path):
    root = tmp_path / "WildRF"
    for i, (split, platform) in enumerate([("train", "reddit"), ("val", "reddit"),
                                           ("test", "facebook"), ("test", "twitter")]):
        _img(root / split / platform / "0_real" / f"r{i}.jpg", seed=i)
        _img(root / split / platform / "1_fake" / f"f{i}.png", seed=10 + i)
    df = scan_folder(root).set_index("path")
    assert len(df) == 8
    assert df.loc["test/twitter/1_fake/f3.png", ["label", "generator", "split"]].tolist() == \
        [1, "twitter", "test"]
    assert df.loc["val/reddit/0_real/r1.jpg", ["label", "split", "group"]].tolist() == \
        [0, "val", "reddit"]
    assert sorted(df[df["label"] == 1]["generator"].unique()) == ["facebook", "reddit", "twitter"]


def test_genimage_layout(tmp_path):
    root = tmp_path / "GenImage"
    _img(root / "ADM" / "imagenet_ai_0508_adm" / "train" / "ai" / "a.PNG")
    _img(root / "ADM" / "imagenet_ai_0508_adm" / "train" / "nature" / "b.JPEG")
    _img(root / "BigGAN" / "imagenet_ai_0419_biggan" / "val" / "ai" / "c.png")
    _img(root / "BigGAN" / "imagenet_ai_0419_biggan" / "val" / "nature" / "d.png")
    df = scan_folder(root).set_index("path")
    assert (df["layout"] == "genimage").all()
    assert df.loc["BigGAN/imagenet_ai_0419_biggan/val/ai/c.png",
                  ["label", "generator", "split"]].tolist() == [1, "BigGAN", "val"]
    assert df.loc["ADM/imagenet_ai_0508_adm/train/nature/b.JPEG", ["label", "split"]].tolist() \
        == [0, "train"]


def test_universalfakedetect_pairs(tmp_path):
    root = tmp_path / "diffusion_datasets"
    # a real set inside a folder named 1_fake: the pair, not the folder name, decides
    _img(root / "laion" / "1_fake" / "r0.png", seed=1)
    _img(root / "laion" / "1_fake" / "r1.png", seed=2)
    _img(root / "guided" / "1_fake" / "g0.png", seed=3)
    _img(root / "ldm_200" / "1_fake" / "l0.png", seed=4)
    (root / "ldm_200" / "1_fake" / "notes.txt").write_text("x")
    cnn = tmp_path / "CNN" / "test" / "progan"
    _img(cnn / "0_real" / "p0.png", seed=5)
    _img(cnn / "1_fake" / "p1.png", seed=6)
    df = scan_pairs([(root / "laion", root / "guided", "guided"),
                     (root / "laion", root / "ldm_200", None),
                     (cnn, cnn, "progan")]).set_index("path")
    assert (df["layout"] == "paired").all()
    laion = df[df.index.str.contains("laion")]
    assert len(laion) == 2 and (laion["label"] == 0).all() and (laion["generator"] == "real").all()
    assert (laion["group"] == "guided").all()  # shared reals: one row each, first pair's group
    assert df.loc["diffusion_datasets/ldm_200/1_fake/l0.png", "generator"] == "ldm_200"
    assert "extension" in df.loc["diffusion_datasets/ldm_200/1_fake/notes.txt", "error"]
    assert df.loc["CNN/test/progan/0_real/p0.png", ["label", "group"]].tolist() == [0, "progan"]
    assert df.loc["CNN/test/progan/1_fake/p1.png", ["label", "generator"]].tolist() == \
        [1, "progan"]
    assert df["sha256"].str.len().eq(64).all()
    with pytest.raises(InputError, match="not found"):
        scan_pairs([(root / "laion", root / "nope", None)])


def test_scan_pairs_cli(tmp_path):
    from typer.testing import CliRunner

    from ganforensics.cli.main import app
    from ganforensics.data.manifest import read_manifest

    root = tmp_path / "ufd"
    _img(root / "laion" / "r0.png", seed=1)
    _img(root / "guided" / "g0.png", seed=2)
    out = tmp_path / "m" / "ufd.csv"
    res = CliRunner().invoke(app, ["data", "scan-pairs", "--pair",
                                   f"{root / 'laion'},{root / 'guided'},guided", "--out",
                                   str(out), "--json"])
    assert res.exit_code == 0, res.output
    df = read_manifest(out)
    assert sorted(zip(df["label"], df["generator"], strict=True)) == [(0, "real"), (1, "guided")]
    assert all((out.parent / p).is_file() for p in df["path"])
    bad = CliRunner().invoke(app, ["data", "scan-pairs", "--pair", str(root / "laion"),
                                   "--out", str(tmp_path / "x.csv")])
    assert bad.exit_code == 2 and "REAL_DIR,FAKE_DIR" in bad.output
