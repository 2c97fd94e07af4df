"""Score many subnets with a trained supernet and write the submission JSON.

  python eval_subnets.py --checkpoint output/supernet_fmnist/supernet.pdparams \
      --archs ../shared/data/CVPR_2022_NAS_Track1_test.json --out output/eval_fmnist --val-images 2000

Input: the official JSON, a plain list of codes (one per line, or 'key code'), or any subset.
Each finished subnet goes to a journal in --out; run the same command again after a crash and it
continues where it stopped. Under python -m paddle.distributed.launch every rank scores its share
and rank 0 writes the submission; --shard i/n splits the work across separate jobs, whose outputs
`python tools/arch_files.py merge` joins.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import supernet  # noqa: F401  (sets CPU threads before paddle is imported)
from supernet import archfile
from supernet.cli import ArgumentParser, entry_point, fail, nonneg_int, positive_float, positive_int
from supernet.cli import shard as shard_arg
from supernet.data import DataError
from supernet.evaluate import (EvalData, Journal, JournalError, ScoreSettings, load_scorer, make_header,
                               read_journals, run_scoring, shard_keys, submission_values, wait_for_scores)
from supernet.outputs import FolderLock, OutputError, overwrite_problem
from supernet.runtime import atomic_write_json, barrier, setup
from supernet.space import tied_violation
from supernet.supernet_train import net_config

log = logging.getLogger("eval_subnets")


def meta_path(submission: Path) -> Path:
    """The record beside a submission of what produced it (``submission.meta.json``)."""
    return submission.with_name(submission.stem + ".meta.json")


def other_submission(path: Path, codes: dict[str, str]) -> str | None:
    """Why ``path`` must not be overwritten by a submission of ``codes`` (it holds another arch set)."""
    if not path.is_file():
        return None
    try:
        old = {k: v["arch"] for k, v in archfile.read_entries(path).items()}
    except archfile.ArchFileError as e:
        return f"--out: {path} exists and is not a submission ({e}); remove it or use another --out"
    if old != codes:
        return (f"--out: {path} holds the submission of another arch set ({len(old)} codes); "
                "use another --out, or remove it to replace it")
    return None


def chosen_on(checkpoint: str) -> dict:
    """``{"checkpoint_chosen_on": ...}`` when the checkpoint was picked by train.gt_watch (its
    ``<name>.choice.json``): rank_corr then refuses to judge these scores on the codes of that choice."""
    choice = Path(checkpoint).with_suffix(".choice.json")
    if not choice.is_file():
        return {}
    rec = json.loads(choice.read_text(encoding="utf-8"))
    return {"checkpoint_chosen_on": {"gt_watch": rec["gt_watch"], "gt_sha256": rec["gt_sha256"], "codes": rec["codes"]}}


def auto_backend(on_gpu: bool) -> str:
    """On a GPU the supernet itself (no model built per subnet, autocast, one host sync per subnet); on a
    CPU the fused oneDNN engine (measured fastest, benchmarks/eval_throughput.py), or Paddle Inference when
    Paddle's oneDNN library cannot be loaded."""
    from supernet import onednn

    if on_gpu:
        return "supernet"
    return "fused" if onednn.backend() == "onednn" else "predictor"


@entry_point
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="supernet.pdparams, a training ckpt_s*.pdckpt, or a few-shot "
                                                        "fewshot.json (each code scored by its group's supernet)")
    p.add_argument("--config", help="training config (default: the .yaml beside the checkpoint)")
    p.add_argument("--archs", required=True, help="official JSON or a plain list of codes")
    p.add_argument("--out", default="output/eval", help="output folder: journals and the submission")
    p.add_argument("--val-images", type=positive_int, help="fixed, seeded subset of the validation set (default: all)")
    p.add_argument("--calib-batches", type=nonneg_int, default=4, help="BN recalibration batches per subnet (0: off)")
    p.add_argument("--calib-batch-size", type=positive_int, default=128)
    p.add_argument("--batch-size", type=positive_int, default=500, help="evaluation batch size")
    p.add_argument("--seed", type=nonneg_int, default=0, help="chooses the calibration and validation images")
    p.add_argument("--shard", type=shard_arg, default=(0, 1),
                   help="i/n: score only share i of n (for separate jobs): a contiguous range of the codes sorted "
                        "by their leading layers, cut at equal estimated cost, so each job reuses what they share")
    p.add_argument("--limit", type=positive_int, help="only the first N codes of the file")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"])
    p.add_argument("--backend", choices=["auto", "supernet", "dygraph", "predictor", "fused"], default="auto",
                   help="evaluation engine: fused = oneDNN primitives with BN folded, nothing traced (fastest on "
                        "CPU, BENCHMARKS.md); predictor = Paddle Inference + oneDNN; supernet = the supernet with "
                        "the subnet active, images cached on the device as uint8 (the GPU engine); dygraph = a "
                        "standalone model per subnet; auto = fused on CPU (predictor if oneDNN cannot load), "
                        "supernet on GPU. The engine is part of the journal's settings")
    p.add_argument("--amp", choices=["auto", "on", "off"], default="auto",
                   help="supernet engine: BN recalibration and evaluation under autocast (float16); auto = on a GPU. "
                        "Part of the journal's settings")
    p.add_argument("--device-cache-gib", type=positive_float, default=4.0,
                   help="supernet engine: keep the evaluation images on the device up to this size (uint8 for "
                        "ImageNet: 10,000 images at 224 = 1.4 GiB), else stream them from the host per batch")
    p.add_argument("--rank-by", choices=["loss", "top1"], default="loss",
                   help="the submission's number: loss = 100*exp(-cross-entropy) on the evaluation images "
                        "(ranks better on the proxy, BENCHMARKS.md), top1 = accuracy %%; the journal keeps both")
    a = p.parse_args(argv)
    shard = a.shard
    out = Path(a.out)
    try:
        archs = archfile.read_archs(a.archs)
    except archfile.ArchFileError as e:
        return fail(str(e))
    untied = [f"{k}: {tied_violation(v)}" for k, v in archs.items() if tied_violation(v)]
    if untied:
        return fail(f"{a.archs}: {len(untied)} codes cannot run on the supernet (untied residual widths), e.g. "
                    f"{untied[0]}")
    keys = list(archs)[: a.limit] if a.limit else list(archs)
    keys = shard_keys(archs, keys, *shard)
    tag = f"s{shard[0]}of{shard[1]}"
    name = "submission.json" if shard == (0, 1) else f"submission.{tag}.json"
    problem = (overwrite_problem([out / name, meta_path(out / name)], [a.archs, a.checkpoint, a.config], "--out")
               or other_submission(out / name, {k: archs[k].code for k in keys}))
    if problem:
        return fail(problem)
    ctx = setup(a.device)
    try:  # held until this process ends: a second run into --out is refused, at every rank
        lock = FolderLock(out, f"eval.{tag}.r{ctx.rank}").acquire()
    except OutputError as e:
        return fail(str(e))
    try:
        return score(a, archs, keys, out, name, tag, ctx)
    finally:
        lock.release()


