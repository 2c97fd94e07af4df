"""The best subnets under a budget: an exact scan of a scored file, or an evolutionary search of the whole
space with the supernet as the evaluator.

  python tools/search.py output/eval45k/submission.json --max-macs 2.5G --max-params 15M --top 10 \
      --out output/search/picks.json
  python tools/search.py --supernet output/supernet_fmnist/supernet.pdparams --max-macs 2.5G \
      --generations 10 --population 40 --work output/search/evo --out output/search/evo_picks.json

Evolution (supernet/evolution.py): generation 0 samples the supernet's space within the budget, later
ones are children (mutation, crossover) of the best codes scored so far; only valid, tied, new codes,
at most a quarter of a generation on one depth configuration. Every candidate is scored like
eval_subnets.py does (BN recalibrated per code, ranked by loss) into journals in --work, so a stopped
search resumes where it was; under paddle.distributed.launch each rank scores its share of a generation.

Scores come from any file in the official form where a higher ``acc`` is better (a submission of
eval_subnets.py, tools/blend.py's output, a predictor of tools/zero_cost.py). Budgets are maxima on the
network as deployed: MACs and parameters of the ImageNet model at full width and 224 pixels by default
(``--cost-net proxy``: the scored file's own network, from its record). Numbers take K, M and G. Prints
the top-k table and the command that exports the chosen code; ``--out`` writes the same as JSON.
"""
from __future__ import annotations

import argparse
import functools
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import network_of  # noqa: E402

from supernet.archfile import ArchFileError, read_entries  # noqa: E402
from supernet.cli import ArgumentParser, entry_point, fail, positive_int  # noqa: E402
from supernet.outputs import overwrite_problem  # noqa: E402
from supernet.runtime import atomic_write_json  # noqa: E402
from supernet.space import IMAGENET, ArchCodeError, count_cost, get_space, network, parse_code  # noqa: E402

UNITS = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9}


def amount(text: str) -> float:
    """``2.5G``, ``300M``, ``15e6``: a positive count."""
    t = text.strip().upper()
    unit = t[-1] if t and t[-1] in UNITS and not t[-1].isdigit() else ""
    try:
        v = float(t[: len(t) - len(unit)]) * UNITS[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count (e.g. 300M, 2.5G)") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive count")
    return v


def scan(pred: Path, max_macs: float | None, max_params: float | None, top: int, cost_net,
         latency=None, max_latency_ms: float | None = None) -> dict:
    """The ``top`` best-scored codes of ``pred`` within the budgets, exactly (every code looked at).
    ``latency``: arch -> seconds (a table's prediction or a measurement), checked last (the costly one)."""
    rows = []
    for k, v in read_entries(pred).items():
        if "acc" not in v:
            raise ArchFileError(f"{pred}: {k} has no score ('acc')")
        try:
            arch = parse_code(v["arch"])
        except ArchCodeError as e:
            raise ArchFileError(f"{pred}: {k}: {e}") from None
        cost = count_cost(arch, cost_net)
        if (max_macs is None or cost.macs <= max_macs) and (max_params is None or cost.params <= max_params):
            row = {"key": k, "arch": arch.code, "score": float(v["acc"]), "macs": cost.macs, "params": cost.params}
            if latency is not None:
                row["latency_ms"] = latency(arch) * 1000
                if max_latency_ms is not None and row["latency_ms"] > max_latency_ms:
                    continue
            rows.append(row)
    rows.sort(key=lambda r: -r["score"])
    return {"file": str(pred), "codes_within_budget": len(rows),
            "budget": {"max_macs": max_macs, "max_params": max_params, "max_latency_ms": max_latency_ms},
            "cost_network": {"width_divisor": cost_net.width_divisor, "input_size": cost_net.input_size},
            "top": [{"rank": i + 1, **r} for i, r in enumerate(rows[:top])]}


