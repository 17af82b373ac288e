"""Does `torch.compile` make the zoo recipe's training step cheaper on the CPU?

Times one hinge-loss step of the recipe's networks (G of a last block, D with spectral norm and
`--d-depth` convs per resolution, batch 64, 32 px, channels-last, as `gan.train` runs them):
D on a real and a fake batch, backward, then G's loss through D, backward (no optimiser: the
same for both). Eager and `torch.compile` (inductor) take turns in one process, `--rounds`
times, so load on the machine hits both alike; prints CPU and wall seconds per step and the
eager/compiled ratio, and the seconds the compile took.

    python bench/gan_compile.py --block BASELINE --threads 1
"""

from __future__ import annotations

import argparse
import time

import torch

from ganforensics.gan.nets import Discriminator, Generator


def step(gen: torch.nn.Module, disc: torch.nn.Module, z: torch.Tensor, real: torch.Tensor
         ) -> None:
    """D's hinge loss on reals and detached fakes, backward; G's loss through D, backward."""
    fake = gen(z)
    loss_d = torch.relu(1 - disc(real)).mean() + torch.relu(1 + disc(fake.detach())).mean()
    loss_d.backward()
    (-disc(fake).mean()).backward()


def timed(gen: torch.nn.Module, disc: torch.nn.Module, z: torch.Tensor, real: torch.Tensor,
          n: int) -> tuple[float, float]:
    """(CPU s, wall s) per step over `n` steps after one untimed step."""
    step(gen, disc, z, real)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(n):
        step(gen, disc, z, real)
    return (time.process_time() - cpu) / n, (time.perf_counter() - wall) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--block", default="BASELINE", help="G's last block (default BASELINE)")
    ap.add_argument("--d-depth", type=int, default=2, help="D's convs per resolution (2)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per turn (20)")
    ap.add_argument("--rounds", type=int, default=2, help="turns of each (2)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    fmt = torch.channels_last
    gen = Generator(32, args.block, 128, 32).to(memory_format=fmt)
    disc = Discriminator(32, "spectral", 32, args.d_depth).to(memory_format=fmt)
    z = torch.randn(64, 128)
    real = torch.randn(64, 3, 32, 32).to(memory_format=fmt)
    start = time.perf_counter()
    gen_c, disc_c = torch.compile(gen), torch.compile(disc)
    step(gen_c, disc_c, z, real)
    step(gen_c, disc_c, z, real)
    print(f"{args.block}, D depth {args.d_depth}, {args.threads} thread(s): compiled in "
          f"{time.perf_counter() - start:.1f} s")
    for r in range(args.rounds):
        eager = timed(gen, disc, z, real, args.steps)
        comp = timed(gen_c, disc_c, z, real, args.steps)
        print(f"round {r + 1}: eager {eager[0]:.4f} CPU s/step ({eager[1]:.4f} wall), compiled "
              f"{comp[0]:.4f} ({comp[1]:.4f} wall); eager/compiled {eager[0] / comp[0]:.2f}x "
              "CPU")


if __name__ == "__main__":
    main()
