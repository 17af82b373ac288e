"""Character encoding of domain labels (DomainGAN, docs/text.md).

A name is one DNS label (the second-level domain with its public suffix stripped, e.g. `google`
for `google.com`). The vocabulary is fixed and recorded in every saved model: id 0 is the padding
token, ids 1.. are `a-z`, `0-9` and `-` (37 symbols, 38 ids; the paper's 39 also held `.`, which
never survives TLD stripping of single labels). Names are padded to a fixed length on the right
(the autoencoder's layout) or on the left (the recurrent classifiers read the name last, as the
Endgame model does).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-"
PAD = 0
DEFAULT_MAX_LEN = 60
"""Positions per name (the paper's 60; the autoencoder's code is 8 x this = 480-d)."""
LABEL_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
"""A valid hostname label (RFC 1123, lower case): 1-63 letters, digits and hyphens, no hyphen
first or last."""


def is_valid_label(name: str) -> bool:
    """True when `name` is a valid lower-case hostname label."""
    return bool(LABEL_RE.match(name))


@dataclass(frozen=True)
class Vocab:
    """The token table: `alphabet[i - 1]` has id i, id 0 pads."""

    alphabet: str = ALPHABET
    max_len: int = DEFAULT_MAX_LEN

    @property
    def size(self) -> int:
        """Ids including padding."""
        return len(self.alphabet) + 1

    def to_dict(self) -> dict[str, object]:
        return {"alphabet": self.alphabet, "pad_id": PAD, "max_len": self.max_len,
                "size": self.size}

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> Vocab:
        return cls(alphabet=str(d["alphabet"]), max_len=int(d["max_len"]))  # type: ignore[arg-type]

    def _table(self) -> dict[str, int]:
        return {c: i + 1 for i, c in enumerate(self.alphabet)}

    def encodable(self, name: str) -> str | None:
        """None when `name` can be encoded, else the reason it cannot."""
        if not name:
            return "empty"
        if len(name) > self.max_len:
            return f"longer than {self.max_len} characters"
        bad = sorted({c for c in name if c not in self.alphabet})
        if bad:
            return "characters outside the vocabulary: " + "".join(bad)
        return None

    def encode(self, names: Sequence[str], *, left_pad: bool = False) -> np.ndarray:
        """Names -> int64 ids (n, max_len); ValueError names the first name that does not fit."""
        table = self._table()
        ids = np.zeros((len(names), self.max_len), dtype=np.int64)
        for i, name in enumerate(names):
            why = self.encodable(name)
            if why is not None:
                raise ValueError(f"name {i} ({name!r}): {why}")
            row = [table[c] for c in name]
            if left_pad:
                ids[i, self.max_len - len(row):] = row
            else:
                ids[i, : len(row)] = row
        return ids

    def decode(self, ids: np.ndarray | Iterable[Sequence[int]]) -> list[str]:
        """Ids -> names. Padding is removed wherever it stands: a name of right-padded ids ends
        at its first pad, left padding is skipped. (A generated row with a pad between
        characters is read up to that pad.)"""
        out = []
        for row in np.asarray(ids):
            chars = []
            started = False
            for t in row.tolist():
                if t == PAD:
                    if started:
                        break
                    continue
                started = True
                chars.append(self.alphabet[t - 1])
            out.append("".join(chars))
        return out

    def one_hot(self, ids: np.ndarray) -> np.ndarray:
        """(n, L) ids -> (n, L, V) float32 one-hot."""
        eye = np.eye(self.size, dtype=np.float32)
        return eye[np.asarray(ids)]

    def fit_names(self, names: Iterable[str]) -> tuple[list[str], list[tuple[str, str]]]:
        """Split names into those this vocabulary encodes and (name, reason) for the others."""
        ok: list[str] = []
        bad: list[tuple[str, str]] = []
        for n in names:
            why = self.encodable(n)
            (ok.append(n) if why is None else bad.append((n, why)))
        return ok, bad
