"""The best subnets under a budget, from a scored file: an exact scan of every code it holds.

  python tools/search.py output/eval45k/submission.json --max-macs 2.5G --max-params 15M --top 10 \
      --out output/search/picks.json

Scores come from any file in the official form where a higher ``acc`` is better (a submission of
eval_subnets.py, tools/blend.py's output, a predictor of tools/zero_cost.py). Budgets are maxima on the
network as deployed: MACs and parameters of the ImageNet model at full width and 224 pixels by default
(``--cost-net proxy``: the scored file's own network, from its record). Numbers take K, M and G. Prints
the top-k table and the command that exports the chosen code; ``--out`` writes the same as JSON.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import network_of  # noqa: E402

from supernet.archfile import ArchFileError, read_entries  # noqa: E402
from supernet.cli import ArgumentParser, entry_point, fail, positive_int  # noqa: E402
from supernet.outputs import overwrite_problem  # noqa: E402
from supernet.runtime import atomic_write_json  # noqa: E402
from supernet.space import IMAGENET, ArchCodeError, count_cost, parse_code  # noqa: E402

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


def scan(pred: Path, max_macs: float | None, max_params: float | None, top: int, cost_net) -> dict:
    """The ``top`` best-scored codes of ``pred`` within the budgets, exactly (every code looked at)."""
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
            rows.append({"key": k, "arch": arch.code, "score": float(v["acc"]), "macs": cost.macs,
                         "params": cost.params})
    rows.sort(key=lambda r: -r["score"])
    return {"file": str(pred), "codes_within_budget": len(rows),
            "budget": {"max_macs": max_macs, "max_params": max_params},
            "cost_network": {"width_divisor": cost_net.width_divisor, "input_size": cost_net.input_size},
            "top": [{"rank": i + 1, **r} for i, r in enumerate(rows[:top])]}


@entry_point
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scores", help="a scored file in the official form (higher acc = better)")
    p.add_argument("--max-macs", type=amount, help="most multiply-accumulates per image, e.g. 2.5G")
    p.add_argument("--max-params", type=amount, help="most parameters, e.g. 15M")
    p.add_argument("--top", type=positive_int, default=10)
    p.add_argument("--cost-net", choices=["imagenet", "proxy"], default="imagenet",
                   help="count MACs/params on the ImageNet network (default) or on the scored file's network")
    p.add_argument("--checkpoint", default="<supernet.pdparams>", help="named in the printed export command")
    p.add_argument("--out", help="write the table as JSON")
    a = p.parse_args(argv)
    pred = Path(a.scores)
    if a.out:
        problem = overwrite_problem([a.out], [pred], "--out")
        if problem:
            return fail(problem)
    try:
        cost_net = IMAGENET if a.cost_net == "imagenet" else network_of(pred, None, None)
        res = scan(pred, a.max_macs, a.max_params, a.top, cost_net)
    except ArchFileError as e:
        return fail(str(e))
    if not res["top"]:
        return fail(f"no code of {pred} fits the budget (MACs <= {a.max_macs}, params <= {a.max_params})")
    best = res["top"][0]
    res["export"] = (f"python tools/export_subnet.py --checkpoint {a.checkpoint} --code {best['arch']} "
                     f"--out exported/{best['key']}")
    print(f"{res['codes_within_budget']} codes of {pred} within the budget; top {len(res['top'])}:")
    print(f"{'rank':>4} {'key':<10} {'score':>9} {'GMACs':>7} {'M params':>9}  code")
    for r in res["top"]:
        print(f"{r['rank']:>4} {r['key']:<10} {r['score']:>9.3f} {r['macs'] / 1e9:>7.3f} {r['params'] / 1e6:>9.2f}  "
              f"{r['arch']}")
    print(f"export the best: {res['export']}")
    if a.out:
        atomic_write_json(a.out, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
