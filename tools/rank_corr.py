"""Rank correlation of a prediction file against a ground-truth file, matched by code (not key).

  python tools/rank_corr.py output/eval/submission.json ../shared/proxy_gt/dev_gt.json --net fmnist28 --plot scatter.png
  python tools/rank_corr.py PRED GT --json      # {"n", "kendall", "pearson", "spearman", ...}
  python tools/rank_corr.py PRED GT --against OTHER_PRED   # is PRED really ahead of OTHER_PRED?

Also prints the zero-cost floor: the same figures for MACs, parameter count and depth as predictors (and,
with --zero-cost DIR, Zen-Score, NASWOT, SynFlow, grad-norm and SNIP from tools/zero_cost.py), and tau
minus the best one's tau with a paired bootstrap 95 % interval over codes (likewise against
--against): on a few dozen noisy ground-truth codes a difference of 0.1 is often noise. Kendall tau
over the pairs of codes with equal depth says what a predictor knows beyond depth.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from supernet import groundtruth  # noqa: E402
from supernet.archfile import ArchFileError, read_archs, read_scores  # noqa: E402
from supernet.cli import ArgumentParser, entry_point, fail, writable_file  # noqa: E402
from supernet.runtime import dumps  # noqa: E402
from supernet.metrics import bootstrap_tau_diff, correlations, diagnosis, kendall_within, zero_cost  # noqa: E402
from supernet.zero_cost import PREDICTORS  # noqa: E402
from supernet.space import FMNIST28, IMAGENET  # noqa: E402

NETS = {"imagenet": IMAGENET, "fmnist28": FMNIST28}
PLOT_FORMATS = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def plot_path_problem(path: str, option: str = "--plot") -> str | None:
    """Why ``path`` cannot take a picture: not an image name matplotlib writes, or not writable."""
    if Path(path).suffix.lower() not in PLOT_FORMATS:
        return f"{option} {path}: a picture needs one of the endings {', '.join(PLOT_FORMATS)}"
    return writable_file(path, option)


log = logging.getLogger("rank_corr")


def network_record(pred_path: str | Path) -> Path:
    """Where the network of a prediction file is recorded: ``<name>.meta.json`` (eval_subnets), else the
    folder's ``zero_cost.meta.json`` (tools/zero_cost.py); may not exist (older files)."""
    meta = Path(pred_path).with_name(Path(pred_path).stem + ".meta.json")
    return meta if meta.is_file() else Path(pred_path).with_name("zero_cost.meta.json")


def recorded_network(meta: Path) -> dict | None:
    """``{dataset, width_divisor, input_size}`` from a predictions record, None when there is no record;
    ValueError when the record cannot be read."""
    if not meta.is_file():
        return None
    try:
        net = json.loads(meta.read_text(encoding="utf-8"))["network"]
        if net is None:  # a blend of inputs none of which recorded one (tools/blend.py)
            return None
        return {"dataset": str(net["dataset"]), "width_divisor": int(net["width_divisor"]),
                "input_size": int(net["input_size"])}
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise ValueError(f"{meta} is not a readable record of the predictions' network ({e})") from e


def chosen_codes(pred_path: str | Path) -> set[str]:
    """Codes the prediction's checkpoint was chosen on (train.gt_watch), from its record; empty when none."""
    meta = Path(pred_path).with_name(Path(pred_path).stem + ".meta.json")
    try:
        rec = json.loads(meta.read_text(encoding="utf-8")) if meta.is_file() else {}
    except (OSError, ValueError, UnicodeDecodeError):
        return set()
    return set((rec.get("checkpoint_chosen_on") or {}).get("codes", []))


def network_mismatch(meta: Path, gt_path: str) -> str | None:
    """Predictions record their network (``meta``); a ground-truth file made by pretrain/gt_campaign has a
    protocol. When both are known they must agree."""
    try:
        net = recorded_network(meta)
    except ValueError as e:
        return str(e)
    if net is None:
        return None
    return groundtruth.supernet_mismatch(gt_path, net["width_divisor"], net["input_size"], net["dataset"])


