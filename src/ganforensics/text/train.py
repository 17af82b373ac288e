"""Training of the DomainGAN autoencoder and GAN variants; generation; saving (docs/text.md).

The three objectives are the toolkit's GAN loss registry (`ganforensics.gan.losses`):
`gan` = loss `gan` (BCE with logits, non-saturating G), `lsgan` = loss `lsgan` (MSE to 1 / 0;
the paper's 1/2 factors only scale it), `wgan-gp` = loss `wgan` + penalty `1-gp` (weight 10)
taken with respect to the critic's (n, L, V) soft one-hot input. Only G's dense layer and D's
linear head train; the pre-trained decoder / encoder are frozen (the paper's design).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ganforensics.errors import ConfigError, InputError
from ganforensics.gan.losses import d_loss, g_loss, gradient_penalty
from ganforensics.io.atomic import write_json_atomic
from ganforensics.text.encoding import PAD, Vocab
from ganforensics.text.nets import (
    BANK_FILTERS,
    Z_DIM,
    Autoencoder,
    Critic,
    Generator,
    TextDecoder,
    sample_z,
)

VARIANTS: dict[str, dict[str, Any]] = {
    "gan": {"loss": "gan", "gp": "none", "n_critic": 1},
    "lsgan": {"loss": "lsgan", "gp": "none", "n_critic": 1},
    "wgan-gp": {"loss": "wgan", "gp": "1-gp", "n_critic": 5},
}
"""The paper's three objectives as (loss, penalty, critic steps per G step) of the registry."""

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass
class AEConfig:
    epochs: int = 30
    batch: int = 64
    lr: float = 1e-3
    target: float = 0.99
    """Stop once held-out per-character accuracy reaches this (checked each epoch)."""
    filters: int = BANK_FILTERS
    seed: int = 0


@dataclass
class GanConfig:
    variant: str = "wgan-gp"
    steps: int = 2000
    batch: int = 64
    lr: float = 1e-3
    """Adam lr of G's dense layer and D's head (the paper gives none; 1e-4 learnt far slower
    in a 1,000-step probe: unigram JS 0.55 vs 0.15, docs/text.md)."""
    betas: tuple[float, float] = (0.5, 0.9)
    z_dim: int = Z_DIM
    n_critic: int | None = None
    """Critic steps per G step; None = the variant's (5 for wgan-gp, else 1)."""
    train_bodies: bool = False
    """Ablation: also train the decoder / encoder (the paper keeps them frozen)."""
    seed: int = 0

    def resolved(self) -> dict[str, Any]:
        if self.variant not in VARIANTS:
            raise ConfigError(f"variant: {self.variant!r} is not one of {', '.join(VARIANTS)}")
        d = asdict(self)
        d["betas"] = list(self.betas)
        d.update({k: v for k, v in VARIANTS[self.variant].items()
                  if not (k == "n_critic" and self.n_critic is not None)})
        return d


