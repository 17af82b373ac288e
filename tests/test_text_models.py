"""DomainGAN models (ganforensics.text.nets / train): shapes, the autoencoder's held-out
reconstruction, the three objectives against hand computations, frozen bodies, saving."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from ganforensics.gan.losses import d_loss, g_loss, gradient_penalty
from ganforensics.text.corpus import split_names
from ganforensics.text.encoding import Vocab
from ganforensics.text.nets import Autoencoder, Critic, Generator, TextEncoder
from ganforensics.text.train import (
    VARIANTS,
    AEConfig,
    GanConfig,
    generate,
    load_autoencoder,
    load_generator,
    save_autoencoder,
    save_generator,
    train_autoencoder,
    train_gan,
)


@pytest.fixture(scope="module")
def tiny_ae():
    """A small autoencoder trained on random names (copying, not memorising, is measured)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    v = Vocab(max_len=12)
    rng = np.random.default_rng(0)
    chars = np.array(list(v.alphabet[:36]))
    names = sorted({"".join(rng.choice(chars, size=rng.integers(2, 13))) for _ in range(800)})
    tr, te = split_names(names, 0.25, 0)
    ae, info = train_autoencoder(tr, te, v, AEConfig(epochs=30, filters=32, lr=3e-3, batch=32))
    yield ae, v, tr, te, info
    torch.set_num_threads(threads)


def test_paper_sizes_give_a_480_d_code_and_soft_one_hot_outputs():
    v = Vocab()  # 60 positions
    ae = Autoencoder(v.size, v.max_len)
    x = torch.from_numpy(v.one_hot(v.encode(["google", "a"])))
    code = ae.encoder(x)
    assert code.shape == (2, 480)
    assert ae(x).shape == (2, 60, 38)
    n_enc = sum(p.numel() for p in ae.encoder.parameters())
    n_dec = sum(p.numel() for p in ae.decoder.parameters())
    assert 95_000 < n_enc < 110_000 and 90_000 < n_dec < 100_000  # method notes: ~104 k, ~97 k
    g = Generator(ae.decoder, z_dim=100)
    out = g(torch.rand(3, 100) * 2 - 1)
    assert out.shape == (3, 60, 38) and torch.allclose(out.sum(-1), torch.ones(3, 60))
    assert Critic(ae.encoder)(out).shape == (3,)


def test_autoencoder_reaches_99_percent_held_out_characters(tiny_ae):
    ae, v, tr, te, info = tiny_ae
    m = info["metrics"]
    assert m["held_out_char_acc"] >= 0.99, m
    assert m["n_train"] == len(tr) and m["n_held_out"] == len(te) and not set(tr) & set(te)
    assert info["history"][0]["held_out_char_acc"] < 0.99  # it had to learn it


def test_objective_losses_match_hand_computations():
    r = torch.tensor([0.5, -1.0, 2.0])
    f = torch.tensor([-0.3, 0.7])

    def sig(x):
        return 1 / (1 + math.exp(-x))

    want_gan_d = (-sum(math.log(sig(x)) for x in (0.5, -1.0, 2.0)) / 3
                  - sum(math.log(1 - sig(x)) for x in (-0.3, 0.7)) / 2)
    want_gan_g = -sum(math.log(sig(x)) for x in (-0.3, 0.7)) / 2
    want_ls_d = ((0.5 - 1) ** 2 + (-1 - 1) ** 2 + (2 - 1) ** 2) / 3 + (0.09 + 0.49) / 2
    want_ls_g = ((-0.3 - 1) ** 2 + (0.7 - 1) ** 2) / 2
    want_w_d = (-0.3 + 0.7) / 2 - (0.5 - 1.0 + 2.0) / 3
    want_w_g = -(-0.3 + 0.7) / 2
    got = {v: (float(d_loss(VARIANTS[v]["loss"], r, f)), float(g_loss(VARIANTS[v]["loss"], f)))
           for v in VARIANTS}
    assert got["gan"] == pytest.approx((want_gan_d, want_gan_g), rel=1e-6)
    assert got["lsgan"] == pytest.approx((want_ls_d, want_ls_g), rel=1e-6)
    assert got["wgan-gp"] == pytest.approx((want_w_d, want_w_g), rel=1e-6)
    assert VARIANTS["wgan-gp"]["gp"] == "1-gp" and VARIANTS["wgan-gp"]["n_critic"] == 5
    assert VARIANTS["gan"]["gp"] == VARIANTS["lsgan"]["gp"] == "none"


