"""Spectra of image groups (real, each generator) and their `.npz` file.

`compute_group_spectra` decodes manifest rows group by group, computes the profiles of the
chosen variant(s), the mean 2-D log spectrum and optionally the decay features, and returns a
`SpectraSet`; `save_spectra` / `load_spectra` write and read it as one `.npz` (no pickle:
strings are stored as unicode arrays, settings as a JSON string under ``meta``).

Keys in the file, for group index ``i`` (order of ``meta["groups"]``):
``{variant}_profiles_{i}`` (N_i, L), ``{variant}_freq_{i}`` (L,) (fraction of Nyquist),
``mean2d_{i}`` (H, W), ``paths_{i}`` (N_i,), and ``decay_{i}`` (N_i, 3) when computed.

A group with images of several sizes: profiles of each size are resampled (linearly) to the
length at the group's most common size, whose frequency axis is stored; the mean 2-D spectrum
uses the images of that size only (both recorded in ``meta``).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ganforensics import __version__
from ganforensics.data.importers import collect_inputs
from ganforensics.data.manifest import usable
from ganforensics.errors import InputError
from ganforensics.io.atomic import atomic_path
from ganforensics.io.loading import load_images
from ganforensics.seeding import DEFAULT_SEED
from ganforensics.spectral.decay import decay_features
from ganforensics.spectral.spectra import (
    VARIANTS,
    clean_plan,
    clean_profiles,
    durall_plan,
    durall_profiles,
    group_by_size,
    mean_log_spectrum,
    resample_profiles,
)

FILE_VERSION = 1


@dataclass
class GroupSpectra:
    """Spectra of one group of images."""

    name: str
    paths: list[str]
    profiles: dict[str, np.ndarray]
    freq: dict[str, np.ndarray]
    mean2d: np.ndarray
    decay: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class SpectraSet:
    """Spectra of several groups plus the settings that produced them."""

    groups: list[GroupSpectra]
    meta: dict[str, Any]

    def group(self, name: str) -> GroupSpectra:
        for g in self.groups:
            if g.name == name:
                return g
        raise InputError(f"no group {name!r} (have: {', '.join(g.name for g in self.groups)})")


def collect_named(inputs: Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
    """Rows of all inputs (`data.importers.collect_inputs`); unlabelled rows without a known
    generator take the input's name (folder name, or the file stem) as their generator."""
    frames = []
    for inp in map(Path, inputs):
        df = collect_inputs([inp]).copy()
        gen = df["generator"].astype("object") if "generator" in df.columns else None
        unknown = (
            pd.Series(True, index=df.index) if gen is None
            else (gen.isna() | (gen.astype(str) == "unknown"))
        )
        lab = pd.to_numeric(df["label"], errors="coerce").astype("float64")
        name = inp.name if inp.is_dir() else inp.stem
        df["generator"] = (gen if gen is not None else pd.Series("unknown", index=df.index))
        df.loc[(unknown & lab.isna()).to_numpy(), "generator"] = name
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def group_column(df: pd.DataFrame) -> pd.Series:
    """Group name per row: "real" for label 0, else the generator (or "unknown")."""
    gen = df["generator"].astype("object") if "generator" in df.columns else None
    names = pd.Series(["unknown"] * len(df), index=df.index, dtype="object")
    if gen is not None:
        names = gen.where(gen.notna(), "unknown").astype(str)
    if "label" in df.columns:
        lab = pd.to_numeric(df["label"], errors="coerce").astype("float64")
        names = names.where(~(lab == 0).to_numpy(), "real")
    return names


def spectra_of_images(
    images: list[np.ndarray],
    variants: tuple[str, ...] = ("durall",),
    *,
    dtype: type = np.float64,
    decay: bool = False,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray, np.ndarray | None, dict]:
    """Profiles per variant, their axes, mean 2-D log spectrum, decay features, size info."""
    for v in variants:
        if v not in VARIANTS:
            raise InputError(f"unknown spectrum variant {v!r} (choose from {', '.join(VARIANTS)})")
    sizes = Counter((int(a.shape[0]), int(a.shape[1])) for a in images)
    (h, w), _ = sizes.most_common(1)[0]
    by_size = group_by_size(images)
    profs: dict[str, np.ndarray] = {}
    freqs: dict[str, np.ndarray] = {}
    for v in variants:
        plan = durall_plan(h, w) if v == "durall" else clean_plan(h, w)
        fn = durall_profiles if v == "durall" else clean_profiles
        out = np.empty((len(images), len(plan.bins)))
        for idx in by_size.values():
            stack = np.stack([images[i] for i in idx])
            out[idx] = resample_profiles(fn(stack, dtype=dtype), len(plan.bins))
        profs[v], freqs[v] = out, plan.freq
    main = np.stack([images[i] for i in by_size[(h, w)]])
    mean2d = mean_log_spectrum(main, dtype=dtype)
    feats = None
    if decay:
        feats = np.empty((len(images), 3))
        for idx in by_size.values():
            feats[idx] = decay_features(np.stack([images[i] for i in idx]))
    info = {
        "sizes": {f"{a}x{b}": int(c) for (a, b), c in sizes.items()},
        "main_size": f"{h}x{w}",
        "resampled": len(sizes) > 1,
    }
    return profs, freqs, mean2d, feats, info


