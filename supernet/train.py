"""Training pieces shared by standalone training (pretrain.py) and supernet training.

``fit`` owns the loop: epochs, the per-step learning rate, the optimizer step, AMP, logging,
checkpoints every epoch and every N steps, and exact resume. What happens inside a step
(one network, or a sandwich of subnets) is the caller's ``step_fn``.
"""
from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol

import paddle
import paddle.distributed as dist
import paddle.nn as nn
import paddle.nn.functional as F
from tqdm import tqdm

from . import checkpoint
from .data import as_float32
from .runtime import Context, JsonLog, broadcast_state, ranks_agree

log = logging.getLogger(__name__)


class WarmupCosine(paddle.optimizer.lr.LRScheduler):
    """Linear warm-up to ``peak`` over ``warmup_steps``, then cosine to 0 at ``total_steps``; stepped per batch."""

    def __init__(self, peak: float, warmup_steps: int, total_steps: int, last_epoch: int = -1) -> None:
        self.peak, self.warmup_steps, self.total_steps = peak, warmup_steps, max(1, total_steps)
        super().__init__(peak, last_epoch)

    def get_lr(self) -> float:
        s = self.last_epoch
        if s < self.warmup_steps:
            return self.peak * (s + 1) / self.warmup_steps
        t = min(1.0, (s - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        return 0.5 * self.peak * (1 + math.cos(math.pi * t))


def build_optimizer(model: nn.Layer, scheduler: WarmupCosine, momentum: float = 0.9, nesterov: bool = True,
                    weight_decay: float = 5e-4, grad_clip: float | None = None) -> paddle.optimizer.Optimizer:
    """SGD with momentum; weight decay on conv/linear weights only (not BN, not biases)."""
    params = [p for p in model.parameters() if not p.stop_gradient]
    decay = [p for p in params if len(p.shape) >= 2]
    no_decay = [p for p in params if len(p.shape) < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    clip = nn.ClipGradByGlobalNorm(grad_clip) if grad_clip else None
    return paddle.optimizer.Momentum(learning_rate=scheduler, momentum=momentum, parameters=groups,
                                     use_nesterov=nesterov, grad_clip=clip)


def zero_init_last_bn(model: nn.Layer) -> None:
    """Zero the gamma of every block's last BN, so each residual block starts as the identity."""
    for name, layer in model.named_sublayers():
        if name.endswith(".bn2"):
            layer.weight.set_value(paddle.zeros_like(layer.weight))


def soft_cross_entropy(logits: paddle.Tensor, target_probs: paddle.Tensor) -> paddle.Tensor:
    """Cross-entropy against soft targets (in-place distillation / teacher)."""
    return -(target_probs * F.log_softmax(logits, axis=-1)).sum(axis=-1).mean()


class Amp:
    """AMP (float16 autocast + loss scaling) on GPU; a no-op on CPU."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.scaler = paddle.amp.GradScaler(init_loss_scaling=2.0 ** 15) if enabled else None

    def autocast(self) -> contextlib.AbstractContextManager:
        return paddle.amp.auto_cast(level="O1") if self.enabled else contextlib.nullcontext()

    def backward(self, loss: paddle.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def step(self, opt: paddle.optimizer.Optimizer) -> None:
        if self.scaler:
            self.scaler.step(opt)
            self.scaler.update()
        else:
            opt.step()
        opt.clear_grad(set_to_zero=False)

    def state_dict(self) -> dict:
        return self.scaler.state_dict() if self.scaler else {}

    def set_state_dict(self, s: dict) -> None:
        if self.scaler and s:
            self.scaler.load_state_dict(s)


def _rename_opt_state(state: dict, mapping: dict[str, str]) -> dict:
    """Rename optimizer accumulator keys ``<param name>_<acc>`` through ``mapping``."""
    out = {}
    names = sorted(mapping, key=len, reverse=True)
    for k, v in state.items():
        src = next((n for n in names if k.startswith(n + "_")), None)
        out[mapping[src] + k[len(src):] if src else k] = v
    return out


def opt_state(model: nn.Layer, opt: paddle.optimizer.Optimizer) -> dict:
    """Optimizer state keyed by structured parameter names (``blocks.3.conv1.weight``), not by the
    process-dependent names Paddle generates, so it loads into any fresh copy of the model."""
    return _rename_opt_state(opt.state_dict(), {p.name: n for n, p in model.named_parameters()})


def load_opt_state(model: nn.Layer, opt: paddle.optimizer.Optimizer, state: dict) -> None:
    opt.set_state_dict(_rename_opt_state(state, {n: p.name for n, p in model.named_parameters()}))


class Batches(Protocol):
    def __len__(self) -> int: ...
    def epoch(self, epoch: int = 0, start: int = 0) -> Iterator[tuple[Any, Any]]: ...


def to_tensors(batch: tuple) -> tuple[paddle.Tensor, paddle.Tensor]:
    """A batch on the device as the network takes it (uint8 ImageNet batches are normalised there)."""
    x, y = batch[0], batch[1]
    x = x if isinstance(x, paddle.Tensor) else paddle.to_tensor(x)
    return as_float32(x), (y if isinstance(y, paddle.Tensor) else paddle.to_tensor(y))


@paddle.no_grad()
def evaluate_metrics(model: nn.Layer, loader: Batches, ctx: Context | None = None, desc: str = "eval") -> dict:
    """Top-1 (percent), mean cross-entropy and the number of images seen; summed over ranks.

    The image count is returned so that a caller can refuse a result computed on no data.
    """
    was_training = model.training
    model.eval()
    correct = paddle.zeros([1], dtype="int64")
    ce_sum = paddle.zeros([1], dtype="float64")
    total = 0
    for batch in tqdm(loader.epoch(0), total=len(loader), desc=desc, leave=False,
                      disable=ctx is not None and not ctx.is_main):
        x, y = to_tensors(batch)
        logits = model(x)
        correct += (logits.argmax(axis=-1) == y).astype("int64").sum()
        ce_sum += F.cross_entropy(logits.astype("float32"), y, reduction="sum").astype("float64")
        total += len(batch[1])
    sums = paddle.to_tensor([float(correct.item()), float(ce_sum.item()), float(total)], dtype="float64")
    if ctx is not None and ctx.world > 1:
        dist.all_reduce(sums)
    model.train(was_training)
    c, ce, t = sums.numpy().tolist()
    return {"top1": 100.0 * c / max(1.0, t), "ce": ce / max(1.0, t), "images": int(t)}


def evaluate(model: nn.Layer, loader: Batches, ctx: Context | None = None, desc: str = "eval") -> float:
    """Top-1 accuracy in percent; summed over ranks when distributed."""
    return evaluate_metrics(model, loader, ctx, desc)["top1"]


class Diverged(RuntimeError):
    """The training loss became NaN or infinite: the run stops, and no weights are saved from it."""


@dataclass
class FitConfig:
    epochs: int
    ckpt_dir: str
    save_every_steps: int = 0  # 0: only at the end of each epoch
    keep: int = 3
    log_every: int = 20
    fingerprint: str = ""
    also_accept: tuple[str, ...] = ()  # earlier fingerprints of the same run (see checkpoint.load_latest)
    resume: bool = False
    max_steps: int | None = None  # stop early (tests, simulated kills); not a schedule change


def check_same_resume(ctx: Context, step: int, sha256: str, ckpt_dir: str) -> None:
    """Refuse a resume whose ranks found different checkpoints (or none on some): only rank 0 writes them,
    so with node-local output folders the other nodes would start from another step, or from scratch."""
    if ctx.world == 1:
        return
    digest = int(sha256[:15], 16) if sha256 else 0
    if not (ranks_agree(ctx, step) and ranks_agree(ctx, digest)):
        raise checkpoint.CheckpointError(
            f"the processes found different checkpoints in {ckpt_dir} (this one: step {step}): the output folder "
            "must be one folder shared by every node (a network filesystem), not a local folder per node")


@dataclass
class FitResult:
    epoch: int
    step: int
    history: list[dict] = field(default_factory=list)


def fit(model: nn.Layer, opt: paddle.optimizer.Optimizer, sched: WarmupCosine, amp: Amp, loader: Batches,
        step_fn: Callable[[paddle.Tensor, paddle.Tensor, int], dict[str, paddle.Tensor]], cfg: FitConfig,
        ctx: Context, jlog: JsonLog, extra_state: Callable[[], dict] | None = None,
        load_extra: Callable[[dict], None] | None = None,
        on_epoch_end: Callable[[int], dict] | None = None) -> FitResult:
    """Run ``step_fn`` over ``loader`` for ``cfg.epochs``, resumable from ``cfg.ckpt_dir``.

    ``step_fn(x, y, step)`` does the forward/backward passes of one step and returns losses; the
    optimizer step, LR schedule and checkpointing happen here. Batches and augmentation depend only
    on (seed, epoch, batch), so resuming from a mid-epoch checkpoint replays exactly.
    """
    steps_per_epoch = len(loader)
    epoch, start, step = 0, 0, 0
    if cfg.resume:
        found = checkpoint.load_latest(cfg.ckpt_dir, cfg.fingerprint, cfg.also_accept)
        sha = ""
        if found:
            state, meta = found
            model.set_state_dict(state["model"])
            load_opt_state(model, opt, state["opt"])
            sched.set_state_dict(state["sched"])
            amp.set_state_dict(state.get("amp", {}))
            if load_extra:
                load_extra(state.get("extra", {}))
            step, sha = int(meta["step"]), str(meta.get("sha256", ""))
            epoch, start = divmod(step, steps_per_epoch)
        check_same_resume(ctx, step, sha, cfg.ckpt_dir)
        broadcast_state(ctx, model)

    def save(ep: int) -> None:
        if not ctx.is_main:
            return
        state = {"model": model.state_dict(), "opt": opt_state(model, opt), "sched": sched.state_dict(),
                 "amp": amp.state_dict(), "extra": extra_state() if extra_state else {}}
        checkpoint.save(cfg.ckpt_dir, state, step, {"epoch": ep, "fingerprint": cfg.fingerprint}, cfg.keep)

    # Non-finite losses are counted on the device (no host sync per step) and checked wherever
    # something is logged or saved, so no checkpoint and no final weights come from a diverged run.
    bad = paddle.zeros([1], dtype="int64")

    def check_finite() -> None:
        if int(bad.item()):
            raise Diverged(f"training diverged: a non-finite loss by step {step} (the last checkpoint before it "
                           f"is kept in {cfg.ckpt_dir}; lower train.lr or set train.grad_clip)")

    result = FitResult(epoch=epoch, step=step)
    model.train()
    while epoch < cfg.epochs:
        t0, n_img = time.time(), 0
        bar = tqdm(loader.epoch(epoch, start), total=steps_per_epoch, initial=start, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   disable=not ctx.is_main, dynamic_ncols=True)
        for batch in bar:
            x, y = to_tensors(batch)
            losses = step_fn(x, y, step)
            for v in losses.values():
                bad += paddle.logical_not(paddle.isfinite(v.astype("float32"))).astype("int64").sum()
            amp.step(opt)
            sched.step()
            step += 1
            n_img += len(batch[1]) * ctx.world
            if step % cfg.log_every == 0 or step % steps_per_epoch == 0:
                check_finite()
                rec = {k: round(float(v), 5) for k, v in losses.items()}
                rec.update(step=step, epoch=epoch, lr=sched.last_lr, img_per_s=round(n_img / (time.time() - t0), 1))
                if ctx.on_gpu:  # a host-side counter: no device sync
                    rec["max_mem_gib"] = round(paddle.device.cuda.max_memory_allocated() / 2**30, 3)
                bar.set_postfix({k: rec[k] for k in list(losses)[:3]})
                if ctx.is_main:
                    jlog.write(kind="train", **rec)
            if cfg.save_every_steps and step % cfg.save_every_steps == 0 and step % steps_per_epoch:
                check_finite()
                save(epoch)
            if cfg.max_steps is not None and step >= cfg.max_steps:
                check_finite()
                result.epoch, result.step = epoch, step
                return result
        bar.close()
        check_finite()
        epoch, start = epoch + 1, 0
        rec = on_epoch_end(epoch) if on_epoch_end else {}
        if rec and ctx.is_main:
            jlog.write(kind="epoch", epoch=epoch, step=step, **rec)
            result.history.append({"epoch": epoch, **rec})
        save(epoch)
    result.epoch, result.step = epoch, step
    return result
