"""The ResNet48 search space of the CVPR 2022 NAS challenge (Track 1): the one source of truth.

Everything that knows about codes, widths, depths, tying and cost lives here; the models,
samplers and tools derive from it. See ../shared/docs/SEARCH_SPACE.md for the facts encoded.

A code is 52 digits: image-size code, 4 stage depths, stem width code, then 23 slots of
(conv1 code, conv2 code) laid out as 5 + 5 + 8 + 5 slots. Active slots come first, inactive
ones are ``00``. The 51-character form (without the image-size digit) is accepted on input.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import Iterator, Sequence

from .cli import clip

WIDTH_RATIOS: tuple[float, ...] = (1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7)
STEM_BASE = 64
STAGE_BASES: tuple[int, ...] = (64, 128, 256, 512)
DEPTH_RANGES: tuple[tuple[int, int], ...] = ((2, 5), (2, 5), (2, 8), (2, 5))
MAX_DEPTHS: tuple[int, ...] = tuple(hi for _, hi in DEPTH_RANGES)
NUM_SLOTS = sum(MAX_DEPTHS)  # 23
CODE_LEN = 52
IMAGE_SIZE_CODES = {1: 224}
NUM_WIDTH_CODES = len(WIDTH_RATIOS)
# Divisors that keep every official width whole (all are multiples of 8): the proxy's width choices.
WIDTH_DIVISORS: tuple[int, ...] = (1, 2, 4, 8)
# First official block index of each stage: blocks.1..5, 6..10, 11..18, 19..23.
STAGE_OFFSETS: tuple[int, ...] = tuple(1 + sum(MAX_DEPTHS[:s]) for s in range(4))
HEAD_INDEX = NUM_SLOTS + 1  # blocks.24.fc
# Where each field sits in the 52-character code.
_DEPTH_POS = 1
_STEM_POS = 5
_SLOT_POS = 6


class ArchCodeError(ValueError):
    """A code that is not a valid ResNet48 arch code; the message names position and rule."""


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round to a multiple of ``divisor`` the way the organisers' baseline does."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new < 0.9 * v:
        new += divisor
    return new


def width_of(code: int, base: int) -> int:
    """Channel count for width code 1..7 on a base width (64/128/256/512)."""
    if not 1 <= code <= NUM_WIDTH_CODES:
        raise ArchCodeError(f"width code {code} out of range 1..{NUM_WIDTH_CODES}")
    return make_divisible(int(WIDTH_RATIOS[code - 1] * base), 8)


def slot_index(stage: int, slot: int) -> int:
    """Official block index (``blocks.N``) of slot ``slot`` of stage ``stage`` (both 0-based)."""
    return STAGE_OFFSETS[stage] + slot


@dataclass(frozen=True)
class Arch:
    """A decoded arch code: depths, stem width code and the (conv1, conv2) codes of active blocks."""

    depths: tuple[int, int, int, int]
    stem: int
    blocks: tuple[tuple[tuple[int, int], ...], ...]  # per stage, one (conv1, conv2) per active block
    image_code: int = 1

    @classmethod
    def parse(cls, code: str | int) -> "Arch":
        return parse_code(code)

    @property
    def code(self) -> str:
        """The 52-character official form."""
        digits = [str(self.image_code), *map(str, self.depths), str(self.stem)]
        for s, stage in enumerate(self.blocks):
            for j in range(MAX_DEPTHS[s]):
                digits += [str(stage[j][0]), str(stage[j][1])] if j < len(stage) else ["0", "0"]
        return "".join(digits)

    def __str__(self) -> str:
        return self.code

    @property
    def depth(self) -> int:
        """Residual blocks in all: the free 'depth' predictor (the strongest one on the proxy and on the
        30 public ImageNet codes: most of what separates the 45k list's codes is their depth)."""
        return sum(self.depths)

    @property
    def is_tied(self) -> bool:
        """True if the code obeys the supernet's weight tying (one residual width per stage)."""
        return tied_violation(self) is None

    @property
    def image_size(self) -> int:
        return IMAGE_SIZE_CODES[self.image_code]


def _fail(code: str, pos: int, offset: int, rule: str) -> ArchCodeError:
    shown = pos - offset
    where = f"position {shown}" + (f" (position {pos} of the 52-character form)" if offset else "")
    return ArchCodeError(f"invalid arch code {clip(code)!r}: {where}: {rule}")


def _field_name(pos: int) -> str:
    if pos == 0:
        return "image-size code"
    if pos < _STEM_POS:
        return f"depth of stage {pos}"
    if pos == _STEM_POS:
        return "stem width code"
    k = (pos - _SLOT_POS) // 2
    stage = next(s for s in range(4) if k < sum(MAX_DEPTHS[: s + 1]))
    slot = k - sum(MAX_DEPTHS[:stage])
    conv = "conv1" if (pos - _SLOT_POS) % 2 == 0 else "conv2"
    return f"stage {stage + 1} slot {slot + 1} {conv} code"


def parse_code(code: str | int) -> Arch:
    """Validate and decode a 52- or 51-character code. Raises ArchCodeError naming the rule broken."""
    raw = str(code).strip()
    if len(raw) not in (CODE_LEN, CODE_LEN - 1):
        raise ArchCodeError(
            f"invalid arch code {clip(raw)!r}: wrong length {len(raw)}, expected {CODE_LEN} (or {CODE_LEN - 1} "
            "without the leading image-size digit)")
    for i, ch in enumerate(raw):
        if not ch.isdigit() or not ch.isascii():
            raise ArchCodeError(f"invalid arch code {clip(raw)!r}: position {i}: non-digit character {ch!r}")
    offset = CODE_LEN - len(raw)  # 1 for the 51-character form
    full = "1" * offset + raw
    d = [int(c) for c in full]
    if d[0] not in IMAGE_SIZE_CODES:
        raise _fail(raw, 0, offset, f"image-size code {d[0]} unknown (only {sorted(IMAGE_SIZE_CODES)})")
    depths = []
    for s, (lo, hi) in enumerate(DEPTH_RANGES):
        v = d[_DEPTH_POS + s]
        if not lo <= v <= hi:
            raise _fail(raw, _DEPTH_POS + s, offset, f"depth of stage {s + 1} is {v}, out of range {lo}..{hi}")
        depths.append(v)
    if not 1 <= d[_STEM_POS] <= NUM_WIDTH_CODES:
        raise _fail(raw, _STEM_POS, offset, f"stem width code {d[_STEM_POS]} out of range 1..{NUM_WIDTH_CODES}")
    stages = []
    pos = _SLOT_POS
    for s in range(4):
        stage = []
        for j in range(MAX_DEPTHS[s]):
            pair = (d[pos], d[pos + 1])
            active = j < depths[s]
            for p, v in ((pos, pair[0]), (pos + 1, pair[1])):
                if active and v == 0:
                    raise _fail(raw, p, offset, f"{_field_name(p)} is 0 but the slot is active "
                                                f"(stage depth {depths[s]})")
                if active and v > NUM_WIDTH_CODES:
                    raise _fail(raw, p, offset, f"{_field_name(p)} {v} out of range 1..{NUM_WIDTH_CODES}")
                if not active and v != 0:
                    raise _fail(raw, p, offset, f"{_field_name(p)} is {v} but the slot is inactive "
                                                f"(stage depth {depths[s]}); inactive slots must be 00")
            if active:
                stage.append(pair)
            pos += 2
        stages.append(tuple(stage))
    return Arch(depths=tuple(depths), stem=d[_STEM_POS], blocks=tuple(stages), image_code=d[0])


def tied_violation(arch: Arch) -> str | None:
    """Why ``arch`` breaks the supernet's width tying, or None if it obeys it.

    The residual stream of a stage has one width: stage-1 conv2 codes equal the stem code, and
    within stages 2-4 all conv2 codes are equal (they also set the downsample width).
    """
    for s, stage in enumerate(arch.blocks):
        ref = arch.stem if s == 0 else stage[0][1]
        for j, (_, c2) in enumerate(stage):
            if c2 != ref:
                what = "the stem code" if s == 0 else "the conv2 code of slot 1"
                return (f"stage {s + 1} slot {j + 1} conv2 code {c2} differs from {what} {ref}: "
                        "the supernet ties every residual width of a stage")
    return None


# --------------------------------------------------------------------------------------------
# Network configuration and channel plan


@dataclass(frozen=True)
class NetConfig:
    """How an arch becomes a network: input, classes, width divisor and stem kind.

    ``imagenet`` stem: 7x7 stride-2 conv + max-pool; ``small`` stem: 3x3 stride-1 conv, no pool
    (the Fashion-MNIST proxy). Widths of the official decoding are divided by ``width_divisor``.
    """

    in_channels: int = 3
    num_classes: int = 1000
    width_divisor: int = 1
    stem: str = "imagenet"
    input_size: int = 224

    def __post_init__(self) -> None:
        if self.stem not in ("imagenet", "small"):
            raise ValueError(f"stem must be 'imagenet' or 'small', got {self.stem!r}")
        if self.width_divisor < 1 or self.in_channels < 1 or self.num_classes < 1 or self.input_size < 1:
            raise ValueError(f"invalid NetConfig {self}")

    def scale(self, width: int) -> int:
        """Apply the width divisor (exact for the official widths, which are multiples of 8)."""
        return max(1, round(width / self.width_divisor))


IMAGENET = NetConfig()
# The proxy (protocol v3, docs/training.md, "Proxy protocol notes"): widths / 8, exact since every official width is a
# multiple of 8; protocol v2 (../shared/proxy_gt/dev_gt.json) used widths / 4.
FMNIST28 = NetConfig(in_channels=1, num_classes=10, width_divisor=8, stem="small", input_size=28)
# Networks by name: a config's ``model.dataset`` (fmnist, imagenet) and a latency table's ``net`` (fmnist28).
NETWORKS = {"imagenet": IMAGENET, "fmnist": FMNIST28, "fmnist28": FMNIST28}


def network(name: str, width_divisor: int | None = None) -> NetConfig:
    """The NetConfig of a named network, at ``width_divisor`` (default: the network's own)."""
    base = NETWORKS[name]
    return replace(base, width_divisor=width_divisor or base.width_divisor)


@dataclass(frozen=True)
class BlockPlan:
    """Concrete shape of one BasicBlock of a decoded arch."""

    index: int  # official ``blocks.N`` index
    stage: int  # 0-based
    in_ch: int
    mid: int  # conv1 output
    out: int  # conv2 output
    stride: int
    projection: bool  # 1x1 conv + BN shortcut instead of identity


@dataclass(frozen=True)
class ChannelPlan:
    stem: int
    blocks: tuple[BlockPlan, ...]
    last: int  # input width of the classifier


def channel_plan(arch: Arch, cfg: NetConfig = IMAGENET) -> ChannelPlan:
    """Per-block channels, strides and shortcut kinds of ``arch`` under ``cfg``."""
    stem = cfg.scale(width_of(arch.stem, STEM_BASE))
    cur = stem
    blocks = []
    for s, stage in enumerate(arch.blocks):
        for j, (c1, c2) in enumerate(stage):
            mid = cfg.scale(width_of(c1, STAGE_BASES[s]))
            out = cfg.scale(width_of(c2, STAGE_BASES[s]))
            stride = 2 if (s > 0 and j == 0) else 1
            blocks.append(BlockPlan(slot_index(s, j), s, cur, mid, out, stride, stride != 1 or cur != out))
            cur = out
    return ChannelPlan(stem=stem, blocks=tuple(blocks), last=cur)


def _conv_out(size: int, k: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - k) // stride + 1


@dataclass(frozen=True)
class Cost:
    params: int
    macs: int


def count_cost(arch: Arch, cfg: NetConfig = IMAGENET, input_size: int | None = None) -> Cost:
    """Analytic trainable-parameter and multiply-accumulate counts (convs and FC; BN adds params only)."""
    plan = channel_plan(arch, cfg)
    h = input_size or cfg.input_size
    params = macs = 0

    def conv(cin: int, cout: int, k: int, stride: int, pad: int) -> None:
        nonlocal h, params, macs
        h = _conv_out(h, k, stride, pad)
        params += k * k * cin * cout + 2 * cout  # + BN gamma/beta
        macs += k * k * cin * cout * h * h

    if cfg.stem == "imagenet":
        conv(cfg.in_channels, plan.stem, 7, 2, 3)
        h = _conv_out(h, 3, 2, 1)
    else:
        conv(cfg.in_channels, plan.stem, 3, 1, 1)
    for b in plan.blocks:
        h_in = h
        conv(b.in_ch, b.mid, 3, b.stride, 1)
        conv(b.mid, b.out, 3, 1, 1)
        if b.projection:
            h_out, h = h, h_in
            conv(b.in_ch, b.out, 1, b.stride, 0)
            h = h_out
    params += plan.last * cfg.num_classes + cfg.num_classes
    macs += plan.last * cfg.num_classes
    return Cost(params=params, macs=macs)


# --------------------------------------------------------------------------------------------
# Search spaces and samplers

DEPTH_BIASES = ("uniform", "deep")
WIDTH_BIASES = ("uniform", "narrow", "narrowest")


@dataclass(frozen=True)
class SearchSpace:
    """A distribution over codes: allowed width codes per part, and whether residual widths are tied.

    Sampling: each free width code uniform over its choices; depth per stage uniform, or with
    ``depth_bias="deep"`` in proportion to its place in the range (2..5 -> 1:2:3:4), so the last blocks
    of a stage are trained more often than under uniform depths (there the last block of stage 4 runs in
    a quarter of the random subnets, that of stage 3 in a seventh). With ``width_bias="narrow"`` each free
    width code is drawn in proportion to its place among the choices (widest 1 : ... : narrowest n), so
    narrow slices train more often as subnets of their own; ``"narrowest"`` weights by the square of that
    place (1 : 4 : ... : n^2), for a stronger push.
    """

    name: str
    stem_codes: tuple[int, ...]
    stage_codes: tuple[tuple[int, ...], ...]  # per stage, for conv1 and conv2 alike
    tied: bool = True
    depth_ranges: tuple[tuple[int, int], ...] = field(default=DEPTH_RANGES)
    depth_bias: str = "uniform"  # uniform | deep (see DEPTH_BIASES)
    width_bias: str = "uniform"  # uniform | narrow | narrowest (see WIDTH_BIASES)

    def __post_init__(self) -> None:
        if self.depth_bias not in DEPTH_BIASES:
            raise ValueError(f"depth_bias {self.depth_bias!r} is not one of {', '.join(DEPTH_BIASES)}")
        if self.width_bias not in WIDTH_BIASES:
            raise ValueError(f"width_bias {self.width_bias!r} is not one of {', '.join(WIDTH_BIASES)}")

    def _depth(self, rng: random.Random, lo: int, hi: int) -> int:
        if self.depth_bias == "uniform":
            return rng.randint(lo, hi)  # the historical draw: uniform runs stay bit-identical
        return rng.choices(range(lo, hi + 1), weights=range(1, hi - lo + 2))[0]

    def _width(self, rng: random.Random, codes: tuple[int, ...]) -> int:
        if self.width_bias == "uniform":
            return rng.choice(codes)  # the historical draw: uniform runs stay bit-identical
        power = 2 if self.width_bias == "narrowest" else 1
        return rng.choices(sorted(codes), weights=[i ** power for i in range(1, len(codes) + 1)])[0]

    def sample(self, rng: random.Random) -> Arch:
        depths = tuple(self._depth(rng, lo, hi) for lo, hi in self.depth_ranges)
        w = self._width
        stem = w(rng, self.stem_codes)
        stages = []
        for s, d in enumerate(depths):
            codes = self.stage_codes[s]
            if self.tied:
                res = stem if s == 0 else w(rng, codes)
                stages.append(tuple((w(rng, codes), res) for _ in range(d)))
            else:
                stages.append(tuple((w(rng, codes), w(rng, codes)) for _ in range(d)))
        return Arch(depths=depths, stem=stem, blocks=tuple(stages))

    def largest(self) -> Arch:
        """Deepest and widest member (smallest width code = widest)."""
        return self._extreme(min(self.stem_codes), min, 1)

    def smallest(self) -> Arch:
        """Shallowest and narrowest member."""
        return self._extreme(max(self.stem_codes), max, 0)

    def _extreme(self, stem: int, pick, depth_end: int) -> Arch:
        depths = tuple(r[depth_end] for r in self.depth_ranges)
        stages = []
        for s, d in enumerate(depths):
            c = pick(self.stage_codes[s])
            stages.append(tuple((c, stem if s == 0 else c) for _ in range(d)))
        return Arch(depths=depths, stem=stem, blocks=tuple(stages))

    def contains(self, arch: Arch) -> bool:
        if any(not lo <= d <= hi for d, (lo, hi) in zip(arch.depths, self.depth_ranges)):
            return False
        if arch.stem not in self.stem_codes or (self.tied and not arch.is_tied):
            return False
        return all(c in self.stage_codes[s] for s, st in enumerate(arch.blocks) for pair in st for c in pair)


_ALL = tuple(range(1, NUM_WIDTH_CODES + 1))
FULL_SPACE = SearchSpace("full", stem_codes=_ALL, stage_codes=(_ALL,) * 4, tied=True)
FULL_UNTIED_SPACE = SearchSpace("full_untied", stem_codes=_ALL, stage_codes=(_ALL,) * 4, tied=False)
OFFICIAL_SPACE = SearchSpace("official45k", stem_codes=(1, 2, 3),
                             stage_codes=((1, 2, 3), (1, 2, 3), (1, 2, 3, 4, 5), _ALL), tied=True)
SPACES = {s.name: s for s in (FULL_SPACE, FULL_UNTIED_SPACE, OFFICIAL_SPACE)}


def get_space(name: str) -> SearchSpace:
    try:
        return SPACES[name]
    except KeyError:
        raise ValueError(f"unknown search space {name!r}; choose from {sorted(SPACES)}") from None


def iter_sample(space: SearchSpace, n: int, seed: int = 0, unique: bool = True) -> Iterator[Arch]:
    """``n`` codes from ``space``, reproducible from ``seed`` (distinct when ``unique``)."""
    rng = random.Random(seed)
    seen: set[str] = set()
    while len(seen) < n if unique else n > 0:
        a = space.sample(rng)
        if unique:
            if a.code in seen:
                continue
            seen.add(a.code)
        else:
            n -= 1
        yield a


def parse_many(codes: Sequence[tuple[str, str]]) -> tuple[dict[str, Arch], list[str]]:
    """Parse (key, code) pairs; return the good ones and one message per bad one (all of them)."""
    good: dict[str, Arch] = {}
    errors: list[str] = []
    for key, code in codes:
        try:
            good[key] = parse_code(code)
        except ArchCodeError as e:
            errors.append(f"{key}: {e}")
    return good, errors
