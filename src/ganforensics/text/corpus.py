"""Offline name corpora: benign names from the HSTS preload list, the toolkit's synthetic
DGA-like generators, and user lists (docs/text.md, "Data").

- `hsts_hosts` walks the Chromium HSTS preload list compiled into the `hstspreload` package
  (its private jump table; wrapped defensively and checked against the public lookup);
  `benign_names` strips the public suffix with `tldextract` constructed offline (bundled
  Public Suffix List snapshot, no fetch, no cache), drops the free Freenom TLDs and keeps the
  unique second-level labels.
- `synthetic_dga` draws seeded DGA-like names of three documented kinds (`random`: random
  letters with a length range; `hex`: hash-style hex strings; `dict`: concatenated dictionary
  words). They are labelled synthetic and model no real malware family.
- `read_names` reads one name per line; bad lines are returned with their line number (the
  caller reports them), never fatal.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ganforensics.errors import InputError
from ganforensics.seeding import derive_seed
from ganforensics.text.encoding import Vocab, is_valid_label

FREENOM_TLDS = frozenset({"tk", "ga", "ml", "gq", "cf"})
DGA_KINDS = ("random", "hex", "dict")
DGA_LENGTHS = {"random": (8, 20), "hex": (12, 32), "dict": (2, 3)}
"""Per kind its range: letters (random), hex digits (hex), words (dict)."""
HELD_OUT = 0.25
"""Share of benign names held out (the paper's 75/25 autoencoder split)."""

_WORD_TEXT = """
able about above account action active actor admin after again agent alpha amber anchor angle
apple april arrow asset atlas audio autumn badge baker banner basic beach beacon berry better
bird black blade blank blue board bottle brave bread bridge bright brown budget build button
cable camera candle canyon carbon castle cedar center chain chair chart cheap cherry chief city
clean clear clock cloud coast coffee color comet copper coral corner cotton craft crane create
crown crystal cyber daily dance data delta desert design digital direct doctor dragon dream
drive eagle early earth east echo edge eleven ember energy engine event every expert falcon
family farm fast field final first flame flash fleet flower focus forest fortune fox frame
fresh front frost future galaxy garden gate giant glass global gold grand graph green group
guard harbor hawk health heart helix hero hill home honey horizon hotel house hunter ice image
index iron island ivory jade jet journal jungle key king kite lake lamp laser leaf legend lemon
level light lime linear lion local logic lotus lucky lunar magic maple market marble master
meadow media metal meteor middle mint mirror model moon motor mountain music nature network
new night noble north nova ocean office olive omega open orange orbit pacific paper park
pearl pepper phoenix pilot pine pixel planet plaza point polar portal power prime prism pulse
quartz quest quick radar rain rapid raven ready red region river robin rocket royal ruby
safe sail salt sand saturn scout secure shadow shell shore signal silver simple sky smart
snow solar sonic south space spark spring square star steel stone storm stream summit sun
swift system tango target tiger timber titan tower trade trail travel tree true turbo ultra
union unit urban valley vector velvet venture vertex violet vision vista voice wave west
whale white wild willow wind winter wolf wood world yellow zebra zenith zero zone
"""
WORDS = tuple(_WORD_TEXT.split())
"""A small dictionary for the `dict` generator, written for this toolkit (common English
words; not taken from any malware family's word list)."""


@dataclass
class Corpus:
    """Benign names split by name into train / held-out, with provenance."""

    train: list[str]
    held_out: list[str]
    source: dict[str, object] = field(default_factory=dict)

    @property
    def all(self) -> list[str]:
        return self.train + self.held_out


@dataclass
class BadLine:
    """A line of a user list that was skipped."""

    path: str
    line: int
    text: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason} ({self.text!r})"


# ------------------------------------------------------------------------------ HSTS list


def hsts_version() -> str:
    """The installed `hstspreload` version (InputError when the text extra is missing)."""
    try:
        return importlib.metadata.version("hstspreload")
    except importlib.metadata.PackageNotFoundError:
        raise InputError("the benign corpus needs the hstspreload package: "
                         "pip install 'ganforensics[text]'") from None


