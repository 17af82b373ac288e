"""The DomainGAN protocol as run folders: data, autoencoder, GAN variants, names, classifiers,
evaluation, hardening (one function per `ganforensics dga` command; docs/text.md).

A data folder holds `benign_train.txt`, `benign_held_out.txt`, `dga_train.txt`,
`dga_held_out.txt` (one name per line), `dga.csv` (name, source, split) and `data.json`
(vocabulary, provenance, versions, skipped lines).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ganforensics.errors import InputError
from ganforensics.io.runs import RunFolder
from ganforensics.seeding import derive_seed
from ganforensics.text.classifiers import (
    KINDS,
    ClassifierConfig,
    DGAClassifier,
    fine_tune,
    train_classifier,
)
from ganforensics.text.corpus import (
    HELD_OUT,
    BadLine,
    Corpus,
    benign_names,
    read_names,
    split_names,
    synthetic_dga,
)
from ganforensics.text.encoding import DEFAULT_MAX_LEN, Vocab, is_valid_label
from ganforensics.text.metrics import detection_metrics, name_metrics
from ganforensics.text.train import (
    AEConfig,
    GanConfig,
    generate,
    load_autoencoder,
    load_generator,
    save_autoencoder,
    save_generator,
    train_autoencoder,
    train_gan,
)

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# ------------------------------------------------------------------------------ data


class DataSet:
    """A loaded data folder."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        meta = self.folder / "data.json"
        if not meta.exists():
            raise InputError(f"{self.folder}: not a dga data folder (no data.json); "
                             "make one with `ganforensics dga data`")
        self.meta = json.loads(meta.read_text())
        self.vocab = Vocab.from_dict(self.meta["vocab"])
        self.benign_train = self._list("benign_train.txt")
        self.benign_held_out = self._list("benign_held_out.txt")
        self.dga_train = self._list("dga_train.txt")
        self.dga_held_out = self._list("dga_held_out.txt")

    def _list(self, name: str) -> list[str]:
        p = self.folder / name
        if not p.exists():
            raise InputError(f"{p}: missing from the data folder")
        return [s for s in p.read_text().split("\n") if s]

    @cached_property
    def benign_all(self) -> frozenset[str]:
        return frozenset(self.benign_train) | frozenset(self.benign_held_out)

    def train_set(self) -> tuple[list[str], list[int]]:
        return (self.benign_train + self.dga_train,
                [0] * len(self.benign_train) + [1] * len(self.dga_train))

    def test_set(self) -> tuple[list[str], list[int]]:
        return (self.benign_held_out + self.dga_held_out,
                [0] * len(self.benign_held_out) + [1] * len(self.dga_held_out))


def _read_lists(paths: Sequence[Path], vocab: Vocab) -> tuple[list[str], list[BadLine]]:
    """The valid names of several one-name-per-line files, and their bad lines."""
    names: list[str] = []
    bad: list[BadLine] = []
    for p in paths:
        got, b = read_names(p, vocab)
        names += got
        bad += b
    return names, bad


