"""Standalone training of one arch code; ends by writing its top-1 as a ground-truth record.

The organisers' command works unchanged (ImageNet when --image_dir is given):
  python -m paddle.distributed.launch --gpus 0,1,2,3 pretrain.py run --arch 1322...0000 \
      --image_dir /data/ILSVRC2012/ --batch_size 1024 --max_epoch 90 --warmup 2
Without --image_dir it trains on the Fashion-MNIST proxy (../shared/docs/PROXY.md) with its recipe.
--batch_size is the global batch; the learning rate is given per 256 images and scaled with it.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

import supernet  # noqa: F401  (sets CPU threads before paddle is imported)
import paddle
import paddle.nn.functional as F

from supernet import archfile, checkpoint, groundtruth
from supernet.archfile import ArchFileError
from supernet.cli import (ArgumentParser, entry_point, fail, fraction, nonneg_float, nonneg_int, positive_float,
                          positive_int, writable_file)
from supernet.data import DataError, build_loaders
from supernet.outputs import FolderLock, OutputError, resolved
from supernet.resnet import ResNet48, load_weights
from supernet.runtime import JsonLog, atomic_write_json, setup
from supernet.space import WIDTH_DIVISORS, ArchCodeError, NetConfig, parse_code
from supernet.supernet_train import net_config
from supernet.train import (Amp, Diverged, FitConfig, WarmupCosine, build_optimizer, evaluate, evaluate_metrics, fit,
                           zero_init_last_bn)

log = logging.getLogger("pretrain")

# Recipes per dataset; command-line flags override. lr is per 256 images.
RECIPES = {
    "fmnist": dict(batch_size=256, max_epoch=2, warmup=0.5, lr=0.05, weight_decay=5e-4, label_smoothing=0.0),
    "imagenet": dict(batch_size=1024, max_epoch=90, warmup=2, lr=0.1, weight_decay=1e-4, label_smoothing=0.1),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train one code standalone")
    r.add_argument("--arch", required=True, help="52- or 51-character arch code")
    r.add_argument("--dataset", choices=["fmnist", "imagenet"], help="default: imagenet if --image_dir, else fmnist")
    r.add_argument("--image_dir", help="ImageNet root with train/ and val/ (or list files)")
    r.add_argument("--train_list", help="PaddleClas list file ('path label' lines, relative to --image_dir)")
    r.add_argument("--val_list")
    r.add_argument("--data_dir", help="folder with the Fashion-MNIST IDX files (default: found or fetched)")
    r.add_argument("--batch_size", type=positive_int, help="global batch size")
    r.add_argument("--max_epoch", type=positive_int)
    r.add_argument("--warmup", type=nonneg_float, help="warm-up epochs")
    r.add_argument("--lr", type=positive_float, help="peak learning rate per 256 images")
    r.add_argument("--momentum", type=fraction, default=0.9)
    r.add_argument("--no_nesterov", action="store_true")
    r.add_argument("--weight_decay", type=nonneg_float)
    r.add_argument("--label_smoothing", type=fraction)
    r.add_argument("--width_divisor", type=int, choices=WIDTH_DIVISORS,
                   help="proxy width divisor (default 8 for fmnist, 1 for imagenet)")
    r.add_argument("--train_images", type=positive_int, help="train on a fixed, seeded subset of this many images")
    r.add_argument("--val_images", type=positive_int, help="evaluate on a fixed, seeded subset")
    r.add_argument("--num_workers", type=nonneg_int, default=4)
    r.add_argument("--seed", type=nonneg_int, default=0)
    r.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"], help="auto, cpu or gpu")
    r.add_argument("--no_amp", action="store_true", help="disable AMP on GPU")
    r.add_argument("--init", help="initialise from a (wider) checkpoint with official names, e.g. resnet48.pdparams")
    r.add_argument("--output_dir", help="default output/pretrain/<code>_s<seed>")
    r.add_argument("--resume", action="store_true", help="continue from the newest good checkpoint")
    r.add_argument("--save_every_steps", type=nonneg_int, default=0, help="also checkpoint every N steps")
    r.add_argument("--eval_every", type=nonneg_int, default=1, help="evaluate every N epochs (0: only at the end)")
    r.add_argument("--gt_file", help="merge the final result into this ground-truth JSON (created if absent)")
    r.add_argument("--gt_key", help="key for the record (default: the code's key in the GT or official 45k file)")
    r.add_argument("--arch_list", help="official 45k JSON used to find the code's key (default ../shared/data)")
    return p.parse_args(argv)


def resolve(args: argparse.Namespace) -> NetConfig:
    """Fill the dataset's recipe into the options left unset; the network they describe."""
    args.dataset = args.dataset or ("imagenet" if args.image_dir else "fmnist")
    for k, v in RECIPES[args.dataset].items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    return net_config({"dataset": args.dataset, "width_divisor": args.width_divisor})


