"""What every study stage shares: the run folder with the resolved config, and the data sets
(real patches, each setup's fakes, the detectors' train / val / test sets) read from it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ganforensics.data.manifest import MANIFEST_COLUMNS, read_manifest, split_of
from ganforensics.errors import InputError
from ganforensics.io.loading import load_images
from ganforensics.io.runs import RunFolder
from ganforensics.seeding import derive_seed
from ganforensics.study.setups import study_setups, train_setups

SPLITS = ("train", "val", "test")
# detector kind -> its key under `detectors:` in the config
DETECTOR_KEYS = {"spectral-decay": "spectral_decay", "spectral-profile": "spectral_profile",
                 "cnn": "cnn", "npr": "npr", "one-class": "one_class"}
ONE_CLASS = "one-class"
"""Trained on reals only: one detector, on the first training setup's row of the tables."""
SPECTRAL_KINDS = ("spectral-decay", "spectral-profile")
CNN_KINDS = ("cnn", "npr")
"""Kinds trained with `train_cnn_detector` (`npr`: NPR, Tan et al. 2024; off by default)."""


@dataclass
class StudyContext:
    """What every stage gets: the run folder and the resolved config."""

    run: RunFolder
    cfg: dict[str, Any]

    @property
    def path(self) -> Path:
        return self.run.path

    @property
    def seed(self) -> int:
        return int(self.cfg["seed"])

    def setups(self) -> list[dict[str, Any]]:
        """Every setup whose fakes are measured (both arms: `setups.study_setups`)."""
        return study_setups(self.cfg)

    def train_setups(self) -> list[str]:
        """The detectors' training setups (`setups.train_setups`; the first feeds bypass,
        robustness, grayscale and explain)."""
        return train_setups(self.cfg)

    def fake_train_setups(self) -> list[str]:
        """The setups that get train / val fakes (`fake_train_setups`)."""
        return fake_train_setups(self.cfg)

    def real_manifest(self) -> pd.DataFrame:
        return read_manifest(self.path / "data" / "real.csv")

    def fake_manifest(self, setup: str) -> pd.DataFrame:
        return read_manifest(self.path / "fakes" / setup / "manifest.csv")

    def detector_dir(self, name: str) -> Path:
        return self.path / "detectors" / name

    def enabled_detectors(self) -> list[str]:
        return enabled_detectors(self.cfg)


def lskd_enabled(cfg: dict[str, Any]) -> bool:
    """True when the config turns the `lskd` stage (attribution over every setup) on."""
    return bool(cfg["detectors"]["lskd"]["enabled"])


def fake_train_setups(cfg: dict[str, Any]) -> list[str]:
    """The setups whose train / val fakes the study uses: the detectors' training setups, and
    with `detectors.lskd` on every setup (its attribution classes), in study order."""
    trains = train_setups(cfg)
    if not lskd_enabled(cfg):
        return trains
    return list(dict.fromkeys([*trains, *(s["name"] for s in study_setups(cfg))]))


def detector_id(kind: str, train_setup: str, cfg: dict[str, Any]) -> str:
    """Folder / stage name of a detector kind trained on `train_setup`: the kind alone for the
    first training setup (`detectors/cnn/`), `<kind>@<setup>` for the others."""
    return kind if train_setup == train_setups(cfg)[0] else f"{kind}@{train_setup}"


def enabled_detectors(cfg: dict[str, Any]) -> list[str]:
    """The detector kinds the config enables, in `DETECTOR_KEYS` order."""
    det = cfg["detectors"]
    return [name for name, key in DETECTOR_KEYS.items() if det[key]["enabled"]]


def detector_runs(cfg: dict[str, Any]) -> list[tuple[str, str]]:
    """(training setup, kind) of every detector the study trains: each enabled kind per
    training setup, except the one-class kind (no fakes to vary), trained once."""
    trains = train_setups(cfg)
    return [(ts, kind) for ts in trains for kind in enabled_detectors(cfg)
            if kind != ONE_CLASS or ts == trains[0]]


def decode(df: pd.DataFrame, what: str) -> tuple[list[np.ndarray], pd.DataFrame]:
    """Decoded images of manifest rows and the rows they belong to (unreadable rows dropped,
    with one summary warning); `InputError` if none decodes."""
    loaded = load_images(df, what=what)
    if not loaded.images:
        raise InputError(f"{what}: no readable images")
    return loaded.images, loaded.rows(df)


def decode_stack(df: pd.DataFrame, what: str) -> np.ndarray:
    """The images of manifest rows as one (N, H, W, 3) uint8 stack (bad files skipped)."""
    images, _ = decode(df, what)
    shapes = {a.shape for a in images}
    if len(shapes) > 1:
        raise InputError(f"{what}: images differ in size ({sorted(shapes)[:3]} ...)")
    return np.stack(images)


def subsample(df: pd.DataFrame, cap: int | None, seed: int) -> pd.DataFrame:
    """At most `cap` rows, keeping each split's share (deterministic)."""
    if cap is None or len(df) <= cap:
        return df
    parts = []
    for split, part in df.groupby("split", sort=True):
        k = max(1, round(cap * len(part) / len(df)))
        state = derive_seed(seed, split) % 2**32
        parts.append(part.sample(n=min(k, len(part)), random_state=state))
    return pd.concat(parts).sort_index()


def _common(frames: list[pd.DataFrame], extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """Reals and fakes in one frame with the manifest columns (and `extra`) only; missing text
    cells as ""."""
    cols = [*MANIFEST_COLUMNS, "abspath", *extra]
    df = pd.concat([f.reindex(columns=cols) for f in frames], ignore_index=True)
    for c in cols:
        if c not in ("label", "width", "height"):
            df[c] = df[c].astype(object).where(df[c].notna(), "").astype(str)
    df["label"] = df["label"].astype(int)
    return df


def study_test_set(ctx: StudyContext, *, with_source: bool = False) -> pd.DataFrame:
    """Test reals + the test fakes of every setup (the evaluation set of every detector);
    `with_source` keeps the simulated fakes' `source_path` ("" for the others)."""
    frames = [split_of(ctx.real_manifest(), "test")]
    frames += [split_of(ctx.fake_manifest(s["name"]), "test") for s in ctx.setups()]
    return _common(frames, ("source_path",) if with_source else ())


def train_val_sets(ctx: StudyContext, train_setup: str | None = None
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train / val sets of the detectors: reals + the training setup's fakes of that split
    (`train_setup`, by default the first of the detectors' training setups)."""
    real = ctx.real_manifest()
    fake = ctx.fake_manifest(train_setup or ctx.train_setups()[0])
    train = _common([split_of(real, "train"), split_of(fake, "train")])
    val = _common([split_of(real, "val"), split_of(fake, "val")])
    return train, val


def checked(table: pd.DataFrame, columns: tuple[str, ...], what: str) -> pd.DataFrame:
    """`table` unchanged if its columns are exactly `columns` (in order), else `ValueError`:
    a renamed column fails the stage instead of silently emptying a report section."""
    if tuple(table.columns) != columns:
        raise ValueError(f"{what}: columns {list(table.columns)} differ from the expected "
                         f"{list(columns)}")
    return table
