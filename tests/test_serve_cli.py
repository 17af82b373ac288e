"""`ganforensics serve`: clear exit-2 errors before any server starts, and the real command
serving on 127.0.0.1 (URL on stdout, log on stderr, a clean stop on SIGINT)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ganforensics.cli.main import app
from test_serve_api import make_run, png_bytes

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _invoke(*args: object):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, [str(a) for a in args])


def test_without_models_or_demo_run_one_line_says_how_to_make_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = _invoke("serve")
    assert res.exit_code == 2, res.output
    assert "ganforensics demo" in res.output and "--models" in res.output
    assert "Traceback" not in res.output


def test_bad_models_and_unset_key_variable_exit_2(tmp_path, monkeypatch):
    res = _invoke("serve", "--models", tmp_path / "nope")
    assert res.exit_code == 2 and "no such file" in res.output
    (tmp_path / "empty").mkdir()
    res = _invoke("serve", "--models", tmp_path / "empty")
    assert res.exit_code == 2 and "no detector here" in res.output
    monkeypatch.delenv("GF_TEST_UNSET_KEY", raising=False)
    res = _invoke("serve", "--models", tmp_path / "empty", "--api-key-env", "GF_TEST_UNSET_KEY")
    assert res.exit_code == 2 and "GF_TEST_UNSET_KEY" in res.output


def test_help_teaches_with_examples():
    res = _invoke("serve", "--help")
    assert res.exit_code == 0 and "Example: ganforensics serve" in res.output
    assert "127.0.0.1" in res.output and "files[]" in res.output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(models: Path, port: int, *extra: str,
                 env: dict[str, str] | None = None) -> subprocess.Popen:
    """`python -m ganforensics --threads 1 serve --models MODELS --port PORT` in a child."""
    cmd = [sys.executable, "-m", "ganforensics", "--threads", "1", "serve", "--models",
           str(models), "--port", str(port), *extra]
    full_env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
                "GANFORENSICS_PROGRESS": "0", **(env or {})}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=full_env)


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise AssertionError("server not ready in time")


def post_image(port: int, data: bytes, name: str = "a.png") -> tuple[int, dict]:
    boundary = "gfcli"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files[]\"; "
            f"filename=\"{name}\"\r\nContent-Type: image/png\r\n\r\n").encode() + data + \
        f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/detect", data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; "
                                                          f"boundary={boundary}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.slow
def test_the_command_serves_on_loopback_and_stops_cleanly(tmp_path):
    run = make_run(tmp_path / "run")
    port = free_port()
    proc = start_server(run, port)
    try:
        wait_ready(port, proc)
        img = np.random.default_rng(3).integers(0, 256, (32, 32, 3), dtype=np.uint8)
        status, body = post_image(port, png_bytes(img))
        assert status == 200 and body["n_scored"] == 1
        assert {v["name"] for v in body["results"][0]["detectors"]} == {"cnn",
                                                                         "spectral-profile"}
        status, body = post_image(port, b"not an image", "x.png")
        assert status == 415 and body["status"] == 415
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.strip() == f"http://127.0.0.1:{port}/"
    assert "ready: 2 detector(s)" in err and "Uvicorn running on http://127.0.0.1" in err


@pytest.mark.slow
def test_a_detector_that_fails_to_load_stops_the_server_with_exit_2(tmp_path):
    run = make_run(tmp_path / "run")
    (run / "detectors" / "cnn" / "model.safetensors").write_bytes(b"not safetensors")
    proc = start_server(run, free_port())
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert "could not load the detectors" in err and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("error:")


def test_the_api_key_never_shows_in_the_settings_repr():
    from ganforensics.serve.settings import DEFAULTS

    assert "s3cret" not in repr(DEFAULTS.with_(api_key="s3cret"))


@pytest.mark.slow
def test_a_port_in_use_exits_2_with_one_line(tmp_path):
    run = make_run(tmp_path / "run")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = start_server(run / "detectors" / "cnn", port)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert f"could not serve on 127.0.0.1:{port}" in err and "Traceback" not in err