def build_data(out: Path, *, benign: Sequence[Path] = (), dga: Sequence[Path] = (),
               limit: int | None = None, n_dga: int | None = None, max_len: int = DEFAULT_MAX_LEN,
               seed: int = 0, force: bool = False, progress: Progress = _quiet
               ) -> tuple[Path, list[BadLine]]:
    """Write a data folder. Benign names: the user's lists (`benign`), else the HSTS preload
    list; DGA names: the user's lists (`dga`), else the synthetic generators, as many as benign
    (or `n_dga`). Both split train / held-out by name (75/25). Returns (folder, bad lines)."""
    vocab = Vocab(max_len=max_len)
    bad: list[BadLine] = []
    if benign:
        names, b = _read_lists(benign, vocab)
        bad += b
        uniq = sorted(set(names))
        if limit is not None and limit < len(uniq):
            rng = np.random.default_rng(derive_seed(seed, "benign-subset"))
            uniq = sorted(rng.choice(uniq, size=limit, replace=False).tolist())
        tr, held = split_names(uniq, HELD_OUT, seed)
        corpus = Corpus(tr, held, {"kind": "user", "files": [str(p) for p in benign],
                                   "used": len(uniq)})
    else:
        progress("benign names: enumerating the HSTS preload list (offline)")
        corpus = benign_names(vocab, limit=limit, seed=seed)
    if len(corpus.train) < 2 or len(corpus.held_out) < 1:
        raise InputError("too few benign names (need at least 3 valid ones)")
    if dga:
        user, b = _read_lists(dga, vocab)
        bad += b
        dga_rows = [(n, "user") for n in sorted(set(user))]
    else:
        n = n_dga if n_dga is not None else len(corpus.all)
        dga_rows = synthetic_dga(n, seed, max_len=max_len)
    benign_set = set(corpus.all)
    dga_rows = [(n, s) for n, s in dict(dga_rows).items() if n not in benign_set]
    if len(dga_rows) < 3:
        raise InputError("too few DGA names (need at least 3 valid ones not in the benign list)")
    d_tr, d_held = split_names([n for n, _ in dga_rows], HELD_OUT, seed)
    held_set = set(d_held)
    frame = pd.DataFrame([{"name": n, "source": s, "split": "held_out" if n in held_set
                           else "train"} for n, s in dga_rows])
    config = {"command": "dga data", "benign": [str(p) for p in benign],
              "dga": [str(p) for p in dga], "limit": limit, "n_dga": n_dga,
              "max_len": max_len, "seed": seed}
    with RunFolder.create(out, config, seed=seed, force=force) as run:
        run.write_text("benign_train.txt", "\n".join(corpus.train) + "\n")
        run.write_text("benign_held_out.txt", "\n".join(corpus.held_out) + "\n")
        run.write_text("dga_train.txt", "\n".join(d_tr) + "\n")
        run.write_text("dga_held_out.txt", "\n".join(d_held) + "\n")
        run.write_csv("dga.csv", frame)
        run.write_json("data.json", {
            "vocab": vocab.to_dict(), "benign": corpus.source,
            "counts": {"benign_train": len(corpus.train),
                       "benign_held_out": len(corpus.held_out),
                       "dga_train": len(d_tr), "dga_held_out": len(d_held)},
            "dga_sources": frame["source"].value_counts().to_dict(),
            "dga_note": "synthetic DGA-like names (seeded toy generators; no malware family)"
            if not dga else "user lists",
            "bad_lines": [asdict(b) for b in bad]})
    return Path(out), bad


# ------------------------------------------------------------------------------ models


def train_ae_run(data: Path, out: Path, cfg: AEConfig, *, force: bool = False,
                 progress: Progress = _quiet) -> tuple[Path, dict[str, Any]]:
    """Train the autoencoder on the benign train names; held-out accuracy in the metrics."""
    ds = DataSet(data)
    config = {"command": "dga train-ae", "data": str(data), **asdict(cfg)}
    with RunFolder.create(out, config, seed=cfg.seed, force=force) as run:
        ae, info = train_autoencoder(ds.benign_train, ds.benign_held_out, ds.vocab, cfg,
                                     progress)
        run.write_csv("history.csv", pd.DataFrame(info["history"]))
        save_autoencoder(ae, run.path, ds.vocab, {"metrics": info["metrics"],
                                                  "config": asdict(cfg), "data": str(data)})
    return Path(out), info["metrics"]


