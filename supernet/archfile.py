"""Arch files: the official JSON form, plain code lists, ground-truth records, split and merge.

Official form: ``{"archN": {"arch": "<52 digits>", "acc": float, ...}}``. A plain list holds one
code per line (``key code`` also accepted); its keys become ``archN`` by line order.
"""
from __future__ import annotations

import fcntl
import json
import math
import os
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

from .cli import clip
from .runtime import atomic_write_json
from .space import Arch, ArchCodeError, parse_code, parse_many

OFFICIAL_45K_NAME = "CVPR_2022_NAS_Track1_test.json"


class ArchFileError(ValueError):
    """An arch file that cannot be read, or holds invalid codes (all reported together)."""


def default_shared_dir() -> Path:
    """``../shared`` next to this checkout (where the official data lives in development)."""
    return Path(__file__).resolve().parents[2] / "shared"


def _no_duplicates(path: Path):
    """A json ``object_pairs_hook`` that refuses a key given twice (json keeps the last one silently)."""
    def hook(pairs: list) -> OrderedDict:
        out: OrderedDict = OrderedDict()
        for k, v in pairs:
            if k in out:
                raise ArchFileError(f"{path}: key {clip(k)!r} appears twice")
            out[k] = v
        return out
    return hook


def read_entries(path: str | Path) -> "OrderedDict[str, dict]":
    """Entries of an official-form JSON or a plain list, in file order; no code validation yet."""
    p = Path(path)
    if not p.is_file():
        raise ArchFileError(f"arch file {p} does not exist" if not p.exists() else f"{p} is not a file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ArchFileError(f"{p} is not UTF-8 text (byte {e.start})") from e
    except OSError as e:
        raise ArchFileError(f"{p} cannot be read: {e.strerror}") from e
    if text.lstrip().startswith(("{", "[")):
        try:
            obj = json.loads(text, object_pairs_hook=_no_duplicates(p))
        except json.JSONDecodeError as e:
            raise ArchFileError(f"{p} is not valid JSON: {e}") from e
        if not isinstance(obj, dict):
            raise ArchFileError(f"{p}: expected a JSON object of {{key: {{\"arch\": code, ...}}}}, got a list")
        out: OrderedDict[str, dict] = OrderedDict()
        bad = []
        for k, v in obj.items():
            if isinstance(v, Mapping) and isinstance(v.get("arch"), (str, int)) and not isinstance(v["arch"], bool):
                out[k] = dict(v)
                out[k]["arch"] = str(v["arch"])
            elif isinstance(v, str):
                out[k] = {"arch": v}
            else:
                bad.append(k)
        if bad:
            raise ArchFileError(f"{p}: {len(bad)} entries lack an 'arch' code, e.g. {[clip(b) for b in bad[:5]]}")
        if not out:
            raise ArchFileError(f"{p} holds no codes")
        return out
    out = OrderedDict()
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        key, code = (parts[0], parts[1]) if len(parts) >= 2 else (f"arch{len(out) + 1}", parts[0])
        if key in out:
            raise ArchFileError(f"{p}:{n}: duplicate key {clip(key)}")
        out[key] = {"arch": code}
    if not out:
        raise ArchFileError(f"{p} holds no codes")
    return out


def read_archs(path: str | Path) -> "OrderedDict[str, Arch]":
    """Validated archs by key; every invalid code is reported together, by key, before any work."""
    entries = read_entries(path)
    good, errors = parse_many([(k, v["arch"]) for k, v in entries.items()])
    if errors:
        shown = "\n  ".join(errors[:50]) + (f"\n  ... and {len(errors) - 50} more" if len(errors) > 50 else "")
        raise ArchFileError(f"{path}: {len(errors)} invalid codes:\n  {shown}")
    key_of: dict[str, str] = {}
    for k in entries:  # a code listed twice (also as its 51- and 52-character forms) would be scored twice
        other = key_of.setdefault(good[k].code, k)
        if other != k:
            raise ArchFileError(f"{path}: {clip(other)} and {clip(k)} hold the same code")
    return OrderedDict((k, good[k]) for k in entries)


def finite_number(v: object) -> float | None:
    """``v`` as a float when it is a finite real number (not a bool, string or NaN), else None."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def read_scores(path: str | Path) -> dict[str, float]:
    """code (52-char) -> acc, for matching prediction and ground-truth files by code, not key.

    Every score must be a finite number and every code appear once: a silently dropped duplicate
    or a NaN changes a correlation without a word."""
    out: dict[str, float] = {}
    key_of: dict[str, str] = {}
    for k, v in read_entries(path).items():
        try:
            code = parse_code(v["arch"]).code
        except ArchCodeError as e:
            raise ArchFileError(f"{path}: {clip(k)}: {e}") from e
        if "acc" not in v:
            raise ArchFileError(f"{path}: {clip(k)} has no 'acc'")
        acc = finite_number(v["acc"])
        if acc is None:
            raise ArchFileError(f"{path}: {clip(k)} has 'acc' {clip(repr(v['acc']))}: not a finite number")
        if code in out:
            raise ArchFileError(f"{path}: {clip(key_of[code])} and {clip(k)} hold the same code")
        out[code], key_of[code] = acc, k
    if not out:
        raise ArchFileError(f"{path} holds no scores")
    return out


def write_official(path: str | Path, archs: Mapping[str, Arch | str], accs: Mapping[str, float] | None = None) -> None:
    """Write the official form atomically (``acc`` 0.0 where none is given); a non-finite score is refused
    (NaN is not JSON, and a strict reader fails on it)."""
    obj = OrderedDict()
    for k, a in archs.items():
        acc = float(accs[k]) if accs and k in accs else 0.0
        if not math.isfinite(acc):
            raise ArchFileError(f"{path}: the score of {clip(k)} is {acc}; non-finite scores are not written")
        obj[k] = {"acc": acc, "arch": a.code if isinstance(a, Arch) else a}
    atomic_write_json(path, obj)


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock beside ``path`` (resolved: every name of one file shares the lock), so parallel
    runs can merge into one file safely."""
    path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(str(path) + ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def lookup_key(code: str, *files: str | Path) -> str | None:
    """The key of ``code`` in the first of ``files`` (that exists) which holds it."""
    for f in files:
        if f and Path(f).is_file():
            for k, v in read_entries(f).items():
                try:
                    if parse_code(v["arch"]).code == code:
                        return k
                except ArchCodeError:
                    continue
    return None


def split_file(path: str | Path, n: int, out_dir: str | Path) -> list[Path]:
    """Split an arch file into ``n`` contiguous parts ``part{i}.json`` (official form)."""
    entries = read_entries(path)
    keys = list(entries)
    if not 1 <= n <= len(keys):
        raise ArchFileError(f"cannot split {len(keys)} entries into {n} parts")
    out = []
    for i in range(n):
        part = keys[i * len(keys) // n: (i + 1) * len(keys) // n]
        dest = Path(out_dir) / f"part{i + 1}.json"
        atomic_write_json(dest, OrderedDict((k, entries[k]) for k in part))
        out.append(dest)
    return out


def _canonical(code: str) -> str:
    try:
        return parse_code(code).code
    except ArchCodeError:
        return code


def merge_files(paths: list[str | Path], out: str | Path, order_from: str | Path | None = None) -> int:
    """Merge official-form files into one (keys must not disagree); keys ordered like ``order_from``."""
    merged: OrderedDict[str, dict] = OrderedDict()
    for p in paths:
        for k, v in read_entries(p).items():
            if k in merged and merged[k] != v:
                raise ArchFileError(f"{p}: key {clip(k)} disagrees with an earlier file ({clip(merged[k])} vs {clip(v)})")
            if "acc" in v and finite_number(v["acc"]) is None:
                raise ArchFileError(f"{p}: {clip(k)} has 'acc' {clip(repr(v['acc']))}: not a finite number")
            merged[k] = v
    if order_from is not None:
        ref = read_entries(order_from)
        missing = [k for k in ref if k not in merged]
        if missing:
            raise ArchFileError(f"merged files lack {len(missing)} keys of {order_from}, e.g. {missing[:5]}")
        extra = [k for k in merged if k not in ref]
        if extra:
            raise ArchFileError(f"merged files hold {len(extra)} keys that {order_from} lacks, e.g. {extra[:5]}")
        for k, v in ref.items():  # a score belongs to a code, not to a key
            if _canonical(merged[k]["arch"]) != _canonical(v["arch"]):
                raise ArchFileError(f"{k} holds code {clip(merged[k]['arch'])} in the merged files but "
                                    f"{clip(v['arch'])} in {order_from}")
        merged = OrderedDict((k, merged[k]) for k in ref)
    key_of: dict[str, str] = {}
    for k, v in merged.items():
        other = key_of.setdefault(_canonical(v["arch"]), k)
        if other != k:
            raise ArchFileError(f"merged files: {clip(other)} and {clip(k)} hold the same code")
    atomic_write_json(out, merged)
    return len(merged)


def official_45k_path(explicit: str | Path | None = None) -> Path | None:
    """The official 45k file: an explicit path, $NAS_TRACK1_JSON, or ../shared/data; None if absent."""
    for cand in (explicit, os.environ.get("NAS_TRACK1_JSON"), default_shared_dir() / "data" / OFFICIAL_45K_NAME):
        if cand and Path(cand).is_file():
            return Path(cand)
    return None
