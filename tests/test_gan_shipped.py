"""Shipped simulators (`gan.shipped`): packaging, the honesty check, installing into a run, and
the package's own set (one per default last block, fitting the default study's photos)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from ganforensics.data.manifest import split_of
from ganforensics.data.photos import make_patches
from ganforensics.errors import InputError
from ganforensics.gan.data import load_training_images
from ganforensics.gan.reconstruct import load_simulator, reconstruct, reconstruct_images
from ganforensics.gan.shipped import (
    PROVENANCE,
    find_shipped,
    generator_recipe,
    install_shipped,
    list_shipped,
    pixel_sha256,
    resolve_simulator,
    shipped_unfit,
    training_hashes,
    write_shipped,
)
from ganforensics.gan.simulate import train_simulator
from ganforensics.gan.simulator import SimulatorConfig
from ganforensics.io.atomic import save_png_atomic
from ganforensics.study.config import load_config
from ganforensics.study.setups import may_ship_gan

DEFAULT_BLOCKS = [s["last_block"] for s in load_config()["gan"]["setups"]]


def _held(groups: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"group": groups, "source": groups})


def _images(seed: int, n: int) -> list[np.ndarray]:
    return list(np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny finished simulator run, its training images and their pixel hashes."""
    root = tmp_path_factory.mktemp("shipped")
    images = _images(0, 6)
    cfg = SimulatorConfig(last_block="N.1.5", size=32, width=4, bottleneck=4, steps=2,
                          batch=4).validate()
    run = train_simulator(cfg, np.stack(images), root / "run", progress=False)
    return run, images, [pixel_sha256(im) for im in images], root


def test_pixel_hashes_see_pixels_and_shape_only() -> None:
    a = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    assert pixel_sha256(a) == pixel_sha256(a.copy(order="F"))
    assert pixel_sha256(a) != pixel_sha256(a.reshape(1, 4, 3))
    b = a.copy()
    b[0, 0, 0] += 1
    assert pixel_sha256(a) != pixel_sha256(b)


def test_packaged_simulator_installs_as_a_run_that_reconstructs_identically(trained) -> None:
    run, _, hashes, root = trained
    dest = write_shipped(run, root / "pkg", {"steps": 2, "data": {"groups": ["a", "b"]}},
                         hashes)
    assert dest.name == "sim-N.1.5-32" and find_shipped("n.1.5", 32, root / "pkg") == dest
    assert find_shipped("N.1.5", 64, root / "pkg") is None
    assert find_shipped("BASELINE", 32, root / "pkg") is None
    assert training_hashes(root / "pkg") == set(hashes)
    assert [p["folder"] for p in list_shipped(root / "pkg")] == ["sim-N.1.5-32"]
    target = root / "study" / "simulators" / "N.1.5"
    target.mkdir(parents=True)
    (target / "stale.txt").write_text("from an earlier run")
    install_shipped(dest, target)
    assert not (target / "stale.txt").exists()
    assert json.loads((target / "shipped.json").read_text())["steps"] == 2
    net, meta = load_simulator(target)
    ref, _ = load_simulator(run)
    for k, v in load_file(str(run / "simulator.safetensors")).items():
        assert torch.equal(net.state_dict()[k], v), k
    img = [np.full((32, 32, 3), 90, np.uint8)]
    assert np.array_equal(reconstruct_images(net, img)[0], reconstruct_images(ref, img)[0])


def test_a_second_training_set_in_the_same_folder_is_refused(trained) -> None:
    run, _, hashes, root = trained
    write_shipped(run, root / "pkg2", {"data": {"groups": ["a"]}}, hashes)
    with pytest.raises(InputError, match="trained on other patches"):
        write_shipped(run, root / "pkg2", {"data": {"groups": ["a"]}}, ["other"])


def test_shipped_is_used_only_where_it_is_honest(trained) -> None:
    run, images, hashes, root = trained
    dest = write_shipped(run, root / "pkg3", {"data": {"groups": ["a", "b"]}}, hashes)
    held = _held(["c", "d"])
    assert shipped_unfit(dest, images, held) is None
    assert shipped_unfit(dest, images[:2], held) is None  # a subset of its images is fine
    other = [*images, *_images(1, 1)]
    assert "1 of the study's 7 train patches were not in its training set" in \
        shipped_unfit(dest, other, held)
    assert "trained on photos the study holds out (b)" in \
        shipped_unfit(dest, images[:2], _held(["b", "c"]))


@pytest.fixture(scope="module")
def default_photos(tmp_path_factory):
    """The default study's train patch stack and its held-out rows (val and test)."""
    patches = make_patches(tmp_path_factory.mktemp("photos"))  # default photos, split and seed
    train = split_of(patches, "train")
    stack, _ = load_training_images(train, 32)
    held = patches[patches["split"].astype(str).isin(["val", "test"])]
    return list(stack), held


