"""`demo --quick` beside a CPU-bound neighbour: the default thread count against --threads 1.

    python bench/threads_under_load.py [--neighbour-threads 2] [--quiet-too]

A neighbour process (a torch matmul loop, like another user's training job) runs for the whole
measurement. Each configuration runs the quick demo in a fresh folder; wall time and CPU seconds
(user + system of the child) are printed, and the ratio of the two wall times.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NEIGHBOUR = """
import sys, torch
torch.set_num_threads(int(sys.argv[1]))
a = torch.randn(1024, 1024)
while True:
    a = (a @ a).tanh_()
"""


def run_demo(out: Path, threads: int | None) -> tuple[float, float]:
    """Wall and CPU seconds of one `demo --quick` (exit status checked)."""
    cmd = [sys.executable, "-m", "ganforensics"]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    cmd += ["demo", "--quick", "--out", str(out)]
    env = {**os.environ, "GANFORENSICS_PROGRESS": "0"}
    env.pop("GANFORENSICS_THREADS", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=1800)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(label: str, threads: int | None, work: Path) -> tuple[float, float]:
    out = work / f"demo-{label.replace(' ', '-')}"
    shutil.rmtree(out, ignore_errors=True)
    wall, cpu = run_demo(out, threads)
    print(f"{label:>34}: wall {wall:7.1f} s   CPU {cpu:7.1f} s", flush=True)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neighbour-threads", type=int, default=2)
    ap.add_argument("--quiet-too", action="store_true", help="also time both without neighbour")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="threads-bench-"))
    print(f"cores available: {len(os.sched_getaffinity(0))}; work folder {work}", flush=True)
    if args.quiet_too:
        measure("quiet, default threads", None, work)
        measure("quiet, --threads 1", 1, work)
    neighbour = subprocess.Popen([sys.executable, "-c", NEIGHBOUR, str(args.neighbour_threads)])
    try:
        time.sleep(3)  # let the neighbour start spinning
        busy_default, _ = measure(f"busy ({args.neighbour_threads}-thread neighbour), default",
                                  None, work)
        busy_one, _ = measure(f"busy ({args.neighbour_threads}-thread neighbour), 1 thread",
                              1, work)
    finally:
        neighbour.kill()
        neighbour.wait(timeout=30)
    print(f"busy: default / 1 thread wall-time ratio = {busy_default / busy_one:.2f}x")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
