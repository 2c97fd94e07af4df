"""The oneDNN CPU convolution (supernet/onednn.py) against Paddle's own, values and gradients."""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from supernet import onednn
from supernet.elastic import ElasticConv2D


@pytest.fixture
def conv_backend(monkeypatch):
    def use(name: str) -> None:
        monkeypatch.setenv("RESNET48_NAS_CONV", name)
    return use


def _run(conv, x_np, w_np, stride, pad, x_grad=True):
    x = paddle.to_tensor(x_np, stop_gradient=not x_grad)
    w = paddle.to_tensor(w_np, stop_gradient=False)
    y = conv(x, w, stride, pad)
    # a non-uniform upstream gradient, so every output element's gradient matters
    (y * y).sum().backward()
    return y.numpy(), (x.grad.numpy() if x_grad else None), w.grad.numpy()


@pytest.mark.parametrize("shape", [
    (4, 8, 12, 16, 3, 1, 1),   # 3x3 stride 1
    (3, 16, 13, 24, 3, 2, 1),  # 3x3 stride 2, odd size (28 -> 14 -> 7 -> 4 on the proxy)
    (3, 16, 14, 32, 1, 2, 0),  # 1x1 stride-2 projection shortcut
    (2, 1, 28, 8, 3, 1, 1),    # the proxy stem: one input channel
])
def test_matches_paddle_conv(shape, conv_backend):
    n, c, h, o, k, s, p = shape
    rng = np.random.default_rng(0)
    x_np = rng.normal(size=(n, c, h, h)).astype("float32")
    w_np = (rng.normal(size=(o, c, k, k)) * 0.2).astype("float32")
    conv_backend("onednn")
    got = _run(onednn.conv2d, x_np, w_np, s, p)
    conv_backend("paddle")
    want = _run(onednn.conv2d, x_np, w_np, s, p)
    for g, w_ in zip(got, want):
        np.testing.assert_allclose(g, w_, rtol=1e-4, atol=1e-4 * np.abs(w_).max())


def test_input_without_gradient(conv_backend):
    """The stem's input (the image) needs no gradient: only the weight gradient is computed."""
    rng = np.random.default_rng(1)
    x_np = rng.normal(size=(2, 1, 8, 8)).astype("float32")
    w_np = rng.normal(size=(4, 1, 3, 3)).astype("float32")
    conv_backend("onednn")
    y, dx, dw = _run(onednn.conv2d, x_np, w_np, 1, 1, x_grad=False)
    assert dx is None
    conv_backend("paddle")
    np.testing.assert_allclose(dw, _run(onednn.conv2d, x_np, w_np, 1, 1, x_grad=False)[2], rtol=1e-4, atol=1e-4)


def test_elastic_slice_gradient_lands_in_full_weight(conv_backend):
    """A sliced (non-contiguous) weight: the gradient reaches the first-k block of the full weight only."""
    conv_backend("onednn")
    paddle.seed(0)
    conv = ElasticConv2D(8, 16, 3, 1, 1)
    conv.active_out = 10
    x = paddle.randn([2, 6, 7, 7])
    y = conv(x)
    assert y.shape == [2, 10, 7, 7]
    np.testing.assert_allclose(y.numpy(), F.conv2d(x, conv.weight[:10, :6], padding=1).numpy(), rtol=1e-4, atol=1e-4)
    y.sum().backward()
    g = conv.weight.grad.numpy()
    assert np.abs(g[:10, :6]).sum() > 0
    assert not g[10:].any() and not g[:, 6:].any()


def test_backend_choice(conv_backend):
    conv_backend("paddle")
    assert onednn.backend() == "paddle"
    conv_backend("onednn")
    assert onednn.backend() == "onednn"  # the CPU wheel ships libdnnl: a failure to load it is a test failure
    conv_backend("fast")
    with pytest.raises(ValueError, match="RESNET48_NAS_CONV"):
        onednn.backend()


def test_not_used_for_other_dtypes(conv_backend):
    """float64 (and float16 under AMP) take Paddle's convolution."""
    conv_backend("onednn")
    x = paddle.randn([1, 2, 5, 5]).astype("float64")
    w = paddle.randn([3, 2, 3, 3]).astype("float64")
    np.testing.assert_allclose(onednn.conv2d(x, w, 1, 1).numpy(), F.conv2d(x, w, padding=1).numpy())


def test_no_grad_forward(conv_backend):
    """Under no_grad (evaluation, BN calibration) the forward runs without an autograd node."""
    conv_backend("onednn")
    x, w = paddle.randn([2, 4, 9, 9]), paddle.randn([6, 4, 3, 3])
    with paddle.no_grad():
        y = onednn.conv2d(x, w, 2, 1)
    np.testing.assert_allclose(y.numpy(), F.conv2d(x, w, stride=2, padding=1).numpy(), rtol=1e-4, atol=1e-4)
    assert y.stop_gradient
