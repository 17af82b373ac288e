"""The report's wording of detection results from AP intervals (`study.claims`), on
constructed tables: both sides of each bar."""

from __future__ import annotations

import math

import pytest

from ganforensics.study.claims import CLAIM_RULE, claim, with_interval, with_spread
from ganforensics.study.config import load_config
from ganforensics.study.detector_stages import DETECTION_TABLE
from ganforensics.study.report_sections import detection_numbers

CATCH, MISS = CLAIM_RULE.catch_ap, CLAIM_RULE.miss_ap
EPS = 1e-6


@pytest.mark.parametrize(("lo", "hi", "expected"), [
    (CATCH, 1.0, "catches"),                    # lower end on the catch bar
    (CATCH - EPS, 1.0, "uncertain"),            # just below it, upper end above
    (CATCH - 0.05, CATCH - EPS, "partly"),      # whole interval between the bars
    (MISS, CATCH - EPS, "partly"),              # lower end on the miss bar
    (MISS - EPS, CATCH - EPS, "uncertain"),     # straddles the miss bar
    (0.4, MISS - EPS, "misses"),                # upper end just below the miss bar
    (0.4, MISS, "uncertain"),                   # upper end on the miss bar
    (0.5, 1.0, "uncertain"),                    # straddles both bars
    (float("nan"), 1.0, "uncertain"),           # no interval computed
    (None, None, "uncertain"),
])
def test_claim_rule_on_both_sides_of_each_bar(lo, hi, expected) -> None:
    assert claim(lo, hi) == expected


def test_the_bars_are_ordered_and_within_ap_range() -> None:
    assert 0.0 < MISS < CATCH <= 1.0


def test_cells_show_intervals_and_spreads() -> None:
    assert with_interval(0.96, 0.93, 0.98) == "0.960 [0.930, 0.980]"
    assert with_interval(0.96, math.nan, 0.98) == "0.960"
    assert with_spread(123.456, 4.56) == "123.5 ± 4.6"  # the value's decimals
    assert with_spread(0.274, 0.00439) == "0.274 ± 0.004"
    assert with_spread(0.005, 0.001) == "5.00e-03 ± 1.00e-03"
    assert with_spread(1.0, 1.1e-16) == "1.000 ± 0.000"  # round-off spread
    assert with_spread(0.5, None) == "0.500"


def _row(det: str, gen: str, ap: float, lo: float, hi: float) -> dict:
    return {"detector": det, "generator": gen, "ap": ap, "ap_lo": lo, "ap_hi": hi}


def test_key_numbers_word_each_setup_from_its_interval() -> None:
    cfg = load_config({"gan": {"setups": ["BASELINE", "N.1.5", "B.1.5", "Z.1.5"]}},
                      preset="quick")
    rows = {DETECTION_TABLE: [
        _row("cnn", "BASELINE", 0.99, 0.97, 1.0),      # catches
        _row("cnn", "N.1.5", 0.95, 0.89, 0.99),        # high point, but lo < bar: uncertain
        _row("cnn", "B.1.5", 0.60, 0.52, 0.68),        # misses
        _row("cnn", "Z.1.5", 0.80, 0.75, 0.85),        # partly
        _row("cnn", "mean", 0.83, None, None),         # not a setup: not worded
        _row("cnn", "all", 0.83, 0.80, 0.86),
    ]}
    (text,) = detection_numbers(rows, cfg)
    assert text.startswith("cnn: catches BASELINE (training setup) AP 0.990 [0.970, 1.000]")
    assert "partly Z.1.5 AP 0.800 [0.750, 0.850]" in text
    assert "misses B.1.5 AP 0.600 [0.520, 0.680]" in text
    assert "uncertain on N.1.5 AP 0.950 [0.890, 0.990]" in text
    assert "mean" not in text and "all" not in text
    assert text.endswith(f"[{DETECTION_TABLE}].")
