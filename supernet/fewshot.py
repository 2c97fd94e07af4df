"""Few-shot splitting: after one-shot training, one sub-supernet per group of codes, each starting from
the one-shot weights and trained only on its group (the challenge's 2nd place split on stage-3/4 depth
into 4-5 sub-supernets; 4th place split progressively). Scoring routes each code to its group's weights.

Groups are defined by depth thresholds: each rule ``{stage: s, at: d}`` splits on "stage s has at least
d blocks", so r rules make 2**r groups, and a group is the search space with narrowed depth ranges.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from .space import DEPTH_RANGES, Arch, SearchSpace

MANIFEST = "fewshot.json"


class FewShotError(ValueError):
    pass


def parse_rules(raw: object) -> list[tuple[int, int]]:
    """``[{stage: 3, at: 6}, ...]`` -> [(stage index 0-3, threshold)], checked against the depth ranges."""
    if raw in (None, []):
        return []
    if not isinstance(raw, list):
        raise FewShotError("fewshot.split_on must be a list of {stage: 1-4, at: depth}")
    rules = []
    for r in raw:
        if not (isinstance(r, dict) and set(r) == {"stage", "at"} and all(isinstance(v, int) and not isinstance(v, bool)
                                                                        for v in r.values())):
            raise FewShotError(f"fewshot.split_on entry {r!r} must be {{stage: 1-4, at: depth}}")
        s = r["stage"] - 1
        if not 0 <= s < len(DEPTH_RANGES):
            raise FewShotError(f"fewshot.split_on: stage {r['stage']} is not 1-4")
        lo, hi = DEPTH_RANGES[s]
        if not lo < r["at"] <= hi:
            raise FewShotError(f"fewshot.split_on: stage {r['stage']} depth {lo}-{hi} cannot split at {r['at']} "
                               f"(need {lo + 1}..{hi})")
        rules.append((s, r["at"]))
    if len({s for s, _ in rules}) != len(rules):
        raise FewShotError("fewshot.split_on names a stage twice")
    return rules


def n_groups(rules: list[tuple[int, int]]) -> int:
    return 2 ** len(rules) if rules else 0


def group_of(arch: Arch, rules: list[tuple[int, int]]) -> int:
    """The group of ``arch``: bit i set when rule i's stage has at least its threshold of blocks."""
    return sum(1 << i for i, (s, at) in enumerate(rules) if arch.depths[s] >= at)


def group_space(space: SearchSpace, rules: list[tuple[int, int]], group: int) -> SearchSpace:
    """``space`` narrowed to the codes of ``group`` (its depth ranges cut at the rules' thresholds)."""
    if not 0 <= group < n_groups(rules):
        raise FewShotError(f"fewshot.group {group} is not one of the {n_groups(rules)} groups of fewshot.split_on")
    ranges = [list(r) for r in space.depth_ranges]
    for i, (s, at) in enumerate(rules):
        lo, hi = ranges[s]
        ranges[s] = [max(lo, at), hi] if group >> i & 1 else [lo, min(hi, at - 1)]
        if ranges[s][0] > ranges[s][1]:
            raise FewShotError(f"group {group} of {space.name} is empty (stage {s + 1})")
    return dataclasses.replace(space, name=f"{space.name}/g{group}", depth_ranges=tuple(map(tuple, ranges)))


def group_dir(one_shot: Path, group: int) -> Path:
    """Where group ``group``'s run lives: beside the one-shot run's files."""
    return Path(one_shot) / f"group{group}"


def write_manifest(folder: Path, rules: list[tuple[int, int]], checkpoints: list[Path]) -> Path:
    """``fewshot.json`` in the one-shot output folder: the rules and each group's final weights."""
    from .runtime import atomic_write_json

    path = folder / MANIFEST
    atomic_write_json(path, {"split_on": [{"stage": s + 1, "at": at} for s, at in rules],
                             "groups": [str(Path(c).relative_to(folder)) for c in checkpoints]})
    return path


def read_manifest(path: Path) -> tuple[list[tuple[int, int]], list[Path]]:
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
        rules = parse_rules(obj["split_on"])
        ckpts = [Path(path).parent / c for c in obj["groups"]]
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise FewShotError(f"{path} is not a few-shot manifest ({e})") from e
    if len(ckpts) != n_groups(rules):
        raise FewShotError(f"{path} lists {len(ckpts)} checkpoints for {n_groups(rules)} groups")
    missing = [str(c) for c in ckpts if not c.is_file()]
    if missing:
        raise FewShotError(f"{path}: group checkpoints missing: {', '.join(missing)}")
    return rules, ckpts


def manifest_digest(rules: list[tuple[int, int]], shas: list[str]) -> str:
    return hashlib.sha256(json.dumps([rules, shas]).encode()).hexdigest()
