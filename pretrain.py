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
import sys
from pathlib import Path

import supernet  # noqa: F401  (sets CPU threads before paddle is imported)
import paddle
import paddle.nn.functional as F

from supernet import archfile, checkpoint
from supernet.data import DataError, build_loaders
from supernet.resnet import ResNet48, load_weights
from supernet.runtime import JsonLog, atomic_write_json, setup
from supernet.space import FMNIST28, IMAGENET, ArchCodeError, NetConfig, parse_code
from supernet.train import Amp, FitConfig, WarmupCosine, build_optimizer, evaluate, fit, zero_init_last_bn

log = logging.getLogger("pretrain")

# Recipes per dataset; command-line flags override. lr is per 256 images.
RECIPES = {
    "fmnist": dict(batch_size=256, max_epoch=12, warmup=1, lr=0.05, weight_decay=5e-4, label_smoothing=0.0),
    "imagenet": dict(batch_size=1024, max_epoch=90, warmup=2, lr=0.1, weight_decay=1e-4, label_smoothing=0.1),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train one code standalone")
    r.add_argument("--arch", required=True, help="52- or 51-character arch code")
    r.add_argument("--dataset", choices=["fmnist", "imagenet"], help="default: imagenet if --image_dir, else fmnist")
    r.add_argument("--image_dir", help="ImageNet root with train/ and val/ (or list files)")
    r.add_argument("--train_list", help="PaddleClas list file ('path label' lines, relative to --image_dir)")
    r.add_argument("--val_list")
    r.add_argument("--data_dir", help="folder with the Fashion-MNIST IDX files (default: found or fetched)")
    r.add_argument("--batch_size", type=int, help="global batch size")
    r.add_argument("--max_epoch", type=int)
    r.add_argument("--warmup", type=float, help="warm-up epochs")
    r.add_argument("--lr", type=float, help="peak learning rate per 256 images")
    r.add_argument("--momentum", type=float, default=0.9)
    r.add_argument("--no_nesterov", action="store_true")
    r.add_argument("--weight_decay", type=float)
    r.add_argument("--label_smoothing", type=float)
    r.add_argument("--width_divisor", type=int, help="proxy width divisor (default 4 for fmnist, 1 for imagenet)")
    r.add_argument("--train_images", type=int, help="train on a fixed, seeded subset of this many images")
    r.add_argument("--val_images", type=int, help="evaluate on a fixed, seeded subset")
    r.add_argument("--num_workers", type=int, default=4)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--device", default="auto", help="auto, cpu or gpu")
    r.add_argument("--no_amp", action="store_true", help="disable AMP on GPU")
    r.add_argument("--init", help="initialise from a (wider) checkpoint with official names, e.g. resnet48.pdparams")
    r.add_argument("--output_dir", help="default output/pretrain/<code>_s<seed>")
    r.add_argument("--resume", action="store_true", help="continue from the newest good checkpoint")
    r.add_argument("--save_every_steps", type=int, default=0, help="also checkpoint every N steps")
    r.add_argument("--eval_every", type=int, default=1, help="evaluate every N epochs (0: only at the end)")
    r.add_argument("--gt_file", help="merge the final top-1 into this ground-truth JSON (created if absent)")
    r.add_argument("--gt_key", help="key for the record (default: the code's key in the GT or official 45k file)")
    r.add_argument("--arch_list", help="official 45k JSON used to find the code's key (default ../shared/data)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        arch = parse_code(args.arch)
    except ArchCodeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    dataset = args.dataset or ("imagenet" if args.image_dir else "fmnist")
    for k, v in RECIPES[dataset].items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    base = FMNIST28 if dataset == "fmnist" else IMAGENET
    cfg = NetConfig(base.in_channels, base.num_classes, args.width_divisor or base.width_divisor, base.stem,
                    base.input_size)
    ctx = setup(args.device, args.seed)
    if args.batch_size % ctx.world:
        log.error("--batch_size %d is not divisible by the %d processes", args.batch_size, ctx.world)
        return 2
    out = Path(args.output_dir or f"output/pretrain/{arch.code}_s{args.seed}")
    try:
        train, val = build_loaders(dataset, args.batch_size // ctx.world, args.seed, ctx.rank, ctx.world,
                                   data_dir=args.data_dir, image_dir=args.image_dir, train_list=args.train_list,
                                   val_list=args.val_list, train_images=args.train_images,
                                   val_images=args.val_images, num_workers=args.num_workers,
                                   input_size=cfg.input_size)
    except DataError as e:
        log.error("%s", e)
        return 2
    if len(train) == 0:
        log.error("fewer training images than one global batch (%d)", args.batch_size)
        return 2

    model = ResNet48.from_code(arch, cfg)
    zero_init_last_bn(model)
    if args.init:
        load_weights(model, args.init, allow_slice=True)
    steps = len(train) * args.max_epoch
    sched = WarmupCosine(args.lr * args.batch_size / 256, int(args.warmup * len(train)), steps)
    opt = build_optimizer(model, sched, args.momentum, not args.no_nesterov, args.weight_decay)
    amp = Amp(ctx.on_gpu and not args.no_amp)
    net = paddle.DataParallel(model) if ctx.world > 1 else model
    run_desc = {k: v for k, v in vars(args).items() if k not in ("resume", "output_dir", "num_workers", "device",
                                                                "eval_every", "gt_file", "gt_key", "arch_list")}
    run_desc.update(arch=arch.code, world=ctx.world, dataset=dataset)
    fp = checkpoint.fingerprint(run_desc)
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "args.json", run_desc)
    log.info("training %s on %s: %d steps/epoch x %d epochs, global batch %d, peak lr %.4f, %d process(es) on %s",
             arch.code, dataset, len(train), args.max_epoch, args.batch_size, sched.peak, ctx.world, ctx.device)

    def step_fn(x: paddle.Tensor, y: paddle.Tensor, step: int) -> dict:
        with amp.autocast():
            loss = F.cross_entropy(net(x), y, label_smoothing=args.label_smoothing)
        amp.backward(loss)
        return {"loss": loss}

    def on_epoch_end(epoch: int) -> dict:
        if args.eval_every and epoch % args.eval_every == 0 and epoch < args.max_epoch:
            acc = evaluate(model, val, ctx)
            log.info("epoch %d: top-1 %.2f%%", epoch, acc)
            return {"top1": acc}
        return {}

    fit(model, opt, sched, amp, train, step_fn,
        FitConfig(epochs=args.max_epoch, ckpt_dir=str(out / "checkpoints"), save_every_steps=args.save_every_steps,
                  fingerprint=fp, resume=args.resume),
        ctx, JsonLog(out / "log.jsonl" if ctx.is_main else None), on_epoch_end=on_epoch_end)
    top1 = evaluate(model, val, ctx, desc="final eval")
    log.info("final top-1 of %s: %.2f%%", arch.code, top1)
    if ctx.is_main:
        paddle.save(model.state_dict(), str(out / "model.pdparams"))
        result = {"arch": arch.code, "acc": top1, "seed": args.seed, "dataset": dataset}
        atomic_write_json(out / "result.json", result)
        if args.gt_file:
            key = args.gt_key or archfile.lookup_key(arch.code, args.gt_file, archfile.official_45k_path(args.arch_list)) \
                or arch.code
            rec = archfile.merge_gt_record(args.gt_file, key, arch, top1, args.seed)
            log.info("ground truth %s: %s = %s", args.gt_file, key, json.dumps(rec))
        log.info("outputs in %s (model.pdparams, result.json, log.jsonl)", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
