"""The BENCHMARKS.md table of one or more benchmarks/ranking.py results (markdown on stdout).

  python benchmarks/ranking_table.py benchmarks/results/ranking_v3_96x3.json [more.json ...] [--k 4] \
      [--rows default,finetune,default+depth]

One line per recipe (and per blend with a free prior) and supernet ranking (loss first, then top-1), at
calibration K: Kendall tau against the ground truth's top-1 with its paired 95 % intervals against
MACs, the best zero-cost predictor (named) and the default recipe, the same against the ground truth's
test cross-entropy when the run measured it, Kendall over the pairs of codes with equal depth, and
training minutes. Then the floor (every free and zero-cost predictor) on the same codes. Rows of a
later file replace those of an earlier one with the same recipe (e.g. two runs sharing the default);
the files must rank the same ground-truth codes.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _diff(row: dict | None, key: str, ci: str) -> str:
    if not row or row.get(key) is None:
        return "—"
    return f"{row[key]:+.3f} {row[ci]}"


def _same_depth(rows: dict, metrics: list[str]) -> str:
    vals = [rows[m].get("tau_same_depth") for m in metrics if m in rows]
    return " / ".join("—" if v is None else f"{v:+.2f}" for v in vals)


def read_results(paths: list[str]) -> list[dict]:
    """The parsed ranking.py result files; ValueError naming the first unreadable one."""
    results = []
    for f in paths:
        try:
            data = json.loads(Path(f).read_text())
        except (OSError, ValueError) as e:
            raise ValueError(f"{f}: not a readable ranking.py result ({e})") from None
        if not isinstance(data, dict) or not isinstance(data.get("details"), dict) or "rows" not in data:
            raise ValueError(f"{f}: not a ranking.py result (it has no rows and details)")
        results.append(data)
    return results


def same_ruler(results: list[dict]) -> None:
    """ValueError unless every result ranks the same ground-truth codes (file, entries, held-out set and,
    where recorded, their sha256): rows of different rulers are never put side by side."""
    truths = {(r.get("gt_file"), r.get("gt_entries"), (r.get("args") or {}).get("exclude")) for r in results}
    if len(truths) > 1:
        raise ValueError(f"the results rank different ground-truth files ({sorted(map(str, truths))})")
    shas = {(r.get("gt_sha256"), r.get("exclude_sha256")) for r in results if r.get("gt_sha256")}
    if len(shas) > 1:  # the same name, other contents (a GT file that grew between the runs)
        raise ValueError("the results were measured on ground-truth (or held-out) files of different contents "
                         f"(sha256 {', '.join(sorted(str(s[0])[:12] for s in shas))})")


def table(results: list[dict], k: int = 4, only: list[str] | None = None) -> str:
    """Markdown: the recipes' rows (those named in ``only``, in its order, when given), then the floor.
    ValueError for results of different ground truths and for rows that are not there."""
    lines: dict[tuple[str, str], dict[str, dict]] = {}  # (variant, rank_by) -> gt_metric -> row
    order: list[tuple[str, str]] = []
    details: dict = {}
    same_ruler(results)
    for res in results:
        details.update(res["details"])
        for row in res["rows"]:
            if row.get("calib_K") != k:
                continue
            key = (row["variant"], row["rank_by"])
            if key not in lines:
                order.append(key)
            lines.setdefault(key, {})[row["gt_metric"]] = row
    if only:
        unknown = sorted(set(only) - {key[0] for key in order})
        if unknown:
            raise ValueError(f"--rows: no rows for {unknown} at K = {k}")
        order = [key for v in only for key in order if key[0] == v]
    if not order:
        raise ValueError(f"--k: no rows at calibration K = {k}")
    metrics = [m for m in ("top1", "ce") if any(m in v for v in lines.values())]
    head = ["recipe", "ranked by", "n", "tau GT top-1", "minus MACs [95 %]", "minus best zero-cost [95 %]",
            "minus default [95 %]"]
    if "ce" in metrics:
        head += ["tau GT CE", "minus MACs (CE) [95 %]", "minus best zero-cost (CE) [95 %]"]
    head += [f"tau equal depth ({' / '.join(metrics)})", "concordant 1 / 2 / 3+ blocks apart", "train min"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for rank_by in ("loss", "top1"):
        for key in (key for key in order if key[1] == rank_by):
            by = lines[key]
            top, ce = by.get("top1"), by.get("ce")
            first = top or ce
            cells = [key[0], rank_by, str(first["n"]), f"{top['kendall']:.3f}" if top else "—",
                     _diff(top, "minus_macs", "ci95_macs"),
                     f"{_diff(top, 'tau_minus_zc', 'ci95')} ({top['best_zc']})" if top else "—",
                     _diff(top, "minus_default", "ci95_default")]
            if "ce" in metrics:
                cells += [f"{ce['kendall']:.3f}" if ce else "—", _diff(ce, "minus_macs", "ci95_macs"),
                          f"{_diff(ce, 'tau_minus_zc', 'ci95')} ({ce['best_zc']})" if ce else "—"]
            gaps = first.get("concordant_by_gap")
            cells += [_same_depth(by, metrics), " / ".join(f"{g:.3f}" for g in gaps) if gaps else "—",
                      f"{first['train_min']:.1f}"]
            out.append("| " + " | ".join(cells) + " |")
    floors = {}
    for m in metrics:
        d = next((v for name, v in details.items() if v.get("gt_metric") == m and "floor" in v), None)
        if d:
            floors[m] = {name: f["kendall"] for name, f in d["floor"].items()}
    if floors:
        first = next(iter(floors.values()))
        names = sorted(first, key=first.get, reverse=True)  # best first, by the first GT metric
        out.append("")
        out.append(f"Floor on the same codes (GT {' / '.join(floors)}): " + ", ".join(
            f"{n} {' / '.join(f'{floors[m][n]:.3f}' for m in floors)}" for n in names) + ".")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="+", help="benchmarks/ranking.py --out files")
    p.add_argument("--k", type=int, default=4, help="BN calibration K of the rows shown")
    p.add_argument("--rows", help="comma-separated recipes to show, in this order (e.g. default,finetune,default+depth)")
    a = p.parse_args(argv)
    try:
        print(table(read_results(a.results), a.k, [r for r in (a.rows or "").split(",") if r]))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
