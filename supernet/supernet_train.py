"""Supernet training: the sandwich rule with in-place distillation, on any number of processes.

Each step trains a list of subnets on the same batch (largest, smallest, N random), accumulating
gradients, then takes one optimizer step (in ``train.fit``). The list is a pure function of
(seed, step), so every rank samples the same subnets without communicating, and a resumed run
samples what the uninterrupted one would have.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import hashlib
import json
import logging
import math
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import paddle
import paddle.nn.functional as F

from . import checkpoint, fewshot
from .zero_cost import NEEDS_BATCH, ZeroCostSettings, score_all
from .bn_calib import calibration_set, preserved_bn_stats, recalibrate
from .config import dump, load_config, non_default
from .data import build_loaders
from .resnet import ResNet48, SuperNet, load_weights
from .runtime import Context, JsonLog, atomic_write_bytes, ranks_agree
from .sorting import sort_channels
from .space import IMAGENET, Arch, NetConfig, SearchSpace, count_cost, get_space, network, parse_code
from .train import (Amp, FitConfig, WarmupCosine, build_optimizer, evaluate, evaluate_metrics, fit,
                    soft_cross_entropy, zero_init_last_bn)

log = logging.getLogger(__name__)


def net_config(model_cfg: dict) -> NetConfig:
    """The NetConfig of a config's ``model`` section (the proxy or ImageNet)."""
    return network(model_cfg["dataset"], model_cfg.get("width_divisor"))


@dataclass(frozen=True)
class Sampled:
    kind: str  # largest | smallest | random
    arch: Arch


def sandwich(space: SearchSpace, sw: dict, seed: int, step: int, cfg: NetConfig = IMAGENET) -> list[Sampled]:
    """The subnets of one step: a pure function of (seed, step), identical on every rank.

    With ``bias_pool`` > 0 the random subnets are the ``num_random`` largest (by MACs under ``cfg``) of
    that many uniform samples, and every ``bias_random_every``-th step adds one uniform random subnet:
    the 1st-place solution's bias towards large subnets (4 largest of 400, a random one every 3rd step).
    """
    rng = random.Random(f"sandwich-{seed}-{step}")
    out = []
    if sw["largest"]:
        out.append(Sampled("largest", space.largest()))
    if sw["smallest"]:
        out.append(Sampled("smallest", space.smallest()))
    if sw.get("bias_pool"):
        pool = [space.sample(rng) for _ in range(sw["bias_pool"])]
        pool.sort(key=lambda a: count_cost(a, cfg).macs, reverse=True)
        out += [Sampled("random", a) for a in pool[: sw["num_random"]]]
        every = sw.get("bias_random_every", 0)
        if every and step % every == 0:
            out.append(Sampled("random", space.sample(rng)))
    else:
        out += [Sampled("random", space.sample(rng)) for _ in range(sw["num_random"])]
    if not out:
        raise ValueError("the sandwich samples no subnet: enable largest/smallest or set num_random > 0")
    return out


def progressive_space(space: SearchSpace, ps: dict, progress: float) -> SearchSpace | None:
    """The part of ``space`` open at ``progress`` (fraction of the training steps) under progressive
    shrinking (once-for-all): None while only the full network trains (``progress < full_until``); then,
    until ``depth_until``, the widest widths with depth opened from the deepest setting down in equal steps
    (each stage's lowest open depth falls from its maximum to its minimum); then the whole space."""
    full, depth = ps["full_until"], max(ps["depth_until"], ps["full_until"])
    if progress < full:
        return None
    if progress >= depth:
        return space
    u = (progress - full) / (depth - full)
    ranges = tuple((max(lo, hi - int(u * (hi - lo + 1))), hi) for lo, hi in space.depth_ranges)
    widest = min(space.stem_codes)
    return dataclasses.replace(space, name=f"{space.name}@depth{[r[0] for r in ranges]}", stem_codes=(widest,),
                               stage_codes=tuple((min(c),) for c in space.stage_codes), depth_ranges=ranges)


def subnets_at(space: SearchSpace, sw: dict, ps: dict, seed: int, step: int, steps: int,
               cfg: NetConfig = IMAGENET) -> list[Sampled]:
    """The sandwich of ``step``, within the part of ``space`` progressive shrinking has opened by then
    (the whole space when it is off): a pure function of (seed, step), like ``sandwich``."""
    if not (ps["full_until"] or ps["depth_until"]):
        return sandwich(space, sw, seed, step, cfg)
    open_space = progressive_space(space, ps, step / max(1, steps))
    if open_space is None:
        return [Sampled("largest", space.largest())]
    return sandwich(open_space, sw, seed, step, cfg)


