"""How far above the MACs floor can any predictor be *seen* to be on a ground-truth file?

The ground truth is noisy: two standalone runs of one code differ about as much as codes differ
from each other. This simulation takes the noise and the spread between codes estimated from the
file itself (codes with several seeds), and asks, for files of several sizes:

- ceiling: the Kendall tau of a perfect predictor (the codes' expected accuracies) against the
  noisy per-code means, i.e. the best any supernet can score;
- the predictor quality (correlation rho with the expected accuracies) that reproduces the
  observed MACs tau; rho = 1 means MACs is already at the ceiling on this file;
- power: how often a paired bootstrap over codes (as tools/rank_corr.py reports it) puts a
  perfect predictor's tau clearly (95 % interval above zero) above a MACs-like predictor of
  quality rho (one observed tau is too noisy to pin rho down, so several are shown).

With --candidates, one row per file: also how much of the codes' true spread is left among codes of
equal depth (``code_sd_same_depth``, one-way ANOVA less the seed noise) and how well depth alone ranks
the file (``depth_tau``): what a predictor can be seen to know beyond counting blocks.

  python benchmarks/gt_power.py [--gt ../shared/proxy_gt/dev_gt.json] [--rhos 0.6,0.8,0.9] [--sims 200]

It uses the ground truth only to estimate its own noise: nothing here touches a supernet.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from common import ROOT, environment, print_table, write_json

import sys

sys.path.insert(0, str(ROOT))
from supernet.archfile import default_shared_dir  # noqa: E402
from supernet.cli import ArgumentParser, entry_point, positive_int  # noqa: E402
from supernet.metrics import bootstrap_within_interval, kendall_tau_b, kendall_within, zero_cost  # noqa: E402
from supernet.groundtruth import network_of  # noqa: E402
from supernet.space import FMNIST28, parse_code  # noqa: E402


class GTInputError(ValueError):
    """A GT file or option that cannot answer the question (exit 2, one line)."""


log = logging.getLogger("gt_power")
METRIC_FIELDS = {"top1": "per_seed", "ce": "per_seed_ce", "train_loss": "per_seed_train_loss"}  # per-seed record


def depths(codes) -> list[int]:
    """Residual blocks per code (``Arch.depth``): what the equal-depth statistics group by; no cost count."""
    return [parse_code(c).depth for c in codes]


def tau_b_batch(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall tau-b of each row pair of ``x``, ``y`` (shape (B, n)); O(n^2), for simulation sizes."""
    sx = np.sign(x[:, :, None] - x[:, None, :]).astype(np.int8)
    sy = np.sign(y[:, :, None] - y[:, None, :]).astype(np.int8)
    num = (sx * sy).sum((1, 2), dtype=np.int64)
    den = np.sqrt((sx != 0).sum((1, 2), dtype=np.int64) * (sy != 0).sum((1, 2), dtype=np.int64).astype(np.float64))
    return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def seed_offsets(gt: dict) -> dict[str, float]:
    """Per seed, how much every code's run with that seed lies above its code's mean (from codes with
    several seeds). A seed fixes the data order for every code, so part of the seed noise is shared by
    all codes: it shifts every code alike and cannot change a ranking whose codes all have the same seeds."""
    res: dict[str, list[float]] = {}
    for v in gt.values():
        per = v.get("per_seed", {})
        if len(per) > 1:
            m = float(np.mean(list(per.values())))
            for s, x in per.items():
                res.setdefault(s, []).append(x - m)
    return {s: float(np.mean(r)) for s, r in res.items()}


