"""Scoring subnets: BN recalibration + accuracy, with a crash-safe journal and sharding.

Per subnet the sliced weights are copied once into a standalone model (``SuperNet.extract``),
whose plain layers then run the K calibration batches and the evaluation images; both image sets
are decoded once and kept as tensors for every subnet. A subnet's score depends only on its
code, the checkpoint and the settings (calibration overwrites every BN statistic it uses), so
the order, the sharding and any restart leave the scores unchanged.

Every finished subnet is appended to a journal (one JSON line, flushed and fsynced). A journal
starts with a header naming the checkpoint's sha256 and the settings; one from another
checkpoint or settings is refused, not mixed in. Records are matched by code, never by key: another
arch file whose keys are also arch1..N gets its own codes scored, and a code scored before under any
key is reused (same code, checkpoint and settings give the same score).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import paddle
import paddle.nn.functional as F

from . import fewshot, journal
from .bn_calib import calibration_set, preserved_bn_stats, recalibrate
from .config import load_config
from .data import as_float32, build_loaders
from .elastic import frozen_slices
from .resnet import SuperNet, load_weights
from .runtime import rss_mb
from .space import Arch, NetConfig, channel_plan
from .supernet_train import net_config

log = logging.getLogger(__name__)


JournalError = journal.JournalError


@dataclass(frozen=True)
class ScoreSettings:
    val_images: int | None = None  # None: the full validation set
    calib_batches: int = 4
    calib_batch_size: int = 128
    batch_size: int = 500
    seed: int = 0
    backend: str = "dygraph"  # see BACKENDS
    amp: bool = False  # supernet backend: calibration and evaluation under autocast (float16 on a GPU)
    device_cache_gib: float = 4.0  # supernet backend: evaluation images kept on the device up to this size


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_supernet(checkpoint: str | Path, config: str | Path | None = None) -> tuple[SuperNet, dict]:
    """A trained supernet and its config: ``supernet.pdparams`` (config beside it as ``.yaml``) or a
    training checkpoint ``ckpt_s*.pdckpt`` (config from the run folder)."""
    ckpt = Path(checkpoint)
    if not ckpt.is_file():
        raise FileNotFoundError(f"supernet checkpoint {ckpt} does not exist")
    if config is None:
        for cand in (ckpt.with_suffix(".yaml"), ckpt.parent / "config.yaml", ckpt.parent.parent / "config.yaml"):
            if cand.is_file():
                config = cand
                break
        else:
            raise FileNotFoundError(f"no config found beside {ckpt}; pass --config")
    cfg = load_config(config)
    model = SuperNet(net_config(cfg["model"]))
    try:
        state = paddle.load(str(ckpt))
    except Exception as e:  # noqa: BLE001 - unreadable or not a Paddle file
        raise ValueError(f"{ckpt} is not a readable Paddle checkpoint: {e}") from e
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    load_weights(model, state, what=f"supernet checkpoint {ckpt}")
    model.eval()
    return model, cfg


class Router:
    """Which supernet scores a code: the one supernet, or for a few-shot manifest (``fewshot.json``) the
    supernet of the code's group."""

    def __init__(self, models: list[SuperNet], rules: list[tuple[int, int]] | None = None) -> None:
        self.models, self.rules = models, rules or []

    def group(self, arch: Arch) -> int:
        return fewshot.group_of(arch, self.rules) if self.rules else 0

    def __call__(self, arch: Arch) -> SuperNet:
        return self.models[self.group(arch)]


def load_scorer(checkpoint: str | Path, config: str | Path | None = None) -> tuple[Router, dict, str]:
    """(router, config, sha256 identifying the weights) of a supernet checkpoint or a few-shot manifest."""
    path = Path(checkpoint)
    if path.name != fewshot.MANIFEST:
        model, cfg = load_supernet(path, config)
        return Router([model]), cfg, file_sha256(path)
    rules, ckpts = fewshot.read_manifest(path)
    loaded = [load_supernet(c) for c in ckpts]
    cfgs = {json.dumps(c["model"], sort_keys=True) for _, c in loaded}
    if len(cfgs) != 1:
        raise ValueError(f"{path}: the groups' supernets have different networks (model sections)")
    sha = fewshot.manifest_digest(rules, [file_sha256(c) for c in ckpts])
    return Router([m for m, _ in loaded], rules), loaded[0][1], sha


