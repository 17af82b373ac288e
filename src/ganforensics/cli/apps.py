"""The Typer applications every command module registers onto.

Each `cli/*_cmds.py` module adds its commands to these shared apps; `cli/main.py` imports the
modules. Command modules only parse options, call library functions and print.
"""

from __future__ import annotations

import typer
from typer.core import TyperGroup

from ganforensics.console import error
from ganforensics.errors import GanForensicsError

EXIT_CODES_HELP = (
    "Exit codes: 0 success; 1 finished, but some inputs were bad (each reported); "
    "2 invalid input, option or config; 3 output folder holds a run (use --force); "
    "130 interrupted."
)

TRAINING_DATA_HELP = (
    "Real images: manifest CSV(s), folder(s) or image files. Only real rows are used (label 0, "
    "or unlabelled), and only split 'train' when splits exist."
)
"""`--data` of the commands that train on real images (`gan train`, `gan simulate`)."""


class _Group(TyperGroup):
    """A group that turns library errors into one-line messages and exit codes."""

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except GanForensicsError as exc:
            error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:  # a path the user gave is unusable: not a folder, no permission
            where = f"{exc.filename}: " if exc.filename else ""
            error(f"{where}{exc.strerror or exc}")
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            error("interrupted")
            raise typer.Exit(130) from None


def _app(help_text: str, no_args_is_help: bool = True, **kwargs: object) -> typer.Typer:
    """A Typer app with the shared error handling; bare invocation shows help by default."""
    return typer.Typer(
        help=help_text,
        cls=_Group,
        no_args_is_help=no_args_is_help,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode="markdown",
        context_settings={"help_option_names": ["-h", "--help"]},
        **kwargs,  # type: ignore[arg-type]
    )


app = _app(
    "Forensics of CNN-generated (GAN) images: build honest real/fake datasets, train small GANs "
    "with swappable up-sampling, train and evaluate spectral and CNN detectors, explain them.\n\n"
    "Start with **ganforensics demo**: it runs the whole study on the embedded photos "
    "and writes an HTML report.",
    epilog=EXIT_CODES_HELP,
)
data_app = _app("Build and check datasets: import folders, cut photo patches, audit, perturb.")
spectrum_app = _app("Frequency spectra of image sets: compute azimuthal profiles, plot them.")
gan_app = _app("Train small GANs with a swappable last up-sampling block; generate fakes.")
detector_app = _app("Train and import detectors (spectral and CNN).")
evaluate_app = _app(
    "Evaluate a detector per generator (AP, AUC, calibrated accuracy, robustness grid); "
    "`evaluate bypass` gives detection rates of modified generators.",
    no_args_is_help=False,  # `evaluate` alone runs the evaluation (and names what is missing)
)
explain_app = _app("Explain CNN detectors: FF-RS relevance, feature-map masking, colour, Grad-CAM.")

app.add_typer(data_app, name="data")
app.add_typer(spectrum_app, name="spectrum")
app.add_typer(gan_app, name="gan")
app.add_typer(detector_app, name="detector")
app.add_typer(evaluate_app, name="evaluate")
app.add_typer(explain_app, name="explain")
