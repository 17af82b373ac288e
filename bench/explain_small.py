"""Explain commands end to end on a small CNN (CPU): data, training, ffrs / mask / color / cam.

Reals: 32 px patches of the bundled photos (`data.photos.make_patches`). Fakes: other patches
down-sampled x2 and up-sampled by one of two fixed up-samplers, as a GAN's last block would:
`tconv` (transposed conv k4 s2 p1 whose four output phases have different kernels) and
`nearest3` (nearest x2, then a fixed 3x3 conv). Splits follow the source photo. The detector is
the registry's `small` CNN trained with the wang2020 recipe (a few epochs). Then each explain
command is run through the CLI and timed; the masking table gives top-k vs random-k AP.

    python bench/explain_small.py --out /tmp/explain-bench [--epochs 4] [--per-photo 60]

No baseline exists for these commands (nothing else computes FF-RS here); the script reports
wall times and the numbers the note quotes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganforensics.data.manifest import new_manifest, read_manifest, write_manifest
from ganforensics.io.atomic import save_png_atomic
from ganforensics.io.images import file_sha256, load_rgb


def upsamplers(seed: int = 7) -> dict[str, torch.nn.Module]:
    g = torch.Generator().manual_seed(seed)
    k = torch.rand(4, 4, generator=g) + 0.2
    for py in range(2):
        for px in range(2):
            k[py::2, px::2] /= k[py::2, px::2].sum()
    tconv = torch.nn.ConvTranspose2d(3, 3, 4, 2, 1, groups=3, bias=False)
    tconv.weight.data = k.expand(3, 1, 4, 4).clone()
    k3 = torch.rand(3, 3, generator=g) + 0.5
    k3 /= k3.sum()
    near = torch.nn.Sequential(
        torch.nn.Upsample(scale_factor=2, mode="nearest"),
        torch.nn.Conv2d(3, 3, 3, padding=1, groups=3, bias=False),
    )
    near[1].weight.data = k3.expand(3, 1, 3, 3).clone()
    return {"tconv": tconv.eval(), "nearest3": near.eval()}


@torch.no_grad()
def make_fakes(real_df, out: Path) -> list[dict]:
    ups = upsamplers()
    rows = []
    names = list(ups)
    for i, row in enumerate(real_df.itertuples(index=False)):
        img = np.array(load_rgb(row.abspath))
        gen = names[i % len(names)]
        x = torch.from_numpy(img).permute(2, 0, 1)[None].double() / 255
        y = ups[gen].double()(F.avg_pool2d(x, 2)).clamp(0, 1)
        arr = (y[0].permute(1, 2, 0) * 255).round().byte().numpy()
        p = out / "fakes" / f"{gen}_{i:05d}.png"
        save_png_atomic(p, np.ascontiguousarray(arr))
        rows.append({"abspath": str(p), "label": 1, "generator": gen, "source": row.source,
                     "split": row.split, "sha256": file_sha256(p)})
    return rows


def sh(cmd: list[str]) -> tuple[float, str]:
    t = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if res.returncode != 0:
        sys.stderr.write(res.stderr)
        raise SystemExit(f"failed ({res.returncode}): {' '.join(cmd)}")
    return dt, res.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--per-photo", type=int, default=60)
    ap.add_argument("--k", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(1)
    out: Path = args.out
    data = out / "data"
    if not (data / "all.csv").is_file():
        from ganforensics.data.photos import make_patches

        make_patches(data / "real", size=32, max_per_photo=args.per_photo, force=True)
        real = read_manifest(data / "real" / "manifest.csv")
        real["sha256"] = [file_sha256(p) for p in real["abspath"]]
        fakes = make_fakes(real, data)
        both = new_manifest([*real.to_dict("records"), *fakes])
        write_manifest(both, data / "all.csv")
        for split in ("train", "val", "test"):
            write_manifest(both[both["split"] == split], data / f"{split}.csv")
    model = out / "model"
    t_train = None
    if not (model / "model.json").is_file():
        t = time.perf_counter()
        from ganforensics.detectors.cnn import train_cnn_detector

        train_cnn_detector("small", "wang2020", str(data / "train.csv"), str(data / "val.csv"),
                           model, epochs=args.epochs, aug_prob=0.1, progress=False)
        t_train = time.perf_counter() - t
    gf = [sys.executable, "-m", "ganforensics", "explain"]
    runs = out / "runs"
    cmds = {
        "ffrs": [*gf, "ffrs", "--model", str(model), "--data", str(data / "val.csv"),
                 "--out", str(runs / "ffrs"), "--force", "--json"],
        "mask": [*gf, "mask", "--model", str(model), "--ranking", str(runs / "ffrs" / "ffrs.csv"),
                 "--k", str(args.k), "--test", str(data / "test.csv"), "--json",
                 "--out", str(runs / "mask"), "--force"],
        "color": [*gf, "color", "--model", str(model), "--test", str(data / "test.csv"),
                  "--ranking", str(runs / "ffrs" / "ffrs.csv"), "--k", str(args.k), "--json",
                  "--out", str(runs / "color"), "--force"],
    }
    times: dict[str, float] = {}
    outputs: dict[str, object] = {}
    for name, cmd in cmds.items():
        times[name], text = sh(cmd)
        outputs[name] = json.loads(text)
    test = read_manifest(data / "test.csv")
    cam_imgs = list(test[test["label"] == 1]["abspath"][:4]) + list(
        test[test["label"] == 0]["abspath"][:4])
    times["cam"], _ = sh([*gf, "cam", "--model", str(model), *cam_imgs, "--out",
                          str(runs / "cam"), "--force"])
    mask = outputs["mask"]
    print(f"train: {t_train if t_train is None else round(t_train, 1)} s; n_test = {len(test)}")
    print("wall seconds:", {k: round(v, 1) for k, v in times.items()})
    print("ffrs:", {k: v for k, v in outputs["ffrs"].items() if k != "topk"})
    print(f"masking k = {args.k} (AP per generator):")
    for r in mask:  # type: ignore[union-attr]
        print(f"  {r['condition']:9s} {r['generator']:9s} ap {r['ap']:.4f} "
              f"(std {r['ap_std']:.4f}) acc {r['acc']:.4f}")
    col = outputs["color"]
    print("colour:", col["summary"])  # type: ignore[index]
    for r in col["detection"]:  # type: ignore[index]
        print(f"  {r['generator']:9s} ap rgb {r['ap_rgb']:.4f} gray {r['ap_gray']:.4f}")


if __name__ == "__main__":
    main()
