"""Convolutions on CPU through the oneDNN library that ships inside Paddle's wheel.

Why: Paddle's dygraph CPU convolution (forward and both gradients) is im2col + a small GEMM per
image; on the proxy's shapes it runs at 11-34 GMAC/s where oneDNN's JIT kernels reach 60-100 on
the same 2 cores (BENCHMARKS.md). Dygraph never selects Paddle's own oneDNN conv kernels (with or
without ``FLAGS_use_onednn``), so this module calls ``libdnnl.so.3`` from ``paddle/libs`` through
its C API (ctypes; nothing to compile) inside a ``PyLayer``: forward, backward-data and
backward-weights primitives, built once per shape and cached, with plain NCHW/OIHW tensors
reordered to and from whatever layout oneDNN picks.

Used only where it applies: float32 tensors on the CPU in dygraph. Anything else (GPU, AMP,
``paddle.jit.save`` tracing for export and scoring) takes ``F.conv2d``. ``RESNET48_NAS_CONV``
chooses: ``auto`` (default: oneDNN when the library loads and passes its self-check), ``onednn``
(fail loudly if it cannot), ``paddle`` (never).
"""
from __future__ import annotations

import ctypes
import logging
import os
from typing import Sequence

import paddle
import paddle.nn.functional as F
from paddle.autograd import PyLayer

log = logging.getLogger(__name__)

# oneDNN v3 C API constants (checked against the library at load time where it can say).
_F32, _TAG_ANY, _TAG_ABCD = 3, 1, 5
_FWD_TRAINING, _CONV_DIRECT = 64, 1
_ARG_SRC, _ARG_DST, _ARG_WEIGHTS, _ARG_DIFF_SRC, _ARG_DIFF_DST, _ARG_DIFF_WEIGHTS = 1, 17, 33, 129, 145, 161
_Q_SRC, _Q_DIFF_SRC, _Q_WEIGHTS, _Q_DIFF_WEIGHTS, _Q_DST, _Q_DIFF_DST = 129, 130, 131, 132, 133, 134
_ALLOCATE = ctypes.c_void_p(-1)  # DNNL_MEMORY_ALLOCATE

_Dims = ctypes.c_int64 * 12
_vp = ctypes.c_void_p


class _ExecArg(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_int), ("memory", _vp)]


class OneDNNError(RuntimeError):
    pass


class _Lib:
    """The loaded library, one engine and one stream."""

    def __init__(self) -> None:
        path = os.path.join(os.path.dirname(paddle.__file__), "libs", "libdnnl.so.3")
        lib = ctypes.CDLL(path)
        lib.dnnl_primitive_desc_query_md.restype = _vp
        lib.dnnl_primitive_desc_query_md.argtypes = [_vp, ctypes.c_int, ctypes.c_int]
        lib.dnnl_memory_desc_equal.argtypes = [_vp, _vp]
        lib.dnnl_fmt_tag2str.restype = ctypes.c_char_p
        lib.dnnl_prop_kind2str.restype = ctypes.c_char_p
        lib.dnnl_dt2str.restype = ctypes.c_char_p
        lib.dnnl_version.restype = ctypes.POINTER(ctypes.c_int * 3)
        major, minor, patch = lib.dnnl_version().contents
        if major != 3:
            raise OneDNNError(f"{path} is oneDNN {major}.{minor}.{patch}; the C API used here is v3's")
        checks = [(lib.dnnl_fmt_tag2str(_TAG_ABCD), b"abcd"), (lib.dnnl_fmt_tag2str(_TAG_ANY), b"any"),
                  (lib.dnnl_dt2str(_F32), b"f32"), (lib.dnnl_prop_kind2str(_FWD_TRAINING), b"forward_training")]
        for got, want in checks:
            if got != want:
                raise OneDNNError(f"oneDNN {major}.{minor}.{patch} enum mismatch: {got!r} where {want!r} expected")
        self.lib, self.version = lib, f"{major}.{minor}.{patch}"
        self.engine, self.stream = _vp(), _vp()
        self.check(lib.dnnl_engine_create(ctypes.byref(self.engine), 1, 0), "engine")  # kind 1 = cpu
        self.check(lib.dnnl_stream_create(ctypes.byref(self.stream), self.engine, 1), "stream")  # in-order

    @staticmethod
    def check(status: int, what: str) -> None:
        if status != 0:
            raise OneDNNError(f"oneDNN {what} failed (status {status})")

    def md(self, dims: Sequence[int], tag: int) -> _vp:
        m = _vp()
        self.check(self.lib.dnnl_memory_desc_create_with_tag(ctypes.byref(m), len(dims), _Dims(*dims), _F32, tag),
                   "memory desc")
        return m

    def memory(self, md: _vp, handle: _vp | None = None) -> _vp:
        m = _vp()
        self.check(self.lib.dnnl_memory_create(ctypes.byref(m), md, self.engine, handle), "memory")
        return m

    def primitive(self, pd: _vp) -> _vp:
        p = _vp()
        self.check(self.lib.dnnl_primitive_create(ctypes.byref(p), pd), "primitive")
        return p

    def reorder(self, src_md: _vp, dst_md: _vp) -> _vp:
        pd = _vp()
        self.check(self.lib.dnnl_reorder_primitive_desc_create(ctypes.byref(pd), src_md, self.engine, dst_md,
                                                               self.engine, None), "reorder")
        return self.primitive(pd)

    @staticmethod
    def bind(prim: _vp, args: dict[int, _vp]) -> tuple[_vp, int, ctypes.Array]:
        """A primitive with its argument array, built once: the memories keep their identity and
        only their data pointers change between calls."""
        return prim, len(args), (_ExecArg * len(args))(*[_ExecArg(a, m) for a, m in args.items()])

    def execute(self, call: tuple[_vp, int, ctypes.Array]) -> None:
        self.check(self.lib.dnnl_primitive_execute(call[0], self.stream, call[1], call[2]), "execute")


