"""Zero-cost predictors for a list of codes: Zen-Score, NASWOT, SynFlow, grad-norm, SNIP, MACs, params, depth.

  python tools/zero_cost.py ../shared/data/CVPR_2022_NAS_Track1_test.json --out output/zc45k --width-divisor 8
  python tools/zero_cost.py ARCHS --out DIR --shard 0/4          # separate jobs into one DIR
  python tools/rank_corr.py DIR/zen.json benchmarks/gt/d8e4.json  # any predictor against a ground truth

Each code's network is built standalone at random initialisation (seeded) on the proxy's input
(Fashion-MNIST 28x28, widths / --width-divisor); definitions and papers in supernet/zero_cost.py.
Writes DIR/<predictor>.json in the official form (``acc`` = the score, higher = predicted better) for
zen, naswot, synflow, grad_norm, snip, macs, params and depth (residual blocks: the strongest free
predictor on the proxy and on the 30 public ImageNet codes, BENCHMARKS.md; a prior for tools/blend.py),
DIR/table.json and DIR/table.csv with every value per code, and DIR/zero_cost.meta.json naming the
network (rank_corr refuses a ground truth of another network).
Finished codes go to a journal (resumable like eval_subnets; another setting's journal is refused);
shards write their own journals into the same DIR and whichever finds every code done writes the files.
"""
from __future__ import annotations

import argparse
import csv
import io
import logging
import math
import os
import sys
import time
from collections import OrderedDict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import supernet  # noqa: E402,F401  (threads and malloc before paddle)
import numpy as np  # noqa: E402

from supernet import archfile  # noqa: E402
from supernet.cli import ArgumentParser, entry_point, fail, nonneg_int, positive_int, shard  # noqa: E402
from supernet.outputs import FolderLock, OutputError, overwrite_problem  # noqa: E402
from supernet.data import DataError, build_loaders  # noqa: E402
from supernet.journal import Journal, JournalError, read_journals  # noqa: E402
from supernet.runtime import atomic_write_bytes, atomic_write_json, setup_logging  # noqa: E402
from supernet.space import FMNIST28, WIDTH_DIVISORS, count_cost  # noqa: E402
from supernet.supernet_train import net_config  # noqa: E402
from supernet.zero_cost import FREE, PREDICTORS, ZeroCostSettings, score_all  # noqa: E402

log = logging.getLogger("zero_cost")


def batches(cfg: NetConfig, s: ZeroCostSettings, data_dir: str | None):
    """``s.repeats`` labelled training batches, the same for every code (seeded)."""
    train, _ = build_loaders("fmnist", s.batch_size, s.seed, train_images=s.batch_size * s.repeats,
                             data_dir=data_dir, input_size=cfg.input_size)
    return [(np.ascontiguousarray(x, np.float32), np.asarray(y, np.int64)) for x, y in train.epoch(0)]


def write_outputs(out: Path, keys: "OrderedDict[str, str]", done: dict[str, dict], which: list[str],
                  width_divisor: int, input_size: int) -> list[str]:
    """DIR/<predictor>.json (official form) for each predictor and DIR/table.json; returns one line per
    predictor with codes whose score is not finite (left out of that file)."""
    notes = []
    for name in which:
        vals = {k: done[c][name] for k, c in keys.items()}
        good = {k: v for k, v in vals.items() if v is not None and math.isfinite(v)}
        if len(good) < len(vals):
            notes.append(f"{name}: {len(vals) - len(good)} codes without a finite score (left out of {name}.json)")
        archfile.write_official(out / f"{name}.json", {k: keys[k] for k in good}, good)
    atomic_write_json(out / "zero_cost.meta.json", {"network": {"dataset": "fmnist", "width_divisor": width_divisor,
                                                                 "input_size": input_size}, "codes": len(keys)})
    atomic_write_json(out / "table.json", {k: {"arch": c, **{n: done[c][n] for n in which}} for k, c in keys.items()})
    rows = io.StringIO()  # the same table for pandas/spreadsheets (and compact enough to commit compressed)
    w = csv.writer(rows, lineterminator="\n")
    w.writerow(["key", "arch", *which])
    for k, c in keys.items():
        w.writerow([k, c, *("" if done[c][n] is None else repr(done[c][n]) for n in which)])
    atomic_write_bytes(out / "table.csv", rows.getvalue().encode())
    return notes


def output_files(out: Path, which: list[str]) -> list[Path]:
    """Every file ``write_outputs`` writes."""
    return [*(out / f"{n}.json" for n in [*which, *FREE]), *(out / n for n in ("zero_cost.meta.json", "table.json",
                                                                                "table.csv"))]


