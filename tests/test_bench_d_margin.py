"""bench/d_margin.py: D's margin per window of a run's losses.csv."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest


@pytest.fixture(scope="module")
def bench(load_bench) -> ModuleType:  # type: ignore[no-untyped-def]
    return load_bench("d_margin")


def _run(folder: Path, margin_of_step) -> Path:
    steps = list(range(1, 11))
    folder.mkdir(parents=True)
    pd.DataFrame({"step": steps, "d_loss": 1.0, "g_loss": 1.0, "gp": 0.0,
                  "d_real": [margin_of_step(s) + 0.5 for s in steps], "d_fake": 0.5,
                  "seconds": steps}).to_csv(folder / "losses.csv", index=False)
    return folder


def test_margins_are_window_means_with_a_partial_last_window(bench, tmp_path) -> None:
    run = _run(tmp_path / "a", lambda s: float(s))
    m = bench.margins(run / "losses.csv", 4)
    assert list(m.index) == [4, 8, 10]
    assert m.tolist() == pytest.approx([2.5, 6.5, 9.5])  # (1..4), (5..8), (9, 10)


def test_table_has_a_row_per_run_and_a_blank_where_a_run_is_shorter(bench, tmp_path) -> None:
    long_ = _run(tmp_path / "long", lambda s: 1.0)
    short = tmp_path / "short"
    short.mkdir()
    pd.read_csv(long_ / "losses.csv").head(5).to_csv(short / "losses.csv", index=False)
    out = bench.table([long_, short], 5).splitlines()
    assert out[0] == "| run | to 5 | to 10 |"
    assert out[2].endswith("| 1.00 | 1.00 |") and out[3].endswith("| 1.00 |  |")


def test_a_file_that_is_not_a_gan_log_is_named(bench, tmp_path, capsys) -> None:
    bad = tmp_path / "losses.csv"
    bad.write_text("step,loss\n1,0.3\n")
    assert bench.main([str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "d_real" in err
