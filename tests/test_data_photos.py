"""Offline photo patches: enough patches, splits by photo, flat patches skipped, JPEG policy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ganforensics.data.manifest import read_manifest
from ganforensics.data.photos import (
    assign_splits,
    cut_patches,
    default_photo_status,
    default_photos,
    make_patches,
    photo_scales,
)
from ganforensics.errors import ConfigError, InputError, RunExistsError


def test_default_photos_are_colour_and_installed():
    status = default_photo_status()
    photos = default_photos()
    assert len(photos) == sum(v == "ok" for v in status.values()) >= 8
    for name, img in photos:
        assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8, name
        # colour: channels differ somewhere
        assert not np.array_equal(img[..., 0], img[..., 1]), name


def test_default_patches_at_32(tmp_path):
    out = tmp_path / "p"
    df = make_patches(out, size=32)
    assert len(df) >= 2000
    back = read_manifest(out / "manifest.csv")
    assert len(back) == len(df)
    assert (back["label"] == 0).all() and (back["generator"] == "real").all()
    assert set(back["split"]) == {"train", "val", "test"}
    # no source photo (nor photo group) in two splits
    assert (back.groupby("source")["split"].nunique() == 1).all()
    assert (back.groupby("group")["split"].nunique() == 1).all()
    # files exist, are 32x32 PNG, and their hashes match
    for _, r in back.sample(20, random_state=0).iterrows():
        im = Image.open(r["abspath"])
        assert im.size == (32, 32) and im.format == "PNG"
    # JPEG photos were only used after at least a 2x downscale
    jpeg_rows = back[back["photo_format"] == "JPEG"]
    assert len(jpeg_rows) and (jpeg_rows["scale"] <= 0.5).all()
    assert (back[back["photo_format"] == "PNG"]["scale"] == 1.0).any()
    assert len(set(back["sha256"])) > 0.99 * len(back)
    for f in ("config.yaml", "env.json", "summary.json"):
        assert (out / f).is_file()
    with pytest.raises(RunExistsError):
        make_patches(out, size=32)


def test_flat_patches_skipped():
    img = np.full((64, 96, 3), 120, np.uint8)
    img[:32, :32] = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    img[32:, 64:] += np.random.default_rng(1).integers(0, 3, (32, 32, 3), dtype=np.uint8)
    kept = cut_patches(img, 32, min_std=4.0)
    assert [(y, x) for y, x, _ in kept] == [(0, 0)]
    assert len(cut_patches(img, 32, min_std=0.0)) == 6


def test_photo_scales_policy():
    assert photo_scales("PNG", [1.0, 0.5], 0.5) == [1.0, 0.5]
    assert photo_scales("JPEG", [1.0, 0.5, 0.25], 0.5) == [0.5, 0.25]
    assert photo_scales("JPEG", [1.0], 0.5) == [0.5]


def test_assign_splits_by_group_with_seed():
    counts = {f"g{i}": n for i, n in enumerate([300, 250, 200, 150, 100, 80, 60, 40, 20, 10])}
    a = assign_splits(counts, seed=2021)
    assert a == assign_splits(counts, seed=2021)
    assert set(a) == set(counts) and set(a.values()) == {"train", "val", "test"}
    share = {s: sum(counts[g] for g in a if a[g] == s) / sum(counts.values())
             for s in ("train", "val", "test")}
    assert share["train"] > 0.5 and share["val"] > 0.05 and share["test"] > 0.05
    others = [assign_splits(counts, seed=s) for s in range(5)]
    assert any(o != a for o in others)
    # three groups: one per split even when one dominates
    b = assign_splits({"big": 1000, "s1": 5, "s2": 5}, seed=0)
    assert sorted(b.values()) == ["test", "train", "val"]
    with pytest.raises(ConfigError):
        assign_splits(counts, fractions=(1, 1))


def test_user_folder_photos(tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (70, 100, 3), dtype=np.uint8)).save(
            src / f"p{i}.png"
        )
    Image.fromarray(rng.integers(0, 256, (140, 200, 3), dtype=np.uint8)).save(
        src / "cam.JPG", quality=90
    )
    (src / "broken.png").write_bytes(b"nope")
    df = make_patches(tmp_path / "out", size=16, sources=[src], scales=[1.0], seed=3)
    assert set(df["source"]) == {"p0", "p1", "p2", "p3", "cam"}
    assert (df.groupby("source")["split"].nunique() == 1).all()
    assert set(df["split"]) == {"train", "val", "test"}
    # 70x100 at scale 1: 4 x 6 patches; the JPEG photo is cut at 0.5 -> 70x100 as well
    assert (df[df["source"] == "p0"].shape[0], df[df["source"] == "cam"].shape[0]) == (24, 24)
    assert (df.loc[df["source"] == "cam", "scale"] == 0.5).all()
    assert any("broken.png" in p for p in df.attrs["problems"])
    capped = make_patches(tmp_path / "o2", size=16, sources=[src], scales=[1.0],
                          max_per_photo=5)
    assert capped.groupby("source").size().max() == 5
    with pytest.raises(InputError, match="not found"):
        make_patches(tmp_path / "o3", sources=[tmp_path / "missing"])
    with pytest.raises(ConfigError, match="scales"):
        make_patches(tmp_path / "o4", sources=[src], scales=[2.0])
    assert isinstance(df, pd.DataFrame)
