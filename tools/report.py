"""What a large scoring run says: predictions against MACs for every code (hexbin), the ground-truth codes
marked, the rank correlation of the ground-truth codes inside the run, and the top-k codes.

  python tools/report.py output/eval45k/submission.json --gt benchmarks/gt/d8e2.json --top 20 \
      --out output/eval45k/report          # writes report.png and report.json, prints a summary
      [--zero-cost output/zc45k]           # + Kendall of the run against each zero-cost predictor
      [--picks output/search/picks.json]   # tools/search.py's picks marked on the plot

The plot connects the Pareto front (the best predicted score at each MACs budget: no code is both
cheaper and better), written to the JSON as ``pareto_front``.

The network (for MACs) comes from the submission's record (``submission.meta.json``, written by
eval_subnets.py and kept by ``tools/arch_files.py merge``, or tools/zero_cost.py's ``zero_cost.meta.json``,
so a zero-cost predictor's file is reported the same way); pass --net/--width-divisor for a bare file.
"""
from __future__ import annotations

import argparse
import csv
import json
import lzma
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from supernet.archfile import ArchFileError, read_entries  # noqa: E402
from supernet.groundtruth import gt_scores  # noqa: E402
from supernet.cli import ArgumentParser, entry_point, fail, positive_int  # noqa: E402
from supernet.groundtruth import protocol_path  # noqa: E402
from supernet.outputs import overwrite_problem  # noqa: E402
from supernet.metrics import correlations  # noqa: E402
from supernet.runtime import atomic_write_json  # noqa: E402
from supernet.space import FMNIST28, IMAGENET, WIDTH_DIVISORS, NetConfig, count_cost, parse_code  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rank_corr  # noqa: E402

log = logging.getLogger("report")
BASES = {"fmnist": FMNIST28, "fmnist28": FMNIST28, "imagenet": IMAGENET}


def network_of(pred: Path, net: str | None, divisor: int | None) -> NetConfig:
    """The run's network: from its record, else from --net/--width-divisor."""
    meta = rank_corr.network_record(pred)  # eval_subnets' <name>.meta.json, or zero_cost.meta.json
    rec = {}
    if meta.is_file():
        try:
            rec = json.loads(meta.read_text(encoding="utf-8")).get("network", {})
        except (OSError, ValueError, UnicodeDecodeError) as e:
            raise ArchFileError(f"{meta}: not a readable record ({e})") from e
    name = rec.get("dataset") or net
    if name is None:
        raise ArchFileError(f"{pred} has no {meta.name}: pass --net fmnist28|imagenet (and --width-divisor)")
    base = BASES[name]
    d = divisor or rec.get("width_divisor") or base.width_divisor
    if rec.get("width_divisor") and divisor and divisor != rec["width_divisor"]:
        raise ArchFileError(f"--width-divisor {divisor}: {meta} says the run used {rec['width_divisor']}")
    return NetConfig(base.in_channels, base.num_classes, int(d), base.stem, base.input_size)


def report(pred: Path, gt: Path | None, cfg: NetConfig, top: int, label: str,
           zero_cost: dict[str, dict[str, float]] | None = None) -> tuple[dict, dict]:
    entries = read_entries(pred)
    keys = list(entries)
    codes = [entries[k]["arch"] for k in keys]
    score = np.array([float(entries[k]["acc"]) for k in keys])
    macs = np.array([count_cost(parse_code(c), cfg).macs for c in codes], np.float64)
    out = {"codes": len(keys), "network": {"width_divisor": cfg.width_divisor, "input_size": cfg.input_size},
           "score_label": label, "score_vs_macs": correlations(score, macs)}
    out["pareto_front"] = [{"key": keys[j], "arch": codes[j], "macs": int(macs[j]), "score": float(score[j])}
                           for j in pareto_front(macs, score)]
    order = np.argsort(-score)
    out["top"] = [{"rank": i + 1, "key": keys[j], "arch": codes[j], "score": float(score[j]), "MMACs": macs[j] / 1e6}
                  for i, j in enumerate(order[:top])]
    if zero_cost is not None:
        out["vs_zero_cost"] = against_zero_cost(codes, score, zero_cost)
    gt_points = {}
    if gt is not None:
        truth = gt_scores(gt)  # mean top-1 with the seeds' shared offsets removed (rank_corr's default)
        idx = [i for i, c in enumerate(codes) if c in truth]
        if len(idx) >= 2:
            g = [truth[codes[i]] for i in idx]
            out["ground_truth"] = {"file": str(gt), "codes_in_run": len(idx),
                                   "prediction": correlations(score[idx], g), "macs": correlations(macs[idx], g)}
            # where the GT codes sit in the run's ranking (1 = best predicted)
            rank = np.empty(len(keys), int)
            rank[order] = np.arange(1, len(keys) + 1)
            out["ground_truth"]["run_ranks"] = {codes[i]: int(rank[i]) for i in idx}
            gt_points = {"macs": macs[idx], "score": score[idx]}
        else:
            out["ground_truth"] = {"file": str(gt), "codes_in_run": len(idx)}
    return out, {"macs": macs, "score": score, "codes": codes, **{f"gt_{k}": v for k, v in gt_points.items()}}


