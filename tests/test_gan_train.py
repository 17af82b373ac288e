"""GAN training run folders, exact resume (also after SIGKILL), generation, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from skimage import data
from typer.testing import CliRunner

from ganforensics.cli.main import app
from ganforensics.data.manifest import new_manifest, write_manifest
from ganforensics.errors import InputError, RunExistsError, RunInUseError
from ganforensics.gan.checkpoint import load_checkpoint, save_checkpoint
from ganforensics.gan.config import preset
from ganforensics.gan.data import load_training_images
from ganforensics.gan.generate import (
    generate,
    image_seed,
    latents,
    load_generator,
    sample_images,
)
from ganforensics.gan.train import BatchSampler, train_gan
from ganforensics.io.atomic import save_png_atomic
from hostile import write_undecodable


def _patches(n: int = 48, size: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    imgs = [data.astronaut(), data.chelsea()]
    out = []
    for i in range(n):
        img = imgs[i % 2]
        y, x = rng.integers(0, img.shape[0] - size), rng.integers(0, img.shape[1] - size)
        out.append(img[y:y + size, x:x + size])
    return np.stack(out)


def _tiny(**kw):  # type: ignore[no-untyped-def]
    base = dict(steps=6, batch=8, dim=8, z_dim=16, checkpoint_every=2, sample_every=3)
    base.update(kw)
    return preset(kw.pop("arch", "dcgan"), **base)


def _weights(run: Path) -> dict:
    out = dict(load_file(str(run / "generator.safetensors")))
    ck = json.loads((run / "checkpoints" / "latest.json").read_text())["dir"]
    out.update({f"D.{k}": v for k, v in load_file(str(run / "checkpoints" / ck /
                                                       "D.safetensors")).items()})
    out.update({f"opt.{k}": v for k, v in load_file(str(run / "checkpoints" / ck /
                                                         "opt_G.safetensors")).items()})
    heads = run / "checkpoints" / ck / "H.safetensors"
    if heads.is_file():  # the auxiliary objectives' heads beside D
        out.update({f"H.{k}": v for k, v in load_file(str(heads)).items()})
    return out


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k].numpy(), b[k].numpy()), k


def test_run_folder_contents(tmp_path: Path) -> None:
    run = train_gan(_tiny(), _patches(), tmp_path / "run", progress=False)
    for name in ("config.yaml", "env.json", "losses.csv", "generator.safetensors",
                 "generator.json", "samples/step-0000003.png", "samples/step-0000006.png"):
        assert (run / name).exists(), name
    losses = pd.read_csv(run / "losses.csv")
    assert list(losses["step"]) == [1, 2, 3, 4, 5, 6]
    assert np.isfinite(losses[["d_loss", "g_loss"]].to_numpy()).all()
    gen, meta = load_generator(run)
    assert meta["generator"] == "dcgan-BASELINE" and meta["steps"] == 6
    imgs = sample_images(gen, 5, seed=7)
    assert imgs.shape == (5, 32, 32, 3) and imgs.dtype == np.uint8
    assert np.array_equal(imgs[3:], sample_images(gen, 2, seed=7, start=3))
    # six tiny steps leave G's outputs within one grey level of 0, so compare them in float
    with torch.no_grad():
        z7, z8 = (latents(gen.z_dim, [image_seed(s, i) for i in range(5)]) for s in (7, 8))
        assert not torch.equal(gen(z7), gen(z8))
    with pytest.raises(RunExistsError):
        train_gan(_tiny(steps=7), _patches(), run, progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["dcgan", "wgan-gp"])
def test_resume_equals_uninterrupted(tmp_path: Path, arch: str) -> None:
    kw = {"n_d": 2} if arch == "wgan-gp" else {}
    straight = train_gan(_tiny(arch=arch, **kw), _patches(), tmp_path / "a", progress=False)
    part = train_gan(_tiny(arch=arch, **kw), _patches(), tmp_path / "b", progress=False,
                     stop_at_step=3)
    assert not (part / "generator.safetensors").exists()
    resumed = train_gan(_tiny(arch=arch, **kw), _patches(), tmp_path / "b", progress=False)
    _assert_same(_weights(straight), _weights(resumed))
    la, lb = pd.read_csv(straight / "losses.csv"), pd.read_csv(resumed / "losses.csv")
    assert np.array_equal(la["g_loss"].to_numpy(), lb["g_loss"].to_numpy())
    other = train_gan(_tiny(arch=arch, seed=5, **kw), _patches(), tmp_path / "c", progress=False)
    with pytest.raises(AssertionError):
        _assert_same(_weights(straight), _weights(other))


_RUN_SCRIPT = """
import os, signal, sys, numpy as np
from ganforensics.gan import checkpoint, train
kill_at = int(sys.argv[3])
orig = checkpoint.save_checkpoint
def save_then_die(root, step, *a, **k):
    p = orig(root, step, *a, **k)
    if step == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    return p
