"""The auxiliary GAN objectives (gan.objectives): unit anchors, weight 0 = plain loss, gradient
routing, shapes, resume, a falling objective term, the CLI."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from ganforensics.cli.main import app
from ganforensics.errors import ConfigError
from ganforensics.gan import objectives as ob
from ganforensics.gan.config import preset
from ganforensics.gan.nets import Discriminator, Generator
from ganforensics.gan.train import train_gan


def _images(n: int = 32, size: int = 32, seed: int = 0) -> np.ndarray:
    """Oriented images: a bright top edge and a left-to-right ramp, plus noise (so rotations
    can be told apart)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 120, size)[None, :, None]
    x = np.broadcast_to(ramp, (size, size, 3)).copy()
    x[: size // 4] += 100
    out = x[None] + rng.normal(0, 20, (n, size, size, 3))
    return np.clip(out, 0, 255).astype(np.uint8)


TINY = dict(batch=8, dim=8, z_dim=16)  # small nets: each step takes milliseconds


def _train(tmp_path, name, objectives=(), params=None, steps=3, size=32, **kw):
    cfg = preset("ttur", steps=steps, size=size, checkpoint_every=2, sample_every=steps,
                 objectives=tuple(objectives), objective_params=params or {}, **TINY, **kw)
    return train_gan(cfg, _images(size=size), tmp_path / name, progress=False)


def _weights(run) -> dict[str, torch.Tensor]:
    return load_file(str(run / "generator.safetensors"))


# ---------------------------------------------------------------- anchors of the formulas

def test_infonce_zero_features_anchor():
    n, length = 5, 4
    loss = ob.infonce(torch.zeros(n, 3, length), torch.zeros(n, 3))
    expected = math.log(1 + (n - 1) * length + length * math.exp(-10))
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert loss.item() == pytest.approx(2.833224, abs=1e-6)


def test_infonce_falls_when_positives_align():
    g = torch.Generator().manual_seed(0)
    local = torch.randn(6, 8, 4, generator=g)
    aligned = ob.infonce(local, 3 * local.mean(dim=2))
    shuffled = ob.infonce(local, 3 * local.mean(dim=2).roll(1, dims=0))
    assert aligned < shuffled


def test_uniform_classifier_gives_log4_and_log5():
    x = torch.randn(8, 3, 32, 32)
    _, labels = ob.rotation_batch(x)
    assert torch.nn.functional.cross_entropy(torch.zeros(8, 4), labels).item() == \
        pytest.approx(math.log(4))
    assert ob.ms_d_loss(torch.zeros(8, 5), labels, torch.zeros(8, 5)).item() == \
        pytest.approx(math.log(5))


def test_rotations_are_exact_and_paired_with_labels():
    x = torch.randn(8, 3, 16, 16)
    rot, labels = ob.rotation_batch(x)
    assert labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    for i in range(8):
        q = int(labels[i])
        assert torch.equal(rot[i], torch.rot90(x[i], q, dims=(1, 2)))
    y = x
    for _ in range(4):
        y = ob.POLICIES["rotation"][1](y)
    assert torch.equal(y, x)  # four quarter turns: the identity, bit for bit


def test_neighbour_embedding_properties():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(10, 12, generator=g)
    fake = torch.randn(10, 3, 2, 2, generator=g)
    kl = ob.neighbour_embedding(z, fake)
    assert kl.item() > 0
    # fakes that keep the latents' geometry (a scaled copy): zero
    assert ob.neighbour_embedding(z, (5 * z).view(10, 3, 2, 2)).item() == \
        pytest.approx(0.0, abs=1e-6)
    perm = torch.randperm(10, generator=g)
    assert ob.neighbour_embedding(z[perm], fake[perm]).item() == pytest.approx(kl.item(),
                                                                              rel=1e-5)


# ---------------------------------------------------------------- configuration

@pytest.mark.parametrize("objs, params, needle", [
    (("nope",), {}, "nope"),
    (("ss", "ms"), {}, "cannot be combined"),
    (("infomax",), {"infomax.gamma": 1}, "infomax.gamma"),
    (("infomax",), {"ss.d": 1}, "not enabled"),
    (("dag",), {"dag.policies": "rotation,zoom"}, "zoom"),
    (("ss",), {"ss.d": -1}, "ss.d"),
])
def test_bad_objective_config_names_the_field(objs, params, needle):
    with pytest.raises(ConfigError, match=needle):
        preset("ttur", objectives=objs, objective_params=params)


def test_defaults_filled_and_recorded():
    cfg = preset("ttur", objectives=("dag", "infomax"),
                 objective_params={"dag.policies": "cropping, rotation"})
    assert cfg.objective_params["infomax"] == ob.DEFAULTS["infomax"]
    assert cfg.objective_params["dag"] == {"weight": 0.2, "policies": "cropping,rotation"}
    assert cfg.to_dict()["objectives"] == ["dag", "infomax"]
    assert "objectives" not in preset("ttur").to_dict()  # plain runs keep their record


# ---------------------------------------------------------------- heads and gradients

@pytest.mark.parametrize("size", [32, 64])
def test_features_and_heads_shapes(size):
    disc = Discriminator(size, "batch", 16)
    f = disc(torch.randn(4, 3, size, size), features=True)
    assert f.local.shape[2:] == (8, 8) and f.final.shape[2:] == (4, 4)
    params = ob.resolve(["infomax", "ms", "dag"], {"dag.policies": "rotation,cropping"})
    objs, heads = ob.build(params, "gan", disc)
    assert len(heads.dag) == 4 + 5
    assert heads.classifier.out_features == 5
    x, fake = torch.randn(8, 3, size, size), torch.randn(8, 3, size, size)
    fr, ff = disc(x, features=True), disc(fake, features=True)
    terms = objs.d_terms(disc, heads, x, fake, fr, ff)
    assert set(terms) == {"infomax", "ms", "dag"}
    assert all(t.ndim == 0 and torch.isfinite(t) for t in terms.values())


def test_features_logits_equal_plain_forward():
    disc = Discriminator(32, "batch", 16).eval()
    x = torch.randn(4, 3, 32, 32)
    assert torch.equal(disc(x, features=True).logits, disc(x))


def test_each_dag_head_sees_only_its_transform():
    disc = Discriminator(32, "batch", 16)
    objs, heads = ob.build(ob.resolve(["dag"]), "gan", disc)
    logits = objs._dag_logits(disc, heads, torch.randn(4, 3, 32, 32))
    logits[2].sum().backward()
    for k, head in enumerate(heads.dag):
        has_grad = head.weight.grad is not None and head.weight.grad.abs().sum() > 0
        assert has_grad == (k == 2)


def test_g_step_does_not_touch_d_or_heads_and_d_terms_do_not_reach_g():
    torch.manual_seed(0)
    gen, disc = Generator(32, "BASELINE", 16, 8), Discriminator(32, "batch", 8)
    objs, heads = ob.build(ob.resolve(["infomax", "ss", "dag", "gn"]), "gan", disc)
    z = torch.randn(8, 16)
    real = torch.randn(8, 3, 32, 32)
    fake = gen(z)
    # D side: fakes detached, nothing reaches G
    fr, ff = disc(real, features=True), disc(fake.detach(), features=True)
    sum(objs.d_terms(disc, heads, real, fake.detach(), fr, ff).values()).backward()
    assert all(p.grad is None for p in gen.parameters())
    # G side: an optimiser step of G leaves D and the heads as they were
    before = {k: v.clone() for k, v in {**disc.state_dict(), **heads.state_dict()}.items()}
    opt_g = torch.optim.Adam(gen.parameters(), lr=1e-2)
    opt_g.zero_grad()
    fg = disc(fake, features=True)
    sum(objs.g_terms(disc, heads, z, fake, fg, real).values()).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in gen.parameters())
    g_before = [p.clone() for p in gen.parameters()]
    opt_g.step()
    assert any(not torch.equal(a, b) for a, b in zip(g_before, gen.parameters(), strict=True))
    after = {**disc.state_dict(), **heads.state_dict()}
    for k, v in before.items():
        if "running" in k or "num_batches" in k or k.endswith("_u") or k.endswith("_v"):
            continue  # BatchNorm statistics and spectral-norm power iterations move in forward
        assert torch.equal(v, after[k]), k


