"""What a zero-cost run (tools/zero_cost.py) cost and says, read back from its folder.

  python benchmarks/zc_run.py output/zc45k --gt benchmarks/gt/d8e2.json --out benchmarks/results/zc45k.json

Prints and writes: codes, seconds per code (median, mean, 90th percentile, from the journals' ``s``),
wall hours and codes/hour when the records carry ``end``/``pid`` (journals of the current tools;
earlier records only have ``s``, so their wall time is read off the logs by hand), the Kendall tau of
every pair of predictors over all codes (how much they agree at the scale of the 45k list), and each
predictor's Kendall / Pearson against the ground truth on the codes the two files share.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from common import ROOT, print_table, union_seconds, write_json

from supernet.cli import ArgumentParser, entry_point
from supernet.metrics import kendall_tau_b
from supernet.space import parse_code
from supernet.zero_cost import SCORE_FILES

sys.path.insert(0, str(ROOT / "tools"))
import rank_corr  # noqa: E402

NAMES = list(SCORE_FILES)


def read_records(folder: Path) -> list[dict]:
    """Every finished record of every journal in ``folder``, tagged with its journal (first record per code)."""
    paths = sorted(folder.glob("journal*.jsonl"))
    if not paths:
        raise ValueError(f"{folder}: no journal*.jsonl (not a tools/zero_cost.py output folder)")
    seen: dict[str, dict] = {}
    for p in paths:
        for line in p.read_text(encoding="utf-8").splitlines()[1:]:
            if line.strip():
                r = json.loads(line)
                seen.setdefault(r["arch"], {**r, "depth": float(parse_code(r["arch"]).depth), "journal": p.name})
    return list(seen.values())


def wall(records: list[dict]) -> dict | None:
    """Wall time as benchmarks/eval_run.py counts it (union of each process's busy span), when every record
    says when it finished and in which process."""
    if not all("end" in r and "pid" in r for r in records):
        return None
    procs: dict[tuple[str, int], list[dict]] = {}
    for r in records:
        procs.setdefault((r["journal"], r["pid"]), []).append(r)
    hours = union_seconds([(min(r["end"] - r["s"] for r in rs), max(r["end"] for r in rs))
                           for rs in procs.values()]) / 3600
    return {"wall_hours": hours, "codes_per_hour": len(records) / max(1e-9, hours), "processes": len(procs)}


@entry_point
def main(argv: list[str] | None = None) -> None:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder")
    p.add_argument("--gt", default=str(ROOT / "benchmarks" / "gt" / "d8e2.json"))
    p.add_argument("--out", default="benchmarks/results/zc_run.json")
    a = p.parse_args(argv)
    folder = Path(a.folder)
    try:
        recs = read_records(folder)
    except (ValueError, OSError) as e:
        p.error(str(e))
    secs = np.array([r["s"] for r in recs])
    cost = {"codes": len(recs), "s_median": float(np.median(secs)), "s_mean": float(secs.mean()),
            "s_p90": float(np.percentile(secs, 90)), "cpu_hours": float(secs.sum() / 3600),
            "per_journal": {j: sum(r["journal"] == j for r in recs) for j in sorted({r["journal"] for r in recs})}}
    cost["wall"] = wall(recs)
    print_table("zero-cost run", [{k: v for k, v in cost.items() if k not in ("per_journal", "wall")}], list(cost)[:5])
    vals = {n: np.array([np.nan if r.get(n) is None else r[n] for r in recs], np.float64) for n in NAMES}
    ok = np.all([np.isfinite(v) for v in vals.values()], axis=0)
    agree = {x: {y: kendall_tau_b(vals[x][ok], vals[y][ok]) for y in NAMES} for x in NAMES}
    print_table(f"Kendall tau between predictors over {int(ok.sum())} codes",
                [{"": x, **{y: round(agree[x][y], 3) for y in NAMES}} for x in NAMES], ["", *NAMES])
    gt = None
    if Path(a.gt).is_file() and (folder / "params.json").is_file():
        res = rank_corr.compare(str(folder / "params.json"), a.gt, "fmnist28", zc_dir=str(folder))
        gt = {"file": a.gt, "n": res["n"], "floor": res["floor"]}
        print_table(f"against {a.gt} ({res['n']} codes)",
                    [{"predictor": k, "kendall": v["kendall"], "pearson": v["pearson"], "spearman": v["spearman"]}
                     for k, v in sorted(res["floor"].items(), key=lambda kv: -kv[1]["kendall"])],
                    ["predictor", "kendall", "pearson", "spearman"])
    write_json(a.out, {"folder": str(folder), "cost": cost, "agreement_kendall": agree, "ground_truth": gt,
                       "non_finite": {n: int((~np.isfinite(vals[n])).sum()) for n in NAMES}})


if __name__ == "__main__":
    sys.exit(main())
