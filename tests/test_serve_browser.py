"""The page in a real browser: Playwright for Python driving Debian's Chromium
(`/usr/bin/chromium`, never a downloaded browser) against `ganforensics serve` on 127.0.0.1.

It uploads a real image and a bad file with the keyboard, reads both cards, downloads the
results as JSON, checks the layout at 1200 px and at phone width, and saves screenshots in the
test's tmp dir.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from skimage import data as skdata

from test_serve_api import make_run
from test_serve_cli import free_port, start_server, wait_ready

CHROMIUM = os.environ.get("GANFORENSICS_CHROMIUM") or shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--no-first-run"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: install Debian's package "
                       "(apt-get install -y chromium); .ci/run does this"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    run = make_run(root / "run")
    port = free_port()
    proc = start_server(run, port)
    try:
        wait_ready(port, proc)
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)


def _inputs(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    cat = np.asarray(skdata.chelsea())[40:200, 120:280]  # a 160x160 photo crop
    good = folder / "chelsea.png"
    Image.fromarray(np.ascontiguousarray(cat)).save(good)
    bad = folder / "notes.png"
    bad.write_bytes(b"these are notes, not pixels\n" * 20)
    return good, bad


def test_page_uploads_scores_and_rejects_in_chromium(server, tmp_path):
    from playwright.sync_api import sync_playwright  # dev dependency; browser from Debian

    good, bad = _inputs(tmp_path / "in")
    shots = os.environ.get("GANFORENSICS_SERVE_SCREENSHOT")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900},
                                    accept_downloads=True)
            page.set_default_timeout(120_000)  # generous: the CI machine may be shared
            page.goto(server)
            page.wait_for_function(
                "document.getElementById('models').textContent.startsWith('Detectors:')")
            assert "cnn (cnn" in page.text_content("#models")
            # keyboard only: Tab reaches the drop zone first, Enter opens the file chooser
            page.keyboard.press("Tab")
            assert page.evaluate("document.activeElement.id") == "drop"
            # Enter asks the hidden file input for its picker (counted). With Debian's
            # chromium 156 (updated 2026-12-02) Playwright's file-chooser event stopped
            # arriving here after the key press (on a bare page it still does; cause not
            # found), so the files are then set on that input directly.
            page.evaluate("window.picks = 0; document.getElementById('files')"
                          ".addEventListener('click', () => { window.picks += 1; })")
            page.keyboard.press("Enter")
            page.wait_for_function("window.picks === 1")
            page.set_input_files("#files", [str(good), str(bad)])
            page.wait_for_selector(".card.ok")
            page.wait_for_selector(".card.rejected")
            page.wait_for_function("document.getElementById('status').textContent"
                                   ".startsWith('Done')")

            ok = page.locator('.card.ok[data-filename="chelsea.png"]')
            text = ok.inner_text()
            assert "cnn (cnn)" in text and "spectral-profile (spectral-profile)" in text
            assert "ensemble of 2" in text and "160×160 px" in text
            assert ok.locator(".bar .thr").count() == 3  # a threshold mark per verdict
            assert ok.locator("svg.spectrum polyline").count() == 2  # image and reals
            heat = ok.locator("img.heat")
            assert heat.count() == 1
            assert heat.evaluate("img => img.complete && img.naturalWidth > 0")
            rejected = page.locator('.card.rejected[data-filename="notes.png"]')
            assert "415" in rejected.inner_text()
            assert "not a recognised image" in rejected.locator("[role=alert]").inner_text()

            with page.expect_download() as dl:
                page.click("#dl-json")
            saved = json.loads(Path(dl.value.path()).read_text())
            by = {x["filename"]: x for x in saved}
            p_cnn = next(v["p_fake"] for v in by["chelsea.png"]["result"]["detectors"]
                         if v["name"] == "cnn")
            assert f"{p_cnn:.3f}" in text  # the card shows what the API answered
            assert by["notes.png"]["error"]["status"] == 415
            with page.expect_download() as dl:
                page.click("#dl-csv")
            table = pd.read_csv(dl.value.path(), keep_default_na=False)
            mine = table[table["filename"] == "chelsea.png"]
            assert sorted(mine["detector"]) == ["cnn", "ensemble", "spectral-profile"]
            cnn_row = mine[mine["detector"] == "cnn"].iloc[0]
            assert float(cnn_row["p_fake"]) == pytest.approx(p_cnn)
            assert table[table["filename"] == "notes.png"]["error"].iloc[0].startswith("415")

            page.screenshot(path=str(tmp_path / "page-1200.png"), full_page=True)
            if shots:
                page.screenshot(path=shots, full_page=True)
            page.set_viewport_size({"width": 390, "height": 844})
            overflow = page.evaluate("document.documentElement.scrollWidth - innerWidth")
            assert overflow <= 0, f"{overflow}px of horizontal scrolling at phone width"
            page.screenshot(path=str(tmp_path / "page-390.png"), full_page=True)
        finally:
            browser.close()
    for name in ("page-1200.png", "page-390.png"):
        assert Image.open(tmp_path / name).size[0] in (1200, 390)
