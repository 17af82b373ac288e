"""Importers: layouts recognised, one row per file, hostile files as error rows, collect_inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ganforensics.data.importers import collect_inputs, scan_folder, scan_summary
from ganforensics.data.manifest import read_manifest, write_manifest
from ganforensics.errors import InputError
from hostile import write_hostile


def _img(path: Path, fmt: str = "PNG", size: tuple[int, int] = (8, 6), seed: int = 0, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, format=fmt, **kw)
    return path


def test_cnndetection_layout(tmp_path):
    root = tmp_path / "cnn"
    _img(root / "progan" / "airplane" / "0_real" / "a.png")
    _img(root / "progan" / "airplane" / "1_fake" / "b.PNG")
    _img(root / "progan" / "cat" / "1_fake" / "c.Png")
    _img(root / "biggan" / "0_real" / "d.jpg", "JPEG", quality=80)
    _img(root / "biggan" / "1_FAKE" / "e.png")
    df = scan_folder(root).set_index("path")
    assert len(df) == 5
    assert df.loc["progan/airplane/0_real/a.png", "label"] == 0
    assert df.loc["progan/airplane/0_real/a.png", "generator"] == "real"
    assert df.loc["progan/airplane/0_real/a.png", "group"] == "progan"
    assert df.loc["progan/cat/1_fake/c.Png", "generator"] == "progan"
    assert df.loc["progan/cat/1_fake/c.Png", "category"] == "cat"
    assert df.loc["biggan/1_FAKE/e.png", "label"] == 1
    assert df.loc["biggan/1_FAKE/e.png", "generator"] == "biggan"
    assert df.loc["biggan/0_real/d.jpg", "format"] == "JPEG"
    assert df.loc["biggan/0_real/d.jpg", "jpeg_quality"] == 80
    assert (df["layout"] == "cnndetection").all()
    assert df["error"].isna().all()
    assert (df["width"] == 8).all() and (df["height"] == 6).all()
    assert df["sha256"].str.len().eq(64).all()


def test_cnndetection_generator_root(tmp_path):
    root = tmp_path / "stylegan"
    _img(root / "0_real" / "a.png")
    _img(root / "1_fake" / "b.png")
    df = scan_folder(root)
    assert sorted(df["generator"]) == ["real", "stylegan"]


def test_real_fake_layouts(tmp_path):
    flat = tmp_path / "flat"
    _img(flat / "real" / "a.png")
    _img(flat / "fake" / "b.png")
    df = scan_folder(flat).set_index("path")
    assert df.loc["real/a.png", "label"] == 0 and df.loc["real/a.png", "generator"] == "real"
    assert df.loc["fake/b.png", "label"] == 1 and df.loc["fake/b.png", "generator"] == "fake"
    nested = tmp_path / "nested"
    _img(nested / "dcgan" / "real" / "a.png")
    _img(nested / "dcgan" / "fake" / "b.png")
    _img(nested / "train" / "wgan" / "fake" / "c.png")
    df = scan_folder(nested).set_index("path")
    assert df.loc["dcgan/fake/b.png", "generator"] == "dcgan"
    assert df.loc["train/wgan/fake/c.png", "generator"] == "wgan"
    assert df.loc["train/wgan/fake/c.png", "split"] == "train"
    assert (df["layout"] == "real-fake").all()


def test_genimage_layout(tmp_path):
    root = tmp_path / "genimage"
    _img(root / "sdv14" / "imagenet_ai_0419_sdv4" / "train" / "nature" / "a.JPEG", "JPEG")
    _img(root / "sdv14" / "imagenet_ai_0419_sdv4" / "train" / "ai" / "b.png")
    _img(root / "midjourney" / "val" / "ai" / "c.png")
    _img(root / "midjourney" / "val" / "nature" / "d.jpeg", "JPEG")
    df = scan_folder(root).set_index("path")
    assert (df["layout"] == "genimage").all()
    assert df.loc["sdv14/imagenet_ai_0419_sdv4/train/ai/b.png", "generator"] == "sdv14"
    assert df.loc["sdv14/imagenet_ai_0419_sdv4/train/ai/b.png", "split"] == "train"
    assert df.loc["midjourney/val/ai/c.png", "split"] == "val"
    assert df.loc["midjourney/val/nature/d.jpeg", "label"] == 0
    # an "ai" folder not under train/val is not a GenImage class folder
    other = tmp_path / "other"
    _img(other / "ai" / "x.png")
    assert scan_folder(other)["label"].isna().all()


def test_scan_mixed_hostile_folder_one_row_per_file(tmp_path):
    root = tmp_path / "mixed"
    _img(root / "real" / "good.png")
    _img(root / "fake" / "good.jpg", "JPEG")
    expected = write_hostile(root / "fake")
    (root / "fake" / ".DS_Store").write_bytes(b"\x00\x01")  # hidden: skipped
    (root / "README.md").write_text("outside the class folders: ignored")
    df = scan_folder(root)
    assert len(df) == 2 + len(expected)
    by_name = {Path(p).name: r for p, r in zip(df["path"], df["error"], strict=True)}
    for name, fragment in expected.items():
        reason = by_name[name]
        assert isinstance(reason, str) and fragment in reason, (name, reason)
        assert "\n" not in reason and "Traceback" not in reason
    assert by_name["good.png"] is None or pd.isna(by_name["good.png"])
    s = scan_summary(df)
    assert s["files"] == 8 and s["errors"] == 6 and s["ok"] == 2
    assert s["by_class"] == {"fake": 1, "real": 1}
    # error rows still carry label/generator and a sha256 when the bytes were readable
    bomb = df[df["path"].str.endswith("bomb.png")].iloc[0]
    assert bomb["label"] == 1 and isinstance(bomb["sha256"], str)


def test_unrecognised_layout_is_unlabelled(tmp_path):
    _img(tmp_path / "pics" / "a.png")
    _img(tmp_path / "pics" / "sub" / "b.webp", "WEBP")
    (tmp_path / "pics" / "list.csv").write_text("a,b\n")
    df = scan_folder(tmp_path / "pics")
    assert len(df) == 2
    assert df["label"].isna().all() and str(df["label"].dtype) == "Int64"
    assert (df["generator"] == "unknown").all()


def test_scan_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        scan_folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no image files"):
        scan_folder(tmp_path / "empty")


def test_manifest_round_trip_with_unknown_labels(tmp_path):
    root = tmp_path / "d"
    _img(root / "real" / "a.png")
    _img(root / "fake" / "b.png")
    _img(root / "c.png")
    df = scan_folder(root)
    write_manifest(df, tmp_path / "m" / "manifest.csv")
    back = read_manifest(tmp_path / "m" / "manifest.csv")
    assert len(back) == 3 and str(back["label"].dtype) == "Int64"
    assert sorted(back["abspath"]) == sorted(df["abspath"])
    assert back.set_index("generator").loc["unknown", "label"] is pd.NA


def test_collect_inputs_is_cheap_and_mixes_kinds(tmp_path):
    root = tmp_path / "d"
    _img(root / "0_real" / "a.png")
    _img(root / "1_fake" / "b.png")
    single = _img(tmp_path / "single.JPG", "JPEG")
    m = tmp_path / "other.csv"
    _img(tmp_path / "x.png")
    pd.DataFrame({"path": ["x.png"], "label": [1], "generator": ["gx"]}).to_csv(m, index=False)
    df = collect_inputs([root, single, m])
    assert len(df) == 4
    assert df["width"].isna().all() or df["width"].isna().sum() >= 3  # nothing decoded
    assert str(df["label"].dtype) == "Int64"
    assert df.loc[df["abspath"] == str(single.resolve()), "generator"].item() == "unknown"
    assert set(df["generator"]) == {"real", "d", "unknown", "gx"}
    assert all(Path(a).is_absolute() for a in df["abspath"])
    only_labelled = collect_inputs(root)
    assert only_labelled["label"].dtype == np.int64
    with pytest.raises(InputError, match="no such file"):
        collect_inputs([tmp_path / "missing"])
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="not a manifest"):
        collect_inputs([tmp_path / "notes.txt"])
