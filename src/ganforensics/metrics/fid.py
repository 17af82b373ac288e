"""Frechet Inception Distance (Heusel et al. 2017), DESIGN B4, plus feature statistics files.

FID = |mu1 - mu2|^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^(1/2)). The trace term is computed in
float64 from eigenvalues: Tr((S1 S2)^(1/2)) = sum sqrt(eig(A^T S2 A)) with A A^T = S1 (A the
Cholesky factor; when S1 is singular, e.g. fewer images than feature dimensions, the (d, r)
factor of LAPACK's pivoted Cholesky `dpstrf`, r = rank, so A^T S2 A is only r x r; a
symmetric eigendecomposition if that fails), so A^T S2 A is symmetric positive semi-definite
and `eigvalsh` applies (no scipy `sqrtm`). Tiny
negative eigenvalues (round-off) are clamped to 0; a non-finite result is retried with 1e-6 I
added to both covariances.

Stats files are `.npz` with `mu` and `sigma` (pytorch-fid compatible) plus `extractor`,
`resize`, `count`, `meta_json` and optionally `features` (for KID).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.linalg import lapack

from ganforensics import console
from ganforensics.data.importers import collect_inputs
from ganforensics.data.manifest import usable
from ganforensics.errors import InputError
from ganforensics.io.atomic import atomic_path
from ganforensics.io.loading import iter_decoded, warn_bad_files
from ganforensics.metrics.features import FEATURE_BATCH, FeatureExtractor, compute_features
from ganforensics.metrics.kid import kid as kid_fn
from ganforensics.seeding import DEFAULT_SEED

EPS = 1e-6
LOSSY_FORMATS = ("JPEG", "JPG", "JPE", "JFIF", "WEBP")


def _sqrtm_psd(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def _psd_factor(s: np.ndarray) -> np.ndarray:
    """A with A A^T = S for a PSD S: Cholesky (d, d), else pivoted Cholesky (d, rank).

    The pivoted factor costs O(d^2 r) instead of the O(d^3) of `eigh`: at 2048-d and 400
    images it is ~50x faster; `eigh`'s symmetric square root is the last resort.
    """
    try:
        return np.linalg.cholesky(s)
    except np.linalg.LinAlgError:
        pass
    c, piv, rank, info = lapack.dpstrf(s, lower=1)
    if info < 0 or rank < 1:
        return _sqrtm_psd(s)
    a = np.empty((s.shape[0], rank))
    a[piv - 1] = np.tril(c)[:, :rank]  # P L with P[piv[k], k] = 1
    return a


def _trace_sqrt_product(s1: np.ndarray, s2: np.ndarray) -> float:
    """Tr((S1 S2)^(1/2)) = sum sqrt(eig(A^T S2 A)) for any A with A A^T = S1."""
    a = _psd_factor(s1)
    m = a.T @ s2 @ a
    m = (m + m.T) * 0.5
    ev = np.linalg.eigvalsh(m)
    return float(np.sqrt(np.clip(ev, 0.0, None)).sum())


def frechet_distance(mu1: Any, s1: Any, mu2: Any, s2: Any) -> float:
    """Frechet distance between N(mu1, s1) and N(mu2, s2), float64, eigenvalue route."""
    m1, m2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    c1, c2 = np.atleast_2d(np.asarray(s1, np.float64)), np.atleast_2d(np.asarray(s2, np.float64))
    if m1.shape != m2.shape or c1.shape != c2.shape or c1.shape != (m1.size, m1.size):
        raise InputError(
            f"FID: mismatched statistics: mu {m1.shape} vs {m2.shape}, sigma {c1.shape} vs "
            f"{c2.shape}"
        )
    diff = m1 - m2
    tr1, tr2 = float(np.trace(c1)), float(np.trace(c2))
    try:
        tr_cov = _trace_sqrt_product(c1, c2)
    except np.linalg.LinAlgError:
        tr_cov = float("nan")
    if not np.isfinite(tr_cov):
        console.warn(f"FID: non-finite trace term; retrying with {EPS} I added to both "
                     "covariances")
        off = np.eye(c1.shape[0]) * EPS
        tr_cov = _trace_sqrt_product(c1 + off, c2 + off)
        tr1, tr2 = tr1 + EPS * c1.shape[0], tr2 + EPS * c1.shape[0]
    fid = float(diff @ diff + tr1 + tr2 - 2.0 * tr_cov)
    scale = 1e-6 * (abs(tr1) + abs(tr2) + 1.0)
    if -scale < fid < 0.0:
        fid = 0.0
    return fid


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) of (N, D) features; covariance with N - 1."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise InputError(f"FID: need at least 2 feature vectors, got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


@dataclass
class SetStats:
    """Statistics of one image set: mean, covariance, optional features, metadata."""

    mu: np.ndarray
    sigma: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    features: np.ndarray | None = None


def save_stats(path: str | os.PathLike[str], stats: SetStats, with_features: bool = True
               ) -> Path:
    """Write a stats `.npz` atomically (pytorch-fid keys `mu`, `sigma` + metadata)."""
    arrays: dict[str, Any] = {
        "mu": stats.mu, "sigma": stats.sigma,
        "extractor": np.array(str(stats.meta.get("extractor", "unknown"))),
        "resize": np.array(str(stats.meta.get("preprocess", ""))),
        "count": np.array(int(stats.meta.get("count", 0))),
        "meta_json": np.array(json.dumps(stats.meta, default=str)),
    }
    if with_features and stats.features is not None:
        arrays["features"] = stats.features.astype(np.float32)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    return Path(path)


def load_stats(path: str | os.PathLike[str]) -> SetStats:
    """Read a stats `.npz` (ours or pytorch-fid's) without unpickling."""
    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as z:
            if "mu" not in z or "sigma" not in z:
                raise InputError(f"{p}: stats file lacks 'mu' and 'sigma'")
            meta: dict[str, Any] = {}
            if "meta_json" in z:
                meta = json.loads(str(z["meta_json"]))
            elif "extractor" in z:
                meta = {"extractor": str(z["extractor"])}
            feats = z["features"].astype(np.float64) if "features" in z else None
            return SetStats(z["mu"].astype(np.float64), z["sigma"].astype(np.float64),
                            meta, feats)
    except (OSError, ValueError) as exc:
        raise InputError(f"{p}: not a readable stats .npz ({str(exc).splitlines()[0]})") from None


def file_list_hash(paths: list[str]) -> str:
    """SHA-256 over (path, size, mtime) of each file in order: the stats-cache key part."""
    h = hashlib.sha256()
    for p in paths:
        st = os.stat(p)
        h.update(f"{os.path.abspath(p)}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def default_cache_dir() -> Path:
    """`$GANFORENSICS_CACHE` or `~/.cache/ganforensics`, subfolder `fid-stats`."""
    root = os.environ.get("GANFORENSICS_CACHE") or Path.home() / ".cache" / "ganforensics"
    return Path(root) / "fid-stats"


def _lossy_count(df: pd.DataFrame) -> int:
    fmt = df["format"].astype(str).str.upper() if "format" in df.columns else None
    suffix = df["abspath"].astype(str).str.rsplit(".", n=1).str[-1].str.upper()
    lossy = suffix.isin(LOSSY_FORMATS)
    if fmt is not None:
        lossy |= fmt.isin(LOSSY_FORMATS)
    return int(lossy.sum())


def _warn_small(n: int, dim: int, name: str) -> list[str]:
    if n < dim:
        msg = (f"{name}: {n} images < feature dimension {dim}: the covariance is rank-deficient "
               "and FID is strongly biased; compare only numbers computed with equal N")
        console.warn(msg)
        return [msg]
    return []


def stats_for_images(images: np.ndarray, extractor: FeatureExtractor, batch: int = FEATURE_BATCH,
                     name: str = "images") -> SetStats:
    """Stats of an in-memory uint8 stack (N, H, W, 3) (no cache)."""
    feats = compute_features(images, extractor, batch)
    mu, sigma = feature_stats(feats)
    warnings = _warn_small(len(feats), extractor.dim, name)
    meta = {**extractor.describe(), "count": len(feats), "input": name, "warnings": warnings}
    return SetStats(mu, sigma, meta, feats)


def _streamed_features(
    paths: list[str], extractor: FeatureExtractor, batch: int, progress: str | None
) -> tuple[list[np.ndarray], list[tuple[str, str]]]:
    """Features of the decodable files in chunks of `batch` (streamed, bounded memory), and
    `(path, reason)` of the files that did not decode. `progress` labels a progress bar."""
    feats: list[np.ndarray] = []
    bad: list[tuple[str, str]] = []
    chunk: list[np.ndarray] = []
    decoded = iter_decoded(paths)
    if progress is not None:
        decoded = console.track(decoded, progress, total=len(paths))
    for i, arr, err in decoded:
        if arr is None:
            bad.append((paths[i], err or "unreadable"))
            continue
        chunk.append(arr)
        if len(chunk) >= batch:
            feats.append(extractor(chunk))
            chunk = []
    if chunk:
        feats.append(extractor(chunk))
    return feats, bad


def stats_for_input(
    inp: str | os.PathLike[str],
    extractor: FeatureExtractor,
    *,
    batch: int = FEATURE_BATCH,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    progress: bool = True,
) -> SetStats:
    """Stats of a folder, manifest CSV or image file (cached), or a stats `.npz` (loaded).

    The cache key combines the extractor (name, weights digest, preprocessing) and the hash of
    the decoded file list (paths, sizes, mtimes). Unreadable images are skipped and reported.
    """
    p = Path(inp)
    if p.suffix.lower() == ".npz":
        st = load_stats(p)
        if "extractor" not in st.meta:
            console.warn(f"{p}: stats without metadata (e.g. pytorch-fid's); assuming they were "
                         f"computed with {extractor.name}")
            st.meta["extractor"] = extractor.name
        st.meta.setdefault("input", str(p))
        return st
    df = usable(collect_inputs([p]))
    paths = [str(a) for a in df["abspath"]]
    if not paths:
        raise InputError(f"{p}: no images found")
    warnings: list[str] = []
    lossy = _lossy_count(df)
    if lossy:
        msg = (f"{p}: {lossy} of {len(paths)} images are lossy (JPEG/WebP): compression "
               "artefacts change the features; compare like with like")
        console.warn(msg)
        warnings.append(msg)
    cache_file = None
    if use_cache:
        key = hashlib.sha256(f"{extractor.cache_id}|{file_list_hash(paths)}".encode()
                             ).hexdigest()[:20]
        cache_file = Path(cache_dir or default_cache_dir()) / f"{extractor.cache_id}-{key}.npz"
        if cache_file.exists():
            st = load_stats(cache_file)
            st.meta["cached"] = str(cache_file)
            st.meta["warnings"] = warnings + _warn_small(len(st.features) if st.features is not
                                                         None else int(st.meta.get("count", 0)),
                                                         extractor.dim, str(p))
            return st
    label = f"features {p.name}" if progress else None
    feats, bad = _streamed_features(paths, extractor, batch, label)
    warn_bad_files(bad, str(p))
    if not feats:
        raise InputError(f"{p}: none of the {len(paths)} images could be decoded")
    f = np.concatenate(feats)
    mu, sigma = feature_stats(f)
    warnings += _warn_small(len(f), extractor.dim, str(p))
    meta = {**extractor.describe(), "count": len(f), "input": str(p), "skipped": len(bad),
            "lossy": lossy, "warnings": warnings}
    st = SetStats(mu, sigma, meta, f)
    if cache_file is not None:
        save_stats(cache_file, st)
    return st


def compare(
    a: str | os.PathLike[str],
    b: str | os.PathLike[str],
    extractor: FeatureExtractor,
    *,
    with_kid: bool = False,
    batch: int = FEATURE_BATCH,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    seed: int = DEFAULT_SEED,
    progress: bool = True,
) -> dict[str, Any]:
    """FID (and KID) between two inputs; a JSON-ready result dict labelled by extractor."""
    sa = stats_for_input(a, extractor, batch=batch, cache_dir=cache_dir, use_cache=use_cache,
                         progress=progress)
    sb = stats_for_input(b, extractor, batch=batch, cache_dir=cache_dir, use_cache=use_cache,
                         progress=progress)
    for s, src in ((sa, a), (sb, b)):
        used = s.meta.get("extractor")
        if used not in (extractor.name, None):
            raise InputError(f"{src}: stats were computed with extractor {used!r}, not "
                             f"{extractor.name!r}")
    res: dict[str, Any] = {
        **extractor.describe(),
        "fid": frechet_distance(sa.mu, sa.sigma, sb.mu, sb.sigma),
        "a": {"input": str(a), "count": sa.meta.get("count")},
        "b": {"input": str(b), "count": sb.meta.get("count")},
        "warnings": list(sa.meta.get("warnings", [])) + list(sb.meta.get("warnings", [])),
    }
    if with_kid:
        if sa.features is None or sb.features is None:
            raise InputError("KID needs features; a stats .npz without `features` cannot be used "
                             "with --kid")
        mean, std = kid_fn(sa.features, sb.features, kid_subsets, kid_subset_size, seed)
        res.update(kid=mean, kid_std=std, kid_subsets=kid_subsets,
                   kid_subset_size=min(kid_subset_size, len(sa.features), len(sb.features)),
                   kid_seed=seed)
    return res



def _weighted_fid(g: np.ndarray, f1: np.ndarray, f2: np.ndarray, sq1: np.ndarray,
                  sq2: np.ndarray, w1: np.ndarray, w2: np.ndarray) -> float:
    """FID of the sets holding row i of `f1` w1[i] times and row j of `f2` w2[j] times, from
    the cross Gram matrix g = f1 f2^T and the squared row norms (no D x D matrix).

    With X1, X2 the centred (repeated) rows, S1 S2 = X1^T M X2 / c with M = X1 X2^T and
    c = (N1 - 1)(N2 - 1), whose non-zero eigenvalues are those of M M^T / c: Tr((S1 S2)^(1/2))
    is the sum of the singular values of M over sqrt(c), the same value as `frechet_distance`.
    Repeated rows enter M once, scaled by the square root of their count.
    """
    n1, n2 = float(w1.sum()), float(w2.sum())
    mu1, mu2 = w1 @ f1 / n1, w2 @ f2 / n2
    k1, k2 = np.flatnonzero(w1), np.flatnonzero(w2)
    m = g[np.ix_(k1, k2)] - np.outer(f1[k1] @ mu2, np.ones(len(k2)))
    m -= (f2[k2] @ mu1)[None, :] - float(mu1 @ mu2)
    m *= np.sqrt(w1[k1])[:, None] * np.sqrt(w2[k2])[None, :]
    tr1 = (float(w1 @ sq1) - n1 * float(mu1 @ mu1)) / (n1 - 1)
    tr2 = (float(w2 @ sq2) - n2 * float(mu2 @ mu2)) / (n2 - 1)
    tr_cov = float(np.linalg.svd(m, compute_uv=False).sum()) / np.sqrt((n1 - 1) * (n2 - 1))
    diff = mu1 - mu2
    return max(0.0, float(diff @ diff) + tr1 + tr2 - 2.0 * tr_cov)


def fid_bootstrap(
    real_feats: np.ndarray, fake_feats: np.ndarray, resamples: int, seed: int = DEFAULT_SEED
) -> np.ndarray:
    """FID of `resamples` bootstrap resamples of the feature rows (each set resampled with
    replacement to its own size, real then fake indices from one seeded generator): their
    spread is the sampling spread of the FID estimate at these set sizes, not another FID.
    No network pass is repeated; with fewer rows than dimensions the (N, N) route of
    `_weighted_fid` replaces the D x D covariances.

    Resampling repeats rows, which lowers the effective sample size, so the resampled FIDs sit
    above the full-set FID (FID is biased upwards at small N): read their standard deviation
    as the spread, not their percentiles as an interval around the FID.
    """
    f1 = np.asarray(real_feats, dtype=np.float64)
    f2 = np.asarray(fake_feats, dtype=np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1] or min(len(f1), len(f2)) < 2:
        raise InputError(f"FID bootstrap: need two (N >= 2, D) feature arrays with equal D, "
                         f"got {f1.shape} and {f2.shape}")
    rng = np.random.default_rng(seed)
    n1, n2 = len(f1), len(f2)
    small = min(n1, n2) < f1.shape[1]
    if small:
        g, sq1, sq2 = f1 @ f2.T, np.einsum("ij,ij->i", f1, f1), np.einsum("ij,ij->i", f2, f2)
    out = np.empty(int(resamples))
    for i in range(int(resamples)):
        i1, i2 = rng.integers(0, n1, n1), rng.integers(0, n2, n2)
        if small:
            out[i] = _weighted_fid(g, f1, f2, sq1, sq2, np.bincount(i1, minlength=n1)
                                   .astype(np.float64), np.bincount(i2, minlength=n2)
                                   .astype(np.float64))
        else:
            out[i] = frechet_distance(*feature_stats(f1[i1]), *feature_stats(f2[i2]))
    return out
