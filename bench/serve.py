"""Bounded load test of `ganforensics serve` on 127.0.0.1 (issue 15).

    python bench/serve.py --models ganforensics-demo --duration 20      # about 2 minutes

For each server mode (micro-batched: --max-batch 16; unbatched: --max-batch 1, one image per
forward pass) it starts the real command in a child process, waits for /readyz, then for each
client count (default 8 and 32) runs that many closed-loop clients for --duration seconds.
Each client holds one keep-alive connection and posts one file per request: a real photo
patch, or with probability --hostile a hostile file from tests/hostile.py (empty, truncated,
not an image, a decompression bomb, an ICO, a text file), which must get a 4xx.

Reported per run: requests answered by status class, 5xx (must be 0), lost requests (no
answer, must be 0), p50 / p95 latency of the scored requests, images scored per second, and
for the server process RSS at start and end plus CPU seconds (user + system) beside wall time.
Last, the ratio of images/s batched over unbatched at each client count. Results go to stdout
as a Markdown table; --json FILE also writes them as JSON.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data as skdata

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from hostile import write_hostile  # noqa: E402  (the tests' hostile files)

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")
MODES = {"batched": 16, "unbatched": 1}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _proc_stats(pid: int) -> tuple[float, float]:
    """(RSS in MiB, user + system CPU seconds) of a process, from /proc."""
    rss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return rss, (int(fields[11]) + int(fields[12])) / ticks


def _payloads(size: int, n: int, seed: int) -> list[tuple[str, bytes]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        img = np.asarray(getattr(skdata, PHOTOS[i % len(PHOTOS)])())[..., :3]
        y, x = rng.integers(0, img.shape[0] - size), rng.integers(0, img.shape[1] - size)
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(img[y:y + size, x:x + size])).save(buf, "PNG")
        out.append((f"photo{i}.png", buf.getvalue()))
    return out


def _hostile() -> list[tuple[str, bytes]]:
    folder = Path(tempfile.mkdtemp(prefix="gf-bench-hostile-"))
    write_hostile(folder)
    return [(p.name, p.read_bytes()) for p in sorted(folder.iterdir())]


def _multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = "gfbench" + os.urandom(6).hex()
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files[]\"; "
            f"filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    return body + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; " \
        f"boundary={boundary}"


def _client(port: int, stop: float, good: list, bad: list, p_bad: float, seed: int,
            out: list) -> None:
    rnd = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    while time.monotonic() < stop:
        hostile = rnd.random() < p_bad
        name, data = rnd.choice(bad if hostile else good)
        body, ctype = _multipart(name, data)
        t0 = time.perf_counter()
        try:
            conn.request("POST", "/v1/detect", body=body, headers={"Content-Type": ctype})
            resp = conn.getresponse()
            payload = resp.read()
            status = resp.status
            scored = json.loads(payload).get("n_scored", 0) if status == 200 else 0
        except (OSError, http.client.HTTPException, ValueError):
            status, scored = 0, 0  # lost: no answer
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        out.append((hostile, status, time.perf_counter() - t0, scored))
    conn.close()


def _wait_ready(port: int, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("server not ready in time")


def run_mode(args: argparse.Namespace, mode: str, good: list, bad: list) -> list[dict]:
    port = _free_port()
    cmd = [sys.executable, "-m", "ganforensics", "--threads", str(args.threads), "serve",
           "--models", str(args.models), "--port", str(port), "--max-batch",
           str(MODES[mode]), "--max-wait-ms", str(args.max_wait_ms), "--queue-size", "256"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "GANFORENSICS_PROGRESS": "0"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    rows = []
    try:
        _wait_ready(port, proc)
        rss0, cpu0 = _proc_stats(proc.pid)
        for clients in args.clients:
            rss_a, cpu_a = _proc_stats(proc.pid)
            results: list = []
            t0 = time.monotonic()
            stop = t0 + args.duration
            threads = [threading.Thread(target=_client, args=(port, stop, good, bad,
                                                             args.hostile, 1000 * clients + i,
                                                             results))
                       for i in range(clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.monotonic() - t0
            rss_b, cpu_b = _proc_stats(proc.pid)
            lat = np.array([r[2] for r in results if not r[0] and r[1] == 200]) * 1000
            rows.append({
                "mode": mode, "max_batch": MODES[mode], "clients": clients,
                "wall_s": round(wall, 1), "requests": len(results),
                "ok_200": sum(r[1] == 200 for r in results),
                "4xx": sum(400 <= r[1] < 500 for r in results),
                "hostile_sent": sum(r[0] for r in results),
                "hostile_not_4xx": sum(r[0] and not 400 <= r[1] < 500 for r in results),
                "5xx": sum(r[1] >= 500 for r in results),
                "lost": sum(r[1] == 0 for r in results),
                "p50_ms": round(float(np.percentile(lat, 50)), 1) if len(lat) else None,
                "p95_ms": round(float(np.percentile(lat, 95)), 1) if len(lat) else None,
                "images_per_s": round(sum(r[3] for r in results) / wall, 2),
                "server_cpu_s": round(cpu_b - cpu_a, 1),
                "rss_start_mib": round(rss_a, 1), "rss_end_mib": round(rss_b, 1),
            })
            print(json.dumps(rows[-1]), file=sys.stderr)
        rss1, cpu1 = _proc_stats(proc.pid)
        print(f"{mode}: server RSS {rss0:.0f} -> {rss1:.0f} MiB over the run, "
              f"CPU {cpu1 - cpu0:.1f} s", file=sys.stderr)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=Path, default=Path("ganforensics-demo"),
                    help="what `serve --models` gets (default: the demo run here)")
    ap.add_argument("--clients", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--duration", type=float, default=60.0, help="seconds per client count")
    ap.add_argument("--hostile", type=float, default=0.1, help="share of hostile uploads")
    ap.add_argument("--size", type=int, default=64, help="side of the photo patches (px)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the server")
    ap.add_argument("--max-wait-ms", type=float, default=10.0)
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args()
    good, bad = _payloads(args.size, 24, seed=0), _hostile()
    rows = [r for mode in args.modes for r in run_mode(args, mode, good, bad)]
    cols = ["mode", "clients", "requests", "ok_200", "4xx", "hostile_not_4xx", "5xx", "lost",
            "p50_ms", "p95_ms", "images_per_s", "server_cpu_s", "wall_s", "rss_start_mib",
            "rss_end_mib"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    rate = {(r["mode"], r["clients"]): r["images_per_s"] for r in rows}
    for c in args.clients:
        if ("batched", c) in rate and rate.get(("unbatched", c)):
            print(f"\n{c} clients: batched / unbatched images/s = "
                  f"{rate[('batched', c)] / rate[('unbatched', c)]:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
