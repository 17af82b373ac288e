"""A tiny resumable stage runner over a `RunFolder`.

A `Stage` is a named function of a context returning a small JSON-able dict (stored in the stage
marker `stages/<name>.done`). `run_stages` skips stages whose marker exists, runs the others in
order, records failures (with the traceback in `logs/<stage>.log`) and skips the stages that
need a failed one; it never invents results for a stage that did not run.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ganforensics.console import info
from ganforensics.io.runs import RunFolder

NOT_APPLICABLE = "not_applicable"
"""Key of a finished stage's marker info when the stage had nothing to compute (its value says
why, e.g. no fake detected confidently enough to explain); the report shows it in place of the
section's tables."""


@dataclass
class Stage:
    """One step of a pipeline."""

    name: str
    run: Callable[[Any], Mapping[str, Any] | None]
    needs: tuple[str, ...] = ()
    title: str = ""


@dataclass
class StageResult:
    """What happened to one stage in one invocation."""

    name: str
    status: str  # "done" (ran now), "cached" (finished earlier), "failed", "skipped"
    seconds: float = 0.0
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


def stage_info(run: RunFolder, name: str) -> dict[str, Any]:
    """The info dict stored in a finished stage's marker ({} if absent or unreadable)."""
    p = run.path / "stages" / f"{name}.done"
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def run_stages(
    run: RunFolder,
    stages: Iterable[Stage],
    ctx: Any,
    *,
    stop_after: str | None = None,
) -> list[StageResult]:
    """Run `stages` in order, skipping finished ones; return what happened to each.

    `KeyboardInterrupt` propagates (finished stages keep their markers, so a rerun resumes).
    Any other exception marks the stage failed and every stage that needs it skipped.
    """
    stage_list = list(stages)
    results: list[StageResult] = []
    bad: set[str] = set()
    total = len(stage_list)
    for i, st in enumerate(stage_list, 1):
        label = f"[{i}/{total}] {st.name}"
        blocked = [d for d in st.needs if d in bad]
        if blocked:
            bad.add(st.name)
            results.append(StageResult(st.name, "skipped",
                                       error=f"needs failed stage(s): {', '.join(blocked)}"))
            info(f"{label}: skipped (needs {', '.join(blocked)})")
        elif run.stage_done(st.name):
            results.append(StageResult(st.name, "cached", info=stage_info(run, st.name)))
            info(f"{label}: already done, skipped")
        else:
            info(f"{label}: {st.title or 'running'} ...")
            t0 = time.perf_counter()
            try:
                out = dict(st.run(ctx) or {})
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001 - recorded, reported, dependents skipped
                secs = time.perf_counter() - t0
                msg = f"{type(exc).__name__}: {exc}".splitlines()[0]
                run.write_text(f"logs/{st.name.replace(':', '_')}.log", traceback.format_exc())
                bad.add(st.name)
                results.append(StageResult(st.name, "failed", secs, error=msg))
                info(f"{label}: failed after {secs:.1f} s: {msg}")
            else:
                secs = time.perf_counter() - t0
                out.setdefault("seconds", round(secs, 2))
                run.mark_stage_done(st.name, out)
                results.append(StageResult(st.name, "done", secs, info=out))
                why = f" (not applicable: {out[NOT_APPLICABLE]})" if NOT_APPLICABLE in out else ""
                info(f"{label}: done in {secs:.1f} s{why}")
        if stop_after is not None and st.name == stop_after:
            break
    return results
