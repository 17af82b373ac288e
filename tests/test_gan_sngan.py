"""The hinge loss, spectral normalisation in D and the `sngan` preset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from ganforensics.errors import ConfigError
from ganforensics.gan.config import preset
from ganforensics.gan.losses import d_loss, g_loss
from ganforensics.gan.nets import Discriminator
from ganforensics.gan.train import train_gan


def test_hinge_loss_by_hand() -> None:
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-3.0, 0.0, 0.5])
    # D: mean(relu(1 - real)) + mean(relu(1 + fake)) = (0 + .5 + 2)/3 + (0 + 1 + 1.5)/3
    assert float(d_loss("hinge", real, fake)) == pytest.approx(2.5 / 3 + 2.5 / 3)
    assert float(g_loss("hinge", fake)) == pytest.approx(2.5 / 3)  # -mean(fake)


def test_spectral_norm_bounds_every_conv_and_drops_batch_norm() -> None:
    torch.manual_seed(0)
    d = Discriminator(32, "spectral", 8).train()
    assert not any(isinstance(m, (torch.nn.BatchNorm2d, torch.nn.GroupNorm)) for m in d.modules())
    x = torch.randn(4, 3, 32, 32)
    for _ in range(30):  # power iterations run in training-mode forwards
        d(x)
    convs = [m for m in d.net if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 4
    for conv in convs:
        sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
        assert float(sigma) == pytest.approx(1.0, abs=0.05)
    with pytest.raises(ConfigError, match="norm"):
        Discriminator(32, "layer", 8)


def test_sngan_preset_and_config_record() -> None:
    c = preset("sngan")
    assert (c.loss, c.d_norm, c.lr_g, c.lr_d) == ("hinge", "spectral", 2e-4, 2e-4)
    assert c.to_dict()["spectral_norm"] is True
    assert "spectral_norm" not in preset("ttur").to_dict()  # old run ids unchanged
    assert preset("ttur", spectral_norm=True).d_norm == "spectral"


@pytest.mark.parametrize("betas", [(1.0, 0.9), (0.5, -0.1)])
def test_betas_outside_adams_range_name_the_field(betas: tuple[float, float]) -> None:
    with pytest.raises(ConfigError, match=r"betas: .*\[0, 1\)"):
        preset("sngan", betas=betas)
    assert preset("sngan", betas=(0.0, 0.9)).betas == (0.0, 0.9)


@pytest.mark.slow
def test_sngan_run_resumes_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (24, 32, 32, 3), dtype=np.uint8)
    kw = dict(steps=4, batch=8, dim=8, z_dim=16, checkpoint_every=2, sample_every=2)
    a = train_gan(preset("sngan", **kw), imgs, tmp_path / "a", progress=False)
    train_gan(preset("sngan", **kw), imgs, tmp_path / "b", progress=False, stop_at_step=2)
    b = train_gan(preset("sngan", **kw), imgs, tmp_path / "b", progress=False)
    ck = json.loads((a / "checkpoints" / "latest.json").read_text())["dir"]
    da = load_file(str(a / "checkpoints" / ck / "D.safetensors"))
    db = load_file(str(b / "checkpoints" / ck / "D.safetensors"))
    assert any(k.endswith("_u") for k in da)  # the power iteration's state is checkpointed
    assert all(torch.equal(da[k], db[k]) for k in da)
    ga, gb = (load_file(str(r / "generator.safetensors")) for r in (a, b))
    assert all(torch.equal(ga[k], gb[k]) for k in ga)
