"""Ground-truth files and the protocol that made them.

A ground-truth (GT) file is the official form plus ``per_seed`` results of standalone training:
``{"archN": {"arch", "acc", "per_seed": {seed: top1}, "per_seed_ce": ..., "per_seed_train_loss": ...}}``.
Numbers from different training protocols (width divisor, epochs, images, ...) are not comparable,
so the protocol is stored beside the file (``<name>.protocol.json``) and every run that merges into
it, and every supernet compared with it, must match it.
"""
from __future__ import annotations

import json
import math
import os
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from .archfile import ArchFileError, clip, finite_number, locked, read_entries, read_scores
from .runtime import atomic_write_json
from .space import Arch, NetConfig, parse_code

# The pretrain settings that change what a standalone accuracy means.
PROTOCOL_KEYS = ("dataset", "width_divisor", "input_size", "max_epoch", "warmup", "lr", "batch_size", "momentum",
                 "nesterov", "weight_decay", "label_smoothing", "train_images", "val_images", "init")

# The protocol of ../shared/proxy_gt/dev_gt.json (PROXY.md, v2), which has no protocol file of its own.
V2 = {"dataset": "fmnist", "width_divisor": 4, "input_size": 28, "max_epoch": 12, "warmup": 1.0, "lr": 0.05,
      "batch_size": 256, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4, "label_smoothing": 0.0,
      "train_images": None, "val_images": None, "init": None}


# The project's own proxy ground truth (protocol v3: widths / 8, 2 epochs; docs/training.md, "Proxy protocol notes"),
# grown by tools/gt_campaign.py and committed; the default the proxy's tools compare against.
DEV_GT = Path(__file__).resolve().parents[1] / "benchmarks" / "gt" / "d8e2.json"


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes: what a ranking result was measured on, whatever the file is called."""
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def protocol_path(gt_file: str | Path) -> Path:
    p = Path(gt_file)
    return p.with_name(p.stem + ".protocol.json")


def normalise(protocol: Mapping[str, Any]) -> dict:
    """The protocol keys only, numbers as floats where they may be given either way."""
    out = {}
    for k in PROTOCOL_KEYS:
        v = protocol.get(k)
        if k in ("warmup", "lr", "momentum", "weight_decay", "label_smoothing") and v is not None:
            v = float(v)
        out[k] = v
    return out


def read_protocol(gt_file: str | Path) -> dict | None:
    """The protocol stored beside ``gt_file``; v2's for the shared dev_gt.json; None when unknown."""
    p = protocol_path(gt_file)
    if p.is_file():
        try:
            obj = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError) as e:
            raise ArchFileError(f"{p} is not a readable protocol file: {e}") from e
        if not isinstance(obj, dict):
            raise ArchFileError(f"{p} is not a protocol (a JSON object of pretrain settings)")
        return normalise(obj)
    if Path(gt_file).name == "dev_gt.json" and Path(gt_file).parent.name == "proxy_gt":
        return dict(V2)
    return None


def differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    a, b = normalise(a), normalise(b)
    return [f"{k} {a[k]!r} vs {b[k]!r}" for k in PROTOCOL_KEYS if a[k] != b[k]]


def bind_protocol(gt_file: str | Path, protocol: Mapping[str, Any], write: bool = True) -> None:
    """Check that ``protocol`` is the one stored beside ``gt_file``; store it there when there is none
    yet (unless ``write`` is false: a check before training that writes nothing)."""
    have = read_protocol(gt_file)
    if have is None:
        if Path(gt_file).is_file() and read_entries(gt_file):
            raise ArchFileError(f"{gt_file} holds results but no protocol file ({protocol_path(gt_file).name}); "
                                "its runs' settings are unknown, so no new run is merged into it")
        if write:
            atomic_write_json(protocol_path(gt_file), normalise(protocol))
        return
    diff = differences(protocol, have)
    if diff:
        raise ArchFileError(f"{gt_file} was made with another protocol ({'; '.join(diff)} in "
                            f"{protocol_path(gt_file).name}); use another --gt_file")


def check_record_slot(gt_file: str | Path, key: str, arch: Arch) -> None:
    """Refuse now, not after training, a GT file that is unreadable or whose ``key`` holds another code."""
    p = Path(gt_file)
    if not p.exists():
        return
    entries = read_entries(p)
    rec = entries.get(key)
    if rec is not None and parse_code(rec["arch"]).code != arch.code:
        raise ArchFileError(f"{p}: key {key} already holds another code {rec['arch']}")