def protocol(args: argparse.Namespace, cfg: NetConfig) -> dict:
    """The settings that make this run's accuracy comparable with another's (see supernet/groundtruth.py)."""
    return groundtruth.normalise({**vars(args), "nesterov": not args.no_nesterov, "width_divisor": cfg.width_divisor,
                                  "input_size": cfg.input_size})


def check_gt_file(args: argparse.Namespace, arch, cfg: NetConfig) -> str:
    """The GT key of this run, after checking that the result can be merged (before any training).
    ``args.gt_file`` becomes the resolved path: through a symbolic link the real file gets the record,
    and runs through two names of one file share its lock."""
    args.gt_file = str(resolved(args.gt_file))
    problem = writable_file(args.gt_file, "--gt_file")
    if problem:
        raise ArchFileError(problem)
    key = args.gt_key or archfile.lookup_key(arch.code, args.gt_file, archfile.official_45k_path(args.arch_list)) \
        or arch.code
    groundtruth.check_record_slot(args.gt_file, key, arch)
    groundtruth.bind_protocol(args.gt_file, protocol(args, cfg), write=False)
    return key


@entry_point
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        arch = parse_code(args.arch)
    except ArchCodeError as e:
        return fail(f"--arch: {e}")
    cfg = resolve(args)
    dataset = args.dataset
    gt_key = None
    if args.gt_file:
        try:
            gt_key = check_gt_file(args, arch, cfg)
        except ArchFileError as e:
            return fail(str(e))
    ctx = setup(args.device, args.seed)
    if args.batch_size % ctx.world:
        return fail(f"--batch_size {args.batch_size} is not divisible by the {ctx.world} processes")
    out = Path(args.output_dir or f"output/pretrain/{arch.code}_s{args.seed}")
    try:
        lock = FolderLock(out, f"pretrain.r{ctx.rank}").acquire()  # held until the process ends
    except OutputError as e:
        return fail(str(e))
    try:
        return train_run(args, arch, cfg, ctx, out, gt_key)
    finally:
        lock.release()


