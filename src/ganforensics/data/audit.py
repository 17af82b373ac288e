"""Dataset audit: what differs between real and fake images besides the forensic signal.

`audit(df)` reports, per class (real / fake) and per generator: file formats, image sizes,
estimated JPEG quality, EXIF presence; and a `warnings` list of imbalances a detector could
learn instead of generation artifacts (real JPEG vs fake PNG, different sizes, different JPEG
quality, EXIF only on one class).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from ganforensics.console import track
from ganforensics.data.manifest import error_mask, usable
from ganforensics.errors import ImageDecodeError, InputError
from ganforensics.io.images import read_image

# IJG (libjpeg) standard tables, natural (row-major) order, as in Annex K of ITU T.81
IJG_LUMINANCE = np.array(
    [
        16, 11, 10, 16, 24, 40, 51, 61,
        12, 12, 14, 19, 26, 58, 60, 55,
        14, 13, 16, 24, 40, 57, 69, 56,
        14, 17, 22, 29, 51, 87, 80, 62,
        18, 22, 37, 56, 68, 109, 103, 77,
        24, 35, 55, 64, 81, 104, 113, 92,
        49, 64, 78, 87, 103, 121, 120, 101,
        72, 92, 95, 98, 112, 100, 103, 99,
    ],
    dtype=np.float64,
)  # fmt: skip
IJG_CHROMINANCE = np.array(
    [
        17, 18, 24, 47, 99, 99, 99, 99,
        18, 21, 26, 66, 99, 99, 99, 99,
        24, 26, 56, 99, 99, 99, 99, 99,
        47, 66, 99, 99, 99, 99, 99, 99,
        99, 99, 99, 99, 99, 99, 99, 99,
        99, 99, 99, 99, 99, 99, 99, 99,
        99, 99, 99, 99, 99, 99, 99, 99,
        99, 99, 99, 99, 99, 99, 99, 99,
    ],
    dtype=np.float64,
)  # fmt: skip


def ijg_table(base: np.ndarray, quality: int) -> np.ndarray:
    """The table libjpeg writes for `quality` (1..100), baseline-clamped to 1..255."""
    q = min(max(int(quality), 1), 100)
    scale = 5000 / q if q < 50 else 200 - 2 * q
    return np.clip(np.floor((base * scale + 50) / 100), 1, 255)


_CANDIDATES = {
    q: (ijg_table(IJG_LUMINANCE, q), ijg_table(IJG_CHROMINANCE, q)) for q in range(1, 101)
}


def estimate_jpeg_quality(qtables: Mapping[int, Sequence[int]] | None) -> int | None:
    """Estimate the IJG quality (1..100) that produced JPEG quantisation tables.

    The luminance table (id 0) and, when present, the first chrominance table (id 1) are
    compared with the standard IJG tables scaled for every quality; the quality with the
    smallest mean absolute difference wins (exact for libjpeg/PIL/OpenCV files, an estimate for
    cameras and other encoders with their own tables). None when there are no tables.
    """
    if not qtables:
        return None
    keys = sorted(qtables)
    lum = np.asarray(qtables[keys[0]], dtype=np.float64)
    if lum.size != 64:
        return None
    chrom = np.asarray(qtables[keys[1]], dtype=np.float64) if len(keys) > 1 else None
    if chrom is not None and chrom.size != 64:
        chrom = None
    best_q, best_err = None, np.inf
    for q, (tl, tc) in _CANDIDATES.items():
        err = float(np.abs(lum - tl).mean())
        if chrom is not None:
            err = (err + float(np.abs(chrom - tc).mean())) / 2
        if err < best_err:  # ties keep the lower quality
            best_q, best_err = q, err
    return best_q


# ----------------------------------------------------------------------------- audit

FORMAT_TV_WARN = 0.2  # total-variation distance between format distributions
SIZE_TV_WARN = 0.2  # ... between size (WxH) distributions
EXIF_DIFF_WARN = 0.2  # difference in the share of images carrying EXIF
JPEG_QUALITY_DIFF_WARN = 5  # difference of median estimated JPEG quality
CLASS_SHARE_WARN = 0.25  # minority class share below this is reported
_PROBED = ("format", "width", "height", "exif", "jpeg_quality")


def _probe(abspath: str) -> dict[str, Any]:
    try:
        dec = read_image(abspath)
    except ImageDecodeError as exc:
        return {"error": exc.reason}
    return {
        "format": dec.format,
        "width": dec.width,
        "height": dec.height,
        "exif": dec.has_exif,
        "jpeg_quality": estimate_jpeg_quality(dec.jpeg_qtables),
    }


def _needs_probe(df: pd.DataFrame) -> pd.Series:
    need = pd.Series(False, index=df.index)
    for col in _PROBED:
        if col not in df.columns:
            return pd.Series(True, index=df.index)
        if col in ("format", "width", "height") or col == "exif":
            need |= df[col].isna()
        else:  # jpeg_quality is only expected on JPEG rows
            need |= df[col].isna() & (df["format"].astype(str).str.upper() == "JPEG")
    return need


def complete_image_facts(df: pd.DataFrame, *, workers: int = 2) -> pd.DataFrame:
    """Fill format, size, EXIF presence and JPEG quality by decoding the rows that lack them."""
    out = df.copy().reset_index(drop=True)
    for col in _PROBED:
        if col not in out.columns:
            out[col] = pd.NA
    out["exif"] = out["exif"].astype("object")
    out["format"] = out["format"].astype("object")
    if "error" not in out.columns:
        out["error"] = None
    idx = [i for i in out.index[_needs_probe(out) & ~error_mask(out)]]
    if idx:
        paths = [str(out.at[i, "abspath"]) for i in idx]
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            facts = list(track(pool.map(_probe, paths), "audit: read images", total=len(paths)))
        for i, f in zip(idx, facts, strict=True):
            for k, v in f.items():
                out.at[i, k] = v
    for c in ("width", "height", "jpeg_quality"):
        out[c] = pd.to_numeric(out[c], errors="coerce")
    out["exif"] = out["exif"].map(_truthy)
    return out


def _truthy(v: Any) -> Any:
    if v is None or (isinstance(v, float) and v != v) or v is pd.NA:
        return pd.NA
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    return bool(v)


def _shares(values: pd.Series) -> dict[str, float]:
    vc = values.astype(str).value_counts()
    total = float(vc.sum())
    return {str(k): float(v) / total for k, v in vc.items()} if total else {}


def _tv(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    keys = set(a) | set(b)
    return 0.5 * sum(abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in keys)


def _size_strings(g: pd.DataFrame) -> pd.Series:
    w = pd.to_numeric(g["width"], errors="coerce").astype("Int64").astype(str)
    h = pd.to_numeric(g["height"], errors="coerce").astype("Int64").astype(str)
    return w + "x" + h


def _stats(g: pd.DataFrame) -> dict[str, Any]:
    n = len(g)
    sizes = _size_strings(g)
    size_counts = sizes.value_counts()
    jq = g.loc[g["format"].astype(str).str.upper() == "JPEG", "jpeg_quality"].dropna()
    exif = g["exif"].dropna()
    st: dict[str, Any] = {
        "count": int(n),
        "formats": {str(k): int(v) for k, v in g["format"].astype(str).value_counts().items()},
        "sizes": {
            "distinct": int(len(size_counts)),
            "most_common": [[str(k), int(v)] for k, v in size_counts.head(5).items()],
            "width": _minmedmax(g["width"]),
            "height": _minmedmax(g["height"]),
        },
        "jpeg_quality": None,
        "exif": {"count": int(exif.astype(bool).sum()), "share": _share(exif)},
    }
    if len(jq):
        st["jpeg_quality"] = {
            "count": int(len(jq)),
            "min": int(jq.min()),
            "median": float(jq.median()),
            "max": int(jq.max()),
            "most_common": [
                [int(k), int(v)] for k, v in jq.astype(int).value_counts().head(5).items()
            ],
        }
    return st


def _share(s: pd.Series) -> float | None:
    return float(s.astype(bool).mean()) if len(s) else None


def _minmedmax(s: pd.Series) -> dict[str, float | None]:
    v = pd.to_numeric(s, errors="coerce").dropna()
    if not len(v):
        return {"min": None, "median": None, "max": None}
    return {"min": float(v.min()), "median": float(v.median()), "max": float(v.max())}


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _top(shares: Mapping[str, float]) -> str:
    if not shares:
        return "none"
    k = max(shares, key=lambda key: shares[key])
    return f"{k} ({_pct(shares[k])})"


def _compare(
    a_name: str, a: pd.DataFrame, b_name: str, b: pd.DataFrame, warnings: list[str]
) -> None:
    if not len(a) or not len(b):
        return
    fa = _shares(a["format"].astype(str).str.upper())
    fb = _shares(b["format"].astype(str).str.upper())
    if _tv(fa, fb) > FORMAT_TV_WARN:
        warnings.append(
            f"format differs: {a_name} mostly {_top(fa)}, {b_name} mostly {_top(fb)}; a detector "
            "can learn the file format / compression instead of generation artifacts"
        )
    sa, sb = _shares(_size_strings(a)), _shares(_size_strings(b))
    if _tv(sa, sb) > SIZE_TV_WARN:
        warnings.append(
            f"image sizes differ: {a_name} mostly {_top(sa)}, {b_name} mostly {_top(sb)}; "
            "a detector can learn the size or resampling instead of generation artifacts"
        )
    qa = a.loc[a["format"].astype(str).str.upper() == "JPEG", "jpeg_quality"].dropna()
    qb = b.loc[b["format"].astype(str).str.upper() == "JPEG", "jpeg_quality"].dropna()
    if len(qa) and len(qb) and abs(qa.median() - qb.median()) >= JPEG_QUALITY_DIFF_WARN:
        warnings.append(
            f"JPEG quality differs: {a_name} median {qa.median():.0f}, {b_name} median "
            f"{qb.median():.0f}; a detector can learn the compression level"
        )
    ea, eb = _share(a["exif"].dropna()), _share(b["exif"].dropna())
    if ea is not None and eb is not None and abs(ea - eb) > EXIF_DIFF_WARN:
        warnings.append(
            f"EXIF metadata differs: on {_pct(ea)} of {a_name}, {_pct(eb)} of {b_name}; camera "
            "processing (and any tool reading metadata) separates the classes"
        )


def audit(df: pd.DataFrame, *, workers: int = 2) -> dict[str, Any]:
    """Per-class and per-generator formats, sizes, JPEG quality and EXIF, plus `warnings`.

    Rows with an `error` are counted but not analysed. Facts missing from the manifest
    (format, width, height, exif, jpeg_quality) are read from the files.
    """
    if "abspath" not in df.columns:
        raise InputError("audit needs manifest rows with 'abspath' (use read_manifest)")
    full = complete_image_facts(df, workers=workers)
    err = error_mask(full)
    ok = usable(full)
    labels = pd.to_numeric(ok["label"], errors="coerce")
    real, fake = ok[labels == 0], ok[labels == 1]
    unlabelled = ok[labels.isna()]
    warnings: list[str] = []
    if err.any():
        warnings.append(f"{int(err.sum())} row(s) have errors and were left out of the audit")
    if not len(real) and not len(fake):
        warnings.append("no usable labelled images: nothing to compare")
    elif not len(real) or not len(fake):
        warnings.append(
            "only one class present ("
            + ("no reals" if not len(real) else "no fakes")
            + "): real/fake imbalances cannot be checked"
        )
    else:
        share = min(len(real), len(fake)) / float(len(real) + len(fake))
        if share < CLASS_SHARE_WARN:
            warnings.append(
                f"class counts are imbalanced: {len(real)} real vs {len(fake)} fake; report "
                "balanced accuracy / AP rather than accuracy"
            )
        _compare("reals", real, "fakes", fake, warnings)
        gens = sorted(fake["generator"].astype(str).unique())
        if len(gens) > 1:
            for g in gens:
                sub = fake[fake["generator"].astype(str) == g]
                _compare("reals", real, f"fakes of {g}", sub, warnings)
    classes = {"real": _stats(real), "fake": _stats(fake)}
    if len(unlabelled):
        classes["unlabelled"] = _stats(unlabelled)
    generators = {
        str(g): _stats(sub) for g, sub in ok.groupby(ok["generator"].astype(str), sort=True)
    }
    return {
        "rows": int(len(full)),
        "usable": int(len(ok)),
        "errors": int(err.sum()),
        "classes": classes,
        "generators": generators,
        "warnings": _dedupe(warnings),
    }


def _dedupe(items: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for w in items:
        if w not in seen:
            seen.add(w)
            out.append(w)
    return out
