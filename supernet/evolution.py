"""Evolutionary search over a tied search space: mutation and crossover that only make valid codes.

A tied code is decided by its genes: per stage the depth, the residual width (stage 1's is the stem's)
and one conv1 width per block. Mutation redraws each gene with probability ``p`` inside the space's
ranges; crossover takes each stage (and the stem) whole from one parent. Both work on genes and rebuild
the code, so every child obeys the depth and width ranges and the width tying by construction (and is
checked). A generation is a pure function of (seed, generation, the codes scored before), so a search
that stops resumes to the same candidates.
"""
from __future__ import annotations

import random
from collections import Counter
from typing import Callable

from .space import Arch, SearchSpace


def _stage(space: SearchSpace, s: int, depth: int, res: int, c1s: list[int], rng: random.Random) -> tuple:
    c1s = (c1s + [rng.choice(space.stage_codes[s]) for _ in range(depth)])[:depth]
    return tuple((c, res) for c in c1s)


def build(space: SearchSpace, depths: list[int], stem: int, res: list[int], c1s: list[list[int]],
          rng: random.Random) -> Arch:
    """The tied code of these genes (stage 1's residual width is the stem's); missing conv1 widths drawn."""
    res = [stem, *res[1:]]
    stages = tuple(_stage(space, s, d, res[s], list(c1s[s]), rng) for s, d in enumerate(depths))
    arch = Arch(depths=tuple(depths), stem=stem, blocks=stages)
    if not space.contains(arch):
        raise ValueError(f"evolution made a code outside {space.name}: {arch.code}")
    return arch


def genes(arch: Arch) -> tuple[list[int], int, list[int], list[list[int]]]:
    return (list(arch.depths), arch.stem, [st[0][1] if st else arch.stem for st in arch.blocks],
            [[c1 for c1, _ in st] for st in arch.blocks])


def mutate(space: SearchSpace, arch: Arch, rng: random.Random, p: float = 0.2) -> Arch:
    depths, stem, res, c1s = genes(arch)
    if rng.random() < p:
        stem = rng.choice(space.stem_codes)
    for s, (lo, hi) in enumerate(space.depth_ranges):
        if rng.random() < p:
            depths[s] = rng.randint(lo, hi)
        if s and rng.random() < p:
            res[s] = rng.choice(space.stage_codes[s])
        c1s[s] = [rng.choice(space.stage_codes[s]) if rng.random() < p else c for c in c1s[s]]
    return build(space, depths, stem, res, c1s, rng)


def crossover(space: SearchSpace, a: Arch, b: Arch, rng: random.Random) -> Arch:
    ga, gb = genes(a), genes(b)
    pick = [rng.random() < 0.5 for _ in range(4)]
    depths = [(ga if pk else gb)[0][s] for s, pk in enumerate(pick)]
    res = [(ga if pk else gb)[2][s] for s, pk in enumerate(pick)]
    c1s = [(ga if pk else gb)[3][s] for s, pk in enumerate(pick)]
    stem = (ga if rng.random() < 0.5 else gb)[1]
    return build(space, depths, stem, res, c1s, rng)


def propose(space: SearchSpace, generation: int, scored: dict[str, float], archs: dict[str, Arch],
            fits: Callable[[Arch], bool], population: int, parents: int, seed: int = 0,
            mutate_p: float = 0.2, max_share: float = 0.25, tries: int = 200) -> list[Arch]:
    """Candidates of ``generation``: random codes within the budget at generation 0, then children of the
    ``parents`` best scored codes, half by mutation and half by crossover (then mutation). New codes only;
    diversity guard: at most ``max_share`` of a generation share one depth configuration."""
    rng = random.Random(f"evolution-{seed}-{generation}")
    best = [archs[c] for c in sorted(scored, key=lambda c: -scored[c])[:parents]]
    out: list[Arch] = []
    seen = set(scored)
    depth_count: Counter = Counter()
    cap = max(1, int(max_share * population))
    for _ in range(population * tries):
        if len(out) == population:
            break
        if generation == 0 or not best:
            child = space.sample(rng)
        elif rng.random() < 0.5:
            child = mutate(space, rng.choice(best), rng, mutate_p)
        else:
            child = mutate(space, crossover(space, rng.choice(best), rng.choice(best), rng), rng, mutate_p / 2)
        if child.code in seen or not fits(child) or depth_count[child.depths] >= cap:
            continue
        seen.add(child.code)
        depth_count[child.depths] += 1
        out.append(child)
    return out
