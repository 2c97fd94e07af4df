"""Where a supernet's ranking wins or loses against depth, as a table and a picture.

  python benchmarks/ranking_diagnosis.py benchmarks/results/ranking_finetune_levers.json \
      benchmarks/results/ranking_finetune_narrowest.json --recipes default,finetune,finetune_narrowest \
      --out benchmarks/results/ranking_diagnosis.png

From the diagnosis every benchmarks/ranking.py result carries (tools/rank_corr.py computes it), for each
recipe ranked by loss at K = 4 and for depth (the free predictor) and the ground truth itself: the share of
concordant pairs among code pairs one, two and three or more blocks apart, and Kendall tau with each
stage's depth and each stage's mean width code. Depth is the ruler a supernet has to pass on the proxy;
the left panel shows at which depth gaps it falls behind, the right one what it follows instead.
Writes the PNG and, beside it, the numbers as JSON. Files of different ground truths are refused.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ranking_table import read_results, same_ruler  # noqa: E402

GAPS = ("1", "2", "3+")


def collect(results: list[dict], recipes: list[str], k: int = 4, rank_by: str = "loss") -> dict[str, dict]:
    """name -> {"concordant": [gap 1, 2, 3+], "stage_depth": [4], "stage_width": [4]} for depth, the
    recipes (in order) and the ground truth. ValueError names what is missing or mixed."""
    same_ruler(results)
    found: dict[str, dict] = {}
    for r in results:  # a later file's recipe replaces an earlier one's
        for v in recipes:
            d = (r.get("details") or {}).get(f"{v}_k{k}_{rank_by}")
            if d and d.get("diagnosis"):
                found[v] = d["diagnosis"]
    missing = [v for v in recipes if v not in found]
    if missing:
        raise ValueError(f"no diagnosis for {', '.join(missing)} at K = {k} ranked by {rank_by} in these files")
    first = found[recipes[0]]
    try:
        out = {"depth": _pick(first["depth"])}
        out.update({v: _pick(found[v]["prediction"]) for v in recipes})
        out["ground truth"] = _pick(first["ground_truth"])
    except (KeyError, TypeError) as e:
        raise ValueError(f"a diagnosis in these files lacks {e} (written by an older ranking.py?)") from None
    return out


def _pick(d: dict) -> dict:
    gaps = {c["gap"]: c["concordant"] for c in d.get("concordance_by_depth_gap") or []}
    return {"concordant": [gaps.get(g) for g in GAPS], "stage_depth": d["tau_stage_depth"],
            "stage_width": d["tau_stage_width"]}


def table(rows: dict[str, dict]) -> str:
    f = lambda x: "—" if x is None else f"{x:+.2f}"  # noqa: E731
    head = ("| ranking | concordant 1 / 2 / 3+ blocks apart | tau with stage depth 1-4 | "
            "tau with stage width 1-4 |\n|---|---|---|---|")
    body = [f"| {n} | {' / '.join('—' if c is None else f'{c:.3f}' for c in r['concordant'])} | "
            f"{' '.join(map(f, r['stage_depth']))} | {' '.join(map(f, r['stage_width']))} |" for n, r in rows.items()]
    return "\n".join([head, *body])


def plot(rows: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    preds = {n: r for n, r in rows.items() if n != "ground truth"}
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.2))
    x = np.arange(len(GAPS))
    w = 0.8 / len(preds)
    for i, (n, r) in enumerate(preds.items()):
        a.bar(x + (i - (len(preds) - 1) / 2) * w, [c or 0 for c in r["concordant"]], w, label=n,
              color="black" if n == "depth" else None, alpha=0.8)
    a.set_xticks(x, [f"{g} block{'s' if g != '1' else ''} apart" for g in GAPS])
    a.set_ylim(0.5, 1.0)
    a.set_ylabel("concordant pairs (share)")
    a.set_title("pairs of codes of different depth")
    a.legend(fontsize=8)
    labels = [f"depth {s}" for s in range(1, 5)] + [f"width {s}" for s in range(1, 5)]
    x = np.arange(len(labels))
    w = 0.8 / len(rows)
    for i, (n, r) in enumerate(rows.items()):
        colour = {"depth": "black", "ground truth": "grey"}.get(n)
        b.bar(x + (i - (len(rows) - 1) / 2) * w, [*r["stage_depth"], *r["stage_width"]], w, label=n,
              color=colour, alpha=0.8)
    b.axhline(0, color="black", lw=0.8)
    b.set_xticks(x, labels, rotation=30)
    b.set_ylabel("Kendall tau with the ranking")
    b.set_title("Kendall with each stage's depth and mean width code (7 = narrowest)", fontsize=10)
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="+", help="benchmarks/ranking.py --out files")
    p.add_argument("--recipes", required=True, help="comma-separated recipes, in this order")
    p.add_argument("--k", type=int, default=4, help="BN calibration K")
    p.add_argument("--rank-by", choices=("loss", "top1"), default="loss")
    p.add_argument("--out", required=True, help="the picture (.png); the numbers go beside it as .json")
    a = p.parse_args(argv)
    out = Path(a.out)
    if out.suffix.lower() != ".png":
        print(f"error: --out {a.out}: must name a .png file", file=sys.stderr)
        return 2
    numbers = out.with_suffix(".json")
    if any(Path(f).resolve() == numbers.resolve() for f in a.results):
        print(f"error: --out {a.out}: its numbers would overwrite the input {numbers}; name another picture",
              file=sys.stderr)
        return 2
    try:
        rows = collect(read_results(a.results), [r for r in a.recipes.split(",") if r], a.k, a.rank_by)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(table(rows))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        plot(rows, out)
        record = {"k": a.k, "rank_by": a.rank_by, "inputs": a.results, "rows": rows}
        numbers.write_text(json.dumps(record, indent=1) + "\n")
    except OSError as e:
        print(f"error: --out {a.out}: cannot write ({e.strerror or e})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
