"""FF-RS invariants, masking sensitivity, colour ablation and Grad-CAM on tiny networks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from explain_toy import toy_dataset, train_toy_detector
from ganforensics.data import perturb
from ganforensics.errors import InputError
from ganforensics.explain import (
    Explainable,
    color_report,
    compute_ffrs,
    gradcam,
    keys_to_maps,
    mask_channels,
    masking_report,
    overlay,
    parse_key,
    read_ranking,
)
from ganforensics.explain import color as color_mod
from ganforensics.explain.adapter import batched_logits, sigmoid
from ganforensics.explain.ffrs import (
    CONFIDENCE,
    NoConfidentFakesError,
    normalised_channel_relevance,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def toy() -> Explainable:
    torch.set_num_threads(1)
    return train_toy_detector(n=128, steps=150, seed=0)


@pytest.fixture(scope="module")
def test_set() -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    images, labels = toy_dataset(100, 16, seed=99)
    gens = np.where(labels == 1, "tconv", "real")
    return images, labels, gens


# ---- FF-RS ---------------------------------------------------------------------------------


def test_normalisation_invariants_synthetic():
    g = torch.Generator().manual_seed(0)
    r = torch.randn(4, 3, 5, 5, generator=g)
    r[1] = r[1].abs()  # all non-negative: rows sum to exactly 1
    r[2] = 0.0  # no relevance at all: zeros
    r[3] = -r[3].abs()  # all negative: zeros
    v = normalised_channel_relevance(r)
    assert v.shape == (4, 3)
    assert torch.all(v >= 0)
    sums = v.sum(dim=1)
    expected0 = r[0].clamp(min=0).sum() / r[0].abs().sum()
    torch.testing.assert_close(sums[0], expected0.double())
    assert 0 < sums[0] < 1
    torch.testing.assert_close(sums[1], torch.tensor(1.0, dtype=torch.float64))
    assert sums[2] == 0 and sums[3] == 0


def test_ffrs_on_trained_detector(toy, test_set):
    images, labels, _ = test_set
    fakes = [im for im, lab in zip(images, labels, strict=True) if lab == 1]
    probs = sigmoid(batched_logits(toy, fakes))
    res = compute_ffrs(toy, fakes, keep_per_sample=True, k=5)
    # only confidently detected fakes are explained
    assert res.n_fakes == len(fakes)
    assert res.n_confident == res.n_samples == int((probs >= CONFIDENCE).sum()) > 10
    rk = res.ranking
    assert len(rk) == 8 + 16 + 16
    assert list(rk["rank"]) == list(range(1, len(rk) + 1))
    assert np.all(np.diff(rk["ffrs"]) <= 0) and np.all(rk["ffrs"] >= 0)
    assert res.topk == list(rk["key"][:5])
    for layer, per in res.per_layer.items():
        assert per.shape[0] == res.n_samples
        assert np.all(per >= 0)
        row_sums = per.sum(axis=1)
        assert np.all(row_sums <= 1 + 1e-9)
        assert np.all(row_sums > 0)
        # FF-RS = spatial sum of the mean over samples of R^ (= mean of per-sample sums)
        got = rk[rk["layer"] == layer].sort_values("channel")["ffrs"].to_numpy()
        np.testing.assert_allclose(got, per.mean(axis=0), rtol=1e-9)
    # per layer the FF-RS values sum to the mean normalised positive share (<= 1)
    assert np.all(rk.groupby("layer")["ffrs"].sum() <= 1 + 1e-9)


def test_ffrs_needs_confident_fakes(test_set):
    torch.manual_seed(0)
    from explain_toy import small_cnn

    untrained = Explainable(model=small_cnn().eval())
    images, labels, _ = test_set
    with pytest.raises(NoConfidentFakesError, match="P\\(fake\\) >= 0.9"):
        compute_ffrs(untrained, [im for im, lab in zip(images, labels, strict=True) if lab])
    assert issubclass(NoConfidentFakesError, InputError)  # a CLI user still gets a clear error


def test_ranking_csv_roundtrip_and_keys(tmp_path, toy, test_set):
    images, labels, _ = test_set
    res = compute_ffrs(toy, [im for im, lab in zip(images, labels, strict=True) if lab == 1])
    path = tmp_path / "ffrs.csv"
    res.ranking.sample(frac=1.0, random_state=0).to_csv(path, index=False)  # shuffled on disk
    back = read_ranking(path)
    pd.testing.assert_frame_equal(back, res.ranking, check_dtype=False)
    assert parse_key("layer1.0.downsample.0.#12") == ("layer1.0.downsample.0", 12)
    assert keys_to_maps(["0.#1", "3.#2", "0.#4"]) == {"0": [1, 4], "3": [2]}
    with pytest.raises(InputError, match="layer.#channel"):
        parse_key("conv1_3")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="key"):
        read_ranking(bad)


# ---- masking --------------------------------------------------------------------------------


def test_mask_channels_zeroes_exactly_and_restores():
    conv = nn.Conv2d(3, 4, 3, padding=1)
    model = nn.Sequential(conv)
    x = torch.randn(2, 3, 6, 6)
    ref = model(x)
    with mask_channels(model, {"0": [1, 3]}):
        y = model(x)
    assert torch.all(y[:, [1, 3]] == 0)
    torch.testing.assert_close(y[:, [0, 2]], ref[:, [0, 2]])
    torch.testing.assert_close(model(x), ref)
    with pytest.raises(InputError, match="4 channels"), mask_channels(model, {"0": [7]}):
        pass


def test_masking_topk_hurts_more_than_random(toy, test_set):
    images, labels, gens = test_set
    res = compute_ffrs(toy, [im for im, lab in zip(images, labels, strict=True) if lab == 1])
    table = masking_report(toy, res.ranking, 4, images, labels, gens, draws=5, seed=2021)
    mean = table[table["generator"] == "mean"].set_index("condition")
    assert set(mean.index) == {"none", "top-k", "low-k", "random-k"}
    base = mean.loc["none", "ap"]
    assert base > 0.95
    drop_top = base - mean.loc["top-k", "ap"]
    drop_rand = base - mean.loc["random-k", "ap"]
    drop_low = base - mean.loc["low-k", "ap"]
    assert drop_top > 0.03
    assert drop_top > 3 * max(drop_rand, 0) and drop_top > 3 * max(drop_low, 0)
    assert (table.loc[table["condition"] == "random-k", "draws"] == 5).all()
    # same seed, same draws
    again = masking_report(toy, res.ranking, 4, images, labels, gens, draws=5, seed=2021)
    pd.testing.assert_frame_equal(table, again)


# ---- colour ---------------------------------------------------------------------------------


def test_colour_ablation_uses_the_study_grayscale_formula():
    assert color_mod.grayscale is perturb.grayscale  # the one the study's grayscale stage uses
    img = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]], dtype=np.uint8)
    g = color_mod.grayscale(img)
    assert g.shape == img.shape and g.dtype == np.uint8
    assert (g[..., 0] == g[..., 1]).all() and (g[..., 1] == g[..., 2]).all()
    assert list(g[0, :, 0]) == [76, 150, 29, round(0.299 * 10 + 0.587 * 20 + 0.114 * 30)]


def _colour_probe() -> Explainable:
    """Channel 0 sees R - G (zero on gray input), channel 1 sees luma (same on gray input)."""
    conv = nn.Conv2d(3, 2, 1, bias=False)
    with torch.no_grad():
        conv.weight[0, :, 0, 0] = torch.tensor([1.0, -1.0, 0.0])
        conv.weight[1, :, 0, 0] = torch.tensor([0.299, 0.587, 0.114])
    head = nn.Linear(2, 1)
    with torch.no_grad():
        head.weight[:] = torch.tensor([[1.0, 4.0]])
        head.bias[:] = -2.0
    model = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)
    return Explainable(model=model.eval(), norm_mean=(0, 0, 0), norm_std=(1, 1, 1),
                       preprocess=lambda ims: torch.from_numpy(np.stack(ims)).permute(0, 3, 1, 2)
                       .float() / 255)


def test_color_report_flags_colour_conditional_maps():
    ex = _colour_probe()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(40)]
    labels = np.array([0, 1] * 20)
    gens = np.where(labels == 1, "g1", "real")
    ranking = pd.DataFrame({"key": ["0.#0", "0.#1"], "ffrs": [0.6, 0.4]})
    res = color_report(ex, images, labels, gens, ranking=ranking, k=2)
    maps = res.maps.set_index("key")
    assert maps.loc["0.#0", "colour_conditional"]
    assert maps.loc["0.#0", "median_gray"] == 0.0
    assert not maps.loc["0.#1", "colour_conditional"]
    assert res.share_colour_conditional == 0.5
    det = res.detection.set_index("generator")
    assert {"ap_rgb", "ap_gray", "acc_rgb", "acc_gray"} <= set(det.columns)
    assert det.loc["g1", "n_fake"] == 20


def test_color_report_on_trained_detector(toy, test_set):
    images, labels, gens = test_set
    res = color_report(toy, images, labels, gens, k=4)  # ranking computed from the test fakes
    assert res.ranking_source == "test fakes" and len(res.maps) == 4
    assert res.maps["p_value"].between(0, 1).all()
    s = res.summary()
    assert 0 <= s["share_colour_conditional"] <= 1 and 0 <= s["mean_ap_gray"] <= 1


# ---- Grad-CAM -------------------------------------------------------------------------------


def test_gradcam_localises_evidence():
    """A detector whose logit is the mean bright-pixel response: the heatmap peaks there."""
    conv = nn.Conv2d(3, 1, 1)
    with torch.no_grad():
        conv.weight[:] = 1.0
        conv.bias[:] = -1.5
    model = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1, 1))
    ex = Explainable(model=model.eval(), norm_mean=(0, 0, 0), norm_std=(1, 1, 1),
                     preprocess=lambda ims: torch.from_numpy(np.stack(ims)).permute(0, 3, 1, 2)
                     .float() / 255, feature_layer="0")
    img = np.full((16, 16, 3), 40, dtype=np.uint8)
    img[2:6, 9:13] = 250
    heat, logits = gradcam(ex, [img, img[::-1].copy()])
    assert heat[0].shape == (16, 16) and heat[0].max() == pytest.approx(1.0)
    assert heat[0].min() >= 0
    assert np.unravel_index(np.argmax(heat[0]), (16, 16))[0] in range(2, 6)
    assert heat[0][12:, :].max() == 0  # nothing bright there
    assert heat[1][:8, :].max() == 0 and heat[1][10:14, 9:13].min() > 0.5
    np.testing.assert_allclose(logits, batched_logits(ex, [img, img[::-1].copy()]), rtol=1e-6)
    ov = overlay(img, heat[0])
    assert ov.shape == (256, 256, 3) and ov.dtype == np.uint8


def test_ffrs_on_cnn_detector_resnet18_includes_shortcut_convs():
    """A registry ResNet-18 `CNNDetector` (head bias raised so every image is a confident
    fake): 4,800 ranked maps, the 1x1 shortcut convs among them, default k = 21."""
    from ganforensics.detectors.cnn import CNNDetector, build_model

    torch.manual_seed(0)
    net = build_model("resnet18")
    with torch.no_grad():
        net.fc.weight.mul_(0.01)
        net.fc.bias.fill_(5.0)
    det = CNNDetector(net, "resnet18", input_size=32)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (40, 40, 3), dtype=np.uint8) for _ in range(3)]
    res = compute_ffrs(det, images)
    assert res.n_samples == 3 and len(res.ranking) == 4800 and res.k == 21
    layers = set(res.ranking["layer"])
    assert {"conv1", "layer2.0.downsample.0", "layer4.0.downsample.0"} <= layers
    assert (res.ranking["ffrs"] >= 0).all()
    assert (res.ranking.groupby("layer")["ffrs"].sum() <= 1 + 1e-9).all()


def test_mask_position_folded_zeroes_batchnorm_output():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
    with torch.no_grad():
        model[1].bias.fill_(0.7)
        model[1].running_mean.fill_(-0.3)
    model.eval()
    x = torch.randn(2, 3, 5, 5)
    bn_out: dict[str, torch.Tensor] = {}
    # observe what the ReLU receives (= the BatchNorm output after any masking hook)
    model[2].register_forward_pre_hook(lambda _m, i: bn_out.__setitem__("o", i[0].clone()))
    with mask_channels(model, {"0": [2]}, position="conv"):
        model(x)
    # conv output zeroed: the BatchNorm still adds its shift
    assert torch.all(bn_out["o"][:, 2] != 0)
    with mask_channels(model, {"0": [2]}, position="folded"):
        model(x)
    assert torch.all(bn_out["o"][:, 2] == 0) and torch.all(bn_out["o"][:, 1] != 0)
    with pytest.raises(InputError, match="position"), mask_channels(model, {"0": [2]}, "bn"):
        pass
