"""Model-only CPU/GPU throughput of ResNet-50 inference variants (helps choose predict's path).

    python bench/predict_variants.py --threads 2 --batch 16
Variants: batch-1 NCHW eager (the naive loop's compute), batched NCHW, batched channels-last,
and ONNX Runtime (CPU) when `onnx` + `onnxruntime` are installed. Random weights, 256x256.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time

import torch
import torchvision


def _time(f, x, reps):
    with torch.inference_mode():
        f(x[:2])
        t = time.perf_counter()
        for _ in range(reps):
            y = f(x)
    return (time.perf_counter() - t) / reps / len(x), y


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--reps", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    m = torchvision.models.resnet50(num_classes=1).eval()
    x = torch.randn(a.batch, 3, 256, 256)
    res = {}
    res["b1 nchw"], ref = _time(lambda z: torch.cat([m(z[i : i + 1]) for i in range(len(z))]),
                                x, a.reps)
    res["batch nchw"], _ = _time(m, x, a.reps)
    mcl = copy.deepcopy(m).to(memory_format=torch.channels_last)
    res["batch channels-last"], _ = _time(mcl, x.contiguous(memory_format=torch.channels_last),
                                          a.reps)
    try:
        import onnxruntime as ort

        with tempfile.TemporaryDirectory() as tmp:
            path = f"{tmp}/m.onnx"
            torch.onnx.export(m, x[:1], path, dynamo=False, input_names=["x"],
                              output_names=["y"], dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}})
            so = ort.SessionOptions()
            so.intra_op_num_threads = a.threads
            sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
            xn = x.numpy()
            sess.run(None, {"x": xn[:2]})
            t = time.perf_counter()
            for _ in range(a.reps):
                y = sess.run(None, {"x": xn})[0]
            res["onnxruntime batch"] = (time.perf_counter() - t) / a.reps / len(x)
            print(f"onnxruntime max |diff| {abs(y - ref.numpy()).max():.2e}")
    except Exception as exc:  # noqa: BLE001
        print(f"onnxruntime skipped: {type(exc).__name__}: {str(exc)[:120]}")
    for k, v in res.items():
        print(f"{k:22s} {1 / v:7.1f} img/s")


if __name__ == "__main__":
    main()