class SandwichAhead:
    """``sandwich`` of step s + 1 computed in a thread while step s trains. The sandwich is a pure function of
    (seed, step), so the subnets are exactly those of the direct call (and a resumed run's too)."""

    def __init__(self, fn) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.fn, self.pool, self.ahead = fn, ThreadPoolExecutor(1, thread_name_prefix="sandwich"), None

    def __call__(self, step: int) -> list[Sampled]:
        fut, self.ahead = self.ahead, None
        result = fut[1].result() if fut is not None and fut[0] == step else self.fn(step=step)
        self.ahead = (step + 1, self.pool.submit(self.fn, step=step + 1))
        return result


def macs_rank_loss(loss: paddle.Tensor, prior: float, earlier: list[tuple[float, float]],
                   margin: float) -> paddle.Tensor | None:
    """Margin ranking loss against a zero-cost prior's order (RD-NAS / PGONAS, the challenge's 3rd place).

    ``prior`` is the subnet's prior on a log scale (ln MACs by default; see ``rank_prior``), ``earlier``
    holds (loss, prior) of the subnets already run this step on the same batch. For each pair, the
    subnet with the higher prior should have the lower loss by ``margin * |prior difference|`` (for
    MACs: per unit of |ln(MACs ratio)|); only this subnet gets the gradient (the others' losses are
    numbers), so each subnet still has its own backward pass (memory, and DataParallel's
    one-backward-per-forward). The prior is a zero-cost teacher: ground truth never enters it. None
    when no pair differs in the prior.
    """
    terms = []
    for other_loss, other_prior in earlier:
        if other_prior == prior:
            continue
        sign = 1.0 if prior > other_prior else -1.0
        terms.append(F.relu(sign * (loss - other_loss) + margin * abs(prior - other_prior)))
    return paddle.add_n(terms) / len(terms) if terms else None


def rank_weight_at(sw: dict, epoch: float) -> float:
    """The ranking loss's weight at (fractional) ``epoch``: constant, or with ``rank_ramp_epochs`` > 0
    ramped linearly from 0 to ``rank_weight`` over that many epochs (PGONAS, 3rd place: min(2, epoch / 10)
    is rank_weight 2 with rank_ramp_epochs 20)."""
    ramp = sw["rank_ramp_epochs"]
    return sw["rank_weight"] * (min(1.0, epoch / ramp) if ramp else 1.0)


LOG_SCALE_PRIORS = ("zen", "naswot")  # already logarithms; the others are positive and taken as ln


def rank_prior(name: str, cfg: NetConfig, batch: tuple | None = None, seed: int = 0):
    """arch -> the ranking loss's prior on a log scale, computed once per code (cached): ln MACs,
    ln params, ln depth (the number of blocks: codes of equal depth tie, so the loss leaves their order
    to the supernet), or a zero-cost predictor of the standalone network at random init (supernet/zero_cost.py;
    ``batch`` is the labelled batch NASWOT, grad-norm and SNIP need). Paddle's global random state is
    restored after each computation, so training (and its exact resume) is unaffected."""
    def value(arch: Arch) -> float:
        if name in ("macs", "params"):
            return math.log(float(getattr(count_cost(arch, cfg), name)))
        if name == "depth":
            return math.log(float(arch.depth))
        state = paddle.get_rng_state()
        try:
            shape = [len(batch[1]) if batch is not None else 16, cfg.in_channels, cfg.input_size, cfg.input_size]
            v = score_all(lambda: ResNet48.from_code(arch, cfg), lambda m, x: m.forward_features(x),
                          [batch] if batch is not None else [(None, None)], shape,
                          ZeroCostSettings(shape[0], 1, seed), [name])[name]
        finally:
            paddle.set_rng_state(state)
        if name in LOG_SCALE_PRIORS:
            return v
        return math.log(max(v, 1e-300))
    return functools.lru_cache(maxsize=None)(value)


def _codes_hash(subnets: list[Sampled]) -> int:
    return int(hashlib.sha256("".join(s.arch.code for s in subnets).encode()).hexdigest()[:12], 16)


def build_teacher(sw: dict, cfg: NetConfig) -> ResNet48 | None:
    if not sw["teacher"]:
        return None
    code = sw["teacher_code"] or SuperNet.full_code()
    teacher = ResNet48.from_code(parse_code(code), cfg)
    load_weights(teacher, sw["teacher"], what=f"teacher checkpoint {sw['teacher']}")
    teacher.eval()
    for p in teacher.parameters():
        p.stop_gradient = True
    return teacher


_BOOKKEEPING = ("output_dir", "save_every_steps", "log_every", "keep_checkpoints")