def one_hot(ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
    return F.one_hot(ids, vocab_size).float()


def char_accuracy(ae: Autoencoder, ids: np.ndarray, vocab_size: int, batch: int = 512
                  ) -> tuple[float, float]:
    """(per-character accuracy over non-pad positions, exact-name rate) of argmax decoding."""
    ae.eval()
    right = total = exact = 0
    with torch.no_grad():
        for i in range(0, len(ids), batch):
            x = torch.from_numpy(ids[i:i + batch])
            pred = ae(one_hot(x, vocab_size)).argmax(-1)
            mask = x != PAD
            right += int(((pred == x) & mask).sum())
            total += int(mask.sum())
            exact += int((pred == x).all(1).sum())
    return right / max(total, 1), exact / max(len(ids), 1)


def train_autoencoder(train: Sequence[str], held_out: Sequence[str], vocab: Vocab,
                      cfg: AEConfig, progress: Progress = _quiet
                      ) -> tuple[Autoencoder, dict[str, Any]]:
    """Per-position cross-entropy, Adam; stops when held-out character accuracy >= target."""
    if not train or not held_out:
        raise InputError("the autoencoder needs train and held-out names")
    torch.manual_seed(cfg.seed)
    ae = Autoencoder(vocab.size, vocab.max_len, cfg.filters)
    opt = torch.optim.Adam(ae.parameters(), lr=cfg.lr)
    tr, te = vocab.encode(list(train)), vocab.encode(list(held_out))
    rng = np.random.default_rng(cfg.seed)
    history = []
    t0 = time.perf_counter()
    acc = exact = 0.0
    for epoch in range(1, cfg.epochs + 1):
        ae.train()
        perm = rng.permutation(len(tr))
        tot = 0.0
        for i in range(0, len(tr), cfg.batch):
            x = torch.from_numpy(tr[perm[i:i + cfg.batch]])
            logits = ae(one_hot(x, vocab.size))
            loss = F.cross_entropy(logits.reshape(-1, vocab.size), x.reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += loss.item() * len(x)
        acc, exact = char_accuracy(ae, te, vocab.size)
        history.append({"epoch": epoch, "loss": tot / len(tr), "held_out_char_acc": acc,
                        "held_out_exact": exact})
        progress(f"ae epoch {epoch}: loss {tot / len(tr):.4f}, held-out char acc {acc:.4f}, "
                 f"exact {exact:.4f}")
        if acc >= cfg.target:
            break
    metrics = {"held_out_char_acc": acc, "held_out_exact": exact, "epochs": len(history),
               "seconds": time.perf_counter() - t0, "n_train": len(tr), "n_held_out": len(te),
               "code_dim": ae.encoder.code_dim,
               "params": sum(p.numel() for p in ae.parameters())}
    return ae, {"history": history, "metrics": metrics}


def train_gan(ae: Autoencoder, real: Sequence[str], vocab: Vocab, cfg: GanConfig,
              progress: Progress = _quiet) -> tuple[Generator, Critic, dict[str, Any]]:
    """One DomainGAN variant on real names: G = dense -> frozen decoder, D = frozen encoder ->
    linear; losses from the registry; equal real and generated names per batch."""
    rc = cfg.resolved()
    torch.manual_seed(cfg.seed)
    gen_rng = torch.Generator().manual_seed(cfg.seed)
    dec, enc = _copy(ae).decoder, _copy(ae).encoder  # the caller's autoencoder stays as it is
    g = Generator(dec, cfg.z_dim, cfg.train_bodies)
    d = Critic(enc, cfg.train_bodies)
    opt_g = torch.optim.Adam([p for p in g.parameters() if p.requires_grad], lr=cfg.lr,
                             betas=cfg.betas)
    opt_d = torch.optim.Adam([p for p in d.parameters() if p.requires_grad], lr=cfg.lr,
                             betas=cfg.betas)
    ids = vocab.encode(list(real))
    rng = np.random.default_rng(cfg.seed)
    history = []
    t0 = time.perf_counter()
    every = max(1, cfg.steps // 10)
    for step in range(1, cfg.steps + 1):
        for _ in range(rc["n_critic"]):
            x = one_hot(torch.from_numpy(ids[rng.integers(0, len(ids), cfg.batch)]), vocab.size)
            with torch.no_grad():
                fake = g(sample_z(cfg.batch, cfg.z_dim, gen_rng))
            ld = d_loss(rc["loss"], d(x), d(fake))
            gp = gradient_penalty(d, x, fake, rc["gp"], gen_rng)
            opt_d.zero_grad()
            (ld + gp).backward()
            opt_d.step()
        fake = g(sample_z(cfg.batch, cfg.z_dim, gen_rng))
        lg = g_loss(rc["loss"], d(fake))
        opt_g.zero_grad()
        lg.backward()
        opt_g.step()
        if step % every == 0 or step == cfg.steps:
            rec = {"step": step, "d_loss": ld.item(), "gp": gp.item(), "g_loss": lg.item()}
            history.append(rec)
            progress(f"{cfg.variant} step {step}/{cfg.steps}: d {rec['d_loss']:.4f} "
                     f"gp {rec['gp']:.4f} g {rec['g_loss']:.4f}")
    info = {"config": rc, "history": history, "seconds": time.perf_counter() - t0,
            "trainable_params": {"generator": sum(p.numel() for p in g.parameters()
                                                  if p.requires_grad),
                                 "critic": sum(p.numel() for p in d.parameters()
                                               if p.requires_grad)}}
    return g, d, info


def _copy(ae: Autoencoder) -> Autoencoder:
    twin = Autoencoder(ae.encoder.embed.in_features, ae.encoder.max_len,
                       ae.encoder.banks.convs[0].out_channels)
    twin.load_state_dict(ae.state_dict())
    return twin


def generate(g: Generator, n: int, vocab: Vocab, seed: int, batch: int = 1024) -> list[str]:
    """`n` names: argmax per position, read up to the first pad (may be empty or invalid;
    the metrics count those)."""
    gen_rng = torch.Generator().manual_seed(seed)
    g.eval()
    out: list[str] = []
    with torch.no_grad():
        for i in range(0, n, batch):
            k = min(batch, n - i)
            out += vocab.decode(g(sample_z(k, g.z_dim, gen_rng)).argmax(-1).numpy())
    return out


# ------------------------------------------------------------------------------ saving


def save_model(module: torch.nn.Module, folder: Path, name: str, meta: dict[str, Any]) -> Path:
    """`<folder>/<name>.safetensors` + `<name>.json` (architecture, vocabulary, metrics)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
    save_file(state, str(folder / f"{name}.safetensors"))
    write_json_atomic(folder / f"{name}.json", meta)
    return folder / f"{name}.safetensors"


def _load_meta(path: Path) -> tuple[Path, dict[str, Any]]:
    path = Path(path)
    if path.is_dir():
        cands = sorted(path.glob("*.json"))
        cands = [c for c in cands if c.with_suffix(".safetensors").exists()]
        if len(cands) != 1:
            raise InputError(f"{path}: expected one <name>.json + <name>.safetensors pair, "
                             f"found {len(cands)}")
        path = cands[0]
    path = path.with_suffix(".json")
    if not path.exists() or not path.with_suffix(".safetensors").exists():
        raise InputError(f"{path}: model files missing (.json and .safetensors)")
    try:
        return path, json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg})") from None


def _state(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path.with_suffix(".safetensors")))


def save_autoencoder(ae: Autoencoder, folder: Path, vocab: Vocab, info: dict[str, Any]) -> Path:
    meta = {"kind": "domaingan-autoencoder", "vocab": vocab.to_dict(),
            "filters": ae.encoder.banks.convs[0].out_channels, **info}
    return save_model(ae, folder, "autoencoder", meta)


def _load_kind(path: Path, kind: str, what: str) -> tuple[Path, dict[str, Any], Vocab]:
    """A saved model's files, metadata and vocabulary; InputError unless it is a `kind`."""
    p, meta = _load_meta(path)
    if meta.get("kind") != kind:
        raise InputError(f"{p}: not a DomainGAN {what} (kind {meta.get('kind')!r})")
    return p, meta, Vocab.from_dict(meta["vocab"])


def load_autoencoder(path: Path) -> tuple[Autoencoder, Vocab, dict[str, Any]]:
    p, meta, vocab = _load_kind(path, "domaingan-autoencoder", "autoencoder")
    ae = Autoencoder(vocab.size, vocab.max_len, int(meta["filters"]))
    ae.load_state_dict(_state(p))
    return ae, vocab, meta


def save_generator(g: Generator, folder: Path, vocab: Vocab, info: dict[str, Any]) -> Path:
    meta = {"kind": "domaingan-generator", "vocab": vocab.to_dict(), "z_dim": g.z_dim,
            "filters": g.decoder.banks.convs[0].out_channels, **info}
    return save_model(g, folder, "generator", meta)


def load_generator(path: Path) -> tuple[Generator, Vocab, dict[str, Any]]:
    p, meta, vocab = _load_kind(path, "domaingan-generator", "generator")
    g = Generator(TextDecoder(vocab.size, vocab.max_len, int(meta["filters"])),
                  int(meta["z_dim"]))
    g.load_state_dict(_state(p))
    return g, vocab, meta
