"""YAML configs with PaddleClas-style command-line overrides (``-o train.epochs=3``).

A config file may name a ``base:`` file (relative to itself) whose values it overrides. Values of
overrides are parsed as YAML scalars, so ``-o train.lr=0.2``, ``-o sandwich.teacher=null`` and
``-o sandwich.inplace_distill=false`` do what they say. Unknown keys are errors, so a typo
does not silently train the wrong recipe.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

DEFAULTS: dict[str, Any] = {
    "model": {
        "dataset": "fmnist",  # fmnist (the proxy) or imagenet
        "width_divisor": None,  # default: 4 for fmnist, 1 for imagenet
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
        "rank_margin": 0.02,  # the margin per unit of |ln(MACs ratio)| between two subnets
        "teacher": None,  # external frozen teacher: a standalone checkpoint (official names)
        "teacher_code": None,  # its arch (default: the full network)
    },
}


class ConfigError(ValueError):
    pass


def _merge(base: dict, over: dict, where: str = "") -> dict:
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        if k not in out:
            raise ConfigError(f"unknown config key {where}{k} (known: {', '.join(sorted(out))})")
        out[k] = _merge(out[k], v, f"{where}{k}.") if isinstance(out[k], dict) else v
    return out


def _read(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        obj = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from e
    base = obj.pop("base", None)
    if base:
        return _merge_raw(_read(path.parent / base), obj)
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
    node[parts[-1]] = yaml.safe_load(raw)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> dict:
    """DEFAULTS, then the YAML file (and its bases), then ``overrides``."""
    cfg = _merge(DEFAULTS, _read(Path(path)) if path else {})
    for item in overrides or []:
        apply_override(cfg, item)
    return cfg


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