def pareto_front(cost: np.ndarray, score: np.ndarray) -> list[int]:
    """Indices of the codes no other code beats on both counts (lower cost, higher score), by cost."""
    front, best = [], -np.inf
    for j in np.lexsort((-score, cost)):  # by cost, the best score first among equal costs
        if score[j] > best:
            front.append(int(j))
            best = score[j]
    return front


def zero_cost_table(path: Path) -> dict[str, dict[str, float]]:
    """code -> {predictor: value} from tools/zero_cost.py's table: its folder (``table.csv``, or the
    committed ``table.part*.csv.xz``) or one such file. Empty cells (no finite score) are left out."""
    files = ([path / "table.csv"] if (path / "table.csv").is_file() else sorted(path.glob("table.part*.csv.xz"))) \
        if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise ArchFileError(f"--zero-cost {path}: no table.csv or table.part*.csv.xz of tools/zero_cost.py")
    table: dict[str, dict[str, float]] = {}
    for f in files:
        try:
            with (lzma.open(f, "rt", encoding="utf-8") if f.suffix == ".xz" else open(f, encoding="utf-8")) as fh:
                rows = list(csv.DictReader(fh))
            for r in rows:
                table[r["arch"]] = {n: float(v) for n, v in r.items() if n not in ("key", "arch") and v not in ("", None)}
        except (OSError, lzma.LZMAError, UnicodeDecodeError, KeyError, ValueError) as e:
            raise ArchFileError(f"--zero-cost {f}: not a zero-cost table ({e})") from e
    return table


def against_zero_cost(codes: list[str], score: np.ndarray, table: dict[str, dict[str, float]]) -> dict:
    """Correlation of the run's scores with each zero-cost predictor, over the run's codes the table holds
    (matched by code, not key)."""
    names = sorted({n for row in table.values() for n in row})
    out = {}
    for n in names:
        idx = [i for i, c in enumerate(codes) if n in table.get(c, {})]
        if len(idx) >= 2:
            out[n] = {"codes": len(idx), **correlations(score[idx], [table[codes[i]][n] for i in idx])}
    return out


