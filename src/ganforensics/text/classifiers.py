"""Character-level DGA classifiers, the detectors DomainGAN attacks (docs/text.md).

Labels follow the toolkit: benign = 0, DGA = 1; scores are P(DGA). Names are ids left-padded
to the vocabulary's length (the recurrent models read the name last, as the Endgame model does).

- `lstm` (Endgame, Woodbridge et al. 2016): Embedding 128 -> LSTM 128 -> Dropout 0.5 -> 1.
- `cnn` (Invincea-style parallel CNN, after Yu et al. 2018): Embedding 128 -> parallel Conv1d
  kernels 2-5 (`filters` each, ReLU) -> global max-pool -> Dense `hidden` ReLU -> Dropout -> 1.
  Yu et al. used 256 filters and wider dense layers; sizes here are CPU-scale and recorded.
- `cnn-lstm` (MIT, Vosoughi-style): Embedding 128 -> Conv1d 128 k3 ReLU -> MaxPool 2 -> LSTM 64
  -> 1.
- `bigram` baseline: counts of character bigrams (with `^`/`$` edge marks) -> logistic
  regression (scikit-learn, lbfgs); saved as plain arrays.

Training: BCE with logits, Adam, early stopping on a validation split (patience in epochs, the
lowest-validation-loss weights kept). `fine_tune` continues from trained weights (the paper's
hardening).
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
from torch import nn

from ganforensics.errors import ConfigError, InputError
from ganforensics.io.atomic import write_json_atomic
from ganforensics.text.encoding import Vocab

KINDS = ("bigram", "lstm", "cnn", "cnn-lstm")
EMBED = 128


@dataclass
class ClassifierConfig:
    epochs: int = 20
    patience: int = 2
    batch: int = 128
    lr: float = 1e-3
    val_share: float = 0.1
    filters: int = 64
    hidden: int = 128
    c: float = 1.0
    """Inverse L2 strength of the bigram logistic regression."""
    seed: int = 0


class LSTMNet(nn.Module):
    def __init__(self, vocab_size: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, EMBED, padding_idx=0)
        self.lstm = nn.LSTM(EMBED, 128, batch_first=True)
        self.drop = nn.Dropout(0.5)
        self.out = nn.Linear(128, 1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(self.embed(ids))
        return self.out(self.drop(h[-1])).squeeze(1)


class ParallelCNN(nn.Module):
    def __init__(self, vocab_size: int, filters: int, hidden: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, EMBED, padding_idx=0)
        self.convs = nn.ModuleList(nn.Conv1d(EMBED, filters, k) for k in (2, 3, 4, 5))
        self.dense = nn.Linear(4 * filters, hidden)
        self.drop = nn.Dropout(0.5)
        self.out = nn.Linear(hidden, 1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.embed(ids).transpose(1, 2)
        h = torch.cat([F.relu(c(h)).amax(-1) for c in self.convs], dim=1)
        return self.out(self.drop(F.relu(self.dense(h)))).squeeze(1)


class CNNLSTM(nn.Module):
    def __init__(self, vocab_size: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, EMBED, padding_idx=0)
        self.conv = nn.Conv1d(EMBED, 128, 3, padding=1)
        self.lstm = nn.LSTM(128, 64, batch_first=True)
        self.out = nn.Linear(64, 1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = F.max_pool1d(F.relu(self.conv(self.embed(ids).transpose(1, 2))), 2)
        _, (hn, _) = self.lstm(h.transpose(1, 2))
        return self.out(hn[-1]).squeeze(1)


def build_net(kind: str, vocab_size: int, cfg: ClassifierConfig) -> nn.Module:
    if kind == "lstm":
        return LSTMNet(vocab_size)
    if kind == "cnn":
        return ParallelCNN(vocab_size, cfg.filters, cfg.hidden)
    if kind == "cnn-lstm":
        return CNNLSTM(vocab_size)
    raise ConfigError(f"classifier: {kind!r} is not one of {', '.join(KINDS)}")


# ------------------------------------------------------------------------------ bigram


def bigram_vocab(alphabet: str) -> list[str]:
    chars = "^" + alphabet + "$"
    return [a + b for a in chars for b in chars if a != "$" and b != "^"]


def bigram_counts(names: Sequence[str], table: dict[str, int]) -> np.ndarray:
    x = np.zeros((len(names), len(table)), dtype=np.float32)
    for i, n in enumerate(names):
        s = "^" + n + "$"
        for j in range(len(s) - 1):
            k = table.get(s[j:j + 2])
            if k is not None:
                x[i, k] += 1
    return x


# ------------------------------------------------------------------------------ model


class DGAClassifier:
    """A trained classifier of any kind: `scores(names)` -> P(DGA)."""

    def __init__(self, kind: str, vocab: Vocab, cfg: ClassifierConfig,
                 net: nn.Module | None = None, linear: tuple[np.ndarray, float] | None = None):
        if kind not in KINDS:
            raise ConfigError(f"classifier: {kind!r} is not one of {', '.join(KINDS)}")
        self.kind, self.vocab, self.cfg = kind, vocab, cfg
        self.net = net
        self.linear = linear
        self.info: dict[str, Any] = {}
        self._table = {b: i for i, b in enumerate(bigram_vocab(vocab.alphabet))}

    def _ids(self, names: Sequence[str]) -> np.ndarray:
        fit = [n[: self.vocab.max_len] for n in names]
        return self.vocab.encode(fit, left_pad=True)

    def scores(self, names: Sequence[str], batch: int = 1024) -> np.ndarray:
        """P(DGA) per name (names longer than the vocabulary's length are cut to it)."""
        if not len(names):
            return np.zeros(0)
        if self.kind == "bigram":
            assert self.linear is not None
            w, b = self.linear
            z = bigram_counts(names, self._table) @ w + b
            return 1 / (1 + np.exp(-z))
        assert self.net is not None
        self.net.eval()
        ids = self._ids(names)
        out = []
        with torch.no_grad():
            for i in range(0, len(ids), batch):
                out.append(torch.sigmoid(self.net(torch.from_numpy(ids[i:i + batch]))).numpy())
        return np.concatenate(out).astype(np.float64)

    # -------------------------------------------------------------------- training

    def fit(self, names: Sequence[str], labels: Sequence[int],
            progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
        """Train (or continue training, when weights exist) with early stopping on a
        seeded validation split; returns the history and the best validation numbers."""
        y = np.asarray(labels, dtype=np.float32)
        if len(names) != len(y) or len(set(y.tolist())) < 2:
            raise InputError("classifier training needs benign (0) and DGA (1) names")
        rng = np.random.default_rng(self.cfg.seed)
        perm = rng.permutation(len(names))
        n_val = max(1, int(round(self.cfg.val_share * len(names))))
        val, tr = perm[:n_val], perm[n_val:]
        names = list(names)
        t0 = time.perf_counter()
        if self.kind == "bigram":
            info = self._fit_bigram(names, y, tr, val)
        else:
            info = self._fit_net(names, y, tr, val, rng, progress)
        info["seconds"] = time.perf_counter() - t0
        info["n_train"], info["n_val"] = len(tr), len(val)
        self.info = info
        return info

    def _fit_bigram(self, names: list[str], y: np.ndarray, tr: np.ndarray, val: np.ndarray
                    ) -> dict[str, Any]:
        from sklearn.linear_model import LogisticRegression

        x = bigram_counts(names, self._table)
        lr = LogisticRegression(C=self.cfg.c, max_iter=1000, warm_start=True)
        if self.linear is not None:  # continue from the trained weights
            lr.coef_ = self.linear[0][None, :].astype(np.float64)
            lr.intercept_ = np.array([self.linear[1]])
            lr.classes_ = np.array([0.0, 1.0])
        lr.fit(x[tr], y[tr])
        self.linear = (lr.coef_[0].astype(np.float64), float(lr.intercept_[0]))
        p = np.clip(self.scores([names[i] for i in val]), 1e-7, 1 - 1e-7)
        yv = y[val]
        loss = float(-(yv * np.log(p) + (1 - yv) * np.log(1 - p)).mean())
        return {"best_epoch": 1, "val_loss": loss,
                "val_acc": float(((p >= 0.5) == yv).mean()), "history": []}

    def _fit_net(self, names: list[str], y: np.ndarray, tr: np.ndarray, val: np.ndarray,
                 rng: np.random.Generator, progress: Callable[[str], None]) -> dict[str, Any]:
        torch.manual_seed(self.cfg.seed)
        if self.net is None:
            self.net = build_net(self.kind, self.vocab.size, self.cfg)
        net = self.net
        ids = torch.from_numpy(self._ids(names))
        yt = torch.from_numpy(y)
        opt = torch.optim.Adam(net.parameters(), lr=self.cfg.lr)
        best = (float("inf"), 0, 0.0)
        best_state = {k: v.clone() for k, v in net.state_dict().items()}
        history = []
        for epoch in range(1, self.cfg.epochs + 1):
            net.train()
            order = tr[rng.permutation(len(tr))]
            for i in range(0, len(order), self.cfg.batch):
                b = torch.from_numpy(order[i:i + self.cfg.batch])
                loss = F.binary_cross_entropy_with_logits(net(ids[b]), yt[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
            net.eval()
            with torch.no_grad():
                vb = torch.from_numpy(val)
                logits = net(ids[vb])
                vloss = float(F.binary_cross_entropy_with_logits(logits, yt[vb]))
                vacc = float(((logits > 0).float() == yt[vb]).float().mean())
            history.append({"epoch": epoch, "val_loss": vloss, "val_acc": vacc})
            progress(f"{self.kind} epoch {epoch}: val loss {vloss:.4f}, acc {vacc:.4f}")
            if vloss < best[0]:
                best = (vloss, epoch, vacc)
                best_state = {k: v.clone() for k, v in net.state_dict().items()}
            elif epoch - best[1] >= self.cfg.patience:
                break
        net.load_state_dict(best_state)
        return {"best_epoch": best[1], "val_loss": best[0], "val_acc": best[2],
                "history": history}

    # -------------------------------------------------------------------- saving

    def save(self, folder: Path) -> Path:
        """`classifier.safetensors` (weights or the bigram arrays) + `classifier.json`."""
        from safetensors.numpy import save_file as save_np
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self.kind == "bigram":
            assert self.linear is not None
            save_np({"coef": self.linear[0], "intercept": np.array([self.linear[1]])},
                    str(folder / "classifier.safetensors"))
        else:
            assert self.net is not None
            save_file({k: v.contiguous() for k, v in self.net.state_dict().items()},
                      str(folder / "classifier.safetensors"))
        meta = {"kind": "dga-classifier", "model": self.kind, "vocab": self.vocab.to_dict(),
                "config": asdict(self.cfg), "labels": {"benign": 0, "dga": 1},
                "bigrams": bigram_vocab(self.vocab.alphabet) if self.kind == "bigram" else None,
                "training": {k: v for k, v in self.info.items()}}
        write_json_atomic(folder / "classifier.json", meta)
        return folder

    @classmethod
    def load(cls, folder: Path) -> DGAClassifier:
        folder = Path(folder)
        meta_path = folder / "classifier.json"
        weights = folder / "classifier.safetensors"
        if not meta_path.exists() or not weights.exists():
            raise InputError(f"{folder}: not a classifier folder (classifier.json and "
                             "classifier.safetensors expected)")
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise InputError(f"{meta_path}: not valid JSON ({exc.msg})") from None
        if meta.get("kind") != "dga-classifier":
            raise InputError(f"{meta_path}: not a DGA classifier")
        vocab = Vocab.from_dict(meta["vocab"])
        cfg = ClassifierConfig(**meta["config"])
        kind = meta["model"]
        if kind == "bigram":
            from safetensors.numpy import load_file as load_np

            arr = load_np(str(weights))
            clf = cls(kind, vocab, cfg, linear=(arr["coef"], float(arr["intercept"][0])))
        else:
            from safetensors.torch import load_file

            net = build_net(kind, vocab.size, cfg)
            net.load_state_dict(load_file(str(weights)))
            clf = cls(kind, vocab, cfg, net=net)
        clf.info = meta.get("training", {})
        return clf


def train_classifier(kind: str, names: Sequence[str], labels: Sequence[int], vocab: Vocab,
                     cfg: ClassifierConfig, progress: Callable[[str], None] = lambda _: None
                     ) -> DGAClassifier:
    """A new classifier of `kind` trained with early stopping."""
    clf = DGAClassifier(kind, vocab, cfg)
    clf.fit(names, labels, progress)
    return clf


def fine_tune(clf: DGAClassifier, names: Sequence[str], labels: Sequence[int],
              progress: Callable[[str], None] = lambda _: None) -> DGAClassifier:
    """A copy of `clf` trained further on (names, labels) from its current weights."""
    import copy

    twin = DGAClassifier(clf.kind, clf.vocab, clf.cfg, net=copy.deepcopy(clf.net),
                         linear=None if clf.linear is None else
                         (clf.linear[0].copy(), clf.linear[1]))
    twin.fit(names, labels, progress)
    return twin