def train_gan_run(ae_path: Path, data: Path, out: Path, cfg: GanConfig, *, force: bool = False,
                  n_samples: int = 20, progress: Progress = _quiet) -> tuple[Path, list[str]]:
    """Train one variant on the benign train names; returns the run and a few sample names."""
    ae, vocab, _ = load_autoencoder(ae_path)
    ds = DataSet(data)
    if ds.vocab != vocab:
        raise InputError(f"{data}: vocabulary or length differs from the autoencoder's "
                         f"({ds.vocab.max_len} vs {vocab.max_len})")
    config = {"command": "dga train-gan", "autoencoder": str(ae_path), "data": str(data),
              **cfg.resolved()}
    with RunFolder.create(out, config, seed=cfg.seed, force=force) as run:
        g, _d, info = train_gan(ae, ds.benign_train, vocab, cfg, progress)
        run.write_csv("losses.csv", pd.DataFrame(info["history"]))
        save_generator(g, run.path, vocab, {"variant": cfg.variant, "training": info,
                                            "autoencoder": str(ae_path)})
        samples = generate(g, n_samples, vocab, derive_seed(cfg.seed, "samples"))
        run.write_text("samples.txt", "\n".join(samples) + "\n")
    return Path(out), samples


def generate_names(generator: Path, n: int, seed: int, out: Path | None = None,
                   force: bool = False) -> list[str]:
    """`n` names from a trained generator, written one per line to `out` when given."""
    g, vocab, _ = load_generator(generator)
    names = generate(g, n, vocab, seed)
    if out is not None:
        if Path(out).exists() and not force:
            from ganforensics.errors import RunExistsError

            raise RunExistsError(f"{out}: exists; pass --force to overwrite")
        from ganforensics.io.atomic import write_text_atomic

        write_text_atomic(out, "\n".join(names) + "\n")
    return names


def train_classifier_run(data: Path, kind: str, out: Path, cfg: ClassifierConfig, *,
                         force: bool = False, progress: Progress = _quiet
                         ) -> tuple[Path, dict[str, Any]]:
    """Train one classifier on the data folder's train split; test metrics on held-out."""
    ds = DataSet(data)
    names, labels = ds.train_set()
    config = {"command": "dga train-classifier", "data": str(data), "model": kind,
              **asdict(cfg)}
    with RunFolder.create(out, config, seed=cfg.seed, force=force) as run:
        clf = train_classifier(kind, names, labels, ds.vocab, cfg, progress)
        tn, ty = ds.test_set()
        clf.info["test"] = detection_metrics(clf.scores(tn), ty)
        clf.save(run.path)
    return Path(out), {"model": kind, **clf.info["test"], "val_acc": clf.info["val_acc"],
                       "best_epoch": clf.info["best_epoch"]}


def _read_list(path: Path) -> list[str]:
    """Generated names, one per line; an empty line is an empty (invalid) name."""
    try:
        lines = Path(path).read_text().split("\n")
        return [s.strip() for s in (lines[:-1] if lines and lines[-1] == "" else lines)]
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None


def evaluate_names(names_files: Sequence[Path], classifiers: Sequence[Path], data: Path
                   ) -> pd.DataFrame:
    """One row per names file: the name metrics and, per classifier, evasion and usable rate
    (the file's stem names the row; generated names are not filtered)."""
    ds = DataSet(data)
    clfs = {_clf_name(p): DGAClassifier.load(p) for p in classifiers}
    rows = []
    for f in names_files:
        names = _read_list(f)
        if not names:
            raise InputError(f"{f}: no names")
        rows.append({"names": Path(f).stem, **score_and_measure(names, clfs, ds)})
    return pd.DataFrame(rows)


def _clf_name(p: Path) -> str:
    meta = Path(p) / "classifier.json"
    if meta.exists():
        try:
            return str(json.loads(meta.read_text()).get("model", Path(p).name))
        except json.JSONDecodeError:
            pass
    return Path(p).name


def score_and_measure(names: Sequence[str], clfs: dict[str, DGAClassifier], ds: DataSet
                      ) -> dict[str, Any]:
    scores = {k: c.scores([n if n else "-" for n in names]) for k, c in clfs.items()}
    return name_metrics(list(names), ds.benign_held_out, ds.benign_all, scores)


