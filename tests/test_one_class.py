"""One-class detectors and DOPING: edge selection, counts, seeds, the bit-for-bit baseline,
refusal of fakes, the held-out-real threshold, save / reload, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from skimage import data as skdata
from sklearn.ensemble import IsolationForest
from sklearn.svm import OneClassSVM
from typer.testing import CliRunner

from ganforensics.cli.main import app
from ganforensics.data.manifest import new_manifest, write_manifest
from ganforensics.detectors import load_detector
from ganforensics.detectors.base import sigmoid
from ganforensics.detectors.doping import (
    AAEConfig,
    augment,
    edge_codes,
    edge_indices,
    fit_aae,
    n_generated,
)
from ganforensics.detectors.one_class import (
    MODELS,
    OneClassDetector,
    _fit_model,
    _model_scores,
    fpr_threshold,
    train_one_class_detector,
)
from ganforensics.errors import ConfigError, InputError

TINY = AAEConfig(latent_dim=2, hidden=16, steps=40, batch_size=16)
runner = CliRunner()


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    rng = np.random.default_rng(7)
    return np.concatenate([rng.normal(size=(54, 6)), rng.normal(3.0, 0.3, size=(6, 6))])


@pytest.fixture(scope="module")
def photo_rows(tmp_path_factory) -> pd.DataFrame:
    """32 px patches of three photos as PNG rows (source = photo), plus fakes (blurred x2)."""
    root = tmp_path_factory.mktemp("oc")
    rng = np.random.default_rng(3)
    rows = []
    for name in ("astronaut", "coffee", "chelsea"):
        img = getattr(skdata, name)()
        for i in range(12):
            y, x = rng.integers(0, img.shape[0] - 64), rng.integers(0, img.shape[1] - 64)
            patch = img[y : y + 32, x : x + 32, :3]
            p = root / f"{name}_{i}.png"
            Image.fromarray(patch).save(p)
            rows.append({"abspath": str(p), "label": 0, "generator": "real", "source": name})
            up = np.asarray(Image.fromarray(img[y : y + 16, x : x + 16, :3]).resize((32, 32)))
            q = root / f"{name}_{i}_fake.png"
            Image.fromarray(up).save(q)
            rows.append({"abspath": str(q), "label": 1, "generator": "up", "source": name})
    return new_manifest(rows)


def test_edge_selection_is_exactly_top_q_by_norm(rng) -> None:
    codes = rng.normal(size=(97, 3))
    norms = np.linalg.norm(codes, axis=1)
    for q in (0.01, 0.1, 0.25, 1.0):
        idx = edge_indices(codes, q)
        n = int(np.ceil(q * 97 - 1e-9))
        assert len(idx) == len(set(idx.tolist())) == n
        assert set(idx.tolist()) == set(np.argsort(-norms)[:n].tolist())
        assert np.all(np.diff(norms[idx]) <= 0)  # largest first
        rest = np.setdiff1d(np.arange(97), idx)
        assert len(rest) == 0 or norms[idx].min() >= norms[rest].max()
    with pytest.raises(ConfigError):
        edge_indices(codes, 0.0)


def test_new_codes_stay_in_the_tail(rng) -> None:
    edge = rng.normal(size=(12, 3)) * 3.0
    z = edge_codes(edge, 500, k=3, jitter=0.5, rng=np.random.default_rng(0))
    assert z.shape == (500, 3)
    assert np.linalg.norm(z, axis=1).min() >= np.linalg.norm(edge, axis=1).min() - 1e-12


@pytest.mark.parametrize("method", ["doping", "prior", "smote"])
def test_generated_count_is_ratio_times_n_and_seeds_reproduce(vectors, method,
                                                               one_thread) -> None:
    aae = fit_aae(vectors, TINY, seed=11)
    for ratio in (0.5, 1.0, 2.0):
        out, info = augment(vectors, method, ratio, edge_quantile=0.1, cfg=TINY, seed=11,
                            fitted=aae)
        assert info["n_generated"] == n_generated(ratio, 60) == round(ratio * 60)
        assert out.shape == (60 + round(ratio * 60), 6)
        np.testing.assert_array_equal(out[:60], vectors)
        assert np.isfinite(out).all()
    again, _ = augment(vectors, method, 2.0, edge_quantile=0.1, cfg=TINY, seed=11)
    np.testing.assert_array_equal(again, out)
    other, _ = augment(vectors, method, 2.0, edge_quantile=0.1, cfg=TINY, seed=12)
    assert not np.array_equal(other[60:], out[60:])


def test_doping_decodes_edge_codes_of_the_aae(vectors, one_thread) -> None:
    out, info = augment(vectors, "doping", 1.0, edge_quantile=0.1, cfg=TINY, seed=3)
    assert info["n_edge"] == 6 and info["aae"]["latent_dim"] == 2
    aae = fit_aae(vectors, TINY, seed=3)  # the same AAE (same seed), as the baseline shares
    shared, _ = augment(vectors, "doping", 1.0, edge_quantile=0.1, cfg=TINY, seed=3,
                        fitted=aae)
    np.testing.assert_array_equal(shared, out)
    # the new vectors are the decoder's images of tail codes: no training vector repeated
    assert not (out[60:, None, :] == vectors[None, :, :]).all(axis=2).any()


@pytest.mark.parametrize("model", MODELS)
def test_doping_off_is_the_baseline_bit_for_bit(vectors, model, one_thread) -> None:
    base = OneClassDetector(model=model).fit_features(vectors, seed=5)
    for opts in ({"oversample": "doping", "ratio": 0.0}, {"oversample": "none", "ratio": 1.0},
                 {"oversample": "smote", "ratio": 0.001}):
        det = OneClassDetector(model=model).fit_features(vectors, seed=5, aae=TINY, **opts)
        assert det.params.keys() == base.params.keys()
        for k in base.params:
            np.testing.assert_array_equal(det.params[k], base.params[k])
    dop = OneClassDetector(model=model).fit_features(vectors, seed=5, oversample="doping",
                                                     ratio=1.0, aae=TINY)
    assert dop.meta["n_train"] == {"real": 60, "fake": 0, "synthetic": 60}
    assert not np.array_equal(dop.anomaly_scores(vectors), base.anomaly_scores(vectors))


def test_numpy_scores_match_sklearn(vectors, rng) -> None:
    test = rng.normal(size=(40, 6)) * 2
    p = _fit_model("isolation-forest", vectors, k=5, nu=0.1, n_trees=30, seed=4)
    m = IsolationForest(n_estimators=30, max_samples=60, random_state=4).fit(vectors)
    np.testing.assert_allclose(_model_scores("isolation-forest", p, test),
                               -m.score_samples(test), rtol=0, atol=1e-12)
    p = _fit_model("ocsvm", vectors, k=5, nu=0.2, n_trees=1, seed=4)
    m = OneClassSVM(nu=0.2, gamma="scale").fit(vectors)
    np.testing.assert_allclose(_model_scores("ocsvm", p, test), -m.decision_function(test),
                               rtol=0, atol=1e-9)


def test_fpr_threshold_counts_held_out_reals_only() -> None:
    probs = np.linspace(0.01, 0.99, 100)
    for target in (0.0, 0.05, 0.1, 0.333):
        t = fpr_threshold(probs, target)
        assert int((probs >= t).sum()) == int(np.floor(target * 100 + 1e-9))
    ties = np.array([0.2] * 10 + [0.9] * 10)
    assert (ties >= fpr_threshold(ties, 0.25)).sum() == 0  # never above the target
    with pytest.raises(ConfigError):
        fpr_threshold(probs, 1.0)


def test_training_with_fakes_is_refused(photo_rows) -> None:
    with pytest.raises(InputError, match=r"train\.csv: 36 fake row\(s\)"):
        train_one_class_detector(photo_rows, train_name="train.csv")
    unlabelled = photo_rows[photo_rows.label == 0].assign(label=pd.NA)
    with pytest.raises(InputError, match="36 row\\(s\\) without a 0/1 label"):
        train_one_class_detector(unlabelled, train_name="x.csv")


def test_threshold_from_held_out_reals_never_test_data(photo_rows, tmp_path) -> None:
    reals = photo_rows[photo_rows.label == 0]
    train, val = reals[reals.source != "chelsea"], photo_rows[photo_rows.source == "chelsea"]
    det = train_one_class_detector(train, val, model="knn", target_fpr=0.25, seed=1)
    assert det.meta["val_fakes_ignored"] == 12 and det.meta["n_val_real"] == 12
    # the threshold is the FPR quantile of the held-out reals' scores, nothing else
    from ganforensics.io.loading import load_images

    v = load_images(val[val.label == 0]).images
    assert det.threshold == fpr_threshold(det.probs(v), 0.25)
    assert np.mean(det.probs(v) >= det.threshold) <= 0.25
    # the same training and held-out reals with other fakes beside them: same threshold
    val2 = pd.concat([val[val.label == 0], photo_rows[(photo_rows.label == 1)]])
    det2 = train_one_class_detector(train, val2, model="knn", target_fpr=0.25, seed=1)
    assert det2.threshold == det.threshold
    # without --val, whole sources are held out and never trained on
    det3 = train_one_class_detector(reals, None, model="knn", seed=1)
    assert det3.meta["val_source"].startswith("held out")
    assert det3.meta["n_train"]["real"] + det3.meta["n_val_real"] == 36
    assert det3.meta["n_val_real"] % 12 == 0
    # save / reload (via the generic loader) gives the same logits and threshold
    det.save(tmp_path / "m")
    again = load_detector(tmp_path / "m")
    assert again.kind == "one-class" and again.threshold == det.threshold
    np.testing.assert_array_equal(again.logits(v), det.logits(v))
    np.testing.assert_array_equal(sigmoid(again.logits(v)), det.probs(v))


def test_cli_train_predict_and_refusal(photo_rows, tmp_path, one_thread) -> None:
    reals = photo_rows[photo_rows.label == 0]
    write_manifest(reals, tmp_path / "train.csv")
    write_manifest(photo_rows, tmp_path / "mixed.csv")
    res = runner.invoke(app, ["detector", "train", "--kind", "one-class", "--train",
                              str(tmp_path / "mixed.csv"), "--out", str(tmp_path / "bad")])
    assert res.exit_code == 2 and "mixed.csv: 36 fake row(s)" in res.output
    res = runner.invoke(app, ["detector", "train", "--kind", "one-class", "--features", "decay",
                              "--model", "isolation-forest", "--doping", "0.5",
                              "--oversample", "smote",
                              "--edge-quantile", "0.2", "--train", str(tmp_path / "train.csv"),
                              "--out", str(tmp_path / "m"), "--json"])
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["oversampling"]["n_generated"] == round(0.5 * meta["n_train"]["real"])
    assert meta["feature_settings"]["extractor"] == "decay"
    assert meta["oversampling"]["method"] == "smote"
    assert meta["val_fpr"] <= 0.05 and meta["target_fpr"] == 0.05
    res = runner.invoke(app, ["predict", "--model", str(tmp_path / "m"),
                              str(tmp_path / "mixed.csv")])
    assert res.exit_code == 0, res.output
    assert res.output.count("\n") >= 72


def test_study_preset_turns_the_one_class_stages_on() -> None:
    from ganforensics.study.config import load_config
    from ganforensics.study.pipeline import build_stages

    names = [s.name for s in build_stages(load_config(None, preset=["quick"]))]
    assert "one-class" not in names and "detector-one-class" not in names
    stages = {s.name: s for s in build_stages(load_config(None, preset=["quick", "oneclass"]))}
    assert {"detector-one-class", "one-class"} <= set(stages)
    assert not [n for n in stages if n.startswith("detector-one-class@")]  # trained once
    assert "detector-one-class" in stages["detection"].needs
    emb = load_config({"detectors": {"one_class": {"enabled": True,
                                                   "features": "cnn-embedding"}}})
    assert "detector-cnn" in {s.name: s for s in build_stages(emb)}["one-class"].needs
    with pytest.raises(ConfigError, match="one_class.model"):
        load_config({"detectors": {"one_class": {"model": "forest"}}})
    with pytest.raises(ConfigError, match="target_fpr"):
        load_config({"detectors": {"one_class": {"target_fpr": 1.5}}})


def test_digits_bench_pairs_methods_on_one_split() -> None:
    from ganforensics.evaluate.one_class_bench import digits_benchmark, summarise

    cells = digits_benchmark(normal=[3, 8], seeds=2, methods=["none", "smote"], model="knn",
                             ratio=1.0)
    assert len(cells) == 2 * 2 * 2
    assert (cells.loc[cells.method == "smote", "n_generated"].to_numpy()
            == cells.loc[cells.method == "smote", "n_train"].to_numpy()).all()
    assert cells["auc"].between(0.5, 1.0).all()
    again = digits_benchmark(normal=[3, 8], seeds=2, methods=["none", "smote"], model="knn",
                             ratio=1.0)
    pd.testing.assert_frame_equal(cells, again)
    summary = summarise(cells).set_index("method")
    assert summary.loc["none", "diff_vs_none_mean"] == 0.0
    assert summary.loc["smote", "diff_lo"] <= summary.loc["smote", "diff_vs_none_mean"] \
        <= summary.loc["smote", "diff_hi"]
    with pytest.raises(ConfigError):
        digits_benchmark(normal=[10], seeds=1)


def test_cnn_embedding_features_travel_with_the_detector(photo_rows, tmp_path,
                                                         one_thread) -> None:
    import torch

    from ganforensics.detectors.cnn import CNNDetector
    from ganforensics.detectors.cnn.archs import build_model

    torch.manual_seed(0)
    CNNDetector(build_model("small"), "small", input_size=32).save(tmp_path / "cnn")
    reals = photo_rows[photo_rows.label == 0]
    det = train_one_class_detector(reals, None, features="cnn-embedding", model="ocsvm",
                                   embedding_model=tmp_path / "cnn", seed=2)
    from ganforensics.io.loading import load_images

    imgs = load_images(reals.head(5)).images
    emb = det.features(imgs)
    assert emb.shape == (5, 128)  # the small net's pooled last feature maps
    # the embedding is the head's input: the head applied to it gives the CNN's logit
    fc = det.embedding.model.fc
    head = emb @ fc.weight.detach().double().numpy().T + fc.bias.detach().double().numpy()
    np.testing.assert_allclose(head[:, 0], det.embedding.logits(imgs), atol=1e-4)
    det.save(tmp_path / "oc")
    assert (tmp_path / "oc" / "embedding" / "model.safetensors").is_file()
    (tmp_path / "cnn" / "model.safetensors").unlink()  # the saved detector needs only itself
    again = load_detector(tmp_path / "oc")
    np.testing.assert_array_equal(again.logits(imgs), det.logits(imgs))
    with pytest.raises(ConfigError, match="embedding-model"):
        train_one_class_detector(reals, None, features="cnn-embedding")


def test_report_section_states_whether_doping_helped():
    """The study report's one-class numbers word DOPING's effect from its paired interval."""
    from ganforensics.study.one_class_stages import ONE_CLASS_FP_TABLE
    from ganforensics.study.report_sections import one_class_numbers

    rows = {ONE_CLASS_FP_TABLE: [
        {"method": "none", "condition": "none", "diff_vs_none": 0.0, "diff_lo": 0.0,
         "diff_hi": 0.0},
        {"method": "doping", "condition": "none", "diff_vs_none": -0.05, "diff_lo": -0.08,
         "diff_hi": -0.01},
        {"method": "doping", "condition": "blur:1", "diff_vs_none": 0.1, "diff_lo": 0.02,
         "diff_hi": 0.2},
        {"method": "doping", "condition": "jpeg:75", "diff_vs_none": 0.01, "diff_lo": -0.02,
         "diff_hi": 0.04},
    ]}
    lines = one_class_numbers(rows, {})
    assert lines[0].startswith("DOPING cut") and "clean test reals" in lines[0]
    assert lines[1].startswith("DOPING raised") and "blur:1" in lines[1]
    assert lines[2].startswith("DOPING did not clearly change")
