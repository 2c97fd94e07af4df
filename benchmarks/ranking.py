"""Ranking quality on the Fashion-MNIST proxy: supernet scores against standalone ground truth.

Trains one supernet per recipe from the same seed and the same budget (images, epochs, steps),
scores the ground-truth codes with each, and prints Kendall tau / Pearson / Spearman next to the
zero-cost floor (MACs, params, depth, Zen-Score, NASWOT, SynFlow, grad-norm, SNIP, computed on the GT codes
unless --zero-cost gives them), and tau minus the best zero-cost predictor's tau (named) with a paired
bootstrap 95 % interval over codes (tools/rank_corr.py): with a few dozen codes, differences of 0.1
are noise, and the interval says so. Recipes of the challenge's winning teams are variants:
rank_ramp* (3rd place), bias_large (1st), fewshot (2nd; its group epochs count in the budget), finetune
(1st; from a full model trained standalone first, whose minutes are added to train_min), baseline_kd
(the organisers' 2 random subnets + that full model as frozen teacher), depth_deep and fewshot_s4 (ours);
ens_seed2 and ens_half2 are ensembles (rank means of supernets from other seeds, ours). BN recalibration
is ablated on one supernet (--calib-on, off, K = 1, 4, 16); every scoring is reported ranked by top-1
and by loss (eval_subnets.py --rank-by), and blended by rank with
zero-cost predictors fixed in advance (--blend-with, params by default, e.g. params,depth; tools/blend.py).
--gt-metrics top1,ce also ranks the ground truth by test cross-entropy (less noisy on the v3 proxy).
Every stage resumes: run the same command again after a crash and finished parts are reused.

  python benchmarks/ranking.py [--train-images 10000] [--epochs 3] [--val-images 5000] \
      [--variants default,space_45k,baseline,sandwich_no_kd] [--gt benchmarks/gt/d8e2.json]

Ground truth is used only to report correlations; it never enters training.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

from common import ROOT, environment, print_table, write_json

from supernet import fewshot, groundtruth
from supernet.cli import ArgumentParser, entry_point, positive_int
from supernet.config import load_config
from supernet.runtime import setup
from supernet.space import FMNIST28
from supernet.supernet_train import fewshot_group_config, net_config, train_supernet
from supernet.zero_cost import SCORE_FILES

import sys

sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT))
import blend  # noqa: E402
import eval_subnets  # noqa: E402
import rank_corr  # noqa: E402
import run_proxy  # noqa: E402

# Overrides on configs/fmnist_sandwich.yaml. The default once sampled from the 45k list; the
# recipes measured with that sampling say so explicitly, so their trained supernets are still recognised.
_45K = "sandwich.space=official45k"
_FT = ["train.epochs={epochs_third}", "model.init={full_model}", "sandwich.teacher={full_model}"]  # finetune's
VARIANTS: dict[str, list[str]] = {
    "default": [],  # largest + smallest + 2 random (uniform over the full space), in-place KD
    "space_45k": [_45K],  # the same with random subnets from the official 45k distribution
    "baseline": ["sandwich.largest=false", "sandwich.smallest=false", "sandwich.num_random=2",
                 "sandwich.inplace_distill=false", _45K],  # organisers' recipe (no external teacher on the proxy)
    # the organisers' recipe with its frozen teacher: the full network trained standalone (as finetune's)
    "baseline_kd": ["sandwich.largest=false", "sandwich.smallest=false", "sandwich.num_random=2",
                    "sandwich.inplace_distill=false", _45K, "sandwich.teacher={full_model}",
                    "sandwich.distill_weight=0.5"],  # half KD + half hard-label CE, as in fmnist_finetune.yaml
    "baseline_full": ["sandwich.largest=false", "sandwich.smallest=false", "sandwich.num_random=2",
                      "sandwich.inplace_distill=false"],  # the same, sampling the full space
    "sandwich_no_kd": ["sandwich.inplace_distill=false", _45K],
    "kd_half": ["sandwich.distill_weight=0.5"],  # half KD, half hard-label CE for the distilled subnets
    "kd_late": ["sandwich.distill_after=0.5"],  # hard labels for the first half, in-place KD after
    "lr_high": ["train.lr=0.2"],  # twice the default peak learning rate (per 256 images)
    "rank_macs": ["sandwich.rank_weight=1.0"],  # RD-NAS margin ranking loss towards the MACs order
    # the winning teams' recipes. {epochs} etc. are filled in from the budget (see budget_fields).
    "rank_ramp": ["sandwich.rank_weight=2.0", "sandwich.rank_ramp_epochs={epochs}"],  # PGONAS: min(2, epoch/10)
    "rank_ramp_zen": ["sandwich.rank_weight=2.0", "sandwich.rank_ramp_epochs={epochs}", "sandwich.rank_prior=zen"],
    "rank_ramp_params": ["sandwich.rank_weight=2.0", "sandwich.rank_ramp_epochs={epochs}",
                         "sandwich.rank_prior=params"],
    "bias_large": ["sandwich.bias_pool=400"],  # 1st place: the largest of 400 samples, a random one every 3rd step
    # 2nd place: split on stage-3 depth after one-shot training; one-shot epochs + 2 groups x 1 epoch = the budget
    "fewshot": ["fewshot.split_on=[{stage: 3, at: 5}]", "fewshot.epochs=1", "train.epochs={epochs_minus_2}"],
    # the same split on stage-4 depth (2nd place keyed its splits on stage-3/4 depth; 2-3 vs 4-5 blocks)
    "fewshot_s4": ["fewshot.split_on=[{stage: 4, at: 4}]", "fewshot.epochs=1", "train.epochs={epochs_minus_2}"],
    # ours: stage depths drawn in proportion to their place in the range, so the last blocks of
    # each stage (under uniform depths: the last of stage 4 in a quarter of the random subnets) train more
    "depth_deep": ["sandwich.depth_sampling=deep"],
    # ours: width codes drawn in proportion to their narrowness rank (widest 1 : ... : narrowest 7), so narrow
    # slices, handicapped inside the supernet (docs/ranking.md), train more often as subnets of their own
    "width_narrow": ["sandwich.width_sampling=narrow"],
    # once-for-all's progressive shrinking: the full network for 20 % of the steps, depth opened from the
    # deepest down at the widest widths until 60 %, then everything (0.85x the default's subnet passes)
    "progressive": ["progressive.full_until=0.2", "progressive.depth_until=0.6"],
    # once-for-all's channel sorting: every epoch, each width's channels reordered by importance (L1 of the
    # weights reading them), so a narrow subnet's first-k slice is the full network's best k
    "sorted": ["sandwich.sort_channels_every=1"],
    # both: progressive shrinking with the channels sorted every epoch (as once-for-all, before width opens)
    "progressive_sorted": ["progressive.full_until=0.2", "progressive.depth_until=0.6",
                           "sandwich.sort_channels_every=1"],
    # training length itself: the default recipe on all 60,000 images for the same epochs
    # (6x the compute of the default budget of 10,000 images); not at equal compute, on purpose
    "long": ["data.train_images=null"],
    # 1st place: fine-tune from a trained full model with it as frozen teacher (configs/fmnist_finetune.yaml);
    # the full model is trained standalone first (pretrain.py, the GT protocol), its cost reported apart
    "finetune": _FT,
    # finetune with the trained full model's channels sorted once, before the first step: once-for-all's order
    # (train the full network, sort its channels by importance, then make width elastic)
    "finetune_sorted": [*_FT, "sandwich.sort_channels_at_start=true"],
    # finetune with depth_deep's or width_narrow's sampling: the best recipe with each sampling lever
    "finetune_deep": [*_FT, "sandwich.depth_sampling=deep"],
    "finetune_narrow": [*_FT, "sandwich.width_sampling=narrow"],
    # finetune with a ranking loss towards the depth order (a code-derived prior shaping training, as the 3rd
    # place's FLOPs rank loss; finetune is the same recipe without it): codes of equal depth tie, so the order
    # within a depth stays the supernet's own
    "finetune_rank_depth": [*_FT, "sandwich.rank_weight=1.0", "sandwich.rank_prior=depth"],
    # the depth prior at twice the weight and ten times the margin (a block more at depth 16: 0.012 lower CE)
    "finetune_rank_depth_strong": [*_FT, "sandwich.rank_weight=2.0", "sandwich.rank_margin=0.2",
                                   "sandwich.rank_prior=depth"],
    # narrow widths pushed harder (width codes weighted by the square of their narrowness rank), and finetune at
    # 2.5x its learning rate (the narrow slices move further from the full network's)
    "finetune_narrowest": [*_FT, "sandwich.width_sampling=narrowest"],
    "finetune_lr_high": [*_FT, "train.lr=0.05"],
    "finetune_lr_higher": [*_FT, "train.lr=0.1"],  # the from-scratch recipe's peak
    "finetune_lr_high_narrow": [*_FT, "train.lr=0.05", "sandwich.width_sampling=narrow"],
    "finetune_lr_high_narrow_seed1": [*_FT, "train.lr=0.05", "sandwich.width_sampling=narrow", "train.seed=1"],
    "finetune_deep_narrow": [*_FT, "sandwich.depth_sampling=deep", "sandwich.width_sampling=narrow"],
    # finetune sampling its random subnets from the 45k list's distribution (stages 1-3 wide, stage 4 any width):
    # the narrow stage-4 slices train in the company they are scored in
    "finetune_45k": [*_FT, _45K],
    # finetune with the frozen teacher's soft targets only (fmnist_finetune.yaml mixes in half hard labels)
    "finetune_kd_only": [*_FT, "sandwich.distill_weight=1.0"],
    # finetune for twice its epochs (4 at the default budget): does longer training remove the width reward?
    "finetune_long": ["train.epochs={epochs_minus_2}", *_FT[1:]],
    # finetune from another training seed (data order, sampled subnets; the same full network): its agreement
    # with finetune over equal-depth pairs is what the recipe knows within a depth reproducibly
    "finetune_seed1": [*_FT, "train.seed=1"],
    # the default recipe from other training seeds (init, data order, sampled subnets), and at half the epochs:
    # the members of the ensembles below, and a measure of how much a supernet's ranking owes to its seed
    "seed1": ["train.seed=1"],
    "half": ["train.epochs={epochs_half}"],
    "half_seed1": ["train.epochs={epochs_half}", "train.seed=1"],
}
# Ensembles (ours): the rank mean of several supernets' scores (tools/blend.py), costing their summed
# training. Weight sharing makes one supernet's order partly an accident of its seed; averaging seeds removes
# some of that. ens_half2 spends the default budget (two supernets at half the epochs), ens_seed2 twice it.
ENSEMBLES: dict[str, list[str]] = {"ens_seed2": ["default", "seed1"], "ens_half2": ["half", "half_seed1"]}
# variants trained from another config than --config
BASE_CONFIG = {name: "fmnist_finetune.yaml" for name in VARIANTS if name.startswith("finetune")}
CALIB = [0, 1, 4, 16]
RANK_BY = ["top1", "loss"]  # each scoring run is reported both ways (eval_subnets.py --rank-by)


def _vs(res: dict) -> dict:
    """Kendall tau minus the best zero-cost predictor's, minus MACs' and (when compared) minus the default
    recipe's, with paired-bootstrap 95 % intervals over codes."""
    vs = res["vs_zero_cost"]
    if vs is None:  # more than rank_corr bootstraps
        return {}
    m = res.get("vs_macs") or vs  # MACs may itself be the best zero-cost predictor
    out = {"best_zc": vs["against"], "tau_minus_zc": vs["diff"], "ci95": f"[{vs['lo']:+.2f}, {vs['hi']:+.2f}]",
           "p_ahead": vs["p_ahead"], "minus_macs": m["diff"], "ci95_macs": f"[{m['lo']:+.2f}, {m['hi']:+.2f}]"}
    d = res.get("vs_other")
    if d is not None:
        out.update({"minus_default": d["diff"], "ci95_default": f"[{d['lo']:+.2f}, {d['hi']:+.2f}]"})
    return out