def noise_model(gt: dict, shared_seed_effect: bool = True) -> dict:
    """Seed noise (sd of one run) from codes with several seeds; spread of expected accuracies from all codes.

    With ``shared_seed_effect`` each seed's common offset (``seed_offsets``) is removed first: the noise
    left is what differs between codes for the same seed, the part that reorders them."""
    off = seed_offsets(gt) if shared_seed_effect else {}
    per_code = [np.array([x - off.get(s, 0.0) for s, x in v.get("per_seed", {"_": v["acc"]}).items()], np.float64)
                for v in gt.values()]
    seeds = [p for p in per_code if len(p) > 1]
    if not seeds:
        raise GTInputError("no code in the file has two seeds: the noise cannot be estimated")
    noise_var = float(np.mean([s.var(ddof=1) for s in seeds]))
    n_seeds = np.array([len(p) for p in per_code])
    means = np.array([p.mean() for p in per_code], np.float64)
    code_var = max(float(means.var(ddof=1) - np.mean(noise_var / n_seeds)), 1e-12)
    return {"noise_sd": noise_var ** 0.5, "code_sd": code_var ** 0.5, "n_seeds": n_seeds.tolist(),
            "codes_with_seeds": len(seeds), "seed_offsets": off,
            "code_sd_same_depth": same_depth_sd(depths(v["arch"] for v in gt.values()), means,
                                                noise_var / n_seeds)}


def same_depth_sd(depths: list[float], means: np.ndarray, mean_noise_var: np.ndarray) -> float | None:
    """Spread (sd) of the codes' expected values around their depth's mean: the pooled within-depth
    variance of the per-code means less what their seed noise puts into it (one-way ANOVA). What a
    predictor could know beyond depth; 0 when the noise explains all of it, None with no two codes of
    one depth."""
    groups: dict[float, list[int]] = {}
    for i, d in enumerate(depths):
        groups.setdefault(d, []).append(i)
    dev, noise, dof = 0.0, 0.0, 0
    for idx in (g for g in groups.values() if len(g) > 1):
        m = means[idx]
        dev += float(((m - m.mean()) ** 2).sum())
        noise += float(mean_noise_var[idx].sum()) * (len(idx) - 1) / len(idx)  # E[sum of squares] from noise
        dof += len(idx) - 1
    return max(0.0, (dev - noise) / dof) ** 0.5 if dof else None


def simulate(n_seeds: np.ndarray, noise_sd: float, code_sd: float, rho: float, sims: int, boots: int,
             rng: np.random.Generator) -> dict:
    """Taus of a perfect and a rho-quality predictor against simulated noisy ground truth, and bootstrap power."""
    n = len(n_seeds)
    true = rng.normal(0, code_sd, (sims, n))
    gt = true + rng.normal(0, 1, (sims, n)) * noise_sd / np.sqrt(n_seeds)
    z = (true / code_sd)
    other = rho * z + np.sqrt(max(0.0, 1 - rho ** 2)) * rng.normal(0, 1, (sims, n))
    t_perfect, t_other = tau_b_batch(true, gt), tau_b_batch(other, gt)
    clear = 0
    for s in range(sims if boots else 0):
        idx = rng.integers(0, n, (boots, n))
        d = tau_b_batch(true[s][idx], gt[s][idx]) - tau_b_batch(other[s][idx], gt[s][idx])
        clear += np.nanpercentile(d, 2.5) > 0
    return {"ceiling_mean": float(np.nanmean(t_perfect)), "ceiling_sd": float(np.nanstd(t_perfect)),
            "other_mean": float(np.nanmean(t_other)), "other_sd": float(np.nanstd(t_other)),
            "power": clear / sims if boots else None}


def job_minutes(gt_path: Path) -> dict:
    """CPU minutes per standalone job (wall seconds, less any time it was stopped on purpose, x threads) from
    the campaign's ``<name>.jobs.jsonl``. Jobs that continued from a checkpoint (``resumed``) ran only part
    of their training in the recorded time and are left out."""
    jobs = gt_path.with_name(gt_path.stem + ".jobs.jsonl")
    if not jobs.is_file():
        return {}
    recs = [json.loads(ln) for ln in jobs.read_text().splitlines() if ln.strip()]
    ok = [r for r in recs if r.get("rc") == 0 and not r.get("gpus")]
    cpu = [(r["seconds"] - r.get("paused_s", 0.0)) * max(1, r.get("threads") or 1) / 60
           for r in ok if not r.get("resumed")]
    return {"jobs_timed": len(cpu), "jobs_resumed": len(ok) - len(cpu),
            "cpu_min_median": float(np.median(cpu)) if cpu else None,
            "cpu_min_mean": float(np.mean(cpu)) if cpu else None}


