"""Elastic layers: conv, batch-norm and linear that run on the first-k channels of full weights.

Kept apart from any network (as in once-for-all). Each layer is a subclass of the plain Paddle
layer, so parameter names and initialisation are the plain ones and a full-width checkpoint loads
unchanged. Input channels are read from the input tensor; output channels come from
``active_out`` (set by the network when it activates a code).

Written here instead of taken from PaddleSlim, whose OFA layers crash on Paddle 3 and whose
batch-norm slices a copy of the running statistics, so they never update (the organisers'
baseline bug). ElasticBatchNorm2D updates its running statistics through the slice, every call
in training mode.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .onednn import conv2d


class Conv2D(nn.Conv2D):
    """Plain Conv2D (no bias, NCHW) whose forward runs on oneDNN on the CPU (supernet/onednn.py)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         bias_attr=False)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return conv2d(x, self.weight, self._stride, self._padding)


def _memo(layer: nn.Layer, key: tuple, make):
    """``make()``, remembered under ``key`` while ``frozen_slices`` is on and the layer is in eval mode."""
    memo = layer.__dict__.get("_slice_memo")
    if memo is None or layer.training:
        return make()
    if key not in memo:
        memo[key] = make()
    return memo[key]


@contextmanager
def frozen_slices(model: nn.Layer) -> Iterator[None]:
    """Within this block, eval-mode elastic layers slice their weights (and BN statistics) once per shape
    instead of at every forward: scoring one subnet on many batches then runs the plain layers' op count.
    Only for weights that do not change inside the block; the memo is dropped on exit."""
    layers = [m for m in model.sublayers() if isinstance(m, (ElasticConv2D, ElasticBatchNorm2D, ElasticLinear))]
    for m in layers:
        object.__setattr__(m, "_slice_memo", {})
    try:
        yield
    finally:
        for m in layers:
            object.__setattr__(m, "_slice_memo", None)


class ElasticConv2D(Conv2D):
    """Conv2D (no bias) using ``weight[:active_out, :in_channels_of_x]``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding)
        self.active_out = out_channels

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        w = self.weight
        cin = x.shape[1]
        if self.active_out != w.shape[0] or cin != w.shape[1]:
            k = self.active_out
            w = _memo(self, (k, cin), lambda: self.weight[:k, :cin])
        return conv2d(x, w, self._stride, self._padding)


class ElasticBatchNorm2D(nn.BatchNorm2D):
    """BatchNorm2D on the first C channels, C taken from the input.

    Training mode normalises with batch statistics and writes the updated running statistics
    back into the first C entries of the full buffers. ``_momentum`` is read at every call, so
    BN recalibration can set it per batch to get an exact cumulative average.
    """

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        c = x.shape[1]
        if c == self._mean.shape[0]:
            mean, var, w, b = self._mean, self._variance, self.weight, self.bias
        elif not self.training:
            mean, var, w, b = _memo(self, (c,), lambda: (self._mean[:c], self._variance[:c], self.weight[:c],
                                                         self.bias[:c]))
        else:
            # Copies, not views: the write-back below must not touch a tensor autograd saved.
            mean, var = self._mean[:c].clone(), self._variance[:c].clone()
            w, b = self.weight[:c], self.bias[:c]
        out = F.batch_norm(x, mean, var, w, b, training=self.training, momentum=self._momentum,
                           epsilon=self._epsilon, data_format=self._data_format)
        if self.training and c != self._mean.shape[0]:
            with paddle.no_grad():
                self._mean[:c] = mean
                self._variance[:c] = var
        return out


class ElasticLinear(nn.Linear):
    """Linear layer on the first ``in`` input features (taken from x) and ``active_out`` outputs."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features)
        self.active_out = out_features

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        w, b = self.weight, self.bias  # weight is [in, out] in Paddle
        cin = x.shape[-1]
        if cin != w.shape[0] or self.active_out != w.shape[1]:
            k = self.active_out
            w, b = _memo(self, (cin, k), lambda: (self.weight[:cin, :k], self.bias[:k]))
        return F.linear(x, w, b)


def slice_to(full: paddle.Tensor, shape: list[int] | tuple[int, ...]) -> paddle.Tensor:
    """First-k slice of ``full`` in every dimension down to ``shape`` (the weight-sharing rule)."""
    if list(full.shape) == list(shape):
        return full
    if len(full.shape) != len(shape) or any(s > f for s, f in zip(shape, full.shape)):
        raise ValueError(f"cannot slice a tensor of shape {list(full.shape)} to {list(shape)}")
    return full[tuple(slice(0, s) for s in shape)]