def compute_group_spectra(
    df: pd.DataFrame,
    *,
    variants: tuple[str, ...] = ("durall",),
    dtype: type = np.float64,
    decay: bool = False,
    max_per_group: int | None = None,
    seed: int = DEFAULT_SEED,
) -> tuple[SpectraSet, list[tuple[str, str]]]:
    """Spectra per group of manifest rows (see `group_column`); returns the set and the
    (path, reason) of files that could not be decoded (skipped; the caller warns)."""
    if "abspath" not in df.columns:
        raise InputError("manifest rows need an 'abspath' column")
    ok = usable(df)
    bad = df[~df.index.isin(ok.index)]  # manifest rows: a unique index
    errors = [(str(p), str(e)) for p, e in zip(bad["abspath"], bad.get("error", []), strict=True)]
    df = ok
    names = group_column(df)
    groups: list[GroupSpectra] = []
    order = ["real"] + sorted(set(names) - {"real"}) if "real" in set(names) else sorted(set(names))
    for gi, name in enumerate(order):
        sub = df[names == name]
        if max_per_group is not None and len(sub) > max_per_group:
            sub = sub.sample(n=max_per_group, random_state=(seed + gi) % (2**32)).sort_index()
        paths = [str(p) for p in sub["abspath"]]
        loaded = load_images(paths, what=f"spectra {name}", progress=True, quiet=True)
        errors += loaded.errors
        images = loaded.images
        kept = [paths[i] for i in loaded.keep]
        if not images:
            continue
        profs, freqs, mean2d, feats, info = spectra_of_images(
            images, variants, dtype=dtype, decay=decay
        )
        info["n"] = len(images)
        groups.append(GroupSpectra(name, kept, profs, freqs, mean2d, feats, info))
    if not groups:
        raise InputError("no decodable images in the inputs")
    meta = {
        "file_version": FILE_VERSION,
        "ganforensics_version": __version__,
        "variants": list(variants),
        "variant_notes": {
            "durall": "20 ln|F + 1e-8|, reference centre ((W-1)/2, (H-1)/2), floor-radius "
            "bins, first and last bins dropped",
            "clean": "|F|^2 / (H W), DC centre, nearest integer radius, DC..Nyquist",
        },
        "dtype": np.dtype(dtype).name,
        "decay": bool(decay),
        "max_per_group": max_per_group,
        "seed": int(seed),
        "groups": [g.name for g in groups],
        "group_info": {g.name: g.info for g in groups},
        "skipped": len(errors),
    }
    return SpectraSet(groups, meta), errors


def save_spectra(spectra: SpectraSet, path: str | os.PathLike[str]) -> Path:
    """Write a `SpectraSet` to one `.npz` (atomically)."""
    arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(spectra.meta))}
    for i, g in enumerate(spectra.groups):
        for v, p in g.profiles.items():
            arrays[f"{v}_profiles_{i}"] = p
            arrays[f"{v}_freq_{i}"] = g.freq[v]
        arrays[f"mean2d_{i}"] = g.mean2d
        arrays[f"paths_{i}"] = np.array(g.paths, dtype=str)
        if g.decay is not None:
            arrays[f"decay_{i}"] = g.decay
    target = Path(path)
    with atomic_path(target, suffix=".npz") as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return target


def load_spectra(path: str | os.PathLike[str]) -> SpectraSet:
    """Read a file written by `save_spectra`."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: spectra file not found")
    try:
        with np.load(p, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            groups = []
            for i, name in enumerate(meta["groups"]):
                profs = {v: np.array(data[f"{v}_profiles_{i}"]) for v in meta["variants"]}
                freq = {v: np.array(data[f"{v}_freq_{i}"]) for v in meta["variants"]}
                decay = np.array(data[f"decay_{i}"]) if f"decay_{i}" in data.files else None
                groups.append(
                    GroupSpectra(
                        name, [str(s) for s in data[f"paths_{i}"]], profs, freq,
                        np.array(data[f"mean2d_{i}"]), decay,
                        dict(meta.get("group_info", {}).get(name, {})),
                    )
                )
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise InputError(f"{p}: not a spectra file written by `spectrum compute` ({exc})") from None
    return SpectraSet(groups, meta)