def zero_cost_files(zc_dir: str | Path | None, codes: list[str], gt_path: str | None = None) -> dict[str, list[float]]:
    """Scores of the zero-cost predictors in ``zc_dir`` (tools/zero_cost.py output) for ``codes``; a
    predictor file that lacks some of the codes is refused (a floor must be computed on the same codes)."""
    out: dict[str, list[float]] = {}
    if zc_dir is None:
        return out
    d = Path(zc_dir)
    if not d.is_dir():
        raise ArchFileError(f"--zero-cost {d} is not a folder")
    problem = network_mismatch(d / "zero_cost.meta.json", gt_path) if gt_path else None
    if problem:
        raise ArchFileError(f"--zero-cost {d}: {problem}")
    for name in PREDICTORS:
        f = d / f"{name}.json"
        if not f.is_file():
            continue
        scores = read_scores(f)
        missing = [c for c in codes if c not in scores]
        if missing:
            raise ArchFileError(f"{f} lacks {len(missing)} of the compared codes (e.g. {missing[0]}); "
                                "run tools/zero_cost.py on the ground truth's codes")
        out[name] = [scores[c] for c in codes]
    if not out:
        raise ArchFileError(f"--zero-cost {d} holds no predictor file (zen.json, naswot.json, ...)")
    return out


def compare(pred_path: str, gt_path: str, net: str = "imagenet", against: str | None = None,
            zc_dir: str | None = None, gt_metric: str = "top1", exclude: str | None = None,
            adjust_seeds: bool = True) -> dict:
    """Correlations of a prediction file with the ground truth, the zero-cost floor, and paired bootstraps.

    ``against``: a second prediction file (e.g. another supernet); the bootstrap of tau minus its tau
    runs over the codes all three files share. ``gt_metric``: rank the ground truth by mean top-1
    ('top1', the official 'acc') or by minus mean test cross-entropy ('ce', groundtruth.gt_scores).
    ``adjust_seeds``: per-code means with the seeds' shared offsets removed (groundtruth.seed_adjusted),
    so codes holding different seed sets are compared fairly. ``exclude``: an arch file whose codes are
    left out (held-out evaluation: judge an idea shaped on some ground-truth codes only on the others).
    """
    problem = network_mismatch(network_record(pred_path), gt_path)
    if problem:
        raise ArchFileError(problem)
    pred, gt = read_scores(pred_path), groundtruth.gt_scores(gt_path, gt_metric, adjust_seeds)
    other = read_scores(against) if against else None
    left_out = {a.code for a in read_archs(exclude).values()} & set(gt) if exclude else set()
    chosen = chosen_codes(pred_path) & set(gt) - left_out
    if chosen:
        raise ArchFileError(f"{pred_path} comes from a checkpoint chosen by train.gt_watch on {len(chosen)} of these "
                            "ground-truth codes; judging it on them would reward the choice: leave them out with "
                            "--exclude (the gt_watch file)")
    codes = [c for c in gt if c in pred and (other is None or c in other) and c not in left_out]
    if len(codes) < 2:
        both = f"{pred_path} and {against}" if against else pred_path
        raise ArchFileError(f"only {len(codes)} codes of {gt_path} are in {both}: nothing to correlate")
    p = [pred[c] for c in codes]
    g = [gt[c] for c in codes]
    net_cfg = groundtruth.network_of(gt_path, NETS[net]) if net != "imagenet" else NETS[net]
    zc = {**zero_cost(codes, net_cfg), **zero_cost_files(zc_dir, codes, gt_path)}
    floor = {name: correlations(v, g) for name, v in zc.items()}
    # Paired bootstraps (against the stronger zero-cost predictor, and --against); skipped for huge
    # files: 2000 resamples of an O(n log n) tau.
    small = len(codes) <= 5000
    best = max(floor, key=lambda k: floor[k]["kendall"])
    vs = {"against": best, **bootstrap_tau_diff(p, zc[best], g)} if small else None
    vs_macs = {"against": "macs", **bootstrap_tau_diff(p, zc["macs"], g)} if small and best != "macs" else None
    # What is known beyond depth: tau over the pairs of codes with the same number of blocks.
    within = None
    if small:
        tau_p, pairs = kendall_within(p, g, zc["depth"])
        within = {"prediction": tau_p, "macs": kendall_within(zc["macs"], g, zc["depth"])[0], "pairs": pairs}
    vs_other = None
    if other is not None and small:
        o = [other[c] for c in codes]
        vs_other = {"against": against, "other_kendall": correlations(o, g)["kendall"], **bootstrap_tau_diff(p, o, g)}
    return {
        **correlations(p, g),
        "gt_sha256": groundtruth.file_sha256(gt_path),
        "diagnosis": {"prediction": diagnosis(p, codes, g), "ground_truth": diagnosis(g, codes),
                      "depth": diagnosis(zc["depth"], codes, g)} if small else None,
        "gt_metric": gt_metric,
        "gt_seed_adjusted": adjust_seeds,
        "vs_zero_cost": vs,
        "vs_macs": vs_macs,  # the challenge's hard floor, when it is not the best zero-cost predictor anyway
        "vs_other": vs_other,
        "within_depth": within,  # {"prediction", "macs": tau over equal-depth pairs, "pairs": how many}
        "unmatched_pred": len(pred) - len(codes),
        "unmatched_gt": len(gt) - len(codes) - len(left_out),
        "excluded": len(left_out),
        "floor": floor,
        "_points": {"pred": p, "gt": g, "macs": zc["macs"]},
    }