@entry_point
def main(argv: list[str] | None = None) -> int:
    setup_logging()
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("archs", help="official JSON or a plain list of codes")
    p.add_argument("--out", required=True, help="output folder (journals, <predictor>.json, table.json)")
    p.add_argument("--width-divisor", type=int, choices=WIDTH_DIVISORS, default=FMNIST28.width_divisor)
    p.add_argument("--batch-size", type=positive_int, default=64, help="images per batch (NASWOT, grad-norm, SNIP, Zen)")
    p.add_argument("--repeats", type=positive_int, default=1, help="initialisations and batches averaged per code")
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.add_argument("--which", default=",".join(PREDICTORS), help=f"subset of {','.join(PREDICTORS)}")
    p.add_argument("--shard", type=shard, default=(0, 1), help="i/n: only share i of n")
    p.add_argument("--limit", type=positive_int, help="only the first N codes")
    p.add_argument("--data_dir", help="Fashion-MNIST IDX folder (default: found or fetched)")
    a = p.parse_args(argv)
    which = [w.strip() for w in a.which.split(",") if w.strip()]
    bad = [w for w in which if w not in PREDICTORS]
    if bad or not which:
        return fail(f"--which {a.which!r}: choose from {', '.join(PREDICTORS)}")
    cfg = net_config({"dataset": "fmnist", "width_divisor": a.width_divisor})
    out = Path(a.out)
    problem = overwrite_problem(output_files(out, which), [a.archs], "--out")
    if problem:
        return fail(problem)
    try:
        archs = archfile.read_archs(a.archs)
    except archfile.ArchFileError as e:
        return fail(str(e))
    keys = OrderedDict((k, v.code) for k, v in list(archs.items())[: a.limit or None])
    s = ZeroCostSettings(a.batch_size, a.repeats, a.seed)
    header = {"settings": {"batch_size": s.batch_size, "repeats": s.repeats, "seed": s.seed, "which": which},
              "network": {"width_divisor": cfg.width_divisor, "input_size": cfg.input_size, "stem": cfg.stem,
                          "in_channels": cfg.in_channels, "num_classes": cfg.num_classes}, "data": "fmnist"}
    i, n = a.shard
    lock = FolderLock(out, f"zero_cost.s{i}of{n}")
    try:
        lock.acquire()
        done = read_journals(out, header)
        data = batches(cfg, s, a.data_dir)
    except (JournalError, DataError, OutputError) as e:
        lock.release()
        return fail(str(e))
    try:
        return run(a, out, cfg, s, which, keys, archs, header, done, data)
    finally:
        lock.release()


def run(a: argparse.Namespace, out: Path, cfg: NetConfig, s: ZeroCostSettings, which: list[str],
        keys: "OrderedDict[str, str]", archs: dict, header: dict, done: dict, data: list) -> int:
    """Score this shard's codes not yet in the journals; the shard that finds every code done writes the files."""
    i, n = a.shard
    arch_of = {a.code: a for a in archs.values()}  # parsed once
    mine = [c for j, c in enumerate(keys.values()) if j % n == i and c not in done]
    log.info("%d codes (shard %d/%d), %d to score: %s at width divisor %d, batch %d x %d repeat(s)", len(keys), i, n,
             len(mine), ", ".join(which), cfg.width_divisor, s.batch_size, s.repeats)
    from tqdm import tqdm

    from supernet.resnet import ResNet48

    shape = [s.batch_size, cfg.in_channels, cfg.input_size, cfg.input_size]
    journal = Journal(out / f"journal.s{i}of{n}.jsonl", header)
    try:
        t0 = time.time()
        bar = tqdm(mine, desc="codes", dynamic_ncols=True)
        for k, code in enumerate(bar, 1):
            t = time.time()
            scores = score_all(lambda: ResNet48.from_code(arch_of[code], cfg), lambda m, x: m.forward_features(x), data,
                               shape, s, which)
            cost = count_cost(arch_of[code], cfg)
            rec = {"arch": code, **{w: (v if math.isfinite(v) else None) for w, v in scores.items()},
                   "macs": cost.macs, "params": cost.params, "s": round(time.time() - t, 3),
                   "end": round(time.time(), 3), "pid": os.getpid()}  # for benchmarks/zc_run.py's wall time
            journal.append(rec)
            bar.set_postfix(codes_per_h=f"{k / max(1e-9, time.time() - t0) * 3600:.0f}")
    finally:
        journal.close()
    done = read_journals(out, header)
    missing = [c for c in keys.values() if c not in done]
    if missing:
        log.info("%d codes are left to other shards; the files are written by the shard that finishes last",
                 len(missing))
        return 0
    for c in keys.values():  # depth is read off the code (journals written before it was a file lack it)
        done[c]["depth"] = float(arch_of[c].depth)
    for note in write_outputs(out, keys, done, [*which, *FREE], cfg.width_divisor, cfg.input_size):
        log.warning("%s", note)
    log.info("wrote %s/{%s}.json and table.json for %d codes", out, ",".join([*which, *FREE]), len(keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