def latency_of(a: argparse.Namespace):
    """arch -> seconds per forward on this device (from --latency-table, or measured), or None."""
    if a.latency_table:
        from latency import load_table

        from supernet.latency import predict, table_mismatch

        table = load_table(a.latency_table)
        cfg = network(table["net"], table["width_divisor"])
        problem = table_mismatch(table, cfg, table["batch"])
        if problem:
            raise ValueError(problem)
        return lambda x: predict(table, x, cfg)
    if a.latency_measure:
        from supernet.latency import measure_subnet
        from supernet.resnet import ResNet48

        cfg = IMAGENET
        return lambda x: measure_subnet(ResNet48.from_code(x, cfg), cfg, a.latency_measure)
    return None


def _generation(rec: dict) -> int:
    key = str(rec.get("key", ""))
    return int(key[3:]) if key.startswith("gen") and key[3:].isdigit() else -1


def evolve(a: argparse.Namespace, within) -> dict:
    """Evolutionary search with the supernet ``a.supernet`` as the evaluator; the table of the best codes.
    ``within(arch, cost_net)`` says whether a code fits the budget, its cost counted on ``cost_net`` (ImageNet,
    or with ``--cost-net proxy`` the supernet's own network)."""
    from tqdm import tqdm

    from supernet.evaluate import (EvalData, Journal, ScoreSettings, load_scorer, make_header, read_journals,
                                   score, wait_for_scores)
    from supernet.evolution import propose
    from supernet.runtime import setup

    ctx = setup(a.device)
    route, cfg, sha = load_scorer(a.supernet)
    space = get_space(cfg["sandwich"]["space"])
    from supernet import onednn

    backend = "supernet" if ctx.on_gpu else ("fused" if onednn.backend() == "onednn" else "dygraph")
    settings = ScoreSettings(a.val_images, a.calib_batches, a.calib_batch_size, 500, a.seed, backend, ctx.on_gpu)
    header = make_header(sha, cfg, settings)
    work = Path(a.work)
    data = EvalData(cfg, settings)
    cost_net = IMAGENET if a.cost_net == "imagenet" else data.net
    fits = functools.partial(within, cost_net=cost_net)
    journal = Journal(work / f"journal.r{ctx.rank}.jsonl", header)
    archs: dict[str, object] = {}
    scored: dict[str, float] = {}
    bar = tqdm(range(a.generations), desc="generations", disable=not ctx.is_main, dynamic_ncols=True)
    try:
        for g in bar:
            done = read_journals(work, header)
            for c in done:
                archs.setdefault(c, parse_code(c))
            # generation g depends only on what generations before it scored (the key records the generation),
            # so a resumed search proposes exactly the same candidates
            before = {c: -r["nll"] for c, r in done.items() if _generation(r) < g and fits(archs[c])}
            cands = propose(space, g, before, archs, fits, a.population, a.parents, a.seed)
            for x in cands:
                archs[x.code] = x
            todo = [x for x in cands if x.code not in done]
            for x in todo[ctx.rank:: ctx.world]:
                t0 = time.time()
                journal.add(f"gen{g}", x, score(route(x), x, data), time.time() - t0)
            if ctx.world > 1:
                wait_for_scores(work, header, {x.code for x in todo}, "journal.r*.jsonl")
            done = read_journals(work, header)
            scored = {c: -r["nll"] for c, r in done.items() if fits(archs.get(c) or parse_code(c))}
            best = max(scored.values(), default=float("nan"))
            bar.set_postfix(best_loss=f"{-best:.4f}", scored=len(scored))
    finally:
        journal.close()
    rows = sorted(scored, key=lambda c: -scored[c])[: a.top]
    top = []
    for i, c in enumerate(rows):
        cost = count_cost(archs[c], cost_net)
        top.append({"rank": i + 1, "key": f"evo{i + 1}", "arch": c, "score": 100.0 * math.exp(scored[c]),
                    "macs": cost.macs, "params": cost.params})
    return {"supernet": a.supernet, "codes_within_budget": len(scored), "generations": a.generations,
            "population": a.population, "budget": {"max_macs": a.max_macs, "max_params": a.max_params},
            "cost_network": a.cost_net, "score": "100 * exp(-test cross-entropy), the supernet's", "top": top}


