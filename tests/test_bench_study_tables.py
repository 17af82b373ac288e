"""bench/study_tables.py: the markdown tables the docs quote, read from a run folder's tables."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest


@pytest.fixture(scope="module")
def bench(load_bench) -> ModuleType:  # type: ignore[no-untyped-def]
    return load_bench("study_tables")


def _run(tmp_path: Path) -> Path:
    """A run folder with a detection table (two detectors, two generators and the pooled row)
    and two finished stages."""
    run = tmp_path / "run"
    (run / "tables").mkdir(parents=True)
    (run / "stages").mkdir()
    (run / "results.json").write_text("{}")
    pd.DataFrame({
        "train_setup": ["BASELINE"] * 3 + ["sim-BASELINE"] * 2,
        "detector": ["cnn"] * 3 + ["cnn"] * 2,
        "generator": ["BASELINE", "sim-BASELINE", "mean", "sim-BASELINE", "BASELINE"],
        "ap": [0.999, 0.614, 0.8, 0.972, 0.881],
        "ap_lo": [0.998, 0.564, 0.7, 0.957, 0.859],
        "ap_hi": [1.0, 0.665, 0.9, 0.985, 0.903],
    }).to_csv(run / "tables" / "detection.csv", index=False)
    for name, seconds in [("patches", 1.5), ("quality", 188.9)]:
        (run / "stages" / f"{name}.done").write_text(json.dumps({"seconds": seconds}))
    return run


def test_transfer_grid_has_one_row_per_detector_and_its_intervals(bench, tmp_path) -> None:
    grid = bench.transfer_table(_run(tmp_path))
    assert list(grid.columns) == ["trained on", "detector", "BASELINE", "sim-BASELINE"]
    by = grid.set_index("trained on")
    assert by.at["sim-BASELINE", "BASELINE"] == "0.881 [0.859, 0.903]"  # its own order kept
    assert by.at["BASELINE", "sim-BASELINE"] == "0.614 [0.564, 0.665]"


def test_missing_tables_are_skipped_and_named(bench, tmp_path, capsys) -> None:
    assert bench.main([str(_run(tmp_path)), "--only", "quality", "transfer", "stages"]) == 0
    out, err = capsys.readouterr()
    assert "quality: skipped, tables/quality.csv is missing" in err
    assert "### transfer" in out and "### quality" not in out
    assert "| sum of the stages | 190.4 |" in out


def test_a_folder_without_results_is_refused(bench, tmp_path, capsys) -> None:
    assert bench.main([str(tmp_path)]) == 2
    assert "not a study run folder" in capsys.readouterr().err
