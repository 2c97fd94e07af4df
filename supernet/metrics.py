"""Rank correlation between predicted and ground-truth accuracies, and the zero-cost floor.

Kendall tau-b (ties handled) in O(n log n) by Knight's merge-sort method, so the 45k-code case
is fast; Pearson; Spearman (average ranks for ties); overlap of the top-k sets.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .space import IMAGENET, NetConfig, count_cost, parse_code


def _count_swaps(a: np.ndarray) -> int:
    """Number of inversions in ``a`` (pairs i < j with a[i] > a[j]) by bottom-up merge sort."""
    a = list(a)
    n, swaps, width = len(a), 0, 1
    buf = [0] * n
    while width < n:
        for lo in range(0, n, 2 * width):
            mid, hi = min(lo + width, n), min(lo + 2 * width, n)
            i, j, k = lo, mid, lo
            while i < mid and j < hi:
                if a[j] < a[i]:
                    buf[k] = a[j]
                    swaps += mid - i
                    j += 1
                else:
                    buf[k] = a[i]
                    i += 1
                k += 1
            buf[k:k + mid - i] = a[i:mid]
            k += mid - i
            buf[k:k + hi - j] = a[j:hi]
        a, buf = buf, a
        width *= 2
    return swaps


def _tied_pairs(sorted_vals: np.ndarray) -> int:
    _, counts = np.unique(sorted_vals, return_counts=True)
    return int((counts * (counts - 1) // 2).sum())


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b; NaN when either side is constant."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    n = len(x)
    if n < 2:
        return float("nan")
    order = np.lexsort((y, x))  # by x, then y
    xs, ys = x[order], y[order]
    n0 = n * (n - 1) // 2
    n1 = _tied_pairs(xs)
    # pairs tied in both x and y
    _, inv = np.unique(np.stack([xs, ys], 1), axis=0, return_inverse=True)
    n3 = int((np.bincount(inv.ravel()) * (np.bincount(inv.ravel()) - 1) // 2).sum())
    n2 = _tied_pairs(np.sort(ys))
    swaps = _count_swaps(ys)  # discordant pairs (ties in x are ordered by y, so they add none)
    denom = np.sqrt(float(n0 - n1) * float(n0 - n2))
    if denom == 0:
        return float("nan")
    concordant_minus_discordant = n0 - n1 - n2 + n3 - 2 * swaps
    return float(concordant_minus_discordant / denom)


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def _avg_ranks(v: np.ndarray) -> np.ndarray:
    order = np.argsort(v, kind="mergesort")
    ranks = np.empty(len(v), np.float64)
    sv = v[order]
    i = 0
    while i < len(v):
        j = i
        while j + 1 < len(v) and sv[j + 1] == sv[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    return pearson(_avg_ranks(np.asarray(x, np.float64)), _avg_ranks(np.asarray(y, np.float64)))


def rank_blend(scores: Sequence[Sequence[float]], weights: Sequence[float] | None = None) -> list[float]:
    """Weighted mean of each predictor's normalised rank (0 = worst, 1 = best; ties share their mean rank).

    Ranks, not raw values: a supernet's loss and a parameter count live on unrelated scales, and only
    their orders matter for Kendall tau. Uses no ground truth, so a blend is a legitimate submission."""
    if not scores:
        raise ValueError("rank_blend: nothing to blend")
    n = len(scores[0])
    if any(len(s) != n for s in scores):
        raise ValueError("rank_blend: predictors differ in length")
    w = np.ones(len(scores)) if weights is None else np.asarray(weights, np.float64)
    if len(w) != len(scores) or (w < 0).any() or w.sum() <= 0:
        raise ValueError("rank_blend: need one non-negative weight per predictor, not all zero")
    ranks = [_avg_ranks(np.asarray(s, np.float64)) / max(1, n - 1) for s in scores]
    return (sum(wi * r for wi, r in zip(w, ranks)) / w.sum()).tolist()


def top_k_overlap(pred: Sequence[float], gt: Sequence[float], k: int) -> float:
    """|top-k by prediction ∩ top-k by ground truth| / k."""
    k = min(k, len(pred))
    if k == 0:
        return float("nan")
    a = set(np.argsort(-np.asarray(pred), kind="mergesort")[:k].tolist())
    b = set(np.argsort(-np.asarray(gt), kind="mergesort")[:k].tolist())
    return len(a & b) / k


def spans_magnitudes(v: Sequence[float], decades: float = 3.0) -> bool:
    """True for positive values spanning more than ``decades`` orders of magnitude (SynFlow spans 15):
    their Pearson is taken on the logarithm, else the largest few values decide it alone."""
    a = np.asarray(v, np.float64)
    a = a[np.isfinite(a)]
    return len(a) > 1 and bool((a > 0).all()) and float(np.log10(a.max() / a.min())) > decades


def undefined_reason(pred: Sequence[float], gt: Sequence[float]) -> str | None:
    """Why a correlation of ``pred`` with ``gt`` is undefined (written beside the null it becomes in JSON)."""
    if len(pred) < 2:
        return f"{len(pred)} code(s): a correlation needs two"
    for name, v in (("the predictions", pred), ("the ground truth", gt)):
        a = np.asarray(v, np.float64)
        if not np.isfinite(a).all():
            return f"{name} hold non-finite values"
        if np.ptp(a) == 0:
            return f"{name} are constant"
    return None


def correlations(pred: Sequence[float], gt: Sequence[float]) -> dict[str, float]:
    """Kendall, Pearson (on ln of the predictions when they span orders of magnitude: ``pearson_of``
    says which), Spearman and top-k overlaps; ``undefined`` says why the correlations are NaN, if they are."""
    n = len(pred)
    log_scale = spans_magnitudes(pred)
    p_for_pearson = np.log(np.asarray(pred, np.float64)) if log_scale else pred
    out = {"n": n, "kendall": kendall_tau_b(pred, gt), "pearson": pearson(p_for_pearson, gt),
           "pearson_of": "ln(prediction)" if log_scale else "prediction", "spearman": spearman(pred, gt)}
    for k in sorted({max(1, n // 10), max(1, n // 4)}):
        out[f"top{k}_overlap"] = top_k_overlap(pred, gt, k)
    reason = undefined_reason(pred, gt) if not np.isfinite(out["kendall"]) else None
    if reason:
        out["undefined"] = reason
    return out


def bootstrap_tau_interval(pred: Sequence[float], gt: Sequence[float], n_boot: int = 1000,
                           seed: int = 0) -> tuple[float, float]:
    """95 % bootstrap interval over codes of Kendall tau (NaN, NaN when undefined)."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    rng = np.random.default_rng(seed)
    taus = [kendall_tau_b(pred[i], gt[i]) for i in (rng.integers(0, len(gt), len(gt)) for _ in range(n_boot))]
    taus = [t for t in taus if np.isfinite(t)]
    if not taus:
        return float("nan"), float("nan")
    lo, hi = np.percentile(taus, [2.5, 97.5])
    return float(lo), float(hi)