def merge_record(gt_file: str | Path, key: str, arch: Arch, seed: int, metrics: Mapping[str, float],
                 protocol: Mapping[str, Any] | None = None) -> dict:
    """Add one run's result (``top1``, ``ce``, ``train_loss``) to ``gt_file`` under a lock.

    ``acc`` is the mean of the seeds' top-1, as in ../shared/proxy_gt. Non-finite numbers are refused:
    a run that diverged is not a ground truth. ``protocol`` is checked against the file's (and stored
    for a new file) under the same lock, so two runs of different protocols finishing together into a
    new file cannot both get in. The lock and the write are on the resolved path (symbolic links
    followed).
    """
    for name in ("top1", "ce", "train_loss"):
        if not math.isfinite(float(metrics[name])):
            raise ValueError(f"{name} is {metrics[name]}: a diverged run is not written as ground truth")
    p = Path(os.path.realpath(gt_file))
    with locked(p):
        if protocol is not None:
            bind_protocol(p, protocol)
        obj = read_entries(p) if p.is_file() else OrderedDict()
        rec = obj.get(key, {"arch": arch.code})
        if parse_code(rec["arch"]).code != arch.code:
            raise ArchFileError(f"{p}: key {key} already holds another code {rec['arch']}")
        seeds = {f: dict(rec.get(f, {})) for f in ("per_seed", "per_seed_ce", "per_seed_train_loss")}
        seeds["per_seed"][str(seed)] = round(float(metrics["top1"]), 4)
        seeds["per_seed_ce"][str(seed)] = round(float(metrics["ce"]), 5)
        seeds["per_seed_train_loss"][str(seed)] = round(float(metrics["train_loss"]), 5)
        acc = sum(seeds["per_seed"].values()) / len(seeds["per_seed"])
        obj[key] = {"arch": arch.code, "acc": round(acc, 4), **seeds}
        atomic_write_json(p, obj)
    return obj[key]


GT_METRICS = ("top1", "ce")  # what a ground-truth file ranks codes by: mean top-1 ('acc'), or minus mean test CE


def seed_adjusted(per_seed: Mapping[str, Mapping[str, float]], iters: int = 1000) -> dict[str, float]:
    """Per-code means with each seed's shared offset removed: least squares of the additive model
    value[code, seed] = code effect + seed offset (offsets summing to zero), by alternating means.

    Why: a campaign trains every code with the same seeds, and a seed fixes the data order for all of
    them, so part of the seed noise is an offset common to all codes (on d8e2 seed 1 lies ~0.5 top-1
    points above seed 2). While a file grows, codes hold different seed sets, and a plain mean would
    lift the codes that only have the lucky seed. With every code on the same seeds this is the plain
    mean less a constant: the same ranking."""
    seeds = sorted({s for v in per_seed.values() for s in v})
    off = dict.fromkeys(seeds, 0.0)
    holders = {s: sum(s in v for v in per_seed.values()) for s in seeds}  # codes that ran each seed

    def effects() -> dict[str, float]:
        return {c: sum(x - off[s] for s, x in v.items()) / len(v) for c, v in per_seed.items()}

    for _ in range(iters):
        mu = effects()
        new = {s: sum(v[s] - mu[c] for c, v in per_seed.items() if s in v) / holders[s] for s in seeds}
        shift = sum(new.values()) / len(new)
        new = {s: o - shift for s, o in new.items()}
        done = max(abs(new[s] - off[s]) for s in seeds) < 1e-12
        off = new
        if done:
            break
    return effects()