def train_run(args: argparse.Namespace, arch, cfg: NetConfig, ctx, out: Path, gt_key: str | None) -> int:
    """Train, evaluate and record one run into ``out`` (held by the caller)."""
    dataset = args.dataset
    try:
        train, val = build_loaders(dataset, args.batch_size // ctx.world, args.seed, ctx.rank, ctx.world,
                                   data_dir=args.data_dir, image_dir=args.image_dir, train_list=args.train_list,
                                   val_list=args.val_list, train_images=args.train_images,
                                   val_images=args.val_images, num_workers=args.num_workers,
                                   input_size=cfg.input_size)
    except DataError as e:
        return fail(str(e))
    if len(train) == 0:
        return fail(f"--batch_size {args.batch_size}: fewer training images than one global batch")

    model = ResNet48.from_code(arch, cfg)
    zero_init_last_bn(model)
    if args.init:
        try:
            load_weights(model, args.init, allow_slice=True)
        except (OSError, ValueError) as e:
            return fail(f"--init: {e}")
    steps = len(train) * args.max_epoch
    sched = WarmupCosine(args.lr * args.batch_size / 256, int(args.warmup * len(train)), steps)
    opt = build_optimizer(model, sched, args.momentum, not args.no_nesterov, args.weight_decay)
    amp = Amp(ctx.on_gpu and not args.no_amp)
    net = paddle.DataParallel(model) if ctx.world > 1 else model
    run_desc = {k: v for k, v in vars(args).items() if k not in ("resume", "output_dir", "num_workers", "device",
                                                                "eval_every", "gt_file", "gt_key", "arch_list")}
    run_desc.update(arch=arch.code, dataset=dataset)
    # The process count is not part of the run (data order and global batch do not depend on it), so a run
    # resumes on another GPU count; checkpoints written when it was part of the identity are still accepted.
    fp = checkpoint.fingerprint(run_desc)
    legacy = (checkpoint.fingerprint({**run_desc, "world": ctx.world}),)
    try:
        checkpoint.check_start(out / "checkpoints", fp, args.resume, legacy)  # before anything in ``out`` is rewritten
    except checkpoint.CheckpointError as e:
        return fail(str(e))
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "args.json", {**run_desc, "world": ctx.world})
    log.info("training %s on %s: %d steps/epoch x %d epochs, global batch %d, peak lr %.4f, %d process(es) on %s",
             arch.code, dataset, len(train), args.max_epoch, args.batch_size, sched.peak, ctx.world, ctx.device)

    # Loss and images of the current epoch, kept in the checkpoint so a resumed run reports the same
    # final train loss as an uninterrupted one; a run that saw no image or diverged is refused below.
    tally = {"epoch_loss": 0.0, "epoch_steps": 0, "last_epoch_loss": math.nan, "images": 0}
    pending: list[paddle.Tensor] = []

    def flush() -> None:
        if pending:
            tally["epoch_loss"] += float(paddle.add_n(pending)) if len(pending) > 1 else float(pending[0])
            pending.clear()

    def step_fn(x: paddle.Tensor, y: paddle.Tensor, step: int) -> dict:
        with amp.autocast():
            loss = F.cross_entropy(net(x), y, label_smoothing=args.label_smoothing)
        amp.backward(loss)
        pending.append(loss.detach().astype("float32"))
        tally["epoch_steps"] += 1
        tally["images"] += int(x.shape[0])
        if len(pending) >= 50:
            flush()
        return {"loss": loss}

    def extra_state() -> dict:
        flush()
        return dict(tally)

    def on_epoch_end(epoch: int) -> dict:
        flush()
        tally["last_epoch_loss"] = tally["epoch_loss"] / max(1, tally["epoch_steps"])
        tally["epoch_loss"], tally["epoch_steps"] = 0.0, 0
        if not math.isfinite(tally["last_epoch_loss"]):
            raise Diverged(f"training diverged: mean loss of epoch {epoch} is {tally['last_epoch_loss']}")
        rec = {"train_loss": round(tally["last_epoch_loss"], 5)}
        if args.eval_every and epoch % args.eval_every == 0 and epoch < args.max_epoch:
            rec["top1"] = evaluate(model, val, ctx)
            log.info("epoch %d: train loss %.4f, top-1 %.2f%%", epoch, tally["last_epoch_loss"], rec["top1"])
        return rec

    try:
        fit(model, opt, sched, amp, train, step_fn,
            FitConfig(epochs=args.max_epoch, ckpt_dir=str(out / "checkpoints"), save_every_steps=args.save_every_steps,
                      fingerprint=fp, also_accept=legacy, resume=args.resume),
            ctx, JsonLog(out / "log.jsonl" if ctx.is_main else None), extra_state=extra_state,
            load_extra=lambda s: tally.update(s), on_epoch_end=on_epoch_end)
    except Diverged as e:
        log.error("%s; nothing is written as a result", e)
        return 1
    except DataError as e:
        return fail(f"{e}; the run is not a result and nothing is written")
    except checkpoint.CheckpointError as e:
        return fail(str(e))
    final = evaluate_metrics(model, val, ctx, desc="final eval")
    metrics = {"top1": final["top1"], "ce": final["ce"], "train_loss": tally["last_epoch_loss"],
               "train_images": tally["images"], "val_images": final["images"]}
    source = f"--image_dir {args.image_dir}" if dataset == "imagenet" else "the Fashion-MNIST files"
    if tally["images"] == 0 or final["images"] == 0:
        return fail(f"{source}: no {'training' if tally['images'] == 0 else 'evaluation'} image could be read; "
                    "the run is not a result and nothing is written")
    if not all(math.isfinite(metrics[k]) for k in ("top1", "ce", "train_loss")):
        log.error("non-finite result %s: the run is not a result; nothing is written", metrics)
        return 1
    log.info("final top-1 of %s: %.2f%% (test CE %.4f, last-epoch train loss %.4f)", arch.code, final["top1"],
             final["ce"], tally["last_epoch_loss"])
    if ctx.is_main:
        paddle.save(model.state_dict(), str(out / "model.pdparams"))
        result = {"arch": arch.code, "acc": final["top1"], "seed": args.seed, "dataset": dataset, **metrics}
        atomic_write_json(out / "result.json", result)
        if args.gt_file:
            try:
                rec = groundtruth.merge_record(args.gt_file, gt_key, arch, args.seed, metrics, protocol(args, cfg))
            except (ArchFileError, ValueError) as e:
                return fail(f"{e} (the run's result is kept in {out / 'result.json'})")
            log.info("ground truth %s: %s = %s", args.gt_file, gt_key, json.dumps(rec))
        log.info("outputs in %s (model.pdparams, result.json, log.jsonl)", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
