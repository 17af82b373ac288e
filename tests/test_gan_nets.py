"""The 13 published last-block setups build at 32/64/128 with the right output sizes."""

from __future__ import annotations

import pytest
import torch

from ganforensics.errors import ConfigError
from ganforensics.gan.config import preset
from ganforensics.gan.losses import d_loss, g_loss, gradient_penalty
from ganforensics.gan.nets import (
    LAST_BLOCKS,
    Discriminator,
    Generator,
    ZeroInsert,
    make_last_block,
    parse_last_block,
)


def test_thirteen_setups() -> None:
    # DESIGN B3: BASELINE, {N,Z,B}.1.{3,5,7}, {N,Z,B}.3.5, named as published
    published = {"BASELINE"}
    published |= {f"{x}.1.{k}" for x in "NZB" for k in (3, 5, 7)}
    published |= {f"{x}.3.5" for x in "NZB"}
    assert len(LAST_BLOCKS) == 13 and set(LAST_BLOCKS) == published
    assert LAST_BLOCKS[0] == "BASELINE"
    assert parse_last_block("BASELINE") is None
    base = make_last_block("BASELINE", 16)
    assert isinstance(base, torch.nn.ConvTranspose2d)
    assert (base.kernel_size, base.stride, base.padding) == ((4, 4), (2, 2), (1, 1))
    upsamplers = {"N": ("nearest", None), "B": ("bilinear", True)}
    for name in LAST_BLOCKS[1:]:  # X.n.k: up-sampler X, then n convs of kernel k, nothing else
        up, n, k = name.split(".")
        assert parse_last_block(name) == (up, int(n), int(k))
        blk = make_last_block(name, 16)
        if up == "Z":
            assert isinstance(blk[0], ZeroInsert)
        else:
            assert (blk[0].mode, blk[0].align_corners) == upsamplers[up], name
        convs = list(blk)[1:]
        assert all(isinstance(c, torch.nn.Conv2d) for c in convs), name
        assert [c.kernel_size for c in convs] == [(int(k), int(k))] * int(n), name
        assert [c.out_channels for c in convs] == [16] * (int(n) - 1) + [3], name


@pytest.mark.parametrize("size", [32, 64, pytest.param(128, marks=pytest.mark.slow)])
def test_all_last_blocks_build(size: int) -> None:
    z = torch.randn(2, 128)
    for name in LAST_BLOCKS:
        g = Generator(size, name)
        with torch.no_grad():
            y = g(z)
        assert y.shape == (2, 3, size, size), name
        assert y.abs().max() <= 1.0
    for norm in ("batch", "group"):
        assert Discriminator(size, norm)(torch.randn(2, 3, size, size)).shape == (2,)


def test_generator_widths_at_32() -> None:
    g = Generator(32, "BASELINE")
    convs = [m for m in g.body if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [c.out_channels for c in convs] == [128, 64, 32]
    assert isinstance(g.last, torch.nn.ConvTranspose2d) and g.last.in_channels == 32


def test_last_block_structure() -> None:
    blk = make_last_block("B.3.5", 32)
    convs = [m for m in blk if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (32, 32, (5, 5)), (32, 32, (5, 5)), (32, 3, (5, 5))]
    assert len(blk) == 4  # upsample + 3 convs, nothing between them
    assert blk[0].mode == "bilinear" and blk[0].align_corners is True


def test_zero_insertion() -> None:
    x = torch.arange(8.0).view(1, 2, 2, 2)
    y = ZeroInsert(2)(x)
    assert y.shape == (1, 2, 4, 4)
    assert torch.equal(y[:, :, ::2, ::2], x)
    mask = torch.ones(4, 4, dtype=torch.bool)
    mask[::2, ::2] = False
    assert torch.all(y[:, :, mask] == 0)
    assert not list(ZeroInsert(2).parameters())


def test_bad_names() -> None:
    with pytest.raises(ConfigError, match="last_block"):
        Generator(32, "N.2.5")
    with pytest.raises(ConfigError, match="size"):
        Generator(48, "BASELINE")
    with pytest.raises(ConfigError, match="preset"):
        preset("biggan")


def test_presets() -> None:
    w = preset("wgan-gp")
    assert (w.loss, w.gp, w.n_d, w.lr_d, w.lr_g, w.d_norm) == ("wgan", "0-gp", 5, 2e-4, 2e-4,
                                                                "group")
    d = preset("dcgan")
    assert (d.lr_g, d.lr_d, d.betas, d.batch, d.seed, d.d_norm) == (1e-4, 1e-4, (0.5, 0.999),
                                                                    64, 2021, "batch")
    t = preset("ttur")
    assert t.lr_d > t.lr_g


def test_losses_and_penalties() -> None:
    real, fake = torch.tensor([10.0, 10.0]), torch.tensor([-10.0, -10.0])
    assert d_loss("gan", real, fake) < 1e-3 < g_loss("gan", fake)
    assert d_loss("lsgan", torch.ones(2), torch.zeros(2)) == 0
    assert d_loss("wgan", real, fake) == -20
    lin = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 1, bias=False))
    with torch.no_grad():
        lin[1].weight.fill_(0.5)  # gradient norm = 0.5 * sqrt(12) everywhere
    x, y = torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2)
    gen = torch.Generator().manual_seed(0)
    norm2 = 0.25 * 12
    assert gradient_penalty(lin, x, y, "0-gp", gen).item() == pytest.approx(10 * norm2)
    assert gradient_penalty(lin, x, y, "1-gp", gen).item() == pytest.approx(
        10 * (norm2**0.5 - 1) ** 2)
