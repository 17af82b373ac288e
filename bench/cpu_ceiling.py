"""What a float32-accurate ResNet-50 forward pass can reach on this CPU (issue 5's 2x target).

    python bench/cpu_ceiling.py            # 2 threads, about a minute

Times, in one run, the routes that could beat plain float32 convolutions and prints each one's
rate and error against a float64 reference:

- float32 convolution (oneDNN) on ResNet-50's four 3x3 layer shapes: the rate to beat;
- bfloat16 convolution (AMX where present): fast, but bf16 in and out;
- float32 convolution with oneDNN's bf16 math mode (float32 in and out, bf16 products), the
  building block of a 3-pass "bf16x3" float32 emulation: its rate divided by 3 is the best such
  an emulation could do;
- exact int8 matmul (`torch._int_mm`, int32 out): a float32-accurate split needs >= 5 passes;
- NNPACK's Winograd F(6x6, 3x3) convolution (fewer multiplications, AVX2 only).

It also prints the share of ResNet-50's multiply-adds in stride-1 3x3 convolutions, the only
layers a Winograd-style algorithm can shorten.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

SHAPES = [(64, 64), (128, 32), (256, 16), (512, 8)]  # (channels, side) of ResNet-50 at 256 px


def _seconds(f: Callable[[], torch.Tensor], repeats: int) -> tuple[float, torch.Tensor]:
    for _ in range(3):  # warm-up: kernel choice, weight reorders, allocator
        f()
    t = time.perf_counter()
    for _ in range(repeats):
        y = f()
    return (time.perf_counter() - t) / repeats, y


def _rel_err(y: torch.Tensor, ref: torch.Tensor) -> float:
    return float((y.double() - ref).abs().max() / ref.abs().max())


def conv_routes(batch: int, repeats: int) -> None:
    """GFLOP/s (useful float32 work) and error of each conv route per 3x3 layer shape."""
    g = torch.Generator().manual_seed(0)
    print(f"3x3 convolutions, batch {batch}: GFLOP/s of useful work (max rel. error vs float64)")
    print(f"{'C x side':>10} | {'fp32':>14} | {'bf16':>14} | {'fp32, bf16 math':>16} "
          f"| {'bf16x3 bound':>12} | {'NNPACK F(6,3)':>14}")
    for c, side in SHAPES:
        x = torch.randn(batch, c, side, side, generator=g).relu()
        w = torch.randn(c, c, 3, 3, generator=g) / (3 * c**0.5)
        ref = F.conv2d(x.double(), w.double(), padding=1)
        flop = 2 * batch * c * c * 9 * side * side
        xc = x.contiguous(memory_format=torch.channels_last)
        wc = w.contiguous(memory_format=torch.channels_last)
        row = []
        t, y = _seconds(lambda xc=xc, wc=wc: F.conv2d(xc, wc, padding=1), repeats)
        row.append((flop / t / 1e9, _rel_err(y, ref)))
        xb, wb = xc.bfloat16(), wc.bfloat16()
        t, y = _seconds(lambda xb=xb, wb=wb: F.conv2d(xb, wb, padding=1), repeats)
        row.append((flop / t / 1e9, _rel_err(y, ref)))
        old = torch.backends.mkldnn.conv.fp32_precision
        try:
            torch.backends.mkldnn.conv.fp32_precision = "bf16"
            t, y = _seconds(lambda xc=xc, wc=wc: F.conv2d(xc, wc, padding=1), repeats)
            row.append((flop / t / 1e9, _rel_err(y, ref)))
        finally:
            torch.backends.mkldnn.conv.fp32_precision = old
        t, y = _seconds(lambda x=x, w=w: torch._nnpack_spatial_convolution(x, w, None, [1, 1]),
                        repeats)
        nnpack = (flop / t / 1e9, _rel_err(y, ref))
        cells = [f"{r:6.0f} ({e:.0e})" for r, e in row]
        print(f"{c:>5} x {side:<3}| {cells[0]:>14} | {cells[1]:>14} | {cells[2]:>16} "
              f"| {row[2][0] / 3:12.0f} | {nnpack[0]:6.0f} ({nnpack[1]:.0e})")


def matmul_routes(repeats: int) -> None:
    """float32 vs exact int8 matmul: how many int8 passes an emulation could afford."""
    g = torch.Generator().manual_seed(1)
    m, k, n = 4096, 1024, 1024
    a, b = torch.randn(m, k, generator=g), torch.randn(k, n, generator=g)
    ai = torch.randint(-127, 128, (m, k), dtype=torch.int8, generator=g)
    bi = torch.randint(-127, 128, (k, n), dtype=torch.int8, generator=g)
    t32, _ = _seconds(lambda: a @ b, repeats)
    ti8, y = _seconds(lambda: torch._int_mm(ai, bi), repeats)
    exact = torch.equal(y.double(), ai.double() @ bi.double())
    flop = 2 * m * k * n
    print(f"matmul {m}x{k}x{n}: float32 {flop / t32 / 1e9:.0f} GFLOP/s; int8 -> int32 "
          f"{flop / ti8 / 1e9:.0f} GOP/s (exact: {exact}); a float32-accurate int8 split "
          f"needs >= 5 passes -> <= {flop / ti8 / 1e9 / 5:.0f} GFLOP/s")


def winograd_share() -> None:
    """Share of ResNet-50's multiply-adds (256 px) in stride-1 3x3 convolutions."""
    import torchvision

    model = torchvision.models.resnet50(num_classes=1).eval()
    macs = {"stride-1 3x3": 0, "other": 0}

    def hook(mod: torch.nn.Conv2d, _inp: tuple, out: torch.Tensor) -> None:
        n = out.numel() * mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
        key = "stride-1 3x3" if mod.kernel_size == (3, 3) and mod.stride == (1, 1) else "other"
        macs[key] += n

    for mod in model.modules():
        if isinstance(mod, torch.nn.Conv2d):
            mod.register_forward_hook(hook)
    with torch.inference_mode():
        model(torch.zeros(1, 3, 256, 256))
    total = sum(macs.values())
    share = macs["stride-1 3x3"] / total
    print(f"resnet50 at 256 px: {total / 1e9:.2f} G conv multiply-adds, {share:.0%} in stride-1 "
          f"3x3 convs; F(4x4,3x3) Winograd at no overhead would cut total work by at most "
          f"{share * 0.75:.0%}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=10)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {a.threads} threads, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}")
    conv_routes(a.batch, a.repeats)
    matmul_routes(a.repeats)
    winograd_share()


if __name__ == "__main__":
    main()
