"""Benchmark: `predict` (batched, channels-last, inference mode, decoding overlapped with
compute) with the torch backend and with `--backend onnxruntime` (the model exported to ONNX
once, before timing; loading the exported folder is timed) against a naive one-image-at-a-time
eager loop (as the published CNNDetection demo scripts do: PIL open, ToTensor, Normalize,
model(x) under no_grad, one image per call), in the same run, on the same files, with the same
ResNet-50 (CNNDetection format, random weights).

    python bench/predict.py            # 500 PNGs of 256x256, CPU
    python bench/predict.py --n 64     # a quick check
    python bench/predict.py --device cuda   # (onnxruntime runs on CPU: skipped on a GPU)

Prints each timing (wall and process CPU seconds), the speed-ups over the naive loop and the
largest logit difference to it (float32 everywhere).

    python bench/predict.py --threads 1 --models models/teacher models/student --inputs test.csv

times `predict` of saved detectors on the same files instead (e.g. a distilled student against
its teacher): per model images/s and the ratio to the first, the models taking turns
`--repeats` times (best of the repeats) so load changes hit each alike.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def make_images(folder: Path, n: int, size: int, seed: int) -> list[str]:
    """Smooth random colour images (PNG) so decoding cost is realistic."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        small = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC)
        arr = np.clip(np.asarray(img).astype(int) + rng.integers(-8, 9, (size, size, 3)), 0, 255)
        p = folder / f"img_{i:04d}.png"
        Image.fromarray(arr.astype(np.uint8)).save(p)
        paths.append(str(p))
    return paths


def damped_resnet50(seed: int) -> torch.nn.Module:
    """torchvision `resnet50(num_classes=1)`, random weights with damped residual branches.

    bn3 gamma 0.3-0.6: like a trained network the logits stay O(1); with the plain random init
    they grow to where float32 rounding between any two conv algorithms exceeds 1e-4.
    """
    import torchvision

    torch.manual_seed(seed)
    model = torchvision.models.resnet50(num_classes=1)
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                if name.endswith("bn3"):
                    m.weight.uniform_(0.3, 0.6)
    return model.eval()


def make_checkpoint(path: Path, seed: int) -> None:
    """A CNNDetection-format file: {"model": resnet50(num_classes=1).state_dict()}."""
    torch.save({"model": damped_resnet50(seed).state_dict()}, path)


def naive(ckpt: Path, paths: list[str], device: str) -> np.ndarray:
    """The demo-script loop: one image per forward pass, eager, NCHW."""
    import torchvision
    import torchvision.transforms as T
    from PIL import Image

    model = torchvision.models.resnet50(num_classes=1)
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    model.to(device).eval()
    trans = T.Compose([T.ToTensor(), T.Normalize(mean=[0.485, 0.456, 0.406],
                                                 std=[0.229, 0.224, 0.225])])
    out = []
    with torch.no_grad():
        for p in paths:
            x = trans(Image.open(p).convert("RGB")).unsqueeze(0).to(device)
            out.append(float(model(x).item()))
    return np.array(out)


def ours(ckpt: Path, paths: list[str], device: str, batch_size: int, workers: int):
    from ganforensics.detectors.cnn import load_cnndetection_checkpoint
    from ganforensics.evaluate.predict import predict_paths

    det = load_cnndetection_checkpoint(ckpt).to(device)
    table = predict_paths(det, paths, batch_size=batch_size, workers=workers, progress=False)
    return table["logit"].to_numpy()


def export_onnx(ckpt: Path, folder: Path) -> None:
    """`ganforensics detector export FILE.pth --format onnx --out folder` (not timed)."""
    from ganforensics.detectors import load_detector
    from ganforensics.detectors.onnx import export_detector

    export_detector(load_detector(ckpt), folder)


def ours_onnx(folder: Path, paths: list[str], batch_size: int, workers: int):
    """`ganforensics predict --model folder` on an exported folder: ONNX Runtime."""
    from ganforensics.detectors import load_detector
    from ganforensics.evaluate.predict import predict_paths

    det = load_detector(folder)
    table = predict_paths(det, paths, batch_size=batch_size, workers=workers, progress=False)
    return table["logit"].to_numpy()


