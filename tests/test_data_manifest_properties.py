"""Property tests of the manifest reader: whatever the CSV cells (or the file's bytes) hold,
`read_manifest` gives a DataFrame with the documented columns or an `InputError` naming the
file, never another exception."""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ganforensics.data.manifest import MANIFEST_COLUMNS, read_manifest
from ganforensics.errors import InputError

SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
COLUMNS = ["path", "label", "generator", "source", "split", "sha256", "width", "height",
           "format", "error", "group", "seed"]
cell = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "0", "1", "0.0", "1.0", " 1 ", "2", "-1", "nan", "NA", "None",
                     "real", "fake", "train", "a/b.png", "../x.png", "1e0", "inf"]),
    st.integers(-3, 3).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)


@st.composite
def tables(draw: st.DrawFn) -> list[list[str]]:
    """A header (usually with `path` and `label`, in any order, maybe repeated) and rows."""
    header = draw(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=6))
    if draw(st.booleans()):
        header = ["path", "label", *header]
    width = len(header)
    rows = draw(st.lists(st.lists(cell, min_size=width, max_size=width), max_size=6))
    return [header, *rows]


def _check(path: Path) -> None:
    try:
        df = read_manifest(path)
    except InputError as exc:
        assert str(exc).startswith(f"{path}: "), str(exc)
        return
    assert isinstance(df, pd.DataFrame)
    assert set(MANIFEST_COLUMNS) | {"abspath"} <= set(df.columns)
    labels = df["label"].dropna()
    assert labels.isin([0, 1]).all()
    assert all(Path(a).is_absolute() for a in df["abspath"])


@SETTINGS
@given(table=tables())
def test_arbitrary_cells_read_or_name_the_file(table: list[list[str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.csv"
        with open(path, "w", newline="", encoding="utf-8", errors="surrogatepass") as f:
            csv.writer(f).writerows(table)
        _check(path)


@SETTINGS
@given(data=st.binary(max_size=512))
def test_arbitrary_bytes_read_or_name_the_file(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.csv"
        path.write_bytes(b"path,label\n" + data)
        _check(path)


def test_blank_path_names_the_file_and_row(tmp_path: Path) -> None:
    """Found by the cell test: a blank `path` cell crashed with TypeError (pandas 3 keeps it
    missing where older pandas gave the string 'nan')."""
    path = tmp_path / "m.csv"
    path.write_text("path,label\na.png,0\n,1\n")
    with pytest.raises(InputError) as exc:
        read_manifest(path)
    assert str(exc.value) == f"{path}: column 'path' is empty in row 3"
