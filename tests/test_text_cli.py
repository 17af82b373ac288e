"""`ganforensics dga ...` (cli/dga_cmds.py): the protocol command by command on tiny data, bad
lines reported with exit code 1, one-line errors, no silent overwrites, the demo's report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ganforensics.cli.main import app
from ganforensics.text.corpus import WORDS

pytest.importorskip("hstspreload")
pytest.importorskip("tldextract")


def _invoke(*args: object):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["--threads", "1", *[str(a) for a in args]])


def _ok(res) -> str:  # type: ignore[no-untyped-def]
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output
    return res.stdout


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    """data -> train-ae -> train-gan -> generate -> train-classifier, on a tiny user list."""
    tmp = tmp_path_factory.mktemp("dga")
    rng = np.random.default_rng(0)
    words = [w + str(rng.integers(0, 100)) if i % 2 else w for i, w in enumerate(WORDS)]
    (tmp / "benign.txt").write_text("\n".join(words) + "\n")
    d = tmp / "data"
    _ok(_invoke("dga", "data", "--benign", tmp / "benign.txt", "--max-len", 16, "--out", d))
    res = _invoke("dga", "train-ae", "--data", d, "--out", tmp / "ae", "--filters", 16,
                  "--epochs", 2, "--json")
    ae = json.loads(_ok(res))
    res = _invoke("dga", "train-gan", "--autoencoder", tmp / "ae", "--data", d, "--out",
                  tmp / "gan", "--variant", "wgan-gp", "--steps", 3, "--json")
    gan = json.loads(_ok(res))
    _ok(_invoke("dga", "generate", "--generator", tmp / "gan", "-n", 50, "--out",
                tmp / "names.txt"))
    clf = json.loads(_ok(_invoke("dga", "train-classifier", "--data", d, "--model", "bigram",
                                 "--out", tmp / "bigram", "--json")))
    return tmp, ae, gan, clf


def test_data_reports_bad_lines_with_numbers_and_exit_1(tmp_path):
    f = tmp_path / "b.txt"
    f.write_text("alpha\nbravo\nbad_name\ncharlie.com\n\n-x\ndelta\necho\nfoxtrot\n")
    res = _invoke("dga", "data", "--benign", f, "--out", tmp_path / "d", "--json")
    assert res.exit_code == 1, res.output
    assert f"{f}:3:" in res.stderr and f"{f}:6:" in res.stderr and "Traceback" not in res.output
    out = json.loads(res.stdout)
    assert [b["line"] for b in out["bad_lines"]] == [3, 6]
    assert out["benign_train"] + out["benign_held_out"] == 6  # alpha .. foxtrot, charlie kept
    meta = json.loads((tmp_path / "d" / "data.json").read_text())
    assert meta["vocab"]["max_len"] == 60 and meta["dga_sources"]
    dga = pd.read_csv(tmp_path / "d" / "dga.csv")
    assert set(dga["source"]) <= {"synthetic-random", "synthetic-hex", "synthetic-dict"}
    assert set(dga["split"]) == {"train", "held_out"}
    # an existing run is not overwritten
    res = _invoke("dga", "data", "--benign", f, "--out", tmp_path / "d")
    assert res.exit_code == 3 and "--force" in res.output


def test_the_protocol_command_by_command(flow):
    tmp, ae, gan, clf = flow
    assert ae["code_dim"] == 16 * 8 and 0 <= ae["held_out_char_acc"] <= 1
    assert len(gan["samples"]) == 20
    assert (tmp / "gan" / "generator.safetensors").exists()
    assert (tmp / "gan" / "config.yaml").exists() and (tmp / "gan" / "env.json").exists()
    lines = (tmp / "names.txt").read_text().split("\n")
    assert len(lines) == 51 and lines[-1] == ""
    assert clf["model"] == "bigram" and 0 <= clf["accuracy"] <= 1
    res = _invoke("dga", "evaluate", tmp / "names.txt", "--classifier", tmp / "bigram",
                  "--data", tmp / "data", "--json")
    rows = json.loads(_ok(res))
    assert rows[0]["names"] == "names" and rows[0]["n"] == 50
    assert {"ks_length", "js_unigram", "js_bigram", "repeat_rate", "benign_collision",
            "valid_rate", "evasion_bigram", "usable_bigram"} <= set(rows[0])
    res = _invoke("dga", "harden", "--data", tmp / "data", "--classifier", tmp / "bigram",
                  "--generator", tmp / "gan", "--out", tmp / "harden", "--n-names", 40, "--epochs",
                  1, "--json")
    rows = json.loads(_ok(res))["rows"]
    assert {(r["hardened_with"], r["eval_variant"]) for r in rows} == {
        ("none", "wgan-gp"), ("wgan-gp", "wgan-gp")}
    assert (tmp / "harden" / "tuned" / "bigram-wgan-gp" / "classifier.json").exists()


def test_generate_to_stdout_and_errors_name_the_file(flow, tmp_path):
    tmp = flow[0]
    out = _ok(_invoke("dga", "generate", "--generator", tmp / "gan", "-n", 7, "--seed", 3))
    assert len(out.split("\n")) == 8
    res = _invoke("dga", "generate", "--generator", tmp / "gan", "-n", 5, "--out",
                  tmp / "names.txt")
    assert res.exit_code == 3  # no silent overwrite
    res = _invoke("dga", "train-gan", "--autoencoder", tmp / "data", "--data", tmp / "data",
                  "--out", tmp_path / "g")
    assert res.exit_code == 2 and "error:" in res.output and "Traceback" not in res.output
    res = _invoke("dga", "train-gan", "--autoencoder", tmp / "ae", "--data", tmp / "data",
                  "--out", tmp_path / "g2", "--variant", "vae")
    assert res.exit_code == 2 and "variant" in res.output
    res = _invoke("dga", "train-classifier", "--data", tmp_path, "--model", "lstm", "--out",
                  tmp_path / "c")
    assert res.exit_code == 2 and "data.json" in res.output


def test_demo_writes_the_report(tmp_path: Path):
    res = _invoke("dga", "demo", "--out", tmp_path / "demo", "--benign", 80, "--gan-steps", 2,
                  "--n-names", 30)
    report = Path(_ok(res).strip().splitlines()[-1])
    assert report.name == "report.html" and report.exists()
    text = report.read_text()
    for needle in ("Variants side by side", "Hardening", "wgan-gp", "lsgan", "Sample names",
                   "hstspreload", "data:image/png;base64"):
        assert needle in text, needle
    assert "http://" not in text and "https://" not in text  # self-contained
    res_json = json.loads((tmp_path / "demo" / "results.json").read_text())
    variants = [m["variant"] for m in res_json["metrics"]]
    assert variants[:3] == ["gan", "lsgan", "wgan-gp"]
    h = pd.read_csv(tmp_path / "demo" / "hardening.csv")
    assert len(h) == 4 * 4 * 3  # classifiers x (none + 3 hardened) x 3 eval variants
    for f in ("config.yaml", "env.json", "metrics.csv", "classifiers.csv"):
        assert (tmp_path / "demo" / f).exists()
    cfg = (tmp_path / "demo" / "config.yaml").read_text()
    assert "steps: 2" in cfg and "benign: 80" in cfg and "variant:" not in cfg