def _gaps(res: dict) -> list[float] | None:
    """Concordance with the GT over pairs 1, 2 and 3+ blocks apart (rank_corr's diagnosis)."""
    d = res.get("diagnosis")
    return [g["concordant"] for g in d["prediction"]["concordance_by_depth_gap"]] if d else None


def logged_minutes(folder: Path, max_gap_s: float = 300.0) -> float:
    """Training minutes of a supernet folder (and its few-shot groups) from the time stamps of its
    log.jsonl records, gaps over ``max_gap_s`` (a stop and a later resume) left out: the cost of a
    recipe even when this invocation reused its trained weights."""
    total = 0.0
    for log in sorted(folder.glob("log.jsonl")) + sorted(folder.glob("group*/log.jsonl")):
        recs = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        times = [r["time"] for r in recs if isinstance(r.get("time"), (int, float))]
        span = sum(b - a for a, b in zip(times, times[1:]) if 0 <= b - a <= max_gap_s)
        steps = [r["step"] for r in recs if r.get("kind") == "train" and isinstance(r.get("step"), int)]
        if len(steps) > 1 and steps[-1] > steps[0]:  # the steps before the first record, at the same pace
            span *= steps[-1] / (steps[-1] - steps[0])
        total += span
    return total / 60


def default_file(work: Path, k: int, rank_by: str, blend_with: str = "") -> str | None:
    """The default recipe's submission at the same K and ranking (its blend, for blended rows), if scored."""
    f = work / "default" / f"score_k{k}" / f"submission_{rank_by}{'+' + blend_with if blend_with else ''}.json"
    return str(f) if f.is_file() else None


