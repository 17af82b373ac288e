"""The study's explanation stage: FF-RS ranking, feature-map masking and colour-conditional
maps of the CNN detector."""

from __future__ import annotations

from typing import Any

from ganforensics.explain.color import color_report
from ganforensics.explain.ffrs import RANKING_COLUMNS, NoConfidentFakesError, compute_ffrs
from ganforensics.explain.masking import masking_report
from ganforensics.explain.scores import METRIC_COLUMNS
from ganforensics.seeding import derive_seed
from ganforensics.study.context import (
    StudyContext,
    checked,
    decode,
    study_test_set,
    train_val_sets,
)
from ganforensics.study.detector_stages import load_study_detector
from ganforensics.study.stages import NOT_APPLICABLE

MASKING_TABLE = "tables/masking.csv"
MASKING_COLUMNS = ("condition", "generator", "n_real", "n_fake", *METRIC_COLUMNS, "ap_std", "k",
                   "draws", "seed", "position")
RANKING_TABLE = "tables/ffrs_ranking.csv"
COLOUR_MAPS_TABLE = "tables/colour_maps.csv"
COLOUR_MAPS_COLUMNS = ("key", "layer", "channel", "rank", "median_rgb", "median_gray",
                       "p_value", "colour_conditional")
EXPLAIN_SUMMARY = "tables/explain_summary.json"


def stage_explain(ctx: StudyContext) -> dict[str, Any]:
    """FF-RS ranking on confidently detected validation fakes, then top-k / low-k / random-k
    masking on the test set, and the colour-conditional share of the top-k maps. When the
    detector detects no validation fake confidently, the stage ends without tables and its
    marker says why (`not_applicable`), which the report shows in place of the section."""
    e = ctx.cfg["explain"]
    det = load_study_detector(ctx, "cnn")
    _, val = train_val_sets(ctx)
    fakes, _ = decode(val[val["label"] == 1], "validation fakes")
    try:
        res = compute_ffrs(det, fakes, k=e["top_k"], max_samples=e["n_samples"],
                           seed=derive_seed(ctx.seed, "ffrs") % 2**31)
    except NoConfidentFakesError as exc:  # a finding about the detector, not a failure
        reason = f"the cnn detector gives FF-RS nothing to explain: {exc}"
        ctx.run.write_json(EXPLAIN_SUMMARY, {NOT_APPLICABLE: reason})
        return {NOT_APPLICABLE: reason}
    ctx.run.write_csv(RANKING_TABLE, checked(res.ranking, RANKING_COLUMNS, RANKING_TABLE))
    images, rows = decode(study_test_set(ctx), "test set")
    labels = rows["label"].astype(int).to_numpy()
    gens = rows["generator"].astype(str).to_numpy()
    table = masking_report(det, res.ranking, res.k, images, labels, gens,
                           draws=e["random_draws"], seed=derive_seed(ctx.seed, "mask") % 2**31)
    ctx.run.write_csv(MASKING_TABLE, checked(table, MASKING_COLUMNS, MASKING_TABLE))
    col = color_report(det, images, labels, gens, ranking=res.ranking, k=res.k)
    ctx.run.write_csv(COLOUR_MAPS_TABLE, checked(col.maps, COLOUR_MAPS_COLUMNS,
                                                 COLOUR_MAPS_TABLE))
    summary = {"ffrs": res.summary(), "colour": col.summary()}
    ctx.run.write_json(EXPLAIN_SUMMARY, summary)
    return {"file": MASKING_TABLE, "k": res.k, "n_samples": res.n_samples,
            "share_colour_conditional": col.share_colour_conditional}
