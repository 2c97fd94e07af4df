"""The CPU scoring engine: BN recalibration and evaluation of one subnet on oneDNN, with no tracing.

Why: scoring a subnet is K calibration batches and a few thousand evaluation images through a
network that exists only for that subnet. Paddle Inference runs that forward fast (conv + BN + ReLU
fused on oneDNN) but costs ~1.5 s per subnet before the first image (``paddle.jit.save`` tracing,
predictor creation); dygraph has no such cost but runs BN, ReLU and the residual add as separate
passes over memory. This engine takes the subnet's weights straight from the supernet (first-k
slices of numpy arrays, the weight-sharing rule) and runs them on oneDNN primitives:

- calibration, K batches: conv -> batch-norm in training mode (batch statistics, as Paddle's
  train-mode forward) -> ReLU or residual add + ReLU; the running statistics are the averages of
  the K batch means and (biased) batch variances, exactly what ``bn_calib.recalibrate`` stores;
- evaluation: BN folded into the conv (``w * g/sqrt(v+eps)``, ``b - m*g/sqrt(v+eps)``); conv + bias
  + ReLU, and conv2 + bias + residual sum + ReLU, one primitive each (oneDNN post-ops), activations
  kept in whatever blocked layout oneDNN picks, as Paddle Inference does.

Prefix reuse: subnets that begin with the same stem and the same first blocks compute the same
activations there (the calibration and evaluation images are fixed for a run, and so are the
supernet's weights). The engine keeps, per batch, the activation after the stem and after each block
of the first ``prefix_stages`` stages (and those layers' batch statistics) of the last subnet, and the
next subnet that shares them starts from there: results are bit-identical, and scoring codes in sorted
order (as ``evaluate.run_scoring`` does) skips most of the first stage, the costliest per MAC (high
resolution, few channels), and part of the second. Two stages, because in the sorted 45k list a code
shares ~3.5 first-stage and ~1.8 second-stage blocks with the one before it, but almost nothing of
the third (0.01 blocks): saving those levels would only cost copies. Bounded by ``prefix_budget``
bytes (0 disables it).

Primitives are built once per shape and cached (the 45k codes share a few hundred layer shapes);
buffers are reused across batches and subnets. Checked against the dygraph path (extract +
recalibrate + forward) in tests/test_fused.py. CPU and float32 only; anything else uses dygraph.
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from . import onednn
from .onednn import _ARG_DST, _ARG_SRC, _ARG_WEIGHTS, _CONV_DIRECT, _Q_DST, _Q_SRC, _Q_WEIGHTS
from .onednn import _TAG_ABCD, _TAG_ANY, _Dims, _vp
from .space import HEAD_INDEX, ChannelPlan, NetConfig

_TAG_A, _TAG_AB = 2, 3
_FWD_INFERENCE, _FWD_TRAINING = 96, 64
_ELTWISE_RELU, _BINARY_ADD, _POOL_MAX = 0x20, 0x1FFF0, 0x1FF
_USE_SCALE, _USE_SHIFT = 0x2, 0x4
_ARG_SRC_1, _ARG_BIAS, _ARG_MEAN, _ARG_VARIANCE, _ARG_SCALE, _ARG_SHIFT = 2, 41, 49, 50, 51, 52
BN_EPS = 1e-5  # paddle.nn.BatchNorm2D's default, used by every BN of the network
PREFIX_BUDGET = 1 << 30  # bytes of saved prefix activations (the proxy needs ~0.55 GB; ImageNet's rarely fit)
PREFIX_STAGES = 2  # stages whose block outputs are kept for reuse (BENCHMARKS.md, "Prefix reuse")


@dataclass(frozen=True)
class ConvBN:
    """One conv (no bias) followed by its BN, by official parameter-name prefixes."""

    conv: str
    bn: str
    cin: int
    cout: int
    k: int
    stride: int
    pad: int

    @property
    def shape(self) -> tuple[int, ...]:
        """What a primitive of this layer depends on (not its names)."""
        return self.cin, self.cout, self.k, self.stride, self.pad


@dataclass(frozen=True)
class Layout:
    """The subnet as the engine runs it: the stem, then per block (conv1, conv2, shortcut or None)."""

    stem: ConvBN
    pool: bool  # ImageNet stem: 3x3 stride-2 max-pool after the stem
    blocks: tuple[tuple[ConvBN, ConvBN, ConvBN | None], ...]
    fc: str
    in_channels: int
    input_size: int


def layout(plan: ChannelPlan, cfg: NetConfig) -> Layout:
    """Layers, widths and parameter names of one subnet (as resnet.ResNet48 builds it)."""
    k, s, p = (7, 2, 3) if cfg.stem == "imagenet" else (3, 1, 1)
    stem = ConvBN("blocks.0.conv", "blocks.0.bn", cfg.in_channels, plan.stem, k, s, p)
    blocks = []
    for b in plan.blocks:
        pre = f"blocks.{b.index}"
        c1 = ConvBN(f"{pre}.conv1", f"{pre}.bn1", b.in_ch, b.mid, 3, b.stride, 1)
        c2 = ConvBN(f"{pre}.conv2", f"{pre}.bn2", b.mid, b.out, 3, 1, 1)
        sc = ConvBN(f"{pre}.downsample.0", f"{pre}.downsample.1", b.in_ch, b.out, 1, b.stride, 0) if b.projection else None
        blocks.append((c1, c2, sc))
    return Layout(stem, cfg.stem == "imagenet", tuple(blocks), f"blocks.{HEAD_INDEX}.fc", cfg.in_channels,
                  cfg.input_size)


def first_k(full: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """The supernet's weight-sharing rule: the first k entries along every axis."""
    return full[tuple(slice(0, n) for n in shape)]


