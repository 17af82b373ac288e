"""How much storing a generator in float16 changes its samples.

Loads a shipped-format generator (`gen-<BLOCK>-<SIZE>/`, float16 weights) and the float32
weights it was saved from (a training checkpoint's `G_ema.safetensors`, or `G.safetensors` for
a run without a moving average), draws `--n` samples of each with the same seeds, and prints
the largest difference in grey levels and the share of pixel values that differ.

    python bench/float16_check.py bench/zoo/gen-N.3.5-32 \
        W-N.3.5/run/checkpoints/step-0020000/G_ema.safetensors
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.torch import load_file

from ganforensics.errors import GanForensicsError, InputError
from ganforensics.gan.generate import load_generator, sample_images


def compare(shipped: str | Path, float32: Path, n: int = 453, seed: int = 7) -> dict[str, Any]:
    """The largest grey-level gap and the share of pixel values that differ between `n`
    samples of the shipped generator and of the same network with the `float32` weights."""
    gen, meta = load_generator(shipped)
    half = sample_images(gen, n, seed)
    try:
        gen.load_state_dict(load_file(str(float32)))
    except (OSError, RuntimeError, ValueError) as exc:
        raise InputError(f"{float32}: not the float32 weights of this generator "
                         f"({str(exc).splitlines()[0]})") from None
    full = sample_images(gen, n, seed)
    diff = np.abs(half.astype(np.int16) - full.astype(np.int16))
    return {"generator": str(shipped), "last_block": meta["last_block"], "n": n, "seed": seed,
            "max_grey_levels": int(diff.max()),
            "share_differing": round(float((diff > 0).mean()), 5)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("shipped", help="a gen-<BLOCK>-<SIZE> folder or shipped:BLOCK")
    ap.add_argument("float32", type=Path, help="the float32 weights it was saved from")
    ap.add_argument("--n", type=int, default=453, help="samples (default 453, the FID's n)")
    ap.add_argument("--seed", type=int, default=7, help="sample seed (default 7)")
    ap.add_argument("--json", action="store_true", help="print one JSON line")
    args = ap.parse_args()
    out = compare(args.shipped, args.float32, args.n, args.seed)
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{out['generator']} ({out['last_block']}): {args.n} samples, seed {args.seed}: "
              f"at most {out['max_grey_levels']} grey level(s) apart, "
              f"{100 * out['share_differing']:.2f} % of pixel values differ")


if __name__ == "__main__":
    try:
        main()
    except GanForensicsError as err:  # a bad option or input: its message, no traceback
        sys.exit(f"float16_check.py: {err}")
