"""DomainGAN networks (Corley et al. 2019, docs/text.md "Models").

- `TextEncoder`: soft one-hot (n, L, V) -> embedding V->V -> three parallel Conv1d banks (256
  filters, kernels 2/3/4, ReLU, length-preserving padding) -> concat (768) -> Conv1d 8, kernel
  2, ReLU -> flatten: an 8L-d code (480-d at L = 60).
- `TextDecoder`: code -> (8, L) -> three parallel banks as above -> concat -> Conv1d 32, kernel 3,
  ReLU -> Conv1d V, kernel 3 -> logits per position (softmax over the vocabulary).
- `Generator`: z ~ U(-1, 1) -> Linear(z -> 8L) + ReLU -> frozen decoder -> softmax (n, L, V).
- `Critic`: (n, L, V) -> frozen encoder -> Linear(8L -> 1) (a linear output; the loss decides how
  it is read).

The encoder takes one-hot *probabilities*, not ids, so the critic sees the generator's softmax
and reals alike, and a gradient penalty can be taken with respect to that input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

BANK_KERNELS = (2, 3, 4)
BANK_FILTERS = 256
CODE_CHANNELS = 8
DEC_HIDDEN = 32
Z_DIM = 100


class SameConv1d(nn.Conv1d):
    """Conv1d with length-preserving padding, the extra position on the right for even kernels
    (as `padding="same"`, without its copy warning)."""

    def __init__(self, c_in: int, c_out: int, k: int):
        super().__init__(c_in, c_out, k)
        self.pads = ((k - 1) // 2, k - 1 - (k - 1) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pads))


class _Banks(nn.Module):
    """Three parallel Conv1d (kernels 2/3/4, same length) with ReLU, concatenated."""

    def __init__(self, c_in: int, filters: int = BANK_FILTERS):
        super().__init__()
        self.convs = nn.ModuleList(
            SameConv1d(c_in, filters, k) for k in BANK_KERNELS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.relu(c(x)) for c in self.convs], dim=1)


class TextEncoder(nn.Module):
    """(n, L, V) one-hot or softmax -> (n, 8L) code."""

    def __init__(self, vocab_size: int, max_len: int, filters: int = BANK_FILTERS):
        super().__init__()
        self.embed = nn.Linear(vocab_size, vocab_size, bias=False)  # an embedding on soft input
        self.banks = _Banks(vocab_size, filters)
        self.squeeze = SameConv1d(len(BANK_KERNELS) * filters, CODE_CHANNELS, 2)
        self.max_len = max_len

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x).transpose(1, 2)  # (n, V, L)
        h = F.relu(self.squeeze(self.banks(h)))  # (n, 8, L)
        return h.transpose(1, 2).flatten(1)  # position-major: (n, L*8)

    @property
    def code_dim(self) -> int:
        return CODE_CHANNELS * self.max_len


class TextDecoder(nn.Module):
    """(n, 8L) code -> (n, L, V) logits."""

    def __init__(self, vocab_size: int, max_len: int, filters: int = BANK_FILTERS):
        super().__init__()
        self.banks = _Banks(CODE_CHANNELS, filters)
        self.hidden = SameConv1d(len(BANK_KERNELS) * filters, DEC_HIDDEN, 3)
        self.out = SameConv1d(DEC_HIDDEN, vocab_size, 3)
        self.max_len = max_len

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        h = code.view(code.shape[0], self.max_len, CODE_CHANNELS).transpose(1, 2)
        h = F.relu(self.hidden(self.banks(h)))
        return self.out(h).transpose(1, 2)  # (n, L, V)


class Autoencoder(nn.Module):
    def __init__(self, vocab_size: int, max_len: int, filters: int = BANK_FILTERS):
        super().__init__()
        self.encoder = TextEncoder(vocab_size, max_len, filters)
        self.decoder = TextDecoder(vocab_size, max_len, filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def freeze(module: nn.Module) -> nn.Module:
    """No gradients for `module`'s parameters (gradients still flow through it)."""
    for p in module.parameters():
        p.requires_grad_(False)
    return module.eval()


class Generator(nn.Module):
    """z -> Linear + ReLU -> decoder (frozen unless asked) -> softmax (n, L, V)."""

    def __init__(self, decoder: TextDecoder, z_dim: int = Z_DIM, train_body: bool = False):
        super().__init__()
        self.z_dim = z_dim
        self.dense = nn.Linear(z_dim, CODE_CHANNELS * decoder.max_len)
        self.decoder = decoder if train_body else freeze(decoder)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.decoder(F.relu(self.dense(z))), dim=-1)


class Critic(nn.Module):
    """(n, L, V) -> encoder (frozen unless asked) -> Linear -> (n,) score."""

    def __init__(self, encoder: TextEncoder, train_body: bool = False):
        super().__init__()
        self.encoder = encoder if train_body else freeze(encoder)
        self.head = nn.Linear(encoder.code_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x)).squeeze(1)


def sample_z(n: int, z_dim: int, generator: torch.Generator) -> torch.Tensor:
    """z ~ U(-1, 1) (the paper's noise)."""
    return torch.rand(n, z_dim, generator=generator) * 2 - 1