def seed_agreement(gt: dict, same_depth: bool = False, interval: bool = False):
    """Kendall tau between two seeds' results over the codes that have both (the first two seeds). With
    ``same_depth``, over the pairs of codes with equal depth only: how much of the file's reproducible
    order is more than depth (on d8e2 at 46 codes: none, BENCHMARKS.md). With ``interval`` (and
    ``same_depth``): the 95 % bootstrap interval over codes instead, as [lo, hi]."""
    pairs = []
    for v in gt.values():
        per = v.get("per_seed", {})
        if len(per) > 1:
            a, b = sorted(per)[:2]
            pairs.append((v["arch"], per[a], per[b]))
    if len(pairs) <= 2:
        return None
    codes, first, second = zip(*pairs)
    if not same_depth:
        return kendall_tau_b(first, second)
    if interval:
        lo, hi = bootstrap_within_interval(first, second, depths(codes))
        return [lo, hi] if np.isfinite(lo) else None
    tau, n = kendall_within(first, second, depths(codes))
    return tau if n else None


def as_metric(gt: dict, metric: str) -> dict:
    """The GT file with ``acc``/``per_seed`` replaced by another per-seed record, higher = better:
    ``ce`` (minus the test cross-entropy) or ``train_loss`` (minus the last epoch's train loss)."""
    if metric == "top1":
        return gt
    field = METRIC_FIELDS[metric]
    out = {}
    for k, v in gt.items():
        if field not in v:
            raise GTInputError(f"{k} has no {field}: this GT file does not record {metric}")
        per = {s: -x for s, x in v[field].items()}
        out[k] = {"arch": v["arch"], "acc": float(np.mean(list(per.values()))), "per_seed": per}
    return out


def agreement(gt: dict, ref: dict) -> dict:
    """Kendall tau between two GT files' mean scores over the codes both hold, overall and over pairs of
    equal depth only: whether another protocol orders the same codes the same way, and beyond depth."""
    ref_by_code = {v["arch"]: v["acc"] for v in ref.values()}
    shared = [(v["arch"], v["acc"], ref_by_code[v["arch"]]) for v in gt.values() if v["arch"] in ref_by_code]
    out = {"ref_codes": len(shared), "ref_tau": None, "ref_tau_same_depth": None, "ref_pairs_same_depth": 0}
    if len(shared) > 2:
        codes, mine, theirs = zip(*shared)
        tau, n = kendall_within(mine, theirs, depths(codes))
        out.update(ref_tau=kendall_tau_b(mine, theirs), ref_tau_same_depth=tau if n else None, ref_pairs_same_depth=n)
    return out


