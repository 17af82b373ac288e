"""Bulk scoring on Ray Data (`predict --engine ray`): the same rows as `predict`, in Parquet
partitions, scored by a pool of actors that each hold the detector.

- The driver lists the inputs (folders and manifests as `predict` does, plus URIs of files that
  pyarrow's file systems read, e.g. `s3://...`, given as arguments or in a `.txt` list), cuts
  them into partitions of `partition_rows` rows and writes a `plan.json`.
- Each partition not yet written goes to Ray Data as one block; `map_batches` with
  `ActorPoolStrategy` runs `Scorer` actors, each with the detector loaded once and scoring
  through `predict_paths` (the one decoding path: bad files become error rows, as locally).
- The driver gathers the rows by partition and writes `part-NNNNN.parquet` atomically when a
  partition is complete, so a rerun with the same `--out` skips finished partitions.
- The actors never hold every CPU of the cluster: one CPU stays free for Ray Data's read tasks
  (with every CPU held, Ray Data stalls on 2-CPU machines: service-and-scale.md, section 3).

Ray is imported only inside `predict_ray` and the actor: without `--engine ray` nothing imports
it. Install with `pip install 'ganforensics[ray]'`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ganforensics.console import info, warn
from ganforensics.detectors.loading import load_detector
from ganforensics.errors import ConfigError, InputError, RunExistsError
from ganforensics.evaluate.predict import (
    DEFAULT_BATCH_SIZE,
    PREDICT_COLUMNS,
    input_paths,
    predict_paths,
)
from ganforensics.io.atomic import atomic_path, write_json_atomic
from ganforensics.threads import apply_threads

DEFAULT_PARTITION_ROWS = 1000
"""Rows per output Parquet file (and per Ray Data block)."""
DEFAULT_CPUS_PER_ACTOR = 1.0
PLAN_FILE = "plan.json"
PART_GLOB = "part-*.parquet"
KEY_COLUMNS = ("part", "row")


def part_name(k: int) -> str:
    """The file name of partition `k`."""
    return f"part-{k:05d}.parquet"


def is_uri(item: str) -> bool:
    """True for `scheme://...` (read through pyarrow's file systems, `file://` included)."""
    return "://" in item


def bulk_inputs(inputs: Sequence[str | os.PathLike[str]]) -> tuple[list[str], list[str | None]]:
    """Paths and known errors: URIs kept as given, `.txt` files read as one path or URI a line,
    everything else expanded as `predict` does (`evaluate.predict.input_paths`)."""
    paths: list[str] = []
    errs: list[str | None] = []
    for item in map(os.fspath, inputs):
        if is_uri(item):
            paths.append(item)
            errs.append(None)
        elif item.lower().endswith(".txt") and Path(item).is_file():
            lines = [ln.strip() for ln in Path(item).read_text().splitlines()]
            sub_paths, sub_errs = bulk_inputs([ln for ln in lines if ln and not ln.startswith("#")])
            paths += sub_paths
            errs += sub_errs
        else:
            sub_paths, sub_errs = input_paths([item])
            paths += sub_paths
            errs += sub_errs
    return paths, errs


def _stage(path: str, folder: str, i: int) -> tuple[str, str | None]:
    """A local path for `path`: itself, or a copy of a URI's bytes in `folder`; or an error."""
    if not is_uri(path):
        return path, None
    from pyarrow import fs as pafs  # Ray Data's own dependency: the file systems Ray reads

    try:
        filesystem, inner = pafs.FileSystem.from_uri(path)
        with filesystem.open_input_stream(inner) as stream:
            data = stream.read()
    except Exception as exc:  # noqa: BLE001 - any remote failure is this row's error
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        return path, f"cannot read: {first}"
    local = os.path.join(folder, f"{i:06d}{Path(inner).suffix}")
    with open(local, "wb") as fh:
        fh.write(data)
    return local, None


class Scorer:
    """A Ray Data actor: the detector (its folder's files, written to a private temp folder and
    loaded once) scoring batches of rows (`part`, `row`, `path`, `error`)."""

    def __init__(self, files: dict[str, bytes], threshold: float | None, batch_size: int,
                 threads: int, device: str = "cpu") -> None:
        apply_threads(threads)
        self._dir = tempfile.mkdtemp(prefix="ganforensics-model-")
        for name, data in files.items():
            Path(self._dir, name).write_bytes(data)
        try:
            self.detector = load_detector(self._dir)  # reads every file into memory
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)
        if device != "cpu" and hasattr(self.detector, "to"):
            self.detector.to(device)
        self.threshold = threshold
        self.batch_size = batch_size

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        with tempfile.TemporaryDirectory(prefix="ganforensics-uris-") as tmp:
            staged = [_stage(p, tmp, i) for i, p in enumerate(batch["path"].astype(str))]
            known = [e or None for e in batch["error"].astype(str)]
            errs = [k or s for k, (_, s) in zip(known, staged, strict=True)]
            table = predict_paths(self.detector, [p for p, _ in staged],
                                  threshold=self.threshold, batch_size=self.batch_size,
                                  workers=1, progress=False, errors=errs)
        table["path"] = batch["path"].to_numpy()
        for col in reversed(KEY_COLUMNS):
            table.insert(0, col, batch[col].to_numpy())
        return table


