"""DGA classifiers and name metrics (ganforensics.text.classifiers / metrics): each kind learns a
clear separation, early stopping keeps the best epoch, saving round-trips, fine-tuning leaves
the original alone; metrics against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganforensics.errors import ConfigError, InputError
from ganforensics.text.classifiers import (
    KINDS,
    ClassifierConfig,
    DGAClassifier,
    bigram_counts,
    bigram_vocab,
    fine_tune,
    train_classifier,
)
from ganforensics.text.corpus import WORDS, synthetic_dga
from ganforensics.text.encoding import Vocab
from ganforensics.text.metrics import (
    benign_collision,
    js_divergence,
    ks_length,
    length_histogram,
    name_metrics,
    repeat_rate,
)


@pytest.fixture(scope="module")
def toy():
    """Benign = dictionary words (+ a digit), DGA = hex strings: easy to tell apart."""
    rng = np.random.default_rng(0)
    benign = sorted({w + (str(rng.integers(0, 10)) if rng.random() < 0.3 else "")
                     for w in WORDS})
    dga = [n for n, _ in synthetic_dga(len(benign), seed=1, kinds=("hex",), max_len=16)]
    names = benign + dga
    labels = [0] * len(benign) + [1] * len(dga)
    return Vocab(max_len=16), names, labels, benign, dga


@pytest.fixture(scope="module")
def trained(toy):
    v, names, labels, _, _ = toy
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cfg = ClassifierConfig(epochs=6, patience=2, batch=32, filters=16, hidden=32, lr=3e-3)
    out = {k: train_classifier(k, names, labels, v, cfg) for k in KINDS}
    yield out
    torch.set_num_threads(threads)


@pytest.mark.parametrize("kind", KINDS)
def test_each_classifier_separates_a_clear_case(toy, trained, kind):
    v, names, labels, benign, dga = toy
    clf = trained[kind]
    s = clf.scores(names)
    assert s.shape == (len(names),) and ((s >= 0) & (s <= 1)).all()
    acc = float(((s >= 0.5) == np.array(labels)).mean())
    assert acc > 0.9, (kind, acc)
    assert clf.info["val_acc"] > 0.85 and 1 <= clf.info["best_epoch"] <= 6
    assert float(np.mean(clf.scores(dga))) > float(np.mean(clf.scores(benign)))


def test_early_stopping_keeps_the_best_validation_epoch(trained):
    clf = trained["lstm"]
    hist = clf.info["history"]
    losses = [h["val_loss"] for h in hist]
    assert clf.info["val_loss"] == pytest.approx(min(losses))
    assert clf.info["best_epoch"] == 1 + losses.index(min(losses))
    # it stops `patience` epochs after the best one (or at the last epoch)
    assert len(hist) == min(6, clf.info["best_epoch"] + 2)


@pytest.mark.parametrize("kind", ["bigram", "cnn"])
def test_saved_classifiers_reload_exactly(toy, trained, kind, tmp_path):
    v, names, _, _, _ = toy
    trained[kind].save(tmp_path / kind)
    back = DGAClassifier.load(tmp_path / kind)
    assert back.kind == kind and back.vocab == v
    assert np.allclose(back.scores(names), trained[kind].scores(names))
    with pytest.raises(InputError, match="classifier folder"):
        DGAClassifier.load(tmp_path)


def test_fine_tune_moves_a_copy_and_leaves_the_original(toy, trained):
    v, names, labels, benign, _ = toy
    clf = trained["cnn-lstm"]
    before = clf.scores(names)
    # relabel the benign words ending in a digit as DGA: the tuned copy must learn it
    digit = [n for n in benign if n[-1].isdigit()]
    mix = names + digit * 3
    y = labels + [1] * (3 * len(digit))
    tuned = fine_tune(clf, mix, y)
    assert np.array_equal(clf.scores(names), before)
    assert tuned.scores(digit).mean() > clf.scores(digit).mean() + 0.1


def test_bigram_features_and_bad_kinds():
    table = {b: i for i, b in enumerate(bigram_vocab("ab"))}
    x = bigram_counts(["aba"], table)
    assert x.sum() == 4  # ^a ab ba a$
    assert x[0, table["^a"]] == 1 and x[0, table["ab"]] == 1 and x[0, table["a$"]] == 1
    with pytest.raises(ConfigError, match="classifier"):
        train_classifier("rnn", ["a", "b"], [0, 1], Vocab(max_len=4), ClassifierConfig())
    with pytest.raises(InputError, match="benign"):
        train_classifier("bigram", ["a", "b"], [0, 0], Vocab(max_len=4), ClassifierConfig())


def test_metrics_match_hand_computations():
    benign = ["ab", "abc", "abcd"]
    assert repeat_rate(["a", "a", "b", "c"]) == 0.25
    assert benign_collision(["ab", "ab", "zz", "yy"], set(benign)) == pytest.approx(1 / 3)
    assert js_divergence(benign, benign, 1) == pytest.approx(0, abs=1e-12)
    assert js_divergence(["aa"], ["bb"], 1) == pytest.approx(1)  # disjoint: 1 bit
    # p = (1/2, 1/2), q = (1, 0): JS = H(m) - (H(p) + H(q)) / 2, m = (3/4, 1/4)
    hm = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    assert js_divergence(["ab"], ["aa"], 1) == pytest.approx(hm - 0.5, rel=1e-9)
    assert ks_length(["a", "b"], ["ccc", "ddd"]) == 1.0
    assert ks_length(benign, benign) == 0.0
    h = length_histogram(["a", "bb", "bb", "c" * 9], 5)
    assert h.tolist() == [0, 0.25, 0.5, 0, 0, 0.25]


def test_name_metrics_evasion_and_usable():
    names = ["ab", "ab", "-x", "new", "zz", ""]
    scores = {"m": np.array([0.1, 0.1, 0.1, 0.2, 0.9, 0.1])}
    m = name_metrics(names, ["ab", "cd"], {"ab", "cd"}, scores)
    assert m["valid_rate"] == pytest.approx(4 / 6)
    assert m["repeat_rate"] == pytest.approx(1 / 6)
    assert m["evasion_m"] == pytest.approx(3 / 4)  # valid: ab, ab, new, zz; zz detected
    assert m["usable_m"] == pytest.approx(1 / 6)  # only "new": valid, unique, not benign, evades
    assert m["benign_collision"] == pytest.approx(1 / 3)  # unique valid: ab, new, zz
