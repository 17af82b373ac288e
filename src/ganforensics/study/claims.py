"""How the report words a detector's result on a setup: from the AP interval, never the point.

`CLAIM_RULE` holds the two bars; `claim(ap_lo, ap_hi)` applies them. The report's sentences
("cnn catches BASELINE ...") and its claims table use nothing else, so the wording changes in
one place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ganforensics.study.report_html import fmt


@dataclass(frozen=True)
class ClaimRule:
    """Bars on average precision (AP) for wording a detector's result on one setup."""

    catch_ap: float
    miss_ap: float


CLAIM_RULE = ClaimRule(catch_ap=0.90, miss_ap=0.70)
"""A detector *catches* a setup when the lower end of the AP's 95 % bootstrap interval is at
least `catch_ap` (0.90); it *misses* it when the upper end is below `miss_ap` (0.70, closer to
the chance AP, the share of fakes in the test set, than to a working detector); *partly* when
the whole interval lies between the bars; *uncertain* when the interval straddles a bar (the
test set cannot tell), or when no interval was computed."""

CLAIMS = ("catches", "partly", "misses", "uncertain")


def _number(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out


def claim(ap_lo: Any, ap_hi: Any, rule: ClaimRule = CLAIM_RULE) -> str:
    """One of `CLAIMS` for an AP interval [ap_lo, ap_hi] (None or NaN ends: "uncertain")."""
    lo, hi = _number(ap_lo), _number(ap_hi)
    if math.isnan(lo) or math.isnan(hi):
        return "uncertain"
    if lo >= rule.catch_ap:
        return "catches"
    if hi < rule.miss_ap:
        return "misses"
    if lo >= rule.miss_ap and hi < rule.catch_ap:
        return "partly"
    return "uncertain"


def _like(x: float, value: Any) -> str:
    """`x` with as many decimals as `fmt` gives `value` (a spread or interval end beside it)."""
    v = abs(_number(value))
    if math.isnan(v) or (v != 0 and v < 0.01):
        return fmt(x)
    return f"{x:.1f}" if v >= 100 else f"{x:.3f}"


def with_interval(value: Any, lo: Any, hi: Any) -> str:
    """`0.960 [0.930, 0.980]`; the value alone when an end is missing."""
    if math.isnan(_number(lo)) or math.isnan(_number(hi)):
        return fmt(value)
    return f"{fmt(value)} [{_like(_number(lo), value)}, {_like(_number(hi), value)}]"


def with_spread(value: Any, sd: Any) -> str:
    """`123.4 ± 5.6`; the value alone when the spread is missing; a spread at round-off level
    (equal values differing in the last bits) as 0."""
    spread = _number(sd)
    if math.isnan(spread):
        return fmt(value)
    if abs(spread) < 1e-12 * max(1.0, abs(_number(value))):
        spread = 0.0
    return f"{fmt(value)} ± {_like(spread, value)}"


def rule_text(rule: ClaimRule = CLAIM_RULE) -> str:
    """The rule in words, for captions."""
    return (f"'catches' = the AP interval's lower end is at least {rule.catch_ap:.2f}; "
            f"'misses' = its upper end is below {rule.miss_ap:.2f}; 'partly' = the interval "
            f"lies between the two; 'uncertain' = it straddles a bar")


LS_KD = "'LS teacher + T = 1'"


def _cell_name(row: Any) -> str:
    return f"α = {float(row['alpha']):g}, {row['model']}"


def lskd_verdict(cells: Any, what: str, metric: str = "student accuracy") -> str:
    """Whether a label-smoothed teacher's student at T = 1 wins, worded from the spreads only.

    `cells`: one row per student (teachers left out) with `alpha`, `model` (`T=<T>`),
    `value`, `lo`, `hi` (the ends of its interval, or mean ∓ sd across seeds) and `text` (the
    value as shown). `what` names the spread ("95 % interval", "mean ± sd range"). The LS cell
    is the best of those with alpha > 0 at T = 1; it *wins* when it has the highest value and
    its range lies wholly above every other cell's; otherwise the sentence says which cells it
    cannot be told apart from, or which cell beats it. A missing end (no interval, one seed)
    never separates."""
    rows = [r for _, r in cells.iterrows()] if hasattr(cells, "iterrows") else list(cells)
    ls = [r for r in rows if float(r["alpha"]) > 0 and r["model"] == "T=1"]
    if not ls or len(rows) < 2:
        return (f"This grid has no label-smoothed teacher (alpha > 0) with a student at T = 1 "
                f"and another cell to compare, so it cannot say whether {LS_KD} wins.")
    target = max(ls, key=lambda r: float(r["value"]))
    others = [r for r in rows if r is not target]
    best = max(others, key=lambda r: float(r["value"]))
    name = _cell_name(target)
    if float(target["value"]) >= float(best["value"]):
        lo = _number(target["lo"])
        tied = [r for r in others if math.isnan(lo) or not _number(r["hi"]) < lo]
        if not tied:
            return (f"{LS_KD} wins here: {name} has the highest {metric}, {target['text']}, "
                    f"and its {what} lies above those of all {len(others)} other cells.")
        return (f"{LS_KD} ({name}) has the highest {metric}, {target['text']}, but its {what} "
                f"overlaps those of {len(tied)} of the {len(others)} other cells (closest: "
                f"{_cell_name(best)}, {best['text']}), so this run cannot tell it apart from "
                f"them: it does not show that {LS_KD} wins.")
    apart = _number(best["lo"]) > _number(target["hi"])  # False with a NaN end
    return (f"{LS_KD} does not win here: {_cell_name(best)} has the highest {metric}, "
            f"{best['text']}, against {target['text']} for {name}; "
            + (f"their {what}s do not overlap." if apart else
               f"their {what}s overlap, so the two cannot be told apart."))