@dataclass
class BulkResult:
    """What `predict_ray` did: the output folder, partitions computed now and skipped
    (already written), and the totals over every partition."""

    out: Path
    computed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    n_rows: int = 0
    n_errors: int = 0
    n_fake: int = 0


def model_files(model: str | os.PathLike[str], backend: str | None) -> dict[str, bytes]:
    """The detector as the files of a saved folder (name -> bytes), loaded and checked here
    once; with `backend="onnxruntime"` the exported ONNX folder, so actors do not export."""
    det = load_detector(model, backend)
    with tempfile.TemporaryDirectory(prefix="ganforensics-model-") as tmp:
        det.save(tmp)
        return {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()}


def _source_sha256(model: str | os.PathLike[str]) -> str:
    """SHA-256 over the model's own files (a folder's model.* files, or the checkpoint)."""
    p = Path(model)
    folder = p.parent if p.name == "model.json" else p
    files = [folder] if folder.is_file() else sorted(folder.glob("model.*"))
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def _plan(paths: list[str], partition_rows: int, model: str | os.PathLike[str],
          backend: str | None) -> dict[str, Any]:
    digest = hashlib.sha256("\n".join(paths).encode()).hexdigest()
    return {"n_rows": len(paths), "partition_rows": partition_rows, "paths_sha256": digest,
            "model_sha256": _source_sha256(model), "backend": backend or "default",
            "columns": list(PREDICT_COLUMNS)}


def _prepare_out(out: Path, plan: dict[str, Any], force: bool) -> None:
    """Create `out` with `plan.json`; an existing folder must hold the same plan (or --force)."""
    plan_file = out / PLAN_FILE
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: is a file; --engine ray writes a folder of partitions")
    if plan_file.is_file() and not force:
        try:
            old = json.loads(plan_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{plan_file}: unreadable ({exc}); pass --force") from None
        if all(old.get(k) == v for k, v in plan.items() if k != "columns"):
            return  # the same job: keep its finished partitions
        raise RunExistsError(f"{out}: holds partitions of other inputs, model or partition "
                             "size; pass --force to start over")
    if out.exists() and any(out.iterdir()) and not force:
        raise RunExistsError(f"{out}: already exists and is not a bulk output; pass --force")
    out.mkdir(parents=True, exist_ok=True)
    for old_part in out.glob(PART_GLOB):
        old_part.unlink()
    write_json_atomic(plan_file, plan)


def _actor_count(total_cpus: float, cpus_per_actor: float, actors: int | None) -> int:
    """Actors to start, leaving at least one CPU for read tasks."""
    room = total_cpus - 1.0
    if cpus_per_actor <= 0:
        raise ConfigError("--cpus-per-actor must be positive")
    fit = int(np.floor(room / cpus_per_actor + 1e-9))
    if fit < 1:
        raise ConfigError(
            f"--cpus-per-actor {cpus_per_actor:g} leaves no CPU for reading on a cluster of "
            f"{total_cpus:g} CPUs (one stays free); use at most {max(room, 0.5):g}"
        )
    if actors is None:
        return fit
    if actors > fit:
        warn(f"--actors {actors} x {cpus_per_actor:g} CPU would hold every CPU of the "
             f"{total_cpus:g}-CPU cluster; using {fit} (one CPU stays free for reading)")
        return fit
    return actors


def _write_part(out: Path, k: int, frames: list[pd.DataFrame]) -> None:
    table = pd.concat(frames, ignore_index=True).sort_values("row")
    table = table[list(PREDICT_COLUMNS)].reset_index(drop=True)
    # Ray's Arrow round trip can turn an all-NaN float column into objects: fix the types
    table = table.astype({"path": str, "prob_fake": "float64", "logit": "float64",
                          "decision": str, "error": str})
    with atomic_path(out / part_name(k)) as tmp:
        table.to_parquet(tmp, index=False)


def _totals(res: BulkResult) -> BulkResult:
    for f in sorted(res.out.glob(PART_GLOB)):
        cols = pd.read_parquet(f, columns=["decision", "error"])
        res.n_rows += len(cols)
        res.n_errors += int((cols["error"] != "").sum())
        res.n_fake += int((cols["decision"] == "fake").sum())
    return res


def read_bulk(out: str | os.PathLike[str]) -> pd.DataFrame:
    """Every partition of a bulk output folder, in input order (`PREDICT_COLUMNS`)."""
    parts = sorted(Path(out).glob(PART_GLOB))
    if not parts:
        raise InputError(f"{out}: no {PART_GLOB} files")
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)


