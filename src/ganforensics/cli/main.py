"""Entry point of the `ganforensics` command."""

from __future__ import annotations

import typer

from ganforensics import __version__
from ganforensics.cli import (  # noqa: F401  (each module registers its commands)
    attribution_cmds,
    data_cmds,
    detector_cmds,
    dga_cmds,
    explain_cmds,
    gan_cmds,
    one_class_cmds,
    serve_cmds,
    simulate_cmds,
    spectral_cmds,
    study_cmds,
)
from ganforensics.cli.apps import app
from ganforensics.threads import THREADS_ENV, apply_threads, resolve_threads


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ganforensics {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    threads: int | None = typer.Option(
        None, "--threads", min=1, show_default=False,
        help=f"CPU threads for torch and BLAS (env {THREADS_ENV}; default: the cores this "
        "process may use). On a busy shared machine 1 can be faster; recorded in env.json.",
    ),
) -> None:
    """Forensics of CNN-generated (GAN) images."""
    apply_threads(resolve_threads(threads))


def main() -> None:
    """Console-script entry point."""
    app(prog_name="ganforensics")


if __name__ == "__main__":
    main()
