"""YAML configs with PaddleClas-style command-line overrides (``-o train.epochs=3``).

A config file may name a ``base:`` file (relative to itself) whose values it overrides. Values of
overrides are parsed as YAML scalars, so ``-o train.lr=0.2``, ``-o sandwich.teacher=null`` and
``-o sandwich.inplace_distill=false`` do what they say. Unknown keys are errors, so a typo
does not silently train the wrong recipe.
"""
from __future__ import annotations

import copy
import math
import re
from pathlib import Path
from typing import Any

import yaml

from .space import DEPTH_BIASES, SPACES, WIDTH_BIASES, WIDTH_DIVISORS
from .zero_cost import PREDICTORS

# Spaces a supernet can train on (the untied one has no shared weights for its residual widths), and
# the ranking loss's priors: ln MACs, ln params, ln depth (blocks; equal depths are ties, so it orders
# only codes of different depth), or a zero-cost predictor (supernet/zero_cost.py).
TRAINABLE_SPACES = tuple(name for name, s in SPACES.items() if s.tied)
RANK_PRIORS = ("macs", "params", "depth", *PREDICTORS)

DEFAULTS: dict[str, Any] = {
    "model": {
        "dataset": "fmnist",  # fmnist (the proxy) or imagenet
        "width_divisor": None,  # default: 8 for fmnist (proxy v3), 1 for imagenet
        "init": None,  # full-width checkpoint with official names (e.g. resnet48.pdparams)
    },
    "data": {
        "data_dir": None,  # Fashion-MNIST IDX folder (default: found or fetched)
        "image_dir": None,  # ImageNet root
        "train_list": None,
        "val_list": None,
        "train_images": None,  # fixed, seeded subset of the training set
        "val_images": None,  # fixed, seeded subset for the per-epoch check
        "num_workers": 4,
    },
    "train": {
        "epochs": 10,
        "batch_size": 256,  # global
        "lr": 0.1,  # peak, per 256 images
        "warmup_epochs": 1.0,
        "momentum": 0.9,
        "nesterov": True,
        "weight_decay": 5e-4,
        "label_smoothing": 0.0,
        "grad_clip": None,
        "amp": True,  # GPU only
        "seed": 0,
        "save_every_steps": 0,
        "keep_checkpoints": 3,
        "log_every": 20,
        "output_dir": "output/supernet",
        "zero_init_last_bn": True,
        "eval_codes": 2,  # largest + smallest checked after each epoch (0: none)
        "calib_batches": 4,
        "gt_watch": None,  # a small GT file: Kendall of the supernet on its codes after every epoch (logged)
        "gt_watch_keep_best": True,  # with gt_watch: also keep the best epoch's weights (supernet_best.pdparams)
    },
    "sandwich": {
        "space": "full",  # full | official45k: where random subnets come from (full ranks better, BENCHMARKS.md)
        "largest": True,
        "smallest": True,
        "num_random": 2,
        "inplace_distill": True,  # subnets learn from the largest subnet's soft outputs
        "distill_weight": 1.0,  # KD share of a distilled subnet's loss; the rest is hard-label CE
        "distill_after": 0.0,  # fraction of training with hard labels only before in-place KD starts
        "rank_weight": 0.0,  # >0: margin ranking loss pushing each subnet's CE into the MACs order (RD-NAS)
        "rank_margin": 0.02,  # the margin per unit of prior difference (|ln(MACs ratio)| for MACs)
        "rank_ramp_epochs": 0.0,  # >0: the ranking loss weight grows linearly from 0 to rank_weight over these epochs
        "bias_pool": 0,  # >0: random subnets are the num_random largest (MACs) of this many samples (1st place)
        "bias_random_every": 3,  # with bias_pool: every N-th step adds one uniform random subnet (0: never)
        "depth_sampling": "uniform",  # uniform | deep: depth d of a stage drawn in proportion to d - min + 1
        "width_sampling": "uniform",  # uniform | narrow | narrowest: drawn by (the square of) the narrowness rank
        "sort_channels_every": 0,  # >0: channels sorted by importance every N epochs (supernet/sorting.py; 0: never)
        "sort_channels_at_start": False,  # sort before the first step: for model.init's trained weights (once-for-all)
        "rank_prior": "macs",  # the ranking loss's order: one of RANK_PRIORS (macs, params, depth, zero-cost)
        "teacher": None,  # external frozen teacher: a standalone checkpoint (official names)
        "teacher_code": None,  # its arch (default: the full network)
    },
    "progressive": {  # once-for-all's progressive shrinking, as fractions of the training steps (0, 0: off)
        "full_until": 0.0,  # until then only the full network trains
        "depth_until": 0.0,  # until then widths stay widest while depth opens from the deepest setting down
    },
    "fewshot": {  # split after one-shot training (train_supernet.sh trains the groups; docs/training.md)
        "split_on": [],  # depth rules, e.g. [{stage: 3, at: 6}, {stage: 4, at: 4}]: 2**rules groups
        "group": None,  # set by train_supernet.sh for a group's run: train only that group's codes
        "epochs": 1,  # epochs per group, starting from the one-shot weights
        "lr": None,  # peak lr per 256 images for the group runs (default: train.lr)
    },
}


