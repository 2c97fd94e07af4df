"""Channel sorting by importance (once-for-all): make the first k channels of every elastic width the k
channels the full network relies on most, so that a narrow subnet's first-k slice is the best k.

Without it, a narrow subnet runs on whichever channels happen to come first; they train mostly as parts of
wider subnets, and narrow subnets score below what they are worth standalone (docs/ranking.md). Sorting is a
permutation of channels, so the full network computes exactly the same function before and after; the
optimizer's per-parameter state (momentum) is permuted with its parameters, so training the full network
goes on as if nothing happened.

Two kinds of channel groups are sorted:
- a block's middle channels (conv1's outputs, bn1, conv2's inputs): importance = L1 norm of conv2's weights
  reading the channel (once-for-all's ``re_organize_middle_weights``);
- a stage's residual stream (tied: one width per stage; stage 1 shares the stem's): written by the stem,
  every conv2/bn2 and the projection of the stage, read by the next blocks' conv1 and projections and by the
  classifier; importance = the summed L1 norm of all weights reading the channel.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import paddle
import paddle.nn as nn

from .resnet import BasicBlock, SuperNet


@dataclass
class ChannelGroup:
    """Tensors that index one set of channels: ``writers`` along their first axis (conv outputs, BN
    parameters and statistics), ``readers`` along their reading axis (conv inputs: 1, linear inputs: 0); the
    readers' weights also measure each channel's importance."""

    name: str
    writers: list[paddle.Tensor] = field(default_factory=list)
    readers: list[tuple[paddle.Tensor, int]] = field(default_factory=list)

    def add_conv_out(self, conv: nn.Layer, bn: nn.Layer) -> None:
        self.writers += [conv.weight, bn.weight, bn.bias, bn._mean, bn._variance]

    def importance(self) -> np.ndarray:
        total = 0.0
        for w, axis in self.readers:
            a = np.abs(w.numpy())
            total = total + a.sum(axis=tuple(i for i in range(a.ndim) if i != axis))
        return np.asarray(total, dtype=np.float64)


def channel_groups(model: SuperNet) -> list[ChannelGroup]:
    """Every sortable channel group of the supernet (all blocks of the widest, deepest network)."""
    stem = model.blocks[0]
    blocks = [(i, b) for i, b in enumerate(model.blocks) if isinstance(b, BasicBlock)]
    streams: dict[int, ChannelGroup] = {0: ChannelGroup("stem/stage 1 stream")}
    streams[0].add_conv_out(stem.conv, stem.bn)
    groups: list[ChannelGroup] = []
    stage_of = {b.index: b.stage for b in _plan(model).blocks}
    cur = 0  # the stream the next block reads
    for i, blk in blocks:
        s = stage_of[i]
        if s not in streams:
            streams[s] = ChannelGroup(f"stage {s + 1} stream")
        reads = streams[cur]
        reads.readers.append((blk.conv1.weight, 1))
        mid = ChannelGroup(f"block {i} middle")
        mid.add_conv_out(blk.conv1, blk.bn1)
        mid.readers.append((blk.conv2.weight, 1))
        groups.append(mid)
        streams[s].add_conv_out(blk.conv2, blk.bn2)
        if blk.downsample is not None:
            reads.readers.append((blk.downsample[0].weight, 1))
            streams[s].add_conv_out(blk.downsample[0], blk.downsample[1])
        cur = s
    streams[cur].readers.append((model.blocks[-1].fc.weight, 0))
    return groups + [streams[s] for s in sorted(streams)]


def _plan(model: SuperNet):
    from .space import channel_plan

    return channel_plan(model.full_arch, model.cfg)


def _permute(t: paddle.Tensor, order: np.ndarray, axis: int, opt: paddle.optimizer.Optimizer | None) -> None:
    idx = paddle.to_tensor(order, dtype="int64")
    with paddle.no_grad():
        t.set_value(paddle.index_select(t, idx, axis=axis))
    if opt is None or t.stop_gradient:
        return
    for state in getattr(opt, "_accumulators", {}).values():  # momentum etc., same shape as the parameter
        acc = state.get(t.name)
        if acc is not None and list(acc.shape) == list(t.shape):
            acc.set_value(paddle.index_select(acc, idx, axis=axis))
    master = getattr(opt, "_master_weights", {}).get(t.name)  # float32 copies under multi-precision
    if master is not None:
        master.set_value(paddle.index_select(master, idx, axis=axis))


def sort_channels(model: SuperNet, opt: paddle.optimizer.Optimizer | None = None) -> dict:
    """Reorder every channel group by descending importance (stable for ties), in place; ``opt``'s state is
    permuted along. Returns how much moved: the fraction of channels that changed place."""
    moved = total = 0
    for g in channel_groups(model):
        imp = g.importance()
        order = np.argsort(-imp, kind="stable")
        total += len(order)
        if np.array_equal(order, np.arange(len(order))):
            continue
        moved += int((order != np.arange(len(order))).sum())
        for w in g.writers:
            _permute(w, order, 0, opt)
        for w, axis in g.readers:
            _permute(w, order, axis, opt)
    return {"sorted_channels_moved": round(moved / max(1, total), 4)}
