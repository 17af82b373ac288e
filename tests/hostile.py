"""Hostile image files for the decoding contract, built inside the tests."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def write_undecodable(folder: Path) -> None:
    """empty.png, truncated.jpg, text.png (not an image) and bomb.png (a 10^10-pixel header)."""
    folder.mkdir(parents=True, exist_ok=True)
    jpg = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(jpg, format="JPEG")
    (folder / "empty.png").write_bytes(b"")
    (folder / "truncated.jpg").write_bytes(jpg.getvalue()[: len(jpg.getvalue()) // 3])
    (folder / "text.png").write_bytes(b"this is not an image at all\n" * 10)
    Image.new("L", (1, 1)).save(folder / "bomb.png")
    raw = bytearray((folder / "bomb.png").read_bytes())
    chunk = b"IHDR" + struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    raw[8 : 8 + 25] = struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    (folder / "bomb.png").write_bytes(bytes(raw))


def write_hostile(folder: Path) -> dict[str, str]:
    """Every hostile file of the decoding contract; returns name -> expected reason fragment."""
    write_undecodable(folder)
    # an ICO behind an image extension: a real image format we do not support
    Image.new("RGB", (4, 4)).save(folder / "icon.gif", format="ICO")
    (folder / "notes.txt").write_text("not data")
    return {
        "empty.png": "empty",
        "truncated.jpg": "truncated",
        "text.png": "not a recognised image",
        "bomb.png": "too large",
        "icon.gif": "unsupported",
        "notes.txt": "not an image file extension",
    }