def score(a: argparse.Namespace, archs: dict, keys: list[str], out: Path, name: str, tag: str, ctx) -> int:
    """Score this rank's share of ``keys`` not yet in the journals; rank 0 writes the submission."""
    shard = a.shard
    backend = a.backend if a.backend != "auto" else auto_backend(ctx.on_gpu)
    if backend == "fused" and ctx.on_gpu:
        return fail("--backend fused runs on the CPU only; use supernet (or auto) on a GPU")
    amp = a.amp == "on" or (a.amp == "auto" and ctx.on_gpu)
    if amp and backend != "supernet":
        return fail(f"--amp on: autocast is an option of the supernet engine, not of --backend {backend}")
    settings = ScoreSettings(a.val_images, a.calib_batches, a.calib_batch_size, a.batch_size, a.seed, backend,
                             amp, a.device_cache_gib)
    try:
        route, cfg, sha = load_scorer(a.checkpoint, a.config)
        header = make_header(sha, cfg, settings)
        done = read_journals(out, header)
    except (FileNotFoundError, ValueError, JournalError) as e:  # FewShotError is a ValueError
        return fail(str(e))
    remaining = [k for k in keys if archs[k].code not in done]
    barrier(ctx)  # every rank has read the journals before any writes: all split the same ``remaining``
    mine = shard_keys(archs, remaining, ctx.rank, ctx.world)
    log.info("%d codes (shard %d/%d), %d already done, %d to score on %d process(es); this rank: %d",
             len(keys), shard[0], shard[1], len(keys) - len(remaining), len(remaining), ctx.world, len(mine))
    if mine:
        try:
            t = time.time()
            data = EvalData(cfg, settings)
            log.info("cached %d calibration batches and %d evaluation images in %.1fs", len(data.calib), data.n_val,
                     time.time() - t)
        except DataError as e:
            return fail(str(e))
        try:
            journal = Journal(out / f"journal.{tag}.r{ctx.rank}.jsonl", header)
        except JournalError as e:
            return fail(str(e))
        try:
            run_scoring(route, {k: archs[k] for k in mine}, data, journal, show_progress=ctx.is_main)
        except JournalError as e:
            log.error("%s", e)
            return 1
        finally:
            journal.close()
    if not ctx.is_main:
        return 0
    if ctx.world > 1:  # the other ranks' shares, read off their journals (not a barrier: see wait_for_scores)
        wait_for_scores(out, header, {archs[k].code for k in remaining}, f"journal.{tag}.r*.jsonl")
    try:
        done = read_journals(out, header)
    except JournalError as e:
        return fail(str(e))
    missing = [k for k in keys if archs[k].code not in done]
    if missing:
        log.error("%d codes have no score (e.g. %s); run the same command again to finish", len(missing), missing[:5])
        return 1
    try:
        values = submission_values(done, {k: archs[k].code for k in keys}, a.rank_by)
    except JournalError as e:
        return fail(str(e))
    archfile.write_official(out / name, {k: archs[k] for k in keys}, values)
    nc = net_config(cfg["model"])
    atomic_write_json(meta_path(out / name), {  # what the scores belong to (rank_corr checks the network)
        "codes": len(keys), "rank_by": a.rank_by, "checkpoint_sha256": header["checkpoint_sha256"],
        "network": {"dataset": cfg["model"]["dataset"], "width_divisor": nc.width_divisor,
                    "input_size": nc.input_size}, "settings": header["settings"], **chosen_on(a.checkpoint)})
    log.info("submission with %d scores: %s", len(keys), out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