class _Lib(onednn._Lib):
    """oneDNN with the extra calls this engine makes."""

    def __init__(self) -> None:
        super().__init__()
        self.lib.dnnl_memory_desc_get_size.restype = ctypes.c_size_t
        self.lib.dnnl_memory_desc_get_size.argtypes = [_vp]
        self.lib.dnnl_post_ops_append_sum.argtypes = [_vp, ctypes.c_float, ctypes.c_int32, ctypes.c_int]
        self.lib.dnnl_post_ops_append_eltwise.argtypes = [_vp, ctypes.c_int, ctypes.c_float, ctypes.c_float]
        self.lib.dnnl_batch_normalization_forward_primitive_desc_create.argtypes = [
            ctypes.c_void_p, _vp, ctypes.c_int, _vp, _vp, ctypes.c_float, ctypes.c_uint, _vp]
        self.lib.dnnl_eltwise_forward_primitive_desc_create.argtypes = [
            ctypes.c_void_p, _vp, ctypes.c_int, ctypes.c_int, _vp, _vp, ctypes.c_float, ctypes.c_float, _vp]
        self.lib.dnnl_alg_kind2str.restype = ctypes.c_char_p
        for alg, name in ((_ELTWISE_RELU, b"eltwise_relu"), (_BINARY_ADD, b"binary_add"), (_POOL_MAX, b"pooling_max")):
            if self.lib.dnnl_alg_kind2str(alg) != name:
                raise onednn.OneDNNError(f"oneDNN {self.version}: algorithm {alg:#x} is not {name.decode()}")
        if self.lib.dnnl_prop_kind2str(_FWD_INFERENCE) != b"forward_inference":
            raise onednn.OneDNNError(f"oneDNN {self.version}: prop kind {_FWD_INFERENCE} is not forward_inference")

    def size(self, md: _vp) -> int:
        return int(self.lib.dnnl_memory_desc_get_size(md))

    def query(self, pd: _vp, what: int, index: int = 0) -> _vp:
        return _vp(self.lib.dnnl_primitive_desc_query_md(pd, what, index))

    def attr(self, post_ops: Sequence[str]) -> _vp | None:
        """Primitive attributes with post-ops: ``sum`` (dst += result) and ``relu``."""
        if not post_ops:
            return None
        lib, po, attr = self.lib, _vp(), _vp()
        self.check(lib.dnnl_post_ops_create(ctypes.byref(po)), "post-ops")
        for op in post_ops:
            if op == "sum":
                self.check(lib.dnnl_post_ops_append_sum(po, 1.0, 0, 0), "sum post-op")  # 0: dst's data type
            elif op == "relu":
                self.check(lib.dnnl_post_ops_append_eltwise(po, _ELTWISE_RELU, 0.0, 0.0), "relu post-op")
            else:
                raise ValueError(op)
        self.check(lib.dnnl_primitive_attr_create(ctypes.byref(attr)), "attributes")
        self.check(lib.dnnl_primitive_attr_set_post_ops(attr, po), "set post-ops")
        return attr