def hardening_set(ds: DataSet, gan_names: Sequence[str], seed: int, cap: int | None = None
                  ) -> tuple[list[str], list[int]]:
    """The paper's fine-tune mix, benign : DGA : GAN = 2 : 1 : 1 (GAN names valid, unique and
    not benign, labelled DGA); `cap` bounds the benign count."""
    rng = np.random.default_rng(derive_seed(seed, "harden-mix"))
    benign = list(ds.benign_train)
    if cap is not None and cap < len(benign):
        benign = rng.choice(benign, size=cap, replace=False).tolist()
    half = max(1, len(benign) // 2)
    gan = sorted({n for n in gan_names if is_valid_label(n) and n not in ds.benign_all})
    gan = rng.permutation(gan)[:half].tolist()
    dga = rng.permutation(ds.dga_train)[:half].tolist()
    return benign + dga + gan, [0] * len(benign) + [1] * (len(dga) + len(gan))


def harden(ds: DataSet, clfs: dict[str, DGAClassifier], generators: dict[str, Any], *,
           n_names: int, seed: int, cap: int | None = None, progress: Progress = _quiet
           ) -> tuple[pd.DataFrame, dict[tuple[str, str], DGAClassifier]]:
    """Fine-tune every classifier with every variant's names; measure evasion of fresh names
    of every variant (the cross-variant table) and the test accuracy after hardening. Rows:
    classifier, hardened_with ("none" = before), eval_variant, evasion, test accuracy/AUC."""
    vocab = ds.vocab
    fresh = {v: generate(g, n_names, vocab, derive_seed(seed, "fresh", v))
             for v, g in generators.items()}
    tn, ty = ds.test_set()
    rows = []
    tuned: dict[tuple[str, str], DGAClassifier] = {}
    for cname, clf in clfs.items():
        states = [("none", clf)]
        for v, g in generators.items():
            names = generate(g, n_names, vocab, derive_seed(seed, "harden", v))
            mix, labels = hardening_set(ds, names, seed, cap)
            progress(f"harden {cname} with {v} names ({len(mix)} names)")
            tuned[(cname, v)] = fine_tune(clf, mix, labels)
            states.append((v, tuned[(cname, v)]))
        for hv, c in states:
            test = detection_metrics(c.scores(tn), ty)
            for ev, names in fresh.items():
                valid = [n for n in names if is_valid_label(n)]
                evasion = float((c.scores(valid) < 0.5).mean()) if valid else float("nan")
                rows.append({"classifier": cname, "hardened_with": hv, "eval_variant": ev,
                             "evasion": evasion, "test_accuracy": test["accuracy"],
                             "test_auc": test["auc"]})
    return pd.DataFrame(rows), tuned


def harden_run(data: Path, classifiers: Sequence[Path], generators: Sequence[Path], out: Path,
               *, n_names: int = 2000, seed: int = 0, cap: int | None = None,
               epochs: int | None = None, force: bool = False, progress: Progress = _quiet
               ) -> tuple[Path, pd.DataFrame]:
    """`harden` over saved classifiers and generators; writes hardening.csv and the tuned
    classifiers (`tuned/<classifier>-<variant>/`). `epochs` bounds the fine-tuning (default:
    each classifier's own training setting)."""
    ds = DataSet(data)
    clfs = {_clf_name(p): DGAClassifier.load(p) for p in classifiers}
    if epochs is not None:
        for c in clfs.values():
            c.cfg = replace(c.cfg, epochs=epochs)
    gens = {}
    for p in generators:
        g, vocab, meta = load_generator(p)
        if vocab != ds.vocab:
            raise InputError(f"{p}: vocabulary or length differs from the data folder's")
        gens[str(meta.get("variant", Path(p).name))] = g
    config = {"command": "dga harden", "data": str(data),
              "classifiers": [str(p) for p in classifiers],
              "generators": [str(p) for p in generators], "n_names": n_names, "seed": seed,
              "cap": cap, "epochs": epochs}
    with RunFolder.create(out, config, seed=seed, force=force) as run:
        table, tuned = harden(ds, clfs, gens, n_names=n_names, seed=seed, cap=cap,
                              progress=progress)
        run.write_csv("hardening.csv", table)
        for (c, v), clf in tuned.items():
            clf.save(run.path / "tuned" / f"{c}-{v}")
    return Path(out), table


def classifier_kinds() -> tuple[str, ...]:
    return KINDS