def run_identity(cfg: dict) -> dict:
    """What makes two configs the same training run: every value that is not at its default,
    bookkeeping (output folder, checkpoint and log cadence) left out."""
    same = dict(cfg)
    same["train"] = {k: v for k, v in cfg["train"].items() if k not in _BOOKKEEPING}
    return non_default(same)


def finished(out: Path, cfg: dict) -> bool:
    """True when ``out`` holds the final weights of this very run (so resuming has nothing to do)."""
    weights, saved = out / "supernet.pdparams", out / "supernet.yaml"
    return weights.is_file() and saved.is_file() and run_identity(load_config(saved)) == run_identity(cfg)


def train_supernet(cfg: dict, ctx: Context, resume: bool = False, max_steps: int | None = None) -> Path:
    """Train a supernet as ``cfg`` says; returns the output folder (checkpoints, logs, final weights)."""
    m, d, t, sw = cfg["model"], cfg["data"], cfg["train"], cfg["sandwich"]
    ncfg = net_config(m)
    space = get_space(sw["space"])
    if sw["depth_sampling"] != "uniform":
        space = dataclasses.replace(space, name=f"{space.name}+{sw['depth_sampling']}", depth_bias=sw["depth_sampling"])
    if sw["width_sampling"] != "uniform":
        space = dataclasses.replace(space, name=f"{space.name}+{sw['width_sampling']}", width_bias=sw["width_sampling"])
    rules, group = fewshot.parse_rules(cfg["fewshot"]["split_on"]), cfg["fewshot"]["group"]
    if group is not None:
        if not rules:
            raise ValueError("fewshot.group is set but fewshot.split_on is empty")
        space = fewshot.group_space(space, rules, group)  # a few-shot group's run samples only its codes
    out = Path(t["output_dir"])
    if resume and max_steps is None and finished(out, cfg):
        log.info("%s already holds this run's final weights: nothing to train", out)
        return out
    if t["batch_size"] % ctx.world:
        raise ValueError(f"train.batch_size {t['batch_size']} is not divisible by {ctx.world} processes")
    train, val = build_loaders(m["dataset"], t["batch_size"] // ctx.world, t["seed"], ctx.rank, ctx.world,
                               data_dir=d["data_dir"], image_dir=d["image_dir"], train_list=d["train_list"],
                               val_list=d["val_list"], train_images=d["train_images"], val_images=d["val_images"],
                               num_workers=d["num_workers"], input_size=ncfg.input_size)
    if len(train) == 0:
        raise ValueError(f"fewer training images than one global batch ({t['batch_size']})")

    paddle.seed(t["seed"])
    model = SuperNet(ncfg)
    if t["zero_init_last_bn"]:
        zero_init_last_bn(model)
    if m["init"]:
        load_weights(model, m["init"], what=f"model.init {m['init']}")
    teacher = build_teacher(sw, ncfg)
    steps = len(train) * t["epochs"]
    sched = WarmupCosine(t["lr"] * t["batch_size"] / 256, int(t["warmup_epochs"] * len(train)), steps)
    opt = build_optimizer(model, sched, t["momentum"], t["nesterov"], t["weight_decay"], t["grad_clip"])
    amp = Amp(ctx.on_gpu and t["amp"])
    net = paddle.DataParallel(model, find_unused_parameters=True) if ctx.world > 1 else model
    # The process count is not part of the run: the data order, the subnets and the global batch do not
    # depend on it, so a run saved on 8 GPUs resumes on 4 (each then takes a larger share of the batch).
    fp = checkpoint.fingerprint({"run": run_identity(cfg)})
    jlog = JsonLog(out / "log.jsonl" if ctx.is_main else None)
    checkpoint.check_start(out / "checkpoints", fp, resume)  # before anything in ``out`` is rewritten
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out / "config.yaml", dump(cfg).encode())
    watch = GtWatch.load(t["gt_watch"], ncfg, m["dataset"]) if t["gt_watch"] else None
    calib = calibration_set(train, t["calib_batches"], train.batch_size, t["seed"]) \
        if t["eval_codes"] or watch else []
    log.info("supernet on %s: %d steps/epoch x %d epochs, global batch %d, peak lr %.4f, space %s, sandwich %s, "
             "%d process(es) on %s", m["dataset"], len(train), t["epochs"], t["batch_size"], sched.peak, space.name,
             {k: sw[k] for k in ("largest", "smallest", "num_random", "inplace_distill")}, ctx.world, ctx.device)

    # In-place KD from a largest subnet that is still near chance slows everyone's early learning
    # (BENCHMARKS.md), so it can start after a fraction of training.
    distill_from = int(sw["distill_after"] * steps)
    steps_per_epoch = len(train)
    prior_batch = None
    if sw["rank_weight"] and sw["rank_prior"] in NEEDS_BATCH:
        xb, yb = next(iter(train.epoch(0)))
        prior_batch = (np.asarray(xb, np.float32)[:32], np.asarray(yb, np.int64)[:32])
    subnet_prior = rank_prior(sw["rank_prior"], ncfg, prior_batch, t["seed"])

    subnets_of = functools.partial(subnets_at, space, sw, cfg["progressive"], t["seed"], steps=steps, cfg=ncfg)
    if sw["bias_pool"]:  # ranking the pool by MACs is tens of ms of Python per step: done a step ahead
        subnets_of = SandwichAhead(subnets_of)

    sort_every = sw["sort_channels_every"] * steps_per_epoch
    sort_first = sw["sort_channels_at_start"]

    def step_fn(x: paddle.Tensor, y: paddle.Tensor, step: int) -> dict:
        # a pure function of the weights at that step: a resumed run sorts exactly where the uninterrupted one did
        if (step == 0 and sort_first) or (sort_every and step and step % sort_every == 0):
            log.info("step %d: channels sorted by importance (%s)", step, sort_channels(model, opt))
        subnets = subnets_of(step=step)
        inplace_distill = sw["inplace_distill"] and step >= distill_from
        # every step: two tiny all-reduces beside a sandwich's gradient all-reduces
        if not ranks_agree(ctx, _codes_hash(subnets)):
            raise RuntimeError(f"step {step}: ranks sampled different subnets; check that all nodes run one config")
        target = None
        if teacher is not None:  # under autocast like the students (float16 on a GPU), soft targets in float32
            with paddle.no_grad(), amp.autocast():
                target = F.softmax(teacher(x).astype("float32"), axis=-1)
        losses: dict[str, list] = {}
        largest_probs = None  # soft targets for in-place distillation, once the largest subnet has run
        ranked: list[tuple[float, float]] = []  # (hard-label CE, prior) of the subnets run so far
        n = len(subnets)
        for i, s in enumerate(subnets):
            model.set_active(s.arch)
            sync = net.no_sync() if ctx.world > 1 and i < n - 1 else contextlib.nullcontext()
            with sync:
                with amp.autocast():
                    logits = net(x)
                    ce = F.cross_entropy(logits, y, label_smoothing=t["label_smoothing"])
                    kd_target = target
                    if kd_target is None and inplace_distill and s.kind != "largest":
                        kd_target = largest_probs
                    if kd_target is None:
                        loss = ce
                    else:
                        w = sw["distill_weight"]
                        loss = w * soft_cross_entropy(logits, kd_target) + (1 - w) * ce
                    if sw["rank_weight"]:
                        prior = subnet_prior(s.arch)
                        rank = macs_rank_loss(ce, prior, ranked, sw["rank_margin"])
                        ranked.append((float(ce), prior))
                        if rank is not None:
                            loss = loss + rank_weight_at(sw, step / steps_per_epoch) * rank
                if s.kind == "largest":
                    largest_probs = F.softmax(logits.detach().astype("float32"), axis=-1)
                amp.backward(loss / n)
            losses.setdefault(s.kind, []).append(loss.detach())
        return {f"loss_{k}": paddle.add_n(v) / len(v) if len(v) > 1 else v[0] for k, v in losses.items()}

    def on_epoch_end(epoch: int) -> dict:
        rec = watch.epoch(model, val, calib, ctx, epoch, out, cfg, t["gt_watch_keep_best"]) if watch else {}
        if not t["eval_codes"]:
            return rec
        codes = [("largest", space.largest()), ("smallest", space.smallest())][: t["eval_codes"]]
        with preserved_bn_stats(model):
            for name, arch in codes:
                model.set_active(arch)
                if calib:
                    recalibrate(model, calib)
                rec[f"top1_{name}"] = round(evaluate(model, val, ctx, desc=f"eval {name}"), 3)
        log.info("epoch %d: %s", epoch, rec)
        return rec

    result = fit(model, opt, sched, amp, train, step_fn,
                 FitConfig(epochs=t["epochs"], ckpt_dir=str(out / "checkpoints"), save_every_steps=t["save_every_steps"],
                           keep=t["keep_checkpoints"], log_every=t["log_every"], fingerprint=fp, resume=resume,
                           max_steps=max_steps),
                 ctx, jlog, extra_state=lambda: {"sampler": {"seed": t["seed"], "space": space.name}},
                 on_epoch_end=on_epoch_end)
    if ctx.is_main and result.epoch >= t["epochs"]:
        save_supernet(model, cfg, out / "supernet.pdparams")
        log.info("supernet weights: %s", out / "supernet.pdparams")
    return out