# ---------------------------------------------------------------- training runs

ZERO = {"infomax": {"infomax.alpha": 0, "infomax.beta": 0}, "ss": {"ss.d": 0, "ss.g": 0},
        "ms": {"ms.d": 0, "ms.g": 0}, "dag": {"dag.weight": 0}, "gn": {"gn.ne": 0, "gn.gm": 0}}


def test_weight_zero_reproduces_the_plain_run(tmp_path):
    plain = _weights(_train(tmp_path, "plain"))
    for name, params in ZERO.items():
        w = _weights(_train(tmp_path, name, [name], params))
        assert all(torch.equal(plain[k], w[k]) for k in plain), name


@pytest.mark.parametrize("objs", [["infomax", "ms", "dag", "gn"], ["ss"]])
def test_resume_after_stop_equals_uninterrupted(tmp_path, objs):
    full = _train(tmp_path, "full", objs, steps=4)
    cfg = preset("ttur", steps=4, checkpoint_every=2, sample_every=4,
                 objectives=tuple(objs), **TINY)
    part = train_gan(cfg, _images(), tmp_path / "part", progress=False, stop_at_step=2)
    assert not (part / "generator.safetensors").exists()
    train_gan(cfg, _images(), tmp_path / "part", progress=False)
    a, b = _weights(full), _weights(part)
    assert all(torch.equal(a[k], b[k]) for k in a)
    la, lb = pd.read_csv(full / "losses.csv"), pd.read_csv(part / "losses.csv")
    cols = [c for c in la.columns if c != "seconds"]
    assert {f"{o}_{side}" for o in objs for side in "dg"} - {"gn_d"} <= set(cols)
    pd.testing.assert_frame_equal(la[cols], lb[cols])