def predict_ray(
    model: str | os.PathLike[str],
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    address: str | None = None,
    backend: str | None = None,
    threshold: float | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    partition_rows: int = DEFAULT_PARTITION_ROWS,
    actors: int | None = None,
    cpus_per_actor: float = DEFAULT_CPUS_PER_ACTOR,
    gpus_per_actor: float = 0.0,
    force: bool = False,
) -> BulkResult:
    """Score `inputs` with the detector `model` on Ray Data; Parquet partitions in `out`.

    `address`: a running cluster (`auto`, `ray://HOST:PORT`); None joins the cluster this
    process already started, else starts a local one. Partitions already in `out` (same inputs,
    model and `partition_rows`: `plan.json`) are skipped.
    """
    try:
        import ray
    except ImportError:
        raise ConfigError("--engine ray needs Ray: pip install 'ganforensics[ray]'") from None
    if partition_rows < 1:
        raise ConfigError("--partition-rows must be a positive integer")
    paths, errs = bulk_inputs(inputs)
    files = model_files(model, backend)
    res = BulkResult(out=Path(out))
    _prepare_out(res.out, _plan(paths, partition_rows, model, backend), force)
    bounds = [(k, s, min(s + partition_rows, len(paths)))
              for k, s in enumerate(range(0, len(paths), partition_rows))]
    todo = [b for b in bounds if not (res.out / part_name(b[0])).is_file()]
    res.skipped = [b[0] for b in bounds if b not in todo]
    if not todo:
        return _totals(res)
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    try:
        total_cpus = float(ray.cluster_resources().get("CPU", 1.0))
        n_actors = _actor_count(total_cpus, cpus_per_actor, actors)
        info(f"ray: {n_actors} actor(s) x {cpus_per_actor:g} CPU on a {total_cpus:g}-CPU "
             f"cluster; {len(todo)} partition(s) to score, {len(res.skipped)} already done")
        frames = [pd.DataFrame({"part": k, "row": np.arange(s, e), "path": paths[s:e],
                                "error": [x or "" for x in errs[s:e]]}) for k, s, e in todo]
        ray.data.DataContext.get_current().enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # per-stage INFO lines
        ds = ray.data.from_pandas(frames)
        device = "cuda" if gpus_per_actor > 0 else "cpu"
        scored = ds.map_batches(
            Scorer, batch_size=batch_size, batch_format="pandas",
            compute=ray.data.ActorPoolStrategy(size=n_actors),
            num_cpus=cpus_per_actor, num_gpus=gpus_per_actor,
            fn_constructor_kwargs={"files": files, "threshold": threshold,
                                   "batch_size": batch_size,
                                   "threads": max(1, round(cpus_per_actor)), "device": device},
        )
        expected = {k: e - s for k, s, e in todo}
        pending: dict[int, list[pd.DataFrame]] = {k: [] for k in expected}
        got = dict.fromkeys(expected, 0)
        for batch in scored.iter_batches(batch_format="pandas", batch_size=None):
            for k, rows in batch.groupby("part", sort=False):
                k = int(k)
                pending[k].append(rows)
                got[k] += len(rows)
                if got[k] == expected[k]:
                    _write_part(res.out, k, pending.pop(k))
                    res.computed.append(k)
    finally:
        if started:
            ray.shutdown()
    missing = sorted(set(expected) - set(res.computed))
    if missing:
        raise InputError(f"{res.out}: partitions {missing} came back incomplete; rerun to finish")
    return _totals(res)