class _Step:
    """One primitive bound to plain (NCHW/OIHW) user buffers, reordering where oneDNN wants another layout."""

    def __init__(self, L: _Lib, pd: _vp, plain: dict[int, tuple[int, _vp, bool]]) -> None:
        self.L = L
        self.user: dict[int, _vp] = {}
        inner: dict[int, _vp] = {}
        pre, post = [], []
        for arg, (query, plain_md, is_output) in plain.items():
            user = self.user[arg] = L.memory(plain_md)
            want = _vp(L.lib.dnnl_primitive_desc_query_md(pd, query, 0))
            if L.lib.dnnl_memory_desc_equal(want, plain_md):
                inner[arg] = user
                continue
            inner[arg] = own = L.memory(want, _ALLOCATE)
            if is_output:
                post.append(L.bind(L.reorder(want, plain_md), {_ARG_SRC: own, _ARG_DST: user}))
            else:
                pre.append(L.bind(L.reorder(plain_md, want), {_ARG_SRC: user, _ARG_DST: own}))
        self.calls = [*pre, L.bind(L.primitive(pd), inner), *post]  # in execution order

    def run(self, ptrs: dict[int, int]) -> None:
        lib = self.L.lib
        for arg, ptr in ptrs.items():
            lib.dnnl_memory_set_data_handle(self.user[arg], _vp(ptr))
        for call in self.calls:
            self.L.execute(call)
        lib.dnnl_stream_wait(self.L.stream)


