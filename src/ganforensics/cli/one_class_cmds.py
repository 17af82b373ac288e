"""`detector one-class-bench`: the digits preset of the one-class detectors (DOPING and its
baselines; `ganforensics.evaluate.one_class_bench`)."""

from __future__ import annotations

import json

import typer

from ganforensics.cli.apps import EXIT_CODES_HELP, detector_app
from ganforensics.console import out
from ganforensics.detectors.doping import DEFAULT_EDGE_QUANTILE, DEFAULT_RATIO, METHODS
from ganforensics.detectors.one_class import DEFAULT_MODEL, MODELS
from ganforensics.errors import ConfigError
from ganforensics.evaluate.one_class_bench import DEFAULT_SEEDS, digits_benchmark, summarise
from ganforensics.seeding import DEFAULT_SEED


def _ints(text: str, what: str) -> list[int]:
    try:
        return [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise ConfigError(f"{what}: expected comma-separated integers, got {text!r}") from None


@detector_app.command(
    "one-class-bench",
    epilog="Example: ganforensics --threads 1 detector one-class-bench --model "
    "isolation-forest --seeds 5 --doping 0.5\n\n" + EXIT_CODES_HELP,
)
def one_class_bench_cmd(
    model: str = typer.Option(DEFAULT_MODEL, "--model", help=f"{', '.join(MODELS)}."),
    normal: str = typer.Option("0,1,2,3,4,5,6,7,8,9", "--normal",
                               help="Normal classes, each run one-vs-rest."),
    seeds: int = typer.Option(DEFAULT_SEEDS, "--seeds", min=1,
                              help="Seeds (splits, AAE, oversampling): SEED, SEED+1, ..."),
    seed: int = typer.Option(DEFAULT_SEED, "--seed", help="First seed."),
    methods: str = typer.Option(",".join(METHODS), "--methods",
                                help=f"Oversampling methods compared: {', '.join(METHODS)}."),
    doping: float = typer.Option(DEFAULT_RATIO, "--doping", min=0.0,
                                 help="RATIO: synthetic vectors added = RATIO x N."),
    edge_quantile: float = typer.Option(DEFAULT_EDGE_QUANTILE, "--edge-quantile",
                                        help="Top-q latent codes by norm are the edge."),
    as_json: bool = typer.Option(False, "--json", help="Print summary and cells as JSON."),
) -> None:
    """One-class detection on scikit-learn's bundled digits: train on one class, the nine
    others are anomalies; AUC per method (none, doping, prior, smote), mean +- sd over seeds
    and the paired difference to no oversampling (docs/detectors.md)."""
    table = digits_benchmark(normal=_ints(normal, "--normal"), seeds=seeds,
                             methods=[m.strip() for m in methods.split(",") if m.strip()],
                             model=model, ratio=doping, edge_quantile=edge_quantile,
                             base_seed=seed)
    summary = summarise(table)
    if as_json:
        out(json.dumps({"summary": summary.to_dict(orient="records"),
                        "cells": table.to_dict(orient="records")}))
    else:
        out(summary.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
