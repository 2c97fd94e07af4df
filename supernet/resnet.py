"""ResNet48: the standalone network of one code, and the elastic supernet of all codes.

Both are the same skeleton, built from a ChannelPlan with layer classes injected: plain Paddle
layers for a standalone model, elastic ones (supernet/elastic.py) for the supernet, which is the
skeleton of the widest, deepest arch with ``set_active(code)``. Parameter names are the official
ones: ``blocks.0.conv/bn`` (stem), ``blocks.1..23.conv1/bn1/conv2/bn2/downsample.{0,1}``,
``blocks.24.fc``; missing slots of a shallow standalone model are parameter-free placeholders so
every block keeps its official index.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import paddle
import paddle.nn as nn

from .elastic import Conv2D, ElasticBatchNorm2D, ElasticConv2D, ElasticLinear, slice_to
from .space import (FULL_SPACE, HEAD_INDEX, IMAGENET, NUM_SLOTS, Arch, ChannelPlan, NetConfig, channel_plan,
                    parse_code, tied_violation)


@dataclass(frozen=True)
class LayerKit:
    """The layer classes a network is built from."""

    conv: type
    bn: type
    linear: type


PLAIN = LayerKit(conv=Conv2D, bn=nn.BatchNorm2D, linear=nn.Linear)
ELASTIC = LayerKit(conv=ElasticConv2D, bn=ElasticBatchNorm2D, linear=ElasticLinear)


class Stem(nn.Layer):
    def __init__(self, cfg: NetConfig, width: int, kit: LayerKit) -> None:
        super().__init__()
        if cfg.stem == "imagenet":
            self.conv = kit.conv(cfg.in_channels, width, 7, 2, 3)
            self.pool = nn.MaxPool2D(3, 2, 1)
        else:
            self.conv = kit.conv(cfg.in_channels, width, 3, 1, 1)
            self.pool = None
        self.bn = kit.bn(width)
        self.relu = nn.ReLU()

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.relu(self.bn(self.conv(x)))
        return self.pool(x) if self.pool is not None else x


class BasicBlock(nn.Layer):
    def __init__(self, cin: int, mid: int, out: int, stride: int, projection: bool, kit: LayerKit) -> None:
        super().__init__()
        self.conv1 = kit.conv(cin, mid, 3, stride, 1)
        self.bn1 = kit.bn(mid)
        self.conv2 = kit.conv(mid, out, 3, 1, 1)
        self.bn2 = kit.bn(out)
        self.downsample = nn.Sequential(kit.conv(cin, out, 1, stride, 0), kit.bn(out)) if projection else None
        self.relu = nn.ReLU()
        self.residual = True  # False only while Zen-Score is computed (its paper removes residual links)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if not self.residual:
            return self.relu(y)
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(y + identity)


class Head(nn.Layer):
    def __init__(self, width: int, num_classes: int, kit: LayerKit) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2D(1)
        self.fc = kit.linear(width, num_classes)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.fc(paddle.flatten(self.pool(x), 1))


class ResNet48(nn.Layer):
    """The network of one ChannelPlan. Use ``ResNet48.from_code`` for a standalone model."""

    def __init__(self, plan: ChannelPlan, cfg: NetConfig = IMAGENET, kit: LayerKit = PLAIN) -> None:
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Layer] = [Stem(cfg, plan.stem, kit)]
        layers += [nn.Identity() for _ in range(NUM_SLOTS)]
        for b in plan.blocks:
            layers[b.index] = BasicBlock(b.in_ch, b.mid, b.out, b.stride, b.projection, kit)
        layers.append(Head(plan.last, cfg.num_classes, kit))
        self.blocks = nn.LayerList(layers)
        self.active_blocks = [b.index for b in plan.blocks]

    @classmethod
    def from_code(cls, code: str | Arch, cfg: NetConfig = IMAGENET) -> "ResNet48":
        arch = code if isinstance(code, Arch) else parse_code(code)
        model = cls(channel_plan(arch, cfg), cfg)
        model.arch = arch
        return model

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        """The feature map before global pooling (stem and the active blocks)."""
        x = self.blocks[0](x)
        for i in self.active_blocks:
            x = self.blocks[i](x)
        return x

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.blocks[HEAD_INDEX](self.forward_features(x))


class SuperNet(ResNet48):
    """Elastic ResNet48 holding every tied code of the search space in one set of weights.

    Codes that break the width tying (see space.tied_violation) are refused: the residual stream
    of a stage has one width in the shared weights, so such a code has no subnet here (its
    standalone model still exists: ResNet48.from_code).
    """

    def __init__(self, cfg: NetConfig = IMAGENET) -> None:
        full = FULL_SPACE.largest()
        super().__init__(channel_plan(full, cfg), cfg, ELASTIC)
        self.full_arch = full
        self.arch = full

    @staticmethod
    def full_code() -> str:
        """Code of the widest, deepest subnet (the full ResNet48)."""
        return FULL_SPACE.largest().code

    def set_active(self, code: str | Arch) -> Arch:
        """Activate a subnet: its depths and, on every elastic layer, its output widths."""
        arch = code if isinstance(code, Arch) else parse_code(code)
        why = tied_violation(arch)
        if why is not None:
            raise ValueError(f"code {arch.code} cannot run on the supernet: {why}")
        plan = channel_plan(arch, self.cfg)
        self.blocks[0].conv.active_out = plan.stem
        for b in plan.blocks:
            blk = self.blocks[b.index]
            blk.conv1.active_out = b.mid
            blk.conv2.active_out = b.out
            if blk.downsample is not None:
                blk.downsample[0].active_out = b.out
            elif b.projection:  # cannot happen for tied codes; guards future changes of the space
                raise ValueError(f"code {arch.code}: block {b.index} needs a projection the supernet lacks")
        self.active_blocks = [b.index for b in plan.blocks]
        self.arch = arch
        return arch

    def extract(self, code: str | Arch | None = None) -> ResNet48:
        """A standalone ResNet48 holding copies of the active subnet's sliced weights and BN statistics."""
        arch = self.set_active(code) if code is not None else self.arch
        sub = ResNet48.from_code(arch, self.cfg)
        full = self.state_dict()
        state = {k: slice_to(full[k], v.shape).clone() for k, v in sub.state_dict().items()}
        sub.set_state_dict(state)
        sub.train(self.training)
        return sub