class _LinearCritic(nn.Module):
    """D(x) = sum(w * x) over (L, V): its input gradient is w for every x."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).sum((1, 2))


def test_wgan_gp_penalty_on_the_soft_one_hot_input_matches_hand_computation():
    w = torch.tensor([[0.3, -0.4, 0.0], [0.0, 0.5, 1.2]])  # (L = 2, V = 3); |w| = sqrt(1.94)
    real = torch.tensor([[[1.0, 0, 0], [0, 1, 0]], [[0, 0, 1.0], [1, 0, 0]]])
    fake = torch.softmax(torch.randn(2, 2, 3), -1)
    gp = gradient_penalty(_LinearCritic(w), real, fake, "1-gp", torch.Generator().manual_seed(0))
    assert float(gp) == pytest.approx(10 * (math.sqrt(1.94) - 1) ** 2, rel=1e-5)
    gp0 = gradient_penalty(_LinearCritic(w), real, fake, "0-gp", torch.Generator().manual_seed(0))
    assert float(gp0) == pytest.approx(10 * 1.94, rel=1e-5)
    # one interpolation weight per sample, drawn as for images (same generator use)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    seen = {}

    class Spy(nn.Module):
        def forward(self, x):
            seen["x"] = x.detach()
            return x.sum((1, 2))

    gradient_penalty(Spy(), real, fake, "1-gp", g1)
    a = torch.rand(2, 1, 1, 1, generator=g2).view(2, 1, 1)
    assert torch.allclose(seen["x"], a * real + (1 - a) * fake)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_each_variant_trains_only_its_dense_layers(tiny_ae, variant):
    ae, v, tr, _, _ = tiny_ae
    before = {k: t.clone() for k, t in ae.state_dict().items()}
    g, d, info = train_gan(ae, tr, v, GanConfig(variant=variant, steps=3, batch=8, lr=1e-2))
    assert info["config"]["n_critic"] == (5 if variant == "wgan-gp" else 1)
    assert info["trainable_params"] == {"generator": 100 * 96 + 96, "critic": 96 + 1}
    for k, t in g.decoder.state_dict().items():
        assert torch.equal(t, before[f"decoder.{k}"])  # frozen copy, unchanged
    for k, t in ae.state_dict().items():
        assert torch.equal(t, before[k])  # the autoencoder itself untouched
    assert all(math.isfinite(h["d_loss"]) and math.isfinite(h["g_loss"])
               for h in info["history"])
    names = generate(g, 20, v, seed=1)
    assert len(names) == 20 and names == generate(g, 20, v, seed=1)
    assert all(set(n) <= set(v.alphabet) and len(n) <= v.max_len for n in names)


def test_bodies_train_in_the_ablation(tiny_ae):
    ae, v, tr, _, _ = tiny_ae
    before = ae.decoder.out.weight.clone()
    g, d, info = train_gan(ae, tr, v, GanConfig(variant="gan", steps=2, batch=8, lr=1e-2,
                                                train_bodies=True))
    assert info["trainable_params"]["generator"] > 100 * 96 + 96
    assert not torch.equal(g.decoder.out.weight, before)  # G's copy of the decoder moved
    assert torch.equal(ae.decoder.out.weight, before)  # the autoencoder itself did not


def test_saved_models_reload_exactly(tiny_ae, tmp_path):
    ae, v, tr, te, info = tiny_ae
    save_autoencoder(ae, tmp_path / "ae", v, {"metrics": info["metrics"]})
    ae2, v2, meta = load_autoencoder(tmp_path / "ae")
    assert v2 == v and meta["vocab"]["alphabet"] == v.alphabet
    x = torch.from_numpy(v.one_hot(v.encode(te[:5])))
    assert torch.equal(ae.eval()(x), ae2.eval()(x))
    g, _, _ = train_gan(ae, tr, v, GanConfig(variant="lsgan", steps=2, batch=8))
    save_generator(g, tmp_path / "g", v, {"variant": "lsgan"})
    g2, _, meta = load_generator(tmp_path / "g")
    assert meta["variant"] == "lsgan" and generate(g2, 30, v, 4) == generate(g, 30, v, 4)
    assert isinstance(ae2.encoder, TextEncoder)
