"""`ganforensics serve`: every endpoint and every error status through the app's test client.

The detectors are tiny and built here (a SmallCNN and a spectral-profile detector fitted on
random patches, in a study-like run folder with a real-image profile table), so the expected
numbers come from the library itself, never from constants.
"""

from __future__ import annotations

import base64
import hashlib
import io
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from ganforensics.detectors.base import logit, sigmoid
from ganforensics.detectors.cnn import CNNDetector, build_model
from ganforensics.detectors.loading import load_detector
from ganforensics.detectors.spectral import SpectralDetector
from ganforensics.errors import InputError
from ganforensics.serve.app import create_app
from ganforensics.serve.models import load_served, resolve_models
from ganforensics.serve.problems import MEDIA_TYPE
from ganforensics.serve.settings import DEFAULTS
from ganforensics.spectral.spectra import durall_plan, durall_profiles
from ganforensics.study.measure_stages import PROFILES_COLUMNS, PROFILES_TABLE
from hostile import write_hostile

EXPECTED_STATUS = {"empty.png": 415, "text.png": 415, "icon.gif": 415, "notes.txt": 415,
                   "truncated.jpg": 422, "bomb.png": 422}


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def png_bytes(arr: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def make_run(root: Path, seed: int = 0) -> Path:
    """A study-like run folder: detectors/cnn, detectors/spectral-profile and the real-image
    profile table the spectra stage writes."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    CNNDetector(build_model("small"), "small", input_size=32, threshold=0.45).save(
        root / "detectors" / "cnn")
    real = rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    fake = np.repeat(np.repeat(real[:, ::2, ::2], 2, axis=1), 2, axis=2)  # x2 up-sampled
    spec = SpectralDetector("spectral-profile").fit(list(real) + list(fake), [0] * 12 + [1] * 12)
    spec.threshold = 0.55
    spec.save(root / "detectors" / "spectral-profile")
    prof = durall_profiles(real)
    freq = durall_plan(32, 32).freq
    rows = [{"group": "real", "bin": j, "freq": float(freq[j]), "mean": float(prof[:, j].mean()),
             "std": float(prof[:, j].std())} for j in range(prof.shape[1])]
    table = root / PROFILES_TABLE
    table.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=list(PROFILES_COLUMNS)).to_csv(table, index=False)
    return root


def wait_ready(client: TestClient, timeout: float = 30.0) -> None:
    t0 = time.monotonic()
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() - t0 < timeout, "models did not load"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    return make_run(tmp_path_factory.mktemp("serve") / "run")


@pytest.fixture(scope="module")
def client(run_dir):
    app = create_app(resolve_models([run_dir]),
                     DEFAULTS.with_(max_file_bytes=40_000, max_request_bytes=120_000,
                                    max_files=6, max_wait_ms=2.0))
    with TestClient(app) as c:
        wait_ready(c)
        yield c


@pytest.fixture
def images():
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, (40, 48, 3), dtype=np.uint8),
            rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)]


def assert_problem(resp, status: int, needle: str = "") -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(MEDIA_TYPE)
    body = resp.json()
    assert body["status"] == status and body["title"] and body["type"].startswith("https://")
    assert needle.lower() in body["detail"].lower(), body
    assert "Traceback" not in resp.text
    return body


def test_healthz_and_readyz_follow_the_loading(run_dir):
    gate = threading.Event()
    specs = resolve_models([run_dir])

    def slow_load():
        gate.wait(20)
        return load_served(specs)

    with TestClient(create_app(slow_load)) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        r = c.get("/readyz")
        assert_problem(r, 503, "loading")
        assert r.headers["retry-after"] == str(DEFAULTS.retry_after_s)
        assert_problem(c.post("/v1/detect", files={"files[]": ("a.png", b"x")}), 503)
        gate.set()
        wait_ready(c)
        assert c.get("/readyz").json() == {"status": "ready", "models": 2}


def test_failed_loading_keeps_readyz_503_with_the_reason():
    def broken():
        raise InputError("models/x: no detector here")

    with TestClient(create_app(broken)) as c:
        t0 = time.monotonic()
        while "still loading" in c.get("/readyz").text and time.monotonic() - t0 < 20:
            time.sleep(0.05)
        assert_problem(c.get("/readyz"), 503, "no detector here")
        assert c.get("/healthz").status_code == 200


def test_models_lists_names_kinds_thresholds_provenance_and_limits(client, run_dir):
    body = client.get("/v1/models").json()
    by = {m["name"]: m for m in body["models"]}
    assert set(by) == {"cnn", "spectral-profile"}
    for name, m in by.items():
        det = load_detector(run_dir / "detectors" / name)
        assert m["kind"] == det.kind and m["threshold"] == pytest.approx(det.threshold)
    assert by["cnn"]["explainable"] and not by["spectral-profile"]["explainable"]
    assert by["cnn"]["provenance"]["arch"] == "small"
    assert body["limits"]["max_file_bytes"] == 40_000 and body["auth"] is False


def test_detect_scores_each_image_like_the_library(client, run_dir, images):
    files = [("files[]", (f"im{i}.png", png_bytes(a), "image/png")) for i, a in enumerate(images)]
    r = client.post("/v1/detect", files=files)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["n_scored"] == 2 and body["n_rejected"] == 0
    dets = {n: load_detector(run_dir / "detectors" / n) for n in ("cnn", "spectral-profile")}
    for (_, (name, data, _)), arr, res in zip(files, images, body["results"], strict=True):
        assert res["filename"] == name and res["sha256"] == hashlib.sha256(data).hexdigest()
        assert (res["height"], res["width"]) == arr.shape[:2]
        probs, thrs = [], []
        for v in res["detectors"]:
            det = dets[v["name"]]
            expected = float(det.probs([arr])[0])
            assert v["p_fake"] == pytest.approx(expected, abs=1e-4)
            assert v["label"] == ("fake" if v["p_fake"] >= det.threshold else "real")
            assert v["latency_ms"] > 0 and 1 <= v["batch_size"] <= 2
            probs.append(v["p_fake"])
            thrs.append(v["threshold"])
        margin = np.mean(logit(np.array(probs)) - logit(np.array(thrs)))
        assert res["ensemble"]["p_fake"] == pytest.approx(float(sigmoid(margin)), abs=1e-9)
        assert res["ensemble"]["label"] == ("fake" if margin >= 0 else "real")
        assert "spectrum" not in res


def test_explain_adds_the_spectrum_against_the_reals_and_gradcam_for_cnns(client, run_dir,
                                                                          images):
    arr = images[1]
    r = client.post("/v1/detect?explain=true",
                    files={"files[]": ("a.png", png_bytes(arr), "image/png")})
    res = r.json()["results"][0]
    spec = res["spectrum"]
    np.testing.assert_allclose(spec["profile"], durall_profiles(arr[None])[0], rtol=1e-9)
    np.testing.assert_allclose(spec["freq"], durall_plan(64, 64).freq)
    ref = pd.read_csv(run_dir / PROFILES_TABLE)
    np.testing.assert_allclose(spec["reference"]["mean"], ref["mean"])
    by = {v["name"]: v for v in res["detectors"]}
    assert "gradcam_png" not in by["spectral-profile"]
    png = Image.open(io.BytesIO(base64.b64decode(by["cnn"]["gradcam_png"])))
    assert png.format == "PNG" and min(png.size) >= 64


def test_a_bad_file_in_a_batch_gets_its_own_error_and_the_others_are_scored(client, tmp_path,
                                                                            images):
    folder = tmp_path / "hostile"
    write_hostile(folder)
    names = sorted(EXPECTED_STATUS)[:5]
    files = [("files[]", (n, (folder / n).read_bytes(), "application/octet-stream"))
             for n in names]
    files.insert(2, ("files[]", ("good.jpg", png_bytes(images[0], "JPEG"), "image/jpeg")))
    r = client.post("/v1/detect", files=files)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["n_scored"] == 1 and body["n_rejected"] == 5
    by = {x["filename"]: x for x in body["results"]}
    assert [x["filename"] for x in body["results"]] == [f[1][0] for f in files]  # input order
    assert by["good.jpg"]["detectors"] and "error" not in by["good.jpg"]
    for n in names:
        assert by[n]["error"]["status"] == EXPECTED_STATUS[n], by[n]
        assert by[n]["error"]["detail"].startswith(n) and "detectors" not in by[n]


@pytest.mark.parametrize("name", sorted(EXPECTED_STATUS))
def test_one_bad_file_alone_is_answered_with_its_problem(client, tmp_path, name):
    folder = tmp_path / "hostile"
    write_hostile(folder)
    r = client.post("/v1/detect", files={"files[]": (name, (folder / name).read_bytes())})
    body = assert_problem(r, EXPECTED_STATUS[name], name)
    slug = "not-an-image" if EXPECTED_STATUS[name] == 415 else "unprocessable-image"
    assert body["type"].endswith("/" + slug)
    assert body["instance"] == "/v1/detect" and len(body["errors"]) == 1


def test_size_caps_give_413(client, images):
    big = np.random.default_rng(1).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    data = png_bytes(big)  # ~49 kB: over the 40 kB per-file cap, under the request cap
    assert len(data) > 40_000
    assert_problem(client.post("/v1/detect", files={"files[]": ("big.png", data)}), 413,
                   "per-file cap")
    # per request, declared by Content-Length
    three = [("files[]", (f"b{i}.png", data)) for i in range(3)]
    assert_problem(client.post("/v1/detect", files=three), 413, "120,000")
    # per request, streamed without a Content-Length (chunked): counted as it arrives
    boundary = "gfboundary"
    part = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files[]\"; "
            f"filename=\"x.png\"\r\nContent-Type: image/png\r\n\r\n").encode()

    def chunks():
        yield part
        for _ in range(30):
            yield b"\0" * 8192
        yield f"\r\n--{boundary}--\r\n".encode()

    r = client.post("/v1/detect", content=chunks(),
                    headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert_problem(r, 413, "120,000")
    # too many files in one request
    small = png_bytes(images[0])
    many = [("files[]", (f"s{i}.png", small)) for i in range(7)]
    assert_problem(client.post("/v1/detect", files=many), 413, "more than 6 files")


def test_other_bad_requests_are_4xx_problems(client):
    tiny = png_bytes(np.zeros((4, 4, 3), np.uint8))
    assert_problem(client.post("/v1/detect", files={"files[]": ("t.png", tiny)}), 422,
                   "too small")
    body = assert_problem(client.post("/v1/detect", json={"files": []}), 415, "multipart")
    assert body["type"].endswith("/invalid-request")  # a malformed request, not a bad image
    assert_problem(client.post("/v1/detect", data={"note": "no file"},
                               files={"other": ("a.png", tiny)}), 422, "no files")
    body = assert_problem(client.post("/v1/detect?explain=maybe",
                                      files={"files[]": ("t.png", tiny)}), 422, "explain")
    assert body["type"].endswith("/invalid-request") and body["errors"][0]["loc"][-1] == "explain"
    assert_problem(client.post("/v1/detect", content=b"--x\r\ngarbage",
                               headers={"content-type": "multipart/form-data; boundary=x"}),
                   422, "no files")
    assert_problem(client.get("/nowhere"), 404)
    assert_problem(client.get("/v1/detect"), 405)


def test_files_field_without_brackets_is_accepted(client, images):
    r = client.post("/v1/detect", files={"files": ("a.png", png_bytes(images[0]))})
    assert r.status_code == 200 and r.json()["n_scored"] == 1


def test_api_key_is_required_on_v1_when_set(run_dir, images):
    app = create_app(resolve_models([run_dir / "detectors" / "cnn"]),
                     DEFAULTS.with_(api_key="s3cret-key"))
    with TestClient(app) as c:
        wait_ready(c)
        files = {"files[]": ("a.png", png_bytes(images[0]))}
        r = c.post("/v1/detect", files=files)
        assert_problem(r, 401, "X-API-Key")
        assert "ApiKey" in r.headers["www-authenticate"]
        assert_problem(c.post("/v1/detect", files=files, headers={"X-API-Key": "s3cret"}), 401)
        assert_problem(c.get("/v1/models", headers={"X-API-Key": "wrong"}), 401)
        ok = c.post("/v1/detect", files=files, headers={"X-API-Key": "s3cret-key"})
        assert ok.status_code == 200
        assert "ensemble" not in ok.json()["results"][0]  # one detector: no ensemble
        assert c.get("/v1/models", headers={"X-API-Key": "s3cret-key"}).json()["auth"]
        assert c.get("/healthz").status_code == 200 and c.get("/").status_code == 200


def test_a_full_queue_answers_503_with_retry_after(run_dir, images):
    app = create_app(resolve_models([run_dir / "detectors" / "cnn"]),
                     DEFAULTS.with_(queue_size=2, retry_after_s=3))
    with TestClient(app) as c:
        wait_ready(c)
        files = [("files[]", (f"a{i}.png", png_bytes(images[0]))) for i in range(3)]
        r = c.post("/v1/detect", files=files)
        assert_problem(r, 503, "queue size 2")
        assert r.headers["retry-after"] == "3"
        assert c.post("/v1/detect", files=files[:2]).status_code == 200  # two fit


def test_metrics_count_requests_and_time_each_detector(client, images):
    before = client.get("/metrics").text
    client.post("/v1/detect", files={"files[]": ("a.png", png_bytes(images[0]))})
    client.post("/v1/detect", files={"files[]": ("t.txt", b"text")})
    text = client.get("/metrics").text

    def value(body: str, prefix: str) -> float:
        lines = [ln for ln in body.splitlines() if ln.startswith(prefix)]
        return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0

    for det in ("cnn", "spectral-profile"):
        key = f'ganforensics_detector_batch_seconds_count{{detector="{det}"}}'
        assert value(text, key) == value(before, key) + 1
    key = 'ganforensics_http_requests_total{method="POST",route="/v1/detect",status="415"}'
    assert value(text, key) == value(before, key) + 1
    assert "ganforensics_queue_depth 0.0" in text


def test_page_and_static_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/static/app.js" in page.text and "http" not in page.text.split("<body>")[0]
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    assert client.get("/openapi.json").json()["paths"]["/v1/detect"]["post"]


def test_resolve_models_names_each_detector_of_runs_and_seed_runs(tmp_path, run_dir):
    import shutil

    multi = tmp_path / "multi"
    for seed in ("seed-2021", "seed-2022"):
        shutil.copytree(run_dir, multi / seed)
    names = [s.name for s in resolve_models([multi, run_dir / "detectors" / "cnn"])]
    assert names == ["seed-2021/cnn", "seed-2021/spectral-profile", "seed-2022/cnn",
                     "seed-2022/spectral-profile", "cnn"]
    twice = [s.name for s in resolve_models([run_dir, run_dir])]
    assert len(set(twice)) == 4
    for bad in (tmp_path / "missing", tmp_path):
        with pytest.raises(InputError):
            resolve_models([bad])


def test_concurrent_requests_share_micro_batches_across_two_workers(run_dir):
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(11)
    arrays = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(12)]
    det = load_detector(run_dir / "detectors" / "cnn")
    expected = det.probs(arrays)
    app = create_app(resolve_models([run_dir / "detectors" / "cnn"]),
                     DEFAULTS.with_(workers=2, max_batch=8, max_wait_ms=80.0))
    with TestClient(app) as c:
        wait_ready(c)

        def post(i: int) -> dict:
            r = c.post("/v1/detect", files={"files[]": (f"{i}.png", png_bytes(arrays[i]))})
            assert r.status_code == 200, r.text
            return r.json()["results"][0]["detectors"][0]

        with ThreadPoolExecutor(12) as pool:
            verdicts = list(pool.map(post, range(12)))
    np.testing.assert_allclose([v["p_fake"] for v in verdicts], expected, atol=1e-4)
    assert max(v["batch_size"] for v in verdicts) > 1  # requests were batched together