def test_objectives_train_at_64px(tmp_path):
    run = _train(tmp_path, "r64", ["infomax", "ss", "dag"], steps=1, size=64)
    assert _weights(run)["last.weight"].shape[0] > 0


@pytest.mark.slow
def test_rotation_term_falls(tmp_path):
    run = _train(tmp_path, "ss", ["ss"], steps=30, seed=3)
    ss = pd.read_csv(run / "losses.csv")["ss_d"].to_numpy()
    assert ss[-10:].mean() < 0.5 * ss[:5].mean()


def test_cli_trains_with_objectives_and_rejects_bad_ones(tmp_path):
    data = tmp_path / "imgs"
    data.mkdir()
    from PIL import Image
    for i, img in enumerate(_images(16)):
        Image.fromarray(img).save(data / f"{i}.png")
    runner = CliRunner()
    res = runner.invoke(app, ["gan", "train", "--data", str(data), "--steps", "2", "--batch",
                              "8", "--objective", "infomax", "--objective", "dag",
                              "--objective-param", "dag.policies=fliprot",
                              "--out", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    cols = pd.read_csv(tmp_path / "run" / "losses.csv").columns
    assert {"infomax_d", "infomax_g", "dag_d", "dag_g"} <= set(cols)
    bad = runner.invoke(app, ["gan", "train", "--data", str(data), "--steps", "2",
                              "--objective", "ss", "--objective-param", "ss.alpha=1",
                              "--out", str(tmp_path / "bad")])
    assert bad.exit_code != 0
    assert "ss.alpha" in bad.output
    assert "Traceback" not in bad.output


def test_study_setups_carry_objectives():
    from ganforensics.study.config import load_config
    cfg = load_config({}, preset="objectives")
    setups = {s["name"]: s for s in cfg["gan"]["setups"]}
    assert setups["N.1.5-dag"]["objectives"] == ["dag"]
    assert setups["N.1.5-dag"]["objective_params"]["dag"]["weight"] == 0.2
    assert setups["BASELINE-eqlr"]["preset"] == "dcgan"
    assert "objectives" not in setups["BASELINE"]
    # the plain setups are the variants' baselines: trained like them, never shipped
    assert cfg["gan"]["source"] == "train"
    with pytest.raises(ConfigError, match=r"gan.setups\[0\].*zoom"):
        load_config({"gan": {"setups": [{"name": "x", "last_block": "BASELINE",
                                          "objectives": ["dag"],
                                          "objective_params": {"dag.policies": "zoom"}}]}})