@pytest.mark.slow
def test_the_package_ships_one_simulator_per_default_block_fitting_the_default_photos(
        default_photos) -> None:
    stack, held = default_photos
    for block in DEFAULT_BLOCKS:
        path = find_shipped(block, 32)
        assert path is not None, block
        assert shipped_unfit(path, stack, held) is None, block
        prov = json.loads((path / PROVENANCE).read_text())
        meta = json.loads((path / "simulator.json").read_text())
        assert meta["last_block"] == block and meta["config"]["data"]["count"] == len(stack)
        assert prov["data"]["sha256"] == meta["config"]["data"]["sha256"]
        assert prov["command"].startswith("python bench/simulator_quality.py")
        assert prov["fid_n"] >= 450 and prov["ratio"] == pytest.approx(
            prov["fid"] / prov["floor"], abs=2e-3)


@pytest.mark.slow
def test_the_package_ships_one_generator_per_default_block_fitting_the_default_photos(
        default_photos) -> None:
    stack, held = default_photos
    cfg = load_config()
    recipes = []
    for setup, block in zip(cfg["gan"]["setups"], DEFAULT_BLOCKS, strict=True):
        assert may_ship_gan(cfg, setup), block  # the demo uses it
        path = find_shipped(block, 32, kind="gen")
        assert path is not None, block
        assert shipped_unfit(path, stack, held) is None, block
        prov = json.loads((path / PROVENANCE).read_text())
        meta = json.loads((path / "generator.json").read_text())
        assert meta["last_block"] == block
        # the device and the arithmetic are where and how fast it trained, not what (a zoo
        # may be trained partly on a GPU, partly in float32: generator.json's `moves`)
        recipes.append({k: v for k, v in meta["config"].items()
                        if k not in ("last_block", "device", "precision")})
        assert prov["data"]["n"] == len(stack) and prov["steps"] == meta["steps"]
        assert prov["command"].startswith("python bench/gan_quality.py")
        assert prov["fid_n"] >= 450 and prov["ratio"] == pytest.approx(
            prov["fid"] / prov["floor"], abs=2e-3)
        weights = load_file(str(path / "generator.safetensors"))
        assert {v.dtype for v in weights.values() if v.is_floating_point()} == {torch.float16}
    # trained alike (same recipe, seed, steps and patches), so setups differ by the last block
    assert all(r == recipes[0] for r in recipes[1:])


def test_shipped_names_resolve_or_fail_clearly(tmp_path) -> None:
    assert resolve_simulator(tmp_path) == tmp_path  # a run folder stays what it is
    with pytest.raises(InputError, match="shipped:Q.9.9: last_block: unknown setup"):
        resolve_simulator("shipped:Q.9.9")
    with pytest.raises(InputError, match="no shipped simulator for that last block at 64 px"):
        resolve_simulator("shipped:BASELINE", size=64)


@pytest.mark.slow
def test_reconstruct_accepts_a_shipped_simulator(tmp_path) -> None:
    ramp = np.linspace(30, 220, 32)
    img = np.stack([np.add.outer(ramp, ramp) / 2, np.tile(ramp, (32, 1)),
                    np.tile(ramp[:, None], (1, 32))], axis=-1).astype(np.uint8)  # smooth
    save_png_atomic(tmp_path / "a.png", img)
    df = reconstruct("shipped:N.1.5", [str(tmp_path / "a.png")], tmp_path / "out",
                     progress=False)
    assert list(df["generator"]) == ["sim-N.1.5"] and df["psnr_db"].iloc[0] > 25


def test_the_recipe_in_words_names_what_differs_from_the_published_training() -> None:
    plain = {"arch": "ttur", "steps": 10000, "config": {"d_depth": 1, "n_d": 1, "augment": []}}
    assert generator_recipe(plain) == "ttur, 10,000 steps"
    deep = {"arch": "sngan", "steps": 20000,
            "config": {"d_depth": 2, "n_d": 2, "augment": ["color", "cutout"], "ema": 0.999}}
    words = generator_recipe(deep)
    assert words.startswith("sngan, D of 2 convs per resolution, 2 D steps per G step, ")
    assert "(color, cutout)" in words and "decay 0.999" in words and words.endswith("20,000 steps")
    wide = {"arch": "sngan", "steps": 40000,
            "config": {"dim": 64, "precision": "bfloat16", "d_depth": 2, "ema": 0.9999}}
    assert generator_recipe(wide).startswith("sngan, width 64, trained in bfloat16, D of 2 ")
    assert generator_recipe({"arch": "sngan", "config": {"dim": 32}}) == "sngan"
    resumed = {"arch": "sngan", "steps": 40000, "config": {"dim": 64},
               "moves": [{"step": 27000, "moved": {"precision": ["bfloat16", "float32"]}},
                         {"step": 9000, "moved": {"device": ["cuda", "cpu"]}}]}
    assert generator_recipe(resumed) == (
        "sngan, width 64, trained in bfloat16 to step 27,000, then float32, 40,000 steps")