class _Prim:
    """A primitive with one memory object per argument, built once; calls only swap data pointers."""

    def __init__(self, L: _Lib, pd: _vp, mds: Mapping[int, _vp]) -> None:
        self.L, self.pd, self.mds = L, pd, dict(mds)
        self.mem = {arg: L.memory(md, None) for arg, md in self.mds.items()}
        self.call = L.bind(L.primitive(pd), self.mem)

    def __call__(self, ptrs: Mapping[int, int]) -> None:
        set_handle = self.L.lib.dnnl_memory_set_data_handle
        for arg, ptr in ptrs.items():
            set_handle(self.mem[arg], _vp(ptr))
        self.L.execute(self.call)


@dataclass
class _T:
    """An activation: its memory descriptor, its buffer and who made it (a key for reorder caching)."""

    md: _vp
    buf: int
    src: object


@dataclass
class _Saved:
    """One level of a prefix: the activation after the stem or a block, for one batch."""

    sig: tuple  # the layers up to here (stem, pool, blocks)
    ctx: tuple  # the objects the values depend on (weights, batch, calibration batches), compared by identity
    data: np.ndarray  # the activation's bytes in its oneDNN layout
    md: _vp
    src: object
    h: int
    stats: list  # calibration: (bn name, batch mean, batch variance) of this level's layers


def _same(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))