def candidates(paths: list[str], final_codes: int, final_seeds: list[int], sims: int, seed: int,
               metric: str = "top1", shared_seed_effect: bool = True, against: dict | None = None) -> list[dict]:
    """One row per candidate protocol: its noise, spread, MACs tau, cost, and the ceiling at the final size
    (and, with ``against``, its agreement with that GT file's contents on the codes both hold)."""
    rng = np.random.default_rng(seed)
    rows = []
    for path in paths:
        gt_path = Path(path)
        gt = as_metric(json.loads(gt_path.read_text()), metric)
        model = noise_model(gt, shared_seed_effect)
        accs = [v["acc"] for v in gt.values()]
        free = zero_cost([v["arch"] for v in gt.values()], network_of(path, FMNIST28))  # MACs and depth, once
        row = {"candidate": gt_path.stem, "metric": metric, "codes": len(gt), "with_2+_seeds": model["codes_with_seeds"],
               "acc_min": min(accs), "acc_max": max(accs), "seed_sd": model["noise_sd"], "code_sd": model["code_sd"],
               "code_sd_same_depth": model["code_sd_same_depth"], "macs_tau": kendall_tau_b(free["macs"], accs),
               "depth_tau": kendall_tau_b(free["depth"], accs),
               "seed_tau": seed_agreement(gt),
               "seed_tau_same_depth": seed_agreement(gt, same_depth=True),
               "seed_tau_same_depth_ci95": seed_agreement(gt, same_depth=True, interval=True), **job_minutes(gt_path)}
        if against:
            row.update(agreement(gt, as_metric(against, metric)))
        for k in final_seeds:
            r = simulate(np.full(final_codes, k), model["noise_sd"], model["code_sd"], 0.9, sims, 0, rng)
            row[f"ceiling_{final_codes}x{k}"] = r["ceiling_mean"]
        rows.append(row)
    return rows


@entry_point
def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gt", default=str(default_shared_dir() / "proxy_gt" / "dev_gt.json"))
    p.add_argument("--macs-tau", type=float, default=None, help="observed MACs tau (default: computed on --gt)")
    p.add_argument("--sizes", default="48,96,192", help="larger file sizes to simulate (codes, 2 seeds each)")
    p.add_argument("--rhos", default="0.6,0.8,0.9", help="qualities of the MACs-like predictor for the power table")
    p.add_argument("--sims", type=positive_int, default=200)
    p.add_argument("--boots", type=positive_int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="benchmarks/results/gt_power.json")
    p.add_argument("--candidates", help="comma-separated GT files of candidate protocols: one row each (noise, "
                                        "spread, MACs tau, CPU minutes per job, ceiling at the final size)")
    p.add_argument("--independent-seeds", action="store_true",
                   help="treat all seed noise as independent between codes (default: remove each seed's offset "
                        "shared by all codes, since every code of a campaign is trained with the same seeds)")
    p.add_argument("--final-codes", type=positive_int, default=96)
    p.add_argument("--final-seeds", default="2,3")
    p.add_argument("--metrics", default="top1", help="with --candidates: top1, ce, train_loss (comma-separated)")
    p.add_argument("--against", help="with --candidates: a reference GT file; adds each candidate's Kendall tau with "
                                     "it on the codes both hold (ref_tau, and ref_tau_same_depth over equal-depth pairs)")
    a = p.parse_args(argv)
    try:
        run(a)
    except (GTInputError, json.JSONDecodeError, OSError) as e:  # bad input: one line, exit 2
        p.error(str(e))