def config_loaders(cfg: dict, batch_size: int, seed: int = 0, val_images: int | None = None):
    """(train, val) batch sources of a supernet config, single process (scoring, export)."""
    m, d = cfg["model"], cfg["data"]
    return build_loaders(m["dataset"], batch_size, seed, data_dir=d["data_dir"], image_dir=d["image_dir"],
                         train_list=d["train_list"], val_list=d["val_list"], val_images=val_images,
                         num_workers=d["num_workers"], input_size=net_config(m).input_size)


# dygraph: a standalone model extracted per subnet; predictor: Paddle Inference + oneDNN (CPU);
# fused: supernet/fused.py's oneDNN engine (CPU); supernet: the supernet itself with the subnet active (no
# model built per subnet), optional autocast, counts summed on the device: the GPU engine.
BACKENDS = ("dygraph", "predictor", "fused", "supernet")


class EvalData:
    """Calibration batches and evaluation batches, decoded once, kept for every subnet; and the
    evaluation engine (one oneDNN predictor folder, or one fused engine, for the whole run)."""

    def __init__(self, cfg: dict, s: ScoreSettings) -> None:
        if s.backend not in BACKENDS:
            raise ValueError(f"backend {s.backend!r}: use one of {', '.join(BACKENDS)}")
        train, val = config_loaders(cfg, s.batch_size, s.seed, s.val_images)
        self.calib = calibration_set(train, s.calib_batches, s.calib_batch_size, s.seed)
        self.net = nc = net_config(cfg["model"])
        self.input_shape = [nc.in_channels, nc.input_size, nc.input_size]
        self.amp = s.amp
        self.predictor: PredictorBackend | None = None
        self.fused: FusedBackend | None = None
        self.supernet_engine = s.backend == "supernet"
        if self.supernet_engine:
            # uint8 (ImageNet) or float32 (proxy) as the loader gives them: a quarter of float32's memory for
            # ImageNet; normalised on the device per batch. On the device while they fit the budget, else
            # streamed from the host batch by batch.
            host = [(np.ascontiguousarray(np.asarray(x)), np.asarray(y)) for x, y in val.epoch(0)]
            size = sum(x.nbytes for x, _ in host)
            self.streamed = size > s.device_cache_gib * 2**30
            self.val = host if self.streamed else [(paddle.to_tensor(x), paddle.to_tensor(y)) for x, y in host]
            self.n_val = sum(len(y) for _, y in host)
            self.cache_bytes = size
            return
        batches = [(np.ascontiguousarray(as_float32(np.asarray(x))), np.asarray(y)) for x, y in val.epoch(0)]
        if s.backend == "predictor":
            self.predictor = PredictorBackend(self.input_shape)
            self.val = batches
        elif s.backend == "fused":
            self.fused = FusedBackend(nc, [as_float32(c.numpy()) for c in self.calib])
            self.val = batches
        else:
            self.val = [(paddle.to_tensor(x), paddle.to_tensor(y)) for x, y in batches]
        self.n_val = sum(len(y) for _, y in batches)


class FusedBackend:
    """Calibrates and evaluates each subnet on the fused oneDNN engine (supernet/fused.py): the
    subnet's weights are first-k slices of the supernet's, read once as numpy arrays; no standalone
    model is built and nothing is traced."""

    def __init__(self, net: NetConfig, calib: list[np.ndarray]) -> None:
        from .fused import FusedEngine

        self.engine, self.net, self.calib = FusedEngine(), net, calib
        self.states: dict[int, tuple[SuperNet, dict[str, np.ndarray]]] = {}

    def state(self, model: SuperNet) -> dict[str, np.ndarray]:
        """The supernet's weights as numpy arrays (read once per supernet: scoring never changes them)."""
        if id(model) not in self.states:
            self.states[id(model)] = (model, {k: v.numpy() for k, v in model.state_dict().items()})
        return self.states[id(model)][1]

    def logits(self, model: SuperNet, arch: Arch, batches: list[tuple[np.ndarray, np.ndarray]]):
        from .fused import layout

        net = layout(channel_plan(model.set_active(arch), self.net), self.net)
        xs = self.engine.logits(net, self.state(model), [x for x, _ in batches], self.calib)
        return zip(xs, (y for _, y in batches))