def bootstrap_tau_diff(pred: Sequence[float], other: Sequence[float], gt: Sequence[float], n_boot: int = 2000,
                       seed: int = 0) -> dict[str, float]:
    """Paired bootstrap over codes of tau(pred) - tau(other): is one predictor really ahead of another?

    With a couple of dozen codes a tau difference of 0.1 is within noise; resampling the codes
    (the same resample for both predictors) gives a 95 % interval and the share of resamples in
    which ``pred`` is ahead, so "clearly above MACs" is a statement with an error bar.
    """
    pred, other, gt = (np.asarray(v, np.float64) for v in (pred, other, gt))
    if not len(pred) == len(other) == len(gt):
        raise ValueError("bootstrap_tau_diff: predictors and ground truth differ in length")
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot):
        i = rng.integers(0, len(gt), len(gt))
        d = kendall_tau_b(pred[i], gt[i]) - kendall_tau_b(other[i], gt[i])
        if np.isfinite(d):
            diffs.append(d)
    if not diffs:
        return {"diff": float("nan"), "lo": float("nan"), "hi": float("nan"), "p_ahead": float("nan")}
    d = np.asarray(diffs)
    lo, hi = np.percentile(d, [2.5, 97.5])
    return {"diff": kendall_tau_b(pred, gt) - kendall_tau_b(other, gt), "lo": float(lo), "hi": float(hi),
            "p_ahead": float((d > 0).mean())}


def zero_cost(codes: Sequence[str], cfg: NetConfig = IMAGENET) -> dict[str, list[float]]:
    """MACs, parameter counts and depths (residual blocks) of codes: the free predictors a supernet has to
    beat. Depth is there because most of what separates the 45k list's codes is their depth (their widths
    vary little), so a predictor that only counts blocks is a floor in its own right."""
    archs = [parse_code(c) for c in codes]
    costs = [count_cost(a, cfg) for a in archs]
    return {"macs": [float(c.macs) for c in costs], "params": [float(c.params) for c in costs],
            "depth": [float(a.depth) for a in archs]}


