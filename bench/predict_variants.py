"""Model-only throughput of ResNet-50 inference variants at 256 px (helps choose predict's path).

    python bench/predict_variants.py                 # 2 threads, 32 images per variant
    python bench/predict_variants.py --compile       # adds torch.compile (slow to compile)

Variants, each on the same 32 random images and compared with the batch-1 eager logits:
batch-1 NCHW eager (the naive loop's compute), channels-last at several batch sizes, BatchNorm
folded into the convs (what `predict` uses), ONNX Runtime when `onnx` and `onnxruntime` are
installed, OpenVINO (float32 precision hint, latency mode) when `openvino` is installed, and
optionally `torch.compile` with freezing. Also prints the model's FLOPs and the
machine's float32 matmul rate, the ceiling for any float32 route.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch

from predict import damped_resnet50  # bench/ is on sys.path when run as a script

SIZE = 256


def _chunked(f: Callable[[torch.Tensor], torch.Tensor], bs: int, cl: bool):
    def run(x: torch.Tensor) -> torch.Tensor:
        parts = []
        for i in range(0, len(x), bs):
            xi = x[i : i + bs]
            parts.append(f(xi.contiguous(memory_format=torch.channels_last) if cl else xi))
        return torch.cat(parts)

    return run


def _rate(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> tuple[float, np.ndarray]:
    with torch.inference_mode():
        f(x[:4])
        t = time.perf_counter()
        y = f(x)
    return len(x) / (time.perf_counter() - t), y.reshape(-1).numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=32, help="images per variant (default 32)")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    m = damped_resnet50(0)
    x = torch.randn(a.n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))

    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc, torch.inference_mode():
        m(x[:1])
    gflop = fc.get_total_flops() / 1e9
    a1, b1 = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a1 @ b1
    t = time.perf_counter()
    for _ in range(5):
        a1 @ b1
    mm = 5 * 2 * 2048**3 / (time.perf_counter() - t) / 1e9
    print(f"resnet50 at {SIZE} px: {gflop:.1f} GFLOP/image; float32 matmul {mm:.0f} GFLOP/s "
          f"on {a.threads} threads -> ceiling ~{mm / gflop:.0f} img/s")

    res: dict[str, float] = {}
    res["batch 1 NCHW eager"], ref = _rate(_chunked(m, 1, False), x)
    diffs: dict[str, float] = {}
    mcl = copy.deepcopy(m).to(memory_format=torch.channels_last)
    for bs in (4, 8, 16, 32):
        name = f"channels-last batch {bs}"
        res[name], y = _rate(_chunked(mcl, bs, True), x)
        diffs[name] = float(np.abs(y - ref).max())
    from torch.fx.experimental.optimization import fuse

    fused = fuse(m).to(memory_format=torch.channels_last)
    res["BN folded + channels-last b4"], y = _rate(_chunked(fused, 4, True), x)
    diffs["BN folded + channels-last b4"] = float(np.abs(y - ref).max())
    try:
        import onnxruntime as ort

        with tempfile.TemporaryDirectory() as tmp:
            path = f"{tmp}/m.onnx"
            torch.onnx.export(m, x[:1], path, dynamo=False, input_names=["x"],
                              output_names=["y"], dynamic_axes={"x": {0: "n"}})
            so = ort.SessionOptions()
            so.intra_op_num_threads = a.threads
            sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])

            def run_ort(z: torch.Tensor) -> torch.Tensor:
                return torch.from_numpy(sess.run(None, {"x": z.numpy()})[0])

            res["ONNX Runtime b4"], y = _rate(_chunked(run_ort, 4, False), x)
            diffs["ONNX Runtime b4"] = float(np.abs(y - ref).max())
    except Exception as exc:  # noqa: BLE001 - optional packages
        print(f"ONNX Runtime skipped: {type(exc).__name__}: {str(exc)[:120]}")
    try:
        import openvino as ov

        core = ov.Core()
        for bs in (4, 8):
            cm_ov = core.compile_model(
                ov.convert_model(m, example_input=x[:bs]), "CPU",
                {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
                 "INFERENCE_NUM_THREADS": a.threads})
            req = cm_ov.create_infer_request()

            def run_ov(z: torch.Tensor, req=req) -> torch.Tensor:
                return torch.from_numpy(req.infer({0: z.numpy()})[0].copy())

            name = f"OpenVINO f32 b{bs}"
            res[name], y = _rate(_chunked(run_ov, bs, False), x)
            diffs[name] = float(np.abs(y - ref).max())
    except Exception as exc:  # noqa: BLE001 - optional package
        print(f"OpenVINO skipped: {type(exc).__name__}: {str(exc)[:120]}")
    if a.compile:
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True
        t = time.perf_counter()
        cm = torch.compile(m, dynamic=False)
        with torch.no_grad():
            cm(x[:4])
        print(f"torch.compile: {time.perf_counter() - t:.1f} s to compile for one input shape")
        res["torch.compile b4"], y = _rate(_chunked(cm, 4, False), x)
        diffs["torch.compile b4"] = float(np.abs(y - ref).max())
    base = res["batch 1 NCHW eager"]
    for k, v in res.items():
        d = f"  max |diff| {diffs[k]:.1e}" if k in diffs else ""
        print(f"{k:30s} {v:6.1f} img/s  {v / base:4.2f}x{d}")


if __name__ == "__main__":
    main()