def gt_scores(gt_file: str | Path, metric: str = "top1", adjust_seeds: bool = True) -> dict[str, float]:
    """code -> ground-truth score, higher is better: mean top-1 over seeds ('top1'), or minus the mean
    test cross-entropy ('ce': less noisy than top-1 relative to the spread between codes on the v3
    proxy, BENCHMARKS.md). With ``adjust_seeds`` (default) and per-seed results for every code, the mean
    is taken with each seed's shared offset removed (``seed_adjusted``); otherwise top-1 is the file's
    'acc'. 'ce' needs ``per_seed_ce`` on every entry: a partial ranking is refused."""
    if metric not in GT_METRICS:
        raise ArchFileError(f"ground-truth metric {metric!r} is not one of {', '.join(GT_METRICS)}")
    acc = read_scores(gt_file)  # validates codes, duplicates and 'acc'
    field, sign = ("per_seed", 1.0) if metric == "top1" else ("per_seed_ce", -1.0)
    per: dict[str, dict[str, float]] = {}
    for k, v in read_entries(gt_file).items():
        raw = v.get(field)
        vals = {str(s): finite_number(x) for s, x in raw.items()} if isinstance(raw, Mapping) else {}
        if not vals or any(x is None for x in vals.values()):
            if metric == "ce":
                raise ArchFileError(f"{gt_file}: {clip(k)} has no finite per_seed_ce values; rank by top1 instead")
            return acc  # no per-seed results (e.g. a file of published accuracies): the file's 'acc'
        per[parse_code(v["arch"]).code] = {s: sign * x for s, x in vals.items()}
    if adjust_seeds:
        return seed_adjusted(per)
    return acc if metric == "top1" else {c: sum(v.values()) / len(v) for c, v in per.items()}


def seeds_done(gt_file: str | Path) -> dict[str, set[int]]:
    """code -> the seeds ``gt_file`` already holds (empty when the file does not exist)."""
    p = Path(gt_file)
    if not p.is_file():
        return {}
    out: dict[str, set[int]] = {}
    for v in read_entries(p).values():
        out.setdefault(parse_code(v["arch"]).code, set()).update(int(s) for s in v.get("per_seed", {}))
    return out


def stratified_by_macs(archs: Mapping[str, Arch], n: int, seed: int, cfg, keep: Mapping[str, Arch] | None = None
                       ) -> "OrderedDict[str, Arch]":
    """About ``n`` codes of ``archs`` spread evenly over MACs: the smallest and the largest, plus one
    seeded random code from each of ``n`` equal-count MACs bins that ``keep`` (codes a GT file already
    holds) does not cover yet. Growing a campaign (a larger ``n``, same seed) keeps what it has."""
    import random

    from .space import count_cost

    keys = sorted(archs, key=lambda k: (count_cost(archs[k], cfg).macs, archs[k].code))
    if not 2 <= n <= len(keys):
        raise ValueError(f"cannot choose {n} codes out of {len(keys)} (need 2..{len(keys)})")
    chosen: OrderedDict[str, Arch] = OrderedDict((k, a) for k, a in (keep or {}).items())
    have = {a.code for a in chosen.values()}
    pos = {archs[k].code: i for i, k in enumerate(keys)}
    rng = random.Random(f"gt-sample-{seed}")
    for k in (keys[0], keys[-1]):
        if archs[k].code not in have:
            chosen[k], _ = archs[k], have.add(archs[k].code)
    covered = {pos[c] * n // len(keys) for c in have if c in pos}
    for b in range(n):
        lo, hi = b * len(keys) // n, (b + 1) * len(keys) // n
        pick = keys[lo + rng.randrange(hi - lo)]  # drawn for every bin, so bins' picks do not shift
        if b not in covered and archs[pick].code not in have:
            chosen[pick] = archs[pick]
            have.add(archs[pick].code)
    return chosen


def network_of(gt_file: str | Path, default: NetConfig) -> NetConfig:
    """The network the GT file's codes were trained as (its protocol's width divisor on ``default``'s
    dataset); ``default`` when the protocol is unknown. MACs and params of the floor are counted on it."""
    proto = read_protocol(gt_file)
    d = (proto or {}).get("width_divisor")
    return replace(default, width_divisor=int(d)) if d else default


def supernet_mismatch(gt_file: str | Path, width_divisor: int, input_size: int, dataset: str) -> str | None:
    """Why a supernet of this network cannot be judged against ``gt_file`` (None when it can, or when the
    GT file's protocol is unknown). Accuracies of another width or input size rank other networks."""
    proto = read_protocol(gt_file)
    if proto is None:
        return None
    diff = [f"{k} {mine!r} vs {proto[k]!r}" for k, mine in
            (("dataset", dataset), ("width_divisor", width_divisor), ("input_size", input_size))
            if proto.get(k) is not None and proto[k] != mine]
    if diff:
        return (f"the supernet's network differs from the one {gt_file} was trained with ({'; '.join(diff)}, "
                f"supernet vs {protocol_path(gt_file).name}); compare it with a ground truth of its own network")
    return None
