"""Keep an unfinished `bench/gan_quality.py` run between sessions: its resumable state, copied.

Copies what the run needs to go on step for step, and nothing else: WORK's `quality.jsonl`,
`run/config.yaml`, `run/env.json`, `run/losses.csv`, `run/moves.json` (when the run
changed device or arithmetic on a resume) and the newest complete checkpoint folder
(weights, Adam states, RNG states; found by the trainer's own `latest_checkpoint`) with its
`latest.json`, into DEST (default `bench/zoo/resume/NAME`). The copy is written beside DEST
and renamed over it, so an earlier copy survives a copy that fails. Sample grids and older
checkpoints stay behind.

    python bench/zoo/save_resume.py W-B.1.5 B.1.5
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from ganforensics.gan.checkpoint import latest_checkpoint

RESUME_ROOT = Path(__file__).resolve().parent / "resume"
RUN_FILES = ("config.yaml", "env.json", "losses.csv")
OPTIONAL_RUN_FILES = ("moves.json",)


def save_resume(work: Path, dest: Path) -> int:
    """Copy WORK's resumable state to `dest` (replacing it); the checkpoint's step."""
    ckpt_root = work / "run" / "checkpoints"
    step_dir = latest_checkpoint(ckpt_root) if ckpt_root.is_dir() else None
    if step_dir is None:
        raise SystemExit(f"save_resume.py: {ckpt_root}: no checkpoint (not a gan_quality.py run?)")
    step = int(step_dir.name.split("-")[-1])
    needed = [work / "quality.jsonl", *(work / "run" / f for f in RUN_FILES)]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        raise SystemExit(f"save_resume.py: missing from the run: {', '.join(missing)}")
    tmp = dest.with_name(dest.name + ".new")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "run" / "checkpoints").mkdir(parents=True)
    shutil.copy2(work / "quality.jsonl", tmp)
    for name in RUN_FILES:
        shutil.copy2(work / "run" / name, tmp / "run")
    for name in OPTIONAL_RUN_FILES:
        if (work / "run" / name).exists():
            shutil.copy2(work / "run" / name, tmp / "run")
    (tmp / "run" / "checkpoints" / "latest.json").write_text(
        json.dumps({"step": step, "dir": step_dir.name}, indent=2) + "\n")
    shutil.copytree(step_dir, tmp / "run" / "checkpoints" / step_dir.name)
    old = dest.with_name(dest.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    tmp.rename(dest)
    shutil.rmtree(old, ignore_errors=True)
    return step


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("work", type=Path, help="the run's --work folder")
    ap.add_argument("name", help="the copy's name under bench/zoo/resume/ (e.g. B.1.5)")
    ap.add_argument("--dest-root", type=Path, default=RESUME_ROOT,
                    help="where the copy goes instead of bench/zoo/resume/")
    args = ap.parse_args(argv)
    step = save_resume(args.work, args.dest_root / args.name)
    print(json.dumps({"saved": str(args.dest_root / args.name), "step": step}))


if __name__ == "__main__":
    main(sys.argv[1:])