def check_state_dict(model: nn.Layer, state: Mapping[str, object], allow_slice: bool = False) -> list[str]:
    """Every mismatch between ``state`` and ``model``'s parameters/buffers: missing, unexpected, shape."""
    own = model.state_dict()
    problems = []
    for k in sorted(set(own) - set(state)):
        problems.append(f"missing: {k} {list(own[k].shape)}")
    for k in sorted(set(state) - set(own)):
        problems.append(f"unexpected: {k} {list(np.shape(state[k]))}")
    for k in sorted(set(own) & set(state)):
        have, want = list(np.shape(state[k])), list(own[k].shape)
        fits = have == want or (allow_slice and len(have) == len(want) and all(w <= h for w, h in zip(want, have)))
        if not fits:
            problems.append(f"shape: {k} checkpoint {have} vs model {want}")
    return problems


def load_weights(model: nn.Layer, state: Mapping[str, object] | str, allow_slice: bool = False,
                 what: str = "checkpoint") -> None:
    """Load a state dict (or a .pdparams path) with official names, refusing any mismatch.

    With ``allow_slice`` a wider checkpoint (e.g. the full ResNet48) initialises a narrower model by
    first-k slicing, the supernet's weight-sharing rule.
    """
    if isinstance(state, str):
        what = state if what == "checkpoint" else what
        if not os.path.isfile(state):
            raise ValueError(f"{what}: file does not exist")
        try:
            state = paddle.load(state)
        except Exception as e:  # noqa: BLE001 - not a Paddle file, truncated, ...
            raise ValueError(f"{what} is not a readable Paddle checkpoint: {e}") from e
    problems = check_state_dict(model, state, allow_slice)
    if problems:
        kinds = {k: sum(p.startswith(k) for p in problems) for k in ("missing", "unexpected", "shape")}
        summary = ", ".join(f"{n} {k}" for k, n in kinds.items() if n)
        own = model.state_dict()
        if not set(own) & set(state) and state:
            summary += (f"; no name in common: the checkpoint has names like {next(iter(state))!r}, "
                        f"this model like {next(iter(own))!r} (official names are expected)")
        shown = "\n  ".join(problems[:40]) + (f"\n  ... and {len(problems) - 40} more" if len(problems) > 40 else "")
        raise ValueError(f"{what} does not fit this model ({summary}):\n  {shown}")
    own = model.state_dict()
    as_tensor = lambda v: v if isinstance(v, paddle.Tensor) else paddle.to_tensor(v)  # noqa: E731
    for k in own:  # NaN/inf weights would score every subnet as NaN: refuse them here
        v = state[k]
        arr = v.numpy() if isinstance(v, paddle.Tensor) else np.asarray(v)
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise ValueError(f"{what} holds non-finite values (NaN or inf) in {k}: a diverged or corrupt run")
    model.set_state_dict({k: slice_to(as_tensor(state[k]), own[k].shape) for k in own})
