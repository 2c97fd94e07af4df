"""Latency of a subnet on this device, predicted from a table of its layers measured here.

A subnet's forward time is modelled as the sum of its layers' times (stem, each block's conv1, conv2 and
projection shortcut with their BN and ReLU, the head) plus a cost per block (residual add, dispatch) and
a fixed cost, both fitted by least squares on a few whole subnets measured at the same time. Every layer
shape the search space can produce is measured once, on the current device and input size, so the table
belongs to one machine, batch size and resolution (recorded in it; a table of another is refused).
"""
from __future__ import annotations

import statistics
import time
from typing import Callable, Iterable

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .elastic import Conv2D  # the layer the networks use (oneDNN on the CPU)
from .space import STAGE_BASES, STEM_BASE, Arch, NetConfig, SearchSpace, channel_plan, width_of

Layer = tuple  # ("stem", cout) | ("conv", cin, cout, k, stride, h_in) | ("head", cin)


def layers_of(arch: Arch, cfg: NetConfig) -> tuple[list[Layer], int]:
    """The measured pieces of ``arch`` (convs with their BN/ReLU, keyed by shape and input size) and its
    number of blocks."""
    plan = channel_plan(arch, cfg)
    h = cfg.input_size
    out: list[Layer] = [("stem", plan.stem)]
    if cfg.stem == "imagenet":
        h = (h + 6 - 7) // 2 + 1
        h = (h + 2 - 3) // 2 + 1
    for b in plan.blocks:
        out.append(("conv", b.in_ch, b.mid, 3, b.stride, h))
        h2 = (h + 2 - 3) // b.stride + 1
        out.append(("conv", b.mid, b.out, 3, 1, h2))
        if b.projection:
            out.append(("conv", b.in_ch, b.out, 1, b.stride, h))
        h = h2
    out.append(("head", plan.last))
    return out, len(plan.blocks)


def all_layers(space: SearchSpace, cfg: NetConfig) -> set[Layer]:
    """Every layer shape the space's codes can contain under ``cfg`` (enumerated per stage, not per code)."""
    widths = lambda s, codes: sorted({cfg.scale(width_of(c, STAGE_BASES[s])) for c in codes})  # noqa: E731
    stems = sorted({cfg.scale(width_of(c, STEM_BASE)) for c in space.stem_codes})
    seen: set[Layer] = {("stem", w) for w in stems}
    h = cfg.input_size if cfg.stem != "imagenet" else ((cfg.input_size + 6 - 7) // 2 + 1 + 2 - 3) // 2 + 1
    prev = stems
    for s in range(4):
        ws = widths(s, space.stage_codes[s])
        stride = 2 if s > 0 else 1
        h2 = (h + 2 - 3) // stride + 1
        outs = stems if s == 0 else ws  # stage 1's residual width is the stem's (tying)
        for cin in prev:
            for mid in ws:
                seen.add(("conv", cin, mid, 3, stride, h))  # first block
            for out in outs:
                if stride != 1 or cin != out:
                    seen.add(("conv", cin, out, 1, stride, h))
        for out in outs:
            for mid in ws:
                seen.add(("conv", mid, out, 3, 1, h2))  # conv2 of any block
                seen.add(("conv", out, mid, 3, 1, h2))  # conv1 of a later block
        prev, h = outs, h2
    seen |= {("head", w) for w in prev}
    return seen


def _runner(layer: Layer, cfg: NetConfig, batch: int) -> Callable[[], None]:
    kind = layer[0]
    if kind == "stem":
        k, stride, pad = (7, 2, 3) if cfg.stem == "imagenet" else (3, 1, 1)
        conv, bn = Conv2D(cfg.in_channels, layer[1], k, stride, pad), nn.BatchNorm2D(layer[1])
        conv.eval(), bn.eval()
        x = paddle.randn([batch, cfg.in_channels, cfg.input_size, cfg.input_size])

        def stem() -> None:
            y = F.relu(bn(conv(x)))
            if cfg.stem == "imagenet":
                F.max_pool2d(y, 3, 2, 1)
        return stem
    if kind == "head":
        fc = nn.Linear(layer[1], cfg.num_classes)
        x = paddle.randn([batch, layer[1], 7, 7])
        return lambda: fc(paddle.flatten(F.adaptive_avg_pool2d(x, 1), 1))
    _, cin, cout, k, stride, h = layer
    conv, bn = Conv2D(cin, cout, k, stride, k // 2), nn.BatchNorm2D(cout)
    bn.eval()
    x = paddle.randn([batch, cin, h, h])
    return lambda: F.relu(bn(conv(x)))


def _sync() -> None:
    if paddle.device.is_compiled_with_cuda() and "gpu" in paddle.device.get_device():
        paddle.device.cuda.synchronize()


def time_call(fn: Callable[[], object], repeats: int = 5, warmup: int = 2) -> float:
    """Median seconds of ``fn`` (the device synchronised around each call)."""
    for _ in range(warmup):
        fn()
    _sync()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        _sync()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def measure_subnet(model: nn.Layer, cfg: NetConfig, batch: int, repeats: int = 5) -> float:
    x = paddle.randn([batch, cfg.in_channels, cfg.input_size, cfg.input_size])
    model.eval()
    with paddle.no_grad():
        return time_call(lambda: model(x), repeats)


def build_table(space: SearchSpace, cfg: NetConfig, batch: int, fit_archs: Iterable[Arch], repeats: int = 5,
                progress: Callable | None = None) -> dict:
    """Measure every layer of ``space`` and fit the per-block and fixed costs on ``fit_archs``."""
    from .resnet import ResNet48

    layers = sorted(all_layers(space, cfg), key=str)
    table = {}
    with paddle.no_grad():
        for layer in (progress(layers) if progress else layers):
            table[repr(layer)] = time_call(_runner(layer, cfg, batch), repeats)
    rows, measured = [], []
    for arch in fit_archs:
        ls, n = layers_of(arch, cfg)
        rows.append([1.0, float(n)])
        measured.append(measure_subnet(ResNet48.from_code(arch, cfg), cfg, batch, repeats) -
                        sum(table[repr(x)] for x in ls))
    base, per_block = np.linalg.lstsq(np.asarray(rows), np.asarray(measured), rcond=None)[0]
    return {"device": paddle.device.get_device(), "batch": batch, "input_size": cfg.input_size,
            "width_divisor": cfg.width_divisor, "stem": cfg.stem, "layers": table, "base_s": float(base),
            "per_block_s": float(per_block)}


def predict(table: dict, arch: Arch, cfg: NetConfig) -> float:
    """Predicted seconds of one forward of ``arch`` at the table's batch size."""
    ls, n = layers_of(arch, cfg)
    try:
        return table["base_s"] + n * table["per_block_s"] + sum(table["layers"][repr(x)] for x in ls)
    except KeyError as e:
        raise ValueError(f"the latency table has no entry for layer {e.args[0]}: it was built for another "
                         "search space or network") from None


def table_mismatch(table: dict, cfg: NetConfig, batch: int) -> str | None:
    """Why ``table`` does not describe this network and batch (None when it does)."""
    want = {"input_size": cfg.input_size, "width_divisor": cfg.width_divisor, "stem": cfg.stem, "batch": batch}
    diff = [f"{k} {table.get(k)!r} vs {v!r}" for k, v in want.items() if table.get(k) != v]
    return f"the latency table was measured for another setting ({'; '.join(diff)})" if diff else None