def plot(res: dict, pts: dict, path: Path, picks: list[str] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    hb = ax.hexbin(pts["macs"] / 1e6, pts["score"], gridsize=60, bins="log", cmap="viridis", mincnt=1)
    fig.colorbar(hb, ax=ax, label="codes per cell (log)")
    if "gt_macs" in pts:
        g = res["ground_truth"]
        ax.scatter(pts["gt_macs"] / 1e6, pts["gt_score"], s=22, facecolors="none", edgecolors="red",
                   label=f"ground-truth codes ({g['codes_in_run']}): Kendall {g['prediction']['kendall']:.3f} "
                         f"(MACs {g['macs']['kendall']:.3f})")
    front = res["pareto_front"]
    ax.plot([f["macs"] / 1e6 for f in front], [f["score"] for f in front], "-", color="orange", lw=1.2,
            drawstyle="steps-post", label=f"Pareto front ({len(front)} codes)")
    if picks:
        at = {c: (m, v) for c, m, v in zip(pts["codes"], pts["macs"], pts["score"])}
        mine = [at[c] for c in picks if c in at]
        ax.scatter([m / 1e6 for m, _ in mine], [v for _, v in mine], marker="*", s=120, color="crimson",
                   label=f"search picks ({len(mine)})", zorder=3)
    ax.legend(loc="lower right", fontsize=9)
    c = res["score_vs_macs"]
    ax.set_xlabel(f"MACs per image (millions; widths/{res['network']['width_divisor']}, "
                  f"{res['network']['input_size']}x{res['network']['input_size']})")
    ax.set_ylabel(res["score_label"])
    ax.set_title(f"{res['codes']} codes: prediction vs MACs, Kendall {c['kendall']:.3f}", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@entry_point
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pred", help="a submission (official form), e.g. the merged 45k run")
    p.add_argument("--gt", help="ground truth: its codes are marked and correlated inside the run")
    p.add_argument("--net", choices=sorted(BASES), help="network, when the submission has no record")
    p.add_argument("--width-divisor", type=int, choices=WIDTH_DIVISORS)
    p.add_argument("--top", type=positive_int, default=20)
    p.add_argument("--zero-cost", help="tools/zero_cost.py's output folder (or its table.csv[.xz]) for the same "
                                       "codes: the run's Kendall against each predictor")
    p.add_argument("--picks", help="tools/search.py --out JSON: its codes are marked on the plot")
    p.add_argument("--out", required=True, help="prefix: writes <out>.png and <out>.json")
    a = p.parse_args(argv)
    out = Path(a.out)
    pred = Path(a.pred)
    inputs = [pred, rank_corr.network_record(pred), a.gt, a.gt and protocol_path(a.gt), a.picks]
    if a.zero_cost:
        zc = Path(a.zero_cost)
        inputs += list(zc.iterdir()) if zc.is_dir() else [zc]
    problem = overwrite_problem([str(out) + ".png", str(out) + ".json"], inputs, "--out")
    if problem:
        return fail(problem)
    try:
        cfg = network_of(pred, a.net, a.width_divisor)
        if a.gt:
            problem = rank_corr.network_mismatch(pred.with_name(pred.stem + ".meta.json"), a.gt)
            if problem:
                return fail(problem)
        table = zero_cost_table(Path(a.zero_cost)) if a.zero_cost else None
        res, pts = report(pred, Path(a.gt) if a.gt else None, cfg, a.top, rank_corr.score_label(pred), table)
    except ArchFileError as e:
        return fail(str(e))
    picks = None
    if a.picks:
        try:
            picks = [parse_code(r["arch"]).code for r in json.loads(Path(a.picks).read_text(encoding="utf-8"))["top"]]
        except (OSError, ValueError, KeyError, TypeError) as e:
            return fail(f"--picks {a.picks}: not a tools/search.py result ({e})")
        res["picks"] = picks
    plot(res, pts, Path(str(out) + ".png"), picks)
    atomic_write_json(str(out) + ".json", res)
    print(f"{res['codes']} codes; prediction vs MACs: Kendall {res['score_vs_macs']['kendall']:.3f}")
    if "ground_truth" in res and "prediction" in res["ground_truth"]:
        g = res["ground_truth"]
        print(f"{g['codes_in_run']} ground-truth codes in the run: Kendall {g['prediction']['kendall']:.3f}, "
              f"Pearson {g['prediction']['pearson']:.3f} (MACs: {g['macs']['kendall']:.3f})")
    if "vs_zero_cost" in res:
        print(f"prediction vs zero-cost predictors (Kendall over the codes both have, of {res['codes']}): " + ", ".join(
            f"{n} {v['kendall']:.3f} ({v['n']} codes)"
            for n, v in sorted(res["vs_zero_cost"].items(), key=lambda x: -x[1]["kendall"])))
    print(f"top {len(res['top'])} by prediction:")
    for t in res["top"]:
        print(f"  {t['rank']:>3} {t['key']:<10} {t['arch']} {t['score']:.3f} ({t['MMACs']:.1f} MMACs)")
    print(f"wrote {out}.png and {out}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