@entry_point
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scores", nargs="?", help="a scored file in the official form (higher acc = better)")
    p.add_argument("--supernet", help="evolutionary search with this supernet checkpoint instead of a scored file")
    p.add_argument("--generations", type=positive_int, default=10)
    p.add_argument("--population", type=positive_int, default=40)
    p.add_argument("--parents", type=positive_int, default=10)
    p.add_argument("--work", default="output/search/evo", help="evolution: journals of the scored candidates")
    p.add_argument("--val-images", type=positive_int, default=2000)
    p.add_argument("--calib-batches", type=positive_int, default=4)
    p.add_argument("--calib-batch-size", type=positive_int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"])
    p.add_argument("--max-macs", type=amount, help="most multiply-accumulates per image, e.g. 2.5G")
    p.add_argument("--max-params", type=amount, help="most parameters, e.g. 15M")
    p.add_argument("--max-latency-ms", type=float, help="most milliseconds per forward on this device")
    p.add_argument("--latency-table", help="tools/latency.py build output: latency predicted from it")
    p.add_argument("--latency-measure", type=positive_int, metavar="BATCH",
                   help="measure each candidate's latency directly on this device at this batch size")
    p.add_argument("--top", type=positive_int, default=10)
    p.add_argument("--cost-net", choices=["imagenet", "proxy"], default="imagenet",
                   help="count MACs/params on the ImageNet network (default) or on the scored file's network")
    p.add_argument("--checkpoint", default="<supernet.pdparams>", help="named in the printed export command")
    p.add_argument("--out", help="write the table as JSON")
    a = p.parse_args(argv)
    if (a.scores is None) == (a.supernet is None):
        return fail("give a scored file or --supernet CHECKPOINT (one of them)")
    if a.max_latency_ms is not None and not (a.max_latency_ms > 0) or \
            (a.max_latency_ms is not None) != bool(a.latency_table or a.latency_measure):
        return fail("--max-latency-ms takes a positive number and needs --latency-table or --latency-measure")
    try:
        latency = latency_of(a)
    except ValueError as e:
        return fail(str(e))
    source = Path(a.scores or a.supernet)
    if a.out:
        problem = overwrite_problem([a.out], [source], "--out")
        if problem:
            return fail(problem)
    try:
        if a.supernet:
            def within(x, cost_net) -> bool:
                c = count_cost(x, cost_net)
                return ((a.max_macs is None or c.macs <= a.max_macs) and (a.max_params is None or c.params <= a.max_params)
                        and (latency is None or latency(x) * 1000 <= a.max_latency_ms))

            res = evolve(a, within)
        else:
            cost_net = IMAGENET if a.cost_net == "imagenet" else network_of(source, None, None)
            res = scan(source, a.max_macs, a.max_params, a.top, cost_net, latency, a.max_latency_ms)
    except (ArchFileError, FileNotFoundError, ValueError) as e:
        return fail(str(e))
    pred = source
    if not res["top"]:
        return fail(f"no code of {pred} fits the budget (MACs <= {a.max_macs}, params <= {a.max_params})")
    best = res["top"][0]
    res["export"] = (f"python tools/export_subnet.py --checkpoint {a.supernet or a.checkpoint} --code {best['arch']} "
                     f"--out exported/{best['key']}")
    print(f"{res['codes_within_budget']} codes of {pred} within the budget; top {len(res['top'])}:")
    print(f"{'rank':>4} {'key':<10} {'score':>9} {'GMACs':>7} {'M params':>9} {'ms':>8}  code")
    for r in res["top"]:
        ms = f"{r['latency_ms']:>8.2f}" if "latency_ms" in r else f"{'-':>8}"
        print(f"{r['rank']:>4} {r['key']:<10} {r['score']:>9.3f} {r['macs'] / 1e9:>7.3f} {r['params'] / 1e6:>9.2f} {ms}  "
              f"{r['arch']}")
    print(f"export the best: {res['export']}")
    if a.out:
        atomic_write_json(a.out, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
