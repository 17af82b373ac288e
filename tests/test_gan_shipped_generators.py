"""Shipped GAN generators (`gan.shipped`, kind `gen`): packaging in float16, loading, and the
study's GAN stage using one only where it fits (`gan.source`, `--train-gans`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from typer.testing import CliRunner

from ganforensics.cli.main import app
from ganforensics.data.manifest import read_manifest, split_of
from ganforensics.errors import InputError
from ganforensics.gan.config import preset
from ganforensics.gan.data import load_training_images
from ganforensics.gan.generate import load_generator, sample_images
from ganforensics.gan.shipped import (
    find_shipped,
    install_shipped,
    list_shipped,
    pixel_sha256,
    write_shipped,
)
from ganforensics.gan.train import train_gan
from ganforensics.study import data_stages
from ganforensics.study.config import load_config
from ganforensics.study.data_stages import REAL_MANIFEST
from ganforensics.study.pipeline import run_study

TINY_GAN = dict(steps=4, batch=8, dim=8, z_dim=16, checkpoint_every=2, sample_every=2)


def _images(n: int = 16) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def test_a_generator_ships_in_float16_and_samples_as_the_run_did(tmp_path: Path) -> None:
    run = train_gan(preset("ttur", **TINY_GAN), _images(), tmp_path / "run", progress=False)
    hashes = [pixel_sha256(im) for im in _images()]
    dest = write_shipped(run, tmp_path / "pkg", {"steps": 4, "data": {"groups": ["a"]}},
                         hashes, half=True)
    assert dest.name == "gen-BASELINE-32"
    assert find_shipped("BASELINE", 32, tmp_path / "pkg", kind="gen") == dest
    assert find_shipped("BASELINE", 32, tmp_path / "pkg") is None  # no simulator ships there
    assert [p["folder"] for p in list_shipped(tmp_path / "pkg", "gen")] == ["gen-BASELINE-32"]
    weights = load_file(str(dest / "generator.safetensors"))
    assert {v.dtype for v in weights.values() if v.is_floating_point()} == {torch.float16}
    target = tmp_path / "study" / "gans" / "BASELINE"
    install_shipped(dest, target)
    assert json.loads((target / "shipped.json").read_text())["steps"] == 4
    gen, _ = load_generator(target)
    ref, _ = load_generator(run)
    assert all(p.dtype == torch.float32 for p in gen.parameters())
    a, b = sample_images(gen, 8, seed=3), sample_images(ref, 8, seed=3)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 2  # float16 rounding only


def test_shipped_generator_names_fail_clearly_when_none_ships(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no shipped generator for that last block at 128 px"):
        load_generator("shipped:N.1.5", size=128)  # only 32-px models ever ship
    res = CliRunner().invoke(app, ["gan", "generate", "shipped:Q.1.1", "--n", "2", "--out",
                                   str(tmp_path / "o")])
    assert res.exit_code != 0 and "last_block: unknown setup" in res.output


TINY_STUDY = {
    "fakes": {"arms": ["sampled"], "n_train": 12, "n_val": 6, "n_test": 8},
    "data": {"max_patches": 48},
    "gan": {"setups": ["BASELINE", {"name": "N", "last_block": "N.1.5", "steps": 2},
                       {"name": "P", "last_block": "N.1.5", "preset": "dcgan"}],
            "steps": 2, "batch_size": 8, "checkpoint_every": 2},
    "bypass": {"n_train": 10},
}


@pytest.mark.slow
def test_the_study_uses_a_shipped_generator_only_where_it_fits(tmp_path: Path,
                                                                monkeypatch) -> None:
    out = tmp_path / "study"
    cfg = load_config(TINY_STUDY)
    run_study(cfg, out, stop_after="patches")
    real = read_manifest(out / REAL_MANIFEST)
    train = split_of(real, "train")
    stack, _ = load_training_images(train, 32)
    # a generator "shipped" for BASELINE and N.1.5, trained on exactly the study's train
    # patches; BASELINE's with a recipe of its own (not the study's `gan.preset` ttur)
    pkg = tmp_path / "pkg"
    groups = sorted(train["group"].astype(str).unique())
    recipes = {"BASELINE": preset("sngan", last_block="BASELINE", d_depth=2, ema=0.9,
                                  augment=("translation",), **TINY_GAN),
               "N.1.5": preset("ttur", last_block="N.1.5", **TINY_GAN)}
    for block, recipe in recipes.items():
        run = train_gan(recipe, stack, tmp_path / f"ship-{block}", progress=False)
        write_shipped(run, pkg, {"steps": 4, "ratio": 2.0, "data": {"groups": groups}},
                      [pixel_sha256(im) for im in stack], half=True)
    real_find = data_stages.find_shipped
    monkeypatch.setattr(data_stages, "find_shipped",
                        lambda block, size, kind="sim": real_find(block, size, pkg, kind))
    _, results = run_study(cfg, out, stop_after="fakes-P")
    status = {r.name: r.status for r in results}
    assert status["gan-BASELINE"] == "done" and status["fakes-N"] == "done"
    base, n, p = (out / "gans" / name for name in ("BASELINE", "N", "P"))
    assert (base / "shipped.json").is_file() and not (base / "checkpoints").exists()
    gen, _ = load_generator(base)
    shipped_w = load_file(str(pkg / "gen-BASELINE-32" / "generator.safetensors"))
    assert all(torch.equal(gen.state_dict()[k], v.float()) for k, v in shipped_w.items()
               if v.is_floating_point())
    # the shipped generator's own recipe is what the stage records (and the report names)
    info = {r.name: r.info for r in results}["gan-BASELINE"]
    assert info["recipe"] == ("sngan, width 8, D of 2 convs per resolution, D's inputs augmented "
                              "(translation), moving average of G (decay 0.9), 4 steps")
    # a setup with its own steps or its own preset trains its GAN (it asks for a recipe the
    # shipped one was not trained with)
    assert not (n / "shipped.json").exists() and (n / "generator.safetensors").is_file()
    assert not (p / "shipped.json").exists() and (p / "generator.safetensors").is_file()
    assert json.loads((p / "generator.json").read_text())["arch"] == "dcgan"
    # --train-gans (gan.source: train) trains every GAN
    again = tmp_path / "study-train"
    cfg_t = load_config({**TINY_STUDY, "gan": {**TINY_STUDY["gan"], "source": "train"}})
    run_study(cfg_t, again, stop_after="gan-BASELINE")
    assert not (again / "gans" / "BASELINE" / "shipped.json").exists()
    assert (again / "gans" / "BASELINE" / "generator.safetensors").is_file()


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_the_study_cnn_detects_shipped_baseline_samples_on_unseen_photos(tmp_path) -> None:
    """The default study's central result at small scale: its CNN (`small_npr`, wang2020),
    trained on train-photo patches against shipped BASELINE samples, ranks new samples above
    patches of photos it never saw. The raw-pixel `small` CNN did not (docs/study.md, "The CNN
    changed with the fakes")."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    from ganforensics.data.photos import make_patches
    from ganforensics.detectors.cnn import train_cnn_detector
    from ganforensics.detectors.cnn.recipes import get_recipe
    from ganforensics.study.config import load_config

    cfg = load_config({})["detectors"]["cnn"]
    df = make_patches(tmp_path / "patches", seed=2021)
    rng = np.random.default_rng(0)

    def reals(split: str, n: int) -> list[np.ndarray]:
        paths = df[df["split"] == split]["abspath"].tolist()
        pick = rng.choice(len(paths), size=min(n, len(paths)), replace=False)
        return [np.asarray(Image.open(paths[i]).convert("RGB")) for i in pick]

    gen, _ = load_generator("shipped:BASELINE")
    fakes = list(sample_images(gen, 1100, seed=11))
    train = (reals("train", 700) + fakes[:700], [0] * 700 + [1] * 700)
    val_real = reals("val", 150)
    val = (val_real + fakes[700:850], [0] * len(val_real) + [1] * 150)
    recipe = get_recipe(cfg["recipe"], monitor=cfg["monitor"], lr=cfg["lr"])
    det = train_cnn_detector(cfg["arch"], recipe, train, val, seed=3, epochs=25,
                             aug_prob=cfg["aug_prob"], progress=False)
    test_real = reals("test", 250)
    y = np.array([0] * len(test_real) + [1] * 250)
    p = det.probs(test_real + fakes[850:])
    assert cfg["arch"] == "small_npr"
    assert roc_auc_score(y, p) >= 0.9 and average_precision_score(y, p) >= 0.9
