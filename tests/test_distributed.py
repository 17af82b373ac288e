"""Data-parallel training (ganforensics.distributed): two gloo processes started the way torchrun
starts them (RANK / WORLD_SIZE / MASTER_* in the environment) against one process on the same
global batch, and resume after a SIGKILL in a two-process run.

Exact equivalence needs layers without batch statistics: on CPU each process's BatchNorm
normalises its own rows (torch refuses SyncBatchNorm on CPU). The equivalence runs therefore
replace every BatchNorm2d by Identity, in the one-process and the two-process run alike; the
GAN uses the wgan-gp preset (GroupNorm critic, gradient penalty, two critic steps).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from skimage import data as skdata

from ganforensics import distributed
from ganforensics.distributed import Dist
from ganforensics.errors import ConfigError
from ganforensics.io.atomic import save_png_atomic

GAN_ARGS = "--steps 4 --batch 8 --checkpoint-every 1 --sample-every 4"
_WORKER = f"GAN_ARGS = {GAN_ARGS!r}\n" + r"""
import sys, numpy as np, torch
from torch import nn
torch.set_num_threads(1)
from ganforensics.gan import checkpoint, train as gan_train
from ganforensics.gan.config import preset
from ganforensics.detectors.cnn import train as cnn_train

what, out = sys.argv[1], sys.argv[2]

def no_batch_stats(m):
    for name, child in list(m.named_children()):
        if isinstance(child, nn.BatchNorm2d):
            setattr(m, name, nn.Identity())
        else:
            no_batch_stats(child)
    return m

if what == "equivalence":
    inputs = np.load(sys.argv[3])
    make_g, build = gan_train.Generator, cnn_train.build_model
    gan_train.Generator = lambda *a, **k: no_batch_stats(make_g(*a, **k))
    cnn_train.build_model = lambda *a, **k: no_batch_stats(build(*a, **k))
    cfg = preset("wgan-gp", n_d=2, steps=2, batch=8, dim=8, z_dim=16, checkpoint_every=1,
                 sample_every=2)
    gan_train.train_gan(cfg, inputs["gan"], out + "/gan", progress=False)
    cnn_train.train_cnn_detector(
        "small", "wang2020", (list(inputs["x"]), inputs["y"]), (list(inputs["vx"]), inputs["vy"]),
        out + "/cnn", epochs=2, batch_size=8, crop_size=24, progress=False)