@dataclass
class GtWatch:
    """The ranking watched during training: after each epoch the supernet scores a small ground truth's
    codes (BN recalibrated per code, ranked by loss) and its Kendall tau with a 95 % interval is logged; with
    ``keep_best`` the best epoch's weights are kept beside the last as ``supernet_best.pdparams``, with
    ``supernet_best.choice.json`` naming the file and codes the choice was made on. Scores of that checkpoint
    are never judged against those codes (eval_subnets records the choice; rank_corr refuses it)."""

    path: str
    sha256: str
    archs: list[Arch]
    truth: list[float]

    @classmethod
    def load(cls, path: str, ncfg: NetConfig, dataset: str) -> "GtWatch":
        from .groundtruth import file_sha256, gt_scores, supernet_mismatch

        problem = supernet_mismatch(path, ncfg.width_divisor, ncfg.input_size, dataset)
        if problem:
            raise ValueError(f"train.gt_watch: {problem}")
        truth = gt_scores(path)
        if len(truth) < 3:
            raise ValueError(f"train.gt_watch {path}: {len(truth)} codes; a ranking needs at least 3")
        return cls(path, file_sha256(path), [parse_code(c) for c in truth], list(truth.values()))

    def epoch(self, model: SuperNet, val, calib, ctx: Context, epoch: int, out: Path, cfg: dict,
              keep_best: bool) -> dict:
        from .metrics import bootstrap_tau_interval, kendall_tau_b
        from .runtime import atomic_write_json

        scores = []
        with preserved_bn_stats(model):
            for arch in self.archs:
                model.set_active(arch)
                if calib:
                    recalibrate(model, calib)
                scores.append(-evaluate_metrics(model, val, ctx, desc="gt_watch")["ce"])
        tau = kendall_tau_b(scores, self.truth)
        lo, hi = bootstrap_tau_interval(scores, self.truth)
        rec = {"watch_tau": round(tau, 4), "watch_ci95": [round(lo, 4), round(hi, 4)], "watch_codes": len(scores)}
        log.info("epoch %d: Kendall %.3f [%.3f, %.3f] on the %d codes of %s (train.gt_watch)", epoch, tau, lo, hi,
                 len(scores), self.path)
        choice = out / "supernet_best.choice.json"
        best = json.loads(choice.read_text())["watch_tau"] if choice.is_file() else -2.0
        if keep_best and ctx.is_main and math.isfinite(tau) and tau > best:
            save_supernet(model, cfg, out / "supernet_best.pdparams")
            atomic_write_json(choice, {"epoch": epoch, "watch_tau": tau, "gt_watch": self.path, "gt_sha256": self.sha256,
                                       "codes": [a.code for a in self.archs]})
            rec["watch_best"] = True
        return rec


