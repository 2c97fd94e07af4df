"""The whole job on the embedded default (Fashion-MNIST proxy), end to end:

  train the full network standalone -> fine-tune the supernet from it -> recalibrate BN and score the codes
  -> submission JSON -> rank correlation against the ground truth and the zero-cost floor -> scatter plot.

  python run_proxy.py [--config configs/fmnist_quick.yaml] [--gt benchmarks/gt/d8e2.json] [--out output/proxy]
  python run_proxy.py --config configs/fmnist_sandwich.yaml --full-model none     # a supernet from scratch

The default recipe is the best that fits ~15 minutes on 2 cores (BENCHMARKS.md): the full network trained
standalone (pretrain.py's proxy protocol), then the supernet initialised from it and distilled from it
(the challenge's 1st place; configs/fmnist_quick.yaml). ``--full-model PATH`` takes a full network you have.

Codes scored: those of the ground-truth file when it is there; otherwise --sample codes of the
official 45k list (or of the 45k distribution when that file is absent too). A second run reuses
what the first finished (training resumes, scoring skips scored codes).
"""
from __future__ import annotations

import argparse
import logging
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import supernet  # noqa: F401  (sets CPU threads before paddle is imported)
from supernet import archfile, groundtruth
from supernet.cli import ArgumentParser, entry_point, fail, nonneg_int, positive_int
from supernet.config import ConfigError, load_config
from supernet.data import DataError, find_fmnist
from supernet.runtime import atomic_write_json, setup
from supernet.space import FULL_SPACE, OFFICIAL_SPACE, iter_sample
from supernet.supernet_train import net_config, train_supernet

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tools"))
import rank_corr  # noqa: E402

import eval_subnets  # noqa: E402
import zero_cost as zero_cost_tool  # noqa: E402  (tools/zero_cost.py)

log = logging.getLogger("run_proxy")


def pick_codes(gt: Path | None, official: Path | None, n: int, out: Path) -> Path:
    """The arch file to score: the GT's codes, else a seeded sample of the official list or space."""
    if gt is not None:
        return gt
    if official is not None:
        entries = archfile.read_entries(official)
        keys = list(entries)
        chosen = sorted(random.Random(0).sample(keys, n), key=keys.index)
        path = out / "codes_sample.json"
        atomic_write_json(path, {k: entries[k] for k in chosen})
        return path
    path = out / "codes_sample.json"
    archfile.write_official(path, {f"arch{i + 1}": a for i, a in enumerate(iter_sample(OFFICIAL_SPACE, n, 0))})
    return path


def full_model(out: Path, width_divisor: int, data_dir: str | None, train_images: int | None) -> Path:
    """The full network trained standalone with pretrain.py's proxy protocol into ``out`` (resumable; kept
    once finished), in a process of its own so that its threads and logging are its own."""
    path = out / "model.pdparams"
    if path.is_file():
        log.info("%s already holds the trained full network", path)
        return path
    cmd = [sys.executable, str(ROOT / "pretrain.py"), "run", "--arch", FULL_SPACE.largest().code, "--width_divisor",
           str(width_divisor), "--output_dir", str(out), "--resume", "--eval_every", "0"]
    cmd += ["--data_dir", data_dir] if data_dir else []
    cmd += ["--train_images", str(train_images)] if train_images else []
    r = subprocess.run(cmd)
    if r.returncode or not path.is_file():
        raise SystemExit(r.returncode or 1)
    return path


