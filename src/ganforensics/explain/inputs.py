"""The images an `explain` command works on: manifests, folders or files, decoded once.

Bad rows follow `io.loading`'s policy: each becomes an error (not an exception), one summary
warning names the first few, and the count comes back so a command can exit 1.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ganforensics.data.importers import collect_inputs
from ganforensics.data.manifest import split_of, usable
from ganforensics.errors import InputError
from ganforensics.io.loading import load_images

UNLABELLED = -1
"""The label of an image whose class is unknown (allowed with `need_labels=False`)."""


@dataclass
class ExplainInputs:
    """Decoded images with their label, generator and path (same order), and the bad count."""

    images: list[np.ndarray]
    labels: np.ndarray
    generators: np.ndarray
    paths: list[str]
    n_bad: int
    """Rows that could not be used (a known error or undecodable), reported in one warning."""


def load_inputs(
    inputs: Sequence[str | os.PathLike[str]],
    split: str | None = None,
    what: str = "inputs",
    *,
    need_labels: bool = True,
) -> ExplainInputs:
    """Decode the images of manifests / folders / files (`data.importers.collect_inputs`).

    `split` keeps only the rows of that split; `what` names the inputs in messages (e.g. the
    option they came from). With `need_labels`, an unlabelled usable row is an `InputError`.
    """
    df = collect_inputs([str(p) for p in inputs])
    if split:
        df = split_of(df, split)
        if df.empty:
            raise InputError(f"{what}: no rows with split {split!r}")
    if need_labels:
        ok = usable(df)
        unknown = ok["label"].isna()
        if unknown.any():
            raise InputError(
                f"{what}: {int(unknown.sum())} image(s) have no label (first: "
                f"{ok.loc[unknown, 'abspath'].iloc[0]}); use a manifest or a labelled layout"
            )
    loaded = load_images(df, what=what)
    rows = loaded.rows(df)
    if not loaded.images:
        raise InputError(f"{what}: no decodable images")
    labels = [UNLABELLED if pd.isna(lab) else int(lab) for lab in rows["label"]]
    return ExplainInputs(
        loaded.images, np.asarray(labels, dtype=int),
        np.asarray([str(g) for g in rows["generator"]]), [str(p) for p in rows["abspath"]],
        loaded.n_bad,
    )