train.save_checkpoint = save_then_die
from ganforensics.gan.config import preset
objs = tuple(o for o in sys.argv[4].split(",") if o)
cfg = preset("dcgan", steps=6, batch=8, dim=8, z_dim=16, checkpoint_every=2, sample_every=3,
             objectives=objs)
train.train_gan(cfg, np.load(sys.argv[1]), sys.argv[2], progress=False)
"""


def _run_training(tmp_path: Path, out: str, kill_at: int,
                  objectives: str = "") -> subprocess.CompletedProcess:
    """Train in a fresh process (same thread count and global torch state for every run)."""
    env = {**os.environ, "GANFORENSICS_PROGRESS": "0"}
    return subprocess.run([sys.executable, "-c", _RUN_SCRIPT, str(tmp_path / "p.npy"),
                           str(tmp_path / out), str(kill_at), objectives], env=env,
                          capture_output=True, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("objectives", ["", "infomax,ms,dag,gn"])
def test_resume_after_sigkill(tmp_path: Path, objectives: str) -> None:
    np.save(tmp_path / "p.npy", _patches())
    proc = _run_training(tmp_path, "b", kill_at=4, objectives=objectives)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-500:]
    assert not (tmp_path / "b" / "generator.safetensors").exists()
    resumed = _run_training(tmp_path, "b", kill_at=-1, objectives=objectives)
    assert resumed.returncode == 0, resumed.stderr.decode()[-500:]
    assert "from step 4" in resumed.stderr.decode()
    straight = _run_training(tmp_path, "a", kill_at=-1, objectives=objectives)
    assert straight.returncode == 0, straight.stderr.decode()[-500:]
    _assert_same(_weights(tmp_path / "a"), _weights(tmp_path / "b"))


def _channels_last_conv_and_adam(seed: int) -> tuple[torch.nn.Module, torch.optim.Adam]:
    torch.manual_seed(seed)
    net = torch.nn.Conv2d(3, 8, 3).to(memory_format=torch.channels_last)
    return net, torch.optim.Adam(net.parameters())


def test_resumed_adam_state_has_the_parameters_strides(tmp_path: Path) -> None:
    """A checkpoint stores Adam's moments contiguous; restored into a channels-last network
    they take its strides again, or the resumed run takes other kernels (and rounds apart
    from a run never stopped, as it did on one CI machine)."""
    net, opt = _channels_last_conv_and_adam(0)
    net(torch.randn(2, 3, 6, 6).contiguous(memory_format=torch.channels_last)).sum().backward()
    opt.step()
    w = net.weight
    assert opt.state[w]["exp_avg"].stride() == w.stride() != w.contiguous().stride()
    ckpt = save_checkpoint(tmp_path, 1, {"net": net}, {"opt": opt}, {})
    net2, opt2 = _channels_last_conv_and_adam(1)
    load_checkpoint(ckpt, {"net": net2}, {"opt": opt2})
    for k in ("exp_avg", "exp_avg_sq"):
        restored = opt2.state[net2.weight][k]
        assert restored.stride() == net2.weight.stride(), k
        assert torch.equal(restored, opt.state[w][k]), k


def test_batch_sampler_covers_each_epoch() -> None:
    s = BatchSampler(10, 4, seed=1)
    first = np.concatenate([s.indices(t) for t in range(5)])  # 20 draws = 2 epochs
    assert sorted(first[:10]) == list(range(10)) and sorted(first[10:]) == list(range(10))
    assert np.array_equal(BatchSampler(10, 4, seed=1).indices(3), s.indices(3))


def test_manifest_data_real_train_only_and_resize(tmp_path: Path) -> None:
    rows = []
    pats = _patches(8, size=40)
    for i, img in enumerate(pats):
        p = tmp_path / f"im{i}.png"
        save_png_atomic(p, img)
        rows.append({"path": p.name, "abspath": str(p), "label": int(i >= 6),
                     "split": "test" if i == 5 else "train"})
    write_manifest(new_manifest(rows), tmp_path / "m.csv")
    stack, info = load_training_images(str(tmp_path / "m.csv"), 32)
    assert stack.shape == (5, 32, 32, 3) and info["resized"] == 5
    with pytest.raises(InputError, match="uint8"):
        load_training_images(np.zeros((2, 32, 32, 3), np.float32), 32)


def test_generate_manifest(tmp_path: Path) -> None:
    run = train_gan(_tiny(steps=2, last_block="N.1.3"), _patches(), tmp_path / "run",
                    progress=False)
    df = generate(run, 20, tmp_path / "fakes", seed=3, batch=8, progress=False)
    man = pd.read_csv(tmp_path / "fakes" / "manifest.csv")
    assert len(man) == 20 and set(man["label"]) == {1}
    assert set(man["generator"]) == {"dcgan-N.1.3"}
    assert man["seed"].nunique() == 20
    assert list(man["split"]) == ["train"] * 14 + ["val"] * 3 + ["test"] * 3
    assert man["source"].iloc[0] == json.loads((run / "generator.json").read_text())["run_id"]
    df2 = generate(run, 20, tmp_path / "fakes2", seed=3, batch=5, progress=False)
    for p1, p2 in zip(df["abspath"], df2["abspath"], strict=True):
        assert Path(p1).read_bytes() == Path(p2).read_bytes()


_HOLD_LOCK = """
import sys
from ganforensics.io import lock
lock.acquire(sys.argv[1])
print("locked", flush=True)
sys.stdin.readline()
"""


def test_generate_refuses_a_folder_another_process_writes(tmp_path: Path) -> None:
    run = train_gan(_tiny(steps=2), _patches(16), tmp_path / "run", progress=False)
    out = tmp_path / "fakes"
    out.mkdir()
    env = {**os.environ, "GANFORENSICS_PROGRESS": "0"}
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(out)], env=env, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunInUseError, match=f"in use by PID {holder.pid}"):
            generate(run, 4, out, progress=False)
        assert list(out.iterdir()) == [out / ".run.lock"]
    finally:
        holder.communicate("", timeout=60)
    df = generate(run, 4, out, progress=False)  # the holder is gone: no --force needed
    assert len(df) == 4 and not (out / ".run.lock").exists()


def test_cli_train_generate_fid(tmp_path: Path) -> None:
    for i, img in enumerate(_patches(24)):
        save_png_atomic(tmp_path / "real" / f"{i}.png", img)
    r = CliRunner()
    args = ["gan", "train", "--data", str(tmp_path / "real"), "--out", str(tmp_path / "run"),
            "--steps", "2", "--batch", "8", "--last-block", "z.1.5", "--ttur"]
    res = r.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "lr_d: 0.0004" in (tmp_path / "run" / "config.yaml").read_text()
    assert r.invoke(app, args).exit_code == 0  # finished run: resume is a no-op
    res = r.invoke(app, args[:-1] + ["--seed", "3"])
    assert res.exit_code == 3
    res = r.invoke(app, ["gan", "generate", str(tmp_path / "run"), "--n", "30", "--out",
                         str(tmp_path / "fake"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["generator"] == "dcgan-Z.1.5"
    res = r.invoke(app, ["fid", str(tmp_path / "real"), str(tmp_path / "fake" / "manifest.csv"),
                         "--extractor", "fallback", "--kid", "--json", "--cache-dir",
                         str(tmp_path / "cache")])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["standard"] is False and "NON-STANDARD" in out["label"]
    assert out["fid"] > 0 and out["a"]["count"] == 24 and out["b"]["count"] == 30
    res = r.invoke(app, ["gan", "train", "--data", str(tmp_path / "nope"), "--out",
                         str(tmp_path / "r2")])
    assert res.exit_code == 2
    res = r.invoke(app, ["gan", "train", "--data", str(tmp_path / "real"), "--out",
                         str(tmp_path / "r3"), "--last-block", "Q.1.5"])
    assert res.exit_code == 2 and "last_block" in res.output


def test_training_images_skip_bad_files_with_one_warning(tmp_path: Path, capsys) -> None:
    for i, img in enumerate(_patches(5)):
        save_png_atomic(tmp_path / "real" / f"{i}.png", img)
    write_undecodable(tmp_path / "real")
    stack, info = load_training_images(tmp_path / "real", 32)
    assert stack.shape == (5, 32, 32, 3) and info["skipped"] == 4 and info["count"] == 5
    assert np.array_equal(stack, _patches(5))
    err = capsys.readouterr().err
    assert err.count("unreadable image(s) skipped") == 1 and "real training images: 4" in err
    (tmp_path / "only_bad").mkdir()
    write_undecodable(tmp_path / "only_bad")
    with pytest.raises(InputError, match="none of the 4 real training images decoded"):
        load_training_images(tmp_path / "only_bad", 32)
