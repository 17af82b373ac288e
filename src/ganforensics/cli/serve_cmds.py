"""`ganforensics serve`: the web service and page over one or more detectors."""

from __future__ import annotations

from pathlib import Path

import typer

from ganforensics.cli.apps import EXIT_CODES_HELP, app
from ganforensics.cli.study_cmds import DEMO_OUT
from ganforensics.console import info, out, warn
from ganforensics.errors import ConfigError
from ganforensics.serve.settings import DEFAULTS as D
from ganforensics.serve.settings import MIB, api_key_from_env, is_loopback

_EPILOG = (
    "Example: ganforensics serve  (the detectors of ./ganforensics-demo)\n\n"
    "Example: ganforensics --threads 1 serve --models runs/demo --port 8080\n\n"
    "Example: GF_KEY=s3cret ganforensics serve --models models/cnn --api-key-env GF_KEY\n\n"
    "Then: curl -F 'files[]=@photo.png' http://127.0.0.1:8000/v1/detect\n\n" + EXIT_CODES_HELP
)


@app.command("serve", epilog=_EPILOG)
def serve(
    models: list[Path] = typer.Option(
        None, "--models", "-m", show_default=False,
        help="A detector folder, a CNNDetection .pth, or a study/demo run folder (all its "
        f"detectors). Repeatable. Default: the demo run in ./{DEMO_OUT}."),
    host: str = typer.Option(D.host, "--host", help="Address to bind (127.0.0.1: this "
                             "machine only; see docs/serve.md before exposing it)."),
    port: int = typer.Option(D.port, "--port", min=1, max=65535),
    workers_threads: int = typer.Option(D.workers, "--workers-threads", min=1,
                                        help="Inference worker threads (torch threads each: "
                                        "the root --threads)."),
    api_key_env: str = typer.Option(None, "--api-key-env", metavar="VAR",
                                    help="Require the header X-API-Key equal to the value of "
                                    "environment variable VAR on /v1/*."),
    max_batch: int = typer.Option(D.max_batch, "--max-batch", min=1,
                                  help="Most images per forward pass (1: no micro-batching)."),
    max_wait_ms: float = typer.Option(D.max_wait_ms, "--max-wait-ms", min=0.0,
                                      help="Wait this long for more images before a batch."),
    queue_size: int = typer.Option(D.queue_size, "--queue-size", min=1,
                                   help="Images waiting at most; beyond it 503 + Retry-After."),
    max_file_mb: float = typer.Option(D.max_file_bytes / MIB, "--max-file-mb", min=0.001,
                                      help="Per-file upload cap (413)."),
    max_request_mb: float = typer.Option(D.max_request_bytes / MIB, "--max-request-mb",
                                         min=0.001, help="Per-request body cap (413)."),
    max_files: int = typer.Option(D.max_files, "--max-files", min=1,
                                  help="Most files per request (413)."),
    max_pixels: int = typer.Option(D.max_pixels, "--max-pixels", min=64,
                                   help="Most pixels per image, checked before decoding (422)."),
) -> None:
    """Serve the detectors over HTTP: a page at / and a JSON API under /v1 (docs at /docs).

    Upload images (page, or POST /v1/detect with multipart field files[]) and get each
    detector's P(fake), its calibrated threshold and verdict, an ensemble verdict, and with
    ?explain=true the image's spectrum against the run's real images and Grad-CAM overlays.
    Bad uploads get RFC 9457 problem+json answers (413, 415, 422), a full queue 503.

    The URL goes to stdout; the server's log to stderr. Stop with Ctrl-C.
    """
    # the serve extra (fastapi, uvicorn, prometheus-client): imported only by this command
    try:
        from ganforensics.serve.app import run_server
        from ganforensics.serve.models import demo_models, resolve_models
    except ImportError as exc:
        raise ConfigError(f"the service needs the serve extra ({exc.name} is missing): "
                          "pip install 'ganforensics[serve]'") from None
    settings = D.with_(host=host, port=port, workers=workers_threads, max_batch=max_batch,
                       max_wait_ms=max_wait_ms, queue_size=queue_size, max_files=max_files,
                       max_file_bytes=int(max_file_mb * MIB),
                       max_request_bytes=int(max_request_mb * MIB), max_pixels=max_pixels,
                       api_key=api_key_from_env(api_key_env))
    specs = resolve_models(models) if models else demo_models(DEMO_OUT)
    if not is_loopback(host):
        warn(f"binding to {host}: other machines can reach this service; put it behind a "
             "reverse proxy with TLS and set --api-key-env (docs/serve.md)")
    info(f"serving {len(specs)} detector(s): {', '.join(s.name for s in specs)}")
    shown = f"[{host}]" if ":" in host else host
    out(f"http://{shown}:{port}/")
    run_server(specs, settings)
