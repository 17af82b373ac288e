"""The one loading path: order, error rows, manifest errors, summary warning, look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from ganforensics.io.images import shape_batches
from ganforensics.io.loading import NAMED_BAD_FILES, iter_decoded, load_images
from hostile import write_hostile


def _png(path, value, size=8):
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(path)
    return path


def test_load_images_keeps_order_and_reports_each_bad_file(tmp_path, capsys):
    good = [_png(tmp_path / f"g{i}.png", i * 10) for i in range(5)]
    bad = [tmp_path / "empty.png", tmp_path / "missing.png"]
    bad[0].write_bytes(b"")
    paths = [good[0], bad[0], good[1], good[2], bad[1], good[3], good[4]]
    res = load_images(paths, what="toy", workers=2)
    assert res.keep == [0, 2, 3, 5, 6]
    assert [int(im[0, 0, 0]) for im in res.images] == [0, 10, 20, 30, 40]
    assert res.n_bad == 2
    assert [p for p, _ in res.errors] == [str(bad[0]), str(bad[1])]
    assert "empty file" in res.errors[0][1] and "not found" in res.errors[1][1]
    err = capsys.readouterr().err
    assert err.count("warning:") == 1
    assert "toy: 2 unreadable image(s) skipped" in err


def test_summary_warning_names_only_the_first_few(tmp_path, capsys):
    paths = [tmp_path / f"nope{i}.png" for i in range(NAMED_BAD_FILES + 4)]
    res = load_images(paths, what="many")
    assert res.n_bad == len(paths) and res.images == []
    err = capsys.readouterr().err
    assert "nope0.png" in err and f"nope{NAMED_BAD_FILES - 1}.png" in err
    assert f"nope{NAMED_BAD_FILES}.png" not in err
    assert "and 4 more" in err


def test_manifest_rows_with_an_error_are_not_decoded_again(tmp_path):
    a = _png(tmp_path / "a.png", 1)
    b = _png(tmp_path / "b.png", 2)  # decodable, but the manifest says it is bad
    df = pd.DataFrame({"abspath": [str(a), str(b)], "error": [None, "bad at scan"]})
    res = load_images(df, quiet=True)
    assert res.keep == [0]
    assert res.errors == [(str(b), "bad at scan")]
    assert list(res.rows(df)["abspath"]) == [str(a)]


def test_hostile_files_become_error_rows_not_exceptions(tmp_path):
    names = {n: r for n, r in write_hostile(tmp_path).items() if n != "notes.txt"}
    paths = [tmp_path / n for n in names]
    res = load_images(paths, quiet=True)
    assert res.images == [] and res.n_bad == len(paths)
    for (path, reason), name in zip(res.errors, names, strict=True):
        assert path.endswith(name) and names[name] in reason


def test_iter_decoded_look_ahead_is_bounded_and_ordered(tmp_path):
    paths = [_png(tmp_path / f"{i}.png", i) for i in range(20)]
    got = [(i, int(a[0, 0, 0])) for i, a, _ in iter_decoded(paths, workers=3, ahead=2)]
    assert got == [(i, i) for i in range(20)]
    serial = [(i, int(a[0, 0, 0])) for i, a, _ in iter_decoded(paths, workers=1)]
    assert serial == got


def test_shape_batches_groups_by_shape_in_first_seen_order():
    ims = [np.zeros((4, 4, 3)), np.zeros((2, 2, 3)), np.zeros((4, 4, 3)), np.zeros((4, 4, 3))]
    assert list(shape_batches(ims, 2)) == [[0, 2], [3], [1]]
    assert list(shape_batches(ims, 10, key=lambda s: (1,))) == [[0, 1, 2, 3]]