def hsts_hosts() -> list[str]:
    """Every host of the HSTS preload list shipped by `hstspreload`, sorted.

    Walks the package's private jump table (`_JUMPTABLE`, `_iter_entries`, `hstspreload.bin`);
    a changed layout raises InputError rather than returning a wrong list, and a sample of the
    hosts found must be confirmed by the public `in_hsts_preload`.
    """
    hsts_version()
    import hstspreload as hp

    try:
        table = hp._JUMPTABLE
        entries = hp._iter_entries
        blob = importlib.resources.files("hstspreload").joinpath("hstspreload.bin").read_bytes()
        hosts: set[str] = set()
        for layer in table:
            for jump in layer:
                if jump is None:
                    continue
                start, size = jump
                for is_leaf, _sub, label in entries(blob[start:start + size]):
                    if is_leaf:
                        hosts.add(label.decode("ascii"))
    except (AttributeError, TypeError, ValueError, UnicodeDecodeError, OSError) as exc:
        raise InputError(f"hstspreload {hp.__version__}: unexpected internal layout ({exc}); "
                         "pin hstspreload 2025.1.1 or pass --benign") from None
    out = sorted(hosts)
    if len(out) < 1000:
        raise InputError(f"hstspreload {hp.__version__}: only {len(out)} hosts found; "
                         "pass --benign")
    step = max(1, len(out) // 50)
    with warnings.catch_warnings():  # its lookup uses a deprecated importlib.resources call
        warnings.simplefilter("ignore", DeprecationWarning)
        missing = [h for h in out[::step] if not hp.in_hsts_preload(h)]
    if missing:
        raise InputError(f"hstspreload {hp.__version__}: enumerated hosts not confirmed by "
                         f"in_hsts_preload (e.g. {missing[0]}); pass --benign")
    return out


def offline_extractor():  # type: ignore[no-untyped-def]
    """A `tldextract.TLDExtract` that never touches the network: no suffix-list URLs, no
    cache, the Public Suffix List snapshot bundled with the package."""
    try:
        import tldextract
    except ImportError:
        raise InputError("stripping TLDs needs the tldextract package: "
                         "pip install 'ganforensics[text]'") from None
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


def second_level(hosts: Iterable[str], drop_tlds: frozenset[str] = FREENOM_TLDS,
                 extractor=None) -> list[str]:  # type: ignore[no-untyped-def]
    """Hosts -> their second-level labels (public suffix and subdomains stripped), skipping
    hosts under `drop_tlds` and hosts with no registrable label; order kept, duplicates kept."""
    ex = extractor or offline_extractor()
    out = []
    for h in hosts:
        r = ex(h)
        if not r.domain or not r.suffix:
            continue
        if r.suffix.rsplit(".", 1)[-1] in drop_tlds:
            continue
        out.append(r.domain.lower())
    return out


def benign_names(vocab: Vocab, *, limit: int | None = None, seed: int = 0,
                 held_out: float = HELD_OUT) -> Corpus:
    """Unique HSTS second-level names the vocabulary encodes, split train / held-out by name
    (seeded); `limit` keeps a seeded random subset of that many names first."""
    hosts = hsts_hosts()
    names = sorted(set(second_level(hosts)))
    ok = [n for n in names if is_valid_label(n) and vocab.encodable(n) is None]
    n_all = len(ok)
    if limit is not None and limit < len(ok):
        rng = np.random.default_rng(derive_seed(seed, "benign-subset"))
        ok = sorted(rng.choice(ok, size=limit, replace=False).tolist())
    train, held = split_names(ok, held_out, seed)
    source = {"kind": "hstspreload", "hstspreload": hsts_version(),
              "tldextract": _version("tldextract"), "hosts": len(hosts),
              "unique_sld": len(names), "encodable": n_all, "used": len(ok),
              "dropped_tlds": sorted(FREENOM_TLDS), "seed": seed, "held_out": held_out}
    return Corpus(train, held, source)


def split_names(names: Sequence[str], held_out: float, seed: int) -> tuple[list[str], list[str]]:
    """Unique names -> (train, held-out), a seeded permutation (a name is in one split only)."""
    uniq = sorted(set(names))
    if not 0 < held_out < 1:
        raise InputError(f"held_out must be in (0, 1), got {held_out}")
    rng = np.random.default_rng(derive_seed(seed, "benign-split"))
    perm = rng.permutation(len(uniq))
    n_held = max(1, int(round(held_out * len(uniq)))) if len(uniq) > 1 else 0
    held = sorted(uniq[i] for i in perm[:n_held])
    train = sorted(uniq[i] for i in perm[n_held:])
    return train, held


def _version(pkg: str) -> str | None:
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return None


# ------------------------------------------------------------------------------ synthetic DGA


def synthetic_dga(n: int, seed: int, kinds: Sequence[str] = DGA_KINDS,
                  max_len: int | None = None) -> list[tuple[str, str]]:
    """`n` seeded synthetic DGA-like names as (name, "synthetic-<kind>"), kinds in turn.

    `random`: letters a-z, length uniform in DGA_LENGTHS["random"]; `hex`: hex digits (a hash
    printed in hex), length uniform in DGA_LENGTHS["hex"]; `dict`: 2-3 words of WORDS joined.
    Names longer than `max_len` are cut to it. Every name is a valid hostname label.
    """
    for k in kinds:
        if k not in DGA_KINDS:
            raise InputError(f"synthetic DGA kind {k!r} is not one of {', '.join(DGA_KINDS)}")
    rng = np.random.default_rng(derive_seed(seed, "synthetic-dga"))
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    hexd = np.array(list("0123456789abcdef"))
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        lo, hi = DGA_LENGTHS[kind]
        k = int(rng.integers(lo, hi + 1))
        if kind == "random":
            name = "".join(rng.choice(letters, size=k))
        elif kind == "hex":
            name = "".join(rng.choice(hexd, size=k))
        else:
            name = "".join(WORDS[j] for j in rng.integers(0, len(WORDS), size=k))
        if max_len is not None:
            name = name[:max_len]
        out.append((name, f"synthetic-{kind}"))
    return out


# ------------------------------------------------------------------------------ user lists


def read_names(path: str | Path, vocab: Vocab, extractor=None,  # type: ignore[no-untyped-def]
               ) -> tuple[list[str], list[BadLine]]:
    """One name per line -> (names, bad lines). Blank lines and `#` comments are skipped;
    names are lower-cased; a full host (`www.example.co.uk`) is reduced to its second-level
    label offline. A line that is not a valid hostname label, or does not fit the vocabulary,
    is a BadLine with its 1-based line number. A missing or unreadable file is an InputError."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InputError(f"{p}: {exc.strerror or exc}") from None
    names: list[str] = []
    bad: list[BadLine] = []
    for no, line_b in enumerate(raw.splitlines(), start=1):
        try:
            line = line_b.decode("utf-8").strip()
        except UnicodeDecodeError:
            bad.append(BadLine(str(p), no, line_b[:60].decode("latin-1"), "not UTF-8"))
            continue
        if not line or line.startswith("#"):
            continue
        name = line.lower().rstrip(".")
        if any(c.isspace() for c in name):
            bad.append(BadLine(str(p), no, line, "more than one field on the line"))
            continue
        if "." in name:
            if extractor is None:
                extractor = offline_extractor()
            r = extractor(name)
            if not r.domain or not r.suffix:
                bad.append(BadLine(str(p), no, line, "no registrable name under a public suffix"))
                continue
            name = r.domain
        if not is_valid_label(name):
            bad.append(BadLine(str(p), no, line, "not a valid hostname label (a-z, 0-9, '-', "
                               "1-63 characters, no '-' first or last)"))
            continue
        why = vocab.encodable(name)
        if why is not None:
            bad.append(BadLine(str(p), no, line, why))
            continue
        names.append(name)
    return names, bad