class PredictorBackend:
    """Evaluates a standalone model with Paddle Inference and oneDNN (CPU).

    The inference predictor fuses conv + BN + ReLU on oneDNN and runs the same network about 2x
    faster than dygraph, even with dygraph's convolutions on oneDNN (BENCHMARKS.md). Each subnet is
    traced once with paddle.jit.save into a scratch folder, loaded as a predictor and run over the
    cached images.
    """

    def __init__(self, input_shape: list[int], threads: int | None = None) -> None:
        import tempfile

        self.dir = Path(tempfile.mkdtemp(prefix="nas_predictor_", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
        self.input_shape = input_shape
        self.threads = threads or int(os.environ.get("OMP_NUM_THREADS", "1"))

    def load(self, sub: paddle.nn.Layer):
        """Trace ``sub`` and return ``run(x) -> logits`` on a fresh oneDNN predictor."""
        import paddle.inference as pi

        prefix = str(self.dir / "m")
        spec = [paddle.static.InputSpec([None, *self.input_shape], "float32", "image")]
        paddle.jit.save(sub, prefix, input_spec=spec)
        model_file = prefix + (".json" if Path(prefix + ".json").is_file() else ".pdmodel")
        cfg = pi.Config(model_file, prefix + ".pdiparams")
        cfg.disable_gpu()
        cfg.enable_mkldnn()
        cfg.set_cpu_math_library_num_threads(self.threads)
        cfg.disable_glog_info()
        pred = pi.create_predictor(cfg)
        inp = pred.get_input_handle(pred.get_input_names()[0])
        out = pred.get_output_handle(pred.get_output_names()[0])

        def run(x: np.ndarray) -> np.ndarray:
            inp.reshape(list(x.shape))
            inp.copy_from_cpu(x)
            pred.run()
            return out.copy_to_cpu()
        return run

    def logits(self, sub: paddle.nn.Layer, batches: list[tuple[np.ndarray, np.ndarray]]):
        run = self.load(sub)
        return ((run(x), y) for x, y in batches)


def _counts(logits: np.ndarray, y: np.ndarray) -> tuple[int, float]:
    """(correct, summed cross-entropy) of one batch; float64 log-sum-exp."""
    z = logits.astype(np.float64)
    z -= z.max(axis=-1, keepdims=True)
    nll = np.log(np.exp(z).sum(axis=-1)) - z[np.arange(len(y)), y]
    return int((logits.argmax(axis=-1) == y).sum()), float(nll.sum())


@dataclass(frozen=True)
class Score:
    top1: float  # %
    nll: float  # mean cross-entropy (nats)

    def value(self, rank_by: str) -> float:
        """The submission's number: top-1 %, or for ``loss`` 100 * exp(-nll), the geometric mean of
        the true class's probability in %, which orders subnets by loss on the same scale."""
        if rank_by == "top1":
            return self.top1
        if rank_by == "loss":
            return 100.0 * float(np.exp(-self.nll))
        raise ValueError(f"rank_by {rank_by!r}: use top1 or loss")


@paddle.no_grad()
def score_on_supernet(model: SuperNet, arch: Arch, data: EvalData) -> Score:
    """``arch`` scored on the supernet itself: set active, BN recalibrated (the supernet's statistics put back
    afterwards), evaluated under autocast when ``data.amp``; correct counts and summed cross-entropy stay on
    the device, and one host sync per subnet reads them."""
    amp = paddle.amp.auto_cast(level="O1") if data.amp else contextlib.nullcontext()
    model.set_active(arch)
    with preserved_bn_stats(model), amp:
        if data.calib:
            recalibrate(model, data.calib)
        model.eval()
        correct = paddle.zeros([1], dtype="int64")
        nll = paddle.zeros([1], dtype="float32")
        with frozen_slices(model):  # each weight sliced once for this subnet, not at every batch
            for x, y in data.val:
                x = paddle.to_tensor(x) if data.streamed else x
                y = paddle.to_tensor(y) if data.streamed else y
                logits = model(as_float32(x)).astype("float32")
                correct += (logits.argmax(axis=-1) == y).astype("int64").sum()
                nll += F.cross_entropy(logits, y, reduction="sum").reshape([1])
        c, total = paddle.concat([correct.astype("float64"), nll.astype("float64")]).numpy().tolist()
    return Score(100.0 * c / data.n_val, total / data.n_val)


@paddle.no_grad()
def score(model: SuperNet, arch: Arch, data: EvalData) -> Score:
    """Top-1 and cross-entropy of ``arch``: extract, recalibrate BN on the cached batches, evaluate the
    cached images. Both come from the same logits."""
    if data.supernet_engine:
        return score_on_supernet(model, arch, data)
    if data.fused is not None:
        return _score_of(data.fused.logits(model, arch, data.val), data.n_val)
    sub = model.extract(arch)
    if data.calib:
        recalibrate(sub, data.calib)
    sub.eval()
    if data.predictor is not None:
        outputs = data.predictor.logits(sub, data.val)
    else:
        outputs = ((sub(x).numpy(), y.numpy()) for x, y in data.val)
    return _score_of(outputs, data.n_val)


def _score_of(outputs: Iterable[tuple[np.ndarray, np.ndarray]], n: int) -> Score:
    correct, nll = 0, 0.0
    for logits, y in outputs:
        c, s = _counts(logits, np.asarray(y))
        correct, nll = correct + c, nll + s
    return Score(100.0 * correct / n, nll / n)


class Journal(journal.Journal):
    """The scoring journal: one record per finished subnet (top-1 and cross-entropy), keyed by code."""

    def __init__(self, path: Path, header: dict) -> None:
        super().__init__(path, header, valid=_valid_score)

    def add(self, key: str, arch: Arch, sc: Score, seconds: float) -> None:
        """``s``: seconds spent on this subnet; ``end``, ``pid`` and ``rss_mb`` let a long run's wall time and
        memory be read back from its journals (benchmarks/eval_run.py)."""
        rss = rss_mb()
        self.append({"key": key, "arch": arch.code, "acc": sc.top1, "nll": sc.nll, "s": round(seconds, 4),
                     "end": round(time.time(), 3), "pid": os.getpid(),
                     "rss_mb": None if rss is None else round(rss, 1)})


def _finite(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and bool(np.isfinite(v))


def _valid_score(rec: dict) -> bool:
    return _finite(rec.get("acc")) and ("nll" not in rec or _finite(rec["nll"]))


def read_journals(folder: Path, header: dict, pattern: str = "journal*.jsonl") -> dict[str, dict]:
    """code -> finished record, from the folder's scoring journals (all shards and ranks by default)."""
    return journal.read_journals(folder, header, _valid_score, pattern)


WAIT_STALL_S = 1800.0  # how long the other ranks may go without a finished subnet before rank 0 gives up


def wait_for_scores(folder: Path, header: dict, codes: set[str], pattern: str, stall_s: float = WAIT_STALL_S,
                    poll_s: float = 5.0) -> set[str]:
    """Rank 0's wait for the other ranks' shares, read off their journals (``pattern``) instead of a
    collective barrier: gloo, Paddle's CPU backend, gives up on a barrier after 30 s, and the ranks of a
    cost-balanced split still finish that far apart (the 45k run's last shard failed so, its scores
    complete). Returns the codes still missing: none, or, when no journal has grown for ``stall_s``
    seconds (a rank died outside a launcher that would have stopped this one too), the ones it lacks."""
    sizes, changed, missing = None, time.time(), set(codes)
    while True:
        now = [(p.name, p.stat().st_size) for p in sorted(Path(folder).glob(pattern))]
        if now != sizes:
            sizes, changed = now, time.time()
            try:
                missing = set(codes) - set(read_journals(folder, header, pattern))
            except JournalError as e:  # e.g. a journal whose header is being written: read it again next time
                log.debug("waiting: %s", e)
            if not missing:
                return missing
        elif time.time() - changed > stall_s:
            return missing
        time.sleep(poll_s)


def submission_values(done: dict[str, dict], codes: dict[str, str], rank_by: str) -> dict[str, float]:
    """The submission's number per key (``codes``: key -> code) from journal records (see Score.value)."""
    if rank_by == "loss":
        old = [k for k, c in codes.items() if "nll" not in done[c]]
        if old:
            raise JournalError(f"{len(old)} journal records (e.g. {old[0]}) were written without a loss; "
                               "use --rank-by top1 or score them again in a new folder")
    out = {k: Score(done[c]["acc"], done[c].get("nll", float("nan"))).value(rank_by) for k, c in codes.items()}
    bad = [k for k, v in out.items() if not np.isfinite(v)]
    if bad:
        raise JournalError(f"{len(bad)} scores are not finite (e.g. {bad[0]}: {out[bad[0]]})")
    return out


def make_header(checkpoint_sha256: str, cfg: dict, s: ScoreSettings) -> dict:
    """What a journal's scores depend on. The device cache size does not change a score; autocast does,
    and is named only when on, so journals written before it existed stay valid."""
    settings = {k: v for k, v in asdict(s).items() if k != "device_cache_gib" and not (k == "amp" and not v)}
    return {"checkpoint_sha256": checkpoint_sha256, "model": cfg["model"], "settings": settings}


def prefix_order(arch: Arch) -> tuple:
    """Sort key that puts codes with the same stem and leading blocks next to each other."""
    return arch.image_code, arch.stem, arch.blocks


def run_scoring(route: Router, archs: dict[str, Arch], data: EvalData, journal: Journal,
                show_progress: bool = True) -> None:
    """Score every arch not yet in the journal, with a progress bar in subnets/hour.

    Codes run grouped by supernet (few-shot) and in the order of their network's leading layers (stem,
    then blocks), so that consecutive subnets share them and the fused engine reuses their activations
    (supernet/fused.py); the submission keeps the input order."""
    from tqdm import tqdm

    todo = sorted(((k, a) for k, a in archs.items() if a.code not in journal.done),
                  key=lambda ka: (route.group(ka[1]), prefix_order(ka[1])))
    t0 = time.time()
    bar = tqdm(todo, desc="subnets", disable=not show_progress, dynamic_ncols=True)
    for i, (key, arch) in enumerate(bar, 1):
        t = time.time()
        sc = score(route(arch), arch, data)
        if not (np.isfinite(sc.top1) and np.isfinite(sc.nll)):
            raise JournalError(f"{key} ({arch.code}) scored a non-finite loss ({sc.nll}): the supernet's outputs "
                               "are not finite; nothing is recorded for it")
        journal.add(key, arch, sc, time.time() - t)
        rate = i / max(1e-9, time.time() - t0) * 3600
        bar.set_postfix(subnets_per_h=f"{rate:.0f}", acc=f"{sc.top1:.2f}")


# Relative cost of one block per stage in the fused engine (calibration + evaluation, proxy network;
# BENCHMARKS.md "Prefix reuse"): equal MACs per block, but the first stages run few channels at high
# resolution. Only used to cut shares of equal work.
STAGE_BLOCK_COST = (0.13, 0.11, 0.07, 0.035)
SUBNET_FIXED_COST = 0.1  # stem, head, bookkeeping


def estimated_cost(arch: Arch) -> float:
    return SUBNET_FIXED_COST + sum(c * d for c, d in zip(STAGE_BLOCK_COST, arch.depths))


def shard_keys(archs: dict[str, Arch], keys: Iterable[str], index: int, count: int) -> list[str]:
    """Share ``index`` of ``count`` of ``keys`` (in their given order): a contiguous range of the codes in
    prefix order, the ranges cut at equal estimated cost.

    Why contiguous: a process reuses the leading layers its consecutive codes share (supernet/fused.py);
    a strided share of 1/16 of the 45k list shares ~0.5 second-stage blocks per code with its
    neighbour, the whole sorted list ~1.8 (BENCHMARKS.md). Every share is the same, whatever ``count``."""
    keys = list(keys)
    order = sorted(keys, key=lambda k: (prefix_order(archs[k]), k))
    cost = np.array([estimated_cost(archs[k]) for k in order])
    cum = np.cumsum(cost)
    # code j belongs to the share its cost midpoint falls in: every code in exactly one share
    mid = cum - cost / 2
    total = float(cum[-1]) if len(cum) else 0.0
    share = np.minimum((mid / max(total, 1e-12) * count).astype(int), count - 1)
    mine = {k for k, s in zip(order, share) if s == index}
    return [k for k in keys if k in mine]
