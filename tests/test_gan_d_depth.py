"""A deeper discriminator (`d_depth`): a 3x3 conv after each strided conv, for every setup alike."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from typer.testing import CliRunner

from ganforensics.cli.main import app
from ganforensics.errors import ConfigError
from ganforensics.gan.config import preset
from ganforensics.gan.nets import Discriminator
from ganforensics.study.config import load_config
from ganforensics.study.data_stages import gan_config


def _convs(d: Discriminator, k: int) -> list[torch.nn.Conv2d]:
    return [m for m in d.net if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (k, k)]


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("norm", ["batch", "group", "spectral"])
def test_depth_two_adds_a_same_width_3x3_conv_at_every_resolution(size: int, norm: str) -> None:
    torch.manual_seed(0)
    plain, deep = Discriminator(size, norm, 8), Discriminator(size, norm, 8, depth=2)
    strided = _convs(plain, 4)[:-1]  # the last 4x4 conv makes the logit
    extra = _convs(deep, 3)
    assert not _convs(plain, 3)
    assert len(extra) == len(strided) == int(np.log2(size)) - 2
    assert [c.out_channels for c in extra] == [c.out_channels for c in strided]
    assert all(c.in_channels == c.out_channels for c in extra)
    norms = (torch.nn.BatchNorm2d, torch.nn.GroupNorm)
    n_norm = sum(isinstance(m, norms) for m in deep.net)
    assert n_norm == (0 if norm == "spectral" else 2 * len(strided) - 1)  # not after the first
    x = torch.randn(3, 3, size, size)
    assert deep(x).shape == (3,)
    deep.eval()  # no power iteration or batch statistics between the two calls
    f = deep(x, features=True)
    assert f.local.shape == (3, deep.local_channels, 8, 8)  # still the 8x8 map, now deeper
    assert f.final.shape == (3, deep.global_channels, 4, 4)
    assert torch.allclose(f.logits, deep(x), atol=1e-6)


def test_depth_one_is_the_published_net_and_bad_depths_are_refused() -> None:
    a, b = Discriminator(32, "batch", 8), Discriminator(32, "batch", 8, depth=1)
    assert {k: v.shape for k, v in a.state_dict().items()} == \
        {k: v.shape for k, v in b.state_dict().items()}
    assert len(_convs(a, 4)) == 4 and a.local_channels == 16
    with pytest.raises(ConfigError, match="d_depth"):
        Discriminator(32, "batch", 8, depth=0)
    with pytest.raises(ConfigError, match="d_depth"):
        preset("sngan", d_depth=0)


def test_config_records_d_depth_only_when_it_is_not_the_published_one() -> None:
    assert "d_depth" not in preset("sngan").to_dict()  # old runs keep their run ids
    assert preset("sngan", d_depth=2).to_dict()["d_depth"] == 2


def test_gan_train_cli_trains_and_records_a_deeper_d(tmp_path: Path) -> None:
    data = tmp_path / "photos"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(data / f"{i}.png")
    res = CliRunner().invoke(app, ["gan", "train", "--data", str(data), "--preset", "sngan",
                                   "--d-depth", "2", "--steps", "1", "--batch", "4",
                                   "--checkpoint-every", "1", "--sample-every", "1",
                                   "--out", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["d_depth"] == 2
    res = CliRunner().invoke(app, ["gan", "train", "--data", str(data), "--d-depth", "0",
                                   "--out", str(tmp_path / "bad")])
    assert res.exit_code == 2 and "d-depth" in res.output



def _study_ctx(cfg: dict[str, Any]) -> Any:
    """What gan_config reads of a study context: its seed and resolved config."""
    return SimpleNamespace(seed=2021, cfg=cfg)

def test_study_key_gan_d_depth_reaches_every_setup_and_is_checked() -> None:
    cfg = load_config({"gan": {"d_depth": 2}})
    assert cfg["gan"]["d_depth"] == 2
    assert load_config()["gan"]["d_depth"] == 1
    with pytest.raises(ConfigError, match="gan.d_depth"):
        load_config({"gan": {"d_depth": 0}})
    for setup in cfg["gan"]["setups"]:
        assert gan_config(_study_ctx(cfg), setup).d_depth == 2


def test_study_key_gan_n_d_reaches_every_setup_or_keeps_the_preset() -> None:
    ctx = _study_ctx(load_config())
    assert ctx.cfg["gan"]["n_d"] is None
    setups = ctx.cfg["gan"]["setups"]
    assert {gan_config(ctx, s).n_d for s in setups} == {1}
    wgan = {"name": "W", "last_block": "BASELINE", "preset": "wgan-gp"}
    assert gan_config(ctx, wgan).n_d == 5  # the preset's own
    ctx = _study_ctx(load_config({"gan": {"n_d": 2}}))
    assert {gan_config(ctx, s).n_d for s in setups} == {2}
    assert gan_config(ctx, wgan).n_d == 2
    for bad in (0, -1, "2", 1.5):
        with pytest.raises(ConfigError, match="gan.n_d"):
            load_config({"gan": {"n_d": bad}})