class FusedEngine:
    """Scores subnets on the CPU through oneDNN: ``logits(weights, layout, calib, images)``.

    One engine serves a whole scoring run: its primitive cache and buffers are shared by every subnet.
    """

    def __init__(self, prefix_budget: int = PREFIX_BUDGET, prefix_stages: int = PREFIX_STAGES) -> None:
        if onednn._load() is None:
            raise onednn.OneDNNError(f"oneDNN cannot be used: {onednn._LOAD_ERROR}")
        self.L = _Lib()
        self.cache: dict[tuple, object] = {}
        self.bufs: list[np.ndarray] = []
        self.prefix_budget = prefix_budget
        self.prefix_stages = prefix_stages
        self.saved: dict[tuple, list[_Saved]] = {}  # (phase, batch index) -> levels 0.. of the last subnet
        self.prefix_hits = 0  # levels reused (a batch's stem counts one, each block one)

    # --- prefix reuse --------------------------------------------------------------------------------
    def _signatures(self, net: Layout) -> list[tuple]:
        """Signature of each reusable level: after the stem (0), after each block of the first
        ``prefix_stages`` stages (a stage ends where the next downsamples)."""
        head = (net.in_channels, net.input_size, net.stem, net.pool)
        ends = [j for j, (c1, _, _) in enumerate(net.blocks) if j and c1.stride > 1] + [len(net.blocks)]
        n = ends[min(self.prefix_stages, len(ends)) - 1] if self.prefix_stages > 0 else 0
        return [head + net.blocks[:j] for j in range(n + 1)]

    def _lookup(self, slot: tuple, sigs: list[tuple], ctx: tuple) -> list[_Saved]:
        """The saved levels of ``slot`` that this subnet shares (a leading run, possibly empty)."""
        out = []
        for lvl, sig in zip(self.saved.get(slot, ()), sigs):
            if lvl.sig != sig or not _same(lvl.ctx, ctx):
                break
            out.append(lvl)
        self.prefix_hits += len(out)
        return out

    def _save(self, slot: tuple, j: int, sig: tuple, ctx: tuple, t: _T, h: int, stats: list) -> None:
        """Keep level ``j`` of ``slot`` (deeper levels of the previous subnet are dropped)."""
        levels = self.saved.setdefault(slot, [])
        old = levels[j] if j < len(levels) else None
        del levels[j:]
        if len(levels) != j:  # a shallower level was not kept (budget): nothing deeper either
            return
        n = self.L.size(t.md)
        used = sum(lvl.data.nbytes for lv in self.saved.values() for lvl in lv)
        if used + n > self.prefix_budget:
            return
        data = old.data if old is not None and old.data.nbytes == n else np.empty(n, np.uint8)
        np.copyto(data, self.bufs[t.buf][:n])
        levels.append(_Saved(sig, ctx, data, t.md, t.src, h, list(stats)))

    def _restore(self, lvl: _Saved) -> tuple[_T, int]:
        """A saved activation, copied into a working buffer (later layers may write over their input)."""
        i = self._buf(lvl.data.nbytes, ())
        self.bufs[i][: lvl.data.nbytes] = lvl.data
        return _T(lvl.md, i, lvl.src), lvl.h

    def _walk(self, net: Layout, slot: tuple, sigs: list[tuple], ctx: tuple, x: np.ndarray, stem, block,
              fresh: list) -> tuple[_T, int, list]:
        """Run one batch through the stem (``stem(t, h)``) and the blocks (``block(t, h, b)``), starting
        after the longest saved prefix this subnet shares and saving the reusable levels it computes.
        ``fresh`` collects what the layers report (calibration: batch statistics); returns the output,
        its size and everything reported, in layer order, saved levels' included."""
        have = self._lookup(slot, sigs, ctx)
        reported = [st for lvl in have for st in lvl.stats]

        def level_done(j: int, t: _T, h: int) -> None:
            if j < len(sigs):
                self._save(slot, j, sigs[j], ctx, t, h, fresh)
            reported.extend(fresh)
            fresh.clear()

        if have:
            t, h = self._restore(have[-1])
        else:
            t, h = stem(self._input(x), x.shape[2])
            level_done(0, t, h)
        for b in range(max(len(have) - 1, 0), len(net.blocks)):
            t, h = block(t, h, b)
            level_done(b + 1, t, h)
        return t, h, reported

    # --- buffers -------------------------------------------------------------------------------------
    def _buf(self, nbytes: int, busy: Sequence[int]) -> int:
        """Index of a buffer of at least ``nbytes`` not in ``busy`` (grown or added as needed)."""
        for i, b in enumerate(self.bufs):
            if i not in busy:
                if b.nbytes < nbytes:
                    self.bufs[i] = np.empty(nbytes, np.uint8)
                return i
        self.bufs.append(np.empty(nbytes, np.uint8))
        return len(self.bufs) - 1

    def _ptr(self, i: int) -> int:
        return self.bufs[i].ctypes.data

    # --- primitives (cached by shape) ----------------------------------------------------------------
    def _cached(self, key: tuple, build):
        v = self.cache.get(key)
        if v is None:
            v = self.cache[key] = build()
        return v

    def _plain(self, dims: Sequence[int], tag: int = _TAG_ABCD) -> _vp:
        return self._cached(("md", tuple(dims), tag), lambda: self.L.md(dims, tag))

    def _conv(self, n: int, h: int, c: ConvBN, bias: bool, post_ops: tuple[str, ...]) -> tuple[_Prim, int, tuple]:
        """(primitive, output size, its cache key) of a conv with optional bias and post-ops."""
        key = ("conv", n, h, *c.shape, bias, post_ops)
        def build():
            L = self.L
            ho = (h + 2 * c.pad - c.k) // c.stride + 1
            x, w, y = L.md([n, c.cin, h, h], _TAG_ANY), L.md([c.cout, c.cin, c.k, c.k], _TAG_ANY), L.md([n, c.cout, ho, ho], _TAG_ANY)
            b = self._plain([c.cout], _TAG_A) if bias else None
            st, dil, pad = _Dims(c.stride, c.stride), _Dims(0, 0), _Dims(c.pad, c.pad)
            pd = _vp()
            L.check(L.lib.dnnl_convolution_forward_primitive_desc_create(
                ctypes.byref(pd), L.engine, _FWD_INFERENCE, _CONV_DIRECT, x, w, b, y, st, dil, pad, pad,
                L.attr(post_ops)), f"convolution {c}")
            mds = {_ARG_SRC: L.query(pd, _Q_SRC), _ARG_WEIGHTS: L.query(pd, _Q_WEIGHTS), _ARG_DST: L.query(pd, _Q_DST)}
            if bias:
                mds[_ARG_BIAS] = b
            return _Prim(L, pd, mds), ho
        prim, ho = self._cached(key, build)
        return prim, ho, key

    def _bn_train(self, md: _vp, key: tuple, channels: int) -> _Prim:
        def build():
            L, pd = self.L, _vp()
            L.check(L.lib.dnnl_batch_normalization_forward_primitive_desc_create(
                ctypes.byref(pd), L.engine, _FWD_TRAINING, md, md, BN_EPS, _USE_SCALE | _USE_SHIFT, None), "batch norm")
            vec = self._plain([channels], _TAG_A)
            return _Prim(L, pd, {_ARG_SRC: md, _ARG_DST: md, _ARG_SCALE: vec, _ARG_SHIFT: vec, _ARG_MEAN: vec,
                                 _ARG_VARIANCE: vec})
        return self._cached(("bn", *key), build)

    def _relu(self, md: _vp, key: tuple) -> _Prim:
        def build():
            L, pd = self.L, _vp()
            L.check(L.lib.dnnl_eltwise_forward_primitive_desc_create(
                ctypes.byref(pd), L.engine, _FWD_INFERENCE, _ELTWISE_RELU, md, md, 0.0, 0.0, None), "relu")
            return _Prim(L, pd, {_ARG_SRC: md, _ARG_DST: md})
        return self._cached(("relu", *key), build)

    def _add_relu(self, md: _vp, key: tuple) -> _Prim:
        def build():
            L, pd = self.L, _vp()
            L.check(L.lib.dnnl_binary_primitive_desc_create(ctypes.byref(pd), L.engine, _BINARY_ADD, md, md, md,
                                                            L.attr(("relu",))), "residual add")
            return _Prim(L, pd, {_ARG_SRC: md, _ARG_SRC_1: md, _ARG_DST: md})
        return self._cached(("add", *key), build)

    def _pool(self, n: int, c: int, h: int, x_md: _vp, key: tuple) -> tuple[_Prim, int]:
        def build():
            L, pd = self.L, _vp()
            ho = (h + 2 - 3) // 2 + 1
            y = L.md([n, c, ho, ho], _TAG_ANY)
            L.check(L.lib.dnnl_pooling_forward_primitive_desc_create(
                ctypes.byref(pd), L.engine, _FWD_INFERENCE, _POOL_MAX, x_md, y, _Dims(2, 2), _Dims(3, 3),
                _Dims(0, 0), _Dims(1, 1), _Dims(1, 1), None), "max pool")
            return _Prim(L, pd, {_ARG_SRC: x_md, _ARG_DST: L.query(pd, _Q_DST)}), ho
        return self._cached(("pool", n, c, h, *key), build)

    def _reorder(self, src: _vp, dst: _vp, key: tuple) -> _Prim:
        def build():
            pd = _vp()
            L = self.L
            L.check(L.lib.dnnl_reorder_primitive_desc_create(ctypes.byref(pd), src, L.engine, dst, L.engine, None),
                    "reorder")
            return _Prim(L, pd, {_ARG_SRC: src, _ARG_DST: dst})
        return self._cached(("reorder", *key), build)

    # --- activations ---------------------------------------------------------------------------------
    def _as(self, t: _T, md: _vp, key: tuple, busy: Sequence[int]) -> _T:
        """``t`` in layout ``md`` (wanted by the primitive ``key``): itself when the layouts agree, else
        a reordered copy in a buffer outside ``busy`` and ``t``'s own."""
        if self.L.lib.dnnl_memory_desc_equal(t.md, md):
            return t
        r = self._reorder(t.md, md, (t.src, key))
        out = self._buf(self.L.size(md), (*busy, t.buf))
        r({_ARG_SRC: self._ptr(t.buf), _ARG_DST: self._ptr(out)})
        return _T(md, out, ("reordered", key))

    def _weights(self, prim: _Prim, w: np.ndarray, key: tuple) -> np.ndarray:
        """Conv weights (OIHW float32) in the primitive's layout, as a buffer kept for the subnet."""
        w = np.ascontiguousarray(w, dtype=np.float32)
        want = prim.mds[_ARG_WEIGHTS]
        out = np.empty(self.L.size(want), np.uint8)
        self._reorder(self._plain(w.shape), want, ("w", key))({_ARG_SRC: w.ctypes.data, _ARG_DST: out.ctypes.data})
        return out

    def _input(self, x: np.ndarray) -> _T:
        x = np.ascontiguousarray(x, dtype=np.float32)
        i = self._buf(x.nbytes, ())
        self.bufs[i][: x.nbytes] = x.view(np.uint8).reshape(-1)
        return _T(self._plain(x.shape), i, ("input", x.shape))

    def _inplace(self, prim: _Prim, t: _T, extra: Mapping[int, int] | None = None) -> None:
        """Run ``prim`` with ``t`` as both source and destination (plus ``extra`` arguments)."""
        prim({_ARG_SRC: self._ptr(t.buf), _ARG_DST: self._ptr(t.buf), **(extra or {})})

    def _max_pool(self, t: _T, n: int, c: int, h: int) -> tuple[_T, int]:
        pool, ho = self._pool(n, c, h, t.md, t.src)
        out = self._buf(self.L.size(pool.mds[_ARG_DST]), (t.buf,))
        pool({_ARG_SRC: self._ptr(t.buf), _ARG_DST: self._ptr(out)})
        return _T(pool.mds[_ARG_DST], out, ("pool", n, c, h, *t.src)), ho

    # --- the network ---------------------------------------------------------------------------------
    def calibrate(self, net: Layout, state: Mapping[str, np.ndarray],
                  batches: Sequence[np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """BN name -> (mean, variance): the averages over the batches of each BN's batch mean and
        biased variance, every batch normalised with its own statistics (Paddle's train-mode forward)."""
        sums: dict[str, list[np.ndarray]] = {}
        wcache: dict[tuple, np.ndarray] = {}
        affine = {c.bn: tuple(np.ascontiguousarray(first_k(state[f"{c.bn}.{p}"], [c.cout]), np.float32)
                              for p in ("weight", "bias")) for c in _convs(net)}  # sliced once, not per batch
        sigs = self._signatures(net) if self.prefix_budget else []
        for bi, x in enumerate(batches):
            n = x.shape[0]
            fresh: list[tuple[str, np.ndarray, np.ndarray]] = []  # batch statistics since the last level

            def conv_bn(t: _T, h: int, c: ConvBN, busy: Sequence[int]) -> tuple[_T, int]:
                prim, ho, key = self._conv(n, h, c, False, ())
                t = self._as(t, prim.mds[_ARG_SRC], key, busy)
                wkey = (c.conv, key)
                if wkey not in wcache:
                    wcache[wkey] = self._weights(prim, first_k(state[c.conv + ".weight"], [c.cout, c.cin, c.k, c.k]), key)
                y = self._buf(self.L.size(prim.mds[_ARG_DST]), (*busy, t.buf))
                prim({_ARG_SRC: self._ptr(t.buf), _ARG_WEIGHTS: wcache[wkey].ctypes.data, _ARG_DST: self._ptr(y)})
                out = _T(prim.mds[_ARG_DST], y, key)
                g, b = affine[c.bn]
                mean, var = np.empty(c.cout, np.float32), np.empty(c.cout, np.float32)
                self._inplace(self._bn_train(out.md, key, c.cout), out, {
                    _ARG_SCALE: g.ctypes.data, _ARG_SHIFT: b.ctypes.data, _ARG_MEAN: mean.ctypes.data,
                    _ARG_VARIANCE: var.ctypes.data})
                fresh.append((c.bn, mean, var))
                return out, ho

            def stem(t: _T, h: int) -> tuple[_T, int]:
                t, h = conv_bn(t, h, net.stem, ())
                self._inplace(self._relu(t.md, t.src), t)
                return self._max_pool(t, n, net.stem.cout, h) if net.pool else (t, h)

            def block(t: _T, h: int, b: int) -> tuple[_T, int]:
                c1, c2, sc = net.blocks[b]
                ident = t if sc is None else conv_bn(t, h, sc, (t.buf,))[0]
                y, h2 = conv_bn(t, h, c1, (ident.buf,))
                self._inplace(self._relu(y.md, y.src), y)
                z, h2 = conv_bn(y, h2, c2, (ident.buf, y.buf))
                ident = self._as(ident, z.md, ("add", *z.src), (z.buf, y.buf))
                self._inplace(self._add_relu(z.md, z.src), z, {_ARG_SRC_1: self._ptr(ident.buf)})
                return z, h2

            stats = self._walk(net, ("calib", bi), sigs, (state, x), x, stem, block, fresh)[2]
            for name, mean, var in stats:  # in layer order, as without reuse (bit-identical sums)
                acc = sums.setdefault(name, [np.zeros(len(mean)), np.zeros(len(mean))])
                acc[0] += mean
                acc[1] += var
        k = len(batches)
        return {name: ((m / k).astype(np.float32), (v / k).astype(np.float32)) for name, (m, v) in sums.items()}

    def folded(self, net: Layout, state: Mapping[str, np.ndarray],
               stats: Mapping[str, tuple[np.ndarray, np.ndarray]] | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """conv name -> (weight with its BN folded in, bias), with the BN statistics ``stats``
        (calibrated) or, when None, the running statistics stored in ``state``."""
        out = {}
        for c in _convs(net):
            g, b = (first_k(state[f"{c.bn}.{p}"], [c.cout]).astype(np.float64) for p in ("weight", "bias"))
            if stats is not None:
                m, v = (a.astype(np.float64) for a in stats[c.bn])
            else:
                m, v = (first_k(state[f"{c.bn}.{p}"], [c.cout]).astype(np.float64) for p in ("_mean", "_variance"))
            s = g / np.sqrt(v + BN_EPS)
            w = first_k(state[c.conv + ".weight"], [c.cout, c.cin, c.k, c.k]).astype(np.float64)
            out[c.conv] = ((w * s[:, None, None, None]).astype(np.float32), (b - m * s).astype(np.float32))
        return out

    def prepare(self, net: Layout, state: Mapping[str, np.ndarray], calib: Sequence[np.ndarray] = ()) -> "Prepared":
        """The subnet ready to evaluate: BN recalibrated on ``calib`` (empty: the stored statistics)
        and folded into the convolutions."""
        fold = self.folded(net, state, self.calibrate(net, state, calib) if len(calib) else None)
        width = _channels(net)
        fc = state[net.fc + ".weight"]
        fc_w = np.ascontiguousarray(first_k(fc, [width, fc.shape[1]]), np.float32)
        return Prepared(net, fold, fc_w, np.asarray(state[net.fc + ".bias"], np.float32), origin=(state, *calib))

    def logits(self, net: Layout, state: Mapping[str, np.ndarray], batches: Sequence[np.ndarray],
               calib: Sequence[np.ndarray] = ()) -> list[np.ndarray]:
        """Logits of each evaluation batch, after BN recalibration on ``calib`` (empty: stored stats)."""
        return self.forward(self.prepare(net, state, calib), batches)

    def forward(self, p: "Prepared", batches: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Logits of each batch through the prepared subnet (conv + bias + ReLU / sum fused)."""
        net, fold, width = p.net, p.fold, _channels(p.net)
        sigs = self._signatures(net) if p.origin and self.prefix_budget else []  # no origin: nothing to match on
        outs = []
        for bi, x in enumerate(batches):
            n = x.shape[0]

            def conv(t: _T, h: int, c: ConvBN, busy: Sequence[int], post: tuple[str, ...] = ("relu",),
                     into: _T | None = None) -> tuple[_T, int]:
                prim, ho, key = self._conv(n, h, c, True, post)
                t = self._as(t, prim.mds[_ARG_SRC], key, busy)
                wkey = (c.conv, key)
                if wkey not in p.weights:
                    p.weights[wkey] = self._weights(prim, fold[c.conv][0], key)
                # with the sum post-op the residual is already in the destination
                y = into.buf if into is not None else self._buf(self.L.size(prim.mds[_ARG_DST]), (*busy, t.buf))
                prim({_ARG_SRC: self._ptr(t.buf), _ARG_WEIGHTS: p.weights[wkey].ctypes.data,
                      _ARG_BIAS: fold[c.conv][1].ctypes.data, _ARG_DST: self._ptr(y)})
                return _T(prim.mds[_ARG_DST], y, key), ho

            def stem(t: _T, h: int) -> tuple[_T, int]:
                t, h = conv(t, h, net.stem, ())
                return self._max_pool(t, n, net.stem.cout, h) if net.pool else (t, h)

            def block(t: _T, h: int, b: int) -> tuple[_T, int]:
                c1, c2, sc = net.blocks[b]
                ident = t if sc is None else conv(t, h, sc, (t.buf,), post=())[0]
                y, h2 = conv(t, h, c1, (ident.buf,))
                prim2, _, key2 = self._conv(n, h2, c2, True, ("sum", "relu"))
                ident = self._as(ident, prim2.mds[_ARG_DST], ("residual", *key2), (y.buf,))
                return conv(y, h2, c2, (ident.buf,), post=("sum", "relu"), into=ident)

            t, h, _ = self._walk(net, ("eval", bi), sigs, (*p.origin, x), x, stem, block, [])
            plain = self._plain([n, width, h, h])
            t = self._as(t, plain, ("head", n, width, h), ())
            feat = self.bufs[t.buf][: self.L.size(plain)].view(np.float32).reshape(n, width, h * h).mean(axis=2)
            outs.append(feat @ p.fc_w + p.fc_b)
        return outs


@dataclass
class Prepared:
    """One subnet ready for evaluation: folded conv weights and biases, the classifier, and the
    weights already reordered into each primitive's layout (filled on first use)."""

    net: Layout
    fold: dict[str, tuple[np.ndarray, np.ndarray]]
    fc_w: np.ndarray
    fc_b: np.ndarray
    weights: dict[tuple, np.ndarray] = field(default_factory=dict)
    origin: tuple = ()  # what the folded weights came from (supernet weights, calibration batches): prefix reuse


def _channels(net: Layout) -> int:
    """Input width of the classifier."""
    return net.blocks[-1][1].cout if net.blocks else net.stem.cout


def _convs(net: Layout) -> list[ConvBN]:
    out = [net.stem]
    for c1, c2, sc in net.blocks:
        out += [c1, c2] + ([sc] if sc is not None else [])
    return out