def compare_models(models: list[str], inputs: list[str], batch_size: int, workers: int,
                   repeats: int) -> int:
    """`predict` throughput of saved detectors on the same decoded-once files, in turns."""
    from ganforensics.detectors import load_detector
    from ganforensics.evaluate.predict import input_paths, predict_paths

    paths, errs = input_paths(inputs)
    paths = [p for p, e in zip(paths, errs, strict=True) if not e]
    dets = [load_detector(m) for m in models]
    for det in dets:  # warm-up
        predict_paths(det, paths[:batch_size], batch_size=batch_size, workers=workers,
                      progress=False)
    best = [float("inf")] * len(dets)
    cpu = [0.0] * len(dets)
    for _ in range(repeats):
        for i, det in enumerate(dets):
            _, wall, c = timed(predict_paths, det, paths, batch_size=batch_size,
                               workers=workers, progress=False)
            if wall < best[i]:
                best[i], cpu[i] = wall, c
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {len(paths)} images, "
          f"batch {batch_size}, {workers} decode threads, best of {repeats}")
    for m, det, w, c in zip(models, dets, best, cpu, strict=True):
        print(f"{m} ({det.arch}): {w:8.2f} s ({len(paths) / w:8.1f} img/s) {c:7.1f} CPU s  "
              f"speed-up vs first {best[0] / w:.2f}x")
    return 0


def timed(fn, *args, **kwargs):
    """(result, wall seconds, process CPU seconds) of fn(*args)."""
    w, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - w, time.process_time() - c


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500, help="number of images (default 500)")
    ap.add_argument("--size", type=int, default=256, help="image side (default 256)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2, help="decoding threads for predict")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    ap.add_argument("--seed", type=int, default=2021)
    ap.add_argument("--models", nargs="+", default=None,
                    help="saved detector folders to compare (with --inputs)")
    ap.add_argument("--inputs", nargs="+", default=None, help="images, folders or manifests")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    os.environ.setdefault("GANFORENSICS_PROGRESS", "0")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.models:
        if not args.inputs:
            ap.error("--models needs --inputs")
        return compare_models(args.models, args.inputs, args.batch_size, args.workers,
                              args.repeats)
    # float32 on both sides: no TF32 on GPUs
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    with tempfile.TemporaryDirectory() as tmp:
        tmp_p = Path(tmp)
        paths = make_images(tmp_p, args.n, args.size, args.seed)
        ckpt = tmp_p / "resnet50_cnndetection_format.pth"
        make_checkpoint(ckpt, args.seed)
        onnx_dir = tmp_p / "onnx"
        with_onnx = args.device == "cpu"
        if with_onnx:
            export_onnx(ckpt, onnx_dir)
        # warm-up every path on a few images (allocator, oneDNN/cuDNN kernel selection)
        warm = paths[: min(len(paths), args.batch_size)]
        naive(ckpt, paths[:2], args.device)
        ours(ckpt, warm, args.device, args.batch_size, args.workers)
        if with_onnx:
            ours_onnx(onnx_dir, warm, args.batch_size, args.workers)
        ref, t_naive, c_naive = timed(naive, ckpt, paths, args.device)
        got, t_ours, c_ours = timed(ours, ckpt, paths, args.device, args.batch_size,
                                    args.workers)
        if with_onnx:
            got_ort, t_ort, c_ort = timed(ours_onnx, onnx_dir, paths, args.batch_size,
                                          args.workers)
    diff = float(np.max(np.abs(ref - got)))
    dev = args.device
    if dev.startswith("cuda"):
        dev += f" ({torch.cuda.get_device_name()})"
    print(f"device {dev}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{args.n} images {args.size}x{args.size}, resnet50 float32")
    print(f"naive one-at-a-time loop      : {t_naive:8.2f} s  ({args.n / t_naive:7.1f} img/s)"
          f"  {c_naive:7.1f} CPU s")
    print(f"predict --backend torch       : {t_ours:8.2f} s  ({args.n / t_ours:7.1f} img/s)"
          f"  {c_ours:7.1f} CPU s  batch {args.batch_size}, {args.workers} decode threads")
    if with_onnx:
        import onnxruntime

        diff_ort = float(np.max(np.abs(ref - got_ort)))
        print(f"predict --backend onnxruntime : {t_ort:8.2f} s  ({args.n / t_ort:7.1f} img/s)"
              f"  {c_ort:7.1f} CPU s  onnxruntime {onnxruntime.__version__}")
    print(f"speed-up torch {t_naive / t_ours:.2f}x; max |logit difference| {diff:.2e}")
    if with_onnx:
        print(f"speed-up onnxruntime {t_naive / t_ort:.2f}x (vs predict --backend torch "
              f"{t_ours / t_ort:.2f}x); max |logit difference| {diff_ort:.2e}")
        diff = max(diff, diff_ort)
    return 0 if diff <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