def fewshot_group_config(cfg: dict, group: int) -> dict:
    """The config of few-shot group ``group``'s run: only its codes, from the one-shot weights, in
    ``<one-shot output>/group<g>``, for ``fewshot.epochs`` at ``fewshot.lr`` without warm-up."""
    rules = fewshot.parse_rules(cfg["fewshot"]["split_on"])
    if not rules:
        raise ValueError("fewshot.split_on is empty: there are no groups to train")
    if not 0 <= group < fewshot.n_groups(rules):
        raise ValueError(f"--fewshot_group {group}: fewshot.split_on makes {fewshot.n_groups(rules)} groups")
    one_shot = Path(cfg["train"]["output_dir"])
    init = one_shot / "supernet.pdparams"
    if not init.is_file():
        raise ValueError(f"{init} does not exist: train the one-shot supernet first (the same command without "
                         "--fewshot_group)")
    g = copy.deepcopy(cfg)
    g["fewshot"]["group"] = group
    g["model"]["init"] = str(init)
    g["train"].update(output_dir=str(fewshot.group_dir(one_shot, group)), epochs=cfg["fewshot"]["epochs"], warmup_epochs=0.0)
    if cfg["fewshot"]["lr"] is not None:
        g["train"]["lr"] = cfg["fewshot"]["lr"]
    return g


def save_supernet(model: SuperNet, cfg: dict, path: Path) -> None:
    """Final weights (official names) plus the config beside them, which scoring checks against."""
    import io

    buf = io.BytesIO()
    paddle.save(model.state_dict(), buf)
    atomic_write_bytes(path, buf.getvalue())
    atomic_write_bytes(path.with_suffix(".yaml"), dump(cfg).encode())