def run(a: argparse.Namespace) -> None:
    if a.candidates:
        missing = [q for q in a.candidates.split(",") if not Path(q).is_file()]
        if missing:
            raise GTInputError(f"--candidates {missing[0]}: file not found")
        if a.against and not Path(a.against).is_file():
            raise GTInputError(f"--against {a.against}: file not found")
        bad = [m for m in a.metrics.split(",") if m not in METRIC_FIELDS]
        if bad:
            raise GTInputError(f"--metrics {a.metrics!r}: {bad[0]!r} is not one of {', '.join(METRIC_FIELDS)}")
        try:
            seeds = [int(k) for k in a.final_seeds.split(",")]
        except ValueError:
            raise GTInputError(f"--final-seeds {a.final_seeds!r} is not a comma-separated list of seed counts") from None
        if any(k < 1 for k in seeds):
            raise GTInputError(f"--final-seeds {a.final_seeds!r}: every seed count must be >= 1")
        ref = json.loads(Path(a.against).read_text()) if a.against else None
        rows = []
        for metric in a.metrics.split(","):
            paths = a.candidates.split(",")
            if metric != "top1":  # only files that record it
                field = METRIC_FIELDS[metric]
                paths = [q for q in paths if all(field in v for v in json.loads(Path(q).read_text()).values())]
            rows += candidates(paths, a.final_codes, seeds, a.sims, a.seed, metric, not a.independent_seeds, ref)
        for r in rows:  # the interval printed in one column
            ci = r["seed_tau_same_depth_ci95"]
            r["same_depth_ci95"] = f"[{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else None
        cols = ["candidate", "metric", "codes", "with_2+_seeds", "acc_min", "acc_max", "seed_sd", "code_sd", "code_sd_same_depth",
                "macs_tau", "depth_tau", "seed_tau", "seed_tau_same_depth", "same_depth_ci95", "cpu_min_median",
                *(["ref_codes", "ref_tau", "ref_tau_same_depth", "ref_pairs_same_depth"] if a.against else []),
                *[f"ceiling_{a.final_codes}x{k}" for k in seeds]]
        print_table(f"candidate protocols: simulated Kendall ceiling of a perfect predictor at {a.final_codes} codes",
                    rows, cols)
        write_json(a.out, {"env": environment(), "args": vars(a), "rows": rows})
        return
    gt_path = Path(a.gt)
    if not gt_path.is_file():
        raise GTInputError(f"--gt {gt_path}: file not found")
    gt = json.loads(gt_path.read_text())
    model = noise_model(gt, not a.independent_seeds)
    accs = [v["acc"] for v in gt.values()]
    macs_tau = a.macs_tau if a.macs_tau is not None else kendall_tau_b(zero_cost([v["arch"] for v in gt.values()],
                                                                                  network_of(a.gt, FMNIST28))["macs"], accs)
    log.info("%s: %d codes (%d with several seeds); seed noise sd %.3f, spread of expected accuracies sd %.3f; "
             "MACs tau %.3f", gt_path.name, len(gt), model["codes_with_seeds"], model["noise_sd"], model["code_sd"],
             macs_tau)
    rng = np.random.default_rng(a.seed)
    file_seeds = np.array(model["n_seeds"])
    # rho of a predictor whose expected tau on a file like this one equals the observed MACs tau
    grid = np.linspace(0, 1, 21)
    taus = [simulate(file_seeds, model["noise_sd"], model["code_sd"], r, 400, 0, rng)["other_mean"]
            for r in tqdm(grid, desc="matching MACs")]
    rho = float(grid[int(np.argmin(np.abs(np.array(taus) - macs_tau)))])
    rows = []
    cases = [(len(gt), "as file", float(r)) for r in a.rhos.split(",")]
    cases += [(int(n), "2 each", float(r)) for n in a.sizes.split(",") for r in a.rhos.split(",")]
    for size, how, r_other in tqdm(cases, desc="files"):
        seeds = file_seeds if how == "as file" else np.full(size, 2)
        r = simulate(seeds, model["noise_sd"], model["code_sd"], r_other, a.sims, a.boots, rng)
        rows.append({"codes": size, "seeds": how, "rho_other": r_other, **r})
    print_table(f"{gt_path.name}: seed noise sd {model['noise_sd']:.3f}, code spread sd {model['code_sd']:.3f}; "
                f"observed MACs tau {macs_tau:.3f} = a predictor with rho {rho:.2f} (max tau on the grid "
                f"{max(taus):.3f}); power = share of files where a perfect predictor is clearly above a predictor "
                f"of quality rho_other", rows,
                ["codes", "seeds", "rho_other", "ceiling_mean", "ceiling_sd", "other_mean", "other_sd", "power"])
    write_json(a.out, {"env": environment(), "args": vars(a), "noise_model": {k: v for k, v in model.items()
                                                                             if k != "n_seeds"},
                       "macs_tau": macs_tau, "rho_matching_macs": rho, "tau_by_rho": dict(zip(grid.tolist(), taus)),
                       "rows": rows})


if __name__ == "__main__":
    sys.exit(main())