def budget_fields(epochs: int, full_model: Path) -> dict[str, object]:
    return {"epochs": epochs, "epochs_minus_2": max(1, epochs - 2), "epochs_third": max(1, epochs // 3),
            "epochs_half": max(1, epochs // 2), "full_model": full_model}


def fill(override: str, fields: dict[str, object]) -> str:
    """``{field}`` placeholders of a variant's override filled in (YAML's own braces left alone)."""
    for k, v in fields.items():
        override = override.replace("{" + k + "}", str(v))
    return override


def full_model(work: Path) -> tuple[Path, float]:
    """The finetune recipe's start and the teacher of finetune and baseline_kd: the full network trained
    standalone by pretrain.py with the proxy defaults (resumable), and the minutes it took (kept in
    minutes.json beside it, so a reused model still counts; NaN when unknown)."""
    out = work / "full_model"
    path, minutes = out / "model.pdparams", out / "minutes.json"
    if path.is_file():
        return path, float(json.loads(minutes.read_text())["minutes"]) if minutes.is_file() else float("nan")
    t = time.time()
    run_proxy.full_model(out, FMNIST28.width_divisor, None, None)  # the main command's own full network
    m = (time.time() - t) / 60
    minutes.write_text(json.dumps({"minutes": m}) + "\n")
    return path, m


def train_variant(cfg: dict, ctx, work: Path) -> Path:
    """Train one recipe (resumable); few-shot recipes also train their groups. Returns what scoring takes."""
    train_supernet(cfg, ctx, resume=True)
    rules = fewshot.parse_rules(cfg["fewshot"]["split_on"])
    if not rules:
        return work / "supernet.pdparams"
    ckpts = []
    for g in range(fewshot.n_groups(rules)):
        gcfg = fewshot_group_config(cfg, g)
        train_supernet(gcfg, ctx, resume=True)
        ckpts.append(Path(gcfg["train"]["output_dir"]) / "supernet.pdparams")
    return fewshot.write_manifest(work, rules, ckpts)


@entry_point
def main(argv: list[str] | None = None) -> None:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(ROOT / "configs" / "fmnist_sandwich.yaml"))
    p.add_argument("--train-images", type=positive_int, default=10000)
    p.add_argument("--epochs", type=positive_int, default=3)
    p.add_argument("--val-images", type=positive_int, default=5000)
    p.add_argument("--variants", default="default,space_45k,baseline,sandwich_no_kd")
    p.add_argument("--calib", default=",".join(map(str, CALIB)), help="K values ablated on one supernet")
    p.add_argument("--calib-on", default="default", help="the variant whose supernet gets the K ablation (others: K=4)")
    p.add_argument("--gt", default=str(groundtruth.DEV_GT))
    p.add_argument("--work", default="output/bench_ranking")
    p.add_argument("--zero-cost", help="tools/zero_cost.py output on the GT codes: the floor is the best of all "
                                       "(default: computed here for the GT codes, about a second per code)")
    p.add_argument("--full-model", help="finetune: a full-network standalone checkpoint to start from (default: "
                                        "trained here by pretrain.py with the proxy protocol, ~5 CPU-min)")
    p.add_argument("--blend-with", default="params",
                   help="also report each scoring blended by rank with each of these zero-cost predictors "
                        "(comma-separated, tools/blend.py, equal weights); '' for none. Fixed before measuring, "
                        "never tuned on the ground truth")
    p.add_argument("--gt-metrics", default="top1",
                   help="comma-separated ground-truth rankings to report: top1 (mean top-1, the official 'acc') "
                        "and/or ce (minus mean test cross-entropy); one row per supernet ranking and GT metric")
    p.add_argument("--exclude", help="an arch file of ground-truth codes to leave out (e.g. the codes an idea was "
                                     "shaped on): every correlation is then on the held-out codes only")
    p.add_argument("--out", default="benchmarks/results/ranking.json")
    a = p.parse_args(argv)
    gt = Path(a.gt)
    if not gt.is_file():
        p.error(f"--gt {gt}: file not found")
    rows, details, floors = [], {}, {}
    gt_metrics = a.gt_metrics.split(",")
    if not gt_metrics or any(m not in groundtruth.GT_METRICS for m in gt_metrics):
        p.error(f"--gt-metrics: {a.gt_metrics!r} is not a list of {', '.join(groundtruth.GT_METRICS)}")
    names = a.variants.split(",")
    gt_entries = len(json.loads(gt.read_text()))
    gt_sha256 = groundtruth.file_sha256(gt)

    def result(done: list[str]) -> dict:
        return {"env": environment(), "args": vars(a), "rows": rows, "details": details,
                "complete": done == names, "done_variants": done, "gt_file": str(gt), "gt_entries": gt_entries,
                "gt_sha256": gt_sha256, "exclude_sha256": exclude_sha256}

    unknown = [n for n in names if n not in VARIANTS and n not in ENSEMBLES]
    if unknown:
        p.error(f"--variants: unknown {unknown} (known: {', '.join([*VARIANTS, *ENSEMBLES])})")
    for e in (n for n in names if n in ENSEMBLES):
        early = [m for m in ENSEMBLES[e] if m not in names[: names.index(e)]]
        if early:
            p.error(f"--variants: ensemble {e} needs its members {early} listed before it")
    partners = [b.strip() for b in a.blend_with.split(",") if b.strip()]
    unknown = [b for b in partners if b not in SCORE_FILES]
    if unknown:
        p.error(f"--blend-with: unknown predictor(s) {unknown} (known: {', '.join(SCORE_FILES)})")
    missing = [b for b in partners if a.zero_cost and not (Path(a.zero_cost) / f"{b}.json").is_file()]
    if missing:
        p.error(f"--zero-cost {a.zero_cost}: no {missing[0]}.json (written by tools/zero_cost.py: "
                "run its command on that folder again, nothing is rescored)")
    if a.full_model and not Path(a.full_model).is_file():
        p.error(f"--full-model {a.full_model}: file not found")
    if a.exclude and not Path(a.exclude).is_file():
        p.error(f"--exclude {a.exclude}: file not found")
    exclude_sha256 = groundtruth.file_sha256(a.exclude) if a.exclude else None
    configs = {}  # every variant's network checked against the GT's protocol before any training
    for name in (n for n in names if n in VARIANTS):
        config = ROOT / "configs" / BASE_CONFIG[name] if name in BASE_CONFIG else a.config
        configs[name] = config
        cfg = load_config(config, [fill(o, budget_fields(a.epochs, Path("full_model"))) for o in VARIANTS[name]])
        nc = net_config(cfg["model"])
        problem = groundtruth.supernet_mismatch(gt, nc.width_divisor, nc.input_size, cfg["model"]["dataset"])
        if problem:
            p.error(f"--variants {name}: {problem}")
    ctx = setup("cpu")
    work = Path(a.work).resolve()  # recorded in few-shot/finetune configs (model.init): one path per run
    budget = [f"data.train_images={a.train_images}", f"train.epochs={a.epochs}", "train.eval_codes=0"]
    if a.zero_cost is None:  # the floor is the best zero-cost predictor, not MACs alone (resumable journal)
        a.zero_cost = str(work / "zero_cost")
        r = subprocess.run([sys.executable, str(ROOT / "tools" / "zero_cost.py"), str(gt), "--out", a.zero_cost,
                            "--width-divisor", str(groundtruth.network_of(gt, FMNIST28).width_divisor)])
        if r.returncode:
            raise SystemExit(f"zero-cost predictors failed on {gt} (exit {r.returncode})")
    uses_full = [n for n in names if any("{full_model}" in o for o in VARIANTS.get(n, []))]
    full_path, full_min = ((Path(a.full_model), 0.0) if a.full_model else full_model(work)) if uses_full \
        else (None, 0.0)
    fields = budget_fields(a.epochs, full_path)

    def measure(name: str, sub: Path, k: int, rank_by: str, train_min: float, t: float, about: dict) -> None:
        """Rows (and details) of one scoring file, per GT metric, plain and blended with the zero-cost prior."""
        mixed = {b: sub.with_name(f"submission_{rank_by}+{b}.json") for b in partners}
        for b, f in mixed.items():  # the supernet's order and a zero-cost prior's, equal weight by rank
            blend.blend(str(f), [str(sub), str(Path(a.zero_cost) / f"{b}.json")])
        for gm in gt_metrics:
            res = rank_corr.compare(str(sub), str(gt), "fmnist28", zc_dir=a.zero_cost, gt_metric=gm, exclude=a.exclude,
                                    against=default_file(work, k, rank_by) if name != "default" else None)
            floors[gm] = res["floor"]
            if name == "default" and k == 4 and rank_by == "loss" and gm == gt_metrics[0]:
                rank_corr.plot(res, str(Path(a.out).with_suffix(".png")), rank_corr.SCORE_LABELS[rank_by])
            row = {"variant": name, "calib_K": k, "rank_by": rank_by, "gt_metric": gm, "n": res["n"],
                   "kendall": res["kendall"], "pearson": res["pearson"], "spearman": res["spearman"], **_vs(res),
                   "tau_same_depth": (res["within_depth"] or {}).get("prediction"),  # what is known beyond depth
                   "concordant_by_gap": _gaps(res),
                   "train_min": train_min, "score_min": (time.time() - t) / 60}
            rows.append(row)
            details[f"{name}_k{k}_{rank_by}" + ("" if gm == "top1" else f"_gt{gm}")] = {
                **about, **{k2: v for k2, v in res.items() if k2 != "_points"}}
            for b, f in mixed.items():
                bres = rank_corr.compare(
                    str(f), str(gt), "fmnist28", zc_dir=a.zero_cost, gt_metric=gm, exclude=a.exclude,
                    against=default_file(work, k, rank_by, b) if name != "default" else None)
                rows.append({**row, "variant": f"{name}+{b}", "kendall": bres["kendall"],
                             "pearson": bres["pearson"], "spearman": bres["spearman"], **_vs(bres),
                             "tau_same_depth": (bres["within_depth"] or {}).get("prediction"),
                             "concordant_by_gap": _gaps(bres)})
            print_table("so far", rows, list(row))

    train_mins: dict[str, float] = {}
    for name in names:
        if name in ENSEMBLES:  # members trained and scored above (checked before anything ran)
            out = work / name / "score_k4"
            out.mkdir(parents=True, exist_ok=True)
            t = time.time()
            for rank_by in RANK_BY:
                sub = out / f"submission_{rank_by}.json"
                parts = [work / m / "score_k4" / f"submission_{rank_by}.json" for m in ENSEMBLES[name]]
                if not all(f.is_file() for f in parts):
                    raise SystemExit(f"error: ensemble {name}: its members were not scored at K = 4 ({parts})")
                blend.blend(str(sub), [str(f) for f in parts])
                measure(name, sub, 4, rank_by, sum(train_mins[m] for m in ENSEMBLES[name]), t,
                        {"members": ENSEMBLES[name]})
            write_json(a.out, result(names[: names.index(name) + 1]))
            continue
        overrides = [fill(o, fields) for o in VARIANTS[name]]
        config = configs[name]
        cfg = load_config(config, budget + overrides + [f"train.output_dir={work / name}"])
        checkpoint = train_variant(cfg, ctx, work / name)
        train_min = train_mins[name] = logged_minutes(work / name) + (full_min if name in uses_full else 0.0)
        ks = [int(k) for k in a.calib.split(",")] if name == a.calib_on else [4]
        for k in ks:
            out = work / name / f"score_k{k}"
            t = time.time()
            for rank_by in RANK_BY:  # the second pass only rewrites the submission from the journal
                rc = eval_subnets.main(["--checkpoint", str(checkpoint), "--archs", str(gt),
                                        "--out", str(out), "--val-images", str(a.val_images), "--calib-batches",
                                        str(k), "--rank-by", rank_by])
                if rc:
                    raise SystemExit(f"scoring failed for {name} K={k}")
                sub = out / f"submission_{rank_by}.json"
                for src, dst in ((out / "submission.json", sub),  # with its record (network, checkpoint,
                                 (eval_subnets.meta_path(out / "submission.json"), eval_subnets.meta_path(sub))):
                    src.replace(dst)  # settings): rank_corr and blend check the network
                measure(name, sub, k, rank_by, train_min, t, {"config_overrides": overrides, "config": str(config)})
        # after each variant, so a stopped run leaves what it measured (marked incomplete)
        write_json(a.out, result(names[: names.index(name) + 1]))
    for gm, floor in floors.items():  # the zero-cost floor depends only on the GT codes and metric
        for fname, f in floor.items():
            rows.append({"variant": f"{fname} (zero-cost)", "gt_metric": gm, "n": f["n"], "kendall": f["kendall"],
                         "pearson": f["pearson"], "spearman": f["spearman"]})
    print_table(f"ranking on {gt.name}: {a.train_images} training images x {a.epochs} epochs per supernet, "
                f"{a.val_images} evaluation images", rows,
                ["variant", "calib_K", "rank_by", "gt_metric", "n", "kendall", "pearson", "spearman", "minus_macs",
                 "ci95_macs", "minus_default", "ci95_default", "best_zc", "tau_minus_zc", "ci95", "p_ahead",
                 "tau_same_depth", "train_min", "score_min"])
    write_json(a.out, result(names))


if __name__ == "__main__":
    sys.exit(main())
