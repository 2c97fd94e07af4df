"""Blend predictions by rank: a supernet's scores with a zero-cost predictor (or any official-form files).

  python tools/blend.py blended.json out/submission.json zc/params.json [--weights 1,1]

Each input is turned into normalised ranks (0 worst, 1 best) and the weighted mean is written in the
official form, keyed and ordered like the first file, with ``blended.meta.json`` naming every input
(sha256, weight) and the network they were computed for. All inputs must hold exactly the same codes
and, where they record one, the same network (a widths/4 prior is not blended into a widths/8 supernet).
No ground truth is involved, so a blend is a valid submission; whether it ranks better is for
tools/rank_corr.py to say.
"""
from __future__ import annotations

import argparse
import math
import hashlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from supernet import archfile  # noqa: E402
from supernet.cli import ArgumentParser, entry_point, fail, writable_file  # noqa: E402
from supernet.metrics import rank_blend  # noqa: E402
from supernet.runtime import atomic_write_json  # noqa: E402

from rank_corr import network_record, recorded_network  # noqa: E402


def _network(path: str) -> dict | None:
    """The network an input was computed for, from its record (eval_subnets / zero_cost), if any."""
    try:
        return recorded_network(network_record(path))
    except ValueError as e:
        raise archfile.ArchFileError(str(e)) from e


def weights_arg(text: str) -> list[float]:
    try:
        w = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes comma-separated numbers (e.g. 1,1), got {text!r}") from None
    if any(not (math.isfinite(v) and v >= 0) for v in w) or sum(w) <= 0:
        raise argparse.ArgumentTypeError(f"{text}: weights must be finite, >= 0 and not all zero")
    return w


def blend(out: str, inputs: list[str], weights: list[float] | None = None) -> int:
    """Write the blend of ``inputs`` to ``out`` (and its record); returns the number of codes."""
    if weights is not None and len(weights) != len(inputs):
        raise archfile.ArchFileError(f"--weights has {len(weights)} values for {len(inputs)} inputs")
    entries = archfile.read_entries(inputs[0])
    scores = [archfile.read_scores(f) for f in inputs]
    codes = list(scores[0])
    for f, s in zip(inputs[1:], scores[1:]):
        if set(s) != set(codes):
            extra, missing = len(set(s) - set(codes)), len(set(codes) - set(s))
            raise archfile.ArchFileError(f"{f} and {inputs[0]} hold different codes ({missing} missing, {extra} extra): "
                                         "only predictions of the same codes are blended")
    nets = {f: _network(f) for f in inputs}
    known = {f: n for f, n in nets.items() if n is not None}
    if known:
        f1, n1 = next(iter(known.items()))
        for f2, n2 in known.items():
            if n2 != n1:
                raise archfile.ArchFileError(f"{f1} was computed for {n1} but {f2} for {n2}: not blended")
    mixed = rank_blend([[s[c] for c in codes] for s in scores], weights)
    by_code = dict(zip(codes, mixed))
    archs = {k: archfile.parse_code(v["arch"]).code for k, v in entries.items()}
    archfile.write_official(out, archs, {k: by_code[c] for k, c in archs.items()})
    w = weights or [1.0] * len(inputs)
    atomic_write_json(Path(out).with_name(Path(out).stem + ".meta.json"), {
        "codes": len(codes), "network": next(iter(known.values()), None),
        "blend": [{"file": str(f), "sha256": hashlib.sha256(Path(f).read_bytes()).hexdigest(), "weight": wi}
                  for f, wi in zip(inputs, w)]})
    return len(codes)


@entry_point
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", help="the blended predictions (official form)")
    p.add_argument("inputs", nargs="+", help="official-form prediction files of the same codes (at least two)")
    p.add_argument("--weights", type=weights_arg, help="one weight per input (default: equal)")
    a = p.parse_args(argv)
    if len(a.inputs) < 2:
        return fail("inputs: give at least two prediction files to blend")
    problem = writable_file(a.out, "out")
    if not problem and Path(a.out).resolve() in {Path(f).resolve() for f in a.inputs}:
        problem = f"out {a.out} is also an input; write the blend to a new file"
    if problem:
        return fail(problem)
    try:
        n = blend(a.out, a.inputs, a.weights)
    except archfile.ArchFileError as e:
        return fail(str(e))
    print(f"blended {n} codes of {len(a.inputs)} files into {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