GT_LABELS = {"top1": "ground-truth accuracy (%)", "ce": "ground truth: minus test cross-entropy"}
SCORE_LABELS = {"loss": "supernet score: 100·exp(−test CE) (%)", "top1": "supernet top-1 (%)"}


def score_label(pred_path: str | Path) -> str:
    """What the numbers of a prediction file are, for an axis: eval_subnets records how it ranked."""
    meta = network_record(pred_path)
    try:
        rank_by = json.loads(meta.read_text(encoding="utf-8")).get("rank_by") if meta.is_file() else None
    except (OSError, ValueError, UnicodeDecodeError):
        rank_by = None
    if meta.is_file() and meta.name == "zero_cost.meta.json":
        return f"{Path(pred_path).stem} (zero-cost score)"
    return SCORE_LABELS.get(rank_by, "prediction (as in the file)")


def plot(res: dict, path: str, pred_label: str = "prediction (as in the file)") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = res["_points"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, key, label, fig_res in ((axes[0], "pred", pred_label, res),
                                    (axes[1], "macs", "MACs per image (the ground truth's network)",
                                     res["floor"]["macs"])):
        ax.scatter(pts[key], pts["gt"], s=14, alpha=0.7)
        ax.set_xlabel(label)
        ax.set_ylabel(GT_LABELS[res.get("gt_metric", "top1")])
        ax.set_title(f"{'prediction' if key == 'pred' else 'MACs'}: tau {fig_res['kendall']:.3f}, pearson {fig_res['pearson']:.3f}, "
                     f"n={fig_res['n']}", fontsize=10)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def format_table(res: dict) -> str:
    rows = [("prediction", res)] + [(f"{k} (zero-cost)", v) for k, v in res["floor"].items()]
    keys = [k for k in res if k.startswith("top")]
    head = f"{'predictor':<22} {'n':>6} {'kendall':>8} {'pearson':>8} {'spearman':>8} " + " ".join(f"{k:>14}" for k in keys)
    lines = [head, "-" * len(head)]
    for name, r in rows:
        mark = "*" if r.get("pearson_of", "").startswith("ln") else " "
        lines.append(f"{name:<22} {r['n']:>6} {r['kendall']:>8.4f} {r['pearson']:>7.4f}{mark} {r['spearman']:>8.4f} "
                     + " ".join(f"{r[k]:>14.3f}" for k in keys)
                     + (f"  (undefined: {r['undefined']})" if r.get("undefined") else ""))
    if any(r.get("pearson_of", "").startswith("ln") for _, r in rows):
        lines.append("* Pearson on the logarithm: the values span several orders of magnitude")
    w = res.get("within_depth")
    if w and w["pairs"]:
        lines.append(f"kendall over the {w['pairs']} pairs of equal depth (what is known beyond depth): "
                     f"prediction {w['prediction']:+.3f}, MACs {w['macs']:+.3f}")
    dg = res.get("diagnosis")
    if dg:
        pr, tr, de = dg["prediction"], dg["ground_truth"], dg["depth"]
        lines.append("kendall with each stage's depth, prediction / ground truth: " + ", ".join(
            f"{a:+.2f} / {b:+.2f}" for a, b in zip(pr["tau_stage_depth"], tr["tau_stage_depth"])))
        lines.append("kendall with each stage's mean width, prediction / ground truth: " + ", ".join(
            f"{a:+.2f} / {b:+.2f}" for a, b in zip(pr["tau_stage_width"], tr["tau_stage_width"])))
        lines.append("pairs ordered as the ground truth, by depth gap (prediction / depth alone): " + ", ".join(
            f"{a['gap']} block(s) {a['concordant']:.3f} / {b['concordant']:.3f} ({a['pairs']} pairs)"
            for a, b in zip(pr["concordance_by_depth_gap"], de["concordance_by_depth_gap"])))
    for vs in (res.get("vs_macs"), res.get("vs_zero_cost"), res.get("vs_other")):
        if vs:
            lines.append(f"kendall minus {vs['against']}'s: {vs['diff']:+.3f}, 95% bootstrap interval over codes "
                         f"[{vs['lo']:+.3f}, {vs['hi']:+.3f}], prediction ahead in {100 * vs['p_ahead']:.0f}% of "
                         "resamples")
    return "\n".join(lines)


@entry_point
def verdict(res: dict) -> str:
    """Two or three plain sentences on what the table means, for a reader who has not read the docs."""
    floor = res["floor"]
    tau, depth, macs = res["kendall"], floor.get("depth", {}).get("kendall"), floor.get("macs", {}).get("kendall")
    if tau is None or depth is None or macs is None or not all(map(math.isfinite, (tau, depth, macs))):
        return "The correlations are undefined on these codes (see the table)."
    side = lambda d: "above" if d > 0.02 else "below" if d < -0.02 else "level with"  # noqa: E731
    out = [f"The prediction ranks these {res['n']} codes at Kendall {tau:.2f}: {side(tau - depth)} counting "
           f"blocks (depth, {depth:.2f}) and {side(tau - macs)} MACs ({macs:.2f}); the intervals above say how "
           "much of that these codes can resolve."]
    w = res.get("within_depth") or {}
    if w.get("pairs"):
        out.append(f"Between codes of equal depth, which depth cannot order, it scores {w['prediction']:+.2f} over "
                   f"{w['pairs']} pairs.")
    out.append("On the Fashion-MNIST proxy the standalone ground truth is mostly depth (its seeds barely agree on "
               "codes of equal depth), so depth is close to the best any predictor can score here; BENCHMARKS.md "
               "(ground truth at 96 codes x 3 seeds) has the full-budget supernets and what the proxy can resolve.")
    return " ".join(out)


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pred")
    p.add_argument("gt")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plot", help="write a scatter plot (PNG)")
    p.add_argument("--net", choices=sorted(NETS), default="imagenet", help="network for the MACs/params/depth floor")
    p.add_argument("--against", help="another prediction file: paired bootstrap of the tau difference")
    p.add_argument("--zero-cost", help="folder of tools/zero_cost.py outputs: their predictors join the floor")
    p.add_argument("--plain-mean", action="store_true",
                   help="rank the ground truth by the plain mean over seeds (default: each seed's offset, shared "
                        "by all codes, removed first, so codes with different seed sets compare fairly)")
    p.add_argument("--exclude", help="an arch file whose codes are left out of the comparison (held-out codes only)")
    p.add_argument("--gt-metric", choices=groundtruth.GT_METRICS, default="top1",
                   help="rank the ground truth by mean top-1 ('acc', default) or by minus mean test "
                        "cross-entropy (per_seed_ce; less noisy on the v3 proxy)")
    a = p.parse_args(argv)
    problem = plot_path_problem(a.plot) if a.plot else None
    if problem:
        return fail(problem)
    try:
        res = compare(a.pred, a.gt, a.net, a.against, a.zero_cost, a.gt_metric, a.exclude, not a.plain_mean)
    except ArchFileError as e:
        return fail(str(e))
    if a.plot:
        plot(res, a.plot, score_label(a.pred))
    out = {k: v for k, v in res.items() if k != "_points"}
    if a.json:
        print(dumps(out))
    else:
        print(f"matched {res['n']} codes by code ({res['unmatched_pred']} predictions and {res['unmatched_gt']} "
              f"ground-truth entries unmatched" + (f"; {res['excluded']} left out by --exclude)" if a.exclude else ")"))
        print(format_table(res))
        if a.plot:
            print(f"scatter plot: {a.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
