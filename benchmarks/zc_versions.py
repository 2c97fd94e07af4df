"""Two zero-cost runs of the same codes compared: each predictor's agreement between them, and each one's
Kendall tau against a ground truth (e.g. after a change of a predictor's definition).

  python benchmarks/zc_versions.py --old benchmarks/results/zc45k --new output/zc_gt96 \
      --gt benchmarks/gt/d8e2.json --out benchmarks/results/zc_versions.json
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

from report import zero_cost_table  # noqa: E402

from supernet.archfile import ArchFileError  # noqa: E402
from supernet.cli import ArgumentParser, entry_point, fail  # noqa: E402
from supernet.groundtruth import gt_scores  # noqa: E402
from supernet.metrics import kendall_tau_b  # noqa: E402
from supernet.runtime import atomic_write_json  # noqa: E402
from supernet.zero_cost import PREDICTORS  # noqa: E402


@entry_point
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__)
    p.add_argument("--old", required=True, help="tools/zero_cost.py output folder (or table) of the earlier definitions")
    p.add_argument("--new", required=True, help="the same for the current definitions")
    p.add_argument("--gt", required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    try:
        old, new, gt = zero_cost_table(Path(a.old)), zero_cost_table(Path(a.new)), gt_scores(a.gt)
    except ArchFileError as e:
        return fail(str(e))
    codes = [c for c in gt if c in old and c in new]
    if len(codes) < 2:
        return fail(f"only {len(codes)} codes of {a.gt} are in both runs")
    rows = {}
    g = [gt[c] for c in codes]
    print(f"{'predictor':<10} {'old vs new':>10} {'old vs GT':>10} {'new vs GT':>10}   ({len(codes)} codes)")
    for n in PREDICTORS:
        o, w = [old[c][n] for c in codes], [new[c][n] for c in codes]
        rows[n] = {"old_vs_new": kendall_tau_b(o, w), "old_vs_gt": kendall_tau_b(o, g), "new_vs_gt": kendall_tau_b(w, g),
                   "new_over_old_median": sorted(x / y for x, y in zip(w, o) if y)[len(codes) // 2]}
        r = rows[n]
        print(f"{n:<10} {r['old_vs_new']:>10.3f} {r['old_vs_gt']:>10.3f} {r['new_vs_gt']:>10.3f}")
    atomic_write_json(a.out, {"old": a.old, "new": a.new, "gt": a.gt, "codes": len(codes), "predictors": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
