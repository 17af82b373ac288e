"""DomainGAN data (ganforensics.text.encoding / corpus): encoding round trips, the offline HSTS
corpus, the synthetic DGA-like generators, user lists with bad lines reported by number."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from ganforensics.errors import InputError
from ganforensics.text.corpus import (
    DGA_KINDS,
    DGA_LENGTHS,
    FREENOM_TLDS,
    WORDS,
    benign_names,
    hsts_hosts,
    offline_extractor,
    read_names,
    second_level,
    split_names,
    synthetic_dga,
)
from ganforensics.text.encoding import ALPHABET, PAD, Vocab, is_valid_label

pytest.importorskip("hstspreload")
pytest.importorskip("tldextract")


def test_encoding_round_trips_both_paddings():
    v = Vocab(max_len=12)
    names = ["a", "google", "xn--p1ai", "0-9", "abcdefghijkl"]
    for left in (False, True):
        ids = v.encode(names, left_pad=left)
        assert ids.shape == (5, 12) and ids.dtype == np.int64
        assert v.decode(ids) == names
    right = v.encode(["ab"])[0]
    assert right.tolist()[:3] == [1, 2, PAD] and (right[2:] == PAD).all()
    left = v.encode(["ab"], left_pad=True)[0]
    assert left.tolist()[-2:] == [1, 2] and (left[:-2] == PAD).all()
    assert v.size == len(ALPHABET) + 1 == 38
    assert Vocab.from_dict(v.to_dict()) == v
    oh = v.one_hot(v.encode(["ab"]))
    assert oh.shape == (1, 12, 38) and (oh.sum(-1) == 1).all()


def test_encoding_rejects_what_it_cannot_represent():
    v = Vocab(max_len=5)
    for bad, why in (("", "empty"), ("abcdef", "longer"), ("a.b", "outside"), ("AB", "outside")):
        assert why in v.encodable(bad)
        with pytest.raises(ValueError, match=why):
            v.encode(["ok", bad])
    ok, rejected = v.fit_names(["abc", "a_b", "toolong"])
    assert ok == ["abc"] and [n for n, _ in rejected] == ["a_b", "toolong"]


def test_decode_reads_a_generated_row_up_to_its_first_pad():
    v = Vocab(max_len=6)
    assert v.decode(np.array([[1, 2, PAD, 3, PAD, PAD], [PAD] * 6])) == ["ab", ""]


def test_valid_label_rules():
    for good in ("a", "a-b", "xn--p1ai", "0", "a" * 63):
        assert is_valid_label(good)
    for bad in ("", "-a", "a-", "a_b", "a.b", "A", "a" * 64, "é"):
        assert not is_valid_label(bad)


def test_synthetic_generators_emit_only_valid_labels_and_are_seeded():
    rows = synthetic_dga(900, seed=3)
    assert rows == synthetic_dga(900, seed=3) and rows != synthetic_dga(900, seed=4)
    assert {s for _, s in rows} == {f"synthetic-{k}" for k in DGA_KINDS}
    for name, source in rows:
        assert is_valid_label(name), name
        kind = source.split("-", 1)[1]
        lo, hi = DGA_LENGTHS[kind]
        if kind == "random":
            assert lo <= len(name) <= hi and name.isalpha()
        elif kind == "hex":
            assert lo <= len(name) <= hi and set(name) <= set("0123456789abcdef")
        else:
            assert any(name.startswith(w) for w in WORDS)
    assert all(len(n) <= 10 for n, _ in synthetic_dga(300, seed=1, max_len=10))
    with pytest.raises(InputError, match="family"):
        synthetic_dga(3, 0, kinds=("family",))


def test_read_names_reports_bad_lines_by_number(tmp_path):
    p = tmp_path / "names.txt"
    p.write_bytes(b"Google\n# a comment\n\nbad_name\nwww.example.co.uk\n-lead\n"
                  b"two words\n\xff\xfe\n" + b"a" * 70 + b"\nok-name\n")
    names, bad = read_names(p, Vocab(max_len=60))
    assert names == ["google", "example", "ok-name"]
    assert [b.line for b in bad] == [4, 6, 7, 8, 9]
    assert "valid hostname label" in bad[0].reason and "UTF-8" in bad[3].reason
    assert str(bad[0]).startswith(f"{p}:4:")
    _, bad_short = read_names(p, Vocab(max_len=5))
    assert "longer than 5" in next(b.reason for b in bad_short if b.line == 10)
    with pytest.raises(InputError, match="missing.txt"):
        read_names(tmp_path / "missing.txt", Vocab())


def test_split_is_by_name_disjoint_and_seeded():
    names = [f"n{i}" for i in range(100)] + ["n1", "n2"]
    tr, held = split_names(names, 0.25, seed=1)
    assert len(held) == 25 and len(tr) == 75 and not set(tr) & set(held)
    assert (tr, held) == split_names(names, 0.25, seed=1)
    assert held != split_names(names, 0.25, seed=2)[1]


def test_hsts_corpus_is_offline_stripped_and_recorded(monkeypatch):
    def no_network(*a, **k):  # any connection attempt fails the test
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    hosts = hsts_hosts()
    assert len(hosts) > 100_000 and all("." in h for h in hosts[::1000])
    ex = offline_extractor()
    assert second_level(["www.foo.co.uk", "bar.tk", "a.b.github.io", "com"], extractor=ex) \
        == ["foo", "github"]
    v = Vocab()
    c = benign_names(v, limit=2000, seed=0)
    assert len(c.train) == 1500 and len(c.held_out) == 500 and not set(c.train) & set(c.held_out)
    assert all(is_valid_label(n) and "." not in n for n in c.all)
    assert c.source["hstspreload"] and c.source["tldextract"]
    assert c.source["dropped_tlds"] == sorted(FREENOM_TLDS) and c.source["unique_sld"] > 100_000
    assert benign_names(v, limit=2000, seed=0).train == c.train
