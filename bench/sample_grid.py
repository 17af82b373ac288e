"""A sample grid of generators beside the photos they learned from, for docs/gan.md.

Top row: `--n` train patches of the embedded photos (the patches every zoo generator was trained
on, drawn with `--seed`); then one row of `--n` samples per generator (`gan generate`'s image
seeds, so the same `--seed` gives the same images), each cell scaled `--scale` times by
nearest-neighbour so single pixels stay visible.

    python bench/sample_grid.py shipped:BASELINE bench/zoo/gen-N.1.5-32 --out grid.png

A generator is a finished run folder, a shipped-format folder (`gen-<BLOCK>-<SIZE>`) or
`shipped:<BLOCK>`. Prints one line per row (what it shows) on stdout.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from ganforensics.data.manifest import split_of
from ganforensics.data.photos import make_patches
from ganforensics.errors import GanForensicsError
from ganforensics.gan.data import load_training_images
from ganforensics.gan.generate import load_generator, sample_images
from ganforensics.io.images import image_grid

GAP = 2
"""Pixels of white between cells and rows (before scaling)."""


def grid(rows: list[np.ndarray], scale: int) -> Image.Image:
    """One image of rows of (N, H, W, 3) uint8 cells, white gaps, nearest-neighbour scaled
    (`io.images.image_grid` without its outer border)."""
    n = len(rows[0])
    tiled = image_grid(np.concatenate([row[:n] for row in rows]), n, pad=GAP, fill=255,
                       scale=scale)
    edge = GAP * scale
    return Image.fromarray(tiled[edge:-edge, edge:-edge])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("generators", nargs="+", help="run folders, gen-* folders or shipped:BLOCK")
    ap.add_argument("--out", type=Path, required=True, help="the PNG to write")
    ap.add_argument("--n", type=int, default=12, help="cells per row (default 12)")
    ap.add_argument("--seed", type=int, default=7, help="sample and patch seed (default 7)")
    ap.add_argument("--scale", type=int, default=3, help="nearest-neighbour scale (default 3)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        train = split_of(make_patches(Path(tmp) / "photos"), "train").reset_index(drop=True)
        stack, _ = load_training_images(train, 32)
    pick = np.random.default_rng(args.seed).choice(len(stack), args.n, replace=False)
    rows = [stack[pick]]
    print(f"row 1: {args.n} train patches (seed {args.seed})")
    for i, ref in enumerate(args.generators, start=2):
        gen, meta = load_generator(ref)
        rows.append(sample_images(gen, args.n, args.seed))
        print(f"row {i}: {ref} ({meta['last_block']}, {meta.get('steps', '?')} steps)")
    tmp_out = args.out.with_suffix(".tmp.png")
    grid(rows, args.scale).save(tmp_out)
    tmp_out.replace(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    try:
        main()
    except GanForensicsError as err:  # a bad option or input: its message, no traceback
        sys.exit(f"sample_grid.py: {err}")