class _ConvPlan:
    """Forward, backward-data and backward-weights primitives of one conv shape (no bias, no dilation)."""

    def __init__(self, L: _Lib, x_shape: list[int], w_shape: list[int], stride: int, pad: int) -> None:
        n, _, h, w = x_shape
        o, _, kh, kw = w_shape
        self.out_shape = [n, o, (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1]
        x_p, w_p, y_p = (L.md(s, _TAG_ABCD) for s in (x_shape, w_shape, self.out_shape))
        x_a, w_a, y_a = (L.md(s, _TAG_ANY) for s in (x_shape, w_shape, self.out_shape))
        st, dil, pd = _Dims(stride, stride), _Dims(0, 0), _Dims(pad, pad)
        fwd = _vp()
        L.check(L.lib.dnnl_convolution_forward_primitive_desc_create(
            ctypes.byref(fwd), L.engine, _FWD_TRAINING, _CONV_DIRECT, x_a, w_a, None, y_a, st, dil, pd, pd, None),
            "convolution forward")
        self.forward = _Step(L, fwd, {_ARG_SRC: (_Q_SRC, x_p, False), _ARG_WEIGHTS: (_Q_WEIGHTS, w_p, False),
                                      _ARG_DST: (_Q_DST, y_p, True)})
        bwd = _vp()
        L.check(L.lib.dnnl_convolution_backward_data_primitive_desc_create(
            ctypes.byref(bwd), L.engine, _CONV_DIRECT, x_a, w_a, y_a, st, dil, pd, pd, fwd, None),
            "convolution backward data")
        self.backward_data = _Step(L, bwd, {_ARG_DIFF_DST: (_Q_DIFF_DST, y_p, False),
                                            _ARG_WEIGHTS: (_Q_WEIGHTS, w_p, False),
                                            _ARG_DIFF_SRC: (_Q_DIFF_SRC, x_p, True)})
        bww = _vp()
        L.check(L.lib.dnnl_convolution_backward_weights_primitive_desc_create(
            ctypes.byref(bww), L.engine, _CONV_DIRECT, x_a, w_a, None, y_a, st, dil, pd, pd, fwd, None),
            "convolution backward weights")
        self.backward_weights = _Step(L, bww, {_ARG_SRC: (_Q_SRC, x_p, False),
                                               _ARG_DIFF_DST: (_Q_DIFF_DST, y_p, False),
                                               _ARG_DIFF_WEIGHTS: (_Q_DIFF_WEIGHTS, w_p, True)})


_LIB: _Lib | None = None
_LOAD_ERROR: str | None = None
_PLANS: dict[tuple, _ConvPlan] = {}


def _load() -> _Lib | None:
    global _LIB, _LOAD_ERROR
    if _LIB is None and _LOAD_ERROR is None:
        try:
            _LIB = _Lib()
            log.debug("oneDNN %s loaded for CPU convolutions", _LIB.version)
        except (OSError, AttributeError, OneDNNError) as e:
            _LOAD_ERROR = str(e)
            log.warning("oneDNN convolutions unavailable, using Paddle's: %s", e)
    return _LIB


def backend() -> str:
    """``onednn`` or ``paddle``: what CPU float32 dygraph convolutions use in this process."""
    choice = os.environ.get("RESNET48_NAS_CONV", "auto").lower()
    if choice not in ("auto", "onednn", "paddle"):
        raise ValueError(f"RESNET48_NAS_CONV={choice!r}: use auto, onednn or paddle")
    if choice == "paddle":
        return "paddle"
    if _load() is None:
        if choice == "onednn":
            raise OneDNNError(f"RESNET48_NAS_CONV=onednn but oneDNN cannot be used: {_LOAD_ERROR}")
        return "paddle"
    return "onednn"


def _plan(x_shape: list[int], w_shape: list[int], stride: int, pad: int) -> _ConvPlan:
    key = (*x_shape, *w_shape, stride, pad)
    plan = _PLANS.get(key)
    if plan is None:
        plan = _PLANS[key] = _ConvPlan(_LIB, x_shape, w_shape, stride, pad)
    return plan


def _forward(x: paddle.Tensor, w: paddle.Tensor, stride: int, pad: int) -> tuple[paddle.Tensor, _ConvPlan]:
    plan = _plan(x.shape, w.shape, stride, pad)
    y = paddle.empty(plan.out_shape, dtype="float32")
    plan.forward.run({_ARG_SRC: x.data_ptr(), _ARG_WEIGHTS: w.data_ptr(), _ARG_DST: y.data_ptr()})
    return y, plan


class _OneDNNConv(PyLayer):
    @staticmethod
    def forward(ctx, x: paddle.Tensor, w: paddle.Tensor, stride: int, pad: int) -> paddle.Tensor:
        x, w = x.contiguous(), w.contiguous()
        y, ctx.plan = _forward(x, w, stride, pad)
        ctx.need_dx = not x.stop_gradient
        ctx.save_for_backward(x, w)
        return y

    @staticmethod
    def backward(ctx, dy: paddle.Tensor):
        x, w = ctx.saved_tensor()
        dy = dy.contiguous()
        dx = None
        if ctx.need_dx:
            dx = paddle.empty(x.shape, dtype="float32")
            ctx.plan.backward_data.run({_ARG_DIFF_DST: dy.data_ptr(), _ARG_WEIGHTS: w.data_ptr(),
                                        _ARG_DIFF_SRC: dx.data_ptr()})
        dw = paddle.empty(w.shape, dtype="float32")
        ctx.plan.backward_weights.run({_ARG_SRC: x.data_ptr(), _ARG_DIFF_DST: dy.data_ptr(),
                                       _ARG_DIFF_WEIGHTS: dw.data_ptr()})
        return dx, dw


def _int(v: int | Sequence[int]) -> int | None:
    """A square stride/padding as one int; None when it is not square."""
    if isinstance(v, int):
        return v
    v = list(v)
    return v[0] if len(set(v)) == 1 and len(v) in (1, 2) else None


@paddle.jit.not_to_static  # traced for export: runs as Python, and in_dynamic_mode() sends it to F.conv2d
def conv2d(x: paddle.Tensor, weight: paddle.Tensor, stride: int | Sequence[int] = 1,
           padding: int | Sequence[int] = 0) -> paddle.Tensor:
    """``F.conv2d(x, weight, stride=stride, padding=padding)`` (NCHW, no bias, no dilation, groups 1),
    on oneDNN where that applies."""
    s, p = _int(stride), _int(padding)
    if (s is not None and p is not None and paddle.in_dynamic_mode() and x.place.is_cpu_place()
            and x.dtype == paddle.float32 and weight.dtype == paddle.float32 and backend() == "onednn"):
        if not paddle.is_grad_enabled():  # evaluation, BN calibration: no autograd node, nothing saved
            return _forward(x.contiguous(), weight.contiguous(), s, p)[0]
        return _OneDNNConv.apply(x, weight, s, p)
    return F.conv2d(x, weight, None, stride, padding)