class ConfigError(ValueError):
    pass


class _Loader(yaml.SafeLoader):
    """YAML with 1.2's numbers: PyYAML follows YAML 1.1, where ``1e-3`` (no dot) is a string."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                |[-+]?\.(?:inf|Inf|INF)
                |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def _yaml(text: str):
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def _merge(base: dict, over: dict, where: str = "") -> dict:
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        if k not in out:
            raise ConfigError(f"unknown config key {where}{k} (known: {', '.join(sorted(out))})")
        out[k] = _merge(out[k], v, f"{where}{k}.") if isinstance(out[k], dict) else v
    return out


def _read(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist" if not seen else
                          f"config file {path} (the base: of {seen[-1]}) does not exist")
    if path.resolve() in seen:
        raise ConfigError(f"{seen[-1]}: base: {path} makes a cycle ({' -> '.join(str(p) for p in (*seen, path))})")
    try:
        obj = _yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not UTF-8 text (byte {e.start})") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from e
    obj = {} if obj is None else obj
    if not isinstance(obj, dict):
        raise ConfigError(f"{path} must be a mapping of sections (model:, data:, train:, sandwich:)")
    base = obj.pop("base", None)
    if base is not None and not isinstance(base, str):
        raise ConfigError(f"{path}: base: must be a file name")
    if base:
        return _merge_raw(_read(path.parent / base, (*seen, path.resolve())), obj)
    return obj


def _merge_raw(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge_raw(out.get(k, {}), v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def apply_override(cfg: dict, item: str) -> None:
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not key=value")
    key, raw = item.split("=", 1)
    parts = key.strip().split(".")
    node = cfg
    for p in parts[:-1]:
        if not isinstance(node.get(p), dict):
            raise ConfigError(f"unknown config key {key}")
        node = node[p]
    if parts[-1] not in node:
        raise ConfigError(f"unknown config key {key}")
    if isinstance(node[parts[-1]], dict):
        raise ConfigError(f"override {key}: {key} is a section; set one of its keys ({', '.join(node[parts[-1]])})")
    try:
        node[parts[-1]] = _yaml(raw)
    except yaml.YAMLError:
        raise ConfigError(f"override {item!r}: the value is not a YAML scalar") from None


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> dict:
    """DEFAULTS, then the YAML file (and its bases), then ``overrides``."""
    cfg = _merge(DEFAULTS, _read(Path(path)) if path else {})
    for item in overrides or []:
        apply_override(cfg, item)
    validate(cfg, (f"config {path}" if path else "the default config") + (" with its -o overrides" if overrides else ""))
    return cfg


# Allowed values: (types, check or None, rule). ``None`` in the types admits null.
_INT, _NUM, _BOOL, _STR = (int,), (int, float), (bool,), (str,)


def _ge(lo):
    return (lambda v: v >= lo), f">= {lo}"


def _gt(lo):
    return (lambda v: v > lo), f"> {lo}"


def _in01(closed_hi: bool = True):
    return (lambda v: 0 <= v <= 1 if closed_hi else 0 <= v < 1), "between 0 and 1"


SCHEMA: dict[str, tuple] = {
    "model.dataset": (_STR, (lambda v: v in ("fmnist", "imagenet"), "fmnist or imagenet")),
    "model.width_divisor": (_INT + (None,), (lambda v: v in WIDTH_DIVISORS, f"one of {WIDTH_DIVISORS}")),
    "model.init": (_STR + (None,), None),
    "data.data_dir": (_STR + (None,), None), "data.image_dir": (_STR + (None,), None),
    "data.train_list": (_STR + (None,), None), "data.val_list": (_STR + (None,), None),
    "data.train_images": (_INT + (None,), _ge(1)), "data.val_images": (_INT + (None,), _ge(1)),
    "data.num_workers": (_INT, _ge(0)),
    "train.epochs": (_INT, _ge(1)), "train.batch_size": (_INT, _ge(1)), "train.lr": (_NUM, _gt(0)),
    "train.warmup_epochs": (_NUM, _ge(0)), "train.momentum": (_NUM, _in01(False)), "train.nesterov": (_BOOL, None),
    "train.weight_decay": (_NUM, _ge(0)), "train.label_smoothing": (_NUM, _in01(False)),
    "train.grad_clip": (_NUM + (None,), _gt(0)), "train.amp": (_BOOL, None), "train.seed": (_INT, _ge(0)),
    "train.save_every_steps": (_INT, _ge(0)), "train.keep_checkpoints": (_INT, _ge(1)),
    "train.log_every": (_INT, _ge(1)), "train.output_dir": (_STR, (lambda v: bool(v.strip()), "a folder name")),
    "train.zero_init_last_bn": (_BOOL, None), "train.eval_codes": (_INT, (lambda v: v in (0, 1, 2), "0, 1 or 2")),
    "train.calib_batches": (_INT, _ge(0)), "train.gt_watch": (_STR + (None,), None),
    "train.gt_watch_keep_best": (_BOOL, None),
    "sandwich.space": (_STR, (lambda v: v in TRAINABLE_SPACES, " or ".join(TRAINABLE_SPACES))),
    "sandwich.largest": (_BOOL, None), "sandwich.smallest": (_BOOL, None), "sandwich.num_random": (_INT, _ge(0)),
    "sandwich.inplace_distill": (_BOOL, None), "sandwich.distill_weight": (_NUM, _in01()),
    "sandwich.distill_after": (_NUM, _in01()), "sandwich.rank_weight": (_NUM, _ge(0)),
    "sandwich.rank_margin": (_NUM, _ge(0)),
    "sandwich.rank_ramp_epochs": (_NUM, _ge(0)), "sandwich.bias_pool": (_INT, _ge(0)),
    "sandwich.bias_random_every": (_INT, _ge(0)),
    "sandwich.depth_sampling": (_STR, (lambda v: v in DEPTH_BIASES, " or ".join(DEPTH_BIASES))),
    "sandwich.width_sampling": (_STR, (lambda v: v in WIDTH_BIASES, " or ".join(WIDTH_BIASES))),
    "sandwich.sort_channels_every": (_INT, _ge(0)), "sandwich.sort_channels_at_start": (_BOOL, None),
    "sandwich.rank_prior": (_STR, (lambda v: v in RANK_PRIORS, ", ".join(RANK_PRIORS))),
    "sandwich.teacher": (_STR + (None,), None),
    "sandwich.teacher_code": (_STR + (None,), None),
    "progressive.full_until": (_NUM, _in01()), "progressive.depth_until": (_NUM, _in01()),
    "fewshot.group": (_INT + (None,), _ge(0)), "fewshot.epochs": (_INT, _ge(1)), "fewshot.lr": (_NUM + (None,), _gt(0)),
}


def validate(cfg: dict, where: str) -> None:
    """Every value of the right type and range, so a typo fails now, not hours into a run."""
    for name, (types, check) in SCHEMA.items():
        section, key = name.split(".")
        if not isinstance(cfg.get(section), dict):
            raise ConfigError(f"{where}: {section} must be a mapping of keys")
        v = cfg[section][key]
        if v is None and None in types:
            continue
        kinds = tuple(t for t in types if t is not None)
        ok = isinstance(v, kinds) and (bool in kinds or not isinstance(v, bool))
        if ok and isinstance(v, float) and not math.isfinite(v):
            ok = False
        what = {_BOOL: "true or false", _INT: "a whole number", _NUM: "a number", _STR: "a string"}[kinds]
        if not ok:
            raise ConfigError(f"{where}: {name} is {v!r}; it must be {what}" + (" or null" if None in types else ""))
        if check is not None and not check[0](v):
            raise ConfigError(f"{where}: {name} is {v!r}; it must be {check[1]}")
    ps = cfg["progressive"]
    if ps["depth_until"] and ps["depth_until"] < ps["full_until"]:
        raise ConfigError(f"{where}: progressive.depth_until ({ps['depth_until']}) must not come before "
                          f"progressive.full_until ({ps['full_until']})")
    sw = cfg["sandwich"]
    if not (sw["largest"] or sw["smallest"] or sw["num_random"]):
        raise ConfigError(f"{where}: the sandwich trains no subnet (sandwich.largest and sandwich.smallest are false "
                          "and sandwich.num_random is 0)")
    from .fewshot import FewShotError, parse_rules

    try:
        parse_rules(cfg["fewshot"]["split_on"])
    except FewShotError as e:
        raise ConfigError(f"{where}: {e}") from None


def non_default(cfg: dict, defaults: dict = DEFAULTS) -> dict:
    """The values of ``cfg`` that differ from ``defaults`` (nested). Used to identify a run, so that a
    newer version adding a config key (at its default) still recognises runs of an older one."""
    out = {}
    for k, v in cfg.items():
        d = defaults.get(k) if isinstance(defaults, dict) else None
        if isinstance(v, dict) and isinstance(d, dict):
            sub = non_default(v, d)
            if sub:
                out[k] = sub
        elif k not in defaults or v != d:
            out[k] = v
    return out


def dump(cfg: dict) -> str:
    return yaml.safe_dump(cfg, sort_keys=False)