def kendall_within(x: Sequence[float], y: Sequence[float], groups: Sequence[float]) -> tuple[float, int]:
    """Kendall tau-b over the pairs of items in the same group only, and the number of such pairs.

    With ``groups`` = depth this says what a predictor knows beyond depth: pairs of codes with the same
    number of blocks, which depth alone cannot order. NaN when there is no such pair or one side is
    constant on all of them."""
    x, y, groups = (np.asarray(v, np.float64) for v in (x, y, groups))
    conc = tx = ty = pairs = 0.0
    for g in np.unique(groups):
        i = np.flatnonzero(groups == g)
        if len(i) < 2:
            continue
        dx = np.sign(x[i, None] - x[None, i])[np.triu_indices(len(i), 1)]
        dy = np.sign(y[i, None] - y[None, i])[np.triu_indices(len(i), 1)]
        conc += float((dx * dy).sum())  # concordant minus discordant
        tx += float((dx == 0).sum())
        ty += float((dy == 0).sum())
        pairs += len(dx)
    denom = np.sqrt((pairs - tx) * (pairs - ty))
    return (conc / denom if denom > 0 else float("nan")), int(pairs)


def bootstrap_within_interval(x: Sequence[float], y: Sequence[float], groups: Sequence[float], n_boot: int = 1000,
                              seed: int = 0) -> tuple[float, float]:
    """95 % bootstrap interval over items of ``kendall_within`` (items resampled with their group; NaN, NaN
    when undefined): e.g. how sure two seeds' agreement over equal-depth pairs is."""
    x, y, groups = (np.asarray(v, np.float64) for v in (x, y, groups))
    rng = np.random.default_rng(seed)
    taus = []
    for _ in range(n_boot):
        i = rng.integers(0, len(x), len(x))
        taus.append(kendall_within(x[i], y[i], groups[i])[0])
    taus = [t for t in taus if np.isfinite(t)]
    if not taus:
        return float("nan"), float("nan")
    lo, hi = np.percentile(taus, [2.5, 97.5])
    return float(lo), float(hi)


def concordance_by_gap(pred: Sequence[float], gt: Sequence[float], gap: Sequence[float],
                       bins: Sequence[tuple[float, float]] = ((1, 1), (2, 2), (3, float("inf")))) -> list[dict]:
    """Share of pairs the prediction orders as the ground truth does, over pairs whose ``gap`` (e.g. the
    difference in blocks) lies in each bin; pairs tied in the ground truth are left out, ties in the
    prediction count half."""
    p, g, d = (np.asarray(v, np.float64) for v in (pred, gt, gap))
    i, j = np.triu_indices(len(p), 1)
    dg, dp, dd = np.sign(g[i] - g[j]), np.sign(p[i] - p[j]), np.abs(d[i] - d[j])
    out = []
    for lo, hi in bins:
        m = (dd >= lo) & (dd <= hi) & (dg != 0)
        n = int(m.sum())
        conc = float(((dp[m] * dg[m] > 0) + 0.5 * (dp[m] == 0)).sum() / n) if n else float("nan")
        out.append({"gap": f"{lo:g}" if lo == hi else f"{lo:g}+", "pairs": n, "concordant": conc})
    return out


def diagnosis(values: Sequence[float], codes: Sequence[str], gt: Sequence[float] | None = None) -> dict:
    """Where a ranking's order comes from: Kendall tau of ``values`` with each stage's depth and each stage's
    mean width code, and (given the ground truth) concordance with it over pairs one, two and three or more
    blocks apart, and tau over equal-depth pairs. Run on the ground truth itself, the first part says what
    the truth rewards."""
    archs = [parse_code(c) for c in codes]
    out: dict = {
        "tau_stage_depth": [kendall_tau_b(values, [a.depths[s] for a in archs]) for s in range(4)],
        "tau_stage_width": [kendall_tau_b(values, [float(np.mean([w for b in a.blocks[s] for w in b])) for a in archs])
                            for s in range(4)],
        "tau_depth": kendall_tau_b(values, [a.depth for a in archs]),
    }
    if gt is not None:
        depth = [float(a.depth) for a in archs]
        out["concordance_by_depth_gap"] = concordance_by_gap(values, gt, depth)
        tau, pairs = kendall_within(values, gt, depth)
        out["tau_equal_depth"], out["equal_depth_pairs"] = tau, pairs
    return out