else:  # "cli": `gan train` as typed; rank 0 dies right after the checkpoint of step `kill_at`
    kill_at = int(sys.argv[4])
    save = checkpoint.save_checkpoint
    def save_then_die(root, step, *a, **k):
        path = save(root, step, *a, **k)
        if step == kill_at:
            import os, signal
            os.kill(os.getpid(), signal.SIGKILL)
        return path
    gan_train.save_checkpoint = save_then_die
    from ganforensics.cli.main import app
    app(["--threads", "1", "gan", "train", *GAN_ARGS.split(), "--data", sys.argv[3],
         "--out", out])
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _launch(n: int, args: list[str]) -> list[subprocess.Popen]:
    """`n` worker processes with the environment torchrun gives its workers (none for n=1)."""
    base = {**os.environ, "GANFORENSICS_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        base.pop(k, None)
    port = str(_free_port())
    procs = []
    for rank in range(n):
        env = dict(base) if n == 1 else {
            **base, "WORLD_SIZE": str(n), "RANK": str(rank), "LOCAL_RANK": str(rank),
            "LOCAL_WORLD_SIZE": str(n), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port}
        procs.append(subprocess.Popen([sys.executable, "-c", _WORKER, *args], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    return procs


def _finish(procs: list[subprocess.Popen], timeout: float = 150) -> list[tuple[int, str]]:
    out = []
    for p in procs:
        try:
            _, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
        out.append((p.returncode, err.decode()[-1500:]))
    return out


def _inputs(path: Path) -> Path:
    rng = np.random.default_rng(0)
    photos = [skdata.astronaut(), skdata.chelsea(), skdata.coffee()]

    def patches(n: int, size: int) -> np.ndarray:
        out = []
        for i in range(n):
            img = photos[i % 3]
            y, x = rng.integers(0, img.shape[0] - size), rng.integers(0, img.shape[1] - size)
            out.append(img[y:y + size, x:x + size])
        return np.stack(out)

    def labelled(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = patches(n, 32)
        y = np.arange(n) % 2
        x[y == 1] = x[y == 1] // 2 * 2  # fakes: a faint trace in the lowest bit
        return x, y

    x, y = labelled(16)
    vx, vy = labelled(8)
    np.savez(path, gan=patches(16, 32), x=x, y=y, vx=vx, vy=vy)
    return path


def _gan_weights(run: Path) -> dict[str, torch.Tensor]:
    out = dict(load_file(str(run / "generator.safetensors")))
    ck = json.loads((run / "checkpoints" / "latest.json").read_text())["dir"]
    for name in ("D", "opt_G", "opt_D"):
        out.update({f"{name}.{k}": v for k, v in
                    load_file(str(run / "checkpoints" / ck / f"{name}.safetensors")).items()})
    return out


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].numel())


@pytest.mark.slow
def test_two_gloo_processes_equal_one_process_on_the_global_batch(tmp_path: Path) -> None:
    inputs = str(_inputs(tmp_path / "inputs.npz"))
    procs = (_launch(1, ["equivalence", str(tmp_path / "one"), inputs])
             + _launch(2, ["equivalence", str(tmp_path / "two"), inputs]))
    for rc, err in _finish(procs):
        assert rc == 0, err
    one, two = tmp_path / "one", tmp_path / "two"
    # rank 0 alone wrote the run folders
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inputs.npz", "one", "two"]
    meta = json.loads((two / "gan" / "generator.json").read_text())
    assert meta["distributed"] == {"world_size": 2, "backend": "gloo"}
    assert "distributed" not in json.loads((one / "gan" / "generator.json").read_text())

    # GAN: the losses of step 1 are the global batch's (before any update), and two steps of
    # two critic updates each (gradient penalty, G's step under no_sync) give the same weights
    la, lb = pd.read_csv(one / "gan" / "losses.csv"), pd.read_csv(two / "gan" / "losses.csv")
    for col in ("d_loss", "g_loss", "gp", "d_real", "d_fake"):
        assert np.allclose(la[col], lb[col], rtol=1e-6, atol=1e-5), col  # float32 sums
    wa, wb = _gan_weights(one / "gan"), _gan_weights(two / "gan")
    nets_a = {k: v for k, v in wa.items() if not k.startswith("opt")}
    assert _max_diff(nets_a, {k: v for k, v in wb.items() if not k.startswith("opt")}) < 1e-5
    assert _max_diff(nets_a, _gan_init()) > 1e-4  # the tolerance is far below what training moved
    for k in wa:  # Adam's moments (the critic's gradients are large): float32 rounding apart
        if k.startswith("opt") and wa[k].numel():
            assert (wa[k] - wb[k]).abs().max() <= 2e-5 * wa[k].abs().max(), k

    # CNN detector: two epochs of two global batches of 8 (4 rows per process)
    ca = load_file(str(one / "cnn" / "model.safetensors"))
    cb = load_file(str(two / "cnn" / "model.safetensors"))
    assert _max_diff(ca, cb) < 1e-5
    ha = json.loads((one / "cnn" / "model.json").read_text())
    hb = json.loads((two / "cnn" / "model.json").read_text())
    for ra, rb in zip(ha["history"], hb["history"], strict=True):
        assert abs(ra["train_loss"] - rb["train_loss"]) < 1e-5
        assert abs(ra["val_loss"] - rb["val_loss"]) < 1e-5
    assert hb["distributed"] == {"world_size": 2, "backend": "gloo", "sync_bn": False}


def _gan_init() -> dict[str, torch.Tensor]:
    """G and D as initialised (before step 1) in the equivalence runs' config."""
    from ganforensics.gan.config import preset
    from ganforensics.gan.nets import Discriminator, Generator
    from ganforensics.seeding import derive_seed

    cfg = preset("wgan-gp", n_d=2, steps=2, batch=8, dim=8, z_dim=16)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(cfg.seed, "gan-init"))
        gen = Generator(cfg.size, cfg.last_block, cfg.z_dim, cfg.dim)
        disc = Discriminator(cfg.size, cfg.d_norm, cfg.dim)
    out = {k: v for k, v in gen.state_dict().items() if "running" not in k and
           "num_batches" not in k and not k.startswith(_bn_prefixes(gen))}
    out.update({f"D.{k}": v for k, v in disc.state_dict().items()})
    return out


def _bn_prefixes(net: torch.nn.Module) -> tuple[str, ...]:
    return tuple(f"{n}." for n, m in net.named_modules() if isinstance(m, torch.nn.BatchNorm2d))


@pytest.mark.slow
def test_two_process_run_killed_resumes_to_the_uninterrupted_weights(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, patch in enumerate(np.load(_inputs(tmp_path / "inputs.npz"))["gan"]):
        save_png_atomic(photos / f"{i:02d}.png", patch)
    killed = _launch(2, ["cli", str(tmp_path / "b"), str(photos), "2"])
    # the uninterrupted run: the same command line, started by torchrun
    env = {**os.environ, "GANFORENSICS_PROGRESS": "0"}
    straight = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
         "-m", "ganforensics", "--threads", "1", "gan", "train", *GAN_ARGS.split(),
         "--data", str(photos), "--out", str(tmp_path / "a")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    rc0 = killed[0].wait(timeout=150)
    assert rc0 == -signal.SIGKILL, killed[0].stderr.read().decode()[-1500:]  # type: ignore
    killed[1].kill()  # torchrun stops the survivors the same way
    _finish(killed)
    assert not (tmp_path / "b" / "generator.safetensors").exists()
    resumed = _launch(2, ["cli", str(tmp_path / "b"), str(photos), "-1"])
    results = _finish(resumed)
    for rc, err in results:
        assert rc == 0, err
    assert "from step 2" in results[0][1]
    out, err = straight.communicate(timeout=150)
    assert straight.returncode == 0, err.decode()[-1500:]
    assert out.decode().split() == [str(tmp_path / "a")]  # the result line comes once
    a, b = _gan_weights(tmp_path / "a"), _gan_weights(tmp_path / "b")
    for k in a:
        assert torch.equal(a[k], b[k]), k
    la, lb = pd.read_csv(tmp_path / "a" / "losses.csv"), pd.read_csv(tmp_path / "b" / "losses.csv")
    assert la["step"].tolist() == [1, 2, 3, 4]
    assert np.array_equal(la["g_loss"].to_numpy(), lb["g_loss"].to_numpy())


def test_shards_cover_the_global_batch_once() -> None:
    for n in (8, 9, 2):
        for world in (1, 2, 3):
            rows = [list(range(n))[distributed.shard(n, Dist(r, world))] for r in range(world)]
            assert sum(rows, []) == list(range(n))
            assert max(map(len, rows)) - min(map(len, rows)) <= 1


def test_one_process_helpers_are_no_ops_and_sync_bn_needs_cuda(monkeypatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.from_env() == distributed.SINGLE
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    with distributed.session("cpu") as (ctx, dev):
        assert not ctx.enabled and dev == torch.device("cpu")
        assert distributed.wrap(net, ctx, dev) is net
        assert distributed.broadcast(ctx, {"a": 1}) == {"a": 1}
        assert distributed.mean(ctx, [1.0, 2.0]) == [1.0, 2.0]
        assert distributed.on_main(ctx, lambda: 7) == 7
        with pytest.raises(ConfigError, match="SyncBatchNorm needs CUDA"):
            distributed.wrap(net, ctx, dev, sync_bn=True)
    monkeypatch.setenv("GANFORENSICS_SYNC_BN", "1")
    assert distributed.sync_bn_requested(None) and not distributed.sync_bn_requested(False)
    with pytest.raises(ConfigError, match="does not split evenly"):
        distributed.check_divisible(9, Dist(0, 2))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="give --device cuda"), distributed.session("cuda:0"):
        pass
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ConfigError, match="WORLD_SIZE"):
        distributed.from_env()