@entry_point
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(ROOT / "configs" / "fmnist_quick.yaml"))
    p.add_argument("-o", "--override", action="append", default=[], help="config override key=value")
    p.add_argument("--full-model", default="train",
                   help="train (default: the full network trained standalone first, the supernet's start and "
                        "teacher), a checkpoint of the full network to use instead, or none (the config as it is)")
    p.add_argument("--full-train-images", type=positive_int, help="train the full network on this many images "
                   "(default: all 60,000, the ground truth's protocol)")
    p.add_argument("--gt", help="ground truth (default: the project's proxy v3 file, benchmarks/gt/d8e2.json)")
    p.add_argument("--archs", help="official 45k JSON (default ../shared/data/..., when no ground truth)")
    p.add_argument("--sample", type=positive_int, default=24, help="codes to score when there is no ground truth")
    p.add_argument("--val-images", type=positive_int, default=10000, help="evaluation images per subnet")
    p.add_argument("--calib-batches", type=nonneg_int, default=4)
    p.add_argument("--out", default="output/proxy")
    a = p.parse_args(argv)
    t0 = time.time()
    out = Path(a.out)
    try:
        cfg = load_config(a.config, [f"train.output_dir={out / 'supernet'}", *a.override])
    except ConfigError as e:
        return fail(str(e))
    if a.full_model not in ("train", "none") and not Path(a.full_model).is_file():
        return fail(f"--full-model {a.full_model}: no such file (train, none, or a checkpoint of the full network)")
    for opt, path in (("--gt", a.gt), ("--archs", a.archs)):
        if path and not Path(path).is_file():
            return fail(f"{opt} {path} does not exist")
    gt = Path(a.gt) if a.gt else groundtruth.DEV_GT
    gt = gt if gt.is_file() else None
    if gt is not None:
        nc = net_config(cfg["model"])
        try:
            problem = groundtruth.supernet_mismatch(gt, nc.width_divisor, nc.input_size, cfg["model"]["dataset"])
        except archfile.ArchFileError as e:
            problem = str(e)
        if problem:
            return fail(problem)
    ctx = setup("auto")
    out.mkdir(parents=True, exist_ok=True)

    log.info("[1/5] data: Fashion-MNIST")
    try:
        log.info("found %s", find_fmnist(cfg["data"]["data_dir"]))
    except DataError as e:
        log.error("%s", e)
        return 2

    if a.full_model != "none":
        if a.full_model == "train":
            log.info("[2/5] the full network, trained standalone (pretrain.py)")
            start = full_model(out / "full_model", net_config(cfg["model"]).width_divisor, cfg["data"]["data_dir"],
                               a.full_train_images)
        else:
            log.info("[2/5] the full network: %s", a.full_model)
            start = Path(a.full_model)
        cfg["model"]["init"] = cfg["sandwich"]["teacher"] = str(start)
    else:
        log.info("[2/5] no full network (--full-model none): the supernet starts as the config says")
    log.info("[3/5] supernet training (%s)", a.config)
    try:
        train_supernet(cfg, ctx, resume=True)
    except (DataError, ValueError) as e:
        return fail(str(e))
    ckpt = out / "supernet" / "supernet.pdparams"
    try:
        codes = pick_codes(gt, archfile.official_45k_path(a.archs), a.sample, out)
    except archfile.ArchFileError as e:
        return fail(str(e))
    log.info("[4/5] BN recalibration and scoring of %s", codes)
    rc = eval_subnets.main(["--checkpoint", str(ckpt), "--archs", str(codes), "--out", str(out / "eval"),
                            "--val-images", str(a.val_images), "--calib-batches", str(a.calib_batches)])
    if rc:
        return rc
    submission = out / "eval" / "submission.json"

    outputs = {"supernet": ckpt, "submission": submission, "training log": out / "supernet" / "log.jsonl"}
    if a.full_model != "none":
        outputs = {"full network": Path(cfg["model"]["init"]), **outputs}
    if gt is not None:
        log.info("[5/5] rank correlation against %s", gt)
        zc_dir = out / "zero_cost"  # the floor: the best zero-cost predictor on these codes (~0.5 s per code)
        rc = zero_cost_tool.main([str(codes), "--out", str(zc_dir), "--width-divisor", str(nc.width_divisor),
                                  *(["--data_dir", cfg["data"]["data_dir"]] if cfg["data"]["data_dir"] else [])])
        if rc:
            return rc
        res = rank_corr.compare(str(submission), str(gt), "fmnist28", zc_dir=str(zc_dir))
        rank_corr.plot(res, str(out / "scatter.png"), rank_corr.score_label(submission))
        report = {k: v for k, v in res.items() if k != "_points"}
        atomic_write_json(out / "rank_corr.json", report)
        (out / "rank_corr.txt").write_text(rank_corr.format_table(res) + "\n")
        print("\n" + rank_corr.format_table(res) + "\n\n" + textwrap.fill(rank_corr.verdict(res), 100) + "\n",
              flush=True)
        outputs.update({"rank correlation": out / "rank_corr.json", "table": out / "rank_corr.txt",
                        "scatter plot": out / "scatter.png"})
    else:
        log.info("[5/5] no ground truth found: rank correlation skipped (pass --gt)")
    log.info("done in %.1f min", (time.time() - t0) / 60)
    for name, path in outputs.items():
        print(f"{name:>18}: {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
