"""Is the search's pick worth having? At two MACs budgets, the code tools/search.py picks from the whole space
with a supernet, the 45k code with the most MACs within the budget, and a random 45k code just under it,
each trained standalone with the ground-truth protocol (3 seeds).

  python benchmarks/search_usefulness.py plan --supernet output/rk_ps/default/supernet.pdparams \
      --out benchmarks/gt/usefulness.codes.json            # runs the two searches, writes the 6 codes
  python tools/gt_campaign.py --gt benchmarks/gt/usefulness.json --codes benchmarks/gt/usefulness.codes.json \
      --seeds 1,2,3 --order code --jobs 1 --work output/gt/usefulness -- --width_divisor 8 --max_epoch 2 --warmup 0.5
  python benchmarks/search_usefulness.py report --plan benchmarks/gt/usefulness.codes.json \
      --gt benchmarks/gt/usefulness.json --out benchmarks/results/search_usefulness.json

Budgets are the 30th and 70th percentiles of the 45k list's MACs on the proxy network (widths / 8, 28 px).
The report gives each code's mean top-1 over seeds with a 95 % t-interval, and the pick minus each other.
"""
from __future__ import annotations

import json
import random
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

from supernet.archfile import ArchFileError, official_45k_path, read_archs, read_entries  # noqa: E402
from supernet.cli import ArgumentParser, entry_point, fail, positive_int  # noqa: E402
from supernet.runtime import atomic_write_json, setup_logging  # noqa: E402
from supernet.space import count_cost, network, parse_code  # noqa: E402

PROXY = network("fmnist", 8)
T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57}  # two-sided 95 % t quantiles by degrees of freedom


def plan(a) -> int:
    import search

    official = official_45k_path(a.arch_list)
    if official is None:
        return fail("the official 45k list was not found: pass --arch-list")
    archs = read_archs(official)
    macs = {x.code: count_cost(x, PROXY).macs for x in archs.values()}
    ordered = sorted(macs.values())
    rows = []
    rng = random.Random(a.seed)
    for q in (0.3, 0.7):
        budget = ordered[int(q * len(ordered))]
        picks = Path(a.work) / f"picks_q{int(q * 100)}.json"
        rc = search.main(["--supernet", a.supernet, "--cost-net", "proxy", "--max-macs", str(budget),
                          "--generations", str(a.generations), "--population", str(a.population), "--work",
                          str(Path(a.work) / "evo"), "--out", str(picks), "--top", "5", "--val-images", "2000"])
        if rc:
            return rc
        pick = json.loads(picks.read_text())["top"][0]["arch"]
        within = sorted((c for c, m in macs.items() if m <= budget), key=lambda c: macs[c])
        near = [c for c in within if macs[c] >= 0.9 * budget]
        for role, code in (("search", pick), ("most_macs", within[-1]), ("random", rng.choice(near))):
            rows.append({"budget_q": q, "budget_macs": budget, "role": role, "arch": code,
                         "macs": count_cost(parse_code(code), PROXY).macs})
    atomic_write_json(a.out, {f"u{i + 1}": {"arch": r["arch"], **r} for i, r in enumerate(rows)})
    for r in rows:
        print(f"budget {r['budget_macs'] / 1e6:.1f} M ({int(r['budget_q'] * 100)}th pct) {r['role']:<10} "
              f"{r['arch']} {r['macs'] / 1e6:.2f} M MACs")
    return 0


def mean_ci(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and the half-width of its two-sided 95 % t-interval (None where there are too few values)."""
    n = len(values)
    mean = statistics.mean(values) if values else None
    return mean, (T95[n - 1] * statistics.stdev(values) / n ** 0.5 if n >= 2 else None)


def report(a) -> int:
    plan_rows = read_entries(a.plan)
    gt = read_entries(a.gt)
    by_code = {v["arch"]: v for v in gt.values()}
    out = []
    for k, r in plan_rows.items():
        per_seed = (by_code.get(r["arch"]) or {}).get("per_seed", {})
        mean, half = mean_ci(list(per_seed.values()))
        arch = parse_code(r["arch"])
        out.append({**r, "key": k, "depth": sum(arch.depths), "seeds": len(per_seed), "per_seed": per_seed,
                    "top1": mean, "ci95_half": half})
    # the pick minus each alternative, paired by training seed (same data order and initialisation seed)
    diffs = []
    for q in sorted({r["budget_q"] for r in out}):
        pick = next((r for r in out if r["budget_q"] == q and r["role"] == "search"), None)
        for other in (r for r in out if r["budget_q"] == q and r["role"] != "search"):
            seeds = sorted(set(pick["per_seed"]) & set(other["per_seed"])) if pick else []
            d, h = mean_ci([pick["per_seed"][s] - other["per_seed"][s] for s in seeds])
            diffs.append({"budget_q": q, "versus": other["role"], "seeds": len(seeds), "search_minus": d, "ci95_half": h})
    res = {"plan": a.plan, "gt": a.gt, "rows": out, "search_minus": diffs}
    fmt = lambda v: f"{v:.2f}" if v is not None else "-"  # noqa: E731
    print(f"{'budget':>8} {'role':<10} {'M MACs':>7} {'depth':>5} {'seeds':>5} {'top-1':>8} {'95 % +-':>8}")
    for r in out:
        print(f"{int(r['budget_q'] * 100):>7}% {r['role']:<10} {r['macs'] / 1e6:>7.2f} {r['depth']:>5} {r['seeds']:>5} "
              f"{fmt(r['top1']):>8} {fmt(r['ci95_half']):>8}")
    print(f"{'budget':>8} {'search minus':<12} {'seeds':>5} {'top-1':>8} {'95 % +-':>8}")
    for d in diffs:
        print(f"{int(d['budget_q'] * 100):>7}% {d['versus']:<12} {d['seeds']:>5} {fmt(d['search_minus']):>8} "
              f"{fmt(d['ci95_half']):>8}")
    atomic_write_json(a.out, res)
    return 0


@entry_point
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    pl = sub.add_parser("plan")
    pl.add_argument("--supernet", required=True)
    pl.add_argument("--arch-list")
    pl.add_argument("--generations", type=positive_int, default=6)
    pl.add_argument("--population", type=positive_int, default=24)
    pl.add_argument("--seed", type=int, default=0)
    pl.add_argument("--work", default="output/search_usefulness")
    pl.add_argument("--out", required=True)
    rp = sub.add_parser("report")
    rp.add_argument("--plan", required=True)
    rp.add_argument("--gt", required=True)
    rp.add_argument("--out", required=True)
    a = p.parse_args(argv)
    setup_logging()
    try:
        return plan(a) if a.cmd == "plan" else report(a)
    except ArchFileError as e:
        return fail(str(e))


if __name__ == "__main__":
    sys.exit(main())
